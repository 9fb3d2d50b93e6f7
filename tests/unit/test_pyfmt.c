/* Python's text forms (host/text/pyfmt.c) on values whose str() / json.dumps() Python gives
 * as written here, including the switches to exponent notation at 1e-4 and 1e16; and
 * py_json_number's cJSON numbers, which read back bit for bit where cJSON's own do not. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <stdio.h>

#include "host/text/pyfmt.h"
#include "test.h"

static void check_float(double x, const char *want) {
    char buf[32];
    py_float(x, buf, sizeof buf);
    CHECK(strcmp(buf, want) == 0, "str(%.17g) = '%s', want '%s'", x, buf, want);
}

static void check_json(const char *s, double x, const char *want) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (s) py_json_string(f, s);
    else py_json_float(f, x);
    fclose(f);
    CHECK(strcmp(text, want) == 0, "json.dumps: '%s', want '%s'", text, want);
    free(text);
}

/* x in a JSON array, printed by cJSON and parsed back */
static void check_number(double x, const char *want) {
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, py_json_number(x));
    char *text = cJSON_PrintUnformatted(a);
    cJSON *back = cJSON_Parse(text);
    CHECK(strcmp(text, want) == 0, "%.17g printed as %s, want %s", x, text, want);
    double y = back && cJSON_IsNumber(back->child) ? back->child->valuedouble : NAN;
    CHECK(!isfinite(x) || memcmp(&x, &y, sizeof x) == 0, "%.17g read back as %.17g", x, y);
    cJSON_Delete(back);
    cJSON_free(text);
    cJSON_Delete(a);
}

int main(void) {
    check_float(100.0, "100.0");
    check_float(10.0, "10.0");
    check_float(0.1, "0.1");
    check_float(1.0 / 3, "0.3333333333333333");
    check_float(0.0001, "0.0001");
    check_float(0.00001, "1e-05");
    check_float(2.5e-7, "2.5e-07");
    check_float(1234567890123456.0, "1234567890123456.0");
    check_float(1e16, "1e+16");
    check_float(1.5e300, "1.5e+300");
    check_float(-0.0, "-0.0");
    check_float(-42.5, "-42.5");
    check_float(5e-324, "5e-324");
    check_float(1.7976931348623157e308, "1.7976931348623157e+308");
    check_float((double)0.1f, "0.10000000149011612");
    check_float(NAN, "nan");
    check_float(-INFINITY, "-inf");
    check_json(NULL, NAN, "NaN");
    check_json(NULL, INFINITY, "Infinity");
    check_json(NULL, 0.5, "0.5");
    check_json("a\"b\\c\n\t\x01", 0, "\"a\\\"b\\\\c\\n\\t\\u0001\"");
    check_json("\xed\x95\x9c \xf0\x9f\x98\x80", 0, "\"\\ud55c \\ud83d\\ude00\"");
    check_number(0.1 + 0.2, "[0.30000000000000004]"); /* cJSON alone: 0.3 */
    check_number(2.0 / 3, "[0.6666666666666666]");    /* cJSON alone: 0.66666666666666663 */
    check_number(8.0, "[8.0]");
    check_number(-0.0, "[-0.0]");
    check_number(1e-12, "[1e-12]");
    check_number(NAN, "[null]");
    check_number(-INFINITY, "[null]");
    return test_exit("test_pyfmt");
}
