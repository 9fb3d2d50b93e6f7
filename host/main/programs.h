/* The three task programs as functions. run_seq_cls, run_ner and run_squad are each a main()
 * that calls one of them, and reproduce runs every task through task_program_main, so a run
 * of the benchmark table is exactly a run of the task's own program. Each takes the program's
 * command line (argv[0] is the program name) and returns its exit status. */
#ifndef KOE_PROGRAMS_H
#define KOE_PROGRAMS_H

#include <stddef.h>

#include "host/base/util.h"
#include "host/tasks/tasks.h"

int program_seq_cls(int argc, char **argv); /* nsmc, kornli, paws, korsts, question-pair, hate-speech */
int program_ner(int argc, char **argv);     /* naver-ner */
int program_squad(int argc, char **argv);   /* korquad */
/* what a run of the program with this command line needs of the backend's memory, and what
 * the backend has (0: unknown), without running it */
int task_program_memory(const TaskInfo *task, int argc, char **argv, size_t *need,
                        size_t *have, Error *e);
/* the program of the task's kind */
int task_program_main(const TaskInfo *task, int argc, char **argv);

#endif
