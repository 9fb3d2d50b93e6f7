/* Every original config configs/<task>/<model>.json starts and trains a step on a tiny data_dir with
 * the tiny model (koelectra-*, and kobert/distilkobert when their tokenizer files are here);
 * the ones whose tokenizer cannot be had (hanbert's closed library, xlm-roberta's missing
 * sentencepiece model) fail with one clear line. Each program also runs once with do_eval on,
 * and once with a configured data file missing (one clear line). */
#include "e2e/e2e.h"

#include <dirent.h>

static const char *program_of(const char *task) {
    if (!strcmp(task, "naver-ner")) return "run_ner";
    if (!strcmp(task, "korquad")) return "run_squad";
    return "run_seq_cls";
}

static const char *json_str(cJSON *o, const char *key) {
    cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* the tokenizer files for a model_type, or NULL when they are not available here */
static const char *vocab_for(const E2E *x, const char *model_type) {
    if (!strncmp(model_type, "koelectra", 9)) return x->vocab;
    if ((!strcmp(model_type, "kobert") || !strcmp(model_type, "distilkobert")) &&
        file_exists(E2E_KOBERT_VOCAB "/tokenizer_78b3253a26.model") && file_exists(E2E_VOCAB))
        return E2E_KOBERT_VOCAB;
    return NULL;
}

/* one run of a config with the tiny model; extra = up to 4 more arguments (NULL-ended) */
static int run_config(const E2E *x, const char *task, const char *file, const char *vocab,
                      const char *err, const char *const *extra) {
    char *ckpt = strfmt("%s/ckpt", x->root);
    int korquad = !strcmp(task, "korquad");
    const char *argv[48] = {program_of(task), "--task", task, "--config_file", file,
                            "--data_dir", x->data, "--ckpt_dir", ckpt,
                            "--model_config", x->config, "--vocab_file", vocab,
                            "--no_cuda", "true", "--max_steps", "1", "--do_eval", "false",
                            "--save_steps", "0", "--logging_steps", "0", "--train_batch_size", "2",
                            "--eval_batch_size", "4",
                            korquad ? "--max_seq_length" : "--max_seq_len", korquad ? "96" : "24"};
    int n = 0;
    while (argv[n]) n++;
    if (korquad) {
        const char *q[] = {"--max_query_length", "24", "--doc_stride", "32"};
        for (int i = 0; i < 4; i++) argv[n++] = q[i];
    }
    for (int i = 0; extra && extra[i]; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    int code = e2e_wait(e2e_spawn((char *const *)argv, err));
    free(ckpt);
    return code;
}

static void check_config(const E2E *x, const char *task, const char *file, int *n_ok) {
    char *path = strfmt("configs/%s/%s", task, file), *text;
    if (read_file(path, &text, NULL, &(Error){{0}}) != 0) {
        CHECK(0, "%s: cannot read", path);
        free(path);
        return;
    }
    cJSON *cfg = cJSON_Parse(text);
    const char *keys[] = {"train_file", "dev_file", "test_file", "predict_file"};
    for (int i = 0; i < 4; i++) e2e_data_file(x, task, json_str(cfg, keys[i]), 9);
    const char *model_type = json_str(cfg, "model_type"), *vocab = vocab_for(x, model_type);
    char *err = strfmt("%s/%s-%s.err", x->root, task, file);
    int code = run_config(x, task, file, vocab ? vocab : x->vocab, err, NULL);
    if (vocab) {
        CHECK(code == 0, "%s: exit %d (see %s)", path, code, err);
        *n_ok += code == 0;
    } else {
        e2e_check_one_error(err, code, NULL, path);
    }
    cJSON_Delete(cfg);
    free(text), free(path), free(err);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the *.json names in dir, sorted */
static int list_json(const char *dir, char **names, int max) {
    DIR *d = opendir(dir);
    struct dirent *ent;
    int n = 0;
    while (d && (ent = readdir(d)) && n < max) {
        size_t len = strlen(ent->d_name);
        if (len > 5 && !strcmp(ent->d_name + len - 5, ".json")) names[n++] = xstrdup(ent->d_name);
    }
    if (d) closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    return n;
}

int main(void) {
    E2E x;
    e2e_init(&x, "configs");
    setenv("OMP_NUM_THREADS", "1", 1); /* 86 short runs: thread start-up would dominate */
    const char *tasks[] = {"nsmc", "kornli", "paws", "korsts", "question-pair", "hate-speech",
                           "naver-ner", "korquad"};
    int n_ok = 0, n_configs = 0;
    for (int t = 0; t < 8; t++) {
        char *dir = strfmt("configs/%s", tasks[t]), *names[64];
        int n = list_json(dir, names, 64);
        CHECK(n >= 10, "%s: %d configs", dir, n);
        for (int i = 0; i < n; i++, n_configs++) {
            check_config(&x, tasks[t], names[i], &n_ok);
            free(names[i]);
        }
        free(dir);
    }
    printf("%d configs: %d trained a step, the others failed with one line\n", n_configs, n_ok);
    CHECK(n_ok >= 48, "only %d configs ran", n_ok);

    /* each program with do_eval on: it writes eval_results.txt */
    const char *eval_tasks[] = {"nsmc", "naver-ner", "korquad"};
    const char *out_dirs[] = {"koelectra-small-v3-nsmc-ckpt", "koelectra-small-v3-naver-ner-ckpt",
                              "koelectra-small-v3-korquad-ckpt"};
    for (int i = 0; i < 3; i++) {
        char *err = strfmt("%s/%s-eval.err", x.root, eval_tasks[i]);
        const char *extra[] = {"--do_eval", "true", NULL};
        int code = run_config(&x, eval_tasks[i], "koelectra-small-v3.json", x.vocab, err, extra);
        char *res = strfmt("%s/ckpt/%s/eval_results.txt", x.root, out_dirs[i]);
        CHECK(code == 0 && e2e_count_lines(res) >= 1, "%s with do_eval: exit %d, %s (see %s)",
              eval_tasks[i], code, res, err);
        free(err), free(res);
    }

    /* a configured data file that is missing: one line naming it */
    for (int i = 0; i < 3; i++) {
        char *err = strfmt("%s/%s-missing.err", x.root, eval_tasks[i]);
        const char *extra[] = {"--train_file", "no_such_file.tsv", NULL};
        int code = run_config(&x, eval_tasks[i], "koelectra-small-v3.json", x.vocab, err, extra);
        e2e_check_one_error(err, code, "no_such_file.tsv", eval_tasks[i]);
        free(err);
    }
    return test_exit("test_configs");
}
