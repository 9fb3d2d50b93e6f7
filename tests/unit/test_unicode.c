/* host/text/unicode.c: utf8_next accepts exactly the strict UTF-8 that utf8proc_iterate (an
 * independent decoder) accepts, over every lead and second byte with a spread of later
 * bytes; its errors name the offending byte; utf8_encode round-trips; py_isspace is
 * Python's str.isspace(). */
#include <string.h>
#include <utf8proc.h>

#include "host/text/unicode.h"
#include "test.h"

static void test_against_utf8proc(void) {
    static const unsigned char tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
                                          0xC0, 0xFF};
    const int nt = (int)sizeof tails;
    int mismatches = 0;
    for (int b0 = 1; b0 < 256; b0++)
        for (int b1 = 0; b1 < 256; b1++)
            for (int i2 = 0; i2 < nt; i2++)
                for (int i3 = 0; i3 < nt; i3++) {
                    unsigned char s[4] = {(unsigned char)b0, (unsigned char)b1, tails[i2],
                                          tails[i3]};
                    int32_t ours = -1;
                    utf8proc_int32_t theirs = -1;
                    int k = utf8_next((const char *)s, 4, 0, &ours, NULL);
                    utf8proc_ssize_t kt = utf8proc_iterate(s, 4, &theirs);
                    int same = kt < 0 ? k == 0 : k == kt && ours == theirs;
                    if (!same && mismatches++ < 5)
                        CHECK(same, "%02X %02X %02X %02X: ours %d (U+%04X), utf8proc %d", b0, b1,
                              tails[i2], tails[i3], k, (unsigned)ours, (int)kt);
                }
    CHECK(mismatches == 0, "%d byte sequences decode differently", mismatches);
}

static void test_errors(void) {
    struct {
        const char *s, *want;
        size_t bad;
    } cases[] = {
        {"ab\xC3", "byte 2: sequence cut short", 2},
        {"\x80x", "byte 0: unexpected continuation byte 0x80", 0},
        {"x\xC0\xAF", "byte 1: invalid lead byte 0xC0", 1},
        {"xy\xED\xA0\x80", "byte 2: surrogate U+D800", 2},
        {"\xF4\x90\x80\x80", "byte 0: code point above U+10FFFF", 0},
        {"\xE0\x80\xAF", "byte 0: overlong", 0},
        {"a\xE2\x28\xA1", "byte 2: missing continuation byte", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Error e = {{0}};
        size_t bad = utf8_invalid_at(cases[i].s, strlen(cases[i].s), &e);
        CHECK(bad == cases[i].bad && strstr(e.msg, "invalid UTF-8 at ") &&
                  strstr(e.msg, cases[i].want),
              "case %zu: at %zu, '%s'", i, bad, e.msg);
    }
    const char *ok = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
    CHECK(utf8_invalid_at(ok, strlen(ok), NULL) == strlen(ok), "valid text flagged");
}

static void test_roundtrip(void) {
    const char *text = "x\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80 \xEA\xB0\x80";
    int32_t *cps = NULL;
    int cap = 0, n = utf8_decode(text, strlen(text), &cps, &cap, NULL);
    CHECK(n == 6 && cps[1] == 0xE9 && cps[2] == 0x20AC && cps[3] == 0x1F600 && cps[5] == 0xAC00,
          "decoded %d code points", n);
    size_t bytes = 0;
    for (int i = 0; i < n; i++) bytes += (size_t)utf8_len(cps[i]);
    char *out = NULL;
    size_t ocap = 0, len = utf8_encode(cps, n, &out, &ocap);
    CHECK(len == strlen(text) && bytes == len && strcmp(out, text) == 0, "round trip '%s'", out);
    free(out);
    free(cps);
}

/* Python 3.11: [c for c in range(0x110000) if chr(c).isspace()] */
static void test_isspace(void) {
    static const int32_t spaces[] = {0x9,    0xA,    0xB,    0xC,    0xD,    0x1C,   0x1D,
                                     0x1E,   0x1F,   0x20,   0x85,   0xA0,   0x1680, 0x2000,
                                     0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007,
                                     0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F,
                                     0x3000};
    int n = 0, listed = (int)(sizeof spaces / sizeof spaces[0]);
    for (int32_t c = 0; c < 0x110000; c++) n += py_isspace(c);
    for (int i = 0; i < listed; i++) CHECK(py_isspace(spaces[i]), "U+%04X", (unsigned)spaces[i]);
    CHECK(n == listed, "%d whitespace code points, Python has %d", n, listed);
}

int main(void) {
    test_against_utf8proc();
    test_errors();
    test_roundtrip();
    test_isspace();
    return test_exit("test_unicode");
}
