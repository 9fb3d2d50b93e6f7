/* Checkpoint I/O: safetensors round trips, files written by HF safetensors and torch.save in
 * its zip and legacy formats (tests/fixtures/make_checkpoint_fixtures.py), a tiny BERT loaded
 * from a legacy file, half/bfloat16 rounding against torch, and one test per kind of bad input,
 * each checking that the error names the file and the problem. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/formats/checkpoint.h"
#include "host/model/model.h"
#include "test.h"

#define FIX "tests/fixtures/ckpt/"

/* the fixture script's formula(n, k)[i] */
static float formula(int i, int k) { return (float)((i * 37 + k) % 101 - 50) / 64.0f; }

static int same_shape(const NamedTensor *t, int ndim, const int64_t *shape) {
    if (t->ndim != ndim) return 0;
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] != shape[d]) return 0;
    return 1;
}

/* the tensor as floats (caller frees), or NULL when it is absent */
static float *floats_of(const TensorSet *ts, const char *name) {
    const NamedTensor *t = tensorset_find(ts, name);
    CHECK(t != NULL, "%s: no tensor %s", ts->source, name);
    if (!t) return NULL;
    float *v = xmalloc((t->numel ? t->numel : 1) * sizeof *v);
    Error e;
    CHECK(tensor_to_f32(t, v, &e) == 0, "%s", e.msg);
    return v;
}

/* tensor `name` equals formula(i + start, k) for every element */
static void check_formula(const TensorSet *ts, const char *name, int start, int k) {
    float *v = floats_of(ts, name);
    if (!v) return;
    const NamedTensor *t = tensorset_find(ts, name);
    int bad = 0;
    for (size_t i = 0; i < t->numel; i++) bad += v[i] != formula((int)i + start, k);
    CHECK(bad == 0 && t->numel > 0, "%s: %d of %zu values differ from the formula", name, bad,
          t->numel);
    free(v);
}

/* ---- conversions ------------------------------------------------------------------------ */

static void test_known_rounding(void) {
    /* ties go to even; subnormals, overflow and NaN as IEEE says */
    CHECK(f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80, "bf16 tie down to even");
    CHECK(f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82, "bf16 tie up to even");
    CHECK(f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81, "bf16 above tie rounds up");
    CHECK(f32_to_f16(1.0f + 0x1p-11f) == 0x3c00, "f16 tie down to even");
    CHECK(f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02, "f16 tie up to even");
    CHECK(f32_to_f16(0x1p-24f) == 0x0001, "smallest f16 subnormal");
    CHECK(f32_to_f16(0x1p-25f) == 0x0000, "half the smallest subnormal ties to 0");
    CHECK(f32_to_f16(3 * 0x1p-26f) == 0x0001, "0.75 ulp rounds up");
    CHECK(f32_to_f16(65504.0f) == 0x7bff && f32_to_f16(65520.0f) == 0x7c00, "f16 overflow");
    CHECK(f32_to_f16(-65519.0f) == 0xfbff, "just below the overflow threshold");
    CHECK(f16_to_f32(0x0001) == 0x1p-24f && f16_to_f32(0x8200) == -0x1p-15f, "f16 subnormal");
    CHECK(isnan(f16_to_f32(f32_to_f16(NAN))) && isnan(bf16_to_f32(f32_to_bf16(NAN))), "NaN");
    CHECK(bf16_to_f32(0xc0a0) == -5.0f, "bf16 widening");
}

/* torch's .half() / .bfloat16() of random and edge values, bit for bit */
static void test_rounding_matches_torch(const TensorSet *ts) {
    const NamedTensor *src = tensorset_find(ts, "round.src");
    const NamedTensor *h = tensorset_find(ts, "round.f16"), *b = tensorset_find(ts, "round.bf16");
    CHECK(src && h && b && src->numel == h->numel && src->numel == b->numel, "round.* present");
    if (!src || !h || !b) return;
    int bad_h = 0, bad_b = 0, bad_back = 0;
    for (size_t i = 0; i < src->numel; i++) {
        float x;
        uint16_t th, tb;
        memcpy(&x, (char *)src->data + 4 * i, 4);
        memcpy(&th, (char *)h->data + 2 * i, 2);
        memcpy(&tb, (char *)b->data + 2 * i, 2);
        bad_h += f32_to_f16(x) != th;
        bad_b += f32_to_bf16(x) != tb;
        bad_back += f32_to_f16(f16_to_f32(th)) != th || f32_to_bf16(bf16_to_f32(tb)) != tb;
    }
    CHECK(bad_h == 0 && bad_b == 0 && bad_back == 0,
          "rounding differs from torch: f16 %d, bf16 %d, widen-narrow %d of %zu", bad_h, bad_b,
          bad_back, src->numel);
}

