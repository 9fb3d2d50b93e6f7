/* KorQuAD features: SquadExample's word split, squad_convert_example_to_features' windows and
 * maps, the training targets (see squad.h). */
#include "host/tasks/squad.h"

#include <stdlib.h>
#include <string.h>

#include "host/text/unicode.h"

/* a growable int array */
typedef struct {
    int *v, n, cap;
} Ints;

static void ints_push(Ints *a, int x) {
    if (a->n == a->cap) a->v = xrealloc(a->v, (size_t)(a->cap = 2 * a->cap + 16) * sizeof(int));
    a->v[a->n++] = x;
}

/* HF squad.py's _is_whitespace: the only characters that separate context words */
static int squad_space(int32_t c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0x202F;
}

/* Python's list[i] for -n <= i < n; -1 (and a caller's error) outside */
static int py_index(int i, int n) {
    if (i < 0) i += n;
    return i >= 0 && i < n ? i : -1;
}

/* Python's slice bounds [a:b] over n items, as a half-open range lo..hi (maybe empty) */
static void py_slice(int a, int b, int n, int *lo, int *hi) {
    if (a < 0) a = a + n < 0 ? 0 : a + n;
    if (b < 0) b = b + n < 0 ? 0 : b + n;
    *lo = a > n ? n : a;
    *hi = b > n ? n : b;
}

/* ------------------------------------------------------------------ the context */

typedef struct {
    int32_t *cps; /* the context's code points */
    int ncp, cps_cap;
    int *cp_word; /* char_to_word_offset */
    Ints byte_of; /* byte offset of each code point, and the end */
} Chars;

/* the words (byte ranges) and char_to_word_offset of a context */
static void split_words(const char *context, Chars *c, QaDoc *d) {
    Error e; /* the reader has validated the UTF-8 */
    size_t len = strlen(context);
    c->ncp = utf8_decode(context, len, &c->cps, &c->cps_cap, &e);
    c->cp_word = xrealloc(c->cp_word, (size_t)(c->ncp + 1) * sizeof(int));
    c->byte_of.n = 0;
    for (int i = 0, b = 0; i <= c->ncp; i++) {
        ints_push(&c->byte_of, b);
        if (i < c->ncp) b += utf8_len(c->cps[i]);
    }
    Ints starts = {0}, ends = {0};
    int prev_space = 1;
    for (int i = 0; i < c->ncp; i++) {
        if (squad_space(c->cps[i])) {
            prev_space = 1;
        } else {
            if (prev_space) {
                ints_push(&starts, c->byte_of.v[i]);
                ints_push(&ends, 0);
            }
            ends.v[ends.n - 1] = c->byte_of.v[i + 1];
            prev_space = 0;
        }
        c->cp_word[i] = starts.n - 1;
    }
    d->n_words = starts.n;
    d->word_start = starts.v;
    d->word_end = ends.v;
}

static char *word_text(const char *context, const QaDoc *d, int w) {
    int len = d->word_end[w] - d->word_start[w];
    char *s = xmalloc((size_t)len + 1);
    memcpy(s, context + d->word_start[w], (size_t)len);
    s[len] = 0;
    return s;
}

/* every word tokenised on its own: all_doc_tokens, tok_to_orig_index, orig_to_tok_index */
static int tokenize_doc(const Tokenizer *t, const char *context, QaDoc *d, Error *e) {
    int cap = 0;
    d->n_sub = 0;
    d->word_to_sub = xmalloc((size_t)(d->n_words + 1) * sizeof(int));
    Ints to_word = {0};
    for (int w = 0; w < d->n_words; w++) {
        d->word_to_sub[w] = d->n_sub;
        char *word = word_text(context, d, w);
        int got = tokenizer_tokenize(t, word, &d->sub_ids, &d->n_sub, &cap, e);
        free(word);
        if (got < 0) return -1;
        for (int k = 0; k < got; k++) ints_push(&to_word, w);
    }
    d->sub_to_word = to_word.v;
    return 0;
}

static void doc_free(QaDoc *d) {
    free(d->word_start);
    free(d->word_end);
    free(d->sub_ids);
    free(d->sub_to_word);
    free(d->word_to_sub);
}

/* ------------------------------------------------------------------ training targets */

