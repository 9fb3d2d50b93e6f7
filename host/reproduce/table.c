/* The benchmark table: every run's results.json read back, mean ± std over seeds per cell,
 * the published number and the difference beside it, then results.md and results.json. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/reproduce/reproduce.h"
#include "host/text/pyfmt.h"

/* ---- a growable text ---- */

typedef struct {
    char *s;
    size_t len, cap;
} Text;

static void __attribute__((format(printf, 2, 3))) put(Text *t, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = xrealloc(t->s, t->cap);
    }
    vsnprintf(t->s + t->len, n + 1, fmt, ap2);
    va_end(ap2);
    t->len += n;
}

/* ---- what each column reports ---- */

typedef struct {
    const char *keys[2]; /* the metrics in results.json (one, or KorQuAD's EM and F1) */
    int n_keys;
    double scale;        /* to percent */
    const char *label;
} Column;

static Column column_of(const TaskInfo *t) {
    switch (t->kind) {
    case TASK_QA: return (Column){{"official_exact_match", "official_f1"}, 2, 1, "EM / F1"};
    case TASK_REGRESSION: return (Column){{"spearmanr"}, 1, 100, "spearman"};
    case TASK_NER: return (Column){{"f1"}, 1, 100, "F1"};
    default: break;
    }
    if (t->metric == METRIC_MACRO_PRF) return (Column){{"f1"}, 1, 100, "macro F1"};
    return (Column){{"acc"}, 1, 100, "acc"};
}

/* ---- one run's results.json ---- */

typedef struct {
    int ok;                  /* results.json read and has a best result */
    double best[2], last[2]; /* column values, percent */
    int best_step, last_step, steps;
    double train_s, eval_s, ckpt_s, total_s, samples_s, tokens_s, peak_bytes;
    char backend[128];
    int random_init; /* the run started from random weights */
} RunResult;

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int step_values(const cJSON *step, const Column *c, double *out, int *at) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(step, "metrics");
    *at = (int)num(step, "step");
    for (int k = 0; k < c->n_keys; k++) out[k] = num(m, c->keys[k]) * c->scale;
    return m && isfinite(out[0]) ? 0 : -1;
}

static RunResult read_run(const Run1 *r, const Column *c) {
    RunResult rr = {0};
    char *path = strfmt("%s/results.json", r->dir), *text = NULL;
    Error e;
    cJSON *o = file_exists(path) && read_file(path, &text, NULL, &e) == 0 ? cJSON_Parse(text) : NULL;
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(o, "timing_s");
    const cJSON *be = cJSON_GetObjectItemCaseSensitive(o, "backend");
    rr.ok = o && step_values(cJSON_GetObjectItemCaseSensitive(o, "best"), c, rr.best, &rr.best_step) == 0 &&
            step_values(cJSON_GetObjectItemCaseSensitive(o, "last"), c, rr.last, &rr.last_step) == 0;
    rr.steps = (int)num(o, "global_step");
    rr.train_s = num(tm, "train"), rr.eval_s = num(tm, "eval"), rr.ckpt_s = num(tm, "checkpoint");
    rr.total_s = num(tm, "total");
    rr.samples_s = num(o, "train_samples_per_s"), rr.tokens_s = num(o, "train_tokens_per_s");
    rr.peak_bytes = num(o, "peak_memory_bytes");
    snprintf(rr.backend, sizeof rr.backend, "%s", cJSON_IsString(be) ? be->valuestring : "?");
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(o, "initial_weights");
    rr.random_init = !cJSON_IsString(init) || !strcmp(init->valuestring, "random");
    cJSON_Delete(o);
    free(path), free(text);
    return rr;
}

/* ---- a cell: one task over its seeds ---- */

typedef struct {
    const TaskInfo *task;
    Column col;
    int n, failed, no_data;   /* runs with results, runs that failed, runs without data */
    const char *why_no_data;
    double mean[2], std[2], min[2], max[2];
    double pub[2];            /* the published value(s), NAN when none */
} Cell;

