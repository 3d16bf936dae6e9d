/* test_http.c - zraftd's HTTP API over a fake backend: routes, status
 * codes, redirects to the leader, refusal of bad requests, waiting for a
 * leader, requests suspended while the node works (answered from another
 * thread), keep-alive and pipelining, and connections that cost no
 * threads. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "kv.h"
#include "net_fixture.h"

typedef struct {
    kv *store;
    zraft_fsm fsm;
    bool leader;
    bool leader_known;
    uint64_t index;
    uint64_t voters[8];
    size_t n_voters;
    uint64_t transfer_to;
    int fatal;
    /* Leader wait: what leader_known finds after `probes_until` probes
     * (0 none, 1 this node, 2 another). */
    int on_wait;
    unsigned probes_until;
    unsigned probes; /* leader_known calls */
    /* hold: writes and reads wait in `held` until f_release() completes
     * them on the test's thread (as the node's thread would). */
    bool hold;
    pthread_mutex_t lock;
    http_op *held[512];
    zraft_buf *held_cmd[512];
    size_t n_held;
} fake;

static int f_apply(fake *f, zraft_buf *cmd)
{
    zraft_entry e = {{1, ++f->index}, ZRAFT_ENTRY_NORMAL, cmd};
    zraft_buf *res = NULL;
    int rv = f->fsm.apply(f->fsm.ctx, &e, &res);
    zraft_buf_unref(cmd);
    return rv;
}

static void f_read_now(fake *f, http_op *op)
{
    op->err = kv_get(f->store, op->key, op->klen, &op->val, &op->off, &op->len);
}

static int f_write(void *ctx, zraft_buf *cmd, http_op *op)
{
    fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    if (f->hold) {
        cr_assert_lt(f->n_held, 512);
        f->held_cmd[f->n_held] = cmd;
        f->held[f->n_held++] = op;
        pthread_mutex_unlock(&f->lock);
        return 0;
    }
    op->err = f->leader ? f_apply(f, cmd) : ZRAFT_ENOTLEADER;
    if (!f->leader) {
        zraft_buf_unref(cmd);
    }
    pthread_mutex_unlock(&f->lock);
    op->complete(op); /* during the call, as a fast node may */
    return 0;
}

static int f_read(void *ctx, http_op *op)
{
    fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    if (f->hold && !op->stale) {
        f->held_cmd[f->n_held] = NULL;
        f->held[f->n_held++] = op;
        pthread_mutex_unlock(&f->lock);
        return 0;
    }
    if (!op->stale && !f->leader) {
        op->err = ZRAFT_ENOTLEADER;
    } else {
        f_read_now(f, op);
    }
    pthread_mutex_unlock(&f->lock);
    op->complete(op);
    return 0;
}

/* Completes every held call from this thread; returns how many. */
static size_t f_release(fake *f)
{
    pthread_mutex_lock(&f->lock);
    size_t n = f->n_held;
    for (size_t i = 0; i < n; i++) {
        http_op *op = f->held[i];
        if (f->held_cmd[i] != NULL) {
            op->err = f_apply(f, f->held_cmd[i]);
        } else {
            f_read_now(f, op);
        }
        op->complete(op);
    }
    f->n_held = 0;
    f->hold = false;
    pthread_mutex_unlock(&f->lock);
    return n;
}

static size_t f_held(fake *f)
{
    pthread_mutex_lock(&f->lock);
    size_t n = f->n_held;
    pthread_mutex_unlock(&f->lock);
    return n;
}

static int f_leader_http(void *ctx, char *out, size_t cap)
{
    fake *f = ctx;
    if (!f->leader_known) {
        return ZRAFT_ENOTFOUND;
    }
    snprintf(out, cap, "127.0.0.1:9999");
    return 0;
}

static char *f_status(void *ctx)
{
    (void)ctx;
    return strdup("{\"id\":1,\"role\":\"leader\"}");
}

static char *f_metrics(void *ctx)
{
    (void)ctx;
    return strdup("zraft_term 3\n");
}

static int f_add_learner(void *ctx, uint64_t id, const char *ra, const char *ha,
                         const char *key)
{
    (void)ctx;
    (void)ha;
    (void)key;
    return id == 4 && strcmp(ra, "127.0.0.1:7004") == 0 ? 0 : ZRAFT_EINVAL;
}

