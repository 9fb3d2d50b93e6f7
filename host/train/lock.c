/* One run per run folder: output_dir/.lock is flock()ed for the whole run and holds the
 * holder's pid. The kernel drops the lock when the process ends, however it ends, so a killed
 * run never leaves the folder locked; the file itself stays (removing it would let two runs
 * lock two different files of the same name). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "host/train/train.h"

/* the pid written in the lock file by its holder, 0 when not (yet) there */
static long holder_pid(int fd) {
    char buf[32] = {0};
    if (pread(fd, buf, sizeof buf - 1, 0) <= 0) return 0;
    return strtol(buf, NULL, 10);
}

int run_folder_lock(const char *dir, Error *e) {
    if (make_dirs(dir, e) != 0) return -1;
    char *path = strfmt("%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        errorf(e, "%s: cannot open the run folder's lock file: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        long pid = busy ? holder_pid(fd) : 0;
        if (!busy) errorf(e, "%s: cannot lock: %s", path, strerror(errno));
        else if (pid > 0) errorf(e, "%s: in use by another run (pid %ld holds %s); wait for it to end "
                                 "or choose another output_dir", dir, pid, path);
        else errorf(e, "%s: in use by another run (it holds %s); wait for it to end or choose "
                    "another output_dir", dir, path);
        close(fd);
        free(path);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        errorf(e, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
        free(path);
        return -1;
    }
    free(path);
    return fd;
}

void run_folder_unlock(int fd) {
    if (fd >= 0) close(fd);
}
