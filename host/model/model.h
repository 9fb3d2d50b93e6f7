/* The model: an encoder of one of four HF families with one task head, written once as op
 * calls on a Backend. Parameters live in one flat fp32 buffer (gradients, AdamW moments in
 * three more), described by a table of HF state_dict names, shapes and offsets; all backend
 * memory is carved from one slab per kind (SlabKind). */
#ifndef KOE_MODEL_H
#define KOE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "host/model/model_config.h"
#include "host/base/util.h"
#include "kernels/ops.h"

typedef enum { HEAD_SEQ_CLS, HEAD_TOKEN_CLS, HEAD_QA } HeadKind;

typedef struct {
    char name[96]; /* the HF state_dict name */
    int ndim;
    int64_t shape[2];
    size_t offset, numel; /* in floats, into the flat buffers */
    int decay;            /* HF's rule: no decay for names containing "bias" or "LayerNorm.weight" */
    int pad_row;          /* embedding row that never gets a gradient (nn.Embedding padding_idx), or -1 */
    int frozen;           /* requires_grad off in HF (DistilBERT's sinusoidal positions) */
} Param;

/* indices into Model.params for one encoder layer; q, k, v are laid out back to back so
 * qkv_w is one [3H, H] matrix and qkv_b one [3H] vector */
typedef struct {
    int qkv_w, qkv_b, o_w, o_b, ln1_w, ln1_b, ff1_w, ff1_b, ff2_w, ff2_b, ln2_w, ln2_b;
} LayerParams;

/* the task head: [dropout] -> dense(act) -> dropout -> out for sequence classification
 * (dense < 0 for heads that are a single Linear) */
typedef struct {
    int dense_w, dense_b, out_w, out_b;
    int dropout_first; /* ELECTRA and XLM-R drop the [CLS] vector before the dense layer */
    Activation act;
    float dropout;
} HeadParams;

/* one batch, host memory; unused label arrays are NULL. Padded: B rows of T tokens. Packed
 * (sequence and token classification only): the B sequences' real tokens back to back, N =
 * sum of lengths rows, T the longest length; per-token arrays then hold N entries. */
typedef struct {
    int B, T;
    const int *input_ids, *token_type_ids, *lengths; /* [B*T], [B*T] or NULL, [B] */
    const int *labels;                                /* [B] (seq cls) or [B*T] (token cls) */
    const float *targets;                             /* [B] regression scores */
    const int *start_positions, *end_positions;       /* [B] (QA) */
    int packed;
} Batch;

/* The model's backend memory comes in four slabs, each allocated once and carved into its
 * buffers (host/model/model.c): their sizes are the model's whole footprint. */
typedef enum {
    SLAB_PARAMS,      /* fp32 master weights, and their compute copy where that is not fp32 */
    SLAB_GRADS,       /* fp32 gradients */
    SLAB_OPTIMIZER,   /* AdamW's two moments */
    SLAB_ACTIVATIONS, /* a max_B x max_T batch's inputs, saved activations, gradient scratch */
    N_SLABS
} SlabKind;

typedef struct {
    ModelConfig cfg;
    HeadKind head;
    int num_labels; /* classes; 1 = regression; 2 for QA (start, end) */
    const Backend *be;

    Param *params;
    int n_params;
    /* [0, n_decay) decays, [n_decay, n_trained) does not, [n_trained, n_floats) is frozen */
    size_t n_floats, n_decay, n_trained;
    int wte, wpe, wtt, emb_ln_w, emb_ln_b, proj_w, proj_b; /* wtt, proj_* are -1 when absent */
    LayerParams *layers;
    HeadParams hp;

    float *master, *grads, *m, *v; /* backend memory, n_floats each */
    Act *weights;                  /* compute copy (aliases master on the CPU) */

    int max_B, max_T, B, T; /* activation capacity and the current batch */
    int N, packed;          /* the current batch's token rows (B*T padded) and layout */
    struct Acts *acts;      /* saved activations and gradient scratch (host/model/model.c) */
    float *loss;            /* backend scalar: sum of the losses since the last read */
    float *norm_sq;         /* backend scalar for gradient clipping */
    uint64_t seed, micro_step; /* dropout streams are keyed by (seed, micro_step, tensor) */
    uint64_t *rng_step;        /* backend copy of micro_step, read by the dropout ops */
    struct GraphSlot *graphs; /* captured CUDA graphs, one per phase and shape (model.c) */
    int n_graphs;
    int training;
    void *slab[N_SLABS]; /* every buffer above that lives on the backend is carved from these */
    size_t slab_bytes[N_SLABS];
} Model;

