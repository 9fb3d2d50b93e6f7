/* A plain tiled GEMM over a (batch, head) grid with arbitrary strides and fp32 accumulation:
 *
 *   C[z](i, j) = alpha * sum_{k < Kz} A[z](i, k) B[z](k, j) + beta * C[z](i, j)
 *
 * for i < M, j < N, z = b * NH + h, every operand addressed by its own strides, so
 * transposes and the interleaved q/k/v heads of the attention are just strides. With a
 * `lengths` array, each of M, N, K may be flagged to be min(lengths[b], T) instead; rows and
 * columns past that limit read as zeros, so they come out as beta * C (zero for beta = 0).
 *
 * Used by the simple attention and as the matmul fallback when cuBLASLt offers no algorithm.
 * 64x64 output tiles, 16-deep k steps, 256 threads each owning a 4x4 strided micro-tile.
 */
#ifndef KOE_CUDA_BGEMM_CUH
#define KOE_CUDA_BGEMM_CUH

#include "kernels/cuda/common.cuh"

/* the kernel's argument; build it with bgemm_plain or bgemm_heads */
typedef struct {
    int M, N, K;             /* nominal sizes */
    int lim_m, lim_n, lim_k; /* 1: that size is min(lengths[b], T) */
    int NH, T;               /* z = b * NH + h; T clamps lengths */
    long long a_b, a_h, a_i, a_k; /* A strides: batch, head, row, reduction */
    long long b_b, b_h, b_k, b_j; /* B strides: batch, head, reduction, column */
    long long c_b, c_h, c_i, c_j; /* C strides: batch, head, row, column */
    float alpha, beta;
} BGemm;

/* one operand: where (b, h)'s matrix starts, and the strides of its first and second index
 * (A: i, k; B: k, j; C: i, j) */
typedef struct {
    long long batch, head, first, second;
} BgOperand;

/* a row-major matrix with row stride ld, (b, h)'s at batch * b + head * h; bg_cols reads the
 * same memory as its transpose */
static inline BgOperand bg_rows(long long batch, long long head, long long ld) {
    return BgOperand{batch, head, ld, 1};
}
static inline BgOperand bg_cols(long long batch, long long head, long long ld) {
    return BgOperand{batch, head, 1, ld};
}

/* which sizes are min(lengths[b], T) rather than nominal */
enum { BG_LIMIT_M = 1, BG_LIMIT_N = 2, BG_LIMIT_K = 4 };

/* C = alpha A B for every (b, h) of NH heads, the `limits` sizes cut at min(lengths[b], T) */
static inline BGemm bgemm_heads(int M, int N, int K, int limits, int NH, int T, BgOperand a,
                                BgOperand b, BgOperand c, float alpha) {
    return BGemm{M, N, K, (limits & BG_LIMIT_M) != 0, (limits & BG_LIMIT_N) != 0,
                 (limits & BG_LIMIT_K) != 0, NH, T,
                 a.batch, a.head, a.first, a.second, b.batch, b.head, b.first, b.second,
                 c.batch, c.head, c.first, c.second, alpha, 0.0f};
}

/* one product C[M,N] = A[M,K] B[K,N] + beta C */
static inline BGemm bgemm_plain(int M, int N, int K, BgOperand a, BgOperand b, BgOperand c,
                                float beta) {
    BGemm g = bgemm_heads(M, N, K, 0, 1, 0, a, b, c, 1.0f);
    g.beta = beta;
    return g;
}

#define BG_TILE 64
#define BG_KSTEP 16

template <typename TA, typename TB, typename TC>
__global__ void __launch_bounds__(256)
    bgemm_kernel(TC *C, const TA *A, const TB *B, const int *lengths, BGemm g) {
    __shared__ float As[BG_KSTEP][BG_TILE + 1]; /* As[k][i] */
    __shared__ float Bs[BG_KSTEP][BG_TILE + 1]; /* Bs[k][j] */
    int z = blockIdx.z, b = z / g.NH, h = z % g.NH;
    int L = 0;
    if (lengths) L = min(max(lengths[b], 0), g.T);
    int Mz = g.lim_m ? L : g.M, Nz = g.lim_n ? L : g.N, Kz = g.lim_k ? L : g.K;
    A += b * g.a_b + h * g.a_h;
    B += b * g.b_b + h * g.b_h;
    C += b * g.c_b + h * g.c_h;
    int i0 = blockIdx.y * BG_TILE, j0 = blockIdx.x * BG_TILE;
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;

    float acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) acc[r][c] = 0.0f;

    for (int k0 = 0; k0 < Kz; k0 += BG_KSTEP) {
        for (int e = threadIdx.x; e < BG_TILE * BG_KSTEP; e += 256) {
            int r = e / BG_KSTEP, kk = e % BG_KSTEP, k = k0 + kk;
            int i = i0 + r, j = j0 + r;
            As[kk][r] = (i < Mz && k < Kz) ? ld(A + i * g.a_i + k * g.a_k) : 0.0f;
            Bs[kk][r] = (j < Nz && k < Kz) ? ld(B + k * g.b_k + j * g.b_j) : 0.0f;
        }
        __syncthreads();
        for (int kk = 0; kk < BG_KSTEP; kk++) {
            float a[4], bv[4];
            for (int r = 0; r < 4; r++) a[r] = As[kk][ty + 16 * r];
            for (int c = 0; c < 4; c++) bv[c] = Bs[kk][tx + 16 * c];
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < 4; c++) acc[r][c] += a[r] * bv[c];
        }
        __syncthreads();
    }

    for (int r = 0; r < 4; r++) {
        int i = i0 + ty + 16 * r;
        if (i >= g.M) continue;
        for (int c = 0; c < 4; c++) {
            int j = j0 + tx + 16 * c;
            if (j >= g.N) continue;
            TC *dst = C + i * g.c_i + j * g.c_j;
            float v = g.alpha * acc[r][c];
            if (g.beta != 0.0f) v += g.beta * ld(dst);
            st(dst, v);
        }
    }
}

/* one launch over `batches` = B * NH blocks of the grid's z dimension */
template <typename TA, typename TB, typename TC>
void bgemm(TC *C, const TA *A, const TB *B, const int *lengths, int batches, BGemm g) {
    if (g.M <= 0 || g.N <= 0 || batches <= 0) return;
    dim3 grid(ceil_div(g.N, BG_TILE), ceil_div(g.M, BG_TILE), batches);
    bgemm_kernel<TA, TB, TC><<<grid, 256>>>(C, A, B, lengths, g);
    KERNEL_CHECK();
}

#endif
