/* NER and KorQuAD features and KorQuAD predictions against HF transformers 3.3.1 on the real
 * data (tests/fixtures/make_feature_fixtures.py): every feature's hashes, the first features
 * in full, training-mode targets, and compute_predictions_logits on pseudo-random logits: the
 * predictions, squad_evaluate's scores of them, and the predictions and nbest files.
 * Needs KOELECTRA_DATA_DIR and the koelectra-base-v3 vocab (KOELECTRA_VOCAB_DIR, default
 * ../shared/vocab); skips without them. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/tasks/ner_features.h"
#include "host/tasks/metrics.h"
#include "host/tasks/squad.h"
#include "host/tasks/squad_eval.h"
#include "test.h"

#define FIX "tests/fixtures/features/"
enum { MAX_REPORTS = 5 };

static uint64_t fnv(uint64_t h, const int *v, int n) {
    for (int i = 0; i < n; i++) {
        uint32_t x = (uint32_t)v[i];
        for (int b = 0; b < 4; b++) {
            h ^= (x >> (8 * b)) & 0xFF;
            h *= 0x100000001B3ULL;
        }
    }
    return h;
}
static const uint64_t FNV0 = 0xCBF29CE484222325ULL;

static int *mask_row(int len, int T) {
    int *m = xmalloc(sizeof(int) * (size_t)T);
    for (int j = 0; j < T; j++) m[j] = j < len;
    return m;
}

static cJSON *read_json(const char *path) {
    char *text;
    size_t len;
    Error e;
    if (read_file(path, &text, &len, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

static int same_ints(const cJSON *arr, const int *v, int n) {
    if (cJSON_GetArraySize(arr) != n) return 0;
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) if (x->valueint != v[i++]) return 0;
    return 1;
}

/* ---------------------------------------------------------------- NER */

static void check_ner(const Tokenizer *t, const NerExampleSet *set, int T, const char *fix) {
    Features f;
    Error e;
    CHECK(ner_make_features(t, set, T, &f, &e) == 0, "%s", e.msg);
    FILE *fp = fopen(fix, "r");
    CHECK(fp != NULL, "%s missing", fix);
    if (!fp) return;
    int bad = 0, i = 0, len;
    unsigned long long h;
    for (; fscanf(fp, "%d %llx", &len, &h) == 2; i++) {
        if (i >= f.n) break;
        int *mask = mask_row(f.lengths[i], T);
        size_t o = (size_t)i * T;
        uint64_t mine = fnv(fnv(fnv(fnv(FNV0, f.input_ids + o, T), f.token_type_ids + o, T),
                                mask, T), f.labels + o, T);
        free(mask);
        if ((mine != h || len != f.lengths[i]) && bad++ < MAX_REPORTS)
            fprintf(stderr, "ner %d row %d: len %d vs %d\n", T, i, f.lengths[i], len);
    }
    fclose(fp);
    CHECK(i == f.n && i == set->n, "ner %d: %d fixture rows, %d features", T, i, f.n);
    CHECK(bad == 0, "ner max_seq_len %d: %d of %d rows differ", T, bad, f.n);
    if (T == 128) {
        cJSON *first = read_json(FIX "ner_first.json"), *row;
        int r = 0;
        cJSON_ArrayForEach(row, first) {
            size_t o = (size_t)r * T;
            CHECK(same_ints(cJSON_GetObjectItem(row, "input_ids"), f.input_ids + o, T) &&
                      same_ints(cJSON_GetObjectItem(row, "label_ids"), f.labels + o, T),
                  "ner row %d differs from ner_first.json", r);
            r++;
        }
        cJSON_Delete(first);
    }
    features_free(&f);
}

/* ---------------------------------------------------------------- KorQuAD features */

