#include "host/formats/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/model/model_config.h"
#include "host/text/pyfmt.h"

/* Keys the original benchmark reads but this project does not use. */
static const struct {
    const char *name, *reason;
} IGNORED_KEYS[] = {
    {"threads", "worker processes for the original's SQuAD feature conversion; ours is serial"},
    {"verbose_logging", "only adds debug log lines to the original's QA post-processing"},
    {"overwrite_output_dir", "never read by the original; output is always (over)written"},
};

typedef enum { K_STR, K_INT, K_NUM, K_BOOL } KeyType;

/* One row per accepted key. Numbers must lie in [lo, hi] (lo excluded when lo_open). */
typedef struct {
    const char *name;
    KeyType type;
    size_t offset, size;
    double lo, hi;
    int lo_open;
    const char *const *choices; /* K_STR: NULL-terminated allowed values, or NULL for any */
} Key;

static const char *const TASKS[] = {"nsmc",     "kornli",    "paws",  "korsts", "question-pair",
                                    "hate-speech", "naver-ner", "korquad", NULL};

#define F(field) offsetof(TrainArgs, field), sizeof(((TrainArgs *)0)->field)
#define STR(name, choices) {#name, K_STR, F(name), 0, 0, 0, choices}
#define BOOL(name) {#name, K_BOOL, F(name), 0, 1, 0, NULL}
#define INT(name, lo, hi) {#name, K_INT, F(name), lo, hi, 0, NULL}
#define NUM(name, lo, hi, open) {#name, K_NUM, F(name), lo, hi, open, NULL}
#define BIG 2147483647.0

static const char *const SAVE_FORMATS[] = {"safetensors", "bin", "both", NULL};

static const Key KEYS[] = {
    STR(task, TASKS),
    STR(model_type, BENCHMARK_MODEL_TYPES),
    STR(model_name_or_path, NULL),
    STR(data_dir, NULL),
    STR(ckpt_dir, NULL),
    STR(output_dir, NULL),
    STR(train_file, NULL),
    STR(dev_file, NULL),
    STR(test_file, NULL),
    STR(predict_file, NULL),
    BOOL(do_train),
    BOOL(do_eval),
    BOOL(eval_all_checkpoints),
    BOOL(do_lower_case),
    BOOL(no_cuda),
    BOOL(save_optimizer),
    BOOL(evaluate_test_during_training),
    BOOL(evaluate_during_training),
    INT(max_seq_len, 4, 4096),
    {"max_seq_length", K_INT, F(max_seq_len), 4, 4096, 0, NULL}, /* korquad's spelling */
    INT(doc_stride, 1, 4096),
    INT(max_query_length, 1, 4096),
    INT(max_answer_length, 1, 4096),
    INT(n_best_size, 1, 10000),
    {"version_2_with_negative", K_BOOL, F(version_2_with_negative), 0, 0, 0, NULL}, /* v1 only */
    NUM(null_score_diff_threshold, -INFINITY, INFINITY, 0),
    NUM(num_train_epochs, 0, 1e6, 0),
    NUM(learning_rate, 0, 1, 1),
    NUM(weight_decay, 0, 1e6, 0),
    NUM(adam_epsilon, 0, 1, 0),
    NUM(warmup_proportion, 0, 1, 0),
    NUM(max_grad_norm, 0, INFINITY, 1),
    INT(gradient_accumulation_steps, 1, BIG),
    INT(max_steps, -1, BIG),
    INT(seed, 0, BIG),
    /* CUDA's attention grid has the batch as its z dimension (at most 65535); batch x
     * max_seq_len then fits the int row counts too */
    INT(train_batch_size, 1, 65535),
    INT(eval_batch_size, 1, 65535),
    INT(logging_steps, 0, BIG),
    INT(save_steps, 0, BIG),
    STR(save_format, SAVE_FORMATS),
};
#define NKEYS ((int)(sizeof KEYS / sizeof KEYS[0]))
_Static_assert(NKEYS <= 64, "TrainArgs.present has one bit per key");

/* Keys without which the original fails (it reads them unconditionally). */
static const char *const REQUIRED[] = {"task", "model_type", "model_name_or_path", "data_dir",
                                       "ckpt_dir", "output_dir", "train_file", "num_train_epochs",
                                       "learning_rate", "train_batch_size", "eval_batch_size", NULL};
static const char *const REQUIRED_QA[] = {"predict_file", "doc_stride", "max_query_length",
                                          "max_answer_length", "n_best_size", NULL};

