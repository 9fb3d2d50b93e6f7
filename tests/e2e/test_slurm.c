/* A real Slurm on the loopback (issue 14, item 4): tests/e2e/slurm_cluster.sh starts munged,
 * slurmctld and slurmd under $KOE_BUILD_DIR/e2e/slurm/cluster; a 3-task job array goes through
 * sbatch; every task must end COMPLETED with its own output file. Skips (77) with the exact
 * reason when Slurm is not installed or the machine forbids it; the cluster is always stopped. */
#include "e2e/e2e.h"

#define CLUSTER_SH "tests/e2e/slurm_cluster.sh"

enum { N_TASKS = 3, WAIT_TENTHS = 600 }; /* a job array gets at most 60 s */

static char *cluster_dir;

/* a shell command's stdout+stderr into out (NUL-terminated, cut at cap); its exit code */
static int capture(const char *cmd, char *out, size_t cap) {
    char *full = strfmt("%s 2>&1", cmd);
    fflush(stdout), fflush(stderr);
    FILE *p = popen(full, "r");
    free(full);
    if (!p) e2e_die("popen");
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    while (fgetc(p) != EOF) {} /* the rest is dropped, but the command runs to its end */
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* the last line of text, without its newline */
static const char *last_line(char *text) {
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n') text[--n] = 0;
    char *nl = strrchr(text, '\n');
    return nl ? nl + 1 : text;
}

static void cluster_stop(void) {
    char out[4096], *cmd = strfmt(CLUSTER_SH " stop '%s'", cluster_dir);
    if (capture(cmd, out, sizeof out) != 0) fprintf(stderr, "stopping the cluster: %s\n", out);
    free(cmd);
}

/* starts the cluster, or skips with the script's reason (77), or fails with the daemons' logs */
static void cluster_start(void) {
    static char out[16384];
    char *cmd = strfmt(CLUSTER_SH " start '%s'", cluster_dir);
    int code = capture(cmd, out, sizeof out);
    free(cmd);
    if (code == 77) TEST_SKIP("%s", last_line(out));
    if (code != 0) {
        fprintf(stderr, "%s\n", out);
        fprintf(stderr, "FAIL: " CLUSTER_SH " start exited %d\n", code);
        exit(1);
    }
    atexit(cluster_stop); /* on every exit from here on, a failed check or a skip alike */
    char *conf = strfmt("%s/slurm.conf", cluster_dir);
    setenv("SLURM_CONF", conf, 1);
    free(conf);
}

/* sbatch --parsable <args>: the job id, or 0 */
static long submit(const char *args) {
    char out[4096], *cmd = strfmt("sbatch --parsable %s", args);
    int code = capture(cmd, out, sizeof out);
    CHECK(code == 0, "%s: exit %d: %s", cmd, code, out);
    free(cmd);
    return code == 0 ? atol(out) : 0;
}

/* waits until no task of the array is pending or running, then counts the tasks that ended
 * COMPLETED (exit code 0); the other tasks' states are reported */
static int wait_completed(long job) {
    char out[4096], *active = strfmt("squeue -h -j %ld", job);
    int i = 0;
    while (i++ < WAIT_TENTHS && capture(active, out, sizeof out) == 0 && out[0]) usleep(100000);
    CHECK(i <= WAIT_TENTHS, "job %ld still queued or running after 60 s: %s", job, out);
    free(active);
    char *states = strfmt("squeue -h -t all -j %ld -o '%%K %%T'", job);
    CHECK(capture(states, out, sizeof out) == 0, "%s: %s", states, out);
    free(states);
    int completed = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        int ok = strstr(line, " COMPLETED") != NULL;
        CHECK(ok, "job %ld: array task %s", job, line);
        completed += ok;
    }
    return completed;
}

/* a job-array script of the shape `reproduce --slurm` writes: one array task per run, each
 * writing DIR/slurm-<job>_<task>.out */
static void write_array_script(const char *path, const char *out_dir) {
    char *text = strfmt("#!/bin/bash\n#SBATCH --job-name=koe-e2e\n#SBATCH --array=0-%d\n"
                        "#SBATCH --output=%s/slurm-%%A_%%a.out\n"
                        "echo \"task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_TASK_COUNT\"\n",
                        N_TASKS - 1, out_dir);
    e2e_write(path, text);
    free(text);
}

