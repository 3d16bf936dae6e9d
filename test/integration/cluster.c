/* cluster.c - the in-process test cluster (see cluster.h). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "zraft_disk.h"

static int r_apply(void *ctx, const zraft_entry *e, zraft_buf **result)
{
    recorder *r = ctx;
    int fail = atomic_load(&r->fail_apply);
    if (fail != 0) {
        return fail;
    }
    uint64_t wid = 0;
    if (e->payload && e->payload->len >= 8) {
        memcpy(&wid, e->payload->data, 8);
    }
    pthread_mutex_lock(&r->lock);
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->ids = realloc(r->ids, r->cap * sizeof(uint64_t));
    }
    r->ids[r->n++] = wid;
    r->hash = (r->hash ^ wid) * 0x100000001b3ull;
    pthread_mutex_unlock(&r->lock);
    *result = NULL;
    return 0;
}

static int r_snapshot(void *ctx, zraft_buf **out)
{
    recorder *r = ctx;
    pthread_mutex_lock(&r->lock);
    zraft_buf *b = zraft_buf_new(NULL, 16 + r->n * 8);
    memcpy(b->data, &r->n, 8);
    memcpy(b->data + 8, &r->hash, 8);
    memcpy(b->data + 16, r->ids, r->n * 8);
    pthread_mutex_unlock(&r->lock);
    *out = b;
    return 0;
}

static int r_restore(void *ctx, const zraft_buf *data)
{
    recorder *r = ctx;
    uint64_t n;
    if (data->len < 16) {
        return ZRAFT_ECORRUPT;
    }
    memcpy(&n, data->data, 8);
    if (data->len != 16 + n * 8) {
        return ZRAFT_ECORRUPT;
    }
    pthread_mutex_lock(&r->lock);
    free(r->ids);
    r->cap = n > 1024 ? n : 1024;
    r->ids = malloc(r->cap * 8);
    memcpy(r->ids, data->data + 16, n * 8);
    r->n = n;
    memcpy(&r->hash, data->data + 8, 8);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static void r_destroy(void *ctx)
{
    (void)ctx; /* recorders live as long as the cluster */
}

/* A storage that fails its writes on demand (cluster.storage_fail). */
typedef struct {
    zraft_storage *in;
    _Atomic int *fail;
    _Atomic int *save_delay_ms;
} faulty;

static int f_load(void *ctx, zraft_storage_state *out)
{
    faulty *f = ctx;
    return f->in->load(f->in->ctx, out);
}

static int f_save_state(void *ctx, uint64_t term, zraft_id vote, uint64_t ci)
{
    faulty *f = ctx;
    int e = atomic_load(f->fail);
    return e ? e : f->in->save_state(f->in->ctx, term, vote, ci);
}

static int f_append(void *ctx, const zraft_entry *ents, size_t n)
{
    faulty *f = ctx;
    int e = atomic_load(f->fail);
    return e ? e : f->in->append(f->in->ctx, ents, n);
}

static int f_sync(void *ctx)
{
    faulty *f = ctx;
    int e = atomic_load(f->fail);
    return e ? e : f->in->sync(f->in->ctx);
}

static int f_truncate(void *ctx, uint64_t since)
{
    faulty *f = ctx;
    int e = atomic_load(f->fail);
    return e ? e : f->in->truncate(f->in->ctx, since);
}

static int f_purge(void *ctx, uint64_t upto)
{
    faulty *f = ctx;
    return f->in->purge(f->in->ctx, upto);
}

static int f_get(void *ctx, uint64_t from, uint64_t to, size_t max_bytes,
                 zraft_entry *out, size_t *n)
{
    faulty *f = ctx;
    return f->in->get(f->in->ctx, from, to, max_bytes, out, n);
}

static int f_snapshot_save(void *ctx, const zraft_snapshot_meta *meta,
                           zraft_buf *data)
{
    faulty *f = ctx;
    int e = atomic_load(f->fail);
    int ms = atomic_load(f->save_delay_ms);
    if (ms > 0) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return e ? e : f->in->snapshot_save(f->in->ctx, meta, data);
}

static int f_snapshot_load(void *ctx, zraft_snapshot_meta *meta,
                           zraft_buf **data)
{
    faulty *f = ctx;
    return f->in->snapshot_load(f->in->ctx, meta, data);
}

static int f_reset(void *ctx, zraft_log_id last)
{
    faulty *f = ctx;
    int e = atomic_load(f->fail);
    return e ? e : f->in->reset(f->in->ctx, last);
}

static void f_destroy(void *ctx)
{
    faulty *f = ctx;
    zraft_storage_free(f->in);
    free(f);
}

