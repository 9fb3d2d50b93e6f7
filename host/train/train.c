/* The training loop of the original's train()/evaluate()/main(), with progress, logs, timing
 * and resumable checkpoints. The task (host/tasks/task.h) supplies the features and scores
 * the model's outputs. Batches are in batch.c, checkpoints in checkpoints.c, logs and result
 * files in report.c. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/formats/checkpoint.h"
#include "host/train/schedule.h"
#include "host/train/train_internal.h"
#include "host/train/trainer_state.h"

/* ---- evaluation ---- */

/* a batch's logits into out, rows per example (1 or max_len; padding positions of a packed
 * batch stay as they are, zero) */
static void copy_logits(float *out, const float *logits, const Batch *b, int start, int rows,
                        int L) {
    size_t src = 0;
    for (int i = 0; i < b->B; i++) {
        int n = rows == 1 ? 1 : b->packed ? b->lengths[i] : b->T;
        memcpy(out + (size_t)(start + i) * rows * L, logits + src * L, (size_t)n * L * sizeof(float));
        src += n;
    }
}

float *trainer_predict(Trainer *t, const Features *f, double *loss) {
    Model *m = t->model;
    int rows = m->head == HEAD_SEQ_CLS ? 1 : f->max_len, L = m->num_labels;
    int EB = t->args->eval_batch_size < m->max_B ? t->args->eval_batch_size : m->max_B;
    float *out = xcalloc((size_t)f->n * rows * L, sizeof(float));
    float *logits = xmalloc((size_t)EB * f->max_len * L * sizeof(float));
    int *idx = xmalloc(EB * sizeof(int));
    BatchBuf bb;
    batchbuf_alloc(&bb, EB, f->max_len);
    double loss_sum = 0;
    int batches = 0;
    model_take_loss(m);
    for (int start = 0; start < f->n; start += EB, batches++) {
        int B = f->n - start < EB ? f->n - start : EB;
        for (int i = 0; i < B; i++) idx[i] = start + i;
        Batch b = make_batch(m, f, idx, B, t->layout, &bb);
        model_forward(m, &b, 0, 1.0f);
        model_logits(m, logits);
        loss_sum += model_take_loss(m);
        copy_logits(out, logits, &b, start, rows, L);
    }
    if (loss) *loss = batches ? loss_sum / batches : 0;
    batchbuf_free(&bb);
    free(idx), free(logits);
    return out;
}

/* evaluates the model on split s at global step `step` through the task, logs the metrics and
 * writes output_dir/<mode>/<mode>-<step>.txt */
static int evaluate(Trainer *t, Split s, int step, Metrics *mt, Error *e) {
    double t0 = now_seconds(), loss;
    const char *mode = split_name(s);
    float *logits = trainer_predict(t, &t->task->features[s], &loss);
    ModelOutputs out = {logits, t->model->num_labels, loss};
    EvalAt at = {s, step, t->args->output_dir};
    Evaluation ev = {0};
    int rc = t->task->evaluate(t->task, &at, &out, &ev, e);
    free(logits);
    *mt = ev.metrics;
    t->time.eval += now_seconds() - t0;
    if (rc != 0) return -1;
    fprintf(stderr, "\neval %s at step %d:", mode, step);
    for (int i = 0; i < mt->n; i++) fprintf(stderr, " %s %.4f", mt->keys[i], mt->values[i]);
    fprintf(stderr, " (%.1fs)\n", now_seconds() - t0);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "eval");
    cJSON_AddStringToObject(o, "mode", mode);
    cJSON_AddNumberToObject(o, "step", step);
    cJSON_AddItemToObject(o, "metrics", metrics_json(mt));
    log_json(t, o);
    rc = write_eval_file(t, mode, step, mt, ev.report, e);
    free(ev.report);
    return rc;
}

/* ---- the loop ---- */

/* the original's arithmetic: t_total from max_steps or epochs, warmup from the proportion */
static Plan make_plan(const TrainArgs *a, int n) {
    Plan p;
    p.n_batches = (n + a->train_batch_size - 1) / a->train_batch_size;
    int per_epoch = p.n_batches / a->gradient_accumulation_steps;
    if (a->max_steps > 0) {
        p.t_total = a->max_steps;
        p.epochs = a->max_steps / (per_epoch > 0 ? per_epoch : 1) + 1;
    } else {
        p.t_total = (int)(per_epoch * a->num_train_epochs);
        p.epochs = (int)a->num_train_epochs;
    }
    p.warmup = (int)(p.t_total * a->warmup_proportion);
    return p;
}


