/* host/model_config: HF-written config.json files (tests/fixtures/configs, made by
 * make_config_fixtures.py) read to the values HF holds, write + read round trips, the built-in
 * models, the real configs under ../shared/vocab, and every bad input named by file and key. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/model/model_config.h"
#include "test.h"

static char tmpdir[] = "/tmp/koe_test_model_config_XXXXXX";

static char *write_tmp(const char *name, const char *text) {
    char *path = strfmt("%s/%s", tmpdir, name);
    Error e;
    if (write_file_atomic(path, text, strlen(text), &e)) fprintf(stderr, "%s\n", e.msg);
    return path;
}

static int close_to(float a, double b) { return fabs(a - b) <= 1e-6 * fabs(b) + 1e-12; }

static int same_config(const ModelConfig *a, const ModelConfig *b) {
    return a->family == b->family && !strcmp(a->model_type, b->model_type) &&
           !strcmp(a->architecture, b->architecture) && a->vocab_size == b->vocab_size &&
           a->embedding_size == b->embedding_size && a->hidden_size == b->hidden_size &&
           a->num_layers == b->num_layers && a->num_heads == b->num_heads &&
           a->intermediate_size == b->intermediate_size &&
           a->max_position_embeddings == b->max_position_embeddings &&
           a->type_vocab_size == b->type_vocab_size && a->pad_token_id == b->pad_token_id &&
           a->layer_norm_eps == b->layer_norm_eps && a->hidden_dropout == b->hidden_dropout &&
           a->attention_dropout == b->attention_dropout &&
           a->initializer_range == b->initializer_range &&
           a->classifier_dropout == b->classifier_dropout && a->qa_dropout == b->qa_dropout &&
           a->num_labels == b->num_labels && a->sinusoidal_pos_embds == b->sinusoidal_pos_embds &&
           !strcmp(a->hidden_act, b->hidden_act);
}

/* writes c, reads it back: must be the same config */
static void check_round_trip(const ModelConfig *c, const char *what) {
    char *path = strfmt("%s/roundtrip.json", tmpdir);
    Error e;
    ModelConfig back;
    CHECK(model_config_write_json(c, path, &e) == 0, "%s: %s", what, e.msg);
    CHECK(model_config_read(path, &back, &e) == 0, "%s: %s", what, e.msg);
    CHECK(same_config(c, &back), "%s: differs after write + read", what);
    free(path);
}

/* one line of expected.txt against the full and the diff-only file */
static void check_fixture(const char *line) {
    char name[32];
    int fam, v[9], nl, sin;
    double f[6];
    int n = sscanf(line, "%31s %d %d %d %d %d %d %d %d %d %d %lf %lf %lf %lf %lf %lf %d %d", name,
                   &fam, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &f[0],
                   &f[1], &f[2], &f[3], &f[4], &f[5], &nl, &sin);
    CHECK(n == 19, "bad expected.txt line: %s", line);
    if (n != 19) return;
    for (int diff = 0; diff < 2; diff++) {
        char *path = strfmt("tests/fixtures/configs/%s_%s.json", name, diff ? "diff" : "full");
        ModelConfig c;
        Error e;
        int rc = model_config_read(path, &c, &e);
        CHECK(rc == 0, "%s", e.msg);
        if (rc == 0) {
            const int got[9] = {c.vocab_size, c.embedding_size, c.hidden_size, c.num_layers,
                                c.num_heads, c.intermediate_size, c.max_position_embeddings,
                                c.type_vocab_size, c.pad_token_id};
            const float gotf[6] = {c.layer_norm_eps, c.hidden_dropout, c.attention_dropout,
                                   c.initializer_range, c.classifier_dropout, c.qa_dropout};
            CHECK((int)c.family == fam, "%s: family %d", path, c.family);
            for (int i = 0; i < 9; i++) CHECK(got[i] == v[i], "%s: int %d: %d != %d", path, i, got[i], v[i]);
            for (int i = 0; i < 6; i++)
                CHECK(close_to(gotf[i], f[i]), "%s: float %d: %g != %g", path, i, gotf[i], f[i]);
            CHECK(c.num_labels == nl && c.sinusoidal_pos_embds == sin, "%s: labels %d sin %d",
                  path, c.num_labels, c.sinusoidal_pos_embds);
            CHECK(!strcmp(c.hidden_act, "gelu"), "%s", c.hidden_act);
            check_round_trip(&c, path);
        }
        free(path);
    }
}

