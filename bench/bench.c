/* Training and evaluation throughput of the benchmark's models at its two shapes, on the CPU
 * or CUDA backend, in two padding modes:
 *
 *   shapes   nsmc     seq 128, configs/nsmc/<model>.json train_batch_size, NSMC reviews
 *            korquad  seq 512, batch 8, KorQuAD dev features (question + context windows)
 *   modes    padded   every batch is max length (the original benchmark's pad_to_max_length)
 *            dynamic  every batch is padded to its longest row
 *
 * Batches are real rows when the data is there: the first --examples NSMC training reviews or
 * KorQuAD dev questions, tokenised with one WordPiece vocab (--vocab, KoELECTRA v3's by
 * default) for every model, ids folded into the model's vocab. Else random ids with lengths
 * drawn from a fixed log-normal fitted to those real rows. Weights are random: throughput
 * does not depend on values. Each timed step is one optimizer step (forward, backward,
 * clip, AdamW) on the next batch; warm-up steps come first; eval steps are forward-only over
 * the same batches.
 *
 * Output: one JSON line per (model, shape, mode), then a table. Achieved FLOPs count only
 * real tokens: per row of length L, L x (6 x matmul params + 12 x layers x hidden x L), plus
 * 6 x the head's params per row; MFU divides by --peak_tflops or the peak of --device_name's
 * card (dense bf16); none on the CPU. peak_mem_mib is the backend's high-water mark for the
 * whole process (peak RSS on the CPU): run one model and shape per process for clean numbers.
 * --lengths_dir DIR writes DIR/<shape>-b<B>.json, every batch's row lengths, so that
 * bench/torch_baseline.py runs the same batches.
 *
 *   bench [--backend cpu|cuda] [--model a,b] [--shape nsmc,korquad] [--mode padded,dynamic]
 *         [--steps 20] [--warmup 3] [--eval_steps N] [--examples 2048]
 *         [--data_dir DIR] [--vocab FILE] [--configs DIR] [--korquad_batch 8]
 *         [--device_name NAME] [--peak_tflops X] [--lengths_dir DIR]
 */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "host/formats/config.h"
#include "host/model/model.h"
#include "host/tasks/seq_cls.h"
#include "host/tasks/squad.h"
#include "host/tasks/tasks.h"
#include "host/text/tokenizer.h"
#include "host/train/batch.h"

typedef struct {
    const char *backend, *models, *shapes, *modes;
    int steps, warmup, eval_steps, examples, korquad_batch;
    const char *data_dir, *vocab, *configs, *device_name, *lengths_dir;
    double peak_tflops;
} BenchArgs;

/* ---- rows: real (tokenised) or random, each padded to T ---- */

typedef struct {
    int n, T;
    int *ids, *lengths, *labels; /* [n*T] (v3 vocab ids, 0 = [PAD]), [n], [n] */
    char source[128];
} Rows;

static void rows_alloc(Rows *r, int n, int T, const char *source) {
    r->n = n, r->T = T;
    r->ids = xcalloc((size_t)n * T, sizeof(int));
    r->lengths = xcalloc(n, sizeof(int));
    r->labels = xcalloc(n, sizeof(int));
    snprintf(r->source, sizeof r->source, "%s, %d rows", source, n);
}

static void rows_free(Rows *r) { free(r->ids), free(r->lengths), free(r->labels); }

static int nsmc_rows(const Tokenizer *tok, const BenchArgs *a, int T, Rows *r, Error *e) {
    const TaskInfo *task = task_find("nsmc");
    char *path = task_path(a->data_dir, task, task->train_file);
    ExampleSet ex;
    Features f;
    int rc = read_seq_cls_examples(task, path, &ex, e);
    free(path);
    if (rc != 0) return -1;
    if (ex.n > a->examples) ex.n = a->examples;
    rc = seq_cls_features(tok, task, &ex, T, &f, e);
    free_examples(&ex);
    if (rc != 0) return -1;
    rows_alloc(r, f.n, T, "nsmc ratings_train.txt");
    memcpy(r->ids, f.input_ids, (size_t)f.n * T * sizeof(int));
    memcpy(r->lengths, f.lengths, f.n * sizeof(int));
    memcpy(r->labels, f.labels, f.n * sizeof(int));
    features_free(&f);
    return 0;
}

