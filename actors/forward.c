/* forward.c - request forwarding: a follower's client writes and
 * linearizable reads travel to the leader over the Raft transport and are
 * answered here (docs/runtime.md, Forwarding).
 *
 * Why in the runtime and not in the engine: forwarding makes no Raft
 * decision. The engine already says who leads (engine_leader), accepts
 * proposals (engine_propose) and answers read-index requests
 * (engine_read_index); what forwarding adds is client bookkeeping -
 * request ids, time-outs, retries, sockets, callbacks - which is I/O and
 * time, the two things core/ must not have. etcd forwards MsgProp inside
 * raft.go but leaves answering the client to its server layer; here both
 * halves sit together, beside the core, and the engine (and the
 * simulator) stay as they are.
 *
 * Everything runs on the core thread ("core-<id>"), which calls in at a
 * few points (node_int.h): fwd_take() for a request this node cannot
 * serve, fwd_on_frame() for a FORWARD frame its ROUTER received,
 * fwd_read_done() when a forwarded read-index is ready, fwd_tick() every
 * loop turn, fwd_poll_items() for its sockets. No extra thread, no extra
 * hop: the follower's requests leave from the thread that found it is not
 * the leader, and the leader's forwarded requests join its own batches.
 *
 * Follower side. A request taken waits in `waiting` until a leader other
 * than this node is known; each loop turn sends all that wait, one
 * FORWARD frame per leader (a pipeline of writes becomes one frame and
 * one batch on the leader), over a DEALER of kind RPC_KIND_FWD to the
 * leader's ROUTER, and keeps them in `flight` by request id. Answers:
 *   - a write's answer (entry id and result, or an error): handed to the
 *     state machine thread, which runs the callback at once. It does not
 *     wait until this node has applied the entry too: the leader sends
 *     the new commit index with its next append or heartbeat, and a
 *     pipeline of forwarded writes would wait a heartbeat interval per
 *     round (measured: 5k instead of 50k SET/s from redis-benchmark). So
 *     a stale read here right after a forwarded write may miss it; a
 *     linearizable one never does;
 *   - a write refused before it was proposed (ENOTLEADER, ETRANSFER): it
 *     waits again for a leader (not the one that refused, for a heartbeat
 *     interval) and is sent again. Any other answer is the client's, as
 *     for a local write (ELEADERSHIP_LOST included). A write is never
 *     proposed twice by this code: once a leader may have proposed it, it
 *     is never sent again;
 *   - a read's index: handed to the state machine thread, which answers
 *     once applied >= index (thesis §6.4). A refused read, or one whose
 *     leader changed, is simply asked again: it has no side effect;
 *   - no answer within forward_timeout_ms: ZRAFT_ETIMEDOUT; for a write
 *     the outcome is unknown (its reply may be lost), as for any time-out.
 * A request waits for a leader at most leader_wait_ms (then
 * ZRAFT_ENOTLEADER). If this node becomes the leader, what waits goes
 * back to the API queue and is served here.
 *
 * Leader side. A FORWARD frame's items become ordinary API requests (never
 * forwarded again) that the core drains with its own in the same loop
 * turn. A write's callback runs on the state machine thread: it puts the
 * answer in the outbox (a mutex-guarded list, the node's eventfd written
 * only when the list was empty) and the core sends the outbox each turn,
 * one FORWARD_REPLY frame per follower. A read's answer (the read index)
 * comes from the core's read table (fwd_read_done), without waiting for
 * the leader's own state machine. The outbox is reference-counted by the
 * answers still owed, because the state machine thread answers the last
 * ones after the core has stopped (they are then dropped).
 *
 * Every callback is answered exactly once, on the state machine thread:
 * at shutdown (fwd_destroy) whatever is waiting or in flight gets
 * ZRAFT_ESHUTDOWN; an answer already handed to the state machine thread
 * stands.
 * Malformed frames never get here (the decoder refuses them); an
 * unexpected one (a reply at the ROUTER, a request at a DEALER, a reply
 * for an unknown request) is counted and dropped, with a log line.
 *
 * Counters (zraft_metrics.fwd_*: sent, retried, timed out, failed,
 * connections replaced, served for followers) are this thread's; the core's
 * metrics publication copies them (fwd_metrics) every loop turn. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "actors/node_int.h"

/* Items per frame, at most; payload bytes per frame (one item may exceed
 * it, alone: a payload of ZRAFT_MAX_PAYLOAD_BYTES fits in one frame). */
