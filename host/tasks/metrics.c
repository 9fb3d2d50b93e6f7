/* The benchmark's metrics (see metrics.h for which Python behaviour each one matches). */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "host/tasks/metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "host/text/pyfmt.h"
#include "host/text/unicode.h"

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

/* ---- seqeval's classification_report ---- */

/* numpy's pairwise summation (np.add.reduce of float64), which np.mean and np.average use */
static double np_sum(const double *a, int n) {
    if (n < 8) {
        double s = 0;
        for (int i = 0; i < n; i++) s += a[i];
        return s;
    }
    if (n <= 128) {
        double r[8];
        int i = 8;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) s += a[i];
        return s;
    }
    int half = n / 2 - (n / 2) % 8;
    return np_sum(a, half) + np_sum(a + half, n - half);
}

/* Python's str order of two entity types */
static int cmp_type(const Tag *a, const Tag *b) {
    int n = a->type_len < b->type_len ? a->type_len : b->type_len, c = memcmp(a->type, b->type, n);
    return c ? c : (a->type_len > b->type_len) - (a->type_len < b->type_len);
}

static int cmp_type_qsort(const void *a, const void *b) { return cmp_type(a, b); }

/* per entity type (sorted): true positives, predicted and true entity counts */
typedef struct {
    Tag *types;
    int n;
    long *tp, *pred, *true_;
} TypeCounts;

static int type_index(const TypeCounts *c, const Tag *t) {
    for (int i = 0; i < c->n; i++)
        if (cmp_type(&c->types[i], t) == 0) return i;
    return -1;
}

static TypeCounts count_types(const Entity *g, int ng, const Entity *p, int np) {
    TypeCounts c = {xmalloc(((size_t)ng + np + 1) * sizeof(Tag)), 0, NULL, NULL, NULL};
    for (int i = 0; i < ng + np; i++) c.types[c.n++] = i < ng ? g[i].type : p[i - ng].type;
    qsort(c.types, (size_t)c.n, sizeof(Tag), cmp_type_qsort);
    int k = 0;
    for (int i = 0; i < c.n; i++)
        if (k == 0 || cmp_type(&c.types[i], &c.types[k - 1]) != 0) c.types[k++] = c.types[i];
    c.n = k;
    c.tp = xcalloc((size_t)k + 1, sizeof(long));
    c.pred = xcalloc((size_t)k + 1, sizeof(long));
    c.true_ = xcalloc((size_t)k + 1, sizeof(long));
    for (int i = 0; i < ng; i++) c.true_[type_index(&c, &g[i].type)]++;
    for (int i = 0; i < np; i++) c.pred[type_index(&c, &p[i].type)]++;
    for (int i = 0, j = 0; i < ng && j < np;) { /* both sorted: the common entities */
        int d = cmp_entity(&g[i], &p[j]);
        if (d == 0) c.tp[type_index(&c, &g[i].type)]++;
        if (d <= 0) i++;
        if (d >= 0) j++;
    }
    return c;
}

/* _precision_recall_fscore_support's per-row arithmetic (zero_division "warn": 0) */
static PRF prf_of(long tp, long pred, long true_) {
    PRF r = {pred ? (double)tp / pred : 0, true_ ? (double)tp / true_ : 0, 0};
    double denom = r.precision + r.recall;
    r.f1 = 2.0 * r.precision * r.recall / (denom == 0 ? 1 : denom);
    return r;
}

/* StringReporter's row: '{:>{width}s} ' + ' {:>9.{digits}f}' * 3 + ' {:>9}' and a newline */
static void report_row(FILE *f, const char *name, int name_len, int width, PRF r, long support,
                       int digits) {
    int chars = 0; /* Python pads by code points */
    for (int i = 0; i < name_len; i++) chars += ((unsigned char)name[i] & 0xC0) != 0x80;
    fprintf(f, "%*s%.*s  %9.*f %9.*f %9.*f %9ld\n", width > chars ? width - chars : 0, "",
            name_len, name, digits, r.precision, digits, r.recall, digits, r.f1, support);
}

