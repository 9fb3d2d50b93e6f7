/* The training loop of the original's train()/evaluate()/main(), with progress, logs, timing
 * and resumable checkpoints. Task programs supply features and an EvalFn. */
#define _GNU_SOURCE
#include "host/train.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/checkpoint.h"
#include "host/schedule.h"
#include "kernels/rng.h"

void features_alloc(Features *f, int n, int max_len) {
    memset(f, 0, sizeof *f);
    f->n = n;
    f->max_len = max_len;
    f->input_ids = xcalloc((size_t)n * max_len, sizeof(int));
    f->token_type_ids = xcalloc((size_t)n * max_len, sizeof(int));
    f->lengths = xcalloc(n, sizeof(int));
}

void features_free(Features *f) {
    free(f->input_ids), free(f->token_type_ids), free(f->lengths), free(f->labels);
    free(f->scores), free(f->start), free(f->end);
    memset(f, 0, sizeof *f);
}

/* ---- batches ---- */

/* host staging for one batch of at most max_B rows of max_len */
typedef struct {
    int *ids, *types, *labels, *lengths, *start, *end;
    float *scores;
} BatchBuf;

static void batchbuf_alloc(BatchBuf *bb, int max_B, int max_len) {
    size_t N = (size_t)max_B * max_len;
    bb->ids = xcalloc(N, sizeof(int));
    bb->types = xcalloc(N, sizeof(int));
    bb->labels = xcalloc(N, sizeof(int));
    bb->lengths = xcalloc(max_B, sizeof(int));
    bb->start = xcalloc(max_B, sizeof(int));
    bb->end = xcalloc(max_B, sizeof(int));
    bb->scores = xcalloc(max_B, sizeof(float));
}

static void batchbuf_free(BatchBuf *bb) {
    free(bb->ids), free(bb->types), free(bb->labels), free(bb->lengths);
    free(bb->start), free(bb->end), free(bb->scores);
}

/* rows idx[0..B) of f laid out as asked (see BatchLayout); the model's head says which
 * labels the batch carries */
static Batch make_batch(const Model *m, const Features *f, const int *idx, int B,
                        BatchLayout layout, BatchBuf *bb) {
    int T = 1;
    for (int i = 0; i < B; i++)
        if (f->lengths[idx[i]] > T) T = f->lengths[idx[i]];
    if (layout == LAYOUT_MAX_LENGTH) T = f->max_len;
    Batch b = {B, T, bb->ids, bb->types, bb->lengths, NULL, NULL, NULL, NULL, layout == LAYOUT_PACKED};
    size_t dst = 0;
    for (int i = 0; i < B; i++) {
        size_t src = (size_t)idx[i] * f->max_len;
        int n = b.packed ? f->lengths[idx[i]] : T; /* the tokens this row takes */
        memcpy(bb->ids + dst, f->input_ids + src, n * sizeof(int));
        memcpy(bb->types + dst, f->token_type_ids + src, n * sizeof(int));
        bb->lengths[i] = f->lengths[idx[i]];
        if (m->head == HEAD_TOKEN_CLS && f->labels)
            memcpy(bb->labels + dst, f->labels + src, n * sizeof(int));
        else if (f->labels)
            bb->labels[i] = f->labels[idx[i]];
        if (f->scores) bb->scores[i] = f->scores[idx[i]];
        if (f->start) bb->start[i] = f->start[idx[i]], bb->end[i] = f->end[idx[i]];
        dst += n;
    }
    if (f->labels) b.labels = bb->labels;
    if (f->scores) b.targets = bb->scores;
    if (f->start) b.start_positions = bb->start, b.end_positions = bb->end;
    return b;
}

/* the epoch's sampling order: a Fisher-Yates shuffle keyed by (seed, epoch), so a resumed
 * run sees exactly the batches the uninterrupted one would */
static void epoch_order(int *order, int n, uint64_t seed, int epoch) {
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(koe_uniform(seed, 0x5a3d1e00ULL + (uint64_t)epoch, i) * (i + 1));
        if (j > i) j = i;
        int tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

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

/* Python's str(float): the shortest repr that reads back the same */
static void py_float(double x, char *buf, size_t n) {
    if (isnan(x)) {
        snprintf(buf, n, "nan");
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, x);
        if (strtod(buf, NULL) == x) break;
    }
    if (!strpbrk(buf, ".en")) strncat(buf, ".0", n - strlen(buf) - 1);
}

