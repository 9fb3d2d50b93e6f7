/* Hand cases for the tokenizers on a vocabulary this test writes: WordPiece's greedy
 * longest match, [UNK] rules, punctuation and CJK splits, lowercasing, special tokens in the
 * text, 'longest_first' truncation, XLM-R's layout (with the committed test model), and
 * every bad-input error (invalid UTF-8, missing or broken vocab). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/text/tokenizer.h"
#include "test.h"

static const char *VOCAB[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff",
                              "##able", "hello", "world", ",", "!", "漢", "字", "a", "##a",
                              "cafe", "x", "y", "z", NULL};
enum { PAD, UNK, CLS, SEP, MASK, UN, AFF, ABLE, HELLO, WORLD, COMMA, BANG, HAN, JA, A, AA,
       CAFE, X, Y, Z };

static char dir[64];

static char *write_vocab(const char *name, const char *text) {
    char *path = strfmt("%s/%s", dir, name);
    Error e;
    if (write_file_atomic(path, text, strlen(text), &e)) fprintf(stderr, "%s\n", e.msg);
    return path;
}

static Tokenizer *open_wp(const char *path, int lower) {
    TokenizerSpec spec = {TOK_WORDPIECE, path, NULL, lower};
    Error e;
    Tokenizer *t = tokenizer_open(&spec, &e);
    if (!t) fprintf(stderr, "%s\n", e.msg);
    return t;
}

/* tokenize and compare with want[0..nwant) */
static void expect(const Tokenizer *t, const char *text, const int *want, int nwant) {
    int *ids = NULL, n = 0, cap = 0;
    Error e;
    int got = tokenizer_tokenize(t, text, &ids, &n, &cap, &e);
    int same = got == nwant && n == nwant;
    for (int i = 0; same && i < n; i++) same = ids[i] == want[i];
    CHECK(same, "'%s': got %d tokens (first %d), want %d (first %d)", text, got,
          n > 0 ? ids[0] : -1, nwant, nwant > 0 ? want[0] : -1);
    free(ids);
}

#define EXPECT(t, text, ...)                                  \
    do {                                                      \
        int w_[] = {__VA_ARGS__};                             \
        expect(t, text, w_, (int)(sizeof w_ / sizeof(int))); \
    } while (0)

static void test_wordpiece(const Tokenizer *t) {
    EXPECT(t, "unaffable", UN, AFF, ABLE);
    EXPECT(t, "unaffablex", UNK);              /* one piece fails: the whole word */
    EXPECT(t, "hello,world!", HELLO, COMMA, WORLD, BANG);
    EXPECT(t, "x漢字y", X, HAN, JA, Y);         /* ideographs get spaces around them */
    EXPECT(t, "  x\t\ny\u3000z\u2028x ", X, Y, Z, X); /* Python's whitespace splits */
    EXPECT(t, "x\x01y", UNK);                   /* 3.3.1 keeps control characters */
    EXPECT(t, "Hello", UNK);                    /* cased */
    EXPECT(t, "x[SEP]y [MASK]", X, SEP, Y, MASK);
    char *a100 = xmalloc(102), *a101 = xmalloc(103);
    memset(a100, 'a', 100), a100[100] = 0;
    memset(a101, 'a', 101), a101[101] = 0;
    int want[100] = {A};
    for (int i = 1; i < 100; i++) want[i] = AA;
    expect(t, a100, want, 100);
    EXPECT(t, a101, UNK); /* over 100 characters */
    free(a100);
    free(a101);
    int *ids = NULL, n = 0, cap = 0;
    Error e;
    CHECK(tokenizer_tokenize(t, "", &ids, &n, &cap, &e) == 0 && n == 0, "empty text");
    CHECK(tokenizer_tokenize(t, " \t\n ", &ids, &n, &cap, &e) == 0 && n == 0, "blank text");
    free(ids);
    CHECK(strcmp(tokenizer_id_to_token(t, AFF), "##aff") == 0, "id_to_token");
    CHECK(tokenizer_id_to_token(t, 999) == NULL, "id_to_token out of range");
    SpecialIds s = tokenizer_special(t);
    CHECK(s.cls == CLS && s.sep == SEP && s.pad == PAD && s.unk == UNK && s.mask == MASK,
          "special ids");
}