static zraft_storage *s_faulty(zraft_storage *in, _Atomic int *fail,
                               _Atomic int *save_delay_ms)
{
    faulty *f = calloc(1, sizeof(*f));
    zraft_storage *s = calloc(1, sizeof(*s));
    cr_assert(f != NULL && s != NULL);
    f->in = in;
    f->fail = fail;
    f->save_delay_ms = save_delay_ms;
    /* The memory store's writes run on the core thread (snapshot saves,
     * which the tests delay, stay on the log writer). */
    *s = (zraft_storage){f,
                         f_load,
                         f_save_state,
                         f_append,
                         f_sync,
                         f_truncate,
                         f_purge,
                         f_get,
                         f_snapshot_save,
                         f_snapshot_load,
                         f_reset,
                         f_destroy,
                         in->inline_writes};
    return s;
}

/* A port for a node of a TCP cluster: from a block of 500 in 10000..29999
 * that this process holds, the blocks test/lib/ports.sh hands out (a lock
 * file per block, held until the process exits). Below the kernel's
 * ephemeral ports (32768 and up): the nodes reconnect to a stopped node's
 * port all the while it is down, and an outgoing connection must never
 * take that port as its own. */
static unsigned s_free_port(void)
{
    static unsigned base, next;
    if (base == 0) {
        unsigned start = (unsigned)getpid() % 40;
        for (unsigned i = 0; i < 40 && base == 0; i++) {
            unsigned slot = (start + i) % 40;
            char path[64];
            snprintf(path, sizeof path, "/tmp/zraft-test-ports-%u.lock", slot);
            int fd = open(path, O_CREAT | O_RDWR, 0666);
            if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
                base = 10000 + slot * 500; /* fd kept: the lock stays */
            } else if (fd >= 0) {
                close(fd);
            }
        }
        cr_assert_neq(base, 0u, "all 40 port blocks are held by other tests");
    }
    cr_assert_lt(next, 500u, "this test used its 500 ports");
    return base + next++;
}

void cl_start_node(cluster *c, zraft_id id)
{
    if (c->rec[id] == NULL) {
        c->rec[id] = calloc(1, sizeof(recorder));
        pthread_mutex_init(&c->rec[id]->lock, NULL);
    } else {
        recorder *r = c->rec[id];
        pthread_mutex_lock(&r->lock);
        r->n = 0;
        r->hash = 0;
        pthread_mutex_unlock(&r->lock);
    }
    zraft_config cfg;
    zraft_config_default(&cfg, id);
    cfg.network = c->net;
    if (c->tcp) {
        snprintf(cfg.listen_addr, sizeof cfg.listen_addr, "%s", c->addr[id]);
    }
    cfg.seed = id * 7919;
    /* Generous timeouts: the tests run on 2 loaded cores. */
    uint32_t et = c->election_timeout_ms ? c->election_timeout_ms : 300;
    cfg.election_timeout_min_ms = et;
    cfg.election_timeout_max_ms = 2 * et;
    cfg.heartbeat_interval_ms = c->heartbeat_ms ? c->heartbeat_ms : 50;
    cfg.snapshot_threshold = c->snapshot_threshold;
    cfg.forward = c->forward;
    cfg.leader_wait_ms = c->leader_wait_ms;
    cfg.forward_timeout_ms = c->forward_timeout_ms;
    cfg.wire_version = c->wire_version[id];
    if (c->snapshot_keep) {
        cfg.snapshot_keep_entries = c->snapshot_keep;
    }
    zraft_fsm *f = calloc(1, sizeof(*f));
    f->ctx = c->rec[id];
    f->apply = r_apply;
    f->snapshot = r_snapshot;
    f->restore = r_restore;
    f->destroy = r_destroy;
    if (c->make_fsm != NULL) {
        c->make_fsm(c->fsm_arg, id, f);
    }
    zraft_storage *st;
    char scratch[256];
    if (c->disk_dir != NULL) {
        /* Every stop is a power cut: unsynced bytes are dropped. */
        char path[256], why[256];
        snprintf(path, sizeof path, "%s/node-%llu", c->disk_dir,
                 (unsigned long long)id);
        zraft_disk_options o;
        zraft_disk_options_default(&o);
        o.segment_bytes = 64 * 1024;
        o.crash_on_destroy = true;
        int err;
        st = zraft_storage_disk_new(path, &o, &err, why, sizeof why);
        cr_assert_not_null(st, "disk: %s", why);
        /* Snapshots being received are written next to the store. */
        snprintf(scratch, sizeof scratch, "%s", path);
        cfg.scratch_dir = scratch;
    } else {
        st = zraft_storage_memory_new();
    }
    atomic_store(&c->storage_fail[id], 0);
    atomic_store(&c->rec[id]->fail_apply, 0);
    st = s_faulty(st, &c->storage_fail[id], &c->save_delay_ms[id]);
    int rv = zraft_node_new(&cfg, st, f, &c->nodes[id]);
    cr_assert_eq(rv, 0, "node %llu: %s", (unsigned long long)id,
                 zraft_strerror(rv));
    free(f); /* the node keeps its own copy of the interface */
}