/* ---- safetensors ------------------------------------------------------------------------ */

static void test_roundtrip(const char *dir) {
    uint64_t rng = 42;
    float x[24];
    fill_uniform(x, 24, -3, 3, &rng);
    x[0] = 1.5f, x[1] = -0.25f, x[2] = 1.0f + 0x1p-8f; /* exact in all three; a bf16 tie */
    uint16_t h[24], b[24];
    for (int i = 0; i < 24; i++) h[i] = f32_to_f16(x[i]), b[i] = f32_to_bf16(x[i]);
    int64_t ids[3] = {-7, 1LL << 40, 12345};
    unsigned char flags[3] = {1, 0, 1};
    TensorSet ts = {0};
    tensorset_add_f32(&ts, "w.f32", x, 3, (int64_t[]){2, 3, 4});
    tensorset_add(&ts, "w.f16", DT_F16, 2, (int64_t[]){4, 6}, h);
    tensorset_add(&ts, "w.bf16", DT_BF16, 1, (int64_t[]){24}, b);
    tensorset_add(&ts, "ids", DT_I64, 1, (int64_t[]){3}, ids);
    tensorset_add(&ts, "flags", DT_BOOL, 1, (int64_t[]){3}, flags);
    tensorset_add(&ts, "scalar", DT_F32, 0, NULL, x + 5);
    char *path = strfmt("%s/rt.safetensors", dir);
    Error e;
    CHECK(safetensors_write(path, &ts, &e) == 0, "%s", e.msg);
    TensorSet back;
    CHECK(safetensors_read(path, &back, &e) == 0, "%s", e.msg);
    CHECK(back.n == ts.n, "%d tensors back, wrote %d", back.n, ts.n);
    for (int i = 0; i < ts.n && back.n == ts.n; i++) {
        const NamedTensor *a = &ts.t[i], *r = tensorset_find(&back, a->name);
        CHECK(r && r->dtype == a->dtype && same_shape(r, a->ndim, a->shape) &&
              r->numel == a->numel &&
              memcmp(r->data, a->data, a->numel * dtype_size(a->dtype)) == 0,
              "%s differs after the round trip", a->name);
    }
    float got[24];
    CHECK(tensor_to_f32(tensorset_find(&back, "w.bf16"), got, &e) == 0, "%s", e.msg);
    CHECK(got[0] == 1.5f && got[1] == -0.25f && got[2] == 1.0f, "bf16 values 1.5 -0.25 1: %g %g %g",
          got[0], got[1], got[2]);
    CHECK(rel_l2(got, x, 24) < 4e-3 && rel_l2(got, x, 24) > 0, "bf16 rounding error %g",
          rel_l2(got, x, 24));
    CHECK(tensor_to_f32(tensorset_find(&back, "w.f16"), got, &e) == 0, "%s", e.msg);
    CHECK(rel_l2(got, x, 24) < 5e-4 && rel_l2(got, x, 24) > 0, "f16 rounding error %g",
          rel_l2(got, x, 24));
    int iv[3];
    CHECK(tensor_to_i32(tensorset_find(&back, "ids"), iv, &e) != 0 && strstr(e.msg, "ids") &&
          strstr(e.msg, "does not fit"), "int64 2^40 must not fit in int: %s", e.msg);
    CHECK(tensor_to_i32(tensorset_find(&back, "w.f32"), iv, &e) != 0, "float tensor to int");
    CHECK(tensor_to_i32(tensorset_find(&back, "flags"), iv, &e) == 0 && iv[0] == 1 && iv[1] == 0,
          "bool to int");
    char *bad = strfmt("%s/no/such/dir/x.safetensors", dir);
    CHECK(safetensors_write(bad, &ts, &e) != 0 && strstr(e.msg, bad), "write failure: %s", e.msg);
    unlink(path);
    free(bad);
    free(path);
    tensorset_free(&back);
    tensorset_free(&ts);
}

