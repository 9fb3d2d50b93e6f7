/* Named tensor sets: building, finding, freeing, dtype conversions, and reading a checkpoint
 * file by its kind. The file formats live in safetensors.c and torchbin.c. */
#include "host/formats/checkpoint.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t dtype_size(DType dt) {
    switch (dt) {
    case DT_F32: case DT_I32: return 4;
    case DT_F16: case DT_BF16: return 2;
    case DT_I64: return 8;
    case DT_U8: case DT_BOOL: return 1;
    }
    return 0;
}

const char *dtype_name(DType dt) {
    static const char *names[] = {"F32", "F16", "BF16", "I64", "I32", "U8", "BOOL"};
    return (unsigned)dt < sizeof names / sizeof names[0] ? names[dt] : "?";
}

/* ---- the set ---------------------------------------------------------------------------- */

const NamedTensor *tensorset_find(const TensorSet *ts, const char *name) {
    for (int i = 0; i < ts->n; i++)
        if (strcmp(ts->t[i].name, name) == 0) return &ts->t[i];
    return NULL;
}

void tensorset_add(TensorSet *ts, const char *name, DType dtype, int ndim, const int64_t *shape,
                   const void *data) {
    if (tensorset_find(ts, name) || ndim < 0 || ndim > TENSOR_MAX_DIMS) {
        fprintf(stderr, "error: tensorset_add: bad or duplicate tensor '%s'\n", name);
        abort();
    }
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? 2 * ts->cap : 16;
        ts->t = xrealloc(ts->t, (size_t)ts->cap * sizeof *ts->t);
    }
    NamedTensor *t = &ts->t[ts->n++];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->dtype = dtype;
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->numel *= (size_t)shape[d];
    }
    size_t bytes = t->numel * dtype_size(dtype);
    t->data = xmalloc(bytes);
    memcpy(t->data, data, bytes);
    t->owns_data = 1;
}

void tensorset_add_f32(TensorSet *ts, const char *name, const float *data, int ndim,
                       const int64_t *shape) {
    tensorset_add(ts, name, DT_F32, ndim, shape, data);
}

void tensorset_free(TensorSet *ts) {
    for (int i = 0; i < ts->n; i++) {
        free(ts->t[i].name);
        if (ts->t[i].owns_data) free(ts->t[i].data);
    }
    free(ts->t);
    free(ts->source);
    free(ts->blob);
    memset(ts, 0, sizeof *ts);
}

/* ---- half / bfloat16 -------------------------------------------------------------------- */

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    uint32_t x;
    if (exp == 0x1f) {
        x = sign | 0x7f800000 | (mant << 13); /* inf / NaN */
    } else if (exp != 0) {
        x = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        x = sign;
    } else { /* subnormal: normalise */
        exp = 113;
        while (!(mant & 0x400)) {
            mant <<= 1;
            exp--;
        }
        x = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* rounds v >> shift to nearest, ties to even */
static uint32_t shift_round_even(uint32_t v, int shift) {
    uint32_t q = v >> shift, rem = v & ((1u << shift) - 1), half = 1u << (shift - 1);
    return q + (rem > half || (rem == half && (q & 1)));
}

uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffff, exp = ax >> 23;
    if (ax > 0x7f800000) return sign | 0x7e00; /* NaN stays a (quiet) NaN */
    if (ax >= 0x477ff000) return sign | 0x7c00; /* >= 65520 rounds to inf */
    if (ax >= 0x38800000) /* normal half; a carry out of the mantissa bumps the exponent */
        return sign | (uint16_t)shift_round_even(((exp - 112) << 23) | (ax & 0x7fffff), 13);
    if (exp < 102) return sign; /* below half the smallest subnormal (2^-25) */
    /* subnormal half: units of 2^-24 */
    uint32_t mant = (ax & 0x7fffff) | 0x800000;
    return sign | (uint16_t)shift_round_even(mant, (int)(126 - exp));
}

float bf16_to_f32(uint16_t b) {
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* ---- conversions ------------------------------------------------------------------------ */

/* element i of t as a 64-bit integer (integer dtypes only) */
static int64_t int_at(const NamedTensor *t, size_t i) {
    const unsigned char *p = (const unsigned char *)t->data + i * dtype_size(t->dtype);
    int64_t v64;
    int32_t v32;
    switch (t->dtype) {
    case DT_I64: memcpy(&v64, p, 8); return v64;
    case DT_I32: memcpy(&v32, p, 4); return v32;
    default: return *p;
    }
}

int tensor_to_f32(const NamedTensor *t, float *dst, Error *e) {
    const unsigned char *p = t->data;
    uint16_t h;
    switch (t->dtype) {
    case DT_F32:
        memcpy(dst, p, t->numel * 4);
        return 0;
    case DT_F16:
    case DT_BF16:
        for (size_t i = 0; i < t->numel; i++) {
            memcpy(&h, p + 2 * i, 2);
            dst[i] = t->dtype == DT_F16 ? f16_to_f32(h) : bf16_to_f32(h);
        }
        return 0;
    case DT_I64: case DT_I32: case DT_U8: case DT_BOOL:
        for (size_t i = 0; i < t->numel; i++) dst[i] = (float)int_at(t, i);
        return 0;
    }
    return errorf(e, "%s: unknown dtype %d", t->name, (int)t->dtype);
}

int tensor_to_i32(const NamedTensor *t, int *dst, Error *e) {
    if (t->dtype == DT_F32 || t->dtype == DT_F16 || t->dtype == DT_BF16)
        return errorf(e, "%s: is %s, expected an integer tensor", t->name,
                      dtype_name(t->dtype));
    for (size_t i = 0; i < t->numel; i++) {
        int64_t v = int_at(t, i);
        if (v < INT_MIN || v > INT_MAX)
            return errorf(e, "%s: element %zu = %lld does not fit in int", t->name, i,
                          (long long)v);
        dst[i] = (int)v;
    }
    return 0;
}

/* ---- by kind ---------------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* .safetensors by name (its first byte is a length, which may look like a pickle's); else by
 * content: a zip or a pickle is a torch.save file */
int checkpoint_read(const char *path, TensorSet *out, Error *e) {
    if (ends_with(path, ".safetensors")) return safetensors_read(path, out, e);
    unsigned char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return errorf(e, "%s: cannot open", path);
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    int zip = got == 4 && memcmp(magic, "PK\x03\x04", 4) == 0;
    int pickle = got >= 1 && magic[0] == 0x80;
    if (zip || pickle || ends_with(path, ".bin") || ends_with(path, ".pt") ||
        ends_with(path, ".pth"))
        return torchbin_read(path, out, e);
    return safetensors_read(path, out, e);
}
