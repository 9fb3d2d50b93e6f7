/* Every CUDA op against the CPU reference op, on fresh random inputs at odd shapes.
 *
 * Inputs are rounded to bf16 on the host first, so both backends see identical values; GPU
 * outputs are poisoned with NaN before each op, so an element the op forgets to write fails
 * (rel_l2 turns NaN into +inf). Limits are DESIGN.md's: relative L2 < 2e-2 on activations,
 * < 5e-2 on gradients; accumulated parameter gradients are compared by their increments.
 * One line per comparison, a summary last. `--small` skips the model-sized shapes (for
 * compute-sanitizer). Exits 77 when there is no CUDA device.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
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
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static double worst_ratio; /* largest error / limit seen */

/* ---- host memory and GPU allocations, freed at the end of each test ---- */

static void *allocs[512];
static int n_allocs;
static void *gpu_allocs[512];
static int n_gpu_allocs;

static void *track(void *p) {
    if (n_allocs == 512) abort();
    return allocs[n_allocs++] = p;
}
static void *gpu_track(void *p) {
    if (n_gpu_allocs == 512) abort();
    return gpu_allocs[n_gpu_allocs++] = p;
}
static void free_all(void) {
    while (n_allocs) free(allocs[--n_allocs]);
    while (n_gpu_allocs) gpu->free(gpu_allocs[--n_gpu_allocs]);
}

static float *hnew(size_t n) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    if (!x) abort();
    return track(x);
}
static float *hdup(const float *x, size_t n) { return memcpy(hnew(n), x, n * sizeof(float)); }

/* random values in [lo, hi), already bf16 */
static float *rnd(size_t n, float lo, float hi) {
    float *x = hnew(n);
    fill_uniform(x, n, lo, hi, &rng);
    for (size_t i = 0; i < n; i++) x[i] = bf16_round(x[i]);
    return x;
}

static float *sub(const float *a, const float *b, size_t n) {
    float *d = hnew(n);
    for (size_t i = 0; i < n; i++) d[i] = a[i] - b[i];
    return d;
}

