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
#include <time.h>
#include <unistd.h>

#include "host/main/programs.h"
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

/* what the parent knows of each run's speed: the steps it has logged and when */
typedef struct {
    double start;         /* when this invocation started it; 0: not started */
    double t0, t1;        /* when step0 and step1 were first seen */
    int step0, step1;
} Track;

/* the step of the last "train" line of run_dir/log.jsonl (its tail is enough), or -1 */
static int logged_step(const char *run_dir) {
    char *path = strfmt("%s/log.jsonl", run_dir), tail[4097];
    FILE *f = fopen(path, "r");
    free(path);
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > 4096 ? size - 4096 : 0, SEEK_SET);
    size_t n = fread(tail, 1, 4096, f);
    fclose(f);
    tail[n] = 0;
    int step = -1;
    for (char *p = tail; (p = strstr(p, "{\"type\":\"train\",\"step\":")); p++)
        step = atoi(p + strlen("{\"type\":\"train\",\"step\":"));
    return step;
}

static void observe(Track *k, const Run1 *r, double now) {
    int step = logged_step(r->dir);
    if (step < 0) return;
    if (k->t0 == 0) k->t0 = now, k->step0 = step;
    if (step != k->step1) k->t1 = now, k->step1 = step;
}

/* seconds a step of r takes: measured on r, else scaled by step cost from the others */
static double step_seconds(const Bench *b, const Track *tk, int i) {
    const Track *k = &tk[i];
    if (k->step1 > k->step0) return (k->t1 - k->t0) / (k->step1 - k->step0);
    double per_cost = 0;
    int n = 0;
    for (int j = 0; j < b->n_runs; j++) {
        const Track *o = &tk[j];
        double s = o->step1 > o->step0 ? (o->t1 - o->t0) / (o->step1 - o->step0)
                   : b->runs[j].wall > 0 && b->runs[j].steps > 0 ? b->runs[j].wall / b->runs[j].steps : 0;
        if (s > 0) per_cost += s / b->runs[j].step_cost, n++;
    }
    return n ? per_cost / n * b->runs[i].step_cost : NAN;
}

/* the rest of the benchmark: each unfinished run's steps left times its step time */
static double eta_seconds(const Bench *b, const Track *tk) {
    double left = 0;
    for (int i = 0; i < b->n_runs; i++) {
        const Run1 *r = &b->runs[i];
        if (r->state != RUN_TODO && r->state != RUN_RESUME) continue;
        if (r->wall > 0) continue; /* ended in this invocation (failed) */
        int done = tk[i].start > 0 && tk[i].step1 > 0 ? tk[i].step1 : 0;
        left += (r->steps > done ? r->steps - done : 0) * step_seconds(b, tk, i);
    }
    return left / b->opt.jobs;
}

static void say(const Bench *b, const Track *tk, int k, int n, const Run1 *r, const char *what) {
    char eta[32], took[32];
    format_duration(eta_seconds(b, tk), eta, sizeof eta);
    format_duration(r->wall, took, sizeof took);
    fprintf(stderr, "[%d/%d] %s seed %d: %s", k, n, r->task->name, r->seed, what);
    if (r->wall > 0) fprintf(stderr, " in %s%s", took, r->rc ? " (FAILED: see run.log)" : "");
    fprintf(stderr, "; benchmark ETA %s (log %s/run.log)\n", eta, r->dir);
}

enum { HEARTBEAT_S = 60, LOOK_S = 5 }; /* a progress line; a look at the runs' logs */

/* every minute: each running run's step and the benchmark's ETA; a run whose step has not
 * moved for two minutes (and three steps' time) is evaluating or saving a checkpoint, which
 * log.jsonl shows only when done */
