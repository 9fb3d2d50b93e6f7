/* The tokenizer API: vocab files, the split on special tokens that HF's tokenize() does
 * first, the KoBERT and XLM-R SentencePiece paths, and encode_plus with 'longest_first'
 * truncation, all as transformers 3.3.1's slow tokenizers do them. WordPiece proper is in
 * host/text/wordpiece.c, libsentencepiece behind host/text/spm.cc. */
#include "host/text/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "host/text/tokenizer_internal.h"

/* ---------------------------------------------------------------- strings and tables */

void strlist_push_id(StrList *l, const char *s, size_t len, int id) {
    if (l->n == l->ncap) {
        l->ncap = l->ncap ? 2 * l->ncap : 64;
        l->off = xrealloc(l->off, sizeof(int) * (size_t)l->ncap);
        l->id = xrealloc(l->id, sizeof(int) * (size_t)l->ncap);
    }
    if (l->len + len + 1 > l->cap) {
        while (l->len + len + 1 > l->cap) l->cap = l->cap ? 2 * l->cap : 1024;
        l->buf = xrealloc(l->buf, l->cap);
    }
    memcpy(l->buf + l->len, s, len);
    l->buf[l->len + len] = 0;
    l->off[l->n] = (int)l->len;
    l->id[l->n++] = id;
    l->len += len + 1;
}

void strlist_free(StrList *l) {
    free(l->buf);
    free(l->off);
    free(l->id);
    memset(l, 0, sizeof *l);
}

