/* What used to go wrong silently in a run folder now stops the run with one line naming the
 * file (and the key): a log.jsonl that cannot be opened (a folder in its place) or written (it
 * is /dev/full); a resume checkpoint whose trainer_state.json is beyond this run's plan,
 * inconsistent, or not numbers; a checkpoint that cannot be written (file size limit, as a full
 * disk) leaves no checkpoint-N.tmp behind. No failing run truncates an earlier run's log.jsonl. */
#include "e2e/e2e.h"

#include <dirent.h>
#include <sys/resource.h>

static const char *const EARLIER = "{\"type\": \"a line of an earlier run\"}\n";

static pid_t start(const E2E *x, const char *ckpt, const char *resume, const char *err) {
    char *argv[] = {"run_seq_cls", "--task", "nsmc", "--config_file", "koelectra-small-v3.json",
                    "--data_dir", (char *)x->data, "--ckpt_dir", (char *)ckpt,
                    "--model_config", (char *)x->config, "--vocab_file", (char *)x->vocab,
                    "--no_cuda", "true", "--max_steps", "3", "--save_steps", "2",
                    "--logging_steps", "0", "--train_batch_size", "2", "--max_seq_len", "16",
                    "--do_eval", "false", "--save_optimizer", "true", resume ? "--resume_from_checkpoint" : NULL,
                    (char *)resume, NULL};
    return e2e_spawn(argv, err);
}

static int run(const E2E *x, const char *ckpt, const char *resume, const char *err) {
    return e2e_wait(start(x, ckpt, resume, err));
}

static char *out_of(const char *ckpt) { return strfmt("%s/koelectra-small-v3-nsmc-ckpt", ckpt); }

/* a fresh ckpt_dir whose run folder has an earlier run's log.jsonl */
static char *fresh(const E2E *x, const char *name) {
    char *ckpt = strfmt("%s/%s", x->root, name), *out = out_of(ckpt), *log = strfmt("%s/log.jsonl", out);
    Error e;
    if (make_dirs(out, &e) != 0) e2e_die(e.msg);
    e2e_write(log, EARLIER);
    free(out), free(log);
    return ckpt;
}

/* the earlier run's lines are still there, first */
static void check_log_kept(const char *ckpt, const char *what) {
    char *out = out_of(ckpt), *log = strfmt("%s/log.jsonl", out), *text = NULL;
    read_file(log, &text, NULL, &(Error){{0}});
    CHECK(text && !strncmp(text, EARLIER, strlen(EARLIER)), "%s: %s lost the earlier run's lines",
          what, log);
    free(out), free(log), free(text);
}

static void check_log_errors(const E2E *x) {
    char *ckpt = fresh(x, "log_folder"), *out = out_of(ckpt), *log = strfmt("%s/log.jsonl", out);
    char *err = strfmt("%s/log_folder.err", x->root), *want = strfmt("%s: cannot open", log);
    unlink(log);
    mkdir(log, 0755);
    e2e_check_one_error(err, run(x, ckpt, NULL, err), want, "log.jsonl is a folder");
    free(ckpt), free(out), free(log), free(err), free(want);

    ckpt = fresh(x, "log_full"), out = out_of(ckpt), log = strfmt("%s/log.jsonl", out);
    err = strfmt("%s/log_full.err", x->root), want = strfmt("%s: write failed", log);
    unlink(log);
    if (symlink("/dev/full", log) != 0) e2e_die("symlink /dev/full");
    e2e_check_one_error(err, run(x, ckpt, NULL, err), want, "log.jsonl is /dev/full");
    free(ckpt), free(out), free(log), free(err), free(want);
}

/* a copy of src with one key of trainer_state.json replaced (NULL value: removed) */
static char *bad_state(const E2E *x, const char *src, const char *name, const char *key,
                       cJSON *value) {
    char *dst = strfmt("%s/bad/%s", x->root, name), *cmd = strfmt("mkdir -p '%s' && cp '%s'/* '%s'", dst, src, dst);
    if (system(cmd) != 0) e2e_die(cmd);
    char *path = strfmt("%s/trainer_state.json", dst), *text;
    if (read_file(path, &text, NULL, &(Error){{0}}) != 0) e2e_die(path);
    cJSON *o = cJSON_Parse(text);
    if (value) cJSON_ReplaceItemInObject(o, key, value);
    else cJSON_DeleteItemFromObject(o, key);
    char *json = cJSON_Print(o);
    e2e_write(path, json);
    cJSON_Delete(o);
    free(cmd), free(path), free(text), free(json);
    return dst;
}

