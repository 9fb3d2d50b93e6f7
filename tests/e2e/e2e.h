/* Shared by the end-to-end tests: a scratch folder per test, a tiny data_dir (the first lines
 * of the real files when KOELECTRA_DATA_DIR has them, else a few hand-written rows), a tiny
 * ELECTRA/BERT/DistilBERT config.json, and running the programs from $KOE_BUILD_DIR with their
 * stderr captured. */
#ifndef KOE_E2E_H
#define KOE_E2E_H

#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/tasks/tasks.h"
#include "host/base/util.h"
#include "test.h"

#define E2E_VOCAB "../shared/vocab/koelectra-base-v3-discriminator/vocab.txt"
#define E2E_KOBERT_VOCAB "../shared/vocab/kobert"

typedef struct {
    char root[512];        /* scratch folder of this test */
    char data[600];        /* tiny data_dir */
    char config[600];      /* tiny model config.json */
    char vocab[600];       /* vocab.txt */
    const char *real_data; /* KOELECTRA_DATA_DIR as given, or NULL */
} E2E;

static inline void e2e_die(const char *what) {
    fprintf(stderr, "e2e setup: %s\n", what);
    exit(1);
}

static inline void e2e_write(const char *path, const char *text) {
    Error e;
    if (write_file_atomic(path, text, strlen(text), &e) != 0) e2e_die(e.msg);
}

static inline int e2e_count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0, c, last = '\n';
    while ((c = fgetc(f)) != EOF) n += (last = c) == '\n';
    n += last != '\n'; /* a last line without its newline */
    fclose(f);
    return n;
}

/* the tiny model: hidden 32, 2 layers, vocab = the vocabulary's size; HF key names of the
 * ELECTRA/BERT and DistilBERT config classes both, so it serves every family */
static inline void e2e_write_config(const char *path, int vocab_size) {
    char *text = strfmt(
        "{\"model_type\": \"electra\", \"vocab_size\": %d, \"embedding_size\": 32, "
        "\"hidden_size\": 32, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
        "\"intermediate_size\": 64, \"max_position_embeddings\": 512, \"type_vocab_size\": 2, "
        "\"hidden_act\": \"gelu\", \"pad_token_id\": 0, \"dim\": 32, \"n_layers\": 2, "
        "\"n_heads\": 2, \"hidden_dim\": 64, \"activation\": \"gelu\"}\n",
        vocab_size);
    e2e_write(path, text);
    free(text);
}

/* the special tokens, then the words of the hand-written rows, and a model of that size:
 * tests of the run's mechanics (not of tokenization) are much faster with it than with the
 * real 35000-token vocabulary */
static inline void e2e_small_vocab(E2E *x) {
    Error e;
    snprintf(x->vocab, sizeof x->vocab, "%s/vocab/vocab.txt", x->root);
    char *dir = strfmt("%s/vocab", x->root);
    if (make_dirs(dir, &e) != 0) e2e_die(e.msg);
    free(dir);
    e2e_write(x->vocab, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ngood\nbad\nmovie\nthe\nis\nvery\n"
                        "a\nfilm\nkim\nseoul\nlives\nin\nwho\nwhere\ndoes\n?\n.\n");
    e2e_write_config(x->config, e2e_count_lines(x->vocab));
}

/* a fresh scratch folder under $KOE_BUILD_DIR/e2e/<name> with the tiny model files */
static inline void e2e_init(E2E *x, const char *name) {
    memset(x, 0, sizeof *x);
    const char *build = getenv("KOE_BUILD_DIR");
    if (!build) TEST_SKIP("KOE_BUILD_DIR is not set (run through ctest)");
    x->real_data = getenv("KOELECTRA_DATA_DIR");
    if (x->real_data) x->real_data = strdup(x->real_data);
    snprintf(x->root, sizeof x->root, "%s/e2e/%s", build, name);
    char *cmd = strfmt("rm -rf '%s'", x->root);
    if (system(cmd) != 0) e2e_die("cannot clear the scratch folder");
    free(cmd);
    Error e;
    if (make_dirs(x->root, &e) != 0) e2e_die(e.msg);
    snprintf(x->data, sizeof x->data, "%s/data", x->root);
    snprintf(x->config, sizeof x->config, "%s/tiny_config.json", x->root);
    if (file_exists(E2E_VOCAB)) {
        snprintf(x->vocab, sizeof x->vocab, "%s", E2E_VOCAB);
        e2e_write_config(x->config, e2e_count_lines(x->vocab));
    } else {
        e2e_small_vocab(x);
    }
    /* the programs fall back to $KOELECTRA_DATA_DIR: point it at the tiny data */
    setenv("KOELECTRA_DATA_DIR", x->data, 1);
}

