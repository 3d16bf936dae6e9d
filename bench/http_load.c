/* http_load.c - zraft-bench's --http mode: C client threads, each with a
 * keep-alive HTTP/1.1 connection, PUT /kv/<key> against a running zraftd
 * cluster (any node; 307 redirects to the leader are followed by
 * reconnecting). Latency: request sent to 204 received (committed on a
 * quorum and applied on the leader). */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/http_load.h"

typedef struct {
    const http_load_opts *o;
    uint32_t idx;
    char host[128];
    int port;
    int fd;
    uint64_t done, errors;
    uint32_t *hist;
    uint64_t max_us;
} hclient;

static _Atomic bool g_stop;
static _Atomic uint64_t g_issued;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int s_split(const char *hp, char *host, size_t cap, int *port)
{
    const char *c = strrchr(hp, ':');
    if (c == NULL || (size_t)(c - hp) >= cap) {
        return -1;
    }
    memcpy(host, hp, (size_t)(c - hp));
    host[c - hp] = '\0';
    *port = atoi(c + 1);
    return *port > 0 ? 0 : -1;
}

int load_tcp_connect(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *res;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int s_connect(hclient *c)
{
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    c->fd = load_tcp_connect(c->host, port);
    return c->fd >= 0 ? 0 : -1;
}

/* Reads one response: status, and Location for redirects. -1 on error. */
static int s_response(hclient *c, char *location, size_t cap)
{
    char buf[4096];
    size_t got = 0;
    char *end = NULL;
    while (end == NULL) {
        if (got == sizeof buf - 1) {
            return -1;
        }
        ssize_t n = read(c->fd, buf + got, sizeof buf - 1 - got);
        if (n <= 0) {
            return -1;
        }
        got += (size_t)n;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1) {
        return -1;
    }
    size_t clen = 0;
    for (char *l = strstr(buf, "\r\n"); l && l < end;
         l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, "Content-Length:", 15) == 0) {
            clen = (size_t)strtoul(l + 17, NULL, 10);
        } else if (strncasecmp(l + 2, "Location:", 9) == 0 && location) {
            const char *v = l + 12; /* after "\r\nLocation: " */
            size_t n = strcspn(v, "\r");
            snprintf(location, cap, "%.*s", (int)n, v);
        }
    }
    /* Drain the body. */
    size_t have = got - (size_t)(end + 4 - buf);
    while (have < clen) {
        ssize_t n = read(c->fd, buf,
                         sizeof buf < clen - have ? sizeof buf : clen - have);
        if (n <= 0) {
            return -1;
        }
        have += (size_t)n;
    }
    return status;
}

