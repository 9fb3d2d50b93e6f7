/* reproduce's options and plan: which runs, where their files go, and every check that can
 * fail before the first training step (configs, data, weights). */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/formats/checkpoint.h"
#include "host/formats/config.h"
#include "host/reproduce/reproduce.h"

/* the table's column order, as the benchmark README */
static const char *const ALL_TASKS[] = {"nsmc",          "naver-ner", "paws",    "kornli",
                                        "korsts",        "question-pair", "korquad", "hate-speech"};

static void print_help(void) {
    fprintf(stderr,
            "usage: reproduce --model MODEL [--tasks all|nsmc,kornli,...] [--seeds 42[,43,...]]\n"
            "                 [--unpadded] [--jobs N] [--devices 0,1] [--out DIR] [--random_init]\n"
            "                 [--config_dir DIR] [--KEY VALUE ...]\n"
            "       reproduce --collect DIR [--model MODEL]   (the table from finished runs)\n"
            "       reproduce --model MODEL --slurm FILE ...  (a Slurm job array, one run each)\n"
            "\n"
            "Runs the benchmark's original config configs/<task>/MODEL.json for every task and\n"
            "seed, as run_seq_cls / run_ner / run_squad do, and writes DIR/results.md and\n"
            "DIR/results.json (default DIR: results/MODEL). Each run's files are in\n"
            "DIR/runs/<task>/seed-<seed>/. Run the same command again to skip finished runs and\n"
            "resume killed ones. --KEY VALUE (e.g. --max_steps 100 --no_cuda true\n"
            "--vocab_file F --model_config F) is passed to every run. MODEL is a config name:\n"
            "koelectra-small-v3, koelectra-base-v3, kobert, distilkobert, xlm-roberta, ...\n"
            "Without pretrained weights it stops, listing where it looked, unless --random_init\n"
            "(the table then says its numbers are NOT comparable to the published ones).\n");
}

/* "a,b,c" -> ints; -1 on a bad list */
static int parse_ints(const char *s, int *out, int max, const char *opt, Error *e) {
    int n = 0;
    for (const char *p = s; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 2147483647L || (*end && *end != ',') || n == max)
            return errorf(e, "reproduce: %s '%s': expected up to %d comma-separated numbers", opt,
                          s, max);
        out[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (n == 0) return errorf(e, "reproduce: %s: empty list", opt);
    return n;
}

static int parse_tasks(Options *o, const char *s, Error *e) {
    o->n_tasks = 0;
    if (!strcmp(s, "all")) {
        for (int i = 0; i < MAX_TASKS; i++) o->tasks[o->n_tasks++] = task_find(ALL_TASKS[i]);
        return 0;
    }
    char *copy = xstrdup(s), *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
        const TaskInfo *ti = task_find(t);
        if (!ti) rc = errorf(e, "reproduce: --tasks: unknown task '%s' (tasks: nsmc, naver-ner, "
                             "paws, kornli, korsts, question-pair, korquad, hate-speech)", t);
        else if (o->n_tasks == MAX_TASKS) rc = errorf(e, "reproduce: --tasks: too many tasks");
        else o->tasks[o->n_tasks++] = ti;
    }
    free(copy);
    return rc;
}

