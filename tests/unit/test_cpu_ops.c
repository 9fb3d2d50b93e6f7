/* The CPU reference layers (embeddings, matmul, attention, residual LayerNorm, dropout,
 * [CLS] gather): forwards against naive double-precision formulas, every backward against
 * central finite differences of L = sum(out * R) with the op itself computed in fp32. */
#include <string.h>

#include "kernels/ops.h"
#include "kernels/rng.h"
#include "test.h"

static const Backend *be;
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static float *rand_floats(size_t n, float lo, float hi) {
    float *x = malloc(n * sizeof(float));
    fill_uniform(x, n, lo, hi, &rng);
    return x;
}

static int *rand_ints(size_t n, int hi) { /* uniform in [0, hi) */
    int *x = malloc(n * sizeof(int));
    float *u = rand_floats(n, 0.0f, (float)hi);
    for (size_t i = 0; i < n; i++) x[i] = (int)u[i] < hi ? (int)u[i] : hi - 1;
    free(u);
    return x;
}

/* a buffer the op must overwrite completely */
static float *poisoned(size_t n) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

static float *copy_of(const float *x, size_t n) {
    float *y = malloc(n * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    return y;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* a -= b: turns an accumulated gradient back into this call's contribution */
static void subtract(float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] -= b[i];
}

static double keep_scale(Dropout d, uint64_t index) {
    return koe_keep(d.seed, d.stream, index, d.p) ? 1.0 / (1.0 - d.p) : 0.0;
}

/* g[i] = dL/dx[i] by central differences, L = loss(ctx) evaluated with x perturbed */
typedef double (*LossFn)(void *ctx);
static float *numeric_grad(float *x, size_t n, float eps, LossFn loss, void *ctx) {
    float *g = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        float x0 = x[i];
        x[i] = x0 + eps;
        double lp = loss(ctx);
        x[i] = x0 - eps;
        double lm = loss(ctx);
        x[i] = x0;
        g[i] = (float)((lp - lm) / (2.0 * eps));
    }
    return g;
}

static void check_grad(const char *what, float *x, size_t n, const float *analytic, float eps,
                       double tol, LossFn loss, void *ctx) {
    float *num = numeric_grad(x, n, eps, loss, ctx);
    double err = rel_l2(analytic, num, n);
    CHECK(err < tol, "%s: gradient rel_l2 %.3g vs finite differences", what, err);
    free(num);
}

/* ---------------------------------------------------------------- naive LayerNorm (double) */

static void naive_layernorm(double *y, double *mean, double *rstd, const double *x,
                            const float *w, const float *b, int C, float eps) {
    double mu = 0, var = 0;
    for (int c = 0; c < C; c++) mu += x[c];
    mu /= C;
    for (int c = 0; c < C; c++) var += (x[c] - mu) * (x[c] - mu);
    *mean = mu;
    *rstd = 1.0 / sqrt(var / C + eps);
    for (int c = 0; c < C; c++) y[c] = (x[c] - mu) * *rstd * w[c] + b[c];
}

/* ---------------------------------------------------------------------------- embeddings */

typedef struct {
    int N, C, V, P, NT;
    int *ids, *pos, *types; /* types may be NULL */
    float *wte, *wpe, *wtt; /* wtt may be NULL */
    float *ln_w, *ln_b, *out, *mean, *rstd, *R;
    Dropout d;
} Emb;

static double emb_loss(void *ctx) {
    Emb *e = ctx;
    be->embeddings_fwd(e->out, e->mean, e->rstd, e->ids, e->pos, e->types, e->wte, e->wpe,
                       e->wtt, e->ln_w, e->ln_b, e->N, e->C, 1e-5f, e->d);
    return dot(e->out, e->R, (size_t)e->N * e->C);
}

