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
#include "host/train/trainer_state.h"

/* copied from the tokenizer's folder when there; tokenizer_config.json is written instead */
static const char *const TOKENIZER_FILES[] = {
    "vocab.txt", "special_tokens_map.json", "sentencepiece.bpe.model",
    "tokenizer_78b3253a26.model", NULL};
static const char *const CHECKPOINT_FILES[] = {
    "config.json", "model.safetensors", "pytorch_model.bin", "tokenizer_config.json",
    "training_args.json", "optimizer.safetensors", "trainer_state.json", NULL};

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

static int write_json(const char *path, cJSON *o, Error *e) {
    char *text = cJSON_Print(o);
    int rc = write_file_atomic(path, text, strlen(text), e);
    cJSON_free(text);
    cJSON_Delete(o);
    return rc;
}

/* the class transformers' AutoTokenizer must load for these files; KoBERT's is monologg's
 * KoBertTokenizer, which transformers lacks: named, AutoTokenizer fails loudly instead of
 * reading the SentencePiece vocabulary as WordPiece */
static const char *tokenizer_class(const Trainer *t) {
    switch (tokenizer_get_kind(t->tok)) {
    case TOK_KOBERT: return "KoBertTokenizer";
    case TOK_XLMR: return "XLMRobertaTokenizer";
    default: return t->model->cfg.family == FAMILY_ELECTRA ? "ElectraTokenizer" : "BertTokenizer";
    }
}

/* tokenizer_config.json: the tokenizer folder's (warned about and replaced when it is not a
 * readable JSON object), with tokenizer_class and, for WordPiece, the do_lower_case this run used */
static int write_tokenizer_config(const Trainer *t, const char *dir, Error *e) {
    char *src = strfmt("%s/tokenizer_config.json", t->vocab_dir), *text = NULL;
    cJSON *o = NULL;
    if (file_exists(src) &&
        (read_file(src, &text, NULL, NULL) != 0 || !cJSON_IsObject(o = cJSON_Parse(text))))
        fprintf(stderr, "warning: %s: unreadable or not a JSON object; checkpoints get a new "
                "one\n", src);
    if (!cJSON_IsObject(o)) cJSON_Delete(o), o = cJSON_CreateObject();
    cJSON_DeleteItemFromObject(o, "tokenizer_class");
    cJSON_AddStringToObject(o, "tokenizer_class", tokenizer_class(t));
    if (tokenizer_get_kind(t->tok) == TOK_WORDPIECE) {
        cJSON_DeleteItemFromObject(o, "do_lower_case");
        cJSON_AddBoolToObject(o, "do_lower_case", tokenizer_lowercases(t->tok));
    }
    char *dst = strfmt("%s/tokenizer_config.json", dir);
    int rc = write_json(dst, o, e);
    free(src), free(text), free(dst);
    return rc;
}

/* config.json as save_pretrained writes it for the finetuned model: its class, the labels */
static int write_config(const Trainer *t, const char *dir, Error *e) {
    static const char *const family[] = {"Electra", "Bert", "DistilBert", "XLMRoberta"};
    static const char *const head[] = {"ForSequenceClassification", "ForTokenClassification",
                                       "ForQuestionAnswering"};
    const Model *m = t->model;
    ModelConfig cfg = m->cfg;
    cfg.num_labels = m->head == HEAD_QA ? 2 : m->num_labels;
    snprintf(cfg.architecture, sizeof cfg.architecture, "%s%s",
             strcmp(cfg.model_type, "roberta") ? family[cfg.family] : "Roberta", head[m->head]);
    char *p = strfmt("%s/config.json", dir);
    int rc = model_config_write_checkpoint(&cfg, t->labels, t->tok ? tokenizer_class(t) : NULL,
                                           p, e);
    free(p);
    return rc;
}

int checkpoint_write_hf(const Trainer *t, const char *dir, Error *e) {
    const char *format = t->args->save_format;
    int rc = write_config(t, dir, e);
    for (int bin = 0; bin < 2 && rc == 0; bin++) {
        if (strcmp(format, "both") && strcmp(format, bin ? "bin" : "safetensors")) continue;
        char *p = strfmt("%s/%s", dir, bin ? "pytorch_model.bin" : "model.safetensors");
        rc = model_save(t->model, p, e);
        free(p);
    }
    for (int i = 0; rc == 0 && t->vocab_dir && TOKENIZER_FILES[i]; i++) {
        char *src = strfmt("%s/%s", t->vocab_dir, TOKENIZER_FILES[i]);
        char *dst = strfmt("%s/%s", dir, TOKENIZER_FILES[i]);
        if (file_exists(src)) rc = copy_file(src, dst, e);
        free(src), free(dst);
    }
    if (rc == 0 && t->tok && t->vocab_dir) rc = write_tokenizer_config(t, dir, e);
    return rc;
}

