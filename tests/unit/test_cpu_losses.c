/* The CPU reference losses and optimizer: cross-entropy (with ignored rows), MSE and the QA
 * loss against naive double formulas and finite differences; global_norm_sq against a double
 * sum; AdamW against a double-precision transcription of transformers 3.x + clip_grad_norm_. */
#include <string.h>

#include "kernels/ops.h"
#include "test.h"

static const Backend *be;
static uint64_t rng = 0x243f6a8885a308d3ULL;

static float *rand_floats(size_t n, float lo, float hi) {
    float *x = malloc(n * sizeof(float));
    fill_uniform(x, n, lo, hi, &rng);
    return x;
}

static float *poisoned(size_t n) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

/* g[i] = dL/dx[i] by central differences; L = loss(ctx) evaluated with x perturbed */
typedef double (*LossFn)(void *ctx);
static void check_grad(const char *what, float *x, size_t n, const float *analytic, float eps,
                       double tol, LossFn loss, void *ctx) {
    float *num = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        float x0 = x[i];
        x[i] = x0 + eps;
        double lp = loss(ctx);
        x[i] = x0 - eps;
        double lm = loss(ctx);
        x[i] = x0;
        num[i] = (float)((lp - lm) / (2.0 * eps));
    }
    double err = rel_l2(analytic, num, n);
    CHECK(err < tol, "%s: gradient rel_l2 %.3g vs finite differences", what, err);
    free(num);
}

/* -log softmax(x)[label] over C entries of stride `stride`, in double */
static double naive_ce(const float *x, int C, int stride, int label) {
    double max = -INFINITY, sum = 0;
    for (int c = 0; c < C; c++) max = fmax(max, x[c * stride]);
    for (int c = 0; c < C; c++) sum += exp(x[c * stride] - max);
    return max + log(sum) - x[label * stride];
}

/* --------------------------------------------------------------------------------- losses */

typedef struct {
    int N, C, B, T;
    float *x, *grad, *targets; /* targets: mse only */
    int *labels, *start, *end;
    float grad_scale;
} LossCase;

/* each loss function returns grad_scale * loss, the quantity whose gradient the op writes */
static double ce_loss(void *ctx) {
    LossCase *l = ctx;
    float loss = 0;
    be->cross_entropy(&loss, l->grad, l->x, l->labels, l->N, l->C, l->grad_scale);
    return (double)loss * l->grad_scale;
}

static double mse_loss(void *ctx) {
    LossCase *l = ctx;
    float loss = 0;
    be->mse(&loss, l->grad, l->x, l->targets, l->N, l->grad_scale);
    return (double)loss * l->grad_scale;
}

static double qa_loss(void *ctx) {
    LossCase *l = ctx;
    float loss = 0;
    be->qa_loss(&loss, l->grad, l->x, l->start, l->end, l->B, l->T, l->grad_scale);
    return (double)loss * l->grad_scale;
}

static void test_cross_entropy(void) {
    int labels[] = {2, -100, 0, 4, -100, 1};
    LossCase l = {.N = 6, .C = 5, .labels = labels, .grad_scale = 0.25f};
    size_t n = (size_t)l.N * l.C;
    l.x = rand_floats(n, -3, 3);
    l.grad = poisoned(n);
    float loss = 1.5f; /* the op adds to it */
    be->cross_entropy(&loss, l.grad, l.x, l.labels, l.N, l.C, l.grad_scale);
    double want = 0;
    for (int i = 0; i < l.N; i++)
        if (labels[i] != -100) want += naive_ce(l.x + i * l.C, l.C, 1, labels[i]);
    want /= 4;
    CHECK(fabs(loss - 1.5 - want) < 1e-5, "cross_entropy loss %.7g want %.7g", loss - 1.5, want);
    int ignored_zero = 1;
    for (int c = 0; c < l.C; c++) ignored_zero &= l.grad[1 * l.C + c] == 0 && l.grad[4 * l.C + c] == 0;
    CHECK(ignored_zero, "ignored rows have a nonzero gradient");
    check_grad("cross_entropy dlogits", l.x, n, l.grad, 1e-2f, 2e-3, ce_loss, &l);

    int none[] = {-100, -100, -100, -100, -100, -100};
    l.labels = none;
    free(l.grad);
    float *g = poisoned(n);
    l.grad = g;
    loss = 0.75f;
    be->cross_entropy(&loss, l.grad, l.x, l.labels, l.N, l.C, l.grad_scale);
    double gsum = 0;
    for (size_t i = 0; i < n; i++) gsum += fabs(g[i]);
    CHECK(loss == 0.75f && gsum == 0, "all-ignored batch: loss %g grad |sum| %g", loss, gsum);
    free(l.x), free(g);
}

