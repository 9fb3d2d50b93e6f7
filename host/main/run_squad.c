/* run_squad: the original's run_squad.py for korquad (SQuAD v1.1 JSON, HF 3.3.1's feature
 * pipeline and compute_predictions_logits, in host/tasks/squad*.c). Its procedure differs from
 * run_seq_cls.py in three ways reproduced here:
 * - global_step starts at 1, so checkpoint-N and the evaluation at step N follow N - 1 updates;
 * - evaluation during training (evaluate_during_training) and at the end runs on predict_file,
 *   writing output_dir/predictions_<step>.json and reporting HF's exact/f1 and the official
 *   KorQuAD official_exact_match/official_f1;
 * - batches are always padded to max_seq_length: HF's QA loss softmaxes over all T positions
 *   (padding included), and the n_best_size start/end candidates are picked among all T
 *   logits before invalid ones are dropped, so padding logits matter in both. */
#include <stdio.h>

#include "host/main/run.h"

int main(int argc, char **argv) {
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
    if (rc != 0) fprintf(stderr, "error: %s\n", e.msg);
    task_free(&task);
    run_free(&r);
    return rc ? 1 : 0;
}
