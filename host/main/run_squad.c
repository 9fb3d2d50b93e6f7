/* run_squad: the original's run_squad.py for korquad (host/main/programs.c says how its
 * procedure differs from run_seq_cls.py). */
#include "host/main/programs.h"

int main(int argc, char **argv) { return program_squad(argc, argv); }
