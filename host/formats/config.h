/* Task configs: one of the original benchmark's configs/<task>/<model>.json -> a validated
 * TrainArgs. Same keys and meanings as the original (an AttrDict of the JSON); the original's
 * keys this project does not use are listed, with the reason, in config.c. An unknown key
 * prints one warning and is ignored; a wrong type or an impossible value is an error naming
 * the file and the key. */
#ifndef KOE_CONFIG_H
#define KOE_CONFIG_H

#include <stdint.h>

#include "host/base/util.h"

#define CONFIG_STR 512 /* longest accepted string value, NUL included */

typedef struct {
    /* what to run */
    char task[32];       /* nsmc, kornli, paws, korsts, question-pair, hate-speech, naver-ner, korquad */
    char model_type[32]; /* the benchmark's name: koelectra-small-v3, kobert, xlm-roberta, ... */
    char model_name_or_path[CONFIG_STR]; /* HF hub name or a local directory */
    /* where: files are data_dir/task/<file>; results go to ckpt_dir/output_dir */
    char data_dir[CONFIG_STR], ckpt_dir[CONFIG_STR], output_dir[CONFIG_STR];
    char train_file[CONFIG_STR], dev_file[CONFIG_STR], test_file[CONFIG_STR];
    char predict_file[CONFIG_STR]; /* korquad's evaluation file */
    int do_train, do_eval, eval_all_checkpoints, do_lower_case, no_cuda, save_optimizer;
    int evaluate_test_during_training; /* seq-cls/NER: evaluate on test instead of dev */
    int evaluate_during_training;      /* korquad */
    /* features; max_seq_len is read from "max_seq_len" or korquad's "max_seq_length" */
    int max_seq_len;
    int doc_stride, max_query_length, max_answer_length, n_best_size; /* korquad */
    int version_2_with_negative;     /* korquad: only false (SQuAD v1) is supported */
    double null_score_diff_threshold; /* korquad, used only with version_2_with_negative */
    /* optimisation */
    double num_train_epochs; /* the original loops int(num_train_epochs) times, t_total uses it as is */
    double learning_rate, weight_decay, adam_epsilon, warmup_proportion, max_grad_norm;
    int gradient_accumulation_steps;
    int max_steps; /* > 0 overrides the epochs; -1 (or 0) means unused */
    int seed, train_batch_size, eval_batch_size;
    int logging_steps, save_steps; /* 0 disables, as `> 0 and step % n == 0` in the original */
    /* this project's: checkpoint weights as model.safetensors ("safetensors", the default),
     * pytorch_model.bin as the original writes them ("bin"), or both ("both") */
    char save_format[16];
    /* which keys were given (bit i = row i of config.c's key table); train_args_to_json writes
     * exactly these, so a saved training_args.json has the same keys as the input config */
    uint64_t present;
} TrainArgs;

/* Sets the defaults, reads and validates path. Warnings (unknown keys) go to stderr. */
int train_args_load(const char *path, TrainArgs *a, Error *e);
/* Applies a command-line override "--key value" (value as a string, parsed per the key's
 * type, same checks as the file). Unknown or ignored keys are errors here. */
int train_args_set(TrainArgs *a, const char *key, const char *value, Error *e);
/* Checks that hold between keys (required keys present, korquad query fits, ...); run
 * by train_args_load and again by the caller after overrides. `where` starts the message. */
int train_args_validate(const TrainArgs *a, const char *where, Error *e);
/* The given keys as a pretty JSON object (heap string; free it). Loading it gives back an
 * equal TrainArgs. Written as training_args.json next to checkpoints. */
char *train_args_to_json(const TrainArgs *a);

#endif
