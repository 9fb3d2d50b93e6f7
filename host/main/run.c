#define _GNU_SOURCE
#include "host/main/run.h"

#include <libgen.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/formats/checkpoint.h"

static void print_help(const char *program, const char *config_hint) {
    fprintf(stderr,
            "usage: %s --task TASK --config_file FILE [--config_dir DIR] [--KEY VALUE ...]\n"
            "\n"
            "Runs the KoELECTRA benchmark's finetuning procedure for TASK with the original's\n"
            "config file DIR/TASK/FILE (DIR defaults to configs), e.g.\n"
            "  %s --task %s --config_file koelectra-small-v3.json\n"
            "\n"
            "Any config key can be overridden: --max_steps 100 --seed 7 --data_dir DIR\n"
            "--model_name_or_path PATH --no_cuda true --learning_rate 3e-5 ...\n"
            "Data is read from data_dir/TASK/, else $KOELECTRA_DATA_DIR/TASK/.\n"
            "\n"
            "Options of this implementation:\n"
            "  --vocab_file PATH             vocabulary (file or folder) when the model folder\n"
            "                                has none, e.g. ../shared/vocab/koelectra-v1/vocab.txt\n"
            "  --model_config FILE           an HF config.json giving the architecture\n"
            "                                (weights are then random unless found)\n"
            "  --pad_to_max_length           pad every batch to max_seq_len as the original\n"
            "                                (default: pad to the longest sequence in the batch)\n"
            "  --unpadded                    pack each batch's real tokens, no padding at all\n"
            "                                (faster; not for QA, whose loss reads the padding)\n"
            "  --resume_from_checkpoint DIR  continue a run from one of its checkpoints\n"
            "  --save_format FORMAT          checkpoint weights: safetensors (default), bin\n"
            "                                (pytorch_model.bin, as the original) or both\n"
            "  --help                        this text\n",
            program, program, config_hint);
}

static int kind_allowed(const TaskInfo *t, const TaskKind *kinds, int n) {
    for (int i = 0; i < n; i++)
        if (t->kind == kinds[i]) return 1;
    return 0;
}

/* the config path: config_dir/task/config_file, or config_file itself when it is absolute
 * or a path that exists (a folder too: the error then names what was given) */
static char *config_path(const char *dir, const char *task, const char *file) {
    if (file[0] == '/' || (strchr(file, '/') && access(file, F_OK) == 0)) return xstrdup(file);
    return strfmt("%s/%s/%s", dir, task, file);
}

/* the options that take no value */
static int is_flag(const char *arg) {
    return !strcmp(arg, "--pad_to_max_length") || !strcmp(arg, "--unpadded");
}

int run_parse(Run *r, int argc, char **argv, const char *program, const TaskKind *kinds,
              int n_kinds, Error *e) {
    memset(r, 0, sizeof *r);
    r->argc = argc;
    r->argv = argv;
    r->lock_fd = -1;
    const char *task = NULL, *file = NULL, *dir = "configs";
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_help(program, kinds[0] == TASK_NER ? "naver-ner" : kinds[0] == TASK_QA ? "korquad" : "nsmc");
            return 1;
        }
    /* first pass: the config's location */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--task")) task = argv[i + 1];
        else if (!strcmp(argv[i], "--config_file")) file = argv[i + 1];
        else if (!strcmp(argv[i], "--config_dir")) dir = argv[i + 1];
        else if (is_flag(argv[i])) i--; /* a flag without a value */
    }
    if (!task) return errorf(e, "%s: --task is required (see --help)", program);
    if (!file) return errorf(e, "%s: --config_file is required (see --help)", program);
    r->task = task_find(task);
    if (!r->task) return errorf(e, "%s: --task: unknown task '%s'", program, task);
    if (!kind_allowed(r->task, kinds, n_kinds))
        return errorf(e, "%s: --task: '%s' is not a task this program runs", program, task);
    r->config_path = config_path(dir, task, file);
    if (train_args_load(r->config_path, &r->args, e) != 0) return -1;
    /* second pass: overrides */
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (is_flag(k)) {
            r->layout = !strcmp(k, "--unpadded") ? LAYOUT_PACKED : LAYOUT_MAX_LENGTH;
            continue;
        }
        if (strncmp(k, "--", 2) != 0) return errorf(e, "%s: unexpected argument '%s'", program, k);
        if (i + 1 >= argc) return errorf(e, "%s: %s needs a value", program, k);
        const char *v = argv[++i];
        if (!strcmp(k, "--task") || !strcmp(k, "--config_file") || !strcmp(k, "--config_dir")) continue;
        else if (!strcmp(k, "--resume_from_checkpoint")) r->resume_from = v;
        else if (!strcmp(k, "--vocab_file")) r->vocab_file = v;
        else if (!strcmp(k, "--model_config")) r->model_config = v;
        else if (train_args_set(&r->args, k + 2, v, e) != 0) return -1;
    }
    if (r->layout == LAYOUT_PACKED && r->task->kind == TASK_QA)
        return errorf(e, "%s: --unpadded: QA batches stay padded (HF's QA loss and answer "
                         "search read the padding positions)", program);
    if (strcmp(r->args.task, task) != 0)
        return errorf(e, "%s: task: '%s', but --task is %s (a config of another task?)",
                      r->config_path, r->args.task, task);
    if (train_args_validate(&r->args, program, e) != 0) return -1;
    /* the original writes to ckpt_dir/output_dir */
    char *out = strfmt("%s/%s", r->args.ckpt_dir, r->args.output_dir);
    snprintf(r->args.output_dir, sizeof r->args.output_dir, "%s", out);
    free(out);
    return 0;
}