/* options of reproduce itself; 0 when argv[i] was one (and *i moved past its value) */
static int own_option(Options *o, int argc, char **argv, int *i, Error *e) {
    const char *k = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!strcmp(k, "--unpadded")) return o->unpadded = 1, 0;
    if (!strcmp(k, "--random_init")) return o->random_init = 1, 0;
    static const char *const with_value[] = {"--model", "--tasks", "--seeds", "--jobs", "--devices",
                                             "--out", "--config_dir", "--published", "--slurm",
                                             "--collect", "--only", NULL};
    int known = 0;
    for (int j = 0; with_value[j]; j++) known |= !strcmp(k, with_value[j]);
    if (!known) return 1;
    if (!v) return errorf(e, "reproduce: %s needs a value", k);
    ++*i;
    if (!strcmp(k, "--model")) o->model = v;
    else if (!strcmp(k, "--tasks")) return parse_tasks(o, v, e);
    else if (!strcmp(k, "--seeds")) return (o->n_seeds = parse_ints(v, o->seeds, MAX_SEEDS, k, e)) < 0 ? -1 : 0;
    else if (!strcmp(k, "--devices")) return (o->n_devices = parse_ints(v, o->devices, MAX_DEVICES, k, e)) < 0 ? -1 : 0;
    else if (!strcmp(k, "--jobs")) {
        int n[1];
        if (parse_ints(v, n, 1, k, e) < 0) return -1;
        if (n[0] < 1 || n[0] > 64) return errorf(e, "reproduce: --jobs %s: expected 1 to 64", v);
        o->jobs = n[0];
    } else if (!strcmp(k, "--only")) {
        int n[1];
        if (parse_ints(v, n, 1, k, e) < 0) return -1;
        o->only = n[0];
    } else if (!strcmp(k, "--out")) o->out = v;
    else if (!strcmp(k, "--config_dir")) o->config_dir = v;
    else if (!strcmp(k, "--published")) o->published = v;
    else if (!strcmp(k, "--slurm")) o->slurm = v;
    else if (!strcmp(k, "--collect")) o->collect = 1, o->out = v;
    return 0;
}

int reproduce_parse(Options *o, int argc, char **argv, Error *e) {
    memset(o, 0, sizeof *o);
    o->config_dir = "configs";
    o->jobs = 1;
    o->only = -1;
    o->self = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) return print_help(), 1;
        int rc = own_option(o, argc, argv, &i, e);
        if (rc < 0) return -1;
        if (rc == 0) continue;
        if (strncmp(k, "--", 2) != 0) return errorf(e, "reproduce: unexpected argument '%s'", k);
        if (!strcmp(k, "--task") || !strcmp(k, "--config_file") || !strcmp(k, "--seed") ||
            !strcmp(k, "--output_dir") || !strcmp(k, "--ckpt_dir") ||
            !strcmp(k, "--resume_from_checkpoint"))
            return errorf(e, "reproduce: %s is set per run by reproduce (see --help)", k);
        int flag = !strcmp(k, "--pad_to_max_length");
        if (!flag && i + 1 >= argc) return errorf(e, "reproduce: %s needs a value", k);
        if (o->n_pass + 2 > MAX_PASSTHROUGH) return errorf(e, "reproduce: too many options");
        o->pass[o->n_pass++] = k;
        if (!flag) o->pass[o->n_pass++] = argv[++i];
        if (!strcmp(k, "--no_cuda")) o->no_cuda = !strcmp(argv[i], "true") || !strcmp(argv[i], "1");
    }
    if (!o->model && !o->collect) return errorf(e, "reproduce: --model is required (see --help)");
    if (!o->n_tasks) parse_tasks(o, "all", e);
    if (!o->n_seeds) o->seeds[o->n_seeds++] = 42;
    if (!o->out) o->out = strfmt("results/%s", o->model); /* lives as long as the process */
    if (!o->published) o->published = strfmt("%s/published.json", o->config_dir);
    return 0;
}

/* data_dir/task/file, else $KOELECTRA_DATA_DIR/task/file (as the task programs look) */
static char *find_data(const TrainArgs *a, const TaskInfo *t, const char *file, char **looked) {
    char *p = strfmt("%s/%s/%s", a->data_dir, t->name, file);
    const char *env = getenv("KOELECTRA_DATA_DIR");
    if (file_exists(p)) return p;
    *looked = env ? strfmt("%s or %s/%s/%s", p, env, t->name, file) : xstrdup(p);
    free(p);
    if (env) {
        p = strfmt("%s/%s/%s", env, t->name, file);
        if (file_exists(p)) return free(*looked), *looked = NULL, p;
        free(p);
    }
    return NULL;
}