static uint64_t fnv1a(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

void strmap_init(StrMap *m, size_t expected) {
    m->nslots = 16;
    while (m->nslots < 2 * expected) m->nslots *= 2;
    m->keys = xcalloc(m->nslots, sizeof(char *));
    m->ids = xcalloc(m->nslots, sizeof(int));
    m->count = 0;
    m->max_len = 0;
}

/* the slot holding key, or the empty slot where it would go */
static size_t strmap_slot(const StrMap *m, const char *key, size_t len) {
    size_t i = fnv1a(key, len) & (m->nslots - 1);
    while (m->keys[i] && !(strlen(m->keys[i]) == len && memcmp(m->keys[i], key, len) == 0))
        i = (i + 1) & (m->nslots - 1);
    return i;
}

void strmap_put(StrMap *m, const char *key, size_t len, int id) {
    if (2 * (m->count + 1) > m->nslots) { /* keep the load under 1/2 */
        StrMap big;
        strmap_init(&big, 2 * m->nslots);
        for (size_t i = 0; i < m->nslots; i++)
            if (m->keys[i]) {
                size_t j = strmap_slot(&big, m->keys[i], strlen(m->keys[i]));
                big.keys[j] = m->keys[i];
                big.ids[j] = m->ids[i];
                big.count++;
            }
        free(m->keys);
        free(m->ids);
        big.max_len = m->max_len;
        *m = big;
    }
    size_t i = strmap_slot(m, key, len);
    if (!m->keys[i]) {
        m->keys[i] = xmalloc(len + 1);
        memcpy(m->keys[i], key, len);
        m->keys[i][len] = 0;
        m->count++;
        if (len > m->max_len) m->max_len = len;
    }
    m->ids[i] = id;
}

int strmap_get(const StrMap *m, const char *key, size_t len) {
    if (len > m->max_len) return -1; /* no hashing of a key that cannot be there */
    size_t i = strmap_slot(m, key, len);
    return m->keys[i] ? m->ids[i] : -1;
}

void strmap_free(StrMap *m) {
    for (size_t i = 0; i < m->nslots; i++) free(m->keys[i]);
    free(m->keys);
    free(m->ids);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- the tokenizer */

#define N_SPECIAL 5

struct Tokenizer {
    TokenizerKind kind;
    WordPiece wp;       /* WordPiece: its vocab; KoBERT: the vocab.txt map (wp.vocab, tokens) */
    Spm *spm;           /* KoBERT, XLM-R */
    SpecialIds special;
    const char *special_str[N_SPECIAL + 1]; /* cls sep pad unk mask, NULL */
    int special_id[N_SPECIAL];
    int vocab_size;
};

static const char *const BERT_SPECIAL[N_SPECIAL + 1] = {"[CLS]", "[SEP]", "[PAD]", "[UNK]",
                                                        "[MASK]", NULL};
static const char *const XLMR_SPECIAL[N_SPECIAL + 1] = {"<s>", "</s>", "<pad>", "<unk>",
                                                        "<mask>", NULL};

/* vocab.txt as Python reads it in text mode: lines end at \n, \r\n or \r; a final newline
 * does not start another line. KoBERT's loader also strips each line (py_strip). */
static int load_vocab(const char *path, int py_strip, WordPiece *wp, Error *e) {
    char *data;
    size_t len;
    if (!file_exists(path)) return errorf(e, "%s: vocabulary file not found", path);
    if (read_file(path, &data, &len, e)) return -1;
    int32_t *cps = NULL;
    char *line = NULL;
    size_t line_cap = 0;
    int cap = 0, ncap = 1024;
    wp->tokens = xmalloc(sizeof(char *) * (size_t)ncap);
    wp->n_tokens = 0;
    strmap_init(&wp->vocab, len / 8 + 16);
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && data[j] != '\n' && data[j] != '\r') j++;
        if (utf8_decode(data + i, j - i, &cps, &cap, e) < 0) {
            char what[1024];
            snprintf(what, sizeof what, "%s", e->msg);
            errorf(e, "%s: line %d: %s", path, wp->n_tokens + 1, what);
            free(cps);
            free(line);
            free(data);
            return -1; /* the caller frees what was loaded */
        }
        const char *tok = data + i;
        size_t tlen = j - i;
        if (py_strip) { /* Python's str.strip(), by code point */
            int n = utf8_decode(tok, tlen, &cps, &cap, e), a = 0;
            while (a < n && py_isspace(cps[a])) a++;
            while (n > a && py_isspace(cps[n - 1])) n--;
            tlen = utf8_encode(cps + a, n - a, &line, &line_cap);
            tok = line;
        }
        if (wp->n_tokens == ncap) wp->tokens = xrealloc(wp->tokens, sizeof(char *) * (ncap *= 2));
        wp->tokens[wp->n_tokens] = memcpy(xmalloc(tlen + 1), tok, tlen);
        wp->tokens[wp->n_tokens][tlen] = 0;
        strmap_put(&wp->vocab, tok, tlen, wp->n_tokens);
        wp->n_tokens++;
        i = j < len && data[j] == '\r' && j + 1 < len && data[j + 1] == '\n' ? j + 2 : j + 1;
    }
    free(cps);
    free(line);
    free(data);
    return 0;
}

static void free_vocab(WordPiece *wp) {
    for (int i = 0; i < wp->n_tokens; i++) free(wp->tokens[i]);
    free(wp->tokens);
    if (wp->vocab.keys) strmap_free(&wp->vocab);
}

/* the special token ids from the vocab (WordPiece, KoBERT) or fairseq's table (XLM-R) */
static int set_special_ids(Tokenizer *t, const char *path, Error *e) {
    if (t->kind == TOK_XLMR) {
        int ids[N_SPECIAL] = {0, 2, 1, 3, spm_size(t->spm) + 1};
        memcpy(t->special_id, ids, sizeof ids);
        memcpy(t->special_str, XLMR_SPECIAL, sizeof XLMR_SPECIAL);
    } else {
        memcpy(t->special_str, BERT_SPECIAL, sizeof BERT_SPECIAL);
        for (int i = 0; i < N_SPECIAL; i++) {
            t->special_id[i] = strmap_get(&t->wp.vocab, BERT_SPECIAL[i], strlen(BERT_SPECIAL[i]));
            if (t->special_id[i] < 0)
                return errorf(e, "%s: special token %s is not in the vocabulary", path,
                              BERT_SPECIAL[i]);
        }
    }
    t->special = (SpecialIds){t->special_id[0], t->special_id[1], t->special_id[2],
                              t->special_id[3], t->special_id[4]};
    t->wp.unk_id = t->special.unk;
    return 0;
}