static void test_embeddings(int with_wtt, int with_types, float p) {
    Emb e = {.N = 9, .C = 16, .V = 11, .P = 10, .NT = 2};
    int N = e.N, C = e.C;
    e.d = (Dropout){p, 42, 7, NULL};
    e.ids = rand_ints(N, e.V);
    e.ids[1] = e.ids[0]; /* a repeated id: its table row receives two gradients */
    e.pos = rand_ints(N, e.P);
    e.types = with_types ? rand_ints(N, e.NT) : NULL;
    e.wte = rand_floats((size_t)e.V * C, -1, 1);
    e.wpe = rand_floats((size_t)e.P * C, -1, 1);
    e.wtt = with_wtt ? rand_floats((size_t)e.NT * C, -1, 1) : NULL;
    e.ln_w = rand_floats(C, 0.5f, 1.5f);
    e.ln_b = rand_floats(C, -0.5f, 0.5f);
    e.R = rand_floats((size_t)N * C, -1, 1);
    e.out = poisoned((size_t)N * C);
    e.mean = poisoned(N);
    e.rstd = poisoned(N);
    emb_loss(&e);

    /* forward against the formula; HF adds token type 0 when token_type_ids is absent */
    double x[64], y[64], mu, rs, err = 0, ref = 0, stat_err = 0;
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            x[c] = (double)e.wte[e.ids[n] * C + c] + e.wpe[e.pos[n] * C + c];
            if (e.wtt) x[c] += e.wtt[(e.types ? e.types[n] : 0) * C + c];
        }
        naive_layernorm(y, &mu, &rs, x, e.ln_w, e.ln_b, C, 1e-5f);
        for (int c = 0; c < C; c++) {
            double want = y[c] * keep_scale(e.d, (uint64_t)n * C + c);
            err += (e.out[n * C + c] - want) * (e.out[n * C + c] - want);
            ref += want * want;
        }
        stat_err = fmax(stat_err, fabs(e.mean[n] - mu) + fabs(e.rstd[n] - rs) / rs);
    }
    CHECK(sqrt(err / ref) < 1e-5, "embeddings_fwd rel_l2 %.3g (wtt %d types %d p %g)",
          sqrt(err / ref), with_wtt, with_types, p);
    CHECK(stat_err < 1e-5, "embeddings_fwd mean/rstd off by %.3g", stat_err);

    /* backward: parameter grads accumulate onto what is already there */
    size_t nte = (size_t)e.V * C, npe = (size_t)e.P * C, ntt = (size_t)e.NT * C;
    float *g0_te = rand_floats(nte, -1, 1), *g0_pe = rand_floats(npe, -1, 1);
    float *g0_tt = rand_floats(ntt, -1, 1), *g0_w = rand_floats(C, -1, 1);
    float *g0_b = rand_floats(C, -1, 1);
    float *dte = copy_of(g0_te, nte), *dpe = copy_of(g0_pe, npe), *dtt = copy_of(g0_tt, ntt);
    float *dw = copy_of(g0_w, C), *db = copy_of(g0_b, C);
    be->embeddings_bwd(dte, dpe, e.wtt ? dtt : NULL, dw, db, e.R, e.mean, e.rstd, e.ids, e.pos,
                       e.types, e.wte, e.wpe, e.wtt, e.ln_w, N, C, e.d);
    subtract(dte, g0_te, nte);
    subtract(dpe, g0_pe, npe);
    subtract(dtt, g0_tt, ntt);
    subtract(dw, g0_w, C);
    subtract(db, g0_b, C);
    check_grad("embeddings dwte", e.wte, nte, dte, 1e-2f, 5e-3, emb_loss, &e);
    check_grad("embeddings dwpe", e.wpe, npe, dpe, 1e-2f, 5e-3, emb_loss, &e);
    if (e.wtt) check_grad("embeddings dwtt", e.wtt, ntt, dtt, 1e-2f, 5e-3, emb_loss, &e);
    check_grad("embeddings dln_w", e.ln_w, C, dw, 1e-2f, 5e-3, emb_loss, &e);
    check_grad("embeddings dln_b", e.ln_b, C, db, 1e-2f, 5e-3, emb_loss, &e);

    free(e.ids), free(e.pos), free(e.types), free(e.wte), free(e.wpe), free(e.wtt);
    free(e.ln_w), free(e.ln_b), free(e.R), free(e.out), free(e.mean), free(e.rstd);
    free(g0_te), free(g0_pe), free(g0_tt), free(g0_w), free(g0_b);
    free(dte), free(dpe), free(dtt), free(dw), free(db);
}

/* -------------------------------------------------------------------------------- matmul */

typedef struct {
    int M, K, N;
    Activation act;
    float *inp, *w, *b, *out, *pre, *R; /* b may be NULL */
} Mm;

