/* libFuzzer target: random bytes as text into tokenizer_tokenize, tokenizer_tokenize_strings
 * and tokenizer_encode (single and pair). Input: byte 0 picks the tokenizer (WordPiece cased,
 * WordPiece lowercasing, XLM-R's test sentencepiece model when present), byte 1 the
 * max_len (0..69), the rest is text a, then after a NUL byte (if any) text b. */
#include "fuzz/fuzz_common.h"

#define XLMR_TEST_MODEL "tests/fixtures/tokenizer/xlmr_test.model"

static Tokenizer *toks[3];
static int is_xlmr[3];
static int n_toks;

static void open_tokenizers(void) {
    toks[n_toks++] = fuzz_open_wordpiece(0);
    toks[n_toks++] = fuzz_open_wordpiece(1);
    if (file_exists(XLMR_TEST_MODEL)) {
        Error e;
        TokenizerSpec spec = {TOK_XLMR, NULL, XLMR_TEST_MODEL, 0};
        is_xlmr[n_toks] = 1;
        if (!(toks[n_toks++] = tokenizer_open(&spec, &e))) fprintf(stderr, "%s\n", e.msg), abort();
    }
}

/* tokenize and tokenize_strings agree; returns the count or -1 */
static int check_tokenize(const Tokenizer *t, const char *text) {
    int *ids = NULL, n = 0, cap = 0, *ids2 = NULL, n2 = 0, cap2 = 0, vocab = tokenizer_vocab_size(t);
    char **strs = NULL;
    Error e;
    int rc = tokenizer_tokenize(t, text, &ids, &n, &cap, &e);
    int rc2 = tokenizer_tokenize_strings(t, text, &strs, &ids2, &n2, &cap2, &e);
    FUZZ_ASSERT((rc < 0) == (rc2 < 0));
    FUZZ_ASSERT(rc < 0 || (rc == n && rc2 == n2 && n == n2));
    for (int i = 0; rc >= 0 && i < n; i++) {
        FUZZ_ASSERT(ids[i] == ids2[i] && ids[i] >= 0 && ids[i] < vocab);
        FUZZ_ASSERT(strs[i] != NULL && tokenizer_id_to_token(t, ids[i]) != NULL);
    }
    for (int i = 0; i < n2; i++) free(strs[i]);
    free(strs);
    free(ids);
    free(ids2);
    return rc;
}

static void check_encode(const Tokenizer *t, int xlmr, const char *a, const char *b,
                         int max_len, int na, int nb) {
    Encoding enc;
    Error e;
    SpecialIds sp = tokenizer_special(t);
    int rc = tokenizer_encode(t, a, b, max_len, &enc, &e);
    int fits = max_len >= (b ? (xlmr ? 4 : 3) : 2);
    FUZZ_ASSERT((rc == 0) == (na >= 0 && nb >= 0 && fits));
    if (rc) return;
    FUZZ_ASSERT(enc.cap == max_len && enc.len >= 2 && enc.len <= max_len);
    FUZZ_ASSERT(enc.len <= na + nb + 4);
    FUZZ_ASSERT(enc.input_ids[0] == sp.cls && enc.input_ids[enc.len - 1] == sp.sep);
    for (int i = 0; i < max_len; i++) {
        FUZZ_ASSERT(enc.input_ids[i] >= 0 && enc.input_ids[i] < tokenizer_vocab_size(t));
        FUZZ_ASSERT(enc.attention_mask[i] == (i < enc.len));
        FUZZ_ASSERT(i < enc.len || enc.input_ids[i] == sp.pad);
        FUZZ_ASSERT(enc.token_type_ids[i] == 0 || enc.token_type_ids[i] == 1);
    }
    encoding_free(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!n_toks) open_tokenizers();
    if (size < 2) return 0;
    int k = data[0] % n_toks;
    const Tokenizer *t = toks[k];
    int max_len = data[1] % 70;
    char *text = fuzz_cstr(data + 2, size - 2);
    size_t la = strlen(text);
    const char *a = text, *b = la < size - 2 ? text + la + 1 : NULL;
    int na = check_tokenize(t, a), nb = b ? check_tokenize(t, b) : 0;
    check_encode(t, is_xlmr[k], a, b, max_len, na, nb);
    free(text);
    return 0;
}
