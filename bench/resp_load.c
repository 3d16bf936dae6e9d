/* resp_load.c - zraft-bench's --resp mode: C connections to a zraftd RESP
 * port, each keeping `pipeline` SETs in flight (256-byte values by default,
 * a key space of 1024 keys per connection), all driven by one epoll thread
 * so that the client costs little next to the cluster on the same cores.
 * Latency: a SET written to its +OK read (committed on a quorum and applied
 * on the leader), replies matched to requests in order. Any other reply
 * counts as an error. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/resp_load.h"

typedef struct {
    int fd;
    uint32_t idx;
    uint64_t seq;
    uint64_t *sent; /* send times of the requests in flight (a ring) */
    uint32_t head, inflight;
    char in[65536];
    size_t in_len;
    char *out;
    size_t out_len, out_off, out_cap;
    bool want_out;
} rconn;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int s_connect(const char *target)
{
    char host[256];
    const char *c = strrchr(target, ':');
    if (c == NULL || (size_t)(c - target) >= sizeof host) {
        return -1;
    }
    memcpy(host, target, (size_t)(c - target));
    host[c - target] = '\0';
    return load_tcp_connect(host, c + 1);
}

/* Queues one SET. */
static void s_set(rconn *c, const char *value, uint32_t vlen, uint32_t pipeline)
{
    char key[48];
    int kl = snprintf(key, sizeof key, "bench:%u:%llu", c->idx,
                      (unsigned long long)(c->seq++ % 1024));
    size_t need = 64 + (size_t)kl + vlen;
    if (c->out_len + need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + need) {
            cap *= 2;
        }
        c->out = realloc(c->out, cap);
        c->out_cap = cap;
    }
    c->out_len += (size_t)sprintf(c->out + c->out_len,
                                  "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%u\r\n", kl,
                                  key, vlen);
    memcpy(c->out + c->out_len, value, vlen);
    c->out_len += vlen;
    memcpy(c->out + c->out_len, "\r\n", 2);
    c->out_len += 2;
    c->sent[(c->head + c->inflight) % pipeline] = now_us();
    c->inflight++;
}

static int s_flush(int ep, rconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            if (!c->want_out) {
                struct epoll_event ev = {EPOLLIN | EPOLLOUT, {.ptr = c}};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                c->want_out = true;
            }
            return 0;
        }
        return -1;
    }
    c->out_len = c->out_off = 0;
    if (c->want_out) {
        struct epoll_event ev = {EPOLLIN, {.ptr = c}};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = false;
    }
    return 0;
}

int resp_load_run(const resp_load_opts *o, http_load_result *r)
{
    uint32_t pipeline = o->pipeline ? o->pipeline : 1;
    memset(r, 0, sizeof(*r));
    r->hist = calloc(HTTP_HIST_US, sizeof(uint32_t));
    rconn *cs = calloc(o->clients, sizeof(rconn));
    char *value = malloc(o->payload);
    memset(value, 'x', o->payload);
    int ep = epoll_create1(0);
    for (uint32_t i = 0; i < o->clients; i++) {
        rconn *c = &cs[i];
        c->idx = i;
        c->sent = calloc(pipeline, sizeof(uint64_t));
        c->fd = s_connect(o->target);
        if (c->fd < 0) {
            fprintf(stderr, "zraft-bench: cannot connect to %s\n", o->target);
            return -1;
        }
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {EPOLLIN, {.ptr = c}};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    uint64_t issued = 0;
    bool stopping = false;
    uint64_t t0 = now_us(), last = t0, last_done = 0, last_sample = t0;
    for (uint32_t i = 0; i < o->clients; i++) {
        for (uint32_t k = 0; k < pipeline; k++) {
            if (o->ops == 0 || issued < o->ops) {
                s_set(&cs[i], value, o->payload, pipeline);
                issued++;
            }
        }
        s_flush(ep, &cs[i]);
    }
    uint64_t in_flight = issued;
    struct epoll_event evs[256];
    while (in_flight > 0) {
        int n = epoll_wait(ep, evs, 256, 100);
        uint64_t t = now_us();
        if (!stopping && o->ops == 0 &&
            t - t0 >= (uint64_t)(o->duration * 1e6)) {
            stopping = true;
        }
        for (int e = 0; e < n; e++) {
            rconn *c = evs[e].data.ptr;
            if (evs[e].events & EPOLLOUT) {
                s_flush(ep, c);
            }
            if (!(evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                continue;
            }
            ssize_t got =
                read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN) {
                    continue;
                }
                fprintf(stderr, "zraft-bench: connection %u closed\n", c->idx);
                r->errors += c->inflight;
                in_flight -= c->inflight;
                c->inflight = 0;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                continue;
            }
            c->in_len += (size_t)got;
            size_t off = 0;
            uint32_t done_here = 0;
            uint64_t now = now_us();
            for (;;) {
                char *nl = memchr(c->in + off, '\n', c->in_len - off);
                if (nl == NULL) {
                    break;
                }
                bool ok = c->in[off] == '+';
                if (c->in[off] == '$' || c->in[off] == '*') {
                    ok = false; /* not a SET reply; skip its line only */
                }
                off = (size_t)(nl - c->in) + 1;
                uint64_t us = now - c->sent[c->head];
                c->head = (c->head + 1) % pipeline;
                c->inflight--;
                in_flight--;
                done_here++;
                if (ok) {
                    r->done++;
                    if (us < HTTP_HIST_US) {
                        r->hist[us]++;
                    }
                    if (us > r->max_us) {
                        r->max_us = us;
                    }
                } else {
                    r->errors++;
                }
            }
            memmove(c->in, c->in + off, c->in_len - off);
            c->in_len -= off;
            for (uint32_t k = 0; k < done_here && !stopping; k++) {
                if (o->ops > 0 && issued >= o->ops) {
                    break;
                }
                s_set(c, value, o->payload, pipeline);
                issued++;
                in_flight++;
            }
            s_flush(ep, c);
        }
        if (o->sample != NULL && t - last_sample >= 100000) {
            o->sample(o->sample_arg, t - t0, r->done);
            last_sample = t;
        }
        if (t - last >= 1000000 && (o->duration > 3 || o->ops > 0)) {
            fprintf(stderr, "  %5.1fs  %10llu ops  %10.0f writes/s\n",
                    (double)(t - t0) / 1e6, (unsigned long long)r->done,
                    (double)(r->done - last_done) * 1e6 / (double)(t - last));
            last_done = r->done;
            last = t;
        }
    }
    r->elapsed_us = now_us() - t0;
    for (uint32_t i = 0; i < o->clients; i++) {
        close(cs[i].fd);
        free(cs[i].sent);
        free(cs[i].out);
    }
    close(ep);
    free(cs);
    free(value);
    return 0;
}
