/* pytorch_model.bin as torch.save writes it, in either of its two formats:
 * - zip (torch >= 1.6): a zip holding <prefix>/data.pkl (a pickle of the state_dict whose
 *   tensors refer to storages by key), <prefix>/data/<key> (each storage's raw little-endian
 *   bytes) and <prefix>/byteorder;
 * - legacy (torch < 1.6, or _use_new_zipfile_serialization=False): pickles one after another
 *   (magic number, protocol version 1001, sys_info, the state_dict, the list of storage keys),
 *   then for each key in that list an 8-byte little-endian element count and the raw bytes.
 *
 * The pickle is run by a small bounded VM that knows only what torch.save writes for a
 * state_dict: containers, strings, ints, bools, memo, OrderedDict, _rebuild_tensor_v2,
 * _rebuild_parameter and storage persistent ids. Any other opcode or global is refused, so a
 * crafted file can never make it do anything but build tensors. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "host/formats/checkpoint.h"

#define MAX_STACK (1 << 16)
#define MAX_MEMO (1 << 20)
#define MAX_STRING (1 << 20)
#define MAX_OBJECTS (1 << 22)
#define MAX_PICKLE_BYTES (256u << 20)
#define MAX_VIEW_NUMEL (1ull << 31)

typedef enum { O_NONE, O_BOOL, O_INT, O_BIGINT, O_STR, O_TUPLE, O_LIST, O_DICT, O_GLOBAL,
               O_STORAGE, O_TENSOR } ObjKind;
typedef enum { G_ODICT, G_REBUILD_TENSOR, G_REBUILD_PARAM, G_STORAGE } GlobalKind;

typedef struct Obj {
    ObjKind kind;
    int64_t i;    /* BOOL/INT value; GLOBAL: GlobalKind; STORAGE: numel */
    DType dtype;  /* GLOBAL of a storage type, STORAGE */
    char *s;      /* STR; STORAGE: key; BIGINT: little-endian bytes (n of them) */
    struct Obj **items; /* TUPLE/LIST items, DICT key/value pairs */
    int n, cap;
    struct Obj *storage; /* TENSOR: a view of storage */
    int64_t offset;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS], stride[TENSOR_MAX_DIMS];
} Obj;

typedef struct {
    const char *path, *entry; /* for messages */
    const unsigned char *p;
    size_t len, pos, op_pos;
    Obj **stack; /* both grow as needed, up to MAX_STACK */
    int sp, stack_cap;
    int *marks;
    int nmarks, marks_cap;
    Obj **memo;
    size_t nmemo;
    Obj **all; /* every object made, freed at the end */
    size_t nall, capall;
    Error *e;
    int legacy; /* persistent ids carry a sixth field, view_metadata (always None) */
} Vm;

static const struct {
    const char *name;
    GlobalKind kind;
    DType dtype;
} ALLOWED_GLOBALS[] = {
    {"collections.OrderedDict", G_ODICT, DT_F32},
    {"torch._utils._rebuild_tensor_v2", G_REBUILD_TENSOR, DT_F32},
    {"torch._utils._rebuild_parameter", G_REBUILD_PARAM, DT_F32},
    {"torch.FloatStorage", G_STORAGE, DT_F32},
    {"torch.HalfStorage", G_STORAGE, DT_F16},
    {"torch.BFloat16Storage", G_STORAGE, DT_BF16},
    {"torch.LongStorage", G_STORAGE, DT_I64},
    {"torch.IntStorage", G_STORAGE, DT_I32},
    {"torch.ByteStorage", G_STORAGE, DT_U8},
    {"torch.BoolStorage", G_STORAGE, DT_BOOL},
};

/* every VM error names the file, the pickle entry and the opcode's byte offset */
#define VM_FAIL(vm, ...) vm_fail(vm, strfmt(__VA_ARGS__))
static int vm_fail(Vm *vm, char *what) {
    errorf(vm->e, "%s: %s: byte %zu: %s", vm->path, vm->entry, vm->op_pos, what);
    free(what);
    return -1;
}

static Obj *new_obj(Vm *vm, ObjKind kind) {
    if (vm->nall >= MAX_OBJECTS) return NULL;
    if (vm->nall == vm->capall) {
        vm->capall = vm->capall ? 2 * vm->capall : 256;
        vm->all = xrealloc(vm->all, vm->capall * sizeof *vm->all);
    }
    Obj *o = xcalloc(1, sizeof *o);
    o->kind = kind;
    vm->all[vm->nall++] = o;
    return o;
}

static void add_item(Obj *c, Obj *item) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 4;
        c->items = xrealloc(c->items, (size_t)c->cap * sizeof *c->items);
    }
    c->items[c->n++] = item;
}

static int push(Vm *vm, Obj *o) {
    if (!o) return VM_FAIL(vm, "more than %d objects", MAX_OBJECTS);
    if (vm->sp >= MAX_STACK) return VM_FAIL(vm, "stack deeper than %d", MAX_STACK);
    if (vm->sp == vm->stack_cap) {
        vm->stack_cap = vm->stack_cap ? 2 * vm->stack_cap : 64;
        vm->stack = xrealloc(vm->stack, (size_t)vm->stack_cap * sizeof *vm->stack);
    }
    vm->stack[vm->sp++] = o;
    return 0;
}

