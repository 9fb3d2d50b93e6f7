/* The CPU model against HF transformers (tests/fixtures/model, made by make_model_fixtures.py):
 * logits, loss, every parameter gradient, and the parameters after 3 AdamW steps with warmup
 * and clipping, for every family and head, relative L2 error < 1e-4 (DESIGN.md). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <string.h>

#include "host/formats/checkpoint.h"
#include "host/model/model.h"
#include "host/train/schedule.h"
#include "test.h"

#define TOL 1e-4
#define FIXTURES "tests/fixtures/model"

typedef struct {
    int B, T, L;
    HeadKind head;
    int *ids, *types, *lengths, *labels, *start, *end;
    float *targets;
} Inputs;

static float *get_f32(const TensorSet *io, const char *name, size_t *n) {
    const NamedTensor *t = tensorset_find(io, name);
    if (!t) return NULL;
    float *x = xmalloc(t->numel * sizeof(float));
    Error e;
    if (tensor_to_f32(t, x, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    if (n) *n = t->numel;
    return x;
}

static int *get_i32(const TensorSet *io, const char *name) {
    const NamedTensor *t = tensorset_find(io, name);
    if (!t) return NULL;
    int *x = xmalloc(t->numel * sizeof(int));
    Error e;
    if (tensor_to_i32(t, x, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    return x;
}

static void read_inputs(const TensorSet *io, Inputs *in) {
    const NamedTensor *ids = tensorset_find(io, "input_ids");
    in->B = (int)ids->shape[0];
    in->T = (int)ids->shape[1];
    in->ids = get_i32(io, "input_ids");
    in->types = get_i32(io, "token_type_ids");
    int *mask = get_i32(io, "attention_mask");
    in->lengths = xcalloc(in->B, sizeof(int));
    for (int b = 0; b < in->B; b++)
        for (int t = 0; t < in->T; t++) in->lengths[b] += mask[b * in->T + t];
    free(mask);
    const NamedTensor *logits = tensorset_find(io, "logits");
    in->start = get_i32(io, "start_positions");
    in->end = get_i32(io, "end_positions");
    if (in->start) {
        in->head = HEAD_QA;
        in->L = 2;
    } else {
        in->head = logits->ndim == 3 ? HEAD_TOKEN_CLS : HEAD_SEQ_CLS;
        in->L = (int)logits->shape[logits->ndim - 1];
    }
    const NamedTensor *labels = tensorset_find(io, "labels");
    if (labels && labels->dtype == DT_F32) in->targets = get_f32(io, "labels", NULL);
    else in->labels = get_i32(io, "labels");
}

static Batch batch_of(const Inputs *in) {
    Batch b = {in->B, in->T, in->ids, in->types, in->lengths, in->labels, in->targets,
               in->start, in->end, 0};
    return b;
}

static int make_model(const char *dir, const Inputs *in, Model *m) {
    Error e;
    ModelConfig cfg;
    char *path = strfmt("%s/config.json", dir);
    int rc = model_config_read(path, &cfg, &e);
    free(path);
    if (rc == 0) rc = model_create(m, &cfg, in->head, in->L, backend_cpu(), in->B, in->T, &e);
    char *weights = rc == 0 ? hf_weights_file(dir) : NULL;
    if (rc == 0 && !weights) rc = errorf(&e, "%s: no weights file", dir);
    if (rc == 0) rc = model_load(m, weights, 1, &e);
    free(weights);
    if (rc != 0) fprintf(stderr, "%s\n", e.msg);
    return rc;
}

/* our logits in HF's layout: QA's [B,T,2] becomes start_logits then end_logits */
static void check_logits(const char *dir, Model *m, const TensorSet *io, const Inputs *in) {
    size_t n = model_logits_size(m);
    float *ours = xmalloc(n * sizeof(float));
    model_logits(m, ours);
    if (in->head == HEAD_QA) {
        size_t BT = n / 2;
        float *hf = xmalloc(n * sizeof(float));
        float *s = get_f32(io, "start_logits", NULL), *e = get_f32(io, "end_logits", NULL);
        for (size_t i = 0; i < BT; i++) hf[2 * i] = s[i], hf[2 * i + 1] = e[i];
        double err = rel_l2(ours, hf, n);
        CHECK(err < TOL, "%s: qa logits rel err %.3g", dir, err);
        free(s), free(e), free(hf);
    } else {
        size_t nh;
        float *hf = get_f32(io, "logits", &nh);
        CHECK(nh == n, "%s: logits size %zu vs %zu", dir, n, nh);
        double err = nh == n ? rel_l2(ours, hf, n) : INFINITY;
        CHECK(err < TOL, "%s: logits rel err %.3g", dir, err);
        free(hf);
    }
    free(ours);
}

/* names whose true gradient is zero (key biases, ...): HF stores rounding noise for them
 * (params.json "noise_grad"), so they are checked against the global norm, not elementwise */
static int is_noise(cJSON *params, const char *name) {
    cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(params, "parameters"))
        if (!strcmp(cJSON_GetObjectItem(p, "name")->valuestring, name))
            return cJSON_IsTrue(cJSON_GetObjectItem(p, "noise_grad"));
    return 0;
}

