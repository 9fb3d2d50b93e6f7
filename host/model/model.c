/* Forward, backward and the optimizer step of an encoder + head, as op calls on a Backend.
 * The sequence mirrors HF's modules line by line; host/model/params.c holds the parameter table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/model/model.h"

typedef struct {
    Act *qkv, *att, *attproj, *pre1, *h1, *ff_pre, *ff, *ff2, *pre2, *h2;
    float *lse, *mean1, *rstd1, *mean2, *rstd2;
} LayerActs;

struct Acts {
    /* inputs on the backend */
    int *ids, *pos, *types, *lengths, *labels, *start, *end;
    int *first; /* [B+1]: each sequence's first row (b*T padded), then the row count */
    float *targets;
    /* saved activations */
    Act *emb, *emb_proj;
    float *emb_mean, *emb_rstd;
    LayerActs *layer;
    Act *cls, *cls_drop, *dense_pre, *dense, *dense_drop, *tok_drop, *logits;
    /* gradient scratch */
    Act *dA, *dB, *dC, *dF, *dQKV, *dAtt, *dEmb, *dHead1, *dHead2, *dlogits;
};

/* CUDA graphs (see "graphs" below) */
typedef enum { PHASE_FORWARD, PHASE_BACKWARD } Phase;

/* which loss op a forward runs, from the targets its batch carries */
typedef enum { LOSS_NONE, LOSS_QA_SPANS, LOSS_REGRESSION, LOSS_LABELS } LossKind;

/* what a graph was captured for: the same key replays it */
typedef struct {
    Phase phase;
    int B, T, train;
    LossKind loss;
    float scale; /* the forward's gradient scale, baked into the loss op */
} GraphKey;

struct GraphSlot {
    GraphKey key;
    int eager_runs, failed; /* runs before capture; capture refused: stay eager */
    void *graph;            /* NULL until captured */
};

/* dropout streams: one per (micro step, tensor) */
enum { STREAM_EMB = 0, STREAM_HEAD1, STREAM_HEAD2, STREAM_LAYER0 };
enum { STREAM_ATT_PROBS, STREAM_ATT_OUT, STREAM_FFN_OUT, STREAMS_PER_LAYER };

static Dropout drop(const Model *m, float p, int tensor) {
    Dropout d = {m->training ? p : 0.0f, m->seed, (uint64_t)tensor, m->rng_step};
    return d;
}
static int layer_stream(int l, int which) { return STREAM_LAYER0 + l * STREAMS_PER_LAYER + which; }

/* DistilBERT has no dropout between attention's out_lin and its residual LayerNorm */
static float att_out_dropout(const Model *m) {
    return m->cfg.family == FAMILY_DISTILBERT ? 0.0f : m->cfg.hidden_dropout;
}

static Act *W(const Model *m, int idx) {
    return (char *)m->weights + m->params[idx].offset * m->be->act_size;
}
static float *G(const Model *m, int idx) { return m->grads + m->params[idx].offset; }

/* ---- memory: one slab per kind ----
 * Every buffer is a 256-byte aligned piece (cudaMalloc's alignment, enough for any vector
 * load) of its kind's slab. carve_all runs twice: with no slabs it only adds up the sizes,
 * saturating at SIZE_MAX (the size table: model_slab_sizes, m->slab_bytes), then it hands
 * out pointers into the allocated slabs. */

typedef struct {
    char *base; /* NULL while sizing */
    size_t used;
} Carver;

static void *carve(Carver *c, size_t n, size_t elem) {
    size_t bytes = size_mul_sat(n, elem);
    bytes = bytes > SIZE_MAX - 255 ? SIZE_MAX : (bytes + 255) & ~(size_t)255;
    void *p = c->base ? c->base + c->used : NULL;
    c->used = size_add_sat(c->used, bytes);
    return p;
}

/* rows x cols of each element type */
static Act *carve_acts(const Model *m, Carver *c, size_t rows, size_t cols) {
    return carve(c, size_mul_sat(rows, cols), m->be->act_size);
}
static float *carve_floats(Carver *c, size_t rows, size_t cols) {
    return carve(c, size_mul_sat(rows, cols), sizeof(float));
}
static int *carve_ints(Carver *c, size_t n) { return carve(c, n, sizeof(int)); }

