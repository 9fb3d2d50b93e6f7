/* host/config: every task config of the benchmark loads with the expected values, the repo
 * copies equal ../shared/reference's, bad values fail naming file and key, overrides work. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/formats/config.h"
#include "test.h"

static const char *TASKS[] = {"nsmc", "kornli", "paws", "korsts", "question-pair",
                              "hate-speech", "naver-ner", "korquad"};
static const char *MODELS[] = {"koelectra-small", "koelectra-small-v2", "koelectra-small-v3",
                               "koelectra-base", "koelectra-base-v2", "koelectra-base-v3",
                               "kobert", "distilkobert", "hanbert", "xlm-roberta"};
#define NT 8
#define NM 10

static char tmpdir[] = "/tmp/koe_test_config_XXXXXX";

static char *write_tmp(const char *name, const char *text) {
    char *path = strfmt("%s/%s", tmpdir, name);
    Error e;
    if (write_file_atomic(path, text, strlen(text), &e)) fprintf(stderr, "%s\n", e.msg);
    return path;
}

/* loads path with stderr captured into *err (heap string) */
static int load_capturing(const char *path, TrainArgs *a, Error *e, char **err) {
    char *log = strfmt("%s/stderr.txt", tmpdir);
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(log, "w");
    dup2(fileno(f), 2);
    int rc = train_args_load(path, a, e);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(f);
    Error re;
    if (read_file(log, err, NULL, &re)) *err = xstrdup("");
    free(log);
    return rc;
}

static void check_all_repo_configs(void) {
    int loaded = 0;
    for (int t = 0; t < NT; t++)
        for (int m = 0; m < NM; m++) {
            char *path = strfmt("configs/%s/%s.json", TASKS[t], MODELS[m]);
            TrainArgs a;
            Error e;
            char *err;
            int rc = load_capturing(path, &a, &e, &err);
            CHECK(rc == 0, "%s", e.msg);
            CHECK(err[0] == 0, "%s: warned: %s", path, err);
            if (rc == 0) {
                loaded++;
                CHECK(!strcmp(a.task, TASKS[t]), "%s: task %s", path, a.task);
                CHECK(!strcmp(a.model_type, MODELS[m]), "%s: model_type %s", path, a.model_type);
                CHECK(a.max_seq_len == (t == 7 ? 512 : 128), "%s: %d", path, a.max_seq_len);
                CHECK(a.do_train && a.do_eval && a.learning_rate > 0, "%s", path);
                /* training_args.json round trip: same keys, same values */
                char *json = train_args_to_json(&a);
                char *copy = write_tmp("copy.json", json);
                TrainArgs b;
                CHECK(train_args_load(copy, &b, &e) == 0, "%s", e.msg);
                CHECK(memcmp(&a, &b, sizeof a) == 0, "%s: differs after to_json + load", path);
                free(json);
                free(copy);
            }
            free(err);
            free(path);
        }
    CHECK(loaded == NT * NM, "%d configs loaded", loaded);
}

static void check_spot_values(void) {
    TrainArgs a;
    Error e;
    CHECK(train_args_load("configs/korquad/koelectra-small-v3.json", &a, &e) == 0, "%s", e.msg);
    CHECK(a.max_seq_len == 512 && a.doc_stride == 128 && a.max_query_length == 64, "qa lens");
    CHECK(a.max_answer_length == 30 && a.n_best_size == 20, "qa answer");
    CHECK(!strcmp(a.predict_file, "KorQuAD_v1.0_dev.json"), "%s", a.predict_file);
    CHECK(a.learning_rate == 5e-5 && a.num_train_epochs == 7 && a.warmup_proportion == 0, "opt");
    CHECK(a.train_batch_size == 32 && a.eval_batch_size == 64, "batch");
    CHECK(a.evaluate_during_training == 1 && a.version_2_with_negative == 0, "qa flags");
    CHECK(!strcmp(a.model_name_or_path, "monologg/koelectra-small-v3-discriminator"), "name");

    CHECK(train_args_load("configs/nsmc/xlm-roberta.json", &a, &e) == 0, "%s", e.msg);
    CHECK(a.learning_rate == 1e-5 && a.warmup_proportion == 0.1, "lr %g wp %g", a.learning_rate,
          a.warmup_proportion);
    CHECK(a.dev_file[0] == 0 && !strcmp(a.test_file, "ratings_test.txt"), "files");
    CHECK(a.evaluate_test_during_training == 1 && a.eval_batch_size == 128, "eval");
    CHECK(a.adam_epsilon == 1e-8 && a.max_grad_norm == 1.0 && a.max_steps == -1, "opt2");
    CHECK(a.logging_steps == 2000 && a.save_steps == 2000 && a.num_train_epochs == 10, "steps");
    CHECK(!strcmp(a.output_dir, "xlm-roberta-nsmc-ckpt") && !strcmp(a.ckpt_dir, "ckpt"), "dirs");

    CHECK(train_args_load("configs/korsts/xlm-roberta.json", &a, &e) == 0, "%s", e.msg);
    CHECK(a.seed == 777 && a.logging_steps == 100, "seed %d", a.seed);
    CHECK(train_args_load("configs/korquad/xlm-roberta.json", &a, &e) == 0, "%s", e.msg);
    CHECK(a.train_batch_size == 4 && a.eval_batch_size == 16, "bs %d", a.train_batch_size);
}

