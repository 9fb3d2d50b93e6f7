/* Task table and the readers of the original task files (see tasks.h for the rules). The
 * readers work in place on the whole file: lines and fields are NUL-terminated inside one
 * buffer and examples point into it, so NSMC's 150k rows read in a few milliseconds. */
#include "host/tasks/tasks.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/text/unicode.h"

static const char *const LABELS_BINARY[] = {"0", "1"};
static const char *const LABELS_NLI[] = {"contradiction", "entailment", "neutral"};
static const char *const LABELS_HATE[] = {"none", "offensive", "hate"};
static const char *const LABELS_NER[] = {
    "O",     "PER-B", "PER-I", "FLD-B", "FLD-I", "AFW-B", "AFW-I", "ORG-B", "ORG-I", "LOC-B",
    "LOC-I", "CVL-B", "CVL-I", "DAT-B", "DAT-I", "TIM-B", "TIM-I", "NUM-B", "NUM-I", "EVT-B",
    "EVT-I", "ANM-B", "ANM-I", "PLT-B", "PLT-I", "MAT-B", "MAT-I", "TRM-B", "TRM-I"};

static const TaskInfo TASKS[] = {
    {"nsmc", TASK_CLASSIFICATION, 2, LABELS_BINARY, METRIC_ACCURACY, "acc",
     "ratings_train.txt", NULL, "ratings_test.txt", 1, -1, 2, 0},
    {"kornli", TASK_CLASSIFICATION, 3, LABELS_NLI, METRIC_ACCURACY, "acc",
     "multinli.train.ko.tsv", "xnli.dev.ko.tsv", "xnli.test.ko.tsv", 0, 1, 2, 0},
    {"paws", TASK_CLASSIFICATION, 2, LABELS_BINARY, METRIC_ACCURACY, "acc",
     "translated_train.tsv", "dev_2k.tsv", "test_2k.tsv", 1, 2, 3, 1},
    {"korsts", TASK_REGRESSION, 1, NULL, METRIC_CORRELATION, "spearmanr",
     "sts-train.tsv", "sts-dev.tsv", "sts-test.tsv", 5, 6, 4, 0},
    {"question-pair", TASK_CLASSIFICATION, 2, LABELS_BINARY, METRIC_ACCURACY, "acc",
     "train.tsv", "dev.tsv", "test.tsv", 0, 1, 2, 1},
    {"hate-speech", TASK_CLASSIFICATION, 3, LABELS_HATE, METRIC_MACRO_PRF, "f1",
     "train.tsv", NULL, "val.tsv", 1, -1, 3, 0},
    {"naver-ner", TASK_NER, 29, LABELS_NER, METRIC_SEQEVAL, "f1",
     "train.tsv", NULL, "test.tsv", -1, -1, -1, 0},
    {"korquad", TASK_QA, 2, NULL, METRIC_KORQUAD, "official_f1",
     "KorQuAD_v1.0_train.json", NULL, "KorQuAD_v1.0_dev.json", -1, -1, -1, 0},
};

const TaskInfo *task_find(const char *name) {
    for (size_t i = 0; i < sizeof TASKS / sizeof TASKS[0]; i++)
        if (strcmp(TASKS[i].name, name) == 0) return &TASKS[i];
    return NULL;
}

int task_label_id(const TaskInfo *t, const char *label) {
    if (!t->labels) return -1;
    for (int i = 0; i < t->num_labels; i++)
        if (strcmp(t->labels[i], label) == 0) return i;
    return -1;
}

char *task_path(const char *data_dir, const TaskInfo *t, const char *file) {
    return strfmt("%s/%s/%s", data_dir, t->name, file);
}

/* ---- bytes: UTF-8 and Python's idea of whitespace ---- */

/* byte length of the Python whitespace character (str.isspace) starting at p, else 0 */
static int py_space_at(const unsigned char *p, const unsigned char *end) {
    int32_t cp;
    int k = p < end ? utf8_next((const char *)p, (size_t)(end - p), 0, &cp, NULL) : 0;
    return k && py_isspace(cp) ? k : 0;
}

/* byte length of a whitespace character that ends exactly at end, else 0 */
static int py_space_before(const unsigned char *start, const unsigned char *end) {
    for (int n = 1; n <= 3; n++)
        if (end - start >= n && py_space_at(end - n, end) == n) return n;
    return 0;
}

/* str.strip(): trims [*b, *e) in place */
static void py_strip(char **b, char **e) {
    unsigned char *s = (unsigned char *)*b, *t = (unsigned char *)*e;
    int n;
    while ((n = py_space_at(s, t)) > 0) s += n;
    while ((n = py_space_before(s, t)) > 0) t -= n;
    *b = (char *)s;
    *e = (char *)t;
}

