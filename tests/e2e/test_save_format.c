/* Checkpoints the original's users can load:
 * - --save_format bin writes pytorch_model.bin only, both writes both with the same tensors;
 * - evaluation finds checkpoint-N with either file (eval_all_checkpoints scores every one;
 *   an evaluation-only run over a folder of pytorch_model.bin checkpoints, as the original
 *   writes them, no longer finds none), and the scores do not depend on the format;
 * - a resume from a pytorch_model.bin checkpoint ends bitwise as the uninterrupted run;
 * - config.json names the finetuned class and the task's labels ("0"/"1", the NLI and NER
 *   tags; korsts keeps the input config's id2label, else HF's LABEL_0), tokenizer_config.json
 *   the tokenizer class and do_lower_case; KoBERT checkpoints name KoBertTokenizer. */
#include "e2e/e2e.h"

#include "host/formats/checkpoint.h"

static const char *OUT = "koelectra-small-v3-nsmc-ckpt";

/* run_seq_cls on nsmc, 4 updates, checkpoints 2 and 4, each scored from its file at the end */
static int run_nsmc(const E2E *x, const char *ckpt, const char *format, const char *more,
                    const char *value, const char *err) {
    return e2e_run(err, "run_seq_cls", "--task", "nsmc", "--config_file", "koelectra-small-v3.json",
                   "--data_dir", x->data, "--ckpt_dir", ckpt, "--model_config", x->config,
                   "--vocab_file", x->vocab, "--no_cuda", "true", "--max_steps", "3",
                   "--save_steps", "2", "--logging_steps", "0", "--save_optimizer", "true",
                   "--train_batch_size", "2", "--max_seq_len", "16", "--save_format", format,
                   more, value, NULL);
}

static char *slurp(const char *dir, const char *name) {
    char *p = strfmt("%s/%s", dir, name), *text = NULL;
    if (read_file(p, &text, NULL, &(Error){{0}}) != 0) text = xstrdup("(missing)");
    free(p);
    return text;
}

static int exists_in(const char *dir, const char *name) {
    char *p = strfmt("%s/%s", dir, name);
    int yes = file_exists(p);
    free(p);
    return yes;
}

/* the two files of a checkpoint hold the same tensors, bitwise */
static void check_same_tensors(const char *dir) {
    char *a = strfmt("%s/model.safetensors", dir), *b = strfmt("%s/pytorch_model.bin", dir);
    TensorSet x = {0}, y = {0};
    Error e;
    CHECK(checkpoint_read(a, &x, &e) == 0, "%s", e.msg);
    CHECK(checkpoint_read(b, &y, &e) == 0, "%s", e.msg);
    CHECK(x.n == y.n && x.n > 10, "%d tensors in %s, %d in %s", x.n, a, y.n, b);
    for (int i = 0; i < x.n; i++) {
        const NamedTensor *t = tensorset_find(&y, x.t[i].name);
        CHECK(t && t->dtype == DT_F32 && t->numel == x.t[i].numel && t->ndim == x.t[i].ndim &&
              !memcmp(t->shape, x.t[i].shape, sizeof t->shape[0] * t->ndim) &&
              !memcmp(t->data, x.t[i].data, t->numel * 4), "%s: %s differs", b, x.t[i].name);
    }
    tensorset_free(&x), tensorset_free(&y);
    free(a), free(b);
}

