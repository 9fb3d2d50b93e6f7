/* The fused attention kernels (kernels/cuda/flash_attention.cu) against the CPU op, padded
 * and packed (the packed op also against the GPU's padded op on the same sequences).
 *
 * Inputs are fresh random values rounded to bf16 first, so both backends see the same
 * numbers; GPU outputs are poisoned with NaN, so an element a kernel forgets fails. Limits are
 * DESIGN.md's relative L2 (2e-2 on out and lse, 5e-2 on dqkv). Shapes cover T = 1, 7, 128,
 * 129, 512, head sizes 32/64/128, lengths 0, 1, full and random, with and without dropout.
 * Every case also runs forward and backward twice and requires bitwise-equal results. A mask
 * test makes the dropout pattern visible (one-hot V and dO) and requires the zeros of out and
 * dV to sit exactly where the CPU's are. `--small` keeps only small shapes (for
 * compute-sanitizer). Exits 77 when there is no CUDA device.
 */
#define _POSIX_C_SOURCE 200809L /* unsetenv */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "test.h"

#define ACT_TOL 2e-2
#define GRAD_TOL 5e-2

static const Backend *cpu, *gpu;
static uint64_t rng = 0x2545f4914f6cdd1dULL;

static float *hnew(size_t n) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    if (!x) abort();
    return x;
}

static float *rnd(size_t n, float lo, float hi) {
    float *x = hnew(n);
    fill_uniform(x, n, lo, hi, &rng);
    for (size_t i = 0; i < n; i++) x[i] = bf16_round(x[i]);
    return x;
}

static void *g_acts(const float *h, size_t n) {
    void *p = gpu->alloc(n * gpu->act_size);
    gpu->acts_from_float(p, h, n);
    return p;
}
static void *g_bytes(const void *h, size_t bytes) {
    void *p = gpu->alloc(bytes);
    gpu->to_device(p, h, bytes);
    return p;
}
static void g_poison(void *g, size_t n, int acts) {
    float *nan = hnew(n);
    for (size_t i = 0; i < n; i++) nan[i] = NAN;
    if (acts)
        gpu->acts_from_float(g, nan, n);
    else
        gpu->to_device(g, nan, n * sizeof(float));
    free(nan);
}
static float *h_acts(const void *g, size_t n) {
    float *h = hnew(n);
    gpu->acts_to_float(h, g, n);
    return h;
}
static float *h_floats(const float *g, size_t n) {
    float *h = hnew(n);
    gpu->to_host(h, g, n * sizeof(float));
    return h;
}

static void compare(const char *op, const char *what, const float *got, const float *want,
                    size_t n, double tol) {
    double err = rel_l2(got, want, n);
    printf("%-56s %-5s rel_l2 %.2e (limit %.0e)\n", op, what, err, tol);
    CHECK(err < tol, "%s %s: rel_l2 %.3e >= %.0e", op, what, err, tol);
}

static void check_same(const char *op, const char *what, const float *a, const float *b,
                       size_t n) {
    CHECK(memcmp(a, b, n * sizeof(float)) == 0, "%s %s: two runs differ", op, what);
}

/* lengths: row 0 full, row 1 empty, row 2 a single key, the rest random in [1, T] */
static void make_lengths(int *len, int B, int T) {
    for (int b = 0; b < B; b++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        len[b] = 1 + (int)(rng % (uint64_t)T);
    }
    len[0] = T;
    if (B > 1) len[1] = 0;
    if (B > 2) len[2] = 1;
}

