/* One run per run folder. A second run into a folder another process holds stops at once with
 * one line naming the folder and the holder's pid, exits 1 and leaves the folder as it was:
 * first with the lock held by this test itself (deterministic), then with two real runs (the
 * first stopped with SIGSTOP while it holds the lock, then let finish). A SIGKILLed run leaves
 * nothing stuck: the next run goes ahead. */
#include "e2e/e2e.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <time.h>

static pid_t start(const E2E *x, const char *ckpt, const char *err) {
    char *argv[] = {"run_seq_cls", "--task", "nsmc", "--config_file", "koelectra-small-v3.json",
                    "--data_dir", (char *)x->data, "--ckpt_dir", (char *)ckpt,
                    "--model_config", (char *)x->config, "--vocab_file", (char *)x->vocab,
                    "--no_cuda", "true", "--max_steps", "2", "--save_steps", "2",
                    "--logging_steps", "0", "--train_batch_size", "2", "--max_seq_len", "16", NULL};
    return e2e_spawn(argv, err);
}

/* waits until pid holds the lock (its pid is in the lock file); 0 if it ended first */
static int wait_holding(const char *lock, pid_t pid) {
    for (int i = 0; i < 120000; i++) {
        char *text = NULL;
        long holder = 0;
        if (read_file(lock, &text, NULL, &(Error){{0}}) == 0) holder = strtol(text, NULL, 10);
        free(text);
        if (holder == pid) return 1;
        if (waitpid(pid, NULL, WNOHANG) == pid) return 0;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return 0;
}

/* the names and contents of the folder's files, one string, to compare before and after */
static char *snapshot(const char *dir) {
    char *acc = xstrdup("");
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        char *p = strfmt("%s/%s", dir, ents[i]->d_name), *text = NULL;
        if (file_exists(p)) read_file(p, &text, NULL, &(Error){{0}});
        char *more = strfmt("%s%s: %s\n", acc, ents[i]->d_name, text ? text : "(folder)");
        free(acc), free(p), free(text), free(ents[i]);
        acc = more;
    }
    if (n >= 0) free(ents);
    return acc;
}

/* a second run while pid holds the folder: one error line naming the folder and pid, exit 1,
 * before it reads any data, and nothing in the folder changed */
static void check_refused(const E2E *x, const char *ckpt, const char *out, long pid, const char *what) {
    char *err = strfmt("%s/refused.err", x->root), *before = snapshot(out);
    int code = e2e_wait(start(x, ckpt, err));
    char *want = strfmt("%s: in use by another run (pid %ld", out, pid), *after = snapshot(out);
    e2e_check_one_error(err, code, want, what);
    CHECK(e2e_lines_with(err, "model ", NULL, 0) == 0, "%s: it went on past the lock", what);
    CHECK(!strcmp(before, after), "%s: the folder changed:\n%s--- before:\n%s", what, after, before);
    free(err), free(before), free(want), free(after);
}

int main(void) {
    E2E x;
    e2e_init(&x, "run_lock");
    e2e_small_vocab(&x);
    e2e_task_data(&x, "nsmc", 7);
    char *ckpt = strfmt("%s/ckpt", x.root), *out = strfmt("%s/koelectra-small-v3-nsmc-ckpt", ckpt);
    char *lock = strfmt("%s/.lock", out), *log = strfmt("%s/log.jsonl", out);
    Error e;
    if (make_dirs(out, &e) != 0) e2e_die(e.msg);
    e2e_write(log, "{\"type\": \"an earlier run's line\"}\n");

    /* the lock held by this process */
    int fd = open(lock, O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0, "cannot lock %s", lock);
    dprintf(fd, "%ld\n", (long)getpid());
    check_refused(&x, ckpt, out, (long)getpid(), "locked by the test");
    close(fd);

    /* two real runs: the first holds the folder (stopped there), the second is refused */
    char *err_a = strfmt("%s/a.err", x.root);
    pid_t a = start(&x, ckpt, err_a);
    int held = wait_holding(lock, a);
    CHECK(held, "the first run never took the lock (see %s)", err_a);
    if (held) {
        kill(a, SIGSTOP);
        check_refused(&x, ckpt, out, (long)a, "a concurrent run");
        kill(a, SIGCONT);
    }
    int code = e2e_wait(a);
    CHECK(code == 0, "the first run: exit %d (see %s)", code, err_a);
    char *ckpt2 = strfmt("%s/checkpoint-2/model.safetensors", out);
    CHECK(file_exists(ckpt2), "the first run did not finish its work: no %s", ckpt2);

    /* a killed holder leaves nothing stuck */
    char *err_k = strfmt("%s/killed.err", x.root), *err_c = strfmt("%s/after.err", x.root);
    pid_t k = start(&x, ckpt, err_k);
    CHECK(wait_holding(lock, k), "the run to kill never took the lock (see %s)", err_k);
    kill(k, SIGKILL);
    e2e_wait(k);
    pid_t c = start(&x, ckpt, err_c);
    code = e2e_wait(c);
    CHECK(code == 0, "the run after a killed one: exit %d (see %s)", code, err_c);
    char *text = NULL;
    read_file(lock, &text, NULL, &(Error){{0}});
    CHECK(text && strtol(text, NULL, 10) == c, "%s says '%s', not the last run's pid %ld", lock,
          text ? text : "", (long)c);
    free(text), free(ckpt), free(out), free(lock), free(log), free(err_a), free(ckpt2);
    free(err_k), free(err_c);
    return test_exit("test_run_lock");
}