static Obj *pop(Vm *vm) {
    int floor = vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
    if (vm->sp <= floor) {
        VM_FAIL(vm, "stack underflow");
        return NULL;
    }
    return vm->stack[--vm->sp];
}

static Obj *top(Vm *vm) {
    int floor = vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
    if (vm->sp <= floor) {
        VM_FAIL(vm, "stack underflow");
        return NULL;
    }
    return vm->stack[vm->sp - 1];
}

static void drop_mark(Vm *vm) { vm->sp = vm->marks[--vm->nmarks]; }

/* ---- reading operands ------------------------------------------------------------------- */

static const unsigned char *take(Vm *vm, size_t n) {
    if (n > vm->len - vm->pos) {
        VM_FAIL(vm, "pickle ends in the middle of an opcode (truncated)");
        return NULL;
    }
    const unsigned char *p = vm->p + vm->pos;
    vm->pos += n;
    return p;
}

static int read_uint(Vm *vm, int bytes, uint64_t *v) {
    const unsigned char *p = take(vm, (size_t)bytes);
    if (!p) return -1;
    *v = 0;
    for (int i = bytes - 1; i >= 0; i--) *v = (*v << 8) | p[i];
    return 0;
}

static int push_string(Vm *vm, int len_bytes) {
    uint64_t n;
    if (read_uint(vm, len_bytes, &n) != 0) return -1;
    if (n > MAX_STRING) return VM_FAIL(vm, "string of %llu bytes (limit %d)",
                                       (unsigned long long)n, MAX_STRING);
    const unsigned char *p = take(vm, (size_t)n);
    if (!p) return -1;
    Obj *o = new_obj(vm, O_STR);
    if (!o) return push(vm, NULL);
    o->s = xmalloc((size_t)n + 1);
    memcpy(o->s, p, (size_t)n);
    o->s[n] = 0;
    return push(vm, o);
}

static int push_int(Vm *vm, int64_t v) {
    Obj *o = new_obj(vm, O_INT);
    if (o) o->i = v;
    return push(vm, o);
}

/* LONG1: n little-endian two's complement bytes; n <= 8 is an INT, 8 < n <= 16 a BIGINT
 * kept as bytes (only the legacy format's magic number is one) */
static int push_long1(Vm *vm) {
    uint64_t n, v;
    if (read_uint(vm, 1, &n) != 0) return -1;
    if (n > 16) return VM_FAIL(vm, "LONG1 of %llu bytes is too long", (unsigned long long)n);
    if (n == 0) return push_int(vm, 0);
    if (n > 8) {
        const unsigned char *p = take(vm, (size_t)n);
        if (!p) return -1;
        Obj *o = new_obj(vm, O_BIGINT);
        if (o) {
            o->s = xmalloc((size_t)n);
            memcpy(o->s, p, (size_t)n);
            o->n = (int)n;
        }
        return push(vm, o);
    }
    if (read_uint(vm, (int)n, &v) != 0) return -1;
    if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~0ull << (8 * n); /* sign-extend */
    return push_int(vm, (int64_t)v);
}

/* GLOBAL "module\nname\n", allowed only from ALLOWED_GLOBALS */
static int push_global(Vm *vm) {
    char name[2][128];
    for (int k = 0; k < 2; k++) {
        size_t i = 0;
        for (;;) {
            const unsigned char *c = take(vm, 1);
            if (!c) return -1;
            if (*c == '\n') break;
            if (i + 1 >= sizeof name[k]) return VM_FAIL(vm, "GLOBAL name too long");
            name[k][i++] = (char)*c;
        }
        name[k][i] = 0;
    }
    char full[260];
    snprintf(full, sizeof full, "%s.%s", name[0], name[1]);
    for (size_t i = 0; i < sizeof ALLOWED_GLOBALS / sizeof ALLOWED_GLOBALS[0]; i++)
        if (strcmp(full, ALLOWED_GLOBALS[i].name) == 0) {
            Obj *o = new_obj(vm, O_GLOBAL);
            if (o) {
                o->i = ALLOWED_GLOBALS[i].kind;
                o->dtype = ALLOWED_GLOBALS[i].dtype;
                o->s = xstrdup(full);
            }
            return push(vm, o);
        }
    return VM_FAIL(vm, "global '%s' is not allowed in a state_dict", full);
}

/* ---- memo ------------------------------------------------------------------------------- */

static int memo_put(Vm *vm, int idx_bytes) {
    uint64_t idx;
    if (read_uint(vm, idx_bytes, &idx) != 0) return -1;
    if (idx >= MAX_MEMO) return VM_FAIL(vm, "memo index %llu (limit %d)",
                                        (unsigned long long)idx, MAX_MEMO);
    Obj *o = top(vm);
    if (!o) return -1;
    if (idx >= vm->nmemo) {
        size_t n = idx + 1 > 2 * vm->nmemo ? idx + 1 : 2 * vm->nmemo;
        vm->memo = xrealloc(vm->memo, n * sizeof *vm->memo);
        memset(vm->memo + vm->nmemo, 0, (n - vm->nmemo) * sizeof *vm->memo);
        vm->nmemo = n;
    }
    vm->memo[idx] = o;
    return 0;
}

