/* Metrics vs the Python libraries the original calls (scipy, sklearn, seqeval, the official
 * KorQuAD v1.0 evaluate, HF squad_metrics): every case in tests/fixtures/metrics/metrics.json
 * (made by tests/fixtures/make_metric_fixtures.py) must match to 1e-9. */
#include <cjson/cJSON.h>
#include <string.h>

#include "host/tasks/metrics.h"
#include "test.h"

#define TOL 1e-9

static int close_to(double got, const cJSON *want) {
    if (cJSON_IsNull(want)) return isnan(got);
    return fabs(got - want->valuedouble) <= TOL;
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static double *doubles(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    double *v = xmalloc((*n + 1) * sizeof *v);
    for (int i = 0; i < *n; i++) v[i] = cJSON_GetArrayItem(a, i)->valuedouble;
    return v;
}

static int *ints(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    int *v = xmalloc((*n + 1) * sizeof *v);
    for (int i = 0; i < *n; i++) v[i] = cJSON_GetArrayItem(a, i)->valueint;
    return v;
}

static void check_correlation(const cJSON *cases) {
    const cJSON *c;
    int k = 0;
    cJSON_ArrayForEach(c, cases) {
        int n, m;
        double *x = doubles(get(c, "x"), &n), *y = doubles(get(c, "y"), &m);
        double p = metric_pearson(x, y, n), s = metric_spearman(x, y, n);
        CHECK(close_to(p, get(c, "pearson")), "case %d pearson %.17g", k, p);
        CHECK(close_to(s, get(c, "spearman")), "case %d spearman %.17g", k, s);
        Metrics r;
        task_metrics_regression(y, x, n, &r); /* (labels, preds): pearsonr(preds, labels) */
        CHECK(close_to(metrics_get(&r, "spearmanr"), get(c, "spearman")), "case %d task", k);
        free(x);
        free(y);
        k++;
    }
    CHECK(k >= 8, "only %d correlation cases", k);
}

static void check_classification(const cJSON *cases) {
    const cJSON *c;
    const TaskInfo *hate = task_find("hate-speech"), *nsmc = task_find("nsmc");
    int k = 0;
    cJSON_ArrayForEach(c, cases) {
        int n;
        int *labels = ints(get(c, "labels"), &n), *preds = ints(get(c, "preds"), &n);
        PRF r = metric_macro_prf(labels, preds, n);
        CHECK(close_to(metric_accuracy(labels, preds, n), get(c, "acc")), "case %d acc", k);
        CHECK(close_to(r.precision, get(c, "precision")), "case %d precision %.17g", k, r.precision);
        CHECK(close_to(r.recall, get(c, "recall")), "case %d recall %.17g", k, r.recall);
        CHECK(close_to(r.f1, get(c, "f1")), "case %d f1 %.17g", k, r.f1);
        Metrics m;
        task_metrics_classification(hate, labels, preds, n, &m);
        CHECK(m.n == 3 && close_to(metrics_get(&m, "f1"), get(c, "f1")), "case %d hate", k);
        task_metrics_classification(nsmc, labels, preds, n, &m);
        CHECK(m.n == 1 && close_to(metrics_get(&m, "acc"), get(c, "acc")), "case %d nsmc", k);
        free(labels);
        free(preds);
        k++;
    }
    CHECK(k >= 8, "only %d classification cases", k);
}

/* flattens a list of tag lists into pointers into the JSON */
static const char **tags(const cJSON *seqs, int *lens) {
    int total = 0, i = 0;
    const cJSON *s, *t;
    cJSON_ArrayForEach(s, seqs) total += cJSON_GetArraySize(s);
    const char **out = xmalloc((total + 1) * sizeof *out);
    int k = 0;
    cJSON_ArrayForEach(s, seqs) {
        lens[i++] = cJSON_GetArraySize(s);
        cJSON_ArrayForEach(t, s) out[k++] = t->valuestring;
    }
    return out;
}

/* seqeval's classification_report text, byte for byte (null: seqeval raises) */
static void check_report(const char **gold, const char **pred, const int *lens, int n, int digits,
                         const cJSON *want, int k) {
    char *got = seqeval_report(gold, pred, lens, n, digits);
    if (cJSON_IsNull(want)) {
        CHECK(got == NULL, "case %d: a report where seqeval has none:\n%s", k, got);
    } else {
        CHECK(got && strcmp(got, want->valuestring) == 0,
              "case %d digits %d: report\n%s\nexpected\n%s", k, digits, got, want->valuestring);
    }
    free(got);
}

static void check_seqeval(const cJSON *cases) {
    const cJSON *c;
    int k = 0;
    cJSON_ArrayForEach(c, cases) {
        int n = cJSON_GetArraySize(get(c, "gold"));
        int *lens = xmalloc((n + 1) * sizeof *lens), *lens2 = xmalloc((n + 1) * sizeof *lens2);
        const char **gold = tags(get(c, "gold"), lens), **pred = tags(get(c, "pred"), lens2);
        CHECK(memcmp(lens, lens2, n * sizeof *lens) == 0, "case %d lengths differ", k);
        Metrics m;
        task_metrics_ner(gold, pred, lens, n, &m);
        CHECK(close_to(metrics_get(&m, "precision"), get(c, "precision")), "case %d precision %.17g", k, metrics_get(&m, "precision"));
        CHECK(close_to(metrics_get(&m, "recall"), get(c, "recall")), "case %d recall %.17g", k, metrics_get(&m, "recall"));
        CHECK(close_to(metrics_get(&m, "f1"), get(c, "f1")), "case %d f1 %.17g", k, metrics_get(&m, "f1"));
        check_report(gold, pred, lens, n, 2, get(c, "report"), k);
        check_report(gold, pred, lens, n, 4, get(c, "report4"), k);
        free(gold);
        free(pred);
        free(lens);
        free(lens2);
        k++;
    }
    CHECK(k >= 13, "only %d seqeval cases", k);
}

static void check_answers(const cJSON *cases) {
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *p = get(c, "pred")->valuestring, *g = get(c, "gold")->valuestring;
        char *kn = korquad_normalize(p), *sn = squad_normalize(p);
        CHECK(strcmp(kn, get(c, "korquad_norm")->valuestring) == 0, "'%s': korquad norm '%s'", p, kn);
        CHECK(strcmp(sn, get(c, "squad_norm")->valuestring) == 0, "'%s': squad norm '%s'", p, sn);
        CHECK(korquad_exact_match(p, g) == get(c, "korquad_em")->valueint, "'%s' vs '%s': korquad em", p, g);
        CHECK(close_to(korquad_f1(p, g), get(c, "korquad_f1")), "'%s' vs '%s': korquad f1 %.17g", p, g, korquad_f1(p, g));
        CHECK(squad_exact_match(p, g) == get(c, "squad_em")->valueint, "'%s' vs '%s': squad em", p, g);
        CHECK(close_to(squad_f1(p, g), get(c, "squad_f1")), "'%s' vs '%s': squad f1 %.17g", p, g, squad_f1(p, g));
        free(kn);
        free(sn);
    }
}

