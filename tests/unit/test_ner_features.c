/* NER features on a tiny hand-made vocabulary: first sub-token labelled, the rest ignored,
 * [UNK] for a word with no tokens, the cut to max_seq_len - 2, padding, and the word-level
 * labels of evaluation (argmax, first maximum, NaN). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/tasks/ner_features.h"
#include "test.h"

static const char *VOCAB = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nabc\n##d\n##e\nx\ny\n";
enum { PAD, UNK, CLS, SEP, MASK, ABC, D, E, X, Y };

static Tokenizer *open_tiny(char *path, size_t cap, int lower) {
    snprintf(path, cap, "/tmp/koe_ner_vocab_%d.txt", (int)getpid());
    Error e;
    if (write_file_atomic(path, VOCAB, strlen(VOCAB), &e)) return NULL;
    TokenizerSpec spec = {.kind = TOK_WORDPIECE, .vocab_file = path, .do_lower_case = lower};
    Tokenizer *t = tokenizer_open(&spec, &e);
    if (!t) fprintf(stderr, "%s\n", e.msg);
    return t;
}

static void ints_equal(const int *got, const int *want, int n, const char *what) {
    for (int i = 0; i < n; i++) CHECK(got[i] == want[i], "%s[%d] = %d, want %d", what, i, got[i], want[i]);
}

static NerExampleSet one_example(const char **words, int *labels, int n) {
    static NerExample ex;
    ex = (NerExample){.words = words, .labels = labels, .n = n};
    return (NerExampleSet){.items = &ex, .n = 1};
}

static void test_features(const Tokenizer *t) {
    /* "abcde" -> abc ##d ##e; "\u0301" (a lone accent) lowercases and strips to nothing */
    const char *words[] = {"x", "abcde", "\xcc\x81", "y"};
    int labels[] = {3, 7, 9, 12};
    NerExampleSet set = one_example(words, labels, 4);
    Features f;
    Error e;
    CHECK(ner_make_features(t, &set, 10, &f, &e) == 0, "%s", e.msg);
    int ids[] = {CLS, X, ABC, D, E, UNK, Y, SEP, PAD, PAD};
    int lab[] = {-100, 3, 7, -100, -100, 9, 12, -100, -100, -100};
    ints_equal(f.input_ids, ids, 10, "input_ids");
    ints_equal(f.labels, lab, 10, "label_ids");
    for (int j = 0; j < 10; j++) CHECK(f.token_type_ids[j] == 0, "type %d", j);
    CHECK(f.lengths[0] == 8, "length %d", f.lengths[0]);

    /* cut to max_seq_len - 2 = 3 tokens, in the middle of a word */
    Features g;
    CHECK(ner_make_features(t, &set, 5, &g, &e) == 0, "%s", e.msg);
    int ids5[] = {CLS, X, ABC, D, SEP}, lab5[] = {-100, 3, 7, -100, -100};
    ints_equal(g.input_ids, ids5, 5, "cut input_ids");
    ints_equal(g.labels, lab5, 5, "cut label_ids");
    CHECK(g.lengths[0] == 5, "cut length %d", g.lengths[0]);

    /* evaluation labels: positions 1, 2, 5, 6 of the first feature */
    float logits[10 * 3];
    uint64_t s = 7;
    fill_uniform(logits, 30, -1, 1, &s);
    logits[1 * 3 + 2] = 5;                        /* pos 1 -> 2 */
    logits[2 * 3 + 0] = 4, logits[2 * 3 + 1] = 4; /* pos 2 tie -> first, 0 */
    logits[2 * 3 + 2] = -4;
    logits[5 * 3 + 1] = NAN;                      /* pos 5 -> the NaN, 1 */
    logits[6 * 3 + 0] = 3, logits[6 * 3 + 1] = -3, logits[6 * 3 + 2] = 2; /* pos 6 -> 0 */
    int gold[10], pred[10];
    int m = ner_row_labels(&f, 0, logits, 3, gold, pred);
    CHECK(m == 4, "%d labelled positions", m);
    int want_gold[] = {3, 7, 9, 12}, want_pred[] = {2, 0, 1, 0};
    ints_equal(gold, want_gold, 4, "gold");
    ints_equal(pred, want_pred, 4, "pred");
    features_free(&f);
    features_free(&g);

    CHECK(ner_make_features(t, &set, 1, &f, &e) == -1 && strstr(e.msg, "max_seq_len 1"),
          "max_seq_len 1 must fail: %s", e.msg);
}

int main(void) {
    char path[256];
    Tokenizer *t = open_tiny(path, sizeof path, 1);
    CHECK(t != NULL, "tiny tokenizer");
    if (t) test_features(t);
    tokenizer_free(t);
    unlink(path);
    return test_exit("test_ner_features");
}