static double norm(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

/* every parameter against the fixture's <prefix><name>; with `base` the updates (x - base)
 * are compared, since float32 reaches 3e-5 on those and the weights would hide them */
static void check_params(const char *dir, const Model *m, const float *ours, const float *base,
                         const TensorSet *io, cJSON *params, const char *prefix) {
    double worst = 0, total = norm(ours, m->n_floats);
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        char key[160];
        snprintf(key, sizeof key, "%s%s", prefix, p->name);
        size_t n;
        float *ref = get_f32(io, key, &n);
        CHECK(ref && n == p->numel, "%s: %s missing or wrong size", dir, key);
        if (!ref || n != p->numel) continue;
        const float *x = ours + p->offset;
        if (is_noise(params, p->name)) {
            CHECK(base || norm(x, n) < 1e-5 * total, "%s: %s should be ~0", dir, key);
            free(ref);
            continue;
        }
        float *delta = xmalloc(n * sizeof(float)), *ref_delta = xmalloc(n * sizeof(float));
        for (size_t k = 0; k < n; k++) {
            delta[k] = base ? x[k] - base[p->offset + k] : x[k];
            ref_delta[k] = base ? ref[k] - base[p->offset + k] : ref[k];
        }
        double err = rel_l2(delta, ref_delta, n);
        CHECK(err < TOL, "%s: %s rel err %.3g", dir, key, err);
        if (err > worst) worst = err;
        free(delta), free(ref_delta), free(ref);
    }
    printf("  %-22s %-6s worst rel err %.2e\n", dir + strlen(FIXTURES) + 1, prefix, worst);
}

static cJSON *read_json(const char *dir, const char *file) {
    char *path = strfmt("%s/%s", dir, file), *text;
    Error e;
    if (read_file(path, &text, NULL, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    free(path);
    return j;
}

static void read_train(const char *dir, AdamWArgs *a, int *warmup, int *total) {
    cJSON *j = read_json(dir, "train.json");
    a->lr = (float)cJSON_GetObjectItem(j, "lr")->valuedouble;
    cJSON *betas = cJSON_GetObjectItem(j, "betas");
    a->beta1 = (float)cJSON_GetArrayItem(betas, 0)->valuedouble;
    a->beta2 = (float)cJSON_GetArrayItem(betas, 1)->valuedouble;
    a->eps = (float)cJSON_GetObjectItem(j, "eps")->valuedouble;
    a->weight_decay = (float)cJSON_GetObjectItem(j, "weight_decay")->valuedouble;
    a->max_grad_norm = (float)cJSON_GetObjectItem(j, "max_grad_norm")->valuedouble;
    *warmup = cJSON_GetObjectItem(j, "warmup_steps")->valueint;
    *total = cJSON_GetObjectItem(j, "total_steps")->valueint;
    cJSON_Delete(j);
}

static void check_fixture(const char *dir) {
    Error e;
    char *io_path = strfmt("%s/io.safetensors", dir);
    TensorSet io = {0};
    if (safetensors_read(io_path, &io, &e) != 0) {
        CHECK(0, "%s", e.msg);
        free(io_path);
        return;
    }
    Inputs in = {0};
    read_inputs(&io, &in);
    Batch b = batch_of(&in);
    Model m;
    if (make_model(dir, &in, &m) != 0) {
        CHECK(0, "%s: model did not load", dir);
        return;
    }
    float *host = xmalloc(m.n_floats * sizeof(float)), *initial = xmalloc(m.n_floats * sizeof(float));
    cJSON *params = read_json(dir, "params.json");
    model_get_params(&m, initial);

    model_forward(&m, &b, 1, 1.0f);
    check_logits(dir, &m, &io, &in);
    float loss = model_take_loss(&m), *ref_loss = get_f32(&io, "loss", NULL);
    CHECK(fabsf(loss - ref_loss[0]) <= TOL * fabsf(ref_loss[0]), "%s: loss %.7g vs %.7g", dir,
          loss, ref_loss[0]);
    model_backward(&m);
    model_get_grads(&m, host);
    check_params(dir, &m, host, NULL, &io, params, "grad.");

    /* three optimizer steps from the initial weights on the same batch */
    model_free(&m);
    make_model(dir, &in, &m);
    AdamWArgs a;
    int warmup, total;
    read_train(dir, &a, &warmup, &total);
    float *step_loss = get_f32(&io, "step_loss", NULL);
    for (int s = 0; s < 3; s++) {
        model_forward(&m, &b, 1, 1.0f);
        float l = model_take_loss(&m);
        CHECK(fabsf(l - step_loss[s]) <= TOL * fabsf(step_loss[s]), "%s: step %d loss %.7g vs %.7g",
              dir, s + 1, l, step_loss[s]);
        model_backward(&m);
        a.step = s + 1;
        float base = a.lr;
        a.lr = linear_schedule_lr(base, s, warmup, total);
        model_optimizer_step(&m, a);
        a.lr = base;
    }
    model_get_params(&m, host);
    check_params(dir, &m, host, initial, &io, params, "after.");

    free(step_loss), free(ref_loss), free(host), free(initial), free(io_path);
    cJSON_Delete(params);
    free(in.ids), free(in.types), free(in.lengths), free(in.labels), free(in.start), free(in.end);
    free(in.targets);
    model_free(&m);
    tensorset_free(&io);
}

int main(void) {
    DIR *d = opendir(FIXTURES);
    CHECK(d != NULL, "cannot open %s", FIXTURES);
    if (!d) return test_exit("test_model_parity");
    struct dirent *ent;
    int n = 0;
    while ((ent = readdir(d))) {
        if (ent->d_name[0] == '.') continue;
        char *dir = strfmt("%s/%s", FIXTURES, ent->d_name);
        if (dir_exists(dir)) {
            check_fixture(dir);
            n++;
        }
        free(dir);
    }
    closedir(d);
    CHECK(n >= 13, "expected 13 fixture folders, found %d", n);
    return test_exit("test_model_parity");
}
