/* Standalone dropout (element index = flat index) and the [CLS] row gather of the heads. */
#include "kernels/cuda/common.cuh"

static unsigned grid_for(size_t n) {
    unsigned blocks = ceil_div(n, 256);
    return blocks < 65535 ? blocks : 65535;
}

__global__ void dropout_kernel(bf16 *out, const bf16 *inp, size_t n, Dropout d) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16(ld(inp + i) * dropout_scale(d, i));
}

void cuda_dropout_fwd(Act *out, const Act *inp, size_t n, Dropout d) {
    if (n == 0) return;
    dropout_kernel<<<grid_for(n), 256>>>((bf16 *)out, (const bf16 *)inp, n, d);
    KERNEL_CHECK();
}

/* the same mask as the forward, regenerated from (seed, stream, index) */
void cuda_dropout_bwd(Act *dinp, const Act *dout, size_t n, Dropout d) {
    cuda_dropout_fwd(dinp, dout, n, d);
}

/* out[b, c] = inp[b, 0, c] */
__global__ void cls_gather_fwd_kernel(bf16 *out, const bf16 *inp, int B, int T, int C) {
    size_t n = (size_t)B * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = inp[(i / C) * T * C + i % C];
}

/* dinp[b, t, c] = t == 0 ? dout[b, c] : 0 */
__global__ void cls_gather_bwd_kernel(bf16 *dinp, const bf16 *dout, int B, int T, int C) {
    size_t n = (size_t)B * T * C, seq = (size_t)T * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t b = i / seq, rest = i % seq;
        dinp[i] = rest < (size_t)C ? dout[b * C + rest] : __float2bfloat16(0.0f);
    }
}

void cuda_cls_gather_fwd(Act *out, const Act *inp, int B, int T, int C) {
    if (B <= 0 || C <= 0) return;
    cls_gather_fwd_kernel<<<grid_for((size_t)B * C), 256>>>((bf16 *)out, (const bf16 *)inp, B,
                                                            T, C);
    KERNEL_CHECK();
}

void cuda_cls_gather_bwd(Act *dinp, const Act *dout, int B, int T, int C) {
    if (B <= 0 || T <= 0 || C <= 0) return;
    cls_gather_bwd_kernel<<<grid_for((size_t)B * T * C), 256>>>((bf16 *)dinp,
                                                                (const bf16 *)dout, B, T, C);
    KERNEL_CHECK();
}
