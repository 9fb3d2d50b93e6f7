/* Attention forward + backward on the CUDA backend, 12 heads x 64, dropout 0.1, at the
 * benchmark's two shapes: nsmc (batch 32, T 128) and korquad (batch 8, T 512). Each shape has
 * two length mixes: "full" (every row T long) and "real" (B lengths drawn with a fixed seed
 * from the task's real feature lengths, LENGTHS_DIR/nsmc-128.txt and korquad-512.txt, written
 * by bench/seq_lengths). So four cases (nsmc-full, nsmc-real, korquad-full, korquad-real), and
 * three paths each:
 *
 *   flash         attention_fwd/bwd on the padded batch [B,T] (fused kernels)
 *   simple        the same with KOE_CUDA_SIMPLE_ATTENTION=1 (the unfused baseline)
 *   flash-packed  attention_packed_fwd/bwd on the same sequences back to back (N = sum L rows)
 *
 * One JSON line per (case, path), with the lengths drawn, so that bench/attention_torch.py
 * times PyTorch on exactly the same batches. --lengths-only prints one line per case (no
 * timing, no GPU needed).
 *
 *   attention_bench [--steps N] [--warmup N] [--reps N] [--lengths-dir DIR] [--lengths-only]
 *
 * Timing: a step runs the forward --reps times back to back and synchronizes, then the same
 * for the backward; fwd_ms and bwd_ms are the median over --steps steps of the host wall clock
 * per call, so launch and synchronization latency (~10 us) is spread over the reps.
 *
 * FLOPs: one count per case, the same for all its paths (and PyTorch's), so TFLOP/s compare
 * like times: the useful work of real tokens only, 4 * sum(L^2) * HD * NH for the forward (QK^T
 * and PV over real rows x real keys) and 2.5x that for the backward (five GEMMs, QK^T
 * recomputed): "gflop", "tflops". A padded path also computes every padding query row (ops.h);
 * its "tflops_all_rows" counts that work too, 4 * T * sum(L) * HD * NH * 3.5.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/util.h"
#include "kernels/ops.h"

enum { NH = 12, HD = 64, C = NH * HD };
static const float DROPOUT = 0.1f;

typedef struct {
    const char *task, *file; /* file: the histogram in the lengths dir */
    int B, T;
} Shape;

static const Shape SHAPES[] = {{"nsmc", "nsmc-128.txt", 32, 128},
                               {"korquad", "korquad-512.txt", 8, 512}};

typedef enum { PATH_FLASH, PATH_SIMPLE, PATH_PACKED, N_PATHS } Path;
static const char *const PATH_NAMES[] = {"flash", "simple", "flash-packed"};

typedef struct {
    int steps, warmup, reps, lengths_only;
    const char *lengths_dir;
} Opts;

/* One case: its lengths and, once uploaded, its tensors padded and packed. */
typedef struct {
    char name[32];
    int B, T, N;    /* N = sum of lengths: the packed rows */
    int *len, *off; /* host: len[B], off[B+1] */
    double gflop, gflop_all_rows;
    void *qkv, *dqkv, *out, *dout, *lse, *d_len;     /* padded [B*T rows] */
    void *pqkv, *pdqkv, *pout, *pdout, *plse, *d_off; /* packed [N rows] */
} Batch;