static int memo_get(Vm *vm, int idx_bytes) {
    uint64_t idx;
    if (read_uint(vm, idx_bytes, &idx) != 0) return -1;
    if (idx >= vm->nmemo || !vm->memo[idx])
        return VM_FAIL(vm, "memo index %llu was never stored", (unsigned long long)idx);
    return push(vm, vm->memo[idx]);
}

/* ---- containers ------------------------------------------------------------------------- */

/* TUPLE: the items since the last MARK */
static int tuple_from_mark(Vm *vm) {
    if (vm->nmarks == 0) return VM_FAIL(vm, "no MARK on the stack");
    Obj *t = new_obj(vm, O_TUPLE);
    for (int i = vm->marks[vm->nmarks - 1]; t && i < vm->sp; i++) add_item(t, vm->stack[i]);
    drop_mark(vm);
    return push(vm, t);
}

/* TUPLE1/2/3: the top n items */
static int tuple_from_top(Vm *vm, int n) {
    int floor = vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
    if (vm->sp - floor < n) return VM_FAIL(vm, "stack underflow");
    Obj *t = new_obj(vm, O_TUPLE);
    for (int i = 0; t && i < n; i++) add_item(t, vm->stack[vm->sp - n + i]);
    vm->sp -= n;
    return push(vm, t);
}

static int push_new(Vm *vm, ObjKind kind) { return push(vm, new_obj(vm, kind)); }

/* SETITEM(S) / APPEND(S): pairs or items since the MARK (or the top 1-2) into the container
 * below them */
static int fill_container(Vm *vm, int since_mark, int pairs) {
    if (since_mark && vm->nmarks == 0) return VM_FAIL(vm, "no MARK on the stack");
    int start = since_mark ? vm->marks[vm->nmarks - 1] : vm->sp - (pairs ? 2 : 1);
    int floor_at = vm->nmarks - (since_mark ? 2 : 1);
    if (start - 1 < (floor_at >= 0 ? vm->marks[floor_at] : 0))
        return VM_FAIL(vm, "stack underflow");
    Obj *c = vm->stack[start - 1];
    int n = vm->sp - start;
    if (pairs && (c->kind != O_DICT || n % 2))
        return VM_FAIL(vm, "SETITEM(S) on something that is not a dict");
    if (!pairs && c->kind != O_LIST)
        return VM_FAIL(vm, "APPEND(S) on something that is not a list");
    for (int i = start; i < vm->sp; i++) add_item(c, vm->stack[i]);
    if (since_mark) drop_mark(vm);
    else vm->sp = start;
    return 0;
}

/* ---- torch's callables ------------------------------------------------------------------ */

static int int_tuple(const Obj *t, int64_t *out, int *n) {
    if (t->kind != O_TUPLE || t->n > TENSOR_MAX_DIMS) return -1;
    for (int i = 0; i < t->n; i++) {
        if (t->items[i]->kind != O_INT || t->items[i]->i < 0) return -1;
        out[i] = t->items[i]->i;
    }
    *n = t->n;
    return 0;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) */
static Obj *rebuild_tensor(Vm *vm, const Obj *args) {
    if (args->n < 6 || args->n > 7 || args->items[0]->kind != O_STORAGE ||
        args->items[1]->kind != O_INT || args->items[1]->i < 0) {
        VM_FAIL(vm, "_rebuild_tensor_v2 with unexpected arguments");
        return NULL;
    }
    Obj *t = new_obj(vm, O_TENSOR);
    if (!t) {
        VM_FAIL(vm, "more than %d objects", MAX_OBJECTS);
        return NULL;
    }
    int nstride = -1;
    t->storage = args->items[0];
    t->offset = args->items[1]->i;
    if (int_tuple(args->items[2], t->shape, &t->ndim) != 0 ||
        int_tuple(args->items[3], t->stride, &nstride) != 0 || nstride != t->ndim) {
        VM_FAIL(vm, "_rebuild_tensor_v2: size/stride are not matching tuples of at most %d "
                "non-negative ints", TENSOR_MAX_DIMS);
        return NULL;
    }
    return t;
}

/* REDUCE: callable(args) for the few callables torch.save uses */
static int reduce(Vm *vm) {
    Obj *args = pop(vm), *fn = args ? pop(vm) : NULL;
    if (!fn) return -1;
    if (fn->kind != O_GLOBAL || args->kind != O_TUPLE)
        return VM_FAIL(vm, "REDUCE needs a global and an argument tuple");
    switch ((GlobalKind)fn->i) {
    case G_ODICT:
        if (args->n != 0) return VM_FAIL(vm, "OrderedDict called with arguments");
        return push_new(vm, O_DICT);
    case G_REBUILD_TENSOR: {
        Obj *t = rebuild_tensor(vm, args);
        return t ? push(vm, t) : -1;
    }
    case G_REBUILD_PARAM:
        if (args->n < 1 || args->items[0]->kind != O_TENSOR)
            return VM_FAIL(vm, "_rebuild_parameter without a tensor");
        return push(vm, args->items[0]);
    case G_STORAGE: break;
    }
    return VM_FAIL(vm, "'%s' cannot be called", fn->s);
}

/* BINPERSID: ('storage', storage_type, key, location, numel), legacy files add a sixth field
 * view_metadata, which torch writes as None (storage views are long gone) */