static int cmp_keys(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* output_dir/<mode>/<mode>-<step>.txt, "  key = value" lines in sorted key order */
static int write_eval_file(const Trainer *t, const char *mode, int step, const Metrics *mt,
                           Error *e) {
    char *dir = strfmt("%s/%s", t->args->output_dir, mode);
    char *path = step > 0 ? strfmt("%s/%s-%d.txt", dir, mode, step) : strfmt("%s/%s.txt", dir, mode);
    const char *keys[METRICS_MAX];
    for (int i = 0; i < mt->n; i++) keys[i] = mt->keys[i];
    qsort(keys, mt->n, sizeof keys[0], cmp_keys);
    char text[2048] = "", num[40];
    for (int i = 0; i < mt->n; i++) {
        py_float(metrics_get(mt, keys[i]), num, sizeof num);
        size_t len = strlen(text);
        snprintf(text + len, sizeof text - len, "  %s = %s\n", keys[i], num);
    }
    int rc = make_dirs(dir, e) == 0 ? write_file_atomic(path, text, strlen(text), e) : -1;
    free(dir), free(path);
    return rc;
}

static void log_json(Trainer *t, cJSON *obj) {
    if (t->log) {
        char *line = cJSON_PrintUnformatted(obj);
        fprintf(t->log, "%s\n", line);
        fflush(t->log);
        free(line);
    }
    cJSON_Delete(obj);
}

static cJSON *metrics_json(const Metrics *mt) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < mt->n; i++) cJSON_AddNumberToObject(o, mt->keys[i], mt->values[i]);
    return o;
}

static int evaluate(Trainer *t, const Features *f, const char *mode, int step, Metrics *mt,
                    Error *e) {
    double t0 = now_seconds();
    memset(mt, 0, sizeof *mt);
    t->eval_step = step;
    t->evaluate(t, f, mt);
    t->time.eval += now_seconds() - t0;
    fprintf(stderr, "\neval %s at step %d:", mode, step);
    for (int i = 0; i < mt->n; i++) fprintf(stderr, " %s %.4f", mt->keys[i], mt->values[i]);
    fprintf(stderr, " (%.1fs)\n", now_seconds() - t0);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "eval");
    cJSON_AddStringToObject(o, "mode", mode);
    cJSON_AddNumberToObject(o, "step", step);
    cJSON_AddItemToObject(o, "metrics", metrics_json(mt));
    log_json(t, o);
    return write_eval_file(t, mode, step, mt, e);
}

/* ---- checkpoints ---- */

static const char *const TOKENIZER_FILES[] = {
    "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "sentencepiece.bpe.model",
    "tokenizer_78b3253a26.model", NULL};
static const char *const CHECKPOINT_FILES[] = {
    "config.json", "model.safetensors", "training_args.json", "optimizer.safetensors",
    "trainer_state.json", NULL};

static int copy_file(const char *src, const char *dst, Error *e) {
    char *data;
    size_t len;
    if (read_file(src, &data, &len, e) != 0) return -1;
    int rc = write_file_atomic(dst, data, len, e);
    free(data);
    return rc;
}

/* removes a checkpoint folder this program wrote (only the files it writes) */
static void remove_checkpoint_dir(const char *dir) {
    for (int pass = 0; pass < 2; pass++) {
        const char *const *names = pass ? TOKENIZER_FILES : CHECKPOINT_FILES;
        for (int i = 0; names[i]; i++) {
            char *p = strfmt("%s/%s", dir, names[i]);
            unlink(p);
            free(p);
        }
    }
    rmdir(dir);
}

static int write_state(const Trainer *t, const char *dir, int epoch, int next_step, Error *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "global_step", t->global_step);
    cJSON_AddNumberToObject(o, "epoch", epoch);
    cJSON_AddNumberToObject(o, "next_step", next_step);
    cJSON_AddNumberToObject(o, "micro_step", (double)t->model->micro_step);
    cJSON_AddNumberToObject(o, "train_loss_sum", t->train_loss_sum);
    cJSON_AddNumberToObject(o, "samples_seen", (double)t->samples_seen);
    cJSON_AddNumberToObject(o, "seed", t->args->seed);
    char *text = cJSON_Print(o), *path = strfmt("%s/trainer_state.json", dir);
    int rc = write_file_atomic(path, text, strlen(text), e);
    free(text), free(path);
    cJSON_Delete(o);
    return rc;
}

