/* Checkpoints: named tensor sets read from safetensors files and from torch.save files
 * (pytorch_model.bin, zip or legacy format), written as safetensors; plus HF model-folder and
 * HF-cache resolution.
 *
 * A TensorSet is a flat list of named tensors in their stored dtype (raw little-endian bytes).
 * Convert with tensor_to_f32 / tensor_to_i32; never cast `data` directly (it may be unaligned). */
#ifndef KOE_CHECKPOINT_H
#define KOE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "host/base/util.h"

typedef enum { DT_F32, DT_F16, DT_BF16, DT_I64, DT_I32, DT_U8, DT_BOOL } DType;

#define TENSOR_MAX_DIMS 8

typedef struct {
    char *name;
    DType dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    size_t numel;
    void *data;    /* numel * dtype_size(dtype) bytes, little endian, maybe unaligned */
    int owns_data; /* 1: freed with the set; 0: points into the set's blob */
} NamedTensor;

typedef struct {
    NamedTensor *t;
    int n, cap;
    char *source; /* file path, for messages (NULL for a set built in memory) */
    void *blob;   /* the file buffer the non-owning tensors point into */
} TensorSet;

size_t dtype_size(DType dt);
const char *dtype_name(DType dt); /* safetensors spelling: "F32", "BF16", ... */

/* 0 on success; on bad input -1 and one line "<file>: <key>: <what is wrong>" in e.
 * On failure *out is left empty (nothing to free). */
int safetensors_read(const char *path, TensorSet *out, Error *e);
/* the same from a file already in memory: buf (len bytes, from malloc) is taken over by the
 * set, which points into it, and freed with it, or at once on failure; name is for messages */
int safetensors_read_mem(const char *name, void *buf, size_t len, TensorSet *out, Error *e);
/* each tensor in its own dtype, header padded to 8 bytes, "__metadata__": {"format": "pt"};
 * written atomically (temp file + rename) */
int safetensors_write(const char *path, const TensorSet *ts, Error *e);
/* torch.save files, by content: the zip format (torch >= 1.6) or the legacy format (a
 * sequence of pickles, torch < 1.6); a bounded pickle reader that accepts only what torch.save
 * writes for a state_dict and refuses any other opcode or global */
int torchbin_read(const char *path, TensorSet *out, Error *e);
/* the same from a file already in memory (data is only read; the set owns copies); name is
 * for messages */
int torchbin_read_mem(const char *name, const void *data, size_t len, TensorSet *out,
                      Error *e);
/* torch.save's zip format (what torch >= 1.6 and transformers' save_pretrained write): the
 * same records and the same data.pkl as torch.save of an OrderedDict of these tensors, each
 * storage 64-byte aligned; written atomically */
int torchbin_write(const char *path, const TensorSet *ts, Error *e);
/* .safetensors by extension; else by the first bytes (zip or pickle: torchbin_read), else
 * .bin .pt .pth go to torchbin_read (for its error) and anything else to safetensors_read */
int checkpoint_read(const char *path, TensorSet *out, Error *e);

const NamedTensor *tensorset_find(const TensorSet *ts, const char *name);
/* copies data (numel * dtype_size bytes); the name must not be in the set yet (aborts) */
void tensorset_add(TensorSet *ts, const char *name, DType dtype, int ndim, const int64_t *shape,
                   const void *data);
void tensorset_add_f32(TensorSet *ts, const char *name, const float *data, int ndim,
                       const int64_t *shape);
void tensorset_free(TensorSet *ts);

/* any dtype -> float (integers must be exactly representable: |v| <= 2^24) */
int tensor_to_f32(const NamedTensor *t, float *dst, Error *e);
/* I64/I32/U8/BOOL -> int, range-checked */
int tensor_to_i32(const NamedTensor *t, int *dst, Error *e);

/* IEEE half and bfloat16 conversions, round to nearest even (as torch's .to(dtype)) */
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);

/* An HF model: a folder containing config.json, or a hub name "owner/name" found in the HF
 * cache ($HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub) as models--owner--name/snapshots/<rev>/ (rev from refs/main when
 * present, else the only or newest snapshot). Returns the folder as a heap string, or NULL
 * with an error that says where it looked. */
char *hf_resolve_model(const char *name_or_path, Error *e);
/* the weights file in a model folder: model.safetensors, else pytorch_model.bin, else NULL */
char *hf_weights_file(const char *dir);

#endif
