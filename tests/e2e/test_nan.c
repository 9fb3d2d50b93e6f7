/* A diverging run (learning rate 1, weight decay 1e6: weights grow 1e6-fold a step) stops with one error line naming the step, exits 1,
 * and the checkpoint it names as the last good one is intact: it loads. */
#include "e2e/e2e.h"

#include "host/model/model.h"
#include "host/model/model_config.h"

int main(void) {
    E2E x;
    e2e_init(&x, "nan");
    e2e_task_data(&x, "nsmc", 41);
    char *ckpt = strfmt("%s/ckpt", x.root), *err = strfmt("%s/run.err", x.root);
    int code = e2e_run(err, "run_seq_cls", "--task", "nsmc", "--config_file",
                       "koelectra-small-v3.json", "--data_dir", x.data, "--ckpt_dir", ckpt,
                       "--model_config", x.config, "--vocab_file", x.vocab, "--no_cuda", "true",
                       "--max_steps", "30", "--save_steps", "1", "--logging_steps", "0",
                       "--train_batch_size", "2", "--max_seq_len", "24", "--learning_rate", "1",
                       "--weight_decay", "1e6", NULL);
    e2e_check_one_error(err, code, "the training loss is", "diverging run");
    char line[1024];
    e2e_lines_with(err, "error: ", line, sizeof line);
    int step = 0;
    CHECK(sscanf(line, "error: step %d:", &step) == 1 && step >= 2,
          "the error line names no step after the first: %s", line);
    /* the named checkpoint is checkpoint-(step - 1) and loads */
    char *dir = strfmt("%s/koelectra-small-v3-nsmc-ckpt/checkpoint-%d", ckpt, step - 1);
    CHECK(strstr(line, dir) != NULL, "the error line does not name %s: %s", dir, line);
    char *cfg_path = strfmt("%s/config.json", dir), *wpath = strfmt("%s/model.safetensors", dir);
    ModelConfig cfg;
    Model m = {0};
    Error e;
    int rc = model_config_read(cfg_path, &cfg, &e);
    CHECK(rc == 0, "%s", e.msg);
    if (rc == 0) rc = model_create(&m, &cfg, HEAD_SEQ_CLS, 2, backend_cpu(), 1, 8, &e);
    if (rc == 0) {
        rc = model_load(&m, wpath, 42, &e);
        CHECK(rc == 0, "the last good checkpoint does not load: %s", e.msg);
        float *w = xmalloc(m.n_floats * sizeof(float));
        model_get_params(&m, w);
        size_t bad = 0;
        for (size_t i = 0; i < m.n_floats; i++) bad += !isfinite(w[i]);
        CHECK(bad == 0, "the last good checkpoint has %zu non-finite weights", bad);
        free(w);
        model_free(&m);
    }
    free(ckpt), free(err), free(dir), free(cfg_path), free(wpath);
    return test_exit("test_nan");
}
