/* test_http_load.c - zraft-bench's --http load generator (bench/http_load.c)
 * against scripted fake servers: 204s count as done, a 307 is followed to
 * its Location and asked again there, and a non-2xx answer, a response cut
 * short, a connection closed without an answer and a refused connect count
 * as errors; --ops N finishes exactly N writes. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/http_load.h"

/* How a fake server answers each request. */
typedef enum {
    F_204,     /* 204 No Content */
    F_307,     /* 307 to the other server */
    F_500,     /* 500 with a short JSON body; keeps the connection */
    F_PARTIAL, /* half a status line, then closes */
    F_CLOSE,   /* closes without answering */
} fmode;

#define MAX_CONNS 64

typedef struct {
    fmode mode;
    int lfd;
    uint16_t port;
    uint16_t other; /* F_307's target port */
    pthread_t acceptor;
    pthread_t conns[MAX_CONNS];
    _Atomic int n_conns;
    _Atomic int requests; /* complete requests received */
} fake_srv;

typedef struct {
    fake_srv *s;
    int fd;
} fconn;

/* Reads one request (head, then Content-Length bytes); 0, or -1 when the
 * client closed. */
static int s_read_request(int fd, char *buf, size_t cap, size_t *have)
{
    for (;;) {
        buf[*have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strcasestr(buf, "Content-Length:");
            size_t body = cl ? strtoul(cl + 15, NULL, 10) : 0;
            size_t need = (size_t)(end + 4 - buf) + body;
            if (*have >= need) {
                memmove(buf, buf + need, *have - need);
                *have -= need;
                return 0;
            }
        }
        if (*have == cap - 1) {
            return -1; /* not a request of the load: drop it */
        }
        ssize_t n = read(fd, buf + *have, cap - 1 - *have);
        if (n <= 0) {
            return -1;
        }
        *have += (size_t)n;
    }
}

static void *s_conn_main(void *arg)
{
    fconn *fc = arg;
    fake_srv *s = fc->s;
    char buf[8192], out[256];
    size_t have = 0;
    while (s_read_request(fc->fd, buf, sizeof buf, &have) == 0) {
        atomic_fetch_add(&s->requests, 1);
        int n = 0;
        switch (s->mode) {
        case F_204:
            n = snprintf(out, sizeof out, "HTTP/1.1 204 No Content\r\n\r\n");
            break;
        case F_307:
            n = snprintf(
                out, sizeof out,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: "
                "http://127.0.0.1:%u/kv/k\r\nContent-Length: 0\r\n\r\n",
                (unsigned)s->other);
            break;
        case F_500:
            n = snprintf(out, sizeof out,
                         "HTTP/1.1 500 Internal Server Error\r\n"
                         "Content-Length: 2\r\n\r\n{}");
            break;
        case F_PARTIAL:
            n = snprintf(out, sizeof out, "HTTP/1.1 204 No Co");
            break;
        case F_CLOSE:
            break;
        }
        if (n > 0 && write(fc->fd, out, (size_t)n) != n) {
            break;
        }
        if (s->mode == F_PARTIAL || s->mode == F_CLOSE) {
            break;
        }
    }
    close(fc->fd);
    free(fc);
    return NULL;
}

static void *s_accept_main(void *arg)
{
    fake_srv *s = arg;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            return NULL; /* shut down */
        }
        int i = atomic_fetch_add(&s->n_conns, 1);
        if (i >= MAX_CONNS) { /* the test's count shows it */
            close(fd);
            continue;
        }
        fconn *fc = malloc(sizeof(*fc));
        fc->s = s;
        fc->fd = fd;
        pthread_create(&s->conns[i], NULL, s_conn_main, fc);
    }
}

static void s_srv_start(fake_srv *s, fmode mode, uint16_t other)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->other = other;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(s->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(s->lfd, 64), 0);
    socklen_t len = sizeof sa;
    getsockname(s->lfd, (struct sockaddr *)&sa, &len);
    s->port = ntohs(sa.sin_port);
    pthread_create(&s->acceptor, NULL, s_accept_main, s);
}

