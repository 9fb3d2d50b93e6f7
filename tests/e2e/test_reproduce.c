/* reproduce over all 8 tasks with 2 seeds on a tiny model: every cell of results.json present
 * with its published number, mean/std/min/max recomputed here from the runs' own results.json,
 * timings and pictures present; a run killed mid-way is resumed by the same command; a task
 * without data gets "no data"; missing weights stop it before any step, naming where it looked. */
#include "e2e/e2e.h"

#include <math.h>
#include <time.h>

static const char *const TASKS[] = {"nsmc",          "naver-ner", "paws",    "kornli",
                                    "korsts",        "question-pair", "korquad", "hate-speech"};

/* reproduce's argv: the common options, then extra (NULL-terminated) */
static int run_reproduce(const E2E *x, const char *out, const char *err, char **extra, pid_t *bg) {
    char *argv[64] = {"reproduce", "--model", "koelectra-small-v3", "--out", (char *)out,
                      "--data_dir", (char *)x->data, "--model_config", (char *)x->config,
                      "--vocab_file", (char *)x->vocab, "--no_cuda", "true",
                      "--train_batch_size", "4", "--eval_batch_size", "16"};
    int n = 17;
    while (*extra) argv[n++] = *extra++;
    argv[n] = NULL;
    pid_t pid = e2e_spawn(argv, err);
    if (bg) return *bg = pid, 0;
    return e2e_wait(pid);
}

static cJSON *read_json(const char *path) {
    char *text = NULL;
    cJSON *o = read_file(path, &text, NULL, &(Error){{0}}) == 0 ? cJSON_Parse(text) : NULL;
    free(text);
    return o;
}

/* the column's first metric (percent) of a run's best result, read from its own files */
static double run_best(const char *out, const char *task, int seed) {
    char *p = strfmt("%s/runs/%s/seed-%d/results.json", out, task, seed);
    cJSON *o = read_json(p);
    free(p);
    const char *key = !strcmp(task, "korquad") ? "official_exact_match"
                      : !strcmp(task, "korsts") ? "spearmanr" : !strcmp(task, "naver-ner") ||
                        !strcmp(task, "hate-speech") ? "f1" : "acc";
    cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "best"), "metrics"), key);
    double v = cJSON_IsNumber(m) ? m->valuedouble * (!strcmp(task, "korquad") ? 1 : 100) : NAN;
    cJSON_Delete(o);
    return v;
}

static double first_number(cJSON *cell, const char *key) {
    cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(cell, key), 0);
    return cJSON_IsNumber(a) ? a->valuedouble : NAN;
}

/* every task's cell: status, n, the published number, and statistics equal to ours */
static void check_cells(const char *out) {
    char *path = strfmt("%s/results.json", out);
    cJSON *all = read_json(path);
    CHECK(all != NULL, "%s: not written or not JSON", path);
    cJSON *tasks = cJSON_GetObjectItem(all, "tasks");
    for (int t = 0; t < 8; t++) {
        cJSON *cell = cJSON_GetObjectItem(tasks, TASKS[t]);
        cJSON *status = cJSON_GetObjectItem(cell, "status");
        CHECK(cJSON_IsString(status) && !strcmp(status->valuestring, "ok"), "%s: status not ok", TASKS[t]);
        CHECK(cJSON_GetObjectItem(cell, "n") && cJSON_GetObjectItem(cell, "n")->valueint == 2,
              "%s: n is not 2", TASKS[t]);
        CHECK(isfinite(first_number(cell, "published")), "%s: no published number", TASKS[t]);
        double a = run_best(out, TASKS[t], 1), b = run_best(out, TASKS[t], 2);
        double mean = (a + b) / 2, std = fabs(a - b) / sqrt(2.0); /* sample std of two */
        CHECK(fabs(first_number(cell, "mean") - mean) < 1e-9, "%s: mean %g, want %g", TASKS[t],
              first_number(cell, "mean"), mean);
        CHECK(fabs(first_number(cell, "std") - std) < 1e-9, "%s: std %g, want %g", TASKS[t],
              first_number(cell, "std"), std);
        CHECK(first_number(cell, "min") == fmin(a, b) && first_number(cell, "max") == fmax(a, b),
              "%s: min/max", TASKS[t]);
        CHECK(fabs(first_number(cell, "difference") - (mean - first_number(cell, "published"))) < 1e-9,
              "%s: difference", TASKS[t]);
        cJSON *run = cJSON_GetArrayItem(cJSON_GetObjectItem(cell, "runs"), 0);
        cJSON *train = cJSON_GetObjectItem(cJSON_GetObjectItem(run, "timing_s"), "train");
        CHECK(cJSON_IsNumber(train) && train->valuedouble > 0, "%s: no train time", TASKS[t]);
        CHECK(cJSON_IsString(cJSON_GetObjectItem(run, "command")), "%s: no command", TASKS[t]);
        char *svg = strfmt("%s/runs/%s/seed-1/curves.svg", out, TASKS[t]);
        CHECK(file_exists(svg), "%s missing", svg);
        free(svg);
    }
    cJSON_Delete(all);
    free(path);
}

