/* KorQuAD answer post-processing: HF 3.3.1 compute_predictions_logits for SQuAD v1 and its
 * get_final_text (see squad.h). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "host/tasks/squad.h"
#include "host/text/unicode.h"

/* ------------------------------------------------------------------ code point strings */

typedef struct {
    int32_t *v;
    int n, cap;
} Cps;

static void cps_push(Cps *s, int32_t c) {
    if (s->n == s->cap) s->v = xrealloc(s->v, (size_t)(s->cap = 2 * s->cap + 16) * sizeof(int32_t));
    s->v[s->n++] = c;
}

/* text is valid UTF-8 (it comes from the reader or the vocabulary) */
static Cps decode(const char *text) {
    Cps s = {0};
    Error e;
    s.n = utf8_decode(text, strlen(text), &s.v, &s.cap, &e);
    if (s.n < 0) s.n = 0;
    return s;
}

static char *encode(const int32_t *v, int n) {
    char *out = NULL;
    size_t cap = 0;
    utf8_encode(v, n, &out, &cap);
    return out;
}

/* ------------------------------------------------------------------ BasicTokenizer */

/* Python's str.lower() then NFD without Mn, for one word */
static void lower_strip_accents(Cps *w) {
    Cps low = {0};
    for (int i = 0; i < w->n; i++) {
        if (w->v[i] == 0x130) { /* the one full lowercase mapping to two characters */
            cps_push(&low, 'i');
            cps_push(&low, 0x307);
        } else {
            cps_push(&low, utf8proc_tolower(w->v[i]));
        }
    }
    int32_t *nfd = NULL;
    int cap = 0, m = unicode_decompose(low.v, low.n, 0, &nfd, &cap);
    w->n = 0;
    for (int i = 0; i < m; i++)
        if (utf8proc_category(nfd[i]) != UTF8PROC_CATEGORY_MN) cps_push(w, nfd[i]);
    free(nfd);
    free(low.v);
}

/* " ".join(BasicTokenizer(do_lower_case).tokenize(text)) of transformers 3.3.1 (which does
 * not clean the text): CJK ideographs spaced out, split on Python whitespace, each word
 * lowercased and stripped of accents when asked, then split around punctuation */
static Cps basic_tokenize(const Cps *text, int do_lower_case) {
    Cps out = {0}, word = {0};
    for (int i = 0; i < text->n;) {
        while (i < text->n && py_isspace(text->v[i])) i++;
        word.n = 0;
        while (i < text->n && !py_isspace(text->v[i]) && !(word.n && bert_is_cjk(text->v[i])) &&
               !(word.n && bert_is_cjk(word.v[word.n - 1])))
            cps_push(&word, text->v[i++]);
        if (do_lower_case) lower_strip_accents(&word);
        for (int k = 0; k < word.n; k++) {
            int alone = bert_is_punctuation(word.v[k]);
            int split = k == 0 || alone || bert_is_punctuation(word.v[k - 1]);
            if (split && out.n) cps_push(&out, ' ');
            cps_push(&out, word.v[k]);
        }
    }
    free(word.v);
    return out;
}

/* ------------------------------------------------------------------ get_final_text */

/* the positions of text's non-' ' characters (_strip_spaces' ns_to_s_map) */
static int strip_spaces(const Cps *s, int *ns_to_s) {
    int m = 0;
    for (int i = 0; i < s->n; i++)
        if (s->v[i] != ' ') ns_to_s[m++] = i;
    return m;
}

static int find(const Cps *hay, const Cps *needle) {
    for (int i = 0; i + needle->n <= hay->n; i++)
        if (!memcmp(hay->v + i, needle->v, (size_t)needle->n * sizeof(int32_t))) return i;
    return -1;
}

/* orig position of tok position p through the non-space alignment, or -1 */
static int project(const Cps *tok, int p, const int *orig_ns_to_s) {
    if (p < 0 || p >= tok->n || tok->v[p] == ' ') return -1;
    int ns = 0;
    for (int i = 0; i < p; i++) ns += tok->v[i] != ' ';
    return orig_ns_to_s[ns];
}

char *qa_final_text(const char *pred_text, const char *orig_text, int do_lower_case) {
    Cps pred = decode(pred_text), orig = decode(orig_text);
    Cps tok = basic_tokenize(&orig, do_lower_case);
    int *orig_map = xmalloc(((size_t)orig.n + 1) * sizeof(int));
    int *tok_map = xmalloc(((size_t)tok.n + 1) * sizeof(int));
    char *out = NULL;
    int start = find(&tok, &pred), end = start + pred.n - 1;
    if (start >= 0 && strip_spaces(&orig, orig_map) == strip_spaces(&tok, tok_map)) {
        int a = project(&tok, start, orig_map), b = project(&tok, end, orig_map);
        if (a >= 0 && b >= 0) out = encode(orig.v + a, b >= a ? b - a + 1 : 0);
    }
    free(orig_map);
    free(tok_map);
    free(pred.v);
    free(orig.v);
    free(tok.v);
    return out ? out : xstrdup(orig_text);
}

