/* What a run reports: the progress line, log.jsonl, the original's eval files
 * (<mode>/<mode>-N.txt, eval_results.txt in Python's float format), results.json and the
 * closing summary. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/text/pyfmt.h"
#include "host/train/train_internal.h"

static int cmp_keys(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* output_dir/<mode>/<mode>-<step>.txt, "  key = value" lines in sorted key order, then (NER)
 * a blank line and the report, as the original's evaluate() writes it */
int write_eval_file(const Trainer *t, const char *mode, int step, const Metrics *mt,
                    const char *report, Error *e) {
    char *dir = strfmt("%s/%s", t->args->output_dir, mode);
    char *path = step > 0 ? strfmt("%s/%s-%d.txt", dir, mode, step) : strfmt("%s/%s.txt", dir, mode);
    const char *keys[METRICS_MAX];
    for (int i = 0; i < mt->n; i++) keys[i] = mt->keys[i];
    qsort(keys, mt->n, sizeof keys[0], cmp_keys);
    char *text = NULL, num[40];
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return errorf(e, "%s: out of memory", path);
    for (int i = 0; i < mt->n; i++) {
        metrics_str(mt, keys[i], num, sizeof num);
        fprintf(f, "  %s = %s\n", keys[i], num);
    }
    if (report) fprintf(f, "\n%s", report);
    fclose(f);
    int rc = make_dirs(dir, e) == 0 ? write_file_atomic(path, text, len, e) : -1;
    free(dir), free(path), free(text);
    return rc;
}

void log_json(Trainer *t, cJSON *obj) {
    if (t->log) {
        char *line = cJSON_PrintUnformatted(obj);
        if ((fprintf(t->log, "%s\n", line) < 0 || fflush(t->log) != 0) && !t->log_errno)
            t->log_errno = errno ? errno : EIO;
        free(line);
    }
    cJSON_Delete(obj);
}

int check_log(const Trainer *t, Error *e) {
    if (!t->log_errno) return 0;
    return errorf(e, "%s/log.jsonl: write failed: %s", t->args->output_dir, strerror(t->log_errno));
}

cJSON *metrics_json(const Metrics *mt) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < mt->n; i++) /* counts (KorQuAD's total) as integers */
        cJSON_AddItemToObject(o, mt->keys[i], mt->count[i] ? cJSON_CreateNumber(mt->values[i])
                                                            : py_json_number(mt->values[i]));
    return o;
}

static void format_eta(double s, char *buf, size_t n) {
    if (s < 0 || !isfinite(s)) snprintf(buf, n, "?");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

void progress(Trainer *t, Progress *pg, const Plan *plan, int epoch, float lr, int force) {
    double now = now_seconds();
    if (!force && now - pg->last_print < (pg->tty ? 0.25 : 30.0)) return;
    double elapsed = now - pg->start;
    int done = t->global_step - pg->steps_at_start;
    double per_step = done > 0 ? elapsed / done : NAN;
    double samples_s = elapsed > 0 ? t->samples_seen_run / elapsed : 0;
    char eta[32];
    format_eta(per_step * (plan->t_total - t->global_step), eta, sizeof eta);
    fprintf(stderr, "%sepoch %d/%d step %d/%d loss %.4f lr %.3g %.1f samples/s ETA %s%s",
            pg->tty ? "\r" : "", epoch + 1, plan->epochs, t->global_step, plan->t_total,
            pg->loss_sum / pg->loss_count, lr, samples_s, eta, pg->tty ? "   " : "\n");
    pg->last_print = now;
    pg->loss_sum = 0;
    pg->loss_count = 0;
}

/* one log.jsonl line per optimizer step: its loss (the original's loss.item(), summed over
 * the accumulated micro-batches), lr and throughput so far */
void log_step(Trainer *t, const Progress *pg, int epoch, double loss, float lr) {
    double elapsed = now_seconds() - pg->start;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "train");
    cJSON_AddNumberToObject(o, "step", t->global_step);
    cJSON_AddNumberToObject(o, "epoch", epoch + 1);
    cJSON_AddItemToObject(o, "loss", py_json_number(loss));
    cJSON_AddItemToObject(o, "lr", py_json_number(lr));
    cJSON_AddNumberToObject(o, "samples_per_s", elapsed > 0 ? t->samples_seen_run / elapsed : 0);
    cJSON_AddNumberToObject(o, "elapsed_s", elapsed);
    log_json(t, o);
}

/* eval_results.txt as the original writes it: "<metric>_<step> = value", sorted by metric
 * then step when there are several checkpoints */
