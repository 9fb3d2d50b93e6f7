/* libFuzzer target: random bytes as a pytorch_model.bin into torchbin_read_mem, the code path
 * torchbin_read takes for both of torch.save's formats (zip through a libzip buffer source,
 * legacy pickles directly). Either an error line naming the file, or tensors that convert.
 *
 * An input that starts like neither format ("PK\3\4" or the pickle PROTO 0x80) is parts of a
 * zip instead: [u16 little-endian length][bytes] for archive/data.pkl, then the same for
 * storages archive/data/0, /1, ... (at most 16); the harness zips them (stored, with
 * byteorder "little"). Mutating a whole zip mostly breaks its CRCs, so without this the zip
 * side of the reader would only ever see the fixtures' pickles. */
#include <zip.h>

#include "fuzz/fuzz_common.h"

#define NAME "fuzz.bin"
#define MAX_STORAGES 16

static void add_entry(zip_t *za, const char *name, const void *data, size_t len) {
    zip_source_t *s = zip_source_buffer(za, data, len, 0);
    zip_int64_t i = s ? zip_file_add(za, name, s, ZIP_FL_OVERWRITE) : -1;
    if (i < 0 || zip_set_file_compression(za, (zip_uint64_t)i, ZIP_CM_STORE, 0) != 0)
        fprintf(stderr, "zip: %s\n", zip_strerror(za)), abort();
}

/* the next length-prefixed part of the input, or NULL at its end */
static const uint8_t *next_part(const uint8_t **p, const uint8_t *end, size_t *len) {
    if (end - *p < 2) return NULL;
    size_t n = (size_t)(*p)[0] | (size_t)(*p)[1] << 8;
    const uint8_t *part = *p + 2;
    *len = n < (size_t)(end - part) ? n : (size_t)(end - part);
    *p = part + *len;
    return part;
}

/* the zip the parts make, as a heap buffer */
static void *zip_parts(const uint8_t *data, size_t size, size_t *len) {
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &err);
    zip_t *za = src ? zip_open_from_source(src, ZIP_TRUNCATE, &err) : NULL;
    if (!za) fprintf(stderr, "zip: %s\n", zip_error_strerror(&err)), abort();
    zip_source_keep(src); /* read it after zip_close */
    const uint8_t *p = data, *end = data + size, *part;
    size_t n = 0;
    part = next_part(&p, end, &n);
    add_entry(za, "archive/data.pkl", part ? part : p, n);
    add_entry(za, "archive/byteorder", "little", 6);
    for (int k = 0; k < MAX_STORAGES && (part = next_part(&p, end, &n)); k++) {
        char name[32];
        snprintf(name, sizeof name, "archive/data/%d", k);
        add_entry(za, name, part, n);
    }
    zip_stat_t st;
    if (zip_close(za) != 0 || zip_source_open(src) != 0 || zip_source_stat(src, &st) != 0)
        fprintf(stderr, "zip: cannot finish\n"), abort();
    void *buf = xmalloc(st.size + 1);
    if (zip_source_read(src, buf, st.size) != (zip_int64_t)st.size) abort();
    zip_source_close(src);
    zip_source_free(src);
    *len = st.size;
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int whole_file = size > 0 && (data[0] == 0x80 || (size >= 4 && !memcmp(data, "PK\3\4", 4)));
    size_t len = size;
    void *zip = whole_file ? NULL : zip_parts(data, size, &len);
    TensorSet ts;
    Error e;
    if (torchbin_read_mem(NAME, zip ? zip : data, len, &ts, &e)) {
        FUZZ_ASSERT(strncmp(e.msg, NAME ": ", strlen(NAME) + 2) == 0);
    } else {
        fuzz_check_tensors(&ts);
        tensorset_free(&ts);
    }
    free(zip);
    return 0;
}
