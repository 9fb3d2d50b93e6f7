/* Evaluation only (issue 14 item 3): each program with --do_train false and a trained
 * checkpoint as model_name_or_path evaluates it on the test split and writes its results and
 * predictions without training, the same numbers as the training run's evaluation of that
 * checkpoint. */
#include "e2e/e2e.h"

static char *slurp(const char *path) {
    char *text = NULL;
    return read_file(path, &text, NULL, &(Error){{0}}) == 0 ? text : xstrdup("(missing)");
}

/* trains program on task (checkpoint-2), then evaluates that checkpoint alone */
static void check_program(const E2E *x, const char *program, const char *task, const char *step,
                          const char *predictions) {
    char *ckpt = strfmt("%s/%s", x->root, task), *err = strfmt("%s/%s.err", x->root, task);
    int code = e2e_run(err, program, "--task", task, "--config_file", "koelectra-small-v3.json",
                       "--data_dir", x->data, "--ckpt_dir", ckpt, "--output_dir", "train",
                       "--model_config", x->config, "--vocab_file", x->vocab, "--no_cuda", "true",
                       "--max_steps", "1", "--logging_steps", "2", "--save_steps", "2",
                       "--train_batch_size", "4", "--max_seq_len", "64", "--max_seq_length", "64",
                       "--max_query_length", "16", "--doc_stride", "32", NULL);
    CHECK(code == 0, "%s training: exit %d (see %s)", program, code, err);
    char *model = strfmt("%s/train/checkpoint-%s", ckpt, step);
    code = e2e_run(err, program, "--task", task, "--config_file", "koelectra-small-v3.json",
                   "--data_dir", x->data, "--ckpt_dir", ckpt, "--output_dir", "eval",
                   "--model_name_or_path", model, "--do_train", "false", "--no_cuda", "true",
                   "--max_seq_len", "64", "--max_seq_length", "64", "--max_query_length", "16",
                   "--doc_stride", "32", NULL);
    CHECK(code == 0, "%s --do_train false: exit %d (see %s)", program, code, err);
    const char *files[] = {"test/test-%s.txt", predictions};
    for (int i = 0; i < 2; i++) {
        char *name = strfmt(files[i], step);
        char *a = strfmt("%s/train/%s", ckpt, name), *b = strfmt("%s/eval/%s", ckpt, name);
        char *ta = slurp(a), *tb = slurp(b);
        CHECK(file_exists(b) && !strcmp(ta, tb), "%s: %s differs from the training run's %s", program, b, a);
        free(name), free(a), free(b), free(ta), free(tb);
    }
    char *log = strfmt("%s/eval/log.jsonl", ckpt);
    CHECK(e2e_lines_with(log, "{\"type\":\"train\"", NULL, 0) == 0, "%s: %s has training steps", program, log);
    free(ckpt), free(err), free(model), free(log);
}

int main(void) {
    E2E x;
    e2e_init(&x, "eval_only");
    e2e_task_data(&x, "nsmc", 24);
    e2e_task_data(&x, "naver-ner", 24);
    e2e_task_data(&x, "korquad", 0);
    check_program(&x, "run_seq_cls", "nsmc", "2", "test/predictions-%s.tsv");
    check_program(&x, "run_ner", "naver-ner", "2", "test/predictions-%s.txt");
    check_program(&x, "run_squad", "korquad", "2", "predictions_%s.json");
    return test_exit("test_eval_only");
}
