/* netutil.c - the pieces zraftd's front ends share (see netutil.h). */
#include "netutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

uint64_t netutil_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int netutil_listen(const char *addr, const char *what, char *why, size_t whylen)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof host) {
        snprintf(why, whylen, "%s '%s' must be host:port", what, addr);
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host[0] ? host : "0.0.0.0", colon + 1, &hints, &res);
    if (gai != 0) {
        snprintf(why, whylen, "%s '%s': %s", what, addr, gai_strerror(gai));
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
        snprintf(why, whylen, "cannot listen on %s: %s", addr, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

uint16_t netutil_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    return ntohs(sa.sin_port);
}

void netutil_wake(int efd)
{
    uint64_t one = 1;
    ssize_t rv = write(efd, &one, sizeof one);
    (void)rv; /* EAGAIN: the counter is already non-zero */
}

void netutil_wake_clear(int efd)
{
    uint64_t v;
    ssize_t rd = read(efd, &v, sizeof v);
    (void)rd;
}

int64_t netutil_sooner(int64_t t, uint64_t when, uint64_t now)
{
    int64_t d = when > now ? (int64_t)(when - now) : 0;
    return t < 0 || d < t ? d : t;
}

void netutil_wait_outstanding(pthread_cond_t *cond, pthread_mutex_t *lock,
                              _Atomic size_t *outstanding, uint32_t wait_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += wait_ms / 1000;
    dl.tv_nsec += (long)(wait_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    while (atomic_load(outstanding) > 0 &&
           pthread_cond_timedwait(cond, lock, &dl) != ETIMEDOUT) {
    }
}
