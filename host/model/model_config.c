#include "host/model/model_config.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the documented models ----
 * Sources: ../shared/vocab/koelectra-base-v3-discriminator/config.json (base-v3, exact),
 * ../shared/vocab/distilkobert/distilkobert_3_layer.json (DistilKoBERT's training config:
 * 3 layers, sinusoidal positions), KoELECTRA's README architecture table and
 * ../shared/reference/README.md. ASSUMED where no config.json was found: small v1/v2/v3 and
 * base v1/v2 follow the same key values as base-v3 but their sizes (v1 and v2 vocab 32200,
 * v3 35000); kobert/distilkobert pad_token_id 1 (the [PAD] id of the KoBERT vocab); hanbert
 * pad_token_id 0. A model's own config.json, when present, always wins over this table. */
typedef struct {
    const char *name, *hub;
    ModelFamily family;
    int vocab, embedding, hidden, layers, heads, ffn, max_pos, type_vocab, pad;
    float eps;
    int sinusoidal;
} Builtin;

static const Builtin BUILTINS[] = {
    {"koelectra-small", "monologg/koelectra-small-discriminator", FAMILY_ELECTRA,
     32200, 128, 256, 12, 4, 1024, 512, 2, 0, 1e-12f, 0},
    {"koelectra-small-v2", "monologg/koelectra-small-v2-discriminator", FAMILY_ELECTRA,
     32200, 128, 256, 12, 4, 1024, 512, 2, 0, 1e-12f, 0},
    {"koelectra-small-v3", "monologg/koelectra-small-v3-discriminator", FAMILY_ELECTRA,
     35000, 128, 256, 12, 4, 1024, 512, 2, 0, 1e-12f, 0},
    {"koelectra-base", "monologg/koelectra-base-discriminator", FAMILY_ELECTRA,
     32200, 768, 768, 12, 12, 3072, 512, 2, 0, 1e-12f, 0},
    {"koelectra-base-v2", "monologg/koelectra-base-v2-discriminator", FAMILY_ELECTRA,
     32200, 768, 768, 12, 12, 3072, 512, 2, 0, 1e-12f, 0},
    {"koelectra-base-v3", "monologg/koelectra-base-v3-discriminator", FAMILY_ELECTRA,
     35000, 768, 768, 12, 12, 3072, 512, 2, 0, 1e-12f, 0},
    {"kobert", "monologg/kobert", FAMILY_BERT,
     8002, 768, 768, 12, 12, 3072, 512, 2, 1, 1e-12f, 0},
    {"distilkobert", "monologg/distilkobert", FAMILY_DISTILBERT,
     8002, 768, 768, 3, 12, 3072, 512, 0, 1, 1e-12f, 1},
    {"hanbert", "HanBert-54kN-torch", FAMILY_BERT,
     54000, 768, 768, 12, 12, 3072, 512, 2, 0, 1e-12f, 0},
    {"xlm-roberta", "xlm-roberta-base", FAMILY_XLMR,
     250002, 768, 768, 12, 12, 3072, 514, 1, 1, 1e-5f, 0},
};
#define NBUILTINS (int)(sizeof BUILTINS / sizeof BUILTINS[0])

const char *const BENCHMARK_MODEL_TYPES[] = {
    "koelectra-small", "koelectra-small-v2", "koelectra-small-v3", "koelectra-base",
    "koelectra-base-v2", "koelectra-base-v3", "kobert", "distilkobert", "hanbert",
    "xlm-roberta", NULL};

/* ---- HF key names per family: one table drives reading and writing ---- */
enum { E = 1 << FAMILY_ELECTRA, B = 1 << FAMILY_BERT, D = 1 << FAMILY_DISTILBERT,
       X = 1 << FAMILY_XLMR, EBX = E | B | X, ALL = E | B | D | X };

/* type: i int, f float, n float or null (null: use hidden_dropout), s string, b bool */
typedef struct {
    const char *name;
    char type;
    size_t offset;
    int families;
} Field;

