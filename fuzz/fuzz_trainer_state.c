/* libFuzzer target: random bytes as a checkpoint's trainer_state.json into
 * trainer_state_parse, against a resuming run the first 7 bytes describe (examples, batch size,
 * epochs, accumulation, first step, max_steps, seed). A state that parses continues that run
 * (its counters in range and consistent with each other), and writing it with
 * trainer_state_to_json and parsing that gives the same state. */
#include <math.h>

#include "fuzz/fuzz_common.h"
#include "host/train/trainer_state.h"

#define HEADER 7
#define PATH "ckpt/trainer_state.json" /* only named in errors: nothing is opened */

static ResumeRun run_from(const uint8_t *h) {
    ResumeRun r;
    r.n_examples = 1 + h[0];
    r.batch_size = 1 + h[1] % 64;
    r.n_batches = (r.n_examples + r.batch_size - 1) / r.batch_size;
    r.epochs = 1 + h[2] % 8;
    r.accum = 1 + h[3] % 8;
    r.first_step = h[4] % 2; /* run_squad.py counts from 1 */
    r.max_steps = h[5];      /* 0: none */
    r.seed = h[6];
    return r;
}

static void check_continues(const ResumeRun *r, const TrainerState *s) {
    FUZZ_ASSERT(s->epoch >= 0 && s->epoch < r->epochs);
    FUZZ_ASSERT(s->next_step >= 1 && s->next_step <= r->n_batches);
    FUZZ_ASSERT(s->global_step == r->first_step + resume_updates_at(r, s->epoch, s->next_step));
    FUZZ_ASSERT(r->max_steps <= 0 || s->global_step <= r->max_steps + 1);
    FUZZ_ASSERT(s->samples_seen <= (s->epoch + 1) * (long)r->n_examples);
    FUZZ_ASSERT(s->seed == r->seed && isfinite(s->train_loss_sum) && s->micro_step >= 0);
}

static void check_round_trip(const ResumeRun *r, const TrainerState *s) {
    char *json = trainer_state_to_json(s);
    TrainerState back;
    memset(&back, 0, sizeof back);
    Error e;
    int rc = trainer_state_parse(json, PATH, r, &back, &e);
    if (rc) dprintf(STDERR_FILENO, "%s\n", e.msg);
    FUZZ_ASSERT(rc == 0 && memcmp(s, &back, sizeof back) == 0);
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < HEADER) return 0;
    ResumeRun r = run_from(data);
    char *text = fuzz_cstr(data + HEADER, size - HEADER);
    TrainerState s;
    memset(&s, 0, sizeof s); /* padding compared by the round trip's memcmp */
    Error e;
    if (trainer_state_parse(text, PATH, &r, &s, &e) == 0) {
        check_continues(&r, &s);
        check_round_trip(&r, &s);
    } else {
        FUZZ_ASSERT(strstr(e.msg, PATH) == e.msg);
    }
    free(text);
    return 0;
}
