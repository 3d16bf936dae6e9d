/* repl.c - a replication stream: one thread per follower or learner while
 * this node leads ("repl-<id>-<target>").
 *
 * It owns the DEALER to its target's ROUTER. The core sends it
 * UpdateReplication (send the entries (prev, last] with this commit index),
 * heartbeats and snapshot requests; the stream reads the entries from
 * storage (references, no copies), sends them without waiting for the
 * answer (the engine bounds how many are in flight), and forwards every
 * reply to the core as UpdateReplicationMatched tagged with the term it was
 * sent under, so the core can drop reports of an older session. (An
 * update without entries waits in the core first: core.c STREAM_HOLD_US.)
 * A slow or dead follower only ever fills this stream's socket: sends never
 * block, and what cannot be sent is reported as unreachable.
 *
 * Snapshots go out as a chunked stream (transport/snapsend.h): one
 * SEND_SNAPSHOT from the core starts a transfer read from the stored
 * snapshot (a mapping of its file), and every turn of the loop sends at
 * most a window of chunks, so heartbeats and AppendEntries keep flowing
 * and STOP is answered within a turn. The follower acknowledges each chunk;
 * a transfer survives reconnects and resumes at the follower's offset. The
 * engine asks again while the transfer runs (its retry timer): that
 * continues the transfer, it does not restart it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "actors/node_int.h"
#include "transport/snapsend.h"

struct repl {
    zraft_node *n;
    zraft_id target;
    char addr[ZRAFT_ADDR_MAX];
    actor a;
    char endpoint[96];
};

/* Frames kept for a connection that is not up yet (s_keep_early). A new
 * leader's stream sends one probe and heartbeats until the first answer,
 * so a few are enough; more are reported unreachable, as before. */
#define STREAM_EARLY_MAX 8

typedef struct {
    repl *r;
    rpc_conn *conn;
    void *push_core;
    uint64_t term; /* session: term of the last request sent */
    zraft_entry *ents;
    size_t cap;
    uint64_t stale_ms;    /* nothing heard for this long: reconnect */
    snapsend snap;        /* the snapshot transfer to the target */
    uint64_t snap_ids;    /* transfer ids: unique per stream and term */
    uint64_t snap_retry;  /* after an aborted transfer, none before this */
    uint64_t snap_pub_ms; /* metrics last published */
    uint64_t pub_sent, pub_resent; /* ... with these counts */
    uint64_t tr_acked;             /* tracing: highest index stamped */
    /* A new connection refuses sends until its TCP and ZMTP handshakes are
     * done (ZMQ_IMMEDIATE, about 0.3 ms on a LAN): what the core sends
     * before that waits here, in order, for the connection to be up, or
     * at most a heartbeat interval (s_keep_early). */
    bool up; /* this connection took a frame or gave an answer */
    amsg early[STREAM_EARLY_MAX];
    uint32_t n_early;
    uint64_t early_until; /* ms */
} stream;

static void s_report(stream *s, int err)
{
    amsg m;
    memset(&m, 0, sizeof m);
    m.type = AM_REPL_UNREACHABLE;
    m.u.unreachable.target = s->r->target;
    m.u.unreachable.vote_term = s->term;
    m.u.unreachable.err = err;
    actor_send(s->push_core, &m);
}

/* Keeps `m` behind the frames already kept; false when there is no room
 * (it is then reported unreachable). */
static bool s_append_early(stream *s, const amsg *m)
{
    if (s->n_early == STREAM_EARLY_MAX) {
        return false;
    }
    if (s->n_early == 0) {
        s->early_until = actor_now_ms() + s->r->n->cfg.heartbeat_interval_ms;
    }
    s->early[s->n_early++] = *m;
    return true;
}

/* A send on a connection that was never up is refused (ZMQ_IMMEDIATE)
 * while its handshakes run: every new leader's first AppendEntries and
 * heartbeat over TCP were, and the engine's next probe came a heartbeat
 * interval later (measured with 3 zraftd: the other follower heard of the
 * new leader 77-81 ms after it was elected, with a 75 ms heartbeat). Such
 * a frame is kept, in order, and sent once the connection is up (the loop
 * polls it for POLLOUT); after a heartbeat interval it is reported
 * unreachable as any refused send, and the engine probes again. Returns
 * true if kept. */