/* evaluation features (every window of every question), as run_squad builds them */
static int korquad_rows(const Tokenizer *tok, const BenchArgs *a, int T, Rows *r, Error *e) {
    char *path = strfmt("%s/korquad/KorQuAD_v1.0_dev.json", a->data_dir);
    QaExampleSet set;
    QaFeatures f;
    int rc = read_qa_examples(path, &set, e);
    free(path);
    if (rc != 0) return -1;
    int n_all = set.n;
    if (set.n > a->examples) set.n = a->examples;
    QaFeatureArgs fa = {T, 128, 64, 0};
    rc = qa_make_features(tok, &set, &fa, &f, e);
    set.n = n_all;
    free_qa_examples(&set);
    if (rc != 0) return -1;
    rows_alloc(r, f.n, T, "korquad KorQuAD_v1.0_dev.json");
    memcpy(r->ids, f.input_ids, (size_t)f.n * T * sizeof(int));
    memcpy(r->lengths, f.lengths, f.n * sizeof(int));
    qa_features_free(&f);
    return 0;
}

static uint64_t xorshift(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static double uniform01(uint64_t *s) { return ((xorshift(s) >> 11) + 0.5) / 9007199254740992.0; }

/* lengths ~ exp(N(mu, sigma)) clamped to [3, T]: mu and sigma fitted to the real rows (see
 * shape_fallback); ids uniform over the v3 vocab */
static void random_rows(Rows *r, int n, int T, double mu, double sigma) {
    rows_alloc(r, n, T, "random (log-normal lengths fitted to the real data)");
    uint64_t s = 88172645463325252ULL;
    for (int i = 0; i < n; i++) {
        double z = sqrt(-2 * log(uniform01(&s))) * cos(6.283185307179586 * uniform01(&s));
        int len = (int)lround(exp(mu + sigma * z));
        r->lengths[i] = len < 3 ? 3 : len > T ? T : len;
        for (int t = 0; t < r->lengths[i]; t++) r->ids[(size_t)i * T + t] = 5 + (int)(xorshift(&s) % 34995);
        r->labels[i] = (int)(xorshift(&s) & 1);
    }
}

/* ---- shapes ---- */

typedef struct {
    const char *name;
    HeadKind head;
    int T;
    double mu, sigma; /* the random fallback's log-lengths, from the real rows (v3 vocab) */
} Shape;

static const Shape SHAPES[] = {
    {"nsmc", HEAD_SEQ_CLS, 128, 2.893, 0.682},
    {"korquad", HEAD_QA, 512, 5.675, 0.277},
};

static const Shape *shape_find(const char *name) {
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++)
        if (!strcmp(SHAPES[i].name, name)) return &SHAPES[i];
    return NULL;
}

/* real rows when the data and vocab are there, else random ones (with a note) */
static void shape_rows(const Shape *sh, const BenchArgs *a, Rows *r) {
    Error e = {{0}};
    TokenizerSpec spec = {TOK_WORDPIECE, a->vocab, NULL, 0};
    Tokenizer *tok = file_exists(a->vocab) ? tokenizer_open(&spec, &e) : NULL;
    int rc = -1;
    if (tok && sh->head == HEAD_SEQ_CLS) rc = nsmc_rows(tok, a, sh->T, r, &e);
    else if (tok) rc = korquad_rows(tok, a, sh->T, r, &e);
    else if (!e.msg[0]) errorf(&e, "%s: no such vocab file", a->vocab);
    tokenizer_free(tok);
    if (rc == 0 && r->n > 0) return;
    if (rc == 0) rows_free(r);
    fprintf(stderr, "note: %s: random batches (%s)\n", sh->name, e.msg[0] ? e.msg : "no rows");
    random_rows(r, a->examples, sh->T, sh->mu, sh->sigma);
}

static int shape_batch(const Shape *sh, const char *model, const BenchArgs *a, int *B, Error *e) {
    if (sh->head == HEAD_QA) return *B = a->korquad_batch, 0;
    char *path = strfmt("%s/nsmc/%s.json", a->configs, model);
    TrainArgs ta;
    int rc = train_args_load(path, &ta, e);
    free(path);
    *B = ta.train_batch_size;
    return rc;
}

