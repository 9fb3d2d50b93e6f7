/* naver-ner features and the word-level labels of evaluation (see ner_features.h). */
#include "host/tasks/ner_features.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* tokens and labels of one example before the cut: each word's sub-tokens, [UNK] for none */
static int tokenize_words(const Tokenizer *t, const NerExample *ex, int **ids, int **labels,
                          int *n, int *cap, int *label_cap, Error *e) {
    SpecialIds sp = tokenizer_special(t);
    *n = 0;
    for (int w = 0; w < ex->n; w++) {
        int first = *n;
        int got = tokenizer_tokenize(t, ex->words[w], ids, n, cap, e);
        if (got < 0) return -1;
        if (got == 0) {
            if (*n == *cap) *ids = xrealloc(*ids, (size_t)(*cap = 2 * *cap + 16) * sizeof **ids);
            (*ids)[(*n)++] = sp.unk;
        }
        if (*label_cap < *n)
            *labels = xrealloc(*labels, (size_t)(*label_cap = *cap) * sizeof **labels);
        (*labels)[first] = ex->labels[w];
        for (int k = first + 1; k < *n; k++) (*labels)[k] = NER_IGNORE;
    }
    return 0;
}

/* [CLS] tokens[0..n) [SEP] then padding, into row r */
static void fill_row(Features *f, int r, const int *ids, const int *labels, int n,
                     SpecialIds sp) {
    int T = f->max_len, *in = f->input_ids + (size_t)r * T, *lab = f->labels + (size_t)r * T;
    if (n > T - 2) n = T - 2;
    in[0] = sp.cls;
    lab[0] = NER_IGNORE;
    memcpy(in + 1, ids, (size_t)n * sizeof *ids);
    memcpy(lab + 1, labels, (size_t)n * sizeof *labels);
    in[n + 1] = sp.sep;
    lab[n + 1] = NER_IGNORE;
    for (int j = n + 2; j < T; j++) {
        in[j] = sp.pad;
        lab[j] = NER_IGNORE;
    }
    f->lengths[r] = n + 2;
}

int ner_make_features(const Tokenizer *t, const NerExampleSet *set, int max_seq_len,
                      Features *out, Error *e) {
    memset(out, 0, sizeof *out);
    if (max_seq_len < 2)
        return errorf(e, "ner features: max_seq_len %d leaves no room for [CLS] and [SEP]",
                      max_seq_len);
    features_alloc(out, set->n, max_seq_len);
    out->labels = xmalloc((size_t)set->n * max_seq_len * sizeof(int));
    SpecialIds sp = tokenizer_special(t);
    int *ids = NULL, *labels = NULL, n = 0, cap = 0, label_cap = 0, rc = 0;
    for (int i = 0; i < set->n && rc == 0; i++) {
        rc = tokenize_words(t, &set->items[i], &ids, &labels, &n, &cap, &label_cap, e);
        if (rc == 0) fill_row(out, i, ids, labels, n, sp);
    }
    free(ids);
    free(labels);
    if (rc) features_free(out);
    return rc;
}

/* numpy's argmax: the first maximum; the first NaN, if any, wins */
static int argmax(const float *x, int n) {
    int best = 0;
    for (int k = 0; k < n; k++) {
        if (isnan(x[k])) return k;
        if (x[k] > x[best]) best = k;
    }
    return best;
}

int ner_row_labels(const Features *f, int i, const float *logits, int num_labels, int *gold,
                   int *pred) {
    const int *lab = f->labels + (size_t)i * f->max_len;
    int m = 0;
    for (int j = 0; j < f->max_len; j++) {
        if (lab[j] == NER_IGNORE) continue;
        gold[m] = lab[j];
        pred[m++] = argmax(logits + (size_t)j * num_labels, num_labels);
    }
    return m;
}
