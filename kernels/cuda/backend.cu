/* The CUDA backend: device memory, bf16 conversions, NVTX ranges, scratch buffers and the
 * Backend table over the ops of the files beside this one. */
#include <nvtx3/nvToolsExt.h>
#include <string.h>
#include <unistd.h>

#include "kernels/cuda/common.cuh"

extern "C" {
#include "host/base/util.h"
}

/* ---- memory ---- */

/* live allocations (a few hundred: a linear search on free is enough) for peak_bytes */
static struct { void *p; size_t bytes; } *live;
static int n_live, cap_live;
static size_t live_bytes, peak_live_bytes;

static void *cuda_alloc(size_t bytes) {
    void *p = NULL;
    cudaError_t err = cudaMalloc(&p, bytes ? bytes : 1);
    if (err != cudaSuccess) {
        fprintf(stderr, "error: cuda: cannot allocate %zu bytes of device memory: %s\n", bytes,
                cudaGetErrorString(err));
        abort();
    }
    CUDA_CHECK(cudaMemset(p, 0, bytes));
    if (n_live == cap_live) {
        cap_live = cap_live ? 2 * cap_live : 256;
        live = (decltype(live))xrealloc(live, cap_live * sizeof *live);
    }
    live[n_live].p = p, live[n_live++].bytes = bytes;
    live_bytes += bytes;
    if (live_bytes > peak_live_bytes) peak_live_bytes = live_bytes;
    return p;
}

static void cuda_free(void *p) {
    if (!p) return;
    for (int i = 0; i < n_live; i++)
        if (live[i].p == p) {
            live_bytes -= live[i].bytes;
            live[i] = live[--n_live];
            break;
        }
    CUDA_CHECK(cudaFree(p));
}

static size_t cuda_peak_bytes(void) { return peak_live_bytes; }

/* the device memory free now (what the context and earlier allocations left) */
static size_t cuda_memory_bytes(void) {
    size_t free_bytes = 0, total = 0;
    if (cudaMemGetInfo(&free_bytes, &total) == cudaSuccess) return free_bytes;
    cudaGetLastError(); /* unknown: no check, and no stale error for the next launch */
    return 0;
}

static void cuda_zero(void *p, size_t bytes) { CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, 0)); }

static void cuda_to_device(void *dst, const void *host_src, size_t bytes) {
    CUDA_CHECK(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
}

static void cuda_to_host(void *host_dst, const void *src, size_t bytes) {
    CUDA_CHECK(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost));
}

/* conversions on the host go through one temporary bf16 buffer (round to nearest even) */
static void cuda_acts_from_float(Act *dst, const float *host_src, size_t n) {
    bf16 *tmp = (bf16 *)xmalloc(n * sizeof(bf16) + 1);
    for (size_t i = 0; i < n; i++) tmp[i] = __float2bfloat16(host_src[i]);
    cuda_to_device(dst, tmp, n * sizeof(bf16));
    free(tmp);
}

static void cuda_acts_to_float(float *host_dst, const Act *src, size_t n) {
    bf16 *tmp = (bf16 *)xmalloc(n * sizeof(bf16) + 1);
    cuda_to_host(tmp, src, n * sizeof(bf16));
    for (size_t i = 0; i < n; i++) host_dst[i] = __bfloat162float(tmp[i]);
    free(tmp);
}

__global__ void float_to_bf16_kernel(bf16 *dst, const float *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16(src[i]);
}

static void cuda_float_to_acts(Act *dst, const float *src, size_t n) {
    if (n == 0) return;
    float_to_bf16_kernel<<<grid_stride_blocks(n), GRID_STRIDE_THREADS>>>((bf16 *)dst, src, n);
    KERNEL_CHECK();
}

static void cuda_synchronize(void) { CUDA_CHECK(cudaDeviceSynchronize()); }

static void cuda_range_push(const char *name) { nvtxRangePushA(name); }
static void cuda_range_pop(void) { nvtxRangePop(); }

/* ---- scratch ---- */

static void *scratch_ptr[SCRATCH_SLOTS];
static size_t scratch_bytes[SCRATCH_SLOTS];
static unsigned scratch_generation; /* bumped when a buffer moves: graphs using it are stale */

void *cuda_scratch(int slot, size_t bytes) {
    if (bytes > scratch_bytes[slot]) {
        scratch_generation++;
        /* kernels queued earlier may still read the old buffer */
        CUDA_CHECK(cudaDeviceSynchronize());
        cuda_free(scratch_ptr[slot]);
        scratch_ptr[slot] = cuda_alloc(bytes);
        scratch_bytes[slot] = bytes;
    }
    return scratch_ptr[slot];
}

/* ---- CUDA graphs ----
 * Everything runs on the per-thread default stream (nvcc --default-stream per-thread), which
 * can be captured. KOE_CUDA_GRAPHS=0 turns capturing off. */

typedef struct {
    cudaGraphExec_t exec;
    unsigned generation;
} Graph;