static void test_hf_safetensors(void) {
    TensorSet ts;
    Error e;
    CHECK(safetensors_read(FIX "hf_tensors.safetensors", &ts, &e) == 0, "%s", e.msg);
    if (ts.n == 0) return;
    CHECK(ts.n == 12, "%d tensors", ts.n);
    CHECK(same_shape(tensorset_find(&ts, "f32"), 2, (int64_t[]){3, 5}), "f32 shape");
    CHECK(tensorset_find(&ts, "f16")->dtype == DT_F16 &&
          tensorset_find(&ts, "bf16")->dtype == DT_BF16, "dtypes");
    check_formula(&ts, "f32", 0, 0);
    check_formula(&ts, "f16", 0, 5);
    check_formula(&ts, "bf16", 0, 9);
    const NamedTensor *i64 = tensorset_find(&ts, "i64");
    int64_t want[6] = {0, -1, 1LL << 40, -(1LL << 40), 7, 2147483647}, got[6];
    memcpy(got, i64->data, sizeof got);
    CHECK(i64->dtype == DT_I64 && memcmp(got, want, sizeof got) == 0, "i64 values");
    int iv[3];
    CHECK(tensor_to_i32(tensorset_find(&ts, "i32"), iv, &e) == 0 && iv[0] == -2147483647 - 1 &&
          iv[1] == 5 && iv[2] == 2147483647, "i32 values");
    CHECK(tensor_to_i32(tensorset_find(&ts, "u8"), iv, &e) == 0 && iv[1] == 200 && iv[2] == 255,
          "u8 values");
    CHECK(tensor_to_i32(tensorset_find(&ts, "mask"), iv, &e) == 0 && iv[0] == 1 && iv[1] == 0 &&
          iv[2] == 1, "bool values");
    float *s = floats_of(&ts, "scalar");
    CHECK(s && tensorset_find(&ts, "scalar")->ndim == 0 && s[0] == 2.5f, "0-dim scalar");
    free(s);
    const NamedTensor *empty = tensorset_find(&ts, "empty");
    CHECK(empty->numel == 0 && same_shape(empty, 2, (int64_t[]){0, 4}), "empty tensor");
    test_rounding_matches_torch(&ts);
    tensorset_free(&ts);
}

/* ---- torch.save ------------------------------------------------------------------------- */

/* the state_dict of the fixture script's state_dict(), saved by torch.save as `file` */
static void check_torch_state(const char *file) {
    TensorSet ts, want;
    Error e;
    CHECK(checkpoint_read(file, &ts, &e) == 0, "%s", e.msg);
    CHECK(checkpoint_read(FIX "hf_state_expected.safetensors", &want, &e) == 0, "%s", e.msg);
    CHECK(ts.n == want.n && ts.n == 46, "%d tensors, expected %d", ts.n, want.n);
    for (int i = 0; i < want.n; i++) {
        const NamedTensor *w = &want.t[i], *t = tensorset_find(&ts, w->name);
        CHECK(t && t->dtype == w->dtype && same_shape(t, w->ndim, w->shape) &&
              memcmp(t->data, w->data, w->numel * dtype_size(w->dtype)) == 0,
              "%s differs from the safetensors copy", w->name);
    }
    check_formula(&ts, "0.weight", 0, 0);
    check_formula(&ts, "view.offset", 2, 0);
    check_formula(&ts, "many.29", 29, 4);
    check_formula(&ts, "view.odd_strides", 5, 4);
    check_formula(&ts, "view.huge_stride", 6, 4);
    CHECK(same_shape(tensorset_find(&ts, "view.huge_stride"), 2, (int64_t[]){3, 1}), "shape");
    const NamedTensor *b300 = tensorset_find(&ts, "bool300");
    int flags[300], bad_flags = 0;
    CHECK(b300 && b300->numel == 300 && tensor_to_i32(b300, flags, &e) == 0, "bool300");
    for (int i = 0; b300 && i < 300; i++) bad_flags += flags[i] != (i % 3 == 1);
    CHECK(bad_flags == 0, "bool300: %d wrong", bad_flags);
    check_formula(&ts, "half", 0, 6);
    check_formula(&ts, "bf16", 0, 7);
    check_formula(&ts, "param", 0, 8);
    float *tr = floats_of(&ts, "view.transposed"), *col = floats_of(&ts, "view.column");
    int bad = 0;
    for (int i = 0; tr && col && i < 4; i++)
        for (int j = 0; j < 3; j++) bad += tr[i * 3 + j] != formula(j * 4 + i, 0);
    for (int j = 0; tr && col && j < 3; j++) bad += col[j] != formula(j * 4 + 1, 0);
    CHECK(tr && col && bad == 0, "strided views: %d wrong values", bad);
    free(tr);
    free(col);
    const NamedTensor *ids = tensorset_find(&ts, "ids");
    int64_t v[4];
    memcpy(v, ids->data, sizeof v);
    CHECK(ids->dtype == DT_I64 && v[0] == 3 && v[1] == -4 && v[2] == 1LL << 40 && v[3] == 0,
          "int64 values");
    tensorset_free(&ts);
    tensorset_free(&want);
}

