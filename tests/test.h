/* A tiny test harness: CHECK counts failures, rel_l2 is DESIGN.md's error measure, and the
 * random fill never produces zeros or constants. Every test's main returns test_exit() (or
 * skips with TEST_SKIP). */
#ifndef KOE_TEST_H
#define KOE_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures = 0;
static int test_checks = 0;

#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        test_checks++;                                                              \
        if (!(cond)) {                                                              \
            test_failures++;                                                        \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                           \
            fprintf(stderr, "\n");                                                  \
        }                                                                           \
    } while (0)

/* ||a-b|| / ||b||; NaN anywhere gives +inf so it never passes a threshold */
static inline double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i]) || isinf(a[i]) || isinf(b[i])) return INFINITY;
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return sqrt(num / den);
}

/* xorshift-based uniform fill in [lo, hi) */
static inline void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t *state) {
    for (size_t i = 0; i < n; i++) {
        uint64_t s = *state;
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        *state = s;
        x[i] = lo + (hi - lo) * (float)((s >> 40) * (1.0 / 16777216.0));
    }
}

/* round to the nearest bf16 (ties to even), as the CUDA backend stores activations; finite x */
static inline float bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

/* a test's exit status: failing when a CHECK failed, and when none ran (a test that checked
 * nothing cannot have passed); a skip exits 77 through TEST_SKIP instead */
static inline int test_exit(const char *name) {
    printf("%s: %d checks, %d failed\n", name, test_checks, test_failures);
    if (test_checks == 0) printf("%s: FAIL: no check ran\n", name);
    return test_failures || test_checks == 0 ? 1 : 0;
}

#define TEST_SKIP(...)                       \
    do {                                     \
        printf("SKIP: " __VA_ARGS__);        \
        printf("\n");                        \
        exit(77);                            \
    } while (0)

#endif
