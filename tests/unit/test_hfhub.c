/* HF model resolution: a local folder, the HF cache under HF_HOME and under HF_HUB_CACHE
 * (refs/main, else the only or newest snapshot), a clear error for a missing model, and the
 * weights file inside a model folder. Everything lives in a fresh temp folder. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "host/formats/checkpoint.h"
#include "test.h"

static void touch(const char *dir, const char *file) {
    Error e;
    char *p = strfmt("%s/%s", dir, file);
    CHECK(make_dirs(dir, &e) == 0, "%s", e.msg);
    CHECK(write_file_atomic(p, "{}\n", 3, &e) == 0, "%s", e.msg);
    free(p);
}

/* a cached snapshot with config.json, its folder mtime set to `mtime` */
static char *snapshot(const char *hub, const char *repo, const char *rev, long mtime) {
    char *dir = strfmt("%s/models--%s/snapshots/%s", hub, repo, rev);
    touch(dir, "config.json");
    struct timeval tv[2] = {{mtime, 0}, {mtime, 0}};
    CHECK(utimes(dir, tv) == 0, "utimes %s", dir);
    return dir;
}

/* resolves name and checks the folder it gives */
static void expect_resolves(const char *name, const char *want) {
    Error e = {{0}};
    char *got = hf_resolve_model(name, &e);
    CHECK(got && strcmp(got, want) == 0, "%s: got %s, want %s (%s)", name, got ? got : "NULL",
          want, e.msg);
    free(got);
}

static void test_cache(const char *tmp) {
    char *home = strfmt("%s/hfhome", tmp), *hub = strfmt("%s/hub", home);
    /* refs/main names the old snapshot: it wins over the newer one */
    char *old = snapshot(hub, "owner--tiny", "1111aaaa", 1000000);
    char *new = snapshot(hub, "owner--tiny", "2222bbbb", 2000000);
    char *refs = strfmt("%s/models--owner--tiny/refs", hub);
    char *ref = strfmt("%s/main", refs);
    Error e;
    CHECK(make_dirs(refs, &e) == 0, "%s", e.msg);
    CHECK(write_file_atomic(ref, "1111aaaa\n", 9, &e) == 0, "%s", e.msg);
    unsetenv("HF_HUB_CACHE");
    setenv("HF_HOME", home, 1);
    expect_resolves("owner/tiny", old);
    unlink(ref); /* no refs/main: the newest snapshot */
    expect_resolves("owner/tiny", new);

    /* HF_HUB_CACHE wins over HF_HOME; a single snapshot without refs */
    char *hub2 = strfmt("%s/elsewhere", tmp);
    char *only = snapshot(hub2, "monologg--koelectra-small-v3-discriminator", "cafe", 1500000);
    setenv("HF_HUB_CACHE", hub2, 1);
    expect_resolves("monologg/koelectra-small-v3-discriminator", only);

    /* a missing model: the error names it and the folder looked in */
    char *got = hf_resolve_model("owner/absent", &e);
    char *looked = strfmt("%s/models--owner--absent", hub2);
    CHECK(!got && strstr(e.msg, "owner/absent") && strstr(e.msg, looked) &&
          strstr(e.msg, "HF_HUB_CACHE"), "missing model message: %s", e.msg);
    free(got);
    unsetenv("HF_HUB_CACHE");
    unsetenv("HF_HOME");
    free(looked), free(only), free(hub2), free(ref), free(refs), free(new), free(old);
    free(hub), free(home);
}

static void test_local_folder(const char *tmp) {
    char *dir = strfmt("%s/local/model", tmp);
    touch(dir, "config.json");
    expect_resolves(dir, dir);
    CHECK(hf_weights_file(dir) == NULL, "no weights yet");
    touch(dir, "pytorch_model.bin");
    char *w = hf_weights_file(dir), *bin = strfmt("%s/pytorch_model.bin", dir);
    CHECK(w && strcmp(w, bin) == 0, "weights %s", w ? w : "NULL");
    free(w);
    touch(dir, "model.safetensors");
    char *st = strfmt("%s/model.safetensors", dir);
    w = hf_weights_file(dir);
    CHECK(w && strcmp(w, st) == 0, "safetensors first: %s", w ? w : "NULL");
    free(w), free(st), free(bin);

    char *bare = strfmt("%s/local/bare", tmp);
    Error e;
    CHECK(make_dirs(bare, &e) == 0, "%s", e.msg);
    char *got = hf_resolve_model(bare, &e);
    CHECK(!got && strstr(e.msg, bare) && strstr(e.msg, "no config.json"), "bare folder: %s",
          e.msg);
    free(got), free(bare), free(dir);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int main(void) {
    char tmp[] = "/tmp/koe_hfhub_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp %s", tmp);
    if (test_failures) return test_exit("test_hfhub");
    test_cache(tmp);
    test_local_folder(tmp);
    nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return test_exit("test_hfhub");
}