static uint64_t map_hash(const QaFeatures *f, const QaFeature *ft) {
    const QaDoc *d = &f->docs[f->example_doc[ft->example]];
    uint64_t h = FNV0;
    for (int j = 0; j < ft->paragraph_len; j++)
        h = fnv(h, (int[2]){ft->doc_offset + j, d->sub_to_word[ft->doc_start + j]}, 2);
    for (int j = 0; j < ft->paragraph_len; j++)
        h = fnv(h, (int[2]){ft->doc_offset + j, ft->max_context[j]}, 2);
    return h;
}

static void check_qa_eval(const QaExampleSet *set, const QaFeatures *f) {
    FILE *fp = fopen(FIX "korquad_dev.txt", "r");
    CHECK(fp != NULL, "korquad_dev.txt missing");
    if (!fp) return;
    char line[256];
    int k = 0, bad = 0, hf_ex = -1, prev_ex = -1;
    while (fgets(line, sizeof line, fp)) {
        int ex, span, start, plen, ntok;
        unsigned long long hi, hm;
        if (line[0] == '#' ||
            sscanf(line, "%d %d %d %d %d %llx %llx", &ex, &span, &start, &plen, &ntok, &hi,
                   &hm) != 7)
            continue;
        if (k >= f->n) {
            k++;
            continue;
        }
        const QaFeature *ft = &f->items[k];
        if (ft->example != prev_ex) hf_ex++; /* HF counts only questions with features */
        prev_ex = ft->example;
        size_t o = (size_t)k * f->seq_len;
        int *mask = mask_row(f->lengths[k], f->seq_len);
        uint64_t mine = fnv(fnv(fnv(FNV0, f->input_ids + o, f->seq_len),
                                f->token_type_ids + o, f->seq_len), mask, f->seq_len);
        free(mask);
        int ok = hf_ex == ex && ft->doc_start == start && ft->paragraph_len == plen &&
                 ft->n_tokens == ntok && mine == hi && map_hash(f, ft) == hm;
        if (!ok && bad++ < MAX_REPORTS)
            fprintf(stderr, "korquad feature %d (question %d %s): start %d/%d plen %d/%d "
                    "ntok %d/%d inputs %s maps %s\n", k, ft->example, set->items[ft->example].id,
                    ft->doc_start, start, ft->paragraph_len, plen, ft->n_tokens, ntok,
                    mine == hi ? "ok" : "DIFFER", map_hash(f, ft) == hm ? "ok" : "DIFFER");
        k++;
    }
    fclose(fp);
    CHECK(k == f->n, "korquad: %d fixture features, %d made", k, f->n);
    CHECK(bad == 0, "korquad: %d of %d features differ", bad, f->n);
}

static void check_qa_first(const QaFeatures *f) {
    cJSON *first = read_json(FIX "korquad_first.json"), *row;
    int k = 0;
    cJSON_ArrayForEach(row, first) {
        const QaFeature *ft = &f->items[k];
        size_t o = (size_t)k * f->seq_len;
        CHECK(same_ints(cJSON_GetObjectItem(row, "input_ids"), f->input_ids + o, f->seq_len),
              "feature %d input_ids", k);
        CHECK(same_ints(cJSON_GetObjectItem(row, "token_type_ids"), f->token_type_ids + o,
                        f->seq_len), "feature %d token_type_ids", k);
        const cJSON *ctx = cJSON_GetObjectItem(row, "token_is_max_context");
        CHECK(cJSON_GetArraySize(ctx) == 2 * ft->paragraph_len, "feature %d max context", k);
        CHECK(cJSON_GetArrayItem(ctx, 0)->valueint == ft->doc_offset, "feature %d offset", k);
        k++;
    }
    cJSON_Delete(first);
}

