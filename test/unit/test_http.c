/* test_http.c - zraftd's HTTP API over a fake backend: routes, status
 * codes, redirects to the leader, and refusal of bad requests. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "kv.h"

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
    int on_wait;        /* what wait_leader finds: 0 none, 1 self, 2 other */
    unsigned waits;     /* wait_leader calls */
    uint32_t waited_ms; /* the bound of the last one */
} fake;

static int f_write(void *ctx, uint8_t op, const char *key, size_t klen,
                   const void *val, size_t vlen)
{
    fake *f = ctx;
    if (!f->leader) {
        return ZRAFT_ENOTLEADER;
    }
    zraft_buf *b;
    int rv = kv_encode(op, key, klen, val, vlen, &b);
    if (rv != 0) {
        return rv;
    }
    zraft_entry e = {{1, ++f->index}, ZRAFT_ENTRY_NORMAL, b};
    zraft_buf *res = NULL;
    rv = f->fsm.apply(f->fsm.ctx, &e, &res);
    zraft_buf_unref(b);
    return rv;
}

static int f_read(void *ctx, bool stale, const char *key, size_t klen,
                  zraft_buf **val, size_t *off, size_t *len)
{
    fake *f = ctx;
    if (!stale && !f->leader) {
        return ZRAFT_ENOTLEADER;
    }
    return kv_get(f->store, key, klen, val, off, len);
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

static int f_add_learner(void *ctx, uint64_t id, const char *ra, const char *ha)
{
    (void)ctx;
    (void)ha;
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

static int f_wait_leader(void *ctx, uint32_t ms)
{
    fake *f = ctx;
    f->waits++;
    f->waited_ms = ms;
    if (f->on_wait == 1) {
        f->leader = true;
        return 1;
    }
    if (f->on_wait == 2) {
        f->leader_known = true;
        return 0;
    }
    return ZRAFT_ETIMEDOUT;
}

static fake F;
static http_server *S;

static void setup(void)
{
    memset(&F, 0, sizeof F);
    F.store = kv_new();
    F.fsm = kv_fsm(F.store);
    F.leader = true;
    F.leader_known = true;
    http_backend b = {&F,         f_write,    f_read,        f_leader_http,
                      f_status,   f_metrics,  f_add_learner, f_membership,
                      f_transfer, f_snapshot, f_health,      f_wait_leader,
                      600};
    char why[256];
    S = http_start("127.0.0.1:0", &b, 4096, why, sizeof why);
    cr_assert_not_null(S, "%s", why);
}

static void teardown(void)
{
    http_stop(&S);
    kv_destroy(&F.store);
}

typedef struct {
    int status;
    char headers[4096];
    char body[8192];
    size_t body_len;
} reply;

/* One request over a fresh connection (Connection: close). */
static reply req(const char *method, const char *path, const char *body,
                 size_t body_len)
{
    reply r;
    memset(&r, 0, sizeof r);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(http_port(S));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, body_len);
    cr_assert_eq(write(fd, head, (size_t)n), n);
    if (body_len > 0) {
        cr_assert_eq(write(fd, body, body_len), (ssize_t)body_len);
    }
    static char buf[65536];
    size_t got = 0;
    ssize_t k;
    while ((k = read(fd, buf + got, sizeof buf - 1 - got)) > 0) {
        got += (size_t)k;
    }
    close(fd);
    buf[got] = '\0';
    cr_assert(sscanf(buf, "HTTP/1.1 %d", &r.status) == 1, "reply: %s", buf);
    char *sep = strstr(buf, "\r\n\r\n");
    cr_assert_not_null(sep);
    size_t hl = (size_t)(sep - buf);
    memcpy(r.headers, buf,
           hl < sizeof r.headers - 1 ? hl : sizeof r.headers - 1);
    r.body_len = got - hl - 4;
    memcpy(r.body, sep + 4, r.body_len < sizeof r.body ? r.body_len : 0);
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
    reply r = req("PUT", "/kv/a", "1", 1);
    cr_assert_eq(r.status, 503);
    cr_assert(strstr(r.headers, "Retry-After: 1") != NULL, "%s", r.headers);
    cr_assert_eq(F.waits, 1);
    cr_assert_eq(F.waited_ms, 600);
    /* ?timeout= sets the bound per request. */
    r = req("GET", "/kv/a?timeout=25", NULL, 0);
    cr_assert_eq(r.status, 503);
    cr_assert_eq(F.waited_ms, 25);
}

Test(http, request_that_waits_is_served_once_a_leader_is_known)
{
    F.leader = false;
    F.leader_known = false;
    F.on_wait = 1; /* this node wins the election meanwhile */
    cr_assert_eq(req("PUT", "/kv/b", "2", 1).status, 204);
    cr_assert_eq(F.waits, 1);
    F.leader = false;
    F.on_wait = 2; /* another node wins: redirect there */
    reply r = req("PUT", "/kv/c", "3", 1);
    cr_assert_eq(r.status, 307);
    cr_assert(strstr(r.headers, "Location: http://127.0.0.1:9999/kv/c"), "%s",
              r.headers);
}
