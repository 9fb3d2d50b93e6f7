/* The op interface: every op the model needs, one signature each.
 *
 * host/model is written once as calls through a Backend; kernels/cpu implements every op in
 * plain fp32 (the reference), kernels/cuda implements the same semantics fast (bf16
 * activations). Each op is tested CPU-vs-CUDA one by one.
 *
 * Conventions (every backend obeys them):
 * - All pointers are backend memory (host memory for the CPU backend, device memory for CUDA).
 * - `Act` tensors hold activations and the compute copy of parameters in the backend's
 *   activation type: fp32 on the CPU, bf16 on CUDA. `act_size` gives its bytes per element.
 * - Parameter gradients (`float *d...` of parameters) are fp32 and ACCUMULATED (+=), so
 *   gradient accumulation is free; the caller zeroes them once per optimizer step.
 * - Activation gradients are OVERWRITTEN unless the op says otherwise.
 * - Loss ops ADD their mean loss to `*loss` (fp32, one float) so the host reads it only when
 *   it logs; they write the logits gradient already multiplied by `grad_scale`.
 * - Row-major everywhere. A Linear layer is HF's: out[M,N] = inp[M,K] @ w[N,K]^T + b[N].
 * - Sequences are padded batches [B,T,...] with per-row lengths: key positions t >= len[b]
 *   are masked out of attention; every query row (padding ones too) is computed, as HF does.
 *   A row with len == 0 gives a zero attention output.
 * - Dropout with p == 0 is the identity. Masks come from kernels/rng.h, keyed by
 *   (seed, stream, element index), so both backends draw the same mask and backward
 *   regenerates it instead of storing it.
 */
#ifndef KOE_OPS_H
#define KOE_OPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void Act; /* an activation tensor in the backend's activation type */

typedef enum { ACT_NONE, ACT_GELU, ACT_TANH, ACT_RELU } Activation; /* GELU is the erf form */

typedef struct {
    float p;              /* drop probability; 0 disables */
    uint64_t seed;        /* run seed */
    uint64_t stream;      /* which tensor (< KOE_STREAMS_PER_STEP) */
    const uint64_t *step; /* backend memory holding the step, or NULL for step 0: the mask
                           * draws from stream + step * KOE_STREAMS_PER_STEP. Reading the
                           * step on the backend lets a replayed CUDA graph draw new masks. */
} Dropout;

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    int step;            /* 1-based, for bias correction (always on, as transformers 3.x) */
    float max_grad_norm; /* <= 0 disables clipping */
} AdamWArgs;

/* transformers' AdamW betas, which the benchmark's scripts leave at their defaults */
#define ADAMW_BETA1 0.9f
#define ADAMW_BETA2 0.999f

static inline AdamWArgs adamw_args(float lr, float eps, float weight_decay, int step,
                                   float max_grad_norm) {
    AdamWArgs a = {lr, ADAMW_BETA1, ADAMW_BETA2, eps, weight_decay, step, max_grad_norm};
    return a;
}