static void carve_layer(const Model *m, Carver *c, LayerActs *la) {
    const ModelConfig *cf = &m->cfg;
    size_t N = size_mul_sat(m->max_B, m->max_T), H = cf->hidden_size;
    size_t F = cf->intermediate_size;
    la->qkv = carve_acts(m, c, N, 3 * H);
    la->att = carve_acts(m, c, N, H);
    la->attproj = carve_acts(m, c, N, H);
    la->pre1 = carve_acts(m, c, N, H);
    la->h1 = carve_acts(m, c, N, H);
    la->ff_pre = carve_acts(m, c, N, F);
    la->ff = carve_acts(m, c, N, F);
    la->ff2 = carve_acts(m, c, N, H);
    la->pre2 = carve_acts(m, c, N, H);
    la->h2 = carve_acts(m, c, N, H);
    la->lse = carve_floats(c, N, cf->num_heads);
    la->mean1 = carve_floats(c, N, 1);
    la->rstd1 = carve_floats(c, N, 1);
    la->mean2 = carve_floats(c, N, 1);
    la->rstd2 = carve_floats(c, N, 1);
}

/* every layer's buffers: carved one after the other, or (sizing) one layer's size times
 * the layer count, the same bytes without a loop over an absurd count */
static void carve_layers(const Model *m, Carver *c) {
    if (c->base) {
        for (int l = 0; l < m->cfg.num_layers; l++) carve_layer(m, c, &m->acts->layer[l]);
        return;
    }
    Carver one = {NULL, 0};
    LayerActs scratch;
    carve_layer(m, &one, &scratch);
    c->used = size_add_sat(c->used, size_mul_sat(one.used, (size_t)m->cfg.num_layers));
}

/* the batch's inputs, the saved activations, the gradient scratch and the loss scalars */
static void carve_activations(Model *m, Carver *c) {
    struct Acts *a = m->acts;
    const ModelConfig *cf = &m->cfg;
    size_t N = size_mul_sat(m->max_B, m->max_T), B = m->max_B;
    size_t E = cf->embedding_size, H = cf->hidden_size, F = cf->intermediate_size;
    size_t L = m->num_labels > 2 ? m->num_labels : 2;
    a->ids = carve_ints(c, N), a->pos = carve_ints(c, N), a->types = carve_ints(c, N);
    a->labels = carve_ints(c, N), a->lengths = carve_ints(c, B), a->first = carve_ints(c, B + 1);
    a->start = carve_ints(c, B), a->end = carve_ints(c, B);
    a->targets = carve_floats(c, B, 1);
    a->emb = carve_acts(m, c, N, E);
    a->emb_proj = m->proj_w >= 0 ? carve_acts(m, c, N, H) : NULL;
    a->emb_mean = carve_floats(c, N, 1), a->emb_rstd = carve_floats(c, N, 1);
    carve_layers(m, c);
    a->cls = carve_acts(m, c, B, H), a->cls_drop = carve_acts(m, c, B, H);
    a->dense_pre = carve_acts(m, c, B, H), a->dense = carve_acts(m, c, B, H);
    a->dense_drop = carve_acts(m, c, B, H);
    a->tok_drop = carve_acts(m, c, N, H);
    a->logits = carve_acts(m, c, N, L);
    a->dA = carve_acts(m, c, N, H), a->dB = carve_acts(m, c, N, H);
    a->dC = carve_acts(m, c, N, H), a->dF = carve_acts(m, c, N, F);
    a->dQKV = carve_acts(m, c, N, 3 * H), a->dAtt = carve_acts(m, c, N, H);
    a->dEmb = carve_acts(m, c, N, E);
    a->dHead1 = carve_acts(m, c, B, H), a->dHead2 = carve_acts(m, c, B, H);
    a->dlogits = carve_acts(m, c, N, L);
    m->loss = carve_floats(c, 1, 1), m->norm_sq = carve_floats(c, 1, 1);
    m->rng_step = carve(c, 1, sizeof(uint64_t));
}

