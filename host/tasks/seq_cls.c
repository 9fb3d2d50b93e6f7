/* Sequence classification and regression: features, loader and evaluation (see seq_cls.h). */
#include "host/tasks/seq_cls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int seq_cls_evaluate(const Task *t, const EvalAt *at, const ModelOutputs *out,
                            Evaluation *ev, Error *e) {
    (void)e;
    const Features *f = &t->features[at->split];
    int L = out->num_labels;
    if (t->info->kind == TASK_REGRESSION) {
        double *preds = xmalloc(f->n * sizeof(double)), *gold = xmalloc(f->n * sizeof(double));
        for (int i = 0; i < f->n; i++) preds[i] = out->logits[i], gold[i] = f->scores[i];
        task_metrics_regression(gold, preds, f->n, &ev->metrics);
        free(preds), free(gold);
    } else {
        int *preds = xmalloc(f->n * sizeof(int));
        for (int i = 0; i < f->n; i++) preds[i] = argmax(out->logits + (size_t)i * L, L);
        task_metrics_classification(t->info, f->labels, preds, f->n, &ev->metrics);
        free(preds);
    }
    return 0;
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
