/* Fused flash-style attention: the T x T scores never leave the chip.
 *
 * Semantics are kernels/ops.h's (and kernels/cpu/attention.c's): q, k, v are read straight
 * from the fused qkv [*,3*NH*HD] (bf16), scores are scaled by 1/sqrt(HD), keys j >= len[b]
 * take no part, a row with len == 0 gives a zero output with lse 0 and zero gradients,
 * dropout multiplies probability (b,h,i,j) by koe_keep(seed, stream, ((b*NH+h)*T+i)*T+j, p)
 * / (1-p). A padded batch (sequence b at rows b*T) computes all T query rows, padding ones
 * too; a packed one (sequence b at rows offsets[b] ..) computes only its len[b] real rows.
 * Grids are (ceil(T/64), NH, B) either way; blocks past a packed sequence's end return.
 *
 * Tiles: a block has 4 warps and works on 64 rows (queries, or keys for dK/dV); each warp owns
 * 16 of them. The products run on tensor cores through WMMA (bf16 16x16x16, fp32 accumulate),
 * operands staged in shared memory; the softmax and the dropout are fp32 in between.
 *
 * Forward, per block of 64 queries, over key tiles of 64 keys < L (online softmax):
 *   S = scale * Q K^T;  m' = max(m, rowmax S);  P = exp(S - m');  l = l e^(m-m') + rowsum P;
 *   O = O e^(m-m') + (P * M) V,  M the scaled keep mask;   finally O /= l, lse = m + log l.
 * The row sum l is over the un-dropped P, so O = dropout(softmax(S)) V exactly as the CPU.
 *
 * Backward, with Pd = P * M the dropped probabilities and O = Pd V:
 *   dV = Pd^T dO;  dPd = dO V^T;  dP = dPd * M;  dS = P * (dP - D) * scale;
 *   dQ = dS K;     dK = dS^T Q,
 * where D_i = sum_j P_ij dP_ij. With dropout that sum is still dO_i . O_i:
 *   sum_j P_ij dP_ij = sum_j P_ij M_ij dPd_ij = sum_j Pd_ij (dO_i . V_j)
 *                    = dO_i . (sum_j Pd_ij V_j) = dO_i . O_i,
 * so a small pre-kernel computes D from dO and the saved O, and P is recomputed from q, k and
 * lse as exp(S - lse). Two kernels, no atomics (deterministic): one per block of 64 keys for
 * dK, dV (looping over all query blocks), one per block of 64 queries for dQ (looping over
 * the key blocks < L). D lives in the SCRATCH_ATTN_DP buffer ([B,NH,T] floats here).
 *
 * Loads are 16-byte vectors, so the tensors must be 16-byte aligned (checked; the caller falls
 * back to the simple path otherwise). Rows past T or past L are zero-filled in shared memory.
 */
#include <math.h>
#include <mma.h>
#include <stdint.h>

#include "kernels/cuda/flash_attention.cuh"

using namespace nvcuda;

#define FA_ROWS 64   /* rows (queries or keys) per block, and keys/queries per inner tile */
#define FA_WARPS 4   /* each warp owns 16 of the block's rows */
#define FA_THREADS (32 * FA_WARPS)
#define FA_LDT (FA_ROWS + 4) /* fp32 score tile row stride (floats) */
#define FA_LDP (FA_ROWS + 8) /* bf16 probability tile row stride (elements) */

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> FragA;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> FragB;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> FragBt; /* X^T */
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> FragC;

/* Row strides of bf16 [64][HD] tiles and fp32 [64][HD] staging; the padding spreads banks and
 * keeps every 16x16 fragment 32-byte aligned, as WMMA requires. */
template <int HD> struct Tile {
    static constexpr int LD = HD + 8;
    static constexpr int LDF = HD + 4;
    static constexpr size_t BYTES = (size_t)FA_ROWS * LD * sizeof(bf16);
};
static constexpr size_t SCORE_BYTES = (size_t)FA_ROWS * FA_LDT * sizeof(float);
static constexpr size_t PROB_BYTES = (size_t)FA_ROWS * FA_LDP * sizeof(bf16);
static constexpr size_t ROWVEC_BYTES = FA_ROWS * sizeof(float);
static constexpr size_t SMEM_LIMIT = 163 * 1024; /* dynamic shared memory per block, sm_80 */