int write_eval_results(const Trainer *t, const StepResult *r, int n, Error *e) {
    char *text = NULL, num[40];
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return errorf(e, "%s/eval_results.txt: out of memory", t->args->output_dir);
    const char *keys[METRICS_MAX];
    int nk = n ? r[0].metrics.n : 0;
    for (int k = 0; k < nk; k++) keys[k] = r[0].metrics.keys[k];
    qsort(keys, nk, sizeof keys[0], cmp_keys);
    for (int k = 0; k < nk; k++)
        for (int i = 0; i < n; i++) {
            metrics_str(&r[i].metrics, keys[k], num, sizeof num);
            fprintf(f, "%s_%d = %s\n", keys[k], r[i].step, num);
        }
    fclose(f);
    char *path = strfmt("%s/eval_results.txt", t->args->output_dir);
    int rc = write_file_atomic(path, text, len, e);
    free(path), free(text);
    return rc;
}

static cJSON *step_json(const StepResult *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "step", r->step);
    cJSON_AddItemToObject(o, "metrics", metrics_json(&r->metrics));
    return o;
}

int write_results_json(const Trainer *t, const StepResult *r, int n, double total,
                       Error *e) {
    const TaskInfo *task = task_find(t->args->task);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", t->args->task);
    cJSON_AddStringToObject(o, "model_type", t->args->model_type);
    cJSON_AddStringToObject(o, "model_name_or_path", t->args->model_name_or_path);
    cJSON_AddStringToObject(o, "initial_weights", t->init_weights ? t->init_weights : "random");
    cJSON_AddStringToObject(o, "backend", t->model->be->name);
    cJSON_AddNumberToObject(o, "global_step", t->global_step);
    cJSON_AddItemToObject(o, "train_loss",
                          py_json_number(t->global_step ? t->train_loss_sum / t->global_step : 0));
    cJSON *all = cJSON_AddArrayToObject(o, "results");
    int best = -1;
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(all, step_json(&r[i]));
        double v = metrics_get(&r[i].metrics, task->best_key);
        if (best < 0 || v > metrics_get(&r[best].metrics, task->best_key)) best = i;
    }
    if (best >= 0) {
        cJSON_AddStringToObject(o, "best_metric", task->best_key);
        cJSON_AddItemToObject(o, "best", step_json(&r[best]));
        cJSON_AddItemToObject(o, "last", step_json(&r[n - 1]));
    }
    cJSON *tm = cJSON_AddObjectToObject(o, "timing_s");
    cJSON_AddNumberToObject(tm, "tokenize", t->time.tokenize);
    cJSON_AddNumberToObject(tm, "train", t->time.train);
    cJSON_AddNumberToObject(tm, "eval", t->time.eval);
    cJSON_AddNumberToObject(tm, "checkpoint", t->time.checkpoint);
    cJSON_AddNumberToObject(tm, "total", total);
    cJSON_AddNumberToObject(o, "train_samples_per_s",
                            t->time.train > 0 ? t->samples_seen_run / t->time.train : 0);
    cJSON_AddNumberToObject(o, "train_tokens_per_s", /* real tokens, padding not counted */
                            t->time.train > 0 ? t->tokens_seen_run / t->time.train : 0);
    cJSON_AddNumberToObject(o, "peak_memory_bytes", (double)t->model->be->peak_bytes());
    char *text = cJSON_Print(o), *path = strfmt("%s/results.json", t->args->output_dir);
    int rc = write_file_atomic(path, text, strlen(text), e);
    free(text), free(path);
    cJSON_Delete(o);
    return rc;
}

void print_summary(const Trainer *t, const StepResult *r, int n, double total) {
    fprintf(stderr, "\n== %s / %s: %d steps on %s ==\n", t->args->task, t->args->model_type,
            t->global_step, t->model->be->name);
    for (int i = 0; i < n; i++) {
        fprintf(stderr, "  step %-7d", r[i].step);
        for (int k = 0; k < r[i].metrics.n; k++)
            fprintf(stderr, " %s %.4f", r[i].metrics.keys[k], r[i].metrics.values[k]);
        fprintf(stderr, "\n");
    }
    fprintf(stderr, "  time: total %.1fs = tokenize %.1fs + train %.1fs + eval %.1fs + "
            "checkpoints %.1fs; train %.1f samples/s\n", total, t->time.tokenize,
            t->time.train, t->time.eval, t->time.checkpoint,
            t->time.train > 0 ? t->samples_seen_run / t->time.train : 0.0);
    fprintf(stderr, "  results: %s/results.json, %s/eval_results.txt\n", t->args->output_dir,
            t->args->output_dir);
}
