/* BERT/ELECTRA embeddings: word + position (+ token type) gathers, LayerNorm, dropout; one
 * warp per token. With wtt but no types every token has type 0; without wtt no token-type
 * row is added (as the CPU reference). The gathered sum stays in fp32 and is recomputed in
 * the backward. The table gradients are scattered with fp32 atomics (repeated ids make the
 * order of additions vary between runs); the LayerNorm parameter gradients are
 * deterministic column sums. */
#include "kernels/cuda/common.cuh"

#define ROWS_PER_BLOCK 4

struct Gather {
    const bf16 *wte, *wpe, *wtt;
    const int *ids, *pos, *types;
    int C;
    /* the rows of token n */
    __device__ void rows(int n, const bf16 **we, const bf16 **pe, const bf16 **te) const {
        *we = wte + (size_t)ids[n] * C;
        *pe = wpe + (size_t)pos[n] * C;
        *te = wtt ? wtt + (size_t)(types ? types[n] : 0) * C : NULL;
    }
    __device__ float x(const bf16 *we, const bf16 *pe, const bf16 *te, int c) const {
        float v = ld(we + c) + ld(pe + c);
        return te ? v + ld(te + c) : v;
    }
};

__global__ void embeddings_fwd_kernel(bf16 *out, float *mean, float *rstd, Gather g,
                                      const bf16 *ln_w, const bf16 *ln_b, int N, float eps,
                                      Dropout d) {
    int n = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (n >= N) return;
    int C = g.C;
    size_t row = (size_t)n * C;
    const bf16 *we, *pe, *te;
    g.rows(n, &we, &pe, &te);
    float sum = 0.0f;
    for (int c = lane; c < C; c += 32) sum += g.x(we, pe, te, c);
    float mu = warp_sum(sum) / C;
    float var = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float diff = g.x(we, pe, te, c) - mu;
        var += diff * diff;
    }
    float rs = rsqrtf(warp_sum(var) / C + eps);
    for (int c = lane; c < C; c += 32) {
        float y = (g.x(we, pe, te, c) - mu) * rs * ld(ln_w + c) + ld(ln_b + c);
        out[row + c] = __float2bfloat16(y * dropout_scale(d, row + c));
    }
    if (lane == 0) {
        mean[n] = mu;
        rstd[n] = rs;
    }
}

void cuda_embeddings_fwd(Act *out, float *mean, float *rstd, const int *ids, const int *pos,
                         const int *types, const Act *wte, const Act *wpe, const Act *wtt,
                         const Act *ln_w, const Act *ln_b, int N, int C, float eps, Dropout d) {
    if (N <= 0) return;
    Gather g = {(const bf16 *)wte, (const bf16 *)wpe, (const bf16 *)wtt, ids, pos, types, C};
    embeddings_fwd_kernel<<<ceil_div(N, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK>>>(
        (bf16 *)out, mean, rstd, g, (const bf16 *)ln_w, (const bf16 *)ln_b, N, eps, d);
    KERNEL_CHECK();
}

/* dln_w += dy * xhat, dln_b += dy with dy = dropout'(dout) */
struct EmbLnParamGrad {
    Gather g;
    const bf16 *dout;
    const float *mean, *rstd;
    Dropout d;
    __device__ void operator()(int n, int c, float *v) const {
        size_t i = (size_t)n * g.C + c;
        const bf16 *we, *pe, *te;
        g.rows(n, &we, &pe, &te);
        float dy = ld(dout + i) * dropout_scale(d, i);
        v[0] = dy * (g.x(we, pe, te, c) - mean[n]) * rstd[n];
        v[1] = dy;
    }
};

/* dx = LayerNorm backward of dy; scattered into the rows of the three tables */
__global__ void embeddings_bwd_kernel(float *dwte, float *dwpe, float *dwtt, Gather g,
                                      const bf16 *dout, const float *mean, const float *rstd,
                                      const bf16 *ln_w, int N, Dropout d) {
    int n = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (n >= N) return;
    int C = g.C;
    size_t row = (size_t)n * C;
    const bf16 *we, *pe, *te;
    g.rows(n, &we, &pe, &te);
    float mu = mean[n], rs = rstd[n];
    float g_sum = 0.0f, gx_sum = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float gw = ld(dout + row + c) * dropout_scale(d, row + c) * ld(ln_w + c);
        g_sum += gw;
        gx_sum += gw * (g.x(we, pe, te, c) - mu) * rs;
    }
    float g_mean = warp_sum(g_sum) / C, gx_mean = warp_sum(gx_sum) / C;
    float *dwe = dwte + (size_t)g.ids[n] * C, *dpe = dwpe + (size_t)g.pos[n] * C;
    float *dte = dwtt ? dwtt + (size_t)(g.types ? g.types[n] : 0) * C : NULL;
    for (int c = lane; c < C; c += 32) {
        float xhat = (g.x(we, pe, te, c) - mu) * rs;
        float gw = ld(dout + row + c) * dropout_scale(d, row + c) * ld(ln_w + c);
        float dx = rs * (gw - g_mean - xhat * gx_mean);
        atomicAdd(dwe + c, dx);
        atomicAdd(dpe + c, dx);
        if (dte) atomicAdd(dte + c, dx);
    }
}

void cuda_embeddings_bwd(float *dwte, float *dwpe, float *dwtt, float *dln_w, float *dln_b,
                         const Act *dout, const float *mean, const float *rstd, const int *ids,
                         const int *pos, const int *types, const Act *wte, const Act *wpe,
                         const Act *wtt, const Act *ln_w, int N, int C, Dropout d) {
    if (N <= 0) return;
    Gather g = {(const bf16 *)wte, (const bf16 *)wpe, (const bf16 *)wtt, ids, pos, types, C};
    EmbLnParamGrad f = {g, (const bf16 *)dout, mean, rstd, d};
    colsum_add<2>(dln_w, dln_b, f, N, C);
    embeddings_bwd_kernel<<<ceil_div(N, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK>>>(
        dwte, dwpe, dwtt, g, (const bf16 *)dout, mean, rstd, (const bf16 *)ln_w, N, d);
    KERNEL_CHECK();
}