/* training examples in a task file: KorQuAD's questions, else its lines less the header */
static long count_examples(const char *path, const TaskInfo *t) {
    char *text = NULL;
    size_t len = 0;
    Error e;
    if (read_file(path, &text, &len, &e) != 0) return 0;
    long n = 0;
    if (t->kind == TASK_QA)
        for (char *p = text; (p = strstr(p, "\"question\"")); p++) n++;
    else
        for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    if (t->kind != TASK_QA && t->kind != TASK_NER && n > 0) n--; /* the header */
    free(text);
    return n;
}

/* the optimizer steps the run will take (QA windows counted as one feature per question: an
 * estimate). As the original, a run with max_steps ends once global_step > max_steps. */
static int planned_steps(const TrainArgs *a, const TaskInfo *t, long examples) {
    if (a->max_steps > 0) return a->max_steps + (t->kind != TASK_QA); /* run_squad starts at 1 */
    long batches = (examples + a->train_batch_size - 1) / a->train_batch_size;
    return (int)(batches / a->gradient_accumulation_steps * a->num_train_epochs);
}

/* the files the run reads; sets r->no_data for the first missing one, and r->steps */
static void check_data(Run1 *r, const TrainArgs *a) {
    const char *eval = r->task->kind == TASK_QA ? a->predict_file : a->test_file;
    const char *files[2] = {a->do_train ? a->train_file : "", a->do_eval ? eval : ""};
    for (int i = 0; i < 2 && !r->no_data; i++) {
        if (!files[i][0]) continue;
        char *looked = NULL, *p = find_data(a, r->task, files[i], &looked);
        if (!p) r->no_data = strfmt("no data: %s not found (looked for %s)", files[i], looked);
        if (p && i == 0) r->steps = planned_steps(a, r->task, count_examples(p, r->task));
        free(p), free(looked);
    }
    r->step_cost = (double)a->train_batch_size * a->gradient_accumulation_steps * a->max_seq_len;
}

/* the newest checkpoint-N of dir that a resume can use, or NULL */
static char *resumable_checkpoint(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return NULL;
    int best = -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        int step;
        char rest;
        if (sscanf(de->d_name, "checkpoint-%d%c", &step, &rest) != 1 || step <= best) continue;
        char *state = strfmt("%s/%s/trainer_state.json", dir, de->d_name);
        char *moments = strfmt("%s/%s/optimizer.safetensors", dir, de->d_name);
        if (file_exists(state) && file_exists(moments)) best = step;
        free(state), free(moments);
    }
    closedir(d);
    return best >= 0 ? strfmt("%s/checkpoint-%d", dir, best) : NULL;
}

/* a run is finished when its results.json was written (the programs write it last) */
static int run_finished(const char *dir) {
    char *p = strfmt("%s/results.json", dir);
    int done = file_exists(p);
    free(p);
    return done;
}

/* the task's config with every --KEY VALUE applied (those the task programs read alone,
 * like --vocab_file, are theirs to check) */
static int load_config(const Options *o, const char *path, TrainArgs *a, Error *e) {
    if (train_args_load(path, a, e) != 0) return -1;
    for (int i = 0; i + 1 < o->n_pass; i += 2) {
        const char *k = o->pass[i] + 2;
        if (!strcmp(k, "pad_to_max_length")) { i--; continue; }
        if (!strcmp(k, "vocab_file") || !strcmp(k, "model_config")) continue;
        if (train_args_set(a, k, o->pass[i + 1], e) != 0) return -1;
    }
    return 0;
}

/* appends "name (where it looked)" to *missing when the model has no weights */
static void check_weights(const TrainArgs *a, char **missing) {
    Error miss;
    char *dir = hf_resolve_model(a->model_name_or_path, &miss);
    char *weights = dir ? hf_weights_file(dir) : NULL;
    if (!weights) {
        char *why = dir ? strfmt("%s: no model.safetensors or pytorch_model.bin in %s",
                                 a->model_name_or_path, dir) : xstrdup(miss.msg);
        if (!*missing || !strstr(*missing, why)) {
            char *all = *missing ? strfmt("%s; %s", *missing, why) : xstrdup(why);
            free(*missing);
            *missing = all;
        }
        free(why);
    }
    free(dir), free(weights);
}

