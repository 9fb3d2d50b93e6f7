/* naver-ner as the original's run_ner.py evaluates it: the argmax label of every token, read
 * at the first sub-token of each word (ner_row_labels), scored with seqeval; the metrics are
 * {loss, precision, recall, f1} as the original's dict, and the eval file ends with seqeval's
 * classification report. Features: ner_features.c. */
#include <stdio.h>
#include <stdlib.h>

#include "host/tasks/ner_features.h"
#include "host/tasks/task.h"

static int ner_evaluate(const Task *t, const EvalAt *at, const ModelOutputs *out,
                        Evaluation *ev, Error *e) {
    (void)e;
    const Features *f = &t->features[at->split];
    int L = out->num_labels, T = f->max_len;
    const char **gold = xmalloc(((size_t)f->n * T + 1) * sizeof *gold);
    const char **pred = xmalloc(((size_t)f->n * T + 1) * sizeof *pred);
    int *lens = xmalloc(((size_t)f->n + 1) * sizeof(int));
    int *g = xmalloc(T * sizeof(int)), *p = xmalloc(T * sizeof(int));
    size_t n_tags = 0;
    for (int i = 0; i < f->n; i++) {
        lens[i] = ner_row_labels(f, i, out->logits + (size_t)i * T * L, L, g, p);
        for (int j = 0; j < lens[i]; j++, n_tags++) {
            gold[n_tags] = t->info->labels[g[j]];
            pred[n_tags] = t->info->labels[p[j]];
        }
    }
    Metrics m;
    task_metrics_ner(gold, pred, lens, f->n, &m);
    metrics_put(&ev->metrics, "loss", out->loss); /* the original's results dict, then */
    for (int k = 0; k < m.n; k++) metrics_put(&ev->metrics, m.keys[k], m.values[k]);
    /* show_ner_report: seqeval's classification_report (digits 2); none when no entity was
     * either gold or predicted, where the original's seqeval call raises */
    ev->report = seqeval_report(gold, pred, lens, f->n, 2);
    free(gold), free(pred), free(lens), free(g), free(p);
    return 0;
}

static void ner_free(Task *t) {
    for (int s = 0; s < N_SPLITS; s++) free_ner_examples(&t->data.ner.examples[s]);
}

int ner_load(Task *t, const TaskSource *src, Error *e) {
    t->evaluate = ner_evaluate;
    t->free = ner_free;
    for (int s = 0; s < N_SPLITS; s++) {
        const char *path = src->paths[s];
        NerExampleSet *ex = &t->data.ner.examples[s];
        if (!path) continue;
        if (read_ner_examples(t->info, path, ex, e) != 0) return -1;
        fprintf(stderr, "%s: %d examples\n", path, ex->n);
        if (ner_make_features(src->tok, ex, src->args->max_seq_len, &t->features[s], e) != 0)
            return -1;
    }
    return 0;
}
