/* The math the CPU reference and the CUDA kernels must agree on, written once: the erf GELU
 * and its derivative (with tanh and ReLU, the Activation set), the dropout multiplier, and
 * which dropout element an attention probability draws. Both backends include this file, so
 * they cannot drift apart. Every function is KOE_HD (kernels/rng.h): static inline in C,
 * __host__ __device__ in CUDA. */
#ifndef KOE_MATH_SHARED_H
#define KOE_MATH_SHARED_H

#include <math.h>
#include <stdint.h>

#include "kernels/ops.h"
#include "kernels/rng.h"

#define KOE_INV_SQRT2 0.70710678118654752f
#define KOE_INV_SQRT_2PI 0.39894228040143268f

/* GELU, the erf form (HF's "gelu") */
KOE_HD float koe_gelu(float x) { return 0.5f * x * (1.0f + erff(x * KOE_INV_SQRT2)); }

/* d gelu(x) / dx = cdf(x) + x pdf(x), grouped as torch's GeluBackward */
KOE_HD float koe_gelu_grad(float x) {
    float cdf = 0.5f * (1.0f + erff(x * KOE_INV_SQRT2));
    float pdf = expf(-0.5f * x * x) * KOE_INV_SQRT_2PI;
    return cdf + x * pdf;
}

KOE_HD float koe_activate(float x, Activation act) {
    switch (act) {
    case ACT_GELU: return koe_gelu(x);
    case ACT_TANH: return tanhf(x);
    case ACT_RELU: return x > 0.0f ? x : 0.0f;
    default: return x;
    }
}

/* d act(x) / dx */
KOE_HD float koe_activate_grad(float x, Activation act) {
    switch (act) {
    case ACT_GELU: return koe_gelu_grad(x);
    case ACT_TANH: {
        float t = tanhf(x);
        return 1.0f - t * t;
    }
    case ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    default: return 1.0f;
    }
}

/* what dropout multiplies a kept element by: 1/(1-p), and 1 when dropout is off */
KOE_HD float koe_kept_scale(float p) { return p > 0.0f ? 1.0f / (1.0f - p) : 1.0f; }

/* the dropout multiplier of element `index`: 0 when dropped, 1/(1-p) when kept (p > 0 past
 * the first line, where koe_kept_scale is that quotient) */
KOE_HD float dropout_scale(Dropout d, uint64_t index) {
    if (d.p <= 0.0f) return 1.0f;
    return koe_keep(d.seed, koe_step_stream(d.stream, d.step), index, d.p) ? 1.0f / (1.0f - d.p)
                                                                           : 0.0f;
}

/* the dropout element of attention probability (batch b, head h, query i, key j) with NH
 * heads over a padded length T; a packed batch counts in the same T (see kernels/ops.h) */
KOE_HD uint64_t koe_attention_drop_index(int b, int h, int i, int j, int NH, int T) {
    return (((uint64_t)b * NH + h) * T + i) * T + j;
}

#endif