#define O(f) offsetof(ModelConfig, f)
static const Field FIELDS[] = {
    {"vocab_size", 'i', O(vocab_size), ALL},
    {"embedding_size", 'i', O(embedding_size), E},
    {"hidden_size", 'i', O(hidden_size), EBX},
    {"dim", 'i', O(hidden_size), D},
    {"num_hidden_layers", 'i', O(num_layers), EBX},
    {"n_layers", 'i', O(num_layers), D},
    {"num_attention_heads", 'i', O(num_heads), EBX},
    {"n_heads", 'i', O(num_heads), D},
    {"intermediate_size", 'i', O(intermediate_size), EBX},
    {"hidden_dim", 'i', O(intermediate_size), D},
    {"hidden_act", 's', O(hidden_act), EBX},
    {"activation", 's', O(hidden_act), D},
    {"hidden_dropout_prob", 'f', O(hidden_dropout), EBX},
    {"dropout", 'f', O(hidden_dropout), D},
    {"attention_probs_dropout_prob", 'f', O(attention_dropout), EBX},
    {"attention_dropout", 'f', O(attention_dropout), D},
    {"max_position_embeddings", 'i', O(max_position_embeddings), ALL},
    {"type_vocab_size", 'i', O(type_vocab_size), EBX},
    {"initializer_range", 'f', O(initializer_range), ALL},
    {"layer_norm_eps", 'f', O(layer_norm_eps), EBX},
    {"pad_token_id", 'i', O(pad_token_id), ALL},
    {"classifier_dropout", 'n', O(classifier_dropout), EBX},
    {"seq_classif_dropout", 'f', O(classifier_dropout), D},
    {"qa_dropout", 'f', O(qa_dropout), D},
    {"sinusoidal_pos_embds", 'b', O(sinusoidal_pos_embds), D},
};
#define NFIELDS (int)(sizeof FIELDS / sizeof FIELDS[0])

const char *model_config_key(ModelFamily f, size_t offset) {
    for (int i = 0; i < NFIELDS; i++)
        if (FIELDS[i].offset == offset && (FIELDS[i].families >> f & 1)) return FIELDS[i].name;
    return "?";
}

static int family_of_hf_type(const char *t, ModelFamily *f) {
    static const struct { const char *name; ModelFamily f; } types[] = {
        {"electra", FAMILY_ELECTRA}, {"bert", FAMILY_BERT}, {"distilbert", FAMILY_DISTILBERT},
        {"xlm-roberta", FAMILY_XLMR}, {"roberta", FAMILY_XLMR}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].name, t) == 0) return *f = types[i].f, 0;
    return -1;
}

/* The defaults of transformers' config classes (5.x; the same as 3.3.1's for these keys,
 * except RobertaConfig's vocab_size, 30522 in 3.3.1). */
static void set_defaults(ModelConfig *c, ModelFamily f, const char *hf_type) {
    memset(c, 0, sizeof *c);
    c->family = f;
    snprintf(c->model_type, sizeof c->model_type, "%s", hf_type);
    strcpy(c->hidden_act, "gelu");
    c->vocab_size = strcmp(hf_type, "roberta") == 0 ? 50265 : 30522;
    c->hidden_size = c->embedding_size = 768;
    c->num_layers = 12;
    c->num_heads = 12;
    c->intermediate_size = 3072;
    c->max_position_embeddings = 512;
    c->type_vocab_size = 2;
    c->pad_token_id = f == FAMILY_XLMR ? 1 : 0;
    c->layer_norm_eps = 1e-12f;
    c->hidden_dropout = c->attention_dropout = 0.1f;
    c->initializer_range = 0.02f;
    c->classifier_dropout = NAN; /* = hidden_dropout unless the file sets it */
    c->num_labels = 2;
    if (f == FAMILY_ELECTRA) {
        c->embedding_size = 128;
        c->hidden_size = 256;
        c->num_heads = 4;
        c->intermediate_size = 1024;
    }
    if (f == FAMILY_DISTILBERT) {
        c->num_layers = 6;
        c->type_vocab_size = 0;
        c->classifier_dropout = 0.2f;
        c->qa_dropout = 0.1f;
    }
}

/* ---- reading ---- */

/* a JSON number that is a whole number an int holds */
static int json_int(const cJSON *v, int *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        !(fabs(v->valuedouble) < 2147483647.0))
        return -1;
    *out = (int)v->valuedouble;
    return 0;
}