/* the macro (weights NULL) or weighted average of the per-type rows, as np.average */
static PRF average_rows(const PRF *rows, const long *weights, int n) {
    double *v = xmalloc((size_t)n * 3 * sizeof(double)), w = 0, out[3];
    for (int i = 0; i < n; i++) w += weights ? (double)weights[i] : 1;
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < n; i++) {
            double x = k == 0 ? rows[i].precision : k == 1 ? rows[i].recall : rows[i].f1;
            v[(size_t)k * n + i] = weights ? x * (double)weights[i] : x;
        }
        out[k] = w > 0 ? np_sum(v + (size_t)k * n, n) / w : 0; /* no true entities: 0 */
    }
    free(v);
    return (PRF){out[0], out[1], out[2]};
}

static void write_report(FILE *f, const TypeCounts *c, int digits) {
    int width = 12; /* len("weighted avg") */
    for (int i = 0; i < c->n; i++) {
        int chars = 0;
        for (int k = 0; k < c->types[i].type_len; k++)
            chars += ((unsigned char)c->types[i].type[k] & 0xC0) != 0x80;
        if (chars > width) width = chars;
    }
    if (digits > width) width = digits;
    fprintf(f, "%*s  precision    recall  f1-score   support\n\n", width, "");
    PRF *rows = xmalloc(((size_t)c->n + 1) * sizeof *rows);
    long tp = 0, pred = 0, true_ = 0;
    for (int i = 0; i < c->n; i++) {
        rows[i] = prf_of(c->tp[i], c->pred[i], c->true_[i]);
        report_row(f, c->types[i].type, c->types[i].type_len, width, rows[i], c->true_[i], digits);
        tp += c->tp[i], pred += c->pred[i], true_ += c->true_[i];
    }
    fputs("\n", f);
    report_row(f, "micro avg", 9, width, prf_of(tp, pred, true_), true_, digits);
    report_row(f, "macro avg", 9, width, average_rows(rows, NULL, c->n), true_, digits);
    report_row(f, "weighted avg", 12, width, average_rows(rows, c->true_, c->n), true_, digits);
    free(rows);
}

char *seqeval_report(const char *const *gold, const char *const *pred, const int *seq_lens,
                     int n_seqs, int digits) {
    Entity *g, *p;
    int ng = get_entities(gold, seq_lens, n_seqs, &g);
    int np = get_entities(pred, seq_lens, n_seqs, &p);
    ng = unique_entities(g, ng);
    np = unique_entities(p, np);
    TypeCounts c = count_types(g, ng, p, np);
    char *text = NULL;
    size_t len = 0;
    FILE *f = c.n > 0 ? open_memstream(&text, &len) : NULL; /* no entities: seqeval raises */
    if (f) {
        write_report(f, &c, digits);
        if (fclose(f) != 0) free(text), text = NULL;
    }
    free(c.types), free(c.tp), free(c.pred), free(c.true_), free(g), free(p);
    return text;
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

/* UTF-8 -> code points; a byte that is not UTF-8 becomes U+FFFD */
static Text decode(const char *s) {
    Text t = {0};
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        int32_t c;
        int k = utf8_next(s, len, i, &c, NULL);
        text_push(&t, k ? c : 0xFFFD);
        i += k ? (size_t)k : 1;
    }
    return t;
}

static char *encode(const Text *t) {
    char *s = NULL;
    size_t cap = 0;
    utf8_encode(t->c, t->n, &s, &cap);
    return s;
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

void metrics_put(Metrics *m, const char *key, double v) {
    if (m->n == METRICS_MAX) return; /* the tasks' key sets are fixed and fit */
    m->keys[m->n] = key;
    m->count[m->n] = 0;
    m->values[m->n++] = v;
}

void metrics_put_count(Metrics *m, const char *key, long v) {
    int n = m->n;
    metrics_put(m, key, (double)v);
    if (m->n > n) m->count[n] = 1;
}

static int metrics_index(const Metrics *m, const char *key) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0) return i;
    return -1;
}

double metrics_get(const Metrics *m, const char *key) {
    int i = metrics_index(m, key);
    return i < 0 ? NAN : m->values[i];
}

void metrics_str(const Metrics *m, const char *key, char *buf, size_t n) {
    int i = metrics_index(m, key);
    if (i >= 0 && m->count[i]) snprintf(buf, n, "%.0f", m->values[i]);
    else py_float(i < 0 ? NAN : m->values[i], buf, n);
}

void task_metrics_classification(const TaskInfo *t, const int *labels, const int *preds, int n,
                                 Metrics *out) {
    out->n = 0;
    if (t->metric == METRIC_MACRO_PRF) {
        PRF r = metric_macro_prf(labels, preds, n);
        metrics_put(out, "precision", r.precision);
        metrics_put(out, "recall", r.recall);
        metrics_put(out, "f1", r.f1);
    } else {
        metrics_put(out, "acc", metric_accuracy(labels, preds, n));
    }
}

