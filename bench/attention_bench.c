/* Attention forward + backward on the CUDA backend: the fused kernels against the simple path
 * (KOE_CUDA_SIMPLE_ATTENTION=1), 12 heads x 64 at the benchmark's shapes, all rows full
 * ("padded") and with realistic lengths (NSMC-like at T=128, KorQuAD-like at T=512, drawn
 * from a fixed seed). One JSON line per (case, path):
 *
 *   attention_bench [--steps N] [--warmup N]
 *
 * TFLOP/s counts the useful work over valid keys only, FlashAttention's way: forward
 * 4*T*L*HD per (row, head), backward 2.5x that (five GEMMs, the recomputation included).
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/util.h"
#include "kernels/ops.h"

typedef enum { LEN_FULL, LEN_NSMC, LEN_KORQUAD } LengthMix;

static uint64_t next(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* NSMC-like: mostly 10-40 tokens, one in eight 40-T; KorQuAD-like: mostly 300-T, one in
 * eight 100-300 (question + a short context) */
static void make_lengths(int *len, int B, int T, LengthMix mix) {
    uint64_t s = 0x853c49e6748fea9bULL;
    for (int b = 0; b < B; b++) {
        uint64_t r = next(&s), tail = next(&s) % 8 == 0;
        if (mix == LEN_FULL) len[b] = T;
        if (mix == LEN_NSMC)
            len[b] = tail ? 40 + (int)(r % (uint64_t)(T - 39)) : 10 + (int)(r % 31);
        if (mix == LEN_KORQUAD)
            len[b] = tail ? 100 + (int)(r % 200) : 300 + (int)(r % (uint64_t)(T - 299));
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median seconds of fwd and bwd over `steps` timed runs */
static void time_attention(const Backend *g, int B, int T, int NH, int HD, const int *g_len,
                           void *out, float *lse, const void *qkv, void *dqkv, const void *dout,
                           int steps, int warmup, double *fwd_s, double *bwd_s) {
    Dropout d = {0.1f, 42, 7, NULL};
    double *tf = xmalloc(sizeof(double) * steps), *tb = xmalloc(sizeof(double) * steps);
    for (int s = -warmup; s < steps; s++) {
        g->synchronize();
        double t0 = now_seconds();
        g->attention_fwd(out, lse, qkv, g_len, B, T, NH, HD, d);
        g->synchronize();
        double t1 = now_seconds();
        g->attention_bwd(dqkv, dout, out, lse, qkv, g_len, B, T, NH, HD, d);
        g->synchronize();
        double t2 = now_seconds();
        if (s >= 0) tf[s] = t1 - t0, tb[s] = t2 - t1;
    }
    qsort(tf, steps, sizeof(double), cmp_double);
    qsort(tb, steps, sizeof(double), cmp_double);
    *fwd_s = tf[steps / 2];
    *bwd_s = tb[steps / 2];
    free(tf);
    free(tb);
}

static void bench_case(const Backend *g, const char *name, int B, int T, LengthMix mix,
                       int steps, int warmup) {
    const int NH = 12, HD = 64, C = NH * HD;
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
    int *len = xmalloc(sizeof(int) * B);
    make_lengths(len, B, T, mix);
    double keys = 0; /* sum over rows of T * L */
    for (int b = 0; b < B; b++) keys += (double)T * len[b];
    double flops = 4.0 * keys * HD * NH * 3.5; /* forward 1x + backward 2.5x */

    float *h = xmalloc(sizeof(float) * nqkv);
    uint64_t s = 1234567;
    for (size_t i = 0; i < nqkv; i++) h[i] = (float)(next(&s) >> 40) / 16777216.0f * 2 - 1;
    void *qkv = g->alloc(nqkv * g->act_size), *dqkv = g->alloc(nqkv * g->act_size);
    void *out = g->alloc(nout * g->act_size), *dout = g->alloc(nout * g->act_size);
    float *lse = g->alloc((size_t)B * NH * T * sizeof(float));
    int *g_len = g->alloc(sizeof(int) * B);
    g->acts_from_float(qkv, h, nqkv);
    g->acts_from_float(dout, h, nout);
    g->to_device(g_len, len, sizeof(int) * B);

    for (int simple = 0; simple < 2; simple++) {
        if (simple)
            setenv("KOE_CUDA_SIMPLE_ATTENTION", "1", 1);
        else
            unsetenv("KOE_CUDA_SIMPLE_ATTENTION");
        double f, b;
        time_attention(g, B, T, NH, HD, g_len, out, lse, qkv, dqkv, dout, steps, warmup, &f, &b);
        printf("{\"case\": \"%s\", \"path\": \"%s\", \"batch\": %d, \"seq\": %d, \"heads\": %d, "
               "\"head_dim\": %d, \"mean_len\": %.1f, \"fwd_ms\": %.3f, \"bwd_ms\": %.3f, "
               "\"total_ms\": %.3f, \"tflops\": %.2f}\n",
               name, simple ? "simple" : "flash", B, T, NH, HD, keys / T / B, f * 1e3, b * 1e3,
               (f + b) * 1e3, flops / (f + b) / 1e12);
        fflush(stdout);
    }
    unsetenv("KOE_CUDA_SIMPLE_ATTENTION");
    void *ptrs[] = {qkv, dqkv, out, dout, lse, g_len};
    for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++) g->free(ptrs[i]);
    free(h);
    free(len);
}

int main(int argc, char **argv) {
    int steps = 20, warmup = 3;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--steps") == 0)
            steps = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--warmup") == 0)
            warmup = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: attention_bench [--steps N] [--warmup N]\n");
            return 2;
        }
    }
    if (steps < 1 || warmup < 0) {
        fprintf(stderr, "attention_bench: --steps must be >= 1 and --warmup >= 0\n");
        return 2;
    }
    const Backend *g = backend_cuda();
    if (!g) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    bench_case(g, "nsmc-padded", 32, 128, LEN_FULL, steps, warmup);
    bench_case(g, "nsmc-lengths", 32, 128, LEN_NSMC, steps, warmup);
    bench_case(g, "korquad-padded", 8, 512, LEN_FULL, steps, warmup);
    bench_case(g, "korquad-lengths", 8, 512, LEN_KORQUAD, steps, warmup);
    return 0;
}