char *run_data_path(const Run *r, const char *file) {
    if (!file || !file[0]) return NULL;
    char *p = strfmt("%s/%s/%s", r->args.data_dir, r->task->name, file);
    const char *env = getenv("KOELECTRA_DATA_DIR");
    if (!file_exists(p) && env) {
        free(p);
        p = strfmt("%s/%s/%s", env, r->task->name, file);
    }
    return p;
}

/* the architecture: --model_config, else the model folder's config.json, else the table */
static int resolve_config(Run *r, Error *e) {
    ModelFamily family;
    if (model_family_of(r->args.model_type, &family, e) != 0) return -1;
    if (r->model_config || r->model_dir) {
        r->model_config_path = r->model_config ? xstrdup(r->model_config)
                                               : strfmt("%s/config.json", r->model_dir);
        return model_config_read_as(r->model_config_path, family, &r->cfg, e);
    }
    r->model_config_path = strfmt("%s (built in)", r->args.model_type);
    return model_config_builtin(r->args.model_type, &r->cfg, e);
}

/* where a task config key's value came from: the command line or the config file */
static const char *key_source(const Run *r, const char *key) {
    for (int i = 1; i < r->argc; i++)
        if (!strncmp(r->argv[i], "--", 2) && !strcmp(r->argv[i] + 2, key)) return "command line";
    return r->config_path;
}

static const char *seq_len_key(const Run *r) {
    return r->task->kind == TASK_QA ? "max_seq_length" : "max_seq_len";
}

/* the task config's sequences in the model's position table, the tokenizer's ids in its
 * vocabulary: a mismatch names both files and keys */
static int check_fit(const Run *r, Error *e) {
    const ModelConfig *c = &r->cfg;
    int offset = c->family == FAMILY_XLMR ? c->pad_token_id + 1 : 0; /* XLM-R's position ids */
    const char *len_key = seq_len_key(r);
    if (r->args.max_seq_len > c->max_position_embeddings - offset)
        return errorf(e, "%s: %s: %d exceeds max_position_embeddings %d%s of %s",
                      key_source(r, len_key), len_key, r->args.max_seq_len,
                      c->max_position_embeddings, offset ? " (less pad_token_id + 1)" : "",
                      r->model_config_path);
    int n = tokenizer_vocab_size(r->tok);
    if (n > c->vocab_size)
        return errorf(e, "%s: vocab_size: %d is below the %d tokens of the tokenizer in %s",
                      r->model_config_path, c->vocab_size, n, r->vocab_dir);
    return 0;
}

static int resolve_tokenizer(Run *r, Error *e) {
    if (r->vocab_file) {
        char *copy = xstrdup(r->vocab_file);
        r->vocab_dir = dir_exists(r->vocab_file) ? xstrdup(r->vocab_file) : xstrdup(dirname(copy));
        free(copy);
    } else if (r->model_dir) {
        r->vocab_dir = xstrdup(r->model_dir);
    } else {
        return errorf(e, "%s: model not found and no --vocab_file given: the tokenizer needs a "
                      "vocabulary (for KoELECTRA: --vocab_file ../shared/vocab/koelectra-v1/vocab.txt)",
                      r->args.model_name_or_path);
    }
    r->tok = tokenizer_open_dir(r->vocab_dir, r->args.model_type, r->args.do_lower_case, e);
    return r->tok ? 0 : -1;
}

/* the model is sized for the larger of the train and eval batches */
static int max_batch(const TrainArgs *a) {
    return a->train_batch_size > a->eval_batch_size ? a->train_batch_size : a->eval_batch_size;
}