static int cuda_graph_begin(void) {
    const char *env = getenv("KOE_CUDA_GRAPHS");
    if (env && !strcmp(env, "0")) return -1;
    return cudaStreamBeginCapture(cudaStreamPerThread, cudaStreamCaptureModeThreadLocal) ==
                   cudaSuccess ? 0 : -1;
}

static void *cuda_graph_end(void) {
    cudaGraph_t g;
    cudaGraphExec_t exec;
    if (cudaStreamEndCapture(cudaStreamPerThread, &g) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    cudaError_t err = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    if (err != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    Graph *r = (Graph *)xmalloc(sizeof(Graph));
    r->exec = exec;
    r->generation = scratch_generation;
    return r;
}

static int cuda_graph_launch(void *p) {
    Graph *g = (Graph *)p;
    if (g->generation != scratch_generation) return -1;
    CUDA_CHECK(cudaGraphLaunch(g->exec, cudaStreamPerThread));
    return 0;
}

static void cuda_graph_free(void *p) {
    Graph *g = (Graph *)p;
    cudaGraphExecDestroy(g->exec);
    free(g);
}

/* ---- column sums, pass 2 (pass 1 is the template in common.cuh) ---- */

__global__ void colsum_finish_kernel(float *out0, float *out1, const float *partials, int chunks,
                                     int nout, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    for (int k = 0; k < nout; k++) {
        float s = 0.0f;
        for (int ch = 0; ch < chunks; ch++) s += partials[((size_t)ch * nout + k) * C + c];
        float *out = k == 0 ? out0 : out1;
        out[c] += s;
    }
}

void colsum_finish(float *out0, float *out1, const float *partials, int chunks, int nout, int C) {
    colsum_finish_kernel<<<ceil_div(C, 256), 256>>>(out0, out1, partials, chunks, nout, C);
    KERNEL_CHECK();
}

/* ---- the table ---- */

static Backend make_backend(void) {
    Backend b;
    memset(&b, 0, sizeof b);
    b.name = "cuda";
    b.act_size = sizeof(bf16);
    b.alloc = cuda_alloc;
    b.free = cuda_free;
    b.zero = cuda_zero;
    b.to_device = cuda_to_device;
    b.to_host = cuda_to_host;
    b.acts_from_float = cuda_acts_from_float;
    b.acts_to_float = cuda_acts_to_float;
    b.float_to_acts = cuda_float_to_acts;
    b.synchronize = cuda_synchronize;
    b.peak_bytes = cuda_peak_bytes;
    b.memory_bytes = cuda_memory_bytes;
    b.range_push = cuda_range_push;
    b.range_pop = cuda_range_pop;
    b.graph_begin = cuda_graph_begin;
    b.graph_end = cuda_graph_end;
    b.graph_launch = cuda_graph_launch;
    b.graph_free = cuda_graph_free;
    b.embeddings_fwd = cuda_embeddings_fwd;
    b.embeddings_bwd = cuda_embeddings_bwd;
    b.matmul_fwd = cuda_matmul_fwd;
    b.matmul_bwd = cuda_matmul_bwd;
    b.attention_fwd = cuda_attention_fwd;
    b.attention_bwd = cuda_attention_bwd;
    b.attention_packed_fwd = cuda_attention_packed_fwd;
    b.attention_packed_bwd = cuda_attention_packed_bwd;
    b.residual_layernorm_fwd = cuda_residual_layernorm_fwd;
    b.residual_layernorm_bwd = cuda_residual_layernorm_bwd;
    b.dropout_fwd = cuda_dropout_fwd;
    b.dropout_bwd = cuda_dropout_bwd;
    b.cls_gather_fwd = cuda_cls_gather_fwd;
    b.cls_gather_bwd = cuda_cls_gather_bwd;
    b.cross_entropy = cuda_cross_entropy;
    b.mse = cuda_mse;
    b.qa_loss = cuda_qa_loss;
    b.global_norm_sq = cuda_global_norm_sq;
    b.adamw = cuda_adamw;
    return b;
}

/* NULL when no device is usable; the reason (other than "no device") goes to stderr once,
 * e.g. a driver older than this build's CUDA runtime. */
extern "C" const Backend *backend_cuda(void) {
    static Backend backend;
    static int state = 0; /* 0 unknown, 1 ready, -1 unusable */
    if (state == 0) {
        int count = 0;
        cudaError_t err = cudaGetDeviceCount(&count);
        if (err != cudaSuccess || count == 0) {
            /* without an NVIDIA driver at all the runtime also says "insufficient driver":
             * only worth a note where a driver is installed (then it is really too old) */
            int driver = access("/dev/nvidiactl", F_OK) == 0;
            if (err != cudaSuccess && err != cudaErrorNoDevice &&
                (err != cudaErrorInsufficientDriver || driver))
                fprintf(stderr, "note: cuda: no usable device: %s\n", cudaGetErrorString(err));
            cudaGetLastError(); /* clear the sticky-free error state */
            state = -1;
        } else {
            CUDA_CHECK(cudaSetDevice(0));
            cuda_matmul_init();
            backend = make_backend();
            state = 1;
        }
    }
    return state == 1 ? &backend : NULL;
}
