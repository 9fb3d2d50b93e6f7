/* The dropout step lives in backend memory (Dropout.step) so a replayed CUDA graph draws a
 * new mask each step: the mask at step k must be the one of stream + k * KOE_STREAMS_PER_STEP,
 * and a model's training forwards at successive steps must draw different masks. */
#include <string.h>

#include "host/model/model.h"
#include "kernels/rng.h"
#include "test.h"

static void test_step_offsets_stream(void) {
    const Backend *be = backend_cpu();
    size_t n = 4096;
    float *x = xmalloc(n * sizeof(float)), *a = xmalloc(n * sizeof(float)), *b = xmalloc(n * sizeof(float));
    uint64_t s = 99;
    fill_uniform(x, n, 0.5f, 1.5f, &s);
    uint64_t step = 3;
    Dropout with_step = {0.25f, 11, 7, &step};
    Dropout shifted = {0.25f, 11, 7 + 3 * KOE_STREAMS_PER_STEP, NULL};
    Dropout step0 = {0.25f, 11, 7, NULL};
    be->dropout_fwd(a, x, n, with_step);
    be->dropout_fwd(b, x, n, shifted);
    CHECK(memcmp(a, b, n * sizeof(float)) == 0, "step 3 equals stream + 3 * KOE_STREAMS_PER_STEP");
    be->dropout_fwd(b, x, n, step0);
    CHECK(memcmp(a, b, n * sizeof(float)) != 0, "step 3 differs from step 0");
    free(x), free(a), free(b);
}

/* identical batches at two micro steps give different training losses (new masks), and the
 * same loss in eval mode (no dropout) */
static void test_model_steps_draw_new_masks(void) {
    ModelConfig c;
    Error e;
    CHECK(model_config_read("tests/fixtures/model/electra_seqcls/config.json", &c, &e) == 0, "%s", e.msg);
    c.hidden_dropout = 0.1f;
    c.attention_dropout = 0.1f;
    c.classifier_dropout = 0.1f;
    Model m;
    CHECK(model_create(&m, &c, HEAD_SEQ_CLS, 3, backend_cpu(), 2, 6, &e) == 0, "%s", e.msg);
    model_init_random(&m, 5);
    m.seed = 5;
    int ids[12] = {2, 7, 9, 11, 3, 0, 2, 13, 17, 19, 23, 3}, lengths[2] = {5, 6}, labels[2] = {0, 2};
    Batch b = {2, 6, ids, NULL, lengths, labels, NULL, NULL, NULL, 0};
    float train[2], eval[2];
    for (int i = 0; i < 2; i++) {
        model_forward(&m, &b, 1, 1.0f);
        train[i] = model_take_loss(&m);
        model_forward(&m, &b, 0, 1.0f);
        eval[i] = model_take_loss(&m);
    }
    CHECK(train[0] != train[1], "training losses at two steps differ: %g %g", train[0], train[1]);
    CHECK(eval[0] == eval[1], "eval losses equal: %g %g", eval[0], eval[1]);
    model_free(&m);
}

int main(void) {
    test_step_offsets_stream();
    test_model_steps_draw_new_masks();
    return test_exit("test_dropout_step");
}
