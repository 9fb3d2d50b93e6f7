/* The optimizer: global gradient norm and transformers 3.x AdamW with torch's
 * clip_grad_norm_ folded in. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_global_norm_sq(float *out, const float *grads, size_t n) {
    double sum = 0.0;
#pragma omp parallel for reduction(+ : sum)
    for (size_t i = 0; i < n; i++) sum += (double)grads[i] * grads[i];
    *out = (float)sum;
}

/* m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps);
 * then p -= lr*wd*p on the updated p. g is the gradient times the clip factor. */
void cpu_adamw(float *params, Act *params_act, const float *grads, float *m, float *v,
               size_t n, const float *norm_sq, AdamWArgs a) {
    float clip = 1.0f;
    if (a.max_grad_norm > 0.0f) {
        float coef = a.max_grad_norm / (sqrtf(*norm_sq) + 1e-6f);
        if (coef < 1.0f) clip = coef;
    }
    /* computed in double like transformers' Python floats, applied in fp32 */
    float step_size = (float)(a.lr * sqrt(1.0 - pow(a.beta2, a.step)) /
                              (1.0 - pow(a.beta1, a.step)));
    float decay = (float)((double)a.lr * a.weight_decay);
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float g = grads[i] * clip;
        m[i] = a.beta1 * m[i] + (1.0f - a.beta1) * g;
        v[i] = a.beta2 * v[i] + (1.0f - a.beta2) * g * g;
        float p = params[i] - step_size * (m[i] / (sqrtf(v[i]) + a.eps));
        if (a.weight_decay > 0.0f) p -= decay * p;
        params[i] = p;
    }
    if ((void *)params != params_act) memcpy(params_act, params, n * sizeof(float));
}