/* lays out the parameters and allocates everything for batches up to max_B x max_T */
int model_create(Model *m, const ModelConfig *cfg, HeadKind head, int num_labels,
                 const Backend *be, int max_B, int max_T, Error *e);
void model_free(Model *m);
/* the bytes model_create allocates on a backend with act_size-byte activations (an upper
 * bound within a few floats per tensor), from the config alone; SIZE_MAX when that
 * overflows. Nothing is allocated, so an absurd config can be refused before it is. */
size_t model_memory_bytes(const ModelConfig *c, HeadKind head, int num_labels, int max_B,
                          int max_T, size_t act_size);
const Param *model_param(const Model *m, const char *name);
/* trainable parameters, as HF counts them (the flat buffer also holds alignment padding) */
size_t model_num_params(const Model *m);
/* backend bytes of one slab kind; their sum is the model's peak memory */
size_t model_bytes(const Model *m, SlabKind kind);
/* the slab sizes model_create carves for m's cfg, head, num_labels, be->act_size, max_B,
 * max_T, n_floats and proj_w, saturating at SIZE_MAX; nothing is allocated (model.c) */
void model_slab_sizes(const Model *m, size_t bytes[N_SLABS]);

/* HF's _init_weights: normal(0, initializer_range) weights, zero biases and padding rows,
 * LayerNorm 1 and 0 */
void model_init_random(Model *m, uint64_t seed);
/* loads a safetensors or pytorch_model.bin state_dict; prints HF-style notes about unused
 * and newly initialised weights; a shape disagreeing with the config, an integer dtype or a
 * NaN/Inf value is an error naming the file and the tensor */
int model_load(Model *m, const char *weights_path, uint64_t seed, Error *e);
/* fp32, HF names; path *.bin: torch.save zip (pytorch_model.bin), else safetensors; refuses
 * NaN/Inf */
int model_save(const Model *m, const char *path, Error *e);
/* parameters to/from host fp32 [n_floats] */
void model_get_params(const Model *m, float *host);
void model_set_params(Model *m, const float *host);
void model_get_grads(const Model *m, float *host);
/* AdamW's first and second moments to/from host fp32 [n_floats] each (checkpoints) */
void model_get_moments(const Model *m, float *exp_avg, float *exp_avg_sq);
void model_set_moments(Model *m, const float *exp_avg, const float *exp_avg_sq);

/* forward (train enables dropout); when the batch has labels the loss is added to m->loss and
 * its gradient, times grad_scale (1 / gradient_accumulation_steps), kept for the backward */
void model_forward(Model *m, const Batch *b, int train, float grad_scale);
/* backward of the last forward's loss; parameter gradients accumulate */
void model_backward(Model *m);
/* clip + AdamW over all parameters, then zero the gradients */
void model_optimizer_step(Model *m, AdamWArgs a);
/* logits of the last forward to host fp32: [B,L], [N,L] or [N,2] (N = B*T padded) */
void model_logits(const Model *m, float *host);
size_t model_logits_size(const Model *m);
/* reads and resets the accumulated loss (synchronises) */
float model_take_loss(Model *m);

/* host/model/params.c: lays out m->params for m->cfg and m->head (used by model_create) */
void params_build_table(Model *m);

#endif
