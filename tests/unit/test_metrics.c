/* Metrics on small hand-worked cases (the parity test covers the Python libraries). */
#include <string.h>

#include "host/tasks/metrics.h"
#include "test.h"

static int near(double a, double b) { return fabs(a - b) < 1e-12; }

int main(void) {
    int labels[] = {0, 1, 2, 2, 1}, preds[] = {0, 2, 2, 2, 0};
    CHECK(near(metric_accuracy(labels, preds, 5), 0.6), "accuracy");
    /* per class p = 1/2, 0/0 -> 0, 2/3; r = 1, 0, 1; f1 = 2/3, 0, 4/5 */
    PRF r = metric_macro_prf(labels, preds, 5);
    CHECK(near(r.precision, (0.5 + 0 + 2.0 / 3) / 3), "macro precision %.17g", r.precision);
    CHECK(near(r.recall, 2.0 / 3), "macro recall %.17g", r.recall);
    CHECK(near(r.f1, (2.0 / 3 + 0.8) / 3), "macro f1 %.17g", r.f1);

    double x[] = {1, 2, 3, 4}, y[] = {3, 5, 7, 9}, z[] = {10, 20, 20, 5}, c[] = {2, 2, 2, 2};
    CHECK(near(metric_pearson(x, y, 4), 1), "pearson of a line");
    CHECK(near(metric_spearman(x, z, 4), metric_pearson(x, (double[]){2, 3.5, 3.5, 1}, 4)),
          "spearman uses average ranks");
    CHECK(isnan(metric_pearson(x, c, 4)) && isnan(metric_spearman(c, x, 4)), "constant -> NaN");

    /* gold PER(0,1) LOC(3,3); pred PER(0,1) ORG(3,3) DAT(5,5) -> p 1/3, r 1/2 */
    const char *gold[] = {"PER-B", "PER-I", "O", "LOC-B", "O", "O"};
    const char *pred[] = {"PER-B", "PER-I", "O", "ORG-B", "O", "DAT-I"};
    int lens[] = {3, 3};
    PRF s = metric_seqeval(gold, pred, lens, 2);
    CHECK(near(s.precision, 1.0 / 3) && near(s.recall, 0.5) && near(s.f1, 0.4), "seqeval");
    PRF none = metric_seqeval(gold, gold + 2, (int[]){1}, 1); /* "O" vs "O": no entities */
    CHECK(none.precision == 0 && none.recall == 0 && none.f1 == 0, "seqeval with no entities");

    char *norm = korquad_normalize("  《세종》 (대왕)! ");
    CHECK(strcmp(norm, "세종 대왕") == 0, "korquad normalize '%s'", norm);
    free(norm);
    CHECK(korquad_exact_match("'세종대왕'", "세종대왕") == 1, "korquad em");
    /* chars 세종대왕 vs 세종: same 2, p 2/4, r 1 -> 2/3 */
    CHECK(near(korquad_f1("세종 대왕", "세종"), 2.0 / 3), "korquad f1");
    CHECK(korquad_f1("", "세종") == 0, "korquad f1 of an empty prediction");
    CHECK(near(squad_f1("the big cat", "a big dog"), 0.5), "squad f1");

    const char *g1[] = {"세종"}, *g2[] = {"서울"};
    QaPrediction qs[] = {{g1, 1, "세종"}, {g2, 1, NULL}};
    Metrics m;
    task_metrics_qa(qs, 2, &m);
    CHECK(near(metrics_get(&m, "official_exact_match"), 50) && near(metrics_get(&m, "exact"), 100),
          "unanswered questions count officially only");
    CHECK(isnan(metrics_get(&m, "no such key")), "absent key");

    /* HF squad_evaluate's keys: answered q1 (right), q3 (no gold answers, so HF compares with
     * ""), q4 (squad f1 0.5); q2 unanswered. best_*: the running score starts at 1 (q3 has no
     * answers): +1 (q1) = 2 is the best, -1 (q3, a non-empty prediction), then +0 / +0.5. */
    const char *g4[] = {"the big cat"};
    QaPrediction q4[] = {{g1, 1, "세종"}, {g2, 1, NULL}, {g2, 0, "부산"}, {g4, 1, "a big dog"}};
    task_metrics_qa(q4, 4, &m);
    const char *keys[] = {"exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total",
                          "NoAns_exact", "NoAns_f1", "NoAns_total", "best_exact",
                          "best_exact_thresh", "best_f1", "best_f1_thresh",
                          "official_exact_match", "official_f1"};
    double want[] = {100.0 / 3, 50, 3, 50, 75, 2, 0, 0, 1, 200.0 / 3, 0, 200.0 / 3, 0, 25, 37.5};
    CHECK(m.n == 15, "%d korquad keys, want 15", m.n);
    for (int k = 0; k < 15 && k < m.n; k++)
        CHECK(!strcmp(m.keys[k], keys[k]) && near(m.values[k], want[k]),
              "key %d: %s = %.17g, want %s = %g", k, m.keys[k], m.values[k], keys[k], want[k]);
    char num[32];
    metrics_str(&m, "total", num, sizeof num);
    CHECK(!strcmp(num, "3"), "total is a count: '%s'", num);
    metrics_str(&m, "best_f1_thresh", num, sizeof num);
    CHECK(!strcmp(num, "0.0"), "best_f1_thresh is a float: '%s'", num);
    task_metrics_qa(q4, 1, &m); /* all with answers: no NoAns_* keys, as HF */
    CHECK(m.n == 12 && isnan(metrics_get(&m, "NoAns_total")), "%d keys without NoAns", m.n);

    /* seqeval's classification_report of the case above, as seqeval 1.2.2 prints it */
    char *report = seqeval_report(gold, pred, lens, 2, 2);
    const char *want_report =
        "              precision    recall  f1-score   support\n\n"
        "         DAT       0.00      0.00      0.00         0\n"
        "         LOC       0.00      0.00      0.00         1\n"
        "         ORG       0.00      0.00      0.00         0\n"
        "         PER       1.00      1.00      1.00         1\n\n"
        "   micro avg       0.33      0.50      0.40         2\n"
        "   macro avg       0.25      0.25      0.25         2\n"
        "weighted avg       0.50      0.50      0.50         2\n";
    CHECK(report && !strcmp(report, want_report), "report\n%s", report);
    free(report);
    CHECK(seqeval_report(gold + 2, pred + 2, (int[]){1}, 1, 2) == NULL, "a report without entities");
    return test_exit("test_metrics");
}
