/* node.c - the public API (include/zraft.h): node start-up and recovery,
 * the request queue into the core, blocking conveniences, metrics and
 * shutdown.
 *
 * API calls never touch Raft state: they queue a request for the core
 * thread (a mutex-guarded list plus an eventfd the core polls next to its
 * ZeroMQ sockets, because a ZeroMQ socket may not be shared between
 * threads) and either return (async forms) or wait on a condition variable
 * (sync forms). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "actors/node_int.h"

void zraft_config_default(zraft_config *c, zraft_id id)
{
    engine_config e;
    engine_config_default(&e, id);
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->cluster_id = 1;
    c->election_timeout_min_ms = e.election_timeout_min_ms;
    c->election_timeout_max_ms = e.election_timeout_max_ms;
    c->heartbeat_interval_ms = e.heartbeat_interval_ms;
    c->pre_vote = true;
    c->check_quorum = true;
    c->max_entries_per_msg = e.max_entries_per_msg;
    c->max_bytes_per_msg = e.max_bytes_per_msg;
    c->max_inflight_msgs = e.max_inflight_msgs;
    c->max_inflight_bytes = e.max_inflight_bytes;
    c->snapshot_threshold = 0;
    c->snapshot_keep_entries = e.snapshot_keep_entries;
    c->max_batch = 1024;
}

static void s_engine_config(const zraft_config *c, engine_config *e)
{
    engine_config_default(e, c->id);
    e->seed =
        c->seed ? c->seed : (c->id * 0x9e3779b97f4a7c15ull) ^ actor_now_us();
    e->election_timeout_min_ms = c->election_timeout_min_ms;
    e->election_timeout_max_ms = c->election_timeout_max_ms;
    e->heartbeat_interval_ms = c->heartbeat_interval_ms;
    e->pre_vote = c->pre_vote;
    e->check_quorum = c->check_quorum;
    e->max_entries_per_msg = c->max_entries_per_msg;
    e->max_bytes_per_msg = c->max_bytes_per_msg;
    e->max_inflight_msgs = c->max_inflight_msgs;
    e->max_inflight_bytes = c->max_inflight_bytes;
    e->snapshot_threshold = c->snapshot_threshold;
    e->snapshot_keep_entries = c->snapshot_keep_entries;
}

int zraft_config_validate(const zraft_config *c, const char **why)
{
    engine_config e;
    s_engine_config(c, &e);
    if (engine_config_validate(&e, why) != 0) {
        return ZRAFT_EINVAL;
    }
    if (c->max_batch == 0) {
        *why = "max_batch must be positive";
        return ZRAFT_EINVAL;
    }
    if (c->spin_us > 10000) {
        *why = "spin_us must be at most 10000 (10 ms)";
        return ZRAFT_EINVAL;
    }
    /* One AppendEntries of max_bytes_per_msg payload bytes in
     * max_entries_per_msg entries must fit in one frame: the engine never
     * exceeds these (it sends a single larger entry alone, and
     * ZRAFT_MAX_PAYLOAD_BYTES bounds that one). */
    if (c->max_entries_per_msg > CODEC_DEFAULT_MAX_ENTRIES ||
        (uint64_t)c->max_bytes_per_msg +
                (uint64_t)c->max_entries_per_msg * (CODEC_ENTRY_MIN_LEN + 8) >
            ZRAFT_MAX_PAYLOAD_BYTES) {
        *why = "max_bytes_per_msg and max_entries_per_msg exceed one frame "
               "(64 MiB)";
        return ZRAFT_EINVAL;
    }
    if (c->network == NULL && c->listen_addr[0] == '\0') {
        *why = "listen_addr is required without an in-process network";
        return ZRAFT_EINVAL;
    }
    if (c->wire_version != 0 && (c->wire_version < CODEC_VERSION_MIN ||
                                 c->wire_version > CODEC_VERSION)) {
        *why = "wire_version must be 0 (newest), 1, 2, 3 or 4";
        return ZRAFT_EINVAL;
    }
    if (c->scratch_dir != NULL && strlen(c->scratch_dir) >= PATH_MAX) {
        *why = "scratch_dir is too long";
        return ZRAFT_EINVAL;
    }
    if (c->curve_secret_key != NULL && c->curve_secret_key[0] != '\0') {
        if (c->network != NULL) {
            *why = "curve_secret_key needs ZeroMQ TCP (no in-process network)";
            return ZRAFT_EINVAL;
        }
        if (!curve_available()) {
            *why = "this libzmq has no CURVE support";
            return ZRAFT_EINVAL;
        }
        if (!curve_key_valid(c->curve_secret_key)) {
            *why = "curve_secret_key is not a Z85 key of 40 characters";
            return ZRAFT_EINVAL;
        }
    }
    for (size_t i = 0; i < c->n_curve_known; i++) {
        if (c->curve_known == NULL || !curve_key_valid(c->curve_known[i].key)) {
            *why = "curve_known: a key is not Z85 of 40 characters";
            return ZRAFT_EINVAL;
        }
    }
    *why = NULL;
    return 0;
}

