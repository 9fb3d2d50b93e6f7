/* KorQuAD as the original's run_squad.py evaluates it: HF 3.3.1's compute_predictions_logits
 * over the predict_file (squad_predict.c), output_dir/predictions_<step>.json as HF writes it,
 * and HF's exact/f1 with the official KorQuAD exact match and F1. Features: squad.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/tasks/task.h"

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
static void write_predictions(const EvalAt *at, const QaExampleSet *ex, char **preds) {
    char *path = strfmt("%s/predictions_%d.json", at->output_dir, at->step);
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

/* the outputs over the predict_file's windows: [n, T, 2], start then end logits */
static int squad_evaluate(const Task *t, const EvalAt *at, const ModelOutputs *out,
                          Evaluation *ev, Error *e) {
    (void)e;
    const QaExampleSet *ex = &t->data.qa.examples;
    const Features *f = &t->features[at->split];
    size_t n = (size_t)f->n * f->max_len;
    float *start = xmalloc((n + 1) * sizeof(float)), *end = xmalloc((n + 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) start[i] = out->logits[2 * i], end[i] = out->logits[2 * i + 1];
    char **preds = qa_predict(t->data.qa.tok, ex, &t->data.qa.features, start, end,
                              &t->data.qa.post);
    write_predictions(at, ex, preds);
    QaPrediction *qs = xmalloc(((size_t)ex->n + 1) * sizeof *qs);
    for (int i = 0; i < ex->n; i++) {
        const QaExample *x = &ex->items[i];
        qs[i] = (QaPrediction){x->answer_texts, x->n_answers, preds[i]};
    }
    task_metrics_qa(qs, ex->n, &ev->metrics);
    qa_predictions_free(preds, ex->n);
    free(qs), free(start), free(end);
    return 0;
}

/* convert_tokens_to_string's rule by the benchmark's model_type */
static TokenizerKind tokenizer_kind(const char *model_type) {
    if (!strcmp(model_type, "kobert") || !strcmp(model_type, "distilkobert")) return TOK_KOBERT;
    return strcmp(model_type, "xlm-roberta") ? TOK_WORDPIECE : TOK_XLMR;
}

/* the windows' inputs (and, training, answer positions) as the trainer's Features */
static void model_inputs(const QaFeatures *qf, int is_training, Features *f) {
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
}

/* reads a SQuAD JSON split and builds its windows */
static int load_split(const TaskSource *src, const char *path, int is_training,
                      QaExampleSet *ex, QaFeatures *qf, Error *e) {
    const TrainArgs *a = src->args;
    QaFeatureArgs fa = {a->max_seq_len, a->doc_stride, a->max_query_length, is_training};
    if (read_qa_examples(path, ex, e) != 0 || qa_make_features(src->tok, ex, &fa, qf, e) != 0)
        return -1;
    fprintf(stderr, "%s: %d questions -> %d features%s\n", path, ex->n, qf->n,
            qf->n_skipped ? " (some answers not found: skipped)" : "");
    return qf->n == 0 ? errorf(e, "%s: no features", path) : 0;
}

static void squad_free(Task *t) {
    qa_features_free(&t->data.qa.features);
    free_qa_examples(&t->data.qa.examples);
}

/* the train split (training windows) and the test split (predict_file, evaluation windows);
 * KorQuAD has no dev split. Only the test split's questions and windows are kept. */
int squad_load(Task *t, const TaskSource *src, Error *e) {
    t->evaluate = squad_evaluate;
    t->free = squad_free;
    const TrainArgs *a = src->args;
    if (src->paths[SPLIT_TRAIN]) {
        QaExampleSet ex = {0};
        QaFeatures qf = {0};
        int rc = load_split(src, src->paths[SPLIT_TRAIN], 1, &ex, &qf, e);
        if (rc == 0) model_inputs(&qf, 1, &t->features[SPLIT_TRAIN]);
        qa_features_free(&qf);
        free_qa_examples(&ex);
        if (rc != 0) return -1;
    }
    if (src->paths[SPLIT_TEST]) {
        QaExampleSet *ex = &t->data.qa.examples;
        QaFeatures *qf = &t->data.qa.features;
        if (load_split(src, src->paths[SPLIT_TEST], 0, ex, qf, e) != 0) return -1;
        model_inputs(qf, 0, &t->features[SPLIT_TEST]);
    }
    t->data.qa.tok = src->tok;
    t->data.qa.post = (QaPostArgs){a->n_best_size, a->max_answer_length, a->do_lower_case,
                                   tokenizer_kind(a->model_type)};
    return 0;
}
