/* Linear layers through cuBLASLt: bf16 operands, fp32 accumulation (CUBLAS_COMPUTE_32F), the
 * bias added in the GEMM epilogue, fp32 weight gradients accumulated in place (bf16 A/B with
 * fp32 C/D, beta = 1). The activations are HF's erf GELU, tanh and relu, applied by our own
 * kernels (cuBLASLt's GELU epilogue is the tanh approximation).
 *
 * Row-major X[r,c] is column-major X^T, so every product is written for cuBLAS as the
 * transposed one:
 *   forward  out^T[N,M] = w[N,K] (A = w^T stored [K,N], op T) * inp^T[K,M]
 *   dinp     dinp^T[K,M] = w^T[K,N] * dz^T[N,M]
 *   dw       dw^T[K,N] += inp^T[K,M] * dz[M,N] (B = dz^T stored [N,M], op T)
 *
 * Plans (descriptors, layouts, the heuristic's algorithm) are cached per shape and pointer
 * alignment; one 32 MiB workspace is allocated at start. A shape for which cuBLASLt offers no
 * algorithm falls back to the plain tiled kernel of bgemm.cuh (with a note on stderr).
 */
#include <cublasLt.h>
#include <string.h>

#include "kernels/cuda/bgemm.cuh"
#include "kernels/cuda/common.cuh"

#define WORKSPACE_BYTES ((size_t)32 << 20)
#define MAX_PLANS 128

static void cublas_check(cublasStatus_t st, const char *file, int line) {
    if (st != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "%s:%d: cuBLASLt error %d\n", file, line, (int)st);
        abort();
    }
}
#define CUBLAS_CHECK(call) cublas_check((call), __FILE__, __LINE__)

static cublasLtHandle_t lt_handle;
static void *lt_workspace;

void cuda_matmul_init(void) {
    CUBLAS_CHECK(cublasLtCreate(&lt_handle));
    CUDA_CHECK(cudaMalloc(&lt_workspace, WORKSPACE_BYTES));
}

/* everything the heuristic's choice depends on */
typedef struct {
    int transa, transb, m, n, k, lda, ldb, ldc;
    int c_is_float; /* C/D fp32 (weight gradients), else bf16 */
    int bias;       /* bias epilogue */
    unsigned align_a, align_b, align_c, align_bias;
} GemmKey;

typedef struct {
    GemmKey key;
    int used, found; /* found: cuBLASLt offered an algorithm */
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
} Plan;

static Plan plans[MAX_PLANS];
static int next_evict;

static unsigned alignment(const void *p) {
    uintptr_t a = (uintptr_t)p;
    unsigned al = 256;
    while (al > 1 && a % al) al >>= 1;
    return al;
}

static void plan_destroy(Plan *p) {
    if (!p->used) return;
    cublasLtMatmulDescDestroy(p->desc);
    cublasLtMatrixLayoutDestroy(p->a);
    cublasLtMatrixLayoutDestroy(p->b);
    cublasLtMatrixLayoutDestroy(p->c);
    p->used = 0;
}

static void plan_create(Plan *p, const GemmKey *k, const void *bias) {
    memset(p, 0, sizeof *p);
    p->key = *k;
    p->used = 1;
    cublasOperation_t ta = k->transa ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t tb = k->transb ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta,
                                                sizeof ta));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb,
                                                sizeof tb));
    if (k->bias) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        int32_t bias_type = CUDA_R_16BF;
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                                    sizeof epi));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
            p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type));
        /* the heuristic reads the pointer's alignment */
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                    &bias, sizeof bias));
    }
    cudaDataType_t ctype = k->c_is_float ? CUDA_R_32F : CUDA_R_16BF;
    /* stored shapes, before the op: A is m x k (k x m when transposed), B k x n (n x k) */
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, k->transa ? k->k : k->m,
                                            k->transa ? k->m : k->k, k->lda));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, k->transb ? k->n : k->k,
                                            k->transb ? k->k : k->n, k->ldb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, ctype, k->m, k->n, k->ldc));

    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = WORKSPACE_BYTES;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    uint32_t al[4] = {k->align_a, k->align_b, k->align_c, k->align_c};
    cublasLtMatmulPreferenceAttributes_t al_attr[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4; i++)
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, al_attr[i], &al[i], sizeof al[i]));
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt_handle, p->desc, p->a, p->b, p->c,
                                                       p->c, pref, 1, &result, &found);
    CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    p->found = st == CUBLAS_STATUS_SUCCESS && found > 0;
    if (p->found) p->algo = result.algo;
}

