/* Batches: the host staging of one batch, laying rows out padded or packed (BatchLayout),
 * and the sampler's per-epoch order. */
#include "host/train/batch.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/rng.h"

void batchbuf_alloc(BatchBuf *bb, int max_B, int max_len) {
    size_t N = (size_t)max_B * max_len;
    bb->ids = xcalloc(N, sizeof(int));
    bb->types = xcalloc(N, sizeof(int));
    bb->labels = xcalloc(N, sizeof(int));
    bb->lengths = xcalloc(max_B, sizeof(int));
    bb->start = xcalloc(max_B, sizeof(int));
    bb->end = xcalloc(max_B, sizeof(int));
    bb->scores = xcalloc(max_B, sizeof(float));
}

void batchbuf_free(BatchBuf *bb) {
    free(bb->ids), free(bb->types), free(bb->labels), free(bb->lengths);
    free(bb->start), free(bb->end), free(bb->scores);
}


/* rows idx[0..B) of f laid out as asked (see BatchLayout); the model's head says which
 * labels the batch carries */
Batch make_batch(const Model *m, const Features *f, const int *idx, int B,
                 BatchLayout layout, BatchBuf *bb) {
    int T = 1;
    for (int i = 0; i < B; i++)
        if (f->lengths[idx[i]] > T) T = f->lengths[idx[i]];
    if (layout == LAYOUT_MAX_LENGTH) T = f->max_len;
    Batch b = {B, T, bb->ids, bb->types, bb->lengths, NULL, NULL, NULL, NULL, layout == LAYOUT_PACKED};
    size_t dst = 0;
    for (int i = 0; i < B; i++) {
        size_t src = (size_t)idx[i] * f->max_len;
        int n = b.packed ? f->lengths[idx[i]] : T; /* the tokens this row takes */
        memcpy(bb->ids + dst, f->input_ids + src, n * sizeof(int));
        memcpy(bb->types + dst, f->token_type_ids + src, n * sizeof(int));
        bb->lengths[i] = f->lengths[idx[i]];
        if (m->head == HEAD_TOKEN_CLS && f->labels)
            memcpy(bb->labels + dst, f->labels + src, n * sizeof(int));
        else if (f->labels)
            bb->labels[i] = f->labels[idx[i]];
        if (f->scores) bb->scores[i] = f->scores[idx[i]];
        if (f->start) bb->start[i] = f->start[idx[i]], bb->end[i] = f->end[idx[i]];
        dst += n;
    }
    if (f->labels) b.labels = bb->labels;
    if (f->scores) b.targets = bb->scores;
    if (f->start) b.start_positions = bb->start, b.end_positions = bb->end;
    return b;
}


/* the epoch's sampling order: a Fisher-Yates shuffle keyed by (seed, epoch), so a resumed
 * run sees exactly the batches the uninterrupted one would */
void epoch_order(int *order, int n, uint64_t seed, int epoch) {
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(koe_uniform(seed, KOE_SAMPLER_STREAM + (uint64_t)epoch, i) * (i + 1));
        if (j > i) j = i;
        int tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}
