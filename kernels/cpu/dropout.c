/* Standalone dropout (element index = flat index) and the [CLS] row gather of the heads. */
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_dropout_fwd(Act *out_, const Act *inp_, size_t n, Dropout d) {
    float *out = out_;
    const float *inp = inp_;
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * dropout_scale(d, i);
}

/* the same mask as the forward, regenerated from (seed, stream, index) */
void cpu_dropout_bwd(Act *dinp, const Act *dout, size_t n, Dropout d) {
    cpu_dropout_fwd(dinp, dout, n, d);
}

void cpu_cls_gather_fwd(Act *out_, const Act *inp_, const int *first, int B, int C) {
    float *out = out_;
    const float *inp = inp_;
    for (int b = 0; b < B; b++)
        memcpy(out + (size_t)b * C, inp + (size_t)first[b] * C, (size_t)C * sizeof(float));
}

void cpu_cls_gather_bwd(Act *dinp_, const Act *dout_, const int *first, int B, int N, int C) {
    float *dinp = dinp_;
    const float *dout = dout_;
    memset(dinp, 0, (size_t)N * C * sizeof(float));
    for (int b = 0; b < B; b++)
        memcpy(dinp + (size_t)first[b] * C, dout + (size_t)b * C, (size_t)C * sizeof(float));
}
