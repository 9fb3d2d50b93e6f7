/* Shared by the libFuzzer targets: a small WordPiece vocabulary written once at startup (or
 * the file named by KOE_FUZZ_VOCAB, e.g. the v3 vocab.txt), per-process temp files the
 * readers under test open (in /dev/shm when there is one: no disk writes per execution), a
 * check that aborts so libFuzzer records the input, and the checks a TensorSet must pass. */
#ifndef KOE_FUZZ_COMMON_H
#define KOE_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/base/util.h"
#include "host/formats/checkpoint.h"
#include "host/text/tokenizer.h"

/* an invariant the code under test promises; failing it is a finding like a crash. Written
 * to fd 2 directly: it must show even where fuzz_quiet_warnings() muted stdio's stderr. */
#define FUZZ_ASSERT(cond)                                                                   \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            dprintf(STDERR_FILENO, "FUZZ_ASSERT failed %s:%d: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                                 \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* the code under test's warnings (fprintf to stderr) go to /dev/null, so that millions of
 * executions do not fill the log; libFuzzer, the sanitizers and FUZZ_ASSERT keep fd 2 */
static inline void fuzz_quiet_warnings(void) {
    FILE *null = fopen("/dev/null", "w");
    if (!null) perror("/dev/null"), abort();
    stderr = null;
}

/* paths this process owns, removed at exit: [0] for fuzz_write_tmp, [1] for round trips */
static char fuzz_tmp_paths[2][64];

static inline void fuzz_remove_tmp(void) {
    for (int i = 0; i < 2; i++)
        if (fuzz_tmp_paths[i][0]) unlink(fuzz_tmp_paths[i]);
}

static inline const char *fuzz_tmp_file(int which) {
    char *path = fuzz_tmp_paths[which];
    if (!path[0]) {
        const char *dir = dir_exists("/dev/shm") ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof fuzz_tmp_paths[0], "%s/koe_fuzz_XXXXXX", dir);
        int fd = mkstemp(path);
        if (fd < 0) perror("mkstemp"), abort();
        close(fd);
        static int cleanup_registered;
        if (!cleanup_registered) atexit(fuzz_remove_tmp), cleanup_registered = 1;
    }
    return path;
}

/* replaces the (first) temp file's contents with data[0..n) */
static inline const char *fuzz_write_tmp(const uint8_t *data, size_t n) {
    const char *path = fuzz_tmp_file(0);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f)) perror(path), abort();
    return path;
}

/* specials, every printable ASCII character alone and as "##" continuation, and a few
 * words so that greedy longest-match has choices to make */
static inline char *fuzz_small_vocab(void) {
    static const char *const words[] = {
        "hello", "he", "##llo", "##l", "world", "##ing", "un", "##aff", "##able",
        "\xec\x95\x88\xeb\x85\x95", "##\xed\x95\x98\xec\x84\xb8\xec\x9a\x94",   /* 안녕 ##하세요 */
        "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4", "##\xeb\xa5\xbc",                /* 한국어 ##를 */
        "\xed\x95\x9c", "##\xea\xb5\xad", "\xe4\xb8\xad", "\xc3\xa9", "##\xc3\xa9", /* 한 ##국 中 é */
        "\xef\xbf\xbd", "1990", "##,"};
    size_t cap = 8192, len = 0;
    char *v = xmalloc(cap);
    len += (size_t)snprintf(v, cap, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for (int c = 33; c < 127; c++) len += (size_t)snprintf(v + len, cap - len, "%c\n##%c\n", c, c);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        len += (size_t)snprintf(v + len, cap - len, "%s\n", words[i]);
    return v;
}

/* a WordPiece tokenizer over KOE_FUZZ_VOCAB or the small vocabulary */
static inline Tokenizer *fuzz_open_wordpiece(int do_lower_case) {
    const char *path = getenv("KOE_FUZZ_VOCAB");
    char vocab_path[96] = "";
    if (!path || !*path) {
        snprintf(vocab_path, sizeof vocab_path, "/tmp/koe_fuzz_vocab_%d_%d.txt", (int)getpid(),
                 do_lower_case);
        char *v = fuzz_small_vocab();
        Error e;
        if (write_file_atomic(vocab_path, v, strlen(v), &e)) fprintf(stderr, "%s\n", e.msg), abort();
        free(v);
        path = vocab_path;
    }
    Error e;
    TokenizerSpec spec = {TOK_WORDPIECE, path, NULL, do_lower_case};
    Tokenizer *t = tokenizer_open(&spec, &e);
    if (vocab_path[0]) unlink(vocab_path);
    if (!t) fprintf(stderr, "%s\n", e.msg), abort();
    return t;
}

/* a NUL-terminated copy of data[0..n) */
static inline char *fuzz_cstr(const uint8_t *data, size_t n) {
    char *s = xmalloc(n + 1);
    if (n) memcpy(s, data, n);
    s[n] = 0;
    return s;
}

/* a set the reader returned keeps its promises: names unique, shapes that multiply to numel,
 * data for every element, and each tensor converts to float and int or says why not */
static inline void fuzz_check_tensors(const TensorSet *ts) {
    for (int i = 0; i < ts->n; i++) {
        const NamedTensor *t = &ts->t[i];
        FUZZ_ASSERT(t->name && tensorset_find(ts, t->name) == t);
        FUZZ_ASSERT(t->ndim >= 0 && t->ndim <= TENSOR_MAX_DIMS && dtype_size(t->dtype) > 0);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            FUZZ_ASSERT(t->shape[d] >= 0);
            numel *= (size_t)t->shape[d];
        }
        FUZZ_ASSERT(numel == t->numel && (numel == 0 || t->data));
        float *f = xmalloc(numel * sizeof *f + 1);
        int *n = xmalloc(numel * sizeof *n + 1);
        Error e;
        if (tensor_to_f32(t, f, &e)) FUZZ_ASSERT(e.msg[0]);
        if (tensor_to_i32(t, n, &e)) FUZZ_ASSERT(e.msg[0]);
        free(f);
        free(n);
    }
}

#endif