/* the scheduler itself: the array runs, every task once, each with its own output file */
static void check_array(const E2E *x) {
    char *out_dir = strfmt("%s/array", x->root), *script = strfmt("%s/array.sh", x->root);
    if (make_dirs(out_dir, &(Error){{0}}) != 0) e2e_die(out_dir);
    write_array_script(script, out_dir);
    long job = submit(script);
    CHECK(job && wait_completed(job) == N_TASKS, "job %ld: not all %d array tasks completed",
          job, N_TASKS);
    for (int t = 0; job && t < N_TASKS; t++) {
        char *path = strfmt("%s/slurm-%ld_%d.out", out_dir, job, t), *text = NULL;
        char *want = strfmt("task %d of %d\n", t, N_TASKS);
        CHECK(read_file(path, &text, NULL, &(Error){{0}}) == 0, "no output file %s", path);
        CHECK(text && !strcmp(text, want), "%s holds '%s', want '%s'", path, text ? text : "", want);
        free(path), free(text), free(want);
    }
    free(out_dir), free(script);
}

/* the metric a run folder's own results.json gives as best, in percent */
static double run_best_acc(const char *out, const char *task) {
    char *path = strfmt("%s/runs/%s/seed-42/results.json", out, task), *text = NULL;
    cJSON *o = read_file(path, &text, NULL, &(Error){{0}}) == 0 ? cJSON_Parse(text) : NULL;
    cJSON *acc = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "best"), "metrics"), "acc");
    double v = cJSON_IsNumber(acc) ? 100 * acc->valuedouble : -1;
    cJSON_Delete(o);
    free(path), free(text);
    return v;
}

/* reproduce --slurm writes a 3-task array, the cluster runs it (each array task is
 * `reproduce ... --only K`), and reproduce --collect builds the table from the run folders */
static void check_reproduce(const E2E *x) {
    const char *tasks[N_TASKS] = {"nsmc", "paws", "question-pair"};
    for (int t = 0; t < N_TASKS; t++) e2e_task_data(x, tasks[t], 24);
    char *out = strfmt("%s/bench", x->root), *script = strfmt("%s/bench/array.sh", x->root);
    char *err = strfmt("%s/reproduce-slurm.err", x->root);
    int code = e2e_run(err, "reproduce", "--model", "koelectra-small-v3", "--tasks",
                       "nsmc,paws,question-pair", "--out", out, "--random_init", "--data_dir",
                       x->data, "--model_config", x->config, "--vocab_file", x->vocab, "--no_cuda",
                       "true", "--max_steps", "2", "--logging_steps", "2", "--save_steps", "2",
                       "--slurm", script, NULL);
    CHECK(code == 0 && file_exists(script), "reproduce --slurm: exit %d (see %s)", code, err);
    long job = code == 0 ? submit(script) : 0;
    CHECK(job && wait_completed(job) == N_TASKS, "job %ld: not all %d runs completed", job, N_TASKS);
    code = e2e_run(err, "reproduce", "--collect", out, "--model", "koelectra-small-v3", NULL);
    CHECK(code == 0, "reproduce --collect: exit %d (see %s)", code, err);
    char *path = strfmt("%s/results.json", out), *text = NULL;
    cJSON *all = read_file(path, &text, NULL, &(Error){{0}}) == 0 ? cJSON_Parse(text) : NULL;
    for (int t = 0; t < N_TASKS; t++) {
        cJSON *cell = cJSON_GetObjectItem(cJSON_GetObjectItem(all, "tasks"), tasks[t]);
        cJSON *mean = cJSON_GetArrayItem(cJSON_GetObjectItem(cell, "mean"), 0);
        double want = run_best_acc(out, tasks[t]);
        CHECK(want >= 0 && cJSON_IsNumber(mean) && mean->valuedouble == want,
              "collected %s: mean %g, the run folder says %g", tasks[t],
              cJSON_IsNumber(mean) ? mean->valuedouble : -1, want);
    }
    cJSON_Delete(all);
    free(out), free(script), free(err), free(path), free(text);
}

int main(void) {
    char why[4096];
    if (capture(CLUSTER_SH " check", why, sizeof why) == 77) TEST_SKIP("%s", last_line(why));
    const char *build = getenv("KOE_BUILD_DIR");
    if (!build) TEST_SKIP("KOE_BUILD_DIR is not set (run through ctest)");
    cluster_dir = strfmt("%s/e2e/slurm/cluster", build);
    cluster_stop(); /* daemons a killed earlier run left, before e2e_init clears their pid files */
    E2E x;
    e2e_init(&x, "slurm");
    cluster_start();
    check_array(&x);
    check_reproduce(&x);
    free((char *)x.real_data);
    return test_exit("test_slurm");
}
