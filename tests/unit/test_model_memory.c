/* model_memory_bytes (what the programs check against the backend's memory before building a
 * model) against what model_create really allocates, counted through a backend whose alloc
 * adds up the bytes: every family and head, fp32 and bf16 activations, batches of several
 * shapes. Absurd sizes saturate instead of wrapping. */
#include <stdint.h>
#include <string.h>

#include "host/model/model.h"
#include "test.h"

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
 * up to 7 floats of alignment per tensor, so it is checked as an upper bound, and exactly
 * through the difference to a model with every size key changed (the same tensors, so the
 * same alignment allowance). */
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
    CHECK(est_d - est0 == (fd - fc) * per_float, "%s head %d act %zu: %zu more bytes for %zu "
          "more floats", name, (int)head, act_size, est_d - est0, fd - fc);
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
    return test_exit("test_model_memory");
}
