/* Checkpoints transformers loads: for tiny models of each family and head (the weights of
 * tests/fixtures/model), checkpoint_write_hf writes both formats; each file, read back, must
 * give the logits transformers 3.3.1 computed from the very same pytorch_model.bin (recorded in
 * tests/fixtures/export/ by make_export_fixtures.py, which also checks transformers 5.x on
 * both formats); data.pkl must be byte for byte torch.save's, and config.json and
 * tokenizer_config.json what transformers was shown.
 *
 * `test_hf_export --write DIR` writes the checkpoints and our logits (and our token ids for
 * the cases with a tokenizer) under DIR/<case>/ for that script. */
#include <cjson/cJSON.h>
#include <string.h>
#include <zip.h>

#include "host/formats/checkpoint.h"
#include "host/formats/config.h"
#include "host/model/model.h"
#include "host/tasks/tasks.h"
#include "host/text/tokenizer.h"
#include "host/train/train.h"
#include "test.h"

#define MODELS "tests/fixtures/model"
#define EXPORT "tests/fixtures/export"
#define KOBERT_VOCAB "../shared/vocab/kobert"
#define SENTENCE "한국어를 공유합니다. Good movie"

/* a case: the model fixture whose weights and inputs it uses, the label names, the tokenizer */
typedef struct {
    const char *name, *model;
    const char *labels_of; /* a task whose labels config.json gets, or NULL: LABEL_<i> */
    const char *vocab;     /* "wordpiece" (written here), "kobert" (../shared), NULL: none */
} Case;

static const Case CASES[] = {
    {"electra_seqcls", "electra_seqcls", "kornli", "wordpiece"},
    {"electra_regression", "electra_regression", NULL, "wordpiece"},
    {"bert_tokcls", "bert_tokcls", NULL, "wordpiece"},
    {"distilbert_qa", "distilbert_qa", NULL, "wordpiece"},
    {"xlmr_seqcls", "xlmr_seqcls", "hate-speech", NULL},
    {"kobert_seqcls", "bert_seqcls", "kornli", "kobert"},
};

typedef struct {
    int B, T, L;
    HeadKind head;
    int *ids, *types, *lengths;
} Inputs;

static void die(const char *what, const Error *e) {
    fprintf(stderr, "%s: %s\n", what, e ? e->msg : "");
    exit(1);
}

static int *ints(const TensorSet *io, const char *name) {
    const NamedTensor *t = tensorset_find(io, name);
    if (!t) return NULL;
    int *x = xmalloc(t->numel * sizeof(int));
    Error e;
    if (tensor_to_i32(t, x, &e) != 0) die(name, &e);
    return x;
}

static void read_inputs(const char *model_dir, Inputs *in) {
    char *path = strfmt("%s/io.safetensors", model_dir);
    TensorSet io = {0};
    Error e;
    if (safetensors_read(path, &io, &e) != 0) die(path, &e);
    const NamedTensor *ids = tensorset_find(&io, "input_ids"), *logits = tensorset_find(&io, "logits");
    in->B = (int)ids->shape[0], in->T = (int)ids->shape[1];
    in->ids = ints(&io, "input_ids");
    in->types = ints(&io, "token_type_ids");
    int *mask = ints(&io, "attention_mask");
    in->lengths = xcalloc(in->B, sizeof(int));
    for (int i = 0; i < in->B * in->T; i++) in->lengths[i / in->T] += mask[i];
    in->head = !logits ? HEAD_QA : logits->ndim == 3 ? HEAD_TOKEN_CLS : HEAD_SEQ_CLS;
    in->L = !logits ? 2 : (int)logits->shape[logits->ndim - 1];
    free(mask), free(path);
    tensorset_free(&io);
}

static void model_from(const char *config, const char *weights, const Inputs *in, Model *m) {
    ModelConfig cfg;
    Error e;
    if (model_config_read(config, &cfg, &e) != 0 ||
        model_create(m, &cfg, in->head, in->L, backend_cpu(), in->B, in->T, &e) != 0 ||
        model_load(m, weights, 1, &e) != 0)
        die(weights, &e);
}