void waiter_done(waiter *w, int rv)
{
    pthread_mutex_lock(&w->lock);
    if (!w->done && w->rv == 1) {
        /* The caller timed out and left it to us. */
        pthread_mutex_unlock(&w->lock);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        free(w);
        return;
    }
    w->rv = rv;
    w->done = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void s_deadline(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Waits for `w`; on timeout the request stays queued and will complete
 * into a waiter that is gone, so waiters are heap-allocated and the last
 * of (caller, core) frees it. Here: refcount 2 via `done` handshake. */
static int s_wait(waiter *w, int timeout_ms)
{
    struct timespec ts;
    if (timeout_ms >= 0) {
        s_deadline(&ts, timeout_ms);
    }
    pthread_mutex_lock(&w->lock);
    int rv = 0;
    while (!w->done && rv == 0) {
        rv = timeout_ms < 0 ? pthread_cond_wait(&w->cond, &w->lock)
                            : pthread_cond_timedwait(&w->cond, &w->lock, &ts);
    }
    int out = w->done ? w->rv : ZRAFT_ETIMEDOUT;
    pthread_mutex_unlock(&w->lock);
    return out;
}

/* Queues `r` for the core. The stopping flag is read under the queue lock
 * that zraft_node_destroy() takes to set it, so a request is either
 * refused here or queued before the core's last drain (which answers it). */
/* The node whose state machine thread is running a batch of client
 * callbacks on this thread, and whether a request it queued still has to
 * wake its core (node_callbacks_begin/end). */
static _Thread_local zraft_node *tl_cb_node;
static _Thread_local bool tl_cb_wake;

static void s_wake(zraft_node *n)
{
    uint64_t one = 1;
    ssize_t w = write(n->efd, &one, sizeof one);
    (void)w;
}

void node_callbacks_begin(zraft_node *n)
{
    tl_cb_node = n;
    tl_cb_wake = false;
}

void node_callbacks_end(zraft_node *n)
{
    tl_cb_node = NULL;
    if (tl_cb_wake) {
        tl_cb_wake = false;
        s_wake(n);
    }
}

/* How deep this thread is in batches that zraft_batch_begin() started
 * (0 also inside the state machine thread's callbacks: theirs is not). */
static _Thread_local unsigned tl_batch_depth;

void zraft_batch_begin(zraft_node *n)
{
    if (tl_batch_depth > 0) {
        tl_batch_depth++;
    } else if (n != NULL && tl_cb_node == NULL) {
        node_callbacks_begin(n);
        tl_batch_depth = 1;
    }
}

void zraft_batch_end(zraft_node *n)
{
    if (tl_batch_depth > 1) {
        tl_batch_depth--;
    } else if (tl_batch_depth == 1) {
        /* Ends the batch of the node that began it even when called with
         * another (a misuse): a batch left open would hold back this
         * thread's wake-ups of that node for good. */
        (void)n;
        tl_batch_depth = 0;
        node_callbacks_end(tl_cb_node);
    }
}

static int s_push(zraft_node *n, api_req *r)
{
    r->next = NULL;
    pthread_mutex_lock(&n->qlock);
    if (atomic_load(&n->stopping)) {
        pthread_mutex_unlock(&n->qlock);
        return ZRAFT_ESHUTDOWN;
    }
    /* Wake the core only for the first request of a batch: it reads the
     * eventfd before it takes the whole queue under the lock, so a request
     * that finds the queue non-empty is taken with those before it, and
     * one that finds it empty after a take wakes it again. */
    bool wake = n->qhead == NULL;
    if (n->qtail) {
        n->qtail->next = r;
    } else {
        n->qhead = r;
    }
    n->qtail = r;
    pthread_mutex_unlock(&n->qlock);
    if (wake && tl_cb_node == n) {
        /* A client callback on this node's state machine thread (a closed
         * loop): the core is woken once, after the batch of callbacks, for
         * every request they queued. The node cannot go away meanwhile: its
         * destruction joins this thread. */
        tl_cb_wake = true;
    } else if (wake) {
        s_wake(n);
    }
    return 0;
}

/* ------------------------------------------------------------- start */

static int s_recover(zraft_node *n, engine *e)
{
    zraft_storage_state st;
    int rv = n->st->load(n->st->ctx, &st);
    if (rv != 0) {
        return rv;
    }
    engine_restore_vote(e, st.term, st.voted_for, st.committed);
    n->start_applied = 0;
    memset(&n->start_membership, 0, sizeof n->start_membership);
    if (st.has_snapshot) {
        snapshot_meta meta;
        zraft_buf *data = NULL;
        rv = n->st->snapshot_load(n->st->ctx, &meta, &data);
        if (rv != 0) {
            return rv;
        }
        rv = n->fsm->restore(n->fsm->ctx, data);
        zraft_buf_unref(data);
        if (rv != 0) {
            return rv;
        }
        engine_restore_snapshot(e, &meta);
        n->start_applied = meta.last_log_id.index;
        n->start_applied_id = meta.last_log_id;
        n->start_membership = meta.membership;
    }
    /* Read the log back in chunks. */
    uint64_t next = st.first_index;
    zraft_entry buf[256];
    while (next <= st.last_log_id.index && st.last_log_id.index > 0) {
        size_t got = 256;
        rv = n->st->get(n->st->ctx, next, st.last_log_id.index, SIZE_MAX, buf,
                        &got);
        if (rv == ZRAFT_ECOMPACTED || rv == ZRAFT_ENOTFOUND) {
            break; /* empty log after a snapshot */
        }
        if (rv != 0) {
            return rv;
        }
        if (got == 0) {
            break;
        }
        rv = engine_restore_entries(e, buf, got);
        for (size_t i = 0; i < got; i++) {
            zraft_buf_unref(buf[i].payload);
        }
        if (rv != 0) {
            return rv;
        }
        next += got;
    }
    return 0;
}

int zraft_node_new(const zraft_config *c, zraft_storage *storage,
                   zraft_fsm *fsm, zraft_node **out)
{
    const char *why;
    if (c == NULL || storage == NULL || fsm == NULL || out == NULL ||
        zraft_config_validate(c, &why) != 0) {
        return ZRAFT_EINVAL;
    }
    zraft_node *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return ZRAFT_ENOMEM;
    }
    n->cfg = *c;
    n->cfg.curve_secret_key = NULL; /* copied into n->rpc.auth */
    n->cfg.curve_known = NULL;
    n->cfg.n_curve_known = 0;
    n->cfg.scratch_dir = NULL; /* copied into n->rpc */
    s_engine_config(c, &n->ecfg);
    n->st = storage;
    n->fsm_copy = *fsm;
    n->fsm = &n->fsm_copy;
    pthread_mutex_init(&n->qlock, NULL);
    batchpool_init(&n->arrays);
    pthread_mutex_init(&n->mlock, NULL);
    pthread_cond_init(&n->mcond, NULL);
    pthread_mutex_init(&n->slock, NULL);
    pthread_cond_init(&n->scond, NULL);
    n->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rv = ZRAFT_ENOMEM;
    if (n->efd < 0 || logcache_init(&n->cache, 64u << 20) != 0) {
        goto err_after_locks;
    }
    if (c->network != NULL) {
        n->zctx = rpc_net_zctx(c->network);
    } else {
        n->zctx = zmq_ctx_new();
        n->own_zctx = true;
    }
    if (n->zctx == NULL) {
        goto err_after_efd;
    }
    codec_ctx_init(&n->rpc.codec, c->cluster_id, c->id);
    n->rpc.net = c->network;
    n->rpc.self = c->id;
    if (c->wire_version != 0) {
        n->rpc.codec.version = c->wire_version;
    }
    /* 4 chunks of 1 MiB in flight per transfer: 40 MB/s over a 100 ms
     * round trip, and at most 4 MiB queued ahead of a heartbeat. */
    n->rpc.snapshot_chunk = 1u << 20;
    n->rpc.snapshot_window = 4u << 20;
    const char *sd = c->scratch_dir;
    if (sd == NULL || sd[0] == '\0') {
        sd = getenv("TMPDIR");
    }
    snprintf(n->rpc.scratch_dir, sizeof n->rpc.scratch_dir, "%s",
             sd != NULL && sd[0] != '\0' ? sd : "/tmp");
    if (c->network == NULL) {
        n->rpc.res = resolver_new(1000);
        if (n->rpc.res == NULL) {
            goto err_after_zctx;
        }
    }
    /* The ZAP handler binds before the core's ROUTER does. */
    if (c->curve_secret_key != NULL && c->curve_secret_key[0] != '\0') {
        n->rpc.auth = curve_auth_new(n->zctx, c->id, c->curve_secret_key,
                                     c->curve_known, c->n_curve_known, &why);
        if (n->rpc.auth == NULL) {
            fprintf(stderr, "zraft node %llu: %s\n", (unsigned long long)c->id,
                    why);
            rv = ZRAFT_EINVAL;
            goto err_after_zctx;
        }
    }
    /* Names used once per process: ZeroMQ releases a closed socket's
     * inproc name later, on its reaper thread, so a node made at the
     * address of one just destroyed could not bind the same name. */
    uint64_t seq = actor_endpoint_seq();
    snprintf(n->ep_core, sizeof n->ep_core, "inproc://zn-%llu-core",
             (unsigned long long)seq);
    snprintf(n->ep_log, sizeof n->ep_log, "inproc://zn-%llu-log",
             (unsigned long long)seq);
    snprintf(n->ep_sm, sizeof n->ep_sm, "inproc://zn-%llu-sm",
             (unsigned long long)seq);

    /* Recover into a scratch engine to learn the start state; the core
     * builds its own from the same storage. */
    engine *probe = engine_new(&n->ecfg);
    if (probe == NULL) {
        goto err_after_zctx;
    }
    rv = s_recover(n, probe);
    engine_status ps;
    engine_get_status(probe, &ps);
    engine_destroy(&probe);
    if (rv != 0) {
        goto err_after_zctx;
    }
    /* The metrics show the recovered state from the start (a caller that
     * asks at once must not mistake a restarted node for a new one). */
    n->m.id = c->id;
    n->m.role = "follower";
    n->m.last_applied = n->start_applied;
    n->m.term = ps.term;
    n->m.commit_index = ps.committed;
    n->m.last_log_id = ps.last_log_id;
    n->m.snapshot_index = ps.snapshot.index;

    char name[16];
    snprintf(name, sizeof name, "log-%llu", (unsigned long long)c->id);
    rv = actor_start(&n->log, n->zctx, name, n->ep_log, log_main, n);
    if (rv != 0) {
        goto err_after_zctx;
    }
    snprintf(name, sizeof name, "sm-%llu", (unsigned long long)c->id);
    rv = actor_start(&n->sm, n->zctx, name, n->ep_sm, sm_main, n);
    if (rv != 0) {
        goto err_after_log;
    }
    snprintf(name, sizeof name, "core-%llu", (unsigned long long)c->id);
    rv = actor_start(&n->core, n->zctx, name, n->ep_core, core_main, n);
    if (rv != 0) {
        goto err_after_sm;
    }
    pthread_mutex_lock(&n->slock);
    while (n->started == 0) {
        pthread_cond_wait(&n->scond, &n->slock);
    }
    rv = n->started < 0 ? n->started : 0;
    pthread_mutex_unlock(&n->slock);
    if (rv != 0) {
        /* The core could not listen: stop everything, report why. */
        actor_stop(&n->core);
        actor_stop(&n->sm);
        actor_stop(&n->log);
        actor_close(&n->core);
        goto err_after_sm;
    }
    *out = n;
    return 0;

err_after_sm:
    actor_close(&n->sm);
err_after_log:
    actor_close(&n->log);
err_after_zctx:
    curve_auth_destroy(&n->rpc.auth);
    resolver_destroy(&n->rpc.res);
    if (n->own_zctx) {
        zmq_ctx_term(n->zctx);
    }
err_after_efd:
    close(n->efd);
err_after_locks:
    logcache_fini(&n->cache);
    pthread_mutex_destroy(&n->qlock);
    batchpool_fini(&n->arrays);
    pthread_mutex_destroy(&n->mlock);
    pthread_cond_destroy(&n->mcond);
    pthread_mutex_destroy(&n->slock);
    pthread_cond_destroy(&n->scond);
    free(n);
    return rv;
}

void zraft_node_destroy(zraft_node **np)
{
    if (np == NULL || *np == NULL) {
        return;
    }
    zraft_node *n = *np;
    pthread_mutex_lock(&n->qlock);
    atomic_store(&n->stopping, true); /* no request is queued after this */
    pthread_mutex_unlock(&n->qlock);
    /* Core first (no new commands; it hands every waiting write and read
     * to the state machine to fail, including what is still queued), then
     * the log writer (drains its queue), then the state machine (answers
     * what it has, fails the rest). No send between them blocks on an
     * actor that is gone (actor_send), so each join is bounded by the work
     * already queued. */
    actor_stop(&n->core);
    actor_stop(&n->log);
    actor_stop(&n->sm);
    /* Every actor is joined: what is left in a mailbox (a snapshot the
     * state machine reported after the core stopped, ...) is released. */
    actor_close(&n->core);
    actor_close(&n->log);
    actor_close(&n->sm);
    /* Only when the core never ran its drain: answer here, on this
     * thread. */
    api_req *r = n->qhead;
    n->qhead = n->qtail = NULL;
    while (r != NULL) {
        api_req *next = r->next;
        if (r->type == API_WRITE) {
            zraft_log_id none = {0, 0};
            r->wcb(r->arg, ZRAFT_ESHUTDOWN, none, NULL);
        } else if (r->type == API_READ) {
            r->rcb(r->arg, ZRAFT_ESHUTDOWN);
        } else if (r->w != NULL) {
            waiter_done(r->w, ZRAFT_ESHUTDOWN);
        }
        zraft_buf_unref(r->payload);
        free(r);
        r = next;
    }
    curve_auth_destroy(&n->rpc.auth); /* its socket, before the context */
    if (n->own_zctx) {
        zmq_ctx_term(n->zctx);
    }
    resolver_destroy(&n->rpc.res);
    while (n->qfree != NULL) {
        api_req *next = n->qfree->next;
        free(n->qfree);
        n->qfree = next;
    }
    close(n->efd);
    logcache_fini(&n->cache);
    if (n->fsm->destroy) {
        n->fsm->destroy(n->fsm->ctx);
    }
    zraft_storage_free(n->st);
    pthread_mutex_destroy(&n->qlock);
    batchpool_fini(&n->arrays);
    pthread_mutex_destroy(&n->mlock);
    pthread_cond_destroy(&n->mcond);
    pthread_mutex_destroy(&n->slock);
    pthread_cond_destroy(&n->scond);
    free(n);
    *np = NULL;
}

int node_get_entries(zraft_node *n, uint64_t from, uint64_t to,
                     size_t max_bytes, zraft_entry *out, size_t *count)
{
    size_t got = logcache_get(&n->cache, from, to, max_bytes, out, *count);
    if (got > 0) {
        *count = got;
        return 0;
    }
    return n->st->get(n->st->ctx, from, to, max_bytes, out, count);
}

/* -------------------------------------------------------------- calls */

static int s_admin(zraft_node *n, api_req *r, int timeout_ms)
{
    waiter *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        free(r);
        return ZRAFT_ENOMEM;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    r->w = w;
    int rv = s_push(n, r);
    if (rv != 0) {
        free(r);
        free(w);
        return rv;
    }
    rv = s_wait(w, timeout_ms);
    /* The core may still complete a timed-out waiter: leak nothing and
     * touch nothing freed - the core owns it from here when not done. */
    pthread_mutex_lock(&w->lock);
    bool done = w->done;
    if (!done) {
        w->rv = 1; /* tells the completer to free it */
    }
    pthread_mutex_unlock(&w->lock);
    if (done) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        free(w);
    }
    return rv;
}