static void check_qa_train(const Tokenizer *t, const QaExampleSet *set, const QaFeatureArgs *a) {
    QaFeatureArgs ta = *a;
    ta.is_training = 1;
    QaFeatures f;
    Error e;
    CHECK(qa_make_features(t, set, &ta, &f, &e) == 0, "%s", e.msg);
    FILE *fp = fopen(FIX "korquad_dev_train_mode.txt", "r");
    CHECK(fp != NULL, "korquad_dev_train_mode.txt missing");
    if (!fp) return;
    char line[128];
    int k = 0, bad = 0, skipped = 0;
    while (fgets(line, sizeof line, fp)) {
        int ex, s, en;
        if (sscanf(line, "skipped %d", &ex) == 1) skipped++;
        if (line[0] == '#' || sscanf(line, "%d %d %d", &ex, &s, &en) != 3) continue;
        int ok = k < f.n && f.items[k].example == ex && f.items[k].start_position == s &&
                 f.items[k].end_position == en;
        if (!ok && bad++ < MAX_REPORTS)
            fprintf(stderr, "train feature %d: question %d, start %d end %d expected\n", k, ex,
                    s, en);
        k++;
    }
    fclose(fp);
    CHECK(k == f.n && bad == 0, "train mode: %d of %d/%d features differ", bad, k, f.n);
    CHECK(skipped == f.n_skipped, "train mode: %d skipped, %d expected", f.n_skipped, skipped);
    qa_features_free(&f);
}

/* ---------------------------------------------------------------- predictions */

/* task_metrics_qa's HF keys against squad_evaluate on the same predictions: the same sums in
 * the same order, so equal to the bit */
static void check_evaluate(const QaExampleSet *set, const QaNbest *nb, const cJSON *want,
                           const char *what) {
    QaPrediction *qs = xmalloc(sizeof *qs * (size_t)set->n);
    for (int i = 0; i < set->n; i++)
        qs[i] = (QaPrediction){set->items[i].answer_texts, set->items[i].n_answers,
                               nb[i].items[0].text};
    Metrics m;
    task_metrics_qa(qs, set->n, &m);
    const cJSON *w;
    int n = 0;
    cJSON_ArrayForEach(w, want) {
        double got = metrics_get(&m, w->string);
        CHECK(got == w->valuedouble, "%s: %s = %.17g, HF %.17g", what, w->string, got,
              w->valuedouble);
        n++;
    }
    CHECK(n == 10 && m.n == 12, "%s: %d HF keys, %d of ours", what, n, m.n);
    free(qs);
}

/* the files run_squad writes for the first questions, byte for byte as HF writes them */
static void check_files(const QaNbest *nb, const QaExampleSet *set, const char *pred_path,
                        const char *nbest_path) {
    cJSON *p = read_json(pred_path);
    int n = cJSON_GetArraySize(p);
    cJSON_Delete(p);
    QaExampleSet sub = *set;
    sub.n = n;
    const char *paths[2] = {pred_path, nbest_path};
    char *(*make[2])(const QaExampleSet *, const QaNbest *, size_t *) = {qa_predictions_json,
                                                                        qa_nbest_json};
    for (int k = 0; k < 2; k++) {
        char *want = NULL, *got;
        size_t len, got_len;
        Error e;
        CHECK(read_file(paths[k], &want, &len, &e) == 0, "%s", e.msg);
        got = make[k](&sub, nb, &got_len);
        CHECK(want && got && got_len == len && memcmp(got, want, len) == 0,
              "%s: %zu bytes written differ from HF's %zu", paths[k], got_len, len);
        free(want), free(got);
    }
    CHECK(n == 8, "%d questions in %s", n, pred_path);
}

