/* keys.c - CurveZMQ key files for zraftd (see keys.h). Keys come from
 * libzmq (zmq_curve_keypair: libsodium's randombytes); nothing here is
 * cryptography of our own. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "keys.h"

/* Writes `text` + "\n" to a new file `path` with `mode` (O_EXCL unless
 * `replace`: then the old file is replaced by a rename). */
static int s_write(const char *path, const char *text, mode_t mode,
                   bool replace, char *why, size_t whylen)
{
    char tmp[CONFIG_PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    const char *target = replace ? tmp : path;
    if (replace) {
        unlink(tmp);
    }
    int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(why, whylen, "%s: %s", target, strerror(errno));
        return -1;
    }
    size_t len = strlen(text);
    bool ok = fchmod(fd, mode) == 0 && write(fd, text, len) == (ssize_t)len &&
              write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (ok && replace && rename(tmp, path) != 0) {
        ok = false;
    }
    if (!ok) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        unlink(target);
        return -1;
    }
    return 0;
}

int keys_keygen_main(int argc, char **argv)
{
    const char *dir = ".";
    bool force = false;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strncmp(argv[i], "--dir=", 6)) {
            dir = argv[i] + 6;
        } else if (!strcmp(argv[i], "--force")) {
            force = true;
        } else {
            fprintf(stderr, "usage: zraftd keygen [--dir DIR] [--force]\n"
                            "  writes DIR/node.key (secret, mode 0600) and "
                            "DIR/node.pub, prints the public key\n");
            return 2;
        }
    }
    char pub[CONFIG_KEY_MAX], sec[CONFIG_KEY_MAX];
    if (!zmq_has("curve") || zmq_curve_keypair(pub, sec) != 0) {
        fprintf(stderr, "zraftd keygen: this libzmq has no CURVE support\n");
        return 1;
    }
    char kpath[CONFIG_PATH_MAX], ppath[CONFIG_PATH_MAX];
    char why[2 * CONFIG_PATH_MAX];
    if ((size_t)snprintf(kpath, sizeof kpath, "%s/node.key", dir) >=
            sizeof kpath ||
        (size_t)snprintf(ppath, sizeof ppath, "%s/node.pub", dir) >=
            sizeof ppath) {
        fprintf(stderr, "zraftd keygen: directory name too long\n");
        return 2;
    }
    int rv = s_write(kpath, sec, 0600, force, why, sizeof why);
    memset(sec, 0, sizeof sec);
    if (rv != 0) {
        fprintf(stderr, "zraftd keygen: %s%s\n", why,
                errno == EEXIST ? " (use --force to replace it)" : "");
        return 1;
    }
    if (s_write(ppath, pub, 0644, true, why, sizeof why) != 0) {
        fprintf(stderr, "zraftd keygen: %s\n", why);
        return 1;
    }
    printf("%s\n", pub);
    return 0;
}

int keys_load_secret(const char *path, char sec[CONFIG_KEY_MAX],
                     char pub[CONFIG_KEY_MAX], char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "node_key %s: %s (create it with zraftd keygen)",
                 path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
        close(fd);
        snprintf(why, whylen, "node_key %s: others may read it (chmod 600 %s)",
                 path, path);
        return -1;
    }
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) {
        snprintf(why, whylen, "node_key %s: %s", path, strerror(errno));
        return -1;
    }
    buf[n] = '\0';
    size_t len = strcspn(buf, " \t\r\n");
    uint8_t raw[32];
    bool ok = len == CONFIG_KEY_MAX - 1 &&
              buf[len + strspn(buf + len, " \t\r\n")] == '\0';
    if (ok) {
        memcpy(sec, buf, len);
        sec[len] = '\0';
        ok =
            zmq_z85_decode(raw, sec) != NULL && zmq_curve_public(pub, sec) == 0;
    }
    memset(buf, 0, sizeof buf);
    memset(raw, 0, sizeof raw);
    if (!ok) {
        memset(sec, 0, CONFIG_KEY_MAX);
        snprintf(why, whylen,
                 "node_key %s: not a Z85 CURVE secret key (40 characters)",
                 path);
        return -1;
    }
    return 0;
}
