/* The parameter table: HF state_dict names and shapes per family and head, their place in the
 * flat buffers, HF's random initialisation, and loading/saving state_dicts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/formats/checkpoint.h"
#include "host/model/model.h"
#include "kernels/rng.h"

/* ---- building the table ---- */

typedef struct {
    Model *m;
    int cap;
    int glue_next; /* the next parameter continues the previous one's block (q -> k -> v) */
} TableBuilder;

static int add_param(TableBuilder *tb, const char *name, int64_t rows, int64_t cols) {
    Model *m = tb->m;
    if (m->n_params == tb->cap) {
        tb->cap = tb->cap ? 2 * tb->cap : 64;
        m->params = xrealloc(m->params, tb->cap * sizeof(Param));
    }
    Param *p = &m->params[m->n_params];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = cols > 0 ? 2 : 1;
    p->shape[0] = rows;
    p->shape[1] = cols > 0 ? cols : 1;
    p->numel = (size_t)rows * (cols > 0 ? cols : 1);
    p->decay = !strstr(name, "bias") && !strstr(name, "LayerNorm.weight");
    p->pad_row = -1;
    p->offset = tb->glue_next; /* temporarily: 1 = glued to the previous parameter */
    return m->n_params++;
}

static int add_linear(TableBuilder *tb, const char *prefix, int out, int in, int *bias) {
    char name[96];
    snprintf(name, sizeof name, "%s.weight", prefix);
    int w = add_param(tb, name, out, in);
    snprintf(name, sizeof name, "%s.bias", prefix);
    *bias = add_param(tb, name, out, 0);
    return w;
}

static void add_layernorm(TableBuilder *tb, const char *prefix, int n, int *w, int *b) {
    char name[96];
    snprintf(name, sizeof name, "%s.weight", prefix);
    *w = add_param(tb, name, n, 0);
    snprintf(name, sizeof name, "%s.bias", prefix);
    *b = add_param(tb, name, n, 0);
}

/* q, k, v weights then q, k, v biases, each triple contiguous so it is one fused QKV Linear */
static void add_qkv(TableBuilder *tb, const char *q, const char *k, const char *v, int H,
                    LayerParams *lp) {
    const char *names[3] = {q, k, v};
    char name[96];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%s.weight", names[i]);
        tb->glue_next = i > 0;
        int w = add_param(tb, name, H, H);
        if (i == 0) lp->qkv_w = w;
    }
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%s.bias", names[i]);
        tb->glue_next = i > 0;
        int b = add_param(tb, name, H, 0);
        if (i == 0) lp->qkv_b = b;
    }
    tb->glue_next = 0;
}

static void add_embeddings(TableBuilder *tb, const char *base) {
    Model *m = tb->m;
    const ModelConfig *c = &m->cfg;
    char name[96];
    int E = c->embedding_size;
    snprintf(name, sizeof name, "%s.embeddings.word_embeddings.weight", base);
    m->wte = add_param(tb, name, c->vocab_size, E);
    m->params[m->wte].pad_row = c->pad_token_id;
    snprintf(name, sizeof name, "%s.embeddings.position_embeddings.weight", base);
    m->wpe = add_param(tb, name, c->max_position_embeddings, E);
    if (c->family == FAMILY_XLMR) m->params[m->wpe].pad_row = c->pad_token_id;
    m->params[m->wpe].frozen = c->family == FAMILY_DISTILBERT && c->sinusoidal_pos_embds;
    m->wtt = -1;
    if (c->type_vocab_size > 0) {
        snprintf(name, sizeof name, "%s.embeddings.token_type_embeddings.weight", base);
        m->wtt = add_param(tb, name, c->type_vocab_size, E);
    }
    snprintf(name, sizeof name, "%s.embeddings.LayerNorm", base);
    add_layernorm(tb, name, E, &m->emb_ln_w, &m->emb_ln_b);
    m->proj_w = m->proj_b = -1;
    if (E != c->hidden_size)
        m->proj_w = add_linear(tb, "electra.embeddings_project", c->hidden_size, E, &m->proj_b);
}

/* the state_dict names inside one encoder layer: BERT, ELECTRA and XLM-R share HF's
 * BertLayer naming under <base>.encoder.layer.<i>; DistilBERT has its own */
typedef struct {
    const char *q, *k, *v, *o, *ln1, *ff1, *ff2, *ln2;
} LayerNames;

static const LayerNames BERT_LAYER = {
    "attention.self.query", "attention.self.key", "attention.self.value",
    "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
    "output.dense", "output.LayerNorm"};