#define FWD_FRAME_ITEMS 4096
#define FWD_FRAME_BYTES (4u << 20)
#define FWD_TIMEOUT_MS  10000u /* forward_timeout_ms 0 */

/* ------------------------------------------------------------ types */

/* A follower's request being forwarded. */
typedef struct pend {
    struct pend *next; /* waiting list */
    int type;          /* API_WRITE or API_READ */
    zraft_buf *payload;
    zraft_write_cb wcb;
    zraft_read_cb rcb;
    void *arg;
    uint64_t since;      /* taken (ms) */
    uint64_t deadline;   /* sent: answer due by */
    uint64_t req_id;     /* sent: its id */
    zraft_id to;         /* sent to */
    zraft_id refused_by; /* last leader that refused it ... */
    uint64_t retry_at;   /* ... not asked again before this */
    uint32_t sends;      /* times sent (the first counts as forwarded) */
} pend;

/* A write's answer on its way to the state machine thread. */
typedef struct {
    zraft_write_cb cb;
    void *arg;
    int err;
    zraft_log_id id;
    zraft_buf *result;
} answer;

/* Leader side: answers owed to followers, filled by any thread. */
typedef struct done {
    struct done *next;
    zraft_id to;
    codec_fwd item; /* data: owned result reference */
} done;

typedef struct {
    pthread_mutex_t lock;
    done *head, *tail;
    bool closed; /* the core stopped: drop what comes */
    int refs;    /* fwd + answers owed */
    int efd;     /* the node's: wakes the core */
} outbox;

/* A forwarded request the leader serves. */
typedef struct {
    outbox *ob;
    zraft_id from;
    uint64_t req_id;
} ritem;

typedef struct {
    zraft_id id;
    rpc_conn *c;
    char ep[160];
} fconn;

#define FWD_MAX_CONNS FWD_POLL_MAX

struct fwd {
    zraft_node *n;
    void *push_sm; /* the core's */
    void (*before_sm)(void *ctx);
    void *before_ctx;
    outbox *ob;
    pend *wait_head, *wait_tail;
    struct {
        uint64_t id;
        pend *p; /* NULL: answered */
    } * flight;  /* by increasing id */
    size_t n_flight, cap_flight, live_flight;
    uint64_t next_id;
    fconn conns[FWD_MAX_CONNS];
    uint32_t n_conns;
    uint64_t leader_wait, timeout;
    uint64_t unexpected; /* frames or items dropped */
    /* Counters for zraft_metrics.fwd_* (this thread writes them; the
     * core's publication copies them). */
    uint64_t n_writes, n_reads, n_retries, n_timeouts, n_failures;
    uint64_t n_reconnects;
    uint64_t n_served_writes, n_served_reads;
    zraft_id last_leader; /* as of the last turn */
    codec_fwd *items;     /* frame being built */
    pend **item_pend;
    size_t cap_items;
};

static void *s_alloc(size_t n)
{
    void *p = calloc(1, n);
    if (p == NULL) {
        abort(); /* as the core does: no half-answered requests */
    }
    return p;
}

static void s_unexpected(fwd *f, zraft_id from, const char *what)
{
    if (f->unexpected++ % 1000 == 0) {
        fprintf(stderr,
                "zraft node %llu: dropped %s from node %llu (%llu so far)\n",
                (unsigned long long)f->n->cfg.id, what,
                (unsigned long long)from, (unsigned long long)f->unexpected);
    }
}

/* ------------------------------------------------------- delivering */

/* Runs on the state machine thread (an SM_READ callback). */
static void s_deliver_write(void *arg, int err)
{
    answer *a = arg;
    (void)err; /* a success stands even if this node stops first */
    a->cb(a->arg, a->err, a->id, a->err == 0 ? a->result : NULL);
    zraft_buf_unref(a->result);
    free(a);
}