/* hand-written rows in each task's format (header first where the task has one) */
static inline const char *e2e_rows(const char *task) {
    if (!strcmp(task, "nsmc"))
        return "id\tdocument\tlabel\n1\tgood movie\t1\n2\tbad film\t0\n3\tvery good\t1\n"
               "4\tthe film is bad\t0\n5\ta good film\t1\n6\tbad bad\t0\n";
    if (!strcmp(task, "kornli"))
        return "sentence1\tsentence2\tgold_label\ngood movie\tbad movie\tcontradiction\n"
               "a film\ta movie\tentailment\nthe film\tvery good\tneutral\n"
               "good film\tgood movie\tentailment\n";
    if (!strcmp(task, "paws"))
        return "id\tsentence1\tsentence2\tlabel\n1\tgood movie\ta good movie\t1\n"
               "2\tbad film\tgood film\t0\n3\tthe film\tthe movie\t1\n4\tvery bad\tgood\t0\n";
    if (!strcmp(task, "korsts"))
        return "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n"
               "g\tf\t2017\t1\t4.5\tgood movie\ta good movie\ng\tf\t2017\t2\t0.5\tbad\tgood\n"
               "g\tf\t2017\t3\t2.0\tthe film\tvery good\ng\tf\t2017\t4\t3.2\tbad film\tbad movie\n";
    if (!strcmp(task, "question-pair"))
        return "question1\tquestion2\tis_duplicate\nwho is kim ?\twho is kim ?\t1\n"
               "where does kim live ?\twho is kim ?\t0\ngood ?\tbad ?\t0\nfilm ?\tmovie ?\t1\n";
    if (!strcmp(task, "hate-speech"))
        return "title\tcomment\tbias\thate\nmovie\tgood movie\tnone\tnone\nfilm\tbad film\tnone\t"
               "offensive\nfilm\tvery bad\tothers\thate\nmovie\tthe film\tnone\tnone\n";
    if (!strcmp(task, "naver-ner"))
        return "kim lives in seoul .\tPER-B O O LOC-B O\ngood movie\tO O\n"
               "kim is very good\tPER-B O O O\nseoul film\tLOC-B O\n";
    return NULL;
}

/* a KorQuAD file: the first paragraph's first 3 questions of the real dev set, else two
 * hand-written questions; written with cJSON */
static inline void e2e_korquad(const E2E *x, const char *dst) {
    char *src = x->real_data ? strfmt("%s/korquad/KorQuAD_v1.0_dev.json", x->real_data) : NULL;
    char *text = NULL;
    cJSON *out = NULL;
    if (src && read_file(src, &text, NULL, &(Error){{0}}) == 0) {
        cJSON *all = cJSON_Parse(text);
        cJSON *art = cJSON_GetArrayItem(cJSON_GetObjectItem(all, "data"), 0);
        cJSON *par = cJSON_GetArrayItem(cJSON_GetObjectItem(art, "paragraphs"), 0);
        cJSON *qas = cJSON_GetObjectItem(par, "qas");
        while (cJSON_GetArraySize(qas) > 3) cJSON_DeleteItemFromArray(qas, 3);
        out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "version", "KorQuAD_v1.0_dev");
        cJSON *data = cJSON_AddArrayToObject(out, "data");
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "title", cJSON_GetObjectItem(art, "title")->valuestring);
        cJSON_AddItemToObject(a, "paragraphs", cJSON_CreateArray());
        cJSON_AddItemToArray(cJSON_GetObjectItem(a, "paragraphs"), cJSON_Duplicate(par, 1));
        cJSON_AddItemToArray(data, a);
        cJSON_Delete(all);
    } else {
        out = cJSON_Parse(
            "{\"version\": \"KorQuAD_v1.0_dev\", \"data\": [{\"title\": \"kim\", \"paragraphs\": "
            "[{\"context\": \"kim lives in seoul . the film is very good .\", \"qas\": ["
            "{\"id\": \"q1\", \"question\": \"where does kim live ?\", \"answers\": "
            "[{\"text\": \"seoul\", \"answer_start\": 13}]},"
            "{\"id\": \"q2\", \"question\": \"who lives in seoul ?\", \"answers\": "
            "[{\"text\": \"kim\", \"answer_start\": 0}]}]}]}]}");
    }
    char *json = cJSON_PrintUnformatted(out);
    e2e_write(dst, json);
    free(json), free(text), free(src);
    cJSON_Delete(out);
}

