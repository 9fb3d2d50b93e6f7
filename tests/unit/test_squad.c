/* KorQuAD features and post-processing on tiny hand-made examples: several windows with
 * their max-context flags (a tie included), answers at a window's start and end or outside
 * it, a question longer than max_query_length, an answer inside a word's sub-tokens, the
 * skip of an answer that is not there, bad answer_start (named with its file), get_final_text
 * and the choice of the best span. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/tasks/squad.h"
#include "test.h"

static const char *VOCAB =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nc\nd\ne\nwhat\nis\nx\ny\nabc\n##d\n";
enum { PAD, UNK, CLS, SEP, MASK, A, B, C, D, E, WHAT, IS, X, Y, ABC, HD };

static const char *CTX12 = "a b c d e a b c d e a b"; /* word i at character 2i */

static QaExample example(const char *id, const char *q, const char *ctx, const char **text,
                         int *start) {
    return (QaExample){.id = id, .question = q, .context = ctx, .title = "",
                       .n_answers = text ? 1 : 0, .answer_texts = text, .answer_starts = start};
}

static void ints_equal(const int *got, const int *want, int n, const char *what) {
    for (int i = 0; i < n; i++)
        CHECK(got[i] == want[i], "%s[%d] = %d, want %d", what, i, got[i], want[i]);
}

/* 12 one-token words, room 7, stride 4: windows at 0, 4, 8 of 7, 7, 4 tokens */
static void test_windows(const Tokenizer *t) {
    const char *ans[] = {"e a", "b"};
    int at[] = {8, 12};
    QaExample ex[] = {example("q0", "what is", CTX12, &ans[0], &at[0]),
                      example("q1", "what is", CTX12, &ans[1], &at[1])};
    QaExampleSet set = {.items = ex, .n = 2};
    QaFeatureArgs a = {.max_seq_length = 12, .doc_stride = 4, .max_query_length = 64,
                       .is_training = 1};
    QaFeatures f;
    Error e;
    CHECK(qa_make_features(t, &set, &a, &f, &e) == 0, "%s", e.msg);
    CHECK(f.n == 6 && f.n_docs == 1, "%d features, %d docs", f.n, f.n_docs);
    if (f.n != 6) return;
    int w0[] = {CLS, WHAT, IS, SEP, A, B, C, D, E, A, B, SEP};
    int w2[] = {CLS, WHAT, IS, SEP, D, E, A, B, SEP, PAD, PAD, PAD};
    int types2[] = {0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0};
    ints_equal(f.input_ids, w0, 12, "window 0");
    ints_equal(f.input_ids + 2 * 12, w2, 12, "window 2");
    ints_equal(f.token_type_ids + 2 * 12, types2, 12, "window 2 types");
    int starts[] = {0, 4, 8}, plens[] = {7, 7, 4}, lens[] = {12, 12, 9};
    /* max context: position 5 ties between windows 0 and 1 and stays with window 0 */
    const char *ctx[] = {"1111110", "0011110", "0011"};
    for (int k = 0; k < 3; k++) {
        CHECK(f.items[k].doc_start == starts[k] && f.items[k].paragraph_len == plens[k],
              "window %d: start %d len %d", k, f.items[k].doc_start, f.items[k].paragraph_len);
        CHECK(f.lengths[k] == lens[k] && f.items[k].n_tokens == lens[k], "window %d length", k);
        CHECK(f.items[k].doc_offset == 4, "window %d offset %d", k, f.items[k].doc_offset);
        for (int j = 0; j < plens[k]; j++)
            CHECK(f.items[k].max_context[j] == ctx[k][j] - '0', "window %d flag %d", k, j);
    }
    /* "e a" (sub-tokens 4..5): in windows 0 and 1, outside window 2 -> [CLS]; "b" (6) is
     * the last token of window 0 and the third of window 1 */
    int want[6][2] = {{8, 9}, {4, 5}, {0, 0}, {10, 10}, {6, 6}, {0, 0}};
    for (int k = 0; k < 6; k++)
        CHECK(f.items[k].start_position == want[k][0] && f.items[k].end_position == want[k][1],
              "feature %d: %d %d", k, f.items[k].start_position, f.items[k].end_position);
    CHECK(f.items[3].example == 1, "feature 3 belongs to question 1");
    qa_features_free(&f);
}

