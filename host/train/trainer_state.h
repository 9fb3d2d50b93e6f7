/* trainer_state.json: the step counters and sampler position a checkpoint resumes from.
 * Parsing is kept apart from the trainer (no model, no task) so that it can be fuzzed. */
#ifndef KOE_TRAINER_STATE_H
#define KOE_TRAINER_STATE_H

#include "host/base/util.h"

typedef struct {
    long global_step, epoch, next_step, micro_step, samples_seen, seed;
    double train_loss_sum;
} TrainerState;

/* what the resuming run is: a state must continue exactly this run to be accepted */
typedef struct {
    int n_batches, epochs;  /* the plan: batches per epoch, epochs */
    int accum, batch_size;  /* gradient_accumulation_steps, train_batch_size */
    int n_examples;         /* of the training split */
    int first_step;         /* global_step before the first update */
    int max_steps, seed;    /* the run's arguments (max_steps <= 0: none) */
} ResumeRun;

/* the optimizer updates that the sampler position (epoch, next_step) stands for */
long resume_updates_at(const ResumeRun *r, long epoch, long next_step);

/* pretty-printed JSON, as the checkpoint writes it; free() it */
char *trainer_state_to_json(const TrainerState *s);

/* text (read from path, named in errors) into *s, each counter checked against the run and
 * all of them against each other; -1 with one line naming the file and the key otherwise */
int trainer_state_parse(const char *text, const char *path, const ResumeRun *r, TrainerState *s,
                        Error *e);

#endif