static int persistent_load(Vm *vm) {
    Obj *pid = pop(vm);
    if (!pid) return -1;
    Obj **f = pid->items;
    int fields = vm->legacy ? 6 : 5;
    if (pid->kind == O_TUPLE && pid->n == 6 && vm->legacy && f[5]->kind != O_NONE)
        return VM_FAIL(vm, "persistent id with view_metadata (a storage view) is not supported");
    if (pid->kind != O_TUPLE || pid->n != fields || f[0]->kind != O_STR ||
        strcmp(f[0]->s, "storage") != 0 || f[1]->kind != O_GLOBAL || f[1]->i != G_STORAGE ||
        f[2]->kind != O_STR || f[4]->kind != O_INT || f[4]->i < 0)
        return VM_FAIL(vm, "persistent id is not ('storage', <type>, key, location, numel%s)",
                       vm->legacy ? ", None" : "");
    for (const char *c = f[2]->s; *c; c++)
        if (*c == '/' || *c == '\\' || *c == '.')
            return VM_FAIL(vm, "storage key '%s' is not a plain name", f[2]->s);
    /* numel * element size is what gets read and compared: it must not wrap around */
    if ((uint64_t)f[4]->i > SIZE_MAX / dtype_size(f[1]->dtype))
        return VM_FAIL(vm, "storage '%s' of %lld elements of %s: its size in bytes overflows",
                       f[2]->s, (long long)f[4]->i, dtype_name(f[1]->dtype));
    Obj *st = new_obj(vm, O_STORAGE);
    if (st) {
        st->dtype = f[1]->dtype;
        st->s = xstrdup(f[2]->s);
        st->i = f[4]->i;
    }
    return push(vm, st);
}

/* BUILD on a dict: OrderedDict's state (state_dict _metadata) is dropped */
static int build(Vm *vm) {
    Obj *state = pop(vm), *o = state ? top(vm) : NULL;
    if (!o) return -1;
    if (o->kind != O_DICT || (state->kind != O_DICT && state->kind != O_NONE))
        return VM_FAIL(vm, "BUILD on something other than an OrderedDict");
    return 0;
}

static int push_mark(Vm *vm) {
    if (vm->nmarks >= MAX_STACK) return VM_FAIL(vm, "more than %d MARKs", MAX_STACK);
    if (vm->nmarks == vm->marks_cap) {
        vm->marks_cap = vm->marks_cap ? 2 * vm->marks_cap : 16;
        vm->marks = xrealloc(vm->marks, (size_t)vm->marks_cap * sizeof *vm->marks);
    }
    vm->marks[vm->nmarks++] = vm->sp;
    return 0;
}

/* one opcode; 1 at STOP */
static int step(Vm *vm) {
    vm->op_pos = vm->pos;
    const unsigned char *op = take(vm, 1);
    if (!op) return -1;
    uint64_t v;
    switch (*op) {
    case 0x80: return read_uint(vm, 1, &v);             /* PROTO */
    case '}': return push_new(vm, O_DICT);              /* EMPTY_DICT */
    case ']': return push_new(vm, O_LIST);              /* EMPTY_LIST */
    case ')': return push_new(vm, O_TUPLE);             /* EMPTY_TUPLE */
    case 'N': return push_new(vm, O_NONE);              /* NONE */
    case '(': return push_mark(vm);                     /* MARK */
    case 'X': case 'T': return push_string(vm, 4);      /* BINUNICODE, BINSTRING */
    case 0x8c: case 'U': return push_string(vm, 1);     /* SHORT_BINUNICODE/BINSTRING */
    case 'K': return read_uint(vm, 1, &v) ? -1 : push_int(vm, (int64_t)v); /* BININT1 */
    case 'M': return read_uint(vm, 2, &v) ? -1 : push_int(vm, (int64_t)v); /* BININT2 */
    case 'J': return read_uint(vm, 4, &v) ? -1 : push_int(vm, (int32_t)(uint32_t)v); /* BININT */
    case 0x8a: return push_long1(vm);                   /* LONG1 */
    case 0x88: case 0x89: {                             /* NEWTRUE, NEWFALSE */
        Obj *b = new_obj(vm, O_BOOL);
        if (b) b->i = *op == 0x88;
        return push(vm, b);
    }
    case 't': return tuple_from_mark(vm);               /* TUPLE */
    case 0x85: case 0x86: case 0x87: return tuple_from_top(vm, *op - 0x84); /* TUPLE1-3 */
    case 'q': return memo_put(vm, 1);                   /* BINPUT */
    case 'r': return memo_put(vm, 4);                   /* LONG_BINPUT */
    case 'h': return memo_get(vm, 1);                   /* BINGET */
    case 'j': return memo_get(vm, 4);                   /* LONG_BINGET */
    case 's': return fill_container(vm, 0, 1);          /* SETITEM */
    case 'u': return fill_container(vm, 1, 1);          /* SETITEMS */
    case 'a': return fill_container(vm, 0, 0);          /* APPEND */
    case 'e': return fill_container(vm, 1, 0);          /* APPENDS */
    case 'c': return push_global(vm);                   /* GLOBAL */
    case 'R': return reduce(vm);                        /* REDUCE */
    case 'Q': return persistent_load(vm);               /* BINPERSID */
    case 'b': return build(vm);                         /* BUILD */
    case '.': return 1;                                 /* STOP */
    }
    if (*op >= 0x20 && *op < 0x7f)
        return VM_FAIL(vm, "unexpected pickle opcode 0x%02x ('%c')", *op, *op);
    return VM_FAIL(vm, "unexpected pickle opcode 0x%02x", *op);
}

