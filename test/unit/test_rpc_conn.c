/* test_rpc_conn.c - when a forwarding connection counts as unanswered
 * (rpc_conn_unanswered): only once a send has gone without an answer for
 * longer than the time-out, measured from the first send after the last
 * answer.
 *
 * Why it matters: forwarding (actors/forward.c) replaces such a
 * connection, and what was in flight on it is lost. With the rule of
 * rpc_conn_stale() (time since the last answer), a connection idle for
 * longer than the time-out, then sent two frames in a row, was replaced at
 * the second while the first frame's answer was on its way: a follower's
 * forwarded writes then waited their whole forward time-out (10 s) for
 * answers dropped with the old socket (system_resp under load). The times
 * are passed to the predicate by the test, so the checks do not depend on
 * how fast this thread runs. */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "transport/codec.h"
#include "transport/rpc.h"

#define CLUSTER 0x51a1eull
#define T_MS    50 /* the time-out of these tests */

static uint64_t s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

typedef struct {
    zraft_network *net;
    rpc_ctx sc, rc; /* node 1 (the connection's), node 2 (the server's) */
    rpc_server *srv;
    rpc_conn *conn;
} rlink;

static void s_ctx(rpc_ctx *c, zraft_network *net, zraft_id self)
{
    memset(c, 0, sizeof(*c));
    codec_ctx_init(&c->codec, CLUSTER, self);
    c->net = net;
    c->self = self;
}

/* Node 1's connection to node 2's server, in process. */
static void link_init(rlink *l)
{
    memset(l, 0, sizeof(*l));
    l->net = zraft_network_new();
    s_ctx(&l->sc, l->net, 1);
    s_ctx(&l->rc, l->net, 2);
    char ep[ZRAFT_ADDR_MAX + 32];
    rpc_endpoint(&l->rc, 2, "", ep, sizeof ep);
    const char *why = NULL;
    l->srv = rpc_server_new(rpc_net_zctx(l->net), &l->rc, ep, &why);
    cr_assert_not_null(l->srv, "%s", why ? why : "");
    l->conn = rpc_conn_new(rpc_net_zctx(l->net), &l->sc, 2, ep, RPC_KIND_VOTE);
    cr_assert_not_null(l->conn);
}

static void link_fini(rlink *l)
{
    rpc_conn_destroy(&l->conn);
    rpc_server_destroy(&l->srv);
    zraft_network_destroy(&l->net);
}

/* Node 1 asks for a vote; returns when the connection took the frame. */
static void ask(rlink *l)
{
    msg m = {.type = MSG_VOTE, .from = 1, .to = 2, .term = 1};
    uint64_t deadline = s_now() + 10000;
    int rv;
    while ((rv = rpc_conn_send(l->conn, &m)) == ZRAFT_EAGAIN) {
        cr_assert_lt(s_now(), deadline, "never connected");
        zmq_pollitem_t it = {rpc_conn_socket(l->conn), 0, ZMQ_POLLOUT, 0};
        zmq_poll(&it, 1, 10);
    }
    cr_assert_eq(rv, 0, "%s", zraft_strerror(rv));
}

/* Node 2 receives one request and answers it; node 1 receives the
 * answer. */
static void answer(rlink *l)
{
    msg in, out;
    uint64_t deadline = s_now() + 10000;
    while (rpc_server_recv(l->srv, &in, s_now()) != 1) {
        cr_assert_lt(s_now(), deadline, "the request never arrived");
        zmq_pollitem_t it = {rpc_server_socket(l->srv), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 10);
    }
    cr_assert_eq(in.type, MSG_VOTE);
    codec_msg_release(&in);
    msg r = {.type = MSG_VOTE_RESP, .from = 2, .to = 1, .term = 1};
    r.u.vote_resp.granted = true;
    cr_assert_eq(rpc_server_send(l->srv, &r, RPC_KIND_VOTE), 0);
    while (rpc_conn_recv(l->conn, &out, s_now()) != 1) {
        cr_assert_lt(s_now(), deadline, "the answer never arrived");
        zmq_pollitem_t it = {rpc_conn_socket(l->conn), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 10);
    }
    cr_assert_eq(out.type, MSG_VOTE_RESP);
    codec_msg_release(&out);
}

