/* node_int.h - a node's shared state: what the API threads, the core, the
 * log writer, the state machine worker and the replication streams of one
 * node share, and who owns each field.
 *
 * Ownership rules: the engine and everything under "core only" belong to
 * the core thread. The API queue is guarded by qlock (any thread pushes,
 * the core pops, an eventfd wakes it). Metrics are guarded by mlock (the
 * core and the sm thread write, any thread reads). Storage and the state
 * machine are called by their actors only (storage also by streams, for
 * reads). */
#ifndef ZRAFT_ACTORS_NODE_INT_H
#define ZRAFT_ACTORS_NODE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "actors/actor.h"
#include "actors/batchpool.h"
#include "actors/logcache.h"
#include "actors/trace.h"
#include "core/engine.h"
#include "transport/rpc.h"
#include "zraft.h"

enum {
    API_WRITE = 1,
    API_READ,
    API_INIT,
    API_ADD_LEARNER,
    API_REMOVE_LEARNER,
    API_CHANGE,
    API_TRANSFER,
    API_SNAPSHOT,
};

/* A caller waiting for an admin request (on the caller's stack). */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int rv;
} waiter;

typedef struct api_req {
    struct api_req *next;
    int type;
    zraft_buf *payload; /* WRITE: owned ref */
    zraft_write_cb wcb;
    zraft_read_cb rcb;
    void *arg;
    zraft_id id;
    char addr[ZRAFT_ADDR_MAX];
    char key[ZRAFT_KEY_MAX]; /* ADD_LEARNER: public key, if has_key */
    bool has_key;
    zraft_id ids[ZRAFT_MAX_MEMBERS];
    uint32_t n;
    zraft_member *members; /* INIT: borrowed (the caller waits) */
    waiter *w;             /* admin: completes once committed */
    uint64_t t_ns;         /* WRITE: when it was called (tracing only) */
    bool fwd;              /* WRITE, READ: forward when not leader */
    uint64_t since_ms;     /* forwarded: when it first waited (0: not) */
} api_req;

typedef struct repl repl;
typedef struct fwd fwd;

struct zraft_node {
    zraft_config cfg;
    engine_config ecfg;
    void *zctx;
    bool own_zctx;
    zraft_storage *st;
    zraft_fsm *fsm; /* points at fsm_copy */
    zraft_fsm fsm_copy;
    rpc_ctx rpc;
    logcache cache; /* recent entries: core writes, streams/sm read */
    char ep_core[96], ep_log[96], ep_sm[96];
    actor core, log, sm;

    /* API queue (any thread -> core). */
    pthread_mutex_t qlock;
    api_req *qhead, *qtail;
    api_req *qfree;   /* write requests for reuse (node_recycle_writes) */
    batchpool arrays; /* APPLY/FAIL/log-writer batch arrays (batchpool.h) */
    uint32_t n_qfree; /* ... how many, at most NODE_REQ_POOL */
    int efd;
    atomic_bool stopping;

    /* Metrics (core, log writer and sm write, anyone reads). Every change
     * is visible to zraft_metrics_get() at once; zraft_wait() callers are
     * woken (mcond) at once when the role, term, leader, membership or
     * fatal error changed, else at most every NODE_METRICS_COALESCE_US
     * (see node_metrics_update). */
    pthread_mutex_t mlock;
    pthread_cond_t mcond;
    zraft_metrics m;
    uint64_t m_woke_us; /* last broadcast */
    bool m_pending;     /* changed since the last broadcast */

    /* Start-up state handed to the threads. */
    uint64_t start_applied;
    /* The state machine's applied index: the sm thread stores it after
     * each batch, the core reads it every turn (no message, no wake-up). */
    _Atomic uint64_t sm_applied;
    zraft_log_id start_applied_id;
    zraft_membership start_membership;

    /* Start-up result of the core (0 pending, 1 listening, <0 error). */
    pthread_mutex_t slock;
    pthread_cond_t scond;
    int started;

    /* Core-thread state lives in core.c (struct core_state). */
    void *core_state;
};

