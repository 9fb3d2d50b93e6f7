/* Every available task file reads with what the original processors read from it: counts,
 * skipped rows, label histogram, a hash over all fields and spot-checked examples, as stored
 * in tests/fixtures/metrics/task_readers.json by make_metric_fixtures.py. (How fast NSMC
 * reads is bench/tokenize_bench's business, not a correctness test's.) */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <string.h>

#include "host/tasks/tasks.h"
#include "test.h"

static uint64_t fnv1a(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001B3ull;
    return h;
}
#define FNV_START 0xCBF29CE484222325ull

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static int hash_is(uint64_t h, const cJSON *want) {
    char buf[17];
    snprintf(buf, sizeof buf, "%016" PRIx64, h);
    return cJSON_IsString(want) && strcmp(buf, want->valuestring) == 0;
}

static void check_seq_cls(const TaskInfo *t, const char *file, const char *path, const cJSON *want) {
    ExampleSet s;
    Error e;
    int rc = read_seq_cls_examples(t, path, &s, &e);
    CHECK(rc == 0, "%s", e.msg);
    if (rc) return;
    CHECK(s.n == get(want, "n")->valueint, "%s: %d examples", file, s.n);
    CHECK(s.skipped == get(want, "skipped")->valueint, "%s: %d skipped", file, s.skipped);
    uint64_t h = FNV_START;
    int hist[3] = {0};
    double score_sum = 0;
    for (int i = 0; i < s.n; i++) {
        const Example *x = &s.items[i];
        h = fnv1a(h, x->text_a, strlen(x->text_a) + 1);
        h = fnv1a(h, x->text_b ? x->text_b : "", x->text_b ? strlen(x->text_b) + 1 : 1);
        if (x->label >= 0 && x->label < 3) hist[x->label]++;
        score_sum += x->score;
    }
    CHECK(hash_is(h, get(want, "hash")), "%s: content hash differs", file);
    const cJSON *hw = get(want, "histogram"), *v;
    if (hw) {
        int k = 0;
        cJSON_ArrayForEach(v, hw) { CHECK(hist[k] == v->valueint, "%s: label %d count %d", file, k, hist[k]); k++; }
    } else {
        CHECK(fabs(score_sum - get(want, "score_sum")->valuedouble) < 1e-6, "%s: score sum %.9g", file, score_sum);
    }
    cJSON_ArrayForEach(v, get(want, "spots")) {
        const Example *x = &s.items[get(v, "index")->valueint];
        CHECK(x->row == get(v, "row")->valueint, "%s: row %d", file, x->row);
        if (hw) CHECK(x->label == get(v, "label")->valueint, "%s: row %d label %d", file, x->row, x->label);
        else CHECK(fabs(x->score - get(v, "label")->valuedouble) < 1e-9, "%s: row %d score", file, x->row);
        CHECK(hash_is(fnv1a(FNV_START, x->text_a, strlen(x->text_a)), get(v, "a_hash")), "%s: row %d text_a", file, x->row);
        if (x->text_b) CHECK(hash_is(fnv1a(FNV_START, x->text_b, strlen(x->text_b)), get(v, "b_hash")), "%s: row %d text_b", file, x->row);
        else CHECK(cJSON_IsNull(get(v, "b_hash")), "%s: text_b missing", file);
    }
    free_examples(&s);
}

static void check_ner(const TaskInfo *t, const char *file, const char *path, const cJSON *want) {
    NerExampleSet s;
    Error e;
    int rc = read_ner_examples(t, path, &s, &e);
    CHECK(rc == 0, "%s", e.msg);
    if (rc) return;
    CHECK(s.n == get(want, "n")->valueint, "%s: %d sentences", file, s.n);
    uint64_t h = FNV_START;
    int words = 0, hist[29] = {0};
    for (int i = 0; i < s.n; i++)
        for (int j = 0; j < s.items[i].n; j++, words++) {
            h = fnv1a(h, s.items[i].words[j], strlen(s.items[i].words[j]) + 1);
            hist[s.items[i].labels[j]]++;
        }
    CHECK(words == get(want, "words")->valueint, "%s: %d words", file, words);
    CHECK(hash_is(h, get(want, "hash")), "%s: content hash differs", file);
    const cJSON *v;
    int k = 0;
    cJSON_ArrayForEach(v, get(want, "histogram")) { CHECK(hist[k] == v->valueint, "%s: label %d", file, k); k++; }
    cJSON_ArrayForEach(v, get(want, "spots")) {
        const NerExample *x = &s.items[get(v, "index")->valueint];
        CHECK(x->row == get(v, "row")->valueint && x->n == get(v, "n_words")->valueint, "%s: row %d", file, x->row);
        const cJSON *l;
        int j = 0;
        cJSON_ArrayForEach(l, get(v, "labels")) { CHECK(j < x->n && x->labels[j] == l->valueint, "%s: row %d word %d", file, x->row, j); j++; }
    }
    free_ner_examples(&s);
}

static void check_qa(const char *file, const char *path, const cJSON *want) {
    QaExampleSet s;
    Error e;
    int rc = read_qa_examples(path, &s, &e);
    CHECK(rc == 0, "%s", e.msg);
    if (rc) return;
    long answers = 0, start_sum = 0;
    for (int i = 0; i < s.n; i++) {
        answers += s.items[i].n_answers;
        for (int a = 0; a < s.items[i].n_answers; a++) start_sum += s.items[i].answer_starts[a];
    }
    CHECK(s.n == get(want, "n")->valueint, "%s: %d questions", file, s.n);
    CHECK(answers == get(want, "answers")->valueint, "%s: %ld answers", file, answers);
    CHECK(start_sum == (long)get(want, "answer_start_sum")->valuedouble, "%s: answer starts", file);
    CHECK(strcmp(s.items[0].id, get(want, "first_id")->valuestring) == 0, "%s: first id", file);
    CHECK(strcmp(s.items[s.n - 1].id, get(want, "last_id")->valuestring) == 0, "%s: last id", file);
    free_qa_examples(&s);
}

int main(void) {
    const char *dir = getenv("KOELECTRA_DATA_DIR");
    if (!dir || !dir_exists(dir)) TEST_SKIP("KOELECTRA_DATA_DIR not set or missing");
    char *text;
    Error e;
    CHECK(read_file("tests/fixtures/metrics/task_readers.json", &text, NULL, &e) == 0, "%s", e.msg);
    cJSON *root = cJSON_Parse(text);
    free(text);
    int files = 0;
    const cJSON *want;
    cJSON_ArrayForEach(want, root) {
        char task[64];
        const char *slash = strchr(want->string, '/');
        snprintf(task, sizeof task, "%.*s", (int)(slash - want->string), want->string);
        const TaskInfo *t = task_find(task);
        CHECK(t != NULL, "unknown task %s", task);
        char *path = task_path(dir, t, slash + 1);
        if (file_exists(path)) {
            files++;
            if (t->kind == TASK_NER) check_ner(t, want->string, path, want);
            else if (t->kind == TASK_QA) check_qa(want->string, path, want);
            else check_seq_cls(t, want->string, path, want);
        }
        free(path);
    }
    cJSON_Delete(root);
    if (files == 0) TEST_SKIP("no task files under %s", dir);
    printf("%d files checked\n", files);
    return test_exit("test_task_readers");
}