static const LayerNames DISTILBERT_LAYER = {
    "attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
    "sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm"};

static void add_layer(TableBuilder *tb, const char *prefix, const LayerNames *n, LayerParams *lp) {
    const ModelConfig *c = &tb->m->cfg;
    int H = c->hidden_size, F = c->intermediate_size;
    char q[128], k[128], v[128], name[128];
    snprintf(q, sizeof q, "%s.%s", prefix, n->q);
    snprintf(k, sizeof k, "%s.%s", prefix, n->k);
    snprintf(v, sizeof v, "%s.%s", prefix, n->v);
    add_qkv(tb, q, k, v, H, lp);
    snprintf(name, sizeof name, "%s.%s", prefix, n->o);
    lp->o_w = add_linear(tb, name, H, H, &lp->o_b);
    snprintf(name, sizeof name, "%s.%s", prefix, n->ln1);
    add_layernorm(tb, name, H, &lp->ln1_w, &lp->ln1_b);
    snprintf(name, sizeof name, "%s.%s", prefix, n->ff1);
    lp->ff1_w = add_linear(tb, name, F, H, &lp->ff1_b);
    snprintf(name, sizeof name, "%s.%s", prefix, n->ff2);
    lp->ff2_w = add_linear(tb, name, H, F, &lp->ff2_b);
    snprintf(name, sizeof name, "%s.%s", prefix, n->ln2);
    add_layernorm(tb, name, H, &lp->ln2_w, &lp->ln2_b);
}

/* the heads of HF's *ForSequenceClassification / *ForTokenClassification / *ForQuestionAnswering */
static void add_head(TableBuilder *tb) {
    Model *m = tb->m;
    const ModelConfig *c = &m->cfg;
    HeadParams *hp = &m->hp;
    int H = c->hidden_size, L = m->num_labels;
    hp->dense_w = hp->dense_b = -1;
    hp->dropout_first = 0;
    hp->act = ACT_NONE;
    if (m->head == HEAD_QA) {
        hp->out_w = add_linear(tb, "qa_outputs", 2, H, &hp->out_b);
        hp->dropout = c->family == FAMILY_DISTILBERT ? c->qa_dropout : 0.0f;
        return;
    }
    if (m->head == HEAD_TOKEN_CLS) {
        hp->out_w = add_linear(tb, "classifier", L, H, &hp->out_b);
        hp->dropout = c->family == FAMILY_DISTILBERT ? c->hidden_dropout : c->classifier_dropout;
        return;
    }
    hp->dropout = c->classifier_dropout;
    switch (c->family) {
    case FAMILY_ELECTRA:
    case FAMILY_XLMR:
        hp->dense_w = add_linear(tb, "classifier.dense", H, H, &hp->dense_b);
        hp->out_w = add_linear(tb, "classifier.out_proj", L, H, &hp->out_b);
        hp->dropout_first = 1;
        hp->act = c->family == FAMILY_ELECTRA ? ACT_GELU : ACT_TANH;
        break;
    case FAMILY_BERT:
        hp->dense_w = add_linear(tb, "bert.pooler.dense", H, H, &hp->dense_b);
        hp->out_w = add_linear(tb, "classifier", L, H, &hp->out_b);
        hp->act = ACT_TANH;
        break;
    case FAMILY_DISTILBERT:
        hp->dense_w = add_linear(tb, "pre_classifier", H, H, &hp->dense_b);
        hp->out_w = add_linear(tb, "classifier", L, H, &hp->out_b);
        hp->act = ACT_RELU;
        break;
    }
}

/* the optimizer's groups: decayed, not decayed, frozen (not in the optimizer at all) */
static int param_group(const Param *p) { return p->frozen ? 2 : p->decay ? 0 : 1; }

/* groups in that order; each block starts 8-float aligned (16-byte bf16 GEMM operands),
 * glued parameters (k, v after q) follow their block directly */
static void assign_offsets(Model *m) {
    size_t off = 0, ends[3];
    for (int group = 0; group < 3; group++) {
        for (int i = 0; i < m->n_params; i++) {
            Param *p = &m->params[i];
            if (param_group(p) != group) continue;
            int glued = p->offset == 1;
            if (!glued) off = (off + 7) & ~(size_t)7;
            p->offset = off;
            off += p->numel;
        }
        off = (off + 7) & ~(size_t)7;
        ends[group] = off;
    }
    m->n_decay = ends[0];
    m->n_trained = ends[1];
    m->n_floats = ends[2];
}