void cl_start(cluster *c, uint32_t n)
{
    uint64_t th = c->snapshot_threshold, keep = c->snapshot_keep;
    uint32_t et = c->election_timeout_ms, hb = c->heartbeat_ms;
    const char *dd = c->disk_dir;
    void (*mf)(void *, zraft_id, zraft_fsm *) = c->make_fsm;
    void *fa = c->fsm_arg;
    bool fwd = c->forward;
    uint32_t lw = c->leader_wait_ms, ft = c->forward_timeout_ms;
    uint8_t wv[CL_MAX + 1];
    memcpy(wv, c->wire_version, sizeof wv);
    bool tcp = c->tcp;
    memset(c, 0, sizeof(*c));
    memcpy(c->wire_version, wv, sizeof wv);
    c->tcp = tcp;
    c->snapshot_threshold = th;
    c->snapshot_keep = keep;
    c->election_timeout_ms = et;
    c->heartbeat_ms = hb;
    c->disk_dir = dd;
    c->make_fsm = mf;
    c->fsm_arg = fa;
    c->forward = fwd;
    c->leader_wait_ms = lw;
    c->forward_timeout_ms = ft;
    c->net = tcp ? NULL : zraft_network_new();
    c->n = n;
    zraft_member ms[CL_MAX];
    memset(ms, 0, sizeof ms);
    for (uint32_t i = 0; i < n; i++) {
        ms[i].id = i + 1;
        ms[i].roles = ZRAFT_ROLE_VOTER;
        if (tcp) {
            snprintf(c->addr[i + 1], sizeof c->addr[i + 1], "127.0.0.1:%u",
                     s_free_port());
            snprintf(ms[i].addr, sizeof ms[i].addr, "%s", c->addr[i + 1]);
        }
    }
    for (uint32_t i = 1; i <= n; i++) {
        cl_start_node(c, i);
    }
    for (uint32_t i = 1; i <= n; i++) {
        cr_assert_eq(zraft_initialize(c->nodes[i], ms, n), 0);
    }
}

void cl_stop_node(cluster *c, zraft_id id)
{
    zraft_node_destroy(&c->nodes[id]);
}

void cl_stop(cluster *c)
{
    for (uint32_t i = 1; i <= CL_MAX; i++) {
        if (c->nodes[i]) {
            zraft_node_destroy(&c->nodes[i]);
        }
    }
    zraft_network_destroy(&c->net);
    for (uint32_t i = 1; i <= CL_MAX; i++) {
        if (c->rec[i]) {
            free(c->rec[i]->ids);
            pthread_mutex_destroy(&c->rec[i]->lock);
            free(c->rec[i]);
        }
    }
}

static bool p_leader_known(const zraft_metrics *m, void *arg)
{
    (void)arg;
    return m->leader != 0;
}

/* A node removed from the configuration (in its own view) follows no
 * leader any more. */
bool cl_is_member(cluster *c, zraft_id id)
{
    zraft_metrics m;
    zraft_metrics_get(c->nodes[id], &m);
    if (m.membership.n == 0) {
        return true;
    }
    for (uint32_t i = 0; i < m.membership.n; i++) {
        if (m.membership.members[i].id == id) {
            return true;
        }
    }
    return false;
}

static bool p_changed(const zraft_metrics *m, void *arg)
{
    const zraft_metrics *was = arg;
    return m->term != was->term || m->leader != was->leader ||
           m->role_code != was->role_code;
}

zraft_id cl_leader_except(cluster *c, zraft_id skip)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        zraft_id seen = 0;
        bool agree = true;
        for (uint32_t i = 1; i <= CL_MAX; i++) {
            if (c->nodes[i] == NULL || i == skip || !cl_is_member(c, i)) {
                continue;
            }
            cr_assert_eq(
                zraft_wait(c->nodes[i], p_leader_known, NULL, CL_DEADLINE_MS),
                0, "node %u knows no leader", i);
            zraft_metrics m;
            zraft_metrics_get(c->nodes[i], &m);
            if (seen == 0) {
                seen = m.leader;
            } else if (m.leader != seen) {
                agree = false;
            }
        }
        if (agree && seen != 0 && seen != skip && seen <= CL_MAX &&
            c->nodes[seen] != NULL) {
            zraft_metrics m;
            zraft_metrics_get(c->nodes[seen], &m);
            if (m.role_code == 3) {
                return seen;
            }
        }
        /* Not settled yet: wait for the next role/term/leader change of
         * some running node (bounded; the loop re-checks). */
        for (uint32_t i = 1; i <= CL_MAX; i++) {
            if (c->nodes[i] != NULL && i != skip) {
                zraft_metrics m;
                zraft_metrics_get(c->nodes[i], &m);
                zraft_metrics was = m;
                zraft_wait(c->nodes[i], p_changed, &was, 500);
                break;
            }
        }
    }
    cr_assert_fail("no agreed leader");
    return 0;
}

