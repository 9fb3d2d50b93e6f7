/* eval_results.txt (host/train/report.c) as the original writes it, "<metric>_<step> = value"
 * sorted by metric then step, whatever the lines' length: a metric name longer than the old
 * guessed buffer comes out whole, nothing past it. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/train/train_internal.h"
#include "test.h"

int main(void) {
    char dir[] = "/tmp/koe_report_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    TrainArgs args;
    memset(&args, 0, sizeof args);
    snprintf(args.output_dir, sizeof args.output_dir, "%s", dir);
    Trainer t = {.args = &args};

    char long_key[1500];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = 0;
    StepResult r[3];
    for (int i = 0; i < 3; i++) {
        r[i].step = 100 * (i + 1);
        r[i].metrics = (Metrics){.n = 2, .keys = {"f1", long_key}, .values = {0.5 + i, 0.25}};
    }
    Error e = {{0}};
    CHECK(write_eval_results(&t, r, 3, &e) == 0, "%s", e.msg);

    char *want = strfmt("f1_100 = 0.5\nf1_200 = 1.5\nf1_300 = 2.5\n%s_100 = 0.25\n"
                        "%s_200 = 0.25\n%s_300 = 0.25\n", long_key, long_key, long_key);
    char *path = strfmt("%s/eval_results.txt", dir), *got = NULL;
    size_t len = 0;
    CHECK(read_file(path, &got, &len, &e) == 0, "%s", e.msg);
    CHECK(got && len == strlen(want) && strcmp(got, want) == 0, "%zu bytes, want %zu", len,
          strlen(want));
    unlink(path);
    rmdir(dir);
    free(got), free(path), free(want);
    return test_exit("test_report");
}