/* forward and backward against the CPU, twice on the GPU for determinism */
static void test_case(int B, int T, int NH, int HD, const int *lengths, float p) {
    char op[96];
    snprintf(op, sizeof op, "B=%d T=%d NH=%d HD=%d p=%.1f len0=%d", B, T, NH, HD, p,
             lengths[0]);
    int C = NH * HD;
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, nlse = (size_t)B * NH * T;
    float *qkv = rnd(nqkv, -1.5f, 1.5f), *dout = rnd(nout, -1.0f, 1.0f);
    Dropout d = {p, 0x5eedULL, 3 + (uint64_t)T, NULL};

    float *c_out = hnew(nout), *c_lse = hnew(nlse), *c_dqkv = hnew(nqkv);
    cpu->attention_fwd(c_out, c_lse, qkv, lengths, B, T, NH, HD, d);
    cpu->attention_bwd(c_dqkv, dout, c_out, c_lse, qkv, lengths, B, T, NH, HD, d);

    int *g_len = g_bytes(lengths, B * sizeof(int));
    void *g_qkv = g_acts(qkv, nqkv), *g_out = gpu->alloc(nout * gpu->act_size);
    float *g_lse = gpu->alloc(nlse * sizeof(float));
    float *out[2], *lse[2];
    for (int run = 0; run < 2; run++) {
        g_poison(g_out, nout, 1);
        g_poison(g_lse, nlse, 0);
        gpu->attention_fwd(g_out, g_lse, g_qkv, g_len, B, T, NH, HD, d);
        out[run] = h_acts(g_out, nout);
        lse[run] = h_floats(g_lse, nlse);
    }
    compare(op, "out", out[0], c_out, nout, ACT_TOL);
    compare(op, "lse", lse[0], c_lse, nlse, ACT_TOL);
    check_same(op, "out", out[0], out[1], nout);
    check_same(op, "lse", lse[0], lse[1], nlse);

    /* backward from the CPU's lse and (rounded) out, so only the backward is measured */
    float *out_r = hnew(nout);
    for (size_t i = 0; i < nout; i++) out_r[i] = bf16_round(c_out[i]);
    void *g_dout = g_acts(dout, nout), *g_outr = g_acts(out_r, nout);
    float *g_clse = g_bytes(c_lse, nlse * sizeof(float));
    void *g_dqkv = gpu->alloc(nqkv * gpu->act_size);
    float *dqkv[2];
    for (int run = 0; run < 2; run++) {
        g_poison(g_dqkv, nqkv, 1);
        gpu->attention_bwd(g_dqkv, g_dout, g_outr, g_clse, g_qkv, g_len, B, T, NH, HD, d);
        dqkv[run] = h_acts(g_dqkv, nqkv);
    }
    compare(op, "dqkv", dqkv[0], c_dqkv, nqkv, GRAD_TOL);
    check_same(op, "dqkv", dqkv[0], dqkv[1], nqkv);

    void *gpu_ptrs[] = {g_len, g_qkv, g_out, g_lse, g_dout, g_outr, g_clse, g_dqkv};
    for (size_t i = 0; i < sizeof gpu_ptrs / sizeof *gpu_ptrs; i++) gpu->free(gpu_ptrs[i]);
    float *host_ptrs[] = {qkv, dout, c_out, c_lse, c_dqkv, out[0], out[1], lse[0], lse[1],
                          out_r, dqkv[0], dqkv[1]};
    for (size_t i = 0; i < sizeof host_ptrs / sizeof *host_ptrs; i++) free(host_ptrs[i]);
}

/* A packed batch (the real rows only, back to back) against the CPU's packed op, twice for
 * determinism; and against the GPU's own padded op on the same sequences, whose real rows it
 * must reproduce (same tiles, same masks; dO is zero on the padded batch's padding rows). */
