/* Sentence(-pair) classification and regression (nsmc, kornli, paws, korsts, question-pair,
 * hate-speech): examples -> features as the original's seq_cls_convert_examples_to_features
 * (batch_encode_plus, max_length, truncation), and its evaluate()'s metrics. The family's
 * loader, seq_cls_load, is declared in task.h. */
#ifndef KOE_SEQ_CLS_H
#define KOE_SEQ_CLS_H

#include "host/tasks/task.h"

int seq_cls_features(const Tokenizer *tok, const TaskInfo *task, const ExampleSet *ex,
                     int max_len, Features *f, Error *e);

#endif
