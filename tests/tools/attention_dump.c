/* One attention forward + backward on a backend, written out for an outside reference
 * (tests/gpu/test_attention_sdpa.py checks it against PyTorch in float64):
 *
 *   attention_dump --backend cuda|cpu --batch B --seq T --heads NH --head-dim HD
 *                  --dropout P --seed S [--packed] [--len L] --out FILE
 *
 * Inputs are fresh random values rounded to bf16 (qkv in [-1.5, 1.5], dout in [-1, 1]), so
 * the reference sees exactly what the backend computes on. Lengths: row 0 full, row 1 a
 * single key, the rest random in [1, T]; with B = 1 the row is full or --len long. The op's
 * outputs are poisoned with NaN first, so an element it forgets cannot pass as a zero.
 *
 * FILE (native byte order): the Header below, then int32 lengths[B] and float32 qkv [N,3C],
 * dout [N,C], out [N,C], lse, dqkv [N,3C] with C = NH*HD; padded: N = B*T rows and lse
 * [B,NH,T]; packed: N real tokens and lse [NH,N]. With P > 0 there follow uint8 keep flags
 * [B,NH,T,T] from kernels/rng.h, drawn as the CPU op draws them, so the reference applies
 * the same mask. Exits 77 (SKIP) when --backend cuda finds no device, 2 on bad arguments.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/util.h"
#include "kernels/ops.h"
#include "kernels/rng.h"
#include "tests/test.h"

#define DUMP_VERSION 1

typedef struct {
    char magic[8]; /* "KOEATTN\0" */
    int32_t version, B, T, NH, HD;
    float p;
    int32_t packed, N;
} Header;

typedef struct {
    const char *backend, *out;
    long B, T, NH, HD, len;
    double p;
    uint64_t seed;
    int packed;
} Args;

/* a bad argument: one line, exit 2 */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "attention_dump: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static long int_arg(const char *name, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        die("%s: expected an integer in [%ld, %ld], got '%s'", name, lo, hi, s);
    return v;
}

static Args parse_args(int argc, char **argv) {
    Args a = {NULL, NULL, 0, 0, 0, 0, -1, -1.0, 0, 0};
    int have_seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (strcmp(k, "--packed") == 0) {
            a.packed = 1;
            continue;
        }
        if (strncmp(k, "--", 2) != 0) die("unexpected argument '%s'", k);
        if (i + 1 >= argc) die("%s: missing value", k);
        const char *v = argv[++i];
        if (strcmp(k, "--backend") == 0) a.backend = v;
        else if (strcmp(k, "--out") == 0) a.out = v;
        else if (strcmp(k, "--batch") == 0) a.B = int_arg(k, v, 1, 4096);
        else if (strcmp(k, "--seq") == 0) a.T = int_arg(k, v, 1, 8192);
        else if (strcmp(k, "--heads") == 0) a.NH = int_arg(k, v, 1, 64);
        else if (strcmp(k, "--head-dim") == 0) a.HD = int_arg(k, v, 1, 256);
        else if (strcmp(k, "--len") == 0) a.len = int_arg(k, v, 0, 8192);
        else if (strcmp(k, "--seed") == 0) {
            a.seed = (uint64_t)int_arg(k, v, 0, INT32_MAX);
            have_seed = 1;
        } else if (strcmp(k, "--dropout") == 0) {
            char *end;
            a.p = strtod(v, &end);
            if (end == v || *end || !(a.p >= 0.0 && a.p < 1.0))
                die("--dropout: expected a probability in [0, 1), got '%s'", v);
        } else die("unknown option '%s'", k);
    }
    if (!a.backend || (strcmp(a.backend, "cuda") && strcmp(a.backend, "cpu")))
        die("--backend: expected cuda or cpu, got '%s'", a.backend ? a.backend : "nothing");
    const char *missing = !a.B ? "--batch" : !a.T ? "--seq" : !a.NH ? "--heads" : !a.HD
                        ? "--head-dim" : a.p < 0 ? "--dropout" : !have_seed ? "--seed"
                        : !a.out ? "--out" : NULL;
    if (missing) die("%s is required", missing);
    if (a.len >= 0 && (a.B != 1 || a.len > a.T))
        die("--len %ld: only with --batch 1, and at most --seq (%ld)", a.len, a.T);
    if (a.packed && a.len == 0) die("--packed --len 0: a packed batch needs a token");
    return a;
}

static uint64_t next(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static float *random_bf16(size_t n, float lo, float hi, uint64_t *s) {
    float *x = xmalloc(n * sizeof(float));
    fill_uniform(x, n, lo, hi, s);
    for (size_t i = 0; i < n; i++) x[i] = bf16_round(x[i]);
    return x;
}

static void make_lengths(int *len, const Args *a, uint64_t *s) {
    for (int b = 0; b < a->B; b++) len[b] = 1 + (int)(next(s) % (uint64_t)a->T);
    len[0] = a->B == 1 && a->len >= 0 ? (int)a->len : (int)a->T;
    if (a->B > 1) len[1] = 1;
}

/* backend memory holding n acts (or floats) of NaN */
static void *poisoned(const Backend *be, size_t n, int acts) {
    size_t bytes = n * (acts ? be->act_size : sizeof(float));
    void *p = be->alloc(bytes);
    float *nan = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) nan[i] = NAN;
    if (acts) be->acts_from_float(p, nan, n);
    else be->to_device(p, nan, n * sizeof(float));
    free(nan);
    return p;
}

static void *uploaded(const Backend *be, const void *h, size_t bytes) {
    void *p = be->alloc(bytes);
    be->to_device(p, h, bytes);
    return p;
}