static int write_state(const Trainer *t, const char *dir, int epoch, int next_step, Error *e) {
    TrainerState s = {.global_step = t->global_step, .epoch = epoch, .next_step = next_step,
                      .micro_step = (long)t->model->micro_step, .samples_seen = t->samples_seen,
                      .seed = t->args->seed, .train_loss_sum = t->train_loss_sum};
    char *text = trainer_state_to_json(&s), *path = strfmt("%s/trainer_state.json", dir);
    int rc = write_file_atomic(path, text, strlen(text), e);
    free(path), free(text);
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
    if (rc == 0) rc = checkpoint_write_hf(t, tmp, e);
    char *args_json = train_args_to_json(t->args), *p = strfmt("%s/training_args.json", tmp);
    if (rc == 0) rc = write_file_atomic(p, args_json, strlen(args_json), e);
    free(p), free(args_json);
    if (rc == 0) rc = write_moments(m, tmp, e);
    if (rc == 0) rc = write_state(t, tmp, epoch, next_step, e);
    if (rc == 0) {
        remove_checkpoint_dir(dir);
        if (rename(tmp, dir) != 0) rc = errorf(e, "%s: cannot rename to %s", tmp, dir);
    }
    if (rc != 0) remove_checkpoint_dir(tmp); /* a failed write (disk full) leaves nothing */
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

/* trainer_state.json, checked against this run (trainer_state.c), into the trainer */
static int read_state(Trainer *t, const Plan *p, const char *path, int *epoch, int *next_step,
                      Error *e) {
    char *text;
    if (read_file(path, &text, NULL, e) != 0) return -1;
    const TrainArgs *a = t->args;
    ResumeRun run = {.n_batches = p->n_batches, .epochs = p->epochs,
                     .accum = a->gradient_accumulation_steps, .batch_size = a->train_batch_size,
                     .n_examples = task_split(t->task, SPLIT_TRAIN)->n,
                     .first_step = t->first_step, .max_steps = a->max_steps, .seed = a->seed};
    TrainerState s;
    int rc = trainer_state_parse(text, path, &run, &s, e);
    free(text);
    if (rc) return rc;
    t->global_step = (int)s.global_step;
    *epoch = (int)s.epoch;
    *next_step = (int)s.next_step;
    t->model->micro_step = (uint64_t)s.micro_step;
    t->train_loss_sum = s.train_loss_sum;
    t->samples_seen = s.samples_seen;
    return 0;
}

/* restores the step counters and sampler position (checked first: they are cheap), then the
 * weights (either format) and the AdamW moments */
int load_resume_state(Trainer *t, const Plan *plan, int *epoch, int *next_step, Error *e) {
    const char *dir = t->resume_from;
    Model *m = t->model;
    char *p = strfmt("%s/trainer_state.json", dir);
    int rc = read_state(t, plan, p, epoch, next_step, e);
    free(p);
    char *w = rc == 0 ? hf_weights_file(dir) : NULL;
    if (rc == 0 && !w) rc = errorf(e, "%s: no model.safetensors or pytorch_model.bin", dir);
    if (rc == 0) rc = model_load(m, w, t->args->seed, e);
    free(w);
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
    if (rc == 0) fprintf(stderr, "resuming from %s at step %d\n", dir, t->global_step);
    return rc;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* the steps N of output_dir/checkpoint-N folders with model.safetensors or pytorch_model.bin
 * (what the original writes), ascending (the original's glob + sort) */
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
        char *sub = strfmt("%s/%s", dir, ent->d_name), *w = hf_weights_file(sub);
        if (w) {
            steps = xrealloc(steps, (*n + 1) * sizeof(int));
            steps[(*n)++] = step;
        }
        free(sub), free(w);
    }
    closedir(d);
    if (*n > 1) qsort(steps, *n, sizeof(int), cmp_int); /* qsort(NULL, 0) is undefined */
    return steps;
}
