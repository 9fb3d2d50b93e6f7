/* The optimizer: the global gradient norm (a deterministic two-pass reduction) and
 * transformers 3.x AdamW with torch's clip_grad_norm_ folded in, the clip factor read from
 * the device so the host never waits. */
#include <math.h>

#include "kernels/cuda/common.cuh"

#define NORM_THREADS 256
#define NORM_MAX_BLOCKS 1024

/* pass 1: block k sums the squares of a grid-strided share into partials[k] */
__global__ void sum_squares_kernel(float *partials, const float *x, size_t n) {
    __shared__ float shared[32];
    float s = 0.0f;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        s += x[i] * x[i];
    s = block_sum(s, shared);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

/* pass 2: one block adds the partials, always in the same order */
__global__ void sum_partials_kernel(float *out, const float *partials, int count) {
    __shared__ float shared[32];
    float s = 0.0f;
    for (int i = threadIdx.x; i < count; i += blockDim.x) s += partials[i];
    s = block_sum(s, shared);
    if (threadIdx.x == 0) *out = s;
}

void cuda_global_norm_sq(float *out, const float *grads, size_t n) {
    /* the grid depends on n only, so the order of additions is fixed */
    size_t want = (n + NORM_THREADS * 8 - 1) / (NORM_THREADS * 8);
    int blocks = want < 1 ? 1 : want > NORM_MAX_BLOCKS ? NORM_MAX_BLOCKS : (int)want;
    float *partials = (float *)cuda_scratch(SCRATCH_NORM, NORM_MAX_BLOCKS * sizeof(float));
    sum_squares_kernel<<<blocks, NORM_THREADS>>>(partials, grads, n);
    KERNEL_CHECK();
    sum_partials_kernel<<<1, NORM_THREADS>>>(out, partials, blocks);
    KERNEL_CHECK();
}

/* m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= step_size * m/(sqrt(v)+eps);
 * then p -= decay * p; g is the gradient times the clip factor. */
__global__ void adamw_kernel(float *params, bf16 *params_act, const float *grads, float *m,
                             float *v, size_t n, const float *norm_sq, AdamWArgs a,
                             float step_size, float decay) {
    float clip = 1.0f;
    if (a.max_grad_norm > 0.0f) {
        float coef = a.max_grad_norm / (sqrtf(*norm_sq) + 1e-6f);
        if (coef < 1.0f) clip = coef;
    }
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float g = grads[i] * clip;
        float mi = a.beta1 * m[i] + (1.0f - a.beta1) * g;
        float vi = a.beta2 * v[i] + (1.0f - a.beta2) * g * g;
        float p = params[i] - step_size * (mi / (sqrtf(vi) + a.eps));
        if (a.weight_decay > 0.0f) p -= decay * p;
        m[i] = mi;
        v[i] = vi;
        params[i] = p;
        if (params_act) params_act[i] = __float2bfloat16(p);
    }
}

void cuda_adamw(float *params, Act *params_act, const float *grads, float *m, float *v,
                size_t n, const float *norm_sq, AdamWArgs a) {
    if (n == 0) return;
    /* computed in double like transformers' Python floats, applied in fp32 */
    float step_size =
        (float)(a.lr * sqrt(1.0 - pow(a.beta2, a.step)) / (1.0 - pow(a.beta1, a.step)));
    float decay = (float)((double)a.lr * a.weight_decay);
    adamw_kernel<<<grid_stride_blocks(n, 65535 * 8), GRID_STRIDE_THREADS>>>(
        params, (bf16 *)params_act, grads, m, v, n, norm_sq, a, step_size, decay);
    KERNEL_CHECK();
}