/* Hands a callback to the state machine thread: once applied >= index
 * when err is 0, at once otherwise. */
static void s_to_sm(fwd *f, zraft_read_cb cb, void *arg, uint64_t index,
                    int err)
{
    amsg m;
    memset(&m, 0, sizeof m);
    m.type = AM_SM_READ;
    m.u.sm_read.index = index;
    m.u.sm_read.err = err;
    m.u.sm_read.cb = cb;
    m.u.sm_read.arg = arg;
    f->before_sm(f->before_ctx);
    if (actor_send(f->push_sm, &m) != 0) {
        cb(arg, ZRAFT_ESHUTDOWN); /* the sm is gone: answer here */
    }
}

static void s_write_answer(fwd *f, pend *p, int err, zraft_log_id id,
                           zraft_buf *result)
{
    answer *a = s_alloc(sizeof(*a));
    a->cb = p->wcb;
    a->arg = p->arg;
    a->err = err;
    a->id = id;
    a->result = zraft_buf_ref(result);
    s_to_sm(f, s_deliver_write, a, 0, err);
}

/* Answers `p` with an error and frees it. */
static void s_fail(fwd *f, pend *p, int err)
{
    zraft_log_id none = {0, 0};
    if (err == ZRAFT_ETIMEDOUT) {
        f->n_timeouts++;
    } else {
        f->n_failures++;
    }
    if (p->type == API_WRITE) {
        s_write_answer(f, p, err, none, NULL);
    } else {
        s_to_sm(f, p->rcb, p->arg, 0, err);
    }
    zraft_buf_unref(p->payload);
    free(p);
}

/* ---------------------------------------------------------- waiting */

static void s_wait(fwd *f, pend *p)
{
    p->next = NULL;
    p->to = 0;
    p->req_id = 0;
    if (f->wait_tail) {
        f->wait_tail->next = p;
    } else {
        f->wait_head = p;
    }
    f->wait_tail = p;
}

bool fwd_take(fwd *f, const engine *e, api_req *r)
{
    engine_status st;
    engine_get_status(e, &st);
    if (st.role == ROLE_LEADER && f->wait_head == NULL) {
        return false;
    }
    /* Not the leader; or just became it with older requests still waiting
     * here: this one queues behind them (fwd_tick hands them all back in
     * order), so a pipeline's later write cannot overtake an earlier one. */
    pend *p = s_alloc(sizeof(*p));
    p->type = r->type;
    p->payload = r->payload; /* taken over */
    p->wcb = r->wcb;
    p->rcb = r->rcb;
    p->arg = r->arg;
    p->since = r->since_ms ? r->since_ms : actor_now_ms();
    free(r);
    s_wait(f, p);
    return true;
}

/* --------------------------------------------------------- in flight */

static void s_flight_add(fwd *f, pend *p)
{
    if (f->n_flight == f->cap_flight) {
        /* Compact first: answered slots are holes. */
        size_t k = 0;
        for (size_t i = 0; i < f->n_flight; i++) {
            if (f->flight[i].p != NULL) {
                f->flight[k++] = f->flight[i];
            }
        }
        f->n_flight = k;
        if (k * 2 > f->cap_flight || f->cap_flight == 0) {
            size_t cap = f->cap_flight ? f->cap_flight * 2 : 256;
            void *q = realloc(f->flight, cap * sizeof(*f->flight));
            if (q == NULL) {
                abort();
            }
            f->flight = q;
            f->cap_flight = cap;
        }
    }
    f->flight[f->n_flight].id = p->req_id;
    f->flight[f->n_flight].p = p;
    f->n_flight++;
    f->live_flight++;
}

/* The slot of request `id` (-1: unknown). Ids increase along the table. */
static ptrdiff_t s_flight_find(const fwd *f, uint64_t id)
{
    size_t lo = 0, hi = f->n_flight;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->flight[mid].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == f->n_flight || f->flight[lo].id != id ||
        f->flight[lo].p == NULL) {
        return -1;
    }
    return (ptrdiff_t)lo;
}