static void check_table_text(const char *out) {
    char *path = strfmt("%s/results.md", out), *md = NULL;
    CHECK(read_file(path, &md, NULL, &(Error){{0}}) == 0, "%s not written", path);
    const char *want[] = {"NOT comparable", "| NSMC (acc) |", "KoELECTRA-Small-v3 (published)",
                          "89.36", "82.11 / 91.13", "## Which evaluation", "## Runs",
                          "wall time", "./build/run_squad --task korquad", NULL};
    for (int i = 0; md && want[i]; i++) CHECK(strstr(md, want[i]), "%s lacks '%s'", path, want[i]);
    free(md), free(path);
}

/* a run SIGKILLed (with reproduce) after its second checkpoint resumes from it when the same
 * command is given again, and finishes */
static void check_kill_resume(const E2E *x, const char *out) {
    char *extra[] = {"--tasks", "nsmc", "--seeds", "3", "--random_init", "--max_steps", "12",
                     "--save_steps", "2", "--logging_steps", "0", NULL};
    char *err = strfmt("%s/kill.err", x->root), *err2 = strfmt("%s/resume.err", x->root);
    char *ckpt = strfmt("%s/runs/nsmc/seed-3/checkpoint-4/trainer_state.json", out);
    pid_t pid;
    run_reproduce(x, out, err, extra, &pid);
    for (int i = 0; i < 600 && !file_exists(ckpt); i++) nanosleep(&(struct timespec){0, 50000000}, NULL);
    kill(pid, SIGKILL);
    e2e_wait(pid);
    CHECK(file_exists(ckpt), "no checkpoint-4 before the kill (see %s)", err);
    nanosleep(&(struct timespec){0, 200000000}, NULL); /* the run dies with reproduce */
    int code = run_reproduce(x, out, err2, extra, NULL);
    CHECK(code == 0, "resumed reproduce exit %d (see %s)", code, err2);
    CHECK(e2e_lines_with(err2, "reproduce: koelectra-small-v3, 1 tasks x 1 seeds = 1 runs: 0 to run, 1 to resume", NULL, 0) == 1,
          "the second invocation does not resume (see %s)", err2);
    char *res = strfmt("%s/runs/nsmc/seed-3/results.json", out);
    cJSON *o = read_json(res);
    cJSON *steps = cJSON_GetObjectItem(o, "global_step");
    /* 13: as the original, a run ends once global_step > max_steps (test_resume_every) */
    CHECK(cJSON_IsNumber(steps) && steps->valueint == 13, "resumed run: global_step not 13 (%s)", res);
    cJSON_Delete(o);
    free(err), free(err2), free(ckpt), free(res);
}

/* a task without data is a "no data" cell, the others run; no weights and no --random_init
 * stops before any step with one line naming where it looked */
