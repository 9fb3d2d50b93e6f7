/* safetensors: 8-byte little-endian header length N, N bytes of JSON mapping each name to
 * {dtype, shape, data_offsets: [begin, end]} (relative to the first byte after the header),
 * an optional "__metadata__" object, then the data. Every field is validated before use. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/formats/checkpoint.h"

#define MAX_HEADER_BYTES (100u << 20)

static const char *const ST_DTYPES[] = {"F32", "F16", "BF16", "I64", "I32", "U8", "BOOL"};

static int dtype_from_name(const char *s, DType *dt) {
    for (int i = 0; i < (int)(sizeof ST_DTYPES / sizeof ST_DTYPES[0]); i++)
        if (strcmp(s, ST_DTYPES[i]) == 0) {
            *dt = (DType)i;
            return 0;
        }
    return -1;
}

/* a JSON number that is a whole number in [0, 2^53] */
static int json_count(const cJSON *j, int64_t *v) {
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(int64_t)d) return -1;
    *v = (int64_t)d;
    return 0;
}

typedef struct {
    int64_t begin, end;
    const char *name;
} Span;

static int cmp_span(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const Span *)a)->name, ((const Span *)b)->name);
}

/* fills t (name, dtype, shape, numel) and its span from one header entry */
static int parse_entry(const char *path, const cJSON *item, size_t data_len, NamedTensor *t,
                       Span *span, Error *e) {
    const char *name = item->string;
    if (!cJSON_IsObject(item)) return errorf(e, "%s: %s: entry is not a JSON object", path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt)) return errorf(e, "%s: %s: missing \"dtype\" string", path, name);
    if (dtype_from_name(dt->valuestring, &t->dtype) != 0)
        return errorf(e, "%s: %s: unknown or unsupported dtype \"%s\"", path, name,
                      dt->valuestring);
    int ndim = cJSON_GetArraySize(shape);
    if (!cJSON_IsArray(shape) || ndim > TENSOR_MAX_DIMS)
        return errorf(e, "%s: %s: \"shape\" must be an array of at most %d sizes", path, name,
                      TENSOR_MAX_DIMS);
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (json_count(cJSON_GetArrayItem(shape, d), &t->shape[d]) != 0)
            return errorf(e, "%s: %s: shape[%d] is not a non-negative integer", path, name, d);
        if (__builtin_mul_overflow(t->numel, (size_t)t->shape[d], &t->numel))
            return errorf(e, "%s: %s: shape is too large", path, name);
    }
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        json_count(cJSON_GetArrayItem(offs, 0), &span->begin) != 0 ||
        json_count(cJSON_GetArrayItem(offs, 1), &span->end) != 0)
        return errorf(e, "%s: %s: \"data_offsets\" must be [begin, end] byte offsets", path,
                      name);
    long long b = span->begin, en = span->end;
    if (span->end < span->begin)
        return errorf(e, "%s: %s: data_offsets [%lld, %lld] end before they begin", path, name,
                      b, en);
    if ((uint64_t)span->end > data_len)
        return errorf(e,
                      "%s: %s: data_offsets [%lld, %lld] run past the end of the data area "
                      "(%zu bytes): file truncated or offsets wrong",
                      path, name, b, en, data_len);
    size_t bytes;
    if (__builtin_mul_overflow(t->numel, dtype_size(t->dtype), &bytes) ||
        bytes != (uint64_t)(span->end - span->begin))
        return errorf(e,
                      "%s: %s: shape with %zu elements of %s needs %zu bytes but data_offsets "
                      "[%lld, %lld] hold %lld",
                      path, name, t->numel, dtype_name(t->dtype), t->numel * dtype_size(t->dtype),
                      b, en, en - b);
    return 0;
}

/* no two names alike, no two non-empty byte ranges sharing a byte */
static int check_spans(const char *path, Span *spans, int n, Error *e) {
    qsort(spans, (size_t)n, sizeof *spans, cmp_name);
    for (int i = 1; i < n; i++)
        if (strcmp(spans[i].name, spans[i - 1].name) == 0)
            return errorf(e, "%s: %s: tensor name appears twice in the header", path,
                          spans[i].name);
    qsort(spans, (size_t)n, sizeof *spans, cmp_span);
    const Span *prev = NULL;
    for (int i = 0; i < n; i++) {
        if (spans[i].begin == spans[i].end) continue;
        if (prev && spans[i].begin < prev->end)
            return errorf(e, "%s: %s: data_offsets [%lld, %lld] overlap those of %s [%lld, %lld]",
                          path, spans[i].name, (long long)spans[i].begin,
                          (long long)spans[i].end, prev->name, (long long)prev->begin,
                          (long long)prev->end);
        prev = &spans[i];
    }
    return 0;
}

