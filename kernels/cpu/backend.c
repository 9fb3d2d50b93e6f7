/* The CPU reference backend: host memory, fp32 activations, ops from the files beside this
 * one. Memory "transfers" are plain copies. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "host/base/util.h"
#include "kernels/cpu/cpu_ops.h"

static void *cpu_alloc(size_t bytes) { return xcalloc(1, bytes); }
static void cpu_free(void *p) { free(p); }
static void cpu_zero(void *p, size_t bytes) { memset(p, 0, bytes); }
/* memmove, not memcpy: a caller may convert a buffer onto itself (Act is float here) */
static void cpu_copy(void *dst, const void *src, size_t bytes) {
    if (dst != src) memmove(dst, src, bytes);
}
static void cpu_floats(Act *dst, const float *src, size_t n) {
    cpu_copy(dst, src, n * sizeof(float));
}
static void cpu_floats_out(float *dst, const Act *src, size_t n) {
    cpu_copy(dst, src, n * sizeof(float));
}
static void cpu_synchronize(void) {}
static size_t cpu_peak_bytes(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (size_t)u.ru_maxrss * 1024; /* Linux reports kilobytes */
}
static size_t cpu_memory_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    size_t bytes = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
    const int limits[] = {RLIMIT_AS, RLIMIT_DATA};
    for (int i = 0; i < 2; i++) {
        struct rlimit lim;
        if (getrlimit(limits[i], &lim) == 0 && lim.rlim_cur != RLIM_INFINITY &&
            (bytes == 0 || lim.rlim_cur < bytes))
            bytes = (size_t)lim.rlim_cur;
    }
    return bytes;
}
static void cpu_range_push(const char *name) { (void)name; }
static void cpu_range_pop(void) {}

static const Backend cpu_backend = {
    .name = "cpu",
    .act_size = sizeof(float),
    .alloc = cpu_alloc,
    .free = cpu_free,
    .zero = cpu_zero,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .acts_from_float = cpu_floats,
    .acts_to_float = cpu_floats_out,
    .float_to_acts = cpu_floats,
    .synchronize = cpu_synchronize,
    .peak_bytes = cpu_peak_bytes,
    .memory_bytes = cpu_memory_bytes,
    .range_push = cpu_range_push,
    .range_pop = cpu_range_pop,
    .embeddings_fwd = cpu_embeddings_fwd,
    .embeddings_bwd = cpu_embeddings_bwd,
    .matmul_fwd = cpu_matmul_fwd,
    .matmul_bwd = cpu_matmul_bwd,
    .attention_fwd = cpu_attention_fwd,
    .attention_bwd = cpu_attention_bwd,
    .attention_packed_fwd = cpu_attention_packed_fwd,
    .attention_packed_bwd = cpu_attention_packed_bwd,
    .residual_layernorm_fwd = cpu_residual_layernorm_fwd,
    .residual_layernorm_bwd = cpu_residual_layernorm_bwd,
    .dropout_fwd = cpu_dropout_fwd,
    .dropout_bwd = cpu_dropout_bwd,
    .cls_gather_fwd = cpu_cls_gather_fwd,
    .cls_gather_bwd = cpu_cls_gather_bwd,
    .cross_entropy = cpu_cross_entropy,
    .mse = cpu_mse,
    .qa_loss = cpu_qa_loss,
    .global_norm_sq = cpu_global_norm_sq,
    .adamw = cpu_adamw,
};

/* OpenMP is the backend's only thread pool, so OpenBLAS runs single-threaded (see gemm.c) */
const Backend *backend_cpu(void) {
    openblas_set_num_threads(1);
    return &cpu_backend;
}

#ifndef KOE_HAVE_CUDA
const Backend *backend_cuda(void) { return NULL; }
#endif
