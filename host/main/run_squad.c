/* run_squad: the original's run_squad.py for korquad (SQuAD v1.1 JSON, HF 3.3.1's feature
 * pipeline and compute_predictions_logits). Its procedure differs from run_seq_cls.py in three
 * ways reproduced here:
 * - global_step starts at 1, so checkpoint-N and the evaluation at step N follow N - 1 updates;
 * - evaluation during training (evaluate_during_training) and at the end runs on predict_file,
 *   writing output_dir/predictions_<step>.json and reporting HF's exact/f1 and the official
 *   KorQuAD official_exact_match/official_f1;
 * - batches are always padded to max_seq_length: HF's QA loss softmaxes over all T positions
 *   (padding included), and the n_best_size start/end candidates are picked among all T
 *   logits before invalid ones are dropped, so padding logits matter in both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/tasks/metrics.h"
#include "host/main/run.h"
#include "host/tasks/squad.h"

/* what the EvalFn needs besides the features */
typedef struct {
    const QaExampleSet *examples;
    const QaFeatures *features;
    const Tokenizer *tok;
    QaPostArgs post;
} SquadEval;

/* one UTF-8 string as Python's json.dumps (ensure_ascii): \uXXXX for non-ASCII */
static void json_string(FILE *f, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        unsigned c = *p++;
        int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
        if (extra) c &= 0x3F >> extra;
        for (int k = 0; k < extra && (*p & 0xC0) == 0x80; k++) c = (c << 6) | (*p++ & 0x3F);
        if (c == '"') fputs("\\\"", f);
        else if (c == '\\') fputs("\\\\", f);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\b') fputs("\\b", f);
        else if (c == '\f') fputs("\\f", f);
        else if (c < 0x20 || (c > 0x7F && c < 0x10000)) fprintf(f, "\\u%04x", c);
        else if (c >= 0x10000) fprintf(f, "\\u%04x\\u%04x", 0xD800 + ((c - 0x10000) >> 10),
                                       0xDC00 + ((c - 0x10000) & 0x3FF));
        else fputc((int)c, f);
    }
    fputc('"', f);
}

/* output_dir/predictions_<step>.json as HF writes it: json.dumps(all_predictions, indent=4) */
static void write_predictions(const Trainer *t, const QaExampleSet *ex, char **preds) {
    char *path = strfmt("%s/predictions_%d.json", t->args->output_dir, t->eval_step);
    char *tmp = strfmt("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "warning: %s: cannot write predictions\n", tmp);
    } else {
        fputs(ex->n ? "{\n" : "{}", f);
        for (int i = 0; i < ex->n; i++) {
            fputs("    ", f);
            json_string(f, ex->items[i].id);
            fputs(": ", f);
            json_string(f, preds[i]);
            fputs(i + 1 < ex->n ? ",\n" : "\n}", f);
        }
        fputs("\n", f);
        if (fclose(f) != 0 || rename(tmp, path) != 0)
            fprintf(stderr, "warning: %s: cannot write predictions\n", path);
    }
    free(path), free(tmp);
}

