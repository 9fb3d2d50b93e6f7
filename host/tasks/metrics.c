/* The benchmark's metrics (see metrics.h for which Python behaviour each one matches). */
#include "host/tasks/metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- classification and correlation ---- */

double metric_accuracy(const int *labels, const int *preds, int n) {
    if (n <= 0) return NAN;
    int same = 0;
    for (int i = 0; i < n; i++) same += labels[i] == preds[i];
    return (double)same / n;
}

static int all_equal(const double *x, int n) {
    for (int i = 1; i < n; i++)
        if (x[i] != x[0]) return 0;
    return 1;
}

double metric_pearson(const double *x, const double *y, int n) {
    if (n < 2 || all_equal(x, n) || all_equal(y, n)) return NAN;
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= n;
    my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    double r = sxy / (sqrt(sxx) * sqrt(syy));
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

typedef struct {
    double v;
    int i;
} Keyed;

static int cmp_keyed(const void *a, const void *b) {
    const Keyed *x = a, *y = b;
    if (x->v != y->v) return (x->v > y->v) - (x->v < y->v);
    return (x->i > y->i) - (x->i < y->i);
}

/* scipy.stats.rankdata(method="average"): 1-based ranks, ties share their mean rank */
static double *average_ranks(const double *x, int n) {
    Keyed *s = xmalloc(n * sizeof *s);
    double *rank = xmalloc(n * sizeof *rank);
    for (int i = 0; i < n; i++) s[i] = (Keyed){x[i], i};
    qsort(s, n, sizeof *s, cmp_keyed);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && s[j + 1].v == s[i].v) j++;
        double r = 0.5 * (i + j) + 1; /* mean of ranks i+1 .. j+1 */
        for (int k = i; k <= j; k++) rank[s[k].i] = r;
        i = j + 1;
    }
    free(s);
    return rank;
}