static void test_torch_bin(void) {
    check_torch_state(FIX "hf_state.bin");
    check_torch_state(FIX "legacy_state.bin");
    TensorSet ts;
    Error e;
    CHECK(torchbin_read(FIX "crafted_ok.bin", &ts, &e) == 0, "%s", e.msg);
    check_formula(&ts, "w", 0, 0);
    tensorset_free(&ts);
    /* hand-made legacy file: v views w's storage from element 1 */
    CHECK(torchbin_read(FIX "crafted_legacy_ok.bin", &ts, &e) == 0, "%s", e.msg);
    CHECK(ts.n == 2, "crafted_legacy_ok: %d tensors", ts.n);
    check_formula(&ts, "w", 0, 0);
    check_formula(&ts, "v", 1, 0);
    tensorset_free(&ts);
    /* w = storage[0] repeated 4 times (stride 0), as torch's expand within its storage */
    CHECK(torchbin_read(FIX "crafted_broadcast_ok.bin", &ts, &e) == 0, "%s", e.msg);
    const NamedTensor *w = tensorset_find(&ts, "w");
    float v[4] = {0}, first = formula(0, 0);
    CHECK(w && w->numel == 4 && tensor_to_f32(w, v, &e) == 0, "crafted_broadcast_ok: w");
    CHECK(v[0] == first && v[1] == first && v[2] == first && v[3] == first,
          "crafted_broadcast_ok: %g %g %g %g, want %g", v[0], v[1], v[2], v[3], first);
    tensorset_free(&ts);
}

/* the tiny BERT's weights from a legacy file load into the same parameters as from its zip
 * file, and those are the file's values (not a random init) */
static void test_legacy_model_load(void) {
    const char *dir = "tests/fixtures/model/bert_seqcls";
    char *cfg_path = strfmt("%s/config.json", dir), *zip_path = strfmt("%s/pytorch_model.bin", dir);
    ModelConfig cfg;
    Model a, b;
    Error e;
    CHECK(model_config_read(cfg_path, &cfg, &e) == 0, "%s", e.msg);
    CHECK(model_create(&a, &cfg, HEAD_SEQ_CLS, 3, backend_cpu(), 1, 8, &e) == 0, "%s", e.msg);
    CHECK(model_create(&b, &cfg, HEAD_SEQ_CLS, 3, backend_cpu(), 1, 8, &e) == 0, "%s", e.msg);
    CHECK(model_load(&a, zip_path, 1, &e) == 0, "%s", e.msg);
    CHECK(model_load(&b, FIX "bert_seqcls_legacy.bin", 2, &e) == 0, "%s", e.msg);
    float *pa = xmalloc(a.n_floats * sizeof *pa), *pb = xmalloc(b.n_floats * sizeof *pb);
    model_get_params(&a, pa);
    model_get_params(&b, pb);
    CHECK(a.n_floats == b.n_floats && memcmp(pa, pb, a.n_floats * sizeof *pa) == 0,
          "legacy and zip weights load into different parameters");
    TensorSet ts;
    CHECK(checkpoint_read(zip_path, &ts, &e) == 0, "%s", e.msg);
    const char *name = "bert.encoder.layer.1.attention.self.query.weight";
    const Param *p = model_param(&b, name);
    float *want = floats_of(&ts, name);
    CHECK(p && want && p->numel == tensorset_find(&ts, name)->numel &&
          memcmp(pb + p->offset, want, p->numel * sizeof *want) == 0 && want[0] != want[1],
          "%s: loaded values differ from the file", name);
    free(want);
    tensorset_free(&ts);
    free(pa);
    free(pb);
    model_free(&a);
    model_free(&b);
    free(cfg_path);
    free(zip_path);
}

/* ---- bad input -------------------------------------------------------------------------- */

