/* run_ner: the original's run_ner.py for naver-ner (host/main/programs.c; host/tasks/ner.c
 * evaluates). With no dev_file the original evaluates on test during training. */
#include "host/main/programs.h"

int main(int argc, char **argv) { return program_ner(argc, argv); }
