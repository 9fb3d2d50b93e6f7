/* The task programs (see programs.h): parse the original's command line, set up the model,
 * tokenizer and backend (run.c), read the task's splits, train and evaluate. */
#include "host/main/programs.h"

#include <stdio.h>

#include "host/main/run.h"

static int finish(int rc, const Error *e, Task *task, Run *r) {
    if (rc != 0) fprintf(stderr, "error: %s\n", e->msg);
    task_free(task);
    run_free(r);
    return rc ? 1 : 0;
}

/* run_seq_cls.py and run_ner.py: train_file, dev_file (evaluated during training when given,
 * else test_file is), test_file */
static int classify(const char *program, const TaskKind *kinds, int n_kinds, int argc,
                    char **argv) {
    Run r;
    Error e;
    int rc = run_parse(&r, argc, argv, program, kinds, n_kinds, &e);
    if (rc == 1) return 0;
    if (rc == 0) rc = run_setup(&r, &e);
    Task task = {0};
    double t0 = now_seconds();
    const char *files[N_SPLITS] = {r.args.do_train ? r.args.train_file : NULL, r.args.dev_file,
                                   r.args.test_file};
    if (rc == 0) rc = run_load_task(&r, &task, files, &e);
    if (rc == 0 && !task_split(&task, SPLIT_TEST) && r.args.do_eval)
        rc = errorf(&e, "%s: do_eval needs a test_file", program);
    if (rc == 0) rc = run_train(&r, &(Trainer){.task = &task}, t0, &e);
    return finish(rc, &e, &task, &r);
}

int program_seq_cls(int argc, char **argv) {
    const TaskKind kinds[] = {TASK_CLASSIFICATION, TASK_REGRESSION};
    return classify("run_seq_cls", kinds, 2, argc, argv);
}

int program_ner(int argc, char **argv) {
    const TaskKind kinds[] = {TASK_NER};
    return classify("run_ner", kinds, 1, argc, argv);
}

/* run_squad.py (SQuAD v1.1 JSON, HF 3.3.1's feature pipeline and compute_predictions_logits,
 * in host/tasks/squad*.c). Its procedure differs from run_seq_cls.py in three ways:
 * - global_step starts at 1, so checkpoint-N and the evaluation at step N follow N - 1 updates;
 * - evaluation during training (evaluate_during_training) and at the end runs on predict_file,
 *   writing output_dir/predictions_<step>.json and reporting HF's exact/f1 and the official
 *   KorQuAD official_exact_match/official_f1;
 * - batches are always padded to max_seq_length: HF's QA loss softmaxes over all T positions
 *   (padding included), and the n_best_size start/end candidates are picked among all T
 *   logits before invalid ones are dropped, so padding logits matter in both. */
int program_squad(int argc, char **argv) {
    const TaskKind kinds[] = {TASK_QA};
    Run r;
    Error e;
    int rc = run_parse(&r, argc, argv, "run_squad", kinds, 1, &e);
    if (rc == 1) return 0;
    if (rc == 0 && r.args.version_2_with_negative)
        rc = errorf(&e, "run_squad: version_2_with_negative: only SQuAD v1 (false) is supported");
    if (rc == 0) rc = run_setup(&r, &e);
    /* logging_steps only drives the evaluation in run_squad.py */
    if (rc == 0 && !r.args.evaluate_during_training) r.args.logging_steps = 0;
    Task task = {0};
    double t0 = now_seconds();
    int need_predict = r.args.do_eval || (r.args.do_train && r.args.logging_steps > 0);
    /* predict_file is the test split: evaluated during training and at the end */
    const char *files[N_SPLITS] = {r.args.do_train ? r.args.train_file : NULL, NULL,
                                   need_predict ? r.args.predict_file : NULL};
    if (rc == 0) rc = run_load_task(&r, &task, files, &e);
    if (rc == 0 && need_predict && !task_split(&task, SPLIT_TEST))
        rc = errorf(&e, "run_squad: evaluation needs a predict_file");
    if (rc == 0) {
        Trainer t = {.task = &task, .layout = LAYOUT_MAX_LENGTH, .first_step = 1};
        rc = run_train(&r, &t, t0, &e);
    }
    return finish(rc, &e, &task, &r);
}

int task_program_memory(const TaskInfo *task, int argc, char **argv, size_t *need,
                        size_t *have, Error *e) {
    const TaskKind kinds[] = {task->kind};
    const char *program = task->kind == TASK_NER ? "run_ner" : task->kind == TASK_QA ? "run_squad"
                                                                                    : "run_seq_cls";
    Run r;
    int rc = run_parse(&r, argc, argv, program, kinds, 1, e);
    if (rc == 0) rc = run_resolve(&r, e);
    if (rc == 0) {
        *need = run_memory_need(&r);
        *have = r.be->memory_bytes ? r.be->memory_bytes() : 0;
    }
    run_free(&r);
    return rc ? -1 : 0;
}

int task_program_main(const TaskInfo *task, int argc, char **argv) {
    switch (task->kind) {
    case TASK_NER: return program_ner(argc, argv);
    case TASK_QA: return program_squad(argc, argv);
    default: return program_seq_cls(argc, argv);
    }
}
