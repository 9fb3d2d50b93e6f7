/* Counter-based random numbers shared by the CPU and CUDA backends.
 *
 * A dropout mask element is a pure function of (seed, stream, index), so the forward and the
 * backward, and the CPU and the GPU, all draw the same mask without storing it. The mixer is
 * SplitMix64's finaliser applied twice, which is plenty for dropout and cheap on both sides.
 */
#ifndef KOE_RNG_H
#define KOE_RNG_H

#include <stdint.h>

#ifdef __CUDACC__
#define KOE_HD __host__ __device__ __forceinline__
#else
#define KOE_HD static inline
#endif

KOE_HD uint64_t koe_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* uniform in [0, 1) with 24 random bits */
KOE_HD float koe_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    uint64_t z = koe_mix64(seed + 0x9e3779b97f4a7c15ULL * (stream + 1));
    z = koe_mix64(z ^ (index * 0xd1b54a32d192ed03ULL));
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

/* Streams: a Dropout's tensor stream at a given step (see Dropout in kernels/ops.h), and
 * the training sampler's, one per epoch from KOE_SAMPLER_STREAM (host/train/batch.c) */
#define KOE_STREAMS_PER_STEP 4096ULL
#define KOE_SAMPLER_STREAM 0x5a3d1e00ULL

KOE_HD uint64_t koe_step_stream(uint64_t stream, const uint64_t *step) {
    return stream + (step ? *step * KOE_STREAMS_PER_STEP : 0);
}

/* dropout keeps element `index` when its uniform draw is >= p */
KOE_HD int koe_keep(uint64_t seed, uint64_t stream, uint64_t index, float p) {
    return p <= 0.0f || koe_uniform(seed, stream, index) >= p;
}

#endif