int zraft_initialize(zraft_node *n, const zraft_member *members, size_t count)
{
    if (count == 0 || count > ZRAFT_MAX_MEMBERS || members == NULL) {
        return ZRAFT_EINVAL;
    }
    api_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return ZRAFT_ENOMEM;
    }
    r->type = API_INIT;
    r->members = (zraft_member *)members;
    r->n = (uint32_t)count;
    return s_admin(n, r, -1);
}

void node_recycle_writes(zraft_node *n, api_req **reqs, size_t count)
{
    if (count == 0) {
        return;
    }
    for (size_t i = 0; i + 1 < count; i++) {
        reqs[i]->next = reqs[i + 1];
    }
    pthread_mutex_lock(&n->qlock);
    bool keep = n->n_qfree + count <= NODE_REQ_POOL;
    if (keep) {
        reqs[count - 1]->next = n->qfree;
        n->qfree = reqs[0];
        n->n_qfree += (uint32_t)count;
    }
    pthread_mutex_unlock(&n->qlock);
    for (size_t i = 0; i < count && !keep; i++) {
        free(reqs[i]);
    }
}

/* A write request: a recycled one, else a new one (caller owns it). */
static api_req *s_write_req(zraft_node *n)
{
    pthread_mutex_lock(&n->qlock);
    api_req *r = n->qfree;
    if (r != NULL) {
        n->qfree = r->next;
        n->n_qfree--;
    }
    pthread_mutex_unlock(&n->qlock);
    return r != NULL ? r : malloc(sizeof(*r));
}