static int f_membership(void *ctx, const uint64_t *v, size_t n)
{
    fake *f = ctx;
    memcpy(f->voters, v, n * sizeof(*v));
    f->n_voters = n;
    return 0;
}

static int f_transfer(void *ctx, uint64_t to)
{
    fake *f = ctx;
    f->transfer_to = to;
    return 0;
}

static int f_snapshot(void *ctx)
{
    (void)ctx;
    return 0;
}

static int f_health(void *ctx)
{
    return ((fake *)ctx)->fatal;
}

static int f_leader_known(void *ctx)
{
    fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    int rv = ZRAFT_ENOTFOUND;
    if (++f->probes >= f->probes_until) {
        if (f->on_wait == 1) {
            f->leader = true;
            rv = 1;
        } else if (f->on_wait == 2) {
            f->leader_known = true;
            rv = 0;
        }
    }
    pthread_mutex_unlock(&f->lock);
    return rv;
}

static fake F;
static http_server *S;

static bool backend_waits; /* the next start()'s backend_waits */

static void start(uint32_t threads, uint32_t op_timeout_ms)
{
    http_backend b = {
        .ctx = &F,
        .write = f_write,
        .read = f_read,
        .leader_known = f_leader_known,
        .leader_http = f_leader_http,
        .status_json = f_status,
        .metrics_text = f_metrics,
        .health = f_health,
        .add_learner = f_add_learner,
        .change_membership = f_membership,
        .transfer_leader = f_transfer,
        .snapshot = f_snapshot,
        .leader_wait_ms = 600,
        .op_timeout_ms = op_timeout_ms,
        .backend_waits = backend_waits,
    };
    http_options o = {4096, threads, 0, NULL};
    char why[256];
    S = http_start("127.0.0.1:0", &b, &o, why, sizeof why);
    cr_assert_not_null(S, "%s", why);
}

static void setup(void)
{
    memset(&F, 0, sizeof F);
    pthread_mutex_init(&F.lock, NULL);
    F.store = kv_new();
    F.fsm = kv_fsm(F.store);
    F.leader = true;
    F.leader_known = true;
    start(2, 0);
}

static void teardown(void)
{
    f_release(&F); /* http_stop waits for every call in flight */
    http_stop(&S);
    kv_destroy(&F.store);
    pthread_mutex_destroy(&F.lock);
}

typedef struct {
    int status;
    char headers[4096];
    char body[8192];
    size_t body_len;
} reply;

static void s_send(int fd, const char *method, const char *path,
                   const char *body, size_t body_len, bool close_after)
{
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: t\r\n%s"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, close_after ? "Connection: close\r\n" : "",
                     body_len);
    cr_assert_eq(write(fd, head, (size_t)n), n);
    if (body_len > 0) {
        cr_assert_eq(write(fd, body, body_len), (ssize_t)body_len);
    }
}

/* Reads one response from a keep-alive connection (Content-Length framed;
 * `buf` keeps what was read beyond it for the next call). */
typedef struct {
    char data[65536];
    size_t len;
} rbuf;

static reply s_recv(int fd, rbuf *rb)
{
    reply r;
    memset(&r, 0, sizeof r);
    char *sep;
    while ((sep = memmem(rb->data, rb->len, "\r\n\r\n", 4)) == NULL) {
        ssize_t k = read(fd, rb->data + rb->len, sizeof rb->data - rb->len);
        cr_assert_gt(k, 0, "connection closed before a full response");
        rb->len += (size_t)k;
    }
    size_t hl = (size_t)(sep - rb->data);
    cr_assert_lt(hl, sizeof r.headers);
    memcpy(r.headers, rb->data, hl);
    r.headers[hl] = '\0';
    cr_assert(sscanf(r.headers, "HTTP/1.1 %d", &r.status) == 1, "reply: %s",
              r.headers);
    const char *cl = strcasestr(r.headers, "Content-Length:");
    size_t clen = cl ? strtoul(cl + 15, NULL, 10) : 0;
    while (rb->len < hl + 4 + clen) {
        ssize_t k = read(fd, rb->data + rb->len, sizeof rb->data - rb->len);
        cr_assert_gt(k, 0, "connection closed before the body");
        rb->len += (size_t)k;
    }
    cr_assert_lt(clen, sizeof r.body);
    memcpy(r.body, rb->data + hl + 4, clen);
    r.body_len = clen;
    size_t used = hl + 4 + clen;
    memmove(rb->data, rb->data + used, rb->len - used);
    rb->len -= used;
    return r;
}