/* mean, sample standard deviation (n - 1; 0 for one run), min and max of x[0..n) */
void seed_stats(const double *x, int n, double *mean, double *std, double *min, double *max) {
    double s = 0, ss = 0;
    *min = INFINITY, *max = -INFINITY;
    for (int i = 0; i < n; i++) s += x[i], *min = fmin(*min, x[i]), *max = fmax(*max, x[i]);
    *mean = n ? s / n : NAN;
    for (int i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
    *std = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

static void published_values(const cJSON *model, const TaskInfo *t, double *pub) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, t->name);
    pub[0] = pub[1] = NAN;
    if (cJSON_IsNumber(v)) pub[0] = v->valuedouble;
    for (int k = 0; k < 2 && cJSON_IsArray(v); k++) {
        const cJSON *x = cJSON_GetArrayItem(v, k);
        if (cJSON_IsNumber(x)) pub[k] = x->valuedouble;
    }
}

static Cell make_cell(const Bench *b, const TaskInfo *t, const RunResult *rr, const cJSON *pub) {
    Cell c = {.task = t, .col = column_of(t)};
    double x[2][MAX_SEEDS];
    for (int i = 0; i < b->n_runs; i++) {
        const Run1 *r = &b->runs[i];
        if (r->task != t) continue;
        if (r->state == RUN_NO_DATA) c.no_data++, c.why_no_data = r->no_data;
        else if (!rr[i].ok || r->rc) c.failed++;
        else if (c.n < MAX_SEEDS) {
            for (int k = 0; k < c.col.n_keys; k++) x[k][c.n] = rr[i].best[k];
            c.n++;
        }
    }
    for (int k = 0; k < c.col.n_keys; k++)
        seed_stats(x[k], c.n, &c.mean[k], &c.std[k], &c.min[k], &c.max[k]);
    published_values(pub, t, c.pub);
    return c;
}

/* ---- results.md ---- */