/* runs the pickle; the result (the object at STOP) stays owned by vm */
static Obj *run_pickle(Vm *vm) {
    int rc;
    while ((rc = step(vm)) == 0) {}
    if (rc < 0) return NULL;
    if (vm->sp != 1 || vm->nmarks != 0) {
        VM_FAIL(vm, "STOP with %d objects and %d marks left on the stack", vm->sp, vm->nmarks);
        return NULL;
    }
    return vm->stack[0];
}

static void vm_free(Vm *vm) {
    for (size_t i = 0; i < vm->nall; i++) {
        free(vm->all[i]->s);
        free(vm->all[i]->items);
        free(vm->all[i]);
    }
    free(vm->all);
    free(vm->memo);
    free(vm->stack);
    free(vm->marks);
}

/* ---- the zip archive -------------------------------------------------------------------- */

/* where storages come from: zip entries read on first use, or (legacy, za == NULL) all read
 * up front, pointing into the file buffer (the caller's) */
typedef struct {
    const char *path;
    zip_t *za;
    char *prefix;    /* "archive" in "archive/data.pkl" */
    char **keys;     /* storages read so far (a storage may back several tensors) */
    const void **data;
    size_t *bytes;
    int nstorages;
    const unsigned char *file; /* legacy: the whole file; data[] point into it */
} Archive;

/* reads a whole entry; 1 if it is absent */
static int read_entry(Archive *ar, const char *name, size_t limit, void **out, size_t *len,
                      Error *e) {
    zip_stat_t st;
    if (zip_stat(ar->za, name, 0, &st) != 0) return 1;
    if (!(st.valid & ZIP_STAT_SIZE) || st.size > limit)
        return errorf(e, "%s: %s: entry size unknown or above %zu bytes", ar->path, name, limit);
    zip_file_t *zf = zip_fopen(ar->za, name, 0);
    if (!zf) return errorf(e, "%s: %s: cannot open entry: %s", ar->path, name,
                           zip_strerror(ar->za));
    unsigned char *buf = xmalloc((size_t)st.size + 1);
    zip_int64_t got = 0, r = 1;
    while ((zip_uint64_t)got < st.size && (r = zip_fread(zf, buf + got, st.size - got)) > 0)
        got += r;
    zip_fclose(zf);
    if ((zip_uint64_t)got != st.size) {
        free(buf);
        return errorf(e, "%s: %s: entry is corrupt or truncated", ar->path, name);
    }
    buf[got] = 0;
    *out = buf;
    *len = (size_t)got;
    return 0;
}

/* the folder holding data.pkl: torch names it after the file stem (older: "archive") */
static int find_prefix(Archive *ar, Error *e) {
    zip_int64_t n = zip_get_num_entries(ar->za, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(ar->za, (zip_uint64_t)i, 0);
        const char *slash = name ? strchr(name, '/') : NULL;
        if (slash && strcmp(slash, "/data.pkl") == 0) {
            ar->prefix = strfmt("%.*s", (int)(slash - name), name);
            return 0;
        }
    }
    return errorf(e, "%s: zip archive has no <folder>/data.pkl: not a torch.save file", ar->path);
}

static int check_byteorder(Archive *ar, Error *e) {
    char *name = strfmt("%s/byteorder", ar->prefix);
    void *data = NULL;
    size_t len = 0;
    int rc = read_entry(ar, name, 64, &data, &len, e);
    if (rc == 0 && strcmp(data, "little") != 0)
        rc = errorf(e, "%s: %s: byte order '%s' is not supported (little endian only)",
                    ar->path, name, (char *)data);
    free(data);
    free(name);
    return rc < 0 ? -1 : 0;
}

static void cache_storage(Archive *ar, const char *key, const void *data, size_t bytes) {
    int k = ar->nstorages++;
    ar->keys = xrealloc(ar->keys, (size_t)ar->nstorages * sizeof *ar->keys);
    ar->data = xrealloc(ar->data, (size_t)ar->nstorages * sizeof *ar->data);
    ar->bytes = xrealloc(ar->bytes, (size_t)ar->nstorages * sizeof *ar->bytes);
    ar->keys[k] = xstrdup(key);
    ar->data[k] = data;
    ar->bytes[k] = bytes;
}

static int find_cached(const Archive *ar, const char *key) {
    for (int i = 0; i < ar->nstorages; i++)
        if (strcmp(ar->keys[i], key) == 0) return i;
    return -1;
}

/* the bytes of storage `st`, read once and cached */
static int load_storage(Archive *ar, const Obj *st, const void **data, Error *e) {
    size_t want = (size_t)st->i * dtype_size(st->dtype), len = 0;
    int i = find_cached(ar, st->s);
    if (i >= 0) {
        if (ar->bytes[i] != want)
            return errorf(e, "%s: storage '%s' is used with two different sizes or types",
                          ar->path, st->s);
        *data = ar->data[i];
        return 0;
    }
    if (!ar->za)
        return errorf(e, "%s: storage '%s' is not in the file's list of storage keys", ar->path,
                      st->s);
    char *name = strfmt("%s/data/%s", ar->prefix, st->s);
    void *buf = NULL;
    int rc = read_entry(ar, name, want, &buf, &len, e);
    if (rc == 1)
        rc = errorf(e, "%s: storage '%s' is missing from the archive", ar->path, name);
    else if (rc == 0 && len != want)
        rc = errorf(e, "%s: %s: storage holds %zu bytes, expected %zu (%lld x %s)", ar->path,
                    name, len, want, (long long)st->i, dtype_name(st->dtype));
    free(name);
    if (rc != 0) {
        free(buf);
        return -1;
    }
    cache_storage(ar, st->s, buf, want);
    *data = buf;
    return 0;
}

