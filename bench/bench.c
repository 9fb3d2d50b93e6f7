/* Training and evaluation throughput of the documented models at the benchmark's shapes, on
 * the CPU or CUDA backend. Random weights and ids (throughput does not depend on values);
 * one JSON line per model so scripts can build the results tables.
 *
 *   bench [--backend cpu|cuda] [--model NAME[,NAME...]] [--batch B] [--seq T] [--steps N]
 *         [--warmup N] [--threads N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/model.h"

typedef struct {
    const char *backend, *models;
    int batch, seq, steps, warmup;
} BenchArgs;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* forward + backward + AdamW FLOPs per real token: 6 x matmul params + attention's
 * 12 x layers x hidden x seq (the formula) */
static double flops_per_token(const Model *m, int T) {
    const ModelConfig *c = &m->cfg;
    double H = c->hidden_size, F = c->intermediate_size, E = c->embedding_size;
    double matmul = c->num_layers * (4 * H * H + 2 * H * F) + (E != H ? E * H : 0) + H * H;
    return 6 * matmul + 12.0 * c->num_layers * H * T;
}

static void random_batch(Batch *b, int *ids, int *lengths, int *labels, int vocab, int B, int T) {
    uint64_t s = 88172645463325252ULL;
    for (int i = 0; i < B * T; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        ids[i] = 5 + (int)(s % (uint64_t)(vocab - 5));
    }
    for (int i = 0; i < B; i++) lengths[i] = T, labels[i] = i % 2;
    Batch x = {B, T, ids, NULL, lengths, labels, NULL, NULL, NULL};
    *b = x;
}

static double time_steps(Model *m, const Batch *b, int steps, int train, double *times) {
    AdamWArgs a = {5e-5f, 0.9f, 0.999f, 1e-8f, 0.0f, 1, 1.0f};
    for (int s = 0; s < steps; s++) {
        double t0 = now_seconds();
        model_forward(m, b, train, 1.0f);
        if (train) {
            model_backward(m);
            a.step = s + 1;
            model_optimizer_step(m, a);
        }
        model_take_loss(m); /* synchronises */
        times[s] = now_seconds() - t0;
    }
    qsort(times, steps, sizeof(double), cmp_double);
    return times[steps / 2];
}

static int bench_model(const char *name, const Backend *be, const BenchArgs *args) {
    ModelConfig cfg;
    Error e;
    if (model_config_builtin(name, &cfg, &e) != 0) {
        fprintf(stderr, "error: %s\n", e.msg);
        return -1;
    }
    int B = args->batch, T = args->seq;
    Model m;
    if (model_create(&m, &cfg, HEAD_SEQ_CLS, 2, be, B, T, &e) != 0) {
        fprintf(stderr, "error: %s\n", e.msg);
        return -1;
    }
    m.seed = 42;
    model_init_random(&m, 42);
    int *ids = xmalloc(sizeof(int) * B * T), *lengths = xmalloc(sizeof(int) * B),
        *labels = xmalloc(sizeof(int) * B);
    Batch b;
    random_batch(&b, ids, lengths, labels, cfg.vocab_size, B, T);
    int n = args->steps;
    double *times = xmalloc(sizeof(double) * (n > args->warmup ? n : args->warmup));
    time_steps(&m, &b, args->warmup, 1, times);
    double train_med = time_steps(&m, &b, n, 1, times);
    double train_min = times[0], train_max = times[n - 1];
    double eval_med = time_steps(&m, &b, n, 0, times);
    double tokens = (double)B * T, flops = flops_per_token(&m, T) * tokens;
    printf("{\"model\": \"%s\", \"backend\": \"%s\", \"batch\": %d, \"seq\": %d, "
           "\"params\": %zu, \"train_step_ms_median\": %.2f, \"train_step_ms_min\": %.2f, "
           "\"train_step_ms_max\": %.2f, \"train_samples_per_s\": %.1f, "
           "\"train_tokens_per_s\": %.0f, \"train_tflops\": %.3f, \"eval_samples_per_s\": %.1f}\n",
           name, be->name, B, T, m.n_trained, train_med * 1e3, train_min * 1e3, train_max * 1e3,
           B / train_med, tokens / train_med, flops / train_med / 1e12, B / eval_med);
    fflush(stdout);
    free(times), free(ids), free(lengths), free(labels);
    model_free(&m);
    return 0;
}

static int parse_args(int argc, char **argv, BenchArgs *a) {
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fprintf(stderr, "error: %s needs a value\n", k), -1;
        if (!strcmp(k, "--backend")) a->backend = v;
        else if (!strcmp(k, "--model")) a->models = v;
        else if (!strcmp(k, "--batch")) a->batch = atoi(v);
        else if (!strcmp(k, "--seq")) a->seq = atoi(v);
        else if (!strcmp(k, "--steps")) a->steps = atoi(v);
        else if (!strcmp(k, "--warmup")) a->warmup = atoi(v);
        else return fprintf(stderr, "error: unknown flag %s (see the comment in bench/bench.c)\n", k), -1;
        i++;
    }
    if (a->batch < 1 || a->seq < 1 || a->steps < 1 || a->warmup < 0)
        return fprintf(stderr, "error: --batch, --seq and --steps must be positive\n"), -1;
    return 0;
}

int main(int argc, char **argv) {
    BenchArgs a = {"cpu", "koelectra-small", 32, 128, 5, 1};
    if (parse_args(argc, argv, &a) != 0) return 2;
    const Backend *be = !strcmp(a.backend, "cuda") ? backend_cuda() : backend_cpu();
    if (!be) {
        fprintf(stderr, "error: --backend %s: no CUDA device or not built with CUDA\n", a.backend);
        return 2;
    }
    char *models = xstrdup(a.models);
    int rc = 0;
    for (char *name = strtok(models, ","); name; name = strtok(NULL, ","))
        rc |= bench_model(name, be, &a) != 0;
    free(models);
    return rc ? 1 : 0;
}