/* ---- batches ---- */

/* a v3 vocab id in the model's vocab: specials kept, the rest folded above them; never the
 * model's pad id on a real token (XLM-R's positions count non-pad ids) */
static int map_id(int id, const ModelConfig *c) {
    if (id >= c->vocab_size) id = 5 + (id - 5) % (c->vocab_size - 5);
    return id == c->pad_token_id ? 5 : id;
}

/* the rows as the model's features: ids folded into its vocab and padded with its pad id,
 * and the targets its head trains on (a made-up answer span for QA) */
static void rows_features(const Rows *r, const Model *m, Features *f) {
    const ModelConfig *c = &m->cfg;
    features_alloc(f, r->n, r->T);
    int qa = m->head == HEAD_QA;
    f->labels = qa ? NULL : xcalloc(r->n, sizeof(int));
    f->start = qa ? xcalloc(r->n, sizeof(int)) : NULL;
    f->end = qa ? xcalloc(r->n, sizeof(int)) : NULL;
    for (int i = 0; i < r->n; i++) {
        int len = f->lengths[i] = r->lengths[i];
        for (int t = 0; t < r->T; t++) {
            size_t k = (size_t)i * r->T + t;
            f->input_ids[k] = t < len ? map_id(r->ids[k], c) : c->pad_token_id;
        }
        if (qa) f->start[i] = len / 2, f->end[i] = len / 2 + (len > 8 ? 3 : 0);
        else f->labels[i] = r->labels[i];
    }
}

/* batch k: rows k*B .. k*B+B-1 of the pool (wrapping), laid out by the trainer's make_batch */
static Batch pool_batch(const Model *m, const Features *f, int k, int B, BatchLayout layout,
                        BatchBuf *bb, int *idx) {
    for (int i = 0; i < B; i++) idx[i] = (int)(((size_t)k * B + i) % f->n);
    return make_batch(m, f, idx, B, layout, bb);
}

/* ---- FLOPs ---- */

/* 6 x matmul params per real token + 12 x layers x hidden x L for a row of L real tokens,
 * plus the [CLS] head once per row */
static double useful_flops(const Model *m, const Batch *b, int exec_all) {
    const ModelConfig *c = &m->cfg;
    double H = c->hidden_size, E = c->embedding_size, L = c->num_layers;
    double per_token = L * (4 * H * H + 2 * H * c->intermediate_size) + (E != H ? E * H : 0);
    double per_row = 0;
    if (m->head == HEAD_SEQ_CLS) per_row = H * H + H * m->num_labels;
    else per_token += H * m->num_labels;
    double flops = 0;
    for (int i = 0; i < b->B; i++) {
        double len = exec_all ? b->T : b->lengths[i];
        flops += len * (6 * per_token + 12 * L * H * len) + 6 * per_row;
    }
    return flops;
}

/* dense bf16 peak by card name, 0 when unknown */
static double card_peak_tflops(const char *name) {
    if (!name) return 0;
    if (strstr(name, "H100") && strstr(name, "PCIe")) return 756;
    if (strstr(name, "H100") || strstr(name, "H200")) return 989;
    if (strstr(name, "A100")) return 312;
    return 0;
}

/* ---- timing ---- */

typedef struct {
    int steps;
    double median, p10, p90, min, max; /* step seconds */
    double seconds, samples, real_tokens, exec_tokens, flops, exec_flops;
} Phase;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *sorted, int n, double p) {
    return sorted[(int)lround(p * (n - 1))];
}

/* the pool of rows as features, and one batch's staging */
typedef struct {
    Features f;
    BatchLayout layout; /* max-length (padded) or dynamic */
    BatchBuf bb;
    int *idx;
} Pool;

