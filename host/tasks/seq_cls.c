/* Sequence classification and regression: features, loader, evaluation and the test split's
 * predictions-N.tsv (see seq_cls.h). */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "host/tasks/seq_cls.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/text/pyfmt.h"

int seq_cls_features(const Tokenizer *tok, const TaskInfo *task, const ExampleSet *ex,
                     int max_len, Features *f, Error *e) {
    features_alloc(f, ex->n, max_len);
    if (task->kind == TASK_REGRESSION) f->scores = xcalloc(ex->n, sizeof(float));
    else f->labels = xcalloc(ex->n, sizeof(int));
    for (int i = 0; i < ex->n; i++) {
        const Example *x = &ex->items[i];
        Encoding enc = {0};
        if (tokenizer_encode(tok, x->text_a, x->text_b, max_len, &enc, e) != 0) {
            features_free(f);
            return -1;
        }
        memcpy(f->input_ids + (size_t)i * max_len, enc.input_ids, max_len * sizeof(int));
        memcpy(f->token_type_ids + (size_t)i * max_len, enc.token_type_ids, max_len * sizeof(int));
        f->lengths[i] = enc.len;
        if (f->scores) f->scores[i] = x->score;
        else f->labels[i] = x->label;
        encoding_free(&enc);
    }
    return 0;
}

/* np.argmax of a row of logits: the first maximum */
static int argmax(const float *row, int n) {
    int best = 0;
    for (int k = 1; k < n; k++)
        if (row[k] > row[best]) best = k;
    return best;
}

/* one row of predictions-N.tsv: the original's row index, gold and predicted label names,
 * and each label's softmax probability */
static void write_class_row(FILE *f, const TaskInfo *task, int row, int gold, int pred,
                            const float *logits) {
    int L = task->num_labels;
    double max = logits[pred], sum = 0;
    char num[32];
    fprintf(f, "%d\t%s\t%s", row, task->labels[gold], task->labels[pred]);
    for (int k = 0; k < L; k++) sum += exp((double)logits[k] - max);
    for (int k = 0; k < L; k++) {
        py_float(exp((double)logits[k] - max) / sum, num, sizeof num);
        fprintf(f, "\t%s", num);
    }
    fputc('\n', f);
}

/* test/predictions-<step>.tsv: row, gold, predicted (korsts: gold and predicted scores, the
 * exact float32 values), then the class probabilities; a header line names the columns */
static int write_predictions(const Task *t, const EvalAt *at, const float *logits,
                             const int *preds, Error *e) {
    const Features *f = &t->features[at->split];
    const ExampleSet *ex = &t->data.seq_cls.examples[at->split];
    char *text = NULL, gold[32], pred[32];
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out) {
        fputs("row\tgold\tpredicted", out);
        for (int k = 0; preds && k < t->info->num_labels; k++)
            fprintf(out, "\tprob_%s", t->info->labels[k]);
        fputc('\n', out);
        for (int i = 0; i < f->n; i++) {
            if (preds) {
                write_class_row(out, t->info, ex->items[i].row, f->labels[i], preds[i],
                                logits + (size_t)i * t->info->num_labels);
                continue;
            }
            py_float(f->scores[i], gold, sizeof gold);
            py_float(logits[i], pred, sizeof pred);
            fprintf(out, "%d\t%s\t%s\n", ex->items[i].row, gold, pred);
        }
        if (fclose(out) != 0) free(text), text = NULL;
    }
    int rc = write_beside_eval_file(at, "predictions", "tsv", text, len, e);
    free(text);
    return rc;
}

static int seq_cls_evaluate(const Task *t, const EvalAt *at, const ModelOutputs *out,
                            Evaluation *ev, Error *e) {
    const Features *f = &t->features[at->split];
    int L = out->num_labels, *preds = NULL;
    if (t->info->kind == TASK_REGRESSION) {
        double *pred = xmalloc(f->n * sizeof(double)), *gold = xmalloc(f->n * sizeof(double));
        for (int i = 0; i < f->n; i++) pred[i] = out->logits[i], gold[i] = f->scores[i];
        task_metrics_regression(gold, pred, f->n, &ev->metrics);
        free(pred), free(gold);
    } else {
        preds = xmalloc(f->n * sizeof(int));
        for (int i = 0; i < f->n; i++) preds[i] = argmax(out->logits + (size_t)i * L, L);
        task_metrics_classification(t->info, f->labels, preds, f->n, &ev->metrics);
    }
    int rc = at->split == SPLIT_TEST ? write_predictions(t, at, out->logits, preds, e) : 0;
    free(preds);
    return rc;
}

static void seq_cls_free(Task *t) {
    for (int s = 0; s < N_SPLITS; s++) free_examples(&t->data.seq_cls.examples[s]);
}

int seq_cls_load(Task *t, const TaskSource *src, Error *e) {
    t->evaluate = seq_cls_evaluate;
    t->free = seq_cls_free;
    for (int s = 0; s < N_SPLITS; s++) {
        const char *path = src->paths[s];
        ExampleSet *ex = &t->data.seq_cls.examples[s];
        if (!path) continue;
        if (read_seq_cls_examples(t->info, path, ex, e) != 0) return -1;
        fprintf(stderr, "%s: %d examples%s\n", path, ex->n, ex->skipped ? " (some skipped)" : "");
        if (seq_cls_features(src->tok, t->info, ex, src->args->max_seq_len, &t->features[s], e))
            return -1;
    }
    return 0;
}
