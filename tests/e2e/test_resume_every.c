/* Resume from every checkpoint of a short run, the final one included, and end exactly as the
 * uninterrupted run: the same files in the run folder, byte for byte (weights, optimizer and
 * trainer state of every checkpoint, test/test-N.txt, eval_results.txt), the same results.json
 * but for its timings, and the same losses, learning rates and metrics in log.jsonl.
 *
 * max_steps 3 over 3 batches per epoch: the original runs 4 updates (it stops once
 * global_step > max_steps), so checkpoint-3 ends epoch 1 and checkpoint-4 is the final one.
 * Each resume starts from a copy of the uninterrupted run's folder as it was when checkpoint-k
 * was written, at the same path, so that training_args.json compares equal too. */
#include "e2e/e2e.h"

#include <dirent.h>

enum { MAX_STEPS = 3, LAST = MAX_STEPS + 1 };

static char *OUT_NAME = "koelectra-small-v3-nsmc-ckpt";

static int run(const E2E *x, const char *ckpt, const char *resume, const char *err) {
    return e2e_run(err, "run_seq_cls", "--task", "nsmc", "--config_file",
                   "koelectra-small-v3.json", "--data_dir", x->data, "--ckpt_dir", ckpt,
                   "--model_config", x->config, "--vocab_file", x->vocab, "--no_cuda", "true",
                   "--max_steps", "3", "--save_steps", "1", "--logging_steps", "2",
                   "--save_optimizer", "true", "--train_batch_size", "2", "--eval_batch_size", "4",
                   "--max_seq_len", "16", resume ? "--resume_from_checkpoint" : NULL, resume,
                   NULL);
}

static void sh(const char *cmd) {
    if (system(cmd) != 0) e2e_die(cmd);
}

/* the "step" of a log.jsonl line, -1 when it has none */
static int line_step(const char *line) {
    cJSON *o = cJSON_Parse(line);
    cJSON *s = cJSON_GetObjectItem(o, "step");
    int step = cJSON_IsNumber(s) ? s->valueint : -1;
    cJSON_Delete(o);
    return step;
}

/* the run folder as it was right after checkpoint-k was written: later checkpoints, test
 * files (metrics, predictions) and log lines gone, no final results yet */
static void cut_at(const char *out, int k) {
    for (int j = k + 1; j <= LAST; j++) {
        char *cmd = strfmt("rm -rf '%s/checkpoint-%d' '%s/test/'*-%d.*", out, j, out, j);
        sh(cmd);
        free(cmd);
    }
    char *cmd = strfmt("rm -f '%s/eval_results.txt' '%s/results.json'", out, out);
    sh(cmd);
    free(cmd);
    char *log = strfmt("%s/log.jsonl", out), *text;
    if (read_file(log, &text, NULL, &(Error){{0}}) != 0) e2e_die(log);
    FILE *f = fopen(log, "w");
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (line_step(line) <= k) fprintf(f, "%s\n", line);
    fclose(f);
    free(log), free(text);
}

static int same_file(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    if (read_file(a, &x, &nx, &(Error){{0}}) != 0) return 0;
    if (read_file(b, &y, &ny, &(Error){{0}}) != 0) return free(x), 0;
    int same = nx == ny && memcmp(x, y, nx) == 0;
    free(x), free(y);
    return same;
}

/* results.json without what measures this process: time, throughput, peak memory */
static char *results_sans_timing(const char *path) {
    char *text;
    if (read_file(path, &text, NULL, &(Error){{0}}) != 0) return xstrdup("(missing)");
    cJSON *o = cJSON_Parse(text);
    cJSON_DeleteItemFromObject(o, "timing_s");
    cJSON_DeleteItemFromObject(o, "train_samples_per_s");
    cJSON_DeleteItemFromObject(o, "train_tokens_per_s");
    cJSON_DeleteItemFromObject(o, "peak_memory_bytes");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(text);
    return s;
}

/* log.jsonl as "step -> what was logged": train lines keep step, epoch, loss and lr, eval lines
 * their mode and metrics; a later line for the same step wins (the resumed run's) */
