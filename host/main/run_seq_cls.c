/* run_seq_cls: the original's run_seq_cls.py for nsmc, kornli, paws, korsts, question-pair
 * and hate-speech (host/main/programs.c). */
#include "host/main/programs.h"

int main(int argc, char **argv) { return program_seq_cls(argc, argv); }
