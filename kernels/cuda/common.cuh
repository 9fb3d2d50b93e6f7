/* Shared pieces of the CUDA backend: error checks, grid sizing, the bf16 activation type, small
 * device helpers (loads, warp/block sums), grow-only scratch buffers, a deterministic
 * column-sum used by every bias/LayerNorm parameter gradient, and the op declarations that
 * backend.cu gathers into the Backend table. Semantics of every op: kernels/ops.h; the math
 * the CPU reference must agree on (GELU, dropout): kernels/math_shared.h.
 *
 * Everything runs on the per-thread default stream (compiled with --default-stream
 * per-thread), so ops are ordered among themselves, cudaMemcpy in to_host waits for them, and
 * a sequence of ops can be captured into a CUDA graph; no op synchronises the device.
 */
#ifndef KOE_CUDA_COMMON_CUH
#define KOE_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/math_shared.h"
#include "kernels/ops.h"

typedef __nv_bfloat16 bf16; /* the CUDA backend's Act */

/* ---- error checks: print file:line and abort, the way every op reports a CUDA failure ---- */

static inline void cuda_check(cudaError_t err, const char *file, int line) {
    if (err != cudaSuccess) {
        fprintf(stderr, "%s:%d: CUDA error: %s\n", file, line, cudaGetErrorString(err));
        abort();
    }
}
#define CUDA_CHECK(call) cuda_check((call), __FILE__, __LINE__)
#define KERNEL_CHECK() cuda_check(cudaGetLastError(), __FILE__, __LINE__)

static inline unsigned ceil_div(size_t a, size_t b) { return (unsigned)((a + b - 1) / b); }

/* the grid of a grid-stride loop over n elements in blocks of 256 threads: a block per 256
 * elements, at most `cap` blocks */
#define GRID_STRIDE_THREADS 256
static inline unsigned grid_stride_blocks(size_t n, unsigned cap = 65535) {
    size_t blocks = (n + GRID_STRIDE_THREADS - 1) / GRID_STRIDE_THREADS;
    return blocks < cap ? (unsigned)blocks : cap;
}

/* ---- device helpers ---- */

__device__ __forceinline__ float ld(const bf16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ float ld(const float *p) { return *p; }
__device__ __forceinline__ void st(bf16 *p, float v) { *p = __float2bfloat16(v); }
__device__ __forceinline__ void st(float *p, float v) { *p = v; }

/* butterfly sums: a fixed order, so results are the same run after run */
__device__ __forceinline__ float warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

/* Sum over a block whose size is a multiple of 32 (at most 1024); every thread gets the
 * result. `shared` holds 32 floats. Deterministic: warps are added in index order. */
__device__ __forceinline__ float block_sum(float v, float *shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    v = warp_sum(v);
    __syncthreads(); /* `shared` may still be read from a previous call */
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < nwarps; w++) total += shared[w];
    return total;
}

/* ---- scratch: one grow-only device buffer per use, never freed in steady state ---- */

enum {
    SCRATCH_COLSUM,  /* column-sum partials (bias and LayerNorm parameter gradients) */
    SCRATCH_ATTN_P,  /* attention scores / probabilities [B,NH,T,T] fp32 */
    SCRATCH_ATTN_DP, /* attention dP / dS [B,NH,T,T] fp32 */
    SCRATCH_NORM,    /* global_norm_sq partials */
    SCRATCH_SLOTS
};
/* a buffer of at least `bytes` for `slot`; grows (after a device sync) only when asked for
 * more than ever before */
void *cuda_scratch(int slot, size_t bytes);

/* ---- deterministic column sums: out_k[c] += sum_n f(n, c)[k], k < NOUT (1 or 2) ----
 * Pass 1: block (x = 32 columns, y = 8 row lanes) sums a chunk of rows into partials
 * [chunk][NOUT][C]; pass 2 adds the chunks in order. f may also write element (n, c): each
 * element is visited exactly once. */
#define COLSUM_ROWS_PER_CHUNK 256

template <int NOUT, typename F>
__global__ void colsum_partial_kernel(float *partials, F f, int N, int C) {
    __shared__ float part[NOUT][8][32];
    int c = blockIdx.x * 32 + threadIdx.x;
    int n0 = blockIdx.y * COLSUM_ROWS_PER_CHUNK;
    int n1 = min(n0 + COLSUM_ROWS_PER_CHUNK, N);
    float acc[NOUT];
    for (int k = 0; k < NOUT; k++) acc[k] = 0.0f;
    if (c < C) {
        for (int n = n0 + threadIdx.y; n < n1; n += 8) {
            float v[NOUT];
            f(n, c, v);
            for (int k = 0; k < NOUT; k++) acc[k] += v[k];
        }
    }
    for (int k = 0; k < NOUT; k++) part[k][threadIdx.y][threadIdx.x] = acc[k];
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int k = 0; k < NOUT; k++) {
            float s = 0.0f;
            for (int y = 0; y < 8; y++) s += part[k][y][threadIdx.x];
            partials[((size_t)blockIdx.y * NOUT + k) * C + c] = s;
        }
    }
}

