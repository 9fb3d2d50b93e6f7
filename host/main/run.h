/* What run_seq_cls, run_ner and run_squad share: the command line (the original's
 * --task/--config_dir/--config_file plus --key value overrides of any config key), finding
 * the data, the model (HF folder, HF cache, or the documented architecture with random
 * weights), the tokenizer and the backend. */
#ifndef KOE_RUN_H
#define KOE_RUN_H

#include "host/formats/config.h"
#include "host/model/model.h"
#include "host/tasks/task.h"
#include "host/text/tokenizer.h"
#include "host/train/train.h"

typedef struct {
    TrainArgs args;
    const TaskInfo *task;
    BatchLayout layout;       /* --pad_to_max_length, --unpadded; else dynamic */
    const char *resume_from;  /* --resume_from_checkpoint */
    const char *vocab_file;   /* --vocab_file: a vocabulary file or a folder of tokenizer files */
    const char *model_config; /* --model_config: an HF config.json that sets the architecture */
    char *model_dir;          /* the resolved HF folder, or NULL */
    char *weights;            /* its weights file, or NULL (random init) */
    char *vocab_dir;          /* folder the tokenizer files came from */
    char *config_path;        /* the task config file read */
    char *model_config_path;  /* the architecture's config.json, or "<model_type> (built in)" */
    int argc;                 /* the command line, to tell overrides from the file's keys */
    char **argv;
    ModelConfig cfg;
    const Backend *be;
    Tokenizer *tok;
    char **input_labels;      /* id2label of the input config.json, when it fits the head */
    int n_input_labels;
    int lock_fd;              /* output_dir/.lock, held from run_setup to run_free; -1 */
} Run;

/* parses argv; `kinds` lists the task kinds this program runs. Prints --help and returns 1
 * when asked; returns -1 with e filled on bad input. */
int run_parse(Run *r, int argc, char **argv, const char *program, const TaskKind *kinds,
              int n_kinds, Error *e);
/* resolves the model, tokenizer and backend; refuses, naming the files and keys, a
 * max_seq_len beyond max_position_embeddings, a vocab_size below the tokenizer's and a model
 * too large for the backend's memory. Touches no file. */
int run_resolve(Run *r, Error *e);
/* run_resolve, then locks the run folder (see run_folder_lock) and prints what was chosen */
int run_setup(Run *r, Error *e);
/* the backend bytes the run's model needs: weights, gradients, AdamW moments, activations */
size_t run_memory_need(const Run *r);
/* data_dir/task/file, falling back to $KOELECTRA_DATA_DIR/task/file; NULL for "" */
char *run_data_path(const Run *r, const char *file);
/* reads and encodes the split files (NULL or "": none) through the task's family */
int run_load_task(const Run *r, Task *task, const char *const files[N_SPLITS], Error *e);
/* creates the model for t->task (sized for the larger of the train and eval batches,
 * max_seq_len long), loads or initialises its weights, runs t and frees the model. The caller
 * has set t->task (and run_squad its hooks); t0 is when reading and tokenising started. */
int run_train(Run *r, Trainer *t, double t0, Error *e);
void run_free(Run *r);

#endif
