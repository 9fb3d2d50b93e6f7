/* What model_create will allocate on its backend, from the config alone: nothing is built, and
 * the arithmetic saturates at SIZE_MAX instead of wrapping, so a config.json that says 1e9
 * layers or hidden_size 2^30 can be refused by name before anything is allocated. Keep in
 * step with params.c's table and model.c's alloc_activations (tests/unit/test_model_memory.c
 * compares them). */
#include <stdint.h>

#include "host/model/model.h"

static size_t mul(size_t a, size_t b) {
    size_t r;
    return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}
static size_t add(size_t a, size_t b) {
    size_t r;
    return __builtin_add_overflow(a, b, &r) ? SIZE_MAX : r;
}
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

/* bytes of alloc_activations for batches of B x T: inputs, saved activations, scratch */
static size_t activation_bytes(const ModelConfig *c, size_t L, size_t B, size_t T,
                               size_t act) {
    size_t E = (size_t)c->embedding_size, H = (size_t)c->hidden_size;
    size_t F = (size_t)c->intermediate_size, NH = (size_t)c->num_heads, N = mul(B, T);
    size_t Lc = L > 2 ? L : 2;
    /* ids, pos, types, labels [N]; lengths, start, end, targets [B]; first [B+1] */
    size_t inputs = mul(4, add(mul(4, N), add(mul(5, B), 1)));
    /* per layer: qkv 3NH and 7 more NH tensors, 2 NF; lse [B, NH, T], 4 LayerNorm stats [N] */
    size_t layer = add(mul(act, add(mul3(10, N, H), mul3(2, N, F))),
                       mul(4, add(mul3(B, NH, T), mul(4, N))));
    size_t emb = add(mul(act, mul(N, E)), mul3(2, 4, N));
    if (E != H) emb = add(emb, mul(act, mul(N, H)));
    /* head: 7 [B,H] (cls ... dHead2), tok_drop [N,H], logits and dlogits [N,Lc];
     * scratch: dA dB dC dAtt [N,H], dQKV [N,3H], dF [N,F], dEmb [N,E] */
    size_t head = add(add(mul3(7, B, H), mul3(8, N, H)), add(mul3(2, N, Lc), add(mul(N, F),
                                                                                mul(N, E))));
    return add(add(inputs, emb), add(mul(layer, (size_t)c->num_layers), mul(act, head)));
}

size_t model_memory_bytes(const ModelConfig *c, HeadKind head, int num_labels, int max_B,
                          int max_T, size_t act_size) {
    size_t L = head == HEAD_QA ? 2 : (size_t)(num_labels > 0 ? num_labels : 1);
    size_t n = param_floats(c, head, L);
    /* master, gradients, AdamW's two moments (fp32), a compute copy when Act is not fp32,
     * the loss and norm scalars and the rng step */
    size_t params = mul(n, 4 * sizeof(float) + (act_size != sizeof(float) ? act_size : 0));
    size_t acts = activation_bytes(c, L, (size_t)(max_B > 0 ? max_B : 0),
                                   (size_t)(max_T > 0 ? max_T : 0), act_size);
    return add(add(params, acts), 2 * sizeof(float) + sizeof(uint64_t));
}