static Plan *plan_get(const GemmKey *k, const void *bias) {
    for (int i = 0; i < MAX_PLANS; i++)
        if (plans[i].used && memcmp(&plans[i].key, k, sizeof *k) == 0) return &plans[i];
    Plan *p = NULL;
    for (int i = 0; i < MAX_PLANS && !p; i++)
        if (!plans[i].used) p = &plans[i];
    if (!p) { /* full: recycle round-robin (the model uses a few dozen shapes) */
        p = &plans[next_evict];
        next_evict = (next_evict + 1) % MAX_PLANS;
        plan_destroy(p);
    }
    plan_create(p, k, bias);
    return p;
}

/* KOE_CUDA_GEMM_FALLBACK=1 sends every matmul to the fallback kernel (so tests reach it) */
static int forced_fallback(void) {
    const char *e = getenv("KOE_CUDA_GEMM_FALLBACK");
    return e && e[0] == '1';
}

/* D = alpha * op(A) op(B) (+ bias) + beta * C with D = C; returns 0, or -1 when cuBLASLt has
 * no algorithm for this problem */
static int lt_gemm(int transa, int transb, int m, int n, int k, const bf16 *A, int lda,
                   const bf16 *B, int ldb, void *C, int ldc, int c_is_float, const bf16 *bias,
                   float beta) {
    if (forced_fallback()) return -1;
    GemmKey key;
    memset(&key, 0, sizeof key); /* padding takes part in memcmp */
    key.transa = transa;
    key.transb = transb;
    key.m = m;
    key.n = n;
    key.k = k;
    key.lda = lda;
    key.ldb = ldb;
    key.ldc = ldc;
    key.c_is_float = c_is_float;
    key.bias = bias != NULL;
    key.align_a = alignment(A);
    key.align_b = alignment(B);
    key.align_c = alignment(C);
    key.align_bias = bias ? alignment(bias) : 0;
    Plan *p = plan_get(&key, bias);
    if (!p->found) return -1;
    if (bias)
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                    &bias, sizeof bias));
    float alpha = 1.0f;
    cublasStatus_t st = cublasLtMatmul(lt_handle, p->desc, &alpha, A, p->a, B, p->b, &beta, C,
                                       p->c, C, p->c, &p->algo, lt_workspace, WORKSPACE_BYTES,
                                       cudaStreamPerThread);
    if (st == CUBLAS_STATUS_NOT_SUPPORTED) { /* refused at run time: never try it again */
        p->found = 0;
        return -1;
    }
    CUBLAS_CHECK(st);
    return 0;
}

static void note_fallback(const char *what, int M, int K, int N) {
    static int noted;
    if (!forced_fallback() && noted++ < 8)
        fprintf(stderr, "note: cuda matmul %s M=%d K=%d N=%d: no cuBLASLt algorithm, using the "
                        "fallback kernel\n", what, M, K, N);
}

/* ---- element-wise pieces: bias, activation and its derivative (kernels/math_shared.h) ---- */

/* out = act(z + b) over [M,N]; z may be out itself; b may be NULL */
__global__ void bias_act_kernel(bf16 *out, const bf16 *z, const bf16 *b, size_t total, int N,
                                Activation act) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = ld(z + i) + (b ? ld(b + i % N) : 0.0f);
        out[i] = __float2bfloat16(koe_activate(v, act));
    }
}

static void bias_act(bf16 *out, const bf16 *z, const bf16 *b, int M, int N, Activation act) {
    size_t total = (size_t)M * N;
    bias_act_kernel<<<grid_stride_blocks(total), GRID_STRIDE_THREADS>>>(out, z, b, total, N, act);
    KERNEL_CHECK();
}