static void archive_close(Archive *ar) {
    for (int i = 0; i < ar->nstorages; i++) {
        free(ar->keys[i]);
        if (!ar->file) free((void *)ar->data[i]);
    }
    free(ar->keys);
    free(ar->data);
    free(ar->bytes);
    free(ar->prefix);
    if (ar->za) zip_discard(ar->za);
}

/* ---- tensors out of storages ------------------------------------------------------------ */

/* the view must stay inside its storage: offset + sum((size-1) * stride) < numel */
static int check_view(const char *path, const char *name, const Obj *t, size_t *numel,
                      Error *e) {
    uint64_t n = 1, last = (uint64_t)t->offset, step;
    for (int d = 0; d < t->ndim; d++) {
        if (__builtin_mul_overflow(n, (uint64_t)t->shape[d], &n)) n = UINT64_MAX;
        if (t->shape[d] > 0 &&
            (__builtin_mul_overflow((uint64_t)(t->shape[d] - 1), (uint64_t)t->stride[d], &step) ||
             __builtin_add_overflow(last, step, &last)))
            last = UINT64_MAX;
    }
    *numel = (size_t)n;
    if (n > MAX_VIEW_NUMEL)
        return errorf(e, "%s: %s: tensor of %llu elements is above the limit of %llu", path,
                      name, (unsigned long long)n, (unsigned long long)MAX_VIEW_NUMEL);
    if (n > 0 && last >= (uint64_t)t->storage->i)
        return errorf(e, "%s: %s: view (offset %lld) reaches past its storage '%s' of %lld "
                      "elements", path, name, (long long)t->offset, t->storage->s,
                      (long long)t->storage->i);
    /* stride 0 (expand) repeats elements: a 2 KB file could ask for gigabytes. A state_dict
     * never holds more than its storage (HF's position_ids is arange(n).expand(1, n)). */
    if (n > (uint64_t)t->storage->i)
        return errorf(e, "%s: %s: view of %llu elements repeats its storage '%s' of %lld "
                      "elements (a stride 0 broadcast): not supported", path, name,
                      (unsigned long long)n, t->storage->s, (long long)t->storage->i);
    return 0;
}

static int is_row_major(const Obj *t) {
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != expect) return 0;
        expect *= t->shape[d];
    }
    return 1;
}

/* copies a (possibly strided) view into a fresh row-major buffer */
static void *gather_view(const Obj *t, const unsigned char *base, size_t numel) {
    size_t es = dtype_size(t->storage->dtype);
    unsigned char *out = xmalloc(numel * es);
    if (numel == 0) return out;
    if (is_row_major(t)) {
        memcpy(out, base + (size_t)t->offset * es, numel * es);
        return out;
    }
    int64_t idx[TENSOR_MAX_DIMS] = {0};
    for (size_t i = 0; i < numel; i++) {
        int64_t src = t->offset;
        for (int d = 0; d < t->ndim; d++) src += idx[d] * t->stride[d];
        memcpy(out + i * es, base + (size_t)src * es, es);
        for (int d = t->ndim - 1; d >= 0 && ++idx[d] == t->shape[d]; d--) idx[d] = 0;
    }
    return out;
}

static int add_tensor(Archive *ar, TensorSet *ts, const Obj *key, const Obj *val, Error *e) {
    if (key->kind != O_STR || val->kind != O_TENSOR)
        return errorf(e, "%s: state_dict entry %s is not a tensor", ar->path,
                      key->kind == O_STR ? key->s : "(non-string key)");
    if (tensorset_find(ts, key->s))
        return errorf(e, "%s: %s: tensor name appears twice", ar->path, key->s);
    size_t numel;
    const void *base = NULL;
    if (check_view(ar->path, key->s, val, &numel, e) != 0) return -1;
    if (load_storage(ar, val->storage, &base, e) != 0) return -1;
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? 2 * ts->cap : 64;
        ts->t = xrealloc(ts->t, (size_t)ts->cap * sizeof *ts->t);
    }
    NamedTensor *t = &ts->t[ts->n++];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(key->s);
    t->dtype = val->storage->dtype;
    t->ndim = val->ndim;
    memcpy(t->shape, val->shape, sizeof t->shape);
    t->numel = numel;
    t->data = gather_view(val, base, numel);
    t->owns_data = 1;
    return 0;
}

/* the pickle's root dict, entry by entry */
static int add_tensors(Archive *ar, const Obj *root, const char *entry, TensorSet *ts,
                       Error *e) {
    if (root->kind != O_DICT)
        return errorf(e, "%s: %s: the pickle holds no state_dict (dict of tensors)", ar->path,
                      entry);
    for (int i = 0; i + 1 < root->n; i += 2)
        if (add_tensor(ar, ts, root->items[i], root->items[i + 1], e) != 0) return -1;
    return 0;
}

