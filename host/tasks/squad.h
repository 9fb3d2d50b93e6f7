/* KorQuAD (SQuAD v1.1) features and answer post-processing, as HF transformers 3.3.1 does them
 * for the benchmark's run_squad.py (no negatives):
 *
 * features (squad_convert_example_to_features):
 * - the context is split into words on ' ', \t, \r, \n and U+202F; answer_start (code points)
 *   and len(answer text) give the answer's first and last word;
 * - training only: the first answer is used; a question whose answer words, joined by
 *   spaces, do not contain the answer text with its whitespace folded is skipped; the
 *   sub-token span is narrowed by _improve_answer_span;
 * - every word is tokenised on its own (tok_to_orig_index, orig_to_tok_index); the question
 *   is tokenised and cut to max_query_length;
 * - windows of room = max_seq_length - len(query) - pair specials document sub-tokens,
 *   starting every doc_stride sub-tokens, as [CLS] query [SEP] window [SEP] padded;
 * - token_to_orig_map and token_is_max_context (_new_check_is_max_context) are keyed from
 *   len(query) + sequence_added_tokens, which 3.3.1 computes as 2 for every tokenizer here:
 *   XLMRobertaTokenizer is not in its two-separator set, so for XLM-R the keys (and training
 *   positions) sit one before the window's real position. Reproduced on purpose;
 * - training: start/end positions of the answer in the window, or 0 ([CLS]) outside it.
 *
 * post-processing (compute_predictions_logits, v1): per feature the n_best_size best start and
 * end positions (stable: ties keep the lower position); pairs outside the window's document
 * part, not max-context at the start, reversed or longer than max_answer_length are dropped;
 * the remaining pairs of all the question's windows are sorted by start+end logit sum (ties:
 * HF's order, i.e. the earlier feature, then the higher-ranked start, then end); walking them
 * from the best, each pair's sub-tokens become text (convert_tokens_to_string), projected onto
 * the original words with get_final_text, and the first n_best_size distinct texts are the
 * n-best list; the prediction is its first. A question with no valid pair gets "empty", as
 * HF. */
#ifndef KOE_SQUAD_H
#define KOE_SQUAD_H

#include "host/tasks/tasks.h"
#include "host/text/tokenizer.h"

typedef struct {
    int max_seq_length, doc_stride, max_query_length;
    int is_training;
} QaFeatureArgs;

/* A context split the way SquadExample does, and its sub-tokens. */
typedef struct {
    int n_words;
    int *word_start, *word_end; /* byte range [start, end) of each word in the context */
    int n_sub;
    int *sub_ids;     /* all_doc_tokens (ids) */
    int *sub_to_word; /* tok_to_orig_index */
    int *word_to_sub; /* orig_to_tok_index */
} QaDoc;

typedef struct {
    int example;        /* index of the question in the QaExampleSet */
    int doc_start;      /* first document sub-token of the window (span * doc_stride) */
    int paragraph_len;  /* document sub-tokens in the window */
    int doc_offset;     /* HF's key of document token 0: len(query) + sequence_added_tokens */
    int n_tokens;       /* HF's len(feature.tokens): input_ids up to the first pad id */
    int start_position, end_position; /* training targets; 0, 0 in evaluation */
    unsigned char *max_context; /* [paragraph_len]: token_is_max_context[doc_offset + j] */
} QaFeature;

typedef struct {
    int n, seq_len;
    QaFeature *items;
    int *input_ids;      /* [n * seq_len], padded with the pad id */
    int *token_type_ids; /* [n * seq_len] */
    int *lengths;        /* [n] attention-mask ones */
    QaDoc *docs;         /* one per distinct context (questions in a row share it) */
    int n_docs;
    int *example_doc;    /* [n_examples] index into docs */
    int n_examples;
    int n_skipped;       /* training: questions whose answer could not be found */
} QaFeatures;

/* Returns 0, or -1 with e filled: window arguments that leave no room for the document, or
 * (training) an answer_start outside its context (Python's IndexError). */
int qa_make_features(const Tokenizer *t, const QaExampleSet *set, const QaFeatureArgs *a,
                     QaFeatures *out, Error *e);
void qa_features_free(QaFeatures *f);

typedef struct {
    int n_best_size, max_answer_length, do_lower_case;
    TokenizerKind kind; /* convert_tokens_to_string: WordPiece joins "##", SentencePiece "▁" */
} QaPostArgs;

/* One of a question's n best answers, as HF's nbest_predictions file lists them. */
typedef struct {
    char *text;
    double probability;           /* _compute_softmax over the list's start + end logits */
    float start_logit, end_logit; /* 0, 0 for the "empty" stand-in */
} QaAnswer;

typedef struct {
    QaAnswer *items; /* best first; at least one */
    int n;           /* at most n_best_size */
} QaNbest;

/* compute_predictions_logits: per question its n_best_size best distinct answers (free with
 * qa_nbest_free); logits are [n * seq_len] per feature, start and end. The prediction is
 * items[0].text; "empty" (logits 0, probability 1) when no pair is valid, as HF. */
QaNbest *qa_nbest(const Tokenizer *t, const QaExampleSet *set, const QaFeatures *f,
                  const float *start_logits, const float *end_logits, const QaPostArgs *a);
void qa_nbest_free(QaNbest *nb, int n);
/* just the predictions: predictions[i] for question i (heap strings, free with
 * qa_predictions_free) */
char **qa_predict(const Tokenizer *t, const QaExampleSet *set, const QaFeatures *f,
                  const float *start_logits, const float *end_logits, const QaPostArgs *a);
void qa_predictions_free(char **preds, int n);

/* get_final_text: project pred_text (detokenised, whitespace-folded) onto orig_text (the
 * answer's words joined by spaces) through BasicTokenizer(do_lower_case); orig_text when the
 * alignment fails. Heap string. */
char *qa_final_text(const char *pred_text, const char *orig_text, int do_lower_case);

#endif