/* Thread bodies. */
void core_main(actor *a, void *node);
void log_main(actor *a, void *node);
void sm_main(actor *a, void *node);

/* Replication streams, started and stopped by the core thread. */
repl *repl_start(zraft_node *n, zraft_id target, const char *addr);
/* `stop_sent`: the core sent STOP on its own socket to the stream, behind
 * everything else (then it is only joined); false: it is sent one. */
void repl_stop(repl **r, bool stop_sent);
const char *repl_endpoint(const repl *r);
zraft_id repl_target(const repl *r);

/* Request forwarding (forward.c), run by the core thread: see there.
 * `before_sm(ctx)` runs before each message it sends to the state machine
 * through the core's `push_sm` (the core sends its held APPLY first). */
fwd *fwd_new(zraft_node *n, void *push_sm, void (*before_sm)(void *ctx),
             void *ctx);
/* Answers everything still pending (ZRAFT_ESHUTDOWN, through the state
 * machine thread) and frees. */
void fwd_destroy(fwd **f);
/* Follower: takes a WRITE or READ request with r->fwd set that this node
 * (role, leader) cannot serve itself; true when taken (owned from then).
 * False: the core serves it (this node leads). */
bool fwd_take(fwd *f, const engine *e, api_req *r);
/* Leader: a FORWARD frame's items, just received by the ROUTER (borrowed
 * from its arena): queued as API requests that answer through the
 * ROUTER. A FORWARD_REPLY here, or anything malformed, is counted and
 * dropped. */
void fwd_on_frame(fwd *f, const msg *m, const codec_fwd *items, uint32_t n);
/* Leader: read `arg` (a forwarded read's) is ready at `index` (or failed). */
void fwd_read_done(fwd *f, void *arg, uint64_t index, int err);
/* Each core loop turn: answers what completed, receives replies, sends
 * what waits for a leader, expires. */
void fwd_tick(fwd *f, const engine *e, rpc_server *srv, uint64_t now);
/* Copies the forwarding counters into m->fwd_* (the core's publication,
 * under the metrics lock). */
void fwd_metrics(const fwd *f, zraft_metrics *m);
/* Sockets the core polls for the forwarder (replies from leaders): fills
 * at most `max` (FWD_POLL_MAX) zmq_pollitem_t, returns how many. */
#define FWD_POLL_MAX 8
int fwd_poll_items(fwd *f, void *items, int max);
/* The read callback marking a forwarded read in the core's table. */
void fwd_read_marker(void *arg, int err);

/* Reads entries [from, to] from the cache, then storage: like
 * zraft_storage.get (caller owns the references). */
int node_get_entries(zraft_node *n, uint64_t from, uint64_t to,
                     size_t max_bytes, zraft_entry *out, size_t *count);

/* Brackets a batch of client callbacks run on `n`'s state machine thread:
 * requests they queue to `n` wake its core once, at the end, instead of
 * once each. Same thread, no nesting. */
void node_callbacks_begin(zraft_node *n);
void node_callbacks_end(zraft_node *n);

/* Write requests kept for reuse, at most (the rest are freed). */
#define NODE_REQ_POOL 4096

/* Gives back `n` handled write requests (their payload references already
 * dropped) for zraft_write to reuse: one lock per batch. Core thread. */
void node_recycle_writes(zraft_node *n, api_req **reqs, size_t count);

/* Completes an admin waiter. */
void waiter_done(waiter *w, int rv);

/* How long a change that is not urgent may wait before zraft_wait()
 * callers are woken for it, at least (they are woken by a later update:
 * the core publishes every loop turn, at least every 5 ms). */
#define NODE_METRICS_COALESCE_US 2000

/* Calls `fn` under the metrics lock, then, if anything changed, wakes
 * zraft_wait() callers: at once if the role, term, leader, membership or
 * fatal error changed (or the node failed), or if NODE_METRICS_COALESCE_US
 * passed since they were last woken; otherwise the change waits for the
 * next update (coalesced). Any thread. */
void node_metrics_update(zraft_node *n, void (*fn)(zraft_metrics *, void *),
                         void *arg);

#endif