static int write_moments(const Model *m, const char *dir, Error *e) {
    float *mv = xmalloc(2 * m->n_floats * sizeof(float));
    model_get_moments(m, mv, mv + m->n_floats);
    TensorSet ts = {0};
    int64_t shape[1] = {(int64_t)m->n_floats};
    tensorset_add_f32(&ts, "exp_avg", mv, 1, shape);
    tensorset_add_f32(&ts, "exp_avg_sq", mv + m->n_floats, 1, shape);
    char *path = strfmt("%s/optimizer.safetensors", dir);
    int rc = safetensors_write(path, &ts, e);
    free(path), free(mv);
    tensorset_free(&ts);
    return rc;
}

/* checkpoint-N in HF layout plus what a resume needs; written to checkpoint-N.tmp and
 * renamed, so a kill never leaves a half-written checkpoint behind */
static int save_checkpoint(Trainer *t, int epoch, int next_step, Error *e) {
    double t0 = now_seconds();
    Model *m = t->model;
    char *dir = strfmt("%s/checkpoint-%d", t->args->output_dir, t->global_step);
    char *tmp = strfmt("%s.tmp", dir);
    remove_checkpoint_dir(tmp);
    int rc = make_dirs(tmp, e);
    ModelConfig cfg = m->cfg;
    cfg.num_labels = m->head == HEAD_QA ? 2 : m->num_labels;
    char *p = strfmt("%s/config.json", tmp);
    if (rc == 0) rc = model_config_write_json(&cfg, p, e);
    free(p);
    p = strfmt("%s/model.safetensors", tmp);
    if (rc == 0) rc = model_save(m, p, e);
    free(p);
    char *args_json = train_args_to_json(t->args);
    p = strfmt("%s/training_args.json", tmp);
    if (rc == 0) rc = write_file_atomic(p, args_json, strlen(args_json), e);
    free(p), free(args_json);
    for (int i = 0; rc == 0 && t->vocab_dir && TOKENIZER_FILES[i]; i++) {
        char *src = strfmt("%s/%s", t->vocab_dir, TOKENIZER_FILES[i]);
        char *dst = strfmt("%s/%s", tmp, TOKENIZER_FILES[i]);
        if (file_exists(src)) rc = copy_file(src, dst, e);
        free(src), free(dst);
    }
    if (rc == 0) rc = write_moments(m, tmp, e);
    if (rc == 0) rc = write_state(t, tmp, epoch, next_step, e);
    if (rc == 0) {
        remove_checkpoint_dir(dir);
        if (rename(tmp, dir) != 0) rc = errorf(e, "%s: cannot rename to %s", tmp, dir);
    }
    /* optimizer state stays only in the newest checkpoint unless save_optimizer asks */
    if (rc == 0 && !t->args->save_optimizer && t->last_checkpoint) {
        char *old = strfmt("%s/optimizer.safetensors", t->last_checkpoint);
        unlink(old);
        free(old);
    }
    if (rc == 0) {
        free(t->last_checkpoint);
        t->last_checkpoint = xstrdup(dir);
        fprintf(stderr, "\nsaved %s (%.1fs)\n", dir, now_seconds() - t0);
    }
    free(dir), free(tmp);
    t->time.checkpoint += now_seconds() - t0;
    return rc;
}