/* Removes and returns the request in slot `i`. */
static pend *s_flight_remove(fwd *f, size_t i)
{
    pend *p = f->flight[i].p;
    f->flight[i].p = NULL;
    f->live_flight--;
    /* Drop the answered prefix: replies mostly come in order. */
    size_t k = 0;
    while (k < f->n_flight && f->flight[k].p == NULL) {
        k++;
    }
    if (k > 0 && (k == f->n_flight || k >= 64)) {
        memmove(f->flight, f->flight + k,
                (f->n_flight - k) * sizeof(*f->flight));
        f->n_flight -= k;
    }
    return p;
}

/* Moves the reads in flight to `to` (all_but: to any node but `to`) back
 * to waiting, to be asked again. Writes stay: they may have arrived. */
static void s_flight_requeue(fwd *f, zraft_id to, bool all_but)
{
    for (size_t k = 0; k < f->n_flight;) {
        pend *p = f->flight[k].p;
        if (p != NULL && p->type == API_READ &&
            (all_but ? p->to != to : p->to == to)) {
            s_flight_remove(f, k);
            s_wait(f, p);
            k = 0; /* the table may have moved */
        } else {
            k++;
        }
    }
}

/* ------------------------------------------------------- connections */

static const char *s_addr_of(const engine *e, zraft_id id)
{
    const zraft_member *mb = zraft_membership_find(engine_membership(e), id);
    return mb ? mb->addr : NULL;
}

static void s_conn_drop(fwd *f, uint32_t i)
{
    /* Reads sent over it are asked again; writes wait for their answer
     * until their deadline (they may have arrived). */
    s_flight_requeue(f, f->conns[i].id, false);
    rpc_conn_destroy(&f->conns[i].c);
    f->conns[i] = f->conns[--f->n_conns];
}

static rpc_conn *s_conn(fwd *f, const engine *e, zraft_id id, uint64_t now)
{
    char ep[160];
    const char *addr = s_addr_of(e, id);
    if (addr == NULL) {
        return NULL; /* not in the configuration this node knows */
    }
    for (uint32_t i = 0; i < f->n_conns; i++) {
        if (f->conns[i].id != id) {
            continue;
        }
        /* Every FORWARD frame is answered: replaced only when one has not
         * been for long (an idle connection is not stale: replacing it
         * at a burst's second frame lost the answers to the first). */
        bool stale = rpc_conn_unanswered(
            f->conns[i].c, now, 2ull * f->n->cfg.election_timeout_max_ms);
        if (!stale && (rpc_peer_endpoint(&f->n->rpc, id, addr, false, ep,
                                         sizeof ep) != 0 ||
                       strcmp(ep, f->conns[i].ep) == 0)) {
            return f->conns[i].c;
        }
        s_conn_drop(f, i); /* silent for long, or moved: reconnect */
        f->n_reconnects++;
        break;
    }
    if (f->n_conns == FWD_MAX_CONNS) {
        s_conn_drop(f, 0);
    }
    if (rpc_peer_endpoint(&f->n->rpc, id, addr, false, ep, sizeof ep) != 0) {
        return NULL; /* no address yet: ask again next turn */
    }
    rpc_conn *k = rpc_conn_new(f->n->zctx, &f->n->rpc, id, ep, RPC_KIND_FWD);
    if (k != NULL) {
        f->conns[f->n_conns].id = id;
        f->conns[f->n_conns].c = k;
        memcpy(f->conns[f->n_conns].ep, ep, sizeof ep);
        f->n_conns++;
    }
    return k;
}

int fwd_poll_items(fwd *f, void *items, int max)
{
    zmq_pollitem_t *it = items;
    int k = 0;
    /* Only while answers are awaited: every socket in the poll set costs
     * each wake-up of the core, and fwd_tick drains the connections every
     * turn anyway (a late answer to an expired request). */
    for (uint32_t i = 0; f->live_flight > 0 && i < f->n_conns && k < max; i++) {
        it[k++] =
            (zmq_pollitem_t){rpc_conn_socket(f->conns[i].c), 0, ZMQ_POLLIN, 0};
    }
    return k;
}

/* ---------------------------------------------------------- sending */

