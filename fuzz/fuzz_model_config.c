/* libFuzzer target: random bytes as an HF config.json (through a temp file) into
 * model_config_read, and into model_config_read_as for one family (picked by the input's
 * size: one read per family would double the cost of an execution). A config that reads is
 * valid, and writing it with model_config_write_json and reading that back gives the same
 * config. Warnings are muted. */
#include "fuzz/fuzz_common.h"
#include "host/model/model_config.h"

/* == on every member (so 0.0 equals -0.0, which is all a float JSON number can promise) */
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

/* The file's num_labels (up to 2^31 - 1) is only a default: a run writes its task's count.
 * Writing 2^31 id2label entries back would only measure cJSON, so the round trip stops at a
 * count no task comes near. */
#define ROUND_TRIP_MAX_LABELS 4096

static void check_round_trip(const ModelConfig *c) {
    if (c->num_labels > ROUND_TRIP_MAX_LABELS) return;
    const char *path = fuzz_tmp_file(1);
    ModelConfig back;
    Error e;
    if (model_config_write_json(c, path, &e)) fprintf(stderr, "%s\n", e.msg), abort();
    int rc = model_config_read(path, &back, &e);
    if (rc) dprintf(STDERR_FILENO, "%s\n", e.msg);
    FUZZ_ASSERT(rc == 0 && same_config(c, &back));
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_quiet_warnings(); /* "model_type X read as Y", a line per execution otherwise */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_tmp(data, size);
    const int families[2] = {-1, (int)(size % 4)}; /* -1: the file's model_type */
    for (int k = 0; k < 2; k++) {
        int family = families[k];
        ModelConfig c;
        Error e;
        int rc = family < 0 ? model_config_read(path, &c, &e)
                            : model_config_read_as(path, (ModelFamily)family, &c, &e);
        if (rc) {
            FUZZ_ASSERT(e.msg[0] && strstr(e.msg, path));
            continue;
        }
        FUZZ_ASSERT(model_config_validate(&c, path, &e) == 0);
        FUZZ_ASSERT(family < 0 || c.family == (ModelFamily)family);
        check_round_trip(&c);
    }
    return 0;
}