/* EvalFn: t->task is the SquadEval; f holds the predict_file features */
static void squad_evaluate(Trainer *t, const Features *f, Metrics *out) {
    const SquadEval *se = t->task;
    size_t T = (size_t)f->max_len, n = (size_t)f->n * T;
    float *logits = trainer_predict(t, f, NULL); /* [n, T, 2]: start, end */
    float *start = xmalloc((n + 1) * sizeof(float)), *end = xmalloc((n + 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) start[i] = logits[2 * i], end[i] = logits[2 * i + 1];
    char **preds = qa_predict(se->tok, se->examples, se->features, start, end, &se->post);
    write_predictions(t, se->examples, preds);
    QaPrediction *qs = xmalloc(((size_t)se->examples->n + 1) * sizeof *qs);
    for (int i = 0; i < se->examples->n; i++) {
        const QaExample *x = &se->examples->items[i];
        qs[i] = (QaPrediction){x->answer_texts, x->n_answers, preds[i]};
    }
    task_metrics_qa(qs, se->examples->n, out);
    qa_predictions_free(preds, se->examples->n);
    free(qs), free(start), free(end), free(logits);
}

/* reads a SQuAD JSON split and builds its features */
static int load_split(Run *r, const char *file, int is_training, QaExampleSet *ex,
                      QaFeatures *qf, Features *f, Error *e) {
    char *path = run_data_path(r, file);
    if (!path) return 0;
    QaFeatureArgs fa = {r->args.max_seq_len, r->args.doc_stride, r->args.max_query_length,
                        is_training};
    int rc = read_qa_examples(path, ex, e);
    if (rc == 0) rc = qa_make_features(r->tok, ex, &fa, qf, e);
    if (rc == 0) {
        fprintf(stderr, "%s: %d questions -> %d features%s\n", path, ex->n, qf->n,
                qf->n_skipped ? " (some answers not found: skipped)" : "");
        if (qf->n == 0) rc = errorf(e, "%s: no features", path);
    }
    free(path);
    if (rc != 0) return -1;
    size_t cells = (size_t)qf->n * qf->seq_len;
    features_alloc(f, qf->n, qf->seq_len);
    memcpy(f->input_ids, qf->input_ids, cells * sizeof(int));
    memcpy(f->token_type_ids, qf->token_type_ids, cells * sizeof(int));
    memcpy(f->lengths, qf->lengths, (size_t)qf->n * sizeof(int));
    if (is_training) {
        f->start = xmalloc((size_t)qf->n * sizeof(int));
        f->end = xmalloc((size_t)qf->n * sizeof(int));
        for (int i = 0; i < qf->n; i++)
            f->start[i] = qf->items[i].start_position, f->end[i] = qf->items[i].end_position;
    }
    return 0;
}

static TokenizerKind tokenizer_kind(const char *model_type) {
    if (!strcmp(model_type, "kobert") || !strcmp(model_type, "distilkobert")) return TOK_KOBERT;
    return strcmp(model_type, "xlm-roberta") ? TOK_WORDPIECE : TOK_XLMR;
}

int main(int argc, char **argv) {
    const TaskKind kinds[] = {TASK_QA};
    Run r;
    Error e;
    int rc = run_parse(&r, argc, argv, "run_squad", kinds, 1, &e);
    if (rc == 1) return 0;
    if (rc == 0 && r.args.version_2_with_negative)
        rc = errorf(&e, "run_squad: version_2_with_negative: only SQuAD v1 (false) is supported");
    if (rc == 0) rc = run_setup(&r, &e);
    /* logging_steps only drives the evaluation in run_squad.py */
    if (rc == 0 && !r.args.evaluate_during_training) r.args.logging_steps = 0;
    QaExampleSet ex[2] = {0};
    QaFeatures qf[2] = {0};
    Features f[2] = {0};
    double t0 = now_seconds();
    int need_predict = r.args.do_eval || (r.args.do_train && r.args.logging_steps > 0);
    if (rc == 0 && r.args.do_train)
        rc = load_split(&r, r.args.train_file, 1, &ex[0], &qf[0], &f[0], &e);
    if (rc == 0 && need_predict)
        rc = load_split(&r, r.args.predict_file, 0, &ex[1], &qf[1], &f[1], &e);
    if (rc == 0 && need_predict && !f[1].n)
        rc = errorf(&e, "run_squad: evaluation needs a predict_file");
    if (rc == 0) {
        SquadEval se = {&ex[1], &qf[1], r.tok,
                        {r.args.n_best_size, r.args.max_answer_length, r.args.do_lower_case,
                         tokenizer_kind(r.args.model_type)}};
        Trainer t = {0};
        t.train = f[0].n ? &f[0] : NULL;
        t.test = f[1].n ? &f[1] : NULL; /* predict_file: during training and at the end */
        t.evaluate = squad_evaluate;
        t.task = &se;
        t.layout = LAYOUT_MAX_LENGTH;
        t.first_step = 1;
        rc = run_train(&r, &t, HEAD_QA, 2, t0, &e);
    }
    if (rc != 0) fprintf(stderr, "error: %s\n", e.msg);
    for (int i = 0; i < 2; i++) {
        features_free(&f[i]);
        qa_features_free(&qf[i]);
        free_qa_examples(&ex[i]);
    }
    run_free(&r);
    return rc ? 1 : 0;
}
