/* run_seq_cls: the original's run_seq_cls.py for nsmc, kornli, paws, korsts, question-pair
 * and hate-speech. */
#include <stdio.h>
#include <stdlib.h>

#include "host/main/run.h"
#include "host/tasks/seq_cls.h"

/* reads one split ("" = none) and encodes it */
static int load_split(Run *r, const char *file, ExampleSet *ex, Features *f, Error *e) {
    char *path = run_data_path(r, file);
    if (!path) return 0;
    int rc = read_seq_cls_examples(r->task, path, ex, e);
    if (rc == 0) {
        fprintf(stderr, "%s: %d examples%s\n", path, ex->n, ex->skipped ? " (some skipped)" : "");
        rc = seq_cls_features(r->tok, r->task, ex, r->args.max_seq_len, f, e);
    }
    free(path);
    return rc;
}

int main(int argc, char **argv) {
    const TaskKind kinds[] = {TASK_CLASSIFICATION, TASK_REGRESSION};
    Run r;
    Error e;
    int rc = run_parse(&r, argc, argv, "run_seq_cls", kinds, 2, &e);
    if (rc == 1) return 0;
    if (rc == 0) rc = run_setup(&r, &e);
    ExampleSet ex[3] = {0};
    Features f[3] = {0};
    double t0 = now_seconds();
    const char *files[3] = {r.args.train_file, r.args.dev_file, r.args.test_file};
    for (int i = 0; i < 3 && rc == 0; i++)
        if (i > 0 || r.args.do_train) rc = load_split(&r, files[i], &ex[i], &f[i], &e);
    if (rc == 0 && !f[2].n && r.args.do_eval) rc = errorf(&e, "run_seq_cls: do_eval needs a test_file");
    if (rc == 0) {
        Trainer t = {0};
        t.train = f[0].n ? &f[0] : NULL;
        t.dev = f[1].n ? &f[1] : NULL;
        t.test = f[2].n ? &f[2] : NULL;
        t.evaluate = seq_cls_evaluate;
        t.task = r.task;
        rc = run_train(&r, &t, HEAD_SEQ_CLS, r.task->num_labels, t0, &e);
    }
    if (rc != 0) fprintf(stderr, "error: %s\n", e.msg);
    for (int i = 0; i < 3; i++) features_free(&f[i]), free_examples(&ex[i]);
    run_free(&r);
    return rc ? 1 : 0;
}
