/* Running the planned runs: up to --jobs child processes at once, each one task program on
 * one run (its output in the run's folder, its stderr in run.log there), spread over
 * --devices; a line when each starts and ends with the ETA of the whole benchmark. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/reproduce/reproduce.h"

static void format_duration(double s, char *buf, size_t n) {
    if (!isfinite(s) || s < 0) snprintf(buf, n, "?");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

/* the child: stdout and stderr into run.log, the device, then the task program itself */
static void run_child(const Bench *b, const Run1 *r, int device, pid_t parent) {
    Error e;
    if (make_dirs(r->dir, &e) != 0) {
        fprintf(stderr, "reproduce: %s\n", e.msg);
        _exit(2);
    }
    char *log = strfmt("%s/run.log", r->dir);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
        fprintf(stderr, "reproduce: %s: cannot open: %s\n", log, strerror(errno));
        _exit(2);
    }
    dup2(fd, 1), dup2(fd, 2), close(fd);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a killed reproduce takes its runs with it */
    if (getppid() != parent) _exit(2); /* it died before prctl */
    if (device >= 0) {
        char dev[16];
        snprintf(dev, sizeof dev, "%d", device);
        setenv("CUDA_VISIBLE_DEVICES", dev, 1);
    }
    int argc;
    char **argv = reproduce_run_argv(b, r, &argc);
    int rc = task_program_main(r->task, argc, argv);
    fflush(NULL);
    _exit(rc);
}

/* work done / wall time of the runs finished so far, applied to what is left */
static double eta_seconds(const Bench *b, const double *start) {
    double done_work = 0, done_wall = 0, left = 0;
    for (int i = 0; i < b->n_runs; i++) {
        const Run1 *r = &b->runs[i];
        if (r->wall > 0) done_work += r->work, done_wall += r->wall;
        else if (r->state == RUN_TODO || r->state == RUN_RESUME)
            left += start[i] > 0 ? r->work * 0.5 : r->work; /* a running one: about half left */
    }
    if (done_work <= 0) return NAN;
    return left * done_wall / done_work / b->opt.jobs;
}

static void say(const Bench *b, const double *start, int k, int n, const Run1 *r,
                const char *what) {
    char eta[32], took[32];
    format_duration(eta_seconds(b, start), eta, sizeof eta);
    format_duration(r->wall, took, sizeof took);
    fprintf(stderr, "[%d/%d] %s seed %d: %s", k, n, r->task->name, r->seed, what);
    if (r->wall > 0) fprintf(stderr, " in %s%s", took, r->rc ? " (FAILED: see run.log)" : "");
    fprintf(stderr, "; benchmark ETA %s (log %s/run.log)\n", eta, r->dir);
}

/* the runs this invocation must run, in plan order */
static int pending(const Bench *b, int *idx) {
    int n = 0;
    for (int i = 0; i < b->n_runs; i++) {
        RunState s = b->runs[i].state;
        if ((s == RUN_TODO || s == RUN_RESUME) && (b->opt.only < 0 || b->opt.only == i)) idx[n++] = i;
    }
    return n;
}

int reproduce_execute(Bench *b, Error *e) {
    int *idx = xmalloc((b->n_runs + 1) * sizeof(int)), n = pending(b, idx);
    int jobs = b->opt.jobs, next = 0, running = 0, finished = 0, failed = 0;
    pid_t *slot_pid = xcalloc(jobs, sizeof(pid_t));
    int *slot_run = xcalloc(jobs, sizeof(int));
    double *start = xcalloc(b->n_runs, sizeof(double));
    while (finished < n) {
        for (int s = 0; s < jobs && next < n; s++) {
            if (slot_pid[s]) continue;
            Run1 *r = &b->runs[idx[next]];
            int dev = b->opt.n_devices ? b->opt.devices[s % b->opt.n_devices] : -1;
            fflush(NULL);
            pid_t parent = getpid(), pid = fork();
            if (pid < 0) return free(idx), errorf(e, "reproduce: fork: %s", strerror(errno));
            if (pid == 0) run_child(b, r, dev, parent);
            slot_pid[s] = pid, slot_run[s] = idx[next++], running++;
            start[slot_run[s]] = now_seconds();
            say(b, start, next, n, r, r->resume ? "resuming" : "started");
        }
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0 && errno == EINTR) continue;
        if (pid < 0) break;
        for (int s = 0; s < jobs; s++) {
            if (slot_pid[s] != pid) continue;
            Run1 *r = &b->runs[slot_run[s]];
            r->wall = now_seconds() - start[slot_run[s]];
            r->rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            r->state = r->rc == 0 ? RUN_DONE : r->state;
            failed += r->rc != 0;
            slot_pid[s] = 0, running--, finished++;
            say(b, start, finished, n, r, r->rc ? "stopped" : "finished");
        }
    }
    free(idx), free(slot_pid), free(slot_run), free(start);
    if (failed) return errorf(e, "reproduce: %d of %d runs failed (their run.log says why; the "
                              "table marks them)", failed, n);
    return 0;
}