static char *log_summary(const char *path) {
    char *text, *lines[2][LAST + 2] = {{0}};
    if (read_file(path, &text, NULL, &(Error){{0}}) != 0) return xstrdup("(missing)");
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        cJSON *type = cJSON_GetObjectItem(o, "type");
        int step = line_step(line), eval = cJSON_IsString(type) && !strcmp(type->valuestring, "eval");
        if (step >= 0 && cJSON_IsString(type)) {
            cJSON_DeleteItemFromObject(o, "samples_per_s");
            cJSON_DeleteItemFromObject(o, "elapsed_s");
            int at = step <= LAST ? step : LAST + 1; /* a step past the end shows as one */
            free(lines[eval][at]);
            lines[eval][at] = cJSON_PrintUnformatted(o);
        }
        cJSON_Delete(o);
    }
    size_t cap = 1 << 16, len = 0;
    char *out = xcalloc(cap, 1);
    for (int s = 0; s <= LAST + 1; s++)
        for (int k = 0; k < 2; k++) {
            if (lines[k][s]) len += snprintf(out + len, cap - len, "%s\n", lines[k][s]);
            free(lines[k][s]);
        }
    free(text);
    return out;
}

/* every file under dir (relative paths, sorted, one per line), the lock file aside */
static void list_tree(const char *dir, const char *rel, char **acc) {
    char *path = strfmt("%s/%s", dir, rel);
    struct dirent **ents;
    int n = scandir(path, &ents, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        char *r = rel[0] ? strfmt("%s/%s", rel, name) : xstrdup(name);
        char *full = strfmt("%s/%s", dir, r);
        if (name[0] == '.' && (!name[1] || !strcmp(name, "..") || !strcmp(name, ".lock"))) {
        } else if (dir_exists(full)) {
            list_tree(dir, r, acc);
        } else {
            char *more = strfmt("%s%s\n", *acc, r);
            free(*acc);
            *acc = more;
        }
        free(r), free(full), free(ents[i]);
    }
    if (n >= 0) free(ents);
    free(path);
}

static void compare_runs(const char *ref, const char *out, int k) {
    char *a = xstrdup(""), *b = xstrdup("");
    list_tree(ref, "", &a);
    list_tree(out, "", &b);
    CHECK(!strcmp(a, b), "resumed from checkpoint-%d: the files differ:\n%s--- uninterrupted:\n%s",
          k, b, a);
    for (char *name = strtok(a, "\n"); name; name = strtok(NULL, "\n")) {
        if (!strcmp(name, "log.jsonl") || !strcmp(name, "results.json")) continue;
        char *p = strfmt("%s/%s", ref, name), *q = strfmt("%s/%s", out, name);
        CHECK(same_file(p, q), "resumed from checkpoint-%d: %s differs", k, name);
        free(p), free(q);
    }
    const char *names[] = {"results.json", "log.jsonl"};
    for (int i = 0; i < 2; i++) {
        char *p = strfmt("%s/%s", ref, names[i]), *q = strfmt("%s/%s", out, names[i]);
        char *x = i ? log_summary(p) : results_sans_timing(p);
        char *y = i ? log_summary(q) : results_sans_timing(q);
        CHECK(!strcmp(x, y), "resumed from checkpoint-%d: %s differs:\n%s--- uninterrupted:\n%s",
              k, names[i], y, x);
        free(p), free(q), free(x), free(y);
    }
    free(a), free(b);
}

int main(void) {
    E2E x;
    e2e_init(&x, "resume_every");
    e2e_small_vocab(&x);
    e2e_task_data(&x, "nsmc", 7); /* 6 rows: 3 batches of 2 */
    char *ckpt = strfmt("%s/run", x.root), *keep = strfmt("%s/ref", x.root);
    char *out = strfmt("%s/%s", ckpt, OUT_NAME), *ref = strfmt("%s/%s", keep, OUT_NAME);
    char *err = strfmt("%s/ref.err", x.root);
    int code = run(&x, ckpt, NULL, err);
    CHECK(code == 0, "uninterrupted run exit %d (see %s)", code, err);
    char *cmd = strfmt("mv '%s' '%s'", ckpt, keep);
    sh(cmd);
    free(cmd);
    char *last = strfmt("%s/checkpoint-%d/model.safetensors", ref, LAST);
    CHECK(file_exists(last), "the uninterrupted run has no %s", last);

    for (int k = 1; k <= LAST; k++) {
        cmd = strfmt("rm -rf '%s' && mkdir -p '%s' && cp -a '%s' '%s/'", ckpt, ckpt, ref, ckpt);
        sh(cmd);
        free(cmd);
        cut_at(out, k);
        char *from = strfmt("%s/checkpoint-%d", out, k), *err_k = strfmt("%s/resume-%d.err", x.root, k);
        code = run(&x, ckpt, from, err_k);
        CHECK(code == 0, "resume from checkpoint-%d: exit %d (see %s)", k, code, err_k);
        compare_runs(ref, out, k);
        printf("resumed from checkpoint-%d of %d: %s\n", k, LAST, test_failures ? "differs" : "same end state");
        free(from), free(err_k);
    }
    free(ckpt), free(keep), free(out), free(ref), free(err), free(last);
    return test_exit("test_resume_every");
}