static double json_number(cJSON *o, const char *key) {
    cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* restores weights, AdamW moments, step counters and the sampler position */
static int load_resume_state(Trainer *t, int *epoch, int *next_step, Error *e) {
    const char *dir = t->resume_from;
    Model *m = t->model;
    char *p = strfmt("%s/model.safetensors", dir);
    int rc = model_load(m, p, t->args->seed, e);
    free(p);
    TensorSet ts = {0};
    p = strfmt("%s/optimizer.safetensors", dir);
    if (rc == 0) rc = safetensors_read(p, &ts, e);
    const NamedTensor *ea = rc == 0 ? tensorset_find(&ts, "exp_avg") : NULL;
    const NamedTensor *eb = rc == 0 ? tensorset_find(&ts, "exp_avg_sq") : NULL;
    if (rc == 0 && (!ea || !eb || ea->numel != m->n_floats || eb->numel != m->n_floats))
        rc = errorf(e, "%s: optimizer state does not match this model", p);
    if (rc == 0) {
        float *mv = xmalloc(2 * m->n_floats * sizeof(float));
        rc = tensor_to_f32(ea, mv, e);
        if (rc == 0) rc = tensor_to_f32(eb, mv + m->n_floats, e);
        if (rc == 0) model_set_moments(m, mv, mv + m->n_floats);
        free(mv);
    }
    free(p);
    tensorset_free(&ts);
    char *text = NULL;
    p = strfmt("%s/trainer_state.json", dir);
    if (rc == 0) rc = read_file(p, &text, NULL, e);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    if (rc == 0 && !o) rc = errorf(e, "%s: not valid JSON", p);
    if (rc == 0) {
        t->global_step = (int)json_number(o, "global_step");
        *epoch = (int)json_number(o, "epoch");
        *next_step = (int)json_number(o, "next_step");
        m->micro_step = (uint64_t)json_number(o, "micro_step");
        t->train_loss_sum = json_number(o, "train_loss_sum");
        t->samples_seen = (long)json_number(o, "samples_seen");
        if (t->global_step < 0 || *epoch < 0 || *next_step < 0)
            rc = errorf(e, "%s: missing or negative counters", p);
    }
    cJSON_Delete(o);
    free(text), free(p);
    if (rc == 0) fprintf(stderr, "resuming from %s at step %d\n", dir, t->global_step);
    return rc;
}

/* ---- the loop ---- */

typedef struct {
    int n_batches, epochs, t_total, warmup;
} Plan;

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

static void format_eta(double s, char *buf, size_t n) {
    if (s < 0 || !isfinite(s)) snprintf(buf, n, "?");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

/* a redrawn line on a terminal, a plain line every 30 s otherwise */
typedef struct {
    double start, last_print, loss_sum;
    int loss_count, tty, steps_at_start;
} Progress;

static void progress(Trainer *t, Progress *pg, const Plan *plan, int epoch, float lr, int force) {
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
static void log_step(Trainer *t, const Progress *pg, int epoch, double loss, float lr) {
    double elapsed = now_seconds() - pg->start;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "train");
    cJSON_AddNumberToObject(o, "step", t->global_step);
    cJSON_AddNumberToObject(o, "epoch", epoch + 1);
    cJSON_AddNumberToObject(o, "loss", loss);
    cJSON_AddNumberToObject(o, "lr", lr);
    cJSON_AddNumberToObject(o, "samples_per_s", elapsed > 0 ? t->samples_seen_run / elapsed : 0);
    cJSON_AddNumberToObject(o, "elapsed_s", elapsed);
    log_json(t, o);
}

/* after optimizer step global_step: evaluate and save as the original does */
static int after_step(Trainer *t, int epoch, int next_step, Error *e) {
    const TrainArgs *a = t->args;
    if (a->logging_steps > 0 && t->global_step % a->logging_steps == 0) {
        Metrics mt;
        int on_test = a->evaluate_test_during_training || !t->dev;
        const Features *f = on_test ? t->test : t->dev;
        if (f && evaluate(t, f, on_test ? "test" : "dev", t->global_step, &mt, e) != 0) return -1;
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
    const Features *f = t->train;
    Plan plan = make_plan(a, f->n);
    int accum = a->gradient_accumulation_steps, B = a->train_batch_size;
    int start_epoch = 0, start_step = 0;
    t->global_step = t->first_step;
    if (t->resume_from && load_resume_state(t, &start_epoch, &start_step, e) != 0) return -1;
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
            step_loss += loss;
            pg.loss_sum += loss * accum;
            pg.loss_count++;
            if ((step + 1) % accum == 0 || (plan.n_batches <= accum && step + 1 == plan.n_batches)) {
                int updates = t->global_step - t->first_step;
                lr = linear_schedule_lr((float)a->learning_rate, updates, plan.warmup, plan.t_total);
                AdamWArgs opt = {lr, 0.9f, 0.999f, (float)a->adam_epsilon, (float)a->weight_decay,
                                 updates + 1, (float)a->max_grad_norm};
                model_optimizer_step(m, opt);
                t->global_step++;
                log_step(t, &pg, epoch, step_loss, lr);
                step_loss = 0;
                progress(t, &pg, &plan, epoch, lr, 0);
                double pause = now_seconds();
                rc = after_step(t, epoch, step + 1, e);
                pg.start += now_seconds() - pause; /* throughput counts training only */
                if (rc != 0) break;
            }
            if (a->max_steps > 0 && t->global_step > a->max_steps) {
                stop = 1;
                break;
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

typedef struct {
    int step;
    Metrics metrics;
} StepResult;

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* the steps N of output_dir/checkpoint-N folders, ascending (the original's glob + sort) */
static int *list_checkpoints(const char *dir, int *n) {
    *n = 0;
    int *steps = NULL;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        int step;
        char rest;
        if (sscanf(ent->d_name, "checkpoint-%d%c", &step, &rest) != 1) continue;
        char *w = strfmt("%s/%s/model.safetensors", dir, ent->d_name);
        if (file_exists(w)) {
            steps = xrealloc(steps, (*n + 1) * sizeof(int));
            steps[(*n)++] = step;
        }
        free(w);
    }
    closedir(d);
    qsort(steps, *n, sizeof(int), cmp_int);
    return steps;
}

/* eval_results.txt as the original writes it: "<metric>_<step> = value", sorted by metric
 * then step when there are several checkpoints */
static int write_eval_results(const Trainer *t, const StepResult *r, int n, Error *e) {
    size_t cap = 256 + (size_t)n * METRICS_MAX * 96, len = 0;
    char *text = xcalloc(cap, 1), num[40];
    const char *keys[METRICS_MAX];
    int nk = n ? r[0].metrics.n : 0;
    for (int k = 0; k < nk; k++) keys[k] = r[0].metrics.keys[k];
    qsort(keys, nk, sizeof keys[0], cmp_keys);
    for (int k = 0; k < nk; k++)
        for (int i = 0; i < n; i++) {
            py_float(metrics_get(&r[i].metrics, keys[k]), num, sizeof num);
            len += snprintf(text + len, cap - len, "%s_%d = %s\n", keys[k], r[i].step, num);
        }
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

static int write_results_json(const Trainer *t, const StepResult *r, int n, double total,
                              Error *e) {
    const TaskInfo *task = task_find(t->args->task);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", t->args->task);
    cJSON_AddStringToObject(o, "model_type", t->args->model_type);
    cJSON_AddStringToObject(o, "model_name_or_path", t->args->model_name_or_path);
    cJSON_AddStringToObject(o, "backend", t->model->be->name);
    cJSON_AddNumberToObject(o, "global_step", t->global_step);
    cJSON_AddNumberToObject(o, "train_loss", t->global_step ? t->train_loss_sum / t->global_step : 0);
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
    char *text = cJSON_Print(o), *path = strfmt("%s/results.json", t->args->output_dir);
    int rc = write_file_atomic(path, text, strlen(text), e);
    free(text), free(path);
    cJSON_Delete(o);
    return rc;
}

/* every checkpoint (or the newest) on test; the final in-memory model when none was saved */
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
        char *w = strfmt("%s/checkpoint-%d/model.safetensors", t->args->output_dir, steps[i]);
        rc = model_load(t->model, w, t->args->seed, e);
        free(w);
        if (rc == 0) rc = evaluate(t, t->test, "test", steps[i], &r[k].metrics, e);
    }
    if (rc == 0 && n == 0 && t->args->do_train) { /* nothing saved: score the final weights */
        r[k].step = t->global_step;
        rc = evaluate(t, t->test, "test", t->global_step, &r[k].metrics, e);
        k++;
    }
    free(steps);
    *out = r;
    *n_out = k;
    return rc;
}

static void print_summary(const Trainer *t, const StepResult *r, int n, double total) {
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

int trainer_run(Trainer *t, Error *e) {
    double t0 = now_seconds() - t->time.tokenize;
    if (make_dirs(t->args->output_dir, e) != 0) return -1;
    char *log_path = strfmt("%s/log.jsonl", t->args->output_dir);
    t->log = fopen(log_path, t->resume_from ? "a" : "w");
    free(log_path);
    t->model->seed = (uint64_t)t->args->seed;
    int rc = 0;
    if (t->args->do_train && !t->train) rc = errorf(e, "%s: do_train needs a train_file", t->args->task);
    else if (t->args->do_train) rc = train(t, e);
    StepResult *r = NULL;
    int n = 0;
    if (rc == 0 && t->args->do_eval) {
        rc = evaluate_checkpoints(t, &r, &n, e);
        if (rc == 0) rc = write_eval_results(t, r, n, e);
    }
    double total = now_seconds() - t0;
    if (rc == 0) rc = write_results_json(t, r, n, total, e);
    if (rc == 0) print_summary(t, r, n, total);
    free(r);
    if (t->log) fclose(t->log);
    free(t->last_checkpoint), free(t->test_evals), free(t->test_eval_steps);
    return rc;
}
