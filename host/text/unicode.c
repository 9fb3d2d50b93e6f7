/* UTF-8 decoding and encoding, decomposition through utf8proc, and the character classes of
 * Python's str methods and HF's BertTokenizer (see unicode.h). */
#include "host/text/unicode.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <utf8proc.h>

/* ---------------------------------------------------------------- UTF-8 */

/* fills e (when given) with "invalid UTF-8 at byte <at>: <what>"; returns 0, utf8_next's
 * "not UTF-8" */
__attribute__((format(printf, 3, 4))) static int bad_utf8(Error *e, size_t at,
                                                          const char *fmt, ...) {
    if (!e) return 0;
    char what[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    errorf(e, "invalid UTF-8 at byte %zu: %s", at, what);
    return 0;
}

int utf8_next(const char *s, size_t len, size_t i, int32_t *cp, Error *e) {
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[i];
    if (c < 0x80) return *cp = (int32_t)c, 1;
    int k = c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3
                                                                                          : -1;
    if (k < 0)
        return bad_utf8(e, i, "%s 0x%02X",
                        c <= 0xBF ? "unexpected continuation byte" : "invalid lead byte", c);
    if (i + (size_t)k >= len) return bad_utf8(e, i, "sequence cut short by the end");
    int32_t v = (int32_t)(c & (0x3F >> k));
    for (int j = 1; j <= k; j++) {
        if ((u[i + j] & 0xC0) != 0x80) return bad_utf8(e, i + j, "missing continuation byte");
        v = (v << 6) | (u[i + j] & 0x3F);
    }
    if ((k == 2 && v < 0x800) || (k == 3 && v < 0x10000))
        return bad_utf8(e, i, "overlong encoding");
    if (v >= 0xD800 && v <= 0xDFFF) return bad_utf8(e, i, "surrogate U+%04X", (unsigned)v);
    if (v > 0x10FFFF) return bad_utf8(e, i, "code point above U+10FFFF");
    *cp = v;
    return k + 1;
}

size_t utf8_invalid_at(const char *s, size_t len, Error *e) {
    int32_t cp;
    for (size_t i = 0; i < len;) {
        int k = utf8_next(s, len, i, &cp, e);
        if (k == 0) return i;
        i += (size_t)k;
    }
    return len;
}

int utf8_decode(const char *s, size_t len, int32_t **cps, int *cap, Error *e) {
    if ((size_t)*cap < len + 1) {
        *cap = (int)len + 1;
        *cps = xrealloc(*cps, sizeof(int32_t) * (size_t)*cap);
    }
    int n = 0;
    for (size_t i = 0; i < len;) {
        int k = utf8_next(s, len, i, &(*cps)[n], e);
        if (k == 0) return -1;
        n++;
        i += (size_t)k;
    }
    return n;
}

int utf8_len(int32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

int utf8_put(char *buf, int32_t cp) {
    return (int)utf8proc_encode_char(cp, (utf8proc_uint8_t *)buf);
}

size_t utf8_encode(const int32_t *cps, int n, char **buf, size_t *cap) {
    if (*cap < 4 * (size_t)n + 1) {
        *cap = 4 * (size_t)n + 1;
        *buf = xrealloc(*buf, *cap);
    }
    size_t len = 0;
    for (int i = 0; i < n; i++) len += (size_t)utf8_put(*buf + len, cps[i]);
    (*buf)[len] = 0;
    return len;
}

int unicode_decompose(const int32_t *cps, int n, int compat, int32_t **out, int *cap) {
    char *bytes = NULL;
    size_t bcap = 0, blen = utf8_encode(cps, n, &bytes, &bcap);
    utf8proc_option_t opt = UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0);
    for (;;) {
        utf8proc_ssize_t m = utf8proc_decompose((const utf8proc_uint8_t *)bytes,
                                                (utf8proc_ssize_t)blen, *out, *cap, opt);
        if (m <= *cap) { /* input is valid UTF-8, so m >= 0 */
            free(bytes);
            return (int)m;
        }
        *cap = (int)m;
        *out = xrealloc(*out, sizeof(int32_t) * (size_t)m);
    }
}

/* ---------------------------------------------------------------- character classes */

/* the characters Python 3.11's str.isspace() accepts */
int py_isspace(int32_t cp) {
    return (cp >= 0x9 && cp <= 0xD) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 ||
           cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Python's str.isdigit(): decimal digits plus the Numeric_Type=Digit characters */
int py_isdigit(int32_t cp) {
    static const int32_t digit_ranges[][2] = {
        {0xB2, 0xB3},       {0xB9, 0xB9},       {0x1369, 0x1371},   {0x19DA, 0x19DA},
        {0x2070, 0x2070},   {0x2074, 0x2079},   {0x2080, 0x2089},   {0x2460, 0x2468},
        {0x2474, 0x247C},   {0x2488, 0x2490},   {0x24EA, 0x24EA},   {0x24F5, 0x24FD},
        {0x24FF, 0x24FF},   {0x2776, 0x277E},   {0x2780, 0x2788},   {0x278A, 0x2792},
        {0x10A40, 0x10A43}, {0x10E60, 0x10E68}, {0x11052, 0x1105A}, {0x1F100, 0x1F10A},
    };
    if (utf8proc_category(cp) == UTF8PROC_CATEGORY_ND) return 1;
    for (size_t i = 0; i < sizeof digit_ranges / sizeof digit_ranges[0]; i++)
        if (cp >= digit_ranges[i][0] && cp <= digit_ranges[i][1]) return 1;
    return 0;
}

/* the CJK Unified Ideograph blocks BertTokenizer lists (Hangul and kana are not among them) */
int bert_is_cjk(int32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* ASCII non-alphanumerics count as punctuation even where Unicode says symbol ($, ^, `) */
int bert_is_punctuation(int32_t cp) {
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
        (cp >= 123 && cp <= 126))
        return 1;
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}
