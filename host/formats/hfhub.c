/* Finding an HF model: a local folder with config.json, or a hub name "owner/name" in the HF
 * cache, laid out as <cache>/models--owner--name/{refs/main, snapshots/<rev>/...}. Nothing is
 * downloaded: the model must already be in the folder or the cache. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/formats/checkpoint.h"

/* the cache folder, as huggingface_hub picks it */
static char *hf_cache_dir(void) {
    const char *v;
    if ((v = getenv("HF_HUB_CACHE")) && *v) return xstrdup(v);
    if ((v = getenv("HF_HOME")) && *v) return strfmt("%s/hub", v);
    if ((v = getenv("XDG_CACHE_HOME")) && *v) return strfmt("%s/huggingface/hub", v);
    const char *home = getenv("HOME");
    return strfmt("%s/.cache/huggingface/hub", home && *home ? home : ".");
}

/* the commit hash in refs/main, or NULL */
static char *read_ref(const char *repo_dir) {
    char *path = strfmt("%s/refs/main", repo_dir), *data = NULL;
    size_t len = 0;
    Error ignored;
    int rc = file_exists(path) ? read_file(path, &data, &len, &ignored) : -1;
    free(path);
    if (rc != 0) return NULL;
    while (len > 0 && strchr(" \t\r\n", data[len - 1])) data[--len] = 0;
    if (len == 0 || strchr(data, '/')) {
        free(data);
        return NULL;
    }
    return data;
}

/* the only, else the most recently modified, folder under snapshots/ */
static char *newest_snapshot(const char *snap_dir) {
    DIR *d = opendir(snap_dir);
    if (!d) return NULL;
    char *best = NULL;
    struct timespec best_t = {0, 0};
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char *p = strfmt("%s/%s", snap_dir, de->d_name);
        struct stat st;
        int newer = stat(p, &st) == 0 && S_ISDIR(st.st_mode) &&
                    (!best || st.st_mtim.tv_sec > best_t.tv_sec ||
                     (st.st_mtim.tv_sec == best_t.tv_sec && st.st_mtim.tv_nsec > best_t.tv_nsec));
        if (newer) {
            free(best);
            best = p;
            best_t = st.st_mtim;
        } else {
            free(p);
        }
    }
    closedir(d);
    return best;
}

static int has_config(const char *dir) {
    char *p = strfmt("%s/config.json", dir);
    int ok = file_exists(p);
    free(p);
    return ok;
}

/* "owner/name" -> <cache>/models--owner--name */
static char *cache_repo_dir(const char *cache, const char *name) {
    char *folder = xmalloc(2 * strlen(name) + 1), *o = folder;
    for (const char *c = name; *c; c++) {
        if (*c == '/') {
            *o++ = '-';
            *o++ = '-';
        } else {
            *o++ = *c;
        }
    }
    *o = 0;
    char *repo = strfmt("%s/models--%s", cache, folder);
    free(folder);
    return repo;
}

/* repo/snapshots/<rev from refs/main>, else the only or newest snapshot, or NULL */
static char *cached_snapshot(const char *repo) {
    char *rev = read_ref(repo), *snap = NULL;
    if (rev) {
        snap = strfmt("%s/snapshots/%s", repo, rev);
        if (!dir_exists(snap)) {
            free(snap);
            snap = NULL;
        }
    }
    if (!snap) {
        char *snaps = strfmt("%s/snapshots", repo);
        snap = newest_snapshot(snaps);
        free(snaps);
    }
    free(rev);
    return snap;
}

char *hf_resolve_model(const char *name_or_path, Error *e) {
    if (dir_exists(name_or_path)) {
        if (has_config(name_or_path)) return xstrdup(name_or_path);
        errorf(e, "%s: model folder has no config.json", name_or_path);
        return NULL;
    }
    char *cache = hf_cache_dir();
    char *repo = cache_repo_dir(cache, name_or_path);
    char *snap = cached_snapshot(repo);
    if (!snap || !has_config(snap)) {
        errorf(e, "%s: not a local model folder, and not in the HF cache: looked for "
               "config.json in %s/snapshots/<refs/main or newest>/ (cache from HF_HUB_CACHE, "
               "else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else "
               "~/.cache/huggingface/hub)", name_or_path, repo);
        free(snap);
        snap = NULL;
    }
    free(repo);
    free(cache);
    return snap;
}

char *hf_weights_file(const char *dir) {
    static const char *names[] = {"model.safetensors", "pytorch_model.bin"};
    for (int i = 0; i < 2; i++) {
        char *p = strfmt("%s/%s", dir, names[i]);
        if (file_exists(p)) return p;
        free(p);
    }
    return NULL;
}