Tokenizer *tokenizer_open(const TokenizerSpec *spec, Error *e) {
    Tokenizer *t = xcalloc(1, sizeof *t);
    t->kind = spec->kind;
    t->wp.do_lower_case = spec->kind == TOK_WORDPIECE && spec->do_lower_case;
    t->wp.never_split = BERT_SPECIAL;
    int rc = 0;
    const char *path = spec->vocab_file ? spec->vocab_file : "(no vocab file)";
    if (spec->kind != TOK_XLMR && !spec->vocab_file)
        rc = errorf(e, "tokenizer: a vocab.txt file is required for this tokenizer");
    if (!rc && spec->kind != TOK_WORDPIECE) {
        if (!spec->spm_file) rc = errorf(e, "tokenizer: a sentencepiece model is required");
        else if (!(t->spm = spm_open(spec->spm_file, e))) rc = -1;
        if (!rc) path = spec->spm_file;
    }
    if (!rc && spec->kind != TOK_XLMR) {
        rc = load_vocab(spec->vocab_file, spec->kind == TOK_KOBERT, &t->wp, e);
        path = spec->vocab_file;
    }
    if (!rc) rc = set_special_ids(t, path, e);
    if (rc) {
        tokenizer_free(t);
        return NULL;
    }
    t->vocab_size = t->kind == TOK_XLMR ? spm_size(t->spm) + 2 : t->wp.n_tokens;
    return t;
}

Tokenizer *tokenizer_open_dir(const char *dir, const char *model_type, int do_lower_case,
                              Error *e) {
    TokenizerSpec spec = {TOK_WORDPIECE, NULL, NULL, do_lower_case};
    char *vocab = strfmt("%s/vocab.txt", dir), *spm = NULL;
    if (strcmp(model_type, "kobert") == 0 || strcmp(model_type, "distilkobert") == 0) {
        spec.kind = TOK_KOBERT;
        spm = strfmt("%s/tokenizer_78b3253a26.model", dir);
    } else if (strcmp(model_type, "xlm-roberta") == 0) {
        spec.kind = TOK_XLMR;
        spm = strfmt("%s/sentencepiece.bpe.model", dir);
    } else if (strncmp(model_type, "koelectra", 9) != 0) {
        free(vocab);
        errorf(e, "%s: model_type '%s' has no supported tokenizer (koelectra-*, kobert, "
                  "distilkobert, xlm-roberta)", dir, model_type);
        return NULL;
    }
    spec.vocab_file = spec.kind == TOK_XLMR ? NULL : vocab;
    spec.spm_file = spm;
    Tokenizer *t = tokenizer_open(&spec, e);
    free(vocab);
    free(spm);
    return t;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    free_vocab(&t->wp);
    if (t->spm) spm_free(t->spm);
    free(t);
}

TokenizerKind tokenizer_kind(const Tokenizer *t) { return t->kind; }
SpecialIds tokenizer_special(const Tokenizer *t) { return t->special; }
int tokenizer_vocab_size(const Tokenizer *t) { return t->vocab_size; }
TokenizerKind tokenizer_get_kind(const Tokenizer *t) { return t->kind; }
int tokenizer_lowercases(const Tokenizer *t) { return t->wp.do_lower_case; }

const char *tokenizer_id_to_token(const Tokenizer *t, int id) {
    if (id < 0 || id >= t->vocab_size) return NULL;
    if (t->kind != TOK_XLMR) return t->wp.tokens[id];
    for (int i = 0; i < N_SPECIAL; i++)
        if (t->special_id[i] == id) return t->special_str[i];
    return spm_id_to_piece(t->spm, id - 1);
}

/* ---------------------------------------------------------------- tokenize */

