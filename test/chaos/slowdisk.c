/* slowdisk.c - an LD_PRELOAD shim for the chaos campaign's slow-disk
 * fault: fdatasync and fsync first sleep for as many milliseconds as the
 * file named by ZRAFT_SLOWDISK holds (no file, or 0: no delay), then do
 * the real call. zraft-chaos writes the file to slow one node's disk and
 * removes it to heal. Reading the file costs an open and a read per sync,
 * small next to the sync itself. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void s_delay(void)
{
    const char *path = getenv("ZRAFT_SLOWDISK");
    if (path == NULL) {
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    char buf[16];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) {
        return;
    }
    buf[n] = '\0';
    long ms = strtol(buf, NULL, 10);
    if (ms > 0 && ms <= 10000) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    }
    s_delay();
    return real(fd);
}

int fsync(int fd)
{
    static int (*real)(int);
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    }
    s_delay();
    return real(fd);
}
