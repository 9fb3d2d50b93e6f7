/* Shared by the libFuzzer targets: a small WordPiece vocabulary written once at startup (or
 * the file named by KOE_FUZZ_VOCAB, e.g. the v3 vocab.txt), a per-process temp file the
 * readers under test open, and a check that aborts so libFuzzer records the input. */
#ifndef KOE_FUZZ_COMMON_H
#define KOE_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/text/tokenizer.h"
#include "host/base/util.h"

/* an invariant the code under test promises; failing it is a finding like a crash */
#define FUZZ_ASSERT(cond)                                                                   \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "FUZZ_ASSERT failed %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* a path in /tmp that this process owns; removed at exit */
static char fuzz_tmp_path[64];

static inline void fuzz_remove_tmp(void) {
    if (fuzz_tmp_path[0]) unlink(fuzz_tmp_path);
}

static inline const char *fuzz_tmp_file(void) {
    if (!fuzz_tmp_path[0]) {
        snprintf(fuzz_tmp_path, sizeof fuzz_tmp_path, "/tmp/koe_fuzz_XXXXXX");
        int fd = mkstemp(fuzz_tmp_path);
        if (fd < 0) perror("mkstemp"), abort();
        close(fd);
        atexit(fuzz_remove_tmp);
    }
    return fuzz_tmp_path;
}

/* replaces the temp file's contents with data[0..n) */
static inline const char *fuzz_write_tmp(const uint8_t *data, size_t n) {
    const char *path = fuzz_tmp_file();
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

#endif