typedef struct {
    int32_t *cps; /* scratch code points */
    int cap;
    char *bytes; /* scratch UTF-8 */
    size_t bcap;
    StrList sub; /* scratch pieces */
} Scratch;

static void scratch_free(Scratch *s) {
    free(s->cps);
    free(s->bytes);
    strlist_free(&s->sub);
}

/* KoBertTokenizer.preprocess_text: collapse whitespace, `` and '' to ", NFKD, drop
 * combining marks (canonical combining class > 0). Returns the UTF-8 in s->bytes. */
static size_t kobert_preprocess(const int32_t *cps, int n, Scratch *s) {
    int32_t *w = xmalloc(sizeof(int32_t) * ((size_t)n + 1));
    int m = 0;
    for (int i = 0; i < n;) { /* " ".join(text.strip().split()) */
        while (i < n && py_isspace(cps[i])) i++;
        if (i < n && m > 0) w[m++] = ' ';
        while (i < n && !py_isspace(cps[i])) w[m++] = cps[i++];
    }
    for (int pass = 0; pass < 2; pass++) { /* replace("``", '"') then replace("''", '"') */
        int32_t q = pass == 0 ? '`' : '\'';
        int k = 0;
        for (int i = 0; i < m; i++) {
            if (w[i] == q && i + 1 < m && w[i + 1] == q) {
                w[k++] = '"';
                i++;
            } else {
                w[k++] = w[i];
            }
        }
        m = k;
    }
    int d = unicode_decompose(w, m, 1, &s->cps, &s->cap), k = 0;
    for (int i = 0; i < d; i++)
        if (utf8proc_get_property(s->cps[i])->combining_class == 0) s->cps[k++] = s->cps[i];
    free(w);
    return utf8_encode(s->cps, k, &s->bytes, &s->bcap);
}

#define SPIECE_UNDERLINE "\xE2\x96\x81" /* U+2581 */

/* KoBertTokenizer._tokenize's fix for pieces like "▁1990,": re-encode the digits alone and
 * keep the comma as its own piece */
static int kobert_split_digit_comma(const Tokenizer *t, const char *piece, StrList *out,
                                    Scratch *s, Error *e) {
    size_t plen = strlen(piece);
    int n = utf8_decode(piece, plen, &s->cps, &s->cap, e);
    if (n < 0) return -1;
    if (!(n > 1 && s->cps[n - 1] == ',' && py_isdigit(s->cps[n - 2]))) {
        strlist_push(out, piece, plen);
        return 0;
    }
    int m = 0; /* piece[:-1].replace("▁", "") */
    for (int i = 0; i < n - 1; i++)
        if (s->cps[i] != 0x2581) s->cps[m++] = s->cps[i];
    size_t blen = utf8_encode(s->cps, m, &s->bytes, &s->bcap);
    s->sub.n = 0;
    s->sub.len = 0;
    if (spm_encode_pieces(t->spm, s->bytes, blen, &s->sub, e)) return -1;
    int piece_underline = strncmp(piece, SPIECE_UNDERLINE, 3) == 0;
    for (int i = 0; i < s->sub.n; i++) {
        const char *p = strlist_at(&s->sub, i);
        if (i == 0 && !piece_underline && strncmp(p, SPIECE_UNDERLINE, 3) == 0) {
            if (p[3] == 0) continue; /* the first piece was only "▁": dropped */
            p += 3;
        }
        strlist_push(out, p, strlen(p));
    }
    strlist_push(out, ",", 1);
    return 0;
}

static int kobert_segment(const Tokenizer *t, const int32_t *cps, int n, StrList *out,
                          Scratch *s, Error *e) {
    size_t len = kobert_preprocess(cps, n, s);
    StrList pieces = {0};
    int rc = spm_encode_pieces(t->spm, s->bytes, len, &pieces, e);
    for (int i = 0; !rc && i < pieces.n; i++)
        rc = kobert_split_digit_comma(t, strlist_at(&pieces, i), out, s, e);
    strlist_free(&pieces);
    return rc;
}

