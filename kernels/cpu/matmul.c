/* Linear layers as HF's: out[M,N] = act(inp[M,K] @ w[N,K]^T + b), GEMMs by cpu_sgemm; the
 * activations are kernels/math_shared.h's, the CUDA backend's too. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/util.h"
#include "kernels/cpu/cpu_ops.h"

/* out = act(z) over n elements. GELU, the FFN's activation, gets a loop of its own so that
 * it vectorises (see erff in cpu_ops.h): a switch inside the loop keeps a loop scalar. */
static void activation_fwd(float *out, const float *z, size_t n, Activation act) {
    if (act == ACT_GELU) {
#pragma omp parallel for simd
        for (size_t i = 0; i < n; i++) out[i] = koe_gelu(z[i]);
        return;
    }
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) out[i] = koe_activate(z[i], act);
}

/* dz *= act'(pre) over n elements, GELU vectorised as above */
static void activation_bwd(float *dz, const float *pre, size_t n, Activation act) {
    if (act == ACT_GELU) {
#pragma omp parallel for simd
        for (size_t i = 0; i < n; i++) dz[i] *= koe_gelu_grad(pre[i]);
        return;
    }
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) dz[i] *= koe_activate_grad(pre[i], act);
}

/* db[N] += sum over rows of dz[M,N]; each thread owns a slice of columns and walks rows in
 * order, so memory is read contiguously and nothing races. */
static void add_column_sums(float *db, const float *dz, int M, int N) {
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int n0 = (int)((long)N * t / nt), n1 = (int)((long)N * (t + 1) / nt);
        float *sum = xcalloc((size_t)(n1 - n0), sizeof(float));
        for (int m = 0; m < M; m++) {
            const float *row = dz + (size_t)m * N;
#pragma omp simd
            for (int n = n0; n < n1; n++) sum[n - n0] += row[n];
        }
        for (int n = n0; n < n1; n++) db[n] += sum[n - n0];
        free(sum);
    }
}

void cpu_matmul_fwd(Act *out_, Act *pre_, const Act *inp, const Act *w, const Act *b_, int M,
                    int K, int N, Activation act) {
    float *out = out_;
    const float *b = b_;
    float *z = act == ACT_NONE ? out : (float *)pre_; /* where the GEMM result goes */
    if (b) {
#pragma omp parallel for
        for (int m = 0; m < M; m++) memcpy(z + (size_t)m * N, b, (size_t)N * sizeof(float));
    }
    cpu_sgemm(0, 1, M, N, K, 1.0f, inp, K, w, K, b ? 1.0f : 0.0f, z, N);
    if (act != ACT_NONE) activation_fwd(out, z, (size_t)M * N, act);
}

void cpu_matmul_bwd(Act *dinp, float *dw, float *db, Act *dout_, const Act *pre_,
                    const Act *inp, const Act *w, int M, int K, int N, Activation act,
                    int accumulate) {
    float *dz = dout_;
    const float *pre = pre_;
    if (act != ACT_NONE) activation_bwd(dz, pre, (size_t)M * N, act);
    if (dinp)
        cpu_sgemm(0, 0, M, K, N, 1.0f, dz, N, w, K, accumulate ? 1.0f : 0.0f, dinp, K);
    cpu_sgemm(1, 0, N, K, M, 1.0f, dz, N, inp, K, 1.0f, dw, K);
    if (db) add_column_sums(db, dz, M, N);
}
