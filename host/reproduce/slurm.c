/* A cluster when one machine is not enough: a Slurm job array with one array task per run
 * (each on one GPU) that calls this same program with --only K; `reproduce --collect DIR`
 * then builds the table from the run folders, whatever machines wrote them. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/reproduce/reproduce.h"

/* argv[i] for a shell line, quoted when it is not plain */
static void put_arg(FILE *f, const char *s) {
    int plain = s[0] && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                  "-_./=,:+") == strlen(s);
    if (plain) fprintf(f, " %s", s);
    else {
        fputs(" '", f);
        for (; *s; s++) *s == '\'' ? fputs("'\\''", f) : fputc(*s, f);
        fputc('\'', f);
    }
}

int reproduce_write_slurm(const Bench *b, Error *e) {
    char cwd[PATH_MAX], self[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return errorf(e, "reproduce: cannot read the current folder");
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1); /* argv[0] may be bare */
    if (n <= 0) return errorf(e, "reproduce: cannot find its own executable");
    self[n] = 0;
    if (make_dirs(b->opt.out, e) != 0) return -1; /* sbatch does not make the --output folder */
    char *tmp = strfmt("%s.tmp", b->opt.slurm);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        int rc = errorf(e, "%s: cannot write", tmp);
        free(tmp);
        return rc;
    }
    fprintf(f, "#!/bin/bash\n# %d runs of the KoELECTRA benchmark (%s), one Slurm array task each.\n"
               "# Then: %s --collect %s --model %s\n", b->n_runs, b->opt.model, self, b->opt.out,
            b->opt.model);
    fprintf(f, "#SBATCH --job-name=koelectra-%s\n#SBATCH --array=0-%d\n#SBATCH --ntasks=1\n",
            b->opt.model, b->n_runs - 1);
    if (!b->opt.no_cuda) fprintf(f, "#SBATCH --gres=gpu:1\n");
    fprintf(f, "#SBATCH --output=%s/slurm-%%A_%%a.out\nset -euo pipefail\ncd", b->opt.out);
    put_arg(f, cwd);
    fprintf(f, "\nexec");
    put_arg(f, self);
    for (int i = 1; i < b->opt.argc; i++) {
        if (!strcmp(b->opt.argv[i], "--slurm") || !strcmp(b->opt.argv[i], "--jobs") ||
            !strcmp(b->opt.argv[i], "--devices")) {
            i++;
            continue;
        }
        put_arg(f, b->opt.argv[i]);
    }
    fprintf(f, " --only \"$SLURM_ARRAY_TASK_ID\"\n");
    int rc = 0;
    if (fclose(f) != 0 || rename(tmp, b->opt.slurm) != 0) rc = errorf(e, "%s: cannot write", b->opt.slurm);
    if (rc == 0) fprintf(stderr, "reproduce: wrote %s (%d array tasks): sbatch %s; when they are done: "
                         "%s --collect %s --model %s\n", b->opt.slurm, b->n_runs, b->opt.slurm,
                         self, b->opt.out, b->opt.model);
    free(tmp);
    return rc;
}