static void check_hf_fixtures(void) {
    char *text;
    Error e;
    CHECK(read_file("tests/fixtures/configs/expected.txt", &text, NULL, &e) == 0, "%s", e.msg);
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char *copy = xstrdup(line); /* check_fixture's sscanf must not disturb strtok */
        check_fixture(copy);
        free(copy);
        lines++;
    }
    CHECK(lines == 4, "%d fixtures", lines);
    free(text);
    /* spot checks that do not go through expected.txt */
    ModelConfig c;
    CHECK(model_config_read("tests/fixtures/configs/electra_full.json", &c, &e) == 0, "%s", e.msg);
    CHECK(!strcmp(c.architecture, "ElectraForTokenClassification"), "%s", c.architecture);
    CHECK(c.family == FAMILY_ELECTRA && c.embedding_size == 48 && c.hidden_size == 96, "electra");
    CHECK(model_config_read("tests/fixtures/configs/xlmr_diff.json", &c, &e) == 0, "%s", e.msg);
    CHECK(!strcmp(c.model_type, "xlm-roberta") && c.pad_token_id == 1 && c.layer_norm_eps == 1e-5f,
          "xlmr");
}

static void check_builtins(void) {
    int n = 0;
    for (const char *const *t = BENCHMARK_MODEL_TYPES; *t; t++, n++) {
        ModelConfig c;
        Error e;
        ModelFamily f;
        CHECK(model_config_builtin(*t, &c, &e) == 0, "%s", e.msg);
        CHECK(model_family_of(*t, &f, &e) == 0 && f == c.family, "%s: family", *t);
        CHECK(model_config_validate(&c, *t, &e) == 0, "%s", e.msg);
        check_round_trip(&c, *t);
    }
    CHECK(n == 10, "%d benchmark model types", n);
    ModelConfig a, b;
    Error e;
    CHECK(model_config_builtin("monologg/koelectra-small-v3-discriminator", &a, &e) == 0, "%s", e.msg);
    CHECK(a.vocab_size == 35000 && a.embedding_size == 128 && a.hidden_size == 256 &&
          a.num_heads == 4 && a.intermediate_size == 1024 && a.num_layers == 12, "small-v3");
    CHECK(model_config_builtin("koelectra-small", &b, &e) == 0 && b.vocab_size == 32200, "small");
    CHECK(model_config_builtin("xlm-roberta-base", &a, &e) == 0, "%s", e.msg);
    CHECK(a.family == FAMILY_XLMR && a.vocab_size == 250002 && a.max_position_embeddings == 514 &&
          a.type_vocab_size == 1 && a.pad_token_id == 1 && a.layer_norm_eps == 1e-5f, "xlmr");
    CHECK(model_config_builtin("distilkobert", &a, &e) == 0, "%s", e.msg);
    CHECK(a.num_layers == 3 && a.type_vocab_size == 0 && a.classifier_dropout == 0.2f &&
          a.qa_dropout == 0.1f && a.sinusoidal_pos_embds == 1, "distilkobert");
    CHECK(model_config_builtin("kobert", &a, &e) == 0 && a.vocab_size == 8002, "kobert");
    CHECK(model_config_builtin("hanbert", &a, &e) == 0 && a.vocab_size == 54000, "hanbert");
    CHECK(model_config_builtin("bert-base-uncased", &a, &e) == -1 &&
          strstr(e.msg, "bert-base-uncased: not a built-in model"), "%s", e.msg);
    ModelFamily f;
    CHECK(model_family_of("electra", &f, &e) == -1, "HF names are not benchmark model types");
}

