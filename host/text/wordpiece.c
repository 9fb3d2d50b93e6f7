/* HF's slow BertTokenizer (transformers 3.3.1) on one text segment free of special tokens:
 * the per-character lowercasing tokenize() applies when do_lower_case, then BasicTokenizer
 * (clean text, space around CJK ideographs, whitespace split, strip accents, split on
 * punctuation) and WordpieceTokenizer (greedy longest match first, "##" continuation,
 * words over 100 characters become [UNK]). Character classes: host/text/unicode.c. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "host/text/tokenizer_internal.h"

#define MAX_INPUT_CHARS_PER_WORD 100

/* Python's one-character str.lower(); only U+0130 lowers to two characters */
static int py_lower(int32_t cp, int32_t *out) {
    if (cp == 0x130) {
        out[0] = 'i';
        out[1] = 0x307;
        return 2;
    }
    out[0] = utf8proc_tolower(cp);
    return 1;
}

/* lowercase (when asked) and space out CJK ideographs. transformers 3.3.1's BasicTokenizer
 * does not call _clean_text (earlier and later versions do): control characters, U+FFFD
 * and zero-width characters stay inside words, and only Python's whitespace splits. */
static int lower_and_space_cjk(const int32_t *cps, int n, int lower, int32_t *out) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        int32_t ch[2] = {cps[i], 0};
        int k = lower ? py_lower(cps[i], ch) : 1;
        for (int j = 0; j < k; j++) {
            if (bert_is_cjk(ch[j])) {
                out[m++] = ' ';
                out[m++] = ch[j];
                out[m++] = ' ';
            } else {
                out[m++] = ch[j];
            }
        }
    }
    return m;
}

static int is_never_split(const WordPiece *wp, const int32_t *w, int n) {
    for (const char *const *s = wp->never_split; *s; s++) {
        int len = (int)strlen(*s), i = 0;
        if (len != n) continue;
        while (i < n && w[i] == (unsigned char)(*s)[i]) i++;
        if (i == n) return 1;
    }
    return 0;
}

typedef struct {
    char bytes[2 + 4 * MAX_INPUT_CHARS_PER_WORD]; /* "##" then the word's UTF-8 */
    int off[MAX_INPUT_CHARS_PER_WORD + 1];        /* byte offset of each code point, and end */
} PieceScratch;

/* WordpieceTokenizer on one word (no whitespace, no punctuation inside). The bytes before
 * `start` are consumed, so "##" is written over them instead of copying the candidate. */
static void wordpiece_word(const WordPiece *wp, const int32_t *w, int n, PieceScratch *ps,
                           StrList *out) {
    if (n == 0) return;
    if (n > MAX_INPUT_CHARS_PER_WORD) {
        strlist_push_id(out, "[UNK]", 5, wp->unk_id);
        return;
    }
    char *word = ps->bytes + 2;
    for (int i = 0, b = 0; i <= n; i++) {
        ps->off[i] = b;
        if (i < n) b += utf8_put(word + b, w[i]);
    }
    int first = out->n;
    for (int start = 0; start < n;) {
        int end = n, id = -1;
        const char *key = NULL;
        size_t len = 0;
        if (start > 0) memcpy(word + ps->off[start] - 2, "##", 2);
        for (; end > start; end--) {
            key = start > 0 ? word + ps->off[start] - 2 : word;
            len = (size_t)(ps->off[end] - ps->off[start]) + (start > 0 ? 2 : 0);
            if ((id = strmap_get(&wp->vocab, key, len)) >= 0) break;
        }
        if (id < 0) { /* no piece fits: the whole word is unknown */
            out->n = first;
            strlist_push_id(out, "[UNK]", 5, wp->unk_id);
            return;
        }
        strlist_push_id(out, key, len, id);
        start = end;
    }
}

/* strip accents (NFD, drop Mn) when lowercasing, then split off every punctuation mark */
static void basic_word(const WordPiece *wp, const int32_t *w, int n, int32_t **nfd,
                       int *nfd_cap, PieceScratch *ps, StrList *out) {
    if (is_never_split(wp, w, n)) {
        wordpiece_word(wp, w, n, ps, out);
        return;
    }
    if (wp->do_lower_case) {
        int m = unicode_decompose(w, n, 0, nfd, nfd_cap), k = 0;
        for (int i = 0; i < m; i++)
            if (utf8proc_category((*nfd)[i]) != UTF8PROC_CATEGORY_MN) (*nfd)[k++] = (*nfd)[i];
        w = *nfd;
        n = k;
    }
    int start = 0;
    for (int i = 0; i < n; i++) {
        if (!bert_is_punctuation(w[i])) continue;
        wordpiece_word(wp, w + start, i - start, ps, out);
        wordpiece_word(wp, w + i, 1, ps, out);
        start = i + 1;
    }
    wordpiece_word(wp, w + start, n - start, ps, out);
}

void wordpiece_tokenize(const WordPiece *wp, const int32_t *cps, int n, StrList *out) {
    int32_t *text = xmalloc(sizeof(int32_t) * (3 * (size_t)n + 1));
    int m = lower_and_space_cjk(cps, n, wp->do_lower_case, text);
    int nfd_cap = 0;
    int32_t *nfd = NULL;
    PieceScratch ps;
    for (int i = 0; i < m;) {
        while (i < m && py_isspace(text[i])) i++;
        int j = i;
        while (j < m && !py_isspace(text[j])) j++;
        if (j > i) basic_word(wp, text + i, j - i, &nfd, &nfd_cap, &ps, out);
        i = j;
    }
    free(text);
    free(nfd);
}
