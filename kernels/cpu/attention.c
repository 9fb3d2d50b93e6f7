/* Scaled dot-product self-attention over padded batches, one (batch, head) at a time.
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
#include <stdlib.h>
#include <string.h>

#include "host/util.h"
#include "kernels/cpu/cpu_ops.h"

/* Where one (b,h) lives: q, k, v rows inside qkv [B,T,3C] and o rows inside a [B,T,C]. */
typedef struct {
    size_t q, k, v, o; /* element offsets of row 0 */
    int ld_qkv, ld_o;  /* row strides */
    int L;             /* number of valid keys */
    uint64_t drop_base; /* dropout index of (i=0, j=0) */
} Head;

static Head head_at(const int *lengths, int b, int h, int T, int NH, int HD) {
    int C = NH * HD;
    Head hd;
    hd.q = (size_t)b * T * 3 * C + (size_t)h * HD;
    hd.k = hd.q + C;
    hd.v = hd.q + 2 * (size_t)C;
    hd.o = (size_t)b * T * C + (size_t)h * HD;
    hd.ld_qkv = 3 * C;
    hd.ld_o = C;
    int L = lengths[b];
    hd.L = L < 0 ? 0 : L > T ? T : L;
    hd.drop_base = ((uint64_t)b * NH + h) * T * T;
    return hd;
}

/* S[T,L] = scale * q k^T */
static void scores(float *S, const float *qkv, Head hd, int T, int HD, float scale) {
    cpu_sgemm(0, 1, T, hd.L, HD, scale, qkv + hd.q, hd.ld_qkv, qkv + hd.k, hd.ld_qkv, 0.0f, S,
              hd.L);
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

/* S [T,T] and keep [T] are scratch */
static void head_fwd(float *out, float *lse_row, const float *qkv, Head hd, int T, int HD,
                     Dropout d, float *S, float *keep) {
    if (hd.L == 0) {
        for (int i = 0; i < T; i++) {
            memset(out + hd.o + (size_t)i * hd.ld_o, 0, (size_t)HD * sizeof(float));
            lse_row[i] = 0.0f;
        }
        return;
    }
    int L = hd.L;
    scores(S, qkv, hd, T, HD, 1.0f / sqrtf((float)HD));
    for (int i = 0; i < T; i++) {
        float *p = S + (size_t)i * L;
        lse_row[i] = softmax_row(p, L);
        dropout_mask(keep, L, hd.drop_base + (uint64_t)i * T, d);
#pragma omp simd
        for (int j = 0; j < L; j++) p[j] *= keep[j];
    }
    cpu_sgemm(0, 0, T, HD, L, 1.0f, S, L, qkv + hd.v, hd.ld_qkv, 0.0f, out + hd.o, hd.ld_o);
}

/* With P the probabilities, Pd = dropout(P), O = Pd V:
 *   dV = Pd^T dO;  dP = dropout'(dO V^T);  dS = P * (dP - rowsum(P * dP)) * scale;
 *   dQ = dS K;     dK = dS^T Q.
 * dqkv rows of keys >= L are left as the caller zeroed them. */
static void head_bwd(float *dqkv, const float *dout, const float *lse_row, const float *qkv,
                     Head hd, int T, int HD, Dropout d, float *P, float *Pd, float *dP) {
    int L = hd.L;
    if (L == 0) return;
    float scale = 1.0f / sqrtf((float)HD);
    scores(P, qkv, hd, T, HD, scale);
    cpu_sgemm(0, 1, T, L, HD, 1.0f, dout + hd.o, hd.ld_o, qkv + hd.v, hd.ld_qkv, 0.0f, dP, L);
    for (int i = 0; i < T; i++) {
        float *p = P + (size_t)i * L, *pd = Pd + (size_t)i * L, *dp = dP + (size_t)i * L;
        dropout_mask(pd, L, hd.drop_base + (uint64_t)i * T, d); /* pd holds the mask */
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

/* The parallelism is over (b,h); each head's GEMMs run on its thread (see gemm.c). */
void cpu_attention_fwd(Act *out, float *lse, const Act *qkv, const int *lengths, int B, int T,
                       int NH, int HD, Dropout d) {
#pragma omp parallel
    {
        float *S = xmalloc((size_t)(T + 1) * T * sizeof(float));
#pragma omp for schedule(dynamic)
        for (int bh = 0; bh < B * NH; bh++) {
            Head hd = head_at(lengths, bh / NH, bh % NH, T, NH, HD);
            head_fwd(out, lse + (size_t)bh * T, qkv, hd, T, HD, d, S, S + (size_t)T * T);
        }
        free(S);
    }
}

/* D_i = rowsum(P * dP) is computed from P directly, so `out` (which flash kernels use for
 * D_i = dO . O) is not needed here. */
void cpu_attention_bwd(Act *dqkv, const Act *dout, const Act *out, const float *lse,
                       const Act *qkv, const int *lengths, int B, int T, int NH, int HD,
                       Dropout d) {
    (void)out;
    memset(dqkv, 0, (size_t)B * T * 3 * NH * HD * sizeof(float));
#pragma omp parallel
    {
        float *buf = xmalloc(3 * (size_t)T * T * sizeof(float));
#pragma omp for schedule(dynamic)
        for (int bh = 0; bh < B * NH; bh++) {
            Head hd = head_at(lengths, bh / NH, bh % NH, T, NH, HD);
            head_bwd(dqkv, dout, lse + (size_t)bh * T, qkv, hd, T, HD, d, buf,
                     buf + (size_t)T * T, buf + 2 * (size_t)T * T);
        }
        free(buf);
    }
}
