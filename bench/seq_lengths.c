/* The real token lengths (attention-mask ones) of a task's features, built by the project's
 * own pipeline as the training programs build them, as a histogram text file: '#' header
 * lines saying what it was made from, the command and a summary, then one "length count" line
 * per length that occurs, ascending. bench/attention_bench samples its batches from these.
 *
 *   seq_lengths --task nsmc|korquad [--file PATH] [--vocab PATH] [--max-len N]
 *               [--doc-stride N] [--max-query-len N] [--out PATH]
 *
 * nsmc: read_seq_cls_examples + seq_cls_features, max_len 128, default file
 * ../shared/data/nsmc/ratings_train.txt. korquad: read_qa_examples + qa_make_features
 * (evaluation features: every question, no answer check), max_len 512, doc_stride 128,
 * max_query_len 64 as configs/korquad/, default file
 * ../shared/data/korquad/KorQuAD_v1.0_dev.json (the only split here). The vocabulary is
 * koelectra-base-v3-discriminator's (a vocab.txt, or a folder holding one); output to stdout
 * unless --out. The files in bench/lengths/ are made with:
 *
 *   seq_lengths --task nsmc --out bench/lengths/nsmc-128.txt
 *   seq_lengths --task korquad --out bench/lengths/korquad-512.txt
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/tasks/seq_cls.h"
#include "host/tasks/squad.h"
#include "host/tasks/tasks.h"
#include "host/text/tokenizer.h"

typedef struct {
    const char *task, *file, *vocab, *out;
    int max_len, doc_stride, max_query_len;
} Args;

/* a positive integer option value, or -1 */
static int positive(const char *k, const char *v) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v && !*end && x > 0 && x < 1 << 20) return (int)x;
    fprintf(stderr, "seq_lengths: %s: expected a positive integer, got '%s'\n", k, v);
    return -1;
}

static int parse_args(int argc, char **argv, Args *a) {
    *a = (Args){NULL, NULL, "../shared/vocab/koelectra-base-v3-discriminator/vocab.txt", NULL,
                0, 128, 64};
    for (int i = 1; i < argc; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *num = !strcmp(k, "--max-len")         ? &a->max_len
                   : !strcmp(k, "--doc-stride")    ? &a->doc_stride
                   : !strcmp(k, "--max-query-len") ? &a->max_query_len
                                                   : NULL;
        if (!strcmp(k, "--help")) return 1;
        if (!v) return fprintf(stderr, "seq_lengths: %s needs a value\n", k), -1;
        if (num && (*num = positive(k, v)) < 0) return -1;
        if (num) continue;
        if (!strcmp(k, "--task")) a->task = v;
        else if (!strcmp(k, "--file")) a->file = v;
        else if (!strcmp(k, "--vocab")) a->vocab = v;
        else if (!strcmp(k, "--out")) a->out = v;
        else return fprintf(stderr, "seq_lengths: unknown option %s\n", k), -1;
    }
    if (!a->task) return fprintf(stderr, "seq_lengths: --task is required\n"), -1;
    int qa = !strcmp(a->task, "korquad");
    if (!qa && strcmp(a->task, "nsmc"))
        return fprintf(stderr, "seq_lengths: --task: nsmc or korquad, not '%s'\n", a->task), -1;
    if (!a->file)
        a->file = qa ? "../shared/data/korquad/KorQuAD_v1.0_dev.json"
                     : "../shared/data/nsmc/ratings_train.txt";
    if (!a->max_len) a->max_len = qa ? 512 : 128;
    return 0;
}

/* lengths of the nsmc features, or NULL */
static int *nsmc_lengths(const Tokenizer *tok, const Args *a, int *n, Error *e) {
    ExampleSet ex;
    Features f;
    const TaskInfo *task = task_find("nsmc");
    if (read_seq_cls_examples(task, a->file, &ex, e)) return NULL;
    int rc = seq_cls_features(tok, task, &ex, a->max_len, &f, e);
    free_examples(&ex);
    if (rc) return NULL;
    int *len = xmalloc(sizeof(int) * (size_t)(f.n + 1));
    memcpy(len, f.lengths, sizeof(int) * (size_t)f.n);
    *n = f.n;
    features_free(&f);
    return len;
}