static void add_run(Bench *b, const TaskInfo *t, int seed, const char *config) {
    b->runs = xrealloc(b->runs, (b->n_runs + 1) * sizeof *b->runs);
    Run1 *r = &b->runs[b->n_runs++];
    memset(r, 0, sizeof *r);
    r->task = t;
    r->seed = seed;
    r->config = xstrdup(config);
    r->dir = strfmt("%s/runs/%s/seed-%d", b->opt.out, t->name, seed);
}

/* one task's runs (one per seed), with their data, resume and weights checks */
static int plan_task(Bench *b, const TaskInfo *t, char **missing_weights, Error *e) {
    const Options *o = &b->opt;
    char *config = strfmt("%s/%s/%s.json", o->config_dir, t->name, o->model);
    TrainArgs a;
    int rc = file_exists(config) ? load_config(o, config, &a, e)
                                 : errorf(e, "%s: no such config (--model %s, task %s)", config,
                                          o->model, t->name);
    for (int s = 0; s < o->n_seeds && rc == 0; s++) {
        add_run(b, t, o->seeds[s], config);
        Run1 *r = &b->runs[b->n_runs - 1];
        check_data(r, &a);
        r->resume = r->no_data ? NULL : resumable_checkpoint(r->dir);
        r->state = r->no_data ? RUN_NO_DATA : run_finished(r->dir) ? RUN_DONE
                   : r->resume ? RUN_RESUME : RUN_TODO;
    }
    if (rc == 0 && a.do_train) check_weights(&a, missing_weights);
    free(config);
    return rc;
}

int reproduce_plan(Bench *b, Error *e) {
    char *missing = NULL;
    int rc = 0;
    for (int i = 0; i < b->opt.n_tasks && rc == 0; i++)
        rc = plan_task(b, b->opt.tasks[i], &missing, e);
    b->random_weights = missing != NULL;
    if (rc == 0 && missing && !b->opt.random_init)
        rc = errorf(e, "reproduce: no pretrained weights (%s). Put the models in the HF cache or "
                    "pass --model_name_or_path DIR; --random_init trains from random weights "
                    "(numbers NOT comparable to the published ones)", missing);
    free(missing);
    if (rc == 0 && b->opt.only >= b->n_runs)
        rc = errorf(e, "reproduce: --only %d: there are %d runs", b->opt.only, b->n_runs);
    return rc;
}

/* the benchmark model_type the collected runs were made with, when --model is not given */
static int model_of_runs(Bench *b, Error *e) {
    for (int i = 0; i < b->n_runs && !b->opt.model; i++) {
        char *path = strfmt("%s/results.json", b->runs[i].dir), *text = NULL;
        Error ignored;
        cJSON *o = file_exists(path) && read_file(path, &text, NULL, &ignored) == 0 ? cJSON_Parse(text) : NULL;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "model_type");
        if (cJSON_IsString(m)) b->opt.model = xstrdup(m->valuestring); /* lives as the process */
        cJSON_Delete(o);
        free(path), free(text);
    }
    return b->opt.model ? 0 : errorf(e, "%s: no finished run says its model; give --model", b->opt.out);
}

/* --collect: the runs are the folders DIR/runs/<task>/seed-<N>, whatever machines made them */
int reproduce_plan_collected(Bench *b, Error *e) {
    for (int i = 0; i < b->opt.n_tasks; i++) {
        const TaskInfo *t = b->opt.tasks[i];
        char *tdir = strfmt("%s/runs/%s", b->opt.out, t->name);
        DIR *d = opendir(tdir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            int seed;
            char rest;
            if (sscanf(de->d_name, "seed-%d%c", &seed, &rest) != 1) continue;
            add_run(b, t, seed, "");
            Run1 *r = &b->runs[b->n_runs - 1];
            r->state = run_finished(r->dir) ? RUN_DONE : RUN_TODO;
        }
        if (d) closedir(d);
        free(tdir);
    }
    if (b->n_runs == 0) return errorf(e, "%s/runs: no runs to collect", b->opt.out);
    return b->opt.model ? 0 : model_of_runs(b, e);
}