void task_metrics_regression(const double *labels, const double *preds, int n, Metrics *out) {
    out->n = 0;
    double pearson = metric_pearson(preds, labels, n), spearman = metric_spearman(preds, labels, n);
    metrics_put(out, "pearson", pearson);
    metrics_put(out, "spearmanr", spearman);
    metrics_put(out, "corr", (pearson + spearman) / 2);
}

void task_metrics_ner(const char *const *gold, const char *const *pred, const int *seq_lens,
                      int n_seqs, Metrics *out) {
    PRF r = metric_seqeval(gold, pred, seq_lens, n_seqs);
    out->n = 0;
    metrics_put(out, "precision", r.precision);
    metrics_put(out, "recall", r.recall);
    metrics_put(out, "f1", r.f1);
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

/* squad_evaluate's sums over the answered questions, in order: all of them, those with gold
 * answers (HasAns), those without (NoAns), and find_best_thresh's running score */
typedef struct {
    double exact[3], f1[3], best_exact, best_f1;
    long total[3];
} SquadSums;

/* find_best_thresh with every no-answer probability 0: the running score starts at the
 * number of questions without answers and takes each answered question's score (a question
 * without answers: -1 for a non-empty prediction); the best prefix wins */
static void squad_add(SquadSums *s, const QaPrediction *q, double em, double f1,
                      double *cur_em, double *cur_f1) {
    int has_ans = q->n_golds > 0, groups[2] = {0, has_ans ? 1 : 2};
    for (int i = 0; i < 2; i++) {
        int k = groups[i];
        s->exact[k] += em, s->f1[k] += f1, s->total[k]++;
    }
    double no_ans = q->prediction[0] ? -1 : 0;
    *cur_em += has_ans ? em : no_ans;
    *cur_f1 += has_ans ? f1 : no_ans;
    if (*cur_em > s->best_exact) s->best_exact = *cur_em;
    if (*cur_f1 > s->best_f1) s->best_f1 = *cur_f1;
}

void task_metrics_qa(const QaPrediction *qs, int n, Metrics *out) {
    SquadSums s = {0};
    double off_em = 0, off_f1 = 0;
    for (int i = 0; i < n; i++) s.best_exact += qs[i].n_golds == 0;
    s.best_f1 = s.best_exact;
    double cur_em = s.best_exact, cur_f1 = s.best_f1;
    for (int i = 0; i < n; i++) {
        const QaPrediction *q = &qs[i];
        if (!q->prediction) continue;
        double e, f;
        squad_scores(q, &e, &f);
        squad_add(&s, q, e, f, &cur_em, &cur_f1);
        double best_em = 0, best_f1 = 0;
        for (int g = 0; g < q->n_golds; g++) {
            best_em = fmax(best_em, korquad_exact_match(q->prediction, q->golds[g]));
            best_f1 = fmax(best_f1, korquad_f1(q->prediction, q->golds[g]));
        }
        off_em += best_em;
        off_f1 += best_f1;
    }
    static const char *const keys[3][3] = {{"exact", "f1", "total"},
                                           {"HasAns_exact", "HasAns_f1", "HasAns_total"},
                                           {"NoAns_exact", "NoAns_f1", "NoAns_total"}};
    out->n = 0;
    for (int k = 0; k < 3; k++) {
        if (k > 0 && s.total[k] == 0) continue; /* HF merges a group only when it has questions */
        long t = s.total[k];
        metrics_put(out, keys[k][0], t ? 100.0 * s.exact[k] / t : 0);
        metrics_put(out, keys[k][1], t ? 100.0 * s.f1[k] / t : 0);
        metrics_put_count(out, keys[k][2], t);
    }
    metrics_put(out, "best_exact", s.total[0] ? 100.0 * s.best_exact / s.total[0] : 0);
    metrics_put(out, "best_exact_thresh", 0.0);
    metrics_put(out, "best_f1", s.total[0] ? 100.0 * s.best_f1 / s.total[0] : 0);
    metrics_put(out, "best_f1_thresh", 0.0);
    metrics_put(out, "official_exact_match", n ? 100.0 * off_em / n : 0);
    metrics_put(out, "official_f1", n ? 100.0 * off_f1 / n : 0);
}