/* after optimizer step global_step: evaluate and save as the original does */
static int after_step(Trainer *t, int epoch, int next_step, Error *e) {
    const TrainArgs *a = t->args;
    if (a->logging_steps > 0 && t->global_step % a->logging_steps == 0) {
        Metrics mt;
        int on_test = a->evaluate_test_during_training || !task_split(t->task, SPLIT_DEV);
        Split s = on_test ? SPLIT_TEST : SPLIT_DEV;
        const Features *f = task_split(t->task, s);
        if (f && evaluate(t, s, t->global_step, &mt, e) != 0) return -1;
        if (f && on_test) { /* checkpoint-N has these very weights: its evaluation reuses this */
            t->test_evals = xrealloc(t->test_evals, (t->n_test_evals + 1) * sizeof(Metrics));
            t->test_eval_steps = xrealloc(t->test_eval_steps, (t->n_test_evals + 1) * sizeof(int));
            t->test_evals[t->n_test_evals] = mt;
            t->test_eval_steps[t->n_test_evals++] = t->global_step;
        }
    }
    if (a->save_steps > 0 && t->global_step % a->save_steps == 0)
        return save_checkpoint(t, epoch, next_step, e);
    return 0;
}

static const char *const LAYOUT_NAMES[] = {"dynamic padding", "max-length padding",
                                            "unpadded (packed)"};

static int train(Trainer *t, Error *e) {
    const TrainArgs *a = t->args;
    Model *m = t->model;
    const Features *f = task_split(t->task, SPLIT_TRAIN);
    Plan plan = make_plan(a, f->n);
    int accum = a->gradient_accumulation_steps, B = a->train_batch_size;
    int start_epoch = 0, start_step = 0;
    t->global_step = t->first_step;
    if (t->resume_from && load_resume_state(t, &plan, &start_epoch, &start_step, e) != 0) return -1;
    fprintf(stderr, "training: %d examples, %d epochs, batch %d, accumulation %d, %d steps "
            "(warmup %d), %s, backend %s\n", f->n, plan.epochs, B, accum, plan.t_total,
            plan.warmup, LAYOUT_NAMES[t->layout], m->be->name);
    int *order = xmalloc(f->n * sizeof(int));
    BatchBuf bb;
    batchbuf_alloc(&bb, B, f->max_len);
    Progress pg = {now_seconds(), 0, 0, 0, isatty(2), t->global_step};
    float lr = 0;
    double step_loss = 0;
    int rc = 0, stop = 0;
    double t0 = now_seconds();
    for (int epoch = start_epoch; epoch < plan.epochs && !stop && rc == 0; epoch++) {
        epoch_order(order, f->n, (uint64_t)a->seed, epoch);
        for (int step = epoch == start_epoch ? start_step : 0; step < plan.n_batches; step++) {
            /* the original checks after each batch; checking before the next one is the same
             * there, and a resume from the final checkpoint then trains nothing more */
            if (a->max_steps > 0 && t->global_step > a->max_steps) {
                stop = 1;
                break;
            }
            int nb = f->n - step * B < B ? f->n - step * B : B;
            Batch b = make_batch(m, f, order + step * B, nb, t->layout, &bb);
            model_forward(m, &b, 1, 1.0f / accum);
            model_backward(m);
            float loss = model_take_loss(m) / accum;
            if (!isfinite(loss)) {
                rc = errorf(e, "step %d: the training loss is %f; stopping. The last good "
                            "checkpoint is %s", t->global_step + 1, loss,
                            t->last_checkpoint ? t->last_checkpoint : "(none yet)");
                break;
            }
            t->train_loss_sum += loss;
            t->samples_seen += nb;
            t->samples_seen_run += nb;
            for (int i = 0; i < nb; i++) t->tokens_seen_run += b.lengths[i];
            step_loss += loss;
            pg.loss_sum += loss * accum;
            pg.loss_count++;
            if (update_after_batch(plan.n_batches, accum, step)) {
                int updates = t->global_step - t->first_step;
                lr = linear_schedule_lr((float)a->learning_rate, updates, plan.warmup, plan.t_total);
                model_optimizer_step(m, adamw_args(lr, (float)a->adam_epsilon,
                                                   (float)a->weight_decay, updates + 1,
                                                   (float)a->max_grad_norm));
                t->global_step++;
                log_step(t, &pg, epoch, step_loss, lr);
                step_loss = 0;
                progress(t, &pg, &plan, epoch, lr, 0);
                double pause = now_seconds();
                rc = after_step(t, epoch, step + 1, e);
                pg.start += now_seconds() - pause; /* throughput counts training only */
                if (rc == 0) rc = check_log(t, e);
                if (rc != 0) break;
            }
        }
    }
    if (pg.loss_count) progress(t, &pg, &plan, plan.epochs - 1, lr, 1);
    if (pg.tty) fprintf(stderr, "\n");
    t->time.train += now_seconds() - t0 - t->time.eval - t->time.checkpoint;
    batchbuf_free(&bb);
    free(order);
    return rc;
}

