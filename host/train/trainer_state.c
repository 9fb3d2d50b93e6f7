/* trainer_state.json written and read back, the counters checked against the resuming run */
#include "host/train/trainer_state.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* the loop's rule: an update every accum batches, or one per epoch when an epoch has no more
 * batches than that */
long resume_updates_at(const ResumeRun *r, long epoch, long next_step) {
    if (r->n_batches <= r->accum) return epoch + (next_step == r->n_batches);
    return epoch * (r->n_batches / r->accum) + next_step / r->accum;
}

char *trainer_state_to_json(const TrainerState *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "global_step", (double)s->global_step);
    cJSON_AddNumberToObject(o, "epoch", (double)s->epoch);
    cJSON_AddNumberToObject(o, "next_step", (double)s->next_step);
    cJSON_AddNumberToObject(o, "micro_step", (double)s->micro_step);
    cJSON_AddNumberToObject(o, "train_loss_sum", s->train_loss_sum);
    cJSON_AddNumberToObject(o, "samples_seen", (double)s->samples_seen);
    cJSON_AddNumberToObject(o, "seed", (double)s->seed);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    char *copy = xstrdup(text); /* cJSON's allocator is not necessarily free() */
    cJSON_free(text);
    return copy;
}

/* the key as an integer in [lo, hi]; `range` says what the bounds are */
static int state_int(const cJSON *o, const char *key, double lo, double hi, const char *range,
                     const char *path, long *out, Error *e) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    if (!cJSON_IsNumber(v)) return errorf(e, "%s: %s: missing or not a number", path, key);
    double x = v->valuedouble;
    if (x != floor(x) || x < lo || x > hi)
        return errorf(e, "%s: %s: %.17g is outside %s [%.0f, %.0f]", path, key, x, range, lo, hi);
    *out = (long)x;
    return 0;
}

static int read_counters(const cJSON *o, const char *path, const ResumeRun *r, TrainerState *s,
                         Error *e) {
    long last = r->first_step + resume_updates_at(r, r->epochs, 0);
    if (r->max_steps > 0 && r->max_steps + 1L < last) last = r->max_steps + 1L;
    const cJSON *loss = cJSON_GetObjectItem(o, "train_loss_sum");
    if (state_int(o, "global_step", r->first_step, last, "this run's steps", path,
                  &s->global_step, e) ||
        state_int(o, "epoch", 0, r->epochs - 1, "this run's epochs", path, &s->epoch, e) ||
        state_int(o, "next_step", 1, r->n_batches, "the batches of an epoch", path, &s->next_step,
                  e) ||
        state_int(o, "micro_step", 0, 0x1p53, "the counter's range", path, &s->micro_step, e) ||
        state_int(o, "samples_seen", 0, 0x1p53, "the counter's range", path, &s->samples_seen,
                  e) ||
        state_int(o, "seed", r->seed, r->seed, "this run's seed", path, &s->seed, e))
        return -1;
    if (!cJSON_IsNumber(loss) || !isfinite(loss->valuedouble))
        return errorf(e, "%s: train_loss_sum: missing or not a finite number", path);
    s->train_loss_sum = loss->valuedouble;
    return 0;
}

int trainer_state_parse(const char *text, const char *path, const ResumeRun *r, TrainerState *s,
                        Error *e) {
    cJSON *o = cJSON_Parse(text);
    int rc = !cJSON_IsObject(o) ? errorf(e, "%s: not a JSON object", path)
                                : read_counters(o, path, r, s, e);
    cJSON_Delete(o);
    if (rc) return rc;
    long n = r->n_examples, batched = s->next_step * (long)r->batch_size;
    long want = r->first_step + resume_updates_at(r, s->epoch, s->next_step);
    long want_seen = s->epoch * n + (batched < n ? batched : n);
    if (s->global_step != want)
        return errorf(e, "%s: global_step: %ld, but epoch %ld and next_step %ld make %ld with "
                      "this run's %d batches per epoch", path, s->global_step, s->epoch,
                      s->next_step, want, r->n_batches);
    if (s->samples_seen != want_seen)
        return errorf(e, "%s: samples_seen: %ld, but epoch %ld and next_step %ld make %ld with "
                      "this run's %ld examples", path, s->samples_seen, s->epoch, s->next_step,
                      want_seen, n);
    return 0;
}
