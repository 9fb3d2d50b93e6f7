/* The benchmark's tasks: a table of what each task is (kind, labels, metric, default files)
 * and the readers that turn the original files data_dir/<task>/<file> into examples, exactly
 * as monologg/KoELECTRA finetune/processor/{seq_cls,ner}.py does:
 *
 * - the file is decoded as UTF-8 (invalid UTF-8 is an error, as Python's decoder raises) and
 *   split into lines on \n, \r\n or \r (Python's universal newlines);
 * - each line is stripped of Python whitespace (str.strip(): Unicode spaces too) and split
 *   on '\t'; the first line is a header and skipped, except for naver-ner;
 * - a row's index i counts from the first data row and includes skipped rows; the
 *   original's guid is "<set_type>-<i>";
 * - paws and question-pair skip rows whose text_a or text_b is empty (counted in `skipped`);
 *   a row with too few columns is an error (the original's IndexError), so is a label
 *   missing from the label list (its KeyError) or a korsts score that is not a number;
 * - naver-ner lines are "words<TAB>labels", each split on whitespace runs, equal counts.
 * A file with no examples is an error here (the original would train on nothing).
 * Errors read "<path>:<line>: <what>". */
#ifndef KOE_TASKS_H
#define KOE_TASKS_H

#include "host/base/util.h"

typedef enum { TASK_CLASSIFICATION, TASK_REGRESSION, TASK_NER, TASK_QA } TaskKind;

/* what the original's compute_metrics reports for the task */
typedef enum {
    METRIC_ACCURACY,    /* acc */
    METRIC_CORRELATION, /* pearson, spearmanr, corr = their mean */
    METRIC_MACRO_PRF,   /* sklearn macro precision, recall, f1 */
    METRIC_SEQEVAL,     /* seqeval entity precision, recall, f1 (suffix tags) */
    METRIC_KORQUAD,     /* official KorQuAD v1.0 exact match and character F1 */
} MetricKind;

typedef struct {
    const char *name;   /* "nsmc", "kornli", ... as in the configs */
    TaskKind kind;
    int num_labels;     /* model outputs: 1 for korsts, 2 for QA (start/end) */
    const char *const *labels; /* num_labels names in id order; NULL for korsts and korquad */
    MetricKind metric;
    const char *best_key; /* the metric that selects results ("acc", "spearmanr", "f1", ...) */
    const char *train_file, *dev_file, *test_file; /* NULL where the original has none */
    /* seq-cls readers: column of text_a, text_b (-1: none) and label */
    int col_a, col_b, col_label;
    int skip_empty_text; /* paws, question-pair */
} TaskInfo;

/* NULL when the name is not a task */
const TaskInfo *task_find(const char *name);
/* the id of a label name, or -1 */
int task_label_id(const TaskInfo *t, const char *label);
/* data_dir/task/file (heap string) */
char *task_path(const char *data_dir, const TaskInfo *t, const char *file);

/* A sentence-classification or regression example. Strings point into the set's buffer. */
typedef struct {
    const char *text_a;
    const char *text_b; /* NULL for single-sentence tasks */
    int label;          /* label id; -1 for regression */
    float score;        /* korsts: float(col 4), as the original's float32 label tensor */
    int row;            /* the original's i: guid is "<set_type>-<row>" */
} Example;

typedef struct {
    Example *items;
    int n;
    int skipped; /* rows skipped for an empty text */
    char *buf;   /* owns the text */
} ExampleSet;

/* reads a nsmc/kornli/paws/korsts/question-pair/hate-speech file */
int read_seq_cls_examples(const TaskInfo *t, const char *path, ExampleSet *out, Error *e);
void free_examples(ExampleSet *s);

/* A naver-ner line: n words and their label ids. */
typedef struct {
    const char **words;
    int *labels;
    int n;
    int row; /* guid is "<set_type>-<row>" */
} NerExample;

typedef struct {
    NerExample *items;
    int n;
    char *buf;          /* owns the words */
    const char **words; /* owns the word pointers of all items */
    int *labels;        /* owns the labels of all items */
} NerExampleSet;

int read_ner_examples(const TaskInfo *t, const char *path, NerExampleSet *out, Error *e);
void free_ner_examples(NerExampleSet *s);

/* A KorQuAD (SQuAD v1.1 JSON) question with its context and gold answers, in file order. */
typedef struct {
    const char *id, *question, *context, *title;
    int n_answers;
    const char **answer_texts;
    int *answer_starts; /* character (code point) offsets into context, as in the JSON */
} QaExample;

typedef struct {
    QaExample *items;
    int n;
    void *json;   /* owns the strings (the parsed cJSON tree) */
    char *source; /* the file, for messages (NULL for a set built in memory) */
} QaExampleSet;

int read_qa_examples(const char *path, QaExampleSet *out, Error *e);
void free_qa_examples(QaExampleSet *s);

#endif