static void test_packed_case(int B, int T, int NH, int HD, const int *lengths, float p) {
    char op[96];
    snprintf(op, sizeof op, "packed B=%d T=%d NH=%d HD=%d p=%.1f", B, T, NH, HD, p);
    int C = NH * HD, *off = malloc((B + 1) * sizeof(int));
    off[0] = 0;
    for (int b = 0; b < B; b++) off[b + 1] = off[b] + lengths[b];
    int N = off[B];
    size_t nqkv = (size_t)N * 3 * C, nout = (size_t)N * C, nlse = (size_t)NH * N;
    float *qkv = rnd(nqkv, -1.5f, 1.5f), *dout = rnd(nout, -1.0f, 1.0f);
    Dropout d = {p, 0xfeedULL, 5 + (uint64_t)T, NULL};
    float *c_out = hnew(nout), *c_lse = hnew(nlse), *c_dqkv = hnew(nqkv);
    cpu->attention_packed_fwd(c_out, c_lse, qkv, off, B, N, T, NH, HD, d);
    cpu->attention_packed_bwd(c_dqkv, dout, c_out, c_lse, qkv, off, B, N, T, NH, HD, d);

    int *g_off = g_bytes(off, (B + 1) * sizeof(int));
    void *g_qkv = g_acts(qkv, nqkv), *g_out = gpu->alloc(nout * gpu->act_size);
    void *g_dout = g_acts(dout, nout), *g_dqkv = gpu->alloc(nqkv * gpu->act_size);
    float *g_lse = gpu->alloc(nlse * sizeof(float));
    float *out[2], *lse[2], *dqkv[2];
    for (int run = 0; run < 2; run++) {
        g_poison(g_out, nout, 1);
        g_poison(g_lse, nlse, 0);
        g_poison(g_dqkv, nqkv, 1);
        gpu->attention_packed_fwd(g_out, g_lse, g_qkv, g_off, B, N, T, NH, HD, d);
        gpu->attention_packed_bwd(g_dqkv, g_dout, g_out, g_lse, g_qkv, g_off, B, N, T, NH, HD,
                                  d);
        out[run] = h_acts(g_out, nout);
        lse[run] = h_floats(g_lse, nlse);
        dqkv[run] = h_acts(g_dqkv, nqkv);
    }
    compare(op, "out", out[0], c_out, nout, ACT_TOL);
    compare(op, "lse", lse[0], c_lse, nlse, ACT_TOL);
    compare(op, "dqkv", dqkv[0], c_dqkv, nqkv, GRAD_TOL);
    check_same(op, "out", out[0], out[1], nout);
    check_same(op, "lse", lse[0], lse[1], nlse);
    check_same(op, "dqkv", dqkv[0], dqkv[1], nqkv);

    /* the same sequences padded to T, on the GPU: real rows must agree */
    size_t pq = (size_t)B * T * 3 * C, po = (size_t)B * T * C;
    float *pqkv = rnd(pq, -1.5f, 1.5f), *pdout = calloc(po, sizeof(float));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < lengths[b]; t++) {
            size_t r = (size_t)b * T + t, k = (size_t)off[b] + t;
            memcpy(pqkv + r * 3 * C, qkv + k * 3 * C, 3 * (size_t)C * sizeof(float));
            memcpy(pdout + r * C, dout + k * C, (size_t)C * sizeof(float));
        }
    int *g_len = g_bytes(lengths, B * sizeof(int));
    void *g_pqkv = g_acts(pqkv, pq), *g_pout = gpu->alloc(po * gpu->act_size);
    void *g_pdout = g_acts(pdout, po), *g_pdqkv = gpu->alloc(pq * gpu->act_size);
    float *g_plse = gpu->alloc((size_t)B * NH * T * sizeof(float));
    gpu->attention_fwd(g_pout, g_plse, g_pqkv, g_len, B, T, NH, HD, d);
    gpu->attention_bwd(g_pdqkv, g_pdout, g_pout, g_plse, g_pqkv, g_len, B, T, NH, HD, d);
    float *pout = h_acts(g_pout, po), *pdqkv = h_acts(g_pdqkv, pq);
    float *rows_out = hnew(nout), *rows_dqkv = hnew(nqkv);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < lengths[b]; t++) {
            size_t r = (size_t)b * T + t, k = (size_t)off[b] + t;
            memcpy(rows_out + k * C, pout + r * C, (size_t)C * sizeof(float));
            memcpy(rows_dqkv + k * 3 * C, pdqkv + r * 3 * C, 3 * (size_t)C * sizeof(float));
        }
    compare(op, "=pad", out[0], rows_out, nout, 1e-6);
    compare(op, "d=pad", dqkv[0], rows_dqkv, nqkv, 1e-6);

    void *gpu_ptrs[] = {g_off, g_qkv, g_out, g_dout, g_dqkv, g_lse, g_len, g_pqkv, g_pout,
                        g_pdout, g_pdqkv, g_plse};
    for (size_t i = 0; i < sizeof gpu_ptrs / sizeof *gpu_ptrs; i++) gpu->free(gpu_ptrs[i]);
    float *host_ptrs[] = {qkv, dout, c_out, c_lse, c_dqkv, out[0], out[1], lse[0], lse[1],
                          dqkv[0], dqkv[1], pqkv, pdout, pout, pdqkv, rows_out, rows_dqkv};
    for (size_t i = 0; i < sizeof host_ptrs / sizeof *host_ptrs; i++) free(host_ptrs[i]);
    free(off);
}

/* With V_j = e_j (one-hot, T <= HD) the output is out[i, j] = dropout(P)[i, j], and with
 * dO_i = e_i the gradient is dV[j, i] = dropout(P)[i, j]: their zeros are exactly the dropped
 * (or masked) positions, in the forward and in the backward. They must match the CPU's. */