static void test_long_question(const Tokenizer *t) {
    QaExample ex = example("q", "what is what is what", "x y", NULL, NULL);
    QaExampleSet set = {.items = &ex, .n = 1};
    QaFeatureArgs a = {.max_seq_length = 10, .doc_stride = 2, .max_query_length = 3};
    QaFeatures f;
    Error e;
    CHECK(qa_make_features(t, &set, &a, &f, &e) == 0, "%s", e.msg);
    int want[] = {CLS, WHAT, IS, WHAT, SEP, X, Y, SEP, PAD, PAD};
    ints_equal(f.input_ids, want, 10, "long question");
    CHECK(f.n == 1 && f.items[0].doc_offset == 5, "offset %d", f.items[0].doc_offset);
    qa_features_free(&f);

    a.max_seq_length = 6; /* 3 query tokens + 3 specials leave nothing */
    CHECK(qa_make_features(t, &set, &a, &f, &e) == -1 && strstr(e.msg, "'q'"),
          "no room must fail: %s", e.msg);
}

static void test_sub_tokens(const Tokenizer *t) {
    /* "abcd" is abc ##d: the answer "abc" narrows to the first sub-token, "abcd" keeps both;
     * "zz" is not in the answer's words and the question is skipped; U+202F splits words,
     * U+00A0 does not */
    const char *ans[] = {"abc", "abcd", "zz"};
    int at[] = {2, 2, 2};
    const char *ctx = "x abcd\xe2\x80\xaf" "y";
    QaExample ex[] = {example("q0", "what", ctx, &ans[0], &at[0]),
                      example("q1", "what", ctx, &ans[1], &at[1]),
                      example("q2", "what", ctx, &ans[2], &at[2])};
    QaExampleSet set = {.items = ex, .n = 3};
    QaFeatureArgs a = {.max_seq_length = 16, .doc_stride = 8, .max_query_length = 8,
                       .is_training = 1};
    QaFeatures f;
    Error e;
    CHECK(qa_make_features(t, &set, &a, &f, &e) == 0, "%s", e.msg);
    CHECK(f.n == 2 && f.n_skipped == 1, "%d features, %d skipped", f.n, f.n_skipped);
    CHECK(f.docs[0].n_words == 3 && f.docs[0].n_sub == 4, "%d words %d sub-tokens",
          f.docs[0].n_words, f.docs[0].n_sub);
    int sub_to_word[] = {0, 1, 1, 2};
    ints_equal(f.docs[0].sub_to_word, sub_to_word, 4, "tok_to_orig_index");
    CHECK(f.items[0].start_position == 4 && f.items[0].end_position == 4, "abc: %d %d",
          f.items[0].start_position, f.items[0].end_position);
    CHECK(f.items[1].start_position == 4 && f.items[1].end_position == 5, "abcd: %d %d",
          f.items[1].start_position, f.items[1].end_position);
    qa_features_free(&f);

    QaExample nb = example("nbsp", "what", "x\xc2\xa0y", NULL, NULL);
    set = (QaExampleSet){.items = &nb, .n = 1};
    a.is_training = 0;
    CHECK(qa_make_features(t, &set, &a, &f, &e) == 0, "%s", e.msg);
    CHECK(f.docs[0].n_words == 1 && f.docs[0].n_sub == 2, "U+00A0 is inside a word");
    qa_features_free(&f);

    int past = 9;
    QaExample bad = example("bad", "what", "x y", &ans[0], &past);
    set = (QaExampleSet){.items = &bad, .n = 1};
    a.is_training = 1;
    CHECK(qa_make_features(t, &set, &a, &f, &e) == -1 && strstr(e.msg, "'bad'") &&
              strstr(e.msg, "answer_start 9"), "answer_start past the context: %s", e.msg);
    a.is_training = 0; /* evaluation never looks at the answers */
    CHECK(qa_make_features(t, &set, &a, &f, &e) == 0, "%s", e.msg);
    qa_features_free(&f);
}

/* read from a file, an answer past its context names the file and the question */
static void test_error_names_file(const Tokenizer *t) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/koe_squad_past_%d.json", (int)getpid());
    const char *json = "{\"data\": [{\"title\": \"t\", \"paragraphs\": [{\"context\": \"x y\", "
                       "\"qas\": [{\"id\": \"q-past\", \"question\": \"what\", \"answers\": "
                       "[{\"text\": \"y\", \"answer_start\": 9}]}]}]}]}";
    Error e = {{0}};
    CHECK(write_file_atomic(path, json, strlen(json), &e) == 0, "%s", e.msg);
    QaExampleSet set;
    CHECK(read_qa_examples(path, &set, &e) == 0, "%s", e.msg);
    QaFeatureArgs a = {.max_seq_length = 16, .doc_stride = 4, .max_query_length = 8,
                       .is_training = 1};
    QaFeatures f;
    CHECK(qa_make_features(t, &set, &a, &f, &e) == -1 && strstr(e.msg, path) &&
              strstr(e.msg, "'q-past'") && strstr(e.msg, "answer_start 9 is past"),
          "the error names the file and the question: %s", e.msg);
    free_qa_examples(&set);
    unlink(path);
}

