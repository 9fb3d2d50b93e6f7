#include "host/text/pyfmt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/text/unicode.h"

void py_float(double x, char *buf, size_t n) {
    if (isnan(x) || isinf(x)) {
        snprintf(buf, n, "%s", isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
        return;
    }
    int p = 1; /* the fewest significant digits that read back as x */
    for (; p < 17; p++) {
        snprintf(buf, n, "%.*e", p - 1, x);
        if (strtod(buf, NULL) == x) break;
    }
    snprintf(buf, n, "%.*e", p - 1, x);
    int exp10 = atoi(strchr(buf, 'e') + 1);
    if (exp10 < -4 || exp10 >= 16) return; /* Python's repr switches to exponent notation */
    snprintf(buf, n, "%.*f", p - 1 - exp10 > 0 ? p - 1 - exp10 : 0, x);
    if (!strchr(buf, '.')) strncat(buf, ".0", n - strlen(buf) - 1);
}

void py_json_string(FILE *f, const char *s) {
    size_t len = strlen(s);
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        int32_t cp;
        int k = utf8_next(s, len, i, &cp, NULL);
        unsigned c = k ? (unsigned)cp : 0xFFFD;
        i += k ? (size_t)k : 1;
        if (c == '"') fputs("\\\"", f);
        else if (c == '\\') fputs("\\\\", f);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\b') fputs("\\b", f);
        else if (c == '\f') fputs("\\f", f);
        else if (c < 0x20 || (c > 0x7F && c < 0x10000)) fprintf(f, "\\u%04x", c);
        else if (c >= 0x10000) fprintf(f, "\\u%04x\\u%04x", 0xD800 + ((c - 0x10000) >> 10),
                                       0xDC00 + ((c - 0x10000) & 0x3FF));
        else fputc((int)c, f);
    }
    fputc('"', f);
}

cJSON *py_json_number(double x) {
    if (!isfinite(x)) return cJSON_CreateNull();
    char buf[32];
    py_float(x, buf, sizeof buf);
    return cJSON_CreateRaw(buf);
}

void py_json_float(FILE *f, double x) {
    char buf[32];
    if (isnan(x) || isinf(x)) {
        fputs(isnan(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity", f);
        return;
    }
    py_float(x, buf, sizeof buf);
    fputs(buf, f);
}