static void test_dropout_mask(int B, int T, int NH, int HD, const int *lengths, float p) {
    char op[96];
    snprintf(op, sizeof op, "mask B=%d T=%d NH=%d HD=%d p=%.1f", B, T, NH, HD, p);
    int C = NH * HD;
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, nlse = (size_t)B * NH * T;
    float *qkv = rnd(nqkv, -0.5f, 0.5f), *dout = hnew(nout);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++)
                for (int e = 0; e < HD; e++) {
                    size_t row = (size_t)b * T + t;
                    qkv[row * 3 * C + 2 * C + h * HD + e] = e == t ? 1.0f : 0.0f;
                    dout[row * C + h * HD + e] = e == t ? 1.0f : 0.0f;
                }
    /* a step in backend memory, as training passes it */
    uint64_t step = 5;
    Dropout d = {p, 0xabcdULL, 99, &step};
    float *c_out = hnew(nout), *c_lse = hnew(nlse), *c_dqkv = hnew(nqkv);
    cpu->attention_fwd(c_out, c_lse, qkv, lengths, B, T, NH, HD, d);
    cpu->attention_bwd(c_dqkv, dout, c_out, c_lse, qkv, lengths, B, T, NH, HD, d);
    uint64_t *g_step = g_bytes(&step, sizeof step);
    d.step = g_step;

    int *g_len = g_bytes(lengths, B * sizeof(int));
    void *g_qkv = g_acts(qkv, nqkv), *g_out = gpu->alloc(nout * gpu->act_size);
    float *g_lse = gpu->alloc(nlse * sizeof(float));
    void *g_dout = g_acts(dout, nout), *g_dqkv = gpu->alloc(nqkv * gpu->act_size);
    g_poison(g_out, nout, 1);
    gpu->attention_fwd(g_out, g_lse, g_qkv, g_len, B, T, NH, HD, d);
    gpu->attention_bwd(g_dqkv, g_dout, g_out, g_lse, g_qkv, g_len, B, T, NH, HD, d);
    float *out = h_acts(g_out, nout), *dqkv = h_acts(g_dqkv, nqkv);

    long fwd_diff = 0, bwd_diff = 0, dropped = 0, kept = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++)
                for (int e = 0; e < T; e++) {
                    size_t o = ((size_t)b * T + t) * C + h * HD + e;
                    size_t dv = ((size_t)b * T + t) * 3 * C + 2 * C + h * HD + e;
                    fwd_diff += (out[o] == 0.0f) != (c_out[o] == 0.0f);
                    bwd_diff += (dqkv[dv] == 0.0f) != (c_dqkv[dv] == 0.0f);
                    if (e < lengths[b]) c_out[o] == 0.0f ? dropped++ : kept++;
                }
    printf("%-56s %ld dropped, %ld kept; %ld fwd and %ld bwd mismatches\n", op, dropped, kept,
           fwd_diff, bwd_diff);
    CHECK(fwd_diff == 0, "%s: %ld forward zeros differ from the CPU's", op, fwd_diff);
    CHECK(bwd_diff == 0, "%s: %ld dV zeros differ from the CPU's", op, bwd_diff);
    CHECK(dropped > 0 && kept > 0, "%s: %ld dropped of %ld", op, dropped, dropped + kept);

    void *gpu_ptrs[] = {g_len, g_qkv, g_out, g_lse, g_dout, g_dqkv, g_step};
    for (size_t i = 0; i < sizeof gpu_ptrs / sizeof *gpu_ptrs; i++) gpu->free(gpu_ptrs[i]);
    float *host_ptrs[] = {qkv, dout, c_out, c_lse, c_dqkv, out, dqkv};
    for (size_t i = 0; i < sizeof host_ptrs / sizeof *host_ptrs; i++) free(host_ptrs[i]);
}

int main(int argc, char **argv) {
    int small = argc > 1 && strcmp(argv[1], "--small") == 0;
    cpu = backend_cpu();
    gpu = backend_cuda();
    if (!gpu) TEST_SKIP("no CUDA device");
    unsetenv("KOE_CUDA_SIMPLE_ATTENTION"); /* the fused path is the one under test */

    int len[33];
    test_dropout_mask(2, 64, 3, 64, (const int[]){64, 50}, 0.3f);
    test_dropout_mask(1, 29, 2, 32, (const int[]){29}, 0.5f);

    const int Ts[] = {1, 7, 128, 129, 512}, HDs[] = {32, 64, 128};
    for (int t = 0; t < 5; t++) {
        int T = Ts[t];
        if (small && T > 129) continue;
        for (int k = 0; k < 3; k++) {
            int HD = HDs[k];
            if (small && HD == 128) continue;
            int B = T <= 129 ? 33 : 4;
            if (small) B = 3;
            make_lengths(len, B, T);
            test_case(B, T, 2, HD, len, (t + k) % 2 ? 0.1f : 0.0f);
        }
    }
    /* packed batches: the same grid of T and head sizes, lengths 0, 1, T and random */
    for (int t = 0; t < 5; t++) {
        int T = Ts[t];
        if (small && T > 129) continue;
        for (int k = 0; k < 3; k++) {
            if (small && HDs[k] == 128) continue;
            int B = small ? 3 : T <= 129 ? 33 : 4;
            make_lengths(len, B, T);
            test_packed_case(B, T, 2, HDs[k], len, (t + k) % 2 ? 0.0f : 0.1f);
        }
    }
    test_packed_case(1, 7, 2, 32, (const int[]){7}, 0.0f);
    if (!small) test_packed_case(1, 512, 12, 64, (const int[]){512}, 0.1f);
    /* batch 1: one full row and one short row, with and without dropout */
    test_case(1, 129, 3, 64, (const int[]){129}, 0.1f);
    test_case(1, 7, 2, 128, (const int[]){3}, 0.0f);
    if (!small) {
        test_case(1, 512, 2, 64, (const int[]){512}, 0.1f);
        test_case(2, 512, 12, 64, (const int[]){300, 511}, 0.1f); /* the model's heads */
    }
    return test_exit("test_flash_attention");
}
