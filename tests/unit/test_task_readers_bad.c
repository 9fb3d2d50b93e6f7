/* Task readers on small files written here: the original's rules (header, strip, tabs,
 * skipped rows, universal newlines) and one clear error per kind of bad input. */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>

#include "host/tasks/tasks.h"
#include "test.h"

static char dir[] = "/tmp/koe_tasks_XXXXXX";

static char *write_tmp_bytes(const char *name, const char *text, size_t len) {
    char *path = strfmt("%s/%s", dir, name);
    Error e;
    if (write_file_atomic(path, text, len, &e)) fprintf(stderr, "%s\n", e.msg);
    return path;
}

static char *write_tmp(const char *name, const char *text) {
    return write_tmp_bytes(name, text, strlen(text));
}

/* reads len bytes of text as task's file and expects an error containing want */
static void expect_error_bytes(const char *task, const char *text, size_t len, const char *want) {
    char *path = write_tmp_bytes("bad.tsv", text, len);
    const TaskInfo *t = task_find(task);
    Error e = {{0}};
    int rc;
    if (t->kind == TASK_NER) {
        NerExampleSet s;
        rc = read_ner_examples(t, path, &s, &e);
    } else if (t->kind == TASK_QA) {
        QaExampleSet s;
        rc = read_qa_examples(path, &s, &e);
    } else {
        ExampleSet s;
        rc = read_seq_cls_examples(t, path, &s, &e);
    }
    CHECK(rc == -1 && strstr(e.msg, want) && strstr(e.msg, path), "%s: got '%s', want '%s'",
          task, e.msg, want);
    unlink(path);
    free(path);
}

static void expect_error(const char *task, const char *text, const char *want) {
    expect_error_bytes(task, text, strlen(text), want);
}

static void good_files(void) {
    Error e;
    ExampleSet s;
    /* CRLF, a lone CR, Unicode spaces stripped at the ends but kept inside fields */
    char *p = write_tmp("q.tsv", "q1\tq2\tlabel\r\n\xe3\x80\x80" "a b\tc\t1\r\n\tx\t0\n"
                                 "d\t\t1\re\tf\t0 \xc2\xa0\n");
    CHECK(read_seq_cls_examples(task_find("kornli"), p, &s, &e) == -1, "kornli labels are words");
    int rc = read_seq_cls_examples(task_find("question-pair"), p, &s, &e);
    /* row 1 "\tx\t0" strips to "x\t0": too few columns, as the original's IndexError */
    CHECK(rc == -1 && strstr(e.msg, ":3: expected at least 3"), "%s", e.msg);
    unlink(p);
    free(p);
    p = write_tmp("q.tsv", "q1\tq2\tlabel\r\n\xe3\x80\x80" "a b\tc\t1\r\nd\t\t1\re\tf\t0 \xc2\xa0\n");
    rc = read_seq_cls_examples(task_find("question-pair"), p, &s, &e);
    CHECK(rc == 0 && s.n == 2 && s.skipped == 1, "question-pair: rc %d n %d skipped %d", rc, s.n, s.skipped);
    if (rc == 0 && s.n == 2) {
        CHECK(strcmp(s.items[0].text_a, "a b") == 0 && strcmp(s.items[0].text_b, "c") == 0 &&
              s.items[0].label == 1 && s.items[0].row == 0, "first row");
        CHECK(strcmp(s.items[1].text_a, "e") == 0 && s.items[1].label == 0 && s.items[1].row == 2,
              "skipped row keeps its index");
        free_examples(&s);
    }
    unlink(p);
    free(p);
    p = write_tmp("sts.tsv", "h\n g\tf\t2012\t1\t3.25\ts1\ts2\ng\tf\t2012\t1\t1e0\tt1\tt2");
    rc = read_seq_cls_examples(task_find("korsts"), p, &s, &e);
    CHECK(rc == 0 && s.n == 2 && s.items[0].score == 3.25f && s.items[1].score == 1.0f &&
          s.items[0].label == -1 && strcmp(s.items[1].text_b, "t2") == 0, "korsts scores");
    if (rc == 0) free_examples(&s);
    unlink(p);
    free(p);
    NerExampleSet n;
    p = write_tmp("ner.tsv", "a  b\xe3\x80\x80" "c\tO PER-B\xc2\xa0TRM-I\nx\tO\n");
    rc = read_ner_examples(task_find("naver-ner"), p, &n, &e);
    CHECK(rc == 0 && n.n == 2 && n.items[0].n == 3 && n.items[1].n == 1, "ner: %s", rc ? e.msg : "");
    if (rc == 0) {
        CHECK(strcmp(n.items[0].words[2], "c") == 0 && n.items[0].labels[1] == 1 &&
              n.items[0].labels[2] == 28 && n.items[1].row == 1, "ner words and labels");
        free_ner_examples(&n);
    }
    unlink(p);
    free(p);
}

