/* The original's training procedure (run_seq_cls.py / run_ner.py / run_squad.py train()):
 * seeded random sampling, gradient accumulation, linear warmup/decay, clipping, evaluation
 * every logging_steps, checkpoints every save_steps; plus what a user of a long run wants:
 * a progress line, a JSONL log, resumable checkpoints and a timing summary. */
#ifndef KOE_TRAIN_H
#define KOE_TRAIN_H

#include <stdio.h>

#include "host/formats/config.h"
#include "host/model/model.h"
#include "host/tasks/task.h"
#include "host/text/tokenizer.h"

#include "host/train/batch.h"

typedef struct Trainer Trainer;

typedef struct {
    double tokenize, train, eval, checkpoint;
} Timings;

struct Trainer {
    TrainArgs *args;
    Model *model;
    const Tokenizer *tok;
    const char *vocab_dir; /* tokenizer files copied into checkpoints */
    const Task *task;      /* its splits' features and its evaluation */
    const char *const *labels; /* config.json's id2label names (num_labels), or NULL: LABEL_<i> */
    BatchLayout layout;
    const char *resume_from; /* checkpoint folder or NULL */
    const char *init_weights; /* the pretrained weights file the model started from, or NULL
                                 (random initialisation) */
    FILE *log;               /* output_dir/log.jsonl */
    int log_errno;           /* why the first failed log write failed; 0 when none did */
    Timings time;
    int global_step;
    double train_loss_sum;     /* the original's tr_loss */
    long samples_seen;         /* over the whole run, resumes included */
    long samples_seen_run;     /* in this process, for throughput */
    long tokens_seen_run;      /* real (non-padding) tokens trained on in this process */
    char *last_checkpoint;     /* newest checkpoint folder written */
    Metrics *test_evals;       /* test results during training, by step, reused at the end */
    int *test_eval_steps, n_test_evals;
    /* run_squad's hook; zero gives run_seq_cls's and run_ner's behaviour */
    int first_step;              /* global_step before the first update: run_squad.py starts
                                    at 1, so its step N has had N - 1 updates */
};

/* the whole run as the original's main(): train (if do_train), then evaluate every
 * checkpoint on test (if do_eval) and write eval_results.txt and results.json */
int trainer_run(Trainer *t, Error *e);

/* what transformers reads of a checkpoint, into the folder dir: config.json (the finetuned
 * class, labels, tokenizer_class), the weights as args->save_format says (model.safetensors,
 * pytorch_model.bin or both), the tokenizer's files and a tokenizer_config.json naming its
 * class (and do_lower_case for WordPiece) */
int checkpoint_write_hf(const Trainer *t, const char *dir, Error *e);

/* takes output_dir/.lock (flock, released when the process ends) and writes our pid in it;
 * returns its descriptor, or -1 with "<dir>: in use by another run (pid N ...)" when another
 * process holds it. Creates dir when missing; touches nothing else in it. */
int run_folder_lock(const char *dir, Error *e);
void run_folder_unlock(int fd);

/* runs the model over f in eval_batch_size batches (no dropout) and returns the logits laid
 * out as [n, rows, L] with rows = 1 (seq cls) or max_len (token heads); padding rows are 0.
 * *loss receives the mean eval loss over batches when f has labels. */
float *trainer_predict(Trainer *t, const Features *f, double *loss);

#endif