/* ------------------------------------------------------------------ predictions */

/* _get_best_indexes: the k largest (stable: ties keep the lower position) */
static int best_indexes(const float *x, int n, int k, int *out, unsigned char *taken) {
    memset(taken, 0, (size_t)n);
    int m = 0;
    for (; m < k && m < n; m++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!taken[i] && (best < 0 || x[i] > x[best])) best = i;
        taken[best] = 1;
        out[m] = best;
    }
    return m;
}

/* convert_tokens_to_string of the feature's tokens lo..hi, stripped and whitespace-folded:
 * WordPiece " ".join(tokens).replace(" ##", ""), SentencePiece "".join(tokens) with "▁" as
 * a space */
static Cps tokens_text(const Tokenizer *t, TokenizerKind kind, const int *ids, int lo, int hi) {
    Cps joined = {0}, out = {0};
    for (int i = lo; i <= hi; i++) {
        Cps piece = decode(tokenizer_id_to_token(t, ids[i]));
        if (kind == TOK_WORDPIECE && i > lo) cps_push(&joined, ' ');
        for (int k = 0; k < piece.n; k++)
            cps_push(&joined, kind != TOK_WORDPIECE && piece.v[k] == 0x2581 ? ' ' : piece.v[k]);
        free(piece.v);
    }
    for (int i = 0; i < joined.n; i++) { /* str.replace(" ##", ""): left to right */
        if (kind == TOK_WORDPIECE && i + 2 < joined.n && joined.v[i] == ' ' &&
            joined.v[i + 1] == '#' && joined.v[i + 2] == '#') {
            i += 2;
            continue;
        }
        cps_push(&out, joined.v[i]);
    }
    joined.n = 0; /* " ".join(text.split()) */
    for (int i = 0; i < out.n;) {
        while (i < out.n && py_isspace(out.v[i])) i++;
        if (i < out.n && joined.n) cps_push(&joined, ' ');
        while (i < out.n && !py_isspace(out.v[i])) cps_push(&joined, out.v[i++]);
    }
    free(out.v);
    return joined;
}

/* a valid (start, end) pair of one window: HF's _PrelimPrediction */
typedef struct {
    int feature, start, end;
    double score; /* start + end logit */
    int order;    /* when it was found: ties keep this order (Python's sort is stable) */
} Prelim;

typedef struct {
    Prelim *v;
    int n, cap;
} Prelims;

/* the valid pairs among window k's n_best_size best starts and ends, in HF's loop order */
static void feature_prelims(const QaFeatures *f, int k, const float *sl, const float *el,
                            const QaPostArgs *a, int *starts, int *ends, unsigned char *taken,
                            Prelims *out) {
    const QaFeature *ft = &f->items[k];
    int ns = best_indexes(sl, f->seq_len, a->n_best_size, starts, taken);
    int ne = best_indexes(el, f->seq_len, a->n_best_size, ends, taken);
    for (int i = 0; i < ns; i++) {
        int s = starts[i], j = s - ft->doc_offset;
        if (s >= ft->n_tokens || j < 0 || j >= ft->paragraph_len || !ft->max_context[j])
            continue;
        for (int m = 0; m < ne; m++) {
            int en = ends[m], je = en - ft->doc_offset;
            if (en >= ft->n_tokens || je < 0 || je >= ft->paragraph_len) continue;
            if (en < s || en - s + 1 > a->max_answer_length) continue;
            if (out->n == out->cap)
                out->v = xrealloc(out->v, (size_t)(out->cap = 2 * out->cap + 64) * sizeof *out->v);
            out->v[out->n] = (Prelim){k, s, en, (double)sl[s] + (double)el[en], out->n};
            out->n++;
        }
    }
}

/* best score first; equal scores in the order found */
static int cmp_prelim(const void *x, const void *y) {
    const Prelim *a = x, *b = y;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->order > b->order) - (a->order < b->order);
}

