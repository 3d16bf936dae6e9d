/* test_snapshot_stream.c - a snapshot transfer between a snapsend on an
 * rpc_conn and an rpc_server, in one thread over the in-process network:
 * chunks are acknowledged, the window bounds what is in flight, and a
 * transfer interrupted mid-way (connection recreated, frames dropped, link
 * lossy or delayed) resumes from the receiver's acknowledged offset instead
 * of from zero. Bytes sent are counted. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "test/tmpdir.h"
#include "transport/rpc.h"
#include "transport/snapsend.h"

#define CLUSTER 0x5eedull
#define CHUNK   (64u << 10)
#define WINDOW  (4ull * CHUNK)
#define TOTAL   (8ull << 20)

typedef struct {
    zraft_network *net;
    void *zctx;
    rpc_ctx sc, rc; /* sender (node 1), receiver (node 2) */
    char ep[160];
    rpc_server *srv;
    rpc_conn *conn;
    snapsend x;
    snapshot_meta meta;
    zraft_buf *data;
    zraft_buf *got; /* the snapshot as the receiver's engine would get it */
    snapshot_meta got_meta;
    uint64_t max_in_flight;
    uint64_t acks;
} rig;

static uint64_t s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void s_ctx(rpc_ctx *c, zraft_network *net, zraft_id self)
{
    memset(c, 0, sizeof(*c));
    codec_ctx_init(&c->codec, CLUSTER, self);
    c->net = net;
    c->self = self;
    c->snapshot_chunk = CHUNK;
    c->snapshot_window = WINDOW;
    snprintf(c->scratch_dir, sizeof c->scratch_dir, "%s", dir);
}

static void rig_init(rig *r, uint8_t sender_version)
{
    memset(r, 0, sizeof(*r));
    r->net = zraft_network_new();
    cr_assert_not_null(r->net);
    r->zctx = rpc_net_zctx(r->net);
    s_ctx(&r->sc, r->net, 1);
    s_ctx(&r->rc, r->net, 2);
    r->sc.codec.version = sender_version;
    rpc_endpoint(&r->rc, 2, "", r->ep, sizeof r->ep);
    const char *why = NULL;
    r->srv = rpc_server_new(r->zctx, &r->rc, r->ep, &why);
    cr_assert_not_null(r->srv, "%s", why ? why : "");
    r->conn = rpc_conn_new(r->zctx, &r->sc, 2, r->ep, RPC_KIND_REPL);
    cr_assert_not_null(r->conn);
    r->data = zraft_buf_new(NULL, TOTAL);
    for (size_t i = 0; i < TOTAL; i++) {
        r->data->data[i] = (unsigned char)(i * 31 + (i >> 12));
    }
    r->meta.last_log_id = (zraft_log_id){3, 1234};
    r->meta.membership.n = 2;
    r->meta.membership.members[0] = (zraft_member){1, ZRAFT_ROLE_VOTER, "", ""};
    r->meta.membership.members[1] = (zraft_member){2, ZRAFT_ROLE_VOTER, "", ""};
    snapsend_init(&r->x, &r->sc);
    cr_assert_eq(r->x.chunk, CHUNK);
    cr_assert_eq(r->x.window, WINDOW);
    snapsend_start(&r->x, 1, 2, 5, &r->meta, r->data, 77, s_now());
}

static void rig_fini(rig *r)
{
    snapsend_stop(&r->x);
    zraft_buf_unref(r->data);
    zraft_buf_unref(r->got);
    rpc_conn_destroy(&r->conn);
    rpc_server_destroy(&r->srv);
    zraft_network_destroy(&r->net);
}

/* One turn: send what the window allows, let the receiver store and
 * acknowledge, feed the acks back, run the stall timer (500 ms). */
static void turn(rig *r)
{
    zmq_pollitem_t it[2] = {{rpc_server_socket(r->srv), 0, ZMQ_POLLIN, 0},
                            {rpc_conn_socket(r->conn), 0, ZMQ_POLLIN, 0}};
    zmq_poll(it, 2, 2);
    uint64_t now = s_now(), before = r->x.bytes_sent;
    int rv = snapsend_pump(&r->x, r->conn, now);
    cr_assert(rv == 0 || rv == ZRAFT_EAGAIN, "pump: %s", zraft_strerror(rv));
    cr_assert_leq(r->x.bytes_sent - before, WINDOW, "a window per turn");
    if (r->x.next - r->x.acked > r->max_in_flight) {
        r->max_in_flight = r->x.next - r->x.acked;
    }
    msg m;
    while (rpc_server_recv(r->srv, &m, now) == 1) {
        cr_assert_eq(m.type, MSG_SNAPSHOT);
        cr_assert_null(r->got, "one snapshot is delivered once");
        r->got = zraft_buf_ref(m.u.snapshot.data);
        r->got_meta = *m.u.snapshot.meta;
        codec_msg_release(&m);
    }
    while (rpc_conn_recv(r->conn, &m, now) == 1) {
        cr_assert_eq(m.type, CODEC_MSG_SNAPSHOT_ACK);
        r->acks++;
        cr_assert_geq(snapsend_ack(&r->x, m.term, rpc_conn_ack(r->conn), now),
                      0);
        codec_msg_release(&m);
    }
    snapsend_tick(&r->x, now, 500);
}