double metric_spearman(const double *x, const double *y, int n) {
    if (n < 2) return NAN;
    double *rx = average_ranks(x, n), *ry = average_ranks(y, n);
    double r = metric_pearson(rx, ry, n);
    free(rx);
    free(ry);
    return r;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int index_of(const int *sorted, int n, int v) {
    const int *p = bsearch(&v, sorted, n, sizeof *sorted, cmp_int);
    return (int)(p - sorted);
}

PRF metric_macro_prf(const int *labels, const int *preds, int n) {
    PRF out = {0, 0, 0};
    if (n <= 0) return out;
    /* the classes: labels present in either array, as sklearn's unique_labels */
    int *cls = xmalloc(2 * n * sizeof *cls);
    memcpy(cls, labels, n * sizeof *cls);
    memcpy(cls + n, preds, n * sizeof *cls);
    qsort(cls, 2 * n, sizeof *cls, cmp_int);
    int k = 0;
    for (int i = 0; i < 2 * n; i++)
        if (k == 0 || cls[i] != cls[k - 1]) cls[k++] = cls[i];
    long *count = xcalloc(3 * k, sizeof *count); /* tp, true, pred per class */
    for (int i = 0; i < n; i++) {
        int t = index_of(cls, k, labels[i]), p = index_of(cls, k, preds[i]);
        count[3 * t + 1]++;
        count[3 * p + 2]++;
        if (t == p) count[3 * t]++;
    }
    for (int c = 0; c < k; c++) {
        double tp = count[3 * c], tr = count[3 * c + 1], pr = count[3 * c + 2];
        out.precision += pr > 0 ? tp / pr : 0;
        out.recall += tr > 0 ? tp / tr : 0;
        out.f1 += tr + pr > 0 ? 2 * tp / (tr + pr) : 0;
    }
    out.precision /= k;
    out.recall /= k;
    out.f1 /= k;
    free(count);
    free(cls);
    return out;
}

/* ---- seqeval ---- */

/* a tag read as seqeval does with suffix=True: tag = last character, type = what precedes
 * the last '-' before it (or all of it), "_" when that is empty */
typedef struct {
    int tag; /* the last character when it is ASCII, else -1 */
    const char *type;
    int type_len;
} Tag;

static Tag read_tag(const char *s) {
    size_t len = strlen(s);
    if (len == 0) return (Tag){'O', "_", 1};
    size_t last = len - 1;
    while (last > 0 && ((unsigned char)s[last] & 0xC0) == 0x80) last--;
    Tag t = {(unsigned char)s[last] < 0x80 ? s[last] : -1, s, (int)last};
    for (int i = t.type_len - 1; i >= 0; i--)
        if (s[i] == '-') {
            t.type_len = i;
            break;
        }
    if (t.type_len == 0) t.type = "_", t.type_len = 1;
    return t;
}

static int same_type(Tag a, Tag b) {
    return a.type_len == b.type_len && memcmp(a.type, b.type, a.type_len) == 0;
}

static int chunk_ends(Tag prev, Tag cur) {
    int p = prev.tag, c = cur.tag;
    if (p == 'E' || p == 'S') return 1;
    if ((p == 'B' || p == 'I') && (c == 'B' || c == 'S' || c == 'O')) return 1;
    return p != 'O' && p != '.' && !same_type(prev, cur);
}

static int chunk_starts(Tag prev, Tag cur) {
    int p = prev.tag, c = cur.tag;
    if (c == 'B' || c == 'S') return 1;
    if ((p == 'E' || p == 'S' || p == 'O') && (c == 'E' || c == 'I')) return 1;
    if (p == 'O' && c == 'E') return 1;
    return c != 'O' && c != '.' && !same_type(prev, cur);
}

typedef struct {
    int begin, end;
    Tag type;
} Entity;

/* get_entities over the sequences joined with an "O" after each; returns the count */
static int get_entities(const char *const *tags, const int *seq_lens, int n_seqs, Entity **out) {
    int cap = 64, n = 0, pos = 0, begin = 0;
    Entity *ents = xmalloc(cap * sizeof *ents);
    Tag prev = {'O', "", 0}, o = {'O', "_", 1};
    const char *const *t = tags;
    for (int s = 0; s < n_seqs; s++) {
        for (int i = 0; i <= seq_lens[s]; i++, pos++) {
            Tag cur = i < seq_lens[s] ? read_tag(*t++) : o;
            if (chunk_ends(prev, cur)) {
                if (n == cap) ents = xrealloc(ents, (cap *= 2) * sizeof *ents);
                ents[n++] = (Entity){begin, pos - 1, prev};
            }
            if (chunk_starts(prev, cur)) begin = pos;
            prev = cur;
        }
    }
    /* seqeval appends one more "O" to the joined list: it can only close a chunk */
    if (chunk_ends(prev, o)) {
        if (n == cap) ents = xrealloc(ents, (cap *= 2) * sizeof *ents);
        ents[n++] = (Entity){begin, pos - 1, prev};
    }
    *out = ents;
    return n;
}

static int cmp_entity(const void *a, const void *b) {
    const Entity *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    if (x->type.type_len != y->type.type_len) return x->type.type_len < y->type.type_len ? -1 : 1;
    return memcmp(x->type.type, y->type.type, x->type.type_len);
}

/* sorts and removes duplicates (seqeval keeps sets); returns the new count */
static int unique_entities(Entity *e, int n) {
    qsort(e, n, sizeof *e, cmp_entity);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (k == 0 || cmp_entity(&e[i], &e[k - 1]) != 0) e[k++] = e[i];
    return k;
}

PRF metric_seqeval(const char *const *gold, const char *const *pred, const int *seq_lens,
                   int n_seqs) {
    Entity *g, *p;
    int ng = get_entities(gold, seq_lens, n_seqs, &g);
    int np = get_entities(pred, seq_lens, n_seqs, &p);
    ng = unique_entities(g, ng);
    np = unique_entities(p, np);
    int tp = 0;
    for (int i = 0, j = 0; i < ng && j < np;) {
        int c = cmp_entity(&g[i], &p[j]);
        if (c == 0) tp++;
        if (c <= 0) i++;
        if (c >= 0) j++;
    }
    free(g);
    free(p);
    PRF out = {np > 0 ? (double)tp / np : 0, ng > 0 ? (double)tp / ng : 0, 0};
    double denom = out.precision + out.recall;
    out.f1 = denom > 0 ? 2 * out.precision * out.recall / denom : 0;
    return out;
}

/* ---- answer normalisation (KorQuAD and SQuAD) on code points ---- */

typedef struct {
    int32_t *c;
    int n, cap;
} Text;

static void text_push(Text *t, int32_t c) {
    if (t->n == t->cap) t->c = xrealloc(t->c, (t->cap = t->cap ? 2 * t->cap : 64) * sizeof *t->c);
    t->c[t->n++] = c;
}

/* UTF-8 -> code points; an invalid byte becomes U+FFFD */
static Text decode(const char *s) {
    Text t = {0};
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    utf8proc_ssize_t left = (utf8proc_ssize_t)strlen(s);
    while (left > 0) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(p, left, &c);
        if (k < 0) c = 0xFFFD, k = 1;
        text_push(&t, c);
        p += k;
        left -= k;
    }
    return t;
}