/* pass 2 (backend.cu): out_k[c] += sum over chunks, in order */
void colsum_finish(float *out0, float *out1, const float *partials, int chunks, int nout, int C);

template <int NOUT, typename F>
void colsum_add(float *out0, float *out1, F f, int N, int C) {
    if (N <= 0 || C <= 0) return;
    int chunks = (int)ceil_div((size_t)N, COLSUM_ROWS_PER_CHUNK);
    float *partials = (float *)cuda_scratch(SCRATCH_COLSUM,
                                            (size_t)chunks * NOUT * C * sizeof(float));
    colsum_partial_kernel<NOUT, F><<<dim3(ceil_div(C, 32), chunks), dim3(32, 8)>>>(partials, f,
                                                                                   N, C);
    KERNEL_CHECK();
    colsum_finish(out0, out1, partials, chunks, NOUT, C);
}

/* ---- ops (one .cu file per concern), gathered by backend.cu ---- */

void cuda_matmul_init(void);
void cuda_matmul_fwd(Act *out, Act *pre, const Act *inp, const Act *w, const Act *b, int M,
                     int K, int N, Activation act);
void cuda_matmul_bwd(Act *dinp, float *dw, float *db, Act *dout, const Act *pre,
                     const Act *inp, const Act *w, int M, int K, int N, Activation act,
                     int accumulate);

void cuda_embeddings_fwd(Act *out, float *mean, float *rstd, const int *ids, const int *pos,
                         const int *types, const Act *wte, const Act *wpe, const Act *wtt,
                         const Act *ln_w, const Act *ln_b, int N, int C, float eps, Dropout d);
void cuda_embeddings_bwd(float *dwte, float *dwpe, float *dwtt, float *dln_w, float *dln_b,
                         const Act *dout, const float *mean, const float *rstd, const int *ids,
                         const int *pos, const int *types, const Act *wte, const Act *wpe,
                         const Act *wtt, const Act *ln_w, int N, int C, Dropout d);

void cuda_attention_fwd(Act *out, float *lse, const Act *qkv, const int *lengths, int B, int T,
                        int NH, int HD, Dropout d);
void cuda_attention_bwd(Act *dqkv, const Act *dout, const Act *out, const float *lse,
                        const Act *qkv, const int *lengths, int B, int T, int NH, int HD,
                        Dropout d);
void cuda_attention_packed_fwd(Act *out, float *lse, const Act *qkv, const int *offsets, int B,
                               int N, int T, int NH, int HD, Dropout d);
void cuda_attention_packed_bwd(Act *dqkv, const Act *dout, const Act *out, const float *lse,
                               const Act *qkv, const int *offsets, int B, int N, int T, int NH,
                               int HD, Dropout d);

void cuda_residual_layernorm_fwd(Act *out, Act *pre, float *mean, float *rstd, const Act *x,
                                 const Act *residual, const Act *w, const Act *b, int N, int C,
                                 float eps, Dropout d);
void cuda_residual_layernorm_bwd(Act *dx, Act *dresidual, float *dw, float *db,
                                 const Act *dout, const Act *pre, const float *mean,
                                 const float *rstd, const Act *w, int N, int C, Dropout d);

void cuda_dropout_fwd(Act *out, const Act *inp, size_t n, Dropout d);
void cuda_dropout_bwd(Act *dinp, const Act *dout, size_t n, Dropout d);
void cuda_cls_gather_fwd(Act *out, const Act *inp, const int *first, int B, int C);
void cuda_cls_gather_bwd(Act *dinp, const Act *dout, const int *first, int B, int N, int C);

void cuda_cross_entropy(float *loss, Act *dlogits, const Act *logits, const int *labels, int N,
                        int C, float grad_scale);
void cuda_mse(float *loss, Act *dpred, const Act *pred, const float *targets, int N,
              float grad_scale);
void cuda_qa_loss(float *loss, Act *dlogits, const Act *logits, const int *start_pos,
                  const int *end_pos, int B, int T, float grad_scale);

void cuda_global_norm_sq(float *out, const float *grads, size_t n);
void cuda_adamw(float *params, Act *params_act, const float *grads, float *m, float *v,
                size_t n, const float *norm_sq, AdamWArgs a);

#endif
