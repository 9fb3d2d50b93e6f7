/* Inputs that fit together badly, each refused by the program with one error line naming the
 * file(s) and key: a config.json of an unknown model_type (not built as ELECTRA), max_seq_len
 * beyond max_position_embeddings, a vocab_size below the tokenizer's, a task config of
 * another task, --config_file naming a folder, and sizes no machine holds (the model's bytes
 * are checked against the backend's memory before anything is allocated, naming the key). */
#include "e2e/e2e.h"

typedef struct {
    const char *what;
    const char *want[3]; /* pieces of the expected error line */
    const char *argv[24];
} BadCase;

/* the tiny config with one "key": value pair replaced */
static char *config_with(const E2E *x, const char *name, const char *from, const char *to) {
    char *text, *path = strfmt("%s/%s", x->root, name);
    if (read_file(x->config, &text, NULL, &(Error){{0}}) != 0) e2e_die(x->config);
    char *at = strstr(text, from);
    if (!at) e2e_die(from);
    char *out = strfmt("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    e2e_write(path, out);
    free(text), free(out);
    return path;
}

int main(void) {
    E2E x;
    e2e_init(&x, "bad_model_input");
    e2e_task_data(&x, "nsmc", 9);
    char *gpt2 = config_with(&x, "gpt2.json", "\"electra\"", "\"gpt2\"");
    char *short_pos = config_with(&x, "short_pos.json", "\"max_position_embeddings\": 512",
                                  "\"max_position_embeddings\": 64");
    char *vocab_key = strfmt("\"vocab_size\": %d", e2e_count_lines(x.vocab));
    char *small_vocab =
        config_with(&x, "small_vocab.json", vocab_key, "\"vocab_size\": 9");
    char *layers = config_with(&x, "layers.json", "\"num_hidden_layers\": 2",
                               "\"num_hidden_layers\": 1000000000");
    char *hidden = config_with(&x, "hidden.json", "\"hidden_size\": 32",
                               "\"hidden_size\": 1073741824");
    char *ffn = config_with(&x, "ffn.json", "\"intermediate_size\": 64",
                            "\"intermediate_size\": 2000000000");
    /* a base-sized model: 65535 x 512 tokens of activations are some 60 TB */
    char *big = config_with(&x, "big.json", "\"hidden_size\": 32, \"num_hidden_layers\": 2",
                            "\"hidden_size\": 1024, \"num_hidden_layers\": 24");
    char cwd[512]; /* the repository root, where ctest runs the tests */
    if (!getcwd(cwd, sizeof cwd)) e2e_die("getcwd");
    char *kornli = strfmt("%s/configs/kornli/koelectra-small-v3.json", cwd);
    char *folder = strfmt("%s/data", x.root);
#define RUN "run_seq_cls", "--task", "nsmc", "--data_dir", x.data, "--vocab_file", x.vocab, \
            "--no_cuda", "true", "--ckpt_dir", x.root, "--max_steps", "1"
#define CONFIG "--config_file", "koelectra-small-v3.json"
    const BadCase cases[] = {
        {"unknown model_type", {gpt2, "model_type: unsupported \"gpt2\"", "electra, bert"},
         {RUN, CONFIG, "--model_config", gpt2}},
        {"max_seq_len beyond the positions",
         {"configs/nsmc/koelectra-small-v3.json: max_seq_len: 128", "max_position_embeddings 64",
          short_pos}, {RUN, CONFIG, "--model_config", short_pos}},
        {"max_seq_len given on the command line", {"command line: max_seq_len: 100", short_pos},
         {RUN, CONFIG, "--model_config", short_pos, "--max_seq_len", "100"}},
        {"vocab_size below the tokenizer's",
         {small_vocab, "vocab_size: 9 is below", "tokens of the tokenizer in"},
         {RUN, CONFIG, "--model_config", small_vocab}},
        {"config of another task", {kornli, "task: 'kornli'", "--task is nsmc"},
         {RUN, "--config_file", kornli, "--model_config", x.config}},
        {"config_file is a folder", {folder, "is a folder"},
         {RUN, "--config_file", folder, "--model_config", x.config}},
        {"1e9 layers",
         {layers, "num_hidden_layers: 1000000000 is too large", "the cpu backend has"},
         {RUN, CONFIG, "--model_config", layers}},
        {"hidden_size 2^30", {hidden, "hidden_size: 1073741824 is too large", "more than 16 EiB"},
         {RUN, CONFIG, "--model_config", hidden}},
        {"intermediate_size 2e9", {ffn, "intermediate_size: 2000000000 is too large"},
         {RUN, CONFIG, "--model_config", ffn}},
        {"a batch no memory holds", {"command line: train_batch_size: 65535 is too large",
                                     "activations for batches of 65535 x 512"},
         {RUN, CONFIG, "--model_config", big, "--train_batch_size", "65535", "--max_seq_len",
          "512"}},
        {"batch 2^31-1", {"command line: train_batch_size: must be in [1, 65535]"},
         {RUN, CONFIG, "--model_config", x.config, "--train_batch_size", "2147483647"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = strfmt("%s/case%zu.err", x.root, i);
        int code = e2e_wait(e2e_spawn((char *const *)cases[i].argv, err));
        e2e_check_one_error(err, code, cases[i].want[0], cases[i].what);
        char line[1024];
        e2e_lines_with(err, "error: ", line, sizeof line);
        for (int k = 1; k < 3 && cases[i].want[k]; k++)
            CHECK(strstr(line, cases[i].want[k]), "%s: error line '%s' lacks '%s'",
                  cases[i].what, line, cases[i].want[k]);
        free(err);
    }
    free(gpt2), free(short_pos), free(small_vocab), free(layers), free(hidden), free(ffn);
    free(big), free(kornli), free(folder), free(vocab_key);
    return test_exit("test_bad_model_input");
}
