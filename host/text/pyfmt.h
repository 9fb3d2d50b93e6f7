/* Text as Python writes it, for result files that must read exactly like the original's:
 * str(float) / repr(float) and json.dumps's strings and numbers (ensure_ascii). */
#ifndef KOE_PYFMT_H
#define KOE_PYFMT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

/* str(x) of a Python float: the shortest digits that read back as x, in fixed notation for
 * 1e-4 <= |x| < 1e16 (with ".0" when integral) and as d.ddde+XX otherwise; nan, inf, -inf.
 * buf needs 32 bytes. */
void py_float(double x, char *buf, size_t n);
/* json.dumps of a UTF-8 string (ensure_ascii: \uXXXX escapes for non-ASCII, surrogate pairs
 * above U+FFFF; a byte that is not UTF-8, which validated inputs never hold, as U+FFFD) */
void py_json_string(FILE *f, const char *s);
/* json.dumps of a float: repr, with NaN, Infinity and -Infinity as Python writes them */
void py_json_float(FILE *f, double x);
/* a cJSON number that prints as repr, or null when not finite (strict JSON). For doubles
 * compared or read back: cJSON prints 15 digits whenever they read back within one epsilon,
 * so 0.1 + 0.2 would come back as 0.3, one ulp off. */
cJSON *py_json_number(double x);

#endif