static float *logits_of(Model *m, const Inputs *in, size_t *n) {
    Batch b = {in->B, in->T, in->ids, in->types, in->lengths, NULL, NULL, NULL, NULL, 0};
    model_forward(m, &b, 0, 1.0f);
    *n = model_logits_size(m);
    float *x = xmalloc(*n * sizeof(float));
    model_logits(m, x);
    return x;
}

/* a WordPiece vocabulary whose tokens only match with do_lower_case false ("Good") */
static const char *write_vocab(const char *dir) {
    char *path = strfmt("%s/vocab.txt", dir);
    const char *words = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n한국어\n##를\n공유\n##합니다\n.\nGood\n"
                        "good\nmovie\n";
    Error e;
    if (write_file_atomic(path, words, strlen(words), &e) != 0) die(path, &e);
    free(path);
    return dir;
}

/* writes the case's checkpoint (both formats) into out; returns its tokenizer or NULL */
static Tokenizer *export_case(const Case *c, Model *m, char **vocab_dir, const char *out) {
    Error e;
    if (make_dirs(out, &e) != 0) die(out, &e);
    Tokenizer *tok = NULL;
    *vocab_dir = NULL;
    if (c->vocab && !strcmp(c->vocab, "wordpiece")) {
        *vocab_dir = strfmt("%s.vocab", out);
        if (make_dirs(*vocab_dir, &e) != 0) die(*vocab_dir, &e);
        tok = tokenizer_open_dir(write_vocab(*vocab_dir), "koelectra-small-v3", 0, &e);
    } else if (c->vocab) {
        *vocab_dir = xstrdup(KOBERT_VOCAB);
        tok = tokenizer_open_dir(*vocab_dir, "kobert", 0, &e);
    }
    if (c->vocab && !tok) die(c->name, &e);
    TrainArgs a = {0};
    strcpy(a.save_format, "both");
    Trainer t = {.args = &a, .model = m, .tok = tok, .vocab_dir = *vocab_dir,
                 .labels = c->labels_of ? task_find(c->labels_of)->labels : NULL};
    if (checkpoint_write_hf(&t, out, &e) != 0) die(out, &e);
    return tok;
}

static char *slurp(const char *path, size_t *len) {
    char *text = NULL;
    if (read_file(path, &text, len, &(Error){{0}}) != 0) return NULL;
    return text;
}

/* the data.pkl record of a torch.save zip */
static char *data_pkl(const char *path, size_t *len) {
    zip_t *z = zip_open(path, ZIP_RDONLY, NULL);
    zip_stat_t st;
    char *buf = NULL;
    if (z && zip_stat(z, "pytorch_model/data.pkl", 0, &st) == 0) {
        zip_file_t *f = zip_fopen(z, "pytorch_model/data.pkl", 0);
        buf = xmalloc(st.size + 1);
        *len = f ? (size_t)zip_fread(f, buf, st.size) : 0;
        if (f) zip_fclose(f);
    }
    if (z) zip_discard(z);
    return buf;
}

static void check_same_file(const char *ours, const char *want) {
    size_t na = 0, nb = 0;
    char *a = slurp(ours, &na), *b = slurp(want, &nb);
    CHECK(a && b && na == nb && !memcmp(a, b, na), "%s differs from %s", ours, want);
    free(a), free(b);
}

