/* KorQuAD as the original's run_squad.py evaluates it: HF 3.3.1's compute_predictions_logits
 * over the predict_file (squad_predict.c), output_dir/predictions_<step>.json and
 * nbest_predictions_<step>.json as HF writes them, and HF's squad_evaluate with the official
 * KorQuAD exact match and F1 (task_metrics_qa). Features: squad.c. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/text/pyfmt.h"
#include "host/tasks/squad_eval.h"
#include "host/tasks/task.h"

/* an open_memstream, or NULL (out of memory) */
static FILE *text_stream(char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    return open_memstream(text, len);
}

char *qa_predictions_json(const QaExampleSet *set, const QaNbest *nb, size_t *len) {
    char *text;
    FILE *f = text_stream(&text, len);
    if (!f) return NULL;
    fputs(set->n ? "{\n" : "{}", f);
    for (int i = 0; i < set->n; i++) {
        fputs("    ", f);
        py_json_string(f, set->items[i].id);
        fputs(": ", f);
        py_json_string(f, nb[i].items[0].text);
        fputs(i + 1 < set->n ? ",\n" : "\n}", f);
    }
    fputs("\n", f);
    return fclose(f) == 0 ? text : (free(text), NULL);
}

static void nbest_entry(FILE *f, const QaAnswer *x) {
    fputs("        {\n            \"text\": ", f);
    py_json_string(f, x->text);
    fputs(",\n            \"probability\": ", f);
    py_json_float(f, x->probability);
    fputs(",\n            \"start_logit\": ", f);
    py_json_float(f, x->start_logit);
    fputs(",\n            \"end_logit\": ", f);
    py_json_float(f, x->end_logit);
    fputs("\n        }", f);
}

char *qa_nbest_json(const QaExampleSet *set, const QaNbest *nb, size_t *len) {
    char *text;
    FILE *f = text_stream(&text, len);
    if (!f) return NULL;
    fputs(set->n ? "{\n" : "{}", f);
    for (int i = 0; i < set->n; i++) {
        fputs("    ", f);
        py_json_string(f, set->items[i].id);
        fputs(": [\n", f);
        for (int k = 0; k < nb[i].n; k++) {
            nbest_entry(f, &nb[i].items[k]);
            fputs(k + 1 < nb[i].n ? ",\n" : "\n    ]", f);
        }
        fputs(i + 1 < set->n ? ",\n" : "\n}", f);
    }
    fputs("\n", f);
    return fclose(f) == 0 ? text : (free(text), NULL);
}

/* output_dir/<prefix>_<step>.json from a text maker */
static int write_json(const EvalAt *at, const char *prefix, const QaExampleSet *set,
                      const QaNbest *nb, char *(*make)(const QaExampleSet *, const QaNbest *,
                                                        size_t *), Error *e) {
    char *path = strfmt("%s/%s_%d.json", at->output_dir, prefix, at->step);
    size_t len;
    char *text = make(set, nb, &len);
    int rc = text ? write_file_atomic(path, text, len, e) : errorf(e, "%s: out of memory", path);
    free(path), free(text);
    return rc;
}

/* the outputs over the predict_file's windows: [n, T, 2], start then end logits */
static int squad_evaluate(const Task *t, const EvalAt *at, const ModelOutputs *out,
                          Evaluation *ev, Error *e) {
    const QaExampleSet *ex = &t->data.qa.examples;
    const Features *f = &t->features[at->split];
    size_t n = (size_t)f->n * f->max_len;
    float *start = xmalloc((n + 1) * sizeof(float)), *end = xmalloc((n + 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) start[i] = out->logits[2 * i], end[i] = out->logits[2 * i + 1];
    QaNbest *nb = qa_nbest(t->data.qa.tok, ex, &t->data.qa.features, start, end,
                           &t->data.qa.post);
    int rc = write_json(at, "predictions", ex, nb, qa_predictions_json, e);
    if (rc == 0) rc = write_json(at, "nbest_predictions", ex, nb, qa_nbest_json, e);
    QaPrediction *qs = xmalloc(((size_t)ex->n + 1) * sizeof *qs);
    for (int i = 0; i < ex->n; i++) {
        const QaExample *x = &ex->items[i];
        qs[i] = (QaPrediction){x->answer_texts, x->n_answers, nb[i].items[0].text};
    }
    task_metrics_qa(qs, ex->n, &ev->metrics);
    qa_nbest_free(nb, ex->n);
    free(qs), free(start), free(end);
    return rc;
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
                                   tokenizer_kind(src->tok)};
    return 0;
}