typedef struct Backend {
    const char *name;
    size_t act_size; /* bytes per Act element */

    /* memory */
    void *(*alloc)(size_t bytes); /* zero-filled; aborts with a message when out of memory */
    void (*free)(void *p);
    void (*zero)(void *p, size_t bytes);
    void (*to_device)(void *dst, const void *host_src, size_t bytes);
    void (*to_host)(void *host_dst, const void *src, size_t bytes);
    void (*acts_from_float)(Act *dst, const float *host_src, size_t n); /* upload + convert */
    void (*acts_to_float)(float *host_dst, const Act *src, size_t n);   /* download + convert */
    void (*float_to_acts)(Act *dst, const float *src, size_t n);        /* device fp32 -> Act */
    void (*synchronize)(void);
    /* high-water mark of memory in use: the process's peak RSS on the CPU, the most bytes
     * ever live from `alloc` on CUDA (cuBLASLt's fixed workspace and the context excluded) */
    size_t (*peak_bytes)(void);
    /* the most memory a model can take: physical memory (or a lower address-space limit) on
     * the CPU, free device memory on CUDA; 0 when unknown (no check) */
    size_t (*memory_bytes)(void);

    /* profiling ranges (NVTX on CUDA, nothing on the CPU) */
    void (*range_push)(const char *name);
    void (*range_pop)(void);

    /* out[N,C] = dropout(LayerNorm(wte[ids] + wpe[pos] + wtt[types])), wtt/types may be NULL.
     * mean/rstd [N] are kept for the backward. */
    void (*embeddings_fwd)(Act *out, float *mean, float *rstd, const int *ids, const int *pos,
                           const int *types, const Act *wte, const Act *wpe, const Act *wtt,
                           const Act *ln_w, const Act *ln_b, int N, int C, float eps, Dropout d);
    void (*embeddings_bwd)(float *dwte, float *dwpe, float *dwtt, float *dln_w, float *dln_b,
                           const Act *dout, const float *mean, const float *rstd, const int *ids,
                           const int *pos, const int *types, const Act *wte, const Act *wpe,
                           const Act *wtt, const Act *ln_w, int N, int C, Dropout d);

    /* out[M,N] = act(inp[M,K] @ w[N,K]^T + b); b may be NULL; with act != ACT_NONE `pre`
     * [M,N] receives the pre-activation (else it may be NULL). */
    void (*matmul_fwd)(Act *out, Act *pre, const Act *inp, const Act *w, const Act *b, int M,
                       int K, int N, Activation act);
    /* dinp[M,K] = (accumulate ? dinp : 0) + dz @ w; dw += dz^T @ inp; db += colsum(dz), where
     * dz = dout * act'(pre). dout is clobbered (used as dz scratch). dinp/db may be NULL. */
    void (*matmul_bwd)(Act *dinp, float *dw, float *db, Act *dout, const Act *pre,
                       const Act *inp, const Act *w, int M, int K, int N, Activation act,
                       int accumulate);

    /* qkv [B,T,3*NH*HD]: q, k, v blocks of NH*HD columns each, head h at columns h*HD.
     * out[B,T,NH*HD] = dropout(softmax(q k^T / sqrt(HD), keys < len[b])) v.
     * lse [B,NH,T] is the per-row log-sum-exp of the scaled scores, kept for the backward. */
    void (*attention_fwd)(Act *out, float *lse, const Act *qkv, const int *lengths, int B,
                          int T, int NH, int HD, Dropout d);
    void (*attention_bwd)(Act *dqkv, const Act *dout, const Act *out, const float *lse,
                          const Act *qkv, const int *lengths, int B, int T, int NH, int HD,
                          Dropout d);
    /* The same over a packed batch of real tokens only: B sequences back to back in
     * qkv [N,3*NH*HD] and out [N,NH*HD], sequence b in rows offsets[b] .. offsets[b+1]-1
     * (offsets [B+1], offsets[0] = 0, offsets[B] = N, every length in [0, T]); lse is [NH,N].
     * T is the padded length the dropout indices are counted in: probability (b,h,i,j) draws
     * index ((b*NH+h)*T+i)*T+j as above, so a packed batch gets the masks of the same batch
     * padded to T, and its rows equal the padded op's real rows. The backward writes every
     * row of dqkv. */
    void (*attention_packed_fwd)(Act *out, float *lse, const Act *qkv, const int *offsets,
                                 int B, int N, int T, int NH, int HD, Dropout d);
    void (*attention_packed_bwd)(Act *dqkv, const Act *dout, const Act *out, const float *lse,
                                 const Act *qkv, const int *offsets, int B, int N, int T,
                                 int NH, int HD, Dropout d);

    /* pre = dropout(x) + residual; out = LayerNorm(pre) * w + b; all [N,C]. */
    void (*residual_layernorm_fwd)(Act *out, Act *pre, float *mean, float *rstd, const Act *x,
                                   const Act *residual, const Act *w, const Act *b, int N, int C,
                                   float eps, Dropout d);
    /* dx = dropout'(dpre), dresidual = dpre; dw/db accumulated. dresidual may alias nothing. */
    void (*residual_layernorm_bwd)(Act *dx, Act *dresidual, float *dw, float *db,
                                   const Act *dout, const Act *pre, const float *mean,
                                   const float *rstd, const Act *w, int N, int C, Dropout d);

    /* standalone dropout (classification heads) and row gather ([CLS] = row 0 of each seq) */
    void (*dropout_fwd)(Act *out, const Act *inp, size_t n, Dropout d);
    void (*dropout_bwd)(Act *dinp, const Act *dout, size_t n, Dropout d);
    /* out[b] = inp[first[b]] (first: backend int[B], row b*T of a padded batch, offsets[b] of
     * a packed one); the backward writes dinp [N,C] whole, zeros off those rows */
    void (*cls_gather_fwd)(Act *out, const Act *inp, const int *first, int B, int C);
    void (*cls_gather_bwd)(Act *dinp, const Act *dout, const int *first, int B, int N, int C);

    /* losses: mean over counted rows, fused with the gradient */
    /* softmax cross-entropy over C classes; rows with label -100 are ignored (zero grad). */
    void (*cross_entropy)(float *loss, Act *dlogits, const Act *logits, const int *labels,
                          int N, int C, float grad_scale);
    /* mean squared error of pred[N] (num_labels == 1) against fp32 targets */
    void (*mse)(float *loss, Act *dpred, const Act *pred, const float *targets, int N,
                float grad_scale);
    /* QA: logits [B,T,2] (start, end); positions clamped to [0,T], T itself ignored;
     * loss = (CE(start) + CE(end)) / 2 over sequence positions, as HF. */
    void (*qa_loss)(float *loss, Act *dlogits, const Act *logits, const int *start_pos,
                    const int *end_pos, int B, int T, float grad_scale);

    /* CUDA graphs (NULL on the CPU): ops issued between graph_begin and graph_end are
     * captured, not run, into a graph that graph_launch replays; graph_launch returns -1 when
     * the graph is stale (a scratch buffer it uses has moved) and must be captured again.
     * Ops are capturable once a call of the same shapes has run eagerly. */
    int (*graph_begin)(void);
    void *(*graph_end)(void); /* NULL when the capture failed */
    int (*graph_launch)(void *graph);
    void (*graph_free)(void *graph);

    /* optimizer */
    void (*global_norm_sq)(float *out, const float *grads, size_t n); /* *out = sum g^2 */
    /* transformers 3.x AdamW over params[n] (fp32 master) using grads clipped by the factor
     * min(1, max_grad_norm / (sqrt(*norm_sq) + 1e-6)) read on the backend (no host sync);
     * also refreshes the compute copy `params_act`, which may alias params on the CPU. */
    void (*adamw)(float *params, Act *params_act, const float *grads, float *m, float *v,
                  size_t n, const float *norm_sq, AdamWArgs a);
} Backend;

const Backend *backend_cpu(void);
const Backend *backend_cuda(void); /* NULL when not built with CUDA or no device is present */

#ifdef __cplusplus
}
#endif

#endif