static int find_key(const char *name) {
    for (int i = 0; i < NKEYS; i++)
        if (strcmp(KEYS[i].name, name) == 0) return i;
    return -1;
}

static const char *ignored_reason(const char *name) {
    for (size_t i = 0; i < sizeof IGNORED_KEYS / sizeof IGNORED_KEYS[0]; i++)
        if (strcmp(IGNORED_KEYS[i].name, name) == 0) return IGNORED_KEYS[i].reason;
    return NULL;
}

static int is_present(const TrainArgs *a, const char *name) {
    int i = find_key(name);
    return i >= 0 && (a->present >> i & 1);
}

static void set_defaults(TrainArgs *a) {
    memset(a, 0, sizeof *a);
    a->max_seq_len = 128;
    a->doc_stride = 128;
    a->max_query_length = 64;
    a->max_answer_length = 30;
    a->n_best_size = 20;
    a->adam_epsilon = 1e-8;
    a->max_grad_norm = 1.0;
    a->gradient_accumulation_steps = 1;
    a->max_steps = -1;
    a->seed = 42;
    a->logging_steps = 500;
    a->save_steps = 500;
    strcpy(a->save_format, "safetensors");
}

/* ---- storing one value, with the checks every source of values shares ---- */

static int check_range(const Key *k, double v, const char *where, Error *e) {
    /* 1e999 reads as inf, which training_args.json could only write as null */
    if (!isfinite(v))
        return errorf(e, "%s: %s: must be a finite number (got %g)", where, k->name, v);
    int low = k->lo_open ? !(v > k->lo) : !(v >= k->lo);
    if (low || v > k->hi) {
        if (k->type == K_INT && k->hi >= BIG)
            return errorf(e, "%s: %s: must be >= %g (got %g)", where, k->name, k->lo, v);
        if (isinf(k->hi))
            return errorf(e, "%s: %s: must be %s %g (got %g)", where, k->name,
                          k->lo_open ? ">" : ">=", k->lo, v);
        return errorf(e, "%s: %s: must be in %c%g, %g] (got %g)", where, k->name,
                      k->lo_open ? '(' : '[', k->lo, k->hi, v);
    }
    return 0;
}

static int store_str(TrainArgs *a, const Key *k, const char *s, const char *where, Error *e) {
    if (strlen(s) >= k->size)
        return errorf(e, "%s: %s: longer than %zu bytes", where, k->name, k->size - 1);
    if (k->choices) {
        int ok = 0;
        for (const char *const *c = k->choices; *c; c++) ok |= strcmp(*c, s) == 0;
        if (!ok) return errorf(e, "%s: %s: unknown value \"%s\"", where, k->name, s);
    }
    strncpy((char *)a + k->offset, s, k->size); /* zero-fills the rest: equal args compare equal */
    return 0;
}

static int store_number(TrainArgs *a, const Key *k, double v, const char *where, Error *e) {
    if (k->type == K_INT && v != floor(v))
        return errorf(e, "%s: %s: expected an integer, got %g", where, k->name, v);
    if (check_range(k, v, where, e)) return -1;
    if (k->type == K_INT)
        *(int *)((char *)a + k->offset) = (int)v;
    else
        *(double *)((char *)a + k->offset) = v;
    return 0;
}

static int store_bool(TrainArgs *a, const Key *k, int v, const char *where, Error *e) {
    if (v > k->hi) return errorf(e, "%s: %s: only false is supported", where, k->name);
    *(int *)((char *)a + k->offset) = v;
    return 0;
}

static int store_json(TrainArgs *a, const Key *k, const cJSON *v, const char *where, Error *e) {
    static const char *const want[] = {"a string", "an integer", "a number", "true or false"};
    int ok = k->type == K_STR    ? cJSON_IsString(v)
             : k->type == K_BOOL ? cJSON_IsBool(v)
                                 : cJSON_IsNumber(v);
    if (!ok)
        return errorf(e, "%s: %s: expected %s, got %s", where, k->name, want[k->type],
                      json_type_name(v));
    if (k->type == K_STR) return store_str(a, k, v->valuestring, where, e);
    if (k->type == K_BOOL) return store_bool(a, k, cJSON_IsTrue(v), where, e);
    return store_number(a, k, v->valuedouble, where, e);
}