/* the real configs kept under ../shared/vocab (skipped when absent) */
static void check_shared_configs(void) {
    const char *data = getenv("KOELECTRA_DATA_DIR");
    char *vocab = strfmt("%s/../vocab", data ? data : "../shared/data");
    char *base_v3 = strfmt("%s/koelectra-base-v3-discriminator/config.json", vocab);
    char *distil = strfmt("%s/distilkobert/distilkobert_3_layer.json", vocab);
    if (!file_exists(base_v3) || !file_exists(distil)) {
        printf("note: %s absent, real-config checks skipped\n", vocab);
    } else {
        ModelConfig c, b;
        Error e;
        CHECK(model_config_read(base_v3, &c, &e) == 0, "%s", e.msg);
        CHECK(model_config_builtin("koelectra-base-v3", &b, &e) == 0, "%s", e.msg);
        strcpy(b.architecture, "ElectraForPreTraining");
        CHECK(same_config(&c, &b), "base-v3 config.json != built-in");
        /* DistilKoBERT's training config has no model_type: read as the benchmark does */
        CHECK(model_config_read(distil, &c, &e) == -1 && strstr(e.msg, "model_type: missing"),
              "%s", e.msg);
        CHECK(model_config_read_as(distil, FAMILY_DISTILBERT, &c, &e) == 0, "%s", e.msg);
        CHECK(model_config_builtin("distilkobert", &b, &e) == 0, "%s", e.msg);
        b.pad_token_id = 0; /* absent from that file: HF's default */
        CHECK(same_config(&c, &b), "distilkobert_3_layer.json != built-in (but pad)");
    }
    free(vocab);
    free(base_v3);
    free(distil);
}