/* " ".join(Python str.split(s)) as a fresh string */
static char *fold_spaces(const char *s) {
    int32_t *cps = NULL;
    int cap = 0;
    Error e;
    int n = utf8_decode(s, strlen(s), &cps, &cap, &e);
    char *out = xmalloc(4 * (size_t)n + 1);
    size_t len = 0;
    for (int i = 0; i < n;) {
        while (i < n && py_isspace(cps[i])) i++;
        if (i == n) break;
        if (len) out[len++] = ' ';
        while (i < n && !py_isspace(cps[i])) len += (size_t)utf8_put(out + len, cps[i++]);
    }
    out[len] = 0;
    free(cps);
    return out;
}

/* " ".join(doc_tokens[a:b]) */
static char *join_words(const char *context, const QaDoc *d, int a, int b) {
    int lo, hi;
    py_slice(a, b, d->n_words, &lo, &hi);
    size_t len = 0;
    for (int w = lo; w < hi; w++) len += (size_t)(d->word_end[w] - d->word_start[w]) + 1;
    char *s = xmalloc(len + 1);
    len = 0;
    for (int w = lo; w < hi; w++) {
        if (w > lo) s[len++] = ' ';
        memcpy(s + len, context + d->word_start[w], (size_t)(d->word_end[w] - d->word_start[w]));
        len += (size_t)(d->word_end[w] - d->word_start[w]);
    }
    s[len] = 0;
    return s;
}

static void free_strings(char **s, int n) {
    for (int i = 0; i < n; i++) free(s[i]);
    free(s);
}

/* the token strings of sub-tokens lo..hi of the document (re-tokenising their words, as
 * _improve_answer_span compares strings, not ids); *first is the sub-token of strs[0] */
static int doc_token_strings(const Tokenizer *t, const char *context, const QaDoc *d, int lo,
                             int hi, char ***strs, int *n, int *first, Error *e) {
    int w0 = d->sub_to_word[lo], w1 = d->sub_to_word[hi], cap = 0, *ids = NULL;
    *strs = NULL;
    *n = 0;
    *first = d->word_to_sub[w0];
    for (int w = w0; w <= w1; w++) {
        char *word = word_text(context, d, w);
        int got = tokenizer_tokenize_strings(t, word, strs, &ids, n, &cap, e);
        free(word);
        if (got < 0) {
            free(ids);
            return -1;
        }
    }
    free(ids);
    return 0;
}

static int same_tokens(char *const *a, char *const *b, int n) {
    for (int k = 0; k < n; k++)
        if (strcmp(a[k], b[k])) return 0;
    return 1;
}

/* _improve_answer_span: the first (start up, end down) sub-token span whose tokens equal the
 * answer's own tokens; (start, end) unchanged when none does */
static int improve_span(const Tokenizer *t, const char *context, const QaDoc *d,
                        const char *answer, int *start, int *end, Error *e) {
    if (*start > *end) return 0;
    char **ans = NULL, **doc = NULL;
    int *ids = NULL, na = 0, cap = 0, nd = 0, first = 0, rc = 0, found = 0;
    if (tokenizer_tokenize_strings(t, answer, &ans, &ids, &na, &cap, e) < 0 ||
        doc_token_strings(t, context, d, *start, *end, &doc, &nd, &first, e) < 0)
        rc = -1;
    for (int s = *start; rc == 0 && !found && s <= *end; s++) {
        int en = s + na - 1; /* only a span of na tokens can match */
        if (na > 0 && en <= *end && same_tokens(doc + s - first, ans, na)) {
            *start = s;
            *end = en;
            found = 1;
        }
    }
    free_strings(ans, na);
    free_strings(doc, nd);
    free(ids);
    return rc;
}

/* SquadExample's answer words and the feature code's sub-token span of the first answer.
 * Returns 1 when the question is kept, 0 when HF skips it, -1 on an error. */