static int read_field(ModelConfig *c, const Field *fd, const cJSON *v, const char *path,
                      Error *e) {
    char *p = (char *)c + fd->offset;
    if (fd->type == 'n' && cJSON_IsNull(v)) return 0;
    if (fd->type == 'i' && json_int(v, (int *)p) == 0) return 0;
    if ((fd->type == 'f' || fd->type == 'n') && cJSON_IsNumber(v)) {
        /* beyond FLT_MAX it would become inf, which a config.json cannot hold */
        if (!(fabs(v->valuedouble) <= FLT_MAX))
            return errorf(e, "%s: %s: %g is out of range for a float", path, fd->name,
                          v->valuedouble);
        return *(float *)p = (float)v->valuedouble, 0;
    }
    if (fd->type == 'b' && cJSON_IsBool(v)) return *(int *)p = cJSON_IsTrue(v), 0;
    if (fd->type == 's' && cJSON_IsString(v)) {
        if (strlen(v->valuestring) >= sizeof c->hidden_act)
            return errorf(e, "%s: %s: unsupported value \"%.40s\"", path, fd->name,
                          v->valuestring);
        return strcpy(p, v->valuestring), 0;
    }
    static const char *const want[] = {['i'] = "an integer", ['f'] = "a number",
                                       ['n'] = "a number or null", ['s'] = "a string",
                                       ['b'] = "true or false"};
    return errorf(e, "%s: %s: expected %s, got %s", path, fd->name, want[(int)fd->type],
                  cJSON_IsNumber(v) && fd->type == 'i' ? "a fraction or an out-of-range number"
                                                       : json_type_name(v));
}

static int read_labels(ModelConfig *c, const cJSON *root, const char *path, Error *e) {
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "num_labels");
    if (id2label) {
        if (!cJSON_IsObject(id2label))
            return errorf(e, "%s: id2label: expected an object, got %s", path,
                          json_type_name(id2label));
        c->num_labels = cJSON_GetArraySize(id2label);
    } else if (n) {
        if (json_int(n, &c->num_labels) != 0)
            return errorf(e, "%s: num_labels: expected an integer, got %s", path,
                          cJSON_IsNumber(n) ? "a fraction or an out-of-range number"
                                            : json_type_name(n));
    }
    return 0;
}

static int read_architecture(ModelConfig *c, const cJSON *root, const char *path, Error *e) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (!a || cJSON_IsNull(a)) return 0;
    const cJSON *first = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
    if (cJSON_IsArray(a) && !first) return 0;
    if (!cJSON_IsString(first) || strlen(first->valuestring) >= sizeof c->architecture)
        return errorf(e, "%s: architectures: expected a list of class names", path);
    strcpy(c->architecture, first->valuestring);
    return 0;
}

static int read_root(const char *path, cJSON **root, Error *e) {
    char *text;
    if (read_file(path, &text, NULL, e)) return -1;
    const char *at = NULL;
    *root = cJSON_ParseWithOpts(text, &at, 1);
    int line = 1;
    for (const char *p = text; !*root && at && p < at && *p; p++) line += *p == '\n';
    free(text);
    if (!*root) return errorf(e, "%s: line %d: invalid JSON", path, line);
    if (cJSON_IsObject(*root)) return 0;
    cJSON_Delete(*root);
    return errorf(e, "%s: top level: expected a JSON object", path);
}

/* Picks the family (the given one, or the file's model_type when family < 0) and the
 * model_type string to keep: the file's when it names that family, else the canonical one.
 * A model_type of no known family is refused either way: its keys would be read as another
 * model's (a gpt2 config built as ELECTRA). */
static int pick_family(const cJSON *root, int family, ModelFamily *f, const char **hf_type,
                       const char *path, Error *e) {
    static const char *const canonical[] = {"electra", "bert", "distilbert", "xlm-roberta"};
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    ModelFamily file_f = FAMILY_BERT;
    if (!mt && family < 0) return errorf(e, "%s: model_type: missing", path);
    if (mt && !cJSON_IsString(mt))
        return errorf(e, "%s: model_type: expected a string, got %s", path, json_type_name(mt));
    if (mt && family_of_hf_type(mt->valuestring, &file_f) != 0)
        return errorf(e, "%s: model_type: unsupported \"%.40s\" (known: electra, bert, "
                         "distilbert, xlm-roberta, roberta)", path, mt->valuestring);
    if (family < 0) {
        *f = file_f;
        *hf_type = mt->valuestring;
        return 0;
    }
    *f = (ModelFamily)family;
    *hf_type = mt && file_f == *f ? mt->valuestring : canonical[family];
    if (mt && file_f != *f)
        fprintf(stderr, "warning: %s: model_type \"%s\" read as %s (the benchmark's model_type "
                "picks the family, as the original's CONFIG_CLASSES)\n", path, mt->valuestring,
                canonical[family]);
    return 0;
}