static double mm_loss(void *ctx) {
    Mm *t = ctx;
    be->matmul_fwd(t->out, t->pre, t->inp, t->w, t->b, t->M, t->K, t->N, t->act);
    return dot(t->out, t->R, (size_t)t->M * t->N);
}

static double naive_act(double x, Activation act) {
    switch (act) {
    case ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case ACT_TANH: return tanh(x);
    case ACT_RELU: return x > 0 ? x : 0;
    default: return x;
    }
}

/* with_bias/with_dinp off also exercises the NULL b, db and dinp paths */
static void test_matmul(Activation act, int accumulate, int with_bias, int with_dinp) {
    Mm t = {.M = 5, .K = 7, .N = 6, .act = act};
    int M = t.M, K = t.K, N = t.N;
    t.inp = rand_floats((size_t)M * K, -1, 1);
    t.w = rand_floats((size_t)N * K, -1, 1);
    t.b = with_bias ? rand_floats(N, -1, 1) : NULL;
    t.R = rand_floats((size_t)M * N, -1, 1);
    t.out = poisoned((size_t)M * N);
    t.pre = act == ACT_NONE ? NULL : poisoned((size_t)M * N);
    mm_loss(&t);

    double err = 0, ref = 0, pre_err = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double z = t.b ? t.b[n] : 0;
            for (int k = 0; k < K; k++) z += (double)t.inp[m * K + k] * t.w[n * K + k];
            double want = naive_act(z, act);
            err += (t.out[m * N + n] - want) * (t.out[m * N + n] - want);
            ref += want * want;
            if (t.pre) pre_err = fmax(pre_err, fabs(t.pre[m * N + n] - z));
        }
    CHECK(sqrt(err / ref) < 1e-6, "matmul_fwd act %d rel_l2 %.3g", act, sqrt(err / ref));
    CHECK(pre_err < 1e-5, "matmul_fwd act %d pre-activation off by %.3g", act, pre_err);

    float *g0_inp = rand_floats((size_t)M * K, -1, 1), *g0_w = rand_floats((size_t)N * K, -1, 1);
    float *g0_b = rand_floats(N, -1, 1);
    float *dinp = accumulate ? copy_of(g0_inp, (size_t)M * K) : poisoned((size_t)M * K);
    float *dw = copy_of(g0_w, (size_t)N * K), *db = copy_of(g0_b, N);
    float *dout = copy_of(t.R, (size_t)M * N); /* clobbered by the op */
    be->matmul_bwd(with_dinp ? dinp : NULL, dw, with_bias ? db : NULL, dout, t.pre, t.inp, t.w,
                   M, K, N, act, accumulate);
    if (accumulate) subtract(dinp, g0_inp, (size_t)M * K);
    subtract(dw, g0_w, (size_t)N * K);
    subtract(db, g0_b, N);
    float eps = act == ACT_RELU ? 1e-3f : 1e-2f; /* small steps keep clear of ReLU's kink */
    if (with_dinp) check_grad("matmul dinp", t.inp, (size_t)M * K, dinp, eps, 5e-3, mm_loss, &t);
    check_grad("matmul dw", t.w, (size_t)N * K, dw, eps, 5e-3, mm_loss, &t);
    if (with_bias) check_grad("matmul db", t.b, N, db, eps, 5e-3, mm_loss, &t);

    free(t.inp), free(t.w), free(t.b), free(t.R), free(t.out), free(t.pre);
    free(g0_inp), free(g0_w), free(g0_b), free(dinp), free(dw), free(db), free(dout);
}

/* ----------------------------------------------------------------------------- attention */

typedef struct {
    int B, T, NH, HD;
    int *len;
    float *qkv, *out, *lse, *R;
    Dropout d;
} Att;

static double att_loss(void *ctx) {
    Att *a = ctx;
    be->attention_fwd(a->out, a->lse, a->qkv, a->len, a->B, a->T, a->NH, a->HD, a->d);
    return dot(a->out, a->R, (size_t)a->B * a->T * a->NH * a->HD);
}

