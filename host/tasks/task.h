/* The one interface between the task families and the trainer. A family (sequence
 * classification and regression: seq_cls.c; NER: ner.c; KorQuAD: squad_eval.c) reads a
 * program's splits and encodes them (task_load); the trainer runs the model over a split and
 * hands the outputs to the task's evaluate(), which scores them as the original does, and
 * writes the prediction files of the test split; task_free frees what the family kept. */
#ifndef KOE_TASK_H
#define KOE_TASK_H

#include "host/formats/config.h"
#include "host/tasks/features.h"
#include "host/tasks/metrics.h"
#include "host/tasks/squad.h"
#include "host/tasks/tasks.h"
#include "host/text/tokenizer.h"

/* KorQuAD has no dev split: its predict_file is read as the test split */
typedef enum { SPLIT_TRAIN, SPLIT_DEV, SPLIT_TEST, N_SPLITS } Split;

/* "train", "dev", "test": the original's mode names (output_dir/<mode>/<mode>-N.txt) */
const char *split_name(Split s);

/* What a task reads: the file of each split (NULL: none) and the encoding arguments. */
typedef struct {
    const char *paths[N_SPLITS];
    const TrainArgs *args; /* max_seq_len; KorQuAD's doc_stride, n_best_size, ... */
    const Tokenizer *tok;  /* kept by KorQuAD: its answers are detokenised */
} TaskSource;

/* the model's outputs over a split, in row order: logits [n, rows, num_labels] with rows 1
 * for sequence classification and max_len for token heads (KorQuAD: start, end), and the mean
 * evaluation loss */
typedef struct {
    const float *logits;
    int num_labels;
    double loss;
} ModelOutputs;

/* one evaluation: of which split, at which global step, written under which output_dir */
typedef struct {
    Split split;
    int step;
    const char *output_dir;
} EvalAt;

/* what an evaluation gives back besides the files it wrote */
typedef struct {
    Metrics metrics;
    char *report; /* text the eval file carries after the metrics (NER's seqeval report), or
                     NULL; heap string */
} Evaluation;

typedef struct Task Task;
struct Task {
    const TaskInfo *info;
    Features features[N_SPLITS]; /* n == 0: the split was not read */
    /* scores out (the outputs over features[at->split]) into ev; at SPLIT_TEST it also writes
     * the split's predictions under at->output_dir. Returns 0, or -1 with e filled when a
     * file cannot be written. */
    int (*evaluate)(const Task *t, const EvalAt *at, const ModelOutputs *out, Evaluation *ev,
                    Error *e);
    void (*free)(Task *t); /* frees the family's data below */
    /* the family's own data: what evaluation reads besides the features */
    union {
        struct {
            ExampleSet examples[N_SPLITS];
        } seq_cls;
        struct {
            NerExampleSet examples[N_SPLITS];
        } ner;
        struct {
            QaExampleSet examples;   /* the test split (predict_file) */
            QaFeatures features;     /* its windows */
            const Tokenizer *tok;
            QaPostArgs post;
        } qa;
    } data;
};

/* reads and encodes the splits of src for the task named by info (its family's loader) */
int task_load(Task *t, const TaskInfo *info, const TaskSource *src, Error *e);
/* the features of split s, or NULL when the split was not read or is empty */
const Features *task_split(const Task *t, Split s);
void task_free(Task *t);

/* writes text to output_dir/<mode>/<stem>-<step>.<ext> (<stem>.<ext> at step 0), beside the
 * split's eval file, crash-safe; a NULL text (out of memory) is an error */
int write_beside_eval_file(const EvalAt *at, const char *stem, const char *ext,
                           const char *text, size_t len, Error *e);

/* the families' loaders, which task_load calls */
int seq_cls_load(Task *t, const TaskSource *src, Error *e);
int ner_load(Task *t, const TaskSource *src, Error *e);
int squad_load(Task *t, const TaskSource *src, Error *e);

#endif