/* One request over a fresh connection (Connection: close). */
static reply req(const char *method, const char *path, const char *body,
                 size_t body_len)
{
    int fd = nf_connect(http_port(S));
    s_send(fd, method, path, body, body_len, true);
    rbuf *rb = calloc(1, sizeof(*rb));
    reply r = s_recv(fd, rb);
    free(rb);
    close(fd);
    return r;
}

TestSuite(http, .init = setup, .fini = teardown);

Test(http, put_get_delete_roundtrip)
{
    reply r = req("PUT", "/kv/color", "blue", 4);
    cr_assert_eq(r.status, 204);
    r = req("GET", "/kv/color", NULL, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.body_len, 4);
    cr_assert_eq(memcmp(r.body, "blue", 4), 0);
    r = req("DELETE", "/kv/color", NULL, 0);
    cr_assert_eq(r.status, 204);
    r = req("GET", "/kv/color", NULL, 0);
    cr_assert_eq(r.status, 404);
    cr_assert(strstr(r.body, "\"error\"") != NULL);
}

Test(http, follower_redirects_to_leader_with_same_path)
{
    F.leader = false;
    reply r = req("PUT", "/kv/a%20b", "v", 1);
    cr_assert_eq(r.status, 307);
    cr_assert(strstr(r.headers, "Location: http://127.0.0.1:9999/kv/a%20b") !=
                  NULL,
              "%s", r.headers);
    r = req("GET", "/kv/x?consistency=stale", NULL, 0);
    cr_assert_eq(r.status, 404, "stale reads are served locally");
    F.leader_known = false;
    r = req("GET", "/kv/x", NULL, 0);
    cr_assert_eq(r.status, 503);
    cr_assert(strstr(r.body, "ENOTLEADER") != NULL, "%s", r.body);
}

Test(http, bad_requests_get_4xx_json)
{
    char big[5000];
    memset(big, 'x', sizeof big);
    cr_assert_eq(req("PUT", "/kv/k", big, sizeof big).status, 413);
    cr_assert_eq(req("GET", "/nowhere", NULL, 0).status, 404);
    cr_assert_eq(req("POST", "/kv/k", NULL, 0).status, 405);
    cr_assert_eq(req("GET", "/kv/", NULL, 0).status, 400);
    cr_assert_eq(req("GET", "/kv/k?consistency=maybe", NULL, 0).status, 400);
    cr_assert_eq(req("POST", "/cluster/membership", "{bad", 4).status, 400);
    cr_assert_eq(
        req("POST", "/cluster/membership", "{\"voters\":[1,-2]}", 17).status,
        400);
    cr_assert_eq(
        req("POST", "/cluster/transfer-leader", "{\"to\":\"x\"}", 10).status,
        400);
    cr_assert_eq(req("POST", "/cluster/learners", "{\"id\":4}", 8).status, 400);
    cr_assert_eq(req("GET", "/cluster/snapshot", NULL, 0).status, 405);
}

Test(http, admin_endpoints_reach_the_backend)
{
    const char *m = "{\"voters\":[1,2,4]}";
    cr_assert_eq(req("POST", "/cluster/membership", m, strlen(m)).status, 200);
    cr_assert_eq(F.n_voters, 3);
    cr_assert_eq(F.voters[2], 4);
    const char *t = "{\"to\":2}";
    cr_assert_eq(req("POST", "/cluster/transfer-leader", t, strlen(t)).status,
                 200);
    cr_assert_eq(F.transfer_to, 2);
    const char *l = "{\"id\":4,\"raft_addr\":\"127.0.0.1:7004\","
                    "\"http_addr\":\"127.0.0.1:8004\"}";
    cr_assert_eq(req("POST", "/cluster/learners", l, strlen(l)).status, 200);
    cr_assert_eq(req("POST", "/cluster/snapshot", NULL, 0).status, 200);
    reply r = req("GET", "/cluster/status", NULL, 0);
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body, "\"role\":\"leader\"") != NULL);
    r = req("GET", "/metrics", NULL, 0);
    cr_assert(strstr(r.body, "zraft_term 3") != NULL);
    cr_assert_eq(req("GET", "/healthz", NULL, 0).status, 200);
}