static bool s_keep_early(stream *s, const amsg *m, int rv)
{
    if (rv != ZRAFT_EAGAIN || s->up) {
        return false;
    }
    return s_append_early(s, m);
}

/* The outcome of sending `m` (an update or a heartbeat). */
static void s_sent(stream *s, const amsg *m, int rv)
{
    if (rv == 0) {
        s->up = true;
    } else if (!s_keep_early(s, m, rv)) {
        s_report(s, rv);
    }
}

static void s_update(stream *s, const amsg *u)
{
    zraft_node *n = s->r->n;
    s->term = u->u.repl_update.term;
    uint64_t from = u->u.repl_update.prev.index + 1;
    uint64_t last = u->u.repl_update.last;
    size_t want = last >= from ? (size_t)(last - from + 1) : 0;
    if (want > s->cap) {
        zraft_entry *e = realloc(s->ents, want * sizeof(*e));
        if (e == NULL) {
            s_report(s, ZRAFT_ENOMEM);
            return;
        }
        s->ents = e;
        s->cap = want;
    }
    /* The engine bounds a message by max_bytes_per_msg (validated to fit
     * in one frame) and sends a larger entry alone (bounded by
     * ZRAFT_MAX_PAYLOAD_BYTES); reading at most that many bytes keeps
     * every AppendEntries within the frame limit whatever the range: a
     * shorter message is acknowledged for what it carries and the rest
     * follows, so nothing is ever refused for its size. */
    const size_t max = ZRAFT_MAX_PAYLOAD_BYTES;
    size_t got = 0, used = 0;
    while (got < want) {
        size_t k = want - got;
        int rv =
            node_get_entries(n, from + got, last, used < max ? max - used : 1,
                             s->ents + got, &k);
        if (rv != 0 || k == 0) {
            for (size_t i = 0; i < got; i++) {
                zraft_buf_unref(s->ents[i].payload);
            }
            s_report(s, rv == 0 ? ZRAFT_ENOTFOUND : rv);
            return;
        }
        size_t keep = 0;
        for (size_t i = got; i < got + k; i++) {
            size_t sz = (s->ents[i].payload ? s->ents[i].payload->len : 0) +
                        CODEC_ENTRY_MIN_LEN + 8;
            if (i > 0 && used + sz > max) {
                break;
            }
            used += sz;
            keep++;
        }
        for (size_t i = got + keep; i < got + k; i++) {
            zraft_buf_unref(s->ents[i].payload);
        }
        got += keep;
        if (keep < k) {
            break; /* full: the rest goes in the next message */
        }
    }
    msg m;
    memset(&m, 0, sizeof m);
    m.type = MSG_APPEND;
    m.from = n->cfg.id;
    m.to = s->r->target;
    m.term = s->term;
    m.u.append.prev = u->u.repl_update.prev;
    m.u.append.commit = u->u.repl_update.commit;
    m.u.append.n_entries = (uint32_t)got;
    m.u.append.entries = s->ents;
    int rv = rpc_conn_send(s->conn, &m);
    if (rv == 0 && got > 0 && trace_sampled(0)) {
        trace_stamp_range(n->cfg.id, from, from + got - 1, TRACE_SENT);
    }
    for (size_t i = 0; i < got; i++) {
        zraft_buf_unref(s->ents[i].payload);
    }
    s_sent(s, u, rv);
}

/* How long a follower that holds a whole snapshot may take to install it
 * (write it to its store, restore its state machine) before a new request
 * sends it again: a few reconnect timeouts, plus 1 ms per 64 KiB. */
static uint64_t s_install_wait(const stream *s)
{
    return 4 * s->stale_ms + (s->snap.total >> 16);
}

/* CMD_SEND_SNAPSHOT: start a transfer of the stored snapshot, unless one
 * to the same target in this term is running or being installed. */