static void check_formats(const E2E *x) {
    char *bin = strfmt("%s/bin", x->root), *both = strfmt("%s/both", x->root);
    char *out_bin = strfmt("%s/%s", bin, OUT), *out_both = strfmt("%s/%s", both, OUT);
    char *err = strfmt("%s/bin.err", x->root);
    int code = run_nsmc(x, bin, "bin", NULL, NULL, err);
    CHECK(code == 0, "--save_format bin: exit %d (see %s)", code, err);
    free(err), err = strfmt("%s/both.err", x->root);
    code = run_nsmc(x, both, "both", NULL, NULL, err);
    CHECK(code == 0, "--save_format both: exit %d (see %s)", code, err);
    for (int step = 2; step <= 4; step += 2) {
        char *a = strfmt("%s/checkpoint-%d", out_bin, step), *b = strfmt("%s/checkpoint-%d", out_both, step);
        CHECK(exists_in(a, "pytorch_model.bin") && !exists_in(a, "model.safetensors"),
              "%s: want pytorch_model.bin only", a);
        CHECK(exists_in(b, "pytorch_model.bin") && exists_in(b, "model.safetensors"),
              "%s: want both weights files", b);
        check_same_tensors(b);
        free(a), free(b);
    }
    /* scored from pytorch_model.bin in one run, from model.safetensors in the other */
    char *ra = slurp(out_bin, "eval_results.txt"), *rb = slurp(out_both, "eval_results.txt");
    CHECK(strstr(ra, "acc_2 = ") && strstr(ra, "acc_4 = ") && !strcmp(ra, rb),
          "eval_results.txt: bin run\n%s--- both run\n%s", ra, rb);
    free(ra), free(rb);

    /* evaluation only, over a folder of pytorch_model.bin checkpoints */
    char *res = strfmt("%s/eval_results.txt", out_bin), *before = slurp(out_bin, "eval_results.txt");
    unlink(res);
    free(err), err = strfmt("%s/eval_only.err", x->root);
    code = run_nsmc(x, bin, "safetensors", "--do_train", "false", err);
    char *after = slurp(out_bin, "eval_results.txt");
    CHECK(code == 0 && !strcmp(before, after), "evaluation only (exit %d, see %s):\n%s--- "
          "during the training run:\n%s", code, err, after, before);
    free(res), free(before), free(after);

    /* resume from a pytorch_model.bin checkpoint */
    char *res_dir = strfmt("%s/resumed", x->root), *from = strfmt("%s/checkpoint-2", out_bin);
    free(err), err = strfmt("%s/resume_bin.err", x->root);
    code = run_nsmc(x, res_dir, "bin", "--resume_from_checkpoint", from, err);
    CHECK(code == 0, "resume from %s: exit %d (see %s)", from, code, err);
    char *out_res = strfmt("%s/%s/checkpoint-4", res_dir, OUT), *ref = strfmt("%s/checkpoint-4", out_bin);
    char *pa = strfmt("%s/pytorch_model.bin", out_res), *pb = strfmt("%s/pytorch_model.bin", ref);
    char *wa = NULL, *wb = NULL;
    size_t na = 0, nb = 0;
    CHECK(read_file(pa, &wa, &na, &(Error){{0}}) == 0 && read_file(pb, &wb, &nb, &(Error){{0}}) == 0 &&
          na == nb && !memcmp(wa, wb, na), "%s differs from the uninterrupted run's", pa);
    free(wa), free(wb), free(pa), free(pb), free(out_res), free(ref), free(res_dir), free(from);
    free(bin), free(both), free(out_bin), free(out_both), free(err);
}

/* one update and a checkpoint of task, program prog, model_type config `config` */
static char *tiny_run(const E2E *x, const char *prog, const char *task, const char *config,
                      const char *model_config, const char *vocab) {
    char *ckpt = strfmt("%s/labels_%s_%s", x->root, task, config), *err = strfmt("%s.err", ckpt);
    int code = e2e_run(err, prog, "--task", task, "--config_file", config, "--data_dir", x->data,
                       "--ckpt_dir", ckpt, "--model_config", model_config, "--vocab_file", vocab,
                       "--no_cuda", "true", "--max_steps", "1", "--save_steps", "1",
                       "--logging_steps", "0", "--train_batch_size", "2", "--max_seq_len", "16",
                       "--do_eval", "false", NULL);
    CHECK(code == 0, "%s %s: exit %d (see %s)", prog, task, code, err);
    char *model = xstrdup(config);
    *strrchr(model, '.') = 0;
    char *dir = strfmt("%s/%s-%s-ckpt/checkpoint-1", ckpt, model, task);
    free(ckpt), free(err), free(model);
    return dir;
}

static cJSON *json_of(const char *dir, const char *name) {
    char *text = slurp(dir, name);
    cJSON *o = cJSON_Parse(text);
    free(text);
    return o;
}

static const char *str_at(const cJSON *o, const char *a, const char *b) {
    const cJSON *v = cJSON_GetObjectItem(b ? cJSON_GetObjectItem(o, a) : o, b ? b : a);
    return cJSON_IsString(v) ? v->valuestring : "(none)";
}

/* config.json's id2label/label2id are the given names, the class is `arch` */
static void check_config(const char *dir, const char *arch, int n, const char *const *names) {
    cJSON *c = json_of(dir, "config.json");
    const cJSON *archs = cJSON_GetObjectItem(c, "architectures");
    const cJSON *a0 = cJSON_GetArrayItem(archs, 0);
    CHECK(cJSON_IsString(a0) && !strcmp(a0->valuestring, arch), "%s: architectures is not [%s]", dir, arch);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(c, "id2label")) == n, "%s: id2label has not %d", dir, n);
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i);
        const cJSON *back = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "label2id"), names[i]);
        CHECK(!strcmp(str_at(c, "id2label", id), names[i]) && cJSON_IsNumber(back) && back->valueint == i,
              "%s: label %d is '%s', want '%s'", dir, i, str_at(c, "id2label", id), names[i]);
    }
    cJSON_Delete(c);
}

