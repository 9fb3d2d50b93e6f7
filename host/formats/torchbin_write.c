/* pytorch_model.bin in torch.save's zip format (torch >= 1.6; what transformers' save_pretrained
 * writes, and what torch.load reads in every version since, so transformers 3.3.1 loads it):
 *
 *   <stem>/data.pkl            pickle protocol 2 of OrderedDict(name -> _rebuild_tensor_v2(
 *                              persistent id ('storage', torch.FloatStorage, key, 'cpu', numel),
 *                              0, size, stride, False, OrderedDict())), opcode for opcode and
 *                              memo for memo what torch.save pickles for such a state_dict
 *   <stem>/.format_version     "1"
 *   <stem>/.storage_alignment  "64"
 *   <stem>/byteorder           "little"
 *   <stem>/data/<key>          one storage per tensor, keys "0", "1", ...: raw little-endian
 *   <stem>/version             "3\n"
 *
 * <stem> is the file name without its extension, as torch names it. The zip is written here,
 * not with libzip: like torch, each record's data starts on a 64-byte boundary (padding in an
 * 'FB' extra field), so that torch.load(mmap=True), which transformers 5 uses, maps the
 * storages in place; libzip cannot place data. Records are stored uncompressed, with no zip64
 * (a file stops at 4 GiB with an error). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/formats/checkpoint.h"

typedef struct {
    unsigned char *p;
    size_t n, cap;
} Buf;

static void put(Buf *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        while (b->n + n > b->cap) b->cap = b->cap ? 2 * b->cap : 4096;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void put_byte(Buf *b, unsigned v) {
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}

/* v as n little-endian bytes */
static void put_le(Buf *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) put_byte(b, (unsigned)(v >> (8 * i)) & 0xff);
}

/* ---- the pickle ---------------------------------------------------------------------- */

/* Python's pickler memoizes each object once, by identity; these are the ones torch.save
 * pickles more than once (-1 until first written) */
typedef struct {
    Buf b;
    int memo;                         /* next memo index */
    int odict, rebuild, storage, cpu; /* OrderedDict, _rebuild_tensor_v2, 'storage', 'cpu' */
    int storage_type[DT_BOOL + 1];
} Pickle;

static void memo_put(Pickle *k) {
    if (k->memo < 256) put_byte(&k->b, 'q'), put_byte(&k->b, (unsigned)k->memo); /* BINPUT */
    else put_byte(&k->b, 'r'), put_le(&k->b, (uint64_t)k->memo, 4);                /* LONG_BINPUT */
    k->memo++;
}

static void memo_get(Pickle *k, int i) {
    if (i < 256) put_byte(&k->b, 'h'), put_byte(&k->b, (unsigned)i); /* BINGET */
    else put_byte(&k->b, 'j'), put_le(&k->b, (uint64_t)i, 4);        /* LONG_BINGET */
}

/* BININT1, BININT2, BININT or LONG1 with the fewest bytes, as pickle's save_long */
static void save_int(Pickle *k, int64_t v) {
    if (v >= 0 && v < 256) put_byte(&k->b, 'K'), put_le(&k->b, (uint64_t)v, 1);
    else if (v >= 0 && v < 65536) put_byte(&k->b, 'M'), put_le(&k->b, (uint64_t)v, 2);
    else if (v >= INT32_MIN && v <= INT32_MAX) put_byte(&k->b, 'J'), put_le(&k->b, (uint64_t)v, 4);
    else {
        int n = 1;
        while (n < 8 && !(v >= -(INT64_C(1) << (8 * n - 1)) && v < (INT64_C(1) << (8 * n - 1)))) n++;
        put_byte(&k->b, 0x8a), put_byte(&k->b, (unsigned)n), put_le(&k->b, (uint64_t)v, n);
    }
}

/* a string seen once (BINUNICODE, memoized), or again (BINGET) when *memo is set */
static void save_str(Pickle *k, const char *s, int *memo) {
    if (memo && *memo >= 0) return memo_get(k, *memo);
    put_byte(&k->b, 'X');
    put_le(&k->b, strlen(s), 4);
    put(&k->b, s, strlen(s));
    if (memo) *memo = k->memo;
    memo_put(k);
}