int main(void) {
    if (!mkdtemp(dir)) TEST_SKIP("cannot make a temp dir");
    good_files();
    expect_error("nsmc", "id\tdocument\tlabel\n1\tgood\t1\n2\tbad \xff text\t0\n", ":3: invalid UTF-8");
    expect_error("nsmc", "id\tdocument\tlabel\n1\tgood\t1\n\xed\xa0\x80\n", ":3: invalid UTF-8"); /* surrogate */
    expect_error("nsmc", "id\tdocument\tlabel\n1\tgood\t1\n2\tno label\n", ":3: expected at least 3");
    expect_error("nsmc", "id\tdocument\tlabel\n1\tgood\t1\n\n3\tx\t0\n", ":3: expected at least 3");
    expect_error("hate-speech", "t\tc\tb\th\nx\ty\tnone\tmaybe\n", ":2: label 'maybe'");
    expect_error("kornli", "s1\ts2\tl\na\tb\t1\n", ":2: label '1'");
    expect_error("korsts", "h\ng\tf\t2012\t1\tfive\ta\tb\n", ":2: score 'five'");
    expect_error("korsts", "h\ng\tf\t2012\t1\t0x1p1\ta\tb\n", ":2: score");
    expect_error("korsts", "h\ng\tf\t2012\t1\tnan\ta\tb\n", ":2: score 'nan' is not a finite");
    expect_error("korsts", "h\ng\tf\t2012\t1\t1\ta\tb\ng\tf\t2012\t1\t-inf\ta\tb\n",
                 ":3: score '-inf' is not a finite float32");
    expect_error("korsts", "h\ng\tf\t2012\t1\t1e39\ta\tb\n", ":2: score '1e39' is not a finite");
    /* an embedded NUL would end the field early: "1\0junk" must not read as the label 1 */
    static const char nul_label[] = "id\tdocument\tlabel\n1\tgood\t0\n2\tbad\t1\0junk\n";
    expect_error_bytes("nsmc", nul_label, sizeof nul_label - 1, ":3: NUL byte at offset 34");
    static const char nul_ner[] = "a\tO\nb\x00\tO\n";
    expect_error_bytes("naver-ner", nul_ner, sizeof nul_ner - 1, ":2: NUL byte");
    expect_error("nsmc", "", "no examples");
    expect_error("nsmc", "id\tdocument\tlabel\n", "no examples");
    expect_error("paws", "id\ts1\ts2\tl\n1\t\tb\t0\n", "no examples"); /* all rows skipped */
    expect_error("naver-ner", "", "no examples");
    expect_error("naver-ner", "a b\tO\n", ":1: 2 words but 1 labels");
    expect_error("naver-ner", "a\tO\nb\tPER\n", ":2: label 'PER'");
    expect_error("naver-ner", "a\tO\nb O\n", ":2: expected words<TAB>labels");
    expect_error("naver-ner", "a\tO\tx\n", ":1: expected words<TAB>labels");
    expect_error("korquad", "{\"data\": [", "not valid JSON");
    expect_error("korquad", "{\"data\": [{\"paragraphs\": [{\"context\": \"c\", \"qas\": [{\"id\": \"1\"}]}]}]}",
                 "data[0].paragraphs[0].qas[0]: needs");
    expect_error("korquad", "{\"data\": []}", "no questions");

    Error e;
    ExampleSet s;
    char *missing = strfmt("%s/none.tsv", dir);
    CHECK(read_seq_cls_examples(task_find("nsmc"), missing, &s, &e) == -1 &&
          strstr(e.msg, "cannot open"), "missing file: %s", e.msg);
    free(missing);
    CHECK(task_find("mnli") == NULL && task_find("korsts")->num_labels == 1, "task table");
    CHECK(task_find("naver-ner")->num_labels == 29 && task_label_id(task_find("naver-ner"), "TRM-I") == 28,
          "ner labels");
    CHECK(task_label_id(task_find("kornli"), "neutral") == 2, "kornli label order");
    rmdir(dir);
    return test_exit("test_task_readers_bad");
}