static char *encode(const Text *t) {
    char *s = xmalloc(4 * (size_t)t->n + 1), *q = s;
    for (int i = 0; i < t->n; i++) q += utf8proc_encode_char(t->c[i], (utf8proc_uint8_t *)q);
    *q = 0;
    return s;
}

/* Python str.isspace() */
static int py_isspace(int32_t c) {
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x85 ||
           c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* string.punctuation */
static int ascii_punct(int32_t c) {
    return c < 0x80 && c > 0x20 && c != 0x7F && !((c >= '0' && c <= '9') ||
                                                   (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

static int is_cased(int32_t c) {
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL ||
           k == UTF8PROC_CATEGORY_LT || utf8proc_tolower(c) != c || utf8proc_toupper(c) != c;
}

static int is_case_ignorable(int32_t c) {
    utf8proc_category_t k = utf8proc_category(c);
    if (k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
        k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK)
        return 1;
    static const int32_t mid[] = {'\'', '.', ':', 0xB7, 0x387, 0x5F4, 0x2018, 0x2019,
                                  0x2024, 0x2027, 0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};
    for (size_t i = 0; i < sizeof mid / sizeof mid[0]; i++)
        if (c == mid[i]) return 1;
    return 0;
}

/* CPython's Final_Sigma rule: capital sigma after a cased letter and not before one */
static int32_t lower_sigma(const Text *t, int i) {
    int j = i - 1;
    while (j >= 0 && is_case_ignorable(t->c[j])) j--;
    if (j < 0 || !is_cased(t->c[j])) return 0x3C3;
    j = i + 1;
    while (j < t->n && is_case_ignorable(t->c[j])) j++;
    return j < t->n && is_cased(t->c[j]) ? 0x3C3 : 0x3C2;
}

/* Python str.lower(): simple lowercase plus its two special cases */
static Text py_lower(const Text *t) {
    Text out = {0};
    for (int i = 0; i < t->n; i++) {
        int32_t c = t->c[i];
        if (c == 0x130) {
            text_push(&out, 'i');
            text_push(&out, 0x307);
        } else {
            text_push(&out, c == 0x3A3 ? lower_sigma(t, i) : utf8proc_tolower(c));
        }
    }
    return out;
}

/* ' '.join(text.split()) */
static void fold_spaces(Text *t) {
    int k = 0;
    for (int i = 0; i < t->n; i++) {
        if (py_isspace(t->c[i])) {
            if (k > 0 && t->c[k - 1] != ' ') t->c[k++] = ' ';
        } else {
            t->c[k++] = t->c[i];
        }
    }
    if (k > 0 && t->c[k - 1] == ' ') k--;
    t->n = k;
}

static void drop_punct(Text *t) {
    int k = 0;
    for (int i = 0; i < t->n; i++)
        if (!ascii_punct(t->c[i])) t->c[k++] = t->c[i];
    t->n = k;
}

static Text korquad_norm_text(const char *s) {
    static const int32_t spaced[] = {'\'', '"', 0x300A, 0x300B, '<', '>', 0x3008, 0x3009,
                                     '(', ')', 0x2018, 0x2019};
    Text t = decode(s);
    for (int i = 0; i < t.n; i++)
        for (size_t k = 0; k < sizeof spaced / sizeof spaced[0]; k++)
            if (t.c[i] == spaced[k]) t.c[i] = ' ';
    Text l = py_lower(&t);
    free(t.c);
    drop_punct(&l);
    fold_spaces(&l);
    return l;
}

/* Python's \w: alphanumeric (letters, numbers) or '_' */
static int py_word(int32_t c) {
    if (c == '_') return 1;
    utf8proc_category_t k = utf8proc_category(c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
           (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

/* re.sub(r"\b(a|an|the)\b", " ", text) */
static Text drop_articles(const Text *t) {
    static const char *const articles[] = {"a", "an", "the"};
    Text out = {0};
    for (int i = 0; i < t->n;) {
        int len = 0;
        if (i == 0 || !py_word(t->c[i - 1])) {
            for (int a = 0; a < 3 && !len; a++) {
                int m = (int)strlen(articles[a]), ok = i + m <= t->n;
                for (int j = 0; ok && j < m; j++) ok = t->c[i + j] == articles[a][j];
                if (ok && (i + m == t->n || !py_word(t->c[i + m]))) len = m;
            }
        }
        text_push(&out, len ? ' ' : t->c[i]);
        i += len ? len : 1;
    }
    return out;
}

static Text squad_norm_text(const char *s) {
    Text t = decode(s);
    Text l = py_lower(&t);
    free(t.c);
    drop_punct(&l);
    Text a = drop_articles(&l);
    free(l.c);
    fold_spaces(&a);
    return a;
}

static int text_equal(const Text *a, const Text *b) {
    return a->n == b->n && (a->n == 0 || memcmp(a->c, b->c, a->n * sizeof *a->c) == 0);
}

char *korquad_normalize(const char *s) {
    Text t = korquad_norm_text(s);
    char *out = encode(&t);
    free(t.c);
    return out;
}

char *squad_normalize(const char *s) {
    Text t = squad_norm_text(s);
    char *out = encode(&t);
    free(t.c);
    return out;
}

static int exact(Text (*norm)(const char *), const char *prediction, const char *gold) {
    Text p = norm(prediction), g = norm(gold);
    int same = text_equal(&p, &g);
    free(p.c);
    free(g.c);
    return same;
}

int korquad_exact_match(const char *prediction, const char *gold) {
    return exact(korquad_norm_text, prediction, gold);
}

int squad_exact_match(const char *prediction, const char *gold) {
    return exact(squad_norm_text, prediction, gold);
}

/* ---- answer F1 ---- */

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* the non-space code points of a normalised answer, sorted */
static int sorted_chars(Text *t) {
    int k = 0;
    for (int i = 0; i < t->n; i++)
        if (t->c[i] != ' ') t->c[k++] = t->c[i];
    if (k > 0) qsort(t->c, k, sizeof *t->c, cmp_i32);
    return t->n = k;
}

static double f1_from_counts(int same, int n_pred, int n_gold) {
    if (same == 0) return 0;
    double precision = 1.0 * same / n_pred, recall = 1.0 * same / n_gold;
    return 2 * precision * recall / (precision + recall);
}

/* KorQuAD: F1 over the multisets of characters of the whitespace tokens */
double korquad_f1(const char *prediction, const char *gold) {
    Text p = korquad_norm_text(prediction), g = korquad_norm_text(gold);
    int np = sorted_chars(&p), ng = sorted_chars(&g), same = 0;
    for (int i = 0, j = 0; i < np && j < ng;) {
        if (p.c[i] == g.c[j]) same++, i++, j++;
        else if (p.c[i] < g.c[j]) i++;
        else j++;
    }
    free(p.c);
    free(g.c);
    return f1_from_counts(same, np, ng);
}

typedef struct {
    const int32_t *c;
    int n;
} Word;

static int cmp_word(const void *a, const void *b) {
    const Word *x = a, *y = b;
    for (int i = 0; i < x->n && i < y->n; i++)
        if (x->c[i] != y->c[i]) return x->c[i] < y->c[i] ? -1 : 1;
    return (x->n > y->n) - (x->n < y->n);
}

/* the words of a normalised (space-folded) answer, sorted */
static Word *sorted_words(const Text *t, int *n) {
    Word *w = xmalloc((t->n + 1) * sizeof *w);
    *n = 0;
    for (int i = 0; i < t->n;) {
        int j = i;
        while (j < t->n && t->c[j] != ' ') j++;
        w[(*n)++] = (Word){t->c + i, j - i};
        i = j + 1;
    }
    qsort(w, *n, sizeof *w, cmp_word);
    return w;
}

/* HF squad_metrics.compute_f1: word-level; an empty side scores gold == pred */
double squad_f1(const char *prediction, const char *gold) {
    Text p = squad_norm_text(prediction), g = squad_norm_text(gold);
    int np, ng, same = 0;
    Word *wp = sorted_words(&p, &np), *wg = sorted_words(&g, &ng);
    double f1;
    if (np == 0 || ng == 0) {
        f1 = np == ng;
    } else {
        for (int i = 0, j = 0; i < np && j < ng;) {
            int c = cmp_word(&wp[i], &wg[j]);
            if (c == 0) same++, i++, j++;
            else if (c < 0) i++;
            else j++;
        }
        f1 = f1_from_counts(same, np, ng);
    }
    free(wp);
    free(wg);
    free(p.c);
    free(g.c);
    return f1;
}

/* ---- per task, as the original's compute_metrics / run_squad report ---- */

static void put(Metrics *m, const char *key, double v) {
    m->keys[m->n] = key;
    m->values[m->n++] = v;
}

double metrics_get(const Metrics *m, const char *key) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0) return m->values[i];
    return NAN;
}

void task_metrics_classification(const TaskInfo *t, const int *labels, const int *preds, int n,
                                 Metrics *out) {
    out->n = 0;
    if (t->metric == METRIC_MACRO_PRF) {
        PRF r = metric_macro_prf(labels, preds, n);
        put(out, "precision", r.precision);
        put(out, "recall", r.recall);
        put(out, "f1", r.f1);
    } else {
        put(out, "acc", metric_accuracy(labels, preds, n));
    }
}

void task_metrics_regression(const double *labels, const double *preds, int n, Metrics *out) {
    out->n = 0;
    double pearson = metric_pearson(preds, labels, n), spearman = metric_spearman(preds, labels, n);
    put(out, "pearson", pearson);
    put(out, "spearmanr", spearman);
    put(out, "corr", (pearson + spearman) / 2);
}

void task_metrics_ner(const char *const *gold, const char *const *pred, const int *seq_lens,
                      int n_seqs, Metrics *out) {
    PRF r = metric_seqeval(gold, pred, seq_lens, n_seqs);
    out->n = 0;
    put(out, "precision", r.precision);
    put(out, "recall", r.recall);
    put(out, "f1", r.f1);
}

/* HF keeps only golds that normalise to something, else compares with "" */
static void squad_scores(const QaPrediction *q, double *em, double *f1) {
    *em = *f1 = 0;
    int any = 0;
    for (int g = 0; g < q->n_golds; g++) {
        char *norm = squad_normalize(q->golds[g]);
        int keep = norm[0] != 0;
        free(norm);
        if (!keep) continue;
        any = 1;
        *em = fmax(*em, squad_exact_match(q->prediction, q->golds[g]));
        *f1 = fmax(*f1, squad_f1(q->prediction, q->golds[g]));
    }
    if (!any) {
        *em = squad_exact_match(q->prediction, "");
        *f1 = squad_f1(q->prediction, "");
    }
}

void task_metrics_qa(const QaPrediction *qs, int n, Metrics *out) {
    double em = 0, f1 = 0, off_em = 0, off_f1 = 0;
    int answered = 0;
    for (int i = 0; i < n; i++) {
        const QaPrediction *q = &qs[i];
        if (!q->prediction) continue;
        answered++;
        double e, f;
        squad_scores(q, &e, &f);
        em += e;
        f1 += f;
        double best_em = 0, best_f1 = 0;
        for (int g = 0; g < q->n_golds; g++) {
            best_em = fmax(best_em, korquad_exact_match(q->prediction, q->golds[g]));
            best_f1 = fmax(best_f1, korquad_f1(q->prediction, q->golds[g]));
        }
        off_em += best_em;
        off_f1 += best_f1;
    }
    out->n = 0;
    put(out, "exact", answered ? 100.0 * em / answered : 0);
    put(out, "f1", answered ? 100.0 * f1 / answered : 0);
    put(out, "official_exact_match", n ? 100.0 * off_em / n : 0);
    put(out, "official_f1", n ? 100.0 * off_f1 / n : 0);
}