static int parse_header(const char *path, const cJSON *root, unsigned char *data,
                        size_t data_len, TensorSet *ts, Error *e) {
    if (!cJSON_IsObject(root)) return errorf(e, "%s: header is not a JSON object", path);
    int n = cJSON_GetArraySize(root);
    ts->t = xcalloc((size_t)n, sizeof *ts->t);
    ts->cap = n;
    Span *spans = xcalloc((size_t)n, sizeof *spans);
    int rc = 0;
    for (const cJSON *item = root->child; item && rc == 0; item = item->next) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(item))
                rc = errorf(e, "%s: __metadata__: is not a JSON object", path);
            continue;
        }
        NamedTensor *t = &ts->t[ts->n];
        Span *span = &spans[ts->n];
        t->name = xstrdup(item->string);
        ts->n++;
        rc = parse_entry(path, item, data_len, t, span, e);
        if (rc == 0) t->data = data + span->begin;
        span->name = t->name;
    }
    if (rc == 0) rc = check_spans(path, spans, ts->n, e);
    free(spans);
    return rc;
}

static int parse_file(const char *path, unsigned char *buf, size_t len, TensorSet *ts,
                      Error *e) {
    if (len < 8)
        return errorf(e, "%s: file is %zu bytes, too short for a safetensors header "
                      "(truncated?)", path, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | buf[i];
    if (n > MAX_HEADER_BYTES)
        return errorf(e, "%s: header length %llu is absurd (limit %u bytes): not a "
                      "safetensors file?", path, (unsigned long long)n, MAX_HEADER_BYTES);
    if (n > len - 8)
        return errorf(e, "%s: header length %llu runs past the end of the file (%zu bytes): "
                      "truncated?", path, (unsigned long long)n, len);
    cJSON *root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)n);
    if (!root) return errorf(e, "%s: header is not valid JSON", path);
    int rc = parse_header(path, root, buf + 8 + n, len - 8 - n, ts, e);
    cJSON_Delete(root);
    return rc;
}

int safetensors_read(const char *path, TensorSet *out, Error *e) {
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len;
    if (read_file(path, &buf, &len, e) != 0) return -1;
    return safetensors_read_mem(path, buf, len, out, e);
}

int safetensors_read_mem(const char *name, void *buf, size_t len, TensorSet *out, Error *e) {
    memset(out, 0, sizeof *out);
    TensorSet ts = {.source = xstrdup(name), .blob = buf};
    if (parse_file(name, buf, len, &ts, e) != 0) {
        tensorset_free(&ts);
        return -1;
    }
    *out = ts;
    return 0;
}

/* ---- writing ---------------------------------------------------------------------------- */

static char *header_json(const TensorSet *ts) {
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    size_t off = 0;
    for (int i = 0; i < ts->n; i++) {
        const NamedTensor *t = &ts->t[i];
        size_t bytes = t->numel * dtype_size(t->dtype);
        cJSON *item = cJSON_AddObjectToObject(root, t->name);
        cJSON_AddStringToObject(item, "dtype", dtype_name(t->dtype));
        cJSON *shape = cJSON_AddArrayToObject(item, "shape");
        for (int d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(item, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + bytes)));
        off += bytes;
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s) {
        fprintf(stderr, "error: out of memory printing a safetensors header\n");
        exit(2);
    }
    return s;
}

int safetensors_write(const char *path, const TensorSet *ts, Error *e) {
    char *json = header_json(ts);
    size_t n = strlen(json), padded = (n + 7) & ~(size_t)7; /* data starts 8-aligned */
    size_t total = 8 + padded;
    for (int i = 0; i < ts->n; i++) total += ts->t[i].numel * dtype_size(ts->t[i].dtype);
    unsigned char *buf = xmalloc(total);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, json, n);
    memset(buf + 8 + n, ' ', padded - n);
    size_t off = 8 + padded;
    for (int i = 0; i < ts->n; i++) {
        size_t bytes = ts->t[i].numel * dtype_size(ts->t[i].dtype);
        memcpy(buf + off, ts->t[i].data, bytes);
        off += bytes;
    }
    int rc = write_file_atomic(path, buf, total, e);
    free(buf);
    cJSON_free(json);
    return rc;
}
