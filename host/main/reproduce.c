/* reproduce: the whole benchmark table in one command (see host/reproduce/reproduce.h). */
#include <stdio.h>

#include "host/reproduce/reproduce.h"

int main(int argc, char **argv) {
    Bench b = {0};
    Error e, run_error;
    int rc = reproduce_parse(&b.opt, argc, argv, &e);
    if (rc == 1) return 0;
    b.opt.argc = argc, b.opt.argv = argv;
    b.started = now_seconds();
    if (rc == 0) rc = b.opt.collect ? reproduce_plan_collected(&b, &e) : reproduce_plan(&b, &e);
    if (rc == 0 && b.opt.slurm) {
        rc = reproduce_write_slurm(&b, &e);
    } else if (rc == 0) {
        reproduce_say_plan(&b);
        int runs_rc = b.opt.collect ? 0 : reproduce_execute(&b, &run_error);
        if (b.opt.only < 0) rc = reproduce_write_table(&b, now_seconds() - b.started, &e);
        if (rc == 0 && runs_rc != 0) rc = -1, e = run_error;
    }
    if (rc != 0) fprintf(stderr, "error: %s\n", e.msg);
    reproduce_free(&b);
    return rc ? 1 : 0;
}