static const char *task_title(const TaskInfo *t) {
    static const char *const names[][2] = {
        {"nsmc", "NSMC"},       {"naver-ner", "Naver NER"}, {"paws", "PAWS"},
        {"kornli", "KorNLI"},   {"korsts", "KorSTS"},       {"question-pair", "Question Pair"},
        {"korquad", "KorQuAD (dev)"}, {"hate-speech", "Hate Speech (dev)"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(names[i][0], t->name)) return names[i][1];
    return t->name;
}

/* "a / b" for KorQuAD's two numbers, "a" otherwise; "-" for NAN */
static void put_values(Text *md, const double *v, int n, const char *sign) {
    for (int k = 0; k < n; k++) {
        if (k) put(md, " / ");
        if (isnan(v[k])) put(md, "-");
        else put(md, sign[0] && v[k] >= 0 ? "+%.2f" : "%.2f", v[k]);
    }
}

static void put_our_cell(Text *md, const Cell *c) {
    if (c->no_data || !c->n) {
        put(md, " %s |", c->no_data ? "no data" : c->failed ? "failed" : "not run");
        return;
    }
    for (int k = 0; k < c->col.n_keys; k++) {
        put(md, "%s%.2f", k ? " / " : " ", c->mean[k]);
        if (c->n > 1) put(md, " ± %.2f", c->std[k]);
    }
    for (int k = 0; c->n > 1 && k < c->col.n_keys; k++)
        put(md, "%s%.2f–%.2f", k ? " / " : "<br>", c->min[k], c->max[k]);
    put(md, "<br>n=%d%s |", c->n, c->failed ? ", some runs failed" : "");
}

static void put_table(Text *md, const Bench *b, const Cell *cells, const char *pub_name) {
    put(md, "| model |");
    for (int i = 0; i < b->opt.n_tasks; i++)
        put(md, " %s (%s) |", task_title(cells[i].task), cells[i].col.label);
    put(md, "\n|---|");
    for (int i = 0; i < b->opt.n_tasks; i++) put(md, "---|");
    put(md, "\n| %s (ours, mean ± std, min–max over seeds) |", b->opt.model);
    for (int i = 0; i < b->opt.n_tasks; i++) put_our_cell(md, &cells[i]);
    put(md, "\n| %s (published) |", pub_name);
    for (int i = 0; i < b->opt.n_tasks; i++) {
        put(md, " ");
        put_values(md, cells[i].pub, cells[i].col.n_keys, "");
        put(md, " |");
    }
    put(md, "\n| difference (ours − published) |");
    for (int i = 0; i < b->opt.n_tasks; i++) {
        double d[2];
        for (int k = 0; k < 2; k++) d[k] = cells[i].n ? cells[i].mean[k] - cells[i].pub[k] : NAN;
        put(md, " ");
        put_values(md, d, cells[i].col.n_keys, "+");
        put(md, " |");
    }
    put(md, "\n");
}

static const char EVALUATION_NOTE[] =
    "Each number is the test-split score of the run's best checkpoint by the task's metric "
    "(KorQuAD: its dev file, scored with the official KorQuAD v1.0 EM/F1; hate speech: val.tsv). "
    "That is what the original's table reports: its configs set `eval_all_checkpoints` and "
    "(for most tasks, which have no dev file) `evaluate_test_during_training`, so run_seq_cls.py, "
    "run_ner.py and run_squad.py score every saved checkpoint on the test file and list them all "
    "in eval_results.txt, and the README gives the best of those. The last checkpoint's scores "
    "are in results.json (`last`) and in the runs table below.\n";

static void format_bytes(double b, char *buf, size_t n) {
    if (!isfinite(b) || b <= 0) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.2f GiB", b / (1024.0 * 1024 * 1024));
}

static void put_runs(Text *md, const Bench *b, const RunResult *rr) {
    put(md, "\n## Runs\n\n| task | seed | best (step) | last (step) | steps | train s | eval s | "
            "checkpoint I/O s | samples/s | real tokens/s | peak memory | picture |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < b->n_runs; i++) {
        const Run1 *r = &b->runs[i];
        const RunResult *x = &rr[i];
        Column c = column_of(r->task);
        put(md, "| %s | %d |", r->task->name, r->seed);
        if (!x->ok) {
            put(md, " %s | | | | | | | | | |\n", r->state == RUN_NO_DATA ? "no data"
                                                : r->rc ? "failed (see run.log)" : "not finished");
            continue;
        }
        char mem[32];
        format_bytes(x->peak_bytes, mem, sizeof mem);
        put(md, " ");
        put_values(md, x->best, c.n_keys, "");
        put(md, " (%d) | ", x->best_step);
        put_values(md, x->last, c.n_keys, "");
        put(md, " (%d) | %d | %.1f | %.1f | %.1f | %.1f | %.0f | %s | [svg](runs/%s/seed-%d/curves.svg) |\n",
            x->last_step, x->steps, x->train_s, x->eval_s, x->ckpt_s, x->samples_s, x->tokens_s,
            mem, r->task->name, r->seed);
    }
}

static void put_commands(Text *md, const Bench *b) {
    put(md, "\n## Commands\n\nThe whole table:\n\n```sh\n%s", b->opt.self);
    for (int i = 1; i < b->opt.argc; i++) put(md, " %s", b->opt.argv[i]);
    put(md, "\n```\n\nEach run alone, with its task's own program:\n\n```sh\n");
    for (int i = 0; i < b->n_runs; i++) {
        if (b->runs[i].state == RUN_NO_DATA || !b->runs[i].config[0]) continue;
        char *cmd = reproduce_run_command(b, &b->runs[i]);
        put(md, "%s\n", cmd);
        free(cmd);
    }
    put(md, "```\n");
}

/* ---- where and when ---- */

typedef struct {
    char device[128], driver[160], commit[48], date[32];
} Machine;

static void first_line(const char *cmd_or_file, int is_cmd, char *buf, size_t n, const char *none) {
    FILE *f = is_cmd ? popen(cmd_or_file, "r") : fopen(cmd_or_file, "r");
    buf[0] = 0;
    if (f && fgets(buf, (int)n, f)) buf[strcspn(buf, "\n")] = 0;
    if (f) is_cmd ? pclose(f) : fclose(f);
    if (!buf[0]) snprintf(buf, n, "%s", none);
}

static Machine machine(const RunResult *rr, int n) {
    Machine m;
    snprintf(m.device, sizeof m.device, "-");
    for (int i = 0; i < n; i++)
        if (rr[i].ok) {
            snprintf(m.device, sizeof m.device, "%s", rr[i].backend);
            break;
        }
    first_line("/proc/driver/nvidia/version", 0, m.driver, sizeof m.driver, "no NVIDIA driver");
    first_line("git rev-parse --short HEAD 2>/dev/null", 1, m.commit, sizeof m.commit, "unknown");
    time_t now = time(NULL);
    strftime(m.date, sizeof m.date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    return m;
}

/* ---- results.json ---- */

static cJSON *values_json(const double *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < n; k++)
        cJSON_AddItemToArray(a, py_json_number(v[k]));
    return a;
}

static cJSON *cell_json(const Bench *b, const Cell *c, const RunResult *rr) {
    cJSON *o = cJSON_CreateObject();
    const char *status = c->no_data ? "no data" : c->n ? "ok" : c->failed ? "failed" : "not run";
    cJSON_AddStringToObject(o, "status", status);
    if (c->why_no_data) cJSON_AddStringToObject(o, "why", c->why_no_data);
    cJSON *keys = cJSON_AddArrayToObject(o, "metrics");
    for (int k = 0; k < c->col.n_keys; k++) cJSON_AddItemToArray(keys, cJSON_CreateString(c->col.keys[k]));
    cJSON_AddNumberToObject(o, "n", c->n);
    int m = c->col.n_keys;
    double diff[2] = {c->mean[0] - c->pub[0], c->mean[1] - c->pub[1]};
    cJSON_AddItemToObject(o, "mean", values_json(c->mean, c->n ? m : 0));
    cJSON_AddItemToObject(o, "std", values_json(c->std, c->n ? m : 0));
    cJSON_AddItemToObject(o, "min", values_json(c->min, c->n ? m : 0));
    cJSON_AddItemToObject(o, "max", values_json(c->max, c->n ? m : 0));
    cJSON_AddItemToObject(o, "published", values_json(c->pub, m));
    cJSON_AddItemToObject(o, "difference", values_json(diff, c->n ? m : 0));
    cJSON *runs = cJSON_AddArrayToObject(o, "runs");
    for (int i = 0; i < b->n_runs; i++) {
        if (b->runs[i].task != c->task) continue;
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "seed", b->runs[i].seed);
        cJSON_AddStringToObject(r, "dir", b->runs[i].dir);
        cJSON_AddBoolToObject(r, "ok", rr[i].ok && !b->runs[i].rc);
        if (rr[i].ok) {
            cJSON_AddItemToObject(r, "best", values_json(rr[i].best, m));
            cJSON_AddNumberToObject(r, "best_step", rr[i].best_step);
            cJSON_AddItemToObject(r, "last", values_json(rr[i].last, m));
            cJSON_AddNumberToObject(r, "last_step", rr[i].last_step);
            cJSON_AddNumberToObject(r, "steps", rr[i].steps);
            cJSON *tm = cJSON_AddObjectToObject(r, "timing_s");
            cJSON_AddNumberToObject(tm, "train", rr[i].train_s);
            cJSON_AddNumberToObject(tm, "eval", rr[i].eval_s);
            cJSON_AddNumberToObject(tm, "checkpoint", rr[i].ckpt_s);
            cJSON_AddNumberToObject(tm, "total", rr[i].total_s);
            cJSON_AddNumberToObject(r, "train_samples_per_s", rr[i].samples_s);
            cJSON_AddNumberToObject(r, "train_tokens_per_s", rr[i].tokens_s);
            cJSON_AddNumberToObject(r, "peak_memory_bytes", rr[i].peak_bytes);
        }
        if (b->runs[i].config[0]) {
            char *cmd = reproduce_run_command(b, &b->runs[i]);
            cJSON_AddStringToObject(r, "command", cmd);
            free(cmd);
        }
        cJSON_AddItemToArray(runs, r);
    }
    return o;
}

