/* Predictions out: every program writes the test split's predictions beside its metrics
 * (run_seq_cls test/predictions-N.tsv, run_ner test/predictions-N.txt, run_squad
 * predictions_N.json and nbest_predictions_N.json). Read back and rescored with the project's
 * metric functions, each gives exactly (to the bit) the metrics the program wrote to
 * test/test-N.txt. Tiny model on the CPU, a few steps per program. */
#include <dirent.h>

#include "e2e/e2e.h"
#include "host/tasks/metrics.h"

/* the value of "  key = value" in an eval file into *v; 0 when the key is absent */
static int eval_value(const char *path, const char *key, double *v) {
    char *text;
    if (read_file(path, &text, NULL, &(Error){{0}}) != 0) return 0;
    char *all = strfmt("\n%s", text), *want = strfmt("\n  %s = ", key), *p = strstr(all, want);
    if (p) *v = strtod(p + strlen(want), NULL);
    free(want), free(all), free(text);
    return p != NULL;
}

/* every rescored metric equals the one the program wrote (a NaN, as Python's nan) */
static void check_same(const Metrics *m, const char *eval_file) {
    CHECK(m->n > 0, "%s: nothing rescored", eval_file);
    for (int k = 0; k < m->n; k++) {
        double want = NAN, got = m->values[k];
        int found = eval_value(eval_file, m->keys[k], &want);
        CHECK(found && (got == want || (isnan(got) && isnan(want))),
              "%s: %s rescored %.17g, reported %.17g", eval_file, m->keys[k], got, want);
    }
}

/* the steps N of dir/test/test-N.txt */
static int eval_steps(const char *out, int *steps, int cap) {
    char *dir = strfmt("%s/test", out);
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *ent; d && (ent = readdir(d)) && n < cap;)
        if (sscanf(ent->d_name, "test-%d.txt", &steps[n]) == 1) n++;
    if (d) closedir(d);
    free(dir);
    return n;
}

static char *run(const E2E *x, const char *program, const char *task) {
    char *ckpt = strfmt("%s/ckpt", x->root), *err = strfmt("%s/%s.err", x->root, task);
    int qa = !strcmp(task, "korquad");
    char *argv[] = {(char *)program, "--task", (char *)task, "--config_file",
                    "koelectra-small-v3.json", "--data_dir", (char *)x->data, "--ckpt_dir", ckpt,
                    "--model_config", (char *)x->config, "--vocab_file", (char *)x->vocab,
                    "--no_cuda", "true", "--max_steps", "3", "--logging_steps", "2",
                    "--save_steps", "2", "--train_batch_size", "4",
                    qa ? "--max_seq_length" : "--max_seq_len", qa ? "96" : "64",
                    qa ? "--max_query_length" : NULL, "24", "--doc_stride", "32", NULL};
    int code = e2e_wait(e2e_spawn(argv, err));
    CHECK(code == 0, "%s --task %s: exit %d (see %s)", program, task, code, err);
    char *out = strfmt("%s/koelectra-small-v3-%s-ckpt", ckpt, task);
    free(ckpt), free(err);
    return out;
}

