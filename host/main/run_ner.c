/* run_ner: the original's run_ner.py for naver-ner (host/tasks/ner.c evaluates). With no
 * dev_file the original evaluates on test during training. */
#include <stdio.h>

#include "host/main/run.h"

int main(int argc, char **argv) {
    const TaskKind kinds[] = {TASK_NER};
    Run r;
    Error e;
    int rc = run_parse(&r, argc, argv, "run_ner", kinds, 1, &e);
    if (rc == 1) return 0;
    if (rc == 0) rc = run_setup(&r, &e);
    Task task = {0};
    double t0 = now_seconds();
    const char *files[N_SPLITS] = {r.args.do_train ? r.args.train_file : NULL, r.args.dev_file,
                                   r.args.test_file};
    if (rc == 0) rc = run_load_task(&r, &task, files, &e);
    if (rc == 0 && !task_split(&task, SPLIT_TEST) && r.args.do_eval)
        rc = errorf(&e, "run_ner: do_eval needs a test_file");
    if (rc == 0) rc = run_train(&r, &(Trainer){.task = &task}, t0, &e);
    if (rc != 0) fprintf(stderr, "error: %s\n", e.msg);
    task_free(&task);
    run_free(&r);
    return rc ? 1 : 0;
}
