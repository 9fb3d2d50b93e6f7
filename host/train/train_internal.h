/* What the files of host/train/ share with each other (not part of the trainer's API):
 * train.c runs the loop, checkpoints.c saves and resumes, report.c writes logs and results. */
#ifndef KOE_TRAIN_INTERNAL_H
#define KOE_TRAIN_INTERNAL_H

#include <cjson/cJSON.h>

#include "host/train/train.h"

/* the original's arithmetic: batches per epoch, epochs, total and warmup steps */
typedef struct {
    int n_batches, epochs, t_total, warmup;
} Plan;

/* a redrawn line on a terminal, a plain line every 30 s otherwise */
typedef struct {
    double start, last_print, loss_sum;
    int loss_count, tty, steps_at_start;
} Progress;

/* the test metrics of one checkpoint */
typedef struct {
    int step;
    Metrics metrics;
} StepResult;

/* ---- checkpoints.c ---- */
/* checkpoint-<global_step> with weights, config, tokenizer files, optimizer and trainer state;
 * epoch/next_step say where the sampler resumes */
int save_checkpoint(Trainer *t, int epoch, int next_step, Error *e);
/* restores weights, AdamW moments, step counters and the sampler position from resume_from,
 * after checking its trainer_state.json against this run's plan */
int load_resume_state(Trainer *t, const Plan *plan, int *epoch, int *next_step, Error *e);
/* the steps N of dir/checkpoint-N folders holding weights, ascending */
int *list_checkpoints(const char *dir, int *n);

/* ---- report.c ---- */
void log_json(Trainer *t, cJSON *obj); /* one line of log.jsonl; takes obj */
/* -1 with "<output_dir>/log.jsonl: write failed: ..." once a log line could not be written */
int check_log(const Trainer *t, Error *e);
cJSON *metrics_json(const Metrics *mt);
/* output_dir/<mode>/<mode>-<step>.txt: the metrics, then a blank line and the report if any */
int write_eval_file(const Trainer *t, const char *mode, int step, const Metrics *mt,
                    const char *report, Error *e);
void progress(Trainer *t, Progress *pg, const Plan *plan, int epoch, float lr, int force);
void log_step(Trainer *t, const Progress *pg, int epoch, double loss, float lr);
int write_eval_results(const Trainer *t, const StepResult *r, int n, Error *e);
int write_results_json(const Trainer *t, const StepResult *r, int n, double total, Error *e);
void print_summary(const Trainer *t, const StepResult *r, int n, double total);

#endif