static void s_grow_items(fwd *f, size_t need)
{
    if (need <= f->cap_items) {
        return;
    }
    size_t cap = f->cap_items ? f->cap_items * 2 : 64;
    while (cap < need) {
        cap *= 2;
    }
    f->items = realloc(f->items, cap * sizeof(*f->items));
    f->item_pend = realloc(f->item_pend, cap * sizeof(*f->item_pend));
    if (f->items == NULL || f->item_pend == NULL) {
        abort();
    }
    f->cap_items = cap;
}

/* Sends the `n` requests collected in f->items to `to`. On success they
 * are in flight; otherwise (no connection, queue full) they wait again. */
static void s_send_frame(fwd *f, const engine *e, zraft_id to, size_t n,
                         uint64_t now)
{
    engine_status st;
    engine_get_status(e, &st);
    msg m = {.type = CODEC_MSG_FORWARD,
             .from = f->n->cfg.id,
             .to = to,
             .term = st.term};
    rpc_conn *k = s_conn(f, e, to, now);
    int rv = k ? rpc_conn_send_fwd(k, &m, f->items, (uint32_t)n) : ZRAFT_EAGAIN;
    for (size_t i = 0; i < n; i++) {
        pend *p = f->item_pend[i];
        if (rv == 0) {
            p->to = to;
            p->deadline = now + f->timeout;
            if (p->sends++ > 0) {
                f->n_retries++;
            } else if (p->type == API_WRITE) {
                f->n_writes++;
            } else {
                f->n_reads++;
            }
            s_flight_add(f, p);
        } else {
            s_wait(f, p); /* nothing was sent: it may be sent again */
        }
    }
}

/* Sends what waits to the leader, or gives it back to the core when this
 * node leads, or fails what waited too long. */
static void s_send_waiting(fwd *f, const engine *e, uint64_t now)
{
    engine_status st;
    engine_get_status(e, &st);
    pend *p = f->wait_head;
    f->wait_head = f->wait_tail = NULL;
    size_t n = 0, bytes = 0;
    while (p != NULL) {
        pend *next = p->next;
        p->next = NULL;
        /* (`now` was read before the request was taken) */
        uint64_t waited = now > p->since ? now - p->since : 0;
        if (st.role == ROLE_LEADER) {
            /* Served here after all: back to the API queue, as it came. */
            api_req *r = s_alloc(sizeof(*r));
            r->type = p->type;
            r->payload = p->payload;
            r->wcb = p->wcb;
            r->rcb = p->rcb;
            r->arg = p->arg;
            r->fwd = true;
            r->since_ms = p->since;
            free(p);
            pthread_mutex_lock(&f->n->qlock);
            if (f->n->qtail) {
                f->n->qtail->next = r;
            } else {
                f->n->qhead = r;
            }
            f->n->qtail = r;
            pthread_mutex_unlock(&f->n->qlock);
            uint64_t one = 1;
            ssize_t w = write(f->n->efd, &one, sizeof one);
            (void)w;
        } else if (waited >= f->leader_wait &&
                   (st.leader == 0 || st.leader == st.id)) {
            s_fail(f, p, ZRAFT_ENOTLEADER);
        } else if (waited >= f->leader_wait + f->timeout) {
            /* Refused again and again, never proposed. */
            s_fail(f, p, ZRAFT_ENOTLEADER);
        } else if (st.leader == 0 || st.leader == st.id ||
                   (st.leader == p->refused_by && now < p->retry_at)) {
            s_wait(f, p);
        } else {
            size_t len = p->payload ? p->payload->len : 0;
            if (n > 0 &&
                (n == FWD_FRAME_ITEMS || bytes + len > FWD_FRAME_BYTES)) {
                s_send_frame(f, e, st.leader, n, now);
                n = bytes = 0;
            }
            s_grow_items(f, n + 1);
            p->req_id = ++f->next_id;
            f->items[n] = (codec_fwd){
                .req_id = p->req_id,
                .op = p->type == API_WRITE ? CODEC_FWD_WRITE : CODEC_FWD_READ,
                .data = p->type == API_WRITE ? p->payload : NULL};
            f->item_pend[n] = p;
            n++;
            bytes += len;
        }
        p = next;
    }
    if (n > 0) {
        s_send_frame(f, e, st.leader, n, now);
    }
}