/* lengths of the korquad evaluation features (one per window), or NULL */
static int *korquad_lengths(const Tokenizer *tok, const Args *a, int *n, Error *e) {
    QaExampleSet ex;
    QaFeatures qf;
    QaFeatureArgs fa = {a->max_len, a->doc_stride, a->max_query_len, 0};
    if (read_qa_examples(a->file, &ex, e)) return NULL;
    int rc = qa_make_features(tok, &ex, &fa, &qf, e);
    free_qa_examples(&ex);
    if (rc) return NULL;
    int *len = xmalloc(sizeof(int) * (size_t)(qf.n + 1));
    memcpy(len, qf.lengths, sizeof(int) * (size_t)qf.n);
    *n = qf.n;
    qa_features_free(&qf);
    return len;
}

/* the smallest length with at least q of the n sequences at or below it */
static int quantile(const long *count, int max_len, long n, double q) {
    long seen = 0;
    for (int l = 0; l <= max_len; l++)
        if ((seen += count[l]) >= q * n) return l;
    return max_len;
}

static void write_histogram(FILE *f, const Args *a, int argc, char **argv, const int *len,
                            int n) {
    long *count = xcalloc((size_t)a->max_len + 1, sizeof(long));
    double sum = 0;
    for (int i = 0; i < n; i++) count[len[i]]++, sum += len[i];
    fprintf(f, "# real token lengths of %s features from %s (vocab %s; max_len %d", a->task,
            a->file, a->vocab, a->max_len);
    if (!strcmp(a->task, "korquad"))
        fprintf(f, ", doc_stride %d, max_query_len %d, evaluation features", a->doc_stride,
                a->max_query_len);
    fprintf(f, ")\n# command: seq_lengths");
    for (int i = 1; i < argc; i++) fprintf(f, " %s", argv[i]);
    fprintf(f, "\n# %d sequences, mean %.1f, median %d, p90 %d, max %d\n", n, sum / n,
            quantile(count, a->max_len, n, 0.5), quantile(count, a->max_len, n, 0.9),
            quantile(count, a->max_len, n, 1.0));
    for (int l = 0; l <= a->max_len; l++)
        if (count[l]) fprintf(f, "%d %ld\n", l, count[l]);
    free(count);
}

int main(int argc, char **argv) {
    Args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        fprintf(rc > 0 ? stdout : stderr,
                "usage: seq_lengths --task nsmc|korquad [--file PATH] [--vocab PATH] "
                "[--max-len N] [--doc-stride N] [--max-query-len N] [--out PATH]\n");
        return rc > 0 ? 0 : 2;
    }
    Error e;
    char *vocab = dir_exists(a.vocab) ? strfmt("%s/vocab.txt", a.vocab) : xstrdup(a.vocab);
    TokenizerSpec spec = {TOK_WORDPIECE, vocab, NULL, 0}; /* do_lower_case false */
    Tokenizer *tok = tokenizer_open(&spec, &e);
    free(vocab);
    if (!tok) return fprintf(stderr, "seq_lengths: %s\n", e.msg), 1;
    int n = 0;
    int *len = !strcmp(a.task, "korquad") ? korquad_lengths(tok, &a, &n, &e)
                                          : nsmc_lengths(tok, &a, &n, &e);
    tokenizer_free(tok);
    if (!len) return fprintf(stderr, "seq_lengths: %s\n", e.msg), 1;
    if (n == 0) return fprintf(stderr, "seq_lengths: %s: no features\n", a.file), free(len), 1;
    for (int i = 0; i < n; i++)
        if (len[i] < 0 || len[i] > a.max_len)
            return fprintf(stderr, "seq_lengths: feature %d: length %d\n", i, len[i]), 1;
    FILE *f = a.out ? fopen(a.out, "w") : stdout;
    if (!f) return fprintf(stderr, "seq_lengths: %s: cannot write\n", a.out), free(len), 1;
    write_histogram(f, &a, argc, argv, len, n);
    free(len);
    if ((a.out ? fclose(f) : fflush(f)) != 0)
        return fprintf(stderr, "seq_lengths: %s: write failed\n", a.out ? a.out : "stdout"), 1;
    return 0;
}
