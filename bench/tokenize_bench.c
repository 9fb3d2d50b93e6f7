/* Tokenizer speed: reads an NSMC-style file and builds its features (WordPiece, [CLS]/[SEP],
 * truncation, padding to max_seq_len), single-threaded, as run_seq_cls does before training.
 * Prints examples/s for the best of --repeat runs (wall clock, and process CPU time, which a
 * loaded machine disturbs less), and the task reader's share of the wall clock (the file
 * read and split alone); --dump writes the input ids (int32, n rows of
 * max_seq_len) so bench/tokenize_bench.py can compare them with HF's fast tokenizer.
 *
 *   tokenize_bench [--file PATH] [--vocab PATH] [--task NAME] [--max-len N] [--repeat N]
 *                  [--dump PATH]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/tasks/seq_cls.h"
#include "host/tasks/tasks.h"
#include "host/text/tokenizer.h"

typedef struct {
    const char *file, *vocab, *task, *dump;
    int max_len, repeat;
} BenchArgs;

static int parse_args(int argc, char **argv, BenchArgs *a) {
    *a = (BenchArgs){"../shared/data/nsmc/ratings_train.txt",
                     "../shared/vocab/koelectra-base-v3-discriminator/vocab.txt", "nsmc", NULL,
                     128, 3};
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fprintf(stderr, "tokenize_bench: %s needs a value\n", k), -1;
        if (!strcmp(k, "--file")) a->file = v;
        else if (!strcmp(k, "--vocab")) a->vocab = v;
        else if (!strcmp(k, "--task")) a->task = v;
        else if (!strcmp(k, "--dump")) a->dump = v;
        else if (!strcmp(k, "--max-len")) a->max_len = atoi(v);
        else if (!strcmp(k, "--repeat")) a->repeat = atoi(v);
        else return fprintf(stderr, "tokenize_bench: unknown option %s\n", k), -1;
        i++;
    }
    if (a->max_len < 2 || a->repeat < 1)
        return fprintf(stderr, "tokenize_bench: --max-len >= 2 and --repeat >= 1\n"), -1;
    return 0;
}

/* one timed run: read the file (*read_s of the *seconds), tokenise, featurise; returns
 * examples or -1 */
static int run_once(const Tokenizer *tok, const TaskInfo *task, const BenchArgs *a,
                    double *seconds, double *cpu, double *read_s, Features *f, Error *e) {
    double t0 = now_seconds();
    clock_t c0 = clock();
    ExampleSet ex;
    if (read_seq_cls_examples(task, a->file, &ex, e)) return -1;
    *read_s = now_seconds() - t0;
    int rc = seq_cls_features(tok, task, &ex, a->max_len, f, e);
    *seconds = now_seconds() - t0;
    *cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    int n = ex.n;
    free_examples(&ex);
    return rc ? -1 : n;
}

static int dump_ids(const char *path, const Features *f, int n, int max_len, Error *e) {
    size_t count = (size_t)n * max_len;
    int32_t *ids = xmalloc(count * sizeof *ids);
    for (size_t i = 0; i < count; i++) ids[i] = f->input_ids[i];
    int rc = write_file_atomic(path, ids, count * sizeof *ids, e);
    free(ids);
    return rc;
}

int main(int argc, char **argv) {
    BenchArgs a;
    if (parse_args(argc, argv, &a)) return 2;
    const TaskInfo *task = task_find(a.task);
    if (!task) return fprintf(stderr, "tokenize_bench: unknown task %s\n", a.task), 2;
    Error e;
    TokenizerSpec spec = {TOK_WORDPIECE, a.vocab, NULL, 0};
    Tokenizer *tok = tokenizer_open(&spec, &e);
    if (!tok) return fprintf(stderr, "%s\n", e.msg), 1;
    double best = 1e30, best_cpu = 1e30, best_read = 1e30;
    int n = 0;
    for (int r = 0; r < a.repeat; r++) {
        Features f;
        double s, cpu, read_s;
        if ((n = run_once(tok, task, &a, &s, &cpu, &read_s, &f, &e)) < 0)
            return fprintf(stderr, "%s\n", e.msg), tokenizer_free(tok), 1;
        printf("run %d: %d examples in %.3f s (read %.3f s), cpu %.3f s (%.0f examples/s)\n",
               r + 1, n, s, read_s, cpu, n / s);
        if (s < best) best = s;
        if (cpu < best_cpu) best_cpu = cpu;
        if (read_s < best_read) best_read = read_s;
        if (r == a.repeat - 1 && a.dump && dump_ids(a.dump, &f, n, a.max_len, &e))
            fprintf(stderr, "%s\n", e.msg), n = -1;
        features_free(&f);
        if (n < 0) return tokenizer_free(tok), 1;
    }
    printf("{\"impl\": \"koelectra.c\", \"examples\": %d, \"best_s\": %.4f, "
           "\"examples_per_s\": %.0f, \"best_cpu_s\": %.4f, \"examples_per_cpu_s\": %.0f, "
           "\"best_read_s\": %.4f}\n",
           n, best, n / best, best_cpu, n / best_cpu, best_read);
    tokenizer_free(tok);
    return 0;
}