/* ---- lines ---- */

typedef struct {
    const char *path;
    char *buf, *pos, *end;
    int lineno; /* 1-based number of the line last returned */
} LineReader;

/* the 1-based line of byte offset at */
static int line_at(const char *buf, size_t at) {
    int line = 1;
    for (size_t i = 0; i < at; i++) line += buf[i] == '\n';
    return line;
}

/* whole file, valid UTF-8 without NUL bytes (a NUL would silently end a field: "1\0junk"
 * would read as the label "1") */
static int lines_open(LineReader *r, const char *path, Error *e) {
    size_t len;
    r->path = path;
    r->lineno = 0;
    if (read_file(path, &r->buf, &len, e)) return -1;
    Error why;
    size_t bad = utf8_invalid_at(r->buf, len, &why);
    const char *nul = memchr(r->buf, 0, len);
    if (bad < len)
        errorf(e, "%s:%d: %s", path, line_at(r->buf, bad), why.msg);
    else if (nul)
        errorf(e, "%s:%d: NUL byte at offset %zu (not a text file?)", path,
               line_at(r->buf, (size_t)(nul - r->buf)), (size_t)(nul - r->buf));
    if (bad < len || nul) {
        free(r->buf);
        r->buf = NULL;
        return -1;
    }
    r->pos = r->buf;
    r->end = r->buf + len;
    return 0;
}

/* the next line, stripped and NUL-terminated in place; NULL at the end of the file */
static char *lines_next(LineReader *r) {
    if (r->pos >= r->end) return NULL;
    char *b = r->pos, *e = b;
    while (e < r->end && *e != '\n' && *e != '\r') e++;
    r->pos = e;
    if (r->pos < r->end) r->pos += (*e == '\r' && e + 1 < r->end && e[1] == '\n') ? 2 : 1;
    r->lineno++;
    py_strip(&b, &e);
    *e = 0;
    return b;
}

/* splits line on '\t' in place; fills up to max field pointers, returns the field count */
static int split_tabs(char *line, char **fields, int max) {
    int n = 0;
    for (char *p = line;; p++) {
        if (n < max) fields[n] = p;
        n++;
        p = strchr(p, '\t');
        if (!p) return n;
        *p = 0;
    }
}

/* ---- sentence classification / regression ---- */

/* Python float(): the whole field, surrounding whitespace allowed, no hex */
static int parse_score(const char *s, float *out) {
    char *b = (char *)s, *e = b + strlen(b);
    py_strip(&b, &e);
    if (b == e || memchr(b, 'x', e - b) || memchr(b, 'X', e - b)) return -1;
    char *stop;
    double v = strtod(b, &stop);
    if (stop != e) return -1;
    *out = (float)v;
    return 0;
}

/* one data row into ex; returns 1 when kept, 0 when skipped, -1 on error */
static int parse_row(const TaskInfo *t, LineReader *r, char *line, int row, Example *ex,
                     Error *e) {
    enum { MAXF = 16 };
    char *f[MAXF];
    int nf = split_tabs(line, f, MAXF);
    int need = t->col_a;
    if (t->col_b > need) need = t->col_b;
    if (t->col_label > need) need = t->col_label;
    if (nf <= need)
        return errorf(e, "%s:%d: expected at least %d tab-separated columns, got %d", r->path,
                      r->lineno, need + 1, nf);
    ex->text_a = f[t->col_a];
    ex->text_b = t->col_b >= 0 ? f[t->col_b] : NULL;
    ex->row = row;
    ex->label = -1;
    ex->score = 0;
    if (t->skip_empty_text && (!ex->text_a[0] || !ex->text_b[0])) return 0;
    const char *label = f[t->col_label];
    if (t->kind == TASK_REGRESSION) {
        if (parse_score(label, &ex->score))
            return errorf(e, "%s:%d: score '%s' is not a number", r->path, r->lineno, label);
        if (!isfinite(ex->score)) /* nan, inf, 1e39: Python takes them, the loss becomes nan */
            return errorf(e, "%s:%d: score '%s' is not a finite float32", r->path, r->lineno,
                          label);
    } else if ((ex->label = task_label_id(t, label)) < 0) {
        return errorf(e, "%s:%d: label '%s' is not one of %s's labels", r->path, r->lineno,
                      label, t->name);
    }
    return 1;
}