/* n steps over batches k0.., each timed up to the loss read (which synchronises) */
static Phase run_phase(Model *m, Pool *pool, int k0, int n, int B, int train) {
    AdamWArgs adam = adamw_args(5e-5f, 1e-8f, 0.0f, 1, 1.0f);
    Phase p = {.steps = n};
    double *times = xcalloc(n > 0 ? n : 1, sizeof(double));
    for (int s = 0; s < n; s++) {
        Batch b = pool_batch(m, &pool->f, k0 + s, B, pool->layout, &pool->bb, pool->idx);
        double t0 = now_seconds();
        model_forward(m, &b, train, 1.0f);
        if (train) {
            model_backward(m);
            adam.step = s + 1;
            model_optimizer_step(m, adam);
        }
        model_take_loss(m);
        times[s] = now_seconds() - t0;
        p.seconds += times[s];
        p.samples += B;
        for (int i = 0; i < B; i++) p.real_tokens += b.lengths[i];
        p.exec_tokens += (double)B * b.T;
        p.flops += useful_flops(m, &b, 0);
        p.exec_flops += useful_flops(m, &b, 1);
    }
    qsort(times, n, sizeof(double), cmp_double);
    if (n > 0) {
        p.median = pct(times, n, 0.5), p.p10 = pct(times, n, 0.1), p.p90 = pct(times, n, 0.9);
        p.min = times[0], p.max = times[n - 1];
    }
    free(times);
    return p;
}

/* ---- output ---- */

#define MAX_RESULTS 256

typedef struct {
    char model[32], shape[16], mode[16];
    int B, T;
    Phase train, eval;
    double peak_mib, mfu;
} Result;

static void print_json(const Result *x, const Model *m, const Rows *r, const BenchArgs *a) {
    const Phase *t = &x->train, *v = &x->eval;
    printf("{\"model\": \"%s\", \"shape\": \"%s\", \"mode\": \"%s\", \"backend\": \"%s\", "
           "\"device\": \"%s\", \"threads\": %d, \"batch\": %d, \"seq\": %d, \"data\": \"%s\", "
           "\"params\": %zu, \"steps\": %d, \"warmup\": %d, ",
           x->model, x->shape, x->mode, m->be->name, a->device_name ? a->device_name : "",
           omp_get_max_threads(), x->B, x->T, r->source, model_num_params(m), t->steps,
           a->warmup);
    printf("\"train_step_ms_median\": %.3f, \"train_step_ms_p10\": %.3f, "
           "\"train_step_ms_p90\": %.3f, \"train_step_ms_min\": %.3f, \"train_step_ms_max\": %.3f, ",
           t->median * 1e3, t->p10 * 1e3, t->p90 * 1e3, t->min * 1e3, t->max * 1e3);
    printf("\"mean_real_len\": %.1f, \"mean_padded_len\": %.1f, \"train_samples_per_s\": %.2f, "
           "\"train_real_tokens_per_s\": %.1f, \"train_tflops\": %.4f, \"train_exec_tflops\": %.4f, ",
           t->real_tokens / t->samples, t->exec_tokens / t->samples, t->samples / t->seconds,
           t->real_tokens / t->seconds, t->flops / t->seconds / 1e12,
           t->exec_flops / t->seconds / 1e12);
    if (x->mfu > 0) printf("\"mfu\": %.4f, ", x->mfu);
    printf("\"eval_samples_per_s\": %.2f, \"eval_real_tokens_per_s\": %.1f, "
           "\"peak_mem_mib\": %.0f}\n",
           v->samples / v->seconds, v->real_tokens / v->seconds, x->peak_mib);
    fflush(stdout);
}

static void print_table(const Result *res, int n) {
    printf("\n%-16s %-8s %-8s %8s %20s %10s %12s %10s %8s %6s %8s\n", "model", "shape", "mode",
           "BxT", "step ms med (p10-p90)", "train s/s", "real tok/s", "eval s/s", "TFLOP/s",
           "MFU", "peak MiB");
    for (int i = 0; i < n; i++) {
        const Result *x = &res[i];
        const Phase *t = &x->train;
        char bt[24], ms[48], mfu[16] = "-";
        snprintf(bt, sizeof bt, "%dx%d", x->B, x->T);
        snprintf(ms, sizeof ms, "%.2f (%.2f-%.2f)", t->median * 1e3, t->p10 * 1e3, t->p90 * 1e3);
        if (x->mfu > 0) snprintf(mfu, sizeof mfu, "%.1f%%", 100 * x->mfu);
        printf("%-16s %-8s %-8s %8s %20s %10.1f %12.0f %10.1f %8.3f %6s %8.0f\n", x->model,
               x->shape, x->mode, bt, ms, t->samples / t->seconds, t->real_tokens / t->seconds,
               x->eval.samples / x->eval.seconds, t->flops / t->seconds / 1e12, mfu, x->peak_mib);
    }
}

