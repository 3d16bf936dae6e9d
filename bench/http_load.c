/* http_load.c - zraft-bench's --http mode: C keep-alive HTTP/1.1
 * connections, each a closed loop with exactly one PUT /kv/<key> in flight,
 * against a running zraftd cluster (any node; a 307 redirect to the leader
 * is followed by reconnecting to the Location's host:port and asking
 * again). 204 counts as done; anything else (another status, a closed
 * connection, a response cut short, a refused connect) counts as an error.
 * Latency: request sent to 204 received (committed on a quorum and applied
 * on the leader).
 *
 * All connections are driven by one thread with epoll (non-blocking
 * sockets, non-blocking connects): a thread per client made every response
 * a thread wake-up and cost the bench ~32 us of CPU per write on the same
 * cores as the cluster it measures. The sockets stay registered for input
 * only; output interest is added only while a connect or a send is
 * pending, so a request costs one send and one read, no epoll_ctl. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/http_load.h"

#define IN_CAP     4096     /* a response's head must fit */
#define BACKOFF_US 10000    /* a refused connect waits this long */
#define DRAIN_US   10000000 /* at the end: wait this long for answers */
#define HOST_CAP   128

typedef enum {
    C_IDLE,       /* no request: waiting for a slot, or finished */
    C_BACKOFF,    /* the last connect failed: retry at retry_at */
    C_CONNECTING, /* non-blocking connect in progress */
    C_SENDING,    /* request partly sent */
    C_READING,    /* request sent, response not complete */
} cstate;

typedef struct {
    uint32_t idx;
    cstate st;
    int fd;
    bool want_out;       /* EPOLLOUT registered */
    char host[HOST_CAP]; /* where this connection goes (after redirects) */
    int port;
    uint64_t seq;
    uint64_t t0, retry_at;
    char *out; /* the request: head, then payload */
    size_t out_len, out_off;
    char in[IN_CAP];
    size_t in_len;
} hconn;

typedef struct {
    const http_load_opts *o;
    int ep;
    hconn *cs;
    const char *payload;
    uint64_t issued;   /* requests given a slot (--ops) */
    uint64_t inflight; /* connections with a request pending */
    bool stopping;
    http_load_result *r;
} hload;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int s_split(const char *hp, char *host, size_t cap, int *port)
{
    const char *c = strrchr(hp, ':');
    if (c == NULL || c == hp || (size_t)(c - hp) >= cap) {
        return -1;
    }
    memcpy(host, hp, (size_t)(c - hp));
    host[c - hp] = '\0';
    *port = atoi(c + 1);
    return *port > 0 && *port < 65536 ? 0 : -1;
}