/* Waits until the clock is past `t` (time has to pass: no condition to
 * poll but the clock itself). */
static void s_wait_past(uint64_t t)
{
    while (s_now() <= t) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

Test(rpc_conn, a_new_connection_is_not_unanswered_until_a_send_is)
{
    rlink l;
    link_init(&l);
    uint64_t t0 = s_now();
    cr_assert_not(rpc_conn_unanswered(l.conn, t0 + 100 * T_MS, T_MS),
                  "nothing was sent: nothing went unanswered");
    ask(&l);
    uint64_t sent = s_now();
    cr_assert_not(rpc_conn_unanswered(l.conn, t0, T_MS));
    cr_assert(rpc_conn_unanswered(l.conn, sent + T_MS + 1, T_MS),
              "a send unanswered for longer than the time-out");
    answer(&l);
    cr_assert_not(rpc_conn_unanswered(l.conn, sent + 100 * T_MS, T_MS),
                  "answered: nothing is unanswered");
    link_fini(&l);
}

/* The case that lost forwarded writes: idle for long after its last
 * answer, then two sends in a row. */
Test(rpc_conn, idle_then_two_sends_in_a_row_is_not_unanswered)
{
    rlink l;
    link_init(&l);
    ask(&l);
    answer(&l);
    uint64_t heard = s_now();
    s_wait_past(heard + 2 * T_MS); /* idle for longer than the time-out */
    uint64_t before = s_now();
    ask(&l); /* the first send after the idle time ... */
    uint64_t after = s_now();
    cr_assert_not(rpc_conn_unanswered(l.conn, before, T_MS),
                  "unanswered at the second send: its last answer was old, but "
                  "nothing had gone unanswered for long");
    cr_assert_not(rpc_conn_unanswered(l.conn, after, T_MS));
    ask(&l); /* ... and a second one before the first is answered */
    cr_assert_not(rpc_conn_unanswered(l.conn, before, T_MS));
    cr_assert(rpc_conn_unanswered(l.conn, after + T_MS + 1, T_MS),
              "the first of them unanswered for longer than the time-out");
    answer(&l);
    answer(&l);
    cr_assert_not(rpc_conn_unanswered(l.conn, after + 100 * T_MS, T_MS));
    link_fini(&l);
}

/* Sends that keep going out do not postpone it: the clock runs from the
 * first send after the last answer. */
Test(rpc_conn, later_sends_do_not_restart_the_clock)
{
    rlink l;
    link_init(&l);
    ask(&l); /* never answered */
    uint64_t sent = s_now();
    s_wait_past(sent + 2 * T_MS);
    uint64_t before = s_now();
    ask(&l);
    cr_assert(rpc_conn_unanswered(l.conn, before, T_MS),
              "the first send has gone unanswered for longer than the "
              "time-out, whatever was sent since");
    link_fini(&l);
}

/* A send refused for want of a connection counts as unanswered: a peer
 * that cannot be reached is replaced after the time-out. */
Test(rpc_conn, refused_sends_count_as_unanswered)
{
    void *z = zmq_ctx_new();
    rpc_ctx c;
    s_ctx(&c, NULL, 1);
    rpc_conn *k = rpc_conn_new(z, &c, 2, "tcp://127.0.0.1:1", RPC_KIND_FWD);
    cr_assert_not_null(k);
    msg m = {.type = MSG_VOTE, .from = 1, .to = 2, .term = 1};
    uint64_t before = s_now();
    cr_assert_eq(rpc_conn_send(k, &m), ZRAFT_EAGAIN);
    uint64_t after = s_now();
    cr_assert_not(rpc_conn_unanswered(k, before, T_MS));
    cr_assert(rpc_conn_unanswered(k, after + T_MS + 1, T_MS));
    rpc_conn_destroy(&k);
    zmq_ctx_term(z);
}
