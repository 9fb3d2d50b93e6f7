/* Model configs: an HF config.json (electra, bert, distilbert, xlm-roberta, roberta) -> one
 * ModelConfig, written back as a config.json HF loads, plus the benchmark's documented models
 * built in. Keys missing from a config.json take the defaults of transformers' config class,
 * as HF does (save_pretrained leaves out values equal to the defaults). */
#ifndef KOE_MODEL_CONFIG_H
#define KOE_MODEL_CONFIG_H

#include <stddef.h>

#include "host/base/util.h"

typedef enum { FAMILY_ELECTRA, FAMILY_BERT, FAMILY_DISTILBERT, FAMILY_XLMR } ModelFamily;

typedef struct {
    ModelFamily family;
    char model_type[32];    /* HF's: electra, bert, distilbert, xlm-roberta or roberta */
    char architecture[64];  /* architectures[0] of the file ("" when absent); written back */
    int vocab_size;
    int embedding_size;     /* = hidden_size except ELECTRA's (projected to hidden when !=) */
    int hidden_size, num_layers, num_heads, intermediate_size;
    int max_position_embeddings;
    int type_vocab_size;    /* 0 for distilbert (no token type embeddings) */
    int pad_token_id;       /* padding_idx of the word embeddings; XLM-R positions start at +1 */
    float layer_norm_eps;   /* distilbert: fixed 1e-12 in HF */
    float hidden_dropout, attention_dropout, initializer_range;
    /* dropout before the sequence-classification head: HF's classifier_dropout when set,
     * else hidden_dropout; distilbert's seq_classif_dropout. (Token classification uses
     * classifier_dropout too, except distilbert's, which uses hidden_dropout.) */
    float classifier_dropout;
    float qa_dropout;       /* before the QA outputs: distilbert's qa_dropout, 0 for the others */
    int num_labels;         /* size of id2label when present, else num_labels, else 2 */
    /* distilbert: HF fills the position table with sinusoids and FREEZES it (requires_grad
     * off); loaded weights still replace the values. DistilKoBERT was trained with it on. */
    int sinusoidal_pos_embds;
    char hidden_act[16];    /* must be "gelu" (the erf form) */
} ModelConfig;

/* The original's model_type names, NULL-terminated: koelectra-small, ..., xlm-roberta. */
extern const char *const BENCHMARK_MODEL_TYPES[];

/* The family the original picks for one of its model_type names (its CONFIG_CLASSES). */
int model_family_of(const char *benchmark_model_type, ModelFamily *f, Error *e);
/* Reads path; the family comes from the file's model_type (required). */
int model_config_read(const char *path, ModelConfig *c, Error *e);
/* Reads path as the given family whatever its model_type says (or when it has none), as the
 * original does with CONFIG_CLASSES[model_type].from_pretrained. */
int model_config_read_as(const char *path, ModelFamily family, ModelConfig *c, Error *e);
/* Writes a config.json HF loads (atomically): model_type, architectures, HF key names,
 * id2label/label2id with LABEL_<i> names for num_labels. */
int model_config_write_json(const ModelConfig *c, const char *path, Error *e);
/* The same with the label names of id2label/label2id (num_labels of them, in id order; NULL:
 * LABEL_<i>) and, unless NULL, "tokenizer_class" (which transformers' AutoTokenizer uses). */
int model_config_write_checkpoint(const ModelConfig *c, const char *const *labels,
                                  const char *tokenizer_class, const char *path, Error *e);
/* The id2label names of a config.json, in id order, when it has exactly n of them (*out is
 * NULL otherwise: no id2label, or another count); free with model_config_free_labels. An
 * id2label whose names are not strings keyed "0".."n-1" is an error naming the file. */
int model_config_labels(const char *path, int n, char ***out, Error *e);
void model_config_free_labels(char **labels, int n);
/* A documented model by the benchmark's model_type ("koelectra-small-v3") or its hub name
 * ("monologg/koelectra-small-v3-discriminator"). */
int model_config_builtin(const char *name, ModelConfig *c, Error *e);
/* The family's HF key of a ModelConfig member given by its offsetof, for messages:
 * offsetof(ModelConfig, hidden_size) is "hidden_size", or "dim" for distilbert. */
const char *model_config_key(ModelFamily f, size_t offset);
/* The checks every ModelConfig passes (sizes, heads divide hidden, gelu, dropouts in [0,1)). */
int model_config_validate(const ModelConfig *c, const char *where, Error *e);

#endif