/* Where a batch's sequences lie: padded when offsets == NULL (lengths per row), else packed */
typedef struct {
    const int *lengths, *offsets;
    int T;  /* padded length: the grid's extent and the dropout index's row stride */
    int N;  /* rows of qkv: B*T padded, offsets[B] packed */
    int NH;
} Seqs;

/* One (sequence, head): its first row, its query rows (T padded, L packed), its valid keys L,
 * and where row 0 of its lse (and D) sits: [B,NH,T] padded, [NH,N] packed. */
typedef struct {
    long long row0, lse0;
    int rows, L;
} Seq;

__device__ __forceinline__ Seq seq_of(const Seqs &s, int b, int h) {
    Seq q;
    if (s.offsets) {
        q.row0 = s.offsets[b];
        q.rows = q.L = min(max(s.offsets[b + 1] - s.offsets[b], 0), s.T);
        q.lse0 = (long long)h * s.N + q.row0;
    } else {
        q.row0 = (long long)b * s.T;
        q.rows = s.T;
        q.L = min(max(s.lengths[b], 0), s.T);
        q.lse0 = ((long long)b * s.NH + h) * s.T;
    }
    return q;
}

/* A Dropout with its step read once per block (it lives in device memory, see ops.h) */
typedef struct {
    float p, scale;
    uint64_t seed, stream;
} Drop;

__device__ __forceinline__ Drop drop_of(Dropout d) {
    Drop r = {d.p, koe_kept_scale(d.p), d.seed, 0};
    if (d.p > 0.0f) r.stream = koe_step_stream(d.stream, d.step);
    return r;
}

/* the multiplier of probability `index`: 0 when dropped, 1/(1-p) when kept (as the CPU) */
__device__ __forceinline__ float keep_scale(const Drop &d, uint64_t index) {
    if (d.p <= 0.0f) return 1.0f;
    return koe_keep(d.seed, d.stream, index, d.p) ? d.scale : 0.0f;
}

/* tile[r][:] = src row r (stride ld elements) for r < valid, zeros for valid <= r < 64 */
template <int HD>
__device__ __forceinline__ void load_tile(bf16 *tile, const bf16 *src, long long ld, int valid) {
    constexpr int CHUNKS = HD / 8; /* 16-byte vectors per row */
    for (int e = threadIdx.x; e < FA_ROWS * CHUNKS; e += FA_THREADS) {
        int r = e / CHUNKS, c = e % CHUNKS;
        uint4 v = make_uint4(0u, 0u, 0u, 0u);
        if (r < valid) v = *reinterpret_cast<const uint4 *>(src + r * ld + c * 8);
        *reinterpret_cast<uint4 *>(tile + r * Tile<HD>::LD + c * 8) = v;
    }
}

/* dst row r (stride ld) = bf16(stage row r) for the warp's 16 staged fp32 rows r < valid
 * (rows past T are never written) */
template <int HD>
__device__ __forceinline__ void store_warp_rows(bf16 *dst, long long ld, const float *stage,
                                                int valid) {
    constexpr int PAIRS = HD / 2;
    int lane = threadIdx.x % 32;
    for (int e = lane; e < 16 * PAIRS; e += 32) {
        int r = e / PAIRS, c = 2 * (e % PAIRS);
        if (r >= valid) break; /* e grows with r */
        const float *s = stage + r * Tile<HD>::LDF + c;
        *reinterpret_cast<__nv_bfloat162 *>(dst + r * ld + c) = __floats2bfloat162_rn(s[0], s[1]);
    }
}

/* zero rows [0, n) of a [*, HD] slice with row stride ld (whole block) */
template <int HD>
__device__ __forceinline__ void zero_rows(bf16 *dst, long long ld, int n) {
    constexpr int CHUNKS = HD / 8;
    for (int e = threadIdx.x; e < n * CHUNKS; e += FA_THREADS)
        *reinterpret_cast<uint4 *>(dst + (e / CHUNKS) * ld + (e % CHUNKS) * 8) =
            make_uint4(0u, 0u, 0u, 0u);
}

/* S[16][64] (fp32, stride FA_LDT) = A[16][HD] X^T for the 64 rows of X ([64][HD] tile):
 * A's fragments are given, X is read as a column-major B operand */
