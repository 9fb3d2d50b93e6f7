/* residual + LayerNorm, forward and backward, as torch.nn.LayerNorm (biased variance, eps
 * inside the square root). One warp per row, fp32 statistics over the bf16 values that are
 * stored in `pre` (the ones the backward sees). The parameter gradients are deterministic
 * column sums (common.cuh). */
#include "kernels/cuda/common.cuh"

#define ROWS_PER_BLOCK 4 /* warps per block, one row each */

/* pre = dropout(x) + residual, rounded to bf16; out = LayerNorm(pre) * w + b */
__global__ void residual_layernorm_fwd_kernel(bf16 *out, bf16 *pre, float *mean, float *rstd,
                                              const bf16 *x, const bf16 *residual,
                                              const bf16 *w, const bf16 *b, int N, int C,
                                              float eps, Dropout d) {
    int n = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (n >= N) return;
    size_t row = (size_t)n * C;
    float sum = 0.0f;
    for (int c = lane; c < C; c += 32) {
        bf16 v = __float2bfloat16(ld(x + row + c) * dropout_scale(d, row + c) +
                                  ld(residual + row + c));
        pre[row + c] = v;
        sum += __bfloat162float(v);
    }
    float mu = warp_sum(sum) / C;
    float var = 0.0f;
    for (int c = lane; c < C; c += 32) { /* each lane reads back only what it wrote */
        float diff = ld(pre + row + c) - mu;
        var += diff * diff;
    }
    float rs = rsqrtf(warp_sum(var) / C + eps);
    for (int c = lane; c < C; c += 32)
        out[row + c] = __float2bfloat16((ld(pre + row + c) - mu) * rs * ld(w + c) + ld(b + c));
    if (lane == 0) {
        mean[n] = mu;
        rstd[n] = rs;
    }
}

void cuda_residual_layernorm_fwd(Act *out, Act *pre, float *mean, float *rstd, const Act *x,
                                 const Act *residual, const Act *w, const Act *b, int N, int C,
                                 float eps, Dropout d) {
    if (N <= 0) return;
    residual_layernorm_fwd_kernel<<<ceil_div(N, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK>>>(
        (bf16 *)out, (bf16 *)pre, mean, rstd, (const bf16 *)x, (const bf16 *)residual,
        (const bf16 *)w, (const bf16 *)b, N, C, eps, d);
    KERNEL_CHECK();
}

/* dw += dout * xhat, db += dout */
struct LnParamGrad {
    const bf16 *dout, *pre;
    const float *mean, *rstd;
    int C;
    __device__ void operator()(int n, int c, float *v) const {
        size_t i = (size_t)n * C + c;
        float dy = ld(dout + i);
        v[0] = dy * (ld(pre + i) - mean[n]) * rstd[n];
        v[1] = dy;
    }
};

/* With xhat = (x-mean)*rstd and g = dy*w: dres = rstd * (g - mean(g) - xhat * mean(g*xhat));
 * dx = dropout'(dres). */
__global__ void residual_layernorm_bwd_kernel(bf16 *dx, bf16 *dresidual, const bf16 *dout,
                                              const bf16 *pre, const float *mean,
                                              const float *rstd, const bf16 *w, int N, int C,
                                              Dropout d) {
    int n = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (n >= N) return;
    size_t row = (size_t)n * C;
    float mu = mean[n], rs = rstd[n];
    float g_sum = 0.0f, gx_sum = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float g = ld(dout + row + c) * ld(w + c);
        g_sum += g;
        gx_sum += g * (ld(pre + row + c) - mu) * rs;
    }
    float g_mean = warp_sum(g_sum) / C, gx_mean = warp_sum(gx_sum) / C;
    for (int c = lane; c < C; c += 32) {
        float xhat = (ld(pre + row + c) - mu) * rs;
        float dres = rs * (ld(dout + row + c) * ld(w + c) - g_mean - xhat * gx_mean);
        dresidual[row + c] = __float2bfloat16(dres);
        dx[row + c] = __float2bfloat16(dres * dropout_scale(d, row + c));
    }
}

void cuda_residual_layernorm_bwd(Act *dx, Act *dresidual, float *dw, float *db,
                                 const Act *dout, const Act *pre, const float *mean,
                                 const float *rstd, const Act *w, int N, int C, Dropout d) {
    if (N <= 0) return;
    /* parameter gradients first: they read dout, which dx might overwrite */
    LnParamGrad f = {(const bf16 *)dout, (const bf16 *)pre, mean, rstd, C};
    colsum_add<2>(dw, db, f, N, C);
    residual_layernorm_bwd_kernel<<<ceil_div(N, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK>>>(
        (bf16 *)dx, (bf16 *)dresidual, (const bf16 *)dout, (const bf16 *)pre, mean, rstd,
        (const bf16 *)w, N, C, d);
    KERNEL_CHECK();
}
