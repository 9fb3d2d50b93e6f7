/* Scaled dot-product self-attention, one (batch, head) at a time, over padded batches and
 * over packed ones (real tokens only, sequence b in rows offsets[b] .. offsets[b+1]-1).
 *
 * Keys t >= len[b] are left out of the softmax entirely, which is what HF's additive mask
 * (-10000 or finfo.min) amounts to in fp32 whenever a row has at least one valid key. A row
 * with len == 0 outputs zeros, stores lse = 0 and gets zero gradients (HF would average all
 * keys there; such rows never occur in real batches, which always hold [CLS]).
 *
 * The backward is flash-style: probabilities are recomputed from q, k and the stored lse,
 * so nothing of size B*NH*T*T is kept between the passes (only T*T scratch per thread).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/util.h"
#include "kernels/cpu/cpu_ops.h"

/* Where one (b,h) lives: its query rows start at row `row0` of qkv [*,3C] and of an output
 * [*,C]; a padded batch has rows = T (padding queries too), a packed one rows = L. */
typedef struct {
    size_t q, k, v, o;  /* element offsets of row 0 */
    int ld_qkv, ld_o;   /* row strides */
    int rows, L;        /* query rows, valid keys */
    int T;              /* the padded length, the dropout index's row stride */
    uint64_t drop_base; /* dropout index of (i=0, j=0) */
} Head;

static Head head_at(size_t row0, int rows, int L, int b, int h, int T, int NH, int HD) {
    int C = NH * HD;
    Head hd;
    hd.q = row0 * 3 * C + (size_t)h * HD;
    hd.k = hd.q + C;
    hd.v = hd.q + 2 * (size_t)C;
    hd.o = row0 * C + (size_t)h * HD;
    hd.ld_qkv = 3 * C;
    hd.ld_o = C;
    hd.rows = rows;
    hd.L = L < 0 ? 0 : L > T ? T : L;
    hd.T = T;
    hd.drop_base = koe_attention_drop_index(b, h, 0, 0, NH, T);
    return hd;
}

static Head padded_head(const int *lengths, int b, int h, int T, int NH, int HD) {
    return head_at((size_t)b * T, T, lengths[b], b, h, T, NH, HD);
}

static Head packed_head(const int *offsets, int b, int h, int T, int NH, int HD) {
    int L = offsets[b + 1] - offsets[b];
    if (L < 0 || L > T) { /* the host builds offsets; a bad one is a programming error */
        fprintf(stderr, "kernels/cpu/attention.c: sequence %d has length %d, not in [0, %d]\n",
                b, L, T);
        abort();
    }
    return head_at((size_t)offsets[b], L, L, b, h, T, NH, HD);
}

/* S[rows,L] = scale * q k^T */
static void scores(float *S, const float *qkv, Head hd, int HD, float scale) {
    cpu_sgemm(0, 1, hd.rows, hd.L, HD, scale, qkv + hd.q, hd.ld_qkv, qkv + hd.k, hd.ld_qkv,
              0.0f, S, hd.L);
}

/* One row of S becomes probabilities in place; returns its log-sum-exp. */
static float softmax_row(float *s, int L) {
    float max = s[0];
#pragma omp simd reduction(max : max)
    for (int j = 1; j < L; j++) max = s[j] > max ? s[j] : max;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < L; j++) {
        s[j] = expf(s[j] - max);
        sum += s[j];
    }
#pragma omp simd
    for (int j = 0; j < L; j++) s[j] /= sum;
    return max + logf(sum);
}

/* S [rows,L] and keep [L] are scratch */
static void head_fwd(float *out, float *lse_row, const float *qkv, Head hd, int HD, Dropout d,
                     float *S, float *keep) {
    if (hd.L == 0) {
        for (int i = 0; i < hd.rows; i++) {
            memset(out + hd.o + (size_t)i * hd.ld_o, 0, (size_t)HD * sizeof(float));
            lse_row[i] = 0.0f;
        }
        return;
    }
    int L = hd.L;
    scores(S, qkv, hd, HD, 1.0f / sqrtf((float)HD));
    for (int i = 0; i < hd.rows; i++) {
        float *p = S + (size_t)i * L;
        lse_row[i] = softmax_row(p, L);
        dropout_mask(keep, L, hd.drop_base + (uint64_t)i * hd.T, d);
#pragma omp simd
        for (int j = 0; j < L; j++) p[j] *= keep[j];
    }
    cpu_sgemm(0, 0, hd.rows, HD, L, 1.0f, S, L, qkv + hd.v, hd.ld_qkv, 0.0f, out + hd.o,
              hd.ld_o);
}

/* With P the probabilities, Pd = dropout(P), O = Pd V:
 *   dV = Pd^T dO;  dP = dropout'(dO V^T);  dS = P * (dP - rowsum(P * dP)) * scale;
 *   dQ = dS K;     dK = dS^T Q.
 * dqkv rows of keys >= L are left as the caller zeroed them. */