static void check_predictions(const Tokenizer *t, const QaExampleSet *set, const QaFeatures *f) {
    cJSON *p = read_json(FIX "korquad_predictions.json");
    int n_ex = cJSON_GetObjectItem(p, "n_examples")->valueint;
    int n_ft = cJSON_GetObjectItem(p, "n_features")->valueint;
    uint64_t state = strtoull(cJSON_GetObjectItem(p, "seed")->valuestring, NULL, 16);
    int T = f->seq_len;
    float *sl = xmalloc(sizeof(float) * (size_t)n_ft * T);
    float *el = xmalloc(sizeof(float) * (size_t)n_ft * T);
    for (int k = 0; k < n_ft; k++) {
        fill_uniform(sl + (size_t)k * T, (size_t)T, -8, 8, &state);
        fill_uniform(el + (size_t)k * T, (size_t)T, -8, 8, &state);
    }
    QaExampleSet sub = *set;
    sub.n = n_ex;
    QaFeatures fsub = *f;
    fsub.n = n_ft;
    const char *keys[2] = {"cased", "lower"}, *evals[2] = {"evaluate_cased", "evaluate_lower"};
    for (int lower = 0; lower < 2; lower++) {
        QaPostArgs a = {.n_best_size = 20, .max_answer_length = 30, .do_lower_case = lower,
                        .kind = TOK_WORDPIECE};
        QaNbest *nb = qa_nbest(t, &sub, &fsub, sl, el, &a);
        const cJSON *want = cJSON_GetObjectItem(p, keys[lower]);
        int bad = 0;
        for (int i = 0; i < n_ex; i++) {
            const char *w = cJSON_GetArrayItem(want, i)->valuestring, *got = nb[i].items[0].text;
            if (strcmp(got, w) && bad++ < MAX_REPORTS)
                fprintf(stderr, "%s prediction %d: '%s' expected '%s'\n", keys[lower], i, got, w);
        }
        CHECK(bad == 0, "%s: %d of %d predictions differ", keys[lower], bad, n_ex);
        check_evaluate(&sub, nb, cJSON_GetObjectItem(p, evals[lower]), keys[lower]);
        if (!lower)
            check_files(nb, set, FIX "korquad_predictions_8.json", FIX "korquad_nbest_8.json");
        qa_nbest_free(nb, n_ex);
    }
    free(sl);
    free(el);
    cJSON_Delete(p);
}

int main(void) {
    const char *data = getenv("KOELECTRA_DATA_DIR"), *vd = getenv("KOELECTRA_VOCAB_DIR");
    char vocab[1024], ner_path[1024], qa_path[1024];
    if (!data) TEST_SKIP("KOELECTRA_DATA_DIR not set");
    snprintf(vocab, sizeof vocab, "%s/koelectra-base-v3-discriminator/vocab.txt",
             vd ? vd : "../shared/vocab");
    snprintf(ner_path, sizeof ner_path, "%s/naver-ner/test.tsv", data);
    snprintf(qa_path, sizeof qa_path, "%s/korquad/KorQuAD_v1.0_dev.json", data);
    if (!file_exists(vocab) || !file_exists(ner_path) || !file_exists(qa_path))
        TEST_SKIP("no koelectra-base-v3 vocab, naver-ner test.tsv or KorQuAD dev");
    Error e;
    TokenizerSpec spec = {.kind = TOK_WORDPIECE, .vocab_file = vocab, .do_lower_case = 0};
    Tokenizer *t = tokenizer_open(&spec, &e);
    CHECK(t != NULL, "%s", e.msg);
    if (!t) return test_exit("test_feature_parity");

    NerExampleSet ner;
    CHECK(read_ner_examples(task_find("naver-ner"), ner_path, &ner, &e) == 0, "%s", e.msg);
    check_ner(t, &ner, 128, FIX "ner_test_128.txt");
    check_ner(t, &ner, 24, FIX "ner_test_24.txt");
    free_ner_examples(&ner);

    QaExampleSet qa;
    CHECK(read_qa_examples(qa_path, &qa, &e) == 0, "%s", e.msg);
    QaFeatureArgs a = {.max_seq_length = 512, .doc_stride = 128, .max_query_length = 64};
    QaFeatures f;
    CHECK(qa_make_features(t, &qa, &a, &f, &e) == 0, "%s", e.msg);
    check_qa_eval(&qa, &f);
    check_qa_first(&f);
    check_predictions(t, &qa, &f);
    qa_features_free(&f);
    check_qa_train(t, &qa, &a);
    free_qa_examples(&qa);
    tokenizer_free(t);
    return test_exit("test_feature_parity");
}