static void save_global(Pickle *k, const char *module, const char *name, int *memo) {
    if (*memo >= 0) return memo_get(k, *memo);
    put_byte(&k->b, 'c');
    put(&k->b, module, strlen(module)), put_byte(&k->b, '\n');
    put(&k->b, name, strlen(name)), put_byte(&k->b, '\n');
    *memo = k->memo;
    memo_put(k);
}

/* a tuple of ints: EMPTY_TUPLE, TUPLE1-3, or MARK ... TUPLE; memoized unless empty */
static void save_int_tuple(Pickle *k, const int64_t *v, int n) {
    if (n == 0) return put_byte(&k->b, ')');
    if (n > 3) put_byte(&k->b, '(');
    for (int i = 0; i < n; i++) save_int(k, v[i]);
    put_byte(&k->b, n > 3 ? 't' : 0x84 + (unsigned)n);
    memo_put(k);
}

static const char *const STORAGE_TYPES[] = {
    [DT_F32] = "FloatStorage", [DT_F16] = "HalfStorage", [DT_BF16] = "BFloat16Storage",
    [DT_I64] = "LongStorage",  [DT_I32] = "IntStorage",  [DT_U8] = "ByteStorage",
    [DT_BOOL] = "BoolStorage"};

/* _rebuild_tensor_v2(storage `key`, 0, size, contiguous stride, False, OrderedDict()) */
static void save_tensor(Pickle *k, const NamedTensor *t, const char *key) {
    save_global(k, "torch._utils", "_rebuild_tensor_v2", &k->rebuild);
    put_byte(&k->b, '('); /* the arguments */
    put_byte(&k->b, '('); /* the storage's persistent id */
    save_str(k, "storage", &k->storage);
    save_global(k, "torch", STORAGE_TYPES[t->dtype], &k->storage_type[t->dtype]);
    save_str(k, key, NULL);
    save_str(k, "cpu", &k->cpu);
    save_int(k, (int64_t)t->numel);
    put_byte(&k->b, 't'), memo_put(k);
    put_byte(&k->b, 'Q'); /* BINPERSID */
    save_int(k, 0);
    int64_t stride[TENSOR_MAX_DIMS], s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) stride[d] = s, s *= t->shape[d];
    save_int_tuple(k, t->shape, t->ndim);
    save_int_tuple(k, stride, t->ndim);
    put_byte(&k->b, 0x89);                   /* NEWFALSE: requires_grad */
    memo_get(k, k->odict);                   /* OrderedDict() */
    put_byte(&k->b, ')'), put_byte(&k->b, 'R'), memo_put(k);
    put_byte(&k->b, 't'), memo_put(k);
    put_byte(&k->b, 'R'), memo_put(k);
}

/* the state_dict's pickle; items in batches of 1000 as pickle's _batch_setitems */
static Buf state_dict_pickle(const TensorSet *ts) {
    Pickle k = {.odict = -1, .rebuild = -1, .storage = -1, .cpu = -1};
    for (int i = 0; i <= DT_BOOL; i++) k.storage_type[i] = -1;
    put_byte(&k.b, 0x80), put_byte(&k.b, 2); /* PROTO 2 */
    save_global(&k, "collections", "OrderedDict", &k.odict);
    put_byte(&k.b, ')'), put_byte(&k.b, 'R'), memo_put(&k);
    for (int start = 0; start < ts->n; start += 1000) {
        int n = ts->n - start < 1000 ? ts->n - start : 1000;
        if (n > 1) put_byte(&k.b, '(');
        for (int i = start; i < start + n; i++) {
            char key[24];
            snprintf(key, sizeof key, "%d", i);
            save_str(&k, ts->t[i].name, NULL);
            save_tensor(&k, &ts->t[i], key);
        }
        put_byte(&k.b, n > 1 ? 'u' : 's');
    }
    put_byte(&k.b, '.');
    return k.b;
}

/* ---- the zip ------------------------------------------------------------------------- */