/* dz = dout * act'(pre), written over dout; as a column-sum functor it also yields dz */
struct Dz {
    bf16 *dout;
    const bf16 *pre;
    Activation act;
    int N;
    __device__ void operator()(int m, int n, float *v) const {
        size_t i = (size_t)m * N + n;
        float dz = ld(dout + i);
        if (act != ACT_NONE) {
            dz *= koe_activate_grad(ld(pre + i), act);
            dout[i] = __float2bfloat16(dz);
        }
        v[0] = dz;
    }
};

__global__ void dz_kernel(Dz f, size_t total) {
    float v;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x)
        f((int)(i / f.N), (int)(i % f.N), &v);
}

/* ---- the ops ---- */

void cuda_matmul_fwd(Act *out_, Act *pre_, const Act *inp_, const Act *w_, const Act *b_, int M,
                     int K, int N, Activation act) {
    if (M <= 0 || N <= 0) return;
    bf16 *out = (bf16 *)out_;
    const bf16 *inp = (const bf16 *)inp_, *w = (const bf16 *)w_, *b = (const bf16 *)b_;
    bf16 *z = act == ACT_NONE ? out : (bf16 *)pre_; /* where the GEMM result goes */
    const bf16 *bias_left = NULL;                    /* bias not done by the epilogue */
    if (lt_gemm(1, 0, N, M, K, w, K, inp, K, z, N, 0, b, 0.0f) != 0) {
        if (!b || lt_gemm(1, 0, N, M, K, w, K, inp, K, z, N, 0, NULL, 0.0f) != 0) {
            note_fallback("forward", M, K, N);
            /* z[M,N] = inp[M,K] w[N,K]^T */
            bgemm(z, inp, w, NULL, 1,
                  bgemm_plain(M, N, K, bg_rows(0, 0, K), bg_cols(0, 0, K), bg_rows(0, 0, N), 0.0f));
        }
        bias_left = b;
    }
    if (bias_left) bias_act(z, z, bias_left, M, N, ACT_NONE); /* pre includes the bias */
    if (act != ACT_NONE) bias_act(out, z, NULL, M, N, act);
}

void cuda_matmul_bwd(Act *dinp_, float *dw, float *db, Act *dout_, const Act *pre_,
                     const Act *inp_, const Act *w_, int M, int K, int N, Activation act,
                     int accumulate) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    bf16 *dz = (bf16 *)dout_, *dinp = (bf16 *)dinp_;
    const bf16 *inp = (const bf16 *)inp_, *w = (const bf16 *)w_;
    Dz f = {dz, (const bf16 *)pre_, act, N};
    if (db) {
        colsum_add<1>(db, NULL, f, M, N);
    } else if (act != ACT_NONE) {
        size_t total = (size_t)M * N;
        dz_kernel<<<grid_stride_blocks(total), GRID_STRIDE_THREADS>>>(f, total);
        KERNEL_CHECK();
    }
    float beta_in = accumulate ? 1.0f : 0.0f;
    if (dinp && lt_gemm(0, 0, K, M, N, w, K, dz, N, dinp, K, 0, NULL, beta_in) != 0) {
        note_fallback("dinp", M, K, N);
        /* dinp[M,K] = dz[M,N] w[N,K] (+ dinp) */
        bgemm(dinp, dz, w, NULL, 1,
              bgemm_plain(M, K, N, bg_rows(0, 0, N), bg_rows(0, 0, K), bg_rows(0, 0, K), beta_in));
    }
    if (lt_gemm(0, 1, K, N, M, inp, K, dz, N, dw, K, 1, NULL, 1.0f) != 0) {
        note_fallback("dw", M, K, N);
        /* dw[N,K] += dz[M,N]^T inp[M,K] */
        bgemm(dw, dz, inp, NULL, 1,
              bgemm_plain(N, K, M, bg_cols(0, 0, N), bg_rows(0, 0, K), bg_rows(0, 0, K), 1.0f));
    }
}
