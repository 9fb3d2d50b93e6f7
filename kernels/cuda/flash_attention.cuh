/* The fused (flash-style) attention of flash_attention.cu, called by attention.cu's op entry
 * points. Same arguments and semantics as attention_fwd/attention_bwd in kernels/ops.h.
 * Each returns 0 when it cannot take the call (head size other than 32/64/128, or a tensor
 * not 16-byte aligned), so the caller falls back to the simple path; 1 when done. */
#ifndef KOE_CUDA_FLASH_ATTENTION_CUH
#define KOE_CUDA_FLASH_ATTENTION_CUH

#include "kernels/cuda/common.cuh"

int flash_attention_fwd(bf16 *out, float *lse, const bf16 *qkv, const int *lengths, int B,
                        int T, int NH, int HD, Dropout d);
int flash_attention_bwd(bf16 *dqkv, const bf16 *dout, const bf16 *out, const float *lse,
                        const bf16 *qkv, const int *lengths, int B, int T, int NH, int HD,
                        Dropout d);

/* the packed form (ops.h attention_packed_*): same return convention */
int flash_attention_packed_fwd(bf16 *out, float *lse, const bf16 *qkv, const int *offsets,
                               int B, int N, int T, int NH, int HD, Dropout d);
int flash_attention_packed_bwd(bf16 *dqkv, const bf16 *dout, const bf16 *out, const float *lse,
                               const bf16 *qkv, const int *offsets, int B, int N, int T, int NH,
                               int HD, Dropout d);

#endif
