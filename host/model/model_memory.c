/* What model_create will allocate on its backend, from the config alone: nothing is built, and
 * the arithmetic saturates at SIZE_MAX instead of wrapping, so a config.json that says 1e9
 * layers or hidden_size 2^30 can be refused by name before anything is allocated. The slab
 * sizes are model.c's own (model_slab_sizes); only the parameter count is estimated here,
 * from params.c's table (tests/unit/test_model_memory.c compares both with model_create). */
#include <stdint.h>

#include "host/model/model.h"

static size_t mul(size_t a, size_t b) { return size_mul_sat(a, b); }
static size_t add(size_t a, size_t b) { return size_add_sat(a, b); }
static size_t mul3(size_t a, size_t b, size_t c) { return mul(mul(a, b), c); }

/* floats of the flat parameter buffer: every tensor of params.c's table, plus at most 7
 * floats of alignment after each of them and after each of the 3 groups (an upper bound) */
static size_t param_floats(const ModelConfig *c, HeadKind head, size_t L) {
    size_t V = (size_t)c->vocab_size, E = (size_t)c->embedding_size, H = (size_t)c->hidden_size;
    size_t F = (size_t)c->intermediate_size, P = (size_t)c->max_position_embeddings;
    size_t TT = (size_t)(c->type_vocab_size > 0 ? c->type_vocab_size : 0);
    size_t n = mul(add(add(V, P), add(TT, 2)), E), tensors = 5;
    if (E != H) n = add(n, add(mul(H, E), H)), tensors += 2;
    /* q, k, v, o weights 4H^2, two FFN weights 2HF, biases and LayerNorms 9H + F */
    size_t layer = add(add(mul3(4, H, H), mul3(2, H, F)), add(mul(9, H), F));
    n = add(n, mul(layer, (size_t)c->num_layers));
    tensors = add(tensors, mul(16, (size_t)c->num_layers));
    if (head == HEAD_QA) n = add(n, add(mul(2, H), 2)), tensors += 2;
    else n = add(n, add(mul(L, H), L)), tensors += 2;
    if (head == HEAD_SEQ_CLS) n = add(n, add(mul(H, H), H)), tensors += 2;
    return add(n, mul(7, add(tensors, 3)));
}

size_t model_memory_bytes(const ModelConfig *c, HeadKind head, int num_labels, int max_B,
                          int max_T, size_t act_size) {
    size_t L = head == HEAD_QA ? 2 : (size_t)(num_labels > 0 ? num_labels : 1);
    Backend be = {.act_size = act_size}; /* all the sizes read of it */
    Model m = {.cfg = *c, .head = head, .num_labels = (int)L, .be = &be};
    m.max_B = max_B > 0 ? max_B : 0;
    m.max_T = max_T > 0 ? max_T : 0;
    m.n_floats = param_floats(c, head, L);
    m.proj_w = c->embedding_size != c->hidden_size ? 0 : -1; /* ELECTRA's projection */
    size_t bytes[N_SLABS], total = 0;
    model_slab_sizes(&m, bytes);
    for (int k = 0; k < N_SLABS; k++) total = add(total, bytes[k]);
    return total;
}
