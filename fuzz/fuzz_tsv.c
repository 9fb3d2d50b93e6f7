/* libFuzzer target: random bytes as a task file (through a temp file) into
 * read_seq_cls_examples for every sentence-classification task and into read_ner_examples;
 * a NER file that reads is turned into features with the small vocabulary. Either an error
 * line or examples that keep the readers' promises; never a crash. */
#include "fuzz/fuzz_common.h"
#include "host/tasks/ner_features.h"
#include "host/tasks/tasks.h"

static const char *const SEQ_CLS_TASKS[] = {"nsmc", "kornli", "paws", "korsts",
                                            "question-pair", "hate-speech"};

static int inside(const char *p, const char *buf, size_t n) {
    return p >= buf && p <= buf + n;
}

static void check_seq_cls(const TaskInfo *t, const char *path, size_t size) {
    ExampleSet s;
    Error e;
    if (read_seq_cls_examples(t, path, &s, &e)) {
        FUZZ_ASSERT(e.msg[0] && strstr(e.msg, path));
        return;
    }
    FUZZ_ASSERT(s.n > 0);
    for (int i = 0; i < s.n; i++) {
        const Example *x = &s.items[i];
        FUZZ_ASSERT(inside(x->text_a, s.buf, size));
        FUZZ_ASSERT((t->col_b < 0) == (x->text_b == NULL));
        FUZZ_ASSERT(!x->text_b || inside(x->text_b, s.buf, size));
        FUZZ_ASSERT(t->kind == TASK_REGRESSION ? x->label == -1
                                               : x->label >= 0 && x->label < t->num_labels);
        FUZZ_ASSERT(i == 0 || x->row > s.items[i - 1].row);
    }
    free_examples(&s);
}

static void check_ner(const Tokenizer *tok, const char *path, size_t size) {
    const TaskInfo *t = task_find("naver-ner");
    NerExampleSet s;
    Error e;
    if (read_ner_examples(t, path, &s, &e)) {
        FUZZ_ASSERT(e.msg[0] && strstr(e.msg, path));
        return;
    }
    FUZZ_ASSERT(s.n > 0);
    for (int i = 0; i < s.n; i++)
        for (int w = 0; w < s.items[i].n; w++) {
            FUZZ_ASSERT(inside(s.items[i].words[w], s.buf, size));
            FUZZ_ASSERT(s.items[i].labels[w] >= 0 && s.items[i].labels[w] < t->num_labels);
        }
    Features f;
    if (ner_make_features(tok, &s, 16, &f, &e) == 0) {
        FUZZ_ASSERT(f.n == s.n);
        for (int i = 0; i < f.n; i++) FUZZ_ASSERT(f.lengths[i] >= 2 && f.lengths[i] <= 16);
        features_free(&f);
    }
    free_ner_examples(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static Tokenizer *tok;
    if (!tok) tok = fuzz_open_wordpiece(0);
    const char *path = fuzz_write_tmp(data, size);
    for (size_t i = 0; i < sizeof SEQ_CLS_TASKS / sizeof SEQ_CLS_TASKS[0]; i++)
        check_seq_cls(task_find(SEQ_CLS_TASKS[i]), path, size);
    check_ner(tok, path, size);
    return 0;
}
