/* Scaled dot-product self-attention: the op entry points.
 *
 * The fused kernels of flash_attention.cu do the work for head sizes 32, 64 and 128, and are
 * the only path for packed batches (attention_packed_*). For padded batches this
 * file also keeps the simple way, used for other head sizes and whenever the environment sets
 * KOE_CUDA_SIMPLE_ATTENTION=1 (a fallback, and the baseline of bench/attention_bench): the
 * scores of every (batch, head) are materialised in an fp32 scratch buffer [B,NH,T,T], with
 * the GEMMs done by the tiled kernel of bgemm.cuh and a masked softmax in between.
 *
 * Same semantics as the CPU reference: keys t >= len[b] take no part at all, every query row
 * is computed, a row with len == 0 outputs zeros with lse = 0 and gets zero gradients, and
 * the dropout index of probability (b,h,i,j) is ((b*NH+h)*T+i)*T+j.
 *
 * The backward recomputes the probabilities from q, k and lse:
 *   dV = Pd^T dO;  dP = dropout'(dO V^T);  dS = P * (dP - rowsum(P * dP)) * scale;
 *   dQ = dS K;     dK = dS^T Q.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/cuda/bgemm.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/flash_attention.cuh"

#define ROWS_PER_BLOCK 4 /* one warp per score row */

__device__ __forceinline__ int valid_keys(const int *lengths, int b, int T) {
    return min(max(lengths[b], 0), T);
}

/* Row r = (b*NH+h)*T + i of S becomes dropout(softmax(S row over keys < L)); lse[r] kept. */
__global__ void softmax_fwd_kernel(float *S, float *lse, const int *lengths, int rows, int NH,
                                   int T, Dropout d) {
    int r = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (r >= rows) return;
    int L = valid_keys(lengths, r / T / NH, T);
    float *s = S + (size_t)r * T;
    if (L == 0) {
        if (lane == 0) lse[r] = 0.0f;
        return;
    }
    float max = -INFINITY;
    for (int j = lane; j < L; j += 32) max = fmaxf(max, s[j]);
    max = warp_max(max);
    float sum = 0.0f;
    for (int j = lane; j < L; j += 32) sum += expf(s[j] - max);
    sum = warp_sum(sum);
    float inv = 1.0f / sum;
    for (int j = lane; j < L; j += 32)
        s[j] = expf(s[j] - max) * inv * dropout_scale(d, (uint64_t)r * T + j);
    if (lane == 0) lse[r] = max + logf(sum);
}

/* From the scores S and dP of row r: P = exp(S - lse); S becomes Pd = dropout(P) and dP
 * becomes dS = P * (dropout'(dP) - rowsum(P * dropout'(dP))) * scale. */
__global__ void softmax_bwd_kernel(float *S, float *dP, const float *lse, const int *lengths,
                                   int rows, int NH, int T, float scale, Dropout d) {
    int r = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (r >= rows) return;
    int L = valid_keys(lengths, r / T / NH, T);
    float *s = S + (size_t)r * T, *dp = dP + (size_t)r * T;
    float l = lse[r], rowdot = 0.0f;
    for (int j = lane; j < L; j += 32)
        rowdot += expf(s[j] - l) * dp[j] * dropout_scale(d, (uint64_t)r * T + j);
    rowdot = warp_sum(rowdot);
    for (int j = lane; j < L; j += 32) {
        float p = expf(s[j] - l), keep = dropout_scale(d, (uint64_t)r * T + j);
        dp[j] = p * (dp[j] * keep - rowdot) * scale;
        s[j] = p * keep;
    }
}

/* strides of the q/k/v blocks of qkv [B,T,3C] and of [B,T,C] and [B,NH,T,T] tensors */
typedef struct {
    long long qkv_b, qkv_row; /* q at h*HD, k at C + h*HD, v at 2C + h*HD */
    long long o_b, o_row;
    long long s_b, s_h, s_row;
} Strides;

