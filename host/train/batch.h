/* The batches made from encoded features (host/tasks/features.h): padded to their longest
 * row, to max_len, or packed (real tokens only), and the sampler's order of rows in an epoch. */
#ifndef KOE_BATCH_H
#define KOE_BATCH_H

#include <stdint.h>

#include "host/model/model.h"
#include "host/tasks/features.h"

/* how batches are laid out: padded to their longest row (the default), to max_len (the
 * original's pad_to_max_length), or packed: real tokens only (not for QA) */
typedef enum { LAYOUT_DYNAMIC, LAYOUT_MAX_LENGTH, LAYOUT_PACKED } BatchLayout;

/* host staging for one batch of at most max_B rows of max_len */
typedef struct {
    int *ids, *types, *labels, *lengths, *start, *end;
    float *scores;
} BatchBuf;

void batchbuf_alloc(BatchBuf *bb, int max_B, int max_len);
void batchbuf_free(BatchBuf *bb);

/* rows idx[0..B) of f laid out as asked; the model's head says which labels the batch
 * carries. The Batch points into bb. */
Batch make_batch(const Model *m, const Features *f, const int *idx, int B, BatchLayout layout,
                 BatchBuf *bb);

/* the epoch's sampling order: a Fisher-Yates shuffle keyed by (seed, epoch), so a resumed
 * run sees exactly the batches the uninterrupted one would */
void epoch_order(int *order, int n, uint64_t seed, int epoch);

#endif