static void s_snapshot(stream *s, uint64_t term, uint64_t now)
{
    zraft_node *n = s->r->n;
    snapsend *x = &s->snap;
    s->term = term;
    if (x->state == SNAPSEND_SENDING && x->head.term == term) {
        return;
    }
    if (x->state == SNAPSEND_SENT && x->head.term == term &&
        now - x->done_ms < s_install_wait(s)) {
        return;
    }
    if (now < s->snap_retry) {
        return;
    }
    snapshot_meta meta;
    zraft_buf *data = NULL;
    if (n->st->snapshot_load(n->st->ctx, &meta, &data) != 0) {
        s_report(s, ZRAFT_ENOTFOUND);
        return;
    }
    snapsend_start(x, n->cfg.id, s->r->target, term, &meta, data, ++s->snap_ids,
                   now);
    zraft_buf_unref(data);
}

static void s_pub_fn(zraft_metrics *m, void *arg)
{
    const uint64_t *d = arg;
    m->snapshot_bytes_sent += d[0];
    m->snapshot_bytes_resent += d[1];
}

/* Adds what the transfer sent to the node's metrics, at most every 100 ms
 * while it runs. */
static void s_publish(stream *s, uint64_t now, bool force)
{
    uint64_t d[2] = {s->snap.bytes_sent - s->pub_sent,
                     s->snap.resent - s->pub_resent};
    if (d[0] == 0 || (!force && now - s->snap_pub_ms < 100)) {
        return;
    }
    node_metrics_update(s->r->n, s_pub_fn, d);
    s->pub_sent = s->snap.bytes_sent;
    s->pub_resent = s->snap.resent;
    s->snap_pub_ms = now;
}

/* One turn of the snapshot transfer: a transfer that made no progress for
 * long is given up (the core asks again), one that stalled resends from
 * the acknowledged offset, then at most a window of chunks goes out.
 * Returns true when chunks wait for room in the socket. */
static bool s_snap_turn(stream *s, uint64_t now)
{
    snapsend *x = &s->snap;
    if (x->state == SNAPSEND_SENDING && now - x->moved_ms > 50 * s->stale_ms) {
        snapsend_stop(x);
        s_report(s, ZRAFT_ETIMEDOUT);
    }
    snapsend_tick(x, now, s->stale_ms);
    bool blocked = false;
    if (s->conn != NULL && snapsend_can_send(x)) {
        int rv = snapsend_pump(x, s->conn, now);
        blocked = rv == ZRAFT_EAGAIN;
        if (rv != 0 && !blocked) {
            s_report(s, rv);
        }
    }
    s_publish(s, now, x->state != SNAPSEND_SENDING);
    return blocked;
}

/* A reply on the stream's connection. */
static void s_reply(stream *s, msg *resp, uint64_t now)
{
    if (resp->type == CODEC_MSG_SNAPSHOT_ACK) {
        int rv = snapsend_ack(&s->snap, resp->term, rpc_conn_ack(s->conn), now);
        if (rv < 0) {
            /* The follower refuses this transfer: the core asks again
             * later, not at once. */
            s->snap_retry = now + s->stale_ms;
            s_report(s, rv);
        }
        return;
    }
    if (resp->type == MSG_SNAPSHOT_RESP && s->snap.state == SNAPSEND_SENT) {
        snapsend_stop(&s->snap); /* installed (or refused): done */
    }
    if (resp->type == MSG_APPEND_RESP && resp->u.append_resp.success &&
        trace_sampled(0) && resp->u.append_resp.index > s->tr_acked) {
        trace_stamp_range(s->r->n->cfg.id, s->tr_acked + 1,
                          resp->u.append_resp.index, TRACE_ACKED);
        s->tr_acked = resp->u.append_resp.index;
    }
    if (resp->type == MSG_APPEND_RESP || resp->type == MSG_HEARTBEAT_RESP ||
        resp->type == MSG_SNAPSHOT_RESP) {
        amsg out;
        memset(&out, 0, sizeof out);
        out.type = AM_REPL_MATCHED;
        out.u.matched.target = s->r->target;
        out.u.matched.vote_term = s->term;
        out.u.matched.resp = *resp;
        actor_send(s->push_core, &out);
    }
}