/* DIR/<shape>-b<B>.json: every batch's row lengths, warm-up batches first */
static int write_lengths(const BenchArgs *a, const Shape *sh, const Rows *r, int B, Error *e) {
    int nb = a->warmup + (a->steps > a->eval_steps ? a->steps : a->eval_steps);
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len); /* grows with what is written */
    if (!f) return errorf(e, "%s: out of memory", a->lengths_dir);
    fprintf(f, "{\"shape\": \"%s\", \"batch\": %d, \"seq\": %d, \"data\": \"%s\", "
            "\"warmup\": %d, \"batches\": [", sh->name, B, sh->T, r->source, a->warmup);
    for (int k = 0; k < nb; k++)
        for (int i = 0; i < B; i++)
            fprintf(f, "%s%d%s", i ? "" : k ? ", [" : "[", r->lengths[((size_t)k * B + i) % r->n],
                    i + 1 < B ? ", " : "]");
    fprintf(f, "]}\n");
    char *path = strfmt("%s/%s-b%d.json", a->lengths_dir, sh->name, B);
    int rc = fclose(f) != 0 ? errorf(e, "%s: out of memory", path)
             : make_dirs(a->lengths_dir, e) || write_file_atomic(path, s, len, e);
    free(path), free(s);
    return rc ? -1 : 0;
}

/* ---- one model at one shape, both modes ---- */

/* warm-up, timed train steps, one untimed then the timed eval steps, on the same batches */
static void bench_mode(Model *m, Pool *pool, int B, double peak, const BenchArgs *a,
                       Result *x) {
    run_phase(m, pool, 0, a->warmup, B, 1);
    x->train = run_phase(m, pool, a->warmup, a->steps, B, 1);
    run_phase(m, pool, a->warmup, 1, B, 0);
    x->eval = run_phase(m, pool, a->warmup, a->eval_steps, B, 0);
    x->peak_mib = m->be->peak_bytes() / 1048576.0;
    x->mfu = peak > 0 ? x->train.flops / x->train.seconds / 1e12 / peak : 0;
}

static int bench_one(const char *model, const Shape *sh, const Backend *be, const BenchArgs *a,
                     Result *out, int *n_out) {
    ModelConfig cfg;
    Error e;
    int B;
    if (model_config_builtin(model, &cfg, &e) != 0 || shape_batch(sh, model, a, &B, &e) != 0)
        return fprintf(stderr, "error: %s\n", e.msg), -1;
    Model m;
    if (model_create(&m, &cfg, sh->head, 2, be, B, sh->T, &e) != 0)
        return fprintf(stderr, "error: %s\n", e.msg), -1;
    m.seed = 42;
    model_init_random(&m, 42);
    Rows r;
    shape_rows(sh, a, &r);
    if (a->lengths_dir && write_lengths(a, sh, &r, B, &e) != 0)
        fprintf(stderr, "warning: %s\n", e.msg);
    Pool pool = {.idx = xmalloc(sizeof(int) * B)};
    rows_features(&r, &m, &pool.f);
    batchbuf_alloc(&pool.bb, B, sh->T);
    double peak = a->peak_tflops > 0 ? a->peak_tflops
                  : strcmp(be->name, "cpu")  ? card_peak_tflops(a->device_name) : 0;
    char *modes = xstrdup(a->modes), *save = NULL;
    for (char *mode = strtok_r(modes, ",", &save); mode && *n_out < MAX_RESULTS;
         mode = strtok_r(NULL, ",", &save)) {
        Result *x = &out[(*n_out)++];
        memset(x, 0, sizeof *x);
        snprintf(x->model, sizeof x->model, "%s", model);
        snprintf(x->shape, sizeof x->shape, "%s", sh->name);
        snprintf(x->mode, sizeof x->mode, "%s", mode);
        x->B = B, x->T = sh->T;
        pool.layout = strcmp(mode, "dynamic") ? LAYOUT_MAX_LENGTH : LAYOUT_DYNAMIC;
        bench_mode(&m, &pool, B, peak, a, x);
        print_json(x, &m, &r, a);
    }
    free(modes);
    features_free(&pool.f);
    batchbuf_free(&pool.bb);
    free(pool.idx);
    rows_free(&r);
    model_free(&m);
    return 0;
}

