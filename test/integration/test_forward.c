/* test_forward.c - request forwarding (actors/forward.c): writes and
 * linearizable reads made on a follower travel to the leader over the
 * transport and are answered with the leader's result; through a leader
 * change, without a leader, with malformed frames from a peer, and at
 * shutdown (every callback answered exactly once). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "cluster.h"
#include "transport/codec.h"
#include "transport/rpc.h"

/* ------------------------------------------------- a counting fsm */

/* Applies every write by counting it and answers the count (8 bytes), as
 * INCR would; records each write id to check that none is applied twice.
 * While `held`, applying waits (the node answers none of its writes). */
typedef struct {
    pthread_mutex_t lock;
    uint64_t count;
    uint64_t *wids;
    uint64_t cap;
    atomic_bool held;
} counter;

static counter counters[CL_MAX + 1];

static int c_apply(void *ctx, const zraft_entry *e, zraft_buf **result)
{
    counter *c = ctx;
    uint64_t wid = 0;
    if (e->payload && e->payload->len >= 8) {
        memcpy(&wid, e->payload->data, 8);
    }
    while (atomic_load(&c->held)) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&c->lock);
    if (c->count == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->wids = realloc(c->wids, c->cap * sizeof(uint64_t));
    }
    c->wids[c->count++] = wid;
    uint64_t v = c->count;
    pthread_mutex_unlock(&c->lock);
    *result = zraft_buf_new(&v, sizeof v);
    return 0;
}

static int c_snapshot(void *ctx, zraft_buf **out)
{
    counter *c = ctx;
    pthread_mutex_lock(&c->lock);
    *out = zraft_buf_new(c->wids, c->count * 8);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

static int c_restore(void *ctx, const zraft_buf *data)
{
    counter *c = ctx;
    pthread_mutex_lock(&c->lock);
    c->count = data->len / 8;
    c->cap = c->count + 1024;
    c->wids = realloc(c->wids, c->cap * 8);
    memcpy(c->wids, data->data, data->len);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

static void c_destroy(void *ctx)
{
    (void)ctx;
}

static void make_counter(void *arg, zraft_id id, zraft_fsm *f)
{
    (void)arg;
    counter *c = &counters[id];
    pthread_mutex_lock(&c->lock);
    c->count = 0; /* a restart applies from the start again */
    pthread_mutex_unlock(&c->lock);
    f->ctx = c;
    f->apply = c_apply;
    f->snapshot = c_snapshot;
    f->restore = c_restore;
    f->destroy = c_destroy;
}

static uint64_t c_count(zraft_id id)
{
    pthread_mutex_lock(&counters[id].lock);
    uint64_t n = counters[id].count;
    pthread_mutex_unlock(&counters[id].lock);
    return n;
}

static void s_setup(void)
{
    for (int i = 0; i <= CL_MAX; i++) {
        free(counters[i].wids);
        memset(&counters[i], 0, sizeof counters[i]);
        pthread_mutex_init(&counters[i].lock, NULL);
        atomic_init(&counters[i].held, false);
    }
}

static void s_start(cluster *c, bool forward)
{
    memset(c, 0, sizeof *c);
    c->make_fsm = make_counter;
    c->forward = forward;
    cl_start(c, 3);
}

static zraft_id s_follower(cluster *c, zraft_id leader)
{
    (void)c;
    return leader == 1 ? 2 : 1;
}

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --------------------------------------------- one write, one answer */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls;
    int err;
    zraft_log_id id;
    uint64_t result;
    bool has_result;
    uint64_t applied_here; /* the caller node's count when answered */
    zraft_id node;
} one;

static void one_init(one *o, zraft_id node)
{
    memset(o, 0, sizeof *o);
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->cond, NULL);
    o->node = node;
}

