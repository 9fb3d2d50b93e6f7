/* naver-ner features, as monologg/KoELECTRA finetune/processor/ner.py builds them
 * (ner_convert_examples_to_features), and the word-level label sequences its evaluate() hands
 * to seqeval:
 *
 * - each word is tokenised on its own; a word that tokenises to nothing becomes [UNK];
 * - the first sub-token carries the word's label id, the others NER_IGNORE (-100);
 * - tokens and labels are cut to max_seq_len - 2, then [CLS] ... [SEP] (<s> ... </s> for
 *   XLM-R) with NER_IGNORE on both, token types 0, padded with the pad id and NER_IGNORE. */
#ifndef KOE_NER_FEATURES_H
#define KOE_NER_FEATURES_H

#include "host/tasks/features.h"
#include "host/tasks/tasks.h"
#include "host/text/tokenizer.h"

enum { NER_IGNORE = -100 }; /* CrossEntropyLoss().ignore_index, the original's pad label */

/* Row i for example i, max_seq_len values each: input ids padded with the pad id, token types
 * all 0, labels NER_IGNORE where no loss is taken, lengths = the attention mask's ones.
 * Returns 0, or -1 with e filled (max_seq_len < 2, or a word the tokenizer rejects). */
int ner_make_features(const Tokenizer *t, const NerExampleSet *set, int max_seq_len,
                      Features *out, Error *e);

/* Row i's gold and predicted label ids at the positions whose gold label is not NER_IGNORE
 * (the first sub-token of every word that survived the cut), in order; the prediction is the
 * argmax over num_labels logits (numpy's: first maximum, a NaN wins). logits holds the row's
 * max_len * num_labels values. gold and pred need room for max_len ids. Returns the count. */
int ner_row_labels(const Features *f, int i, const float *logits, int num_labels, int *gold,
                   int *pred);

#endif