/* Whether a call with these flags may be forwarded (see zraft.h). A node
 * that sends wire version 2 or older cannot: the frames do not exist. */
static bool s_forwards(const zraft_node *n, unsigned flags)
{
    bool on = (flags & ZRAFT_CALL_FORWARD) != 0 ||
              (n->cfg.forward && (flags & ZRAFT_CALL_NO_FORWARD) == 0);
    return on && n->rpc.codec.version >= 3;
}

int zraft_write_buf(zraft_node *n, zraft_buf *payload, zraft_write_cb cb,
                    void *arg)
{
    return zraft_write_ex(n, payload, 0, cb, arg);
}

int zraft_write_ex(zraft_node *n, zraft_buf *payload, unsigned flags,
                   zraft_write_cb cb, void *arg)
{
    if (payload == NULL || cb == NULL ||
        (flags & ~(unsigned)(ZRAFT_CALL_FORWARD | ZRAFT_CALL_NO_FORWARD)) !=
            0) {
        return ZRAFT_EINVAL;
    }
    if (payload->len > ZRAFT_MAX_PAYLOAD_BYTES) {
        return ZRAFT_ETOOBIG; /* could never be sent to a follower */
    }
    api_req *r = s_write_req(n);
    if (r == NULL) {
        return ZRAFT_ENOMEM;
    }
    r->type = API_WRITE;
    r->payload = payload;
    r->wcb = cb;
    r->arg = arg;
    r->w = NULL;
    r->t_ns = trace_sampled(0) ? trace_now_ns() : 0; /* tracing is on */
    r->fwd = s_forwards(n, flags);
    r->since_ms = 0;
    int rv = s_push(n, r);
    if (rv != 0) {
        free(r);
    }
    return rv;
}