/* naive double-precision attention of one (b, h, query i): out row and lse */
static double naive_attention_row(double *o, const Att *a, int b, int h, int i) {
    int T = a->T, HD = a->HD, C = a->NH * HD, L = a->len[b];
    const float *base = a->qkv + (size_t)b * T * 3 * C + h * HD;
    double s[64], max = -INFINITY, sum = 0;
    for (int d = 0; d < HD; d++) o[d] = 0;
    if (L == 0) return 0;
    for (int j = 0; j < L; j++) {
        s[j] = 0;
        for (int d = 0; d < HD; d++)
            s[j] += (double)base[i * 3 * C + d] * base[j * 3 * C + C + d];
        s[j] /= sqrt((double)HD);
        max = fmax(max, s[j]);
    }
    for (int j = 0; j < L; j++) sum += exp(s[j] - max);
    for (int j = 0; j < L; j++) {
        double p = exp(s[j] - max) / sum;
        p *= keep_scale(a->d, (((uint64_t)b * a->NH + h) * T + i) * T + j);
        for (int d = 0; d < HD; d++) o[d] += p * base[j * 3 * C + 2 * C + d];
    }
    return max + log(sum);
}

static void test_attention(int B, int T, int NH, int HD, const int *lengths, float p) {
    Att a = {.B = B, .T = T, .NH = NH, .HD = HD, .d = {p, 3, 11}};
    int C = NH * HD;
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, nlse = (size_t)B * NH * T;
    a.len = malloc(B * sizeof(int));
    memcpy(a.len, lengths, B * sizeof(int));
    a.qkv = rand_floats(nqkv, -1.5f, 1.5f);
    a.R = rand_floats(nout, -1, 1);
    a.out = poisoned(nout);
    a.lse = poisoned(nlse);
    att_loss(&a);

    double err = 0, ref = 0, lse_err = 0, o[64];
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                double lse = naive_attention_row(o, &a, b, h, i);
                for (int d = 0; d < HD; d++) {
                    double got = a.out[((size_t)b * T + i) * C + h * HD + d];
                    err += (got - o[d]) * (got - o[d]);
                    ref += o[d] * o[d];
                }
                lse_err = fmax(lse_err, fabs(a.lse[((size_t)b * NH + h) * T + i] - lse));
            }
    CHECK(sqrt(err / ref) < 1e-5, "attention_fwd T %d p %g rel_l2 %.3g", T, p, sqrt(err / ref));
    CHECK(lse_err < 1e-5, "attention_fwd lse off by %.3g", lse_err);

    /* padded keys must not matter: rewrite k and v beyond each length, outputs unchanged */
    float *out0 = copy_of(a.out, nout), *lse0 = copy_of(a.lse, nlse);
    for (int b = 0; b < B; b++)
        for (int t = a.len[b]; t < T; t++)
            fill_uniform(a.qkv + ((size_t)b * T + t) * 3 * C + C, 2 * (size_t)C, -9, 9, &rng);
    att_loss(&a);
    CHECK(memcmp(a.out, out0, nout * sizeof(float)) == 0, "padded keys changed the output");
    CHECK(memcmp(a.lse, lse0, nlse * sizeof(float)) == 0, "padded keys changed lse");

    float *dqkv = poisoned(nqkv);
    be->attention_bwd(dqkv, a.R, a.out, a.lse, a.qkv, a.len, B, T, NH, HD, a.d);
    check_grad("attention dqkv", a.qkv, nqkv, dqkv, 1e-2f, 5e-3, att_loss, &a);

    free(a.len), free(a.qkv), free(a.R), free(a.out), free(a.lse), free(out0), free(lse0);
    free(dqkv);
}

/* A packed batch holds the padded batch's real rows back to back; its results must be those
 * rows of the padded op's (same dropout masks: both count indices in T), with gradients from
 * a dO that is zero on padding rows. Also checked against finite differences on its own. */
typedef struct {
    int B, N, T, NH, HD;
    int *off;
    float *qkv, *out, *lse, *R;
    Dropout d;
} Packed;

static double packed_loss(void *ctx) {
    Packed *a = ctx;
    be->attention_packed_fwd(a->out, a->lse, a->qkv, a->off, a->B, a->N, a->T, a->NH, a->HD,
                             a->d);
    return dot(a->out, a->R, (size_t)a->N * a->NH * a->HD);
}

/* copies the real rows of x [B,T,width] into packed [N,width] (or back when unpack) */
static void pack_rows(float *packed, float *x, const int *len, const int *off, int B, int T,
                      int width, int unpack) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < len[b]; t++) {
            float *p = packed + (size_t)(off[b] + t) * width, *r = x + ((size_t)b * T + t) * width;
            memcpy(unpack ? r : p, unpack ? p : r, (size_t)width * sizeof(float));
        }
}