static cJSON *read_published(const char *path, const char *model, char *name, size_t n) {
    char *text = NULL;
    Error e;
    cJSON *all = file_exists(path) && read_file(path, &text, NULL, &e) == 0 ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(all, "models");
    cJSON *m = cJSON_DetachItemFromObjectCaseSensitive((cJSON *)models, model ? model : "");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(m, "name");
    snprintf(name, n, "%s", cJSON_IsString(nm) ? nm->valuestring : "no published numbers");
    cJSON_Delete(all);
    return m;
}

static int write_json(const Bench *b, const Cell *cells, const RunResult *rr, const Machine *mc,
                      const char *title, int random, double wall, Error *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "title", title);
    cJSON_AddStringToObject(o, "model", b->opt.model ? b->opt.model : "");
    cJSON_AddBoolToObject(o, "random_init", random);
    cJSON_AddBoolToObject(o, "comparable_to_published", !random);
    cJSON_AddStringToObject(o, "device", mc->device);
    cJSON_AddStringToObject(o, "driver", mc->driver);
    cJSON_AddStringToObject(o, "commit", mc->commit);
    cJSON_AddStringToObject(o, "date", mc->date);
    cJSON_AddNumberToObject(o, "wall_s", wall);
    double runs_total = 0;
    for (int i = 0; i < b->n_runs; i++) runs_total += rr[i].ok ? rr[i].total_s : 0;
    cJSON_AddNumberToObject(o, "runs_total_s", runs_total);
    cJSON *tasks = cJSON_AddObjectToObject(o, "tasks");
    for (int i = 0; i < b->opt.n_tasks; i++)
        cJSON_AddItemToObject(tasks, cells[i].task->name, cell_json(b, &cells[i], rr));
    char *text = cJSON_Print(o), *path = strfmt("%s/results.json", b->opt.out);
    int rc = write_file_atomic(path, text, strlen(text), e);
    free(text), free(path);
    cJSON_Delete(o);
    return rc;
}

