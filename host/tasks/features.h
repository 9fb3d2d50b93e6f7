/* Encoded features: what every task family's loader builds and the trainer batches. */
#ifndef KOE_FEATURES_H
#define KOE_FEATURES_H

/* Each row padded to max_len; unused arrays are NULL. */
typedef struct {
    int n, max_len;
    int *input_ids, *token_type_ids; /* [n * max_len] */
    int *lengths;                    /* [n] real tokens */
    int *labels;                     /* [n] (seq cls) or [n * max_len] (NER, -100 ignored) */
    float *scores;                   /* [n] regression targets */
    int *start, *end;                /* [n] QA answer positions */
} Features;

/* n rows of max_len: input ids, token types and lengths zeroed, the other arrays NULL */
void features_alloc(Features *f, int n, int max_len);
/* frees every array and zeroes f */
void features_free(Features *f);

#endif