static void test_attention_packed(int B, int T, int NH, int HD, const int *len, float p) {
    int C = NH * HD, *off = malloc((B + 1) * sizeof(int));
    off[0] = 0;
    for (int b = 0; b < B; b++) off[b + 1] = off[b] + len[b];
    int N = off[B];
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
    Dropout d = {p, 5, 13, NULL};
    float *qkv = rand_floats(nqkv, -1.5f, 1.5f), *R = calloc(nout, sizeof(float));
    float *out = poisoned(nout), *lse = poisoned((size_t)B * NH * T), *dqkv = poisoned(nqkv);
    Packed a = {B, N, T, NH, HD, off, poisoned((size_t)N * 3 * C), poisoned((size_t)N * C),
                poisoned((size_t)NH * N), rand_floats((size_t)N * C, -1, 1), d};
    pack_rows(a.R, R, len, off, B, T, C, 1); /* R: a.R on real rows, zero on padding */
    pack_rows(a.qkv, qkv, len, off, B, T, 3 * C, 0);
    be->attention_fwd(out, lse, qkv, len, B, T, NH, HD, d);
    be->attention_bwd(dqkv, R, out, lse, qkv, len, B, T, NH, HD, d);
    packed_loss(&a);
    float *p_dqkv = poisoned((size_t)N * 3 * C);
    be->attention_packed_bwd(p_dqkv, a.R, a.out, a.lse, a.qkv, off, B, N, T, NH, HD, d);

    /* the padded results' real rows, packed, against the packed op's */
    float *want = malloc(nqkv * sizeof(float)), *want_lse = malloc((size_t)NH * N * sizeof(float));
    pack_rows(want, out, len, off, B, T, C, 0);
    CHECK(rel_l2(a.out, want, (size_t)N * C) < 1e-6, "packed out differs from padded rows");
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < len[b]; t++)
                want_lse[(size_t)h * N + off[b] + t] = lse[((size_t)b * NH + h) * T + t];
    CHECK(rel_l2(a.lse, want_lse, (size_t)NH * N) < 1e-6, "packed lse differs from padded");
    pack_rows(want, dqkv, len, off, B, T, 3 * C, 0);
    CHECK(rel_l2(p_dqkv, want, (size_t)N * 3 * C) < 1e-6, "packed dqkv differs from padded");
    check_grad("attention_packed dqkv", a.qkv, (size_t)N * 3 * C, p_dqkv, 1e-2f, 5e-3,
               packed_loss, &a);

    free(off), free(qkv), free(R), free(out), free(lse), free(dqkv), free(a.qkv), free(a.out);
    free(a.lse), free(a.R), free(p_dqkv), free(want), free(want_lse);
}

/* -------------------------------------------------------------------- residual LayerNorm */

typedef struct {
    int N, C;
    float *x, *res, *w, *b, *out, *pre, *mean, *rstd, *R;
    Dropout d;
} Rln;

static double rln_loss(void *ctx) {
    Rln *r = ctx;
    be->residual_layernorm_fwd(r->out, r->pre, r->mean, r->rstd, r->x, r->res, r->w, r->b,
                               r->N, r->C, 1e-12f, r->d);
    return dot(r->out, r->R, (size_t)r->N * r->C);
}

