/* libFuzzer target: random bytes as a task config (configs/<task>/<model>.json, through a
 * temp file) into train_args_load. A config that loads is valid, and its training_args.json
 * (train_args_to_json) loads back to the same keys and values, bit for bit. Unknown keys'
 * warnings are muted. */
#include "fuzz/fuzz_common.h"
#include "host/formats/config.h"

static void check_round_trip(const TrainArgs *a) {
    char *json = train_args_to_json(a);
    const char *path = fuzz_tmp_file(1);
    TrainArgs back;
    Error e;
    if (write_file_atomic(path, json, strlen(json), &e)) fprintf(stderr, "%s\n", e.msg), abort();
    int rc = train_args_load(path, &back, &e);
    if (rc) dprintf(STDERR_FILENO, "%s\n", e.msg);
    FUZZ_ASSERT(rc == 0 && memcmp(&back, a, sizeof back) == 0);
    free(json);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_quiet_warnings();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_tmp(data, size);
    TrainArgs a;
    Error e;
    if (train_args_load(path, &a, &e)) {
        FUZZ_ASSERT(e.msg[0] && strstr(e.msg, path));
        return 0;
    }
    FUZZ_ASSERT(train_args_validate(&a, path, &e) == 0);
    check_round_trip(&a);
    return 0;
}
