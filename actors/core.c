/* core.c - the RaftCore actor: the one thread that owns the engine.
 *
 * It waits on its mailbox (log writer, state machine, replication streams),
 * the node's ROUTER (inbound RPCs), an eventfd (API requests), and, only
 * while something is expected on them, its vote DEALERs (for two election
 * timeouts after a vote request; until a refused request can go,
 * s_keep_vote) and forwarding DEALERs (while answers are awaited): each
 * socket in the poll set costs every wake-up, and both kinds are drained
 * every turn anyway. Every wake-up drains all of them, so a burst of
 * client writes becomes one engine_propose(), one log append and one
 * UpdateReplication per stream. After each event it runs the engine's
 * commands in order:
 *   - storage commands are queued for the log writer in io_seq order and
 *     leave at the end of the turn (s_flush_turn: on a leader after the
 *     APPLY and the streams, on a follower first, and on a follower also
 *     right after each AppendEntries), which keeps io_seq order; this is
 *     why the core writes a memory store inline only while nothing is
 *     queued or in flight (s_io_inline);
 *   - the others wait in lanes (one per peer, one for the state machine)
 *     until their wait_io is durable; a lane never overtakes itself (a
 *     heartbeat reply and a read-index answer excepted), and a held
 *     command whose role is over
 *     when it is released is dropped (engine_command_current);
 *   - replies to a peer's requests leave through the ROUTER, requests
 *     through the replication stream (AppendEntries, heartbeats, snapshots;
 *     an update without entries waits up to STREAM_HOLD_US for one with
 *     entries) or the vote DEALER (votes, TimeoutNow).
 * It owns: the engine, the ROUTER, the vote DEALERs, its PUSH sockets to the
 * other actors, the replication streams' lifecycle, the table of client
 * writes waiting for their entries (handed to the state machine with each
 * APPLY; a follower's APPLY waits up to FOLLOWER_APPLY_HOLD_US for the next
 * commit) and the reads waiting for read-index. Request forwarding (a
 * follower's writes and reads sent to the leader, and the leader's side
 * of it) is forward.c's, called from here at a few points.
 * A fatal error (storage, state machine) freezes the engine here for good
 * (s_fatal): no ticks, no RPCs, every call failed with the error. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "actors/node_int.h"

enum { LANE_SM = 0 }; /* peer lanes use the peer id */

/* Client writes per engine_propose() at most (zraft_config.max_batch is
 * capped to it). */
#define CORE_MAX_BATCH 1024

typedef struct {
    zraft_id lane;
    command cmd;
} held;

typedef struct {
    uint64_t req;
    zraft_read_cb cb;
    void *arg;
} read_wait;

typedef struct {
    int type;
    waiter *w;
    uint64_t index;
} admin_wait;

/* A message for a replication stream, queued until the end of the turn. */
typedef struct {
    zraft_id to;
    amsg m;
} outbound;

typedef struct {
    zraft_node *n;
    engine *e;
    void *push_log, *push_sm;
    rpc_server *srv;
    struct {
        zraft_id id;
        rpc_conn *c;
        char ep[160]; /* what c connects to */
    } votes[ZRAFT_MAX_MEMBERS];
    uint32_t n_votes;
    /* The vote DEALERs are polled until then (ms): a while after the last
     * request sent on one. Replies are drained every turn anyway, so one
     * that comes later waits at most a turn of the loop (5 ms); every
     * socket in the poll set costs each wake-up of this thread. */
    uint64_t votes_poll_until;
    /* Vote requests and TimeoutNows refused by a connection not yet up,
     * one per peer (s_keep_vote). */
    struct {
        msg m;
        uint64_t until; /* ms: dropped then */
    } vote_kept[ZRAFT_MAX_MEMBERS];
    uint32_t n_vote_kept;
    repl *streams[ZRAFT_MAX_MEMBERS];
    void *stream_push[ZRAFT_MAX_MEMBERS];
    /* Per stream: a commit-only update held back (STREAM_HOLD_US), and
     * since when. */
    amsg stream_held[ZRAFT_MAX_MEMBERS];
    bool stream_has_held[ZRAFT_MAX_MEMBERS];
    uint64_t stream_held_us[ZRAFT_MAX_MEMBERS];
    uint32_t n_streams;
    uint64_t streams_term;
    held *held;
    size_t n_held, cap_held;
    pending_write *pw; /* sorted by index */
    size_t n_pw, cap_pw;
    read_wait *reads;
    size_t n_reads, cap_reads;
    uint64_t next_read;
    admin_wait admins[64];
    uint32_t n_admins;
    uint64_t flushed;    /* highest io_seq durable */
    uint64_t io_sent;    /* highest io_seq handed to the log writer */
    uint64_t e_flushed;  /* highest io_seq the engine was told of */
    uint64_t sm_applied; /* the state machine's index last told the engine */
    int inline_err;      /* an inline storage write failed (s_commands) */
    int fatal;
    uint64_t writes;
    uint64_t repl_refused; /* streams' sends refused (zraft_metrics) */
    uint64_t mem_index;    /* membership index last published */
    /* Tracing (trace.h): the highest index stamped at these stages. */
    uint64_t tr_replied, tr_matched, tr_committed;
    uint64_t apply_upto;   /* highest CMD_APPLY seen */
    bool apply_due;        /* ... not yet sent (s_flush_apply) */
    uint64_t apply_due_us; /* since when (a follower holds it back) */
    /* This turn's messages to the streams and the log writer, sent at the
     * end of a drain in commit-path order (s_flush_turn). */
    outbound *out_stream;
    size_t n_out_stream, cap_out_stream;
    amsg *out_log;
    size_t n_out_log, cap_out_log;
    bool leader; /* role at the last s_publish: picks the flush order */
    zraft_entry scratch[CORE_MAX_BATCH]; /* s_propose's entries */
    fwd *fwd;                            /* request forwarding (forward.c) */
    /* CURVE: the configuration last handed to the admission table. */
    bool auth_synced, auth_committed;
    uint64_t auth_index;
} core;

static void *s_grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) {
        return p;
    }
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need) {
        c *= 2;
    }
    void *q = realloc(p, c * elem);
    if (q == NULL) {
        abort();
    }
    *cap = c;
    return q;
}

/* ---------------------------------------------------------- helpers */

static void s_flush_apply(core *c);

/* Every message to the state machine goes after the pending APPLY. */
static void s_to_sm(core *c, amsg *m)
{
    s_flush_apply(c);
    actor_send(c->push_sm, m);
}

static void s_fail_writes(core *c, pending_write *ws, size_t n, int err)
{
    if (n == 0) {
        return;
    }
    amsg m;
    memset(&m, 0, sizeof m);
    m.type = AM_SM_FAIL;
    m.u.sm_fail.writes = batchpool_get(&c->n->arrays, n * sizeof(*ws));
    memcpy(m.u.sm_fail.writes, ws, n * sizeof(*ws));
    m.u.sm_fail.n = n;
    m.u.sm_fail.err = err;
    s_to_sm(c, &m);
}

static const char *s_addr_of(core *c, zraft_id id)
{
    const zraft_member *mb = zraft_membership_find(engine_membership(c->e), id);
    return mb ? mb->addr : "";
}

