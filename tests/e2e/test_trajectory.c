/* Same trajectory as the original: run_seq_cls (nsmc), run_ner (naver-ner) and run_squad
 * (korquad) train a tiny ELECTRA from the weights in tests/fixtures/trajectory/model for ~30
 * optimizer steps on a head of the real data, and every per-step loss in log.jsonl must be
 * within 1e-4 (relative) of what the original procedure (transformers 3.3.1 AdamW, linear
 * warmup schedule, clipping, accumulation, the same batches) gives in PyTorch
 * (tests/fixtures/make_trajectory_fixtures.py). A control run with the learning rate 1% off
 * must fail the same comparison. Skips without the real data or the koelectra-v3 vocabulary. */
#include "e2e/e2e.h"

#define FIX "tests/fixtures/trajectory"

static const char *const TASKS[] = {"nsmc", "naver-ner", "korquad"};
static const double REL_TOL = 1e-4;

static cJSON *read_json(const char *path) {
    char *text;
    Error e;
    if (read_file(path, &text, NULL, &e) != 0) return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

/* the train file the fixture was made from: the first `lines` lines of the real file, or
 * its first `articles` SQuAD articles */
static int cut_subset(const E2E *x, const char *task, const cJSON *subset) {
    const char *src_name = cJSON_GetObjectItem(subset, "source")->valuestring;
    const char *dst_name = cJSON_GetObjectItem(subset, "target")->valuestring;
    char *src = strfmt("%s/%s/%s", x->real_data, task, src_name);
    char *dir = strfmt("%s/%s", x->data, task), *dst = strfmt("%s/%s", dir, dst_name);
    char *text = NULL;
    size_t len;
    Error e;
    int rc = make_dirs(dir, &e) == 0 && read_file(src, &text, &len, &e) == 0 ? 0 : -1;
    cJSON *lines = cJSON_GetObjectItem(subset, "lines");
    if (rc == 0 && lines) {
        size_t end = 0;
        for (int n = 0; n < lines->valueint && end < len; end++) n += text[end] == '\n';
        rc = write_file_atomic(dst, text, end, &e);
    } else if (rc == 0) {
        cJSON *all = cJSON_Parse(text), *data = cJSON_GetObjectItem(all, "data");
        int keep = cJSON_GetObjectItem(subset, "articles")->valueint;
        while (cJSON_GetArraySize(data) > keep) cJSON_DeleteItemFromArray(data, keep);
        char *json = cJSON_PrintUnformatted(all);
        rc = json ? write_file_atomic(dst, json, strlen(json), &e) : -1;
        free(json);
        cJSON_Delete(all);
    }
    CHECK(rc == 0, "%s: cannot cut the train subset from %s", task, src);
    free(text), free(src), free(dir), free(dst);
    return rc;
}

/* runs the task's program with the fixture's overrides (+ extra, NULL-ended); returns the
 * output folder, or NULL when the run failed */
static char *run_task(const E2E *x, const cJSON *fix, const char *task, const char *tag,
                      const char *vocab, const char *const *extra) {
    char *ckpt = strfmt("%s/%s-%s", x->root, task, tag);
    char *log = strfmt("%s.log", ckpt), *out = strfmt("%s/out", ckpt);
    const char *model = FIX "/model";
    const char *argv[96];
    int n = 0;
    argv[n++] = cJSON_GetObjectItem(fix, "program")->valuestring;
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(fix, "args")) {
        if (n < 80 && cJSON_IsString(a)) argv[n++] = a->valuestring;
    }
    const char *ours[] = {"--model_name_or_path", model, "--vocab_file", vocab, "--data_dir",
                          x->data, "--ckpt_dir", ckpt, "--output_dir", "out"};
    for (int i = 0; i < 10; i++) argv[n++] = ours[i];
    for (int i = 0; extra && extra[i] && n < 95; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    int code = e2e_wait(e2e_spawn((char *const *)argv, log));
    CHECK(code == 0, "%s (%s): %s exited with %d; see %s", task, tag, argv[0], code, log);
    free(ckpt), free(log);
    if (code == 0) return out;
    free(out);
    return NULL;
}

static double number(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* the fixture's keys this test reads, with their types */
static int fixture_ok(const cJSON *fix) {
    const cJSON *sub = cJSON_GetObjectItem(fix, "subset");
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(fix, "losses"));
    return cJSON_IsString(cJSON_GetObjectItem(fix, "program")) &&
           cJSON_IsArray(cJSON_GetObjectItem(fix, "args")) && n > 0 &&
           cJSON_GetArraySize(cJSON_GetObjectItem(fix, "steps")) == n &&
           cJSON_IsString(cJSON_GetObjectItem(sub, "source")) &&
           cJSON_IsString(cJSON_GetObjectItem(sub, "target")) &&
           (cJSON_IsNumber(cJSON_GetObjectItem(sub, "lines")) ||
            cJSON_IsNumber(cJSON_GetObjectItem(sub, "articles"))) &&
           isfinite(number(cJSON_GetObjectItem(fix, "hparams"), "learning_rate"));
}

/* compares the "train" lines of out/log.jsonl with the fixture, CHECKing each step when
 * `report`; returns the first step off by more than REL_TOL (0: none; -1: a wrong number of
 * steps or no log) and the worst relative error in *worst */
static int compare_losses(const char *out, const cJSON *fix, const char *what, int report,
                          double *worst) {
    char *path = strfmt("%s/log.jsonl", out);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "%s: no %s", what, path);
    free(path);
    *worst = 0;
    if (!f) return -1;
    const cJSON *steps = cJSON_GetObjectItem(fix, "steps");
    const cJSON *losses = cJSON_GetObjectItem(fix, "losses");
    int n_ref = cJSON_GetArraySize(losses), n = 0, first_bad = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *type = cJSON_GetObjectItem(o, "type");
        if (cJSON_IsString(type) && !strcmp(type->valuestring, "train") && n++ < n_ref) {
            double step = number(o, "step"), loss = number(o, "loss");
            double ref_step = cJSON_GetArrayItem(steps, n - 1)->valuedouble;
            double ref = cJSON_GetArrayItem(losses, n - 1)->valuedouble;
            double rel = fabs(loss - ref) / fabs(ref);
            if (!(rel <= REL_TOL) && !first_bad) first_bad = (int)ref_step;
            if (!(rel <= *worst)) *worst = rel;
            if (report) {
                CHECK(step == ref_step, "%s: log line %d is step %g, the original's is %g",
                      what, n, step, ref_step);
                CHECK(rel <= REL_TOL, "%s: step %g: loss %.7f, the original's %.7f (rel %.2e)",
                      what, ref_step, loss, ref, rel);
            }
        }
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    if (report) CHECK(n == n_ref, "%s: %d optimizer steps, the original made %d", what, n, n_ref);
    return n == n_ref ? first_bad : -1;
}

