/* Loss ops fused with their gradient, as torch's CrossEntropyLoss / MSELoss with the default
 * mean reduction. Each adds its loss to *loss and writes d(loss * grad_scale)/d(input). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "host/base/util.h"
#include "kernels/cpu/cpu_ops.h"

#define IGNORE_INDEX (-100)

/* Softmax cross-entropy of one row x[C] (stride `stride`) against `label`: writes
 * g = softmax(x) - onehot(label), scaled by `gscale`, and returns -log softmax(x)[label]. */
static double ce_row(float *g, const float *x, int C, int stride, int label, float gscale) {
    float max = x[0];
    for (int c = 1; c < C; c++) max = fmaxf(max, x[(size_t)c * stride]);
    double sum = 0.0;
    for (int c = 0; c < C; c++) sum += exp((double)x[(size_t)c * stride] - max);
    double lse = max + log(sum);
    for (int c = 0; c < C; c++) {
        double p = exp((double)x[(size_t)c * stride] - lse);
        g[(size_t)c * stride] = (float)((p - (c == label)) * gscale);
    }
    return lse - x[(size_t)label * stride];
}

static void zero_row(float *g, int C, int stride) {
    for (int c = 0; c < C; c++) g[(size_t)c * stride] = 0.0f;
}

/* Labels are validated by the host; an out-of-range one here is a programming error. */
static void check_label(int label, int C, const char *op) {
    if (label < 0 || label >= C) {
        fprintf(stderr, "kernels/cpu/losses.c: %s: label %d outside [0, %d)\n", op, label, C);
        abort();
    }
}

/* Mean CE over the rows of x ([N,C] rows, or one column of [B,T,2] via strides) whose
 * label != ignore; no counted row gives loss 0 and zero gradient. */
static double ce_mean(float *g, const float *x, const int *labels, int N, int C,
                      size_t row_stride, int stride, int ignore, float grad_scale,
                      const char *op) {
    int count = 0;
    for (int n = 0; n < N; n++) count += labels[n] != ignore;
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        float *gn = g + (size_t)n * row_stride;
        if (labels[n] == ignore) {
            zero_row(gn, C, stride);
            continue;
        }
        check_label(labels[n], C, op);
        total += ce_row(gn, x + (size_t)n * row_stride, C, stride, labels[n],
                        grad_scale / count);
    }
    return count ? total / count : 0.0;
}

void cpu_cross_entropy(float *loss, Act *dlogits, const Act *logits, const int *labels, int N,
                       int C, float grad_scale) {
    *loss += (float)ce_mean(dlogits, logits, labels, N, C, (size_t)C, 1, IGNORE_INDEX,
                            grad_scale, "cross_entropy");
}

void cpu_mse(float *loss, Act *dpred_, const Act *pred_, const float *targets, int N,
             float grad_scale) {
    float *dpred = dpred_;
    const float *pred = pred_;
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        double diff = (double)pred[n] - targets[n];
        total += diff * diff;
        dpred[n] = (float)(2.0 * diff / N * grad_scale);
    }
    *loss += (float)(total / N);
}

/* HF's QA head: positions are clamped to [0, T] and T is the ignore index; the loss is the
 * mean of the start and end cross-entropies over the T sequence positions. */
void cpu_qa_loss(float *loss, Act *dlogits, const Act *logits_, const int *start_pos,
                 const int *end_pos, int B, int T, float grad_scale) {
    const float *logits = logits_;
    float *g = dlogits;
    int *start = xmalloc(2 * (size_t)B * sizeof(int)), *end = start + B;
    for (int b = 0; b < B; b++) {
        start[b] = start_pos[b] < 0 ? 0 : start_pos[b] > T ? T : start_pos[b];
        end[b] = end_pos[b] < 0 ? 0 : end_pos[b] > T ? T : end_pos[b];
    }
    /* the start logits are column 0 of each [T,2] block, the end logits column 1 */
    double ls = ce_mean(g, logits, start, B, T, 2 * (size_t)T, 2, T, 0.5f * grad_scale,
                        "qa_loss");
    double le = ce_mean(g + 1, logits + 1, end, B, T, 2 * (size_t)T, 2, T, 0.5f * grad_scale,
                        "qa_loss");
    *loss += (float)((ls + le) / 2);
    free(start);
}
