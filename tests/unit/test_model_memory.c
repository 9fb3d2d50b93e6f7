/* The model's memory (host/model/model.c): four slabs, parameters, gradients and optimizer
 * state sized by the parameter table, activations growing with the batch, every backend
 * buffer inside its slab and the carving ending where the sizing said, all freed by
 * model_free (ASan checks the rest). And model_memory_bytes (what the programs check against
 * the backend's memory before building a model) against what model_create really allocates,
 * counted through a backend whose alloc adds up the bytes: every family and head, fp32 and
 * bf16 activations, batches of several shapes. Absurd sizes saturate instead of wrapping. */
#include <stdint.h>
#include <string.h>

#include "host/model/model.h"
#include "test.h"

#define ALIGN 256 /* each carved piece starts on this boundary */

static size_t allocated;
static void *(*cpu_alloc)(size_t);

static void *counting_alloc(size_t bytes) {
    allocated += bytes;
    return cpu_alloc(bytes);
}

static ModelConfig fixture(const char *name) {
    char *path = strfmt("tests/fixtures/model/%s/config.json", name);
    ModelConfig c;
    Error e;
    if (model_config_read(path, &c, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    free(path);
    return c;
}

/* ---- the slabs of one model ---- */

static int inside(const void *p, size_t bytes, const Model *m, SlabKind k) {
    const char *s = m->slab[k], *q = p;
    return q >= s && q + bytes <= s + model_bytes(m, k);
}

static size_t activation_bytes(const ModelConfig *c, int B) {
    Model m;
    Error e;
    if (model_create(&m, c, HEAD_TOKEN_CLS, 5, backend_cpu(), B, 16, &e) != 0) exit(1);
    size_t bytes = model_bytes(&m, SLAB_ACTIVATIONS);
    model_free(&m);
    return bytes;
}

static void test_slabs(void) {
    ModelConfig c = fixture("electra_seqcls");
    Model m;
    Error e;
    CHECK(model_create(&m, &c, HEAD_SEQ_CLS, 3, backend_cpu(), 4, 16, &e) == 0, "%s", e.msg);
    size_t floats = m.n_floats * sizeof(float);
    size_t grads = model_bytes(&m, SLAB_GRADS);
    CHECK(grads >= floats && grads < floats + ALIGN, "gradients %zu bytes for %zu", grads, floats);
    /* fp32 activations on the CPU: the compute copy of the weights is the master */
    CHECK(model_bytes(&m, SLAB_PARAMS) == grads && (void *)m.weights == (void *)m.master,
          "parameters %zu bytes", model_bytes(&m, SLAB_PARAMS));
    CHECK(model_bytes(&m, SLAB_OPTIMIZER) == 2 * grads, "optimizer %zu bytes",
          model_bytes(&m, SLAB_OPTIMIZER));
    CHECK(inside(m.master, floats, &m, SLAB_PARAMS) && inside(m.grads, floats, &m, SLAB_GRADS) &&
              inside(m.m, floats, &m, SLAB_OPTIMIZER) && inside(m.v, floats, &m, SLAB_OPTIMIZER) &&
              m.v != m.m,
          "parameter-sized buffers outside their slabs");
    /* the rng step is carved last: the carving ends exactly where the sizing pass said */
    CHECK(inside(m.loss, sizeof(float), &m, SLAB_ACTIVATIONS) &&
              (char *)m.rng_step + ALIGN ==
                  (char *)m.slab[SLAB_ACTIVATIONS] + model_bytes(&m, SLAB_ACTIVATIONS),
          "the activation slab's last piece does not end it");
    model_free(&m);
    CHECK(m.slab[SLAB_PARAMS] == NULL && m.params == NULL, "model_free clears the model");

    /* every per-token buffer scales with the batch: equal steps in B, equal growth (B a
     * multiple of 4, so that 16-token rows fill whole aligned pieces) */
    size_t a4 = activation_bytes(&c, 4), a8 = activation_bytes(&c, 8);
    size_t a12 = activation_bytes(&c, 12);
    size_t per_token = (size_t)c.num_layers * (8 * c.hidden_size + 2 * c.intermediate_size) *
                       sizeof(float); /* a lower bound: each layer's saved [N, H] and [N, F] */
    CHECK(a8 > a4 && a12 - a8 == a8 - a4, "activations %zu, %zu, %zu bytes", a4, a8, a12);
    CHECK(a8 - a4 >= 4 * 16 * per_token, "four more rows of 16 tokens add %zu bytes, < %zu",
          a8 - a4, 4 * 16 * per_token);
}

/* ---- model_memory_bytes ---- */

/* the bytes model_create allocates through a counting copy of the CPU backend, and the
 * floats of its parameter tensors without alignment */
static size_t allocated_by(const ModelConfig *c, HeadKind head, int labels, size_t act_size,
                           int B, int T, size_t *floats) {
    Backend be = *backend_cpu();
    cpu_alloc = be.alloc;
    be.alloc = counting_alloc;
    be.act_size = act_size; /* only allocated, never run */
    Model m;
    Error e;
    allocated = 0;
    CHECK(model_create(&m, c, head, labels, &be, B, T, &e) == 0, "%s", e.msg);
    *floats = 0;
    for (int i = 0; i < m.n_params; i++) *floats += m.params[i].numel;
    model_free(&m);
    return allocated;
}

/* Activations exactly: the difference to a model without any. Parameters: the estimate adds
 * up to 7 floats of alignment per tensor, so it is checked as an upper bound, and through the
 * difference to a model with every size key changed (the same tensors, so the same
 * alignment allowance): exact but for each of the 5 parameter-sized pieces' rounding up to
 * a slab piece's alignment. */
static void check_against_alloc(const char *name, HeadKind head, int labels, size_t act_size,
                                int B, int T) {
    ModelConfig c = fixture(name), d = c;
    d.vocab_size += 3, d.max_position_embeddings += 5, d.intermediate_size += 7;
    d.hidden_size += d.num_heads;
    d.embedding_size = c.family == FAMILY_ELECTRA ? c.embedding_size + 1 : d.hidden_size;
    d.type_vocab_size += d.type_vocab_size > 0;
    size_t fc, fd, per_float = 4 * sizeof(float) + (act_size != sizeof(float) ? act_size : 0);
    size_t got = allocated_by(&c, head, labels, act_size, B, T, &fc);
    size_t got0 = allocated_by(&c, head, labels, act_size, 0, 0, &fc);
    allocated_by(&d, head, labels + 1, act_size, 0, 0, &fd);
    size_t est = model_memory_bytes(&c, head, labels, B, T, act_size);
    size_t est0 = model_memory_bytes(&c, head, labels, 0, 0, act_size);
    size_t est_d = model_memory_bytes(&d, head, labels + 1, 0, 0, act_size);
    CHECK(est - est0 == got - got0, "%s head %d act %zu batch %dx%d: activations %zu, "
          "allocated %zu", name, (int)head, act_size, B, T, est - est0, got - got0);
    CHECK(est0 >= got0, "%s head %d act %zu: parameters %zu, allocated %zu", name, (int)head,
          act_size, est0, got0);
    size_t grew = est_d - est0, want = (fd - fc) * per_float;
    CHECK(grew + 5 * ALIGN > want && grew < want + 5 * ALIGN, "%s head %d act %zu: %zu more "
          "bytes for %zu more floats", name, (int)head, act_size, grew, fd - fc);
}

static void test_saturates(void) {
    ModelConfig c = fixture("electra_seqcls");
    size_t small = model_memory_bytes(&c, HEAD_SEQ_CLS, 3, 32, 128, 4);
    c.num_layers = 100000000;
    size_t many = model_memory_bytes(&c, HEAD_SEQ_CLS, 3, 32, 128, 4);
    c.num_layers = 1000000000;
    size_t more = model_memory_bytes(&c, HEAD_SEQ_CLS, 3, 32, 128, 4);
    CHECK(small < many && many < more && more < SIZE_MAX, "layers: %zu %zu %zu", small, many,
          more);
    c.hidden_size = c.embedding_size = 1 << 30;
    CHECK(model_memory_bytes(&c, HEAD_SEQ_CLS, 3, 32, 128, 4) == SIZE_MAX,
          "hidden_size 2^30 x 1e9 layers saturates");
    c = fixture("electra_seqcls");
    c.hidden_size = 1 << 30;
    CHECK(model_memory_bytes(&c, HEAD_QA, 2, 65535, 4096, 2) == SIZE_MAX,
          "4 H^2 x 16 bytes overflows and saturates");
}

int main(void) {
    const char *names[] = {"electra_seqcls", "bert_tokcls", "distilbert_qa", "xlmr_seqcls"};
    const HeadKind heads[] = {HEAD_SEQ_CLS, HEAD_TOKEN_CLS, HEAD_QA};
    const int labels[] = {3, 1, 29};
    for (int n = 0; n < 4; n++)
        for (int h = 0; h < 3; h++) {
            check_against_alloc(names[n], heads[h], labels[(n + h) % 3], sizeof(float), 4, 16);
            check_against_alloc(names[n], heads[h], labels[h], 2, 3, 7);
        }
    test_saturates();
    test_slabs();
    return test_exit("test_model_memory");
}