static void carve_all(Model *m, Carver c[N_SLABS]) {
    size_t n = m->n_floats;
    m->master = carve_floats(&c[SLAB_PARAMS], n, 1);
    /* the compute copy: the master itself when activations are fp32 (the CPU) */
    m->weights = m->be->act_size == sizeof(float) ? (Act *)m->master
                                                  : carve_acts(m, &c[SLAB_PARAMS], n, 1);
    m->grads = carve_floats(&c[SLAB_GRADS], n, 1);
    m->m = carve_floats(&c[SLAB_OPTIMIZER], n, 1);
    m->v = carve_floats(&c[SLAB_OPTIMIZER], n, 1);
    carve_activations(m, &c[SLAB_ACTIVATIONS]);
}

void model_slab_sizes(const Model *m, size_t bytes[N_SLABS]) {
    Model t = *m; /* the sizing pass writes (NULL) pointers: into copies */
    struct Acts scratch;
    t.acts = &scratch;
    Carver c[N_SLABS] = {{0}};
    carve_all(&t, c);
    for (int k = 0; k < N_SLABS; k++) bytes[k] = c[k].used;
}

static void alloc_memory(Model *m) {
    m->acts = xcalloc(1, sizeof *m->acts);
    m->acts->layer = xcalloc(m->cfg.num_layers, sizeof(LayerActs));
    model_slab_sizes(m, m->slab_bytes);
    Carver c[N_SLABS];
    for (int k = 0; k < N_SLABS; k++) {
        m->slab[k] = m->be->alloc(m->slab_bytes[k]);
        c[k] = (Carver){m->slab[k], 0};
    }
    carve_all(m, c);
}

size_t model_bytes(const Model *m, SlabKind kind) { return m->slab_bytes[kind]; }

int model_create(Model *m, const ModelConfig *cfg, HeadKind head, int num_labels,
                 const Backend *be, int max_B, int max_T, Error *e) {
    memset(m, 0, sizeof *m);
    if (max_T > cfg->max_position_embeddings - (cfg->family == FAMILY_XLMR ? cfg->pad_token_id + 1 : 0))
        return errorf(e, "model: sequence length %d exceeds max_position_embeddings %d", max_T,
                      cfg->max_position_embeddings);
    if (head != HEAD_QA && num_labels < 1) return errorf(e, "model: num_labels must be >= 1");
    m->cfg = *cfg;
    m->head = head;
    m->num_labels = head == HEAD_QA ? 2 : num_labels;
    m->be = be;
    m->max_B = max_B;
    m->max_T = max_T;
    params_build_table(m);
    alloc_memory(m);
    return 0;
}

