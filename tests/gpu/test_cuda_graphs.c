/* Training steps through captured CUDA graphs (the default) against the same steps run
 * eagerly (KOE_CUDA_GRAPHS=0) and against the CPU, with dropout on: graphs must replay new
 * dropout masks each step and change nothing else. Exits 77 without a CUDA device. */
#include <stdlib.h>
#include <string.h>

#include "host/formats/checkpoint.h"
#include "host/model/model.h"
#include "test.h"

#define STEPS 6

static size_t train(const Backend *be, float *losses, float *params) {
    ModelConfig c;
    Error e;
    if (model_config_read("tests/fixtures/model/bert_tokcls/config.json", &c, &e) != 0) exit(1);
    c.hidden_dropout = c.attention_dropout = c.classifier_dropout = 0.1f;
    Model m;
    if (model_create(&m, &c, HEAD_TOKEN_CLS, 5, be, 3, 9, &e) != 0) exit(1);
    model_init_random(&m, 3);
    m.seed = 3;
    int ids[27], types[27], labels[27], lengths[3] = {9, 4, 7};
    for (int i = 0; i < 27; i++) {
        ids[i] = 2 + (i * 7) % 60;
        types[i] = i % 9 > 4;
        labels[i] = i % 9 < lengths[i / 9] ? i % 5 : -100;
    }
    Batch b = {3, 9, ids, types, lengths, labels, NULL, NULL, NULL, 0};
    AdamWArgs a = adamw_args(1e-3f, 1e-8f, 0.01f, 0, 1.0f);
    for (int s = 0; s < STEPS; s++) {
        model_forward(&m, &b, 1, 0.5f);
        model_backward(&m);
        losses[s] = model_take_loss(&m);
        a.step = s + 1;
        model_optimizer_step(&m, a);
    }
    size_t n = m.n_floats;
    model_get_params(&m, params);
    model_free(&m);
    return n;
}

int main(void) {
    const Backend *gpu = backend_cuda();
    if (!gpu) TEST_SKIP("no CUDA device");
    float graph_loss[STEPS], eager_loss[STEPS], cpu_loss[STEPS];
    float *pg = xmalloc(1 << 22), *pe = xmalloc(1 << 22), *pc = xmalloc(1 << 22);
    setenv("KOE_CUDA_GRAPHS", "1", 1);
    size_t n = train(gpu, graph_loss, pg);
    setenv("KOE_CUDA_GRAPHS", "0", 1);
    train(gpu, eager_loss, pe);
    train(backend_cpu(), cpu_loss, pc);
    for (int s = 0; s < STEPS; s++) {
        printf("step %d: graph %.6f eager %.6f cpu %.6f\n", s + 1, graph_loss[s], eager_loss[s], cpu_loss[s]);
        CHECK(fabsf(graph_loss[s] - eager_loss[s]) <= 1e-4f * fabsf(eager_loss[s]),
              "step %d: graph %g vs eager %g", s + 1, graph_loss[s], eager_loss[s]);
        CHECK(fabsf(graph_loss[s] - cpu_loss[s]) <= 2e-2f * fabsf(cpu_loss[s]),
              "step %d: graph %g vs cpu %g", s + 1, graph_loss[s], cpu_loss[s]);
    }
    CHECK(graph_loss[2] != graph_loss[3], "losses move from step to step");
    double err = rel_l2(pg, pe, n);
    printf("parameters after %d steps, graph vs eager: rel err %.2e\n", STEPS, err);
    CHECK(err < 1e-4, "graph vs eager parameters %.3g", err);
    free(pg), free(pe), free(pc);
    return test_exit("test_cuda_graphs");
}