/* data/<task>/<file>: the first n_lines of the real file (or of another real file of the task
 * when this one is missing), else the hand-written rows */
static inline void e2e_data_file(const E2E *x, const char *task, const char *file, int n_lines) {
    if (!file || !file[0]) return;
    char *dir = strfmt("%s/%s", x->data, task), *dst = strfmt("%s/%s", dir, file);
    Error e;
    if (make_dirs(dir, &e) != 0) e2e_die(e.msg);
    if (!strcmp(task, "korquad")) {
        e2e_korquad(x, dst);
        free(dir), free(dst);
        return;
    }
    const TaskInfo *t = task_find(task);
    const char *names[4] = {file, t->train_file, t->dev_file, t->test_file};
    FILE *in = NULL;
    for (int i = 0; i < 4 && !in && x->real_data; i++) {
        if (!names[i]) continue;
        char *src = strfmt("%s/%s/%s", x->real_data, task, names[i]);
        in = fopen(src, "r");
        free(src);
    }
    if (in) {
        FILE *out = fopen(dst, "w");
        if (!out) e2e_die(dst);
        char *line = NULL;
        size_t cap = 0;
        for (int i = 0; i < n_lines && getline(&line, &cap, in) > 0; i++) fputs(line, out);
        free(line);
        fclose(in);
        fclose(out);
    } else {
        e2e_write(dst, e2e_rows(task));
    }
    free(dir), free(dst);
}

/* all the files the task's original configs name */
static inline void e2e_task_data(const E2E *x, const char *task, int n_lines) {
    const TaskInfo *t = task_find(task);
    e2e_data_file(x, task, t->train_file, n_lines);
    e2e_data_file(x, task, t->dev_file, n_lines);
    e2e_data_file(x, task, t->test_file, n_lines);
}

/* starts $KOE_BUILD_DIR/<argv[0]> with stdout+stderr into err_path; returns the pid */
static inline pid_t e2e_spawn(char *const argv[], const char *err_path) {
    char *prog = strfmt("%s/%s", getenv("KOE_BUILD_DIR"), argv[0]);
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(err_path, "w", stderr);
        if (!f || dup2(fileno(stderr), 1) < 0) _exit(126);
        execv(prog, argv);
        fprintf(stderr, "cannot run %s\n", prog);
        _exit(127);
    }
    free(prog);
    return pid;
}

/* the exit code, or 128 + signal */
static inline int e2e_wait(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* runs a NULL-terminated argument list (program name first) */
static inline int e2e_run(const char *err_path, ...) {
    char *argv[128];
    int n = 0;
    va_list ap;
    va_start(ap, err_path);
    while (n < 127 && (argv[n] = va_arg(ap, char *))) n++;
    va_end(ap);
    argv[n] = NULL;
    return e2e_wait(e2e_spawn(argv, err_path));
}

/* the lines of a file starting with prefix; the first one copied to first (when not NULL) */
static inline int e2e_lines_with(const char *path, const char *prefix, char *first, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t lcap = 0;
    int n = 0;
    if (first && cap) first[0] = 0;
    while (getline(&line, &lcap, f) > 0) {
        if (strncmp(line, prefix, strlen(prefix)) != 0) continue;
        if (n++ == 0 && first) snprintf(first, cap, "%s", line);
    }
    free(line);
    fclose(f);
    return n;
}

/* a run that must fail: exit 1 (not a signal), exactly one "error: " line containing want,
 * nothing from a sanitizer */
static inline void e2e_check_one_error(const char *err_path, int code, const char *want, const char *what) {
    char line[1024];
    int n = e2e_lines_with(err_path, "error: ", line, sizeof line);
    CHECK(code == 1, "%s: exit code %d (want 1; see %s)", what, code, err_path);
    CHECK(n == 1, "%s: %d error lines (want 1; see %s)", what, n, err_path);
    CHECK(!want || strstr(line, want), "%s: error line '%s' lacks '%s'", what, line, want);
    CHECK(e2e_lines_with(err_path, "==", NULL, 0) == 0, "%s: sanitizer output in %s", what, err_path);
}

#endif
