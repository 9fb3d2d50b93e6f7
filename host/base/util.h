/* Small shared helpers: errors that carry one clear line, checked allocation, whole-file
 * reads and crash-safe writes (temp file, fsync, rename). */
#ifndef KOE_UTIL_H
#define KOE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An error is one line: "<file>: <where>: <what is wrong>". Functions that can fail on bad
 * input take an Error* and return -1 after filling it (0 on success). */
typedef struct {
    char msg[1024];
} Error;

int errorf(Error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* reads the whole file (NUL-terminated for convenience; *len excludes the NUL) */
int read_file(const char *path, char **data, size_t *len, Error *e);
/* writes path.tmp, fsyncs, renames over path: a crash never leaves a half-written file */
int write_file_atomic(const char *path, const void *data, size_t len, Error *e);
int file_exists(const char *path);
int dir_exists(const char *path);
/* creates the directory and its parents */
int make_dirs(const char *path, Error *e);
/* size arithmetic that saturates at SIZE_MAX instead of wrapping (sizes from a config) */
static inline size_t size_add_sat(size_t a, size_t b) {
    size_t r;
    return __builtin_add_overflow(a, b, &r) ? SIZE_MAX : r;
}
static inline size_t size_mul_sat(size_t a, size_t b) {
    size_t r;
    return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}
/* snprintf into a fresh heap string */
char *strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
double now_seconds(void);
/* "a string", "a number", ... for error messages about a JSON value of the wrong type */
struct cJSON;
const char *json_type_name(const struct cJSON *v);

#ifdef __cplusplus
}
#endif

#endif