/* host:port as an IPv4 socket address; -1 if it does not resolve. */
static int s_resolve(const char *host, const char *port,
                     struct sockaddr_storage *sa, socklen_t *len)
{
    struct addrinfo hints = {0}, *res;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        return -1;
    }
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int load_tcp_connect(const char *host, const char *port)
{
    struct sockaddr_storage sa;
    socklen_t len;
    if (s_resolve(host, port, &sa, &len) != 0) {
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        connect(fd, (struct sockaddr *)&sa, len) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
    return fd;
}

static void s_interest(hload *L, hconn *c, bool out)
{
    if (c->want_out != out) {
        struct epoll_event ev = {EPOLLIN | (out ? EPOLLOUT : 0), {.ptr = c}};
        epoll_ctl(L->ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = out;
    }
}

static void s_close(hload *L, hconn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(L->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->want_out = false;
    c->in_len = 0;
}

/* The request in flight ends without a 204 (its slot is used up). */
static void s_fail(hload *L, hconn *c, bool drop)
{
    L->r->errors++;
    L->inflight--;
    c->st = C_IDLE;
    if (drop) {
        s_close(L, c);
    }
}

/* The connection failed (counted): the client asks again on a new one,
 * from the loop, at `at` (us; 0: at once). */
static void s_later(hconn *c, uint64_t at)
{
    c->st = C_BACKOFF;
    c->retry_at = at;
}

/* Starts a non-blocking connect to c->host:c->port; -1 if it failed at
 * once (the caller counts the error). */
static int s_connect(hload *L, hconn *c)
{
    char port[16];
    struct sockaddr_storage sa;
    socklen_t len;
    snprintf(port, sizeof port, "%d", c->port);
    if (s_resolve(c->host, port, &sa, &len) != 0) {
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0) {
        return -1;
    }
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        (connect(fd, (struct sockaddr *)&sa, len) != 0 &&
         errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    /* Writable means connected (or failed: SO_ERROR says which). */
    struct epoll_event ev = {EPOLLIN | EPOLLOUT, {.ptr = c}};
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->want_out = true;
    c->st = C_CONNECTING;
    return 0;
}

/* Sends what is left of the request; the connection then waits for its
 * response, or for room to send the rest. */
static void s_send(hload *L, hconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->st = C_SENDING;
            s_interest(L, c, true);
            return;
        } else {
            s_fail(L, c, true);
            s_later(c, 0);
            return;
        }
    }
    c->st = C_READING;
    s_interest(L, c, false);
}

/* Writes the next request into c->out and sends it. */
static void s_request(hload *L, hconn *c)
{
    const http_load_opts *o = L->o;
    int hl =
        snprintf(c->out, 512,
                 "PUT /kv/bench-%u-%llu HTTP/1.1\r\nHost: %s\r\n"
                 "Content-Length: %u\r\n\r\n",
                 c->idx, (unsigned long long)c->seq++, c->host, o->payload);
    memcpy(c->out + hl, L->payload, o->payload);
    c->out_len = (size_t)hl + o->payload;
    c->out_off = 0;
    c->t0 = now_us();
    s_send(L, c);
}

/* An idle connection takes its next request, if the run wants one. */
static void s_next(hload *L, hconn *c, uint64_t now)
{
    const http_load_opts *o = L->o;
    if (L->stopping || (o->ops > 0 && L->issued >= o->ops)) {
        c->st = C_IDLE;
        return;
    }
    L->issued++;
    L->inflight++;
    if (c->fd >= 0) {
        s_request(L, c);
    } else if (s_connect(L, c) != 0) {
        /* The node is down: count it, back off before retrying. */
        s_fail(L, c, true);
        s_later(c, now + BACKOFF_US);
    }
}

/* Parses a complete response head in c->in (NUL-terminated, `end` at its
 * blank line): status, Content-Length, Location. -1 if it is not HTTP/1.x
 * or its body length is unknown. */
static int s_head(hconn *c, char *end, size_t *clen, char *loc, size_t cap)
{
    int status = 0;
    if (sscanf(c->in, "HTTP/1.%*1[01] %3d", &status) != 1) {
        return -1;
    }
    *clen = 0;
    loc[0] = '\0';
    for (char *l = strstr(c->in, "\r\n"); l != NULL && l < end;
         l = strstr(l + 2, "\r\n")) {
        const char *h = l + 2;
        if (strncasecmp(h, "Content-Length:", 15) == 0) {
            char *e;
            unsigned long long v = strtoull(h + 15, &e, 10);
            if (e == h + 15 || v > (1u << 30)) {
                return -1;
            }
            *clen = (size_t)v;
        } else if (strncasecmp(h, "Transfer-Encoding:", 18) == 0) {
            return -1; /* chunked: not what zraftd sends to a PUT */
        } else if (strncasecmp(h, "Location:", 9) == 0) {
            const char *v = h + 9;
            v += strspn(v, " \t");
            snprintf(loc, cap, "%.*s", (int)strcspn(v, "\r"), v);
        }
    }
    return status;
}

/* Follows a 307 to http://host:port/...: the request is asked again there
 * (its slot given back, so --ops counts writes, not attempts). A Location
 * that names no host:port is an error. */
static void s_redirect(hload *L, hconn *c, const char *loc, uint64_t now)
{
    char hp[200], host[HOST_CAP];
    int port;
    snprintf(hp, sizeof hp, "%.*s", (int)strcspn(loc + 7, "/"), loc + 7);
    if (s_split(hp, host, sizeof host, &port) != 0) {
        s_fail(L, c, false);
        s_next(L, c, now);
        return;
    }
    s_close(L, c);
    memcpy(c->host, host, sizeof host);
    c->port = port;
    L->inflight--;
    L->issued--;
    c->st = C_IDLE;
    s_next(L, c, now);
}

/* One response is complete in c->in[0..head+clen): account for it. */
static void s_answer(hload *L, hconn *c, int st, const char *loc, uint64_t now)
{
    http_load_result *r = L->r;
    if (st == 204) {
        uint64_t us = now - c->t0;
        r->done++;
        if (us < HTTP_HIST_US) {
            r->hist[us]++;
        }
        if (us > r->max_us) {
            r->max_us = us;
        }
        L->inflight--;
        c->st = C_IDLE;
        s_next(L, c, now);
    } else if (st == 307 && strncmp(loc, "http://", 7) == 0) {
        s_redirect(L, c, loc, now);
    } else {
        s_fail(L, c, false);
        s_next(L, c, now);
    }
}

/* Reads what the socket has; handles the response once it is complete.
 * The body (if any) must be in the buffer too: zraftd answers a PUT with
 * at most a short error text. */
static void s_read(hload *L, hconn *c, uint64_t now)
{
    for (;;) {
        if (c->in_len == IN_CAP - 1) {
            s_fail(L, c, true); /* a head or body this long: not ours */
            s_later(c, 0);
            return;
        }
        ssize_t n = read(c->fd, c->in + c->in_len, IN_CAP - 1 - c->in_len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n <= 0) {
            /* Closed (or reset) with the response missing or cut short. */
            if (c->st == C_READING || c->st == C_SENDING) {
                s_fail(L, c, true);
                s_later(c, 0);
            } else {
                s_close(L, c);
            }
            return;
        }
        if (c->st != C_READING) {
            /* Bytes nobody asked for: the connection is out of step. */
            if (c->st == C_SENDING) {
                s_fail(L, c, true);
                s_later(c, 0);
            } else {
                s_close(L, c);
            }
            return;
        }
        c->in_len += (size_t)n;
        c->in[c->in_len] = '\0';
        char *end = strstr(c->in, "\r\n\r\n");
        if (end == NULL) {
            continue;
        }
        size_t clen;
        char loc[256];
        int st = s_head(c, end, &clen, loc, sizeof loc);
        size_t head = (size_t)(end + 4 - c->in);
        if (st < 0 || head + clen > IN_CAP - 1) {
            s_fail(L, c, true);
            s_later(c, 0);
            return;
        }
        if (c->in_len < head + clen) {
            continue;
        }
        /* One request in flight: anything after this response is junk. */
        bool extra = c->in_len > head + clen;
        c->in_len = 0;
        if (extra) {
            s_fail(L, c, true);
            s_later(c, 0);
            return;
        }
        s_answer(L, c, st, loc, now);
        return;
    }
}

/* The connect finished (or failed), or there is room to send. */
static void s_writable(hload *L, hconn *c, uint64_t now)
{
    if (c->st == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
            err != 0) {
            s_fail(L, c, true);
            s_later(c, now + BACKOFF_US);
            return;
        }
        s_request(L, c);
    } else if (c->st == C_SENDING) {
        s_send(L, c);
    } else {
        s_interest(L, c, false);
    }
}

static void s_event(hload *L, hconn *c, uint32_t ev, uint64_t now)
{
    /* A failed connect may report only an error or a hang-up. */
    if ((ev & EPOLLOUT) ||
        (c->st == C_CONNECTING && (ev & (EPOLLERR | EPOLLHUP)))) {
        s_writable(L, c, now);
    }
    if (c->fd >= 0 && c->st != C_CONNECTING &&
        (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        s_read(L, c, now);
    }
}

/* Restarts the connections whose back-off is over; the time until the
 * next one is due (ms), or -1 if none waits. */
static int s_retry(hload *L, uint64_t now)
{
    uint64_t next = UINT64_MAX;
    for (uint32_t i = 0; i < L->o->clients; i++) {
        hconn *c = &L->cs[i];
        if (c->st != C_BACKOFF) {
            continue;
        }
        if (c->retry_at <= now) {
            c->st = C_IDLE;
            s_next(L, c, now);
        } else if (c->retry_at < next) {
            next = c->retry_at;
        }
    }
    return next == UINT64_MAX ? -1 : (int)((next - now) / 1000 + 1);
}

static void s_progress(hload *L, uint64_t t, uint64_t t0, uint64_t *last,
                       uint64_t *last_done)
{
    const http_load_opts *o = L->o;
    uint64_t d = L->r->done;
    if (o->sample != NULL) {
        o->sample(o->sample_arg, t - t0, d);
    }
    if (t - *last >= 1000000 && (o->duration > 3 || o->ops > 0)) {
        fprintf(stderr, "  %5.1fs  %10llu ops  %10.0f writes/s\n",
                (double)(t - t0) / 1e6, (unsigned long long)d,
                (double)(d - *last_done) * 1e6 / (double)(t - *last));
        *last_done = d;
        *last = t;
    }
}

/* The loop: until the duration is over (then until the requests in flight
 * are answered, at most DRAIN_US), or with --ops N until N writes finished
 * (done or failed). */
static void s_loop(hload *L, uint64_t t0)
{
    const http_load_opts *o = L->o;
    uint64_t last = t0, last_done = 0, next_sample = t0 + 100000;
    uint64_t drain_end = 0;
    struct epoll_event evs[256];
    for (;;) {
        uint64_t now = now_us();
        int wait = s_retry(L, now);
        if (!L->stopping && o->ops == 0 &&
            now - t0 >= (uint64_t)(o->duration * 1e6)) {
            L->stopping = true;
            drain_end = now + DRAIN_US;
        }
        bool idle = o->ops > 0 ? L->r->done + L->r->errors >= o->ops
                               : L->stopping && L->inflight == 0;
        if (idle || (L->stopping && now >= drain_end)) {
            break;
        }
        int to = (int)((next_sample > now ? next_sample - now : 0) / 1000) + 1;
        if (wait >= 0 && wait < to) {
            to = wait;
        }
        int n = epoll_wait(L->ep, evs, 256, to);
        now = now_us();
        for (int e = 0; e < n; e++) {
            s_event(L, evs[e].data.ptr, evs[e].events, now);
        }
        if (now >= next_sample) {
            s_progress(L, now, t0, &last, &last_done);
            next_sample = now + 100000;
        }
    }
    /* Requests still unanswered after the drain: errors. */
    L->r->errors += L->inflight;
}

int http_load_run(const http_load_opts *o, http_load_result *r)
{
    memset(r, 0, sizeof(*r));
    char host[HOST_CAP];
    int port;
    if (s_split(o->target, host, sizeof host, &port) != 0) {
        fprintf(stderr, "zraft-bench: --http wants host:port\n");
        return -1;
    }
    if (o->clients == 0) {
        fprintf(stderr, "zraft-bench: --http wants --clients >= 1\n");
        return -1;
    }
    hload L = {.o = o, .r = r, .ep = epoll_create1(EPOLL_CLOEXEC)};
    char *payload = malloc(o->payload ? o->payload : 1);
    L.cs = calloc(o->clients, sizeof(hconn));
    r->hist = calloc(HTTP_HIST_US, sizeof(uint32_t));
    if (L.ep < 0 || payload == NULL || L.cs == NULL || r->hist == NULL) {
        fprintf(stderr, "zraft-bench: out of memory\n");
        exit(2);
    }
    memset(payload, 'x', o->payload);
    L.payload = payload;
    uint64_t t0 = now_us();
    for (uint32_t i = 0; i < o->clients; i++) {
        hconn *c = &L.cs[i];
        c->idx = i;
        c->fd = -1;
        c->out = malloc(512 + o->payload);
        if (c->out == NULL) {
            fprintf(stderr, "zraft-bench: out of memory\n");
            exit(2);
        }
        memcpy(c->host, host, sizeof host);
        c->port = port;
        s_next(&L, c, t0);
    }
    s_loop(&L, t0);
    r->elapsed_us = now_us() - t0;
    for (uint32_t i = 0; i < o->clients; i++) {
        s_close(&L, &L.cs[i]);
        free(L.cs[i].out);
    }
    close(L.ep);
    free(L.cs);
    free(payload);
    return 0;
}