static uint64_t next(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* count[l] sequences of length l (1 <= l <= T) from "length count" lines; '#' lines skipped */
static int read_histogram(const char *path, int T, long *count, Error *e) {
    char *data;
    if (read_file(path, &data, NULL, e)) return -1;
    long total = 0;
    int rc = 0, line = 0;
    for (char *s = data, *nl; rc == 0 && *s; s = nl ? nl + 1 : s + strlen(s)) {
        if ((nl = strchr(s, '\n'))) *nl = 0;
        line++;
        int l, used = -1;
        long c;
        if (*s == '#' || s[strspn(s, " \t\r")] == 0) continue;
        if (sscanf(s, "%d %ld %n", &l, &c, &used) != 2 || s[used])
            rc = errorf(e, "%s:%d: expected \"length count\", got \"%.40s\"", path, line, s);
        else if (l < 1 || l > T || c < 0)
            rc = errorf(e, "%s:%d: length %d, count %ld: want 1 <= length <= %d, count >= 0",
                        path, line, l, c, T);
        else
            count[l] += c, total += c;
    }
    if (rc == 0 && total == 0) rc = errorf(e, "%s: no sequences", path);
    free(data);
    return rc;
}

/* B lengths drawn from the histogram with a fixed seed */
static void sample_lengths(const long *count, int T, int B, int *len) {
    long total = 0;
    for (int l = 1; l <= T; l++) total += count[l];
    uint64_t s = 0x853c49e6748fea9bULL;
    for (int b = 0; b < B; b++) {
        long r = (long)(next(&s) % (uint64_t)total);
        int l = 1;
        while (r >= count[l]) r -= count[l++];
        len[b] = l;
    }
}

/* a case of shape sh; count NULL for the full lengths */
static void batch_init(Batch *x, const Shape *sh, const long *count) {
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s-%s", sh->task, count ? "real" : "full");
    x->B = sh->B, x->T = sh->T;
    x->len = xmalloc(sizeof(int) * x->B);
    x->off = xmalloc(sizeof(int) * (x->B + 1));
    for (int b = 0; b < x->B; b++) x->len[b] = x->T;
    if (count) sample_lengths(count, x->T, x->B, x->len);
    double sq = 0;
    x->off[0] = 0;
    for (int b = 0; b < x->B; b++) {
        sq += (double)x->len[b] * x->len[b];
        x->off[b + 1] = x->off[b] + x->len[b];
    }
    x->N = x->off[x->B];
    x->gflop = 4.0 * sq * HD * NH * 3.5 / 1e9;
    x->gflop_all_rows = 4.0 * x->T * (double)x->N * HD * NH * 3.5 / 1e9;
}

/* packed[N, width] = the real rows of padded[B*T, width] */
static void pack_rows(float *packed, const float *padded, const Batch *x, size_t width) {
    for (int b = 0; b < x->B; b++)
        memcpy(packed + (size_t)x->off[b] * width, padded + (size_t)b * x->T * width,
               sizeof(float) * x->len[b] * width);
}

/* uniform [-1, 1) values as backend activations, padded and packed */
static void upload_random(const Backend *g, const Batch *x, size_t width, uint64_t seed,
                          void **padded, void **packed) {
    size_t n = (size_t)x->B * x->T * width, np = (size_t)x->N * width;
    float *h = xmalloc(sizeof(float) * n), *p = xmalloc(sizeof(float) * np);
    for (size_t i = 0; i < n; i++) h[i] = (float)(next(&seed) >> 40) / 16777216.0f * 2 - 1;
    pack_rows(p, h, x, width);
    *padded = g->alloc(n * g->act_size);
    *packed = g->alloc(np * g->act_size);
    g->acts_from_float(*padded, h, n);
    g->acts_from_float(*packed, p, np);
    free(h);
    free(p);
}

static void batch_upload(const Backend *g, Batch *x) {
    size_t rows = (size_t)x->B * x->T;
    upload_random(g, x, 3 * C, 1234567, &x->qkv, &x->pqkv);
    upload_random(g, x, C, 7654321, &x->dout, &x->pdout);
    x->dqkv = g->alloc(rows * 3 * C * g->act_size);
    x->pdqkv = g->alloc((size_t)x->N * 3 * C * g->act_size);
    x->out = g->alloc(rows * C * g->act_size);
    x->pout = g->alloc((size_t)x->N * C * g->act_size);
    x->lse = g->alloc(rows * NH * sizeof(float));
    x->plse = g->alloc((size_t)x->N * NH * sizeof(float));
    x->d_len = g->alloc(sizeof(int) * x->B);
    x->d_off = g->alloc(sizeof(int) * (x->B + 1));
    g->to_device(x->d_len, x->len, sizeof(int) * x->B);
    g->to_device(x->d_off, x->off, sizeof(int) * (x->B + 1));
}

static void batch_free(const Backend *g, Batch *x) {
    void *dev[] = {x->qkv, x->dqkv, x->out, x->dout, x->lse, x->d_len,
                   x->pqkv, x->pdqkv, x->pout, x->pdout, x->plse, x->d_off};
    for (size_t i = 0; g && i < sizeof dev / sizeof *dev; i++)
        if (dev[i]) g->free(dev[i]);
    free(x->len);
    free(x->off);
}

static void run_op(const Backend *g, const Batch *x, Path p, int backward) {
    Dropout d = {DROPOUT, 42, 7, NULL};
    if (p == PATH_PACKED && !backward)
        g->attention_packed_fwd(x->pout, x->plse, x->pqkv, x->d_off, x->B, x->N, x->T, NH, HD, d);
    else if (p == PATH_PACKED)
        g->attention_packed_bwd(x->pdqkv, x->pdout, x->pout, x->plse, x->pqkv, x->d_off, x->B,
                                x->N, x->T, NH, HD, d);
    else if (!backward)
        g->attention_fwd(x->out, x->lse, x->qkv, x->d_len, x->B, x->T, NH, HD, d);
    else
        g->attention_bwd(x->dqkv, x->dout, x->out, x->lse, x->qkv, x->d_len, x->B, x->T, NH,
                         HD, d);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, n, sizeof(double), cmp_double);
    return v[n / 2];
}

/* median seconds per call of the forward and of the backward */
static void time_path(const Backend *g, const Batch *x, Path p, const Opts *o, double *fwd,
                      double *bwd) {
    if (p == PATH_SIMPLE) setenv("KOE_CUDA_SIMPLE_ATTENTION", "1", 1);
    double *tf = xmalloc(sizeof(double) * o->steps), *tb = xmalloc(sizeof(double) * o->steps);
    for (int s = -o->warmup; s < o->steps; s++) {
        g->synchronize();
        double t0 = now_seconds();
        for (int r = 0; r < o->reps; r++) run_op(g, x, p, 0);
        g->synchronize();
        double t1 = now_seconds();
        for (int r = 0; r < o->reps; r++) run_op(g, x, p, 1);
        g->synchronize();
        double t2 = now_seconds();
        if (s >= 0) tf[s] = (t1 - t0) / o->reps, tb[s] = (t2 - t1) / o->reps;
    }
    unsetenv("KOE_CUDA_SIMPLE_ATTENTION");
    *fwd = median(tf, o->steps);
    *bwd = median(tb, o->steps);
    free(tf);
    free(tb);
}

