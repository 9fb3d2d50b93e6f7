/* Shared pieces of the tokenizer implementation (not part of the public API): a growable
 * list of token strings, a string -> id hash table, WordPiece's entry point and the C view of
 * libsentencepiece (host/text/spm.cc). UTF-8 and character classes: host/text/unicode.h. */
#ifndef KOE_TOKENIZER_INTERNAL_H
#define KOE_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "host/base/util.h"
#include "host/text/unicode.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tokens as NUL-terminated strings packed in one arena (token i is buf + off[i]) with their
 * ids (-1 until known). Grows by doubling, so tokenizing allocates nothing per token. */
typedef struct {
    char *buf;
    size_t len, cap;
    int *off, *id;
    int n, ncap;
} StrList;

void strlist_push_id(StrList *l, const char *s, size_t len, int id);
static inline void strlist_push(StrList *l, const char *s, size_t len) {
    strlist_push_id(l, s, len, -1);
}
void strlist_free(StrList *l);
static inline const char *strlist_at(const StrList *l, int i) { return l->buf + l->off[i]; }

/* string -> id, open addressing with FNV-1a; a repeated key keeps the last id (as a Python
 * dict built line by line does) */
typedef struct {
    char **keys;
    int *ids;
    size_t nslots;  /* power of two */
    size_t count;
    size_t max_len; /* of the keys: WordPiece's longest-match first asks for far longer ones */
} StrMap;

void strmap_init(StrMap *m, size_t expected);
void strmap_put(StrMap *m, const char *key, size_t len, int id);
int strmap_get(const StrMap *m, const char *key, size_t len); /* -1 if absent */
void strmap_free(StrMap *m);

/* WordPiece (host/text/wordpiece.c): BasicTokenizer + WordpieceTokenizer of HF's slow BertTokenizer
 * applied to one text segment that holds no special token. */
typedef struct {
    StrMap vocab;
    char **tokens; /* id -> line */
    int n_tokens;
    int unk_id;
    int do_lower_case;
    const char *const *never_split; /* special token strings, NULL-terminated */
} WordPiece;

/* appends the tokens (strings and ids) of the segment cps[0..n) to out */
void wordpiece_tokenize(const WordPiece *wp, const int32_t *cps, int n, StrList *out);

/* libsentencepiece (host/text/spm.cc) */
typedef struct Spm Spm;
Spm *spm_open(const char *path, Error *e);
void spm_free(Spm *s);
int spm_size(const Spm *s);
int spm_piece_to_id(const Spm *s, const char *piece);
const char *spm_id_to_piece(const Spm *s, int id);
/* appends the pieces of EncodeAsPieces(text) to out; returns 0 or -1 with e filled */
int spm_encode_pieces(const Spm *s, const char *text, size_t len, StrList *out, Error *e);

#ifdef __cplusplus
}
#endif

#endif