static int xlmr_segment(const Tokenizer *t, const int32_t *cps, int n, StrList *out,
                        Scratch *s, Error *e) {
    size_t len = utf8_encode(cps, n, &s->bytes, &s->bcap);
    return spm_encode_pieces(t->spm, s->bytes, len, out, e);
}

/* tokens of one segment that holds no special token; ids still -1 for SentencePiece */
static int tokenize_segment(const Tokenizer *t, const int32_t *cps, int n, StrList *out,
                            Scratch *s, Error *e) {
    if (n == 0) return 0;
    switch (t->kind) {
    case TOK_WORDPIECE: wordpiece_tokenize(&t->wp, cps, n, out); return 0;
    case TOK_KOBERT: return kobert_segment(t, cps, n, out, s, e);
    case TOK_XLMR: return xlmr_segment(t, cps, n, out, s, e);
    }
    return 0;
}

/* the special token starting at cps[i], or -1 */
static int special_at(const Tokenizer *t, const int32_t *cps, int n, int i) {
    for (int k = 0; k < N_SPECIAL; k++) {
        const char *s = t->special_str[k];
        int j = 0;
        while (s[j] && i + j < n && cps[i + j] == (unsigned char)s[j]) j++;
        if (!s[j]) return k;
    }
    return -1;
}

/* HF's tokenize(): an all-whitespace text gives nothing; special tokens are cut out and the
 * whitespace next to them dropped; the pieces between are tokenised one by one */
static int tokenize_all(const Tokenizer *t, const char *text, StrList *out, Scratch *s,
                        Error *e) {
    int n = utf8_decode(text, strlen(text), &s->cps, &s->cap, e);
    if (n < 0) return -1;
    int32_t *cps = s->cps; /* the segments need their own copy: s->cps is scratch below */
    s->cps = NULL;
    s->cap = 0;
    int rc = 0, seg = 0, first = out->n;
    for (int i = 0; i <= n && !rc;) {
        int k = i < n ? special_at(t, cps, n, i) : -1;
        if (i < n && k < 0) {
            i++;
            continue;
        }
        int a = seg, b = i; /* the segment [seg, i): strip next to special tokens */
        if (a > 0)
            while (a < b && py_isspace(cps[a])) a++;
        if (i < n)
            while (b > a && py_isspace(cps[b - 1])) b--;
        rc = tokenize_segment(t, cps + a, b - a, out, s, e);
        if (i == n) break;
        const char *tok = t->special_str[k];
        strlist_push_id(out, tok, strlen(tok), t->special_id[k]);
        i += (int)strlen(tok);
        seg = i;
    }
    int blank = 1;
    for (int i = 0; i < n && blank; i++) blank = py_isspace(cps[i]);
    if (blank) out->n = first; /* `if not text.strip(): return []` */
    free(cps);
    return rc;
}

/* pieces -> ids: KoBERT through vocab.txt, XLM-R through the fairseq offset */
static void assign_ids(const Tokenizer *t, StrList *l, int from) {
    for (int i = from; i < l->n; i++) {
        if (l->id[i] >= 0) continue;
        const char *p = strlist_at(l, i);
        if (t->kind == TOK_XLMR) {
            int id = spm_piece_to_id(t->spm, p);
            l->id[i] = id ? id + 1 : t->special.unk;
        } else {
            int id = strmap_get(&t->wp.vocab, p, strlen(p));
            l->id[i] = id >= 0 ? id : t->special.unk;
        }
    }
}

static int tokenize_list(const Tokenizer *t, const char *text, StrList *out, Error *e) {
    Scratch s = {0};
    int rc = tokenize_all(t, text, out, &s, e);
    scratch_free(&s);
    if (!rc) assign_ids(t, out, 0);
    return rc;
}