static void test_residual_layernorm(float p) {
    Rln r = {.N = 6, .C = 12, .d = {p, 5, 99}};
    int N = r.N, C = r.C;
    size_t n = (size_t)N * C;
    r.x = rand_floats(n, -2, 2);
    r.res = rand_floats(n, -2, 2);
    r.w = rand_floats(C, 0.5f, 1.5f);
    r.b = rand_floats(C, -0.5f, 0.5f);
    r.R = rand_floats(n, -1, 1);
    r.out = poisoned(n), r.pre = poisoned(n), r.mean = poisoned(N), r.rstd = poisoned(N);
    rln_loss(&r);

    double x[64], y[64], mu, rs, err = 0, ref = 0, pre_err = 0, stat_err = 0;
    for (int i = 0; i < N; i++) {
        for (int c = 0; c < C; c++) {
            size_t k = (size_t)i * C + c;
            x[c] = r.x[k] * keep_scale(r.d, k) + r.res[k];
            pre_err = fmax(pre_err, fabs(r.pre[k] - x[c]));
        }
        naive_layernorm(y, &mu, &rs, x, r.w, r.b, C, 1e-12f);
        for (int c = 0; c < C; c++) {
            err += (r.out[i * C + c] - y[c]) * (r.out[i * C + c] - y[c]);
            ref += y[c] * y[c];
        }
        stat_err = fmax(stat_err, fabs(r.mean[i] - mu) + fabs(r.rstd[i] - rs) / rs);
    }
    CHECK(sqrt(err / ref) < 1e-5, "residual_layernorm_fwd rel_l2 %.3g", sqrt(err / ref));
    CHECK(pre_err < 1e-5, "residual_layernorm_fwd pre off by %.3g", pre_err);
    CHECK(stat_err < 1e-5, "residual_layernorm_fwd mean/rstd off by %.3g", stat_err);

    float *g0_w = rand_floats(C, -1, 1), *g0_b = rand_floats(C, -1, 1);
    float *dw = copy_of(g0_w, C), *db = copy_of(g0_b, C), *dx = poisoned(n), *dres = poisoned(n);
    be->residual_layernorm_bwd(dx, dres, dw, db, r.R, r.pre, r.mean, r.rstd, r.w, N, C, r.d);
    subtract(dw, g0_w, C);
    subtract(db, g0_b, C);
    check_grad("residual_layernorm dx", r.x, n, dx, 1e-2f, 5e-3, rln_loss, &r);
    check_grad("residual_layernorm dresidual", r.res, n, dres, 1e-2f, 5e-3, rln_loss, &r);
    check_grad("residual_layernorm dw", r.w, C, dw, 1e-2f, 5e-3, rln_loss, &r);
    check_grad("residual_layernorm db", r.b, C, db, 1e-2f, 5e-3, rln_loss, &r);

    free(r.x), free(r.res), free(r.w), free(r.b), free(r.R), free(r.out), free(r.pre);
    free(r.mean), free(r.rstd), free(g0_w), free(g0_b), free(dw), free(db), free(dx), free(dres);
}

/* ------------------------------------------------------------------- dropout, cls gather */

typedef struct {
    size_t n;
    int B, N, C; /* cls gather: B sequences starting at rows first[b] of N */
    const int *first;
    float *inp, *out, *R;
    Dropout d;
} Elem;

static double dropout_loss(void *ctx) {
    Elem *e = ctx;
    be->dropout_fwd(e->out, e->inp, e->n, e->d);
    return dot(e->out, e->R, e->n);
}

static double cls_loss(void *ctx) {
    Elem *e = ctx;
    be->cls_gather_fwd(e->out, e->inp, e->first, e->B, e->C);
    return dot(e->out, e->R, (size_t)e->B * e->C);
}

static void test_dropout_statistics(float p) {
    size_t n = 200000;
    Dropout d = {p, 1234, 5, NULL};
    float *x = rand_floats(n, 0.5f, 2.0f), *y = poisoned(n), *dx = poisoned(n);
    float *dy = rand_floats(n, 0.5f, 2.0f);
    be->dropout_fwd(y, x, n, d);
    be->dropout_bwd(dx, dy, n, d);
    size_t dropped = 0, bad_scale = 0, mask_mismatch = 0, not_rng_mask = 0;
    for (size_t i = 0; i < n; i++) {
        dropped += y[i] == 0.0f;
        not_rng_mask += (y[i] == 0.0f) == koe_keep(d.seed, d.stream, i, p);
        if (y[i] != 0.0f && fabs(y[i] - x[i] / (1.0 - p)) > 1e-6 * fabs(y[i])) bad_scale++;
        if ((y[i] == 0.0f) != (dx[i] == 0.0f)) mask_mismatch++;
    }
    double rate = (double)dropped / n, sigma = sqrt(p * (1 - p) / n);
    CHECK(fabs(rate - p) < 5 * sigma, "dropout rate %.5f for p %g", rate, p);
    CHECK(bad_scale == 0, "%zu kept values not scaled by 1/(1-p)", bad_scale);
    CHECK(not_rng_mask == 0, "%zu elements disagree with koe_keep's mask", not_rng_mask);
    CHECK(mask_mismatch == 0, "%zu elements with different fwd/bwd masks", mask_mismatch);

    /* another stream draws another mask */
    Dropout d2 = d;
    d2.stream++;
    be->dropout_fwd(dx, x, n, d2);
    size_t differ = 0;
    for (size_t i = 0; i < n; i++) differ += (dx[i] == 0.0f) != (y[i] == 0.0f);
    CHECK(differ > n * p / 2, "stream change altered only %zu mask elements", differ);
    free(x), free(y), free(dx), free(dy);
}