/* ---- the run: train, then evaluate the checkpoints ---- */


/* every checkpoint (or the newest) on test; the final in-memory model when none was saved */
/* N of a weights file in a folder named checkpoint-N, else 0 */
static int checkpoint_step(const char *weights) {
    const char *p = NULL, *q = weights;
    while ((q = strstr(q, "checkpoint-"))) p = q++;
    int step = 0;
    return p && sscanf(p, "checkpoint-%d/", &step) == 1 ? step : 0;
}

static int evaluate_checkpoints(Trainer *t, StepResult **out, int *n_out, Error *e) {
    int n = 0, rc = 0;
    int *steps = list_checkpoints(t->args->output_dir, &n);
    int first = t->args->eval_all_checkpoints || n == 0 ? 0 : n - 1;
    StepResult *r = xcalloc(n + 1, sizeof *r);
    int k = 0;
    for (int i = first; i < n && rc == 0; i++, k++) {
        r[k].step = steps[i];
        int j = 0;
        while (j < t->n_test_evals && t->test_eval_steps[j] != steps[i]) j++;
        if (j < t->n_test_evals) {
            r[k].metrics = t->test_evals[j];
            fprintf(stderr, "checkpoint-%d: test results from the evaluation during training\n", steps[i]);
            continue;
        }
        char *dir = strfmt("%s/checkpoint-%d", t->args->output_dir, steps[i]);
        char *w = hf_weights_file(dir); /* listed: it has one */
        rc = model_load(t->model, w, t->args->seed, e);
        free(dir), free(w);
        if (rc == 0) rc = evaluate(t, SPLIT_TEST, steps[i], &r[k].metrics, e);
    }
    /* nothing saved: score the final weights, or without training the model as loaded (a
     * checkpoint given as model_name_or_path: evaluation only) */
    if (rc == 0 && n == 0 && (t->args->do_train || t->init_weights)) {
        r[k].step = t->args->do_train ? t->global_step : checkpoint_step(t->init_weights);
        if (!t->args->do_train)
            fprintf(stderr, "no checkpoints in %s: evaluating %s\n", t->args->output_dir,
                    t->init_weights);
        rc = evaluate(t, SPLIT_TEST, r[k].step, &r[k].metrics, e);
        k++;
    }
    free(steps);
    *out = r;
    *n_out = k;
    return rc;
}


/* log.jsonl is appended to, never truncated (a failing run keeps the earlier runs' lines);
 * each run starts with a "start" line, so the last run is what follows the last of them */
static int open_log(Trainer *t, Error *e) {
    if (make_dirs(t->args->output_dir, e) != 0) return -1;
    char *path = strfmt("%s/log.jsonl", t->args->output_dir);
    t->log = fopen(path, "a");
    int rc = t->log ? 0 : errorf(e, "%s: cannot open for appending: %s", path, strerror(errno));
    free(path);
    if (rc != 0) return -1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "start");
    cJSON_AddStringToObject(o, "task", t->args->task);
    if (t->resume_from) cJSON_AddStringToObject(o, "resume_from", t->resume_from);
    log_json(t, o);
    return check_log(t, e);
}

int trainer_run(Trainer *t, Error *e) {
    double t0 = now_seconds() - t->time.tokenize;
    t->model->seed = (uint64_t)t->args->seed;
    int rc = open_log(t, e);
    if (rc == 0 && t->args->do_train && !task_split(t->task, SPLIT_TRAIN))
        rc = errorf(e, "%s: do_train needs a train_file", t->args->task);
    else if (rc == 0 && t->args->do_train) rc = train(t, e);
    StepResult *r = NULL;
    int n = 0;
    if (rc == 0 && t->args->do_eval) {
        rc = evaluate_checkpoints(t, &r, &n, e);
        if (rc == 0) rc = write_eval_results(t, r, n, e);
    }
    double total = now_seconds() - t0;
    if (rc == 0) rc = check_log(t, e);
    if (rc == 0) rc = write_results_json(t, r, n, total, e);
    if (rc == 0) print_summary(t, r, n, total);
    free(r);
    if (t->log) fclose(t->log);
    free(t->last_checkpoint), free(t->test_evals), free(t->test_eval_steps);
    return rc;
}