static void check_reference_copies(void) {
    const char *ref = "../shared/reference/configs";
    if (!dir_exists(ref)) {
        printf("note: %s absent, reference comparison skipped\n", ref);
        return;
    }
    for (int t = 0; t < NT; t++)
        for (int m = 0; m < NM; m++) {
            char *p1 = strfmt("%s/%s/%s.json", ref, TASKS[t], MODELS[m]);
            char *p2 = strfmt("configs/%s/%s.json", TASKS[t], MODELS[m]);
            char *d1 = NULL, *d2 = NULL;
            size_t n1 = 0, n2 = 0;
            Error e;
            CHECK(read_file(p1, &d1, &n1, &e) == 0 && read_file(p2, &d2, &n2, &e) == 0, "%s",
                  e.msg);
            CHECK(d1 && d2 && n1 == n2 && !memcmp(d1, d2, n1), "%s differs from %s", p2, p1);
            TrainArgs a;
            CHECK(train_args_load(p1, &a, &e) == 0, "%s", e.msg);
            free(d1);
            free(d2);
            free(p1);
            free(p2);
        }
}

/* a good config with one line replaced: each case must fail naming the file and the key */
static void check_bad_values(void) {
    char *good;
    Error e;
    CHECK(read_file("configs/nsmc/koelectra-small-v3.json", &good, NULL, &e) == 0, "%s", e.msg);
    const struct { const char *from, *to, *want; } cases[] = {
        {"\"train_batch_size\": 32", "\"train_batch_size\": \"32\"",
         "train_batch_size: expected an integer, got a string"},
        {"\"train_batch_size\": 32", "\"train_batch_size\": -8",
         "train_batch_size: must be in [1, 65535]"},
        {"\"train_batch_size\": 32", "\"train_batch_size\": 2.5",
         "train_batch_size: expected an integer"},
        {"\"learning_rate\": 5e-5", "\"learning_rate\": 0", "learning_rate: must be in (0, 1]"},
        {"\"learning_rate\": 5e-5", "\"learning_rate\": \"5e-5\"", "learning_rate: expected a number"},
        {"\"warmup_proportion\": 0", "\"warmup_proportion\": 1.5", "warmup_proportion: must be in [0, 1]"},
        {"\"num_train_epochs\": 10", "\"num_train_epochs\": -1", "num_train_epochs: must be in [0"},
        {"\"gradient_accumulation_steps\": 1", "\"gradient_accumulation_steps\": 0",
         "gradient_accumulation_steps: must be >= 1"},
        {"\"max_seq_len\": 128", "\"max_seq_len\": 2", "max_seq_len: must be in [4, 4096]"},
        {"\"max_seq_len\": 128", "\"max_seq_len\": 5000", "max_seq_len: must be in [4, 4096]"},
        {"\"adam_epsilon\": 1e-8", "\"adam_epsilon\": -1e-8", "adam_epsilon: must be in [0, 1]"},
        {"\"do_train\": true", "\"do_train\": 1", "do_train: expected true or false, got a number"},
        {"\"task\": \"nsmc\"", "\"task\": \"sst2\"", "task: unknown value \"sst2\""},
        {"\"model_type\": \"koelectra-small-v3\"", "\"model_type\": \"gpt2\"",
         "model_type: unknown value \"gpt2\""},
        {"\"task\": \"nsmc\",", "", "task: missing (required)"},
        {"\"max_seq_len\": 128,", "", "max_seq_len: missing (required)"},
        {"\"model_name_or_path\": \"monologg/koelectra-small-v3-discriminator\",", "",
         "model_name_or_path: missing (required)"},
        {"\"max_seq_len\": 128,", "\"max_seq_len\": 128, \"max_seq_length\": 256,",
         "max_seq_length: given together with max_seq_len"},
        {"\"no_cuda\": false", "\"no_cuda\": null", "no_cuda: expected true or false, got null"},
        /* inf would be written to training_args.json as null, which does not load back */
        {"\"max_grad_norm\": 1.0", "\"max_grad_norm\": 1e999",
         "max_grad_norm: must be a finite number (got inf)"},
        {"\"max_grad_norm\": 1.0", "\"null_score_diff_threshold\": -1e999",
         "null_score_diff_threshold: must be a finite number (got -inf)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *at = strstr(good, cases[i].from);
        CHECK(at != NULL, "case %zu: '%s' not in the config", i, cases[i].from);
        if (!at) continue;
        char *text = strfmt("%.*s%s%s", (int)(at - good), good, cases[i].to,
                            at + strlen(cases[i].from));
        char *path = write_tmp("bad.json", text);
        TrainArgs a;
        e.msg[0] = 0;
        CHECK(train_args_load(path, &a, &e) == -1, "case %zu loaded", i);
        CHECK(strncmp(e.msg, path, strlen(path)) == 0, "case %zu: no file name: %s", i, e.msg);
        CHECK(strstr(e.msg, cases[i].want) != NULL, "case %zu: '%s' not in: %s", i,
              cases[i].want, e.msg);
        free(text);
        free(path);
    }
    free(good);
}

static void check_files_and_warnings(void) {
    TrainArgs a;
    Error e;
    char *err;
    /* an unknown key warns once and loads; an ignored key (threads) is silent */
    char *path = write_tmp("unknown.json",
                           "{\"task\": \"paws\", \"model_type\": \"kobert\", \"model_name_or_path\":"
                           " \"monologg/kobert\", \"data_dir\": \"d\", \"ckpt_dir\": \"c\","
                           " \"output_dir\": \"o\", \"train_file\": \"t\", \"max_seq_len\": 64,"
                           " \"num_train_epochs\": 2.5, \"learning_rate\": 3e-5, \"threads\": 8,"
                           " \"train_batch_size\": 16, \"eval_batch_size\": 8, \"fp16\": true}");
    CHECK(load_capturing(path, &a, &e, &err) == 0, "%s", e.msg);
    char *want = strfmt("%s: fp16: unknown, ignored\n", path);
    CHECK(strcmp(err, want) == 0, "warning was: '%s'", err);
    CHECK(a.num_train_epochs == 2.5 && a.max_seq_len == 64 && a.seed == 42, "values/defaults");
    CHECK(a.weight_decay == 0 && a.gradient_accumulation_steps == 1 && a.max_steps == -1, "defaults");
    free(want);
    free(err);
    free(path);
    /* invalid JSON names the file and the line */
    path = write_tmp("broken.json", "{\n  \"task\": \"nsmc\",\n  \"seed\": 42,,\n}\n");
    CHECK(train_args_load(path, &a, &e) == -1, "broken JSON loaded");
    want = strfmt("%s: line 3: invalid JSON", path);
    CHECK(strcmp(e.msg, want) == 0, "got: %s", e.msg);
    free(want);
    free(path);
    path = write_tmp("array.json", "[1, 2]");
    CHECK(train_args_load(path, &a, &e) == -1 && strstr(e.msg, "expected a JSON object"), "%s",
          e.msg);
    free(path);
    CHECK(train_args_load("configs/nsmc/no-such-model.json", &a, &e) == -1, "missing file");
    CHECK(strstr(e.msg, "configs/nsmc/no-such-model.json: cannot open") == e.msg, "%s", e.msg);
}

static void check_overrides(void) {
    TrainArgs a;
    Error e;
    CHECK(train_args_load("configs/korquad/kobert.json", &a, &e) == 0, "%s", e.msg);
    CHECK(train_args_set(&a, "learning_rate", "3e-5", &e) == 0 && a.learning_rate == 3e-5, "lr");
    CHECK(train_args_set(&a, "train_batch_size", "12", &e) == 0 && a.train_batch_size == 12, "bs");
    CHECK(train_args_set(&a, "do_train", "false", &e) == 0 && a.do_train == 0, "bool");
    CHECK(train_args_set(&a, "output_dir", "run1", &e) == 0 && !strcmp(a.output_dir, "run1"), "s");
    CHECK(train_args_set(&a, "max_seq_len", "384", &e) == 0 && a.max_seq_len == 384, "msl");
    CHECK(train_args_set(&a, "max_steps", "100", &e) == 0 && a.max_steps == 100, "steps");
    /* 0.1 + 0.2: cJSON's 15 digits would print 0.3, one ulp off */
    CHECK(train_args_set(&a, "warmup_proportion", "0.30000000000000004", &e) == 0, "%s", e.msg);
    CHECK(train_args_validate(&a, "command line", &e) == 0, "%s", e.msg);
    /* the overridden values survive training_args.json, under korquad's key spelling */
    char *json = train_args_to_json(&a);
    CHECK(strstr(json, "\"max_seq_length\":\t384") && !strstr(json, "\"max_seq_len\""), "%s", json);
    char *path = write_tmp("overridden.json", json);
    TrainArgs b;
    CHECK(train_args_load(path, &b, &e) == 0, "%s", e.msg);
    CHECK(memcmp(&a, &b, sizeof a) == 0, "differs after overrides + to_json + load");
    free(json);
    free(path);
    const struct { const char *key, *value, *want; } bad[] = {
        {"train_batch_size", "abc", "command line: train_batch_size: expected an integer, got \"abc\""},
        {"train_batch_size", "0", "command line: train_batch_size: must be in [1, 65535]"},
        {"eval_batch_size", "2147483647", "command line: eval_batch_size: must be in [1, 65535]"},
        {"learning_rate", "0", "command line: learning_rate: must be in (0, 1]"},
        {"learning_rate", "1e-3x", "command line: learning_rate: expected a number"},
        {"max_grad_norm", "inf", "command line: max_grad_norm: must be a finite number"},
        {"warmup_proportion", "-0.1", "command line: warmup_proportion: must be in [0, 1]"},
        {"do_eval", "yes", "command line: do_eval: expected true or false"},
        {"task", "squad", "command line: task: unknown value"},
        {"fp16", "true", "command line: --fp16: unknown option"},
        {"threads", "4", "command line: --threads: not used by this project"},
        {"version_2_with_negative", "true", "version_2_with_negative: only false is supported"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        TrainArgs before = a;
        e.msg[0] = 0;
        CHECK(train_args_set(&a, bad[i].key, bad[i].value, &e) == -1, "--%s %s", bad[i].key,
              bad[i].value);
        CHECK(strstr(e.msg, bad[i].want) != NULL, "'%s' not in: %s", bad[i].want, e.msg);
        CHECK(memcmp(&before, &a, sizeof a) == 0, "--%s changed the args on error", bad[i].key);
    }
    /* an override can break a rule between keys; validate catches it */
    CHECK(train_args_set(&a, "max_query_length", "400", &e) == 0, "%s", e.msg);
    CHECK(train_args_validate(&a, "command line", &e) == -1 && strstr(e.msg, "max_query_length"),
          "%s", e.msg);
}

int main(void) {
    CHECK(mkdtemp(tmpdir) != NULL, "mkdtemp %s", tmpdir);
    if (test_failures) return test_exit("test_config");
    check_all_repo_configs();
    check_spot_values();
    check_reference_copies();
    check_bad_values();
    check_files_and_warnings();
    check_overrides();
    char *cmd = strfmt("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    free(cmd);
    return test_exit("test_config");
}
