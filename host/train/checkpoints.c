/* Checkpoints of a run: checkpoint-N in HF layout plus what a resume needs (optimizer moments,
 * trainer state), written crash-safe; reading that state back; listing a run's checkpoints. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/formats/checkpoint.h"
#include "host/train/train_internal.h"

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
int save_checkpoint(Trainer *t, int epoch, int next_step, Error *e) {
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
int load_resume_state(Trainer *t, int *epoch, int *next_step, Error *e) {
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

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* the steps N of output_dir/checkpoint-N folders, ascending (the original's glob + sort) */
int *list_checkpoints(const char *dir, int *n) {
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