static rpc_conn *s_vote_conn(core *c, zraft_id id)
{
    char ep[160];
    bool refresh = false;
    for (uint32_t i = 0; i < c->n_votes; i++) {
        if (c->votes[i].id == id) {
            bool stale =
                rpc_conn_stale(c->votes[i].c, actor_now_ms(),
                               2ull * c->n->cfg.election_timeout_max_ms);
            /* Nothing heard for long: reconnect (a restarted inproc peer is
             * not reconnected by ZeroMQ; a peer may have moved, so its name
             * is looked up again). Also when its name now resolves to
             * another address. The lookup never blocks this thread. */
            if (!stale && (rpc_peer_endpoint(&c->n->rpc, id, s_addr_of(c, id),
                                             false, ep, sizeof ep) != 0 ||
                           strcmp(ep, c->votes[i].ep) == 0)) {
                return c->votes[i].c;
            }
            refresh = stale;
            rpc_conn_destroy(&c->votes[i].c);
            c->votes[i] = c->votes[--c->n_votes];
            break;
        }
    }
    if (c->n_votes == ZRAFT_MAX_MEMBERS ||
        rpc_peer_endpoint(&c->n->rpc, id, s_addr_of(c, id), refresh, ep,
                          sizeof ep) != 0) {
        return NULL; /* no address yet: this request is lost, Raft retries */
    }
    rpc_conn *k = rpc_conn_new(c->n->zctx, &c->n->rpc, id, ep, RPC_KIND_VOTE);
    if (k != NULL) {
        c->votes[c->n_votes].id = id;
        c->votes[c->n_votes].c = k;
        memcpy(c->votes[c->n_votes].ep, ep, sizeof ep);
        c->n_votes++;
    }
    return k;
}

static int s_stream_index(core *c, zraft_id id)
{
    for (uint32_t i = 0; i < c->n_streams; i++) {
        if (repl_target(c->streams[i]) == id) {
            return (int)i;
        }
    }
    return -1;
}

static int s_stream_index(core *c, zraft_id id);

/* An UpdateReplication without entries (the commit index moved, or a
 * probe) waits this long in the core for the next one with entries, which
 * carries the same commit index, before it wakes its stream. Under a
 * steady load the next one comes first and the empty round trip never
 * happens: the stream's wake-up, the follower's core, the stream again and
 * this core (at 1 client, about 0.7 of the leader's 2.7 stream wake-ups
 * per write were these). Idle, a follower learns the commit index up to
 * about 2 ms later (the core polls every millisecond while one is held).
 * Only how soon a follower applies depends on it: the commit index a
 * follower holds is a hint, never needed for safety, and heartbeats carry
 * it too. Anything else for the stream (a heartbeat, a snapshot) does not
 * wait for it, and a stream that stops is sent it first. */
#define STREAM_HOLD_US 1000

static void s_send_held(core *c, uint32_t k)
{
    if (c->stream_has_held[k]) {
        c->stream_has_held[k] = false;
        actor_send(c->stream_push[k], &c->stream_held[k]);
    }
}

/* Sends the streams' queued messages (s_to_stream), in order, holding
 * commit-only updates (STREAM_HOLD_US). */
static void s_flush_streams(core *c)
{
    for (size_t i = 0; i < c->n_out_stream; i++) {
        int k = s_stream_index(c, c->out_stream[i].to);
        if (k < 0) {
            continue;
        }
        const amsg *m = &c->out_stream[i].m;
        if (m->type == AM_REPL_UPDATE) {
            if (m->u.repl_update.last <= m->u.repl_update.prev.index) {
                /* The newest replaces the held one; the wait runs from
                 * the first. */
                if (!c->stream_has_held[k]) {
                    c->stream_has_held[k] = true;
                    c->stream_held_us[k] = actor_now_us();
                }
                c->stream_held[k] = *m;
                continue;
            }
            c->stream_has_held[k] = false; /* these carry the commit */
        }
        actor_send(c->stream_push[k], m);
    }
    c->n_out_stream = 0;
}

/* Sends the held updates whose wait is over; true if one is still held. */
static bool s_flush_held_streams(core *c)
{
    bool any = false;
    uint64_t now = 0;
    for (uint32_t k = 0; k < c->n_streams; k++) {
        if (!c->stream_has_held[k]) {
            continue;
        }
        if (now == 0) {
            now = actor_now_us();
        }
        if (now - c->stream_held_us[k] >= STREAM_HOLD_US) {
            s_send_held(c, k);
        } else {
            any = true;
        }
    }
    return any;
}

/* Sends the log writer's queued storage commands (s_io), in io_seq
 * order. */
static void s_flush_log(core *c)
{
    for (size_t i = 0; i < c->n_out_log; i++) {
        if (actor_send(c->push_log, &c->out_log[i]) != 0) {
            amsg_release(&c->out_log[i]); /* never reported durable */
        }
    }
    c->n_out_log = 0;
}

static void s_stop_stream(core *c, uint32_t i)
{
    s_flush_streams(c); /* what was meant for this stream goes first */
    s_send_held(c, i);
    /* STOP on the same socket, behind them, and the stream is only joined:
     * a STOP from a socket of its own (actor_stop) can be read first (the
     * mailbox takes its inbound sockets in turn), and what is left is then
     * released unsent. */
    bool sent = actor_send_stop(c->stream_push[i]) == 0;
    zmq_close(c->stream_push[i]);
    repl_stop(&c->streams[i], sent);
    c->n_streams--;
    c->streams[i] = c->streams[c->n_streams];
    c->stream_push[i] = c->stream_push[c->n_streams];
    c->stream_held[i] = c->stream_held[c->n_streams];
    c->stream_has_held[i] = c->stream_has_held[c->n_streams];
    c->stream_held_us[i] = c->stream_held_us[c->n_streams];
    c->stream_has_held[c->n_streams] = false;
}