static const char *family_base(ModelFamily f) {
    switch (f) {
    case FAMILY_ELECTRA: return "electra";
    case FAMILY_BERT: return "bert";
    case FAMILY_DISTILBERT: return "distilbert";
    case FAMILY_XLMR: return "roberta";
    }
    return "";
}

void params_build_table(Model *m) {
    TableBuilder tb = {m, 0, 0};
    const char *base = family_base(m->cfg.family);
    add_embeddings(&tb, base);
    m->layers = xcalloc(m->cfg.num_layers, sizeof(LayerParams));
    for (int i = 0; i < m->cfg.num_layers; i++) {
        char prefix[64];
        int distil = m->cfg.family == FAMILY_DISTILBERT;
        if (distil) snprintf(prefix, sizeof prefix, "distilbert.transformer.layer.%d", i);
        else snprintf(prefix, sizeof prefix, "%s.encoder.layer.%d", base, i);
        add_layer(&tb, prefix, distil ? &DISTILBERT_LAYER : &BERT_LAYER, &m->layers[i]);
    }
    add_head(&tb);
    assign_offsets(m);
}

const Param *model_param(const Model *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i];
    return NULL;
}

size_t model_num_params(const Model *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (!m->params[i].frozen) n += m->params[i].numel;
    return n;
}

/* ---- initialisation, loading, saving ---- */

static float normal_draw(uint64_t seed, uint64_t index) {
    float u1 = koe_uniform(seed, 1, 2 * index), u2 = koe_uniform(seed, 1, 2 * index + 1);
    return sqrtf(-2.0f * logf(1.0f - u1)) * cosf(6.2831853f * u2);
}

static int is_layernorm(const Param *p) {
    return strstr(p->name, "LayerNorm") || strstr(p->name, "layer_norm");
}

/* DistilBERT's create_sinusoidal_embeddings: sin on even columns, cos on odd ones */
static void init_sinusoidal(const Param *p, float *dst) {
    int dim = (int)p->shape[1];
    for (int64_t pos = 0; pos < p->shape[0]; pos++)
        for (int j = 0; j < dim; j++) {
            double angle = (double)pos / pow(10000.0, 2.0 * (j / 2) / dim);
            dst[pos * dim + j] = (float)(j % 2 ? cos(angle) : sin(angle));
        }
}

static void init_param(const Param *p, float *dst, float std, uint64_t seed) {
    int is_bias = strstr(p->name, ".bias") != NULL;
    if (p->frozen) {
        init_sinusoidal(p, dst);
        return;
    }
    for (size_t i = 0; i < p->numel; i++) {
        if (is_layernorm(p)) dst[i] = is_bias ? 0.0f : 1.0f;
        else if (is_bias) dst[i] = 0.0f;
        else dst[i] = std * normal_draw(seed, p->offset + i);
    }
    if (p->pad_row >= 0 && p->pad_row < p->shape[0])
        memset(dst + (size_t)p->pad_row * p->shape[1], 0, p->shape[1] * sizeof(float));
}

void model_init_random(Model *m, uint64_t seed) {
    float *host = xcalloc(m->n_floats, sizeof(float));
    for (int i = 0; i < m->n_params; i++)
        init_param(&m->params[i], host + m->params[i].offset, m->cfg.initializer_range, seed);
    model_set_params(m, host);
    free(host);
}

/* a checkpoint may name a parameter without the base-model prefix (saved from ElectraModel)
 * or with TF-era LayerNorm.gamma/beta; HF accepts both, so do we */
static const NamedTensor *find_tensor(const TensorSet *ts, const char *name) {
    const NamedTensor *t = tensorset_find(ts, name);
    const char *dot = strchr(name, '.');
    if (!t && dot) t = tensorset_find(ts, dot + 1);
    if (t) return t;
    char alt[128];
    snprintf(alt, sizeof alt, "%s", name);
    char *suffix = strstr(alt, "LayerNorm.");
    if (!suffix) return NULL;
    suffix += strlen("LayerNorm.");
    if (strcmp(suffix, "weight") == 0) strcpy(suffix, "gamma");
    else if (strcmp(suffix, "bias") == 0) strcpy(suffix, "beta");
    else return NULL;
    t = tensorset_find(ts, alt);
    if (!t && strchr(alt, '.')) t = tensorset_find(ts, strchr(alt, '.') + 1);
    return t;
}

