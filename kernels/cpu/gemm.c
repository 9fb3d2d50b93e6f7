/* Every GEMM of the CPU backend goes through here.
 *
 * OpenMP is the only thread pool at work: OpenBLAS runs single-threaded (backend_cpu() sets
 * that) and the rows of C are split across the OpenMP threads. Mixing OpenBLAS's own pthread
 * pool with OpenMP regions makes the two pools' idle threads spin against each other on the
 * same cores (about a third of the training step went to sched_yield and OpenMP spin-waits
 * before this).
 */
#include <cblas.h>
#include <omp.h>

#include "kernels/cpu/cpu_ops.h"

/* Row-major C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C, as cblas_sgemm. Called outside a
 * parallel region it splits M over the threads (small GEMMs, the heads', stay on one);
 * inside one it runs on the calling thread. */
void cpu_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
#pragma omp parallel if (!omp_in_parallel() && M >= 64)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int m0 = (int)((long)M * t / nt), m1 = (int)((long)M * (t + 1) / nt);
        /* row m of op(A) is row m of A, or column m of A when transposed */
        const float *a = A + (trans_a ? (size_t)m0 : (size_t)m0 * lda);
        if (m1 > m0)
            cblas_sgemm(CblasRowMajor, ta, tb, m1 - m0, N, K, alpha, a, lda, B, ldb, beta,
                        C + (size_t)m0 * ldc, ldc);
    }
}
