/* run_ner: the original's run_ner.py for naver-ner. Evaluation is its evaluate(): the argmax
 * label of every token, read at the first sub-token of each word (ner_row_labels), scored
 * with seqeval; results are {loss, precision, recall, f1} as the original's dict. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/tasks/metrics.h"
#include "host/tasks/ner_features.h"
#include "host/main/run.h"

/* EvalFn: t->task is the TaskInfo */
static void ner_evaluate(Trainer *t, const Features *f, Metrics *out) {
    const TaskInfo *task = t->task;
    int L = t->model->num_labels, T = f->max_len;
    double loss;
    float *logits = trainer_predict(t, f, &loss);
    /* Features and NerFeatures have the same layout; ner_row_labels reads a view of f */
    NerFeatures view = {f->n, T, f->input_ids, f->token_type_ids, f->labels, f->lengths};
    const char **gold = xmalloc(((size_t)f->n * T + 1) * sizeof *gold);
    const char **pred = xmalloc(((size_t)f->n * T + 1) * sizeof *pred);
    int *lens = xmalloc(((size_t)f->n + 1) * sizeof(int));
    int *g = xmalloc(T * sizeof(int)), *p = xmalloc(T * sizeof(int));
    size_t n_tags = 0;
    for (int i = 0; i < f->n; i++) {
        lens[i] = ner_row_labels(&view, i, logits + (size_t)i * T * L, L, g, p);
        for (int j = 0; j < lens[i]; j++, n_tags++) {
            gold[n_tags] = task->labels[g[j]];
            pred[n_tags] = task->labels[p[j]];
        }
    }
    Metrics m;
    task_metrics_ner(gold, pred, lens, f->n, &m);
    out->n = 0;
    out->keys[out->n] = "loss", out->values[out->n++] = loss;
    for (int k = 0; k < m.n && out->n < METRICS_MAX; k++)
        out->keys[out->n] = m.keys[k], out->values[out->n++] = m.values[k];
    free(gold), free(pred), free(lens), free(g), free(p), free(logits);
}

/* reads one split ("" = none) and encodes it; the features move into f */
static int load_split(Run *r, const char *file, Features *f, Error *e) {
    char *path = run_data_path(r, file);
    if (!path) return 0;
    NerExampleSet ex = {0};
    NerFeatures nf = {0};
    int rc = read_ner_examples(r->task, path, &ex, e);
    if (rc == 0) {
        fprintf(stderr, "%s: %d examples\n", path, ex.n);
        rc = ner_make_features(r->tok, &ex, r->args.max_seq_len, &nf, e);
    }
    if (rc == 0) {
        memset(f, 0, sizeof *f);
        f->n = nf.n, f->max_len = nf.seq_len;
        f->input_ids = nf.input_ids, f->token_type_ids = nf.token_type_ids;
        f->labels = nf.label_ids, f->lengths = nf.lengths;
    }
    free_ner_examples(&ex);
    free(path);
    return rc;
}

int main(int argc, char **argv) {
    const TaskKind kinds[] = {TASK_NER};
    Run r;
    Error e;
    int rc = run_parse(&r, argc, argv, "run_ner", kinds, 1, &e);
    if (rc == 1) return 0;
    if (rc == 0) rc = run_setup(&r, &e);
    Features f[3] = {0};
    double t0 = now_seconds();
    const char *files[3] = {r.args.train_file, r.args.dev_file, r.args.test_file};
    for (int i = 0; i < 3 && rc == 0; i++)
        if (i > 0 || r.args.do_train) rc = load_split(&r, files[i], &f[i], &e);
    if (rc == 0 && !f[2].n && r.args.do_eval) rc = errorf(&e, "run_ner: do_eval needs a test_file");
    if (rc == 0) {
        Trainer t = {0};
        t.train = f[0].n ? &f[0] : NULL;
        t.dev = f[1].n ? &f[1] : NULL; /* none: the original evaluates on test */
        t.test = f[2].n ? &f[2] : NULL;
        t.evaluate = ner_evaluate;
        t.task = r.task;
        rc = run_train(&r, &t, HEAD_TOKEN_CLS, r.task->num_labels, t0, &e);
    }
    if (rc != 0) fprintf(stderr, "error: %s\n", e.msg);
    for (int i = 0; i < 3; i++) features_free(&f[i]);
    run_free(&r);
    return rc ? 1 : 0;
}