int read_seq_cls_examples(const TaskInfo *t, const char *path, ExampleSet *out, Error *e) {
    memset(out, 0, sizeof *out);
    if (t->kind != TASK_CLASSIFICATION && t->kind != TASK_REGRESSION)
        return errorf(e, "%s: task %s is not a sentence classification task", path, t->name);
    LineReader r;
    if (lines_open(&r, path, e)) return -1;
    out->buf = r.buf;
    int cap = 1024;
    out->items = xmalloc(cap * sizeof *out->items);
    lines_next(&r); /* header */
    char *line;
    for (int row = 0; (line = lines_next(&r)); row++) {
        if (out->n == cap) out->items = xrealloc(out->items, (cap *= 2) * sizeof *out->items);
        int kept = parse_row(t, &r, line, row, &out->items[out->n], e);
        if (kept < 0) {
            free_examples(out);
            return -1;
        }
        out->n += kept;
        out->skipped += !kept;
    }
    if (out->n == 0) {
        free_examples(out);
        return errorf(e, "%s: no examples in the file (%d lines)", path, r.lineno);
    }
    return 0;
}

void free_examples(ExampleSet *s) {
    free(s->items);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

/* ---- naver-ner ---- */

/* str.split(): splits s on whitespace runs in place, appending to the growing word array */
static int split_words(char *s, const char ***words, int *n, int *cap) {
    unsigned char *p = (unsigned char *)s, *end = p + strlen(s);
    int count = 0;
    while (p < end) {
        int k;
        while ((k = py_space_at(p, end)) > 0) p += k;
        if (p >= end) break;
        if (*n == *cap) *words = xrealloc(*words, (*cap *= 2) * sizeof **words);
        (*words)[(*n)++] = (const char *)p;
        count++;
        while (p < end && !(k = py_space_at(p, end))) p++;
        if (p < end) {
            memset(p, 0, k);
            p += k;
        }
    }
    return count;
}

/* label ids of the tags ending the word array; -1 with e filled for an unknown tag */
static int map_tags(const TaskInfo *t, LineReader *r, const char **tags, int n, int *ids,
                    Error *e) {
    for (int i = 0; i < n; i++)
        if ((ids[i] = task_label_id(t, tags[i])) < 0)
            return errorf(e, "%s:%d: label '%s' is not one of %s's labels", r->path, r->lineno,
                          tags[i], t->name);
    return 0;
}

static int parse_ner_line(const TaskInfo *t, LineReader *r, char *line, NerExampleSet *s,
                          int *wcap, int *lcap, int *nwords, Error *e) {
    char *f[2];
    int nf = split_tabs(line, f, 2);
    if (nf != 2)
        return errorf(e, "%s:%d: expected words<TAB>labels (2 fields), got %d", r->path,
                      r->lineno, nf);
    int first = *nwords;
    int nw = split_words(f[0], &s->words, nwords, wcap);
    int nl = split_words(f[1], &s->words, nwords, wcap);
    if (nw != nl)
        return errorf(e, "%s:%d: %d words but %d labels", r->path, r->lineno, nw, nl);
    if (first + nw > *lcap) s->labels = xrealloc(s->labels, (*lcap = 2 * (first + nw)) * sizeof(int));
    if (map_tags(t, r, s->words + first + nw, nl, s->labels + first, e)) return -1;
    *nwords = first + nw; /* the tags are not kept: the next line overwrites them */
    NerExample *ex = &s->items[s->n++];
    ex->n = nw;
    ex->row = r->lineno - 1;
    ex->words = (const char **)(intptr_t)first; /* an offset until the arrays stop moving */
    return 0;
}

int read_ner_examples(const TaskInfo *t, const char *path, NerExampleSet *out, Error *e) {
    memset(out, 0, sizeof *out);
    if (t->kind != TASK_NER) return errorf(e, "%s: task %s is not a NER task", path, t->name);
    LineReader r;
    if (lines_open(&r, path, e)) return -1;
    out->buf = r.buf;
    int cap = 1024, wcap = 1 << 16, lcap = 1 << 15, nwords = 0;
    out->items = xmalloc(cap * sizeof *out->items);
    out->words = xmalloc(wcap * sizeof *out->words);
    out->labels = xmalloc(lcap * sizeof *out->labels);
    char *line;
    while ((line = lines_next(&r))) {
        if (out->n == cap) out->items = xrealloc(out->items, (cap *= 2) * sizeof *out->items);
        if (parse_ner_line(t, &r, line, out, &wcap, &lcap, &nwords, e)) {
            free_ner_examples(out);
            return -1;
        }
    }
    if (out->n == 0) {
        free_ner_examples(out);
        return errorf(e, "%s: no examples in the file (%d lines)", path, r.lineno);
    }
    for (int i = 0; i < out->n; i++) {
        intptr_t first = (intptr_t)out->items[i].words;
        out->items[i].words = out->words + first;
        out->items[i].labels = out->labels + first;
    }
    return 0;
}

void free_ner_examples(NerExampleSet *s) {
    free(s->items);
    free(s->words);
    free(s->labels);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

/* ---- korquad ---- */

static const char *json_string(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *json_array(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsArray(v) ? v : NULL;
}

/* fills ex from one element of "qas"; where names it in errors */
static int parse_qa(const cJSON *qa, const char *title, const char *context, QaExample *ex,
                    const char *where, Error *e) {
    ex->id = json_string(qa, "id");
    ex->question = json_string(qa, "question");
    ex->title = title;
    ex->context = context;
    const cJSON *answers = json_array(qa, "answers");
    if (!ex->id || !ex->question || !answers)
        return errorf(e, "%s: needs string 'id', string 'question' and array 'answers'", where);
    ex->n_answers = cJSON_GetArraySize(answers);
    ex->answer_texts = xcalloc(ex->n_answers + 1, sizeof *ex->answer_texts);
    ex->answer_starts = xcalloc(ex->n_answers + 1, sizeof *ex->answer_starts);
    int i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, answers) {
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(a, "answer_start");
        ex->answer_texts[i] = json_string(a, "text");
        if (!ex->answer_texts[i] || !cJSON_IsNumber(start) || start->valuedouble < 0)
            return errorf(e, "%s: answers[%d]: needs string 'text' and 'answer_start' >= 0",
                          where, i);
        ex->answer_starts[i++] = start->valueint;
    }
    return 0;
}

static int parse_paragraphs(const cJSON *article, int ai, QaExampleSet *s, int *cap,
                            const char *path, Error *e) {
    const char *title = json_string(article, "title");
    const cJSON *paragraphs = json_array(article, "paragraphs"), *p;
    if (!paragraphs) return errorf(e, "%s: data[%d]: needs array 'paragraphs'", path, ai);
    int pi = 0;
    cJSON_ArrayForEach(p, paragraphs) {
        const char *context = json_string(p, "context");
        const cJSON *qas = json_array(p, "qas"), *qa;
        if (!context || !qas)
            return errorf(e, "%s: data[%d].paragraphs[%d]: needs string 'context' and array "
                          "'qas'", path, ai, pi);
        int qi = 0;
        cJSON_ArrayForEach(qa, qas) {
            if (s->n == *cap) s->items = xrealloc(s->items, (*cap *= 2) * sizeof *s->items);
            char where[256];
            snprintf(where, sizeof where, "%s: data[%d].paragraphs[%d].qas[%d]", path, ai, pi,
                     qi++);
            QaExample *ex = &s->items[s->n++];
            memset(ex, 0, sizeof *ex);
            if (parse_qa(qa, title ? title : "", context, ex, where, e)) return -1;
        }
        pi++;
    }
    return 0;
}

int read_qa_examples(const char *path, QaExampleSet *out, Error *e) {
    memset(out, 0, sizeof *out);
    char *text;
    size_t len;
    if (read_file(path, &text, &len, e)) return -1;
    Error why;
    size_t bad = utf8_invalid_at(text, len, &why);
    cJSON *root = bad < len ? NULL : cJSON_ParseWithLength(text, len);
    free(text);
    if (bad < len) return errorf(e, "%s: %s", path, why.msg);
    if (!root) return errorf(e, "%s: not valid JSON", path);
    out->json = root;
    out->source = xstrdup(path);
    const cJSON *data = json_array(root, "data"), *article;
    if (!data) {
        free_qa_examples(out);
        return errorf(e, "%s: needs a top-level array 'data'", path);
    }
    int cap = 1024, ai = 0;
    out->items = xmalloc(cap * sizeof *out->items);
    cJSON_ArrayForEach(article, data) {
        if (parse_paragraphs(article, ai++, out, &cap, path, e)) {
            free_qa_examples(out);
            return -1;
        }
    }
    if (out->n == 0) {
        free_qa_examples(out);
        return errorf(e, "%s: no questions in the file", path);
    }
    return 0;
}

void free_qa_examples(QaExampleSet *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->items[i].answer_texts);
        free(s->items[i].answer_starts);
    }
    free(s->items);
    cJSON_Delete(s->json);
    free(s->source);
    memset(s, 0, sizeof *s);
}
