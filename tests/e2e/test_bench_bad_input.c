/* Bad input to the attention benchmark tools: seq_lengths (task, file, number) and
 * attention_bench (missing or malformed length histograms, a bad --steps). Each must exit
 * 1 or 2, not by a signal, with its first line naming the problem and no sanitizer output.
 * attention_bench reads its histograms before it looks for a GPU, so this runs anywhere. */
#include "e2e/e2e.h"

typedef struct {
    const char *what, *want; /* the case, a piece of its first output line */
    const char *argv[12];
} BadCase;

static void check_case(const E2E *x, const BadCase *c, int i) {
    char *out = strfmt("%s/case%d.out", x->root, i), first[1024] = "";
    int code = e2e_wait(e2e_spawn((char *const *)c->argv, out));
    FILE *f = fopen(out, "r");
    if (f && !fgets(first, sizeof first, f)) first[0] = 0;
    if (f) fclose(f);
    CHECK(code == 1 || code == 2, "%s: exit code %d (want 1 or 2; see %s)", c->what, code, out);
    CHECK(strstr(first, c->want) != NULL, "%s: first line '%s' lacks '%s'", c->what, first,
          c->want);
    CHECK(e2e_lines_with(out, "==", NULL, 0) == 0, "%s: sanitizer output in %s", c->what, out);
    free(out);
}

int main(void) {
    E2E x;
    e2e_init(&x, "bench_bad_input");
    char *bad_dir = strfmt("%s/lengths", x.root), *nsmc = strfmt("%s/nsmc-128.txt", bad_dir);
    char *cmd = strfmt("mkdir -p '%s'", bad_dir);
    if (system(cmd) != 0) e2e_die("cannot create the lengths folder");
    e2e_write(nsmc, "# a histogram with a bad line\n12 40\n300 2\n");
    const BadCase cases[] = {
        {"unknown task", "nsmc or korquad", {"seq_lengths", "--task", "nosuch"}},
        {"missing file", "no_such_file.txt",
         {"seq_lengths", "--task", "nsmc", "--vocab", x.vocab, "--file", "no_such_file.txt"}},
        {"bad number", "--max-len", {"seq_lengths", "--task", "nsmc", "--max-len", "x"}},
        {"no histograms", "cannot open",
         {"attention_bench", "--lengths-only", "--lengths-dir", "no_such_dir"}},
        {"length past T", "nsmc-128.txt:3", {"attention_bench", "--lengths-dir", bad_dir}},
        {"bad --steps", "--steps", {"attention_bench", "--steps", "0"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&x, &cases[i], (int)i);
    free(bad_dir), free(nsmc), free(cmd);
    return test_exit("test_bench_bad_input");
}