static void check_bad_states(const E2E *x, const char *good) {
    const struct {
        const char *name, *key, *value, *want; /* value as JSON; NULL: key removed */
    } cases[] = {
        {"step_1e6", "global_step", "1e6", "global_step: 1000000 is outside this run's steps"},
        {"step_1e30", "global_step", "1e30", "global_step: 1e+30 is outside"},
        {"epoch_1e6", "epoch", "1e6", "epoch: 1000000 is outside this run's epochs"},
        {"next_step", "next_step", "1", "global_step: 2, but epoch 0 and next_step 1 make 1"},
        {"seen", "samples_seen", "3", "samples_seen: 3, but epoch 0 and next_step 2 make 4"},
        {"fraction", "micro_step", "2.5", "micro_step: 2.5 is outside"},
        {"seed", "seed", "7", "seed: 7 is outside this run's seed"},
        {"string", "global_step", "\"2\"", "global_step: missing or not a number"},
        {"missing", "epoch", NULL, "epoch: missing or not a number"},
        {"loss", "train_loss_sum", "null", "train_loss_sum: missing or not a finite number"},
    };
    char *ckpt = fresh(x, "resume_bad");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = bad_state(x, good, cases[i].name, cases[i].key,
                              cases[i].value ? cJSON_Parse(cases[i].value) : NULL);
        char *err = strfmt("%s/bad_%s.err", x->root, cases[i].name);
        char *want = strfmt("%s/trainer_state.json: %s", dir, cases[i].want);
        e2e_check_one_error(err, run(x, ckpt, dir, err), want, cases[i].name);
        check_log_kept(ckpt, cases[i].name);
        free(dir), free(err), free(want);
    }
    free(ckpt);
}

/* no checkpoint-*.tmp in dir */
static int tmp_dirs(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *ent;
    while (d && (ent = readdir(d))) n += strstr(ent->d_name, ".tmp") != NULL;
    if (d) closedir(d);
    return n;
}

/* writes beyond 32 KiB fail (EFBIG, SIGXFSZ ignored) as on a full disk: the first checkpoint
 * cannot be written; the run stops naming the file and leaves no checkpoint-2.tmp */
static void check_disk_full(const E2E *x) {
    char *ckpt = fresh(x, "disk_full"), *out = out_of(ckpt), *err = strfmt("%s/disk_full.err", x->root);
    struct rlimit old, small;
    getrlimit(RLIMIT_FSIZE, &old);
    small = old;
    small.rlim_cur = 32 << 10;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &small);
    pid_t pid = start(x, ckpt, NULL, err);
    setrlimit(RLIMIT_FSIZE, &old);
    char *want = strfmt("%s/checkpoint-2.tmp/", out);
    e2e_check_one_error(err, e2e_wait(pid), want, "disk full");
    CHECK(e2e_lines_with(err, "error: ", NULL, 0) == 1 && tmp_dirs(out) == 0,
          "disk full: a temporary file or folder is left in %s", out);
    check_log_kept(ckpt, "disk full");
    free(ckpt), free(out), free(err), free(want);
}

int main(void) {
    E2E x;
    e2e_init(&x, "run_folder_errors");
    e2e_small_vocab(&x);
    e2e_task_data(&x, "nsmc", 7); /* 6 rows: 3 batches of 2 */
    check_log_errors(&x);

    char *ckpt = fresh(&x, "good"), *err = strfmt("%s/good.err", x.root), *out = out_of(ckpt);
    int code = run(&x, ckpt, NULL, err);
    CHECK(code == 0, "the run making a checkpoint: exit %d (see %s)", code, err);
    check_log_kept(ckpt, "a fresh run");
    char *good = strfmt("%s/checkpoint-2", out);
    check_bad_states(&x, good);
    code = run(&x, ckpt, good, err); /* the untouched checkpoint still resumes */
    CHECK(code == 0, "resume from %s: exit %d (see %s)", good, code, err);

    check_disk_full(&x);
    free(ckpt), free(err), free(out), free(good);
    return test_exit("test_run_folder_errors");
}
