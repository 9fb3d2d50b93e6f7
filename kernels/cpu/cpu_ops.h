/* The CPU reference backend's ops (fp32 activations, so every Act is a float), one file per
 * concern, gathered into the Backend table by backend.c. Semantics: kernels/ops.h. */
#ifndef KOE_CPU_OPS_H
#define KOE_CPU_OPS_H

#include <math.h>

#include "kernels/ops.h"

/* glibc (>= 2.35 on x86-64) ships vector versions of expf and erff in libmvec, which -lm
 * links. Declaring them SIMD-callable lets the `omp simd` loops of the activations and the
 * softmax vectorise: results within 4 ulp of the scalar calls (libmvec's documented bound),
 * several times faster. Elsewhere the loops simply stay scalar. */
#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float erff(float);
#endif

/* after the declarations above, so that the GELU loops call the vector erff and expf */
#include "kernels/math_shared.h"

/* m[i] = dropout_scale(d, first + i): the mask of n consecutive elements. The hot loops go
 * through here because d arrives by value: its fields then stay in registers and the
 * per-call half of the hash is computed once, where a d read through OpenMP's shared data
 * is reloaded for every element (1.5x slower); 1/(1-p) is likewise divided out once. */
static inline void dropout_mask(float *m, size_t n, uint64_t first, Dropout d) {
    float kept = koe_kept_scale(d.p);
    uint64_t stream = koe_step_stream(d.stream, d.step);
    for (size_t i = 0; i < n; i++)
        m[i] = koe_keep(d.seed, stream, first + i, d.p) ? kept : 0.0f;
}

/* gemm.c: row-major C[M,N] = alpha op(A) op(B) + beta C (op = transpose when trans_*), the
 * rows split over the OpenMP threads, OpenBLAS single-threaded inside */
void cpu_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* layernorm.c: one row of LayerNorm and its backward, shared with the embeddings */
void layernorm_row_fwd(float *out, float *mean, float *rstd, const float *x, const float *w,
                       const float *b, int C, float eps);
/* dx = d LayerNorm / dx applied to dy; dw_acc += dy*xhat, db_acc += dy */
void layernorm_row_bwd(float *dx, float *dw_acc, float *db_acc, const float *dy,
                       const float *x, float mean, float rstd, const float *w, int C);
void cpu_residual_layernorm_fwd(Act *out, Act *pre, float *mean, float *rstd, const Act *x,
                                const Act *residual, const Act *w, const Act *b, int N, int C,
                                float eps, Dropout d);
void cpu_residual_layernorm_bwd(Act *dx, Act *dresidual, float *dw, float *db,
                                const Act *dout, const Act *pre, const float *mean,
                                const float *rstd, const Act *w, int N, int C, Dropout d);

/* embeddings.c */
void cpu_embeddings_fwd(Act *out, float *mean, float *rstd, const int *ids, const int *pos,
                        const int *types, const Act *wte, const Act *wpe, const Act *wtt,
                        const Act *ln_w, const Act *ln_b, int N, int C, float eps, Dropout d);
void cpu_embeddings_bwd(float *dwte, float *dwpe, float *dwtt, float *dln_w, float *dln_b,
                        const Act *dout, const float *mean, const float *rstd, const int *ids,
                        const int *pos, const int *types, const Act *wte, const Act *wpe,
                        const Act *wtt, const Act *ln_w, int N, int C, Dropout d);

/* matmul.c */
void cpu_matmul_fwd(Act *out, Act *pre, const Act *inp, const Act *w, const Act *b, int M,
                    int K, int N, Activation act);
void cpu_matmul_bwd(Act *dinp, float *dw, float *db, Act *dout, const Act *pre,
                    const Act *inp, const Act *w, int M, int K, int N, Activation act,
                    int accumulate);

/* attention.c */
void cpu_attention_fwd(Act *out, float *lse, const Act *qkv, const int *lengths, int B, int T,
                       int NH, int HD, Dropout d);
void cpu_attention_bwd(Act *dqkv, const Act *dout, const Act *out, const float *lse,
                       const Act *qkv, const int *lengths, int B, int T, int NH, int HD,
                       Dropout d);
void cpu_attention_packed_fwd(Act *out, float *lse, const Act *qkv, const int *offsets, int B,
                              int N, int T, int NH, int HD, Dropout d);
void cpu_attention_packed_bwd(Act *dqkv, const Act *dout, const Act *out, const float *lse,
                              const Act *qkv, const int *offsets, int B, int N, int T, int NH,
                              int HD, Dropout d);

/* dropout.c: standalone dropout and the [CLS] row gather */
void cpu_dropout_fwd(Act *out, const Act *inp, size_t n, Dropout d);
void cpu_dropout_bwd(Act *dinp, const Act *dout, size_t n, Dropout d);
void cpu_cls_gather_fwd(Act *out, const Act *inp, const int *first, int B, int C);
void cpu_cls_gather_bwd(Act *dinp, const Act *dout, const int *first, int B, int N, int C);

/* losses.c */
void cpu_cross_entropy(float *loss, Act *dlogits, const Act *logits, const int *labels, int N,
                       int C, float grad_scale);
void cpu_mse(float *loss, Act *dpred, const Act *pred, const float *targets, int N,
             float grad_scale);
void cpu_qa_loss(float *loss, Act *dlogits, const Act *logits, const int *start_pos,
                 const int *end_pos, int B, int T, float grad_scale);

/* adamw.c */
void cpu_global_norm_sq(float *out, const float *grads, size_t n);
void cpu_adamw(float *params, Act *params_act, const float *grads, float *m, float *v,
               size_t n, const float *norm_sq, AdamWArgs a);

#endif