/* Runs until the receiver holds the snapshot and the sender knows it. */
static void finish(rig *r)
{
    uint64_t deadline = s_now() + 30000;
    while (!(r->got != NULL && r->x.state == SNAPSEND_SENT)) {
        cr_assert_lt(s_now(), deadline, "transfer did not finish: acked %llu",
                     (unsigned long long)r->x.acked);
        turn(r);
    }
    cr_assert_eq(r->got->len, TOTAL);
    cr_assert(r->got->flags & ZRAFT_BUF_MAPPED, "received into a file");
    cr_assert_eq(memcmp(r->got->data, r->data->data, TOTAL), 0);
    cr_assert_eq(r->got_meta.last_log_id.index, 1234);
    cr_assert_leq(r->max_in_flight, WINDOW);
    cr_assert_null(r->x.data, "the sender let go of the data");
}

static void run_until_acked(rig *r, uint64_t at_least)
{
    uint64_t deadline = s_now() + 30000;
    while (r->x.acked < at_least) {
        cr_assert_lt(s_now(), deadline);
        turn(r);
    }
}

TestSuite(snapshot_stream, .init = tmpdir_setup, .fini = tmpdir_teardown);

Test(snapshot_stream, acknowledged_chunks_within_the_window)
{
    rig r;
    rig_init(&r, CODEC_VERSION);
    finish(&r);
    cr_assert_eq(r.x.bytes_sent, TOTAL, "sent once");
    cr_assert_eq(r.x.resent, 0);
    cr_assert_eq(r.acks, TOTAL / CHUNK, "one ack per chunk");
    rig_fini(&r);
}

Test(snapshot_stream, reconnect_resumes_at_the_acknowledged_offset)
{
    rig r;
    rig_init(&r, CODEC_VERSION);
    run_until_acked(&r, TOTAL / 2);
    /* A window goes out, then the stream's connection is replaced (linger
     * 0: what was queued may be gone); the receiver keeps its partial
     * transfer. */
    cr_assert_eq(snapsend_pump(&r.x, r.conn, s_now()), 0);
    cr_assert_eq(r.x.next - r.x.acked, WINDOW);
    uint64_t acked = r.x.acked, sent = r.x.bytes_sent;
    rpc_conn_destroy(&r.conn);
    r.conn = rpc_conn_new(r.zctx, &r.sc, 2, r.ep, RPC_KIND_REPL);
    snapsend_reconnected(&r.x);
    cr_assert_eq(r.x.next, acked, "resumes at the acknowledged offset");
    finish(&r);
    cr_assert_eq(sent - acked, WINDOW);
    cr_assert_leq(r.x.bytes_sent, TOTAL + WINDOW,
                  "sent %llu bytes for %llu: no restart from zero",
                  (unsigned long long)r.x.bytes_sent,
                  (unsigned long long)TOTAL);
    cr_assert_eq(r.x.bytes_sent - TOTAL, r.x.resent);
    rig_fini(&r);
}

Test(snapshot_stream, dropped_chunks_are_resent_from_the_acknowledged_offset)
{
    rig r;
    rig_init(&r, CODEC_VERSION);
    run_until_acked(&r, TOTAL / 3);
    zraft_network_cut(r.net, 1, 2); /* chunks in flight and sent are lost */
    uint64_t until = s_now() + 250;
    while (s_now() < until) {
        turn(&r);
    }
    cr_assert_lt(r.x.acked, TOTAL);
    zraft_network_heal(r.net);
    finish(&r);
    /* Each stall resent at most a window while the link was cut. */
    cr_assert_gt(r.x.resent, 0);
    cr_assert_leq(r.x.resent, 5 * WINDOW, "resent %llu",
                  (unsigned long long)r.x.resent);
    rig_fini(&r);
}