int tokenizer_tokenize(const Tokenizer *t, const char *text, int **ids, int *n, int *cap,
                       Error *e) {
    StrList l = {0};
    if (tokenize_list(t, text, &l, e)) {
        strlist_free(&l);
        return -1;
    }
    if (*n + l.n > *cap) {
        *cap = *n + l.n + 16;
        *ids = xrealloc(*ids, sizeof(int) * (size_t)*cap);
    }
    if (l.n) memcpy(*ids + *n, l.id, sizeof(int) * (size_t)l.n);
    *n += l.n;
    int added = l.n;
    strlist_free(&l);
    return added;
}

int tokenizer_tokenize_strings(const Tokenizer *t, const char *text, char ***tokens, int **ids,
                               int *n, int *cap, Error *e) {
    StrList l = {0};
    if (tokenize_list(t, text, &l, e)) {
        strlist_free(&l);
        return -1;
    }
    if (*n + l.n > *cap) {
        *cap = *n + l.n + 16;
        *tokens = xrealloc(*tokens, sizeof(char *) * (size_t)*cap);
        *ids = xrealloc(*ids, sizeof(int) * (size_t)*cap);
    }
    for (int i = 0; i < l.n; i++) {
        (*tokens)[*n + i] = xstrdup(strlist_at(&l, i));
        (*ids)[*n + i] = l.id[i];
    }
    *n += l.n;
    int added = l.n;
    strlist_free(&l);
    return added;
}

/* ---------------------------------------------------------------- encode */

static int num_special(const Tokenizer *t, int pair) {
    return pair ? (t->kind == TOK_XLMR ? 4 : 3) : 2;
}

int tokenizer_build_inputs(const Tokenizer *t, const int *a, int na, const int *b, int nb,
                           int max_len, Encoding *out) {
    int pair = b != NULL, ns = num_special(t, pair);
    memset(out, 0, sizeof *out);
    if (max_len < ns) return -1;
    /* 'longest_first': one token at a time off the longer; b loses it on a tie */
    while (na + nb + ns > max_len) {
        if (!pair || na > nb) na--;
        else nb--;
    }
    out->cap = max_len;
    out->input_ids = xmalloc(sizeof(int) * (size_t)max_len);
    out->token_type_ids = xcalloc((size_t)max_len, sizeof(int));
    out->attention_mask = xcalloc((size_t)max_len, sizeof(int));
    int *ids = out->input_ids, n = 0, second = t->kind == TOK_XLMR ? 0 : 1;
    ids[n++] = t->special.cls;
    for (int i = 0; i < na; i++) ids[n++] = a[i];
    ids[n++] = t->special.sep;
    if (pair) {
        if (t->kind == TOK_XLMR) ids[n++] = t->special.sep;
        int from = n;
        for (int i = 0; i < nb; i++) ids[n++] = b[i];
        ids[n++] = t->special.sep;
        for (int i = from; i < n; i++) out->token_type_ids[i] = second;
    }
    out->len = n;
    for (int i = 0; i < n; i++) out->attention_mask[i] = 1;
    for (int i = n; i < max_len; i++) ids[i] = t->special.pad;
    return 0;
}

int tokenizer_encode(const Tokenizer *t, const char *a, const char *b, int max_len,
                     Encoding *out, Error *e) {
    int *ia = NULL, *ib = NULL, na = 0, nb = 0, ca = 0, cb = 0, rc = 0;
    memset(out, 0, sizeof *out);
    if (tokenizer_tokenize(t, a, &ia, &na, &ca, e) < 0) rc = -1;
    else if (b && tokenizer_tokenize(t, b, &ib, &nb, &cb, e) < 0) rc = -1;
    else if (tokenizer_build_inputs(t, ia, na, b ? (ib ? ib : (int[1]){0}) : NULL, nb, max_len,
                                    out))
        rc = errorf(e, "max_seq_len %d cannot hold the %d special tokens", max_len,
                    num_special(t, b != NULL));
    free(ia);
    free(ib);
    return rc;
}

void encoding_free(Encoding *enc) {
    free(enc->input_ids);
    free(enc->token_type_ids);
    free(enc->attention_mask);
    memset(enc, 0, sizeof *enc);
}