static void head_bwd(float *dqkv, const float *dout, const float *lse_row, const float *qkv,
                     Head hd, int HD, Dropout d, float *P, float *Pd, float *dP) {
    int L = hd.L, T = hd.rows;
    if (L == 0) return;
    float scale = 1.0f / sqrtf((float)HD);
    scores(P, qkv, hd, HD, scale);
    cpu_sgemm(0, 1, T, L, HD, 1.0f, dout + hd.o, hd.ld_o, qkv + hd.v, hd.ld_qkv, 0.0f, dP, L);
    for (int i = 0; i < T; i++) {
        float *p = P + (size_t)i * L, *pd = Pd + (size_t)i * L, *dp = dP + (size_t)i * L;
        dropout_mask(pd, L, hd.drop_base + (uint64_t)i * hd.T, d); /* pd holds the mask */
        float rowdot = 0.0f;
#pragma omp simd reduction(+ : rowdot)
        for (int j = 0; j < L; j++) {
            p[j] = expf(p[j] - lse_row[i]);
            dp[j] *= pd[j];
            pd[j] *= p[j];
            rowdot += p[j] * dp[j];
        }
#pragma omp simd
        for (int j = 0; j < L; j++) dp[j] = p[j] * (dp[j] - rowdot) * scale; /* now dS */
    }
    cpu_sgemm(1, 0, L, HD, T, 1.0f, Pd, L, dout + hd.o, hd.ld_o, 0.0f, dqkv + hd.v, hd.ld_qkv);
    cpu_sgemm(0, 0, T, HD, L, 1.0f, dP, L, qkv + hd.k, hd.ld_qkv, 0.0f, dqkv + hd.q, hd.ld_qkv);
    cpu_sgemm(1, 0, L, HD, T, 1.0f, dP, L, qkv + hd.q, hd.ld_qkv, 0.0f, dqkv + hd.k, hd.ld_qkv);
}

/* The parallelism is over (b,h); each head's GEMMs run on its thread (see gemm.c).
 * offsets == NULL: padded, lengths per row, lse [B,NH,T]; else packed, lse [NH,N]. */
static void attention_fwd(float *out, float *lse, const float *qkv, const int *lengths,
                          const int *offsets, int B, int N, int T, int NH, int HD, Dropout d) {
#pragma omp parallel
    {
        float *S = xmalloc((size_t)(T + 1) * T * sizeof(float));
#pragma omp for schedule(dynamic)
        for (int bh = 0; bh < B * NH; bh++) {
            int b = bh / NH, h = bh % NH;
            Head hd = offsets ? packed_head(offsets, b, h, T, NH, HD)
                              : padded_head(lengths, b, h, T, NH, HD);
            float *lse_row = offsets ? lse + (size_t)h * N + offsets[b] : lse + (size_t)bh * T;
            head_fwd(out, lse_row, qkv, hd, HD, d, S, S + (size_t)T * T);
        }
        free(S);
    }
}

static void attention_bwd(float *dqkv, const float *dout, const float *lse, const float *qkv,
                          const int *lengths, const int *offsets, int B, int N, int T, int NH,
                          int HD, Dropout d) {
    memset(dqkv, 0, (size_t)N * 3 * NH * HD * sizeof(float));
#pragma omp parallel
    {
        float *buf = xmalloc(3 * (size_t)T * T * sizeof(float));
#pragma omp for schedule(dynamic)
        for (int bh = 0; bh < B * NH; bh++) {
            int b = bh / NH, h = bh % NH;
            Head hd = offsets ? packed_head(offsets, b, h, T, NH, HD)
                              : padded_head(lengths, b, h, T, NH, HD);
            const float *lse_row =
                offsets ? lse + (size_t)h * N + offsets[b] : lse + (size_t)bh * T;
            head_bwd(dqkv, dout, lse_row, qkv, hd, HD, d, buf, buf + (size_t)T * T,
                     buf + 2 * (size_t)T * T);
        }
        free(buf);
    }
}

void cpu_attention_fwd(Act *out, float *lse, const Act *qkv, const int *lengths, int B, int T,
                       int NH, int HD, Dropout d) {
    attention_fwd(out, lse, qkv, lengths, NULL, B, B * T, T, NH, HD, d);
}

/* D_i = rowsum(P * dP) is computed from P directly, so `out` (which flash kernels use for
 * D_i = dO . O) is not needed here. */
void cpu_attention_bwd(Act *dqkv, const Act *dout, const Act *out, const float *lse,
                       const Act *qkv, const int *lengths, int B, int T, int NH, int HD,
                       Dropout d) {
    (void)out;
    attention_bwd(dqkv, dout, lse, qkv, lengths, NULL, B, B * T, T, NH, HD, d);
}

void cpu_attention_packed_fwd(Act *out, float *lse, const Act *qkv, const int *offsets, int B,
                              int N, int T, int NH, int HD, Dropout d) {
    attention_fwd(out, lse, qkv, NULL, offsets, B, N, T, NH, HD, d);
}

void cpu_attention_packed_bwd(Act *dqkv, const Act *dout, const Act *out, const float *lse,
                              const Act *qkv, const int *offsets, int B, int N, int T, int NH,
                              int HD, Dropout d) {
    (void)out;
    attention_bwd(dqkv, dout, lse, qkv, NULL, offsets, B, N, T, NH, HD, d);
}