int zraft_write(zraft_node *n, const void *data, size_t len, zraft_write_cb cb,
                void *arg)
{
    if (len > ZRAFT_MAX_PAYLOAD_BYTES) {
        return ZRAFT_ETOOBIG; /* before copying it */
    }
    zraft_buf *b = zraft_buf_new(data, len);
    if (b == NULL) {
        return ZRAFT_ENOMEM;
    }
    int rv = zraft_write_buf(n, b, cb, arg);
    if (rv != 0) {
        zraft_buf_unref(b);
    }
    return rv;
}

typedef struct {
    waiter w;
    zraft_log_id id;
    int refs;
} sync_write;

/* A completion shared by a blocked caller and the callback (2 refs). */
static sync_write *s_sync_new(void)
{
    sync_write *s = calloc(1, sizeof(*s));
    if (s != NULL) {
        pthread_mutex_init(&s->w.lock, NULL);
        pthread_cond_init(&s->w.cond, NULL);
        s->refs = 2;
    }
    return s;
}

static void s_sync_release(sync_write *s)
{
    pthread_mutex_lock(&s->w.lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->w.lock);
    if (last) {
        pthread_mutex_destroy(&s->w.lock);
        pthread_cond_destroy(&s->w.cond);
        free(s);
    }
}

static void s_sync_write_cb(void *arg, int err, zraft_log_id id,
                            zraft_buf *result)
{
    sync_write *s = arg;
    (void)result;
    s->id = id;
    waiter_done(&s->w, err);
    s_sync_release(s);
}