static void check_no_data_no_weights(const E2E *x) {
    char *out = strfmt("%s/out-nodata", x->root), *empty = strfmt("%s/empty", x->root);
    char *err = strfmt("%s/nodata.err", x->root);
    make_dirs(empty, &(Error){{0}});
    char *extra[] = {"--tasks", "kornli,question-pair", "--random_init", "--max_steps", "1", NULL};
    char *train = strfmt("%s/kornli/multinli.train.ko.tsv", x->data);
    CHECK(unlink(train) == 0, "%s: cannot remove", train);
    free(train);
    int code = run_reproduce(x, out, err, extra, NULL);
    char *path = strfmt("%s/results.json", out);
    cJSON *o = read_json(path);
    cJSON *st = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "tasks"), "kornli"), "status");
    CHECK(code == 0 && cJSON_IsString(st) && !strcmp(st->valuestring, "no data"),
          "kornli without train data: exit %d, status not 'no data' (see %s)", code, err);
    st = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "tasks"), "question-pair"), "status");
    CHECK(cJSON_IsString(st) && !strcmp(st->valuestring, "ok"), "question-pair did not run (see %s)", err);
    cJSON_Delete(o);
    setenv("HF_HUB_CACHE", empty, 1);
    char *extra2[] = {"--tasks", "nsmc", NULL};
    code = run_reproduce(x, out, err, extra2, NULL);
    e2e_check_one_error(err, code, "models--monologg--koelectra-small-v3-discriminator", "no weights");
    free(out), free(empty), free(err), free(path);
}

/* --jobs N that cannot fit N copies of the model in memory is refused before any run starts */
static void check_jobs_memory(const E2E *x) {
    char *big = strfmt("%s/big_config.json", x->root), *err = strfmt("%s/jobs.err", x->root);
    char *out = strfmt("%s/out-jobs", x->root);
    /* about 11 GB a run: one fits this machine's memory, eight do not */
    e2e_write(big, "{\"model_type\": \"electra\", \"vocab_size\": 35000, \"embedding_size\": 2048, "
                   "\"hidden_size\": 2048, \"num_hidden_layers\": 12, \"num_attention_heads\": 16, "
                   "\"intermediate_size\": 8192, \"max_position_embeddings\": 512}");
    char *extra[] = {"--tasks", "nsmc", "--seeds", "1,2,3,4,5,6,7,8", "--jobs", "8",
                     "--random_init", "--model_config", big, NULL};
    int code = run_reproduce(x, out, err, extra, NULL);
    e2e_check_one_error(err, code, "reproduce: --jobs 8: 8 runs at once on one device need", "jobs");
    char *runs = strfmt("%s/runs", out);
    CHECK(!dir_exists(runs), "a run started before the refusal (%s)", runs);
    free(big), free(err), free(out), free(runs);
}

int main(void) {
    E2E x;
    e2e_init(&x, "reproduce");
    for (int t = 0; t < 8; t++) e2e_task_data(&x, TASKS[t], 24);
    char *out = strfmt("%s/out", x.root), *err = strfmt("%s/reproduce.err", x.root);
    char *extra[] = {"--seeds", "1,2", "--jobs", "2", "--random_init", "--max_steps", "2",
                     "--logging_steps", "2", "--save_steps", "2", NULL};
    int code = run_reproduce(&x, out, err, extra, NULL);
    CHECK(code == 0, "reproduce exit %d (see %s)", code, err);
    check_cells(out);
    check_table_text(out);
    code = run_reproduce(&x, out, err, extra, NULL); /* again: everything is finished */
    CHECK(code == 0 && e2e_lines_with(err, "reproduce: koelectra-small-v3, 8 tasks x 2 seeds = 16 runs: 0 to run, 0 to resume, 16 finished", NULL, 0) == 1,
          "a second identical command does not skip the finished runs (see %s)", err);
    check_kill_resume(&x, out);
    check_jobs_memory(&x);
    check_no_data_no_weights(&x);
    free(out), free(err);
    return test_exit("test_reproduce");
}