/* the fields every line of a case has, then its path's (if any), then the lengths */
static void print_line(const Batch *x, const char *path_fields) {
    printf("{\"case\": \"%s\", \"batch\": %d, \"seq\": %d, \"heads\": %d, \"head_dim\": %d, "
           "\"dropout\": %.2f, \"tokens\": %d, \"mean_len\": %.1f, \"gflop\": %.4f, %s"
           "\"lengths\": [",
           x->name, x->B, x->T, NH, HD, DROPOUT, x->N, (double)x->N / x->B, x->gflop,
           path_fields);
    for (int b = 0; b < x->B; b++) printf(b ? ", %d" : "%d", x->len[b]);
    printf("]}\n");
    fflush(stdout);
}

static void bench_path(const Backend *g, const Batch *x, Path p, const Opts *o) {
    double f, b;
    time_path(g, x, p, o, &f, &b);
    double ms = (f + b) * 1e3;
    char fields[320], all_rows[64] = "";
    if (p != PATH_PACKED)
        snprintf(all_rows, sizeof all_rows, "\"tflops_all_rows\": %.2f, ",
                 x->gflop_all_rows / ms);
    snprintf(fields, sizeof fields,
             "\"path\": \"%s\", \"layout\": \"%s\", \"reps\": %d, \"fwd_ms\": %.4f, "
             "\"bwd_ms\": %.4f, \"total_ms\": %.4f, \"tflops\": %.2f, %s",
             PATH_NAMES[p], p == PATH_PACKED ? "packed" : "padded", o->reps, f * 1e3, b * 1e3,
             ms, x->gflop / ms, all_rows);
    print_line(x, fields);
}

/* *dst = v as an integer >= min, else -1 with a message */
static int int_arg(const char *k, const char *v, int min, int *dst) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v && !*end && x >= min && x <= 1000000) return *dst = (int)x, 0;
    fprintf(stderr, "attention_bench: %s: want an integer >= %d, got '%s'\n", k, min, v);
    return -1;
}

static int parse_args(int argc, char **argv, Opts *o) {
    *o = (Opts){20, 3, 10, 0, "bench/lengths"};
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--lengths-only")) {
            o->lengths_only = 1;
            continue;
        }
        const char *v = ++i < argc ? argv[i] : "";
        int rc = !strcmp(k, "--steps")         ? int_arg(k, v, 1, &o->steps)
                 : !strcmp(k, "--warmup")      ? int_arg(k, v, 0, &o->warmup)
                 : !strcmp(k, "--reps")        ? int_arg(k, v, 1, &o->reps)
                 : !strcmp(k, "--lengths-dir") ? (o->lengths_dir = v, 0)
                                               : -2;
        if (rc == -2) fprintf(stderr, "attention_bench: unknown option %s\n", k);
        if (rc == 0 && !*v) rc = fprintf(stderr, "attention_bench: %s needs a value\n", k);
        if (rc) return -1;
    }
    return 0;
}

/* the four cases: each shape full, then real; -1 when a lengths file is bad */
static int make_cases(const Opts *o, Batch *cases, Error *e) {
    int n = 0;
    for (size_t s = 0; s < sizeof SHAPES / sizeof *SHAPES; s++) {
        const Shape *sh = &SHAPES[s];
        long *count = xcalloc((size_t)sh->T + 1, sizeof(long));
        char *path = strfmt("%s/%s", o->lengths_dir, sh->file);
        int rc = read_histogram(path, sh->T, count, e);
        free(path);
        if (rc == 0) {
            batch_init(&cases[n++], sh, NULL);
            batch_init(&cases[n++], sh, count);
        }
        free(count);
        if (rc) return -1;
    }
    return n;
}

int main(int argc, char **argv) {
    Opts o;
    if (parse_args(argc, argv, &o)) {
        fprintf(stderr, "usage: attention_bench [--steps N] [--warmup N] [--reps N] "
                        "[--lengths-dir DIR] [--lengths-only]\n");
        return 2;
    }
    Batch cases[2 * sizeof SHAPES / sizeof *SHAPES];
    Error e;
    int n = make_cases(&o, cases, &e);
    if (n < 0) return fprintf(stderr, "attention_bench: %s\n", e.msg), 1;
    const Backend *g = o.lengths_only ? NULL : backend_cuda();
    if (!o.lengths_only && !g) printf("SKIP: no CUDA device\n");
    for (int i = 0; i < n; i++) {
        if (o.lengths_only) print_line(&cases[i], "");
        if (g) batch_upload(g, &cases[i]);
        for (int p = 0; g && p < N_PATHS; p++) bench_path(g, &cases[i], (Path)p, &o);
        batch_free(g, &cases[i]);
    }
    return o.lengths_only || g ? 0 : 77;
}