static void *s_main(void *arg)
{
    hclient *c = arg;
    const http_load_opts *o = c->o;
    char *payload = malloc(o->payload);
    memset(payload, 'x', o->payload);
    char req[512];
    uint64_t n = 0;
    while (!atomic_load(&g_stop)) {
        if (o->ops > 0 && atomic_fetch_add(&g_issued, 1) >= o->ops) {
            atomic_fetch_sub(&g_issued, 1); /* the count stays exact */
            break;
        }
        if (c->fd < 0 && s_connect(c) != 0) {
            __atomic_store_n(&c->errors, c->errors + 1, __ATOMIC_RELAXED);
            usleep(10000); /* the node is down: back off before retrying */
            continue;
        }
        int hl = snprintf(req, sizeof req,
                          "PUT /kv/bench-%u-%llu HTTP/1.1\r\nHost: %s\r\n"
                          "Content-Length: %u\r\n\r\n",
                          c->idx, (unsigned long long)n++, c->host, o->payload);
        uint64_t t0 = now_us();
        if (write(c->fd, req, (size_t)hl) != hl ||
            write(c->fd, payload, o->payload) != (ssize_t)o->payload) {
            close(c->fd);
            c->fd = -1;
            __atomic_store_n(&c->errors, c->errors + 1, __ATOMIC_RELAXED);
            continue;
        }
        char loc[256] = "";
        int st = s_response(c, loc, sizeof loc);
        uint64_t us = now_us() - t0;
        if (st == 204) {
            /* One writer; the watching thread reads it (progress, report). */
            __atomic_store_n(&c->done, c->done + 1, __ATOMIC_RELAXED);
            if (us < HTTP_HIST_US) {
                c->hist[us]++;
            }
            if (us > c->max_us) {
                c->max_us = us;
            }
        } else if (st == 307 && strncmp(loc, "http://", 7) == 0) {
            char hp[200];
            snprintf(hp, sizeof hp, "%.*s", (int)strcspn(loc + 7, "/"),
                     loc + 7);
            close(c->fd);
            c->fd = -1;
            s_split(hp, c->host, sizeof c->host, &c->port);
            if (o->ops > 0) {
                atomic_fetch_sub(&g_issued, 1); /* not done: asked again */
            }
        } else {
            __atomic_store_n(&c->errors, c->errors + 1, __ATOMIC_RELAXED);
            if (st < 0) {
                close(c->fd);
                c->fd = -1;
            }
        }
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    free(payload);
    return NULL;
}

static uint64_t s_finished(hclient *cs, uint32_t n)
{
    uint64_t f = 0;
    for (uint32_t i = 0; i < n; i++) {
        f += __atomic_load_n(&cs[i].done, __ATOMIC_RELAXED) +
             __atomic_load_n(&cs[i].errors, __ATOMIC_RELAXED);
    }
    return f;
}

int http_load_run(const http_load_opts *o, http_load_result *r)
{
    hclient *cs = calloc(o->clients, sizeof(hclient));
    pthread_t *ts = calloc(o->clients, sizeof(pthread_t));
    memset(r, 0, sizeof(*r));
    r->hist = calloc(HTTP_HIST_US, sizeof(uint32_t));
    atomic_store(&g_stop, false);
    atomic_store(&g_issued, 0);
    uint64_t t0 = now_us();
    for (uint32_t i = 0; i < o->clients; i++) {
        cs[i].o = o;
        cs[i].idx = i;
        cs[i].fd = -1;
        cs[i].hist = calloc(HTTP_HIST_US, sizeof(uint32_t));
        if (s_split(o->target, cs[i].host, sizeof cs[i].host, &cs[i].port) !=
            0) {
            fprintf(stderr, "zraft-bench: --http wants host:port\n");
            return -1;
        }
        pthread_create(&ts[i], NULL, s_main, &cs[i]);
    }
    uint64_t last = t0, last_done = 0;
    /* With --ops N: until N writes finished (done or failed); a redirect
     * gives its slot back, so N counts writes, not attempts. */
    while (o->ops == 0 || s_finished(cs, o->clients) < o->ops) {
        usleep(100000);
        uint64_t t = now_us();
        if (o->ops == 0 && t - t0 >= (uint64_t)(o->duration * 1e6)) {
            break;
        }
        if (o->sample != NULL) {
            uint64_t d = 0;
            for (uint32_t i = 0; i < o->clients; i++) {
                d += __atomic_load_n(&cs[i].done, __ATOMIC_RELAXED);
            }
            o->sample(o->sample_arg, t - t0, d);
        }
        if (t - last >= 1000000 && (o->duration > 3 || o->ops > 0)) {
            uint64_t d = 0;
            for (uint32_t i = 0; i < o->clients; i++) {
                d += __atomic_load_n(&cs[i].done, __ATOMIC_RELAXED);
            }
            fprintf(stderr, "  %5.1fs  %10llu ops  %10.0f writes/s\n",
                    (double)(t - t0) / 1e6, (unsigned long long)d,
                    (double)(d - last_done) * 1e6 / (double)(t - last));
            last_done = d;
            last = t;
        }
    }
    atomic_store(&g_stop, true);
    for (uint32_t i = 0; i < o->clients; i++) {
        pthread_join(ts[i], NULL);
        r->done += cs[i].done;
        r->errors += cs[i].errors;
        for (uint32_t k = 0; k < HTTP_HIST_US; k++) {
            r->hist[k] += cs[i].hist[k];
        }
        if (cs[i].max_us > r->max_us) {
            r->max_us = cs[i].max_us;
        }
        free(cs[i].hist);
    }
    r->elapsed_us = now_us() - t0;
    free(cs);
    free(ts);
    return 0;
}