static int read_config(const char *path, int family, ModelConfig *c, Error *e) {
    cJSON *root;
    if (read_root(path, &root, e)) return -1;
    ModelFamily f = FAMILY_BERT; /* both set by pick_family when it succeeds */
    const char *hf_type = "";
    int rc = pick_family(root, family, &f, &hf_type, path, e);
    if (!rc) set_defaults(c, f, hf_type);
    for (int i = 0; !rc && i < NFIELDS; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, FIELDS[i].name);
        if (v && (FIELDS[i].families >> f & 1)) rc = read_field(c, &FIELDS[i], v, path, e);
    }
    if (!rc) rc = read_labels(c, root, path, e);
    if (!rc) rc = read_architecture(c, root, path, e);
    cJSON_Delete(root);
    if (rc) return rc;
    if (f != FAMILY_ELECTRA) c->embedding_size = c->hidden_size;
    if (isnan(c->classifier_dropout)) c->classifier_dropout = c->hidden_dropout;
    return model_config_validate(c, path, e);
}

int model_config_read(const char *path, ModelConfig *c, Error *e) {
    return read_config(path, -1, c, e);
}

int model_config_read_as(const char *path, ModelFamily family, ModelConfig *c, Error *e) {
    return read_config(path, (int)family, c, e);
}

/* ---- checks ---- */

static int check_dropout(const ModelConfig *c, size_t offset, float p, const char *where,
                         Error *e) {
    if (p >= 0 && p < 1) return 0;
    return errorf(e, "%s: %s: %g is not a probability in [0, 1)", where,
                  model_config_key(c->family, offset), p);
}

int model_config_validate(const ModelConfig *c, const char *where, Error *e) {
    const ModelFamily f = c->family;
    const struct { int v; size_t off; } sizes[] = {
        {c->vocab_size, O(vocab_size)}, {c->embedding_size, O(embedding_size)},
        {c->hidden_size, O(hidden_size)}, {c->num_layers, O(num_layers)},
        {c->num_heads, O(num_heads)}, {c->intermediate_size, O(intermediate_size)},
        {c->max_position_embeddings, O(max_position_embeddings)}, {c->num_labels, O(num_labels)}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].v < 1)
            return errorf(e, "%s: %s: must be >= 1 (got %d)", where,
                          sizes[i].off == O(num_labels) ? "num_labels"
                                                        : model_config_key(f, sizes[i].off),
                          sizes[i].v);
    if (c->hidden_size % c->num_heads)
        return errorf(e, "%s: %s: %d is not divisible by %s %d", where,
                      model_config_key(f, O(hidden_size)), c->hidden_size,
                      model_config_key(f, O(num_heads)), c->num_heads);
    if (f != FAMILY_DISTILBERT && c->type_vocab_size < 1)
        return errorf(e, "%s: type_vocab_size: must be >= 1 (got %d)", where, c->type_vocab_size);
    if (c->pad_token_id < 0 || c->pad_token_id >= c->vocab_size)
        return errorf(e, "%s: pad_token_id: %d is outside the vocabulary of %d", where,
                      c->pad_token_id, c->vocab_size);
    if (f == FAMILY_XLMR && c->max_position_embeddings < c->pad_token_id + 2)
        return errorf(e, "%s: max_position_embeddings: %d leaves no position after the offset "
                         "pad_token_id + 1", where, c->max_position_embeddings);
    if (!(c->layer_norm_eps > 0 && c->layer_norm_eps < 1))
        return errorf(e, "%s: layer_norm_eps: must be in (0, 1) (got %g)", where, c->layer_norm_eps);
    if (!(c->initializer_range >= 0))
        return errorf(e, "%s: initializer_range: must be >= 0 (got %g)", where,
                      c->initializer_range);
    if (check_dropout(c, O(hidden_dropout), c->hidden_dropout, where, e) ||
        check_dropout(c, O(attention_dropout), c->attention_dropout, where, e) ||
        check_dropout(c, O(classifier_dropout), c->classifier_dropout, where, e) ||
        check_dropout(c, O(qa_dropout), c->qa_dropout, where, e))
        return -1;
    if (strcmp(c->hidden_act, "gelu") != 0)
        return errorf(e, "%s: %s: \"%s\" is not supported (only \"gelu\", the erf form)", where,
                      model_config_key(f, O(hidden_act)), c->hidden_act);
    return 0;
}

/* ---- writing ---- */

/* the shortest decimal that reads back as the same float: 0.1f -> 0.1, not 0.100000001 */
static cJSON *float_json(float v) {
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtof(buf, NULL) == v) break;
    }
    return cJSON_CreateRaw(buf);
}

static void add_labels(cJSON *root, int n, const char *const *names) {
    cJSON *id2label = cJSON_AddObjectToObject(root, "id2label");
    cJSON *label2id = cJSON_AddObjectToObject(root, "label2id");
    for (int i = 0; i < n; i++) {
        char id[16], label[32];
        snprintf(id, sizeof id, "%d", i);
        snprintf(label, sizeof label, "LABEL_%d", i);
        cJSON_AddStringToObject(id2label, id, names ? names[i] : label);
        cJSON_AddNumberToObject(label2id, names ? names[i] : label, i);
    }
}