static uint32_t crc32_of(const void *data, size_t n) {
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int j = 0; j < 8; j++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    uint32_t c = 0xffffffffu;
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

typedef struct {
    Buf out, dir; /* the local records, the central directory */
    int n;
} Zip;

enum { ALIGN = 64, DOS_DATE = (1 << 5) | 1 /* 1980-01-01 */ };

/* the header fields local and central entries share, from "version needed" on */
static void put_common(Buf *b, uint32_t crc, size_t len, size_t name_len, size_t extra_len) {
    put_le(b, 20, 2), put_le(b, 0, 2), put_le(b, 0, 2); /* version needed, flags, stored */
    put_le(b, 0, 2), put_le(b, DOS_DATE, 2);             /* time, date */
    put_le(b, crc, 4), put_le(b, len, 4), put_le(b, len, 4);
    put_le(b, name_len, 2), put_le(b, extra_len, 2);
}

static void zip_add(Zip *z, const char *name, const void *data, size_t len) {
    size_t offset = z->out.n, name_len = strlen(name);
    size_t pad = (ALIGN - (offset + 30 + name_len + 4) % ALIGN) % ALIGN;
    uint32_t crc = crc32_of(data, len);
    put_le(&z->out, 0x04034b50, 4);
    put_common(&z->out, crc, len, name_len, 4 + pad);
    put(&z->out, name, name_len);
    put(&z->out, "FB", 2), put_le(&z->out, pad, 2);
    for (size_t i = 0; i < pad; i++) put_byte(&z->out, 'Z');
    put(&z->out, data, len);
    put_le(&z->dir, 0x02014b50, 4), put_le(&z->dir, 20, 2); /* version made by */
    put_common(&z->dir, crc, len, name_len, 0);
    put_le(&z->dir, 0, 2), put_le(&z->dir, 0, 2), put_le(&z->dir, 0, 2); /* comment, disk, attr */
    put_le(&z->dir, 0, 4), put_le(&z->dir, offset, 4);                    /* attr, offset */
    put(&z->dir, name, name_len);
    z->n++;
}

static void zip_finish(Zip *z) {
    size_t dir_offset = z->out.n;
    put(&z->out, z->dir.p, z->dir.n);
    put_le(&z->out, 0x06054b50, 4), put_le(&z->out, 0, 2), put_le(&z->out, 0, 2);
    put_le(&z->out, (uint64_t)z->n, 2), put_le(&z->out, (uint64_t)z->n, 2);
    put_le(&z->out, z->dir.n, 4), put_le(&z->out, dir_offset, 4), put_le(&z->out, 0, 2);
}

static void add_record(Zip *z, const char *stem, const char *name, const void *data, size_t len) {
    char *full = strfmt("%s/%s", stem, name);
    zip_add(z, full, data, len);
    free(full);
}

int torchbin_write(const char *path, const TensorSet *ts, Error *e) {
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    const char *dot = strrchr(base, '.');
    char *stem = strfmt("%.*s", (int)(dot && dot != base ? dot - base : (long)strlen(base)), base);
    Buf pkl = state_dict_pickle(ts);
    Zip z = {0};
    add_record(&z, stem, "data.pkl", pkl.p, pkl.n);
    add_record(&z, stem, ".format_version", "1", 1);
    add_record(&z, stem, ".storage_alignment", "64", 2);
    add_record(&z, stem, "byteorder", "little", 6);
    for (int i = 0; i < ts->n; i++) {
        char *name = strfmt("data/%d", i);
        add_record(&z, stem, name, ts->t[i].data, ts->t[i].numel * dtype_size(ts->t[i].dtype));
        free(name);
    }
    add_record(&z, stem, "version", "3\n", 2);
    zip_finish(&z);
    int rc = z.out.n < UINT32_MAX ? write_file_atomic(path, z.out.p, z.out.n, e)
                                  : errorf(e, "%s: %zu bytes: too large for a zip without zip64 "
                                           "(4 GiB)", path, z.out.n);
    free(stem), free(pkl.p), free(z.out.p), free(z.dir.p);
    return rc;
}