static void check_labels(const E2E *x) {
    e2e_task_data(x, "kornli", 5);
    e2e_task_data(x, "korsts", 5);
    e2e_task_data(x, "naver-ner", 5);
    const char *nli[] = {"contradiction", "entailment", "neutral"}, *sts[] = {"LABEL_0"};
    char *d = tiny_run(x, "run_seq_cls", "kornli", "koelectra-small-v3.json", x->config, x->vocab);
    check_config(d, "ElectraForSequenceClassification", 3, nli);
    cJSON *tc = json_of(d, "tokenizer_config.json");
    CHECK(!strcmp(str_at(tc, "tokenizer_class", NULL), "ElectraTokenizer") &&
          cJSON_IsFalse(cJSON_GetObjectItem(tc, "do_lower_case")),
          "%s/tokenizer_config.json: not ElectraTokenizer with do_lower_case false", d);
    cJSON_Delete(tc);
    free(d);
    d = tiny_run(x, "run_seq_cls", "korsts", "koelectra-small-v3.json", x->config, x->vocab);
    check_config(d, "ElectraForSequenceClassification", 1, sts);
    free(d);
    /* korsts keeps a label the input config.json gives */
    char *named = strfmt("%s/named_config.json", x->root), *text = slurp(x->root, "tiny_config.json");
    char *close = strrchr(text, '}');
    *close = 0;
    char *patched = strfmt("%s, \"id2label\": {\"0\": \"similarity\"}}", text);
    e2e_write(named, patched);
    const char *kept[] = {"similarity"};
    d = tiny_run(x, "run_seq_cls", "korsts", "koelectra-small-v3.json", named, x->vocab);
    check_config(d, "ElectraForSequenceClassification", 1, kept);
    free(d), free(named), free(text), free(patched);
    d = tiny_run(x, "run_ner", "naver-ner", "koelectra-small-v3.json", x->config, x->vocab);
    const char *ner[29] = {"O"};
    const char *kinds[] = {"PER", "FLD", "AFW", "ORG", "LOC", "CVL", "DAT", "TIM", "NUM", "EVT",
                           "ANM", "PLT", "MAT", "TRM"};
    char tags[28][8];
    for (int i = 0; i < 28; i++) {
        snprintf(tags[i], sizeof tags[i], "%s-%c", kinds[i / 2], i % 2 ? 'I' : 'B');
        ner[i + 1] = tags[i];
    }
    check_config(d, "ElectraForTokenClassification", 29, ner);
    free(d);
}

/* a KoBERT checkpoint names KoBertTokenizer (config.json, for transformers 3.x's AutoTokenizer,
 * and tokenizer_config.json, for 4.x and later) and carries the SentencePiece model */
static void check_kobert(const E2E *x) {
    if (!file_exists(E2E_KOBERT_VOCAB "/tokenizer_78b3253a26.model")) {
        printf("no %s: the KoBERT checkpoint is not checked\n", E2E_KOBERT_VOCAB);
        return;
    }
    char *cfg = strfmt("%s/kobert_config.json", x->root);
    e2e_write_config(cfg, 8002);
    char *d = tiny_run(x, "run_seq_cls", "nsmc", "kobert.json", cfg, E2E_KOBERT_VOCAB);
    cJSON *c = json_of(d, "config.json"), *tc = json_of(d, "tokenizer_config.json");
    CHECK(!strcmp(str_at(c, "tokenizer_class", NULL), "KoBertTokenizer"),
          "%s/config.json: tokenizer_class %s", d, str_at(c, "tokenizer_class", NULL));
    CHECK(!strcmp(str_at(tc, "tokenizer_class", NULL), "KoBertTokenizer") &&
          !cJSON_GetObjectItem(tc, "do_lower_case"),
          "%s/tokenizer_config.json: tokenizer_class %s", d, str_at(tc, "tokenizer_class", NULL));
    CHECK(exists_in(d, "tokenizer_78b3253a26.model") && exists_in(d, "vocab.txt"),
          "%s: KoBertTokenizer's files are missing", d);
    const char *bin[] = {"0", "1"};
    check_config(d, "BertForSequenceClassification", 2, bin);
    cJSON_Delete(c), cJSON_Delete(tc);
    free(cfg), free(d);
}

int main(void) {
    E2E x;
    e2e_init(&x, "save_format");
    e2e_small_vocab(&x);
    e2e_task_data(&x, "nsmc", 7); /* 6 rows: 3 batches of 2 */
    check_formats(&x);
    check_labels(&x);
    check_kobert(&x);
    return test_exit("test_save_format");
}