static void check_bad_inputs(void) {
    const char *base = "{\"model_type\": \"bert\", \"hidden_size\": 96, \"num_attention_heads\": 4";
    const struct { const char *text, *want; } cases[] = {
        {"{\"model_type\": \"gpt2\"}", "model_type: unsupported \"gpt2\""},
        {"{\"hidden_size\": 96}", "model_type: missing"},
        {"{\"model_type\": 3}", "model_type: expected a string, got a number"},
        {"%s, \"hidden_act\": \"relu\"}", "hidden_act: \"relu\" is not supported"},
        {"%s, \"hidden_act\": \"gelu_new\"}", "hidden_act: \"gelu_new\" is not supported"},
        {"{\"model_type\": \"distilbert\", \"activation\": \"relu\"}", "activation: \"relu\""},
        {"{\"model_type\": \"bert\", \"hidden_size\": 100}",
         "hidden_size: 100 is not divisible by num_attention_heads 12"},
        {"{\"model_type\": \"distilbert\", \"dim\": 100}", "dim: 100 is not divisible by n_heads 12"},
        {"%s, \"vocab_size\": \"8002\"}", "vocab_size: expected an integer, got a string"},
        {"%s, \"num_hidden_layers\": 2.5}", "num_hidden_layers: expected an integer"},
        {"%s, \"num_hidden_layers\": 0}", "num_hidden_layers: must be >= 1 (got 0)"},
        {"%s, \"layer_norm_eps\": \"1e-12\"}", "layer_norm_eps: expected a number, got a string"},
        {"%s, \"layer_norm_eps\": 0}", "layer_norm_eps: must be in (0, 1)"},
        {"%s, \"hidden_dropout_prob\": 1.0}", "hidden_dropout_prob: 1 is not a probability"},
        {"%s, \"classifier_dropout\": -0.1}", "classifier_dropout: -0.1 is not a probability"},
        {"%s, \"pad_token_id\": 40000}", "pad_token_id: 40000 is outside the vocabulary of 30522"},
        {"%s, \"type_vocab_size\": 0}", "type_vocab_size: must be >= 1"},
        {"{\"model_type\": \"distilbert\", \"sinusoidal_pos_embds\": 1}",
         "sinusoidal_pos_embds: expected true or false, got a number"},
        {"%s, \"initializer_range\": 1e39}", "initializer_range: 1e+39 is out of range for a float"},
        {"%s, \"hidden_dropout_prob\": -1e39}", "hidden_dropout_prob: -1e+39 is out of range"},
        {"%s, \"num_labels\": 1e300}", "num_labels: expected an integer, got a fraction or an out"},
        {"%s, \"num_labels\": \"2\"}", "num_labels: expected an integer, got a string"},
        {"%s, \"id2label\": [\"a\", \"b\"]}", "id2label: expected an object, got an array"},
        {"%s, \"architectures\": [7]}", "architectures: expected a list of class names"},
        {"[\"bert\"]", "top level: expected a JSON object"},
        {"{\n\"model_type\": \"bert\",\n\"hidden_size\": 96\n", "line 4: invalid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = strfmt(cases[i].text, base);
        char *path = write_tmp("bad_config.json", text);
        ModelConfig c;
        Error e;
        e.msg[0] = 0;
        CHECK(model_config_read(path, &c, &e) == -1, "case %zu read: %s", i, text);
        CHECK(strncmp(e.msg, path, strlen(path)) == 0, "case %zu: no file name: %s", i, e.msg);
        CHECK(strstr(e.msg, cases[i].want) != NULL, "case %zu: '%s' not in: %s", i,
              cases[i].want, e.msg);
        free(text);
        free(path);
    }
    ModelConfig c;
    Error e;
    CHECK(model_config_read("tests/fixtures/configs/none.json", &c, &e) == -1 &&
          strstr(e.msg, "tests/fixtures/configs/none.json: cannot open"), "%s", e.msg);
    /* writing refuses an invalid config and leaves no file behind */
    CHECK(model_config_builtin("kobert", &c, &e) == 0, "%s", e.msg);
    c.num_heads = 7;
    char *path = strfmt("%s/invalid_out.json", tmpdir);
    CHECK(model_config_write_json(&c, path, &e) == -1 && !file_exists(path), "wrote invalid");
    free(path);
}

/* the benchmark's model_type picks the family (as the original's CONFIG_CLASSES), but a
 * config.json of a model_type no family knows is refused, not built as that family */
static void check_read_as(void) {
    ModelConfig c;
    Error e = {{0}};
    char *path = write_tmp("gpt2.json", "{\"model_type\": \"gpt2\", \"n_embd\": 64}");
    CHECK(model_config_read_as(path, FAMILY_ELECTRA, &c, &e) == -1 &&
              !strncmp(e.msg, path, strlen(path)) &&
              strstr(e.msg, "model_type: unsupported \"gpt2\"") &&
              strstr(e.msg, "electra, bert, distilbert, xlm-roberta, roberta"),
          "gpt2 read as ELECTRA: %s", e.msg);
    free(path);
    path = write_tmp("bert.json", "{\"model_type\": \"bert\", \"hidden_size\": 64}");
    CHECK(model_config_read_as(path, FAMILY_ELECTRA, &c, &e) == 0 &&
              c.family == FAMILY_ELECTRA && !strcmp(c.model_type, "electra") &&
              c.hidden_size == 64, "bert read as ELECTRA (with a warning): %s", e.msg);
    free(path);
}

int main(void) {
    CHECK(mkdtemp(tmpdir) != NULL, "mkdtemp %s", tmpdir);
    if (test_failures) return test_exit("test_model_config");
    check_hf_fixtures();
    check_builtins();
    check_shared_configs();
    check_read_as();
    check_bad_inputs();
    char *cmd = strfmt("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    free(cmd);
    return test_exit("test_model_config");
}