static HeadKind task_head(const TaskInfo *t) {
    return t->kind == TASK_NER ? HEAD_TOKEN_CLS : t->kind == TASK_QA ? HEAD_QA : HEAD_SEQ_CLS;
}

/* "12.3 GiB" */
static const char *show_bytes(size_t n, char buf[32]) {
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 6) v /= 1024, u++;
    if (n == SIZE_MAX) snprintf(buf, 32, "more than 16 EiB");
    else snprintf(buf, 32, u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

/* A size key the memory needed depends on: its file, name and value, and what the model
 * needs with it set to 1 (the key that shrinks the need most is the one to name). */
typedef struct {
    const char *file, *key;
    long long value;
    size_t need;
} SizeKey;

static size_t need_of(const Run *r, const ModelConfig *c, int B, int T) {
    return model_memory_bytes(c, task_head(r->task), r->task->num_labels, B, T, r->be->act_size);
}

static SizeKey heaviest_key(const Run *r) {
    const ModelConfig *c = &r->cfg;
    const TrainArgs *a = &r->args;
    int B = max_batch(a), T = a->max_seq_len;
    const char *bk = a->train_batch_size >= a->eval_batch_size ? "train_batch_size"
                                                               : "eval_batch_size";
    SizeKey best = {key_source(r, bk), bk, B, need_of(r, c, 1, T)};
    SizeKey len = {key_source(r, seq_len_key(r)), seq_len_key(r), T, need_of(r, c, B, 1)};
    if (len.need < best.need) best = len;
    static const size_t members[] = {
        offsetof(ModelConfig, vocab_size), offsetof(ModelConfig, embedding_size),
        offsetof(ModelConfig, hidden_size), offsetof(ModelConfig, num_layers),
        offsetof(ModelConfig, intermediate_size),
        offsetof(ModelConfig, max_position_embeddings)};
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        int electra = c->family == FAMILY_ELECTRA;
        if (members[i] == offsetof(ModelConfig, embedding_size) && !electra) continue;
        ModelConfig one = *c;
        *(int *)((char *)&one + members[i]) = 1;
        if (!electra) one.embedding_size = one.hidden_size; /* the same key there */
        size_t n = need_of(r, &one, B, T);
        if (n < best.need)
            best = (SizeKey){r->model_config_path, model_config_key(c->family, members[i]),
                             *(const int *)((const char *)c + members[i]), n};
    }
    return best;
}

/* the model's bytes (weights, gradients, AdamW moments, activations) against the backend's
 * memory, before anything is allocated: too much names the key that weighs most */
static int check_memory(const Run *r, Error *e) {
    size_t have = r->be->memory_bytes ? r->be->memory_bytes() : 0;
    int B = max_batch(&r->args), T = r->args.max_seq_len;
    size_t need = need_of(r, &r->cfg, B, T);
    if (have == 0 || need <= have) return 0;
    SizeKey k = heaviest_key(r);
    size_t params = need_of(r, &r->cfg, 0, 0);
    char b1[32], b2[32], b3[32], b4[32];
    char *parts = need == SIZE_MAX ? xstrdup("") /* saturated: no parts to show */
        : strfmt(" (weights, gradients and AdamW moments %s, activations for batches of "
                 "%d x %d %s)", show_bytes(params, b2), B, T, show_bytes(need - params, b3));
    errorf(e, "%s: %s: %lld is too large: the model needs %s of memory%s but the %s backend "
           "has %s", k.file, k.key, k.value, show_bytes(need, b1), parts, r->be->name,
           show_bytes(have, b4));
    free(parts);
    return -1;
}

size_t run_memory_need(const Run *r) {
    return need_of(r, &r->cfg, max_batch(&r->args), r->args.max_seq_len);
}

/* a local path rather than a hub name ("owner/name" or "name") */
static int looks_like_path(const char *s) {
    const char *slash = strchr(s, '/');
    return s[0] == '/' || s[0] == '.' || s[0] == '~' || (slash && strchr(slash + 1, '/'));
}

int run_resolve(Run *r, Error *e) {
    Error miss;
    const char *name = r->args.model_name_or_path;
    r->model_dir = hf_resolve_model(name, &miss);
    if (!r->model_dir && (dir_exists(name) || looks_like_path(name))) {
        if (!dir_exists(name)) return errorf(e, "%s: model_name_or_path does not exist", name);
        return errorf(e, "%s", miss.msg);
    }
    if (r->model_dir) r->weights = hf_weights_file(r->model_dir);
    if (!r->weights)
        fprintf(stderr, "warning: no pretrained weights for %s (%s); training from RANDOM "
                "initialisation: results will not match the benchmark\n",
                r->args.model_name_or_path, r->model_dir ? "no weights file in the folder" : miss.msg);
    if (resolve_config(r, e) != 0 || resolve_tokenizer(r, e) != 0 || check_fit(r, e) != 0)
        return -1;
    r->be = r->args.no_cuda ? NULL : backend_cuda();
    if (!r->be) {
        if (!r->args.no_cuda) fprintf(stderr, "note: no CUDA device; running on the CPU\n");
        r->be = backend_cpu();
    }
    return check_memory(r, e);
}