static void test_mse(void) {
    LossCase l = {.N = 7, .grad_scale = 0.5f};
    l.x = rand_floats(l.N, -2, 5);
    l.targets = rand_floats(l.N, 0, 5);
    l.grad = poisoned(l.N);
    float loss = 0.5f;
    be->mse(&loss, l.grad, l.x, l.targets, l.N, l.grad_scale);
    double want = 0;
    for (int i = 0; i < l.N; i++) want += ((double)l.x[i] - l.targets[i]) * (l.x[i] - l.targets[i]);
    want /= l.N;
    CHECK(fabs(loss - 0.5 - want) < 1e-5 * want, "mse loss %.7g want %.7g", loss - 0.5, want);
    check_grad("mse dpred", l.x, l.N, l.grad, 1e-2f, 2e-3, mse_loss, &l);
    free(l.x), free(l.targets), free(l.grad);
}

/* HF clamps positions to [0, T] and ignores T: start 9 and end 6 are ignored, -3 becomes 0 */
static void test_qa_loss(void) {
    int start[] = {2, 9, -3, 5}, end[] = {6, 1, 3, 0};
    LossCase l = {.B = 4, .T = 6, .start = start, .end = end, .grad_scale = 2.0f};
    size_t n = (size_t)l.B * l.T * 2;
    l.x = rand_floats(n, -3, 3);
    l.grad = poisoned(n);
    float loss = 0;
    be->qa_loss(&loss, l.grad, l.x, l.start, l.end, l.B, l.T, l.grad_scale);
    double ls = 0, le = 0;
    int ns = 0, ne = 0;
    for (int b = 0; b < l.B; b++) {
        int s = start[b] < 0 ? 0 : start[b] > l.T ? l.T : start[b];
        int e = end[b] < 0 ? 0 : end[b] > l.T ? l.T : end[b];
        if (s != l.T) ls += naive_ce(l.x + b * l.T * 2, l.T, 2, s), ns++;
        if (e != l.T) le += naive_ce(l.x + b * l.T * 2 + 1, l.T, 2, e), ne++;
    }
    double want = (ls / ns + le / ne) / 2;
    CHECK(fabs(loss - want) < 1e-5 * want, "qa_loss %.7g want %.7g", loss, want);
    check_grad("qa_loss dlogits", l.x, n, l.grad, 1e-2f, 2e-3, qa_loss, &l);
    free(l.x), free(l.grad);
}

/* ------------------------------------------------------------------------------ optimizer */

static void test_global_norm_sq(void) {
    size_t n = 100003;
    float *g = rand_floats(n, -1, 1), out = NAN;
    double want = 0;
    for (size_t i = 0; i < n; i++) want += (double)g[i] * g[i];
    be->global_norm_sq(&out, g, n);
    CHECK(fabs(out - want) < 1e-6 * want, "global_norm_sq %.9g want %.9g", out, want);
    free(g);
}