static Strides strides_of(int T, int NH, int HD) {
    long long C = (long long)NH * HD;
    Strides s = {T * 3 * C, 3 * C, T * C, C, (long long)NH * T * T, (long long)T * T, T};
    return s;
}

/* S = scale * Q K^T: rows all T queries, columns keys < L */
static void scores(float *S, const bf16 *qkv, const int *lengths, int B, int T, int NH, int HD) {
    Strides s = strides_of(T, NH, HD);
    long long C = (long long)NH * HD;
    BGemm g = bgemm_heads(T, T, HD, BG_LIMIT_N, NH, T,
                          bg_rows(s.qkv_b, HD, s.qkv_row), /* A = Q (i = query, k = d) */
                          bg_cols(s.qkv_b, HD, s.qkv_row), /* B = K^T (k = d, j = key) */
                          bg_rows(s.s_b, s.s_h, s.s_row),  /* C = S */
                          1.0f / sqrtf((float)HD));
    bgemm(S, qkv, qkv + C, lengths, B * NH, g);
}

static void simple_attention_fwd(bf16 *out, float *lse, const bf16 *qkv, const int *lengths,
                                 int B, int T, int NH, int HD, Dropout d) {
    if (B <= 0 || T <= 0) return;
    Strides s = strides_of(T, NH, HD);
    long long C = (long long)NH * HD;
    float *S = (float *)cuda_scratch(SCRATCH_ATTN_P, (size_t)B * NH * T * T * sizeof(float));
    scores(S, qkv, lengths, B, T, NH, HD);
    int rows = B * NH * T;
    softmax_fwd_kernel<<<ceil_div(rows, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK>>>(
        S, lse, lengths, rows, NH, T, d);
    KERNEL_CHECK();
    /* O = Pd V over keys < L (zero when L = 0) */
    BGemm g = bgemm_heads(T, HD, T, BG_LIMIT_K, NH, T,
                          bg_rows(s.s_b, s.s_h, s.s_row),  /* A = Pd (i = query, k = key) */
                          bg_rows(s.qkv_b, HD, s.qkv_row), /* B = V (k = key, j = d) */
                          bg_rows(s.o_b, HD, s.o_row),     /* C = out */
                          1.0f);
    bgemm(out, (const float *)S, qkv + 2 * C, lengths, B * NH, g);
}

/* rowsum(P * dP) comes from P itself, so `out` is not needed here */
static void simple_attention_bwd(bf16 *dqkv, const bf16 *dout, const float *lse, const bf16 *qkv,
                                 const int *lengths, int B, int T, int NH, int HD, Dropout d) {
    if (B <= 0 || T <= 0) return;
    Strides s = strides_of(T, NH, HD);
    long long C = (long long)NH * HD;
    size_t bytes = (size_t)B * NH * T * T * sizeof(float);
    float *P = (float *)cuda_scratch(SCRATCH_ATTN_P, bytes);
    float *dP = (float *)cuda_scratch(SCRATCH_ATTN_DP, bytes);
    int batches = B * NH;

    scores(P, qkv, lengths, B, T, NH, HD);
    BGemm g_dp = bgemm_heads(T, T, HD, BG_LIMIT_N, NH, T,
                             bg_rows(s.o_b, HD, s.o_row),     /* A = dO (i = query, k = d) */
                             bg_cols(s.qkv_b, HD, s.qkv_row), /* B = V^T (k = d, j = key) */
                             bg_rows(s.s_b, s.s_h, s.s_row),  /* C = dP */
                             1.0f);
    bgemm(dP, dout, qkv + 2 * C, lengths, batches, g_dp);

    int rows = B * NH * T;
    softmax_bwd_kernel<<<ceil_div(rows, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK>>>(
        P, dP, lse, lengths, rows, NH, T, 1.0f / sqrtf((float)HD), d);
    KERNEL_CHECK();

    /* dV = Pd^T dO: rows are keys (zero past L), the sum runs over all queries */
    BGemm g_dv = bgemm_heads(T, HD, T, BG_LIMIT_M, NH, T,
                             bg_cols(s.s_b, s.s_h, s.s_row),  /* A = Pd^T (i = key, k = query) */
                             bg_rows(s.o_b, HD, s.o_row),     /* B = dO (k = query, j = d) */
                             bg_rows(s.qkv_b, HD, s.qkv_row), /* C = dV */
                             1.0f);
    bgemm(dqkv + 2 * C, (const float *)P, dout, lengths, batches, g_dv);
    /* dQ = dS K: all query rows, the sum over keys < L */
    BGemm g_dq = bgemm_heads(T, HD, T, BG_LIMIT_K, NH, T,
                             bg_rows(s.s_b, s.s_h, s.s_row),  /* A = dS (i = query, k = key) */
                             bg_rows(s.qkv_b, HD, s.qkv_row), /* B = K (k = key, j = d) */
                             bg_rows(s.qkv_b, HD, s.qkv_row), /* C = dQ */
                             1.0f);
    bgemm(dqkv, (const float *)dP, qkv + C, lengths, batches, g_dq);
    /* dK = dS^T Q: rows are keys (zero past L), the sum over all queries */
    BGemm g_dk = bgemm_heads(T, HD, T, BG_LIMIT_M, NH, T,
                             bg_cols(s.s_b, s.s_h, s.s_row),  /* A = dS^T (i = key, k = query) */
                             bg_rows(s.qkv_b, HD, s.qkv_row), /* B = Q (k = query, j = d) */
                             bg_rows(s.qkv_b, HD, s.qkv_row), /* C = dK */
                             1.0f);
    bgemm(dqkv + C, (const float *)dP, qkv, lengths, batches, g_dk);
}

/* read on every call, so a program may switch paths at run time (the benchmark does) */
static int simple_requested(void) {
    const char *s = getenv("KOE_CUDA_SIMPLE_ATTENTION");
    return s && s[0] && s[0] != '0';
}

void cuda_attention_fwd(Act *out, float *lse, const Act *qkv, const int *lengths, int B, int T,
                        int NH, int HD, Dropout d) {
    if (!simple_requested() &&
        flash_attention_fwd((bf16 *)out, lse, (const bf16 *)qkv, lengths, B, T, NH, HD, d))
        return;
    simple_attention_fwd((bf16 *)out, lse, (const bf16 *)qkv, lengths, B, T, NH, HD, d);
}

void cuda_attention_bwd(Act *dqkv, const Act *dout, const Act *out, const float *lse,
                        const Act *qkv, const int *lengths, int B, int T, int NH, int HD,
                        Dropout d) {
    if (!simple_requested() &&
        flash_attention_bwd((bf16 *)dqkv, (const bf16 *)dout, (const bf16 *)out, lse,
                            (const bf16 *)qkv, lengths, B, T, NH, HD, d))
        return;
    simple_attention_bwd((bf16 *)dqkv, (const bf16 *)dout, lse, (const bf16 *)qkv, lengths, B, T,
                         NH, HD, d);
}

/* packed batches have no simple path: an unsupported head size is a programming error */
static void packed_unsupported(int HD) {
    fprintf(stderr, "kernels/cuda/attention.cu: packed attention needs head size 32, 64 or 128 "
                    "and 16-byte aligned tensors (head size %d)\n", HD);
    abort();
}

void cuda_attention_packed_fwd(Act *out, float *lse, const Act *qkv, const int *offsets, int B,
                               int N, int T, int NH, int HD, Dropout d) {
    if (!flash_attention_packed_fwd((bf16 *)out, lse, (const bf16 *)qkv, offsets, B, N, T, NH,
                                    HD, d))
        packed_unsupported(HD);
}

void cuda_attention_packed_bwd(Act *dqkv, const Act *dout, const Act *out, const float *lse,
                               const Act *qkv, const int *offsets, int B, int N, int T, int NH,
                               int HD, Dropout d) {
    if (!flash_attention_packed_bwd((bf16 *)dqkv, (const bf16 *)dout, (const bf16 *)out, lse,
                                    (const bf16 *)qkv, offsets, B, N, T, NH, HD, d))
        packed_unsupported(HD);
}
