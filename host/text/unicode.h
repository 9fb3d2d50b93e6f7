/* UTF-8 and the Unicode character classes of HF's Python code: the one home of both, for the
 * tokenizers, the task readers, the metrics and the KorQuAD pipeline. Strict UTF-8 is what
 * Python's decoder accepts: no overlong forms, no surrogates, nothing above U+10FFFF. */
#ifndef KOE_UNICODE_H
#define KOE_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#include "host/base/util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* the code point starting at byte i of s[0..len) (i < len): returns its byte length (1-4)
 * and sets *cp, or returns 0 when the bytes there are not strict UTF-8, filling e (when not
 * NULL) with "invalid UTF-8 at byte N: what is wrong" */
int utf8_next(const char *s, size_t len, size_t i, int32_t *cp, Error *e);
/* offset of the first sequence that is not strict UTF-8 (e filled as utf8_next), or len */
size_t utf8_invalid_at(const char *s, size_t len, Error *e);
/* decodes strict UTF-8 into code points; *cps is realloc'd (capacity *cap). Returns the
 * number of code points, or -1 with e filled. */
int utf8_decode(const char *s, size_t len, int32_t **cps, int *cap, Error *e);

/* bytes of cp's UTF-8 */
int utf8_len(int32_t cp);
/* appends the UTF-8 of cp to buf (at least 4 free bytes); returns bytes written */
int utf8_put(char *buf, int32_t cp);
/* the UTF-8 of cps[0..n), NUL-terminated, into *buf (realloc'd, capacity *cap; both may
 * start NULL and 0 for a fresh string); returns its length */
size_t utf8_encode(const int32_t *cps, int n, char **buf, size_t *cap);

/* canonical (NFD) or, with compat, compatibility (NFKD) decomposition of cps[0..n) into
 * *out (realloc'd, capacity *cap); returns the number of code points */
int unicode_decompose(const int32_t *cps, int n, int compat, int32_t **out, int *cap);

/* Python's str.isspace() */
int py_isspace(int32_t cp);
/* Python's str.isdigit() (Nd or Numeric_Type=Digit) */
int py_isdigit(int32_t cp);
/* BertTokenizer's character classes: its CJK ideograph blocks, and punctuation = ASCII
 * non-alphanumerics or Unicode P* */
int bert_is_cjk(int32_t cp);
int bert_is_punctuation(int32_t cp);

#ifdef __cplusplus
}
#endif

#endif
