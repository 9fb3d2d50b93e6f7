/* The task interface (see task.h): task_load picks the family's loader. */
#include "host/tasks/task.h"

#include <stdlib.h>
#include <string.h>

const char *split_name(Split s) {
    static const char *const names[N_SPLITS] = {"train", "dev", "test"};
    return names[s];
}

int task_load(Task *t, const TaskInfo *info, const TaskSource *src, Error *e) {
    memset(t, 0, sizeof *t);
    t->info = info;
    int rc = info->kind == TASK_NER ? ner_load(t, src, e)
             : info->kind == TASK_QA ? squad_load(t, src, e)
                                     : seq_cls_load(t, src, e);
    if (rc != 0) task_free(t);
    return rc;
}

const Features *task_split(const Task *t, Split s) {
    return t->features[s].n > 0 ? &t->features[s] : NULL;
}

void task_free(Task *t) {
    for (int s = 0; s < N_SPLITS; s++) features_free(&t->features[s]);
    if (t->free) t->free(t);
    t->free = NULL;
}

int write_beside_eval_file(const EvalAt *at, const char *stem, const char *ext,
                           const char *text, size_t len, Error *e) {
    const char *mode = split_name(at->split);
    char *dir = strfmt("%s/%s", at->output_dir, mode);
    char *path = at->step > 0 ? strfmt("%s/%s-%d.%s", dir, stem, at->step, ext)
                              : strfmt("%s/%s.%s", dir, stem, ext);
    int rc = !text ? errorf(e, "%s: out of memory", path)
             : make_dirs(dir, e) == 0 ? write_file_atomic(path, text, len, e)
                                      : -1;
    free(dir), free(path);
    return rc;
}
