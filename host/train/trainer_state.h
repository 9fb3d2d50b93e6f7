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

/* the original's rule: the optimizer steps after batch `step` (from 0) of an epoch of
 * n_batches when accum batches are in, or at the epoch's end when it has no more than accum */
static inline int update_after_batch(int n_batches, int accum, int step) {
    return (step + 1) % accum == 0 || (n_batches <= accum && step + 1 == n_batches);
}

/* the updates that the sampler position (epoch, next_step) stands for: update_after_batch
 * counted in closed form (tests/unit/test_trainer_state.c checks the two agree) */
long resume_updates_at(const ResumeRun *r, long epoch, long next_step);

/* pretty-printed JSON, as the checkpoint writes it; free() it */
char *trainer_state_to_json(const TrainerState *s);

/* text (read from path, named in errors) into *s, each counter checked against the run and
 * all of them against each other; -1 with one line naming the file and the key otherwise */
int trainer_state_parse(const char *text, const char *path, const ResumeRun *r, TrainerState *s,
                        Error *e);

#endif