Test(snapshot_stream, lossy_link_fills_each_gap_once)
{
    rig r;
    rig_init(&r, CODEC_VERSION);
    zraft_network_lossy(r.net, 1, 2, 50); /* 5% of the chunks */
    finish(&r);
    cr_assert_gt(zraft_network_dropped(r.net), 0);
    cr_assert_lt(r.x.resent, TOTAL / 2, "resent %llu of %llu",
                 (unsigned long long)r.x.resent, (unsigned long long)TOTAL);
    rig_fini(&r);
}

Test(snapshot_stream, delayed_link_keeps_order)
{
    rig r;
    rig_init(&r, CODEC_VERSION);
    zraft_network_delay(r.net, 1, 2, 20);
    zraft_network_delay(r.net, 2, 1, 20);
    finish(&r);
    cr_assert_eq(r.x.resent, 0, "delayed frames arrive in order");
    rig_fini(&r);
}

Test(snapshot_stream, restarted_receiver_gets_it_again_from_zero)
{
    rig r;
    rig_init(&r, CODEC_VERSION);
    run_until_acked(&r, TOTAL / 2);
    /* The receiving node restarts: its partial transfer is gone (and an
     * in-process peer that restarted needs a new connection). */
    rpc_conn_destroy(&r.conn);
    rpc_server_destroy(&r.srv);
    const char *why = NULL;
    uint64_t deadline = s_now() + 5000;
    /* ZeroMQ releases an inproc name asynchronously after a close. */
    while ((r.srv = rpc_server_new(r.zctx, &r.rc, r.ep, &why)) == NULL) {
        cr_assert_lt(s_now(), deadline, "rebind: %s", why);
        zmq_poll(NULL, 0, 5);
    }
    r.conn = rpc_conn_new(r.zctx, &r.sc, 2, r.ep, RPC_KIND_REPL);
    snapsend_reconnected(&r.x);
    finish(&r);
    cr_assert_gt(r.x.bytes_sent, TOTAL + TOTAL / 2 - WINDOW);
    rig_fini(&r);
}

Test(snapshot_stream, version_1_sender_gets_no_acks)
{
    rig r;
    rig_init(&r, 1);
    cr_assert_not(r.x.acks);
    uint64_t deadline = s_now() + 30000;
    while (r.got == NULL) {
        cr_assert_lt(s_now(), deadline);
        turn(&r);
    }
    cr_assert_eq(r.x.state, SNAPSEND_SENT);
    cr_assert_eq(r.acks, 0);
    cr_assert_eq(memcmp(r.got->data, r.data->data, TOTAL), 0);
    rig_fini(&r);
}

Test(snapshot_stream, stale_term_is_aborted_by_the_receiver)
{
    rig r;
    rig_init(&r, CODEC_VERSION);
    run_until_acked(&r, CHUNK);
    /* A newer leader's transfer replaces ours at the receiver. */
    snapsend y;
    snapsend_init(&y, &r.sc);
    snapsend_start(&y, 1, 2, 6, &r.meta, r.data, 78, s_now());
    cr_assert_eq(snapsend_pump(&y, r.conn, s_now()), 0);
    snapsend_stop(&y);
    uint64_t deadline = s_now() + 10000;
    int rv = 0;
    while (rv == 0) {
        cr_assert_lt(s_now(), deadline);
        zmq_poll(NULL, 0, 2);
        uint64_t now = s_now();
        snapsend_pump(&r.x, r.conn, now);
        msg m;
        while (rpc_server_recv(r.srv, &m, now) == 1) {
            codec_msg_release(&m);
        }
        while (rv == 0 && rpc_conn_recv(r.conn, &m, now) == 1) {
            rv = snapsend_ack(&r.x, m.term, rpc_conn_ack(r.conn), now);
            codec_msg_release(&m);
        }
    }
    cr_assert_eq(rv, ZRAFT_EUNAVAILABLE);
    cr_assert_eq(r.x.state, SNAPSEND_IDLE);
    rig_fini(&r);
}

Test(snapshot_stream, partial_transfer_left_alone_is_dropped)
{
    rig r;
    rig_init(&r, CODEC_VERSION);
    run_until_acked(&r, TOTAL / 2);
    /* Five minutes without a chunk (the receiver is told the time). */
    msg m;
    cr_assert_eq(rpc_server_recv(r.srv, &m, s_now() + 301000), 0);
    finish(&r);
    cr_assert_geq(r.x.bytes_sent, TOTAL + TOTAL / 2,
                  "the sender starts again from zero");
    rig_fini(&r);
}
