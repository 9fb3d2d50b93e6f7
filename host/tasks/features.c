#include "host/tasks/features.h"

#include <stdlib.h>
#include <string.h>

#include "host/base/util.h"

void features_alloc(Features *f, int n, int max_len) {
    memset(f, 0, sizeof *f);
    f->n = n;
    f->max_len = max_len;
    f->input_ids = xcalloc((size_t)n * max_len, sizeof(int));
    f->token_type_ids = xcalloc((size_t)n * max_len, sizeof(int));
    f->lengths = xcalloc(n, sizeof(int));
}

void features_free(Features *f) {
    free(f->input_ids), free(f->token_type_ids), free(f->lengths), free(f->labels);
    free(f->scores), free(f->start), free(f->end);
    memset(f, 0, sizeof *f);
}
