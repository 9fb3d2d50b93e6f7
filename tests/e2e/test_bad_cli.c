/* Bad command lines: each gives one clear error line on stderr and exit code 1, never a
 * crash: unknown task, a task of another program, missing config file, unknown flag, a flag
 * without its value, a model path that does not exist, a config key of the wrong type,
 * --unpadded for QA. */
#include "e2e/e2e.h"

typedef struct {
    const char *what, *want; /* the case, a piece of the expected error line */
    const char *argv[16];
} BadCase;

int main(void) {
    E2E x;
    e2e_init(&x, "bad_cli");
    e2e_task_data(&x, "nsmc", 9);
    /* a config whose learning_rate is a string */
    char *bad = strfmt("%s/bad_type.json", x.root), *text;
    CHECK(read_file("configs/nsmc/koelectra-small-v3.json", &text, NULL, &(Error){{0}}) == 0,
          "cannot read the nsmc config");
    char *lr = strstr(text, "\"learning_rate\": ");
    CHECK(lr != NULL, "the nsmc config has no learning_rate");
    if (lr) {
        char *rest = strchr(lr, '\n');
        char *patched = strfmt("%.*s\"learning_rate\": \"fast\"%s", (int)(lr - text), text, rest ? rest : "}");
        e2e_write(bad, patched);
        free(patched);
    }
    free(text);
    const BadCase cases[] = {
        {"unknown task", "unknown task", {"run_seq_cls", "--task", "nosuch", "--config_file", "x.json"}},
        {"task of run_ner", "not a task this program runs",
         {"run_seq_cls", "--task", "naver-ner", "--config_file", "koelectra-small-v3.json"}},
        {"task of run_seq_cls", "not a task this program runs",
         {"run_ner", "--task", "nsmc", "--config_file", "koelectra-small-v3.json"}},
        {"missing config", "no_such_config.json",
         {"run_squad", "--task", "korquad", "--config_file", "no_such_config.json"}},
        {"unknown flag", "bogus_flag",
         {"run_seq_cls", "--task", "nsmc", "--config_file", "koelectra-small-v3.json", "--bogus_flag", "1"}},
        {"flag without value", "--seed",
         {"run_ner", "--task", "naver-ner", "--config_file", "koelectra-small-v3.json", "--seed"}},
        {"model path missing", "does not exist",
         {"run_seq_cls", "--task", "nsmc", "--config_file", "koelectra-small-v3.json", "--data_dir",
          x.data, "--model_name_or_path", "./no/such/model_dir", "--no_cuda", "true"}},
        {"wrong-typed key", "learning_rate", {"run_seq_cls", "--task", "nsmc", "--config_file", bad}},
        {"wrong-typed override", "seed",
         {"run_squad", "--task", "korquad", "--config_file", "koelectra-small-v3.json", "--seed", "x7"}},
        {"QA unpadded", "QA batches stay padded",
         {"run_squad", "--task", "korquad", "--config_file", "koelectra-small-v3.json", "--unpadded"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = strfmt("%s/case%zu.err", x.root, i);
        int code = e2e_wait(e2e_spawn((char *const *)cases[i].argv, err));
        e2e_check_one_error(err, code, cases[i].want, cases[i].what);
        free(err);
    }
    free(bad);
    return test_exit("test_bad_cli");
}