static void s_send(stream *s, const amsg *m)
{
    s->term = m->u.repl_send.m.term;
    int rv = rpc_conn_send(s->conn, &m->u.repl_send.m);
    s_sent(s, m, rv != 0 ? ZRAFT_EAGAIN : 0);
}

/* Sends the kept frames once the connection is up (`writable`), in order;
 * reports them unreachable once their wait is over. */
static void s_flush_early(stream *s, bool writable, uint64_t now)
{
    if (s->n_early == 0) {
        return;
    }
    uint32_t n = s->n_early;
    uint64_t until = s->early_until;
    amsg kept[STREAM_EARLY_MAX];
    memcpy(kept, s->early, n * sizeof(amsg));
    s->n_early = 0;
    if (writable && s->conn != NULL) {
        for (uint32_t i = 0; i < n; i++) {
            if (s->n_early > 0) {
                s_append_early(s, &kept[i]); /* one was refused: in order */
            } else if (kept[i].type == AM_REPL_UPDATE) {
                s_update(s, &kept[i]);
            } else {
                s_send(s, &kept[i]);
            }
        }
        if (s->n_early > 0 && now < until) {
            s->early_until = until; /* kept again: the first wait goes on */
        } else if (s->n_early > 0) {
            s->n_early = 0; /* refused though writable, and waited enough */
            s_report(s, ZRAFT_EAGAIN);
        }
    } else if (now >= until) {
        s->term = kept[n - 1].type == AM_REPL_UPDATE
                      ? kept[n - 1].u.repl_update.term
                      : kept[n - 1].u.repl_send.m.term;
        s_report(s, ZRAFT_EAGAIN);
    } else {
        memcpy(s->early, kept, n * sizeof(amsg));
        s->n_early = n;
    }
}

