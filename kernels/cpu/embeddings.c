/* BERT/ELECTRA embeddings: word + position (+ token type) gathers, LayerNorm, dropout.
 * With wtt but no types every token has type 0 (HF's default zero token_type_ids);
 * without wtt (DistilBERT) no token-type row is added. */
#include <omp.h>
#include <stdlib.h>

#include "host/base/util.h"
#include "kernels/cpu/cpu_ops.h"

/* x[C] = wte[ids[n]] + wpe[pos[n]] (+ wtt[types[n]]) */
static void gather_row(float *x, int n, const int *ids, const int *pos, const int *types,
                       const float *wte, const float *wpe, const float *wtt, int C) {
    const float *we = wte + (size_t)ids[n] * C, *pe = wpe + (size_t)pos[n] * C;
    for (int c = 0; c < C; c++) x[c] = we[c] + pe[c];
    if (wtt) {
        const float *te = wtt + (size_t)(types ? types[n] : 0) * C;
        for (int c = 0; c < C; c++) x[c] += te[c];
    }
}

void cpu_embeddings_fwd(Act *out_, float *mean, float *rstd, const int *ids, const int *pos,
                        const int *types, const Act *wte, const Act *wpe, const Act *wtt,
                        const Act *ln_w, const Act *ln_b, int N, int C, float eps, Dropout d) {
    float *out = out_;
#pragma omp parallel
    {
        float *x = xmalloc((size_t)C * sizeof(float));
#pragma omp for
        for (int n = 0; n < N; n++) {
            size_t row = (size_t)n * C;
            gather_row(x, n, ids, pos, types, wte, wpe, wtt, C);
            layernorm_row_fwd(out + row, &mean[n], &rstd[n], x, ln_w, ln_b, C, eps);
            for (int c = 0; c < C; c++) out[row + c] *= dropout_scale(d, row + c);
        }
        free(x);
    }
}

/* Rows are independent up to the table scatter: dx is computed per row in parallel, then
 * scattered with each thread owning a slice of columns, so repeated ids never race. */
void cpu_embeddings_bwd(float *dwte, float *dwpe, float *dwtt, float *dln_w, float *dln_b,
                        const Act *dout_, const float *mean, const float *rstd, const int *ids,
                        const int *pos, const int *types, const Act *wte, const Act *wpe,
                        const Act *wtt, const Act *ln_w, int N, int C, Dropout d) {
    const float *dout = dout_;
    float *dx = xmalloc((size_t)N * C * sizeof(float));
#pragma omp parallel
    {
        float *x = xmalloc((size_t)C * sizeof(float));
        float *dy = xmalloc((size_t)C * sizeof(float));
        float *dw_part = xcalloc(2 * (size_t)C, sizeof(float));
        float *db_part = dw_part + C;
#pragma omp for
        for (int n = 0; n < N; n++) {
            size_t row = (size_t)n * C;
            gather_row(x, n, ids, pos, types, wte, wpe, wtt, C);
            for (int c = 0; c < C; c++) dy[c] = dout[row + c] * dropout_scale(d, row + c);
            layernorm_row_bwd(dx + row, dw_part, db_part, dy, x, mean[n], rstd[n], ln_w, C);
        }
#pragma omp critical
        for (int c = 0; c < C; c++) {
            dln_w[c] += dw_part[c];
            dln_b[c] += db_part[c];
        }
        free(dw_part);
        free(dy);
        free(x);
    }
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int c0 = (int)((long)C * t / nt), c1 = (int)((long)C * (t + 1) / nt);
        for (int n = 0; n < N; n++) {
            const float *g = dx + (size_t)n * C;
            float *we = dwte + (size_t)ids[n] * C, *pe = dwpe + (size_t)pos[n] * C;
            float *te = dwtt ? dwtt + (size_t)(types ? types[n] : 0) * C : NULL;
            for (int c = c0; c < c1; c++) {
                we[c] += g[c];
                pe[c] += g[c];
                if (te) te[c] += g[c];
            }
        }
    }
    free(dx);
}
