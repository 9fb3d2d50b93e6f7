/* libFuzzer target: random bytes as a model.safetensors (header length, JSON header, data)
 * into safetensors_read_mem, the code path safetensors_read takes after reading the file.
 * Either an error line naming the file, or tensors that lie inside the data and convert. */
#include "fuzz/fuzz_common.h"

#define NAME "fuzz.safetensors"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    void *buf = xmalloc(size + 1); /* the reader takes the buffer over */
    memcpy(buf, data, size);
    TensorSet ts;
    Error e;
    if (safetensors_read_mem(NAME, buf, size, &ts, &e)) {
        FUZZ_ASSERT(strncmp(e.msg, NAME ": ", strlen(NAME) + 2) == 0);
        return 0;
    }
    const unsigned char *blob = ts.blob;
    for (int i = 0; i < ts.n; i++) {
        const unsigned char *p = ts.t[i].data;
        size_t bytes = ts.t[i].numel * dtype_size(ts.t[i].dtype);
        FUZZ_ASSERT(p >= blob + 8 && p <= blob + size && bytes <= (size_t)(blob + size - p));
    }
    fuzz_check_tensors(&ts);
    tensorset_free(&ts);
    return 0;
}