/* our logits from each written file against transformers 3.3.1's, and the files themselves */
static void check_case(const Case *c, const Inputs *in, const char *out, const cJSON *expected) {
    const cJSON *want = cJSON_GetObjectItem(cJSON_GetObjectItem(expected, c->name), "logits");
    CHECK(cJSON_IsArray(want), "%s: no logits in %s/expected.json", c->name, EXPORT);
    if (!cJSON_IsArray(want)) return;
    size_t n = (size_t)cJSON_GetArraySize(want), k = 0;
    float *hf = xmalloc(n * sizeof(float));
    const cJSON *v;
    cJSON_ArrayForEach(v, want) hf[k++] = (float)v->valuedouble;
    const char *files[] = {"model.safetensors", "pytorch_model.bin"};
    for (int i = 0; i < 2; i++) {
        char *config = strfmt("%s/config.json", out), *w = strfmt("%s/%s", out, files[i]);
        Model m = {0};
        model_from(config, w, in, &m);
        size_t got;
        float *ours = logits_of(&m, in, &got);
        double err = got == n ? rel_l2(ours, hf, n) : INFINITY;
        CHECK(err < 1e-5, "%s: %s: logits rel err %.3g against transformers 3.3.1", c->name, files[i], err);
        model_free(&m);
        free(ours), free(config), free(w);
    }
    size_t na = 0, nb = 0;
    char *bin = strfmt("%s/pytorch_model.bin", out), *pkl = strfmt("%s/%s/data.pkl", EXPORT, c->name);
    char *a = data_pkl(bin, &na), *b = slurp(pkl, &nb);
    CHECK(a && b && na == nb && !memcmp(a, b, na), "%s: data.pkl is not torch.save's (%s)", c->name, pkl);
    const char *jsons[] = {"config.json", "tokenizer_config.json"};
    for (int i = 0; i < (c->vocab ? 2 : 1); i++) {
        char *p = strfmt("%s/%s", out, jsons[i]), *q = strfmt("%s/%s/%s", EXPORT, c->name, jsons[i]);
        check_same_file(p, q);
        free(p), free(q);
    }
    free(a), free(b), free(bin), free(pkl), free(hf);
}

/* --write: our logits and token ids as JSON for make_export_fixtures.py */
static void write_ours(const Case *c, const Inputs *in, Model *m, const Tokenizer *tok,
                       const char *out) {
    size_t n;
    float *x = logits_of(m, in, &n);
    cJSON *o = cJSON_CreateObject(), *l = cJSON_AddArrayToObject(o, "logits");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(l, cJSON_CreateNumber(x[i]));
    if (tok) {
        Encoding enc;
        Error e;
        if (tokenizer_encode(tok, SENTENCE, NULL, 32, &enc, &e) != 0) die(c->name, &e);
        cJSON_AddStringToObject(o, "sentence", SENTENCE);
        cJSON_AddItemToObject(o, "input_ids", cJSON_CreateIntArray(enc.input_ids, enc.len));
        encoding_free(&enc);
    }
    char *text = cJSON_Print(o), *path = strfmt("%s/ours.json", out);
    Error e;
    if (write_file_atomic(path, text, strlen(text), &e) != 0) die(path, &e);
    cJSON_Delete(o);
    free(text), free(path), free(x);
}

int main(int argc, char **argv) {
    const char *write_dir = argc == 3 && !strcmp(argv[1], "--write") ? argv[2] : NULL;
    const char *build = getenv("KOE_BUILD_DIR");
    char *scratch = write_dir ? xstrdup(write_dir) : strfmt("%s/unit/hf_export", build ? build : "/tmp");
    char *text = write_dir ? NULL : slurp(EXPORT "/expected.json", NULL);
    cJSON *expected = cJSON_Parse(text ? text : "{}");
    CHECK(write_dir || text, "no %s/expected.json", EXPORT);
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const Case *c = &CASES[i];
        if (c->vocab && !strcmp(c->vocab, "kobert") && !dir_exists(KOBERT_VOCAB)) {
            CHECK(!write_dir, "--write needs %s", KOBERT_VOCAB);
            printf("%s: skipped (no %s)\n", c->name, KOBERT_VOCAB);
            continue;
        }
        char *dir = strfmt("%s/%s", MODELS, c->model), *config = strfmt("%s/config.json", dir);
        char *out = strfmt("%s/%s", scratch, c->name), *w = hf_weights_file(dir), *vocab_dir;
        Inputs in;
        read_inputs(dir, &in);
        Model m = {0};
        model_from(config, w, &in, &m);
        Tokenizer *tok = export_case(c, &m, &vocab_dir, out);
        if (write_dir) write_ours(c, &in, &m, tok, out);
        else check_case(c, &in, out, expected);
        tokenizer_free(tok);
        model_free(&m);
        free(in.ids), free(in.types), free(in.lengths);
        free(dir), free(config), free(out), free(w), free(vocab_dir);
    }
    cJSON_Delete(expected);
    free(scratch), free(text);
    return test_exit("test_hf_export");
}