static int store_string_value(TrainArgs *a, const Key *k, const char *s, const char *where,
                              Error *e) {
    if (k->type == K_STR) return store_str(a, k, s, where, e);
    if (k->type == K_BOOL) {
        int v = !strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "1");
        if (!v && strcmp(s, "false") && strcmp(s, "False") && strcmp(s, "0"))
            return errorf(e, "%s: %s: expected true or false, got \"%s\"", where, k->name, s);
        return store_bool(a, k, v, where, e);
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE)
        return errorf(e, "%s: %s: expected %s, got \"%s\"", where, k->name,
                      k->type == K_INT ? "an integer" : "a number", s);
    return store_number(a, k, v, where, e);
}

/* ---- checks between keys ---- */

static int check_required(const TrainArgs *a, const char *const *names, const char *where,
                          Error *e) {
    for (; *names; names++)
        if (!is_present(a, *names))
            return errorf(e, "%s: %s: missing (required)", where, *names);
    return 0;
}

int train_args_validate(const TrainArgs *a, const char *where, Error *e) {
    if (check_required(a, REQUIRED, where, e)) return -1;
    if (!is_present(a, "max_seq_len") && !is_present(a, "max_seq_length"))
        return errorf(e, "%s: max_seq_len: missing (required)", where);
    int qa = strcmp(a->task, "korquad") == 0;
    if (qa && check_required(a, REQUIRED_QA, where, e)) return -1;
    if (qa && a->max_query_length >= a->max_seq_len - 3)
        return errorf(e, "%s: max_query_length: %d leaves no room for the context in %d tokens",
                      where, a->max_query_length, a->max_seq_len);
    if (a->do_train && !a->train_file[0])
        return errorf(e, "%s: train_file: empty but do_train is true", where);
    return 0;
}

/* ---- the public functions ---- */

int train_args_load(const char *path, TrainArgs *a, Error *e) {
    set_defaults(a);
    char *text;
    if (read_file(path, &text, NULL, e)) return -1;
    const char *at = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &at, 1);
    if (!root) {
        int line = 1;
        for (const char *p = text; at && p < at && *p; p++) line += *p == '\n';
        free(text);
        return errorf(e, "%s: line %d: invalid JSON", path, line);
    }
    free(text);
    int rc = 0;
    if (!cJSON_IsObject(root)) rc = errorf(e, "%s: top level: expected a JSON object", path);
    for (cJSON *it = root->child; !rc && it; it = it->next) {
        int i = find_key(it->string);
        if (i < 0) {
            if (!ignored_reason(it->string))
                fprintf(stderr, "%s: %s: unknown, ignored\n", path, it->string);
            continue;
        }
        rc = store_json(a, &KEYS[i], it, path, e);
        a->present |= 1ull << i;
    }
    cJSON_Delete(root);
    if (!rc && is_present(a, "max_seq_len") && is_present(a, "max_seq_length"))
        rc = errorf(e, "%s: max_seq_length: given together with max_seq_len", path);
    return rc ? rc : train_args_validate(a, path, e);
}

int train_args_set(TrainArgs *a, const char *key, const char *value, Error *e) {
    int i = find_key(key);
    if (i < 0)
        return errorf(e, "command line: --%s: %s", key,
                      ignored_reason(key) ? "not used by this project" : "unknown option");
    if (store_string_value(a, &KEYS[i], value, "command line", e)) return -1;
    /* max_seq_len / max_seq_length: keep the spelling the file used */
    int alias = find_key(i == find_key("max_seq_len") ? "max_seq_length" : "max_seq_len");
    if (KEYS[alias].offset == KEYS[i].offset && (a->present >> alias & 1)) i = alias;
    a->present |= 1ull << i;
    return 0;
}

char *train_args_to_json(const TrainArgs *a) {
    cJSON *root = cJSON_CreateObject();
    for (int i = 0; i < NKEYS; i++) {
        if (!(a->present >> i & 1)) continue;
        const Key *k = &KEYS[i];
        const char *p = (const char *)a + k->offset;
        if (k->type == K_STR) cJSON_AddStringToObject(root, k->name, p);
        if (k->type == K_BOOL) cJSON_AddBoolToObject(root, k->name, *(const int *)p);
        if (k->type == K_INT) cJSON_AddNumberToObject(root, k->name, *(const int *)p);
        if (k->type == K_NUM)
            cJSON_AddItemToObject(root, k->name, py_json_number(*(const double *)p));
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    char *out = xstrdup(s);
    cJSON_free(s);
    return out;
}