int zraft_write_sync(zraft_node *n, const void *data, size_t len,
                     int timeout_ms, zraft_log_id *id)
{
    sync_write *s = s_sync_new();
    if (s == NULL) {
        return ZRAFT_ENOMEM;
    }
    int rv = zraft_write(n, data, len, s_sync_write_cb, s);
    if (rv != 0) {
        free(s);
        return rv;
    }
    rv = s_wait(&s->w, timeout_ms);
    if (id != NULL && rv == 0) {
        *id = s->id;
    }
    s_sync_release(s);
    return rv;
}

int zraft_read(zraft_node *n, zraft_read_cb cb, void *arg)
{
    return zraft_read_ex(n, 0, cb, arg);
}

int zraft_read_ex(zraft_node *n, unsigned flags, zraft_read_cb cb, void *arg)
{
    if (cb == NULL || (flags & ~(unsigned)(ZRAFT_CALL_FORWARD |
                                           ZRAFT_CALL_NO_FORWARD)) != 0) {
        return ZRAFT_EINVAL;
    }
    api_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return ZRAFT_ENOMEM;
    }
    r->type = API_READ;
    r->rcb = cb;
    r->arg = arg;
    r->fwd = s_forwards(n, flags);
    int rv = s_push(n, r);
    if (rv != 0) {
        free(r);
    }
    return rv;
}