template <int HD>
__device__ __forceinline__ void scores_16x64(float *S, const FragA *a, const bf16 *X) {
#pragma unroll
    for (int n = 0; n < FA_ROWS / 16; n++) {
        FragC acc;
        wmma::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int k = 0; k < HD / 16; k++) {
            FragBt bt;
            wmma::load_matrix_sync(bt, X + n * 16 * Tile<HD>::LD + k * 16, Tile<HD>::LD);
            wmma::mma_sync(acc, a[k], bt, acc);
        }
        wmma::store_matrix_sync(S + n * 16, acc, FA_LDT, wmma::mem_row_major);
    }
}

template <int HD>
__device__ __forceinline__ void load_frags_a(FragA *a, const bf16 *tile16) {
#pragma unroll
    for (int k = 0; k < HD / 16; k++)
        wmma::load_matrix_sync(a[k], tile16 + k * 16, Tile<HD>::LD);
}

/* acc[n] += P[16][64] (bf16, stride FA_LDP) X[64][HD] for every 16-column slice n */
template <int HD>
__device__ __forceinline__ void mma_16x64_by_tile(FragC *acc, const bf16 *P, const bf16 *X) {
#pragma unroll
    for (int k = 0; k < FA_ROWS / 16; k++) {
        FragA a;
        wmma::load_matrix_sync(a, P + k * 16, FA_LDP);
#pragma unroll
        for (int n = 0; n < HD / 16; n++) {
            FragB bx;
            wmma::load_matrix_sync(bx, X + k * 16 * Tile<HD>::LD + n * 16, Tile<HD>::LD);
            wmma::mma_sync(acc[n], a, bx, acc[n]);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* forward: grid (ceil(T/64), NH, B) */

template <int HD> struct FwdSmem {
    static constexpr size_t Q = 0, K = Q + Tile<HD>::BYTES, V = K + Tile<HD>::BYTES,
                            S = V + Tile<HD>::BYTES, P = S + SCORE_BYTES, O = P + PROB_BYTES,
                            INV = O + (size_t)FA_ROWS * Tile<HD>::LDF * sizeof(float),
                            TOTAL = INV + ROWVEC_BYTES;
    static_assert(TOTAL <= SMEM_LIMIT, "fits an sm_80 block");
};

template <int HD>
__global__ void __launch_bounds__(FA_THREADS)
    flash_fwd_kernel(bf16 *out, float *lse, const bf16 *qkv, Seqs seqs, float scale,
                     Dropout dropout) {
    extern __shared__ __align__(128) unsigned char smem[];
    Drop d = drop_of(dropout);
    typedef FwdSmem<HD> SM;
    bf16 *Qs = (bf16 *)(smem + SM::Q), *Ks = (bf16 *)(smem + SM::K), *Vs = (bf16 *)(smem + SM::V);
    float *Ss = (float *)(smem + SM::S), *Os = (float *)(smem + SM::O);
    float *inv_l = (float *)(smem + SM::INV);
    bf16 *Ps = (bf16 *)(smem + SM::P);
    constexpr int LD = Tile<HD>::LD, LDF = Tile<HD>::LDF;

    int b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * FA_ROWS;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int T = seqs.T, NH = seqs.NH;
    Seq sq = seq_of(seqs, b, h);
    int L = sq.L, rows = min(FA_ROWS, sq.rows - i0);
    if (rows <= 0) return; /* past a packed sequence */
    long long C = (long long)NH * HD, ld = 3 * C;
    const bf16 *q = qkv + sq.row0 * ld + h * HD, *k = q + C, *v = q + 2 * C;
    bf16 *o = out + (sq.row0 + i0) * C + h * HD;
    float *lse_row = lse + sq.lse0 + i0;

    if (L == 0) { /* no keys: zero output, lse 0 */
        zero_rows<HD>(o, C, rows);
        for (int r = threadIdx.x; r < rows; r += FA_THREADS) lse_row[r] = 0.0f;
        return;
    }
    load_tile<HD>(Qs, q + (long long)i0 * ld, ld, rows);
    for (int e = threadIdx.x; e < FA_ROWS * LDF; e += FA_THREADS) Os[e] = 0.0f;
    __syncthreads();
    FragA qa[HD / 16];
    load_frags_a<HD>(qa, Qs + warp * 16 * LD);

    /* softmax state: lanes 2r and 2r+1 share row r of the warp's 16, columns by parity */
    int r = lane / 2, half = lane % 2, row = warp * 16 + r;
    float m = -INFINITY, l = 0.0f;
    float *srow = Ss + row * FA_LDT, *orow = Os + row * LDF;
    bf16 *prow = Ps + row * FA_LDP;
    int i = min(i0 + row, sq.rows - 1); /* rows past the end: computed on zeros, not stored */
    for (int j0 = 0; j0 < L; j0 += FA_ROWS) {
        int kv = min(FA_ROWS, L - j0); /* >= 1 */
        __syncthreads(); /* every warp is done with the previous K, V */
        load_tile<HD>(Ks, k + (long long)j0 * ld, ld, kv);
        load_tile<HD>(Vs, v + (long long)j0 * ld, ld, kv);
        __syncthreads();
        scores_16x64<HD>(Ss + warp * 16 * FA_LDT, qa, Ks);
        __syncwarp();

        float mx = -INFINITY;
        for (int c = half; c < kv; c += 2) mx = fmaxf(mx, srow[c] * scale);
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        float m_new = fmaxf(m, mx); /* finite: the tile has a valid key */
        float alpha = expf(m - m_new); /* 0 on the first tile */
        float sum = 0.0f;
        uint64_t drop0 = koe_attention_drop_index(b, h, i, j0, NH, T);
        for (int c = half; c < FA_ROWS; c += 2) {
            float p = 0.0f;
            if (c < kv) {
                p = expf(srow[c] * scale - m_new);
                sum += p;
                p *= keep_scale(d, drop0 + c);
            }
            prow[c] = __float2bfloat16(p);
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l = l * alpha + sum;
        m = m_new;
        for (int c = half; c < HD; c += 2) orow[c] *= alpha;
        __syncwarp();

        FragC acc[HD / 16];
        float *o16 = Os + warp * 16 * LDF;
#pragma unroll
        for (int n = 0; n < HD / 16; n++)
            wmma::load_matrix_sync(acc[n], o16 + n * 16, LDF, wmma::mem_row_major);
        mma_16x64_by_tile<HD>(acc, Ps + warp * 16 * FA_LDP, Vs);
#pragma unroll
        for (int n = 0; n < HD / 16; n++)
            wmma::store_matrix_sync(o16 + n * 16, acc[n], LDF, wmma::mem_row_major);
        __syncwarp();
    }

    /* l >= 1: the row maximum contributes exp(0) */
    if (half == 0) {
        inv_l[row] = 1.0f / l;
        if (i0 + row < sq.rows) lse_row[row] = m + logf(l);
    }
    __syncwarp();
    constexpr int PAIRS = HD / 2;
    int valid = min(16, rows - warp * 16);
    for (int e = lane; e < 16 * PAIRS; e += 32) {
        int rr = e / PAIRS, c = 2 * (e % PAIRS);
        if (rr >= valid) break;
        const float *s = Os + (warp * 16 + rr) * LDF + c;
        float inv = inv_l[warp * 16 + rr];
        *reinterpret_cast<__nv_bfloat162 *>(o + (long long)(warp * 16 + rr) * C + c) =
            __floats2bfloat162_rn(s[0] * inv, s[1] * inv);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* backward pre-kernel: D = dO . O per (row, head), laid out as lse; one warp per pair */

__global__ void flash_bwd_dot_kernel(float *D, const bf16 *dout, const bf16 *out, Seqs seqs,
                                     int HD) {
    long long w = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32, NH = seqs.NH, T = seqs.T;
    if (w >= (long long)seqs.N * NH) return;
    int h = (int)(w % NH);
    long long r = w / NH; /* row of out */
    const bf16 *a = dout + w * HD, *c = out + w * HD; /* row r, head h */
    float s = 0.0f;
    for (int e = lane; e < HD; e += 32) s += ld(a + e) * ld(c + e);
    s = warp_sum(s);
    if (lane == 0)
        D[seqs.offsets ? h * (long long)seqs.N + r : ((r / T) * NH + h) * T + r % T] = s;
}

/* ------------------------------------------------------------------------------------------ */
/* backward dK, dV: grid (ceil(T/64), NH, B), a block per 64 keys */

template <int HD> struct DkdvSmem {
    static constexpr size_t K = 0, V = K + Tile<HD>::BYTES, Q = V + Tile<HD>::BYTES,
                            DO = Q + Tile<HD>::BYTES, S = DO + Tile<HD>::BYTES,
                            DP = S + SCORE_BYTES, PD = DP + SCORE_BYTES, DS = PD + PROB_BYTES,
                            LSE = DS + PROB_BYTES, DD = LSE + ROWVEC_BYTES,
                            TOTAL = DD + ROWVEC_BYTES;
    static_assert(TOTAL <= SMEM_LIMIT, "fits an sm_80 block");
    /* the final fp32 [64][HD+4] staging reuses S and DP */
    static_assert((size_t)FA_ROWS * Tile<HD>::LDF * sizeof(float) <= 2 * SCORE_BYTES,
                  "staging fits in S + DP");
};

template <int HD>
__global__ void __launch_bounds__(FA_THREADS)
    flash_bwd_dkdv_kernel(bf16 *dqkv, const bf16 *dout, const bf16 *qkv, const float *lse,
                          const float *D, Seqs seqs, float scale, Dropout dropout) {
    extern __shared__ __align__(128) unsigned char smem[];
    Drop d = drop_of(dropout);
    typedef DkdvSmem<HD> SM;
    bf16 *Ks = (bf16 *)(smem + SM::K), *Vs = (bf16 *)(smem + SM::V);
    bf16 *Qs = (bf16 *)(smem + SM::Q), *dOs = (bf16 *)(smem + SM::DO);
    float *Ss = (float *)(smem + SM::S), *dPs = (float *)(smem + SM::DP);
    bf16 *Pds = (bf16 *)(smem + SM::PD), *dSs = (bf16 *)(smem + SM::DS);
    float *lse_s = (float *)(smem + SM::LSE), *D_s = (float *)(smem + SM::DD);
    constexpr int LD = Tile<HD>::LD, LDF = Tile<HD>::LDF;

    int b = blockIdx.z, h = blockIdx.y, j0 = blockIdx.x * FA_ROWS;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int T = seqs.T, NH = seqs.NH;
    Seq sq = seq_of(seqs, b, h);
    int rows = min(FA_ROWS, sq.rows - j0), kv = min(FA_ROWS, sq.L - j0);
    if (rows <= 0) return; /* past a packed sequence */
    long long C = (long long)NH * HD, ld = 3 * C;
    const bf16 *q = qkv + sq.row0 * ld + h * HD, *k = q + C, *v = q + 2 * C;
    const bf16 *dO = dout + sq.row0 * C + h * HD;
    bf16 *dk = dqkv + (sq.row0 + j0) * ld + C + h * HD, *dv = dk + C;
    const float *lse_bh = lse + sq.lse0, *D_bh = D + sq.lse0;

    if (kv <= 0) { /* keys past L: zero gradients */
        zero_rows<HD>(dk, ld, rows);
        zero_rows<HD>(dv, ld, rows);
        return;
    }
    load_tile<HD>(Ks, k + (long long)j0 * ld, ld, kv);
    load_tile<HD>(Vs, v + (long long)j0 * ld, ld, kv);
    FragC dK[HD / 16], dV[HD / 16];
#pragma unroll
    for (int n = 0; n < HD / 16; n++) {
        wmma::fill_fragment(dK[n], 0.0f);
        wmma::fill_fragment(dV[n], 0.0f);
    }
    float *S16 = Ss + warp * 16 * FA_LDT, *dP16 = dPs + warp * 16 * FA_LDT;
    bf16 *Pd16 = Pds + warp * 16 * FA_LDP, *dS16 = dSs + warp * 16 * FA_LDP;

    for (int i0 = 0; i0 < sq.rows; i0 += FA_ROWS) { /* every query attends to these keys */
        int qv = min(FA_ROWS, sq.rows - i0);
        __syncthreads(); /* every warp is done with the previous Q, dO */
        load_tile<HD>(Qs, q + (long long)i0 * ld, ld, qv);
        load_tile<HD>(dOs, dO + (long long)i0 * C, C, qv);
        for (int c = threadIdx.x; c < FA_ROWS; c += FA_THREADS) {
            lse_s[c] = c < qv ? lse_bh[i0 + c] : 0.0f;
            D_s[c] = c < qv ? D_bh[i0 + c] : 0.0f;
        }
        __syncthreads();

        /* the warp's 16 keys against the 64 queries: S^T = K Q^T, dPd^T = V dO^T */
        FragA a[HD / 16];
        load_frags_a<HD>(a, Ks + warp * 16 * LD);
        scores_16x64<HD>(S16, a, Qs);
        load_frags_a<HD>(a, Vs + warp * 16 * LD);
        scores_16x64<HD>(dP16, a, dOs);
        __syncwarp();

        for (int e = lane; e < 16 * FA_ROWS; e += 32) {
            int rr = e / FA_ROWS, c = e % FA_ROWS; /* key warp*16+rr, query i0+c */
            float pd = 0.0f, ds = 0.0f;
            if (warp * 16 + rr < kv && c < qv) {
                float p = expf(S16[rr * FA_LDT + c] * scale - lse_s[c]);
                int j = j0 + warp * 16 + rr;
                float keep = keep_scale(d, koe_attention_drop_index(b, h, i0 + c, j, NH, T));
                pd = p * keep;
                ds = p * (dP16[rr * FA_LDT + c] * keep - D_s[c]) * scale;
            }
            Pd16[rr * FA_LDP + c] = __float2bfloat16(pd);
            dS16[rr * FA_LDP + c] = __float2bfloat16(ds);
        }
        __syncwarp();

        mma_16x64_by_tile<HD>(dV, Pd16, dOs); /* dV += Pd^T dO */
        mma_16x64_by_tile<HD>(dK, dS16, Qs);  /* dK += dS^T Q */
    }

    __syncthreads(); /* the staging overwrites other warps' S/dP rows */
    float *stage = Ss + warp * 16 * LDF; /* fp32 [16][HD+4] per warp */
    int valid = min(16, rows - warp * 16);
#pragma unroll
    for (int n = 0; n < HD / 16; n++)
        wmma::store_matrix_sync(stage + n * 16, dV[n], LDF, wmma::mem_row_major);
    __syncwarp();
    store_warp_rows<HD>(dv + (long long)warp * 16 * ld, ld, stage, valid);
    __syncwarp();
#pragma unroll
    for (int n = 0; n < HD / 16; n++)
        wmma::store_matrix_sync(stage + n * 16, dK[n], LDF, wmma::mem_row_major);
    __syncwarp();
    store_warp_rows<HD>(dk + (long long)warp * 16 * ld, ld, stage, valid);
}

/* ------------------------------------------------------------------------------------------ */
/* backward dQ: grid (ceil(T/64), NH, B), a block per 64 queries */

template <int HD> struct DqSmem {
    static constexpr size_t Q = 0, DO = Q + Tile<HD>::BYTES, K = DO + Tile<HD>::BYTES,
                            V = K + Tile<HD>::BYTES, S = V + Tile<HD>::BYTES,
                            DP = S + SCORE_BYTES, DS = DP + SCORE_BYTES,
                            LSE = DS + PROB_BYTES, DD = LSE + ROWVEC_BYTES,
                            TOTAL = DD + ROWVEC_BYTES;
    static_assert(TOTAL <= SMEM_LIMIT, "fits an sm_80 block");
    static_assert((size_t)FA_ROWS * Tile<HD>::LDF * sizeof(float) <= 2 * SCORE_BYTES,
                  "staging fits in S + DP");
};

template <int HD>
__global__ void __launch_bounds__(FA_THREADS)
    flash_bwd_dq_kernel(bf16 *dqkv, const bf16 *dout, const bf16 *qkv, const float *lse,
                        const float *D, Seqs seqs, float scale, Dropout dropout) {
    extern __shared__ __align__(128) unsigned char smem[];
    Drop d = drop_of(dropout);
    typedef DqSmem<HD> SM;
    bf16 *Qs = (bf16 *)(smem + SM::Q), *dOs = (bf16 *)(smem + SM::DO);
    bf16 *Ks = (bf16 *)(smem + SM::K), *Vs = (bf16 *)(smem + SM::V);
    float *Ss = (float *)(smem + SM::S), *dPs = (float *)(smem + SM::DP);
    bf16 *dSs = (bf16 *)(smem + SM::DS);
    float *lse_s = (float *)(smem + SM::LSE), *D_s = (float *)(smem + SM::DD);
    constexpr int LD = Tile<HD>::LD, LDF = Tile<HD>::LDF;

    int b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * FA_ROWS;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int T = seqs.T, NH = seqs.NH;
    Seq sq = seq_of(seqs, b, h);
    int L = sq.L, rows = min(FA_ROWS, sq.rows - i0);
    if (rows <= 0) return; /* past a packed sequence */
    long long C = (long long)NH * HD, ld = 3 * C;
    const bf16 *q = qkv + sq.row0 * ld + h * HD, *k = q + C, *v = q + 2 * C;
    const bf16 *dO = dout + sq.row0 * C + h * HD;
    bf16 *dq = dqkv + (sq.row0 + i0) * ld + h * HD;
    const float *lse_bh = lse + sq.lse0, *D_bh = D + sq.lse0;

    if (L == 0) { /* no keys: zero gradient */
        zero_rows<HD>(dq, ld, rows);
        return;
    }
    load_tile<HD>(Qs, q + (long long)i0 * ld, ld, rows);
    load_tile<HD>(dOs, dO + (long long)i0 * C, C, rows);
    for (int c = threadIdx.x; c < FA_ROWS; c += FA_THREADS) {
        lse_s[c] = c < rows ? lse_bh[i0 + c] : 0.0f;
        D_s[c] = c < rows ? D_bh[i0 + c] : 0.0f;
    }
    __syncthreads();
    FragA qa[HD / 16], doa[HD / 16];
    load_frags_a<HD>(qa, Qs + warp * 16 * LD);
    load_frags_a<HD>(doa, dOs + warp * 16 * LD);
    FragC dQ[HD / 16];
    for (int n = 0; n < HD / 16; n++) wmma::fill_fragment(dQ[n], 0.0f);
    float *S16 = Ss + warp * 16 * FA_LDT, *dP16 = dPs + warp * 16 * FA_LDT;
    bf16 *dS16 = dSs + warp * 16 * FA_LDP;

    for (int j0 = 0; j0 < L; j0 += FA_ROWS) {
        int kv = min(FA_ROWS, L - j0);
        __syncthreads(); /* every warp is done with the previous K, V */
        load_tile<HD>(Ks, k + (long long)j0 * ld, ld, kv);
        load_tile<HD>(Vs, v + (long long)j0 * ld, ld, kv);
        __syncthreads();
        scores_16x64<HD>(S16, qa, Ks);   /* S = Q K^T */
        scores_16x64<HD>(dP16, doa, Vs); /* dPd = dO V^T */
        __syncwarp();

        for (int e = lane; e < 16 * FA_ROWS; e += 32) {
            int rr = e / FA_ROWS, c = e % FA_ROWS; /* query i0+warp*16+rr, key j0+c */
            int qi = warp * 16 + rr;
            float ds = 0.0f;
            if (c < kv && qi < rows) {
                float p = expf(S16[rr * FA_LDT + c] * scale - lse_s[qi]);
                float keep = keep_scale(d, koe_attention_drop_index(b, h, i0 + qi, j0 + c, NH, T));
                ds = p * (dP16[rr * FA_LDT + c] * keep - D_s[qi]) * scale;
            }
            dS16[rr * FA_LDP + c] = __float2bfloat16(ds);
        }
        __syncwarp();
        mma_16x64_by_tile<HD>(dQ, dS16, Ks); /* dQ += dS K */
    }

    __syncthreads(); /* the staging overwrites other warps' S/dP rows */
    float *stage = Ss + warp * 16 * LDF;
#pragma unroll
    for (int n = 0; n < HD / 16; n++)
        wmma::store_matrix_sync(stage + n * 16, dQ[n], LDF, wmma::mem_row_major);
    __syncwarp();
    store_warp_rows<HD>(dq + (long long)warp * 16 * ld, ld, stage, min(16, rows - warp * 16));
}

/* ------------------------------------------------------------------------------------------ */
/* launches */

/* opt in to more than 48 KiB of dynamic shared memory, once per kernel */
template <typename K>
static void allow_smem(K kernel, size_t bytes, int *done) {
    if (*done) return;
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)bytes));
    *done = 1;
}

template <int HD>
static void fwd(bf16 *out, float *lse, const bf16 *qkv, int B, Seqs seqs, Dropout d) {
    static int ready = 0;
    size_t bytes = FwdSmem<HD>::TOTAL;
    allow_smem(flash_fwd_kernel<HD>, bytes, &ready);
    dim3 grid(ceil_div(seqs.T, FA_ROWS), seqs.NH, B);
    flash_fwd_kernel<HD><<<grid, FA_THREADS, bytes>>>(out, lse, qkv, seqs,
                                                      1.0f / sqrtf((float)HD), d);
    KERNEL_CHECK();
}

template <int HD>
static void bwd(bf16 *dqkv, const bf16 *dout, const float *lse, const float *D,
                const bf16 *qkv, int B, Seqs seqs, Dropout d) {
    static int ready_kv = 0, ready_q = 0;
    float scale = 1.0f / sqrtf((float)HD);
    dim3 grid(ceil_div(seqs.T, FA_ROWS), seqs.NH, B);
    size_t bytes = DkdvSmem<HD>::TOTAL;
    allow_smem(flash_bwd_dkdv_kernel<HD>, bytes, &ready_kv);
    flash_bwd_dkdv_kernel<HD><<<grid, FA_THREADS, bytes>>>(dqkv, dout, qkv, lse, D, seqs,
                                                           scale, d);
    KERNEL_CHECK();
    bytes = DqSmem<HD>::TOTAL;
    allow_smem(flash_bwd_dq_kernel<HD>, bytes, &ready_q);
    flash_bwd_dq_kernel<HD><<<grid, FA_THREADS, bytes>>>(dqkv, dout, qkv, lse, D, seqs, scale,
                                                         d);
    KERNEL_CHECK();
}

static int aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

static int supported(int HD) { return HD == 32 || HD == 64 || HD == 128; }

static void fwd_any(bf16 *out, float *lse, const bf16 *qkv, int B, Seqs seqs, int HD,
                    Dropout d) {
    if (HD == 32) fwd<32>(out, lse, qkv, B, seqs, d);
    if (HD == 64) fwd<64>(out, lse, qkv, B, seqs, d);
    if (HD == 128) fwd<128>(out, lse, qkv, B, seqs, d);
}

static void bwd_any(bf16 *dqkv, const bf16 *dout, const bf16 *out, const float *lse,
                    const bf16 *qkv, int B, Seqs seqs, int HD, Dropout d) {
    size_t pairs = (size_t)seqs.N * seqs.NH;
    float *D = (float *)cuda_scratch(SCRATCH_ATTN_DP, pairs * sizeof(float));
    flash_bwd_dot_kernel<<<ceil_div(pairs, 8), 256>>>(D, dout, out, seqs, HD);
    KERNEL_CHECK();
    if (HD == 32) bwd<32>(dqkv, dout, lse, D, qkv, B, seqs, d);
    if (HD == 64) bwd<64>(dqkv, dout, lse, D, qkv, B, seqs, d);
    if (HD == 128) bwd<128>(dqkv, dout, lse, D, qkv, B, seqs, d);
}

int flash_attention_fwd(bf16 *out, float *lse, const bf16 *qkv, const int *lengths, int B,
                        int T, int NH, int HD, Dropout d) {
    if (!supported(HD) || !aligned16(out) || !aligned16(qkv)) return 0;
    if (B <= 0 || T <= 0 || NH <= 0) return 1;
    fwd_any(out, lse, qkv, B, Seqs{lengths, NULL, T, B * T, NH}, HD, d);
    return 1;
}

int flash_attention_bwd(bf16 *dqkv, const bf16 *dout, const bf16 *out, const float *lse,
                        const bf16 *qkv, const int *lengths, int B, int T, int NH, int HD,
                        Dropout d) {
    if (!supported(HD) || !aligned16(dqkv) || !aligned16(dout) || !aligned16(qkv)) return 0;
    if (B <= 0 || T <= 0 || NH <= 0) return 1;
    bwd_any(dqkv, dout, out, lse, qkv, B, Seqs{lengths, NULL, T, B * T, NH}, HD, d);
    return 1;
}

int flash_attention_packed_fwd(bf16 *out, float *lse, const bf16 *qkv, const int *offsets,
                               int B, int N, int T, int NH, int HD, Dropout d) {
    if (!supported(HD) || !aligned16(out) || !aligned16(qkv)) return 0;
    if (B <= 0 || N <= 0 || T <= 0 || NH <= 0) return 1;
    fwd_any(out, lse, qkv, B, Seqs{NULL, offsets, T, N, NH}, HD, d);
    return 1;
}

int flash_attention_packed_bwd(bf16 *dqkv, const bf16 *dout, const bf16 *out, const float *lse,
                               const bf16 *qkv, const int *offsets, int B, int N, int T, int NH,
                               int HD, Dropout d) {
    if (!supported(HD) || !aligned16(dqkv) || !aligned16(dout) || !aligned16(qkv)) return 0;
    if (B <= 0 || N <= 0 || T <= 0 || NH <= 0) return 1;
    bwd_any(dqkv, dout, out, lse, qkv, B, Seqs{NULL, offsets, T, N, NH}, HD, d);
    return 1;
}
