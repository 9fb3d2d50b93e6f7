/* naver-ner as the original's run_ner.py evaluates it: the argmax label of every token, read
 * at the first sub-token of each word (ner_row_labels), scored with seqeval; the metrics are
 * {loss, precision, recall, f1} as the original's dict, and the eval file ends with seqeval's
 * classification report. The test split's predictions go to test/predictions-N.txt.
 * Features: ner_features.c. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <stdio.h>
#include <stdlib.h>

#include "host/tasks/ner_features.h"
#include "host/tasks/task.h"

/* test/predictions-<step>.txt, CoNLL style: "word gold predicted" for every scored word (the
 * words whose first sub-token survived the cut to max_seq_len, as the original scores), a
 * blank line after each sentence */
static int write_predictions(const Task *t, const EvalAt *at, const char *const *gold,
                             const char *const *pred, const int *lens, Error *e) {
    const NerExampleSet *ex = &t->data.ner.examples[at->split];
    char *text = NULL;
    size_t len = 0, k = 0;
    FILE *f = open_memstream(&text, &len);
    if (f) {
        for (int i = 0; i < ex->n; i++) {
            for (int j = 0; j < lens[i]; j++, k++)
                fprintf(f, "%s %s %s\n", ex->items[i].words[j], gold[k], pred[k]);
            fputc('\n', f);
        }
        if (fclose(f) != 0) free(text), text = NULL;
    }
    int rc = write_beside_eval_file(at, "predictions", "txt", text, len, e);
    free(text);
    return rc;
}

static int ner_evaluate(const Task *t, const EvalAt *at, const ModelOutputs *out,
                        Evaluation *ev, Error *e) {
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
    int rc = at->split == SPLIT_TEST ? write_predictions(t, at, gold, pred, lens, e) : 0;
    free(gold), free(pred), free(lens), free(g), free(p);
    return rc;
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