/* predictions-N.tsv: row, gold, predicted[, probabilities] */
static void rescore_seq_cls(const char *task, const char *pred_file, const char *eval_file) {
    const TaskInfo *t = task_find(task);
    FILE *f = fopen(pred_file, "r");
    CHECK(f != NULL, "%s missing", pred_file);
    if (!f) return;
    char line[4096];
    int n = 0, cap = 0, *gold = NULL, *pred = NULL, bad = 0;
    double *gold_s = NULL, *pred_s = NULL;
    CHECK(fgets(line, sizeof line, f) && !strncmp(line, "row\tgold\tpredicted", 18), "%s: header",
          pred_file);
    while (fgets(line, sizeof line, f)) {
        if (n == cap) {
            cap = 2 * cap + 16;
            gold = xrealloc(gold, cap * sizeof *gold), pred = xrealloc(pred, cap * sizeof *pred);
            gold_s = xrealloc(gold_s, cap * sizeof *gold_s);
            pred_s = xrealloc(pred_s, cap * sizeof *pred_s);
        }
        line[strcspn(line, "\n")] = 0;
        char *save, *row = strtok_r(line, "\t", &save), *g = strtok_r(NULL, "\t", &save),
                    *p = strtok_r(NULL, "\t", &save);
        if (!row || !g || !p) break;
        if (t->kind == TASK_REGRESSION) {
            gold_s[n] = strtod(g, NULL), pred_s[n] = strtod(p, NULL);
        } else {
            gold[n] = task_label_id(t, g), pred[n] = task_label_id(t, p);
            double sum = 0, best = -1;
            int arg = -1;
            for (int k = 0; k < t->num_labels; k++) { /* the probabilities agree with it */
                char *v = strtok_r(NULL, "\t", &save);
                double x = v ? strtod(v, NULL) : NAN;
                sum += x;
                if (x > best) best = x, arg = k;
            }
            bad += fabs(sum - 1) > 1e-9 || arg != pred[n] || gold[n] < 0;
        }
        n++;
    }
    fclose(f);
    CHECK(n > 0 && bad == 0, "%s: %d rows, %d bad", pred_file, n, bad);
    Metrics m;
    if (t->kind == TASK_REGRESSION) task_metrics_regression(gold_s, pred_s, n, &m);
    else task_metrics_classification(t, gold, pred, n, &m);
    check_same(&m, eval_file);
    free(gold), free(pred), free(gold_s), free(pred_s);
}

/* predictions-N.txt: "word gold predicted" lines, a blank line after each sentence */
static void rescore_ner(const char *pred_file, const char *eval_file) {
    FILE *f = fopen(pred_file, "r");
    CHECK(f != NULL, "%s missing", pred_file);
    if (!f) return;
    char line[1024], w[512], g[64], p[64];
    int n_tags = 0, n_seqs = 0, cap = 0, *lens = xcalloc(1024, sizeof *lens), bad = 0;
    char **gold = NULL, **pred = NULL;
    while (fgets(line, sizeof line, f) && n_seqs < 1024) {
        if (line[0] == '\n') {
            n_seqs++;
            continue;
        }
        if (n_tags == cap) {
            cap = 2 * cap + 64;
            gold = xrealloc(gold, cap * sizeof *gold), pred = xrealloc(pred, cap * sizeof *pred);
        }
        bad += sscanf(line, "%511s %63s %63s", w, g, p) != 3;
        gold[n_tags] = xstrdup(g), pred[n_tags++] = xstrdup(p);
        lens[n_seqs]++;
    }
    fclose(f);
    CHECK(n_seqs > 0 && n_tags > 0 && bad == 0, "%s: %d sentences, %d tags, %d bad lines", pred_file,
          n_seqs, n_tags, bad);
    Metrics m;
    task_metrics_ner((const char *const *)gold, (const char *const *)pred, lens, n_seqs, &m);
    check_same(&m, eval_file);
    for (int i = 0; i < n_tags; i++) free(gold[i]), free(pred[i]);
    free(gold), free(pred), free(lens);
}

/* nbest_predictions_N.json: per question a list, best first, whose first text is the
 * prediction; probabilities sum to 1 and fall with start + end logit */
