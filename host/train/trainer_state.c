/* trainer_state.json written and read back, the counters checked against the resuming run */
#include "host/train/trainer_state.h"

#include <cjson/cJSON.h>
#include <math.h>

#include "host/text/pyfmt.h"

long resume_updates_at(const ResumeRun *r, long epoch, long next_step) {
    if (r->n_batches <= r->accum) return epoch + (next_step == r->n_batches);
    return epoch * (r->n_batches / r->accum) + next_step / r->accum;
}

/* written by hand, not with cJSON_Print: cJSON prints a number with 15 digits whenever that
 * reads back within one epsilon, so a resumed run's train_loss_sum (and counters near 2^53)
 * could differ from the uninterrupted run's in the last bit. Python's repr reads back exactly. */
char *trainer_state_to_json(const TrainerState *s) {
    char loss[32] = "null"; /* not a finite number: a resume refuses it */
    if (isfinite(s->train_loss_sum)) py_float(s->train_loss_sum, loss, sizeof loss);
    return strfmt("{\n  \"global_step\": %ld,\n  \"epoch\": %ld,\n  \"next_step\": %ld,\n"
                  "  \"micro_step\": %ld,\n  \"train_loss_sum\": %s,\n  \"samples_seen\": %ld,\n"
                  "  \"seed\": %ld\n}\n",
                  s->global_step, s->epoch, s->next_step, s->micro_step, loss, s->samples_seen,
                  s->seed);
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