static void s_sync_read_cb(void *arg, int err)
{
    sync_write *s = arg;
    waiter_done(&s->w, err);
    s_sync_release(s);
}

int zraft_read_sync(zraft_node *n, int timeout_ms)
{
    sync_write *s = s_sync_new();
    if (s == NULL) {
        return ZRAFT_ENOMEM;
    }
    int rv = zraft_read(n, s_sync_read_cb, s);
    if (rv != 0) {
        free(s);
        return rv;
    }
    rv = s_wait(&s->w, timeout_ms);
    s_sync_release(s);
    return rv;
}

/* An admin request with an id, and optionally an address and a key. */
static int s_simple_key(zraft_node *n, int type, zraft_id id, const char *addr,
                        const char *key, int timeout_ms)
{
    api_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return ZRAFT_ENOMEM;
    }
    r->type = type;
    r->id = id;
    if (addr != NULL) {
        if (strlen(addr) >= ZRAFT_ADDR_MAX) {
            free(r);
            return ZRAFT_EINVAL;
        }
        snprintf(r->addr, sizeof r->addr, "%s", addr);
    }
    if (key != NULL) {
        snprintf(r->key, sizeof r->key, "%s", key);
        r->has_key = true;
    }
    return s_admin(n, r, timeout_ms);
}

static int s_simple(zraft_node *n, int type, zraft_id id, const char *addr,
                    int timeout_ms)
{
    return s_simple_key(n, type, id, addr, NULL, timeout_ms);
}

int zraft_add_learner(zraft_node *n, zraft_id id, const char *addr,
                      int timeout_ms)
{
    return s_simple(n, API_ADD_LEARNER, id, addr, timeout_ms);
}

int zraft_add_learner_key(zraft_node *n, zraft_id id, const char *addr,
                          const char *key, int timeout_ms)
{
    if (key != NULL && key[0] != '\0' && !curve_key_valid(key)) {
        return ZRAFT_EINVAL;
    }
    return s_simple_key(n, API_ADD_LEARNER, id, addr, key, timeout_ms);
}

int zraft_remove_learner(zraft_node *n, zraft_id id, int timeout_ms)
{
    return s_simple(n, API_REMOVE_LEARNER, id, NULL, timeout_ms);
}

int zraft_transfer_leader(zraft_node *n, zraft_id to)
{
    return s_simple(n, API_TRANSFER, to, NULL, -1);
}

int zraft_trigger_snapshot(zraft_node *n)
{
    return s_simple(n, API_SNAPSHOT, 0, NULL, -1);
}

int zraft_change_membership(zraft_node *n, const zraft_id *voters, size_t count,
                            int timeout_ms)
{
    if (count == 0 || count > ZRAFT_MAX_MEMBERS) {
        return ZRAFT_EINVAL;
    }
    api_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return ZRAFT_ENOMEM;
    }
    r->type = API_CHANGE;
    memcpy(r->ids, voters, count * sizeof(*voters));
    r->n = (uint32_t)count;
    return s_admin(n, r, timeout_ms);
}