void model_free(Model *m) {
    if (!m->params) return;
    for (int i = 0; i < m->n_graphs; i++)
        if (m->graphs[i].graph) m->be->graph_free(m->graphs[i].graph);
    free(m->graphs);
    for (int k = 0; k < N_SLABS; k++) m->be->free(m->slab[k]);
    free(m->acts->layer);
    free(m->acts);
    free(m->params);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

void model_set_params(Model *m, const float *host) {
    m->be->to_device(m->master, host, m->n_floats * sizeof(float));
    if (m->weights != (Act *)m->master) m->be->float_to_acts(m->weights, m->master, m->n_floats);
}
void model_get_params(const Model *m, float *host) {
    m->be->to_host(host, m->master, m->n_floats * sizeof(float));
}
void model_get_grads(const Model *m, float *host) {
    m->be->to_host(host, m->grads, m->n_floats * sizeof(float));
}

void model_get_moments(const Model *m, float *exp_avg, float *exp_avg_sq) {
    m->be->to_host(exp_avg, m->m, m->n_floats * sizeof(float));
    m->be->to_host(exp_avg_sq, m->v, m->n_floats * sizeof(float));
}
void model_set_moments(Model *m, const float *exp_avg, const float *exp_avg_sq) {
    m->be->to_device(m->m, exp_avg, m->n_floats * sizeof(float));
    m->be->to_device(m->v, exp_avg_sq, m->n_floats * sizeof(float));
}

/* ---- inputs ---- */

/* HF position ids: 0..T-1, except XLM-R which counts non-pad tokens from pad_id + 1 and gives
 * pad tokens the position pad_id; first [B+1] holds where each sequence starts */
static void position_ids(const Model *m, const Batch *b, const int *first, int *pos) {
    int pad = m->cfg.pad_token_id;
    for (int i = 0; i < b->B; i++) {
        int seen = 0, n = first[i + 1] - first[i];
        for (int t = 0; t < n; t++) {
            int k = first[i] + t;
            if (m->cfg.family != FAMILY_XLMR) pos[k] = t;
            else pos[k] = b->input_ids[k] == pad ? pad : pad + ++seen;
        }
    }
}

/* first[b]: row b*T (padded) or the running sum of lengths (packed); first[B] = rows */
static void first_rows(const Batch *b, int *first) {
    first[0] = 0;
    for (int i = 0; i < b->B; i++) first[i + 1] = first[i] + (b->packed ? b->lengths[i] : b->T);
}

/* also sets m->N, the batch's token rows */
static void upload_batch(Model *m, const Batch *b) {
    const Backend *be = m->be;
    struct Acts *a = m->acts;
    int *first = xmalloc((b->B + 1) * sizeof(int));
    first_rows(b, first);
    size_t N = m->N = first[b->B];
    int *pos = xmalloc(N * sizeof(int));
    position_ids(m, b, first, pos);
    be->to_device(a->first, first, (b->B + 1) * sizeof(int));
    free(first);
    be->to_device(a->ids, b->input_ids, N * sizeof(int));
    be->to_device(a->pos, pos, N * sizeof(int));
    if (b->token_type_ids) be->to_device(a->types, b->token_type_ids, N * sizeof(int));
    else be->zero(a->types, N * sizeof(int));
    be->to_device(a->lengths, b->lengths, b->B * sizeof(int));
    if (b->labels)
        be->to_device(a->labels, b->labels, (m->head == HEAD_TOKEN_CLS ? N : (size_t)b->B) * sizeof(int));
    if (b->targets) be->to_device(a->targets, b->targets, b->B * sizeof(float));
    if (b->start_positions) be->to_device(a->start, b->start_positions, b->B * sizeof(int));
    if (b->end_positions) be->to_device(a->end, b->end_positions, b->B * sizeof(int));
    be->to_device(m->rng_step, &m->micro_step, sizeof m->micro_step);
    free(pos);
}

/* ---- CUDA graphs ----
 * A phase (forward or backward) of one batch shape runs eagerly the first time, which sizes
 * every scratch buffer and GEMM plan; the second time it is captured into a graph and later
 * calls replay it. Inputs and the dropout step are uploaded before, outside the graph.
 * Backends without graphs (the CPU) always run eagerly. */
typedef void (*PhaseFn)(Model *m, const Batch *b, float scale);

static LossKind loss_kind(const Batch *b) {
    return b->start_positions ? LOSS_QA_SPANS
           : b->targets       ? LOSS_REGRESSION
           : b->labels        ? LOSS_LABELS
                              : LOSS_NONE;
}

static GraphKey forward_key(const Batch *b, int train, float grad_scale) {
    GraphKey k = {PHASE_FORWARD, b->B, b->T, train, loss_kind(b), grad_scale};
    return k;
}

/* the backward of the last forward: its shape and mode, no loss op and no scale */
static GraphKey backward_key(const Model *m) {
    GraphKey k = {PHASE_BACKWARD, m->B, m->T, m->training, LOSS_NONE, 0.0f};
    return k;
}

static int same_key(const GraphKey *a, const GraphKey *b) {
    return a->phase == b->phase && a->B == b->B && a->T == b->T && a->train == b->train &&
           a->loss == b->loss && a->scale == b->scale;
}

static struct GraphSlot *graph_slot(Model *m, GraphKey key) {
    for (int i = 0; i < m->n_graphs; i++)
        if (same_key(&m->graphs[i].key, &key)) return &m->graphs[i];
    m->graphs = xrealloc(m->graphs, (m->n_graphs + 1) * sizeof *m->graphs);
    m->graphs[m->n_graphs] = (struct GraphSlot){key, 0, 0, NULL};
    return &m->graphs[m->n_graphs++];
}

static void run_phase(Model *m, GraphKey key, PhaseFn fn, const Batch *b, float scale) {
    const Backend *be = m->be;
    /* packed batches have a new row count nearly every time: no graph would be replayed */
    struct GraphSlot *g = be->graph_begin && !m->packed ? graph_slot(m, key) : NULL;
    if (!g) {
        fn(m, b, scale);
        return;
    }
    if (g->graph) {
        if (be->graph_launch(g->graph) == 0) return;
        be->graph_free(g->graph); /* stale: run eagerly once more, then capture again */
        g->graph = NULL;
        g->eager_runs = 0;
    }
    if (g->failed || g->eager_runs++ == 0) {
        fn(m, b, scale);
        return;
    }
    if (be->graph_begin() == 0) {
        fn(m, b, scale);
        g->graph = be->graph_end();
    }
    if (g->graph && be->graph_launch(g->graph) == 0) return;
    g->failed = 1; /* capturing is off (KOE_CUDA_GRAPHS=0) or was refused: stay eager */
    fn(m, b, scale);
}

/* ---- forward ---- */

static Act *embeddings_forward(Model *m) {
    const Backend *be = m->be;
    struct Acts *a = m->acts;
    const ModelConfig *c = &m->cfg;
    int N = m->N;
    be->range_push("embeddings");
    be->embeddings_fwd(a->emb, a->emb_mean, a->emb_rstd, a->ids, a->pos,
                       m->wtt >= 0 ? a->types : NULL, W(m, m->wte), W(m, m->wpe),
                       m->wtt >= 0 ? W(m, m->wtt) : NULL, W(m, m->emb_ln_w), W(m, m->emb_ln_b),
                       N, c->embedding_size, c->layer_norm_eps,
                       drop(m, c->hidden_dropout, STREAM_EMB));
    Act *x = a->emb;
    if (m->proj_w >= 0) {
        be->matmul_fwd(a->emb_proj, NULL, a->emb, W(m, m->proj_w), W(m, m->proj_b), N,
                       c->embedding_size, c->hidden_size, ACT_NONE);
        x = a->emb_proj;
    }
    be->range_pop();
    return x;
}

/* BertLayer: self-attention, output dense + dropout + residual LayerNorm, GELU FFN, again */
static void layer_forward(Model *m, int l, const Act *x) {
    const Backend *be = m->be;
    const ModelConfig *c = &m->cfg;
    const LayerParams *p = &m->layers[l];
    LayerActs *la = &m->acts->layer[l];
    int N = m->N, H = c->hidden_size, F = c->intermediate_size, NH = c->num_heads;
    be->range_push("attention");
    be->matmul_fwd(la->qkv, NULL, x, W(m, p->qkv_w), W(m, p->qkv_b), N, H, 3 * H, ACT_NONE);
    Dropout d = drop(m, c->attention_dropout, layer_stream(l, STREAM_ATT_PROBS));
    if (m->packed)
        be->attention_packed_fwd(la->att, la->lse, la->qkv, m->acts->first, m->B, N, m->T, NH,
                                 H / NH, d);
    else
        be->attention_fwd(la->att, la->lse, la->qkv, m->acts->lengths, m->B, m->T, NH, H / NH, d);
    be->matmul_fwd(la->attproj, NULL, la->att, W(m, p->o_w), W(m, p->o_b), N, H, H, ACT_NONE);
    be->residual_layernorm_fwd(la->h1, la->pre1, la->mean1, la->rstd1, la->attproj, x,
                               W(m, p->ln1_w), W(m, p->ln1_b), N, H, c->layer_norm_eps,
                               drop(m, att_out_dropout(m), layer_stream(l, STREAM_ATT_OUT)));
    be->range_pop();
    be->range_push("ffn");
    be->matmul_fwd(la->ff, la->ff_pre, la->h1, W(m, p->ff1_w), W(m, p->ff1_b), N, H, F, ACT_GELU);
    be->matmul_fwd(la->ff2, NULL, la->ff, W(m, p->ff2_w), W(m, p->ff2_b), N, F, H, ACT_NONE);
    be->residual_layernorm_fwd(la->h2, la->pre2, la->mean2, la->rstd2, la->ff2, la->h1,
                               W(m, p->ln2_w), W(m, p->ln2_b), N, H, c->layer_norm_eps,
                               drop(m, c->hidden_dropout, layer_stream(l, STREAM_FFN_OUT)));
    be->range_pop();
}

/* the [CLS] head: [dropout] -> dense(act) -> dropout -> out_proj */
static void seq_head_forward(Model *m, const Act *x) {
    const Backend *be = m->be;
    struct Acts *a = m->acts;
    const HeadParams *hp = &m->hp;
    int B = m->B, H = m->cfg.hidden_size;
    be->cls_gather_fwd(a->cls, x, a->first, B, H);
    const Act *h = a->cls;
    if (hp->dropout_first) {
        be->dropout_fwd(a->cls_drop, a->cls, (size_t)B * H, drop(m, hp->dropout, STREAM_HEAD1));
        h = a->cls_drop;
    }
    be->matmul_fwd(a->dense, a->dense_pre, h, W(m, hp->dense_w), W(m, hp->dense_b), B, H, H, hp->act);
    be->dropout_fwd(a->dense_drop, a->dense, (size_t)B * H, drop(m, hp->dropout, STREAM_HEAD2));
    be->matmul_fwd(a->logits, NULL, a->dense_drop, W(m, hp->out_w), W(m, hp->out_b), B, H,
                   m->num_labels, ACT_NONE);
}

/* token classification and QA: dropout -> Linear on every token */
static void token_head_forward(Model *m, const Act *x) {
    const Backend *be = m->be;
    struct Acts *a = m->acts;
    int N = m->N, H = m->cfg.hidden_size;
    be->dropout_fwd(a->tok_drop, x, (size_t)N * H, drop(m, m->hp.dropout, STREAM_HEAD1));
    be->matmul_fwd(a->logits, NULL, a->tok_drop, W(m, m->hp.out_w), W(m, m->hp.out_b), N, H,
                   m->num_labels, ACT_NONE);
}

static void loss_forward(Model *m, const Batch *b, float scale) {
    const Backend *be = m->be;
    struct Acts *a = m->acts;
    int B = m->B, T = m->T;
    if (m->head == HEAD_QA && b->start_positions)
        be->qa_loss(m->loss, a->dlogits, a->logits, a->start, a->end, B, T, scale);
    else if (m->head == HEAD_TOKEN_CLS && b->labels)
        be->cross_entropy(m->loss, a->dlogits, a->logits, a->labels, m->N, m->num_labels, scale);
    else if (m->head == HEAD_SEQ_CLS && m->num_labels == 1 && b->targets)
        be->mse(m->loss, a->dlogits, a->logits, a->targets, B, scale);
    else if (m->head == HEAD_SEQ_CLS && m->num_labels > 1 && b->labels)
        be->cross_entropy(m->loss, a->dlogits, a->logits, a->labels, B, m->num_labels, scale);
}

static void forward_ops(Model *m, const Batch *b, float grad_scale) {
    const Act *x = embeddings_forward(m);
    for (int l = 0; l < m->cfg.num_layers; l++) {
        char name[32];
        snprintf(name, sizeof name, "layer %d", l);
        m->be->range_push(name);
        layer_forward(m, l, x);
        m->be->range_pop();
        x = m->acts->layer[l].h2;
    }
    m->be->range_push("head");
    if (m->head == HEAD_SEQ_CLS) seq_head_forward(m, x);
    else token_head_forward(m, x);
    loss_forward(m, b, grad_scale);
    m->be->range_pop();
}

/* the host checks batches before they get here; a bad one is a programming error */
static void check_batch(const Model *m, const Batch *b) {
    int longest = 0;
    for (int i = 0; b->packed && i < b->B; i++)
        if (b->lengths[i] > longest) longest = b->lengths[i];
    const char *why = b->B > m->max_B || b->T > m->max_T ? "exceeds the model's capacity"
                      : b->packed && m->head == HEAD_QA   ? "is packed, which QA cannot be"
                      : longest > b->T                    ? "has a sequence longer than T"
                                                          : NULL;
    if (!why) return;
    fprintf(stderr, "error: batch %dx%d %s (%dx%d)\n", b->B, b->T, why, m->max_B, m->max_T);
    exit(2);
}

void model_forward(Model *m, const Batch *b, int train, float grad_scale) {
    check_batch(m, b);
    m->B = b->B;
    m->T = b->T;
    m->packed = b->packed;
    m->training = train;
    m->micro_step++;
    m->be->range_push("forward");
    upload_batch(m, b);
    run_phase(m, forward_key(b, train, grad_scale), forward_ops, b, grad_scale);
    m->be->range_pop();
}

/* ---- backward ---- */

/* writes d(final hidden) into dA */
static void head_backward(Model *m) {
    const Backend *be = m->be;
    struct Acts *a = m->acts;
    const HeadParams *hp = &m->hp;
    int B = m->B, N = m->N, H = m->cfg.hidden_size, L = m->num_labels;
    if (m->head != HEAD_SEQ_CLS) {
        be->matmul_bwd(a->dB, G(m, hp->out_w), G(m, hp->out_b), a->dlogits, NULL, a->tok_drop,
                       W(m, hp->out_w), N, H, L, ACT_NONE, 0);
        be->dropout_bwd(a->dA, a->dB, (size_t)N * H, drop(m, hp->dropout, STREAM_HEAD1));
        return;
    }
    be->matmul_bwd(a->dHead2, G(m, hp->out_w), G(m, hp->out_b), a->dlogits, NULL, a->dense_drop,
                   W(m, hp->out_w), B, H, L, ACT_NONE, 0);
    be->dropout_bwd(a->dHead1, a->dHead2, (size_t)B * H, drop(m, hp->dropout, STREAM_HEAD2));
    const Act *h = hp->dropout_first ? a->cls_drop : a->cls;
    be->matmul_bwd(a->dHead2, G(m, hp->dense_w), G(m, hp->dense_b), a->dHead1, a->dense_pre, h,
                   W(m, hp->dense_w), B, H, H, hp->act, 0);
    const Act *dcls = a->dHead2;
    if (hp->dropout_first) {
        be->dropout_bwd(a->dHead1, a->dHead2, (size_t)B * H, drop(m, hp->dropout, STREAM_HEAD1));
        dcls = a->dHead1;
    }
    be->cls_gather_bwd(a->dA, dcls, a->first, B, N, H);
}

/* dA holds d(layer output) on entry and d(layer input) on return */
static void layer_backward(Model *m, int l, const Act *x) {
    const Backend *be = m->be;
    const ModelConfig *c = &m->cfg;
    const LayerParams *p = &m->layers[l];
    LayerActs *la = &m->acts->layer[l];
    struct Acts *a = m->acts;
    int N = m->N, H = c->hidden_size, F = c->intermediate_size, NH = c->num_heads;
    be->range_push("ffn_bwd");
    be->residual_layernorm_bwd(a->dB, a->dC, G(m, p->ln2_w), G(m, p->ln2_b), a->dA, la->pre2,
                               la->mean2, la->rstd2, W(m, p->ln2_w), N, H,
                               drop(m, c->hidden_dropout, layer_stream(l, STREAM_FFN_OUT)));
    be->matmul_bwd(a->dF, G(m, p->ff2_w), G(m, p->ff2_b), a->dB, NULL, la->ff, W(m, p->ff2_w),
                   N, F, H, ACT_NONE, 0);
    be->matmul_bwd(a->dC, G(m, p->ff1_w), G(m, p->ff1_b), a->dF, la->ff_pre, la->h1,
                   W(m, p->ff1_w), N, H, F, ACT_GELU, 1);
    be->range_pop();
    be->range_push("attention_bwd");
    be->residual_layernorm_bwd(a->dB, a->dA, G(m, p->ln1_w), G(m, p->ln1_b), a->dC, la->pre1,
                               la->mean1, la->rstd1, W(m, p->ln1_w), N, H,
                               drop(m, att_out_dropout(m), layer_stream(l, STREAM_ATT_OUT)));
    be->matmul_bwd(a->dAtt, G(m, p->o_w), G(m, p->o_b), a->dB, NULL, la->att, W(m, p->o_w), N,
                   H, H, ACT_NONE, 0);
    Dropout d = drop(m, c->attention_dropout, layer_stream(l, STREAM_ATT_PROBS));
    if (m->packed)
        be->attention_packed_bwd(a->dQKV, a->dAtt, la->att, la->lse, la->qkv, a->first, m->B, N,
                                 m->T, NH, H / NH, d);
    else
        be->attention_bwd(a->dQKV, a->dAtt, la->att, la->lse, la->qkv, a->lengths, m->B, m->T,
                          NH, H / NH, d);
    be->matmul_bwd(a->dA, G(m, p->qkv_w), G(m, p->qkv_b), a->dQKV, NULL, x, W(m, p->qkv_w), N,
                   H, 3 * H, ACT_NONE, 1);
    be->range_pop();
}

/* nn.Embedding(padding_idx=...) rows never receive a gradient in HF */
static void zero_pad_rows(Model *m, int idx) {
    const Param *p = &m->params[idx];
    if (p->pad_row < 0 || p->pad_row >= p->shape[0]) return;
    m->be->zero(m->grads + p->offset + (size_t)p->pad_row * p->shape[1], p->shape[1] * sizeof(float));
}

static void embeddings_backward(Model *m) {
    const Backend *be = m->be;
    struct Acts *a = m->acts;
    const ModelConfig *c = &m->cfg;
    int N = m->N, E = c->embedding_size;
    be->range_push("embeddings_bwd");
    const Act *demb = a->dA;
    if (m->proj_w >= 0) {
        be->matmul_bwd(a->dEmb, G(m, m->proj_w), G(m, m->proj_b), a->dA, NULL, a->emb,
                       W(m, m->proj_w), N, E, c->hidden_size, ACT_NONE, 0);
        demb = a->dEmb;
    }
    int has_types = m->wtt >= 0;
    be->embeddings_bwd(G(m, m->wte), G(m, m->wpe), has_types ? G(m, m->wtt) : NULL,
                       G(m, m->emb_ln_w), G(m, m->emb_ln_b), demb, a->emb_mean, a->emb_rstd,
                       a->ids, a->pos, has_types ? a->types : NULL, W(m, m->wte), W(m, m->wpe),
                       has_types ? W(m, m->wtt) : NULL, W(m, m->emb_ln_w), N, E,
                       drop(m, c->hidden_dropout, STREAM_EMB));
    zero_pad_rows(m, m->wte);
    zero_pad_rows(m, m->wpe);
    if (m->params[m->wpe].frozen) /* never read by the optimizer; kept zero for grad checks */
        be->zero(G(m, m->wpe), m->params[m->wpe].numel * sizeof(float));
    be->range_pop();
}

static void backward_ops(Model *m, const Batch *b, float scale) {
    (void)b, (void)scale;
    head_backward(m);
    for (int l = m->cfg.num_layers - 1; l >= 0; l--) {
        const Act *x = l > 0 ? m->acts->layer[l - 1].h2
                             : (m->proj_w >= 0 ? m->acts->emb_proj : m->acts->emb);
        char name[32];
        snprintf(name, sizeof name, "layer %d backward", l);
        m->be->range_push(name);
        layer_backward(m, l, x);
        m->be->range_pop();
    }
    embeddings_backward(m);
}

void model_backward(Model *m) {
    m->be->range_push("backward");
    run_phase(m, backward_key(m), backward_ops, NULL, 0.0f);
    m->be->range_pop();
}

/* ---- optimizer and outputs ---- */

void model_optimizer_step(Model *m, AdamWArgs a) {
    const Backend *be = m->be;
    be->range_push("optimizer");
    be->global_norm_sq(m->norm_sq, m->grads, m->n_trained);
    be->adamw(m->master, m->weights, m->grads, m->m, m->v, m->n_decay, m->norm_sq, a);
    AdamWArgs no_decay = a;
    no_decay.weight_decay = 0.0f;
    size_t off = m->n_decay;
    be->adamw(m->master + off, (char *)m->weights + off * be->act_size, m->grads + off,
              m->m + off, m->v + off, m->n_trained - off, m->norm_sq, no_decay);
    be->zero(m->grads, m->n_floats * sizeof(float));
    be->range_pop();
}

size_t model_logits_size(const Model *m) {
    return (size_t)(m->head == HEAD_SEQ_CLS ? m->B : m->N) * m->num_labels;
}

void model_logits(const Model *m, float *host) {
    m->be->acts_to_float(host, m->acts->logits, model_logits_size(m));
}

float model_take_loss(Model *m) {
    float loss;
    m->be->to_host(&loss, m->loss, sizeof loss);
    m->be->zero(m->loss, sizeof(float));
    return loss;
}
