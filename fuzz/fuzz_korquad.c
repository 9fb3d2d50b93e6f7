/* libFuzzer target: random bytes as a KorQuAD file (through a temp file) into
 * read_qa_examples; a file that reads is turned into features in training and evaluation
 * modes with the small vocabulary, and the evaluation features are post-processed with
 * logits drawn from the input's hash. Errors are fine, crashes and broken promises are not. */
#include "fuzz/fuzz_common.h"
#include "host/tasks/squad.h"
#include "host/tasks/tasks.h"

static uint64_t hash_bytes(const uint8_t *data, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ data[i]) * 1099511628211ull;
    return h | 1;
}

static float *random_logits(size_t n, uint64_t *s) {
    float *x = xmalloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
        x[i] = (float)((*s >> 40) % 64) / 8.0f - 4.0f; /* coarse values: ties happen */
    }
    return x;
}

static void check_features(const QaExampleSet *set, const QaFeatures *f, int seq_len) {
    FUZZ_ASSERT(f->n_examples == set->n && f->seq_len == seq_len);
    for (int i = 0; i < f->n; i++) {
        const QaFeature *ft = &f->items[i];
        FUZZ_ASSERT(ft->example >= 0 && ft->example < set->n);
        FUZZ_ASSERT(f->lengths[i] >= 2 && f->lengths[i] <= seq_len);
        FUZZ_ASSERT(ft->paragraph_len >= 0 && ft->doc_offset + ft->paragraph_len <= seq_len);
        FUZZ_ASSERT(ft->start_position >= 0 && ft->start_position < seq_len);
        FUZZ_ASSERT(ft->end_position >= 0 && ft->end_position < seq_len);
    }
}

static void predict(const Tokenizer *tok, const QaExampleSet *set, const QaFeatures *f,
                    uint64_t seed) {
    size_t n = (size_t)f->n * f->seq_len;
    float *start = random_logits(n, &seed), *end = random_logits(n, &seed);
    QaPostArgs a = {.n_best_size = 5, .max_answer_length = 6, .do_lower_case = 0,
                    .kind = TOK_WORDPIECE};
    char **preds = qa_predict(tok, set, f, start, end, &a);
    for (int i = 0; i < set->n; i++) FUZZ_ASSERT(preds[i] != NULL);
    qa_predictions_free(preds, set->n);
    free(start);
    free(end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static Tokenizer *tok;
    if (!tok) tok = fuzz_open_wordpiece(0);
    const char *path = fuzz_write_tmp(data, size);
    QaExampleSet set;
    Error e;
    if (read_qa_examples(path, &set, &e)) {
        FUZZ_ASSERT(e.msg[0] && strstr(e.msg, path));
        return 0;
    }
    FUZZ_ASSERT(set.n > 0);
    const QaFeatureArgs modes[] = {
        {.max_seq_length = 24, .doc_stride = 4, .max_query_length = 8, .is_training = 1},
        {.max_seq_length = 40, .doc_stride = 8, .max_query_length = 12, .is_training = 0},
    };
    for (int m = 0; m < 2; m++) {
        QaFeatures f;
        if (qa_make_features(tok, &set, &modes[m], &f, &e)) {
            FUZZ_ASSERT(e.msg[0]);
            continue;
        }
        check_features(&set, &f, modes[m].max_seq_length);
        if (!modes[m].is_training) predict(tok, &set, &f, hash_bytes(data, size));
        qa_features_free(&f);
    }
    free_qa_examples(&set);
    return 0;
}
