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
#include "actors/logcache.h"
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
} api_req;

typedef struct repl repl;

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
void repl_stop(repl **r);
const char *repl_endpoint(const repl *r);
zraft_id repl_target(const repl *r);

/* Reads entries [from, to] from the cache, then storage: like
 * zraft_storage.get (caller owns the references). */
int node_get_entries(zraft_node *n, uint64_t from, uint64_t to,
                     size_t max_bytes, zraft_entry *out, size_t *count);

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