int run_setup(Run *r, Error *e) {
    if (run_resolve(r, e) != 0) return -1;
    /* before the data is read: a second run into the same folder stops here, and a run whose
     * model or tokenizer is not found, or does not fit, makes no folder */
    r->lock_fd = run_folder_lock(r->args.output_dir, e);
    if (r->lock_fd < 0) return -1;
    fprintf(stderr, "model %s (%s, %d layers, hidden %d), tokenizer %s, backend %s\n",
            r->args.model_name_or_path, r->cfg.model_type, r->cfg.num_layers, r->cfg.hidden_size,
            r->vocab_dir, r->be->name);
    return 0;
}

int run_load_task(const Run *r, Task *task, const char *const files[N_SPLITS], Error *e) {
    char *paths[N_SPLITS];
    for (int s = 0; s < N_SPLITS; s++) paths[s] = run_data_path(r, files[s]);
    TaskSource src = {{paths[0], paths[1], paths[2]}, &r->args, r->tok};
    int rc = task_load(task, r->task, &src, e);
    for (int s = 0; s < N_SPLITS; s++) free(paths[s]);
    return rc;
}

/* the model's backend memory, slab by slab: its peak, as nothing else is allocated per step
 * (the CUDA backend's grow-only scratch aside) */
static void print_memory(const Model *m) {
    static const char *const names[N_SLABS] = {"parameters", "gradients", "optimizer",
                                               "activations"};
    double total = 0;
    fprintf(stderr, "model memory (%s):", m->be->name);
    for (int k = 0; k < N_SLABS; k++) {
        double mib = model_bytes(m, k) / 1048576.0;
        fprintf(stderr, "%s %s %.1f MiB", k ? " +" : "", names[k], mib);
        total += mib;
    }
    fprintf(stderr, " (batches up to %dx%d) = %.1f MiB\n", m->max_B, m->max_T, total);
}

static int create_model(Run *r, Model *m, const TaskInfo *task, Error *e) {
    const TrainArgs *a = &r->args;
    if (model_create(m, &r->cfg, task_head(task), task->num_labels, r->be, max_batch(a),
                     a->max_seq_len, e) != 0)
        return -1;
    print_memory(m);
    if (r->weights) return model_load(m, r->weights, (uint64_t)a->seed, e);
    model_init_random(m, (uint64_t)a->seed);
    return 0;
}

/* config.json's labels for checkpoints: the task's, as the original passes them to
 * from_pretrained; for tasks without (korsts, korquad) the input config's when it has as
 * many, as from_pretrained keeps them; else NULL (HF's LABEL_<i>) */
static int checkpoint_labels(Run *r, int num_labels, Error *e) {
    if (r->task->labels) return 0;
    char *path = r->model_config ? xstrdup(r->model_config)
                 : r->model_dir  ? strfmt("%s/config.json", r->model_dir) : NULL;
    int rc = path ? model_config_labels(path, num_labels, &r->input_labels, e) : 0;
    if (r->input_labels) r->n_input_labels = num_labels;
    free(path);
    return rc;
}

int run_train(Run *r, Trainer *t, double t0, Error *e) {
    Model m = {0};
    int rc = checkpoint_labels(r, t->task->info->num_labels, e);
    if (rc == 0) rc = create_model(r, &m, t->task->info, e);
    if (rc == 0) {
        t->labels = r->task->labels ? r->task->labels : (const char *const *)r->input_labels;
        t->args = &r->args;
        t->model = &m;
        t->tok = r->tok;
        t->vocab_dir = r->vocab_dir;
        t->init_weights = r->weights;
        if (r->layout != LAYOUT_DYNAMIC) t->layout = r->layout;
        t->resume_from = r->resume_from;
        t->time.tokenize = now_seconds() - t0;
        rc = trainer_run(t, e);
    }
    model_free(&m);
    return rc;
}

void run_free(Run *r) {
    free(r->model_dir), free(r->weights), free(r->vocab_dir);
    free(r->config_path), free(r->model_config_path);
    tokenizer_free(r->tok);
    model_config_free_labels(r->input_labels, r->n_input_labels);
    run_folder_unlock(r->lock_fd);
}