/* --------------------------------------------------------- answers */

static void s_on_answer(fwd *f, zraft_id from, const codec_fwd *it,
                        uint64_t now)
{
    ptrdiff_t slot = s_flight_find(f, it->req_id);
    if (slot < 0) {
        return; /* answered or expired already (a late duplicate) */
    }
    pend *p = f->flight[slot].p;
    bool write = p->type == API_WRITE;
    if (p->to != from || write != (it->op == CODEC_FWD_WRITE)) {
        s_unexpected(f, from, "a forward reply that does not match");
        return; /* keep waiting for the right one */
    }
    s_flight_remove(f, (size_t)slot);
    bool refused = it->err == ZRAFT_ENOTLEADER || it->err == ZRAFT_ETRANSFER;
    if (refused || (!write && it->err != 0)) {
        /* Not proposed (or a read): ask the next leader. */
        p->refused_by = from;
        p->retry_at = now + f->n->cfg.heartbeat_interval_ms;
        s_wait(f, p);
        return;
    }
    if (write) {
        f->n_failures += it->err != 0;
        s_write_answer(f, p, it->err, it->id, it->data);
        zraft_buf_unref(p->payload);
        free(p);
    } else {
        s_to_sm(f, p->rcb, p->arg, it->id.index, 0);
        free(p);
    }
}

static void s_recv_replies(fwd *f, uint64_t now)
{
    for (uint32_t i = 0; i < f->n_conns; i++) {
        msg x;
        while (rpc_conn_recv(f->conns[i].c, &x, now) == 1) {
            uint32_t n;
            const codec_fwd *it = rpc_conn_fwd(f->conns[i].c, &n);
            if (x.type != CODEC_MSG_FORWARD_REPLY || x.from != f->conns[i].id) {
                s_unexpected(f, x.from, "a frame that is not a forward reply");
            } else {
                for (uint32_t k = 0; k < n; k++) {
                    s_on_answer(f, x.from, &it[k], now);
                }
            }
            codec_msg_release(&x);
        }
    }
}

/* Fails what was not answered in time. Requests are sent in id order
 * with the same time-out, so the oldest live one expires first. */
static void s_expire(fwd *f, uint64_t now)
{
    for (size_t k = 0; k < f->n_flight;) {
        pend *p = f->flight[k].p;
        if (p == NULL) {
            k++;
            continue;
        }
        if (now < p->deadline) {
            return;
        }
        s_flight_remove(f, k);
        s_fail(f, p, ZRAFT_ETIMEDOUT);
        k = 0;
    }
}

/* ------------------------------------------------------ leader side */

static void s_ob_unref(outbox *ob)
{
    pthread_mutex_lock(&ob->lock);
    int left = --ob->refs;
    pthread_mutex_unlock(&ob->lock);
    if (left == 0) {
        pthread_mutex_destroy(&ob->lock);
        free(ob);
    }
}

/* Queues an answer for the core to send (any thread). */
static void s_ob_put(ritem *ri, uint8_t op, int err, zraft_log_id id,
                     zraft_buf *data)
{
    outbox *ob = ri->ob;
    pthread_mutex_lock(&ob->lock);
    bool wake = false;
    if (!ob->closed) {
        done *d = s_alloc(sizeof(*d));
        d->to = ri->from;
        d->item = (codec_fwd){.req_id = ri->req_id,
                              .op = op,
                              .err = err,
                              .id = id,
                              .data = zraft_buf_ref(data)};
        wake = ob->head == NULL;
        if (ob->tail) {
            ob->tail->next = d;
        } else {
            ob->head = d;
        }
        ob->tail = d;
    }
    pthread_mutex_unlock(&ob->lock);
    if (wake) {
        uint64_t one = 1;
        ssize_t w = write(ob->efd, &one, sizeof one);
        (void)w;
    }
}

/* A forwarded write's callback (state machine thread, or the thread that
 * fails it at shutdown). */
