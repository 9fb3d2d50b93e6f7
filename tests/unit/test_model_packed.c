/* A packed batch (real tokens only, --unpadded) is the same computation as the padded one:
 * for sequence and token classification of every family, the logits of real tokens, the
 * loss and every parameter gradient must agree (eval mode: no dropout), and QA refuses to
 * pack. XLM-R checks the position ids, which count from pad_id + 1. */
#include <string.h>

#include "host/model/model.h"
#include "test.h"

enum { B = 3, T = 7 };
static const int LENGTHS[B] = {7, 2, 5};

typedef struct {
    float loss, *logits, *grads; /* logits of real tokens only (or [B,L]) */
    size_t n_logits, n_grads;
} Result;

/* random ids (a real token never equals the pad id) and labels, padded batch layout */
static void make_inputs(int vocab, int pad, int *ids, int *types, int *tok_labels) {
    uint64_t s = 12345;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            int real = t < LENGTHS[b], id = 1 + (int)(s % (uint64_t)(vocab - 1));
            ids[b * T + t] = real ? (id == pad ? pad + 1 : id) : pad;
            types[b * T + t] = real && t > 2;
            tok_labels[b * T + t] = real ? (int)((s >> 20) % 3) : -100;
        }
}

/* the real rows of a padded [B*T] int array, back to back */
static void pack_ints(int *packed, const int *padded) {
    for (int b = 0, k = 0; b < B; b++)
        for (int t = 0; t < LENGTHS[b]; t++) packed[k++] = padded[b * T + t];
}

static Result run(Model *m, const Batch *b) {
    Result r = {0};
    model_forward(m, b, 0, 1.0f);
    model_backward(m);
    r.loss = model_take_loss(m);
    size_t n = model_logits_size(m), L = m->num_labels;
    float *all = xmalloc(n * sizeof(float));
    model_logits(m, all);
    r.logits = xmalloc(n * sizeof(float));
    if (m->head == HEAD_SEQ_CLS || b->packed) {
        memcpy(r.logits, all, n * sizeof(float));
        r.n_logits = n;
    } else { /* keep the real rows */
        for (int i = 0; i < B; i++)
            for (int t = 0; t < LENGTHS[i]; t++, r.n_logits += L)
                memcpy(r.logits + r.n_logits, all + ((size_t)i * T + t) * L, L * sizeof(float));
    }
    free(all);
    r.n_grads = m->n_floats;
    r.grads = xmalloc(r.n_grads * sizeof(float));
    model_get_grads(m, r.grads);
    m->be->zero(m->grads, m->n_floats * sizeof(float));
    return r;
}

static void test_family(const char *fixture, HeadKind head) {
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/model/%s/config.json", fixture);
    ModelConfig c;
    Model m;
    Error e;
    if (model_config_read(path, &c, &e) != 0) {
        CHECK(0, "%s", e.msg);
        return;
    }
    CHECK(model_create(&m, &c, head, 3, backend_cpu(), B, T, &e) == 0, "%s", e.msg);
    model_init_random(&m, 7);
    int ids[B * T], types[B * T], tok_labels[B * T], seq_labels[B] = {0, 2, 1};
    int p_ids[B * T], p_types[B * T], p_labels[B * T];
    make_inputs(c.vocab_size, c.pad_token_id, ids, types, tok_labels);
    pack_ints(p_ids, ids), pack_ints(p_types, types), pack_ints(p_labels, tok_labels);
    const int *labels = head == HEAD_SEQ_CLS ? seq_labels : tok_labels;
    const int *packed_labels = head == HEAD_SEQ_CLS ? seq_labels : p_labels;
    Batch padded = {B, T, ids, types, LENGTHS, labels, NULL, NULL, NULL, 0};
    Batch packed = {B, T, p_ids, p_types, LENGTHS, packed_labels, NULL, NULL, NULL, 1};

    Result a = run(&m, &padded), p = run(&m, &packed);
    CHECK(a.n_logits == p.n_logits, "%s: %zu vs %zu logits", fixture, a.n_logits, p.n_logits);
    double el = rel_l2(p.logits, a.logits, a.n_logits), eg = rel_l2(p.grads, a.grads, a.n_grads);
    printf("%-20s packed vs padded: logits %.1e, grads %.1e, loss %g vs %g\n", fixture, el, eg,
           p.loss, a.loss);
    CHECK(el < 1e-5, "%s: packed logits differ by %.2e", fixture, el);
    CHECK(eg < 1e-5, "%s: packed gradients differ by %.2e", fixture, eg);
    CHECK(fabsf(p.loss - a.loss) <= 1e-5f * fabsf(a.loss), "%s: loss %g vs %g", fixture, p.loss,
          a.loss);
    free(a.logits), free(a.grads), free(p.logits), free(p.grads);
    model_free(&m);
}

int main(void) {
    const char *families[] = {"electra", "bert", "distilbert", "xlmr"};
    char name[64];
    for (int f = 0; f < 4; f++) {
        snprintf(name, sizeof name, "%s_seqcls", families[f]);
        test_family(name, HEAD_SEQ_CLS);
        snprintf(name, sizeof name, "%s_tokcls", families[f]);
        test_family(name, HEAD_TOKEN_CLS);
    }
    return test_exit("test_model_packed");
}