Test(http, healthz_is_503_with_the_error_once_the_node_failed)
{
    cr_assert_eq(req("GET", "/healthz", NULL, 0).status, 200);
    F.fatal = ZRAFT_ENOSPACE;
    reply r = req("GET", "/healthz", NULL, 0);
    cr_assert_eq(r.status, 503);
    cr_assert(strstr(r.body, "\"code\":\"ENOSPACE\"") != NULL, "%s", r.body);
}

Test(http, request_without_a_known_leader_waits_then_503_with_retry_after)
{
    F.leader = false;
    F.leader_known = false;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    reply r = req("PUT", "/kv/a", "1", 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_eq(r.status, 503);
    cr_assert(strstr(r.headers, "Retry-After: 1") != NULL, "%s", r.headers);
    cr_assert_gt(F.probes, 0, "it asked for a leader while it waited");
    /* A lower bound only (it cannot answer before its deadline). */
    int64_t ms =
        (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_assert_geq(ms, 600 - 1, "answered after %lld ms", (long long)ms);
    /* ?timeout= sets the bound per request; 0 does not wait at all. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = req("GET", "/kv/a?timeout=25", NULL, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_eq(r.status, 503);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_assert_geq(ms, 25 - 1);
    unsigned probes = F.probes;
    r = req("GET", "/kv/a?timeout=0", NULL, 0);
    cr_assert_eq(r.status, 503);
    cr_assert_eq(F.probes, probes, "no wait, no probe");
}

/* A forwarding backend (zraftd's forward_writes) waited for a leader
 * itself before its ENOTLEADER: the server answers at once, with no
 * second wait (no probe at all), 503 while no leader address is known,
 * 307 once one is. */
Test(http, forwarding_backend_enotleader_is_answered_without_a_second_wait)
{
    http_stop(&S);
    backend_waits = true;
    start(2, 0);
    backend_waits = false;
    F.leader = false;
    F.leader_known = false;
    F.on_wait = 2; /* a probe would find a leader: none must be made */
    reply r = req("PUT", "/kv/a", "1", 1);
    cr_assert_eq(r.status, 503);
    cr_assert(strstr(r.headers, "Retry-After: 1") != NULL, "%s", r.headers);
    r = req("GET", "/kv/a?timeout=5000", NULL, 0);
    cr_assert_eq(r.status, 503);
    cr_assert_eq(F.probes, 0, "the server waited for a leader too");
    F.leader_known = true;
    r = req("PUT", "/kv/a", "1", 1);
    cr_assert_eq(r.status, 307);
    cr_assert_eq(F.probes, 0);
}

Test(http, request_that_waits_is_served_once_a_leader_is_known)
{
    F.leader = false;
    F.leader_known = false;
    F.on_wait = 1; /* this node wins the election meanwhile */
    F.probes_until = 3;
    cr_assert_eq(req("PUT", "/kv/b", "2", 1).status, 204);
    cr_assert_eq(F.probes, 3, "served at the probe that found a leader");
    cr_assert_eq(req("GET", "/kv/b", NULL, 0).status, 200);
    F.leader = false;
    F.on_wait = 2; /* another node wins: redirect there */
    F.probes = 0;
    F.probes_until = 2;
    reply r = req("PUT", "/kv/c", "3", 1);
    cr_assert_eq(r.status, 307);
    cr_assert(strstr(r.headers, "Location: http://127.0.0.1:9999/kv/c"), "%s",
              r.headers);
    cr_assert_eq(F.probes, 2);
}

Test(http, keep_alive_and_pipelined_requests_answer_in_order)
{
    int fd = nf_connect(http_port(S));
    rbuf *rb = calloc(1, sizeof(*rb));
    for (int i = 0; i < 3; i++) { /* one after the other, same connection */
        char path[32], val[32];
        snprintf(path, sizeof path, "/kv/k%d", i);
        int n = snprintf(val, sizeof val, "v%d", i);
        s_send(fd, "PUT", path, val, (size_t)n, false);
        cr_assert_eq(s_recv(fd, rb).status, 204);
    }
    /* Pipelined: four requests in one write, answers in order. */
    char all[2048];
    int n = snprintf(all, sizeof all,
                     "PUT /kv/p HTTP/1.1\r\nHost: t\r\nContent-Length: 2"
                     "\r\n\r\nv1"
                     "GET /kv/p HTTP/1.1\r\nHost: t\r\n\r\n"
                     "DELETE /kv/p HTTP/1.1\r\nHost: t\r\n\r\n"
                     "GET /kv/k2 HTTP/1.1\r\nHost: t\r\n\r\n");
    cr_assert_eq(write(fd, all, (size_t)n), n);
    cr_assert_eq(s_recv(fd, rb).status, 204);
    reply r = s_recv(fd, rb);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.body_len, 2);
    cr_assert_eq(memcmp(r.body, "v1", 2), 0);
    cr_assert_eq(s_recv(fd, rb).status, 204);
    r = s_recv(fd, rb);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(memcmp(r.body, "v2", 2), 0);
    free(rb);
    close(fd);
}

Test(http, suspended_requests_are_answered_from_the_nodes_thread)
{
    /* 100 connections, each with a write the node has not completed yet:
     * their connections are suspended, and no thread is added for them. */
    enum { N = 100 };
    unsigned before = nf_threads();
    F.hold = true;
    int fds[N];
    for (int i = 0; i < N; i++) {
        char path[32];
        snprintf(path, sizeof path, "/kv/h%d", i);
        fds[i] = nf_connect(http_port(S));
        s_send(fds[i], "PUT", path, "held", 4, false);
    }
    while (f_held(&F) < N) { /* wait for the event: all calls started */
        sched_yield();
    }
    cr_assert_eq(nf_threads(), before);
    cr_assert_eq(f_release(&F), N); /* completes them on this thread */
    rbuf *rb = calloc(1, sizeof(*rb));
    for (int i = 0; i < N; i++) {
        rb->len = 0;
        cr_assert_eq(s_recv(fds[i], rb).status, 204, "connection %d", i);
        close(fds[i]);
    }
    free(rb);
    cr_assert_eq(req("GET", "/kv/h57", NULL, 0).status, 200);
}

Test(http, idle_keep_alive_connections_add_no_threads)
{
    enum { N = 300 };
    unsigned before = nf_threads();
    int fds[N];
    rbuf *rb = calloc(1, sizeof(*rb));
    for (int i = 0; i < N; i++) {
        fds[i] = nf_connect(http_port(S));
        s_send(fds[i], "GET", "/healthz", NULL, 0, false);
        rb->len = 0;
        cr_assert_eq(s_recv(fds[i], rb).status, 200);
    }
    /* Every connection is open, accepted and idle now. */
    cr_assert_eq(nf_threads(), before);
    for (int i = 0; i < N; i++) {
        s_send(fds[i], "GET", "/healthz", NULL, 0, false);
        rb->len = 0;
        cr_assert_eq(s_recv(fds[i], rb).status, 200, "connection %d", i);
        close(fds[i]);
    }
    free(rb);
}

Test(http, a_call_the_node_never_completes_answers_504)
{
    http_stop(&S);
    start(1, 20);
    F.hold = true;
    reply r = req("PUT", "/kv/late", "1", 1);
    cr_assert_eq(r.status, 504);
    cr_assert(strstr(r.body, "ETIMEDOUT") != NULL, "%s", r.body);
    r = req("GET", "/kv/late", NULL, 0);
    cr_assert_eq(r.status, 504);
    /* The late completions find their requests gone; nothing leaks (ASan)
     * and the server goes on. */
    cr_assert_eq(f_release(&F), 2);
    cr_assert_eq(req("GET", "/kv/late", NULL, 0).status, 200);
}

Test(http, draining_answers_503_and_stop_waits_for_calls_in_flight)
{
    F.hold = true;
    int fd = nf_connect(http_port(S));
    s_send(fd, "PUT", "/kv/d", "1", 1, false);
    while (f_held(&F) < 1) {
        sched_yield();
    }
    http_drain(S, 0);
    /* Completed after the drain began: still answered. */
    cr_assert_eq(f_release(&F), 1);
    rbuf *rb = calloc(1, sizeof(*rb));
    cr_assert_eq(s_recv(fd, rb).status, 204);
    /* A new request on the open connection is turned away. */
    s_send(fd, "GET", "/kv/d", NULL, 0, false);
    reply r = s_recv(fd, rb);
    cr_assert_eq(r.status, 503);
    cr_assert(strstr(r.body, "ESHUTDOWN") != NULL, "%s", r.body);
    free(rb);
    close(fd);
}