/* After the run (the load closed its connections): joins every thread. */
static void s_srv_stop(fake_srv *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->acceptor, NULL);
    close(s->lfd);
    int n = atomic_load(&s->n_conns);
    for (int i = 0; i < n && i < MAX_CONNS; i++) {
        pthread_join(s->conns[i], NULL);
    }
}

static http_load_result s_run(uint16_t port, uint32_t clients, uint64_t ops)
{
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", (unsigned)port);
    http_load_opts o = {
        .target = target, .clients = clients, .payload = 64, .ops = ops};
    http_load_result r;
    cr_assert_eq(http_load_run(&o, &r), 0);
    return r;
}

TestSuite(http_load, .timeout = 60);

static uint64_t s_hist_total(const http_load_result *r)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < HTTP_HIST_US; i++) {
        n += r->hist[i];
    }
    return n;
}

Test(http_load, ops_are_counted_exactly_with_keep_alive)
{
    fake_srv s;
    s_srv_start(&s, F_204, 0);
    http_load_result r = s_run(s.port, 4, 50);
    cr_assert_eq(r.done, 50);
    cr_assert_eq(r.errors, 0);
    cr_assert_eq(s_hist_total(&r), 50, "every write in the histogram");
    free(r.hist);
    s_srv_stop(&s);
    cr_assert_eq(atomic_load(&s.requests), 50);
    cr_assert_eq(atomic_load(&s.n_conns), 4, "one connection per client");
}

Test(http_load, redirects_are_followed_and_not_counted)
{
    fake_srv leader, follower;
    s_srv_start(&leader, F_204, 0);
    s_srv_start(&follower, F_307, leader.port);
    http_load_result r = s_run(follower.port, 3, 30);
    cr_assert_eq(r.done, 30);
    cr_assert_eq(r.errors, 0);
    free(r.hist);
    s_srv_stop(&follower);
    s_srv_stop(&leader);
    cr_assert_eq(atomic_load(&follower.requests), 3, "one redirect each");
    cr_assert_eq(atomic_load(&leader.requests), 30);
}

Test(http_load, a_non_2xx_answer_is_an_error_and_keeps_the_connection)
{
    fake_srv s;
    s_srv_start(&s, F_500, 0);
    http_load_result r = s_run(s.port, 2, 10);
    cr_assert_eq(r.done, 0);
    cr_assert_eq(r.errors, 10);
    free(r.hist);
    s_srv_stop(&s);
    cr_assert_eq(atomic_load(&s.n_conns), 2);
}

Test(http_load, a_cut_response_or_a_close_is_an_error)
{
    fmode modes[] = {F_PARTIAL, F_CLOSE};
    for (int m = 0; m < 2; m++) {
        fake_srv s;
        s_srv_start(&s, modes[m], 0);
        http_load_result r = s_run(s.port, 2, 8);
        cr_assert_eq(r.done, 0);
        cr_assert_eq(r.errors, 8, "mode %d: %llu errors", m,
                     (unsigned long long)r.errors);
        free(r.hist);
        s_srv_stop(&s);
        cr_assert_eq(atomic_load(&s.n_conns), 8, "a new connection each");
    }
}

Test(http_load, a_refused_connect_is_an_error)
{
    fake_srv s;
    s_srv_start(&s, F_204, 0);
    uint16_t port = s.port;
    s_srv_stop(&s); /* nothing listens there now */
    http_load_result r = s_run(port, 2, 4);
    cr_assert_eq(r.done, 0);
    cr_assert_eq(r.errors, 4);
    free(r.hist);
}

Test(http_load, bad_targets_are_refused)
{
    const char *bad[] = {"nohost", ":80", "127.0.0.1:", "127.0.0.1:0",
                         "127.0.0.1:70000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_load_opts o = {.target = bad[i], .clients = 1, .ops = 1};
        http_load_result r;
        cr_assert_eq(http_load_run(&o, &r), -1, "%s", bad[i]);
    }
}
