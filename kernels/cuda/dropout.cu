/* Standalone dropout (element index = flat index) and the [CLS] row gather of the heads. */
#include "kernels/cuda/common.cuh"

__global__ void dropout_kernel(bf16 *out, const bf16 *inp, size_t n, Dropout d) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16(ld(inp + i) * dropout_scale(d, i));
}

void cuda_dropout_fwd(Act *out, const Act *inp, size_t n, Dropout d) {
    if (n == 0) return;
    dropout_kernel<<<grid_stride_blocks(n), GRID_STRIDE_THREADS>>>((bf16 *)out,
                                                                  (const bf16 *)inp, n, d);
    KERNEL_CHECK();
}

/* the same mask as the forward, regenerated from (seed, stream, index) */
void cuda_dropout_bwd(Act *dinp, const Act *dout, size_t n, Dropout d) {
    cuda_dropout_fwd(dinp, dout, n, d);
}

/* out[b, c] = inp[first[b], c], or (scatter) dinp[first[b], c] = dout[b, c] */
__global__ void cls_gather_kernel(bf16 *dst, const bf16 *src, const int *first, int B, int C,
                                  int scatter) {
    size_t n = (size_t)B * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t row = (size_t)first[i / C] * C + i % C;
        if (scatter) dst[row] = src[i];
        else dst[i] = src[row];
    }
}

void cuda_cls_gather_fwd(Act *out, const Act *inp, const int *first, int B, int C) {
    if (B <= 0 || C <= 0) return;
    cls_gather_kernel<<<grid_stride_blocks((size_t)B * C), GRID_STRIDE_THREADS>>>(
        (bf16 *)out, (const bf16 *)inp, first, B, C, 0);
    KERNEL_CHECK();
}

void cuda_cls_gather_bwd(Act *dinp, const Act *dout, const int *first, int B, int N, int C) {
    if (N <= 0 || C <= 0) return;
    CUDA_CHECK(cudaMemsetAsync(dinp, 0, (size_t)N * C * sizeof(bf16)));
    if (B <= 0) return;
    cls_gather_kernel<<<grid_stride_blocks((size_t)B * C), GRID_STRIDE_THREADS>>>(
        (bf16 *)dinp, (const bf16 *)dout, first, B, C, 1);
    KERNEL_CHECK();
}
