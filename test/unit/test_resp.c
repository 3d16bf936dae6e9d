/* test_resp.c - zraftd's RESP port over a fake backend (a real kv store,
 * writes applied by the test's fake node): commands and their replies,
 * pipelining and per-connection order, calls completed from another thread,
 * -MOVED and waiting for a leader, READONLY, protocol errors, time-outs,
 * and connections that cost no threads. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kv.h"
#include "resp.h"
#include "net_fixture.h"

typedef struct {
    kv *store;
    zraft_fsm fsm;
    uint64_t index;
    pthread_mutex_t lock;
    bool leader;
    bool leader_known; /* another node's address */
    int on_wait;       /* what leader_known finds: 0 none, 1 self, 2 other */
    unsigned probes;
    bool hold; /* writes and barriers wait for f_release() */
    resp_op *held[1024];
    zraft_buf *held_cmd[1024];
    size_t n_held;
    unsigned barriers; /* barrier calls */
} fake;

static fake F;
static resp_server *S;

static void f_apply(fake *f, zraft_buf *cmd, resp_op *op)
{
    zraft_entry e = {{1, ++f->index}, ZRAFT_ENTRY_NORMAL, cmd};
    zraft_buf *res = NULL;
    op->err = f->fsm.apply(f->fsm.ctx, &e, &res);
    op->result = res;
    zraft_buf_unref(cmd);
}

static int f_write(void *ctx, zraft_buf *cmd, resp_op *op)
{
    fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    if (f->hold) {
        cr_assert_lt(f->n_held, 1024);
        f->held_cmd[f->n_held] = cmd;
        f->held[f->n_held++] = op;
        pthread_mutex_unlock(&f->lock);
        return 0;
    }
    if (f->leader) {
        f_apply(f, cmd, op);
    } else {
        zraft_buf_unref(cmd);
        op->err = ZRAFT_ENOTLEADER;
        op->result = NULL;
    }
    pthread_mutex_unlock(&f->lock);
    op->complete(op); /* during the call */
    return 0;
}

static int f_barrier(void *ctx, resp_op *op)
{
    fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    f->barriers++;
    if (f->hold) {
        f->held_cmd[f->n_held] = NULL;
        f->held[f->n_held++] = op;
        pthread_mutex_unlock(&f->lock);
        return 0;
    }
    op->err = f->leader ? 0 : ZRAFT_ENOTLEADER;
    pthread_mutex_unlock(&f->lock);
    op->complete(op);
    return 0;
}