static void test_lower(const Tokenizer *t) {
    EXPECT(t, "HELLO Café", HELLO, CAFE);  /* lowercase, NFD, accents dropped */
    EXPECT(t, "CAFE\u0301!", CAFE, BANG);  /* a combining accent */
    EXPECT(t, "[SEP]UN", SEP, UN);         /* special tokens keep their case */
}

static void test_invalid_utf8(const Tokenizer *t) {
    struct {
        const char *text, *what;
    } bad[] = {
        {"ab\xC3", "byte 2"},         {"\x80x", "byte 0"},       {"x\xC0\xAF", "byte 1"},
        {"xy\xED\xA0\x80", "byte 2"}, {"\xF5\x80\x80\x80", "byte 0"}, {"a\xE2\x28\xA1", "byte 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int *ids = NULL, n = 0, cap = 0;
        Error e = {{0}};
        int rc = tokenizer_tokenize(t, bad[i].text, &ids, &n, &cap, &e);
        CHECK(rc == -1 && strstr(e.msg, "invalid UTF-8") && strstr(e.msg, bad[i].what),
              "case %zu: rc %d, '%s'", i, rc, e.msg);
        Encoding enc;
        CHECK(tokenizer_encode(t, "x", bad[i].text, 8, &enc, &e) == -1, "encode case %zu", i);
        free(ids);
    }
}

static void test_encode(const Tokenizer *t) {
    int a[] = {X, X, X, X}, b[] = {Y, Y, Y, Y};
    Encoding enc;
    /* 4 + 4 + 3 specials > 8: three removals, from the longer, from b on a tie:
     * (4,4) -> (4,3) -> (3,3) -> (3,2) */
    CHECK(tokenizer_build_inputs(t, a, 4, b, 4, 8, &enc) == 0, "build");
    int want[8] = {CLS, X, X, X, SEP, Y, Y, SEP}, types[8] = {0, 0, 0, 0, 0, 1, 1, 1};
    CHECK(memcmp(enc.input_ids, want, sizeof want) == 0, "longest_first pair");
    CHECK(memcmp(enc.token_type_ids, types, sizeof types) == 0, "token types");
    CHECK(enc.len == 8 && enc.cap == 8, "len %d", enc.len);
    encoding_free(&enc);
    CHECK(tokenizer_build_inputs(t, a, 4, NULL, 0, 7, &enc) == 0, "single");
    int want1[7] = {CLS, X, X, X, X, SEP, PAD}, mask1[7] = {1, 1, 1, 1, 1, 1, 0};
    CHECK(memcmp(enc.input_ids, want1, sizeof want1) == 0, "single padded");
    CHECK(memcmp(enc.attention_mask, mask1, sizeof mask1) == 0 && enc.len == 6, "mask");
    encoding_free(&enc);
    CHECK(tokenizer_build_inputs(t, a, 4, b, 1, 2, &enc) == -1, "max_len below 3 specials");
    Error e = {{0}};
    CHECK(tokenizer_encode(t, "x", "y", 2, &enc, &e) == -1 && strstr(e.msg, "max_seq_len 2"),
          "'%s'", e.msg);
    CHECK(tokenizer_encode(t, "hello", "", 6, &enc, &e) == 0, "empty b: %s", e.msg);
    int want2[6] = {CLS, HELLO, SEP, SEP, PAD, PAD};
    CHECK(memcmp(enc.input_ids, want2, sizeof want2) == 0, "empty b ids");
    encoding_free(&enc);
}

static void test_xlmr(void) {
    TokenizerSpec spec = {TOK_XLMR, NULL, "tests/fixtures/tokenizer/xlmr_test.model", 0};
    Error e;
    Tokenizer *t = tokenizer_open(&spec, &e);
    CHECK(t != NULL, "%s", e.msg);
    if (!t) return;
    SpecialIds s = tokenizer_special(t);
    int size = tokenizer_vocab_size(t);
    CHECK(s.cls == 0 && s.pad == 1 && s.sep == 2 && s.unk == 3 && s.mask == size - 1,
          "fairseq ids, vocab %d mask %d", size, s.mask);
    CHECK(strcmp(tokenizer_id_to_token(t, s.mask), "<mask>") == 0, "mask string");
    Encoding enc;
    CHECK(tokenizer_encode(t, "영화", "질문", 16, &enc, &e) == 0, "%s", e.msg);
    int seps = 0, last = enc.len - 1, types = 0;
    for (int i = 0; i < enc.cap; i++) seps += enc.input_ids[i] == 2, types += enc.token_type_ids[i];
    CHECK(enc.input_ids[0] == 0 && enc.input_ids[last] == 2 && seps == 3 && types == 0,
          "<s> a </s></s> b </s>, all types 0");
    CHECK(enc.input_ids[enc.cap - 1] == 1, "pad id 1");
    encoding_free(&enc);
    int *ids = NULL, n = 0, cap = 0;
    CHECK(tokenizer_tokenize(t, "\xF0\x9F\x98\x80", &ids, &n, &cap, &e) >= 1 && ids[n - 1] == 3,
          "an unknown piece is <unk> = 3");
    free(ids);
    tokenizer_free(t);
}

static void test_bad_files(void) {
    Error e = {{0}};
    TokenizerSpec spec = {TOK_WORDPIECE, "/nonexistent/vocab.txt", NULL, 0};
    CHECK(!tokenizer_open(&spec, &e) && strstr(e.msg, "/nonexistent/vocab.txt"), "'%s'", e.msg);
    char *no_cls = write_vocab("nocls.txt", "[PAD]\n[UNK]\n[SEP]\n[MASK]\nx\n");
    spec.vocab_file = no_cls;
    CHECK(!tokenizer_open(&spec, &e) && strstr(e.msg, "[CLS]") && strstr(e.msg, no_cls), "'%s'",
          e.msg);
    char *bad = write_vocab("bad.txt", "[PAD]\n[UNK]\n[CLS]\nx\xFFy\n[SEP]\n[MASK]\n");
    spec.vocab_file = bad;
    CHECK(!tokenizer_open(&spec, &e) && strstr(e.msg, "line 4") && strstr(e.msg, "byte 1"),
          "'%s'", e.msg);
    TokenizerSpec sp = {TOK_XLMR, NULL, "/nonexistent/sp.model", 0};
    CHECK(!tokenizer_open(&sp, &e) && strstr(e.msg, "/nonexistent/sp.model"), "'%s'", e.msg);
    sp.spm_file = bad; /* not a sentencepiece model */
    CHECK(!tokenizer_open(&sp, &e) && strstr(e.msg, bad), "'%s'", e.msg);
    CHECK(!tokenizer_open_dir(dir, "hanbert", 0, &e) && strstr(e.msg, "hanbert"), "'%s'", e.msg);
    CHECK(!tokenizer_open_dir(dir, "kobert", 0, &e) && strstr(e.msg, "tokenizer_78b3253a26"),
          "'%s'", e.msg);
    /* \r\n and \r end lines as in Python's text mode; a repeated token keeps its last id */
    char *crlf = write_vocab("crlf.txt", "[PAD]\r\n[UNK]\r[CLS]\n[SEP]\nx\n[MASK]\nx");
    Tokenizer *t = open_wp(crlf, 0);
    CHECK(t != NULL, "crlf vocab");
    if (t) {
        CHECK(tokenizer_vocab_size(t) == 7 && tokenizer_special(t).cls == 2, "crlf lines");
        EXPECT(t, "x", 6);
        tokenizer_free(t);
    }
    unlink(no_cls), unlink(bad), unlink(crlf);
    free(no_cls), free(bad), free(crlf);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/koe_tok_XXXXXX");
    CHECK(mkdtemp(dir) != NULL, "mkdtemp %s", dir);
    if (test_failures) return test_exit("test_tokenizer");
    size_t len = 0;
    for (int i = 0; VOCAB[i]; i++) len += strlen(VOCAB[i]) + 1;
    char *text = xmalloc(len + 1), *p = text;
    for (int i = 0; VOCAB[i]; i++) p += sprintf(p, "%s\n", VOCAB[i]);
    char *path = write_vocab("vocab.txt", text);
    Tokenizer *cased = open_wp(path, 0), *lower = open_wp(path, 1);
    CHECK(cased && lower, "open");
    if (cased && lower) {
        test_wordpiece(cased);
        test_lower(lower);
        test_invalid_utf8(cased);
        test_encode(cased);
    }
    test_xlmr();
    test_bad_files();
    tokenizer_free(cased);
    tokenizer_free(lower);
    unlink(path);
    rmdir(dir);
    free(path);
    free(text);
    return test_exit("test_tokenizer");
}