static void heartbeat(const Bench *b, const Track *tk, const pid_t *slot_pid, const int *slot_run,
                      double now) {
    for (int s = 0; s < b->opt.jobs; s++) {
        if (!slot_pid[s]) continue;
        int i = slot_run[s];
        char eta[32], still[64] = "";
        format_duration(eta_seconds(b, tk), eta, sizeof eta);
        double step_s = step_seconds(b, tk, i);
        if (tk[i].t1 > 0 && now - tk[i].t1 >= fmax(2 * HEARTBEAT_S, 3 * step_s)) {
            char idle[32];
            format_duration(now - tk[i].t1, idle, sizeof idle);
            snprintf(still, sizeof still, " (evaluating or saving for %s)", idle);
        }
        char per_step[32] = "? s/step"; /* not measured yet */
        if (isfinite(step_s)) snprintf(per_step, sizeof per_step, "%.2f s/step", step_s);
        fprintf(stderr, "  %s seed %d: step %d of ~%d%s, %s; benchmark ETA %s\n",
                b->runs[i].task->name, b->runs[i].seed, tk[i].step1, b->runs[i].steps, still,
                per_step, eta);
    }
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

/* a child sets up run r as its program would (CUDA is initialised there, never here, so the
 * runs can still be forked) and reports the model's bytes and the device's */
static int probe_memory(const Bench *b, const Run1 *r, size_t *need, size_t *have) {
    int fd[2];
    if (pipe(fd) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        if (!freopen("/dev/null", "w", stderr)) _exit(2);
        int argc;
        char **argv = reproduce_run_argv(b, r, &argc);
        size_t got[2] = {0, 0};
        Error e;
        int rc = task_program_memory(r->task, argc, argv, &got[0], &got[1], &e);
        _exit(rc == 0 && write(fd[1], got, sizeof got) == sizeof got ? 0 : 1);
    }
    close(fd[1]);
    size_t got[2];
    ssize_t n = pid > 0 ? read(fd[0], got, sizeof got) : -1;
    close(fd[0]);
    if (pid > 0) waitpid(pid, NULL, 0);
    if (n != (ssize_t)sizeof got) return -1; /* the run itself will say what is wrong */
    *need = got[0], *have = got[1];
    return 0;
}

/* --jobs N: refuses up front when N runs at once do not fit in one device's memory */
static int check_jobs_fit(const Bench *b, const int *idx, int n, Error *e) {
    int at_once = b->opt.jobs < n ? b->opt.jobs : n;
    int per_device = (at_once + (b->opt.n_devices ? b->opt.n_devices : 1) - 1) /
                     (b->opt.n_devices ? b->opt.n_devices : 1);
    if (per_device < 2) return 0;
    size_t worst = 0, have = 0;
    const Run1 *heavy = NULL;
    for (int i = 0; i < n; i++) {
        const Run1 *r = &b->runs[idx[i]];
        size_t need, h;
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= b->runs[idx[j]].task == r->task;
        if (seen || probe_memory(b, r, &need, &h) != 0) continue;
        if (need > worst) worst = need, heavy = r;
        have = h;
    }
    if (!heavy || have == 0 || worst <= have / per_device) return 0;
    return errorf(e, "reproduce: --jobs %d: %d runs at once on one device need %.2f GiB each "
                  "(%s's model and batches) but the device has %.2f GiB; use --jobs %d or "
                  "fewer%s", b->opt.jobs, per_device, worst / 1073741824.0, heavy->task->name,
                  have / 1073741824.0,
                  (have / worst > 1 ? (int)(have / worst) : 1) * (b->opt.n_devices ? b->opt.n_devices : 1),
                  b->opt.n_devices ? "" : ", or spread them with --devices");
}

/* a finished child: its run's wall time and exit status */
static void reap(Bench *b, Track *tk, pid_t pid, int status, pid_t *slot_pid, const int *slot_run,
                 int *finished, int n) {
    for (int s = 0; s < b->opt.jobs; s++) {
        if (slot_pid[s] != pid) continue;
        Run1 *r = &b->runs[slot_run[s]];
        r->wall = now_seconds() - tk[slot_run[s]].start;
        r->rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (r->rc == 0) r->state = RUN_DONE;
        slot_pid[s] = 0;
        ++*finished;
        say(b, tk, *finished, n, r, r->rc ? "stopped" : "finished");
    }
}

int reproduce_check_jobs(const Bench *b, Error *e) {
    int *idx = xmalloc((b->n_runs + 1) * sizeof(int)), n = pending(b, idx);
    int rc = check_jobs_fit(b, idx, n, e);
    free(idx);
    return rc;
}

int reproduce_execute(Bench *b, Error *e) {
    int *idx = xmalloc((b->n_runs + 1) * sizeof(int)), n = pending(b, idx);
    int jobs = b->opt.jobs, next = 0, finished = 0, rc = 0;
    pid_t *slot_pid = xcalloc(jobs, sizeof(pid_t));
    int *slot_run = xcalloc(jobs, sizeof(int));
    Track *tk = xcalloc(b->n_runs, sizeof(Track));
    double last_beat = now_seconds(), last_look = last_beat;
    while (finished < next || (next < n && rc == 0)) {
        for (int s = 0; s < jobs && next < n && rc == 0; s++) {
            if (slot_pid[s]) continue;
            Run1 *r = &b->runs[idx[next]];
            int dev = b->opt.n_devices ? b->opt.devices[s % b->opt.n_devices] : -1;
            fflush(NULL);
            pid_t parent = getpid(), pid = fork();
            if (pid < 0) {
                rc = errorf(e, "reproduce: cannot start a run: fork: %s", strerror(errno));
                break;
            }
            if (pid == 0) run_child(b, r, dev, parent);
            slot_pid[s] = pid, slot_run[s] = idx[next++];
            tk[slot_run[s]].start = now_seconds();
            say(b, tk, next, n, r, r->resume ? "resuming" : "started");
        }
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) reap(b, tk, pid, status, slot_pid, slot_run, &finished, n);
        else if (pid < 0 && errno != EINTR) break;
        else nanosleep(&(struct timespec){0, 100000000}, NULL);
        double now = now_seconds();
        if (now - last_look >= LOOK_S) {
            for (int s = 0; s < jobs; s++)
                if (slot_pid[s]) observe(&tk[slot_run[s]], &b->runs[slot_run[s]], now);
            last_look = now;
        }
        if (now - last_beat >= HEARTBEAT_S) {
            heartbeat(b, tk, slot_pid, slot_run, now);
            last_beat = now;
        }
    }
    int failed = 0;
    for (int i = 0; i < n; i++) failed += b->runs[idx[i]].rc != 0;
    free(idx), free(slot_pid), free(slot_run), free(tk);
    if (rc == 0 && failed)
        rc = errorf(e, "reproduce: %d of %d runs failed (their run.log says why; the table marks "
                    "them)", failed, n);
    return rc;
}