static void check_text(const char *pred, const char *orig, int lower, const char *want) {
    char *got = qa_final_text(pred, orig, lower);
    CHECK(!strcmp(got, want), "final text of '%s' in '%s': '%s', want '%s'", pred, orig, got,
          want);
    free(got);
}

static void test_final_text(void) {
    check_text("steve smith", "Steve Smith's", 1, "Steve Smith");
    check_text("Smith", "Steve Smith's", 0, "Smith");
    check_text("smith", "Steve Smith's", 0, "Steve Smith's"); /* not found */
    check_text("cafe", "(Café)", 1, "Café");
    check_text("1 , 2", "(1,2)", 0, "1,2");
    check_text("1 2", "(1,2)", 0, "(1,2)"); /* not in "( 1 , 2 )" */
    check_text("b", "a\xc2\xa0" "b", 0, "a\xc2\xa0" "b"); /* lengths differ */
    check_text("", "abc", 0, "abc");
    check_text("\xe4\xb8\xad", "x\xe4\xb8\xad\xe6\x96\x87", 0, "\xe4\xb8\xad"); /* CJK */
}

/* predictions on the three windows of test_windows */
static void test_predict(const Tokenizer *t) {
    QaExample ex = example("q0", "what is", CTX12, NULL, NULL);
    QaExampleSet set = {.items = &ex, .n = 1};
    QaFeatureArgs fa = {.max_seq_length = 12, .doc_stride = 4, .max_query_length = 64};
    QaFeatures f;
    Error e;
    CHECK(qa_make_features(t, &set, &fa, &f, &e) == 0 && f.n == 3, "%s", e.msg);
    float sl[36], el[36];
    for (int i = 0; i < 36; i++) sl[i] = el[i] = -10;
    sl[6] = el[7] = 5;   /* window 0: tokens 6..7 are "c d" */
    sl[1] = el[1] = 9;   /* in the question */
    sl[10] = el[10] = 9; /* window 0, position 10: not its max context */
    QaPostArgs a = {.n_best_size = 20, .max_answer_length = 2, .kind = TOK_WORDPIECE};
    const char *want[] = {"empty", "c", "c d"};
    for (int len = 0; len <= 2; len++) {
        a.max_answer_length = len;
        char **p = qa_predict(t, &set, &f, sl, el, &a);
        CHECK(!strcmp(p[0], want[len]), "max_answer_length %d: '%s', want '%s'", len, p[0],
              want[len]);
        qa_predictions_free(p, 1);
    }
    qa_features_free(&f);

    /* sub-tokens joined back: abc ##d -> "abcd", then aligned with the word */
    QaExample sub = example("q", "what", "x abcd y", NULL, NULL);
    set = (QaExampleSet){.items = &sub, .n = 1};
    fa = (QaFeatureArgs){.max_seq_length = 8, .doc_stride = 8, .max_query_length = 8};
    CHECK(qa_make_features(t, &set, &fa, &f, &e) == 0 && f.n == 1, "%s", e.msg);
    for (int i = 0; i < 8; i++) sl[i] = el[i] = -1;
    sl[4] = el[5] = 3; /* [CLS] what [SEP] x abc ##d y [SEP] */
    a.max_answer_length = 30;
    char **p = qa_predict(t, &set, &f, sl, el, &a);
    CHECK(!strcmp(p[0], "abcd"), "sub-token answer '%s'", p[0]);
    qa_predictions_free(p, 1);
    qa_features_free(&f);
}

int main(void) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/koe_squad_vocab_%d.txt", (int)getpid());
    Error e;
    CHECK(write_file_atomic(path, VOCAB, strlen(VOCAB), &e) == 0, "%s", e.msg);
    TokenizerSpec spec = {.kind = TOK_WORDPIECE, .vocab_file = path};
    Tokenizer *t = tokenizer_open(&spec, &e);
    CHECK(t != NULL, "%s", e.msg);
    if (t) {
        test_windows(t);
        test_long_question(t);
        test_sub_tokens(t);
        test_predict(t);
        test_error_names_file(t);
    }
    test_final_text();
    tokenizer_free(t);
    unlink(path);
    return test_exit("test_squad");
}