static void expect_failure(const char *file, const char *what1, const char *what2) {
    char *path = strfmt(FIX "%s", file);
    TensorSet ts = {.n = -1};
    Error e = {{0}};
    int rc = checkpoint_read(path, &ts, &e);
    CHECK(rc != 0 && ts.n == 0 && ts.t == NULL, "%s: read must fail", file);
    CHECK(strstr(e.msg, path) && strstr(e.msg, what1) && (!what2 || strstr(e.msg, what2)),
          "%s: message should name the file, '%s' and '%s': %s", file, what1,
          what2 ? what2 : "", e.msg);
    free(path);
}

static void test_bad_input(void) {
    expect_failure("bad_truncated_data.safetensors", "b: data_offsets [16, 32]", "truncated");
    expect_failure("bad_truncated_header.safetensors", "header length", "truncated");
    expect_failure("bad_outside.safetensors", "b: data_offsets [4096, 4112]", "past the end");
    expect_failure("bad_overlap.safetensors", "b: data_offsets [8, 24] overlap", "a [0, 16]");
    expect_failure("bad_header_len.safetensors", "header length 1099511627776", "absurd");
    expect_failure("bad_dtype.safetensors", "a: unknown or unsupported dtype", "C64");
    expect_failure("bad_shape.safetensors", "a: shape with 6 elements of F32 needs 24 bytes",
                   "[0, 16] hold 16");
    expect_failure("bad_end_before_begin.safetensors", "a: data_offsets [16, 8]", "end before");
    expect_failure("bad_json.safetensors", "header is not valid JSON", NULL);
    expect_failure("bad_duplicate.safetensors", "a: tensor name appears twice", NULL);
    expect_failure("no_such_file.safetensors", "cannot open", NULL);

    expect_failure("bad_opcode.bin", "archive/data.pkl: byte 2", "unexpected pickle opcode 0x47");
    expect_failure("bad_global.bin", "archive/data.pkl: byte 2",
                   "global 'os.system' is not allowed");
    expect_failure("bad_not_zip.bin", "not a torch.save file", "neither a zip archive");
    expect_failure("bad_missing_storage.bin", "storage 'archive/data/7' is missing", NULL);
    expect_failure("bad_storage_overflow.bin", "storage '0' of 4611686018427387905 elements of "
                   "F32", "its size in bytes overflows");
    expect_failure("bad_storage_size.bin", "archive/data/0: storage holds 16 bytes",
                   "expected 20");
    expect_failure("bad_storage_reuse.bin", "storage '0' is used with two different sizes",
                   NULL);
    expect_failure("bad_view.bin", "w: view (offset 2) reaches past its storage", NULL);
    expect_failure("bad_broadcast.bin", "w: view of 200 elements repeats its storage '0' of 4",
                   "stride 0");
    expect_failure("bad_not_dict.bin", "no state_dict", NULL);
    expect_failure("bad_byteorder.bin", "byte order 'big'", NULL);

    expect_failure("bad_legacy_magic.bin", "magic number: not torch's", NULL);
    expect_failure("bad_legacy_protocol.bin", "protocol version: 1000", "expected 1001");
    expect_failure("bad_legacy_big_endian.bin", "sys_info: written on a big-endian", NULL);
    expect_failure("bad_legacy_missing_key.bin", "storage '0' is not in the file's list", NULL);
    expect_failure("bad_legacy_duplicate_key.bin", "storage keys: '0' is listed twice", NULL);
    expect_failure("bad_legacy_unused_key.bin", "storage keys: '9' is used by no tensor", NULL);
    expect_failure("bad_legacy_count.bin", "storage '0': byte",
                   "holds 5 elements, the state_dict says 4");
    expect_failure("bad_legacy_reuse.bin", "storage '0' is used with two different sizes", NULL);
    expect_failure("bad_legacy_truncated.bin", "storage '0': byte", "4 x F32 do not fit");
    expect_failure("bad_legacy_truncated_count.bin", "storage '0': byte",
                   "ends before its element count");
    expect_failure("bad_legacy_truncated_pickle.bin", "state_dict: byte", "truncated");
    expect_failure("bad_legacy_trailing.bin", "3 unexpected bytes after the last storage", NULL);
}

int main(void) {
    char dir[] = "/tmp/koe_ckpt_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp %s", dir);
    if (test_failures) return test_exit("test_checkpoint");
    test_known_rounding();
    test_roundtrip(dir);
    test_hf_safetensors();
    test_torch_bin();
    test_legacy_model_load();
    test_bad_input();
    rmdir(dir);
    return test_exit("test_checkpoint");
}