static void one_write_cb(void *arg, int err, zraft_log_id id, zraft_buf *res)
{
    one *o = arg;
    pthread_mutex_lock(&o->lock);
    o->calls++;
    o->err = err;
    o->id = id;
    if (res != NULL && res->len == 8) {
        memcpy(&o->result, res->data, 8);
        o->has_result = true;
    }
    o->applied_here = c_count(o->node);
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

static void one_read_cb(void *arg, int err)
{
    one *o = arg;
    pthread_mutex_lock(&o->lock);
    o->calls++;
    o->err = err;
    o->applied_here = c_count(o->node);
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

static void one_wait(one *o)
{
    uint64_t end = s_now_ms() + CL_DEADLINE_MS;
    pthread_mutex_lock(&o->lock);
    while (o->calls == 0 && s_now_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&o->cond, &o->lock, &ts);
    }
    pthread_mutex_unlock(&o->lock);
    cr_assert_eq(o->calls, 1, "one answer, got %d", o->calls);
}

static int s_write(zraft_node *n, uint64_t wid, unsigned flags,
                   zraft_write_cb cb, void *arg)
{
    unsigned char p[16];
    memcpy(p, &wid, 8);
    memset(p + 8, 0xcd, 8);
    zraft_buf *b = zraft_buf_new(p, sizeof p);
    int rv = zraft_write_ex(n, b, flags, cb, arg);
    if (rv != 0) {
        zraft_buf_unref(b);
    }
    return rv;
}

TestSuite(forward, .init = s_setup, .timeout = 120);

Test(forward, write_on_follower_answers_with_the_leaders_result)
{
    cluster c;
    s_start(&c, true);
    zraft_id leader = cl_leader(&c);
    zraft_id f = s_follower(&c, leader);
    one o;
    one_init(&o, f);
    cr_assert_eq(s_write(c.nodes[f], 7, 0, one_write_cb, &o), 0);
    one_wait(&o);
    cr_assert_eq(o.err, 0, "%s", zraft_strerror(o.err));
    cr_assert_gt(o.id.index, 0);
    /* A linearizable read on the follower sees it. */
    one r;
    one_init(&r, f);
    cr_assert_eq(zraft_read(c.nodes[f], one_read_cb, &r), 0);
    one_wait(&r);
    cr_assert_eq(r.err, 0);
    cr_assert(o.has_result);
    cr_assert_geq(r.applied_here, o.result);
    /* The state machine's answer (INCR-like: the count after it), the same
     * on every node. */
    pthread_mutex_lock(&counters[f].lock);
    cr_assert_eq(counters[f].wids[o.result - 1], 7);
    pthread_mutex_unlock(&counters[f].lock);
    cl_stop(&c);
}

Test(forward, read_on_follower_sees_every_write_acknowledged_before_it)
{
    cluster c;
    s_start(&c, true);
    zraft_id leader = cl_leader(&c);
    zraft_id f = s_follower(&c, leader);
    /* Slow down what the follower learns of commits: the read must still
     * wait until it has applied the leader's writes. */
    zraft_network_delay(c.net, leader, f, 100);
    for (uint64_t i = 1; i <= 20; i++) {
        cl_write_any(&c, i, 0); /* through whoever leads now */
        one o;
        one_init(&o, f);
        cr_assert_eq(zraft_read(c.nodes[f], one_read_cb, &o), 0);
        one_wait(&o);
        cr_assert_eq(o.err, 0, "%s", zraft_strerror(o.err));
        /* The follower's state reflects write i (and the blank entry and
         * membership entries are not counted: only writes). */
        cr_assert_geq(o.applied_here, i, "read %llu saw %llu writes",
                      (unsigned long long)i,
                      (unsigned long long)o.applied_here);
    }
    zraft_network_heal(c.net);
    cl_stop(&c);
}

Test(forward, flags_choose_per_call)
{
    cluster c;
    s_start(&c, false);
    zraft_id leader = cl_leader(&c);
    zraft_id f = s_follower(&c, leader);
    one o;
    /* Off by default: ENOTLEADER, as before. */
    one_init(&o, f);
    cr_assert_eq(s_write(c.nodes[f], 1, 0, one_write_cb, &o), 0);
    one_wait(&o);
    cr_assert_eq(o.err, ZRAFT_ENOTLEADER);
    one_init(&o, f);
    cr_assert_eq(zraft_read(c.nodes[f], one_read_cb, &o), 0);
    one_wait(&o);
    cr_assert_eq(o.err, ZRAFT_ENOTLEADER);
    /* On for one call. */
    one_init(&o, f);
    cr_assert_eq(s_write(c.nodes[f], 2, ZRAFT_CALL_FORWARD, one_write_cb, &o),
                 0);
    one_wait(&o);
    cr_assert_eq(o.err, 0, "%s", zraft_strerror(o.err));
    one_init(&o, f);
    cr_assert_eq(zraft_read_ex(c.nodes[f], ZRAFT_CALL_FORWARD, one_read_cb, &o),
                 0);
    one_wait(&o);
    cr_assert_eq(o.err, 0);
    /* Unknown flags are refused, and no callback runs. */
    cr_assert_eq(s_write(c.nodes[f], 3, 0x80, one_write_cb, &o), ZRAFT_EINVAL);
    cr_assert_eq(zraft_read_ex(c.nodes[f], 0x80, one_read_cb, &o),
                 ZRAFT_EINVAL);
    cl_stop(&c);

    /* On by configuration, off for one call. */
    s_setup();
    s_start(&c, true);
    leader = cl_leader(&c);
    f = s_follower(&c, leader);
    one_init(&o, f);
    cr_assert_eq(
        s_write(c.nodes[f], 4, ZRAFT_CALL_NO_FORWARD, one_write_cb, &o), 0);
    one_wait(&o);
    cr_assert_eq(o.err, ZRAFT_ENOTLEADER);
    cl_stop(&c);
}

Test(forward, large_payload_goes_in_a_frame_of_its_own)
{
    cluster c;
    s_start(&c, true);
    zraft_id leader = cl_leader(&c);
    zraft_id f = s_follower(&c, leader);
    size_t len = 6u << 20; /* past the per-frame budget of 4 MiB */
    zraft_buf *big = zraft_buf_new(NULL, len);
    memset(big->data, 0x5a, len);
    uint64_t wid = 99;
    memcpy(big->data, &wid, 8);
    one o;
    one_init(&o, f);
    cr_assert_eq(zraft_write_ex(c.nodes[f], big, 0, one_write_cb, &o), 0);
    one_wait(&o);
    cr_assert_eq(o.err, 0, "%s", zraft_strerror(o.err));
    /* Above the limit: refused at once, on any node. */
    zraft_buf *huge = zraft_buf_new(NULL, ZRAFT_MAX_PAYLOAD_BYTES + 1);
    cr_assert_eq(zraft_write_ex(c.nodes[f], huge, 0, one_write_cb, &o),
                 ZRAFT_ETOOBIG);
    zraft_buf_unref(huge);
    cl_stop(&c);
}

/* ------------------------------------------------------ many writes */

#define CLIENTS 32

typedef struct {
    zraft_node *node;
    atomic_uint issued, answered, ok, timedout, lost, notleader, shutdown,
        other;
    atomic_bool stop;
    pthread_mutex_t lock;
    uint64_t *ok_wids; /* writes answered 0 */
    size_t n_ok, cap_ok;
    atomic_uint reads_issued, reads_answered, reads_ok;
} load;

static void l_write(load *l);

/* The callback's argument: the load and the write id. */
typedef struct {
    load *l;
    uint64_t wid;
} wr;

static void l_cb(void *arg, int err, zraft_log_id id, zraft_buf *res)
{
    wr *w = arg;
    load *l = w->l;
    (void)id;
    (void)res;
    if (err == 0) {
        pthread_mutex_lock(&l->lock);
        if (l->n_ok == l->cap_ok) {
            l->cap_ok = l->cap_ok ? l->cap_ok * 2 : 1024;
            l->ok_wids = realloc(l->ok_wids, l->cap_ok * 8);
        }
        l->ok_wids[l->n_ok++] = w->wid;
        pthread_mutex_unlock(&l->lock);
        atomic_fetch_add(&l->ok, 1);
    } else if (err == ZRAFT_ETIMEDOUT) {
        atomic_fetch_add(&l->timedout, 1);
    } else if (err == ZRAFT_ELEADERSHIP_LOST) {
        atomic_fetch_add(&l->lost, 1);
    } else if (err == ZRAFT_ENOTLEADER) {
        atomic_fetch_add(&l->notleader, 1);
    } else if (err == ZRAFT_ESHUTDOWN) {
        atomic_fetch_add(&l->shutdown, 1);
    } else {
        atomic_fetch_add(&l->other, 1);
    }
    free(w);
    atomic_fetch_add(&l->answered, 1);
    if (err != ZRAFT_ESHUTDOWN && !atomic_load(&l->stop)) {
        l_write(l);
    }
}

static void l_write(load *l)
{
    wr *w = malloc(sizeof *w);
    w->l = l;
    w->wid = atomic_fetch_add(&l->issued, 1) + 1;
    if (s_write(l->node, w->wid, 0, l_cb, w) != 0) {
        atomic_fetch_sub(&l->issued, 1); /* refused: no callback comes */
        free(w);
    }
}

static void l_read(load *l);

static void l_read_cb(void *arg, int err)
{
    load *l = arg;
    if (err == 0) {
        atomic_fetch_add(&l->reads_ok, 1);
    }
    atomic_fetch_add(&l->reads_answered, 1);
    if (err != ZRAFT_ESHUTDOWN && !atomic_load(&l->stop)) {
        l_read(l);
    }
}

static void l_read(load *l)
{
    atomic_fetch_add(&l->reads_issued, 1);
    if (zraft_read(l->node, l_read_cb, l) != 0) {
        atomic_fetch_sub(&l->reads_issued, 1);
    }
}

static void l_wait_ok(load *l, unsigned want)
{
    uint64_t end = s_now_ms() + CL_DEADLINE_MS;
    while (atomic_load(&l->ok) < want && s_now_ms() < end) {
        struct timespec ts = {0, 2 * 1000000L};
        nanosleep(&ts, NULL); /* polls a condition, with a deadline */
    }
    cr_assert_geq(atomic_load(&l->ok), want, "%u writes ok, wanted %u",
                  atomic_load(&l->ok), want);
}

static void l_quiesce(load *l)
{
    atomic_store(&l->stop, true);
    uint64_t end = s_now_ms() + CL_DEADLINE_MS + 15000;
    while ((atomic_load(&l->answered) < atomic_load(&l->issued) ||
            atomic_load(&l->reads_answered) < atomic_load(&l->reads_issued)) &&
           s_now_ms() < end) {
        struct timespec ts = {0, 2 * 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(atomic_load(&l->answered), atomic_load(&l->issued));
    cr_assert_eq(atomic_load(&l->reads_answered),
                 atomic_load(&l->reads_issued));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* No write id applied twice on node `id`; every write answered 0 is
 * there. */
static void s_check_applied(load *l, zraft_id id)
{
    pthread_mutex_lock(&counters[id].lock);
    uint64_t n = counters[id].count;
    uint64_t *w = malloc((n + 1) * 8);
    memcpy(w, counters[id].wids, n * 8);
    pthread_mutex_unlock(&counters[id].lock);
    qsort(w, n, 8, cmp_u64);
    for (uint64_t k = 1; k < n; k++) {
        cr_assert(w[k] != w[k - 1] || w[k] >= (1ull << 62),
                  "write %llu applied twice on node %llu",
                  (unsigned long long)w[k], (unsigned long long)id);
    }
    for (size_t k = 0; k < l->n_ok; k++) {
        cr_assert_not_null(bsearch(&l->ok_wids[k], w, n, 8, cmp_u64),
                           "acknowledged write %llu is missing",
                           (unsigned long long)l->ok_wids[k]);
    }
    free(w);
}

Test(forward, pipelined_writes_and_reads_from_a_follower)
{
    cluster c;
    s_start(&c, true);
    zraft_id leader = cl_leader(&c);
    zraft_id f = s_follower(&c, leader);
    load *l = calloc(1, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
    l->node = c.nodes[f];
    for (int i = 0; i < CLIENTS; i++) {
        l_write(l);
    }
    for (int i = 0; i < 4; i++) {
        l_read(l);
    }
    l_wait_ok(l, 3000);
    l_quiesce(l);
    /* Without a leader change every write succeeds; a loaded machine may
     * depose the leader (check-quorum), which allows only the errors of a
     * leader change. */
    cr_assert_eq(atomic_load(&l->other) + atomic_load(&l->shutdown), 0,
                 "timedout %u lost %u notleader %u other %u",
                 atomic_load(&l->timedout), atomic_load(&l->lost),
                 atomic_load(&l->notleader), atomic_load(&l->other));
    cr_assert_gt(atomic_load(&l->reads_ok), 0);
    zraft_log_id last = cl_write_any(&c, 1ull << 62, 0);
    cl_wait_applied(&c, last.index);
    for (zraft_id id = 1; id <= 3; id++) {
        s_check_applied(l, id);
    }
    cl_stop(&c);
    free(l->ok_wids);
    free(l);
}

Test(forward, writes_through_a_leader_change_are_never_applied_twice)
{
    cluster c;
    memset(&c, 0, sizeof c);
    c.make_fsm = make_counter;
    c.forward = true;
    c.forward_timeout_ms = 3000;
    cl_start(&c, 3);
    zraft_id leader = cl_leader(&c);
    zraft_id f = s_follower(&c, leader);
    load *l = calloc(1, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
    l->node = c.nodes[f];
    for (int i = 0; i < CLIENTS; i++) {
        l_write(l);
    }
    for (int i = 0; i < 4; i++) {
        l_read(l);
    }
    l_wait_ok(l, 500);
    /* Depose the leader with writes in flight: cut it off (its entries in
     * flight may or may not commit), let the others elect, heal. */
    zraft_network_isolate(c.net, leader);
    zraft_id next = 0;
    uint64_t end = s_now_ms() + CL_DEADLINE_MS;
    while (next == 0 && s_now_ms() < end) {
        zraft_metrics m;
        zraft_metrics_get(c.nodes[f], &m);
        if (m.leader != 0 && m.leader != leader) {
            next = m.leader;
        }
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_neq(next, 0, "no new leader");
    unsigned before = atomic_load(&l->ok);
    l_wait_ok(l, before + 500);
    zraft_network_heal(c.net);
    l_wait_ok(l, atomic_load(&l->ok) + 200);
    l_quiesce(l);
    /* Errors are allowed (unknown outcomes); duplicates and lost
     * acknowledged writes are not. */
    cr_assert_eq(atomic_load(&l->other), 0);
    cr_assert_eq(atomic_load(&l->shutdown), 0);
    zraft_log_id last = cl_write_any(&c, 1ull << 62, 0);
    cl_wait_applied(&c, last.index);
    for (zraft_id id = 1; id <= 3; id++) {
        s_check_applied(l, id);
    }
    cl_stop(&c);
    free(l->ok_wids);
    free(l);
}

Test(forward, no_leader_waits_up_to_leader_wait_then_fails)
{
    cluster c;
    memset(&c, 0, sizeof c);
    c.make_fsm = make_counter;
    c.forward = true;
    c.leader_wait_ms = 400;
    cl_start(&c, 3);
    zraft_id leader = cl_leader(&c);
    zraft_id f = s_follower(&c, leader);
    /* Cut the follower off until it no longer knows a leader. */
    zraft_network_isolate(c.net, f);
    uint64_t end = s_now_ms() + CL_DEADLINE_MS;
    zraft_metrics m;
    do {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
        zraft_metrics_get(c.nodes[f], &m);
    } while (m.leader != 0 && s_now_ms() < end);
    cr_assert_eq(m.leader, 0);
    one w, r;
    one_init(&w, f);
    one_init(&r, f);
    uint64_t t0 = s_now_ms();
    cr_assert_eq(s_write(c.nodes[f], 5, 0, one_write_cb, &w), 0);
    cr_assert_eq(zraft_read(c.nodes[f], one_read_cb, &r), 0);
    one_wait(&w);
    one_wait(&r);
    cr_assert_eq(w.err, ZRAFT_ENOTLEADER, "%s", zraft_strerror(w.err));
    cr_assert_eq(r.err, ZRAFT_ENOTLEADER, "%s", zraft_strerror(r.err));
    cr_assert_geq(s_now_ms() - t0, 400, "answered before leader_wait_ms");
    /* Healed within the wait: the request goes through. */
    one_init(&w, f);
    cr_assert_eq(s_write(c.nodes[f], 6, 0, one_write_cb, &w), 0);
    zraft_network_heal(c.net);
    one_wait(&w);
    cr_assert(w.err == 0 || w.err == ZRAFT_ENOTLEADER, "%s",
              zraft_strerror(w.err));
    cl_stop(&c);
}

/* ------------------------------------------------------- counters */

typedef struct {
    size_t off; /* of a uint64_t field in zraft_metrics */
    uint64_t min;
} at_least;

static bool s_at_least(const zraft_metrics *m, void *arg)
{
    const at_least *a = arg;
    uint64_t v;
    memcpy(&v, (const char *)m + a->off, sizeof v);
    return v >= a->min;
}

/* Waits (with the cluster's deadline) until node id's counter at `off`
 * (`name`) reaches `min`: the core publishes its counters every turn. */
static void s_counter_reaches(cluster *c, zraft_id id, size_t off,
                              const char *name, uint64_t min)
{
    at_least a = {off, min};
    int rv = zraft_wait(c->nodes[id], s_at_least, &a, CL_DEADLINE_MS);
    zraft_metrics m;
    zraft_metrics_get(c->nodes[id], &m);
    uint64_t v;
    memcpy(&v, (const char *)&m + off, sizeof v);
    cr_assert_eq(rv, 0, "node %llu: %s is %llu, not >= %llu",
                 (unsigned long long)id, name, (unsigned long long)v,
                 (unsigned long long)min);
}

Test(forward, counters_count_forwarded_requests_time_outs_and_failures)
{
    cluster c;
    memset(&c, 0, sizeof c);
    c.make_fsm = make_counter;
    c.forward = true;
    c.leader_wait_ms = 300;
    c.forward_timeout_ms = 300;
    /* Long elections: once the leader is cut off, the follower still
     * takes it for the leader (and sends to it) for a second at least. */
    c.election_timeout_ms = 1000;
    cl_start(&c, 3);
    zraft_id leader = cl_leader(&c);
    zraft_id f = s_follower(&c, leader);
    zraft_metrics m;
    zraft_metrics_get(c.nodes[f], &m);
    cr_assert_eq(m.fwd_writes + m.fwd_reads + m.fwd_timeouts + m.fwd_failures,
                 0, "nothing forwarded yet");
    /* A write and a read through the follower: sent once each, served by
     * the leader. */
    one o;
    one_init(&o, f);
    cr_assert_eq(s_write(c.nodes[f], 1, 0, one_write_cb, &o), 0);
    one_wait(&o);
    cr_assert_eq(o.err, 0, "%s", zraft_strerror(o.err));
    one_init(&o, f);
    cr_assert_eq(zraft_read(c.nodes[f], one_read_cb, &o), 0);
    one_wait(&o);
    cr_assert_eq(o.err, 0, "%s", zraft_strerror(o.err));
    s_counter_reaches(&c, f, offsetof(zraft_metrics, fwd_writes), "fwd_writes",
                      1);
    s_counter_reaches(&c, f, offsetof(zraft_metrics, fwd_reads), "fwd_reads",
                      1);
    s_counter_reaches(&c, leader, offsetof(zraft_metrics, fwd_served_writes),
                      "fwd_served_writes", 1);
    s_counter_reaches(&c, leader, offsetof(zraft_metrics, fwd_served_reads),
                      "fwd_served_reads", 1);
    zraft_metrics_get(c.nodes[f], &m);
    cr_assert_eq(m.fwd_timeouts + m.fwd_failures, 0);
    zraft_metrics_get(c.nodes[leader], &m);
    cr_assert_eq(m.fwd_writes + m.fwd_reads, 0, "the leader forwards none");
    /* The leader cut off: a write sent to it gets no answer and times out
     * (a write in flight is never sent again: it may have arrived). */
    zraft_network_isolate(c.net, leader);
    one_init(&o, f);
    cr_assert_eq(s_write(c.nodes[f], 2, 0, one_write_cb, &o), 0);
    one_wait(&o);
    cr_assert_eq(o.err, ZRAFT_ETIMEDOUT, "%s", zraft_strerror(o.err));
    s_counter_reaches(&c, f, offsetof(zraft_metrics, fwd_writes), "fwd_writes",
                      2);
    s_counter_reaches(&c, f, offsetof(zraft_metrics, fwd_timeouts),
                      "fwd_timeouts", 1);
    zraft_network_heal(c.net);
    /* The follower cut off until it knows no leader: a write waits
     * leader_wait_ms and fails without being sent. */
    leader = cl_leader(&c);
    f = s_follower(&c, leader);
    zraft_metrics_get(c.nodes[f], &m);
    uint64_t failures = m.fwd_failures, sent = m.fwd_writes;
    zraft_network_isolate(c.net, f);
    uint64_t end = s_now_ms() + CL_DEADLINE_MS;
    do {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
        zraft_metrics_get(c.nodes[f], &m);
    } while (m.leader != 0 && s_now_ms() < end);
    cr_assert_eq(m.leader, 0);
    one_init(&o, f);
    cr_assert_eq(s_write(c.nodes[f], 3, 0, one_write_cb, &o), 0);
    one_wait(&o);
    cr_assert_eq(o.err, ZRAFT_ENOTLEADER, "%s", zraft_strerror(o.err));
    s_counter_reaches(&c, f, offsetof(zraft_metrics, fwd_failures),
                      "fwd_failures", failures + 1);
    zraft_metrics_get(c.nodes[f], &m);
    cr_assert_eq(m.fwd_writes, sent, "a write never sent is not forwarded");
    zraft_network_heal(c.net);
    cl_stop(&c);
}

/* A follower's connection to the leader that was idle for longer than the
 * time after which a connection without answers is replaced (two election
 * timeouts) is kept by the next burst of writes. It was replaced at the
 * burst's second frame, because its last answer was old, and the answers
 * to the first frame were lost with the old socket (under load, as
 * system_resp's 10 s stalls: the writes timed out). The leader's state
 * machine is held while the second frame goes out, so that the first is
 * certainly unanswered then. */
Test(forward, an_idle_connection_is_kept_by_the_next_burst)
{
    cluster c;
    memset(&c, 0, sizeof c);
    c.make_fsm = make_counter;
    c.forward = true;
    c.election_timeout_ms = 1000; /* replaced after 2 x 2 s unanswered */
    cl_start(&c, 3);
    zraft_id leader = cl_leader(&c);
    zraft_id f = s_follower(&c, leader);
    one o;
    one_init(&o, f);
    cr_assert_eq(s_write(c.nodes[f], 1, 0, one_write_cb, &o), 0);
    one_wait(&o);
    cr_assert_eq(o.err, 0, "%s", zraft_strerror(o.err));
    /* Idle for longer than that (the time itself is the condition). */
    uint64_t until = s_now_ms() + 4u * c.election_timeout_ms + 200;
    while (s_now_ms() < until) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    zraft_metrics m;
    zraft_metrics_get(c.nodes[leader], &m);
    uint64_t served = m.fwd_served_writes;
    atomic_store(&counters[leader].held, true);
    one a, b;
    one_init(&a, f);
    one_init(&b, f);
    cr_assert_eq(s_write(c.nodes[f], 2, 0, one_write_cb, &a), 0);
    s_counter_reaches(&c, leader, offsetof(zraft_metrics, fwd_served_writes),
                      "fwd_served_writes", served + 1);
    /* The first frame is on the leader, unanswered: the second. */
    cr_assert_eq(s_write(c.nodes[f], 3, 0, one_write_cb, &b), 0);
    s_counter_reaches(&c, f, offsetof(zraft_metrics, fwd_writes), "fwd_writes",
                      3);
    zraft_metrics_get(c.nodes[f], &m);
    atomic_store(&counters[leader].held, false);
    cr_assert_eq(m.fwd_reconnects, 0,
                 "the connection was replaced at the burst's second frame");
    one_wait(&a);
    one_wait(&b);
    cr_assert_eq(a.err, 0, "%s", zraft_strerror(a.err));
    cr_assert_eq(b.err, 0, "%s", zraft_strerror(b.err));
    zraft_metrics_get(c.nodes[f], &m);
    cr_assert_eq(m.fwd_timeouts + m.fwd_reconnects, 0);
    cl_stop(&c);
}

/* A read in flight to a leader that hands over leadership is asked again
 * of the new one: a retry. The old leader's answer is held back (the link
 * to the follower delayed) until the follower knows the new leader. */
Test(forward, a_read_asked_again_of_a_new_leader_counts_as_a_retry)
{
    cluster c;
    memset(&c, 0, sizeof c);
    c.make_fsm = make_counter;
    c.forward = true;
    c.election_timeout_ms = 1000;
    cl_start(&c, 3);
    zraft_id leader = cl_leader(&c);
    zraft_id f = s_follower(&c, leader);
    zraft_id g = 6 - leader - f; /* the third node */
    zraft_network_delay(c.net, leader, f, 3000);
    one o;
    one_init(&o, f);
    cr_assert_eq(zraft_read(c.nodes[f], one_read_cb, &o), 0);
    s_counter_reaches(&c, f, offsetof(zraft_metrics, fwd_reads), "fwd_reads",
                      1);
    cr_assert_eq(zraft_transfer_leader(c.nodes[leader], g), 0);
    one_wait(&o);
    cr_assert_eq(o.err, 0, "%s", zraft_strerror(o.err));
    zraft_metrics m;
    zraft_metrics_get(c.nodes[f], &m);
    cr_assert_eq(m.fwd_reads, 1, "a retry is not a new read");
    cr_assert_geq(m.fwd_retries, 1, "the read was asked again");
    zraft_metrics_get(c.nodes[g], &m);
    cr_assert_geq(m.fwd_served_reads, 1, "the new leader served it");
    zraft_network_heal(c.net);
    cl_stop(&c);
}

/* ------------------------------------------------ frames from a peer */

/* Sends raw frames to node `to`'s ROUTER as node `as` (a DEALER of kind
 * RPC_KIND_FWD on the in-process network), then returns the DEALER so
 * that the caller can read what comes back. */
static void *s_peer(cluster *c, zraft_id to, zraft_id as)
{
    void *s = zmq_socket(rpc_net_zctx(c->net), ZMQ_DEALER);
    unsigned char rid[9];
    rid[0] = RPC_KIND_FWD;
    for (int i = 0; i < 8; i++) {
        rid[1 + i] = (unsigned char)(as >> (8 * i));
    }
    int linger = 0;
    zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, sizeof rid);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    char ep[128];
    snprintf(ep, sizeof ep, "inproc://zraft-%p-%llu", (void *)c->net,
             (unsigned long long)to);
    cr_assert_eq(zmq_connect(s, ep), 0);
    return s;
}

Test(forward, malformed_and_unexpected_frames_are_dropped)
{
    cluster c;
    s_start(&c, true);
    zraft_id leader = cl_leader(&c);
    zraft_id f = s_follower(&c, leader);
    /* As node 7, not a member: its frames still decode (same cluster). */
    void *s = s_peer(&c, leader, 7);
    codec_ctx cx;
    codec_ctx_init(&cx, 1, 0); /* zraft_config_default: cluster 1 */
    unsigned char buf[512];
    size_t len;
    /* Garbage; a truncated forward; a reply (for a request nobody made)
     * sent to the server. */
    zmq_send(s, "garbage", 7, 0);
    codec_fwd rd = {.req_id = 1, .op = CODEC_FWD_READ};
    msg m = {.type = CODEC_MSG_FORWARD, .from = 7, .to = leader, .term = 1};
    cr_assert_eq(codec_encode_fwd(&cx, &m, &rd, 1, buf, sizeof buf, &len), 0);
    zmq_send(s, buf, len - 3, 0);
    codec_fwd rp = {.req_id = 424242, .op = CODEC_FWD_WRITE, .id = {1, 1}};
    m.type = CODEC_MSG_FORWARD_REPLY;
    cr_assert_eq(codec_encode_fwd(&cx, &m, &rp, 1, buf, sizeof buf, &len), 0);
    zmq_send(s, buf, len, 0);
    /* A well-formed read request gets its answer (the read index). */
    m.type = CODEC_MSG_FORWARD;
    rd.req_id = 77;
    cr_assert_eq(codec_encode_fwd(&cx, &m, &rd, 1, buf, sizeof buf, &len), 0);
    zmq_send(s, buf, len, 0);
    int tmo = CL_DEADLINE_MS;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    int got = zmq_recv(s, buf, sizeof buf, 0);
    cr_assert_gt(got, 0);
    codec_arena a;
    codec_arena_init(&a);
    msg out;
    cr_assert_eq(codec_decode(&cx, buf, (size_t)got, &out, &a), 0);
    cr_assert_eq(out.type, CODEC_MSG_FORWARD_REPLY);
    cr_assert_eq(a.n_fwd, 1);
    cr_assert_eq(a.fwd[0].req_id, 77);
    cr_assert_eq(a.fwd[0].err, 0);
    cr_assert_gt(a.fwd[0].id.index, 0);
    zmq_close(s);
    /* A write forwarded to a node that does not lead is refused, not
     * forwarded again (the sender retries elsewhere). */
    s = s_peer(&c, f, 7);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    uint64_t wid = 4711;
    zraft_buf *pl = zraft_buf_new(&wid, 8);
    codec_fwd wr = {.req_id = 78, .op = CODEC_FWD_WRITE, .data = pl};
    m = (msg){.type = CODEC_MSG_FORWARD, .from = 7, .to = f, .term = 1};
    cr_assert_eq(codec_encode_fwd(&cx, &m, &wr, 1, buf, sizeof buf, &len), 0);
    zraft_buf_unref(pl);
    zmq_send(s, buf, len, 0);
    got = zmq_recv(s, buf, sizeof buf, 0);
    cr_assert_gt(got, 0);
    cr_assert_eq(codec_decode(&cx, buf, (size_t)got, &out, &a), 0);
    cr_assert_eq(out.type, CODEC_MSG_FORWARD_REPLY);
    cr_assert_eq(a.n_fwd, 1);
    cr_assert_eq(a.fwd[0].req_id, 78);
    cr_assert_eq(a.fwd[0].err, ZRAFT_ENOTLEADER);
    codec_arena_fini(&a);
    zmq_close(s);
    /* The cluster works on, forwarding included. */
    one o;
    one_init(&o, f);
    cr_assert_eq(s_write(c.nodes[f], 8, 0, one_write_cb, &o), 0);
    one_wait(&o);
    cr_assert_eq(o.err, 0, "%s", zraft_strerror(o.err));
    /* The refused write was applied nowhere. */
    zraft_log_id last = cl_write_any(&c, 1ull << 62, 0);
    cl_wait_applied(&c, last.index);
    for (zraft_id id = 1; id <= 3; id++) {
        pthread_mutex_lock(&counters[id].lock);
        for (uint64_t k = 0; k < counters[id].count; k++) {
            cr_assert_neq(counters[id].wids[k], 4711);
        }
        pthread_mutex_unlock(&counters[id].lock);
    }
    cl_stop(&c);
}

/* During an upgrade from wire version 2: a node still sending version 2
 * does not forward (the frames do not exist there), but answers the
 * forwards of an upgraded node in version 3. */
Test(forward, upgrade_from_wire_version_2)
{
    cluster c;
    memset(&c, 0, sizeof c);
    c.make_fsm = make_counter;
    c.forward = true;
    c.wire_version[2] = 2;
    c.wire_version[3] = 2;
    cl_start(&c, 3);
    zraft_id leader = cl_leader(&c);
    if (leader == 1) {
        uint64_t end = s_now_ms() + CL_DEADLINE_MS;
        while ((leader = cl_leader(&c)) == 1 && s_now_ms() < end) {
            zraft_transfer_leader(c.nodes[1], 2); /* again if it was lost */
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        cr_assert_neq(leader, 1);
    }
    /* Node 1 (version 3) forwards to the version 2 leader. */
    one o;
    one_init(&o, 1);
    cr_assert_eq(s_write(c.nodes[1], 21, 0, one_write_cb, &o), 0);
    one_wait(&o);
    cr_assert_eq(o.err, 0, "%s", zraft_strerror(o.err));
    cr_assert(o.has_result);
    one_init(&o, 1);
    cr_assert_eq(zraft_read(c.nodes[1], one_read_cb, &o), 0);
    one_wait(&o);
    cr_assert_eq(o.err, 0, "%s", zraft_strerror(o.err));
    /* The other version 2 node does not forward. */
    zraft_id old = leader == 2 ? 3 : 2;
    one_init(&o, old);
    cr_assert_eq(s_write(c.nodes[old], 22, 0, one_write_cb, &o), 0);
    one_wait(&o);
    zraft_metrics m;
    zraft_metrics_get(c.nodes[old], &m);
    if (m.role_code != 3) { /* (unless it has become the leader since) */
        cr_assert_eq(o.err, ZRAFT_ENOTLEADER, "%s", zraft_strerror(o.err));
    }
    cl_stop(&c);
}

/* --------------------------------------------------------- shutdown */

/* Destroys the nodes, in an order that varies by round, while a
 * follower's clients keep writing and reading through it: every accepted
 * call is answered exactly once. */
Test(forward, destroy_with_forwards_pending, .timeout = 300)
{
    for (unsigned round = 0; round < 6; round++) {
        s_setup();
        cluster c;
        s_start(&c, true);
        zraft_id leader = cl_leader(&c);
        zraft_id f = s_follower(&c, leader);
        load *l = calloc(1, sizeof *l);
        pthread_mutex_init(&l->lock, NULL);
        l->node = c.nodes[f];
        for (int i = 0; i < CLIENTS; i++) {
            l_write(l);
        }
        for (int i = 0; i < 4; i++) {
            l_read(l);
        }
        l_wait_ok(l, 200);
        zraft_id order[3];
        zraft_id other = 6 - leader - f;
        switch (round % 3) {
        case 0: /* the leader first: forwards in flight lose their answer */
            order[0] = leader, order[1] = f, order[2] = other;
            break;
        case 1: /* the follower first: its forwards are pending */
            order[0] = f, order[1] = leader, order[2] = other;
            break;
        default:
            order[0] = other, order[1] = f, order[2] = leader;
            break;
        }
        for (int k = 0; k < 3; k++) {
            cl_stop_node(&c, order[k]);
        }
        cr_assert_eq(atomic_load(&l->answered), atomic_load(&l->issued),
                     "round %u: %u answers for %u writes", round,
                     atomic_load(&l->answered), atomic_load(&l->issued));
        cr_assert_eq(atomic_load(&l->reads_answered),
                     atomic_load(&l->reads_issued));
        cl_stop(&c);
        free(l->ok_wids);
        free(l);
    }
}