static void check_nbest(const char *path, const cJSON *preds) {
    char *text = NULL;
    CHECK(read_file(path, &text, NULL, &(Error){{0}}) == 0, "%s missing", path);
    cJSON *nb = text ? cJSON_Parse(text) : NULL, *q;
    int bad = 0, n = 0;
    cJSON_ArrayForEach(q, nb) {
        const cJSON *first = cJSON_GetArrayItem(q, 0), *e;
        const cJSON *want = cJSON_GetObjectItem(preds, q->string);
        double sum = 0, last = INFINITY;
        bad += !first || !cJSON_IsString(want) ||
               strcmp(cJSON_GetObjectItem(first, "text")->valuestring, want->valuestring);
        cJSON_ArrayForEach(e, q) {
            double s = cJSON_GetObjectItem(e, "start_logit")->valuedouble +
                       cJSON_GetObjectItem(e, "end_logit")->valuedouble;
            sum += cJSON_GetObjectItem(e, "probability")->valuedouble;
            bad += s > last;
            last = s;
        }
        bad += fabs(sum - 1) > 1e-9;
        n++;
    }
    CHECK(n > 0 && n == cJSON_GetArraySize(preds) && bad == 0, "%s: %d questions, %d bad", path, n,
          bad);
    cJSON_Delete(nb);
    free(text);
}

/* predictions_N.json against the gold answers of the predict_file */
static void rescore_squad(const char *out, const char *dev_file, int step, const char *eval_file) {
    char *path = strfmt("%s/predictions_%d.json", out, step), *text = NULL;
    CHECK(read_file(path, &text, NULL, &(Error){{0}}) == 0, "%s missing", path);
    cJSON *preds = text ? cJSON_Parse(text) : NULL;
    QaExampleSet set;
    Error e;
    CHECK(read_qa_examples(dev_file, &set, &e) == 0, "%s", e.msg);
    QaPrediction *qs = xcalloc(set.n + 1, sizeof *qs);
    for (int i = 0; i < set.n; i++) {
        const cJSON *p = cJSON_GetObjectItem(preds, set.items[i].id);
        qs[i] = (QaPrediction){set.items[i].answer_texts, set.items[i].n_answers,
                               cJSON_IsString(p) ? p->valuestring : NULL};
    }
    Metrics m;
    task_metrics_qa(qs, set.n, &m);
    CHECK(m.n == 12 && metrics_get(&m, "total") == set.n, "%s: %d keys", path, m.n);
    check_same(&m, eval_file);
    char *nbest = strfmt("%s/nbest_predictions_%d.json", out, step);
    check_nbest(nbest, preds);
    free(qs), free(path), free(text), free(nbest);
    free_qa_examples(&set);
    cJSON_Delete(preds);
}

static void check_program(const E2E *x, const char *program, const char *task) {
    char *out = run(x, program, task);
    int steps[16], n = eval_steps(out, steps, 16);
    CHECK(n > 0, "%s: no test/test-N.txt in %s", task, out);
    for (int i = 0; i < n; i++) {
        char *eval = strfmt("%s/test/test-%d.txt", out, steps[i]);
        char *tsv = strfmt("%s/test/predictions-%d.tsv", out, steps[i]);
        char *txt = strfmt("%s/test/predictions-%d.txt", out, steps[i]);
        char *dev = strfmt("%s/korquad/KorQuAD_v1.0_dev.json", x->data);
        if (!strcmp(program, "run_seq_cls")) rescore_seq_cls(task, tsv, eval);
        else if (!strcmp(program, "run_ner")) rescore_ner(txt, eval);
        else rescore_squad(out, dev, steps[i], eval);
        free(eval), free(tsv), free(txt), free(dev);
    }
    free(out);
}

int main(void) {
    E2E x;
    e2e_init(&x, "predictions");
    e2e_task_data(&x, "kornli", 40);
    e2e_task_data(&x, "korsts", 40);
    e2e_task_data(&x, "naver-ner", 40);
    e2e_data_file(&x, "korquad", "KorQuAD_v1.0_train.json", 0);
    e2e_data_file(&x, "korquad", "KorQuAD_v1.0_dev.json", 0);
    check_program(&x, "run_seq_cls", "kornli");
    check_program(&x, "run_seq_cls", "korsts");
    check_program(&x, "run_ner", "naver-ner");
    check_program(&x, "run_squad", "korquad");
    return test_exit("test_predictions");
}