static void s_body(actor *a, void *arg)
{
    repl *r = arg;
    zraft_node *n = r->n;
    stream s;
    memset(&s, 0, sizeof s);
    s.r = r;
    s.push_core = actor_connect(n->zctx, n->ep_core);
    s.stale_ms = 2ull * n->cfg.election_timeout_max_ms;
    snapsend_init(&s.snap, &n->rpc);
    /* Transfer ids differ from any earlier stream's to this target. */
    s.snap_ids = actor_now_us() << 16;
    char ep[160];
    s.conn = NULL;
    if (rpc_peer_endpoint(&n->rpc, r->target, r->addr, false, ep, sizeof ep) ==
        0) {
        s.conn = rpc_conn_new(n->zctx, &n->rpc, r->target, ep, RPC_KIND_REPL);
    }
    uint64_t next_addr_check = 0;
    bool stop = false, blocked = false;
    actor_idle idle = {n->cfg.spin_us, 0};
    while (!stop) {
        zmq_pollitem_t items[2] = {
            {a->mailbox, 0, ZMQ_POLLIN, 0},
            {s.conn ? rpc_conn_socket(s.conn) : NULL, 0, ZMQ_POLLIN, 0}};
        uint64_t due = s.conn ? rpc_conn_next_due(s.conn) : UINT64_MAX;
        uint64_t now = actor_now_ms();
        long timeout =
            due == UINT64_MAX ? 100 : (due > now ? (long)(due - now) : 0);
        if (blocked && timeout > 10) {
            timeout = 10; /* chunks wait for room in the socket */
        }
        if (s.n_early > 0) {
            items[1].events |= ZMQ_POLLOUT; /* up: sends are taken */
            long left = s.early_until > now ? (long)(s.early_until - now) : 0;
            timeout = left < timeout ? left : timeout;
        }
        actor_poll(&idle, items, s.conn ? 2 : 1, timeout);
        now = actor_now_ms();
        s_flush_early(&s, (items[1].revents & ZMQ_POLLOUT) != 0, now);
        amsg m;
        while (actor_recv(a->mailbox, &m, ZMQ_DONTWAIT) == 1) {
            if (m.type == AM_STOP) {
                stop = true;
                break;
            }
            if (s.conn == NULL) {
                continue;
            }
            if ((m.type == AM_REPL_UPDATE || m.type == AM_REPL_SEND) &&
                s.n_early > 0) {
                /* Behind the frames waiting for the connection. */
                if (!s_append_early(&s, &m)) {
                    s.term = m.type == AM_REPL_UPDATE ? m.u.repl_update.term
                                                      : m.u.repl_send.m.term;
                    s_report(&s, ZRAFT_EAGAIN);
                }
            } else if (m.type == AM_REPL_UPDATE) {
                s_update(&s, &m);
            } else if (m.type == AM_REPL_SEND) {
                s_send(&s, &m);
            } else if (m.type == AM_REPL_SNAPSHOT) {
                s_snapshot(&s, m.u.repl_snapshot.term, now);
            }
        }
        if (stop) {
            break;
        }
        /* A connection that hears nothing back is recreated (a restarted
         * inproc peer; a peer that may have moved: its name is looked up
         * again), as is one whose peer's name now resolves elsewhere; one
         * that could not be made (no address yet) is retried every turn.
         * What was in flight on it is lost: a transfer resumes from the
         * follower's last acknowledgement. */
        bool stale = s.conn == NULL || rpc_conn_stale(s.conn, now, s.stale_ms);
        char ep2[sizeof ep];
        if (stale) {
            rpc_conn_destroy(&s.conn);
            s.up = false;
            if (rpc_peer_endpoint(&n->rpc, r->target, r->addr, true, ep,
                                  sizeof ep) == 0) {
                s.conn = rpc_conn_new(n->zctx, &n->rpc, r->target, ep,
                                      RPC_KIND_REPL);
            }
            snapsend_reconnected(&s.snap);
            next_addr_check = now + 100;
        } else if (now >= next_addr_check) {
            next_addr_check = now + 100;
            if (rpc_peer_endpoint(&n->rpc, r->target, r->addr, false, ep2,
                                  sizeof ep2) == 0 &&
                strcmp(ep2, ep) != 0) {
                memcpy(ep, ep2, sizeof ep);
                rpc_conn_destroy(&s.conn);
                s.up = false;
                s.conn = rpc_conn_new(n->zctx, &n->rpc, r->target, ep,
                                      RPC_KIND_REPL);
                snapsend_reconnected(&s.snap);
            }
        }
        msg resp;
        while (s.conn && rpc_conn_recv(s.conn, &resp, now) == 1) {
            s.up = true;
            s_reply(&s, &resp, now);
            codec_msg_release(&resp);
        }
        blocked = s_snap_turn(&s, now);
    }
    s_publish(&s, actor_now_ms(), true);
    snapsend_stop(&s.snap);
    rpc_conn_destroy(&s.conn);
    zmq_close(s.push_core);
    free(s.ents);
}

repl *repl_start(zraft_node *n, zraft_id target, const char *addr)
{
    repl *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    r->n = n;
    r->target = target;
    snprintf(r->addr, sizeof r->addr, "%s", addr ? addr : "");
    /* Once per process (see actor_endpoint_seq): a stream restarted for
     * the same target at once must not need the old one's name. */
    snprintf(r->endpoint, sizeof r->endpoint, "inproc://zn-%llu-repl-%llu",
             (unsigned long long)actor_endpoint_seq(),
             (unsigned long long)target);
    char name[16];
    snprintf(name, sizeof name, "repl-%llu-%llu", (unsigned long long)n->cfg.id,
             (unsigned long long)target);
    if (actor_start(&r->a, n->zctx, name, r->endpoint, s_body, r) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

void repl_stop(repl **rp, bool stop_sent)
{
    if (rp == NULL || *rp == NULL) {
        return;
    }
    if (stop_sent) {
        actor_join(&(*rp)->a);
    }
    actor_close(&(*rp)->a); /* only the core sends to it: stopped here */
    free(*rp);
    *rp = NULL;
}

const char *repl_endpoint(const repl *r)
{
    return r->endpoint;
}

zraft_id repl_target(const repl *r)
{
    return r->target;
}