static const char *program_of(const TaskInfo *t) {
    return t->kind == TASK_NER ? "run_ner" : t->kind == TASK_QA ? "run_squad" : "run_seq_cls";
}

/* argv of the task program for run r (NULL-terminated heap strings) */
char **reproduce_run_argv(const Bench *b, const Run1 *r, int *argc) {
    const Options *o = &b->opt;
    char **v = xcalloc(16 + o->n_pass, sizeof(char *));
    int n = 0;
    v[n++] = xstrdup(program_of(r->task));
    v[n++] = xstrdup("--task"), v[n++] = xstrdup(r->task->name);
    v[n++] = xstrdup("--config_file"), v[n++] = xstrdup(r->config);
    v[n++] = xstrdup("--seed"), v[n++] = strfmt("%d", r->seed);
    v[n++] = xstrdup("--ckpt_dir"), v[n++] = strfmt("%s/runs/%s", o->out, r->task->name);
    v[n++] = xstrdup("--output_dir"), v[n++] = strfmt("seed-%d", r->seed);
    if (o->unpadded && r->task->kind != TASK_QA) v[n++] = xstrdup("--unpadded");
    if (r->resume) v[n++] = xstrdup("--resume_from_checkpoint"), v[n++] = xstrdup(r->resume);
    for (int i = 0; i < o->n_pass; i++) v[n++] = xstrdup(o->pass[i]);
    *argc = n;
    return v;
}

void reproduce_free_argv(char **v) {
    for (int i = 0; v && v[i]; i++) free(v[i]);
    free(v);
}

/* the shell command that reruns r with the task's own program (resume left out) */
char *reproduce_run_command(const Bench *b, const Run1 *r) {
    Run1 fresh = *r;
    fresh.resume = NULL;
    int argc;
    char **v = reproduce_run_argv(b, &fresh, &argc);
    char *cmd = strfmt("./build/%s", v[0]);
    for (int i = 1; i < argc; i++) {
        int plain = strspn(v[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                 "-_./=,:+") == strlen(v[i]) && v[i][0];
        char *next = plain ? strfmt("%s %s", cmd, v[i]) : strfmt("%s '%s'", cmd, v[i]);
        free(cmd);
        cmd = next;
    }
    reproduce_free_argv(v);
    return cmd;
}

void reproduce_free(Bench *b) {
    for (int i = 0; i < b->n_runs; i++) {
        Run1 *r = &b->runs[i];
        free(r->config), free(r->dir), free(r->no_data), free(r->resume);
    }
    free(b->runs);
}

void reproduce_say_plan(const Bench *b) {
    int todo = 0, resume = 0, done = 0, no_data = 0;
    for (int i = 0; i < b->n_runs; i++) {
        RunState s = b->runs[i].state;
        todo += s == RUN_TODO, resume += s == RUN_RESUME, done += s == RUN_DONE;
        no_data += s == RUN_NO_DATA;
    }
    if (b->opt.collect) {
        fprintf(stderr, "reproduce: collecting %d runs of %s from %s (%d finished)\n", b->n_runs,
                b->opt.model, b->opt.out, done);
        return;
    }
    fprintf(stderr, "reproduce: %s, %d tasks x %d seeds = %d runs: %d to run, %d to resume, %d "
            "finished, %d without data; %d at a time; results in %s\n",
            b->opt.model ? b->opt.model : "(collected)", b->opt.n_tasks, b->opt.n_seeds, b->n_runs,
            todo, resume, done, no_data, b->opt.jobs, b->opt.out);
    for (int i = 0; i < b->n_runs; i++)
        if (b->runs[i].state == RUN_NO_DATA && b->runs[i].seed == b->opt.seeds[0])
            fprintf(stderr, "  %s: %s\n", b->runs[i].task->name, b->runs[i].no_data);
    if (b->random_weights)
        fprintf(stderr, "reproduce: no pretrained weights, --random_init: training from RANDOM "
                "weights; the table will say its numbers are NOT comparable to the published ones\n");
}
