/* LayerNorm as torch.nn.LayerNorm: biased variance, eps inside the square root.
 * The row loops are `omp simd` so they vectorise: the sums then run as a few interleaved
 * partial sums rather than strictly left to right (as torch's vectorised kernels do too). */
#include <math.h>
#include <stdlib.h>

#include "host/base/util.h"
#include "kernels/cpu/cpu_ops.h"

void layernorm_row_fwd(float *out, float *mean, float *rstd, const float *x, const float *w,
                       const float *b, int C, float eps) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int c = 0; c < C; c++) sum += x[c];
    float mu = sum / C;
    float var = 0.0f;
#pragma omp simd reduction(+ : var)
    for (int c = 0; c < C; c++) var += (x[c] - mu) * (x[c] - mu);
    float rs = 1.0f / sqrtf(var / C + eps);
#pragma omp simd
    for (int c = 0; c < C; c++) out[c] = (x[c] - mu) * rs * w[c] + b[c];
    *mean = mu;
    *rstd = rs;
}

/* With xhat = (x-mean)*rstd and g = dy*w: dx = rstd * (g - mean(g) - xhat * mean(g*xhat)). */
void layernorm_row_bwd(float *dx, float *dw_acc, float *db_acc, const float *dy,
                       const float *x, float mean, float rstd, const float *w, int C) {
    float g_mean = 0.0f, gx_mean = 0.0f;
#pragma omp simd reduction(+ : g_mean, gx_mean)
    for (int c = 0; c < C; c++) {
        float xhat = (x[c] - mean) * rstd;
        float g = dy[c] * w[c];
        g_mean += g;
        gx_mean += g * xhat;
        dw_acc[c] += dy[c] * xhat;
        db_acc[c] += dy[c];
    }
    g_mean /= C;
    gx_mean /= C;
#pragma omp simd
    for (int c = 0; c < C; c++) {
        float xhat = (x[c] - mean) * rstd;
        dx[c] = rstd * (dy[c] * w[c] - g_mean - xhat * gx_mean);
    }
}

void cpu_residual_layernorm_fwd(Act *out_, Act *pre_, float *mean, float *rstd, const Act *x_,
                                const Act *residual_, const Act *w, const Act *b, int N, int C,
                                float eps, Dropout d) {
    float *out = out_, *pre = pre_;
    const float *x = x_, *residual = residual_;
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        size_t row = (size_t)n * C;
        dropout_mask(pre + row, C, row, d);
#pragma omp simd
        for (int c = 0; c < C; c++) pre[row + c] = x[row + c] * pre[row + c] + residual[row + c];
        layernorm_row_fwd(out + row, &mean[n], &rstd[n], pre + row, w, b, C, eps);
    }
}

void cpu_residual_layernorm_bwd(Act *dx_, Act *dresidual_, float *dw, float *db,
                                const Act *dout_, const Act *pre_, const float *mean,
                                const float *rstd, const Act *w, int N, int C, Dropout d) {
    float *dx = dx_, *dres = dresidual_;
    const float *dout = dout_, *pre = pre_;
#pragma omp parallel
    {
        /* per-thread partial sums of dw/db, added up once at the end */
        float *dw_part = xcalloc(2 * (size_t)C, sizeof(float));
        float *db_part = dw_part + C;
#pragma omp for
        for (int n = 0; n < N; n++) {
            size_t row = (size_t)n * C;
            layernorm_row_bwd(dres + row, dw_part, db_part, dout + row, pre + row, mean[n],
                              rstd[n], w, C);
            dropout_mask(dx + row, C, row, d);
#pragma omp simd
            for (int c = 0; c < C; c++) dx[row + c] *= dres[row + c];
        }
#pragma omp critical
        for (int c = 0; c < C; c++) {
            dw[c] += dw_part[c];
            db[c] += db_part[c];
        }
        free(dw_part);
    }
}