/* An error code the reply frame can carry (codec: -255..0): an embedder's
 * state machine may fail with any negative number. */
static int s_wire_err(int err)
{
    return err < -255 ? ZRAFT_EIO : err;
}

static void s_remote_written(void *arg, int err, zraft_log_id id,
                             zraft_buf *result)
{
    ritem *ri = arg;
    err = s_wire_err(err);
    s_ob_put(ri, CODEC_FWD_WRITE, err, err == 0 ? id : (zraft_log_id){0, 0},
             err == 0 ? result : NULL);
    s_ob_unref(ri->ob);
    free(ri);
}

void fwd_read_marker(void *arg, int err)
{
    /* Only called when the core could not answer it itself (fatal error,
     * shutdown): the follower asks again elsewhere or times out. */
    ritem *ri = arg;
    (void)err;
    s_ob_unref(ri->ob);
    free(ri);
}

void fwd_read_done(fwd *f, void *arg, uint64_t index, int err)
{
    ritem *ri = arg;
    (void)f;
    err = s_wire_err(err);
    s_ob_put(ri, CODEC_FWD_READ, err, (zraft_log_id){0, err ? 0 : index}, NULL);
    s_ob_unref(ri->ob);
    free(ri);
}

static ritem *s_ritem(fwd *f, zraft_id from, uint64_t req_id)
{
    ritem *ri = s_alloc(sizeof(*ri));
    ri->ob = f->ob;
    ri->from = from;
    ri->req_id = req_id;
    pthread_mutex_lock(&f->ob->lock);
    f->ob->refs++;
    pthread_mutex_unlock(&f->ob->lock);
    return ri;
}

void fwd_on_frame(fwd *f, const msg *m, const codec_fwd *items, uint32_t n)
{
    if (m->type != CODEC_MSG_FORWARD) {
        s_unexpected(f, m->from, "a forward reply at the server socket");
        return;
    }
    api_req *head = NULL, *tail = NULL;
    for (uint32_t i = 0; i < n; i++) {
        const codec_fwd *it = &items[i];
        ritem *ri = s_ritem(f, m->from, it->req_id);
        if (it->op == CODEC_FWD_WRITE) {
            f->n_served_writes++;
        } else {
            f->n_served_reads++;
        }
        if (it->op == CODEC_FWD_WRITE &&
            it->data->len > ZRAFT_MAX_PAYLOAD_BYTES) {
            s_remote_written(ri, ZRAFT_ETOOBIG, (zraft_log_id){0, 0}, NULL);
            continue;
        }
        api_req *r = s_alloc(sizeof(*r));
        if (it->op == CODEC_FWD_WRITE) {
            r->type = API_WRITE;
            r->payload = zraft_buf_ref(it->data);
            r->wcb = s_remote_written;
        } else {
            r->type = API_READ;
            r->rcb = fwd_read_marker;
        }
        r->arg = ri;
        r->fwd = false; /* served here or refused: never forwarded on */
        if (tail) {
            tail->next = r;
        } else {
            head = r;
        }
        tail = r;
    }
    if (head == NULL) {
        return;
    }
    /* The core drains the queue right after its RPCs, in this turn. */
    pthread_mutex_lock(&f->n->qlock);
    if (f->n->qtail) {
        f->n->qtail->next = head;
    } else {
        f->n->qhead = head;
    }
    f->n->qtail = tail;
    pthread_mutex_unlock(&f->n->qlock);
}

/* Sends the answers queued since the last turn: one frame per follower
 * (or more, past the per-frame bounds). */
