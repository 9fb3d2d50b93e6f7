/* The benchmark's metrics in double precision, each matching the Python library the original
 * (monologg/KoELECTRA finetune/src/utils.py, run_squad.py) calls:
 * - accuracy: (labels == preds).mean()
 * - pearson / spearman: scipy.stats.pearsonr / spearmanr (average ranks for ties); NaN when
 *   n < 2 or either input is constant, as scipy's (warned) nan
 * - macro precision / recall / F1: sklearn average="macro" over the labels present in either
 *   array, zero_division's default ("warn" -> 0)
 * - seqeval (1.x, default non-strict mode, suffix=True: tags like "PER-B"): micro entity
 *   precision / recall / F1, 0 where a denominator is 0
 * - KorQuAD v1.0 official evaluate: EM and character-level F1 after normalize_answer
 * - HF squad_metrics (SQuAD v1 word-level "exact" / "f1"), which run_squad.py also reports. */
#ifndef KOE_METRICS_H
#define KOE_METRICS_H

#include <stddef.h>

#include "host/tasks/tasks.h"

double metric_accuracy(const int *labels, const int *preds, int n);
double metric_pearson(const double *x, const double *y, int n);
double metric_spearman(const double *x, const double *y, int n);

typedef struct {
    double precision, recall, f1;
} PRF;

PRF metric_macro_prf(const int *labels, const int *preds, int n);

/* gold and pred hold the tags of n_seqs sequences back to back, sequence i having
 * seq_lens[i] tags (same lengths in both). An empty tag is read as "O". */
PRF metric_seqeval(const char *const *gold, const char *const *pred, const int *seq_lens,
                   int n_seqs);
/* seqeval's classification_report(gold, pred, digits, suffix=True) text (same inputs as
 * metric_seqeval): a row per entity type (sorted) and the micro, macro and weighted averages,
 * in its StringReporter's layout. Heap string; NULL when neither side has an entity (where
 * seqeval raises ValueError). */
char *seqeval_report(const char *const *gold, const char *const *pred, const int *seq_lens,
                     int n_seqs, int digits);

/* KorQuAD's normalize_answer (heap string): quotes and brackets of the listed kinds become
 * spaces, Python str.lower(), ASCII punctuation removed, whitespace runs folded to one space */
char *korquad_normalize(const char *s);
int korquad_exact_match(const char *prediction, const char *gold);
double korquad_f1(const char *prediction, const char *gold);
/* SQuAD v1 (HF squad_metrics) per-answer scores */
char *squad_normalize(const char *s);
int squad_exact_match(const char *prediction, const char *gold);
double squad_f1(const char *prediction, const char *gold);

/* One question for evaluation: its gold answers and the prediction (NULL: unanswered). */
typedef struct {
    const char *const *golds;
    int n_golds;
    const char *prediction;
} QaPrediction;

/* Named results, in the order the original's dict has them. */
enum { METRICS_MAX = 16 };
typedef struct {
    int n;
    const char *keys[METRICS_MAX];
    double values[METRICS_MAX];
    unsigned char count[METRICS_MAX]; /* 1: a Python int in the original (KorQuAD's totals) */
} Metrics;

/* appends a float result / an integer count (keys are static strings) */
void metrics_put(Metrics *m, const char *key, double v);
void metrics_put_count(Metrics *m, const char *key, long v);
/* the value of key, or NaN when absent */
double metrics_get(const Metrics *m, const char *key);
/* str(value) of key as the original writes it: "5774" for a count, else Python's str(float) */
void metrics_str(const Metrics *m, const char *key, char *buf, size_t n);

/* compute_metrics(task, labels, preds) as the original reports it:
 * nsmc/kornli/paws/question-pair: acc; hate-speech: precision, recall, f1 (macro) */
void task_metrics_classification(const TaskInfo *t, const int *labels, const int *preds, int n,
                                 Metrics *out);
/* korsts: pearson, spearmanr, corr */
void task_metrics_regression(const double *labels, const double *preds, int n, Metrics *out);
/* naver-ner: precision, recall, f1 (seqeval) */
void task_metrics_ner(const char *const *gold, const char *const *pred, const int *seq_lens,
                      int n_seqs, Metrics *out);
/* korquad, what run_squad.py reports: HF 3.3.1 squad_evaluate(examples, predictions) without
 * no-answer probabilities -- exact, f1, total, HasAns_exact, HasAns_f1, HasAns_total (and
 * NoAns_* when some question has no gold answer), best_exact, best_exact_thresh, best_f1,
 * best_f1_thresh -- then the official KorQuAD v1.0 official_exact_match, official_f1. HF's
 * scores count answered questions only (total), the official ones all questions (unanswered
 * score 0); percentages. A question without gold answers scores 0 officially and is compared
 * with "" by HF. */
void task_metrics_qa(const QaPrediction *qs, int n, Metrics *out);

#endif
