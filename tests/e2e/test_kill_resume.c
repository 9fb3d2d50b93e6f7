/* Kill and resume: run_seq_cls is SIGKILLed after its first checkpoint, resumed from the
 * newest complete checkpoint, and must end exactly as an uninterrupted run: the same train loss
 * at every step after the resume point, byte-identical final weights and eval_results.txt. */
#include "e2e/e2e.h"

#include <dirent.h>
#include <time.h>

enum { MAX_STEPS = 12, SAVE_STEPS = 3 };

static void args_for(const E2E *x, const char *ckpt, char **argv) {
    char *a[] = {"run_seq_cls", "--task", "nsmc", "--config_file", "koelectra-small-v3.json",
                 "--data_dir", (char *)x->data, "--ckpt_dir", (char *)ckpt,
                 "--model_config", (char *)x->config, "--vocab_file", (char *)x->vocab,
                 "--no_cuda", "true", "--max_steps", "12", "--save_steps", "3",
                 "--logging_steps", "0", "--train_batch_size", "2", "--max_seq_len", "24",
                 "--eval_all_checkpoints", "false", NULL};
    memcpy(argv, a, sizeof a);
}

/* newest checkpoint-N with everything a resume reads; 0 when none */
static int newest_complete(const char *out) {
    int best = 0;
    DIR *d = opendir(out);
    struct dirent *ent;
    while (d && (ent = readdir(d))) {
        int step;
        char rest;
        if (sscanf(ent->d_name, "checkpoint-%d%c", &step, &rest) != 1) continue;
        char *a = strfmt("%s/%s/optimizer.safetensors", out, ent->d_name);
        char *b = strfmt("%s/%s/trainer_state.json", out, ent->d_name);
        char *c = strfmt("%s/%s/model.safetensors", out, ent->d_name);
        if (file_exists(a) && file_exists(b) && file_exists(c) && step > best) best = step;
        free(a), free(b), free(c);
    }
    if (d) closedir(d);
    return best;
}

/* step -> train loss from log.jsonl; a later line for the same step wins (the resumed run) */
static int read_losses(const char *log, double *loss, int max) {
    char *text;
    if (read_file(log, &text, NULL, &(Error){{0}}) != 0) return -1;
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        cJSON *type = cJSON_GetObjectItem(o, "type");
        if (cJSON_IsString(type) && !strcmp(type->valuestring, "train")) {
            int step = cJSON_GetObjectItem(o, "step")->valueint;
            if (step >= 1 && step <= max) loss[step] = cJSON_GetObjectItem(o, "loss")->valuedouble;
            if (step > n) n = step;
        }
        cJSON_Delete(o);
    }
    free(text);
    return n;
}

static int same_file(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    if (read_file(a, &x, &nx, &(Error){{0}}) != 0) return 0;
    if (read_file(b, &y, &ny, &(Error){{0}}) != 0) return free(x), 0;
    int same = nx == ny && memcmp(x, y, nx) == 0;
    free(x), free(y);
    return same;
}

int main(void) {
    E2E x;
    e2e_init(&x, "kill_resume");
    e2e_task_data(&x, "nsmc", 17);
    char *ref = strfmt("%s/ref", x.root), *cut = strfmt("%s/cut", x.root);
    char *out_ref = strfmt("%s/koelectra-small-v3-nsmc-ckpt", ref);
    char *out_cut = strfmt("%s/koelectra-small-v3-nsmc-ckpt", cut);
    char *argv[40];

    /* the uninterrupted run */
    char *err = strfmt("%s/ref.err", x.root);
    args_for(&x, ref, argv);
    int code = e2e_wait(e2e_spawn(argv, err));
    CHECK(code == 0, "uninterrupted run exit %d (see %s)", code, err);

    /* the killed run: SIGKILL as soon as the first checkpoint exists */
    char *err_cut = strfmt("%s/cut.err", x.root), *first = strfmt("%s/checkpoint-%d", out_cut, SAVE_STEPS);
    args_for(&x, cut, argv);
    pid_t pid = e2e_spawn(argv, err_cut);
    int alive = 1;
    for (int i = 0; i < 60000 && !dir_exists(first); i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            alive = 0;
            break;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    if (alive) kill(pid, SIGKILL), waitpid(pid, NULL, 0);
    CHECK(alive, "the run ended before it could be killed (see %s)", err_cut);
    int resume = newest_complete(out_cut);
    CHECK(resume >= SAVE_STEPS && resume < MAX_STEPS, "newest complete checkpoint is %d", resume);
    printf("killed after checkpoint-%d; resuming from checkpoint-%d\n", SAVE_STEPS, resume);

    /* resume and finish */
    char *from = strfmt("%s/checkpoint-%d", out_cut, resume), *err_res = strfmt("%s/resume.err", x.root);
    int n = 0;
    while (argv[n]) n++;
    argv[n] = "--resume_from_checkpoint", argv[n + 1] = from, argv[n + 2] = NULL;
    code = e2e_wait(e2e_spawn(argv, err_res));
    CHECK(code == 0, "resumed run exit %d (see %s)", code, err_res);

    double a[MAX_STEPS + 2] = {0}, b[MAX_STEPS + 2] = {0};
    char *log_ref = strfmt("%s/log.jsonl", out_ref), *log_cut = strfmt("%s/log.jsonl", out_cut);
    int na = read_losses(log_ref, a, MAX_STEPS + 1), nb = read_losses(log_cut, b, MAX_STEPS + 1);
    CHECK(na == MAX_STEPS + 1 && nb == na, "steps logged: %d uninterrupted, %d resumed", na, nb);
    for (int s = resume + 1; s <= na && s <= MAX_STEPS + 1; s++)
        CHECK(a[s] == b[s] && isfinite(a[s]), "step %d: loss %.17g uninterrupted, %.17g resumed", s, a[s], b[s]);
    CHECK(a[1] != a[na], "the loss never changed (%.17g)", a[1]);

    const char *files[] = {"checkpoint-12/model.safetensors", "eval_results.txt"};
    for (int i = 0; i < 2; i++) {
        char *p = strfmt("%s/%s", out_ref, files[i]), *q = strfmt("%s/%s", out_cut, files[i]);
        CHECK(file_exists(p) && same_file(p, q), "%s differs after the resume", files[i]);
        free(p), free(q);
    }
    free(ref), free(cut), free(out_ref), free(out_cut), free(err), free(err_cut), free(first);
    free(from), free(err_res), free(log_ref), free(log_cut);
    return test_exit("test_kill_resume");
}
