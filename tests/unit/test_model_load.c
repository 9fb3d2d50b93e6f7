/* Loading HF checkpoints into the parameter table: a shape that disagrees with config.json
 * is one error naming the file and the tensor; another head's checkpoint loads the encoder
 * and initialises the new head (HF's "newly initialized" case); save -> load is exact. */
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

int main(void) {
    test_shape_mismatch();
    test_other_head();
    test_save_load_roundtrip();
    return test_exit("test_model_load");
}
