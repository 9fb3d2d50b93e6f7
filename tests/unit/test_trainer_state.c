/* trainer_state.json (host/train/trainer_state.c): what a checkpoint writes reads back bit for
 * bit (cJSON's 15-digit printing did not: the first value below came from the fuzzer), and a
 * state that does not continue the resuming run is refused naming the file and the key. */
#include "host/train/trainer_state.h"
#include "test.h"

#define PATH "out/checkpoint-3/trainer_state.json"

/* 10 examples in batches of 4 (3 batches per epoch), 2 epochs, an update per batch, seed 42 */
static const ResumeRun RUN = {.n_batches = 3, .epochs = 2, .accum = 1, .batch_size = 4,
                              .n_examples = 10, .first_step = 0, .max_steps = 0, .seed = 42};

static void check_round_trip(double loss, long micro_step) {
    TrainerState s = {.global_step = 2, .epoch = 0, .next_step = 2, .micro_step = micro_step,
                      .samples_seen = 8, .seed = 42, .train_loss_sum = loss},
                 back;
    memset(&back, 0, sizeof back);
    char *json = trainer_state_to_json(&s);
    Error e;
    int rc = trainer_state_parse(json, PATH, &RUN, &back, &e);
    CHECK(rc == 0, "%s", e.msg);
    CHECK(rc == 0 && memcmp(&s, &back, sizeof s) == 0, "%.17g, %ld read back as %.17g, %ld: %s",
          loss, micro_step, back.train_loss_sum, back.micro_step, json);
    free(json);
}

/* the state of check_round_trip with one key's text replaced */
static void check_refused(const char *key, const char *value, const char *want) {
    const char *keys[] = {"global_step", "epoch", "next_step", "micro_step", "train_loss_sum",
                          "samples_seen", "seed"};
    const char *values[] = {"2", "0", "2", "2", "1.5", "8", "42"};
    char json[512];
    size_t n = (size_t)snprintf(json, sizeof json, "{");
    for (int i = 0; i < 7; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s\"%s\": %s", i ? ", " : "", keys[i],
                              strcmp(keys[i], key) ? values[i] : value);
    snprintf(json + n, sizeof json - n, "}");
    TrainerState s;
    Error e;
    int rc = trainer_state_parse(json, PATH, &RUN, &s, &e);
    CHECK(rc != 0, "%s = %s was accepted", key, value);
    CHECK(rc == 0 || (strstr(e.msg, PATH) == e.msg && strstr(e.msg, want)),
          "%s = %s: '%s', want '%s'", key, value, e.msg, want);
}

/* resume_updates_at is the training loop's update_after_batch counted: every position of two
 * epochs, for epochs of 1..9 batches and 1..5 batches per update (a 3-batch epoch with 4 per
 * update steps once, at its last batch; 7 with 2 leaves the last batch to the next epoch) */
static void check_updates_counted(void) {
    for (int n_batches = 1; n_batches <= 9; n_batches++)
        for (int accum = 1; accum <= 5; accum++) {
            ResumeRun r = RUN;
            r.n_batches = n_batches;
            r.accum = accum;
            long updates = 0;
            for (int epoch = 0; epoch < 2; epoch++)
                for (int next = 0; next <= n_batches; next++) {
                    if (next > 0) updates += update_after_batch(n_batches, accum, next - 1);
                    CHECK(resume_updates_at(&r, epoch, next) == updates,
                          "%d batches, accum %d, epoch %d, next_step %d: %ld updates, the loop "
                          "makes %ld", n_batches, accum, epoch, next,
                          resume_updates_at(&r, epoch, next), updates);
                }
        }
}

int main(void) {
    check_round_trip(2184467440735119706160.0, 6);
    check_round_trip(0.1 + 0.2, 9007199254740991L); /* 2^53 - 1 */
    check_round_trip(1.0 / 3, 0);
    check_round_trip(5e-324, 1);
    check_round_trip(-0.0, 1);

    check_refused("global_step", "1000000", "global_step: 1000000 is outside this run's steps");
    check_refused("epoch", "1e6", "epoch: 1000000 is outside this run's epochs [0, 1]");
    check_refused("next_step", "2.5", "next_step: 2.5 is outside");
    check_refused("seed", "43", "seed: 43 is outside this run's seed [42, 42]");
    check_refused("train_loss_sum", "null", "train_loss_sum: missing or not a finite number");
    check_refused("micro_step", "\"2\"", "micro_step: missing or not a number");
    check_refused("global_step", "1", "global_step: 1, but epoch 0 and next_step 2 make 2");
    check_refused("samples_seen", "9", "samples_seen: 9, but epoch 0 and next_step 2 make 8");

    TrainerState s;
    Error e;
    CHECK(trainer_state_parse("[1]", PATH, &RUN, &s, &e) != 0 && strstr(e.msg, "not a JSON object"),
          "a JSON array was accepted");
    check_updates_counted();
    return test_exit("test_trainer_state");
}