int model_config_write_json(const ModelConfig *c, const char *path, Error *e) {
    return model_config_write_checkpoint(c, NULL, NULL, path, e);
}

int model_config_write_checkpoint(const ModelConfig *c, const char *const *labels,
                                  const char *tokenizer_class, const char *path, Error *e) {
    if (model_config_validate(c, path, e)) return -1;
    cJSON *root = cJSON_CreateObject();
    if (c->architecture[0]) {
        cJSON *arch = cJSON_AddArrayToObject(root, "architectures");
        cJSON_AddItemToArray(arch, cJSON_CreateString(c->architecture));
    }
    cJSON_AddStringToObject(root, "model_type", c->model_type);
    for (int i = 0; i < NFIELDS; i++) {
        const Field *fd = &FIELDS[i];
        if (!(fd->families >> c->family & 1)) continue;
        const char *p = (const char *)c + fd->offset;
        cJSON *v;
        if (fd->type == 'i') v = cJSON_CreateNumber(*(const int *)p);
        else if (fd->type == 'b') v = cJSON_CreateBool(*(const int *)p);
        else if (fd->type == 's') v = cJSON_CreateString(p);
        else if (fd->type == 'n' && *(const float *)p == c->hidden_dropout) v = cJSON_CreateNull();
        else v = float_json(*(const float *)p);
        cJSON_AddItemToObject(root, fd->name, v);
    }
    add_labels(root, c->num_labels, labels);
    if (tokenizer_class) cJSON_AddStringToObject(root, "tokenizer_class", tokenizer_class);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char *out = strfmt("%s\n", text);
    cJSON_free(text);
    int rc = write_file_atomic(path, out, strlen(out), e);
    free(out);
    return rc;
}

int model_config_labels(const char *path, int n, char ***out, Error *e) {
    *out = NULL;
    cJSON *root;
    if (read_root(path, &root, e)) return -1;
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    int rc = 0;
    if (cJSON_IsObject(id2label) && cJSON_GetArraySize(id2label) == n) {
        char **names = xcalloc((size_t)n, sizeof *names);
        for (int i = 0; i < n && rc == 0; i++) {
            char id[16];
            snprintf(id, sizeof id, "%d", i);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(id2label, id);
            if (!cJSON_IsString(v))
                rc = errorf(e, "%s: id2label: \"%s\": %s", path, id,
                            v ? "not a string" : "missing (labels are numbered 0 to n-1)");
            else names[i] = xstrdup(v->valuestring);
        }
        if (rc == 0) *out = names;
        else model_config_free_labels(names, n);
    }
    cJSON_Delete(root);
    return rc;
}

void model_config_free_labels(char **labels, int n) {
    for (int i = 0; labels && i < n; i++) free(labels[i]);
    free(labels);
}

/* ---- built-in models ---- */

int model_family_of(const char *benchmark_model_type, ModelFamily *f, Error *e) {
    for (int i = 0; i < NBUILTINS; i++)
        if (strcmp(BUILTINS[i].name, benchmark_model_type) == 0) return *f = BUILTINS[i].family, 0;
    return errorf(e, "model_type: unknown \"%s\"", benchmark_model_type);
}

int model_config_builtin(const char *name, ModelConfig *c, Error *e) {
    static const char *const hf_type[] = {"electra", "bert", "distilbert", "xlm-roberta"};
    for (int i = 0; i < NBUILTINS; i++) {
        const Builtin *b = &BUILTINS[i];
        if (strcmp(b->name, name) != 0 && strcmp(b->hub, name) != 0) continue;
        set_defaults(c, b->family, hf_type[b->family]);
        c->vocab_size = b->vocab;
        c->embedding_size = b->embedding;
        c->hidden_size = b->hidden;
        c->num_layers = b->layers;
        c->num_heads = b->heads;
        c->intermediate_size = b->ffn;
        c->max_position_embeddings = b->max_pos;
        c->type_vocab_size = b->type_vocab;
        c->pad_token_id = b->pad;
        c->layer_norm_eps = b->eps;
        c->sinusoidal_pos_embds = b->sinusoidal;
        if (isnan(c->classifier_dropout)) c->classifier_dropout = c->hidden_dropout;
        return 0;
    }
    return errorf(e, "%s: not a built-in model (the benchmark's model_type names and their hub "
                     "names are)", name);
}