static char *answer_text(const Tokenizer *t, const QaExampleSet *set, const QaFeatures *f,
                         const Prelim *b, const QaPostArgs *a) {
    const QaFeature *ft = &f->items[b->feature];
    const QaExample *ex = &set->items[ft->example];
    const QaDoc *d = &f->docs[f->example_doc[ft->example]];
    Cps tok = tokens_text(t, a->kind, f->input_ids + (size_t)b->feature * f->seq_len,
                          b->start, b->end);
    int w0 = d->sub_to_word[ft->doc_start + b->start - ft->doc_offset];
    int w1 = d->sub_to_word[ft->doc_start + b->end - ft->doc_offset];
    size_t len = 0;
    for (int w = w0; w <= w1; w++) len += (size_t)(d->word_end[w] - d->word_start[w]) + 1;
    char *orig = xmalloc(len + 1), *pred = encode(tok.v, tok.n);
    len = 0;
    for (int w = w0; w <= w1; w++) {
        if (w > w0) orig[len++] = ' ';
        memcpy(orig + len, ex->context + d->word_start[w],
               (size_t)(d->word_end[w] - d->word_start[w]));
        len += (size_t)(d->word_end[w] - d->word_start[w]);
    }
    orig[len] = 0;
    char *text = qa_final_text(pred, orig, a->do_lower_case);
    free(tok.v);
    free(pred);
    free(orig);
    return text;
}

/* _compute_softmax of the entries' start + end logits */
static void softmax_probabilities(QaAnswer *items, int n) {
    double max = 0, total = 0;
    for (int i = 0; i < n; i++) {
        double score = (double)items[i].start_logit + (double)items[i].end_logit;
        if (i == 0 || score > max) max = score;
    }
    for (int i = 0; i < n; i++) {
        items[i].probability = exp((double)items[i].start_logit + items[i].end_logit - max);
        total += items[i].probability;
    }
    for (int i = 0; i < n; i++) items[i].probability /= total;
}

/* the question's n best distinct final texts, walking its pairs from the best */
static QaNbest question_nbest(const Tokenizer *t, const QaExampleSet *set, const QaFeatures *f,
                              const float *sl, const float *el, Prelims *p,
                              const QaPostArgs *a) {
    QaNbest nb = {xmalloc(((size_t)a->n_best_size + 1) * sizeof *nb.items), 0};
    if (p->n > 0) qsort(p->v, (size_t)p->n, sizeof *p->v, cmp_prelim);
    for (int i = 0; i < p->n && nb.n < a->n_best_size; i++) {
        const Prelim *b = &p->v[i];
        char *text = answer_text(t, set, f, b, a);
        int seen = 0;
        for (int k = 0; k < nb.n && !seen; k++) seen = !strcmp(nb.items[k].text, text);
        if (seen) {
            free(text);
            continue;
        }
        size_t off = (size_t)b->feature * f->seq_len;
        nb.items[nb.n++] = (QaAnswer){text, 0, sl[off + b->start], el[off + b->end]};
    }
    if (nb.n == 0) nb.items[nb.n++] = (QaAnswer){xstrdup("empty"), 0, 0, 0};
    softmax_probabilities(nb.items, nb.n);
    return nb;
}

QaNbest *qa_nbest(const Tokenizer *t, const QaExampleSet *set, const QaFeatures *f,
                  const float *start_logits, const float *end_logits, const QaPostArgs *a) {
    QaNbest *out = xcalloc((size_t)set->n + 1, sizeof *out);
    int *starts = xmalloc(((size_t)a->n_best_size + 1) * sizeof(int));
    int *ends = xmalloc(((size_t)a->n_best_size + 1) * sizeof(int));
    unsigned char *taken = xmalloc((size_t)f->seq_len + 1);
    Prelims p = {0};
    int k = 0;
    for (int i = 0; i < set->n; i++) {
        p.n = 0;
        for (; k < f->n && f->items[k].example == i; k++) {
            size_t off = (size_t)k * f->seq_len;
            feature_prelims(f, k, start_logits + off, end_logits + off, a, starts, ends,
                            taken, &p);
        }
        out[i] = question_nbest(t, set, f, start_logits, end_logits, &p, a);
    }
    free(p.v), free(starts), free(ends), free(taken);
    return out;
}

void qa_nbest_free(QaNbest *nb, int n) {
    if (!nb) return;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < nb[i].n; k++) free(nb[i].items[k].text);
        free(nb[i].items);
    }
    free(nb);
}

char **qa_predict(const Tokenizer *t, const QaExampleSet *set, const QaFeatures *f,
                  const float *start_logits, const float *end_logits, const QaPostArgs *a) {
    QaNbest *nb = qa_nbest(t, set, f, start_logits, end_logits, a);
    char **preds = xcalloc((size_t)set->n + 1, sizeof *preds);
    for (int i = 0; i < set->n; i++) preds[i] = xstrdup(nb[i].items[0].text);
    qa_nbest_free(nb, set->n);
    return preds;
}

void qa_predictions_free(char **preds, int n) {
    for (int i = 0; i < n; i++) free(preds[i]);
    free(preds);
}