static int answer_span(const Tokenizer *t, const char *file, const QaExample *ex,
                       const Chars *c, const QaDoc *d, int *tok_start, int *tok_end, Error *e) {
    if (ex->n_answers < 1)
        return errorf(e, "%s: question '%s': training needs an answer", file, ex->id);
    const char *answer = ex->answer_texts[0];
    int start_char = ex->answer_starts[0], alen = 0;
    for (const char *p = answer; *p; p++) alen += (*p & 0xC0) != 0x80;
    if (start_char >= c->ncp)
        return errorf(e, "%s: question '%s': answer_start %d is past its context (%d "
                      "characters)", file, ex->id, start_char, c->ncp);
    int end_char = start_char + alen - 1 < c->ncp - 1 ? start_char + alen - 1 : c->ncp - 1;
    int sw = c->cp_word[start_char], ew = c->cp_word[py_index(end_char, c->ncp)];

    char *actual = join_words(ex->context, d, sw, ew + 1), *cleaned = fold_spaces(answer);
    int found = strstr(actual, cleaned) != NULL;
    free(actual);
    free(cleaned);
    if (!found) return 0;

    int si = py_index(sw, d->n_words);
    if (si < 0)
        return errorf(e, "%s: question '%s': answer_start %d is in no word", file, ex->id,
                      start_char);
    *tok_start = d->word_to_sub[si];
    *tok_end = ew < d->n_words - 1 ? d->word_to_sub[ew + 1] - 1 : d->n_sub - 1;
    return improve_span(t, ex->context, d, answer, tok_start, tok_end, e) ? -1 : 1;
}

/* ------------------------------------------------------------------ windows */

/* what building the features of a set needs besides the set */
typedef struct {
    const Tokenizer *t;
    const QaFeatureArgs *a;
    SpecialIds sp;
    int single, pair; /* special tokens around one sequence (sequence_added_tokens), a pair */
    Chars chars;      /* scratch for the current context */
    int cap;          /* features allocated */
} Builder;

static void special_counts(Builder *b) {
    Encoding enc;
    int dummy = 0;
    tokenizer_build_inputs(b->t, &dummy, 0, NULL, 0, 8, &enc);
    b->single = enc.len;
    encoding_free(&enc);
    tokenizer_build_inputs(b->t, &dummy, 0, &dummy, 0, 8, &enc);
    b->pair = enc.len;
    encoding_free(&enc);
}

static QaFeature *push_feature(QaFeatures *f, int *cap) {
    if (f->n == *cap) {
        *cap = 2 * *cap + 64;
        size_t cells = (size_t)*cap * f->seq_len;
        f->items = xrealloc(f->items, (size_t)*cap * sizeof *f->items);
        f->input_ids = xrealloc(f->input_ids, cells * sizeof(int));
        f->token_type_ids = xrealloc(f->token_type_ids, cells * sizeof(int));
        f->lengths = xrealloc(f->lengths, (size_t)*cap * sizeof(int));
    }
    QaFeature *ft = &f->items[f->n++];
    memset(ft, 0, sizeof *ft);
    return ft;
}

/* _new_check_is_max_context for every document token of windows first..f->n */
static void mark_max_context(QaFeatures *f, int first) {
    for (int k = first; k < f->n; k++) {
        QaFeature *ft = &f->items[k];
        ft->max_context = xmalloc((size_t)ft->paragraph_len + 1);
        for (int j = 0; j < ft->paragraph_len; j++) {
            int pos = ft->doc_start + j, best = -1;
            double best_score = 0;
            for (int s = first; s < f->n; s++) {
                const QaFeature *o = &f->items[s];
                int end = o->doc_start + o->paragraph_len - 1;
                if (pos < o->doc_start || pos > end) continue;
                int left = pos - o->doc_start, right = end - pos;
                double score = (left < right ? left : right) + 0.01 * o->paragraph_len;
                if (best < 0 || score > best_score) {
                    best_score = score;
                    best = s;
                }
            }
            ft->max_context[j] = best == k;
        }
    }
}

/* input ids, types and lengths of the window just pushed */
static void encode_window(Builder *b, QaFeatures *f, QaFeature *ft, const int *q, int nq,
                          const QaDoc *d) {
    int T = f->seq_len, row = f->n - 1;
    Encoding enc;
    tokenizer_build_inputs(b->t, q, nq, d->sub_ids + ft->doc_start, ft->paragraph_len, T, &enc);
    memcpy(f->input_ids + (size_t)row * T, enc.input_ids, (size_t)T * sizeof(int));
    memcpy(f->token_type_ids + (size_t)row * T, enc.token_type_ids, (size_t)T * sizeof(int));
    f->lengths[row] = enc.len;
    while (ft->n_tokens < T && enc.input_ids[ft->n_tokens] != b->sp.pad) ft->n_tokens++;
    encoding_free(&enc);
}

/* the windows of one question (HF's span loop: room document tokens from every doc_stride-th
 * one, until a window holds the rest); tok_start < 0 in evaluation */