static void check_qa_evaluate(const cJSON *ev) {
    const cJSON *qs = get(ev, "questions"), *q, *g;
    int n = cJSON_GetArraySize(qs), i = 0;
    QaPrediction *preds = xcalloc(n, sizeof *preds);
    const char ***golds = xcalloc(n, sizeof *golds);
    cJSON_ArrayForEach(q, qs) {
        int k = 0;
        golds[i] = xcalloc(cJSON_GetArraySize(get(q, "golds")) + 1, sizeof **golds);
        cJSON_ArrayForEach(g, get(q, "golds")) golds[i][k++] = g->valuestring;
        preds[i] = (QaPrediction){golds[i], k, cJSON_IsString(get(q, "prediction")) ? get(q, "prediction")->valuestring : NULL};
        i++;
    }
    Metrics m;
    task_metrics_qa(preds, n, &m);
    const char *keys[] = {"exact", "f1", "official_exact_match", "official_f1"};
    for (int k = 0; k < 4; k++)
        CHECK(close_to(metrics_get(&m, keys[k]), get(ev, keys[k])), "%s %.17g", keys[k], metrics_get(&m, keys[k]));
    for (i = 0; i < n; i++) free(golds[i]);
    free(golds);
    free(preds);
}

int main(void) {
    char *text = NULL;
    Error e;
    int rc = read_file("tests/fixtures/metrics/metrics.json", &text, NULL, &e);
    CHECK(rc == 0, "%s", e.msg);
    cJSON *root = rc == 0 ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(root != NULL, "metrics.json does not parse");
    if (!root) return test_exit("test_metrics_parity");
    check_correlation(get(root, "correlation"));
    check_classification(get(root, "classification"));
    check_seqeval(get(root, "seqeval"));
    check_answers(get(root, "answers"));
    check_qa_evaluate(get(root, "qa_evaluate"));
    cJSON_Delete(root);
    return test_exit("test_metrics_parity");
}