/* the control: the same run with the learning rate 1% off must fail the comparison */
static void check_control(const E2E *x, const cJSON *fix, const char *task, const char *vocab) {
    char lr[64];
    double base = number(cJSON_GetObjectItem(fix, "hparams"), "learning_rate");
    snprintf(lr, sizeof lr, "%.17g", 1.01 * base);
    const char *extra[] = {"--learning_rate", lr, NULL};
    char *out = run_task(x, fix, task, "control", vocab, extra);
    double worst = 0;
    int first_bad = out ? compare_losses(out, fix, "control", 0, &worst) : -1;
    CHECK(first_bad > 0, "control: learning_rate %s passed the comparison (worst %.2e)", lr, worst);
    printf("control (learning_rate x 1.01): first off at step %d, worst %.2e\n", first_bad, worst);
    free(out);
}

/* one task; returns 0 when its data is not here */
static int check_task(const E2E *x, const char *task, const char *vocab, int control) {
    char *path = strfmt(FIX "/%s/trajectory.json", task);
    cJSON *fix = read_json(path);
    int ok = fix && fixture_ok(fix);
    CHECK(ok, "%s: cannot read, or keys missing", path);
    free(path);
    const cJSON *subset = cJSON_GetObjectItem(fix, "subset");
    char *src = ok ? strfmt("%s/%s/%s", x->real_data, task,
                            cJSON_GetObjectItem(subset, "source")->valuestring) : NULL;
    int have = src && file_exists(src);
    if (src && !have) printf("%s: no %s, skipped\n", task, src);
    char *out = NULL;
    if (have && cut_subset(x, task, subset) == 0) out = run_task(x, fix, task, "run", vocab, NULL);
    if (out) {
        double worst;
        compare_losses(out, fix, task, 1, &worst);
        printf("%s: %d steps, worst relative loss error %.2e\n", task,
               cJSON_GetArraySize(cJSON_GetObjectItem(fix, "losses")), worst);
        if (control) check_control(x, fix, task, vocab);
    }
    free(out), free(src);
    cJSON_Delete(fix);
    return have || !ok;
}

int main(void) {
    E2E x;
    e2e_init(&x, "trajectory");
    const char *vd = getenv("KOELECTRA_VOCAB_DIR");
    char *vocab = strfmt("%s/koelectra-base-v3-discriminator/vocab.txt",
                         vd ? vd : "../shared/vocab");
    if (!x.real_data) TEST_SKIP("KOELECTRA_DATA_DIR not set");
    if (!file_exists(vocab)) TEST_SKIP("no koelectra-v3 vocabulary at %s", vocab);
    setenv("OMP_NUM_THREADS", "1", 1); /* tiny matrices: more threads only add contention */
    int ran = 0;
    for (size_t t = 0; t < sizeof TASKS / sizeof TASKS[0]; t++)
        ran += check_task(&x, TASKS[t], vocab, t == 0);
    free(vocab);
    if (!ran) TEST_SKIP("none of the tasks' data files is in %s", x.real_data);
    free((char *)x.real_data);
    return test_exit("test_trajectory");
}