/* Completes the held calls, in order, from this thread. */
static size_t f_release(fake *f)
{
    pthread_mutex_lock(&f->lock);
    size_t n = f->n_held;
    for (size_t i = 0; i < n; i++) {
        resp_op *op = f->held[i];
        if (f->held_cmd[i] != NULL) {
            f_apply(f, f->held_cmd[i], op);
        } else {
            op->err = 0;
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

static int f_leader_known(void *ctx)
{
    fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    f->probes++;
    int rv = ZRAFT_ENOTFOUND;
    if (f->on_wait == 1) {
        f->leader = true;
        rv = 1;
    } else if (f->on_wait == 2) {
        f->leader_known = true;
        rv = 0;
    }
    pthread_mutex_unlock(&f->lock);
    return rv;
}

static int f_leader_addr(void *ctx, char *out, size_t cap)
{
    fake *f = ctx;
    if (!f->leader_known) {
        return ZRAFT_ENOTFOUND;
    }
    snprintf(out, cap, "127.0.0.1:6390");
    return 0;
}

static char *f_info(void *ctx)
{
    (void)ctx;
    return strdup("# Replication\r\nrole:master\r\n");
}

static void start(uint32_t op_timeout_ms)
{
    resp_backend b = {
        .ctx = &F,
        .store = F.store,
        .write = f_write,
        .barrier = f_barrier,
        .leader_known = f_leader_known,
        .leader_addr = f_leader_addr,
        .info = f_info,
        .leader_wait_ms = 300,
        .op_timeout_ms = op_timeout_ms,
    };
    resp_options o = {4096, 0, NULL};
    char why[256];
    S = resp_start("127.0.0.1:0", &b, &o, why, sizeof why);
    cr_assert_not_null(S, "%s", why);
}

static void setup(void)
{
    memset(&F, 0, sizeof F);
    pthread_mutex_init(&F.lock, NULL);
    F.store = kv_new();
    F.fsm = kv_fsm(F.store);
    F.leader = true;
    start(0);
}

static void teardown(void)
{
    f_release(&F);
    resp_stop(&S);
    kv_destroy(&F.store);
    pthread_mutex_destroy(&F.lock);
}

TestSuite(resp, .init = setup, .fini = teardown);

/* ------------------------------------------------------------ client */

typedef struct {
    int fd;
    char buf[65536];
    size_t len, off;
} client;

static client *c_open(void)
{
    client *c = calloc(1, sizeof(*c));
    c->fd = nf_connect(resp_port(S));
    return c;
}

static void c_close(client *c)
{
    close(c->fd);
    free(c);
}

static void c_send(client *c, const char *raw)
{
    size_t n = strlen(raw);
    cr_assert_eq(write(c->fd, raw, n), (ssize_t)n);
}

/* Sends one command as an array of bulk strings (NULL-terminated args). */
static void c_cmd(client *c, const char *arg, ...)
{
    const char *args[32];
    size_t n = 0;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a != NULL; a = va_arg(ap, const char *)) {
        args[n++] = a;
    }
    va_end(ap);
    char out[8192];
    size_t o = (size_t)snprintf(out, sizeof out, "*%zu\r\n", n);
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(out + o, sizeof out - o, "$%zu\r\n%s\r\n",
                              strlen(args[i]), args[i]);
    }
    c_send(c, out);
}

static bool c_fill(client *c)
{
    if (c->off == c->len) {
        c->off = c->len = 0;
    }
    ssize_t k = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
    if (k <= 0) {
        return false;
    }
    c->len += (size_t)k;
    return true;
}

static char *c_line(client *c)
{
    for (;;) {
        char *nl = memmem(c->buf + c->off, c->len - c->off, "\r\n", 2);
        if (nl != NULL) {
            *nl = '\0';
            char *line = c->buf + c->off;
            c->off = (size_t)(nl - c->buf) + 2;
            return line;
        }
        cr_assert(c_fill(c), "connection closed before a reply");
    }
}

/* One reply, as text: "+OK", "-ERR ...", ":3", "$value", "$nil",
 * "*2 $a $nil". */
static void c_reply_into(client *c, char *out, size_t cap)
{
    char *l = c_line(c);
    if (l[0] == '$') {
        long n = strtol(l + 1, NULL, 10);
        if (n < 0) {
            snprintf(out, cap, "$nil");
            return;
        }
        while (c->len - c->off < (size_t)n + 2) {
            cr_assert(c_fill(c));
        }
        snprintf(out, cap, "$%.*s", (int)n, c->buf + c->off);
        c->off += (size_t)n + 2;
        return;
    }
    if (l[0] == '*') {
        long n = strtol(l + 1, NULL, 10);
        size_t o = (size_t)snprintf(out, cap, "*%ld", n);
        for (long i = 0; i < n; i++) {
            char item[1024];
            c_reply_into(c, item, sizeof item);
            o += (size_t)snprintf(out + o, cap - o, " %s", item);
        }
        return;
    }
    snprintf(out, cap, "%s", l);
}

static char R[8192];

static const char *c_reply(client *c)
{
    c_reply_into(c, R, sizeof R);
    return R;
}

#define expect_reply(c, want)                                                  \
    do {                                                                       \
        const char *got_ = c_reply(c);                                         \
        cr_assert_str_eq(got_, want);                                          \
    } while (0)

static bool c_closed_by_server(client *c)
{
    char b[64];
    for (;;) {
        ssize_t k = read(c->fd, b, sizeof b);
        if (k == 0) {
            return true;
        }
        if (k < 0) {
            return false;
        }
    }
}

/* ------------------------------------------------------------- tests */

Test(resp, strings_counters_and_keys)
{
    client *c = c_open();
    c_cmd(c, "PING", NULL);
    expect_reply(c, "+PONG");
    c_cmd(c, "ping", "hi", NULL);
    expect_reply(c, "$hi");
    c_cmd(c, "SET", "k", "v1", NULL);
    expect_reply(c, "+OK");
    c_cmd(c, "GET", "k", NULL);
    expect_reply(c, "$v1");
    c_cmd(c, "GET", "missing", NULL);
    expect_reply(c, "$nil");
    c_cmd(c, "MSET", "a", "1", "b", "2", NULL);
    expect_reply(c, "+OK");
    c_cmd(c, "MGET", "a", "nope", "b", NULL);
    expect_reply(c, "*3 $1 $nil $2");
    c_cmd(c, "EXISTS", "a", "b", "nope", "a", NULL);
    expect_reply(c, ":3");
    c_cmd(c, "INCR", "n", NULL);
    expect_reply(c, ":1");
    c_cmd(c, "INCRBY", "n", "41", NULL);
    expect_reply(c, ":42");
    c_cmd(c, "DECRBY", "n", "50", NULL);
    expect_reply(c, ":-8");
    c_cmd(c, "DECR", "n", NULL);
    expect_reply(c, ":-9");
    c_cmd(c, "INCR", "k", NULL);
    expect_reply(c, "-ERR value is not an integer or out of range");
    c_cmd(c, "INCRBY", "n", "x", NULL);
    expect_reply(c, "-ERR value is not an integer or out of range");
    c_cmd(c, "DEL", "a", "b", "nope", NULL);
    expect_reply(c, ":2");
    c_cmd(c, "DBSIZE", NULL);
    expect_reply(c, ":2"); /* k, n */
    c_cmd(c, "ECHO", "x y", NULL);
    expect_reply(c, "$x y");
    c_cmd(c, "SELECT", "0", NULL);
    expect_reply(c, "+OK");
    c_cmd(c, "SELECT", "1", NULL);
    cr_assert_eq(c_reply(c)[0], '-');
    c_cmd(c, "INFO", NULL);
    cr_assert(strstr(c_reply(c), "role:master") != NULL);
    c_cmd(c, "COMMAND", "DOCS", NULL);
    expect_reply(c, "*0");
    c_cmd(c, "CONFIG", "GET", "save", NULL);
    expect_reply(c, "*2 $save $");
    c_cmd(c, "CONFIG", "GET", "maxmemory", NULL);
    expect_reply(c, "*0");
    c_close(c);
}

Test(resp, refusals_are_errors_in_redis_words)
{
    client *c = c_open();
    c_cmd(c, "SET", "k", "v", "NX", NULL);
    cr_assert(strstr(c_reply(c), "-ERR SET options") == R, "%s", R);
    c_cmd(c, "SET", "k", NULL);
    expect_reply(c, "-ERR wrong number of arguments for 'set' command");
    c_cmd(c, "FLUSHALL", "now", NULL);
    expect_reply(c, "-ERR unknown command 'FLUSHALL', with args beginning "
                    "with: 'now' ");
    c_cmd(c, "MSET", "a", "1", "b", NULL);
    expect_reply(c, "-ERR wrong number of arguments for 'mset' command");
    c_cmd(c, "GET", "", NULL);
    cr_assert_eq(c_reply(c)[0], '-');
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    c_cmd(c, "GET", "k", NULL); /* the connection still works */
    expect_reply(c, "$nil");
    c_close(c);
    /* A value above max_value: a protocol-level refusal, then close. */
    c = c_open();
    c_cmd(c, "SET", "k", big, NULL);
    cr_assert_eq(c_reply(c)[0], '-');
    cr_assert(c_closed_by_server(c));
    c_close(c);
}

Test(resp, inline_commands_and_quit)
{
    client *c = c_open();
    c_send(c, "PING\r\nSET a hello\nGET a\r\n\r\nQUIT\r\n");
    expect_reply(c, "+PONG");
    expect_reply(c, "+OK");
    expect_reply(c, "$hello");
    expect_reply(c, "+OK");
    cr_assert(c_closed_by_server(c), "QUIT closes the connection");
    c_close(c);
}

Test(resp, protocol_error_answers_then_closes)
{
    client *c = c_open();
    c_send(c, "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n:1\r\n");
    expect_reply(c, "+PONG");
    cr_assert(strstr(c_reply(c), "-ERR Protocol error") == R, "%s", R);
    cr_assert(c_closed_by_server(c));
    c_close(c);
}

Test(resp, pipelined_commands_are_answered_in_order_from_another_thread)
{
    client *c = c_open();
    F.hold = true;
    /* Writes, then a read that must see them, then a write after it. */
    c_send(c, "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n"
              "*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n"
              "*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n"
              "*3\r\n$4\r\nMGET\r\n$1\r\nx\r\n$1\r\nn\r\n"
              "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n2\r\n"
              "*1\r\n$4\r\nPING\r\n");
    /* The three writes go to the node together; the read waits for them. */
    while (f_held(&F) < 3) {
        sched_yield();
    }
    cr_assert_eq(f_release(&F), 3); /* completed on this thread */
    expect_reply(c, "+OK");
    expect_reply(c, ":1");
    expect_reply(c, ":2");
    /* Then the read (not held any more), then the last write. */
    expect_reply(c, "*2 $1 $2");
    expect_reply(c, "+OK");
    expect_reply(c, "+PONG");
    c_cmd(c, "GET", "x", NULL);
    expect_reply(c, "$2");
    c_close(c);
}

Test(resp, reads_released_together_share_one_barrier)
{
    client *c = c_open();
    F.hold = true;
    /* The reads wait behind the connection's write; once it completes they
     * go to the node in the same loop turn: one read-index round. */
    c_send(c, "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n"
              "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
              "*2\r\n$3\r\nGET\r\n$1\r\nx\r\n"
              "*3\r\n$6\r\nEXISTS\r\n$1\r\na\r\n$1\r\nx\r\n");
    while (f_held(&F) < 1) {
        sched_yield();
    }
    cr_assert_eq(F.barriers, 0);
    cr_assert_eq(f_release(&F), 1);
    expect_reply(c, "+OK");
    expect_reply(c, "$nil");
    expect_reply(c, "$1");
    expect_reply(c, ":1");
    cr_assert_eq(F.barriers, 1);
    c_close(c);
}

Test(resp, follower_answers_moved_and_readonly_reads_locally)
{
    client *c = c_open();
    c_cmd(c, "SET", "k", "v", NULL);
    expect_reply(c, "+OK");
    F.leader = false;
    F.leader_known = true;
    c_cmd(c, "SET", "foo", "bar", NULL);
    expect_reply(c, "-MOVED 12182 127.0.0.1:6390"); /* Redis's slot */
    c_cmd(c, "GET", "k", NULL);
    cr_assert(strncmp(c_reply(c), "-MOVED ", 7) == 0, "%s", R);
    c_cmd(c, "READONLY", NULL);
    expect_reply(c, "+OK");
    c_cmd(c, "GET", "k", NULL);
    expect_reply(c, "$v");
    c_cmd(c, "READWRITE", NULL);
    expect_reply(c, "+OK");
    c_cmd(c, "GET", "k", NULL);
    cr_assert(strncmp(c_reply(c), "-MOVED ", 7) == 0, "%s", R);
    c_close(c);
}

Test(resp, without_a_leader_commands_wait_then_tryagain_or_are_served)
{
    client *c = c_open();
    F.leader = false;
    c_cmd(c, "SET", "k", "v", NULL);
    expect_reply(c, "-TRYAGAIN no leader is known; retry later");
    cr_assert_gt(F.probes, 0, "it asked while it waited");
    F.on_wait = 1; /* this node wins meanwhile: served here */
    c_cmd(c, "SET", "k", "v2", NULL);
    expect_reply(c, "+OK");
    F.leader = false;
    F.on_wait = 2; /* another wins: MOVED there */
    c_cmd(c, "GET", "k", NULL);
    cr_assert(strncmp(c_reply(c), "-MOVED ", 7) == 0, "%s", R);
    c_close(c);
}

Test(resp, a_call_the_node_never_completes_answers_an_error)
{
    resp_stop(&S);
    start(20);
    client *c = c_open();
    F.hold = true;
    c_cmd(c, "SET", "late", "1", NULL);
    cr_assert(strstr(c_reply(c), "-ERR timed out") == R, "%s", R);
    c_cmd(c, "GET", "late", NULL);
    cr_assert(strstr(c_reply(c), "-ERR timed out") == R, "%s", R);
    /* Late completions find their commands answered; nothing leaks. */
    cr_assert_eq(f_release(&F), 2);
    c_cmd(c, "GET", "late", NULL);
    expect_reply(c, "$1");
    c_close(c);
}

Test(resp, idle_and_waiting_connections_add_no_threads)
{
    enum { N = 300 };
    unsigned before = nf_threads();
    client *cs[N];
    for (int i = 0; i < N; i++) {
        cs[i] = c_open();
        c_cmd(cs[i], "PING", NULL);
        expect_reply(cs[i], "+PONG");
    }
    F.hold = true;
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof k, "h%d", i);
        c_cmd(cs[i], "SET", k, "v", NULL);
    }
    while (f_held(&F) < 100) {
        sched_yield();
    }
    cr_assert_eq(nf_threads(), before);
    f_release(&F);
    for (int i = 0; i < N; i++) {
        if (i < 100) {
            expect_reply(cs[i], "+OK");
        }
        c_close(cs[i]);
    }
}

Test(resp, closing_with_calls_in_flight_leaks_nothing)
{
    client *c = c_open();
    F.hold = true;
    c_send(c, "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n"
              "*2\r\n$3\r\nGET\r\n$1\r\nx\r\n");
    while (f_held(&F) < 1) {
        sched_yield();
    }
    c_close(c); /* the client leaves; the node completes later */
    client *d = c_open();
    c_cmd(d, "PING", NULL); /* the loop saw the close before this */
    expect_reply(d, "+PONG");
    f_release(&F);
    F.hold = false;
    c_cmd(d, "GET", "x", NULL);
    expect_reply(d, "$1");
    c_close(d);
}