/* CMD_STREAMS: one stream per member but us while leader. */
static void s_sync_streams(core *c, uint64_t term)
{
    const zraft_membership *m = engine_membership(c->e);
    if (term != c->streams_term) {
        while (c->n_streams > 0) {
            s_stop_stream(c, 0);
        }
        c->streams_term = term;
    }
    if (term == 0) {
        return;
    }
    /* Effective and committed members (removed ones until C_new commits,
     * as the engine does). */
    const zraft_membership *cm = engine_committed_membership(c->e);
    for (uint32_t i = 0; i < c->n_streams;) {
        zraft_id t = repl_target(c->streams[i]);
        if (zraft_membership_find(m, t) == NULL &&
            zraft_membership_find(cm, t) == NULL) {
            s_stop_stream(c, i);
        } else {
            i++;
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        const zraft_membership *x = pass == 0 ? m : cm;
        for (uint32_t i = 0; i < x->n; i++) {
            zraft_id id = x->members[i].id;
            if (id == c->n->cfg.id || s_stream_index(c, id) >= 0 ||
                c->n_streams == ZRAFT_MAX_MEMBERS) {
                continue;
            }
            repl *r = repl_start(c->n, id, x->members[i].addr);
            if (r == NULL) {
                continue;
            }
            c->streams[c->n_streams] = r;
            c->stream_push[c->n_streams] =
                actor_connect(c->n->zctx, repl_endpoint(r));
            c->n_streams++;
        }
    }
}

/* Queues a message for the stream of peer `id` (sent by s_flush_turn). */
static void s_to_stream(core *c, zraft_id id, amsg *m)
{
    c->out_stream = s_grow(c->out_stream, &c->cap_out_stream,
                           c->n_out_stream + 1, sizeof(outbound));
    c->out_stream[c->n_out_stream].to = id;
    c->out_stream[c->n_out_stream].m = *m;
    c->n_out_stream++;
}

/* ----------------------------------------------------- command runner */

static bool s_is_io(uint8_t t)
{
    return t == CMD_SAVE_VOTE || t == CMD_APPEND || t == CMD_TRUNCATE ||
           t == CMD_PURGE || t == CMD_INSTALL_SNAPSHOT;
}

static zraft_id s_lane(const command *k)
{
    switch (k->type) {
    case CMD_SEND:
        return k->u.send.to;
    case CMD_REPLICATE:
        return k->u.replicate.to;
    case CMD_SEND_SNAPSHOT:
        return k->u.send_snapshot.to;
    default:
        return LANE_SM;
    }
}

/* Stamps `stage` for the sampled indexes in (*last, hi] (tracing only). */
static void s_trace(core *c, uint64_t *last, uint64_t hi, int stage)
{
    if (trace_sampled(0) && hi > *last) {
        trace_stamp_range(c->n->cfg.id, *last + 1, hi, stage);
        *last = hi;
    }
}

/* CMD_APPLY: sent once the mailbox (or the inbound RPCs) of this loop
 * turn are drained (s_flush_apply), or before anything else the state
 * machine is sent: one APPLY, one wake-up of the state machine thread,
 * however many acknowledgements committed entries in that drain. */
static void s_apply(core *c, uint64_t upto)
{
    if (upto > c->apply_upto) {
        c->apply_upto = upto;
    }
    if (!c->apply_due) {
        c->apply_due_us = actor_now_us();
    }
    c->apply_due = true;
}

/* A follower's APPLY waits up to this long for the next commit, so that
 * one wake-up of its state machine thread serves both: no client waits
 * for a follower to apply (unless it holds writes this node accepted as
 * leader: then it is not held), and whatever else goes to the state
 * machine (a read, forwarded or not; a snapshot) sends the held APPLY
 * first (s_to_sm, fwd's before_sm), so a read is not held back. Under load the
 * next commit comes within the hold; idle, a follower applies 1 ms later (the
 * core polls every millisecond while one is held). See STREAM_HOLD_US. */
#define FOLLOWER_APPLY_HOLD_US 1000

static void s_flush_apply_follower(core *c)
{
    /* Writes accepted while this node led are answered by this APPLY:
     * their clients wait for it. */
    if (c->apply_due && c->n_pw == 0 &&
        actor_now_us() - c->apply_due_us < FOLLOWER_APPLY_HOLD_US) {
        return;
    }
    s_flush_apply(c);
}

/* fwd's hook: its reads and answers go after the held APPLY too. */
static void s_flush_apply_cb(void *ctx)
{
    s_flush_apply(ctx);
}

/* Sends the pending APPLY with the callbacks of the writes it covers. */
static void s_flush_apply(core *c)
{
    if (!c->apply_due) {
        return;
    }
    c->apply_due = false;
    uint64_t upto = c->apply_upto;
    size_t k = 0;
    while (k < c->n_pw && c->pw[k].id.index <= upto) {
        k++;
    }
    amsg m;
    memset(&m, 0, sizeof m);
    m.type = AM_SM_APPLY;
    m.u.sm_apply.upto = upto;
    if (k > 0) {
        m.u.sm_apply.writes =
            batchpool_get(&c->n->arrays, k * sizeof(pending_write));
        memcpy(m.u.sm_apply.writes, c->pw, k * sizeof(pending_write));
        m.u.sm_apply.n = k;
        memmove(c->pw, c->pw + k, (c->n_pw - k) * sizeof(pending_write));
        c->n_pw -= k;
    }
    /* Stamped as it leaves: MATCHED -> COMMITTED is the rest of the drain,
     * COMMITTED -> APPLIED the hand-off alone. */
    s_trace(c, &c->tr_committed, upto, TRACE_COMMITTED);
    if (actor_send(c->push_sm, &m) != 0) {
        amsg_release(&m); /* the state machine stopped: answered there */
    }
}

/* The end of a drain: sends what this turn produced, what someone waits
 * for first, since each send wakes a thread and on a small machine the
 * first woken runs first. On a leader, the APPLY (its clients wait for
 * the state machine), then the streams (followers wait for entries; a
 * commit-only update after a commit would otherwise wake two streams
 * ahead of the state machine), then its own log writer (its write runs
 * beside the followers' longer path, thesis section 10.2.1). On a
 * follower, the log writer first: the leader waits for this write. */
static void s_flush_turn(core *c)
{
    if (c->leader) {
        s_flush_apply(c);
        s_flush_streams(c);
        s_flush_log(c);
    } else {
        s_flush_log(c);
        s_flush_apply_follower(c);
        s_flush_streams(c);
    }
}

static void s_read_done(core *c, uint64_t req, uint64_t index, int err)
{
    for (size_t i = 0; i < c->n_reads; i++) {
        if (c->reads[i].req == req && c->reads[i].cb == fwd_read_marker) {
            /* A follower's: answered with the index, not applied here. */
            fwd_read_done(c->fwd, c->reads[i].arg, index, err);
            c->reads[i] = c->reads[--c->n_reads];
            return;
        }
        if (c->reads[i].req == req) {
            amsg m;
            memset(&m, 0, sizeof m);
            m.type = AM_SM_READ;
            m.u.sm_read.index = index;
            m.u.sm_read.err = err;
            m.u.sm_read.cb = c->reads[i].cb;
            m.u.sm_read.arg = c->reads[i].arg;
            s_to_sm(c, &m);
            c->reads[i] = c->reads[--c->n_reads];
            return;
        }
    }
}

/* A vote request or TimeoutNow that its connection refused because it is
 * not up (ZMQ_IMMEDIATE: a new connection's TCP and ZMTP handshakes, about
 * 0.3 ms on 127.0.0.1; a peer that is down, or whose DEALER waits out
 * ZeroMQ's reconnect backoff, up to 1 s) waits for the connection, and goes
 * only while the engine still stands by it (engine_command_current: still
 * a candidate of that term; a TimeoutNow only while that transfer runs,
 * at most an election timeout), and never after election_timeout_max.
 * Refused, the first request on every new TCP vote connection was lost,
 * and a node's first campaign (it never campaigned, or it restarted) or a
 * transfer's TimeoutNow waited out an election timeout. Queued without
 * that bound instead (no ZMQ_IMMEDIATE), a TimeoutNow to a node that was
 * down reached it whenever it came back and deposed a working leader
 * (review finding). The core polls the DEALER for POLLOUT meanwhile; its
 * usual 5 ms turn notices the rest. */
static void s_keep_vote(core *c, const msg *x)
{
    uint32_t i = 0;
    while (i < c->n_vote_kept && c->vote_kept[i].m.to != x->to) {
        i++; /* one per peer: the newest replaces it */
    }
    if (i == ZRAFT_MAX_MEMBERS) {
        return;
    }
    c->vote_kept[i].m = *x;
    c->vote_kept[i].until = actor_now_ms() + c->n->cfg.election_timeout_max_ms;
    if (i == c->n_vote_kept) {
        c->n_vote_kept++;
    }
}

/* Sends the kept vote frames whose connection is up now; drops those the
 * engine no longer stands by or that waited long enough. */
static void s_send_kept_votes(core *c, uint64_t now)
{
    uint32_t keep = 0;
    for (uint32_t i = 0; i < c->n_vote_kept; i++) {
        const msg *x = &c->vote_kept[i].m;
        command k;
        memset(&k, 0, sizeof k);
        k.type = CMD_SEND;
        k.u.send = *x;
        rpc_conn *v = NULL;
        for (uint32_t j = 0; j < c->n_votes; j++) {
            if (c->votes[j].id == x->to) {
                v = c->votes[j].c;
            }
        }
        if (v == NULL || !engine_command_current(c->e, &k) ||
            rpc_conn_send(v, x) != ZRAFT_EAGAIN ||
            now >= c->vote_kept[i].until) {
            continue; /* sent, or no longer wanted */
        }
        c->vote_kept[keep++] = c->vote_kept[i];
    }
    c->n_vote_kept = keep;
}

/* Runs one released (non-I/O) command. */
static void s_run(core *c, const command *k)
{
    amsg m;
    memset(&m, 0, sizeof m);
    switch (k->type) {
    case CMD_SEND: {
        const msg *x = &k->u.send;
        switch (x->type) {
        case MSG_HEARTBEAT:
            m.type = AM_REPL_SEND;
            m.u.repl_send.m = *x;
            s_to_stream(c, x->to, &m);
            break;
        case MSG_VOTE:
        case MSG_TIMEOUT_NOW: {
            rpc_conn *v = s_vote_conn(c, x->to);
            if (v != NULL && rpc_conn_send(v, x) == ZRAFT_EAGAIN) {
                s_keep_vote(c, x);
            }
            if (v != NULL && x->type == MSG_VOTE) {
                /* (a TimeoutNow gets no answer on this connection) */
                c->votes_poll_until =
                    actor_now_ms() + 2ull * c->n->cfg.election_timeout_max_ms;
            }
            break;
        }
        case MSG_VOTE_RESP:
            rpc_server_send(c->srv, x, RPC_KIND_VOTE);
            break;
        default:
            rpc_server_send(c->srv, x, RPC_KIND_REPL);
            if (x->type == MSG_APPEND_RESP && x->u.append_resp.success) {
                s_trace(c, &c->tr_replied, x->u.append_resp.index,
                        TRACE_FREPLIED);
            }
            break;
        }
        break;
    }
    case CMD_REPLICATE:
        m.type = AM_REPL_UPDATE;
        m.u.repl_update.term = k->u.replicate.term;
        m.u.repl_update.prev = k->u.replicate.prev;
        m.u.repl_update.last = k->u.replicate.last;
        m.u.repl_update.commit = k->u.replicate.commit;
        s_to_stream(c, k->u.replicate.to, &m);
        break;
    case CMD_SEND_SNAPSHOT:
        m.type = AM_REPL_SNAPSHOT;
        m.u.repl_snapshot.term = k->u.send_snapshot.term;
        s_to_stream(c, k->u.send_snapshot.to, &m);
        break;
    case CMD_APPLY:
        s_apply(c, k->u.apply.upto);
        break;
    case CMD_BUILD_SNAPSHOT:
        m.type = AM_SM_BUILD;
        s_to_sm(c, &m);
        break;
    case CMD_INSTALL_SNAPSHOT:
        /* The state machine's half (held until the install is durable). */
        m.type = AM_SM_INSTALL; /* takes the held copy and reference */
        m.u.sm_install.meta = k->u.install_snapshot.meta;
        m.u.sm_install.data = k->u.install_snapshot.data;
        s_to_sm(c, &m);
        break;
    case CMD_READ_READY:
        s_read_done(c, k->u.read.req_id, k->u.read.index, 0);
        break;
    case CMD_READ_FAIL:
        s_read_done(c, k->u.read.req_id, 0, k->u.read.err);
        break;
    default:
        break;
    }
}

/* Releases held commands whose I/O is durable, lane by lane in order.
 * One whose role is over (a leader's REPLICATE after it stepped down, see
 * engine.h) is dropped, and blocks nothing. */
static void s_release(core *c)
{
    zraft_id blocked[ZRAFT_MAX_MEMBERS + 1];
    uint32_t nb = 0;
    size_t keep = 0;
    for (size_t i = 0; i < c->n_held; i++) {
        held *h = &c->held[i];
        if (!engine_command_current(c->e, &h->cmd)) {
            continue; /* owns nothing: install halves are always current */
        }
        bool lane_blocked = false;
        for (uint32_t j = 0; j < nb; j++) {
            lane_blocked |= blocked[j] == h->lane;
        }
        if (!lane_blocked && h->cmd.wait_io <= c->flushed) {
            s_run(c, &h->cmd);
            continue;
        }
        if (!lane_blocked && nb <= ZRAFT_MAX_MEMBERS) {
            blocked[nb++] = h->lane;
        }
        c->held[keep++] = *h;
    }
    c->n_held = keep;
}

static void s_hold(core *c, const command *k)
{
    c->held = s_grow(c->held, &c->cap_held, c->n_held + 1, sizeof(held));
    c->held[c->n_held].lane = s_lane(k);
    c->held[c->n_held].cmd = *k;
    c->n_held++;
}

static bool s_lane_busy(core *c, zraft_id lane)
{
    for (size_t i = 0; i < c->n_held; i++) {
        if (c->held[i].lane == lane) {
            return true;
        }
    }
    return false;
}

/* Performs a storage command on this thread when the storage has nothing
 * to wait for (zraft_storage.inline_writes) and the log writer has nothing
 * queued (so io_seq order holds): no hand-off to the log writer and back.
 * The command is durable on return (c->flushed); the engine hears of it
 * at the end of s_commands. Returns false when the log writer must do it. */
static bool s_io_inline(core *c, const command *k)
{
    zraft_storage *st = c->n->st;
    if (!st->inline_writes || c->io_sent > c->flushed) {
        return false;
    }
    int rv = 0;
    switch (k->type) {
    case CMD_SAVE_VOTE: {
        engine_status es;
        engine_get_status(c->e, &es);
        rv = st->save_state(st->ctx, k->u.save_vote.term,
                            k->u.save_vote.voted_for, es.committed);
        break;
    }
    case CMD_APPEND: {
        uint32_t n = k->u.append.n;
        logcache_append(&c->n->cache, k->u.append.entries, n);
        rv = st->append(st->ctx, k->u.append.entries, n);
        rv = rv != 0 ? rv : st->sync(st->ctx);
        if (rv == 0 && n > 0 && trace_sampled(0)) {
            uint64_t lo = k->u.append.entries[0].id.index;
            uint64_t hi = k->u.append.entries[n - 1].id.index;
            trace_stamp_range(c->n->cfg.id, lo, hi, TRACE_LDURABLE);
            trace_stamp_range(c->n->cfg.id, lo, hi, TRACE_FDURABLE);
        }
        break;
    }
    case CMD_TRUNCATE:
        return false; /* fails waiting writes: s_io does it */
    case CMD_PURGE:
        rv = st->purge(st->ctx, k->u.purge.upto.index);
        break;
    default:
        return false;
    }
    if (rv != 0) {
        /* As the log writer: nothing from here on is durable. */
        c->inline_err = rv;
    } else {
        c->flushed = k->io_seq;
        c->io_sent = k->io_seq;
    }
    return true;
}

static void s_io(core *c, const command *k)
{
    if (c->inline_err != 0 || c->fatal != 0) {
        return; /* a write failed: none after it may be done */
    }
    if (k->type != CMD_TRUNCATE && s_io_inline(c, k)) {
        return;
    }
    amsg m;
    memset(&m, 0, sizeof m);
    m.type = AM_LOG_IO;
    m.u.log_io.cmd = *k;
    engine_status st;
    switch (k->type) {
    case CMD_SAVE_VOTE:
        engine_get_status(c->e, &st);
        m.u.log_io.committed = st.committed;
        break;
    case CMD_APPEND: {
        uint32_t n = k->u.append.n;
        m.u.log_io.ents =
            batchpool_get(&c->n->arrays, (n ? n : 1) * sizeof(zraft_entry));
        for (uint32_t i = 0; i < n; i++) {
            m.u.log_io.ents[i] = k->u.append.entries[i];
            zraft_buf_ref(m.u.log_io.ents[i].payload);
        }
        /* Streams may send these before the log writer writes them. */
        logcache_append(&c->n->cache, m.u.log_io.ents, n);
        m.u.log_io.cmd.u.append.entries = NULL;
        break;
    }
    case CMD_TRUNCATE: {
        /* Client writes at or after `since` are gone with their entries. */
        uint64_t since = k->u.truncate.since;
        s_flush_apply(c); /* before c->pw is cut */
        logcache_truncate(&c->n->cache, since);
        size_t cut = c->n_pw;
        while (cut > 0 && c->pw[cut - 1].id.index >= since) {
            cut--;
        }
        if (cut < c->n_pw) { /* (c->pw may be NULL when none wait) */
            s_fail_writes(c, c->pw + cut, c->n_pw - cut,
                          ZRAFT_ELEADERSHIP_LOST);
        }
        c->n_pw = cut;
        break;
    }
    case CMD_INSTALL_SNAPSHOT: {
        /* Client writes of this node's time as leader whose entries the
         * snapshot replaces are answered now, as for a truncation (their
         * outcome is not known here). The state machine would fail them
         * at its next APPLY, but none may come for long: an install that
         * reaches the commit index leaves nothing to apply after it, and
         * a follower whose forwarded writes wait here times out. */
        uint64_t upto = k->u.install_snapshot.meta->last_log_id.index;
        s_flush_apply(c); /* before c->pw is cut */
        size_t cut = 0;
        while (cut < c->n_pw && c->pw[cut].id.index <= upto) {
            cut++;
        }
        if (cut > 0) {
            s_fail_writes(c, c->pw, cut, ZRAFT_ELEADERSHIP_LOST);
            memmove(c->pw, c->pw + cut, (c->n_pw - cut) * sizeof(*c->pw));
            c->n_pw -= cut;
        }
        logcache_reset(&c->n->cache);
        m.u.log_io.meta = malloc(sizeof(snapshot_meta));
        if (m.u.log_io.meta == NULL) {
            abort();
        }
        *m.u.log_io.meta = *k->u.install_snapshot.meta;
        m.u.log_io.data = zraft_buf_ref(k->u.install_snapshot.data);
        m.u.log_io.cmd.u.install_snapshot.meta = NULL;
        m.u.log_io.cmd.u.install_snapshot.data = NULL;
        break;
    }
    default:
        break;
    }
    /* Queued: the streams hear of new entries before the log writer is
     * woken (s_flush_turn). io_sent counts it now, so no later command is
     * written inline ahead of it. */
    c->out_log =
        s_grow(c->out_log, &c->cap_out_log, c->n_out_log + 1, sizeof(amsg));
    c->out_log[c->n_out_log++] = m;
    c->io_sent = k->io_seq;
}

static void s_admin_check(core *c);
static void s_publish(core *c);
static void s_fatal(core *c, int err, const char *what);
static void s_run_commands(core *c);

/* Tells the engine (and the log cache) that storage ops up to c->flushed
 * are durable, runs what that produced and releases held commands. */
static void s_flushed(core *c)
{
    c->e_flushed = c->flushed;
    engine_io_flushed(c->e, c->flushed);
    engine_status fs;
    engine_get_status(c->e, &fs);
    logcache_durable(&c->n->cache, fs.flushed_log_id.index);
    s_run_commands(c);
    s_release(c);
}

/* Executes everything the last event produced. */
static void s_commands(core *c)
{
    s_run_commands(c);
    s_admin_check(c);
    s_publish(c);
}

static void s_run_commands(core *c)
{
    size_t n;
    const command *cmds = engine_commands(c->e, &n);
    for (size_t i = 0; i < n; i++) {
        const command *k = &cmds[i];
        if (s_is_io(k->type)) {
            s_io(c, k);
            if (k->type != CMD_INSTALL_SNAPSHOT) {
                continue;
            }
            /* ... and its state machine half, after the install. */
            command sm = *k;
            sm.wait_io = k->io_seq;
            sm.u.install_snapshot.meta = malloc(sizeof(snapshot_meta));
            if (sm.u.install_snapshot.meta == NULL) {
                abort();
            }
            *sm.u.install_snapshot.meta = *k->u.install_snapshot.meta;
            sm.u.install_snapshot.data =
                zraft_buf_ref(k->u.install_snapshot.data);
            s_hold(c, &sm);
            continue;
        }
        if (k->type == CMD_STREAMS) {
            s_sync_streams(c, k->u.streams.term);
            continue;
        }
        if (k->type == CMD_ROLE) {
            continue; /* published below */
        }
        /* A heartbeat reply claims nothing about the log, so it does not
         * queue behind replies held for a durable write: a follower whose
         * log writer installs a large snapshot keeps answering, and its
         * leader keeps counting it (check-quorum, read-index). Nor does a
         * read-index answer wait behind an APPLY held for the leader's own
         * fsync: the state machine thread answers a read only once it has
         * applied up to the read's index anyway, and a follower's
         * forwarded read needs only the index. */
        bool hb =
            (k->type == CMD_SEND && k->u.send.type == MSG_HEARTBEAT_RESP) ||
            k->type == CMD_READ_READY || k->type == CMD_READ_FAIL;
        if (k->wait_io > c->flushed || (!hb && s_lane_busy(c, s_lane(k)))) {
            s_hold(c, k);
        } else {
            s_run(c, k);
        }
    }
    engine_commands_clear(c->e);
    if (c->inline_err != 0) {
        int err = c->inline_err;
        c->inline_err = 0;
        s_fatal(c, err, "storage");
    } else if (c->flushed > c->e_flushed) {
        s_flushed(c); /* written inline: durable now */
    }
}

/* ---------------------------------------------------------- metrics */

typedef struct {
    core *c;
    engine_status st;
    bool mem;
} pub;

static void s_pub_fn(zraft_metrics *m, void *arg)
{
    pub *p = arg;
    core *c = p->c;
    m->role_code = p->st.role;
    m->role = engine_role_name(p->st.role);
    m->term = p->st.term;
    m->leader = p->st.leader;
    m->commit_index = p->st.committed;
    m->last_log_id = p->st.last_log_id;
    m->snapshot_index = p->st.snapshot.index;
    m->writes = c->writes;
    m->repl_refused = c->repl_refused;
    m->fatal = c->fatal;
    m->peers_refused = c->n->rpc.auth ? curve_auth_refused(c->n->rpc.auth) : 0;
    if (c->fwd != NULL) {
        fwd_metrics(c->fwd, m);
    }
    if (c->fatal != 0) {
        m->role_code = -1;
        m->role = "failed";
        m->leader = 0;
    }
    if (p->mem) {
        m->membership = *engine_membership(c->e);
    }
    m->n_peers = 0;
    if (p->st.role == ROLE_LEADER && c->fatal == 0) {
        const zraft_membership *mb = engine_membership(c->e);
        for (uint32_t i = 0; i < mb->n; i++) {
            m->peers[m->n_peers].id = mb->members[i].id;
            m->peers[m->n_peers].matched =
                engine_matched(c->e, mb->members[i].id);
            m->n_peers++;
        }
    }
}

/* CURVE: admit the members of the effective and committed configurations
 * from the moment either changes (a new entry, or its commit: a removed
 * member is refused once C_new commits). */
static void s_auth_sync(core *c, const engine_status *st)
{
    if (c->n->rpc.auth == NULL) {
        return;
    }
    bool committed = st->committed >= st->membership_index;
    if (c->auth_synced && st->membership_index == c->auth_index &&
        committed == c->auth_committed) {
        return;
    }
    c->auth_synced = true;
    c->auth_index = st->membership_index;
    c->auth_committed = committed;
    curve_auth_update(c->n->rpc.auth, engine_membership(c->e),
                      engine_committed_membership(c->e));
}

static void s_publish(core *c)
{
    pub p;
    p.c = c;
    engine_get_status(c->e, &p.st);
    c->leader = p.st.role == ROLE_LEADER;
    p.mem = p.st.membership_index != c->mem_index || c->mem_index == 0;
    c->mem_index = p.st.membership_index;
    s_auth_sync(c, &p.st);
    node_metrics_update(c->n, s_pub_fn, &p);
}

/* ------------------------------------------------------------ admin */

static void s_admin_add(core *c, int type, waiter *w, uint64_t index)
{
    if (c->n_admins == 64) {
        waiter_done(w, ZRAFT_EBUSY);
        return;
    }
    c->admins[c->n_admins++] = (admin_wait){type, w, index};
}

/* Completes admin requests once their change is committed. */
static void s_admin_check(core *c)
{
    engine_status st;
    engine_get_status(c->e, &st);
    const zraft_membership *m = engine_membership(c->e);
    for (uint32_t i = 0; i < c->n_admins;) {
        admin_wait *a = &c->admins[i];
        /* Success first: a leader that removes itself steps down in the
         * very step that commits C_new. */
        bool done;
        int rv = 0;
        if (a->type == API_CHANGE) {
            done = !m->joint && st.membership_index > a->index &&
                   st.committed >= st.membership_index;
        } else {
            done = st.committed >= a->index;
        }
        if (!done && st.role != ROLE_LEADER) {
            done = true;
            rv = ZRAFT_ENOTLEADER;
        }
        if (done) {
            waiter_done(a->w, rv);
            c->admins[i] = c->admins[--c->n_admins];
        } else {
            i++;
        }
    }
}

/* ------------------------------------------------------------ events */

/* Proposes a batch of client writes (n <= CORE_MAX_BATCH). Per batch, not
 * per write: the entries are built in a scratch array, the waiting table
 * grows geometrically, and the requests go back to the node's pool. */
static void s_propose(core *c, api_req **writes, size_t n)
{
    zraft_entry *ents = c->scratch;
    for (size_t i = 0; i < n; i++) {
        ents[i] = (zraft_entry){{0, 0}, ZRAFT_ENTRY_NORMAL, writes[i]->payload};
    }
    int rv = c->fatal ? c->fatal : engine_propose(c->e, ents, (uint32_t)n);
    c->pw = s_grow(c->pw, &c->cap_pw, c->n_pw + n, sizeof(pending_write));
    pending_write *pw = c->pw + c->n_pw;
    for (size_t i = 0; i < n; i++) {
        pw[i].id = ents[i].id;
        pw[i].cb = writes[i]->wcb;
        pw[i].arg = writes[i]->arg;
    }
    if (rv == 0) {
        c->n_pw += n;
        c->writes += n;
        /* Forwarded and re-queued requests carry no call time (t_ns 0). */
        for (size_t i = 0; i < n && trace_sampled(0); i++) {
            if (writes[i]->t_ns != 0 && trace_sampled(ents[i].id.index)) {
                trace_begin(ents[i].id.index, c->n->cfg.id, writes[i]->t_ns);
                trace_stamp(c->n->cfg.id, ents[i].id.index, TRACE_CORE);
            }
        }
        /* APPEND borrows `ents` (the scratch array and the requests'
         * references): run it, it takes references of its own. */
        s_commands(c);
    } else {
        s_fail_writes(c, pw, n, rv); /* copies them */
    }
    for (size_t i = 0; i < n; i++) {
        zraft_buf_unref(writes[i]->payload);
    }
    node_recycle_writes(c->n, writes, n);
}

static void s_api(core *c, api_req *r)
{
    int rv;
    uint64_t index = 0;
    switch (r->type) {
    case API_READ:
        c->reads =
            s_grow(c->reads, &c->cap_reads, c->n_reads + 1, sizeof(read_wait));
        c->reads[c->n_reads++] = (read_wait){++c->next_read, r->rcb, r->arg};
        engine_read_index(c->e, c->next_read);
        s_commands(c);
        free(r);
        return;
    case API_INIT: {
        zraft_membership m;
        memset(&m, 0, sizeof m);
        m.n = r->n;
        memcpy(m.members, r->members, r->n * sizeof(zraft_member));
        rv = engine_initialize(c->e, &m);
        s_commands(c);
        waiter_done(r->w, rv);
        free(r);
        return;
    }
    case API_ADD_LEARNER:
        rv = engine_add_learner_key(c->e, r->id, r->addr,
                                    r->has_key ? r->key : NULL, &index);
        break;
    case API_REMOVE_LEARNER:
        rv = engine_remove_learner(c->e, r->id, &index);
        break;
    case API_CHANGE:
        rv = engine_change_voters(c->e, r->ids, r->n, &index);
        break;
    case API_TRANSFER:
        rv = engine_transfer_leader(c->e, r->id);
        s_commands(c);
        waiter_done(r->w, rv);
        free(r);
        return;
    case API_SNAPSHOT:
        rv = engine_trigger_snapshot(c->e);
        s_commands(c);
        waiter_done(r->w, rv);
        free(r);
        return;
    default:
        free(r);
        return;
    }
    if (rv != 0) {
        s_commands(c);
        waiter_done(r->w, rv);
    } else {
        s_admin_add(c, r->type, r->w, index);
        s_commands(c);
    }
    free(r);
}

/* Answers a request without the engine (after a fatal error, or at
 * shutdown): writes and reads through the state machine, in order. */
static void s_refuse(core *c, api_req *r, int err)
{
    if (r->type == API_WRITE) {
        pending_write pw = {{0, 0}, r->wcb, r->arg};
        s_fail_writes(c, &pw, 1, err);
        zraft_buf_unref(r->payload);
    } else if (r->type == API_READ) {
        amsg m;
        memset(&m, 0, sizeof m);
        m.type = AM_SM_READ;
        m.u.sm_read.err = err;
        m.u.sm_read.cb = r->rcb;
        m.u.sm_read.arg = r->arg;
        s_to_sm(c, &m);
    } else if (r->w != NULL) {
        waiter_done(r->w, err);
    }
    free(r);
}

static void s_drain_api(core *c)
{
    uint64_t v;
    ssize_t rd = read(c->n->efd, &v, sizeof v);
    (void)rd;
    pthread_mutex_lock(&c->n->qlock);
    api_req *r = c->n->qhead;
    c->n->qhead = c->n->qtail = NULL;
    pthread_mutex_unlock(&c->n->qlock);
    if (c->fatal != 0) {
        while (r != NULL) {
            api_req *next = r->next;
            s_refuse(c, r, c->fatal);
            r = next;
        }
        return;
    }
    api_req *batch[CORE_MAX_BATCH];
    size_t nb = 0;
    size_t max = c->n->cfg.max_batch < CORE_MAX_BATCH ? c->n->cfg.max_batch
                                                      : CORE_MAX_BATCH;
    while (r != NULL) {
        api_req *next = r->next;
        if (c->fatal != 0) {
            /* Stopped during this drain (an inline storage write failed in
             * s_propose or s_api): nothing more reaches the engine. Writes
             * before it were proposed, so the batch is empty here. */
            s_refuse(c, r, c->fatal);
            r = next;
            continue;
        }
        if (r->fwd && fwd_take(c->fwd, c->e, r)) {
            r = next; /* a follower's: on its way to the leader */
            continue;
        }
        if (r->type == API_WRITE) {
            batch[nb++] = r;
            if (nb == max) {
                s_propose(c, batch, nb);
                nb = 0;
            }
        } else {
            if (nb > 0) {
                s_propose(c, batch, nb);
                nb = 0;
            }
            s_api(c, r);
        }
        r = next;
    }
    if (nb > 0) {
        s_propose(c, batch, nb);
    }
}

static void s_drop_held(core *c)
{
    for (size_t i = 0; i < c->n_held; i++) {
        if (c->held[i].cmd.type == CMD_INSTALL_SNAPSHOT) {
            zraft_buf_unref(c->held[i].cmd.u.install_snapshot.data);
            free(c->held[i].cmd.u.install_snapshot.meta);
        }
    }
    c->n_held = 0;
}

static void s_fail_reads(core *c, int err)
{
    while (c->n_reads > 0) {
        s_read_done(c, c->reads[0].req, 0, err);
    }
}

/* A fatal error (storage write or sync failed, the state machine could not
 * apply or restore): the node stops taking part in the cluster at once, so
 * that the others elect a leader with a working disk. A failed fsync cannot
 * be retried safely (the kernel may have dropped the dirty pages), and a
 * vote or an acknowledgement that is not durable must never leave.
 *
 * From here the engine gets no more events: no ticks (so no heartbeats and
 * no elections), no RPCs (so no votes granted, nothing acknowledged), and
 * the commands it holds are dropped unsent - among them replies that wait
 * for the write that failed. Replication streams stop. Waiting writes,
 * reads and admin calls fail with the error (a write's outcome is unknown:
 * a new leader may still commit it), and so does every later call. The
 * metrics say "failed" with the error; a restart recovers from what is
 * durable. */
static void s_fatal(core *c, int err, const char *what)
{
    if (c->fatal != 0) {
        return;
    }
    c->fatal = err;
    fprintf(stderr,
            "zraft node %llu: FATAL: %s failed (%s): the node leaves the "
            "cluster's work (no leadership, no votes, no writes) until it is "
            "restarted\n",
            (unsigned long long)c->n->cfg.id, what, zraft_strerror(err));
    while (c->n_streams > 0) {
        s_stop_stream(c, 0);
    }
    s_flush_streams(c); /* drops the rest: no stream is left */
    s_flush_log(c);     /* as if sent at once: the log writer decides */
    s_drop_held(c);
    s_flush_apply(c); /* what was released is applied, then the rest fails */
    s_fail_writes(c, c->pw, c->n_pw, err);
    c->n_pw = 0;
    s_fail_reads(c, err);
    for (uint32_t i = 0; i < c->n_admins; i++) {
        waiter_done(c->admins[i].w, err);
    }
    c->n_admins = 0;
    engine_commands_clear(c->e);
    s_publish(c);
}

static void s_mailbox(core *c, const amsg *m)
{
    if (c->fatal != 0) {
        if (m->type == AM_SM_BUILT) {
            free(m->u.sm_built.meta);
        }
        return; /* the engine takes no more events */
    }
    switch (m->type) {
    case AM_LOG_FLUSHED:
        if (m->u.flushed.err != 0) {
            /* Nothing unpersisted was acknowledged; nothing will be. */
            s_fatal(c, m->u.flushed.err, "storage");
            break;
        }
        if (m->u.flushed.seq > c->flushed) {
            c->flushed = m->u.flushed.seq;
        }
        /* First what waited for this write (a follower's acknowledgement:
         * its leader waits), then the engine's news of it. Held commands
         * are older than anything the engine produces now, and whether
         * one is still current does not depend on the flush. */
        s_release(c);
        s_flushed(c);
        s_admin_check(c);
        s_publish(c);
        break;
    case AM_REPL_MATCHED: {
        /* The seed's does_vote_match: a report from a replication session
         * of another term is stale. */
        engine_status st;
        engine_get_status(c->e, &st);
        if (m->u.matched.vote_term != st.term || st.role != ROLE_LEADER) {
            break;
        }
        const msg *r = &m->u.matched.resp;
        if (r->type == MSG_APPEND_RESP && r->u.append_resp.success) {
            s_trace(c, &c->tr_matched, r->u.append_resp.index, TRACE_MATCHED);
        }
        engine_recv(c->e, r);
        s_commands(c);
        break;
    }
    case AM_REPL_UNREACHABLE: {
        engine_status st;
        engine_get_status(c->e, &st);
        if (m->u.unreachable.err == ZRAFT_EAGAIN) {
            c->repl_refused++;
        }
        if (m->u.unreachable.vote_term == st.term) {
            engine_report_unreachable(c->e, m->u.unreachable.target,
                                      m->u.unreachable.err);
            s_commands(c);
        }
        break;
    }
    case AM_SM_APPLIED:
        if (m->u.sm_applied.err != 0) {
            s_fatal(c, m->u.sm_applied.err, "the state machine");
            break;
        }
        engine_applied(c->e, m->u.sm_applied.index);
        s_commands(c);
        break;
    case AM_SM_BUILT:
        engine_snapshot_built(c->e, m->u.sm_built.meta, m->u.sm_built.err);
        free(m->u.sm_built.meta);
        s_commands(c);
        break;
    default:
        break;
    }
}

/* The state machine's progress (sm.c publishes it after each batch,
 * without a message): the engine schedules snapshots from it. */
static void s_sm_applied(core *c)
{
    uint64_t a = atomic_load_explicit(&c->n->sm_applied, memory_order_acquire);
    if (c->fatal == 0 && a > c->sm_applied) {
        c->sm_applied = a;
        engine_applied(c->e, a);
        s_commands(c);
    }
}

static void s_drain_rpc(core *c, uint64_t now)
{
    msg x;
    while (rpc_server_recv(c->srv, &x, now) == 1) {
        if (x.type == MSG_APPEND && x.u.append.n_entries > 0 &&
            trace_sampled(0)) {
            trace_stamp_range(
                c->n->cfg.id, x.u.append.entries[0].id.index,
                x.u.append.entries[x.u.append.n_entries - 1].id.index,
                TRACE_FRECV);
        }
        if (x.type == CODEC_MSG_FORWARD || x.type == CODEC_MSG_FORWARD_REPLY) {
            uint32_t nf;
            const codec_fwd *items = rpc_server_fwd(c->srv, &nf);
            if (!c->fatal) {
                fwd_on_frame(c->fwd, &x, items, nf);
            }
        } else if (!c->fatal) {
            engine_recv(c->e, &x);
            s_commands(c);
            if (!c->leader && c->n_out_log > 0) {
                /* A follower's log write starts with the AppendEntries
                 * that asked for it, not after the rest of the drain. */
                s_flush_log(c);
            }
        }
        codec_msg_release(&x);
    }
    for (uint32_t i = 0; i < c->n_votes; i++) {
        while (rpc_conn_recv(c->votes[i].c, &x, now) == 1) {
            if (!c->fatal) {
                engine_recv(c->e, &x);
                s_commands(c);
            }
            codec_msg_release(&x);
        }
    }
}

static void s_shutdown(core *c)
{
    s_flush_turn(c); /* the log writer finishes its queue */
    while (c->n_streams > 0) {
        s_stop_stream(c, 0);
    }
    /* Writes still waiting: the state machine answers them in order (the
     * committed ones first, applied). */
    s_flush_apply(c);
    s_fail_writes(c, c->pw, c->n_pw, ZRAFT_ESHUTDOWN);
    c->n_pw = 0;
    for (size_t i = 0; i < c->n_reads; i++) {
        amsg m;
        memset(&m, 0, sizeof m);
        m.type = AM_SM_READ;
        m.u.sm_read.err = ZRAFT_ESHUTDOWN;
        m.u.sm_read.cb = c->reads[i].cb;
        m.u.sm_read.arg = c->reads[i].arg;
        s_to_sm(c, &m);
    }
    for (uint32_t i = 0; i < c->n_admins; i++) {
        waiter_done(c->admins[i].w, ZRAFT_ESHUTDOWN);
    }
    s_drop_held(c); /* install halves own a data reference */
    /* API requests that arrived meanwhile. */
    pthread_mutex_lock(&c->n->qlock);
    api_req *r = c->n->qhead;
    c->n->qhead = c->n->qtail = NULL;
    pthread_mutex_unlock(&c->n->qlock);
    while (r != NULL) {
        api_req *next = r->next;
        s_refuse(c, r, ZRAFT_ESHUTDOWN);
        r = next;
    }
}

void core_main(actor *a, void *arg)
{
    zraft_node *n = arg;
    core c;
    memset(&c, 0, sizeof c);
    c.n = n;
    c.e = engine_new(&n->ecfg);
    c.push_log = actor_connect(n->zctx, n->ep_log);
    c.push_sm = actor_connect(n->zctx, n->ep_sm);
    c.fwd = fwd_new(n, c.push_sm, s_flush_apply_cb, &c);
    char ep[160];
    rpc_endpoint(&n->rpc, n->cfg.id, n->cfg.listen_addr, ep, sizeof ep);
    const char *why = NULL;
    c.srv = rpc_server_new(n->zctx, &n->rpc, ep, &why);
    if (c.srv == NULL || c.e == NULL) {
        fprintf(stderr, "zraft node %llu: cannot listen on %s: %s\n",
                (unsigned long long)n->cfg.id, ep, why ? why : "no memory");
        c.fatal = ZRAFT_EUNAVAILABLE;
    }
    /* Tell zraft_node_new() whether the node could start. */
    pthread_mutex_lock(&n->slock);
    n->started = c.fatal ? c.fatal : 1;
    pthread_cond_broadcast(&n->scond);
    pthread_mutex_unlock(&n->slock);
    /* Recover the engine from storage (the same state the node probed). */
    zraft_storage_state st;
    if (c.e != NULL && n->st->load(n->st->ctx, &st) == 0) {
        engine_restore_vote(c.e, st.term, st.voted_for, st.committed);
        if (st.has_snapshot) {
            engine_restore_snapshot(c.e, &st.snapshot);
        }
        uint64_t next = st.first_index;
        zraft_entry buf[256];
        while (st.last_log_id.index > 0 && next <= st.last_log_id.index) {
            size_t got = 256;
            if (n->st->get(n->st->ctx, next, st.last_log_id.index, SIZE_MAX,
                           buf, &got) != 0 ||
                got == 0) {
                break;
            }
            engine_restore_entries(c.e, buf, got);
            for (size_t i = 0; i < got; i++) {
                zraft_buf_unref(buf[i].payload);
            }
            next += got;
        }
        engine_start(c.e, actor_now_ms(), n->start_applied);
        s_commands(&c);
        s_flush_turn(&c); /* before the first wait */
    }
    zmq_pollitem_t items[3 + ZRAFT_MAX_MEMBERS + FWD_POLL_MAX];
    actor_idle idle = {n->cfg.spin_us, 0};
    bool stop = false;
    while (!stop) {
        int ni = 0;
        items[ni++] = (zmq_pollitem_t){a->mailbox, 0, ZMQ_POLLIN, 0};
        items[ni++] = (zmq_pollitem_t){NULL, n->efd, ZMQ_POLLIN, 0};
        if (c.srv != NULL) {
            items[ni++] =
                (zmq_pollitem_t){rpc_server_socket(c.srv), 0, ZMQ_POLLIN, 0};
        }
        uint64_t turn_ms = actor_now_ms();
        s_send_kept_votes(&c, turn_ms);
        for (uint32_t i = 0; i < c.n_votes; i++) {
            short ev = turn_ms < c.votes_poll_until ? ZMQ_POLLIN : 0;
            for (uint32_t j = 0; j < c.n_vote_kept; j++) {
                if (c.vote_kept[j].m.to == c.votes[i].id) {
                    ev |= ZMQ_POLLOUT; /* wake up once it is up */
                }
            }
            if (ev != 0) {
                items[ni++] =
                    (zmq_pollitem_t){rpc_conn_socket(c.votes[i].c), 0, ev, 0};
            }
        }
        ni += fwd_poll_items(c.fwd, items + ni, FWD_POLL_MAX);
        bool held_streams = s_flush_held_streams(&c);
        long timeout = c.apply_due || held_streams ? 1 : 5;
        actor_poll(&idle, items, ni, timeout);
        uint64_t now = actor_now_ms();
        amsg m;
        while (actor_recv(a->mailbox, &m, ZMQ_DONTWAIT) == 1) {
            if (m.type == AM_STOP) {
                stop = true;
                break;
            }
            if (c.e != NULL) {
                s_mailbox(&c, &m);
            }
        }
        if (stop || c.e == NULL) {
            continue;
        }
        s_sm_applied(&c);
        /* Commits come with the streams' reports (leader) or with
         * AppendEntries (follower): apply before the next source. */
        s_flush_turn(&c);
        if (c.srv != NULL) {
            s_drain_rpc(&c, now);
        }
        s_flush_turn(&c);
        s_drain_api(&c);
        fwd_tick(c.fwd, c.e, c.srv, now);
        if (c.fatal == 0) {
            engine_tick(c.e, now);
            s_commands(&c);
        }
        s_flush_turn(&c);
    }
    s_shutdown(&c);
    fwd_destroy(&c.fwd); /* before push_sm: it answers through it */
    for (uint32_t i = 0; i < c.n_votes; i++) {
        rpc_conn_destroy(&c.votes[i].c);
    }
    rpc_server_destroy(&c.srv);
    engine_destroy(&c.e);
    zmq_close(c.push_log);
    zmq_close(c.push_sm);
    free(c.held);
    free(c.out_stream);
    free(c.out_log);
    free(c.pw);
    free(c.reads);
}