static int shape_matches(const Param *p, const NamedTensor *t) {
    if (t->ndim != p->ndim) return 0;
    for (int d = 0; d < p->ndim; d++)
        if (t->shape[d] != p->shape[d]) return 0;
    return 1;
}

/* a tensor that no parameter claimed: HF lists these as "not used" */
static int claimed(const Model *m, const TensorSet *ts, const NamedTensor *t) {
    for (int i = 0; i < m->n_params; i++)
        if (find_tensor(ts, m->params[i].name) == t) return 1;
    return 0;
}

static void report_unused(const Model *m, const TensorSet *ts, const char *path) {
    int shown = 0;
    for (int i = 0; i < ts->n; i++) {
        if (claimed(m, ts, &ts->t[i]) || strstr(ts->t[i].name, "position_ids")) continue;
        if (!shown++) fprintf(stderr, "note: %s: weights not used by this model:", path);
        fprintf(stderr, " %s", ts->t[i].name);
    }
    if (shown) fprintf(stderr, "\n");
}

/* a checkpoint tensor into a parameter: float dtypes only (the bits of F32 weights read as
 * I32 are values near 1e9 that train without a word), every value finite (NaN/Inf would
 * surface only as a nan loss) */
static int load_weights(const char *path, const NamedTensor *t, float *dst, Error *e) {
    if (t->dtype != DT_F32 && t->dtype != DT_F16 && t->dtype != DT_BF16)
        return errorf(e, "%s: %s: dtype %s where float weights are expected (F32, F16, BF16)",
                      path, t->name, dtype_name(t->dtype));
    if (tensor_to_f32(t, dst, e) != 0) return -1;
    for (size_t i = 0; i < t->numel; i++)
        if (!isfinite(dst[i]))
            return errorf(e, "%s: %s: element %zu is %g: weights must be finite", path, t->name,
                          i, dst[i]);
    return 0;
}

int model_load(Model *m, const char *path, uint64_t seed, Error *e) {
    TensorSet ts = {0};
    if (checkpoint_read(path, &ts, e) != 0) return -1;
    float *host = xcalloc(m->n_floats, sizeof(float));
    int fresh = 0, rc = 0;
    for (int i = 0; i < m->n_params && rc == 0; i++) {
        const Param *p = &m->params[i];
        const NamedTensor *t = find_tensor(&ts, p->name);
        if (!t) {
            if (!fresh++) fprintf(stderr, "note: %s: newly initialised (not in the checkpoint):", path);
            fprintf(stderr, " %s", p->name);
            init_param(p, host + p->offset, m->cfg.initializer_range, seed);
        } else if (!shape_matches(p, t)) {
            /* the head's output rows are the task's labels (sizes from config.json fail on
             * the embeddings first) */
            int labels = m->head != HEAD_QA && (i == m->hp.out_w || i == m->hp.out_b);
            rc = errorf(e, "%s: %s: shape [%lld%s%lld] in the checkpoint, [%lld%s%lld] %s",
                        path, t->name, (long long)t->shape[0], t->ndim > 1 ? "," : "",
                        t->ndim > 1 ? (long long)t->shape[1] : 0LL, (long long)p->shape[0],
                        p->ndim > 1 ? "," : "", p->ndim > 1 ? (long long)p->shape[1] : 0LL,
                        labels ? "for the task's labels (a checkpoint of another task?)"
                               : "from the config");
        } else {
            rc = load_weights(path, t, host + p->offset, e);
        }
    }
    if (fresh) fprintf(stderr, "\n");
    if (rc == 0) {
        report_unused(m, &ts, path);
        model_set_params(m, host);
    }
    free(host);
    tensorset_free(&ts);
    return rc;
}

int model_save(const Model *m, const char *path, Error *e) {
    float *host = xcalloc(m->n_floats, sizeof(float));
    model_get_params(m, host);
    for (size_t i = 0; i < m->n_floats; i++)
        if (!isfinite(host[i])) { /* a diverged run must not overwrite good weights */
            free(host);
            return errorf(e, "%s: not saved: the weights are no longer finite", path);
        }
    TensorSet ts = {0};
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        tensorset_add_f32(&ts, p->name, host + p->offset, p->ndim, p->shape);
    }
    size_t n = strlen(path);
    int bin = n > 4 && strcmp(path + n - 4, ".bin") == 0;
    int rc = bin ? torchbin_write(path, &ts, e) : safetensors_write(path, &ts, e);
    tensorset_free(&ts);
    free(host);
    return rc;
}