static int read_state_dict(Archive *ar, TensorSet *ts, Error *e) {
    if (find_prefix(ar, e) != 0 || check_byteorder(ar, e) != 0) return -1;
    char *entry = strfmt("%s/data.pkl", ar->prefix);
    void *pkl = NULL;
    size_t len = 0;
    int rc = read_entry(ar, entry, MAX_PICKLE_BYTES, &pkl, &len, e);
    if (rc == 1) rc = errorf(e, "%s: %s: cannot read", ar->path, entry);
    Vm vm = {.path = ar->path, .entry = entry, .p = pkl, .len = len, .e = e};
    const Obj *root = rc == 0 ? run_pickle(&vm) : NULL;
    rc = root ? add_tensors(ar, root, entry, ts, e) : -1;
    vm_free(&vm);
    free(pkl);
    free(entry);
    return rc;
}

/* the archive from src (the file, read as needed, or a buffer), which it takes over */
static int read_zip(const char *path, zip_source_t *src, zip_error_t *zerr, TensorSet *ts,
                    Error *e) {
    Archive ar = {.path = path};
    ar.za = src ? zip_open_from_source(src, ZIP_RDONLY, zerr) : NULL;
    if (!ar.za) {
        zip_source_free(src);
        return errorf(e, "%s: starts like a zip archive but libzip cannot open it (error %d): "
                      "corrupt or truncated", path, zip_error_code_zip(zerr));
    }
    int rc = read_state_dict(&ar, ts, e);
    archive_close(&ar);
    return rc;
}

/* ---- the legacy format ------------------------------------------------------------------ */

/* torch's magic number 0x1950a86a20f9469cfc6c as LONG1 stores it (little endian) */
static const unsigned char LEGACY_MAGIC[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                               0x20, 0x6a, 0xa8, 0x50, 0x19};
#define LEGACY_PROTOCOL 1001

/* runs the pickle that starts at *pos and moves *pos past it; the result stays owned by vm */
static const Obj *next_pickle(Vm *vm, const char *path, const char *what,
                              const unsigned char *buf, size_t len, size_t *pos, Error *e) {
    *vm = (Vm){.path = path, .entry = what, .p = buf, .len = len, .pos = *pos, .e = e,
               .legacy = 1};
    const Obj *o = run_pickle(vm);
    *pos = vm->pos;
    return o;
}

static const Obj *dict_get(const Obj *d, const char *key) {
    for (int i = 0; i + 1 < d->n; i += 2)
        if (d->items[i]->kind == O_STR && strcmp(d->items[i]->s, key) == 0)
            return d->items[i + 1];
    return NULL;
}

/* the magic number, the protocol version and sys_info (little endian only) */
static int check_legacy_header(const char *path, const unsigned char *buf, size_t len,
                               size_t *pos, Error *e) {
    Vm vm;
    const Obj *o = next_pickle(&vm, path, "magic number", buf, len, pos, e);
    int got = o != NULL, magic = got && o->kind == O_BIGINT && o->n == sizeof LEGACY_MAGIC &&
                                 memcmp(o->s, LEGACY_MAGIC, sizeof LEGACY_MAGIC) == 0;
    vm_free(&vm);
    if (!got) return -1;
    if (!magic)
        return errorf(e, "%s: magic number: not torch's 0x1950a86a20f9469cfc6c, so not a "
                      "(legacy) torch.save file", path);
    o = next_pickle(&vm, path, "protocol version", buf, len, pos, e);
    got = o != NULL;
    int version_ok = got && o->kind == O_INT && o->i == LEGACY_PROTOCOL;
    long long version = got && o->kind == O_INT ? (long long)o->i : -1;
    vm_free(&vm);
    if (!got) return -1;
    if (!version_ok)
        return errorf(e, "%s: protocol version: %lld, expected %d", path, version,
                      LEGACY_PROTOCOL);
    o = next_pickle(&vm, path, "sys_info", buf, len, pos, e);
    got = o != NULL;
    const Obj *le = got && o->kind == O_DICT ? dict_get(o, "little_endian") : NULL;
    int little = le && le->kind == O_BOOL ? (int)le->i : -1;
    vm_free(&vm);
    if (!got) return -1;
    if (little < 0) return errorf(e, "%s: sys_info: no little_endian flag", path);
    if (!little)
        return errorf(e, "%s: sys_info: written on a big-endian machine: not supported "
                      "(little endian only)", path);
    return 0;
}

/* a storage some tensor of the state_dict uses under `key`, or NULL */
static const Obj *storage_used(const Obj *root, const char *key) {
    for (int i = 1; i < root->n; i += 2) {
        const Obj *t = root->items[i];
        if (t->kind == O_TENSOR && strcmp(t->storage->s, key) == 0) return t->storage;
    }
    return NULL;
}

