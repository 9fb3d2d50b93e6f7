/* Tokenizers behind one API: WordPiece (BERT/ELECTRA, HF's slow BertTokenizer semantics) and
 * SentencePiece (KoBERT's KoBertTokenizer, XLM-R's XLMRobertaTokenizer) through
 * libsentencepiece. Ids are those the HF tokenizer of the same files produces. */
#ifndef KOE_TOKENIZER_H
#define KOE_TOKENIZER_H

#include <stddef.h>

#include "host/base/util.h"

typedef enum { TOK_WORDPIECE, TOK_KOBERT, TOK_XLMR } TokenizerKind;

typedef struct Tokenizer Tokenizer;

typedef struct {
    TokenizerKind kind;
    const char *vocab_file; /* vocab.txt (WordPiece), KoBERT's vocab.txt mapping, or NULL */
    const char *spm_file;   /* sentencepiece model (KoBERT, XLM-R), else NULL */
    int do_lower_case;      /* WordPiece only */
} TokenizerSpec;

/* ids of the special tokens; in XLM-R cls = <s>, sep = </s> */
typedef struct {
    int cls, sep, pad, unk, mask;
} SpecialIds;

/* An encoded example, padded to its own `cap` (max_seq_len): len real tokens then pad ids. */
typedef struct {
    int *input_ids, *token_type_ids, *attention_mask;
    int len; /* number of real tokens (attention_mask ones) */
    int cap; /* allocated length (max_seq_len) */
} Encoding;

Tokenizer *tokenizer_open(const TokenizerSpec *spec, Error *e);
/* finds the tokenizer files in an HF model folder (vocab.txt, sentencepiece.bpe.model,
 * tokenizer_78b3253a26.model + vocab.txt for KoBERT) from its model_type: the one place
 * that maps the benchmark's model_type to a tokenizer (tokenizer_kind tells it later) */
Tokenizer *tokenizer_open_dir(const char *dir, const char *model_type, int do_lower_case,
                              Error *e);
void tokenizer_free(Tokenizer *t);
TokenizerKind tokenizer_kind(const Tokenizer *t);
SpecialIds tokenizer_special(const Tokenizer *t);
int tokenizer_vocab_size(const Tokenizer *t);
TokenizerKind tokenizer_get_kind(const Tokenizer *t);
int tokenizer_lowercases(const Tokenizer *t); /* WordPiece with do_lower_case */
const char *tokenizer_id_to_token(const Tokenizer *t, int id);

/* tokenize UTF-8 text into ids (no special tokens added; special token strings in the text
 * become their ids, as in HF). Appends to *ids (realloc'd, capacity in
 * *cap) and returns the number appended, or -1 with e filled for invalid UTF-8. */
int tokenizer_tokenize(const Tokenizer *t, const char *text, int **ids, int *n, int *cap,
                       Error *e);

/* the same, also giving the token strings HF's tokenize() returns (an out-of-vocabulary
 * KoBERT/XLM-R piece keeps its text while its id is [UNK]'s). Appends xstrdup'd strings to
 * *tokens and ids to *ids (both realloc'd, capacity *cap); returns the number appended. */
int tokenizer_tokenize_strings(const Tokenizer *t, const char *text, char ***tokens, int **ids,
                               int *n, int *cap, Error *e);

/* HF encode_plus / batch_encode_plus(truncation=True, max_length) of a text or a pair
 * (b may be NULL): special tokens, token types, 'longest_first' truncation; the result is
 * padded with pad ids to max_len. Returns 0, or -1 with e filled. */
int tokenizer_encode(const Tokenizer *t, const char *a, const char *b, int max_len,
                     Encoding *out, Error *e);
/* the same from already tokenised ids (used by NER and KorQuAD features); -1 when max_len
 * cannot hold the special tokens. `out` is overwritten with fresh arrays. */
int tokenizer_build_inputs(const Tokenizer *t, const int *a, int na, const int *b, int nb,
                           int max_len, Encoding *out);
void encoding_free(Encoding *enc);

#endif
