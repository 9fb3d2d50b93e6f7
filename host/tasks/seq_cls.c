#include "host/tasks/seq_cls.h"

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

void seq_cls_evaluate(Trainer *t, const Features *f, Metrics *out) {
    const TaskInfo *task = t->task;
    double loss;
    float *logits = trainer_predict(t, f, &loss);
    int L = t->model->num_labels;
    if (task->kind == TASK_REGRESSION) {
        double *preds = xmalloc(f->n * sizeof(double)), *gold = xmalloc(f->n * sizeof(double));
        for (int i = 0; i < f->n; i++) preds[i] = logits[i], gold[i] = f->scores[i];
        task_metrics_regression(gold, preds, f->n, out);
        free(preds), free(gold);
    } else {
        int *preds = xmalloc(f->n * sizeof(int));
        for (int i = 0; i < f->n; i++) {
            const float *row = logits + (size_t)i * L;
            int best = 0;
            for (int k = 1; k < L; k++)
                if (row[k] > row[best]) best = k; /* np.argmax: the first maximum */
            preds[i] = best;
        }
        task_metrics_classification(task, f->labels, preds, f->n, out);
        free(preds);
    }
    free(logits);
}