/* ---- command line ---- */

/* every item of the comma-separated list is x or y */
static int check_list(const char *flag, const char *list, const char *x, const char *y) {
    char *copy = xstrdup(list), *save = NULL;
    int rc = 0;
    for (char *it = strtok_r(copy, ",", &save); it && !rc; it = strtok_r(NULL, ",", &save))
        if (strcmp(it, x) && strcmp(it, y)) {
            fprintf(stderr, "error: %s: %s: not %s or %s\n", flag, it, x, y);
            rc = -1;
        }
    free(copy);
    return rc;
}

static int parse_args(int argc, char **argv, BenchArgs *a) {
    for (int i = 1; i < argc; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fprintf(stderr, "error: %s needs a value\n", k), -1;
        if (!strcmp(k, "--backend")) a->backend = v;
        else if (!strcmp(k, "--model")) a->models = v;
        else if (!strcmp(k, "--shape")) a->shapes = v;
        else if (!strcmp(k, "--mode")) a->modes = v;
        else if (!strcmp(k, "--steps")) a->steps = atoi(v);
        else if (!strcmp(k, "--warmup")) a->warmup = atoi(v);
        else if (!strcmp(k, "--eval_steps")) a->eval_steps = atoi(v);
        else if (!strcmp(k, "--examples")) a->examples = atoi(v);
        else if (!strcmp(k, "--korquad_batch")) a->korquad_batch = atoi(v);
        else if (!strcmp(k, "--data_dir")) a->data_dir = v;
        else if (!strcmp(k, "--vocab")) a->vocab = v;
        else if (!strcmp(k, "--configs")) a->configs = v;
        else if (!strcmp(k, "--device_name")) a->device_name = v;
        else if (!strcmp(k, "--peak_tflops")) a->peak_tflops = atof(v);
        else if (!strcmp(k, "--lengths_dir")) a->lengths_dir = v;
        else return fprintf(stderr, "error: unknown flag %s (see the comment in bench/bench.c)\n", k), -1;
    }
    if (a->eval_steps < 0) a->eval_steps = a->steps;
    if (a->steps < 1 || a->warmup < 0 || a->eval_steps < 1 || a->examples < 1 || a->korquad_batch < 1)
        return fprintf(stderr, "error: --steps, --eval_steps, --examples and --korquad_batch "
                               "must be positive, --warmup not negative\n"), -1;
    return check_list("--mode", a->modes, "padded", "dynamic") ||
           check_list("--shape", a->shapes, "nsmc", "korquad");
}

int main(int argc, char **argv) {
    const char *data = getenv("KOELECTRA_DATA_DIR");
    BenchArgs a = {"cpu", "koelectra-small", "nsmc,korquad", "padded,dynamic", 20, 3, -1, 2048,
                   8, data ? data : "../shared/data",
                   "../shared/vocab/koelectra-base-v3-discriminator/vocab.txt", "configs", NULL,
                   NULL, 0};
    if (parse_args(argc, argv, &a) != 0) return 2;
    const Backend *be = !strcmp(a.backend, "cuda") ? backend_cuda() : backend_cpu();
    if (!be) {
        fprintf(stderr, "error: --backend %s: no CUDA device or not built with CUDA\n", a.backend);
        return 2;
    }
    Result res[MAX_RESULTS];
    int n = 0, rc = 0;
    char *models = xstrdup(a.models), *shapes = xstrdup(a.shapes), *s1 = NULL, *s2 = NULL;
    for (char *model = strtok_r(models, ",", &s1); model; model = strtok_r(NULL, ",", &s1)) {
        for (char *sn = strtok_r(shapes, ",", &s2); sn; sn = strtok_r(NULL, ",", &s2))
            rc |= bench_one(model, shape_find(sn), be, &a, res, &n) != 0;
        free(shapes), shapes = xstrdup(a.shapes); /* strtok_r wrote NULs into it */
    }
    free(models), free(shapes);
    if (n > 0) print_table(res, n);
    return rc;
}