static void make_windows(Builder *b, const QaDoc *d, const int *q, int nq, int example,
                         int tok_start, int tok_end, QaFeatures *f) {
    int room = b->a->max_seq_length - nq - b->pair, first = f->n;
    for (int k = 0; k * b->a->doc_stride < d->n_sub; k++) {
        int start = k * b->a->doc_stride, rest = d->n_sub - start;
        QaFeature *ft = push_feature(f, &b->cap);
        ft->example = example;
        ft->doc_start = start;
        ft->paragraph_len = rest < room ? rest : room;
        ft->doc_offset = nq + b->single;
        encode_window(b, f, ft, q, nq, d);
        if (tok_start >= 0) {
            /* outside the window the target is the [CLS] position, 0 for every tokenizer */
            int inside = tok_start >= start && tok_end <= start + ft->paragraph_len - 1;
            ft->start_position = inside ? tok_start - start + ft->doc_offset : 0;
            ft->end_position = inside ? tok_end - start + ft->doc_offset : 0;
        }
        if (rest <= room) break; /* no overflowing tokens */
    }
    mark_max_context(f, first);
}

/* ------------------------------------------------------------------ the set */

/* the file the questions came from, for messages */
static const char *qa_source(const QaExampleSet *set) {
    return set->source ? set->source : "korquad";
}

static int question_features(Builder *b, const QaExampleSet *set, int i, QaFeatures *f,
                             Error *e) {
    const QaExample *ex = &set->items[i];
    if (i == 0 || ex->context != set->items[i - 1].context) {
        QaDoc *d = &f->docs[f->n_docs++];
        split_words(ex->context, &b->chars, d);
        if (tokenize_doc(b->t, ex->context, d, e)) return -1;
    }
    f->example_doc[i] = f->n_docs - 1;
    const QaDoc *d = &f->docs[f->n_docs - 1];
    int tok_start = -1, tok_end = -1;
    if (b->a->is_training) {
        int kept = answer_span(b->t, qa_source(set), ex, &b->chars, d, &tok_start, &tok_end, e);
        if (kept < 0) return -1;
        if (!kept) {
            f->n_skipped++;
            return 0;
        }
    }
    int *q = NULL, nq = 0, qcap = 0;
    if (tokenizer_tokenize(b->t, ex->question, &q, &nq, &qcap, e) < 0) return -1;
    if (nq > b->a->max_query_length) nq = b->a->max_query_length;
    if (b->a->max_seq_length - nq - b->pair <= 0) {
        free(q);
        return errorf(e, "%s: question '%s': max_seq_length %d leaves no room for the document "
                      "after %d query tokens", qa_source(set), ex->id, b->a->max_seq_length, nq);
    }
    make_windows(b, d, q ? q : (int[1]){0}, nq, i, tok_start, tok_end, f);
    free(q);
    return 0;
}

int qa_make_features(const Tokenizer *t, const QaExampleSet *set, const QaFeatureArgs *a,
                     QaFeatures *out, Error *e) {
    memset(out, 0, sizeof *out);
    if (a->doc_stride < 1 || a->max_query_length < 0)
        return errorf(e, "korquad features: doc_stride %d must be >= 1 and max_query_length "
                      "%d >= 0", a->doc_stride, a->max_query_length);
    out->seq_len = a->max_seq_length;
    out->n_examples = set->n;
    out->docs = xcalloc((size_t)set->n + 1, sizeof *out->docs);
    out->example_doc = xmalloc(((size_t)set->n + 1) * sizeof(int));
    Builder b = {.t = t, .a = a, .sp = tokenizer_special(t)};
    special_counts(&b);
    int rc = 0;
    for (int i = 0; i < set->n && rc == 0; i++) rc = question_features(&b, set, i, out, e);
    free(b.chars.cps);
    free(b.chars.cp_word);
    free(b.chars.byte_of.v);
    if (rc) qa_features_free(out);
    return rc;
}

void qa_features_free(QaFeatures *f) {
    for (int i = 0; i < f->n; i++) free(f->items[i].max_context);
    for (int i = 0; i < f->n_docs; i++) doc_free(&f->docs[i]);
    free(f->items);
    free(f->input_ids);
    free(f->token_type_ids);
    free(f->lengths);
    free(f->docs);
    free(f->example_doc);
    memset(f, 0, sizeof *f);
}