static void *acts(const Backend *be, const float *h, size_t n) {
    void *p = be->alloc(n * be->act_size);
    be->acts_from_float(p, h, n);
    return p;
}

/* forward and backward on the backend; out, lse, dqkv are host arrays it fills */
static void run_op(const Backend *be, const Args *a, const int *len, const int *off, int N,
                   const float *qkv, const float *dout, Dropout d, uint64_t step, float *out,
                   float *lse, float *dqkv) {
    int B = (int)a->B, T = (int)a->T, NH = (int)a->NH, HD = (int)a->HD;
    size_t nqkv = (size_t)N * 3 * NH * HD, nout = (size_t)N * NH * HD, nlse = (size_t)N * NH;
    d.step = uploaded(be, &step, sizeof step); /* in backend memory, as training passes it */
    int *g_idx = a->packed ? uploaded(be, off, (B + 1) * sizeof(int))
                           : uploaded(be, len, B * sizeof(int));
    void *g_qkv = acts(be, qkv, nqkv), *g_dout = acts(be, dout, nout);
    void *g_out = poisoned(be, nout, 1), *g_dqkv = poisoned(be, nqkv, 1);
    float *g_lse = poisoned(be, nlse, 0);
    if (a->packed) {
        be->attention_packed_fwd(g_out, g_lse, g_qkv, g_idx, B, N, T, NH, HD, d);
        be->attention_packed_bwd(g_dqkv, g_dout, g_out, g_lse, g_qkv, g_idx, B, N, T, NH, HD,
                                 d);
    } else {
        be->attention_fwd(g_out, g_lse, g_qkv, g_idx, B, T, NH, HD, d);
        be->attention_bwd(g_dqkv, g_dout, g_out, g_lse, g_qkv, g_idx, B, T, NH, HD, d);
    }
    be->acts_to_float(out, g_out, nout);
    be->acts_to_float(dqkv, g_dqkv, nqkv);
    be->to_host(lse, g_lse, nlse * sizeof(float));
    void *ptrs[] = {(void *)d.step, g_idx, g_qkv, g_dout, g_out, g_dqkv, g_lse};
    for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++) be->free(ptrs[i]);
}

static void put(FILE *f, const void *x, size_t size, size_t n, const char *path) {
    if (fwrite(x, size, n, f) != n) {
        fprintf(stderr, "attention_dump: %s: write failed: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* the keep flags of the CPU op's mask: index ((b*NH+h)*T+i)*T+j, see kernels/ops.h */
static void put_keep(FILE *f, const Args *a, Dropout d, uint64_t step) {
    uint64_t T = (uint64_t)a->T, stream = koe_step_stream(d.stream, &step);
    uint8_t *keep = xmalloc(T * T);
    for (uint64_t bh = 0; bh < (uint64_t)(a->B * a->NH); bh++) {
        for (uint64_t ij = 0; ij < T * T; ij++)
            keep[ij] = (uint8_t)koe_keep(d.seed, stream, bh * T * T + ij, d.p);
        put(f, keep, 1, T * T, a->out);
    }
    free(keep);
}

int main(int argc, char **argv) {
    Args a = parse_args(argc, argv);
    const Backend *be = strcmp(a.backend, "cuda") == 0 ? backend_cuda() : backend_cpu();
    if (!be) {
        printf("SKIP: no CUDA device (or built without CUDA)\n");
        return 77;
    }
    int B = (int)a.B, T = (int)a.T, NH = (int)a.NH, HD = (int)a.HD, C = NH * HD;
    uint64_t s = 0x9e3779b97f4a7c15ULL ^ (a.seed * 0xd1b54a32d192ed03ULL);
    int *len = xmalloc(B * sizeof(int)), *off = xmalloc((B + 1) * sizeof(int));
    make_lengths(len, &a, &s);
    off[0] = 0;
    for (int b = 0; b < B; b++) off[b + 1] = off[b] + len[b];
    int N = a.packed ? off[B] : B * T;
    size_t nqkv = (size_t)N * 3 * C, nout = (size_t)N * C, nlse = (size_t)N * NH;
    float *qkv = random_bf16(nqkv, -1.5f, 1.5f, &s), *dout = random_bf16(nout, -1.0f, 1.0f, &s);
    float *out = xmalloc(nout * sizeof(float)), *dqkv = xmalloc(nqkv * sizeof(float));
    float *lse = xmalloc(nlse * sizeof(float));
    Dropout d = {(float)a.p, a.seed, 5, NULL};
    uint64_t step = 3;
    run_op(be, &a, len, off, N, qkv, dout, d, step, out, lse, dqkv);

    FILE *f = fopen(a.out, "wb");
    if (!f) {
        fprintf(stderr, "attention_dump: %s: cannot create: %s\n", a.out, strerror(errno));
        return 1;
    }
    Header h = {"KOEATTN", DUMP_VERSION, B, T, NH, HD, d.p, a.packed, N};
    put(f, &h, sizeof h, 1, a.out);
    put(f, len, sizeof(int), B, a.out);
    put(f, qkv, sizeof(float), nqkv, a.out);
    put(f, dout, sizeof(float), nout, a.out);
    put(f, out, sizeof(float), nout, a.out);
    put(f, lse, sizeof(float), nlse, a.out);
    put(f, dqkv, sizeof(float), nqkv, a.out);
    if (d.p > 0.0f) put_keep(f, &a, d, step);
    if (fclose(f) != 0) {
        fprintf(stderr, "attention_dump: %s: write failed: %s\n", a.out, strerror(errno));
        return 1;
    }
    void *ptrs[] = {len, off, qkv, dout, out, dqkv, lse};
    for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++) free(ptrs[i]);
    return 0;
}
