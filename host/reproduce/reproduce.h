/* reproduce: the whole benchmark table from one command. For one model it runs every task's
 * original config (configs/<task>/<model>.json) for each seed, exactly as run_seq_cls /
 * run_ner / run_squad do (each run is a child process calling the same code), then writes
 * DIR/results.md and DIR/results.json: our numbers beside the published ones, mean ± std over
 * seeds, per-task times, and a loss/metric picture of every run.
 *
 *   plan.c   options, the runs (task x seed), checks before the first step
 *   jobs.c   running them: N at once, skipping finished runs, resuming killed ones, ETA
 *   table.c  reading each run's results.json, statistics, results.md / results.json
 *   svg.c    the pictures, from each run's log.jsonl
 *   slurm.c  a Slurm job array for a cluster; --collect builds the table afterwards */
#ifndef KOE_REPRODUCE_H
#define KOE_REPRODUCE_H

#include "host/base/util.h"
#include "host/tasks/tasks.h"

#define MAX_TASKS 8
#define MAX_SEEDS 32
#define MAX_DEVICES 16
#define MAX_PASSTHROUGH 64

typedef struct {
    const char *model;      /* configs/<task>/<model>.json, e.g. koelectra-small-v3 */
    const char *config_dir; /* configs */
    const char *out;        /* DIR */
    const char *published;  /* the published table (configs/published.json) */
    const char *self;       /* argv[0], for the commands written into the results */
    int argc;               /* the command line, written into results.md and Slurm scripts */
    char **argv;
    const TaskInfo *tasks[MAX_TASKS];
    int n_tasks;
    int seeds[MAX_SEEDS], n_seeds;
    int devices[MAX_DEVICES], n_devices; /* --devices; none: the default device */
    int jobs;                            /* runs at once */
    int unpadded, no_cuda;
    int random_init;       /* allow runs without pretrained weights (from random init) */
    int only;              /* --only K (a Slurm array task): run K alone, -1 otherwise */
    const char *slurm;     /* --slurm FILE: write a job array script and stop */
    int collect;           /* --collect: build the table from DIR's runs, run nothing */
    const char *pass[MAX_PASSTHROUGH]; /* --KEY VALUE given to every run */
    int n_pass;
} Options;

typedef enum { RUN_TODO, RUN_RESUME, RUN_DONE, RUN_NO_DATA } RunState;

/* one (task, seed) run of the task's original config */
typedef struct {
    const TaskInfo *task;
    int seed;
    char *config;     /* config_dir/<task>/<model>.json */
    char *dir;        /* DIR/runs/<task>/seed-<seed>: the run's output_dir */
    char *no_data;    /* why the task cannot run (missing files), or NULL */
    char *resume;     /* the checkpoint a killed run resumes from, or NULL */
    RunState state;
    int steps;        /* optimizer steps it will take (an estimate for KorQuAD) */
    double step_cost; /* padded tokens in one step (batch x accumulation x max_seq_len) */
    double wall;      /* seconds this invocation spent on it */
    int rc;           /* exit status of its process (0 when it ran clean or was done) */
} Run1;

typedef struct {
    Options opt;
    Run1 *runs;
    int n_runs;
    int random_weights; /* a run has no pretrained weights (allowed by --random_init) */
    double started;
} Bench;

/* plan.c */
int reproduce_parse(Options *o, int argc, char **argv, Error *e); /* 1: --help printed */
int reproduce_plan(Bench *b, Error *e);       /* the runs, and every check before a step */
int reproduce_plan_collected(Bench *b, Error *e); /* --collect: the runs found under DIR */
/* the task program's argv for r (NULL-terminated, heap strings) and its shell command */
char **reproduce_run_argv(const Bench *b, const Run1 *r, int *argc);
void reproduce_free_argv(char **argv);
char *reproduce_run_command(const Bench *b, const Run1 *r);
void reproduce_say_plan(const Bench *b); /* one line per fact the user should know first */
void reproduce_free(Bench *b);

/* jobs.c */
int reproduce_check_jobs(const Bench *b, Error *e); /* --jobs N models fit in memory */
int reproduce_execute(Bench *b, Error *e); /* runs what is not done; 0 when all ran clean */

/* table.c */
int reproduce_write_table(const Bench *b, double wall, Error *e);

/* svg.c: DIR/<svg> from run_dir/log.jsonl; 0 and nothing written when there is no log */
int svg_write_run(const char *run_dir, const char *title, const char *metric, const char *svg,
                  Error *e);

/* slurm.c */
int reproduce_write_slurm(const Bench *b, Error *e);

#endif