/* one storage at *pos: an 8-byte little-endian element count, then the raw bytes */
static int read_legacy_storage(Archive *ar, const Obj *st, size_t len, size_t *pos, Error *e) {
    size_t es = dtype_size(st->dtype), at = *pos;
    if (len - at < 8)
        return errorf(e, "%s: storage '%s': byte %zu: the file ends before its element count "
                      "(truncated)", ar->path, st->s, at);
    uint64_t count = 0;
    for (int b = 7; b >= 0; b--) count = count << 8 | ar->file[at + b];
    if (count != (uint64_t)st->i)
        return errorf(e, "%s: storage '%s': byte %zu: holds %llu elements, the state_dict says "
                      "%lld", ar->path, st->s, at, (unsigned long long)count, (long long)st->i);
    if (count > (len - at - 8) / es)
        return errorf(e, "%s: storage '%s': byte %zu: %llu x %s do not fit in the %zu bytes "
                      "left (truncated)", ar->path, st->s, at + 8, (unsigned long long)count,
                      dtype_name(st->dtype), len - at - 8);
    cache_storage(ar, st->s, ar->file + at + 8, (size_t)count * es);
    *pos = at + 8 + (size_t)count * es;
    return 0;
}

/* the pickled list of storage keys, then the storages in that order */
static int read_legacy_storages(Archive *ar, const Obj *root, size_t len, size_t *pos,
                                Error *e) {
    Vm vm;
    const Obj *keys = next_pickle(&vm, ar->path, "storage keys", ar->file, len, pos, e);
    int rc = keys ? 0 : -1;
    if (rc == 0 && keys->kind != O_LIST)
        rc = errorf(e, "%s: storage keys: not a list", ar->path);
    for (int i = 0; rc == 0 && i < keys->n; i++) {
        const Obj *k = keys->items[i];
        const Obj *st = k->kind == O_STR ? storage_used(root, k->s) : NULL;
        if (k->kind != O_STR)
            rc = errorf(e, "%s: storage keys: item %d is not a string", ar->path, i);
        else if (find_cached(ar, k->s) >= 0)
            rc = errorf(e, "%s: storage keys: '%s' is listed twice", ar->path, k->s);
        else if (!st)
            rc = errorf(e, "%s: storage keys: '%s' is used by no tensor", ar->path, k->s);
        else
            rc = read_legacy_storage(ar, st, len, pos, e);
    }
    vm_free(&vm);
    return rc;
}

static int read_legacy(const char *path, const unsigned char *file, size_t len, TensorSet *ts,
                       Error *e) {
    Archive ar = {.path = path, .file = file};
    size_t pos = 0;
    Vm vm = {0};
    const Obj *root = NULL;
    int rc = check_legacy_header(path, ar.file, len, &pos, e);
    if (rc == 0) root = next_pickle(&vm, path, "state_dict", ar.file, len, &pos, e);
    if (rc == 0 && !root) rc = -1;
    if (rc == 0 && root->kind != O_DICT)
        rc = errorf(e, "%s: state_dict: the pickle holds no state_dict (dict of tensors)", path);
    if (rc == 0) rc = read_legacy_storages(&ar, root, len, &pos, e);
    if (rc == 0) rc = add_tensors(&ar, root, "state_dict", ts, e);
    if (rc == 0 && pos != len)
        rc = errorf(e, "%s: byte %zu: %zu unexpected bytes after the last storage", path, pos,
                    len - pos);
    vm_free(&vm);
    archive_close(&ar);
    return rc;
}

/* 'z' (zip), 'p' (pickle: legacy) or -1, from the first bytes of the file */
static int sniff(const char *path, const unsigned char *head, size_t got, Error *e) {
    if (got >= 4 && memcmp(head, "PK\x03\x04", 4) == 0) return 'z';
    if (got >= 1 && head[0] == 0x80) return 'p';
    return errorf(e, "%s: not a torch.save file: neither a zip archive (torch >= 1.6) nor a "
                  "pickle (legacy format)", path);
}

/* the set read by rc = read(...), or nothing on failure */
static int finish(TensorSet *ts, int rc, TensorSet *out) {
    if (rc != 0) {
        tensorset_free(ts);
        return -1;
    }
    *out = *ts;
    return 0;
}

int torchbin_read(const char *path, TensorSet *out, Error *e) {
    memset(out, 0, sizeof *out);
    unsigned char head[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return errorf(e, "%s: cannot open", path);
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    int kind = sniff(path, head, got, e);
    if (kind < 0) return -1;
    if (kind == 'p') { /* the legacy format is read whole; a zip's entries only as needed */
        char *file;
        size_t len;
        if (read_file(path, &file, &len, e) != 0) return -1;
        int rc = torchbin_read_mem(path, file, len, out, e);
        free(file);
        return rc;
    }
    zip_error_t zerr;
    zip_error_init(&zerr);
    TensorSet ts = {.source = xstrdup(path)};
    int rc = read_zip(path, zip_source_file_create(path, 0, -1, &zerr), &zerr, &ts, e);
    zip_error_fini(&zerr);
    return finish(&ts, rc, out);
}

int torchbin_read_mem(const char *name, const void *data, size_t len, TensorSet *out,
                      Error *e) {
    memset(out, 0, sizeof *out);
    int kind = sniff(name, data, len, e);
    if (kind < 0) return -1;
    TensorSet ts = {.source = xstrdup(name)};
    if (kind == 'p') return finish(&ts, read_legacy(name, data, len, &ts, e), out);
    zip_error_t zerr;
    zip_error_init(&zerr);
    int rc = read_zip(name, zip_source_buffer_create(data, len, 0, &zerr), &zerr, &ts, e);
    zip_error_fini(&zerr);
    return finish(&ts, rc, out);
}
