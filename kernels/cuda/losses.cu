/* Loss ops fused with their gradient (torch's mean reduction), each one block: the batches
 * are small (rows x classes of a head), and one block makes the loss a deterministic
 * reduction written on the device without a host sync. Each adds its loss to *loss and
 * writes d(loss * grad_scale)/d(input) in bf16. */
#include "kernels/cuda/common.cuh"

#define IGNORE_INDEX (-100)
#define LOSS_THREADS 1024

/* Mean softmax cross-entropy over rows whose label != ignore; row n's logits are
 * x[n*row_stride + c*col_stride]. With clamp_max >= 0 labels are first clamped to
 * [0, clamp_max] (QA). Adds loss_factor * mean to *loss; gradients scaled by
 * grad_scale / count; no counted row gives zero loss and gradient. */
__global__ void __launch_bounds__(LOSS_THREADS)
    cross_entropy_kernel(float *loss, bf16 *g, const bf16 *x, const int *labels, int N, int C,
                         long long row_stride, int col_stride, int ignore, int clamp_max,
                         float grad_scale, float loss_factor) {
    __shared__ float shared[32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;

    float count = 0.0f;
    for (int n = threadIdx.x; n < N; n += blockDim.x) {
        int label = labels[n];
        if (clamp_max >= 0) label = min(max(label, 0), clamp_max);
        count += label != ignore;
    }
    count = block_sum(count, shared);
    float gscale = count > 0.0f ? grad_scale / count : 0.0f;

    float warp_loss = 0.0f; /* rows n = warp, warp + nwarps, ... in order */
    for (int n = warp; n < N; n += nwarps) {
        int label = labels[n];
        if (clamp_max >= 0) label = min(max(label, 0), clamp_max);
        const bf16 *xn = x + n * row_stride;
        bf16 *gn = g + n * row_stride;
        if (label == ignore) {
            for (int c = lane; c < C; c += 32) gn[(size_t)c * col_stride] = __float2bfloat16(0.0f);
            continue;
        }
        if (label < 0 || label >= C) { /* the host validates labels: a programming error */
            if (lane == 0) printf("cuda cross_entropy: label %d outside [0, %d)\n", label, C);
            __trap();
        }
        float max = -INFINITY;
        for (int c = lane; c < C; c += 32) max = fmaxf(max, ld(xn + (size_t)c * col_stride));
        max = warp_max(max);
        float sum = 0.0f;
        for (int c = lane; c < C; c += 32) sum += expf(ld(xn + (size_t)c * col_stride) - max);
        float lse = max + logf(warp_sum(sum));
        for (int c = lane; c < C; c += 32) {
            float p = expf(ld(xn + (size_t)c * col_stride) - lse);
            gn[(size_t)c * col_stride] = __float2bfloat16((p - (c == label)) * gscale);
        }
        warp_loss += lse - ld(xn + (size_t)label * col_stride);
    }
    float total = block_sum(lane == 0 ? warp_loss : 0.0f, shared);
    if (threadIdx.x == 0 && count > 0.0f) *loss += loss_factor * total / count;
}

void cuda_cross_entropy(float *loss, Act *dlogits, const Act *logits, const int *labels, int N,
                        int C, float grad_scale) {
    if (N <= 0) return;
    cross_entropy_kernel<<<1, LOSS_THREADS>>>(loss, (bf16 *)dlogits, (const bf16 *)logits,
                                              labels, N, C, C, 1, IGNORE_INDEX, -1, grad_scale,
                                              1.0f);
    KERNEL_CHECK();
}

/* HF's QA head: positions clamped to [0, T], T ignored; loss = (CE(start) + CE(end)) / 2
 * with start logits in column 0 and end logits in column 1 of each [T,2] block. */
void cuda_qa_loss(float *loss, Act *dlogits, const Act *logits, const int *start_pos,
                  const int *end_pos, int B, int T, float grad_scale) {
    if (B <= 0) return;
    bf16 *g = (bf16 *)dlogits;
    const bf16 *x = (const bf16 *)logits;
    cross_entropy_kernel<<<1, LOSS_THREADS>>>(loss, g, x, start_pos, B, T, 2LL * T, 2, T, T,
                                              0.5f * grad_scale, 0.5f);
    KERNEL_CHECK();
    cross_entropy_kernel<<<1, LOSS_THREADS>>>(loss, g + 1, x + 1, end_pos, B, T, 2LL * T, 2, T,
                                              T, 0.5f * grad_scale, 0.5f);
    KERNEL_CHECK();
}

/* mean squared error of pred[N] against fp32 targets */
__global__ void __launch_bounds__(LOSS_THREADS)
    mse_kernel(float *loss, bf16 *dpred, const bf16 *pred, const float *targets, int N,
               float grad_scale) {
    __shared__ float shared[32];
    float sum = 0.0f;
    for (int n = threadIdx.x; n < N; n += blockDim.x) {
        float diff = ld(pred + n) - targets[n];
        sum += diff * diff;
        dpred[n] = __float2bfloat16(2.0f * diff / N * grad_scale);
    }
    sum = block_sum(sum, shared);
    if (threadIdx.x == 0) *loss += sum / N;
}

void cuda_mse(float *loss, Act *dpred, const Act *pred, const float *targets, int N,
              float grad_scale) {
    if (N <= 0) return;
    mse_kernel<<<1, LOSS_THREADS>>>(loss, (bf16 *)dpred, (const bf16 *)pred, targets, N,
                                    grad_scale);
    KERNEL_CHECK();
}
