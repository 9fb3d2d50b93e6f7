/* KorQuAD's prediction files as HF 3.3.1's compute_predictions_logits writes them
 * (json.dumps(..., indent=4) + "\n", ASCII with \u escapes), keyed by question id in file
 * order. squad_load, the family's loader, is declared in task.h. */
#ifndef KOE_SQUAD_EVAL_H
#define KOE_SQUAD_EVAL_H

#include "host/tasks/squad.h"

/* predictions_<step>.json: {id: best text}; heap text, its length in *len */
char *qa_predictions_json(const QaExampleSet *set, const QaNbest *nb, size_t *len);
/* nbest_predictions_<step>.json: {id: [{text, probability, start_logit, end_logit}, ...]} */
char *qa_nbest_json(const QaExampleSet *set, const QaNbest *nb, size_t *len);

#endif