static void draw_pictures(const Bench *b, const RunResult *rr) {
    for (int i = 0; i < b->n_runs; i++) {
        const Run1 *r = &b->runs[i];
        if (!rr[i].ok) continue;
        char *svg = strfmt("%s/curves.svg", r->dir), *title = strfmt("%s seed %d", r->task->name, r->seed);
        Error e;
        if (svg_write_run(r->dir, title, r->task->best_key, svg, &e) != 0)
            fprintf(stderr, "warning: %s\n", e.msg);
        free(svg), free(title);
    }
}

int reproduce_write_table(const Bench *b, double wall, Error *e) {
    RunResult *rr = xcalloc(b->n_runs + 1, sizeof *rr);
    int random = b->random_weights; /* planned without weights, or a run says it was */
    for (int i = 0; i < b->n_runs; i++) {
        Column c = column_of(b->runs[i].task);
        rr[i] = read_run(&b->runs[i], &c);
        random |= rr[i].ok && rr[i].random_init;
    }
    char pub_name[64];
    cJSON *pub = read_published(b->opt.published, b->opt.model, pub_name, sizeof pub_name);
    Cell cells[MAX_TASKS];
    for (int i = 0; i < b->opt.n_tasks; i++) cells[i] = make_cell(b, b->opt.tasks[i], rr, pub);
    Machine mc = machine(rr, b->n_runs);
    char *title = random
        ? strfmt("%s from RANDOM initialisation: NOT comparable to the published numbers", b->opt.model)
        : strfmt("%s, finetuned from its pretrained weights", b->opt.model);
    Text md = {0};
    put(&md, "# KoELECTRA benchmark: %s\n\n", title);
    put_table(&md, b, cells, pub_name);
    put(&md, "\nPublished: %s.\n\n## Which evaluation\n\n%s", b->opt.published, EVALUATION_NOTE);
    put_runs(&md, b, rr);
    double runs_total = 0;
    for (int i = 0; i < b->n_runs; i++) runs_total += rr[i].ok ? rr[i].total_s : 0;
    put(&md, "\n## Machine and time\n\n- device: %s\n- driver: %s\n- commit: %s\n- date: %s\n"
             "- wall time of this invocation: %.1f s (%.2f h)\n"
             "- the runs' own times, added up over every invocation: %.1f s (%.2f h)\n",
        mc.device, mc.driver, mc.commit, mc.date, wall, wall / 3600, runs_total,
        runs_total / 3600);
    put_commands(&md, b);
    draw_pictures(b, rr);
    char *path = strfmt("%s/results.md", b->opt.out);
    int rc = make_dirs(b->opt.out, e);
    if (rc == 0) rc = write_file_atomic(path, md.s, md.len, e);
    if (rc == 0) rc = write_json(b, cells, rr, &mc, title, random, wall, e);
    if (rc == 0) fprintf(stderr, "reproduce: wrote %s and %s/results.json\n", path, b->opt.out);
    free(path), free(md.s), free(title), free(rr);
    cJSON_Delete(pub);
    return rc;
}
