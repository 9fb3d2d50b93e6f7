/* reproduce: the whole benchmark table in one command (see host/reproduce/reproduce.h). */
#include <stdio.h>

#include "host/reproduce/reproduce.h"

/* write a Slurm array, or collect, or run what is left and write the table (also when some
 * runs failed: the table marks them) */
static int reproduce(Bench *b, Error *e) {
    if (b->opt.slurm) return reproduce_write_slurm(b, e);
    reproduce_say_plan(b);
    if (b->opt.collect) return reproduce_write_table(b, now_seconds() - b->started, e);
    if (reproduce_check_jobs(b, e) != 0) return -1;
    Error run_error;
    int runs = reproduce_execute(b, &run_error);
    if (b->opt.only < 0 && reproduce_write_table(b, now_seconds() - b->started, e) != 0) return -1;
    if (runs != 0) *e = run_error;
    return runs;
}

int main(int argc, char **argv) {
    Bench b = {0};
    Error e;
    int rc = reproduce_parse(&b.opt, argc, argv, &e);
    if (rc == 1) return 0;
    b.opt.argc = argc, b.opt.argv = argv;
    b.started = now_seconds();
    if (rc == 0) rc = b.opt.collect ? reproduce_plan_collected(&b, &e) : reproduce_plan(&b, &e);
    if (rc == 0) rc = reproduce(&b, &e);
    if (rc != 0) fprintf(stderr, "error: %s\n", e.msg);
    reproduce_free(&b);
    return rc ? 1 : 0;
}