static float *nan_array(size_t n) {
    float *x = hnew(n);
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

/* ---- GPU tensors ---- */

static void *g_acts(const float *h, size_t n) {
    void *p = gpu_track(gpu->alloc((n ? n : 1) * gpu->act_size));
    gpu->acts_from_float(p, h, n);
    return p;
}
static float *g_floats(const float *h, size_t n) {
    float *p = gpu_track(gpu->alloc((n ? n : 1) * sizeof(float)));
    gpu->to_device(p, h, n * sizeof(float));
    return p;
}
static int *g_ints(const int *h, size_t n) {
    int *p = gpu_track(gpu->alloc((n ? n : 1) * sizeof(int)));
    gpu->to_device(p, h, n * sizeof(int));
    return p;
}
static void *g_poison_acts(size_t n) { return g_acts(nan_array(n), n); }
static float *g_poison_floats(size_t n) { return g_floats(nan_array(n), n); }
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

/* ---- reporting ---- */

static void compare(const char *op, const char *what, const float *got, const float *want,
                    size_t n, double tol) {
    double err = rel_l2(got, want, n);
    double ratio = err / tol;
    if (!(ratio <= worst_ratio)) worst_ratio = ratio; /* also catches inf */
    printf("%-52s %-8s rel_l2 %.2e  limit %.0e  %s\n", op, what, err, tol,
           err < tol ? "ok" : "FAIL");
    CHECK(err < tol, "%s %s: rel_l2 %g >= %g", op, what, err, tol);
}

static void compare_scalar(const char *op, const char *what, float got, float want,
                           double tol) {
    compare(op, what, &got, &want, 1, tol);
}

static Dropout dropout(float p, uint64_t stream) {
    Dropout d = {p, 0x5eedULL, stream, NULL};
    return d;
}

/* ---- conversions ---- */

static void test_conversions(void) {
    size_t n = 1001;
    float *x = rnd(n, -3.0f, 3.0f);
    void *a = g_acts(x, n);
    compare("acts_from_float/acts_to_float n=1001", "values", h_acts(a, n), x, n, 1e-7);
    float *raw = hnew(n);
    fill_uniform(raw, n, -3.0f, 3.0f, &rng); /* not rounded: float_to_acts rounds */
    float *want = hnew(n);
    for (size_t i = 0; i < n; i++) want[i] = bf16_round(raw[i]);
    void *b = g_poison_acts(n);
    gpu->float_to_acts(b, g_floats(raw, n), n);
    compare("float_to_acts n=1001", "values", h_acts(b, n), want, n, 1e-7);
    free_all();
}

/* ---- matmul ---- */

static const char *act_name(Activation a) {
    return a == ACT_GELU ? "gelu" : a == ACT_TANH ? "tanh" : a == ACT_RELU ? "relu" : "none";
}

static void test_matmul(int M, int K, int N, Activation act, int bias, int accumulate,
                        int with_dinp, int with_db) {
    char op[128];
    snprintf(op, sizeof op, "matmul M=%d K=%d N=%d %s%s%s%s%s", M, K, N, act_name(act),
             bias ? " bias" : "", accumulate ? " acc" : "", with_dinp ? "" : " no-dinp",
             with_db ? "" : " no-db");
    size_t MK = (size_t)M * K, NK = (size_t)N * K, MN = (size_t)M * N;
    float *inp = rnd(MK, -1.0f, 1.0f), *w = rnd(NK, -0.5f, 0.5f), *b = rnd(N, -0.5f, 0.5f);

    /* forward */
    float *c_out = hnew(MN), *c_pre = hnew(MN);
    cpu->matmul_fwd(c_out, act ? c_pre : NULL, inp, w, bias ? b : NULL, M, K, N, act);
    void *g_out = g_poison_acts(MN), *g_pre = act ? g_poison_acts(MN) : NULL;
    void *g_w = g_acts(w, NK), *g_inp = g_acts(inp, MK);
    gpu->matmul_fwd(g_out, g_pre, g_inp, g_w, bias ? g_acts(b, N) : NULL, M, K, N, act);
    compare(op, "out", h_acts(g_out, MN), c_out, MN, ACT_TOL);
    if (act) compare(op, "pre", h_acts(g_pre, MN), c_pre, MN, ACT_TOL);

    /* backward, from identical inputs (the CPU's pre, rounded) */
    float *dout = rnd(MN, -1.0f, 1.0f), *pre = hnew(MN);
    for (size_t i = 0; act && i < MN; i++) pre[i] = bf16_round(c_pre[i]);
    float *dinp0 = rnd(MK, -1.0f, 1.0f), *dw0 = rnd(NK, -1.0f, 1.0f), *db0 = rnd(N, -1.0f, 1.0f);
    float *c_dinp = hdup(dinp0, MK), *c_dw = hdup(dw0, NK), *c_db = hdup(db0, N);
    cpu->matmul_bwd(with_dinp ? c_dinp : NULL, c_dw, with_db ? c_db : NULL, hdup(dout, MN),
                    act ? pre : NULL, inp, w, M, K, N, act, accumulate);
    void *g_dinp = accumulate ? g_acts(dinp0, MK) : g_poison_acts(MK);
    float *g_dw = g_floats(dw0, NK), *g_db = g_floats(db0, N);
    gpu->matmul_bwd(with_dinp ? g_dinp : NULL, g_dw, with_db ? g_db : NULL, g_acts(dout, MN),
                    act ? g_acts(pre, MN) : NULL, g_inp, g_w, M, K, N, act, accumulate);
    if (with_dinp) compare(op, "dinp", h_acts(g_dinp, MK), c_dinp, MK, GRAD_TOL);
    compare(op, "dw", sub(h_floats(g_dw, NK), dw0, NK), sub(c_dw, dw0, NK), NK, GRAD_TOL);
    if (with_db)
        compare(op, "db", sub(h_floats(g_db, N), db0, N), sub(c_db, db0, N), N, GRAD_TOL);
    else
        compare(op, "db kept", h_floats(g_db, N), db0, N, 1e-7);
    free_all();
}

/* ---- attention ---- */

static void test_attention(int B, int T, int NH, int HD, const int *lengths, float p) {
    char op[128];
    int n = snprintf(op, sizeof op, "attention B=%d T=%d NH=%d HD=%d p=%.1f len=", B, T, NH,
                     HD, p);
    for (int b = 0; b < B && n < 100; b++)
        n += snprintf(op + n, sizeof op - n, "%s%d", b ? "," : "", lengths[b]);
    int C = NH * HD;
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, nlse = (size_t)B * NH * T;
    float *qkv = rnd(nqkv, -1.5f, 1.5f), *dout = rnd(nout, -1.0f, 1.0f);
    Dropout d = dropout(p, 7);

    float *c_out = hnew(nout), *c_lse = hnew(nlse), *c_dqkv = hnew(nqkv);
    cpu->attention_fwd(c_out, c_lse, qkv, lengths, B, T, NH, HD, d);
    cpu->attention_bwd(c_dqkv, dout, c_out, c_lse, qkv, lengths, B, T, NH, HD, d);

    int *g_len = g_ints(lengths, B);
    void *g_qkv = g_acts(qkv, nqkv), *g_out = g_poison_acts(nout);
    float *g_lse = g_poison_floats(nlse);
    gpu->attention_fwd(g_out, g_lse, g_qkv, g_len, B, T, NH, HD, d);
    compare(op, "out", h_acts(g_out, nout), c_out, nout, ACT_TOL);
    compare(op, "lse", h_floats(g_lse, nlse), c_lse, nlse, ACT_TOL);

    /* backward from the CPU's lse and (rounded) out, so only the backward is measured */
    float *out_r = hnew(nout);
    for (size_t i = 0; i < nout; i++) out_r[i] = bf16_round(c_out[i]);
    void *g_dqkv = g_poison_acts(nqkv);
    gpu->attention_bwd(g_dqkv, g_acts(dout, nout), g_acts(out_r, nout), g_floats(c_lse, nlse),
                       g_qkv, g_len, B, T, NH, HD, d);
    compare(op, "dqkv", h_acts(g_dqkv, nqkv), c_dqkv, nqkv, GRAD_TOL);
    free_all();
}

/* ---- residual + LayerNorm ---- */

static void test_residual_layernorm(int N, int C, float p, float eps) {
    char op[128];
    snprintf(op, sizeof op, "residual_layernorm N=%d C=%d p=%.1f eps=%g", N, C, p, eps);
    size_t NC = (size_t)N * C;
    /* the residual's offset keeps row means away from 0, where relative errors blow up */
    float *x = rnd(NC, -1.0f, 1.0f), *res = rnd(NC, -0.5f, 1.5f);
    float *w = rnd(C, 0.5f, 1.5f), *b = rnd(C, -0.5f, 0.5f), *dout = rnd(NC, -1.0f, 1.0f);
    Dropout d = dropout(p, 11);

    float *c_out = hnew(NC), *c_pre = hnew(NC), *c_mean = hnew(N), *c_rstd = hnew(N);
    cpu->residual_layernorm_fwd(c_out, c_pre, c_mean, c_rstd, x, res, w, b, N, C, eps, d);
    void *g_out = g_poison_acts(NC), *g_pre = g_poison_acts(NC), *g_w = g_acts(w, C);
    float *g_mean = g_poison_floats(N), *g_rstd = g_poison_floats(N);
    gpu->residual_layernorm_fwd(g_out, g_pre, g_mean, g_rstd, g_acts(x, NC), g_acts(res, NC),
                                g_w, g_acts(b, C), N, C, eps, d);
    compare(op, "out", h_acts(g_out, NC), c_out, NC, ACT_TOL);
    compare(op, "pre", h_acts(g_pre, NC), c_pre, NC, ACT_TOL);
    compare(op, "mean", h_floats(g_mean, N), c_mean, N, ACT_TOL);
    compare(op, "rstd", h_floats(g_rstd, N), c_rstd, N, ACT_TOL);

    float *pre = hnew(NC);
    for (size_t i = 0; i < NC; i++) pre[i] = bf16_round(c_pre[i]);
    float *dw0 = rnd(C, -1.0f, 1.0f), *db0 = rnd(C, -1.0f, 1.0f);
    float *c_dx = hnew(NC), *c_dres = hnew(NC), *c_dw = hdup(dw0, C), *c_db = hdup(db0, C);
    cpu->residual_layernorm_bwd(c_dx, c_dres, c_dw, c_db, dout, pre, c_mean, c_rstd, w, N, C,
                                d);
    void *g_dx = g_poison_acts(NC), *g_dres = g_poison_acts(NC);
    float *g_dw = g_floats(dw0, C), *g_db = g_floats(db0, C);
    gpu->residual_layernorm_bwd(g_dx, g_dres, g_dw, g_db, g_acts(dout, NC), g_acts(pre, NC),
                                g_floats(c_mean, N), g_floats(c_rstd, N), g_w, N, C, d);
    compare(op, "dx", h_acts(g_dx, NC), c_dx, NC, GRAD_TOL);
    compare(op, "dresid", h_acts(g_dres, NC), c_dres, NC, GRAD_TOL);
    compare(op, "dw", sub(h_floats(g_dw, C), dw0, C), sub(c_dw, dw0, C), C, GRAD_TOL);
    compare(op, "db", sub(h_floats(g_db, C), db0, C), sub(c_db, db0, C), C, GRAD_TOL);
    free_all();
}

/* ---- embeddings ---- */

enum { TYPES_GIVEN, TYPES_NULL, NO_TOKEN_TYPES };

static void test_embeddings(int B, int T, int C, int V, int P, int type_mode, float p,
                            float eps) {
    static const char *modes[] = {"types", "types=NULL", "no-wtt"};
    char op[128];
    snprintf(op, sizeof op, "embeddings B=%d T=%d C=%d V=%d %s p=%.1f eps=%g", B, T, C, V,
             modes[type_mode], p, eps);
    int N = B * T, NT = 2;
    size_t NC = (size_t)N * C;
    int *ids = track(malloc(3 * (size_t)N * sizeof(int))), *pos = ids + N, *types = ids + 2 * N;
    float *r = hnew(N);
    fill_uniform(r, N, 0.0f, 1.0f, &rng);
    for (int n = 0; n < N; n++) { /* small V: ids repeat, so the scatter must add up */
        ids[n] = (int)(r[n] * V) % V;
        pos[n] = (n % T + 2) % P;
        types[n] = (n % T) > T / 2;
    }
    const int *types_arg = type_mode == TYPES_GIVEN ? types : NULL;
    int has_wtt = type_mode != NO_TOKEN_TYPES;
    float *wte = rnd((size_t)V * C, -1.0f, 1.0f), *wpe = rnd((size_t)P * C, -1.0f, 1.0f);
    float *wtt = rnd((size_t)NT * C, -1.0f, 1.0f);
    float *lw = rnd(C, 0.5f, 1.5f), *lb = rnd(C, -0.5f, 0.5f), *dout = rnd(NC, -1.0f, 1.0f);
    Dropout d = dropout(p, 3);

    float *c_out = hnew(NC), *c_mean = hnew(N), *c_rstd = hnew(N);
    cpu->embeddings_fwd(c_out, c_mean, c_rstd, ids, pos, types_arg, wte, wpe,
                        has_wtt ? wtt : NULL, lw, lb, N, C, eps, d);
    int *g_ids = g_ints(ids, N), *g_pos = g_ints(pos, N), *g_types = g_ints(types, N);
    void *g_wte = g_acts(wte, (size_t)V * C), *g_wpe = g_acts(wpe, (size_t)P * C);
    void *g_wtt = has_wtt ? g_acts(wtt, (size_t)NT * C) : NULL, *g_lw = g_acts(lw, C);
    void *g_out = g_poison_acts(NC);
    float *g_mean = g_poison_floats(N), *g_rstd = g_poison_floats(N);
    const int *g_types_arg = type_mode == TYPES_GIVEN ? g_types : NULL;
    gpu->embeddings_fwd(g_out, g_mean, g_rstd, g_ids, g_pos, g_types_arg, g_wte, g_wpe, g_wtt,
                        g_lw, g_acts(lb, C), N, C, eps, d);
    compare(op, "out", h_acts(g_out, NC), c_out, NC, ACT_TOL);
    compare(op, "mean", h_floats(g_mean, N), c_mean, N, ACT_TOL);
    compare(op, "rstd", h_floats(g_rstd, N), c_rstd, N, ACT_TOL);

    size_t nte = (size_t)V * C, npe = (size_t)P * C, ntt = (size_t)NT * C;
    float *te0 = rnd(nte, -1.0f, 1.0f), *pe0 = rnd(npe, -1.0f, 1.0f), *tt0 = rnd(ntt, -1, 1);
    float *lw0 = rnd(C, -1.0f, 1.0f), *lb0 = rnd(C, -1.0f, 1.0f);
    float *c_te = hdup(te0, nte), *c_pe = hdup(pe0, npe), *c_tt = hdup(tt0, ntt);
    float *c_lw = hdup(lw0, C), *c_lb = hdup(lb0, C);
    cpu->embeddings_bwd(c_te, c_pe, has_wtt ? c_tt : NULL, c_lw, c_lb, dout, c_mean, c_rstd,
                        ids, pos, types_arg, wte, wpe, has_wtt ? wtt : NULL, lw, N, C, d);
    float *g_te = g_floats(te0, nte), *g_pe = g_floats(pe0, npe), *g_tt = g_floats(tt0, ntt);
    float *g_dlw = g_floats(lw0, C), *g_dlb = g_floats(lb0, C);
    gpu->embeddings_bwd(g_te, g_pe, has_wtt ? g_tt : NULL, g_dlw, g_dlb, g_acts(dout, NC),
                        g_floats(c_mean, N), g_floats(c_rstd, N), g_ids, g_pos, g_types_arg,
                        g_wte, g_wpe, g_wtt, g_lw, N, C, d);
    compare(op, "dwte", sub(h_floats(g_te, nte), te0, nte), sub(c_te, te0, nte), nte, GRAD_TOL);
    compare(op, "dwpe", sub(h_floats(g_pe, npe), pe0, npe), sub(c_pe, pe0, npe), npe, GRAD_TOL);
    if (has_wtt)
        compare(op, "dwtt", sub(h_floats(g_tt, ntt), tt0, ntt), sub(c_tt, tt0, ntt), ntt,
                GRAD_TOL);
    compare(op, "dln_w", sub(h_floats(g_dlw, C), lw0, C), sub(c_lw, lw0, C), C, GRAD_TOL);
    compare(op, "dln_b", sub(h_floats(g_dlb, C), lb0, C), sub(c_lb, lb0, C), C, GRAD_TOL);
    free_all();
}

/* ---- dropout and the [CLS] gather ---- */

static void test_dropout(size_t n, float p) {
    char op[128];
    snprintf(op, sizeof op, "dropout n=%zu p=%.1f", n, p);
    float *x = rnd(n, 0.25f, 1.0f); /* never zero: a zero output means dropped */
    Dropout d = dropout(p, 42);
    float *c_out = hnew(n), *c_din = hnew(n);
    cpu->dropout_fwd(c_out, x, n, d);
    cpu->dropout_bwd(c_din, x, n, d);
    void *g_x = g_acts(x, n), *g_out = g_poison_acts(n), *g_din = g_poison_acts(n);
    gpu->dropout_fwd(g_out, g_x, n, d);
    gpu->dropout_bwd(g_din, g_x, n, d);
    float *out = h_acts(g_out, n), *din = h_acts(g_din, n);
    compare(op, "fwd", out, c_out, n, ACT_TOL);
    compare(op, "bwd", din, c_din, n, GRAD_TOL);
    size_t mismatched = 0, zeros = 0;
    for (size_t i = 0; i < n; i++) {
        mismatched += (out[i] == 0.0f) != (c_out[i] == 0.0f);
        mismatched += (din[i] == 0.0f) != (out[i] == 0.0f);
        zeros += c_out[i] == 0.0f;
    }
    double frac = (double)zeros / n;
    printf("%-52s %-8s %zu mismatched zeros, dropped fraction %.3f\n", op, "mask", mismatched,
           frac);
    CHECK(mismatched == 0, "%s: %zu mask positions differ", op, mismatched);
    CHECK(fabs(frac - p) < 0.02 + 0.2 * p, "%s: dropped fraction %g for p=%g", op, frac, p);
    free_all();
}

/* B sequences of N rows: padded (first[b] = b*T) when T > 0, else packed at random offsets */
static void test_cls_gather(int B, int T, int C) {
    char op[128];
    snprintf(op, sizeof op, "cls_gather B=%d T=%d C=%d", B, T, C);
    int *first = malloc(B * sizeof(int)), N = 0;
    for (int b = 0; b < B; b++) {
        first[b] = N;
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        N += T > 0 ? T : 1 + (int)(rng % 9);
    }
    size_t nin = (size_t)N * C, nout = (size_t)B * C;
    float *x = rnd(nin, -1.0f, 1.0f), *dy = rnd(nout, -1.0f, 1.0f);
    float *c_out = hnew(nout), *c_dx = hnew(nin);
    cpu->cls_gather_fwd(c_out, x, first, B, C);
    cpu->cls_gather_bwd(c_dx, dy, first, B, N, C);
    void *g_out = g_poison_acts(nout), *g_dx = g_poison_acts(nin);
    int *g_first = g_ints(first, B);
    gpu->cls_gather_fwd(g_out, g_acts(x, nin), g_first, B, C);
    gpu->cls_gather_bwd(g_dx, g_acts(dy, nout), g_first, B, N, C);
    free(first);
    compare(op, "fwd", h_acts(g_out, nout), c_out, nout, 1e-7);
    compare(op, "bwd", h_acts(g_dx, nin), c_dx, nin, 1e-7);
    free_all();
}

/* ---- losses: the added loss and the gradient; the GPU loss must be bitwise repeatable ---- */

static float loss_on_gpu(float start, void (*call)(float *loss, void *ctx), void *ctx) {
    float *g_loss = g_floats(&start, 1), out;
    call(g_loss, ctx);
    gpu->to_host(&out, g_loss, sizeof out);
    return out;
}

typedef struct {
    int N, C;
    void *g_dx, *g_x;
    int *g_labels;
    float scale;
} CeCtx;

static void ce_call(float *loss, void *ctx) {
    CeCtx *c = ctx;
    gpu->cross_entropy(loss, c->g_dx, c->g_x, c->g_labels, c->N, c->C, c->scale);
}

static void test_cross_entropy(int N, int C, double ignored_fraction) {
    char op[128];
    snprintf(op, sizeof op, "cross_entropy N=%d C=%d ignored~%.0f%%", N, C,
             100 * ignored_fraction);
    size_t NC = (size_t)N * C;
    float *x = rnd(NC, -3.0f, 3.0f), *r = hnew(N);
    fill_uniform(r, N, 0.0f, 1.0f, &rng);
    int *labels = track(malloc(N * sizeof(int)));
    for (int n = 0; n < N; n++)
        labels[n] = r[n] < ignored_fraction ? -100 : (int)(r[n] * 1000) % C;
    float scale = 0.5f, start = 0.25f, c_loss = start, *c_dx = hnew(NC);
    cpu->cross_entropy(&c_loss, c_dx, x, labels, N, C, scale);
    CeCtx ctx = {N, C, g_poison_acts(NC), g_acts(x, NC), g_ints(labels, N), scale};
    float g_loss = loss_on_gpu(start, ce_call, &ctx);
    float *g_dx = h_acts(ctx.g_dx, NC);
    float again = loss_on_gpu(start, ce_call, &ctx);
    if (c_loss == start)
        compare_scalar(op, "loss", g_loss, c_loss, 1e-7);
    else
        compare_scalar(op, "loss", g_loss - start, c_loss - start, 1e-3);
    compare(op, "dlogits", g_dx, c_dx, NC, GRAD_TOL);
    CHECK(memcmp(&g_loss, &again, sizeof again) == 0, "%s: loss not repeatable", op);
    free_all();
}

static void test_mse(int N) {
    char op[128];
    snprintf(op, sizeof op, "mse N=%d", N);
    float *pred = rnd(N, -1.0f, 5.0f), *tgt = hnew(N);
    fill_uniform(tgt, N, 0.0f, 5.0f, &rng);
    float scale = 0.25f, start = 1.5f, c_loss = start, *c_d = hnew(N);
    cpu->mse(&c_loss, c_d, pred, tgt, N, scale);
    void *g_d = g_poison_acts(N);
    float *g_loss = g_floats(&start, 1), loss;
    gpu->mse(g_loss, g_d, g_acts(pred, N), g_floats(tgt, N), N, scale);
    gpu->to_host(&loss, g_loss, sizeof loss);
    compare_scalar(op, "loss", loss - start, c_loss - start, 1e-3);
    compare(op, "dpred", h_acts(g_d, N), c_d, N, GRAD_TOL);
    free_all();
}

static void test_qa_loss(int B, int T) {
    char op[128];
    snprintf(op, sizeof op, "qa_loss B=%d T=%d", B, T);
    size_t n = (size_t)B * T * 2;
    float *x = rnd(n, -3.0f, 3.0f);
    int *sp = track(malloc(2 * (size_t)B * sizeof(int))), *ep = sp + B;
    /* in range, past the end (clamped to T: ignored), negative (clamped to 0) */
    for (int b = 0; b < B; b++) {
        sp[b] = b % 4 == 1 ? T + 3 : b % 4 == 2 ? -2 : (b * 7) % T;
        ep[b] = b % 4 == 3 ? T : (b * 5 + 1) % T;
    }
    float scale = 2.0f, start = -0.5f, c_loss = start, *c_d = hnew(n);
    cpu->qa_loss(&c_loss, c_d, x, sp, ep, B, T, scale);
    void *g_d = g_poison_acts(n);
    float *g_loss = g_floats(&start, 1), loss;
    gpu->qa_loss(g_loss, g_d, g_acts(x, n), g_ints(sp, B), g_ints(ep, B), B, T, scale);
    gpu->to_host(&loss, g_loss, sizeof loss);
    compare_scalar(op, "loss", loss - start, c_loss - start, 1e-3);
    compare(op, "dlogits", h_acts(g_d, n), c_d, n, GRAD_TOL);
    free_all();
}

/* ---- optimizer ---- */

static void test_global_norm(size_t n) {
    char op[128];
    snprintf(op, sizeof op, "global_norm_sq n=%zu", n);
    float *g = hnew(n), c_out, out, again;
    fill_uniform(g, n, -1.0f, 1.0f, &rng);
    cpu->global_norm_sq(&c_out, g, n);
    float *g_g = g_floats(g, n), *g_out = g_poison_floats(1);
    gpu->global_norm_sq(g_out, g_g, n);
    gpu->to_host(&out, g_out, sizeof out);
    gpu->global_norm_sq(g_out, g_g, n);
    gpu->to_host(&again, g_out, sizeof again);
    compare_scalar(op, "value", out, c_out, 1e-5);
    CHECK(memcmp(&out, &again, sizeof out) == 0, "%s: not repeatable", op);
    free_all();
}

static void test_adamw(size_t n, float max_grad_norm, float weight_decay) {
    char op[128];
    snprintf(op, sizeof op, "adamw n=%zu 3 steps clip=%g wd=%g", n, max_grad_norm,
             weight_decay);
    float *p0 = hnew(n);
    fill_uniform(p0, n, -1.0f, 1.0f, &rng);
    float *c_p = hdup(p0, n), *c_m = hnew(n), *c_v = hnew(n);
    memset(c_m, 0, n * sizeof(float));
    memset(c_v, 0, n * sizeof(float));
    float *g_p = g_floats(p0, n), *g_m = g_floats(c_m, n), *g_v = g_floats(c_v, n);
    float *g_norm = g_poison_floats(1), *g_grads = g_poison_floats(n);
    void *g_pact = g_poison_acts(n);
    for (int step = 1; step <= 3; step++) {
        float *grads = hnew(n), c_norm;
        fill_uniform(grads, n, -1.0f, 1.0f, &rng); /* norm ~ sqrt(n/3): clipping is active */
        AdamWArgs a = adamw_args(1e-2f, 1e-6f, weight_decay, step, max_grad_norm);
        cpu->global_norm_sq(&c_norm, grads, n);
        cpu->adamw(c_p, c_p, grads, c_m, c_v, n, &c_norm, a);
        gpu->to_device(g_grads, grads, n * sizeof(float));
        gpu->global_norm_sq(g_norm, g_grads, n);
        gpu->adamw(g_p, g_pact, g_grads, g_m, g_v, n, g_norm, a);
    }
    compare(op, "dparams", sub(h_floats(g_p, n), p0, n), sub(c_p, p0, n), n, 1e-4);
    compare(op, "m", h_floats(g_m, n), c_m, n, 1e-4);
    compare(op, "v", h_floats(g_v, n), c_v, n, 1e-4);
    float *want_act = hnew(n);
    for (size_t i = 0; i < n; i++) want_act[i] = bf16_round(c_p[i]);
    compare(op, "params_act", h_acts(g_pact, n), want_act, n, 1e-3);
    free_all();
}

int main(int argc, char **argv) {
    int small = argc > 1 && strcmp(argv[1], "--small") == 0;
    cpu = backend_cpu();
    gpu = backend_cuda();
    if (!gpu) TEST_SKIP("no CUDA device");

    test_conversions();

    test_matmul(7, 13, 9, ACT_NONE, 1, 0, 1, 1);
    test_matmul(39, 40, 24, ACT_GELU, 1, 1, 1, 1);
    test_matmul(39, 24, 40, ACT_TANH, 0, 0, 1, 1);
    test_matmul(21, 16, 10, ACT_RELU, 1, 0, 0, 0);
    test_matmul(3, 48, 2, ACT_NONE, 1, 0, 1, 1);
    if (!small) {
        test_matmul(384, 256, 1024, ACT_GELU, 1, 0, 1, 1);
        test_matmul(384, 1024, 256, ACT_NONE, 1, 1, 1, 1);
    }
    /* the plain kernel used when cuBLASLt has no algorithm for a shape */
    setenv("KOE_CUDA_GEMM_FALLBACK", "1", 1);
    printf("(KOE_CUDA_GEMM_FALLBACK=1: the fallback GEMM kernel)\n");
    test_matmul(39, 40, 24, ACT_GELU, 1, 1, 1, 1);
    test_matmul(70, 13, 67, ACT_NONE, 1, 0, 1, 1);
    unsetenv("KOE_CUDA_GEMM_FALLBACK");

    test_attention(3, 13, 3, 8, (const int[]){13, 0, 7}, 0.1f);
    test_attention(1, 7, 2, 10, (const int[]){7}, 0.0f);
    test_attention(2, 129, 4, 64, (const int[]){129, 77}, 0.1f);
    if (!small) test_attention(4, 128, 12, 64, (const int[]){128, 100, 5, 1}, 0.1f);

    test_residual_layernorm(39, 48, 0.1f, 1e-12f);
    test_residual_layernorm(7, 13, 0.0f, 1e-5f);
    test_residual_layernorm(1, 768, 0.1f, 1e-12f);
    if (!small) test_residual_layernorm(387, 768, 0.1f, 1e-12f);

    test_embeddings(3, 13, 48, 11, 20, TYPES_GIVEN, 0.1f, 1e-12f);
    test_embeddings(1, 7, 40, 50, 9, TYPES_NULL, 0.0f, 1e-12f);
    test_embeddings(2, 9, 24, 7, 12, NO_TOKEN_TYPES, 0.1f, 1e-5f);
    if (!small) test_embeddings(8, 128, 768, 1000, 512, TYPES_GIVEN, 0.1f, 1e-12f);

    test_dropout(10007, 0.1f);
    test_dropout(999, 0.0f);
    test_cls_gather(3, 13, 48);
    test_cls_gather(1, 7, 24);
    test_cls_gather(5, 0, 32); /* packed */

    test_cross_entropy(32, 3, 0.0);
    test_cross_entropy(39, 29, 0.2);
    test_cross_entropy(5, 2, 1.0);
    test_mse(7);
    test_mse(33);
    test_qa_loss(5, 13);
    test_qa_loss(3, 129);

    test_global_norm(5);
    test_global_norm(small ? 100003 : 3000017);
    test_adamw(10007, 1.0f, 0.01f);
    test_adamw(999, 0.0f, 0.0f);

    printf("worst error / limit: %.3f\n", worst_ratio);
    return test_exit("test_cuda_ops");
}