/* ------------------------------------------------------------ metrics */

static uint64_t s_mix(uint64_t h, uint64_t v)
{
    return (h ^ v) * 0x100000001b3ull; /* FNV-1a, a word at a time */
}

/* A digest of what zraft_wait() callers hear of at once: role, term,
 * leader, fatal error, membership (ids and roles). */
static uint64_t s_urgent(const zraft_metrics *m)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = s_mix(h, (uint64_t)(int64_t)m->role_code);
    h = s_mix(h, m->term);
    h = s_mix(h, m->leader);
    h = s_mix(h, (uint64_t)(int64_t)m->fatal);
    h = s_mix(h, (uint64_t)m->membership.n << 1 | m->membership.joint);
    for (uint32_t i = 0; i < m->membership.n && i < ZRAFT_MAX_MEMBERS; i++) {
        h = s_mix(h, m->membership.members[i].id);
        h = s_mix(h, m->membership.members[i].roles);
    }
    return h;
}

/* A digest of the rest: indexes, counters, replication progress. */
static uint64_t s_rest(const zraft_metrics *m)
{
    uint64_t h = 0xcbf29ce484222325ull;
    uint64_t v[] = {m->commit_index,
                    m->last_applied,
                    m->last_log_id.term,
                    m->last_log_id.index,
                    m->snapshot_index,
                    m->writes,
                    m->applied,
                    m->fsyncs,
                    m->n_peers,
                    m->fwd_writes + m->fwd_reads + m->fwd_retries +
                        m->fwd_timeouts + m->fwd_failures +
                        m->fwd_served_writes + m->fwd_served_reads +
                        m->fwd_reconnects,
                    m->repl_refused};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        h = s_mix(h, v[i]);
    }
    for (uint32_t i = 0; i < m->n_peers && i < ZRAFT_MAX_MEMBERS; i++) {
        h = s_mix(h, m->peers[i].matched);
    }
    return h;
}

/* Metrics change after nearly every core event, log flush and applied
 * batch: thousands of times a second under load. Waking every zraft_wait()
 * caller (zraftd's registrar, tests) each time costs a futex wake-up and a
 * context switch per change for nothing; so a change that is not urgent
 * wakes them only if NODE_METRICS_COALESCE_US passed since they were last
 * woken, else it is left pending and announced by the first update after
 * that (the core updates every loop turn, at least every 5 ms): a waiter
 * sees every change within a few milliseconds, and role, term, leader,
 * membership and fatal changes at once. An update that changes nothing
 * wakes nobody. */
void node_metrics_update(zraft_node *n, void (*fn)(zraft_metrics *, void *),
                         void *arg)
{
    pthread_mutex_lock(&n->mlock);
    uint64_t u0 = s_urgent(&n->m), r0 = s_rest(&n->m);
    fn(&n->m, arg);
    bool urgent = s_urgent(&n->m) != u0;
    if (urgent || n->m_pending || s_rest(&n->m) != r0) {
        uint64_t now = actor_now_us();
        if (urgent || n->m.fatal != 0 ||
            now - n->m_woke_us >= NODE_METRICS_COALESCE_US) {
            n->m_woke_us = now;
            n->m_pending = false;
            pthread_cond_broadcast(&n->mcond);
        } else {
            n->m_pending = true;
        }
    }
    pthread_mutex_unlock(&n->mlock);
}

int zraft_metrics_get(zraft_node *n, zraft_metrics *out)
{
    pthread_mutex_lock(&n->mlock);
    *out = n->m;
    pthread_mutex_unlock(&n->mlock);
    return 0;
}

int zraft_wait(zraft_node *n, bool (*pred)(const zraft_metrics *, void *),
               void *arg, int timeout_ms)
{
    struct timespec ts;
    if (timeout_ms >= 0) {
        s_deadline(&ts, timeout_ms);
    }
    pthread_mutex_lock(&n->mlock);
    int rv = 0;
    while (!pred(&n->m, arg)) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&n->mcond, &n->mlock);
        } else if (pthread_cond_timedwait(&n->mcond, &n->mlock, &ts) ==
                   ETIMEDOUT) {
            rv = pred(&n->m, arg) ? 0 : ZRAFT_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&n->mlock);
    return rv;
}