/* transformers 3.x AdamW step after torch.nn.utils.clip_grad_norm_, all in double */
static void reference_adamw(double *p, double *m, double *v, const float *g, size_t n,
                            AdamWArgs a) {
    double norm = 0;
    for (size_t i = 0; i < n; i++) norm += (double)g[i] * g[i];
    norm = sqrt(norm);
    double clip = 1;
    if (a.max_grad_norm > 0 && a.max_grad_norm / (norm + 1e-6) < 1)
        clip = a.max_grad_norm / (norm + 1e-6);
    double step_size = a.lr * sqrt(1 - pow(a.beta2, a.step)) / (1 - pow(a.beta1, a.step));
    for (size_t i = 0; i < n; i++) {
        double gi = g[i] * clip;
        m[i] = a.beta1 * m[i] + (1 - a.beta1) * gi;
        v[i] = a.beta2 * v[i] + (1 - a.beta2) * gi * gi;
        p[i] -= step_size * m[i] / (sqrt(v[i]) + a.eps);
        if (a.weight_decay > 0) p[i] -= a.lr * a.weight_decay * p[i];
    }
}

static double rel_l2_double(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return isfinite(num) ? sqrt(num / den) : INFINITY;
}

/* Three steps; `clip_active` picks max_grad_norm below / above the gradient norms (or 0 =
 * disabled); `separate_act` gives a distinct compute copy that must follow the params. */
static void test_adamw(float max_grad_norm, float weight_decay, int separate_act) {
    size_t n = 64;
    float *p = rand_floats(n, -1, 1), *m = calloc(n, sizeof(float)), *v = calloc(n, sizeof(float));
    float *act = separate_act ? poisoned(n) : p;
    double *rp = malloc(n * sizeof(double)), *rm = calloc(n, sizeof(double));
    double *rv = calloc(n, sizeof(double)), *delta_ref = malloc(n * sizeof(double));
    float *p0 = malloc(n * sizeof(float)), *delta = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) rp[i] = p0[i] = p[i];
    int clipped = 0;
    for (int step = 1; step <= 3; step++) {
        AdamWArgs a = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-6f,
                       .weight_decay = weight_decay, .step = step, .max_grad_norm = max_grad_norm};
        float *g = rand_floats(n, -0.5f, 0.5f), norm_sq;
        be->global_norm_sq(&norm_sq, g, n);
        clipped |= max_grad_norm > 0 && sqrtf(norm_sq) > max_grad_norm;
        be->adamw(p, act, g, m, v, n, &norm_sq, a);
        reference_adamw(rp, rm, rv, g, n, a);
        free(g);
    }
    /* compare the change of the parameters, which is small next to the parameters */
    for (size_t i = 0; i < n; i++) delta[i] = p[i] - p0[i], delta_ref[i] = rp[i] - p0[i];
    double ep = rel_l2_double(delta, delta_ref, n), em = rel_l2_double(m, rm, n);
    double ev = rel_l2_double(v, rv, n);
    CHECK(ep < 2e-5 && em < 1e-5 && ev < 1e-5,
          "adamw (max_norm %g, wd %g): rel_l2 delta-p %.3g m %.3g v %.3g", max_grad_norm,
          weight_decay, ep, em, ev);
    CHECK(clipped == (max_grad_norm > 0 && max_grad_norm < 1), "test setup: clipping %d", clipped);
    CHECK(memcmp(act, p, n * sizeof(float)) == 0, "params_act does not follow params");
    if (separate_act) free(act);
    free(p), free(m), free(v), free(rp), free(rm), free(rv), free(delta_ref), free(p0), free(delta);
}

int main(void) {
    be = backend_cpu();
    test_cross_entropy();
    test_mse();
    test_qa_loss();
    test_global_norm_sq();
    test_adamw(1e9f, 0.0f, 1);  /* clipping inactive */
    test_adamw(0.3f, 0.0f, 1);  /* clipping active */
    test_adamw(0.3f, 0.1f, 0); /* clipping active, decay, params_act aliases params */
    test_adamw(0.0f, 0.1f, 1); /* clipping disabled */
    return test_exit("test_cpu_losses");
}