static void s_flush_outbox(fwd *f, rpc_server *srv, const engine *e)
{
    pthread_mutex_lock(&f->ob->lock);
    done *d = f->ob->head;
    f->ob->head = f->ob->tail = NULL;
    pthread_mutex_unlock(&f->ob->lock);
    engine_status st;
    engine_get_status(e, &st);
    while (d != NULL) {
        /* Take every answer for the first one's follower, in order. */
        zraft_id to = d->to;
        done *rest = NULL, **rt = &rest;
        size_t n = 0, bytes = 0;
        while (d != NULL) {
            done *next = d->next;
            size_t len = d->item.data ? d->item.data->len : 0;
            if (d->to == to && (n == 0 || (n < FWD_FRAME_ITEMS &&
                                           bytes + len <= FWD_FRAME_BYTES))) {
                s_grow_items(f, n + 1);
                f->items[n++] = d->item;
                bytes += len;
                free(d);
            } else {
                d->next = NULL;
                *rt = d;
                rt = &d->next;
            }
            d = next;
        }
        msg m = {.type = CODEC_MSG_FORWARD_REPLY,
                 .from = f->n->cfg.id,
                 .to = to,
                 .term = st.term};
        if (srv != NULL) {
            /* Lost if the follower's queue is full: it times out. */
            rpc_server_send_fwd(srv, &m, f->items, (uint32_t)n);
        }
        for (size_t i = 0; i < n; i++) {
            zraft_buf_unref(f->items[i].data);
        }
        d = rest;
    }
}

/* ------------------------------------------------------------ tick */

void fwd_tick(fwd *f, const engine *e, rpc_server *srv, uint64_t now)
{
    s_flush_outbox(f, srv, e);
    s_recv_replies(f, now);
    /* Reads in flight to a node that no longer leads: ask again. */
    zraft_id leader = engine_leader(e);
    if (leader != f->last_leader && leader != 0) {
        s_flight_requeue(f, leader, true);
    }
    f->last_leader = leader;
    if (f->wait_head != NULL) {
        s_send_waiting(f, e, now);
    }
    if (f->live_flight > 0) {
        s_expire(f, now);
    }
}

void fwd_metrics(const fwd *f, zraft_metrics *m)
{
    m->fwd_writes = f->n_writes;
    m->fwd_reads = f->n_reads;
    m->fwd_retries = f->n_retries;
    m->fwd_timeouts = f->n_timeouts;
    m->fwd_failures = f->n_failures;
    m->fwd_reconnects = f->n_reconnects;
    m->fwd_served_writes = f->n_served_writes;
    m->fwd_served_reads = f->n_served_reads;
}

/* ------------------------------------------------------- lifecycle */

fwd *fwd_new(zraft_node *n, void *push_sm, void (*before_sm)(void *ctx),
             void *ctx)
{
    fwd *f = s_alloc(sizeof(*f));
    f->n = n;
    f->push_sm = push_sm;
    f->before_sm = before_sm;
    f->before_ctx = ctx;
    f->ob = s_alloc(sizeof(*f->ob));
    pthread_mutex_init(&f->ob->lock, NULL);
    f->ob->refs = 1;
    f->ob->efd = n->efd;
    f->leader_wait = n->cfg.leader_wait_ms
                         ? n->cfg.leader_wait_ms
                         : 2ull * n->cfg.election_timeout_max_ms;
    f->timeout =
        n->cfg.forward_timeout_ms ? n->cfg.forward_timeout_ms : FWD_TIMEOUT_MS;
    return f;
}

void fwd_destroy(fwd **fp)
{
    if (fp == NULL || *fp == NULL) {
        return;
    }
    fwd *f = *fp;
    while (f->wait_head != NULL) {
        pend *p = f->wait_head;
        f->wait_head = p->next;
        s_fail(f, p, ZRAFT_ESHUTDOWN);
    }
    for (size_t k = 0; k < f->n_flight; k++) {
        if (f->flight[k].p != NULL) {
            s_fail(f, f->flight[k].p, ZRAFT_ESHUTDOWN);
        }
    }
    while (f->n_conns > 0) {
        rpc_conn_destroy(&f->conns[--f->n_conns].c);
    }
    /* Answers still owed to followers are dropped from now on. */
    pthread_mutex_lock(&f->ob->lock);
    f->ob->closed = true;
    done *d = f->ob->head;
    f->ob->head = f->ob->tail = NULL;
    pthread_mutex_unlock(&f->ob->lock);
    while (d != NULL) {
        done *next = d->next;
        zraft_buf_unref(d->item.data);
        free(d);
        d = next;
    }
    s_ob_unref(f->ob);
    free(f->flight);
    free(f->items);
    free(f->item_pend);
    free(f);
    *fp = NULL;
}
