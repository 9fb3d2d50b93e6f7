/* Loading HF checkpoints into the parameter table: a shape that disagrees with config.json
 * is one error naming the file and the tensor; another head's checkpoint loads the encoder
 * and initialises the new head (HF's "newly initialized" case); save -> load is exact; an
 * integer dtype (safetensors header or pytorch_model.bin storage) or a NaN/Inf value is one
 * error naming the file and the tensor. */
#define _GNU_SOURCE
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "host/formats/checkpoint.h"
#include "host/model/model.h"
#include "test.h"

#define DIR "tests/fixtures/model/electra_seqcls"

static ModelConfig fixture_config(void) {
    ModelConfig c;
    Error e;
    if (model_config_read(DIR "/config.json", &c, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    return c;
}

static void test_shape_mismatch(void) {
    ModelConfig c = fixture_config();
    c.intermediate_size += 1;
    Model m;
    Error e = {{0}};
    CHECK(model_create(&m, &c, HEAD_SEQ_CLS, 3, backend_cpu(), 2, 8, &e) == 0, "%s", e.msg);
    int rc = model_load(&m, DIR "/model.safetensors", 1, &e);
    CHECK(rc != 0, "a wrong intermediate_size must not load");
    CHECK(strstr(e.msg, DIR "/model.safetensors") && strstr(e.msg, "intermediate.dense.weight") &&
              strstr(e.msg, "config"),
          "message names file and tensor: %s", e.msg);
    CHECK(strchr(e.msg, '\n') == NULL, "one line: %s", e.msg);
    model_free(&m);
}

/* a checkpoint of a task with other labels: the head's rows are the task's labels */
static void test_other_task(void) {
    ModelConfig c = fixture_config();
    Model m;
    Error e = {{0}};
    CHECK(model_create(&m, &c, HEAD_SEQ_CLS, 2, backend_cpu(), 2, 8, &e) == 0, "%s", e.msg);
    CHECK(model_load(&m, DIR "/model.safetensors", 1, &e) != 0 &&
              strstr(e.msg, DIR "/model.safetensors: classifier.out_proj.weight: shape [3,16]") &&
              strstr(e.msg, "[2,16] for the task's labels"),
          "a 3-label checkpoint for a 2-label task: %s", e.msg);
    model_free(&m);
}

/* the sequence-classification checkpoint into a token-classification model */
static void test_other_head(void) {
    ModelConfig c = fixture_config();
    Model seq, tok;
    Error e;
    CHECK(model_create(&seq, &c, HEAD_SEQ_CLS, 3, backend_cpu(), 2, 8, &e) == 0, "%s", e.msg);
    CHECK(model_create(&tok, &c, HEAD_TOKEN_CLS, 5, backend_cpu(), 2, 8, &e) == 0, "%s", e.msg);
    CHECK(model_load(&seq, DIR "/model.safetensors", 1, &e) == 0, "%s", e.msg);
    CHECK(model_load(&tok, DIR "/model.safetensors", 1, &e) == 0, "%s", e.msg);
    float *a = xmalloc(seq.n_floats * sizeof(float)), *b = xmalloc(tok.n_floats * sizeof(float));
    model_get_params(&seq, a);
    model_get_params(&tok, b);
    int same = 0, encoder = 0;
    for (int i = 0; i < tok.n_params; i++) {
        const Param *p = &tok.params[i], *q = model_param(&seq, p->name);
        if (!q) {
            CHECK(!strncmp(p->name, "classifier", 10), "%s is only in the token model", p->name);
            continue;
        }
        encoder++;
        same += memcmp(a + q->offset, b + p->offset, p->numel * sizeof(float)) == 0;
    }
    CHECK(encoder > 10 && same == encoder, "%d of %d shared tensors equal", same, encoder);
    const Param *w = model_param(&tok, "classifier.weight");
    double sq = 0;
    for (size_t k = 0; k < w->numel; k++) sq += b[w->offset + k] * b[w->offset + k];
    CHECK(sq > 0, "the new classifier is initialised, not zero");
    free(a), free(b);
    model_free(&seq);
    model_free(&tok);
}

static void test_save_load_roundtrip(void) {
    ModelConfig c = fixture_config();
    Model m, n;
    Error e;
    model_create(&m, &c, HEAD_QA, 2, backend_cpu(), 1, 4, &e);
    model_create(&n, &c, HEAD_QA, 2, backend_cpu(), 1, 4, &e);
    model_init_random(&m, 7);
    char path[] = "/tmp/koe_test_model_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK(model_save(&m, path, &e) == 0, "%s", e.msg);
    CHECK(model_load(&n, path, 1, &e) == 0, "%s", e.msg);
    float *a = xmalloc(m.n_floats * sizeof(float)), *b = xmalloc(n.n_floats * sizeof(float));
    model_get_params(&m, a);
    model_get_params(&n, b);
    CHECK(memcmp(a, b, m.n_floats * sizeof(float)) == 0, "save -> load is bit-exact");
    unlink(path);
    free(a), free(b);
    model_free(&m);
    model_free(&n);
}

/* the fixture's tensors, copied so they can be edited, then written to a temp file */
static TensorSet fixture_copy(void) {
    TensorSet in = {0}, out = {0};
    Error e;
    CHECK(safetensors_read(DIR "/model.safetensors", &in, &e) == 0, "%s", e.msg);
    for (int i = 0; i < in.n; i++)
        tensorset_add(&out, in.t[i].name, in.t[i].dtype, in.t[i].ndim, in.t[i].shape,
                      in.t[i].data);
    tensorset_free(&in);
    return out;
}

/* loads ts (written to a temp file) and expects one error line naming file, tensor and what */
static void expect_load_error(TensorSet *ts, const char *tensor, const char *what) {
    char path[] = "/tmp/koe_test_bad_weights_XXXXXX";
    close(mkstemp(path));
    Error e = {{0}};
    CHECK(safetensors_write(path, ts, &e) == 0, "%s", e.msg);
    ModelConfig c = fixture_config();
    Model m;
    CHECK(model_create(&m, &c, HEAD_SEQ_CLS, 3, backend_cpu(), 2, 8, &e) == 0, "%s", e.msg);
    CHECK(model_load(&m, path, 1, &e) != 0, "%s with %s must not load", tensor, what);
    CHECK(strstr(e.msg, path) && strstr(e.msg, tensor) && strstr(e.msg, what) &&
              !strchr(e.msg, '\n'),
          "one line naming the file, %s and '%s': %s", tensor, what, e.msg);
    model_free(&m);
    unlink(path);
}

static NamedTensor *find_mut(TensorSet *ts, const char *name) {
    return (NamedTensor *)tensorset_find(ts, name);
}

/* F32 bits under an integer dtype load as values near 1e9; an integer tensor of the right
 * shape is no float weight either */
static void test_integer_dtype(void) {
    const char *name = "electra.encoder.layer.0.attention.self.query.weight";
    TensorSet ts = fixture_copy();
    find_mut(&ts, name)->dtype = DT_I32; /* same size: only the header changes */
    expect_load_error(&ts, name, "dtype I32 where float weights are expected");
    tensorset_free(&ts);

    ts = fixture_copy();
    find_mut(&ts, "classifier.out_proj.bias")->dtype = DT_U8; /* written: the first bytes */
    expect_load_error(&ts, "classifier.out_proj.bias", "dtype U8");
    tensorset_free(&ts);
}

/* pytorch_model.bin: the tiny BERT's legacy file with its FloatStorage renamed IntStorage
 * (the same 4 bytes per element; the pickle has no offsets, so it stays well formed) */
static void test_integer_storage(void) {
    char *data;
    size_t len;
    Error e = {{0}};
    CHECK(read_file("tests/fixtures/ckpt/bert_seqcls_legacy.bin", &data, &len, &e) == 0, "%s",
          e.msg);
    char *at = memmem(data, len, "FloatStorage", 12);
    CHECK(at != NULL, "the legacy fixture has no FloatStorage");
    if (!at) return;
    memcpy(at, "IntStorage", 10);
    memmove(at + 10, at + 12, len - (size_t)(at + 12 - data));
    char path[] = "/tmp/koe_test_int_storage_XXXXXX";
    close(mkstemp(path));
    CHECK(write_file_atomic(path, data, len - 2, &e) == 0, "%s", e.msg);
    ModelConfig c;
    Model m;
    CHECK(model_config_read("tests/fixtures/model/bert_seqcls/config.json", &c, &e) == 0, "%s",
          e.msg);
    CHECK(model_create(&m, &c, HEAD_SEQ_CLS, 3, backend_cpu(), 1, 8, &e) == 0, "%s", e.msg);
    CHECK(model_load(&m, path, 1, &e) != 0 && strstr(e.msg, path) &&
              strstr(e.msg, "bert.embeddings.word_embeddings.weight: dtype I32"),
          "an IntStorage in pytorch_model.bin names the file and tensor: %s", e.msg);
    model_free(&m);
    unlink(path);
    free(data);
}

/* NaN or Inf anywhere in the weights: named at load time, not as "step 1: loss is nan" */
static void test_not_finite(void) {
    const char *names[] = {"electra.embeddings.word_embeddings.weight",
                           "electra.encoder.layer.1.output.LayerNorm.bias"};
    const float bad[] = {NAN, -INFINITY};
    for (int k = 0; k < 2; k++) {
        TensorSet ts = fixture_copy();
        NamedTensor *t = find_mut(&ts, names[k]);
        size_t i = t->numel - 1;
        memcpy((float *)t->data + i, &bad[k], sizeof(float));
        char *what = strfmt("element %zu is %s", i, k ? "-inf" : "nan");
        expect_load_error(&ts, names[k], what);
        free(what);
        tensorset_free(&ts);
    }
}

int main(void) {
    test_shape_mismatch();
    test_other_task();
    test_integer_dtype();
    test_integer_storage();
    test_not_finite();
    test_other_head();
    test_save_load_roundtrip();
    return test_exit("test_model_load");
}