zraft_id cl_leader(cluster *c)
{
    return cl_leader_except(c, 0);
}

typedef struct {
    uint64_t index;
} applied_arg;

static bool p_applied(const zraft_metrics *m, void *arg)
{
    return m->last_applied >= ((applied_arg *)arg)->index;
}

void cl_wait_applied(cluster *c, uint64_t index)
{
    cl_wait_applied_except(c, index, 0);
}

void cl_wait_applied_except(cluster *c, uint64_t index, zraft_id skip)
{
    applied_arg a = {index};
    for (uint32_t i = 1; i <= CL_MAX; i++) {
        if (c->nodes[i] != NULL && i != skip) {
            int rv = zraft_wait(c->nodes[i], p_applied, &a, CL_DEADLINE_MS);
            cr_assert_eq(rv, 0, "node %u did not apply %llu", i,
                         (unsigned long long)index);
        }
    }
}

int cl_write(cluster *c, zraft_id via, uint64_t wid, zraft_log_id *id)
{
    unsigned char p[16];
    memcpy(p, &wid, 8);
    memset(p + 8, 0xab, 8);
    return zraft_write_sync(c->nodes[via], p, sizeof p, CL_DEADLINE_MS, id);
}

uint64_t cl_applied(cluster *c, zraft_id id, uint64_t **ids)
{
    recorder *r = c->rec[id];
    pthread_mutex_lock(&r->lock);
    uint64_t n = r->n;
    *ids = malloc((n ? n : 1) * 8);
    if (n > 0) {
        memcpy(*ids, r->ids, n * 8);
    }
    pthread_mutex_unlock(&r->lock);
    return n;
}

void cl_assert_same(cluster *c)
{
    uint64_t *ref = NULL, nref = 0;
    zraft_id first = 0;
    for (uint32_t i = 1; i <= CL_MAX; i++) {
        if (c->nodes[i] == NULL) {
            continue;
        }
        uint64_t *ids;
        uint64_t n = cl_applied(c, i, &ids);
        if (first == 0) {
            first = i;
            ref = ids;
            nref = n;
            continue;
        }
        /* Applied prefixes must agree; lengths agree once caught up. */
        uint64_t m = n < nref ? n : nref;
        for (uint64_t k = 0; k < m; k++) {
            cr_assert_eq(ids[k], ref[k],
                         "node %u and node %llu differ at position %llu", i,
                         (unsigned long long)first, (unsigned long long)k);
        }
        cr_assert_eq(n, nref, "node %u applied %llu entries, node %llu %llu", i,
                     (unsigned long long)n, (unsigned long long)first,
                     (unsigned long long)nref);
        free(ids);
    }
    free(ref);
}

zraft_log_id cl_write_any(cluster *c, uint64_t wid, zraft_id skip)
{
    zraft_log_id id = {0, 0};
    for (int attempt = 0; attempt < 200; attempt++) {
        zraft_id probe = 0;
        for (uint32_t i = 1; i <= CL_MAX; i++) {
            if (c->nodes[i] == NULL || i == skip) {
                continue;
            }
            probe = probe ? probe : i;
            zraft_metrics m;
            zraft_metrics_get(c->nodes[i], &m);
            if (m.role_code != 3) {
                continue;
            }
            int rv = cl_write(c, i, wid, &id);
            if (rv == 0) {
                return id;
            }
            /* ETRANSFER: a leader handing over (it may not know yet that
             * its target won). */
            cr_assert(rv == ZRAFT_ENOTLEADER || rv == ZRAFT_ELEADERSHIP_LOST ||
                          rv == ZRAFT_ETIMEDOUT || rv == ZRAFT_ETRANSFER,
                      "write %llu: %s", (unsigned long long)wid,
                      zraft_strerror(rv));
        }
        cr_assert_neq(probe, 0, "no running node");
        /* No leader took it: wait for a role change somewhere. */
        zraft_metrics was;
        zraft_metrics_get(c->nodes[probe], &was);
        zraft_wait(c->nodes[probe], p_changed, &was, 500);
    }
    cr_assert_fail("write %llu never succeeded", (unsigned long long)wid);
    return id;
}

bool cl_leads_after(const zraft_metrics *m, void *arg)
{
    cl_leads_arg *x = arg;
    if (m->role_code == 3 && m->term > x->after) {
        x->won = m->term;
        return true;
    }
    return false;
}