static void test_dropout_identity(void) {
    size_t n = 1000;
    float *x = rand_floats(n, -1, 1), *y = poisoned(n);
    be->dropout_fwd(y, x, n, (Dropout){0.0f, 1, 2, NULL});
    CHECK(memcmp(x, y, n * sizeof(float)) == 0, "dropout with p 0 is not the identity");
    free(x), free(y);
}

static void test_dropout_grad(void) {
    Elem e = {.n = 40, .d = {0.3f, 77, 1}};
    e.inp = rand_floats(e.n, -1, 1), e.R = rand_floats(e.n, -1, 1), e.out = poisoned(e.n);
    float *dinp = poisoned(e.n);
    be->dropout_bwd(dinp, e.R, e.n, e.d);
    check_grad("dropout dinp", e.inp, e.n, dinp, 1e-2f, 1e-3, dropout_loss, &e);
    free(e.inp), free(e.R), free(e.out), free(dinp);
}

/* first rows of a padded batch (b*T) or of a packed one (offsets) */
static void test_cls_gather(int B, int N, const int *first) {
    Elem e = {.B = B, .N = N, .C = 5, .first = first};
    size_t nin = (size_t)e.N * e.C, nout = (size_t)e.B * e.C;
    e.inp = rand_floats(nin, -1, 1), e.R = rand_floats(nout, -1, 1), e.out = poisoned(nout);
    cls_loss(&e);
    int exact = 1;
    for (int b = 0; b < e.B; b++)
        for (int c = 0; c < e.C; c++) exact &= e.out[b * e.C + c] == e.inp[first[b] * e.C + c];
    CHECK(exact, "cls_gather_fwd does not copy the first row of each sequence");
    float *dinp = poisoned(nin);
    be->cls_gather_bwd(dinp, e.R, e.first, e.B, e.N, e.C);
    check_grad("cls_gather dinp", e.inp, nin, dinp, 1e-2f, 1e-3, cls_loss, &e);
    free(e.inp), free(e.R), free(e.out), free(dinp);
}

int main(void) {
    be = backend_cpu();
    CHECK(be && be->act_size == sizeof(float), "backend_cpu() is not the fp32 backend");

    test_embeddings(1, 1, 0.2f);
    test_embeddings(1, 1, 0.0f);
    test_embeddings(0, 0, 0.1f); /* DistilBERT: no token types */
    test_embeddings(1, 0, 0.0f); /* token_type_ids absent: type 0 */

    Activation acts[] = {ACT_NONE, ACT_GELU, ACT_TANH, ACT_RELU};
    for (int i = 0; i < 4; i++)
        for (int accumulate = 0; accumulate < 2; accumulate++)
            test_matmul(acts[i], accumulate, 1, 1);
    test_matmul(ACT_GELU, 0, 0, 0);

    int len3[] = {7, 4, 0}, len1[] = {9}, len2[] = {2, 13};
    test_attention(3, 7, 2, 4, len3, 0.0f);
    test_attention(3, 7, 2, 4, len3, 0.3f);
    test_attention(1, 13, 3, 8, len1, 0.1f);
    test_attention(2, 13, 1, 8, len2, 0.0f);
    test_attention_packed(3, 7, 2, 4, len3, 0.0f); /* an empty sequence at the end */
    test_attention_packed(3, 7, 2, 4, len3, 0.3f);
    test_attention_packed(2, 13, 3, 8, len2, 0.1f);

    test_residual_layernorm(0.0f);
    test_residual_layernorm(0.3f);

    test_dropout_statistics(0.1f);
    test_dropout_statistics(0.5f);
    test_dropout_identity();
    test_dropout_grad();
    test_cls_gather(3, 12, (const int[]){0, 4, 8});
    test_cls_gather(3, 10, (const int[]){0, 1, 7});
    return test_exit("test_cpu_ops");
}
