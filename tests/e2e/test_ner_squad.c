/* run_ner and run_squad end to end on tiny data: train with evaluation and checkpoints during
 * training, evaluate at the end, and write the files the originals write (test/test-N.txt,
 * eval_results.txt; run_squad's predictions_<step>.json), with run_squad.py's step numbering
 * (global_step starts at 1: 3 updates end at step 4). */
#include "e2e/e2e.h"

/* the value of "key = value" in a results file, NAN when absent */
static double result_value(const char *path, const char *key) {
    char *text;
    if (read_file(path, &text, NULL, &(Error){{0}}) != 0) return NAN;
    char *want = strfmt("%s = ", key), *p = strstr(text, want);
    while (p && p != text && p[-1] != '\n' && p[-1] != ' ') p = strstr(p + 1, want); /* a whole key */
    double v = p ? strtod(p + strlen(want), NULL) : NAN;
    free(want), free(text);
    return v;
}

static void check_ner(const E2E *x) {
    char *ckpt = strfmt("%s/ckpt", x->root), *err = strfmt("%s/ner.err", x->root);
    int code = e2e_run(err, "run_ner", "--task", "naver-ner", "--config_file", "koelectra-small-v3.json",
                       "--data_dir", x->data, "--ckpt_dir", ckpt, "--model_config", x->config,
                       "--vocab_file", x->vocab, "--no_cuda", "true", "--max_steps", "3",
                       "--logging_steps", "2", "--save_steps", "2", "--train_batch_size", "4",
                       "--max_seq_len", "32", NULL);
    CHECK(code == 0, "run_ner exit %d (see %s)", code, err);
    char *out = strfmt("%s/koelectra-small-v3-naver-ner-ckpt", ckpt);
    /* seq-cls numbering: max_steps 3 runs 4 updates; checkpoints 2 and 4 */
    for (int step = 2; step <= 4; step += 2) {
        char *t = strfmt("%s/test/test-%d.txt", out, step), *w = strfmt("%s/checkpoint-%d/model.safetensors", out, step);
        CHECK(file_exists(w), "%s missing", w);
        const char *keys[] = {"f1", "loss", "precision", "recall"};
        for (int k = 0; k < 4; k++) {
            double v = result_value(t, keys[k]);
            CHECK(isfinite(v) && v >= 0 && (k == 1 || v <= 1), "%s: %s = %g", t, keys[k], v);
        }
        free(t), free(w);
    }
    char *res = strfmt("%s/eval_results.txt", out);
    CHECK(isfinite(result_value(res, "f1_4")) && isfinite(result_value(res, "loss_2")),
          "%s lacks f1_4 / loss_2", res);
    CHECK(result_value(res, "loss_2") > 0.5, "an eval loss of %g for 29 random-ish labels", result_value(res, "loss_2"));
    free(ckpt), free(err), free(out), free(res);
}

static void check_squad(const E2E *x) {
    char *ckpt = strfmt("%s/ckpt", x->root), *err = strfmt("%s/squad.err", x->root);
    int code = e2e_run(err, "run_squad", "--task", "korquad", "--config_file", "koelectra-small-v3.json",
                       "--data_dir", x->data, "--ckpt_dir", ckpt, "--model_config", x->config,
                       "--vocab_file", x->vocab, "--no_cuda", "true", "--max_steps", "3",
                       "--logging_steps", "2", "--save_steps", "2", "--train_batch_size", "2",
                       "--max_seq_length", "96", "--max_query_length", "24", "--doc_stride", "32",
                       NULL);
    CHECK(code == 0, "run_squad exit %d (see %s)", code, err);
    char *out = strfmt("%s/koelectra-small-v3-korquad-ckpt", ckpt);
    char *src = strfmt("%s/korquad/KorQuAD_v1.0_dev.json", x->data), *text = NULL;
    CHECK(read_file(src, &text, NULL, &(Error){{0}}) == 0, "%s", src);
    cJSON *dev = cJSON_Parse(text);
    cJSON *qas = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(dev, "data"), 0), "paragraphs"), 0), "qas");
    int n_q = cJSON_GetArraySize(qas);
    for (int step = 2; step <= 4; step += 2) {
        char *w = strfmt("%s/checkpoint-%d/model.safetensors", out, step);
        char *p = strfmt("%s/predictions_%d.json", out, step), *ptext = NULL;
        CHECK(file_exists(w), "%s missing", w);
        CHECK(read_file(p, &ptext, NULL, &(Error){{0}}) == 0, "%s missing", p);
        cJSON *pred = ptext ? cJSON_Parse(ptext) : NULL;
        CHECK(cJSON_IsObject(pred) && cJSON_GetArraySize(pred) == n_q,
              "%s: not an object of %d predictions", p, n_q);
        for (int i = 0; i < n_q; i++) {
            const char *id = cJSON_GetObjectItem(cJSON_GetArrayItem(qas, i), "id")->valuestring;
            CHECK(cJSON_IsString(cJSON_GetObjectItem(pred, id)), "%s: no prediction for %s", p, id);
        }
        cJSON_Delete(pred);
        free(w), free(p), free(ptext);
    }
    CHECK(!file_exists(strfmt("%s/checkpoint-3/model.safetensors", out)), "a checkpoint-3 was written");
    char *res = strfmt("%s/eval_results.txt", out);
    const char *keys[] = {"exact_4", "f1_4", "official_exact_match_4", "official_f1_4", "official_f1_2"};
    for (int k = 0; k < 5; k++) {
        double v = result_value(res, keys[k]);
        CHECK(isfinite(v) && v >= 0 && v <= 100, "%s: %s = %g", res, keys[k], v);
    }
    cJSON_Delete(dev);
    free(ckpt), free(err), free(out), free(src), free(text), free(res);
}

int main(void) {
    E2E x;
    e2e_init(&x, "ner_squad");
    e2e_task_data(&x, "naver-ner", 24);
    e2e_data_file(&x, "korquad", "KorQuAD_v1.0_train.json", 0);
    e2e_data_file(&x, "korquad", "KorQuAD_v1.0_dev.json", 0);
    check_ner(&x);
    check_squad(&x);
    return test_exit("test_ner_squad");
}
