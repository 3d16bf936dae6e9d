/* sim.c - the deterministic cluster simulator (see sim.h, docs/simulator.md).
 *
 * The driver plays the runtime's part for every node, following engine.h to
 * the letter:
 *  - storage: a durable part (term, vote, log, snapshot) and a queue of
 *    pending ops (SAVE_VOTE, APPEND, TRUNCATE, PURGE, INSTALL_SNAPSHOT) with
 *    their io_seq. The "visible" log is durable + pending ops applied (what
 *    the node has written); a flush makes a prefix of the queue durable and
 *    reports engine_io_flushed(); a crash keeps only the durable part.
 *  - an outbox: every command goes through it in order; a command waits
 *    while its wait_io is not flushed, or while an earlier command with the
 *    same key (peer, storage, state machine, reads) waits.
 *  - a network of copied messages with delays, drops, duplicates, reordering
 *    and partitions; payloads travel as buffer references.
 *  - a state machine per node that keeps a rolling hash of what it applied.
 *
 * The checker keeps a global "truth": what each index was committed as, the
 * leader of each term, the (index, term) -> entry map of every entry ever
 * written, the state machine hash after each index, the config at each
 * committed index. Invariants are checked at the event that could break
 * them, so a failure names the step and event where it happened.
 *
 * Allocation failures abort: this is a test tool. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "sim.h"

#define MAX_NODES  10 /* 7 voters + up to 3 spares */
#define MAX_VOTERS 7
#define MIN_VOTERS 3
/* Outbox ordering keys: peers by id (1..MAX_NODES), then these. */
#define KEY_IO   (MAX_NODES + 1)
#define KEY_SM   (MAX_NODES + 2)
#define KEY_READ (MAX_NODES + 3)
#define KEY_META (MAX_NODES + 4)

#define LIVENESS_MS      30000 /* virtual time allowed to converge */
#define RESUBMIT_MS      1500  /* resubmit the final write after this */
#define FULL_CHECK_EVERY 128   /* steps between full sweeps */

/* ------------------------------------------------------------- helpers */

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        fputs("zraft-sim: out of memory\n", stderr);
        abort();
    }
    return q;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *q = calloc(n ? n : 1, sz);
    if (q == NULL) {
        fputs("zraft-sim: out of memory\n", stderr);
        abort();
    }
    return q;
}

/* Ensures arr has room for `need` elements. */
#define GROW(arr, cap, need)                                                   \
    do {                                                                       \
        if ((size_t)(need) > (cap)) {                                          \
            size_t nc_ = (cap) ? (cap)*2 : 16;                                 \
            while (nc_ < (size_t)(need)) {                                     \
                nc_ *= 2;                                                      \
            }                                                                  \
            (arr) = xrealloc((arr), nc_ * sizeof(*(arr)));                     \
            (cap) = nc_;                                                       \
        }                                                                      \
    } while (0)

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 0x100000001b3ULL;
    }
    return h;
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

/* ---------------------------------------------------------------- PRNG */

/* xoshiro256** seeded through splitmix64. */
typedef struct {
    uint64_t s[4];
} rng;

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        seed += 0x9e3779b97f4a7c15ULL;
        r->s[i] = mix64(seed);
    }
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static uint64_t rng_below(rng *r, uint64_t n)
{
    return n ? rng_next(r) % n : 0;
}

/* Inclusive range. */
static uint64_t rng_range(rng *r, uint64_t lo, uint64_t hi)
{
    return lo + rng_below(r, hi - lo + 1);
}

/* True with probability pm/1000. */
static bool rng_pm(rng *r, uint32_t pm)
{
    return rng_below(r, 1000) < pm;
}

/* ------------------------------------------------------- log + snapshot */

/* A log with the snapshot it follows. Entries hold payload references. */
typedef struct {
    zraft_entry *e;
    size_t n, cap;
    uint64_t start; /* index of e[0]; the next index when empty (>= 1) */
    bool has_snap;
    snapshot_meta *snap; /* owned copy when has_snap */
    zraft_buf *snap_data;
} slog;

static void slog_init(slog *l)
{
    memset(l, 0, sizeof(*l));
    l->start = 1;
}

static uint64_t slog_last_index(const slog *l)
{
    return l->start + l->n - 1;
}

static const zraft_entry *slog_get(const slog *l, uint64_t i)
{
    if (i >= l->start && i < l->start + l->n) {
        return &l->e[i - l->start];
    }
    return NULL;
}

static uint64_t slog_snap_index(const slog *l)
{
    return l->has_snap ? l->snap->last_log_id.index : 0;
}

/* Term at index i: false if unknown (purged without a snapshot there). */
static bool slog_term_at(const slog *l, uint64_t i, uint64_t *term)
{
    const zraft_entry *en = slog_get(l, i);
    if (i == 0) {
        *term = 0;
        return true;
    }
    if (en != NULL) {
        *term = en->id.term;
        return true;
    }
    if (l->has_snap && l->snap->last_log_id.index == i) {
        *term = l->snap->last_log_id.term;
        return true;
    }
    return false;
}

static zraft_log_id slog_last_id(const slog *l)
{
    zraft_log_id id = {0, slog_last_index(l)};
    if (l->n > 0) {
        return l->e[l->n - 1].id;
    }
    (void)slog_term_at(l, id.index, &id.term);
    return id;
}

static void slog_push(slog *l, const zraft_entry *en)
{
    GROW(l->e, l->cap, l->n + 1);
    l->e[l->n] = *en;
    l->e[l->n].payload = zraft_buf_ref(en->payload);
    if (l->n == 0) {
        l->start = en->id.index;
    }
    l->n++;
}

/* Deletes entries with index >= since. */
static void slog_truncate(slog *l, uint64_t since)
{
    while (l->n > 0 && l->e[l->n - 1].id.index >= since) {
        zraft_buf_unref(l->e[l->n - 1].payload);
        l->n--;
    }
    if (l->n == 0 && since < l->start) {
        l->start = since > 0 ? since : 1;
    }
    /* An emptied log continues after its snapshot (engine_start drops a
     * tail that stops short of it). */
    if (l->n == 0 && l->has_snap && l->start <= l->snap->last_log_id.index) {
        l->start = l->snap->last_log_id.index + 1;
    }
}

/* Deletes entries with index <= upto. */
static void slog_purge(slog *l, uint64_t upto)
{
    if (upto < l->start) {
        return;
    }
    size_t k = upto - l->start + 1;
    if (k > l->n) {
        k = l->n;
    }
    for (size_t i = 0; i < k; i++) {
        zraft_buf_unref(l->e[i].payload);
    }
    memmove(l->e, l->e + k, (l->n - k) * sizeof(*l->e));
    l->n -= k;
    l->start = l->n > 0 ? l->e[0].id.index : upto + 1;
}

static void slog_set_snap(slog *l, const snapshot_meta *m, zraft_buf *data)
{
    if (l->snap == NULL) {
        l->snap = xcalloc(1, sizeof(*l->snap));
    }
    *l->snap = *m;
    zraft_buf_ref(data);
    zraft_buf_unref(l->snap_data);
    l->snap_data = data;
    l->has_snap = true;
}

/* Replaces the whole log by a snapshot (an installed one, §7). */
static void slog_reset(slog *l, const snapshot_meta *m, zraft_buf *data)
{
    slog_truncate(l, 0);
    slog_set_snap(l, m, data);
    l->start = m->last_log_id.index + 1;
}

static void slog_free(slog *l)
{
    slog_truncate(l, 0);
    free(l->e);
    free(l->snap);
    zraft_buf_unref(l->snap_data);
    slog_init(l);
}

static void slog_copy(slog *dst, const slog *src)
{
    slog_free(dst);
    for (size_t i = 0; i < src->n; i++) {
        slog_push(dst, &src->e[i]);
    }
    dst->start = src->start;
    if (src->has_snap) {
        slog_set_snap(dst, src->snap, src->snap_data);
    }
}

/* ------------------------------------------------------ state machine */

/* The replicated state machine: what it applied, as a rolling hash. Its
 * snapshot is this struct serialized (SM_SNAP_LEN bytes) plus the config in
 * the snapshot's meta. */
typedef struct {
    uint64_t applied;
    uint64_t term;   /* term of the entry at `applied` */
    uint64_t hash;   /* rolling hash of every (index, term, entry) applied */
    uint64_t writes; /* client entries applied */
    zraft_membership mem; /* config of the last applied membership entry */
} smstate;

#define SM_SNAP_LEN 32

static uint64_t sm_step(uint64_t hash, uint64_t index, uint64_t term,
                        uint64_t ident)
{
    return mix64(hash ^ mix64(index * 0x9e3779b97f4a7c15ULL ^
                              mix64(term + 0x632be59bd9b4e019ULL) ^ ident));
}

/* ---------------------------------------------------------------- nodes */

/* A storage op waiting to become durable. */
typedef struct {
    uint8_t type; /* cmd_type */
    uint64_t seq;
    uint64_t term; /* SAVE_VOTE */
    zraft_id vote;
    zraft_entry *ents; /* APPEND: owned array, payload refs */
    uint32_t n;
    uint64_t since;      /* TRUNCATE */
    zraft_log_id upto;   /* PURGE */
    snapshot_meta *meta; /* INSTALL_SNAPSHOT: owned */
    zraft_buf *data;     /* INSTALL_SNAPSHOT: ref */
} op;

/* A command in the outbox, with its borrowed parts copied. */
typedef struct {
    command c;
    bool held;           /* not run in the batch that produced it */
    zraft_entry *ents;   /* APPEND: owned copy, payload refs */
    snapshot_meta *meta; /* INSTALL_SNAPSHOT: owned copy */
    zraft_buf *data;     /* INSTALL_SNAPSHOT: ref */
} ocmd;

/* An event for the engine found while running commands: run after the
 * batch (an engine call while its command list is read would invalidate
 * it). */
enum { IEV_APPLIED = 1, IEV_SNAP_BUILT, IEV_UNREACHABLE };
typedef struct {
    int type;
    uint64_t index;      /* APPLIED */
    zraft_id to;         /* UNREACHABLE */
    int err;             /* UNREACHABLE, SNAP_BUILT */
    snapshot_meta *meta; /* SNAP_BUILT: owned */
} iev;

typedef struct {
    zraft_id id;
    bool up;   /* an engine is running */
    bool shut; /* stopped for good (liveness phase: not a member) */
    engine *e;
    uint32_t incarnation;
    /* storage */
    uint64_t d_term; /* durable vote */
    zraft_id d_vote;
    slog dur;        /* durable log + snapshot */
    slog vis;        /* durable + pending ops applied */
    uint64_t v_term; /* latest SAVE_VOTE issued (durable or pending) */
    zraft_id v_vote;
    op *ops; /* pending, in io_seq order */
    size_t nops, capops;
    uint64_t last_seq; /* last io_seq run (queued) by this incarnation */
    uint64_t issued;   /* highest io_seq the engine emitted */
    uint64_t flushed;  /* last io_seq reported flushed */
    /* runtime */
    ocmd *out;
    size_t nout, capout;
    iev *in;
    size_t nin, capin;
    bool in_running;
    smstate sm;
    uint64_t apply_due; /* applied index not yet reported (async) */
    bool build_pending; /* async snapshot build under way */
    smstate build;      /* what it captured */
    /* what the checker saw last (this incarnation) */
    uint64_t commit;
    uint8_t role;
    uint64_t term;
    uint64_t leader_term_checked; /* term whose leadership was verified */
} node;

/* ------------------------------------------------------------- network */

typedef struct {
    uint64_t due;
    msg m;
    zraft_entry *ents;   /* APPEND: owned, payload refs */
    snapshot_meta *meta; /* SNAPSHOT: owned */
    zraft_buf *data;     /* SNAPSHOT: ref */
} netmsg;

/* ---------------------------------------------------------------- truth */

typedef struct {
    bool set;
    bool hash_set;
    uint8_t type;
    uint64_t term;
    uint64_t ident;
    uint64_t ub;   /* an upper bound of the term it was committed in */
    uint64_t hash; /* state machine hash after applying it */
} truth_ent;

typedef struct {
    uint64_t index;
    uint32_t nv;
    zraft_id voters[ZRAFT_MAX_MEMBERS];
    uint64_t members; /* bit i: node i is in the config (any role) */
} memhist_ent;

typedef struct {
    bool used;
    uint64_t index, term, ident, prev_term;
    zraft_id first_node;
} lm_ent;

typedef struct {
    zraft_id node;
    uint64_t required; /* highest index committed when it was issued */
    bool done;
} read_req;

/* ------------------------------------------------------------------ sim */

/* A fault or repair the sim scheduled for a later time. */
enum { SF_CRASH = 1, SF_RESTART, SF_ISOLATE, SF_REJOIN };
typedef struct {
    uint64_t at;
    int type;
    zraft_id id;
} sched_fault;

typedef struct {
    sim_options o;
    FILE *out;
    rng r;
    rng check_rng; /* checks draw from their own stream */
    uint64_t now;
    uint64_t step;
    bool liveness;
    int nn;      /* nodes 1..nn */
    int nvoters; /* initial voters */
    node nodes[MAX_NODES + 1];
    engine_config cfg;
    zraft_membership boot; /* the initial voters (engine_initialize) */
    /* driver profile (per seed) */
    bool strict_order; /* outbox: one FIFO instead of one per key */
    uint32_t flush_pm; /* chance a node flushes on a time step */
    uint32_t apply_async_pm;
    uint32_t build_async_pm;
    uint32_t drop_pm, dup_pm, long_delay_pm;
    uint32_t delay_min, delay_max;
    uint32_t fault_pm;  /* scales crashes / partitions */
    uint32_t react_pm;  /* faults that hit a new or committing leader */
    sched_fault *sched; /* faults and repairs due at a given time */
    size_t nsched, capsched;
    bool cut[MAX_NODES + 1][MAX_NODES + 1]; /* cut[a][b]: a -> b lost */
    netmsg **net;
    size_t nnet, capnet;
    /* truth */
    truth_ent *truth;
    size_t truth_cap;
    uint64_t truth_max;
    uint64_t contig; /* truth[1..contig] all set */
    uint64_t max_commit;
    memhist_ent *mh;
    size_t nmh, capmh;
    lm_ent *lm;
    size_t lm_cap, lm_n;
    zraft_id *leaders; /* by term */
    size_t leaders_cap;
    read_req *reads; /* by req_id */
    size_t reads_cap;
    uint64_t next_read;
    uint64_t *write_index; /* client write counter -> applied index */
    size_t writes_cap;
    uint64_t next_write;
    uint64_t final_write; /* liveness: the write that must commit */
    uint64_t final_write_at;
    /* outcome */
    bool failed;
    uint64_t fail_step;
    char what[512];
    sim_stats st;
} sim;

static node *N(sim *s, zraft_id id)
{
    return (id >= 1 && id <= (zraft_id)s->nn) ? &s->nodes[id] : NULL;
}

static void schedule(sim *s, uint64_t delay, int type, zraft_id id)
{
    if (s->liveness) {
        return;
    }
    GROW(s->sched, s->capsched, s->nsched + 1);
    s->sched[s->nsched++] = (sched_fault){s->now + delay, type, id};
}

/* Reactive faults: a node that just became leader, or just committed,
 * crashes or is cut off a few ms later. This makes the interleavings of
 * Figure 8 (§5.4.2) common instead of rare. */
static void maybe_react(sim *s, zraft_id id, uint32_t pm, uint64_t within)
{
    if (s->liveness || !rng_pm(&s->r, pm)) {
        return;
    }
    /* Two draws: sequence them, so that every compiler replays a seed the
     * same way (argument evaluation order is unspecified). */
    uint64_t delay = rng_below(&s->r, within + 1);
    int kind = rng_pm(&s->r, 500) ? SF_CRASH : SF_ISOLATE;
    schedule(s, delay, kind, id);
}

static void tr(sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tr(sim *s, const char *fmt, ...)
{
    if (!s->o.verbose) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(s->out, "[%6" PRIu64 " t=%7" PRIu64 "] ", s->step, s->now);
    vfprintf(s->out, fmt, ap);
    fputc('\n', s->out);
    va_end(ap);
}

static void fail(sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(sim *s, const char *fmt, ...)
{
    if (s->failed) {
        return;
    }
    s->failed = true;
    s->fail_step = s->step;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->what, sizeof(s->what), fmt, ap);
    va_end(ap);
    if (s->o.verbose) {
        fprintf(s->out, "*** INVARIANT FAILED at step %" PRIu64 ": %s\n",
                s->step, s->what);
    }
}

static uint64_t ent_ident(const zraft_entry *e)
{
    uint8_t t = e->type;
    uint64_t h = fnv(0xcbf29ce484222325ULL, &t, 1);
    if (e->payload != NULL) {
        h = fnv(h, e->payload->data, e->payload->len);
    }
    return h | 1;
}

/* The client write counter carried by a NORMAL entry (0: none). */
static uint64_t ent_write(const sim *s, const zraft_entry *e)
{
    if (e->type != ZRAFT_ENTRY_NORMAL || e->payload == NULL ||
        e->payload->len < 16 || get64(e->payload->data) != s->o.seed) {
        return 0;
    }
    return get64(e->payload->data + 8);
}

static const char *ent_desc(const sim *s, const zraft_entry *e, char *buf,
                            size_t n)
{
    switch (e->type) {
    case ZRAFT_ENTRY_NORMAL:
        snprintf(buf, n, "w%" PRIu64, ent_write(s, e));
        break;
    case ZRAFT_ENTRY_BLANK:
        snprintf(buf, n, "blank");
        break;
    case ZRAFT_ENTRY_MEMBERSHIP:
        snprintf(buf, n, "config");
        break;
    default:
        snprintf(buf, n, "type%u", e->type);
    }
    return buf;
}

/* ------------------------------------------------------------- checker */

static void truth_grow(sim *s, uint64_t i)
{
    if (i + 1 > s->truth_cap) {
        size_t old = s->truth_cap;
        GROW(s->truth, s->truth_cap, i + 1);
        memset(s->truth + old, 0, (s->truth_cap - old) * sizeof(*s->truth));
    }
}

/* The config in force at committed index i (latest membership entry <= i
 * that was committed); NULL if unknown. */
static const memhist_ent *config_at(const sim *s, uint64_t i)
{
    const memhist_ent *best = NULL;
    size_t lo = 0, hi = s->nmh;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->mh[mid].index <= i) {
            best = &s->mh[mid];
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return best;
}

static void memhist_add(sim *s, uint64_t index, const zraft_membership *m)
{
    GROW(s->mh, s->capmh, s->nmh + 1);
    size_t at = s->nmh;
    while (at > 0 && s->mh[at - 1].index > index) {
        at--;
    }
    memmove(s->mh + at + 1, s->mh + at, (s->nmh - at) * sizeof(*s->mh));
    memhist_ent *h = &s->mh[at];
    h->index = index;
    h->nv = 0;
    h->members = 0;
    for (uint32_t k = 0; k < m->n; k++) {
        if (m->members[k].id < 64) {
            h->members |= 1ULL << m->members[k].id;
        }
        /* In a joint config the new voters carry the VOTER bit: an entry
         * committed while C_old,new is the latest config is held by a
         * majority of C_new (docs/simulator.md). */
        if (m->members[k].roles & ZRAFT_ROLE_VOTER) {
            h->voters[h->nv++] = m->members[k].id;
        }
    }
    s->nmh++;
}

/* Does node n's durable state hold entry (i, term), itself or in its
 * snapshot? */
static bool durable_has(const node *n, uint64_t i, uint64_t term)
{
    uint64_t t;
    if (slog_snap_index(&n->dur) >= i) {
        return true;
    }
    return slog_term_at(&n->dur, i, &t) && t == term;
}

/* Committed entries are never lost: entry i is durable on a majority of
 * the voters of the config in force at i. */
static void quorum_check(sim *s, uint64_t i)
{
    const truth_ent *t = &s->truth[i];
    const memhist_ent *c = config_at(s, i);
    if (!t->set || c == NULL || c->nv == 0) {
        return;
    }
    uint32_t have = 0;
    char who[128] = "";
    size_t len = 0;
    for (uint32_t k = 0; k < c->nv; k++) {
        node *n = N(s, c->voters[k]);
        if (n != NULL && durable_has(n, i, t->term)) {
            have++;
            if (len < sizeof(who) - 8) {
                len += (size_t)snprintf(who + len, sizeof(who) - len, " n%d",
                                        (int)n->id);
            }
        }
    }
    if (2 * have <= c->nv) {
        fail(s,
             "committed entry lost: index %" PRIu64 " (term %" PRIu64
             ") is durable on %u of %u voters of its config (index %" PRIu64
             "):%s",
             i, t->term, have, c->nv, c->index, who);
    }
}

static void truth_advance(sim *s)
{
    while (s->contig + 1 <= s->truth_max && s->truth[s->contig + 1].set) {
        s->contig++;
        quorum_check(s, s->contig);
    }
}

/* Leader completeness (§5.4): leader n must hold committed entry i if i was
 * committed in a term lower than n's. */
static void completeness_check(sim *s, node *n, uint64_t i)
{
    const truth_ent *t = &s->truth[i];
    uint64_t term;
    if (!t->set || t->ub >= n->term) {
        return;
    }
    if (slog_snap_index(&n->vis) >= i) {
        return; /* purged into its snapshot */
    }
    if (!slog_term_at(&n->vis, i, &term) || term != t->term) {
        fail(s,
             "leader completeness: n%d leads term %" PRIu64
             " without committed entry %" PRIu64 " (term %" PRIu64
             ", committed by term %" PRIu64 "); its log: %" PRIu64 "..%" PRIu64
             ", there: %s",
             (int)n->id, n->term, i, t->term, t->ub, n->vis.start,
             slog_last_index(&n->vis),
             slog_get(&n->vis, i) ? "other term" : "missing");
    }
}

static void completeness_all_leaders(sim *s, uint64_t i)
{
    for (int k = 1; k <= s->nn; k++) {
        node *n = &s->nodes[k];
        if (n->up && n->role == ROLE_LEADER) {
            completeness_check(s, n, i);
        }
    }
}

/* Records that entry `en` is committed at its index (seen by node `by` in
 * term `obs_term`, `how`: "committed" or "applied"). */
static void truth_register(sim *s, node *by, const zraft_entry *en,
                           uint64_t obs_term, const char *how)
{
    uint64_t i = en->id.index;
    uint64_t ident = ent_ident(en);
    char d1[32], d2[32];
    truth_grow(s, i);
    truth_ent *t = &s->truth[i];
    if (!t->set) {
        t->set = true;
        t->type = en->type;
        t->term = en->id.term;
        t->ident = ident;
        t->ub = obs_term;
        if (en->type == ZRAFT_ENTRY_MEMBERSHIP) {
            zraft_membership m;
            if (en->payload == NULL ||
                zraft_membership_decode(en->payload->data, en->payload->len,
                                        &m) != 0) {
                fail(s,
                     "committed membership entry %" PRIu64 " does not decode",
                     i);
                return;
            }
            memhist_add(s, i, &m);
        }
        if (i > s->truth_max) {
            s->truth_max = i;
        }
        if (i > s->max_commit) {
            s->max_commit = i;
        }
        completeness_all_leaders(s, i);
        truth_advance(s);
        return;
    }
    if (t->term != en->id.term || t->ident != ident) {
        fail(s,
             "state machine safety: n%d %s index %" PRIu64
             " as %s (term %" PRIu64
             ") but it was committed as %s (term %" PRIu64 ")",
             (int)by->id, how, i, ent_desc(s, en, d1, sizeof(d1)), en->id.term,
             t->type == ZRAFT_ENTRY_NORMAL
                 ? "a client write"
                 : ent_desc(s, &(zraft_entry){.type = t->type}, d2, sizeof(d2)),
             t->term);
        return;
    }
    if (obs_term < t->ub) {
        t->ub = obs_term;
        completeness_all_leaders(s, i);
    }
}

static uint64_t lm_hash(uint64_t index, uint64_t term)
{
    return mix64(index * 0x9e3779b97f4a7c15ULL ^ mix64(term));
}

static lm_ent *lm_slot(lm_ent *tab, size_t cap, uint64_t index, uint64_t term)
{
    size_t k = lm_hash(index, term) & (cap - 1);
    while (tab[k].used && (tab[k].index != index || tab[k].term != term)) {
        k = (k + 1) & (cap - 1);
    }
    return &tab[k];
}

/* Log matching (§5.3): one (index, term) names one entry, which always
 * follows the same term. By induction, two logs with an entry of the same
 * index and term are identical up to it. */
static void lm_check(sim *s, node *n, const zraft_entry *en, uint64_t prev_term)
{
    if (2 * (s->lm_n + 1) > s->lm_cap) {
        size_t nc = s->lm_cap ? s->lm_cap * 2 : 1024;
        lm_ent *tab = xcalloc(nc, sizeof(*tab));
        for (size_t k = 0; k < s->lm_cap; k++) {
            if (s->lm[k].used) {
                *lm_slot(tab, nc, s->lm[k].index, s->lm[k].term) = s->lm[k];
            }
        }
        free(s->lm);
        s->lm = tab;
        s->lm_cap = nc;
    }
    uint64_t ident = ent_ident(en);
    lm_ent *l = lm_slot(s->lm, s->lm_cap, en->id.index, en->id.term);
    if (!l->used) {
        l->used = true;
        l->index = en->id.index;
        l->term = en->id.term;
        l->ident = ident;
        l->prev_term = prev_term;
        l->first_node = n->id;
        s->lm_n++;
        return;
    }
    if (l->ident != ident) {
        char d[32];
        fail(s,
             "log matching: n%d wrote entry %" PRIu64 " term %" PRIu64
             " as %s, but n%d holds a different entry with that index and "
             "term",
             (int)n->id, en->id.index, en->id.term,
             ent_desc(s, en, d, sizeof(d)), (int)l->first_node);
    } else if (l->prev_term != prev_term) {
        fail(s,
             "log matching: n%d has entry %" PRIu64 " term %" PRIu64
             " after an entry of term %" PRIu64
             ", n%d has it after term %" PRIu64,
             (int)n->id, en->id.index, en->id.term, prev_term,
             (int)l->first_node, l->prev_term);
    }
}

static void leaders_set(sim *s, node *n)
{
    uint64_t t = n->term;
    if (t + 1 > s->leaders_cap) {
        size_t old = s->leaders_cap;
        GROW(s->leaders, s->leaders_cap, t + 1);
        memset(s->leaders + old, 0,
               (s->leaders_cap - old) * sizeof(*s->leaders));
    }
    if (s->leaders[t] == 0) {
        s->leaders[t] = n->id;
        s->st.leaders++;
        maybe_react(s, n->id, s->react_pm, 20);
        if (t > s->st.max_term) {
            s->st.max_term = t;
        }
        tr(s, "n%d is leader of term %" PRIu64, (int)n->id, t);
    } else if (s->leaders[t] != n->id) {
        fail(s, "election safety: n%d and n%d both lead term %" PRIu64,
             (int)s->leaders[t], (int)n->id, t);
    }
}

/* After every event on n: compare with the engine, track commit and
 * leadership. */
static void check_node(sim *s, node *n)
{
    engine_status st;
    engine_get_status(n->e, &st);
    zraft_log_id vl = slog_last_id(&n->vis);
    if (st.last_log_id.index != vl.index || st.last_log_id.term != vl.term) {
        /* Storage ops never wait (see outbox_drain), so the written log
         * is the engine's after every batch. */
        fail(s,
             "driver/engine disagree: n%d engine last log %" PRIu64 "/%" PRIu64
             ", written log %" PRIu64 "/%" PRIu64,
             (int)n->id, st.last_log_id.index, st.last_log_id.term, vl.index,
             vl.term);
    }
    /* Spot-check one more entry of the log against the engine. */
    if (n->vis.n > 0) {
        const zraft_entry *en = &n->vis.e[rng_below(&s->check_rng, n->vis.n)];
        int err = 0;
        uint64_t t = engine_term_at(n->e, en->id.index, &err);
        if (err == 0 && t != en->id.term) {
            fail(s,
                 "driver/engine disagree: n%d engine has term %" PRIu64
                 " at %" PRIu64 ", written log term %" PRIu64,
                 (int)n->id, t, en->id.index, en->id.term);
        }
    }
    if (st.committed < n->commit) {
        fail(s, "commit decreased on n%d: %" PRIu64 " -> %" PRIu64, (int)n->id,
             n->commit, st.committed);
    }
    if (st.committed > st.last_log_id.index) {
        fail(s, "n%d commit %" PRIu64 " beyond its last log index %" PRIu64,
             (int)n->id, st.committed, st.last_log_id.index);
    }
    bool was_leader = n->role == ROLE_LEADER && n->term == st.term;
    n->term = st.term;
    n->role = st.role;
    /* §5.4.2: a leader commits by counting replicas only entries of its
     * own term (older ones commit with them). */
    if (was_leader && st.role == ROLE_LEADER && st.committed > n->commit) {
        uint64_t t = 0;
        if (slog_term_at(&n->vis, st.committed, &t) && t != st.term) {
            fail(s,
                 "commit rule (§5.4.2): leader n%d of term %" PRIu64
                 " advances its commit to %" PRIu64
                 ", an entry of term %" PRIu64,
                 (int)n->id, st.term, st.committed, t);
        }
    }
    for (uint64_t i = n->commit + 1; i <= st.committed && !s->failed; i++) {
        const zraft_entry *en = slog_get(&n->vis, i);
        if (en != NULL) {
            truth_register(s, n, en, st.term, "committed");
        } else if (i > slog_snap_index(&n->vis)) {
            fail(s,
                 "n%d commits index %" PRIu64
                 " that is not in its log (%" PRIu64 "..%" PRIu64 ")",
                 (int)n->id, i, n->vis.start, slog_last_index(&n->vis));
        }
    }
    if (st.committed > n->commit) {
        n->commit = st.committed;
        if (st.role == ROLE_LEADER) {
            maybe_react(s, n->id, s->react_pm / 3, 5);
        }
    }
    if (st.committed > s->max_commit) {
        s->max_commit = st.committed;
    }
    if (st.role == ROLE_LEADER) {
        leaders_set(s, n);
        if (n->leader_term_checked != st.term) {
            n->leader_term_checked = st.term;
            for (uint64_t i = 1; i <= s->truth_max && !s->failed; i++) {
                completeness_check(s, n, i);
            }
        }
    }
}

/* A backstop sweep of the incremental checks. */
static void full_check(sim *s)
{
    for (uint64_t i = 1; i <= s->contig && !s->failed; i++) {
        quorum_check(s, i);
    }
    for (int k = 1; k <= s->nn && !s->failed; k++) {
        node *n = &s->nodes[k];
        if (n->up && n->role == ROLE_LEADER) {
            for (uint64_t i = 1; i <= s->truth_max && !s->failed; i++) {
                completeness_check(s, n, i);
            }
        }
    }
}

/* ------------------------------------------------------- state machine */

static zraft_buf *sm_serialize(const smstate *sm)
{
    unsigned char b[SM_SNAP_LEN];
    put64(b, sm->applied);
    put64(b + 8, sm->term);
    put64(b + 16, sm->hash);
    put64(b + 24, sm->writes);
    zraft_buf *buf = zraft_buf_new(b, sizeof(b));
    if (buf == NULL) {
        abort();
    }
    return buf;
}

/* Loads a state machine from a snapshot; false if the data is not ours. */
static bool sm_load(smstate *sm, const snapshot_meta *m, const zraft_buf *d)
{
    memset(sm, 0, sizeof(*sm));
    if (d == NULL || d->len != SM_SNAP_LEN) {
        return false;
    }
    sm->applied = get64(d->data);
    sm->term = get64(d->data + 8);
    sm->hash = get64(d->data + 16);
    sm->writes = get64(d->data + 24);
    sm->mem = m->membership;
    return sm->applied == m->last_log_id.index &&
           sm->term == m->last_log_id.term;
}

/* The state machine content at index i must be the same everywhere. */
static void sm_hash_check(sim *s, node *n, uint64_t i, uint64_t hash,
                          const char *how)
{
    if (i == 0) {
        return;
    }
    truth_grow(s, i);
    truth_ent *t = &s->truth[i];
    if (!t->hash_set) {
        t->hash_set = true;
        t->hash = hash;
    } else if (t->hash != hash) {
        fail(s,
             "state machine safety: n%d %s a state at index %" PRIu64
             " that differs from what other nodes applied up to there",
             (int)n->id, how, i);
    }
}

static void sm_apply(sim *s, node *n, const zraft_entry *en)
{
    uint64_t i = en->id.index;
    truth_register(s, n, en, n->term, "applied");
    n->sm.hash = sm_step(n->sm.hash, i, en->id.term, ent_ident(en));
    n->sm.applied = i;
    n->sm.term = en->id.term;
    sm_hash_check(s, n, i, n->sm.hash, "reached");
    uint64_t w = ent_write(s, en);
    if (w != 0) {
        n->sm.writes++;
        if (w >= s->next_write) {
            fail(s,
                 "n%d applied client write w%" PRIu64
                 " that was never proposed",
                 (int)n->id, w);
        } else if (s->write_index[w] == 0) {
            s->write_index[w] = i;
            s->st.writes_applied++;
        } else if (s->write_index[w] != i) {
            fail(s,
                 "client write w%" PRIu64 " applied at index %" PRIu64
                 " by n%d and at index %" PRIu64 " before (duplicated entry)",
                 w, i, (int)n->id, s->write_index[w]);
        }
    }
    if (en->type == ZRAFT_ENTRY_MEMBERSHIP) {
        zraft_membership m;
        if (en->payload == NULL ||
            zraft_membership_decode(en->payload->data, en->payload->len, &m) !=
                0) {
            fail(s,
                 "n%d applies membership entry %" PRIu64
                 " that does not decode",
                 (int)n->id, i);
            return;
        }
        n->sm.mem = m;
    }
}

/* --------------------------------------------------------------- network */

static void netmsg_free(netmsg *nm)
{
    if (nm->ents != NULL) {
        for (uint32_t i = 0; i < nm->m.u.append.n_entries; i++) {
            zraft_buf_unref(nm->ents[i].payload);
        }
        free(nm->ents);
    }
    free(nm->meta);
    zraft_buf_unref(nm->data);
    free(nm);
}

static netmsg *netmsg_clone(const netmsg *a)
{
    netmsg *b = xcalloc(1, sizeof(*b));
    *b = *a;
    if (a->ents != NULL) {
        uint32_t k = a->m.u.append.n_entries;
        b->ents = xcalloc(k, sizeof(*b->ents));
        for (uint32_t i = 0; i < k; i++) {
            b->ents[i] = a->ents[i];
            zraft_buf_ref(b->ents[i].payload);
        }
        b->m.u.append.entries = b->ents;
    }
    if (a->meta != NULL) {
        b->meta = xcalloc(1, sizeof(*b->meta));
        *b->meta = *a->meta;
        b->m.u.snapshot.meta = b->meta;
    }
    zraft_buf_ref(b->data);
    return b;
}

static uint64_t net_delay(sim *s)
{
    if (rng_pm(&s->r, s->long_delay_pm)) {
        return rng_range(&s->r, 50, 400);
    }
    return rng_range(&s->r, s->delay_min, s->delay_max);
}

/* Puts `nm` (owned) on the network, maybe dropping or duplicating it. */
static void net_send(sim *s, netmsg *nm)
{
    s->st.msgs_sent++;
    if (s->cut[nm->m.from][nm->m.to] || rng_pm(&s->r, s->drop_pm)) {
        s->st.msgs_dropped++;
        netmsg_free(nm);
        return;
    }
    nm->due = s->now + net_delay(s);
    if (rng_pm(&s->r, s->dup_pm)) {
        netmsg *d = netmsg_clone(nm);
        d->due = s->now + net_delay(s);
        GROW(s->net, s->capnet, s->nnet + 1);
        s->net[s->nnet++] = d;
        s->st.msgs_duplicated++;
    }
    GROW(s->net, s->capnet, s->nnet + 1);
    s->net[s->nnet++] = nm;
}

/* -------------------------------------------------------------- driver */

static void node_after(sim *s, node *n);

static void inbox_push(node *n, iev ev)
{
    GROW(n->in, n->capin, n->nin + 1);
    n->in[n->nin++] = ev;
}

static void op_free(op *o)
{
    if (o->ents != NULL) {
        for (uint32_t i = 0; i < o->n; i++) {
            zraft_buf_unref(o->ents[i].payload);
        }
        free(o->ents);
    }
    free(o->meta);
    zraft_buf_unref(o->data);
}

static op *op_push(sim *s, node *n, const command *c)
{
    if (c->io_seq <= n->last_seq) {
        fail(s,
             "n%d: %s io_seq %" PRIu64 " does not increase (last %" PRIu64 ")",
             (int)n->id, cmd_type_name(c->type), c->io_seq, n->last_seq);
    }
    n->last_seq = c->io_seq;
    GROW(n->ops, n->capops, n->nops + 1);
    op *o = &n->ops[n->nops++];
    memset(o, 0, sizeof(*o));
    o->type = c->type;
    o->seq = c->io_seq;
    return o;
}

static void ocmd_free(ocmd *oc)
{
    if (oc->ents != NULL) {
        for (uint32_t i = 0; i < oc->c.u.append.n; i++) {
            zraft_buf_unref(oc->ents[i].payload);
        }
        free(oc->ents);
    }
    free(oc->meta);
    zraft_buf_unref(oc->data);
}

static void run_save_vote(sim *s, node *n, const command *c)
{
    uint64_t t = c->u.save_vote.term;
    zraft_id v = c->u.save_vote.voted_for;
    if (t < n->v_term) {
        fail(s, "n%d saves term %" PRIu64 " below its term %" PRIu64,
             (int)n->id, t, n->v_term);
    } else if (t == n->v_term && n->v_vote != 0 && v != n->v_vote) {
        fail(s,
             "election safety: n%d changes its vote in term %" PRIu64
             " from n%d to n%d",
             (int)n->id, t, (int)n->v_vote, (int)v);
    }
    n->v_term = t;
    n->v_vote = v;
    op *o = op_push(s, n, c);
    o->term = t;
    o->vote = v;
}

static void run_append(sim *s, node *n, const ocmd *oc)
{
    const command *c = &oc->c;
    uint32_t k = c->u.append.n;
    const zraft_entry *ents = oc->ents;
    if (k == 0) {
        fail(s, "n%d: empty APPEND", (int)n->id);
        return;
    }
    for (uint32_t i = 0; i < k; i++) {
        uint64_t want = slog_last_index(&n->vis) + 1;
        uint64_t prev_term;
        if (ents[i].id.index != want) {
            fail(s,
                 "n%d: APPEND of index %" PRIu64
                 " is not contiguous with its log (last %" PRIu64
                 "; entries must follow a TRUNCATE)",
                 (int)n->id, ents[i].id.index, want - 1);
            return;
        }
        if (!slog_term_at(&n->vis, want - 1, &prev_term)) {
            fail(s, "n%d: APPEND at %" PRIu64 " after an unknown entry",
                 (int)n->id, want);
            return;
        }
        if (ents[i].id.term < prev_term || ents[i].id.term == 0) {
            fail(s,
                 "n%d: APPEND entry %" PRIu64 " term %" PRIu64
                 " after an entry of term %" PRIu64,
                 (int)n->id, want, ents[i].id.term, prev_term);
            return;
        }
        lm_check(s, n, &ents[i], prev_term);
        slog_push(&n->vis, &ents[i]);
    }
    op *o = op_push(s, n, c);
    o->n = k;
    o->ents = xcalloc(k, sizeof(*o->ents));
    for (uint32_t i = 0; i < k; i++) {
        o->ents[i] = ents[i];
        zraft_buf_ref(o->ents[i].payload);
    }
}

static void run_truncate(sim *s, node *n, const command *c)
{
    uint64_t since = c->u.truncate.since;
    engine_status st;
    engine_get_status(n->e, &st);
    if (st.role == ROLE_LEADER) {
        fail(s,
             "n%d truncates its log at %" PRIu64
             " while leader (leaders only append, §5.3)",
             (int)n->id, since);
    }
    /* engine_start drops a whole tail that stops short of the snapshot
     * (the state machine built a snapshot past it, here from an installed
     * one whose log reset was not durable yet, then the node crashed): the
     * snapshot holds all it held, so that is a purge, not a conflict. */
    uint64_t snap = slog_snap_index(&n->vis);
    bool covered = n->vis.n > 0 && since == n->vis.start &&
                   slog_last_index(&n->vis) <= snap;
    if (!covered && (since <= snap || since < n->vis.start)) {
        fail(s,
             "n%d truncates at %" PRIu64 " below its log start %" PRIu64
             " / snapshot %" PRIu64,
             (int)n->id, since, n->vis.start, snap);
    }
    /* etcd's rule (raft_log.go, findConflict/maybeAppend): never at or
     * below the node's own commit index. n->commit is its commit before
     * this event; a follower truncates before it learns a new one. */
    if (!covered && since <= n->commit) {
        fail(s,
             "n%d truncates at %" PRIu64
             ", at or below its commit index %" PRIu64,
             (int)n->id, since, n->commit);
    }
    /* A node may truncate an entry committed elsewhere that it has not
     * learned is committed, on the word of a leader of an older term than
     * the commit's (a stale leader, as in seed 17461). A leader of the
     * commit's term or later holds the entry (Leader Completeness, §5.4.3),
     * so its AppendEntries cannot conflict with it or with anything before
     * it (Log Matching). t->ub bounds the commit's term from above, so this
     * never fires on a legal run. */
    for (uint64_t i = since; i <= slog_last_index(&n->vis) && !s->failed; i++) {
        const zraft_entry *en = slog_get(&n->vis, i);
        const truth_ent *t = i < s->truth_cap ? &s->truth[i] : NULL;
        if (i > snap && en != NULL && t != NULL && t->set &&
            t->term == en->id.term && t->ident == ent_ident(en) &&
            st.term >= t->ub) {
            fail(s,
                 "n%d in term %" PRIu64 " truncates committed entry %" PRIu64
                 " (term %" PRIu64 ", committed by term %" PRIu64
                 "): a leader of that term must hold it (§5.4.3)",
                 (int)n->id, st.term, i, t->term, t->ub);
        }
    }
    slog_truncate(&n->vis, since);
    op *o = op_push(s, n, c);
    o->since = since;
}

static void run_purge(sim *s, node *n, const command *c)
{
    zraft_log_id upto = c->u.purge.upto;
    if (upto.index > slog_snap_index(&n->vis)) {
        fail(s, "n%d purges up to %" PRIu64 " beyond its snapshot %" PRIu64,
             (int)n->id, upto.index, slog_snap_index(&n->vis));
    }
    slog_purge(&n->vis, upto.index);
    op *o = op_push(s, n, c);
    o->upto = upto;
}

static void run_install(sim *s, node *n, ocmd *oc)
{
    const snapshot_meta *m = oc->meta;
    engine_status st;
    smstate tmp;
    engine_get_status(n->e, &st);
    if (st.role == ROLE_LEADER) {
        fail(s, "n%d installs a snapshot while leader", (int)n->id);
    }
    if (!sm_load(&tmp, m, oc->data)) {
        fail(s, "n%d installs snapshot data that does not match its meta",
             (int)n->id);
        return;
    }
    if (m->last_log_id.index < n->sm.applied) {
        fail(s,
             "n%d installs snapshot %" PRIu64
             " behind its state machine (applied %" PRIu64 ")",
             (int)n->id, m->last_log_id.index, n->sm.applied);
    }
    tr(s, "n%d installs snapshot %" PRIu64 "/%" PRIu64, (int)n->id,
       m->last_log_id.index, m->last_log_id.term);
    /* engine.h: the state machine takes the snapshot's state now (applied
     * == its index); the log is reset once the op is durable. */
    n->sm = tmp;
    n->apply_due = 0;
    sm_hash_check(s, n, n->sm.applied, n->sm.hash, "installs");
    slog_reset(&n->vis, m, oc->data);
    op *o = op_push(s, n, &oc->c);
    o->meta = xcalloc(1, sizeof(*o->meta));
    *o->meta = *m;
    o->data = zraft_buf_ref(oc->data);
    s->st.snapshots_installed++;
}

static void run_send(sim *s, node *n, const command *c)
{
    const msg *m = &c->u.send;
    if (m->from != n->id || N(s, m->to) == NULL || m->to == n->id) {
        fail(s, "n%d sends %s from n%d to unknown n%d", (int)n->id,
             msg_type_name(m->type), (int)m->from, (int)m->to);
        return;
    }
    if (m->type == MSG_APPEND || m->type == MSG_SNAPSHOT) {
        fail(s,
             "n%d: CMD_SEND carries %s (must use REPLICATE / "
             "SEND_SNAPSHOT)",
             (int)n->id, msg_type_name(m->type));
        return;
    }
    /* Vote persisted before a vote is granted or requested (§5.2 and
     * Figure 2's "persistent state ... updated on stable storage before
     * responding to RPCs"). */
    /* (A durable term above m->term means the vote was durable before it
     * was overwritten: ops flush in order.) */
    if (m->type == MSG_VOTE_RESP && m->u.vote_resp.granted &&
        !m->u.vote_resp.pre_vote &&
        (n->d_term < m->term || (n->d_term == m->term && n->d_vote != m->to))) {
        fail(s,
             "n%d grants its vote in term %" PRIu64
             " to n%d before it is durable (durable: term %" PRIu64
             " vote n%d)",
             (int)n->id, m->term, (int)m->to, n->d_term, (int)n->d_vote);
    }
    if (m->type == MSG_VOTE && !m->u.vote.pre_vote &&
        (n->d_term < m->term || (n->d_term == m->term && n->d_vote != n->id))) {
        fail(s,
             "n%d requests votes for term %" PRIu64
             " before its own vote is durable (durable: term %" PRIu64
             " vote n%d)",
             (int)n->id, m->term, n->d_term, (int)n->d_vote);
    }
    /* Entries flushed before a follower acknowledges them. Only for an
     * answer in the node's current term: one held back for an older term
     * was true when its entries became durable (ops flush in order), even
     * if a later leader's TRUNCATE has replaced them since - as in Raft
     * with a delayed message. */
    engine_status st;
    engine_get_status(n->e, &st);
    if (m->type == MSG_APPEND_RESP && m->u.append_resp.success &&
        m->term == st.term) {
        uint64_t i = m->u.append_resp.index, t;
        if (i > slog_last_index(&n->dur) && i > slog_snap_index(&n->dur)) {
            fail(s,
                 "n%d acknowledges index %" PRIu64
                 " before it is durable (durable up to %" PRIu64 ")",
                 (int)n->id, i, slog_last_index(&n->dur));
        } else if (slog_term_at(&n->vis, i, &t) && !durable_has(n, i, t)) {
            fail(s,
                 "n%d acknowledges index %" PRIu64
                 " whose durable entry differs from its log",
                 (int)n->id, i);
        }
    }
    netmsg *nm = xcalloc(1, sizeof(*nm));
    nm->m = *m;
    net_send(s, nm);
}

static void run_replicate(sim *s, node *n, const command *c)
{
    zraft_id to = c->u.replicate.to;
    zraft_log_id prev = c->u.replicate.prev;
    uint64_t last = c->u.replicate.last;
    uint64_t t;
    if (N(s, to) == NULL || to == n->id) {
        fail(s, "n%d replicates to unknown n%d", (int)n->id, (int)to);
        return;
    }
    if (last < prev.index || last > slog_last_index(&n->vis)) {
        fail(s,
             "n%d: REPLICATE (%" PRIu64 ", %" PRIu64
             "] to n%d beyond its log (last %" PRIu64 ")",
             (int)n->id, prev.index, last, (int)to, slog_last_index(&n->vis));
        return;
    }
    if (prev.index + 1 < n->vis.start && last > prev.index) {
        /* Entries were purged: the engine must fall back to a snapshot. */
        s->st.compacted_reports++;
        inbox_push(
            n,
            (iev){.type = IEV_UNREACHABLE, .to = to, .err = ZRAFT_ECOMPACTED});
        return;
    }
    if (slog_term_at(&n->vis, prev.index, &t) && t != prev.term) {
        fail(s,
             "n%d: REPLICATE prev %" PRIu64 "/%" PRIu64
             " but its log has term %" PRIu64 " there",
             (int)n->id, prev.index, prev.term, t);
        return;
    }
    netmsg *nm = xcalloc(1, sizeof(*nm));
    nm->m.type = MSG_APPEND;
    nm->m.from = n->id;
    nm->m.to = to;
    nm->m.term = c->u.replicate.term;
    nm->m.u.append.prev = prev;
    nm->m.u.append.commit = c->u.replicate.commit;
    uint32_t k = (uint32_t)(last - prev.index);
    nm->m.u.append.n_entries = k;
    if (k > 0) {
        nm->ents = xcalloc(k, sizeof(*nm->ents));
        for (uint32_t i = 0; i < k; i++) {
            nm->ents[i] = *slog_get(&n->vis, prev.index + 1 + i);
            zraft_buf_ref(nm->ents[i].payload);
        }
    }
    nm->m.u.append.entries = nm->ents;
    net_send(s, nm);
}

static void run_send_snapshot(sim *s, node *n, const command *c)
{
    zraft_id to = c->u.send_snapshot.to;
    if (N(s, to) == NULL || to == n->id) {
        fail(s, "n%d sends a snapshot to unknown n%d", (int)n->id, (int)to);
        return;
    }
    if (!n->dur.has_snap) {
        fail(s, "n%d: SEND_SNAPSHOT to n%d without a durable snapshot",
             (int)n->id, (int)to);
        return;
    }
    netmsg *nm = xcalloc(1, sizeof(*nm));
    nm->m.type = MSG_SNAPSHOT;
    nm->m.from = n->id;
    nm->m.to = to;
    nm->m.term = c->u.send_snapshot.term;
    nm->meta = xcalloc(1, sizeof(*nm->meta));
    *nm->meta = *n->dur.snap;
    nm->data = zraft_buf_ref(n->dur.snap_data);
    nm->m.u.snapshot.meta = nm->meta;
    nm->m.u.snapshot.data = nm->data;
    s->st.snapshots_sent++;
    net_send(s, nm);
}

static void run_apply(sim *s, node *n, const command *c)
{
    uint64_t upto = c->u.apply.upto;
    engine_status st;
    engine_get_status(n->e, &st);
    if (upto > st.committed) {
        fail(s, "n%d applies up to %" PRIu64 " beyond its commit %" PRIu64,
             (int)n->id, upto, st.committed);
        return;
    }
    for (uint64_t i = n->sm.applied + 1; i <= upto && !s->failed; i++) {
        const zraft_entry *en = slog_get(&n->vis, i);
        if (en == NULL) {
            fail(s,
                 "n%d: APPLY of index %" PRIu64 " not in its log (%" PRIu64
                 "..%" PRIu64 ", snapshot %" PRIu64 ", applied %" PRIu64 ")",
                 (int)n->id, i, n->vis.start, slog_last_index(&n->vis),
                 slog_snap_index(&n->vis), n->sm.applied);
            return;
        }
        sm_apply(s, n, en);
    }
    if (upto <= n->sm.applied && upto > 0) {
        if (rng_pm(&s->r, s->apply_async_pm)) {
            if (upto > n->apply_due) {
                n->apply_due = upto;
            }
        } else {
            inbox_push(n, (iev){.type = IEV_APPLIED, .index = upto});
        }
    }
}

/* Makes the captured state machine a durable snapshot and reports it. */
static void snapshot_finish(sim *s, node *n, const smstate *sm)
{
    snapshot_meta *m = xcalloc(1, sizeof(*m));
    m->last_log_id.index = sm->applied;
    m->last_log_id.term = sm->term;
    m->membership = sm->mem;
    zraft_buf *data = sm_serialize(sm);
    if (sm->applied > slog_snap_index(&n->dur)) {
        slog_set_snap(&n->dur, m, data);
        if (sm->applied > slog_snap_index(&n->vis)) {
            slog_set_snap(&n->vis, m, data);
        }
    }
    zraft_buf_unref(data);
    s->st.snapshots_built++;
    tr(s, "n%d built snapshot %" PRIu64 "/%" PRIu64, (int)n->id, sm->applied,
       sm->term);
    inbox_push(n, (iev){.type = IEV_SNAP_BUILT, .meta = m});
}

static void run_build_snapshot(sim *s, node *n)
{
    if (n->build_pending) {
        fail(s, "n%d: BUILD_SNAPSHOT while one is being built", (int)n->id);
        return;
    }
    if (n->sm.applied == 0) {
        snapshot_meta *m = xcalloc(1, sizeof(*m));
        inbox_push(
            n, (iev){.type = IEV_SNAP_BUILT, .meta = m, .err = ZRAFT_EAGAIN});
        return;
    }
    if (rng_pm(&s->r, s->build_async_pm)) {
        n->build_pending = true;
        n->build = n->sm;
    } else {
        snapshot_finish(s, n, &n->sm);
    }
}

static void run_read(sim *s, node *n, const command *c, bool ready)
{
    uint64_t id = c->u.read.req_id;
    if (id == 0 || id >= s->next_read || s->reads[id].node != n->id) {
        fail(s, "n%d answers read %" PRIu64 " it was never asked", (int)n->id,
             id);
        return;
    }
    read_req *r = &s->reads[id];
    if (r->done) {
        fail(s, "n%d answers read %" PRIu64 " twice", (int)n->id, id);
        return;
    }
    r->done = true;
    if (!ready) {
        s->st.reads_failed++;
        tr(s, "n%d read %" PRIu64 " failed: %s", (int)n->id, id,
           zraft_err_name(c->u.read.err));
        return;
    }
    s->st.reads_ready++;
    tr(s, "n%d read %" PRIu64 " ready at %" PRIu64 " (required %" PRIu64 ")",
       (int)n->id, id, c->u.read.index, r->required);
    if (c->u.read.index < r->required) {
        fail(s,
             "read-index linearizability: n%d serves read %" PRIu64
             " at index %" PRIu64 " but %" PRIu64
             " was committed before the read was issued",
             (int)n->id, id, c->u.read.index, r->required);
    }
}

static void run_cmd(sim *s, node *n, ocmd *oc)
{
    const command *c = &oc->c;
    switch (c->type) {
    case CMD_SAVE_VOTE:
        run_save_vote(s, n, c);
        break;
    case CMD_APPEND:
        run_append(s, n, oc);
        break;
    case CMD_TRUNCATE:
        run_truncate(s, n, c);
        break;
    case CMD_PURGE:
        run_purge(s, n, c);
        break;
    case CMD_INSTALL_SNAPSHOT:
        run_install(s, n, oc);
        break;
    case CMD_SEND:
        run_send(s, n, c);
        break;
    case CMD_REPLICATE:
        run_replicate(s, n, c);
        break;
    case CMD_SEND_SNAPSHOT:
        run_send_snapshot(s, n, c);
        break;
    case CMD_APPLY:
        run_apply(s, n, c);
        break;
    case CMD_BUILD_SNAPSHOT:
        run_build_snapshot(s, n);
        break;
    case CMD_READ_READY:
        run_read(s, n, c, true);
        break;
    case CMD_READ_FAIL:
        run_read(s, n, c, false);
        break;
    case CMD_ROLE:
        tr(s, "n%d role %s term %" PRIu64 " leader n%d", (int)n->id,
           engine_role_name(c->u.role.role), c->u.role.term,
           (int)c->u.role.leader);
        break;
    case CMD_STREAMS:
        break;
    default:
        fail(s, "n%d emits unknown command %u", (int)n->id, c->type);
    }
}

static int cmd_key(const command *c)
{
    switch (c->type) {
    case CMD_SAVE_VOTE:
    case CMD_APPEND:
    case CMD_TRUNCATE:
    case CMD_PURGE:
    case CMD_INSTALL_SNAPSHOT:
        return KEY_IO;
    case CMD_SEND:
        return (int)(c->u.send.to <= MAX_NODES ? c->u.send.to : 0);
    case CMD_REPLICATE:
        return (int)(c->u.replicate.to <= MAX_NODES ? c->u.replicate.to : 0);
    case CMD_SEND_SNAPSHOT:
        return (int)(c->u.send_snapshot.to <= MAX_NODES ? c->u.send_snapshot.to
                                                        : 0);
    case CMD_APPLY:
    case CMD_BUILD_SNAPSHOT:
        return KEY_SM;
    case CMD_READ_READY:
    case CMD_READ_FAIL:
        return KEY_READ;
    default:
        return KEY_META;
    }
}

static bool is_io(uint8_t type)
{
    return type == CMD_SAVE_VOTE || type == CMD_APPEND ||
           type == CMD_TRUNCATE || type == CMD_PURGE ||
           type == CMD_INSTALL_SNAPSHOT;
}

static void cmd_trace(sim *s, node *n, const command *c, const char *what)
{
    if (!s->o.verbose) {
        return;
    }
    char b[160];
    switch (c->type) {
    case CMD_SAVE_VOTE:
        snprintf(b, sizeof(b), "term %" PRIu64 " vote n%d", c->u.save_vote.term,
                 (int)c->u.save_vote.voted_for);
        break;
    case CMD_APPEND:
        snprintf(
            b, sizeof(b), "%" PRIu64 "..%" PRIu64 " term %" PRIu64,
            c->u.append.n ? c->u.append.entries[0].id.index : 0,
            c->u.append.n ? c->u.append.entries[c->u.append.n - 1].id.index : 0,
            c->u.append.n ? c->u.append.entries[c->u.append.n - 1].id.term : 0);
        break;
    case CMD_TRUNCATE:
        snprintf(b, sizeof(b), "since %" PRIu64, c->u.truncate.since);
        break;
    case CMD_PURGE:
        snprintf(b, sizeof(b), "upto %" PRIu64, c->u.purge.upto.index);
        break;
    case CMD_SEND:
        snprintf(b, sizeof(b), "%s to n%d term %" PRIu64,
                 msg_type_name(c->u.send.type), (int)c->u.send.to,
                 c->u.send.term);
        break;
    case CMD_REPLICATE:
        snprintf(b, sizeof(b),
                 "to n%d term %" PRIu64 " (%" PRIu64 "/%" PRIu64 ", %" PRIu64
                 "] commit %" PRIu64,
                 (int)c->u.replicate.to, c->u.replicate.term,
                 c->u.replicate.prev.index, c->u.replicate.prev.term,
                 c->u.replicate.last, c->u.replicate.commit);
        break;
    case CMD_SEND_SNAPSHOT:
        snprintf(b, sizeof(b), "to n%d", (int)c->u.send_snapshot.to);
        break;
    case CMD_APPLY:
        snprintf(b, sizeof(b), "upto %" PRIu64, c->u.apply.upto);
        break;
    case CMD_READ_READY:
    case CMD_READ_FAIL:
        snprintf(b, sizeof(b), "req %" PRIu64 " index %" PRIu64,
                 c->u.read.req_id, c->u.read.index);
        break;
    default:
        b[0] = '\0';
    }
    fprintf(s->out, "        n%d %4s %s%s", (int)n->id, what,
            cmd_type_name(c->type), b[0] ? " " : "");
    fputs(b, s->out);
    if (c->io_seq) {
        fprintf(s->out, " seq %" PRIu64, c->io_seq);
    }
    if (c->wait_io) {
        fprintf(s->out, " wait_io %" PRIu64, c->wait_io);
    }
    fputc('\n', s->out);
}

/* Runs every command of the outbox that may run, in order. */
static void outbox_drain(sim *s, node *n)
{
    uint64_t blocked = 0; /* keys with an earlier command held back */
    size_t i = 0;
    while (i < n->nout && !s->failed) {
        ocmd *oc = &n->out[i];
        int key = cmd_key(&oc->c);
        /* engine.h: a held command whose role (leader or candidate of its
         * term) is gone is dropped, and blocks nothing. */
        if (oc->held && !engine_command_current(n->e, &oc->c)) {
            s->st.stale_dropped++;
            if (s->o.verbose) {
                cmd_trace(s, n, &oc->c, "drop");
            }
            ocmd_free(oc);
            memmove(n->out + i, n->out + i + 1,
                    (n->nout - i - 1) * sizeof(*n->out));
            n->nout--;
            continue;
        }
        /* Strict order: every non-I/O command in one FIFO. Storage ops
         * always keep their own FIFO (the log writer is its own actor). */
        bool hold = oc->c.wait_io > n->flushed ||
                    (blocked & (1ULL << key)) != 0 ||
                    (s->strict_order && key != KEY_IO &&
                     (blocked & ~(1ULL << KEY_IO)) != 0);
        if (hold) {
            oc->held = true;
            blocked |= 1ULL << key;
            i++;
            continue;
        }
        ocmd run = *oc;
        memmove(n->out + i, n->out + i + 1,
                (n->nout - i - 1) * sizeof(*n->out));
        n->nout--;
        run_cmd(s, n, &run);
        ocmd_free(&run);
    }
}

/* Copies the engine's commands into the outbox (taking refs to what they
 * borrow), clears them, runs what may run, checks, then runs the events
 * that running them produced. */
static void node_after(sim *s, node *n)
{
    size_t k;
    const command *cs = engine_commands(n->e, &k);
    for (size_t i = 0; i < k; i++) {
        const command *c = &cs[i];
        GROW(n->out, n->capout, n->nout + 1);
        ocmd *oc = &n->out[n->nout++];
        memset(oc, 0, sizeof(*oc));
        oc->c = *c;
        if (c->type == CMD_APPEND && c->u.append.n > 0) {
            oc->ents = xcalloc(c->u.append.n, sizeof(*oc->ents));
            for (uint32_t j = 0; j < c->u.append.n; j++) {
                oc->ents[j] = c->u.append.entries[j];
                zraft_buf_ref(oc->ents[j].payload);
            }
            oc->c.u.append.entries = oc->ents;
        } else if (c->type == CMD_INSTALL_SNAPSHOT) {
            oc->meta = xcalloc(1, sizeof(*oc->meta));
            if (c->u.install_snapshot.meta != NULL) {
                *oc->meta = *c->u.install_snapshot.meta;
            }
            oc->data = zraft_buf_ref(c->u.install_snapshot.data);
            oc->c.u.install_snapshot.meta = oc->meta;
            oc->c.u.install_snapshot.data = oc->data;
        }
        if (!is_io(c->type) && c->io_seq != 0) {
            fail(s, "n%d: %s carries io_seq %" PRIu64, (int)n->id,
                 cmd_type_name(c->type), c->io_seq);
        }
        cmd_trace(s, n, c, c->wait_io > n->flushed ? "hold" : "->");
        if (c->io_seq > n->issued) {
            n->issued = c->io_seq;
        }
    }
    for (size_t i = 0; i < k; i++) {
        if (cs[i].wait_io > n->issued) {
            fail(s,
                 "n%d: %s waits for io_seq %" PRIu64
                 " that was never issued (last %" PRIu64 ")",
                 (int)n->id, cmd_type_name(cs[i].type), cs[i].wait_io,
                 n->issued);
        }
    }
    engine_commands_clear(n->e);
    outbox_drain(s, n);
    if (!s->failed) {
        check_node(s, n);
    }
    if (n->in_running) {
        return;
    }
    n->in_running = true;
    while (n->nin > 0 && n->up && !s->failed) {
        iev ev = n->in[0];
        memmove(n->in, n->in + 1, (n->nin - 1) * sizeof(*n->in));
        n->nin--;
        switch (ev.type) {
        case IEV_APPLIED:
            tr(s, "n%d event applied %" PRIu64, (int)n->id, ev.index);
            engine_applied(n->e, ev.index);
            break;
        case IEV_SNAP_BUILT:
            tr(s, "n%d event snapshot_built %" PRIu64 " err %d", (int)n->id,
               ev.meta->last_log_id.index, ev.err);
            engine_snapshot_built(n->e, ev.meta, ev.err);
            free(ev.meta);
            break;
        case IEV_UNREACHABLE:
            tr(s, "n%d event report_unreachable n%d %s", (int)n->id, (int)ev.to,
               zraft_err_name(ev.err));
            engine_report_unreachable(n->e, ev.to, ev.err);
            break;
        }
        node_after(s, n);
    }
    n->in_running = false;
}

/* ------------------------------------------------------- node lifecycle */

static void node_config(sim *s, node *n, engine_config *c)
{
    *c = s->cfg;
    c->id = n->id;
    c->seed = mix64(s->o.seed * 1000003ULL + n->id * 7919ULL +
                    n->incarnation * 104729ULL) |
              1;
}

static engine *node_engine_new(sim *s, node *n)
{
    engine_config c;
    const char *why = NULL;
    node_config(s, n, &c);
    if (engine_config_validate(&c, &why) != 0) {
        fail(s, "engine_config_validate: %s", why ? why : "?");
        return NULL;
    }
    engine *e = engine_new(&c);
    if (e == NULL) {
        fputs("zraft-sim: engine_new failed\n", stderr);
        abort();
    }
    return e;
}

/* Drops everything but the durable state. */
static void node_crash(sim *s, node *n)
{
    engine_destroy(&n->e);
    n->up = false;
    for (size_t i = 0; i < n->nops; i++) {
        op_free(&n->ops[i]);
    }
    n->nops = 0;
    for (size_t i = 0; i < n->nout; i++) {
        ocmd_free(&n->out[i]);
    }
    n->nout = 0;
    for (size_t i = 0; i < n->nin; i++) {
        free(n->in[i].meta);
    }
    n->nin = 0;
    n->build_pending = false;
    n->apply_due = 0;
    memset(&n->sm, 0, sizeof(n->sm));
    slog_copy(&n->vis, &n->dur);
    n->v_term = n->d_term;
    n->v_vote = n->d_vote;
    n->role = ROLE_FOLLOWER;
    (void)s;
}

/* A new engine from the durable state; the state machine restarts from
 * the durable snapshot and re-applies the log. */
static void node_restart(sim *s, node *n)
{
    n->incarnation++;
    n->e = node_engine_new(s, n);
    if (n->e == NULL) {
        return;
    }
    n->up = true;
    n->last_seq = 0;
    n->issued = 0;
    n->flushed = 0;
    n->commit = 0;
    n->term = 0;
    n->leader_term_checked = 0;
    engine_restore_vote(n->e, n->d_term, n->d_vote, 0);
    memset(&n->sm, 0, sizeof(n->sm));
    if (n->dur.has_snap) {
        engine_restore_snapshot(n->e, n->dur.snap);
        if (!sm_load(&n->sm, n->dur.snap, n->dur.snap_data)) {
            fail(s, "n%d: durable snapshot does not load", (int)n->id);
        }
        sm_hash_check(s, n, n->sm.applied, n->sm.hash, "restores");
    }
    int rc = engine_restore_entries(n->e, n->dur.e, n->dur.n);
    if (rc != 0) {
        fail(s, "n%d: engine_restore_entries: %s", (int)n->id,
             zraft_err_name(rc));
    }
    slog_copy(&n->vis, &n->dur);
    engine_start(n->e, s->now, n->sm.applied);
    tr(s,
       "n%d restarts (incarnation %u): term %" PRIu64 " vote n%d, log %" PRIu64
       "..%" PRIu64 ", snapshot %" PRIu64,
       (int)n->id, n->incarnation, n->d_term, (int)n->d_vote, n->dur.start,
       slog_last_index(&n->dur), slog_snap_index(&n->dur));
    node_after(s, n);
    /* An initial voter that crashed before its bootstrap entry was durable
     * bootstraps again, as a daemon given the initial members does when it
     * starts with an empty log. Its term may be durable already (SAVE_VOTE
     * flushed, APPEND not): that must not stop it, or a cluster whose
     * voters all crashed mid-bootstrap never gets a configuration. */
    if (!s->failed && n->id <= (zraft_id)s->nvoters && n->dur.n == 0 &&
        !n->dur.has_snap) {
        int rc = engine_initialize(n->e, &s->boot);
        tr(s, "n%d bootstraps again: %s", (int)n->id, zraft_err_name(rc));
        if (rc != 0) {
            fail(s,
                 "n%d cannot bootstrap again after a crash mid-bootstrap "
                 "(term %" PRIu64 ", empty log): %s",
                 (int)n->id, n->d_term, zraft_err_name(rc));
            return;
        }
        node_after(s, n);
    }
}

/* Makes the first `k` pending ops durable and reports it. */
static void node_flush(sim *s, node *n, size_t k)
{
    if (k == 0 || k > n->nops) {
        return;
    }
    for (size_t i = 0; i < k && !s->failed; i++) {
        op *o = &n->ops[i];
        uint64_t old_last = slog_last_index(&n->dur);
        switch (o->type) {
        case CMD_SAVE_VOTE:
            n->d_term = o->term;
            n->d_vote = o->vote;
            break;
        case CMD_APPEND:
            for (uint32_t j = 0; j < o->n; j++) {
                if (o->ents[j].id.index != slog_last_index(&n->dur) + 1) {
                    fail(s, "sim: durable append gap on n%d", (int)n->id);
                    break;
                }
                slog_push(&n->dur, &o->ents[j]);
            }
            break;
        case CMD_TRUNCATE:
            slog_truncate(&n->dur, o->since);
            for (uint64_t x = o->since; x <= old_last && x <= s->contig; x++) {
                quorum_check(s, x);
            }
            break;
        case CMD_PURGE:
            if (slog_snap_index(&n->dur) < o->upto.index) {
                fail(s,
                     "n%d purged up to %" PRIu64
                     " without a durable snapshot covering it (has %" PRIu64
                     ")",
                     (int)n->id, o->upto.index, slog_snap_index(&n->dur));
            }
            slog_purge(&n->dur, o->upto.index);
            break;
        case CMD_INSTALL_SNAPSHOT: {
            uint64_t from = n->dur.start;
            slog_reset(&n->dur, o->meta, o->data);
            for (uint64_t x = from; x <= old_last && x <= s->contig; x++) {
                quorum_check(s, x);
            }
            break;
        }
        }
    }
    uint64_t seq = n->ops[k - 1].seq;
    for (size_t i = 0; i < k; i++) {
        op_free(&n->ops[i]);
    }
    memmove(n->ops, n->ops + k, (n->nops - k) * sizeof(*n->ops));
    n->nops -= k;
    if (s->failed) {
        return;
    }
    tr(s, "n%d flushed io_seq %" PRIu64 " (%zu pending)", (int)n->id, seq,
       n->nops);
    n->flushed = seq;
    engine_io_flushed(n->e, seq);
    node_after(s, n);
}

static void node_free(node *n)
{
    if (n->e != NULL) {
        engine_destroy(&n->e);
    }
    for (size_t i = 0; i < n->nops; i++) {
        op_free(&n->ops[i]);
    }
    free(n->ops);
    for (size_t i = 0; i < n->nout; i++) {
        ocmd_free(&n->out[i]);
    }
    free(n->out);
    for (size_t i = 0; i < n->nin; i++) {
        free(n->in[i].meta);
    }
    free(n->in);
    slog_free(&n->dur);
    slog_free(&n->vis);
}

/* ------------------------------------------------------------- actions */

static node *pick_up(sim *s)
{
    int ups[MAX_NODES], k = 0;
    for (int i = 1; i <= s->nn; i++) {
        if (s->nodes[i].up) {
            ups[k++] = i;
        }
    }
    return k ? &s->nodes[ups[rng_below(&s->r, (uint64_t)k)]] : NULL;
}

/* An up leader (the one with the highest term), or NULL. */
static node *find_leader(sim *s)
{
    node *best = NULL;
    for (int i = 1; i <= s->nn; i++) {
        node *n = &s->nodes[i];
        if (n->up && n->role == ROLE_LEADER &&
            (best == NULL || n->term > best->term)) {
            best = n;
        }
    }
    return best;
}

/* A leader with probability pm/1000, else any up node. */
static node *pick_target(sim *s, uint32_t pm)
{
    node *l = find_leader(s);
    if (l != NULL && rng_pm(&s->r, pm)) {
        return l;
    }
    return pick_up(s);
}

static void deliver(sim *s, netmsg *nm)
{
    node *n = N(s, nm->m.to);
    if (!n->up || s->cut[nm->m.from][nm->m.to]) {
        s->st.msgs_dropped++;
        return;
    }
    if (s->o.verbose) {
        char b[160] = "";
        const msg *m = &nm->m;
        if (m->type == MSG_APPEND) {
            snprintf(b, sizeof(b),
                     " prev %" PRIu64 "/%" PRIu64 " n=%u commit %" PRIu64,
                     m->u.append.prev.index, m->u.append.prev.term,
                     m->u.append.n_entries, m->u.append.commit);
        } else if (m->type == MSG_APPEND_RESP) {
            snprintf(b, sizeof(b), " %s index %" PRIu64 " hint %" PRIu64,
                     m->u.append_resp.success ? "ok" : "reject",
                     m->u.append_resp.index, m->u.append_resp.hint_index);
        } else if (m->type == MSG_VOTE) {
            snprintf(b, sizeof(b), "%s last %" PRIu64 "/%" PRIu64,
                     m->u.vote.pre_vote ? " pre" : "",
                     m->u.vote.last_log_id.index, m->u.vote.last_log_id.term);
        } else if (m->type == MSG_VOTE_RESP) {
            snprintf(b, sizeof(b), "%s %s",
                     m->u.vote_resp.pre_vote ? " pre" : "",
                     m->u.vote_resp.granted ? "granted" : "denied");
        } else if (m->type == MSG_SNAPSHOT) {
            snprintf(b, sizeof(b), " %" PRIu64 "/%" PRIu64,
                     m->u.snapshot.meta->last_log_id.index,
                     m->u.snapshot.meta->last_log_id.term);
        } else if (m->type == MSG_HEARTBEAT) {
            snprintf(b, sizeof(b), " commit %" PRIu64 " ctx %" PRIu64,
                     m->u.heartbeat.commit, m->u.heartbeat.ctx);
        }
        tr(s, "n%d <- n%d %s term %" PRIu64 "%s", (int)m->to, (int)m->from,
           msg_type_name(m->type), m->term, b);
    }
    engine_recv(n->e, &nm->m);
    node_after(s, n);
}

/* Advances time: ticks every node, delivers what is due (in random order),
 * lets disks flush and state machines report. */
static void isolate(sim *s, int x, bool cut)
{
    for (int i = 1; i <= s->nn; i++) {
        s->cut[x][i] = s->cut[i][x] = cut && i != x;
    }
}

static void crash(sim *s, node *n)
{
    tr(s, "fault: crash n%d (%zu ops unflushed)", (int)n->id, n->nops);
    node_crash(s, n);
    s->st.crashes++;
    schedule(s, rng_range(&s->r, 20, 600), SF_RESTART, n->id);
}

static void run_scheduled(sim *s)
{
    size_t i = 0;
    while (i < s->nsched && !s->failed) {
        if (s->sched[i].at > s->now) {
            i++;
            continue;
        }
        sched_fault f = s->sched[i];
        memmove(s->sched + i, s->sched + i + 1,
                (s->nsched - i - 1) * sizeof(*s->sched));
        s->nsched--;
        node *n = N(s, f.id);
        switch (f.type) {
        case SF_CRASH:
            if (n->up) {
                crash(s, n);
            }
            break;
        case SF_RESTART:
            if (!n->up && !n->shut) {
                node_restart(s, n);
            }
            break;
        case SF_ISOLATE:
            tr(s, "fault: isolate n%d", (int)f.id);
            isolate(s, (int)f.id, true);
            s->st.partitions++;
            schedule(s, rng_range(&s->r, 50, 600), SF_REJOIN, f.id);
            break;
        case SF_REJOIN:
            tr(s, "fault: n%d rejoins the network", (int)f.id);
            isolate(s, (int)f.id, false);
            break;
        }
    }
}

static void act_time(sim *s, uint64_t dt, bool calm)
{
    s->now += dt;
    run_scheduled(s);
    for (int i = 1; i <= s->nn && !s->failed; i++) {
        node *n = &s->nodes[i];
        if (n->up) {
            engine_tick(n->e, s->now);
            node_after(s, n);
        }
    }
    /* Deliver the due messages in a random order. */
    size_t ndue = 0;
    for (size_t i = 0; i < s->nnet; i++) {
        if (s->net[i]->due <= s->now) {
            netmsg *t = s->net[ndue];
            s->net[ndue] = s->net[i];
            s->net[i] = t;
            ndue++;
        }
    }
    netmsg **due = xcalloc(ndue, sizeof(*due));
    if (ndue > 0) {
        memcpy(due, s->net, ndue * sizeof(*due));
        memmove(s->net, s->net + ndue, (s->nnet - ndue) * sizeof(*s->net));
        s->nnet -= ndue;
    }
    for (size_t i = ndue; i > 1; i--) {
        size_t j = rng_below(&s->r, i);
        netmsg *t = due[i - 1];
        due[i - 1] = due[j];
        due[j] = t;
    }
    for (size_t i = 0; i < ndue; i++) {
        if (!s->failed) {
            deliver(s, due[i]);
        }
        netmsg_free(due[i]);
    }
    free(due);
    for (int i = 1; i <= s->nn && !s->failed; i++) {
        node *n = &s->nodes[i];
        if (!n->up) {
            continue;
        }
        if (n->nops > 0 && (calm || rng_pm(&s->r, s->flush_pm))) {
            size_t k = (calm || rng_pm(&s->r, 600))
                           ? n->nops
                           : (size_t)rng_range(&s->r, 1, n->nops);
            node_flush(s, n, k);
        }
        if (n->up && n->apply_due > 0 && (calm || rng_pm(&s->r, 500))) {
            uint64_t a = n->apply_due;
            n->apply_due = 0;
            tr(s, "n%d event applied %" PRIu64 " (late)", (int)n->id, a);
            engine_applied(n->e, a);
            node_after(s, n);
        }
        if (n->up && n->build_pending && (calm || rng_pm(&s->r, 300))) {
            n->build_pending = false;
            snapshot_finish(s, n, &n->build);
            node_after(s, n);
        }
    }
}

static void act_write(sim *s)
{
    node *n = pick_target(s, 850);
    if (n == NULL) {
        return;
    }
    uint32_t k = (uint32_t)rng_range(&s->r, 1, 3);
    zraft_entry ents[3];
    uint64_t first = s->next_write;
    memset(ents, 0, sizeof(ents));
    for (uint32_t i = 0; i < k; i++) {
        unsigned char b[64];
        size_t len = 16 + rng_below(&s->r, 48);
        put64(b, s->o.seed);
        put64(b + 8, first + i);
        memset(b + 16, (int)(first + i), len - 16);
        ents[i].type = ZRAFT_ENTRY_NORMAL;
        ents[i].payload = zraft_buf_new(b, len);
    }
    s->next_write += k;
    if (s->next_write + 1 > s->writes_cap) {
        size_t old = s->writes_cap;
        GROW(s->write_index, s->writes_cap, s->next_write + 1);
        memset(s->write_index + old, 0,
               (s->writes_cap - old) * sizeof(*s->write_index));
    }
    int rc = engine_propose(n->e, ents, k);
    tr(s, "client: propose w%" PRIu64 "..w%" PRIu64 " to n%d: %s", first,
       first + k - 1, (int)n->id, zraft_err_name(rc));
    if (rc == 0) {
        s->st.writes_proposed += k;
    }
    node_after(s, n);
    for (uint32_t i = 0; i < k; i++) {
        zraft_buf_unref(ents[i].payload);
    }
}

static void act_read(sim *s)
{
    node *n = pick_target(s, 700);
    if (n == NULL) {
        return;
    }
    uint64_t id = s->next_read++;
    GROW(s->reads, s->reads_cap, id + 1);
    s->reads[id] = (read_req){.node = n->id, .required = s->max_commit};
    tr(s, "client: read %" PRIu64 " at n%d (committed so far %" PRIu64 ")", id,
       (int)n->id, s->max_commit);
    engine_read_index(n->e, id);
    node_after(s, n);
}

static void act_transfer(sim *s)
{
    node *l = find_leader(s);
    if (l == NULL) {
        return;
    }
    const zraft_membership *m = engine_membership(l->e);
    zraft_id cand[ZRAFT_MAX_MEMBERS];
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        if ((m->members[i].roles & ZRAFT_ROLE_VOTER) &&
            m->members[i].id != l->id) {
            cand[k++] = m->members[i].id;
        }
    }
    if (k == 0) {
        return;
    }
    zraft_id to = cand[rng_below(&s->r, k)];
    int rc = engine_transfer_leader(l->e, to);
    tr(s, "admin: transfer leadership n%d -> n%d: %s", (int)l->id, (int)to,
       zraft_err_name(rc));
    if (rc == 0) {
        s->st.transfers++;
    }
    node_after(s, l);
}

static void act_snapshot(sim *s)
{
    node *n = pick_up(s);
    if (n == NULL) {
        return;
    }
    int rc = engine_trigger_snapshot(n->e);
    tr(s, "admin: trigger snapshot on n%d: %s", (int)n->id, zraft_err_name(rc));
    node_after(s, n);
}

static void act_membership(sim *s)
{
    node *l = find_leader(s);
    if (l == NULL) {
        return;
    }
    zraft_membership m = *engine_membership(l->e);
    if (m.joint) {
        return;
    }
    zraft_id voters[ZRAFT_MAX_MEMBERS], learners[ZRAFT_MAX_MEMBERS],
        others[MAX_NODES];
    uint32_t nv = 0, nl = 0, no = 0;
    for (uint32_t i = 0; i < m.n; i++) {
        if (m.members[i].roles & ZRAFT_ROLE_VOTER) {
            voters[nv++] = m.members[i].id;
        } else {
            learners[nl++] = m.members[i].id;
        }
    }
    for (int i = 1; i <= s->nn; i++) {
        if (zraft_membership_find(&m, (zraft_id)i) == NULL) {
            others[no++] = (zraft_id)i;
        }
    }
    uint64_t index = 0;
    int rc;
    const char *what;
    zraft_id who;
    uint64_t choice = rng_below(&s->r, 4);
    if (choice == 0 && no > 0) {
        who = others[rng_below(&s->r, no)];
        char addr[16];
        snprintf(addr, sizeof(addr), "sim:%d", (int)who);
        rc = engine_add_learner(l->e, who, addr, &index);
        what = "add learner";
    } else if (choice == 1 && nl > 0 && nv < MAX_VOTERS) {
        who = learners[rng_below(&s->r, nl)];
        voters[nv++] = who;
        rc = engine_change_voters(l->e, voters, nv, &index);
        what = "promote";
    } else if (choice == 2 && nv > MIN_VOTERS) {
        uint32_t x = (uint32_t)rng_below(&s->r, nv);
        who = voters[x];
        voters[x] = voters[--nv];
        rc = engine_change_voters(l->e, voters, nv, &index);
        what = "remove voter";
    } else if (choice == 3 && nl > 0) {
        who = learners[rng_below(&s->r, nl)];
        rc = engine_remove_learner(l->e, who, &index);
        what = "remove learner";
    } else {
        return;
    }
    tr(s, "admin: %s n%d via n%d: %s (index %" PRIu64 ")", what, (int)who,
       (int)l->id, zraft_err_name(rc), index);
    if (rc == 0) {
        s->st.config_changes++;
    }
    node_after(s, l);
}

static void act_fault(sim *s)
{
    uint64_t c = rng_below(&s->r, 10);
    if (c < 3) {
        /* Leaders crash more often than others: it is what makes terms
         * with diverging logs (Figure 8 of the paper). */
        node *n = pick_target(s, 500);
        if (n != NULL) {
            crash(s, n);
        }
    } else if (c < 5) {
        for (int i = 1; i <= s->nn; i++) {
            node *n = &s->nodes[i];
            if (!n->up && rng_pm(&s->r, 700)) {
                node_restart(s, n);
            }
        }
    } else if (c < 6) {
        node *l = find_leader(s);
        int x = l != NULL && rng_pm(&s->r, 500)
                    ? (int)l->id
                    : (int)rng_range(&s->r, 1, (uint64_t)s->nn);
        tr(s, "fault: isolate n%d", x);
        isolate(s, x, true);
        s->st.partitions++;
    } else if (c < 7) {
        bool side[MAX_NODES + 1];
        for (int i = 1; i <= s->nn; i++) {
            side[i] = rng_pm(&s->r, 500);
        }
        tr(s, "fault: split the network in two");
        for (int i = 1; i <= s->nn; i++) {
            for (int j = 1; j <= s->nn; j++) {
                s->cut[i][j] = side[i] != side[j];
            }
        }
        s->st.partitions++;
    } else if (c < 8) {
        int a = (int)rng_range(&s->r, 1, (uint64_t)s->nn);
        int b = (int)rng_range(&s->r, 1, (uint64_t)s->nn);
        if (a != b) {
            tr(s, "fault: cut n%d -> n%d one way", a, b);
            s->cut[a][b] = true;
            s->st.partitions++;
        }
    } else {
        tr(s, "fault: heal the network");
        memset(s->cut, 0, sizeof(s->cut));
    }
}

static void act_flush(sim *s)
{
    node *n = pick_up(s);
    if (n != NULL && n->nops > 0) {
        node_flush(s, n, (size_t)rng_range(&s->r, 1, n->nops));
    }
}

static void one_step(sim *s)
{
    uint64_t c = rng_below(&s->r, 1000);
    if (c < 600) {
        act_time(s, rng_range(&s->r, 1, 12), false);
    } else if (c < 750) {
        act_write(s);
    } else if (c < 800) {
        act_read(s);
    } else if (c < 850) {
        act_flush(s);
    } else if (c < 850 + s->fault_pm) {
        act_fault(s);
    } else if (c < 920) {
        act_membership(s);
    } else if (c < 940) {
        act_transfer(s);
    } else if (c < 960) {
        act_snapshot(s);
    } else {
        act_time(s, rng_range(&s->r, 1, 12), false);
    }
}

/* ------------------------------------------------------------ liveness */

static bool converged(sim *s, char *why, size_t len)
{
    node *l = find_leader(s);
    if (l == NULL) {
        snprintf(why, len, "no leader");
        return false;
    }
    const zraft_membership *m = engine_membership(l->e);
    if (m->joint) {
        snprintf(why, len, "leader n%d still in a joint config", (int)l->id);
        return false;
    }
    if (s->final_write == 0 || s->write_index[s->final_write] == 0) {
        snprintf(why, len, "final write w%" PRIu64 " not applied",
                 s->final_write);
        return false;
    }
    for (uint32_t i = 0; i < m->n; i++) {
        node *n = N(s, m->members[i].id);
        if (n == NULL || !n->up) {
            snprintf(why, len, "member n%d down", (int)m->members[i].id);
            return false;
        }
        if (n->commit != l->commit || n->sm.applied != l->commit ||
            n->sm.hash != l->sm.hash ||
            n->sm.applied < s->write_index[s->final_write]) {
            snprintf(why, len,
                     "n%d commit %" PRIu64 " applied %" PRIu64
                     ", leader n%d commit %" PRIu64 " applied %" PRIu64,
                     (int)n->id, n->commit, n->sm.applied, (int)l->id,
                     l->commit, l->sm.applied);
            return false;
        }
    }
    return true;
}

static void liveness(sim *s)
{
    s->liveness = true;
    s->nsched = 0;
    tr(s, "liveness: heal everything, restart crashed nodes, no more "
          "faults");
    memset(s->cut, 0, sizeof(s->cut));
    s->drop_pm = 0;
    s->dup_pm = 0;
    s->long_delay_pm = 0;
    s->delay_min = 1;
    s->delay_max = 5;
    s->apply_async_pm = 0;
    s->build_async_pm = 0;
    for (int i = 1; i <= s->nn && !s->failed; i++) {
        if (!s->nodes[i].up) {
            node_restart(s, &s->nodes[i]);
        }
    }
    uint64_t deadline = s->now + LIVENESS_MS;
    char why[200] = "no step";
    while (!s->failed && s->now < deadline) {
        s->step++;
        act_time(s, 5, true);
        node *l = find_leader(s);
        if (l != NULL) {
            /* Nodes in neither the latest committed config nor the
             * leader's are shut down, as an operator would; a node shut
             * on the word of a stale leader comes back. */
            const zraft_membership *m = engine_membership(l->e);
            uint64_t cm = s->nmh > 0 ? s->mh[s->nmh - 1].members : ~0ULL;
            for (int i = 1; i <= s->nn; i++) {
                node *n = &s->nodes[i];
                bool member = zraft_membership_find(m, n->id) != NULL ||
                              (cm >> i & 1) != 0 || n == l;
                if (n->up && !member) {
                    tr(s, "liveness: shut down n%d (not a member)", (int)n->id);
                    node_crash(s, n);
                    n->shut = true;
                } else if (n->shut && member) {
                    n->shut = false;
                    node_restart(s, n);
                }
            }
            bool lost = s->final_write == 0 ||
                        (s->write_index[s->final_write] == 0 &&
                         s->now - s->final_write_at > RESUBMIT_MS);
            if (lost) {
                s->final_write = s->next_write;
                s->final_write_at = s->now;
                zraft_entry en = {.type = ZRAFT_ENTRY_NORMAL};
                unsigned char b[16];
                put64(b, s->o.seed);
                put64(b + 8, s->final_write);
                en.payload = zraft_buf_new(b, sizeof(b));
                s->next_write++;
                if (s->next_write + 1 > s->writes_cap) {
                    size_t old = s->writes_cap;
                    GROW(s->write_index, s->writes_cap, s->next_write + 1);
                    memset(s->write_index + old, 0,
                           (s->writes_cap - old) * sizeof(*s->write_index));
                }
                int rc = engine_propose(l->e, &en, 1);
                tr(s, "liveness: final write w%" PRIu64 " to n%d: %s",
                   s->final_write, (int)l->id, zraft_err_name(rc));
                node_after(s, l);
                zraft_buf_unref(en.payload);
            }
        }
        if (converged(s, why, sizeof(why))) {
            tr(s, "liveness: converged");
            return;
        }
    }
    if (!s->failed) {
        fail(s, "liveness: no convergence %d ms after healing: %s", LIVENESS_MS,
             why);
    }
}

/* ----------------------------------------------------------------- run */

static void sim_setup(sim *s)
{
    rng *r = &s->r;
    s->nvoters = (int)s->o.voters;
    if (s->nvoters == 0) {
        static const int choices[] = {3, 3, 5, 5, 7};
        s->nvoters = choices[rng_below(r, 5)];
    }
    if (s->nvoters > MAX_VOTERS) {
        s->nvoters = MAX_VOTERS;
    }
    s->nn = s->nvoters + (int)rng_below(r, 3);
    engine_config_default(&s->cfg, 1);
    s->cfg.pre_vote = rng_pm(r, 700);
    s->cfg.check_quorum = rng_pm(r, 700);
    /* One entry per message often: a new leader then replicates an old
     * term's entry apart from its own blank entry (§5.4.2's case). */
    s->cfg.max_entries_per_msg =
        rng_pm(r, 300) ? 1 : (uint32_t)rng_range(r, 1, 64);
    s->cfg.max_bytes_per_msg = (uint32_t)rng_range(r, 64, 4096);
    s->cfg.max_inflight_msgs = (uint32_t)rng_range(r, 1, 8);
    s->cfg.max_inflight_bytes = rng_range(r, 256, 65536);
    s->cfg.snapshot_threshold = rng_pm(r, 300) ? 0 : rng_range(r, 8, 120);
    s->cfg.snapshot_keep_entries = rng_below(r, 12);
    s->strict_order = rng_pm(r, 300);
    s->flush_pm = (uint32_t)rng_range(r, 200, 950);
    s->apply_async_pm = (uint32_t)rng_range(r, 0, 600);
    s->build_async_pm = (uint32_t)rng_range(r, 0, 700);
    s->drop_pm = (uint32_t)rng_range(r, 0, 100);
    s->dup_pm = (uint32_t)rng_range(r, 0, 50);
    s->long_delay_pm = (uint32_t)rng_range(r, 0, 50);
    s->delay_min = (uint32_t)rng_range(r, 1, 5);
    s->delay_max = s->delay_min + (uint32_t)rng_range(r, 0, 30);
    s->react_pm = rng_pm(r, 400) ? 0 : (uint32_t)rng_range(r, 50, 500);
    s->fault_pm = rng_pm(r, 250) ? (uint32_t)rng_range(r, 40, 60)
                                 : (uint32_t)rng_range(r, 5, 40);
    tr(s,
       "setup: %d voters, %d nodes, pre_vote %d check_quorum %d, "
       "max_entries %u, inflight %u, snapshot_threshold %" PRIu64
       " keep %" PRIu64 ", strict %d, flush %u‰, drop %u‰, dup %u‰, "
       "delay %u..%u ms",
       s->nvoters, s->nn, s->cfg.pre_vote, s->cfg.check_quorum,
       s->cfg.max_entries_per_msg, s->cfg.max_inflight_msgs,
       s->cfg.snapshot_threshold, s->cfg.snapshot_keep_entries, s->strict_order,
       s->flush_pm, s->drop_pm, s->dup_pm, s->delay_min, s->delay_max);

    zraft_membership *bm = &s->boot;
    memset(bm, 0, sizeof(*bm));
    for (int i = 1; i <= s->nvoters; i++) {
        bm->members[bm->n].id = (zraft_id)i;
        bm->members[bm->n].roles = ZRAFT_ROLE_VOTER;
        snprintf(bm->members[bm->n].addr, ZRAFT_ADDR_MAX, "sim:%d", i);
        bm->n++;
    }
    for (int i = 1; i <= s->nn; i++) {
        node *n = &s->nodes[i];
        n->id = (zraft_id)i;
        slog_init(&n->dur);
        slog_init(&n->vis);
        n->incarnation = 1;
        n->e = node_engine_new(s, n);
        if (n->e == NULL) {
            return;
        }
        n->up = true;
        engine_start(n->e, s->now, 0);
        node_after(s, n);
        if (i <= s->nvoters) {
            int rc = engine_initialize(n->e, bm);
            if (rc != 0) {
                fail(s, "engine_initialize on n%d: %s", i, zraft_err_name(rc));
            }
            node_after(s, n);
        }
    }
}

static void sim_free(sim *s)
{
    for (int i = 1; i <= s->nn; i++) {
        node_free(&s->nodes[i]);
    }
    for (size_t i = 0; i < s->nnet; i++) {
        netmsg_free(s->net[i]);
    }
    free(s->net);
    free(s->truth);
    free(s->mh);
    free(s->lm);
    free(s->leaders);
    free(s->reads);
    free(s->write_index);
    free(s->sched);
}

bool sim_run(const sim_options *o, sim_result *res)
{
    sim *s = xcalloc(1, sizeof(*s));
    s->o = *o;
    if (s->o.steps == 0) {
        s->o.steps = SIM_DEFAULT_STEPS;
    }
    s->out = o->trace ? o->trace : stdout;
    rng_seed(&s->r, o->seed);
    rng_seed(&s->check_rng, ~o->seed);
    s->next_read = 1;
    s->next_write = 1;
    GROW(s->write_index, s->writes_cap, 2);
    memset(s->write_index, 0, s->writes_cap * sizeof(*s->write_index));
    sim_setup(s);
    while (!s->failed && s->step < s->o.steps) {
        s->step++;
        one_step(s);
        if (!s->failed && s->step % FULL_CHECK_EVERY == 0) {
            full_check(s);
        }
    }
    if (!s->failed) {
        liveness(s);
    }
    if (!s->failed) {
        full_check(s);
    }
    memset(res, 0, sizeof(*res));
    res->ok = !s->failed;
    res->step = s->fail_step;
    snprintf(res->what, sizeof(res->what), "%s", s->what);
    s->st.runs = 1;
    s->st.steps = s->step;
    s->st.virtual_ms = s->now;
    s->st.committed = s->max_commit;
    res->stats = s->st;
    if (s->o.verbose) {
        fprintf(s->out,
                "seed %" PRIu64 ": %s after %" PRIu64 " steps, %" PRIu64
                " ms\n",
                o->seed, res->ok ? "ok" : "FAILED", s->step, s->now);
        sim_stats_print(s->out, &s->st);
    }
    sim_free(s);
    free(s);
    return res->ok;
}

void sim_stats_add(sim_stats *a, const sim_stats *b)
{
    a->runs += b->runs;
    a->steps += b->steps;
    a->virtual_ms += b->virtual_ms;
    a->leaders += b->leaders;
    a->max_term = a->max_term > b->max_term ? a->max_term : b->max_term;
    a->committed = a->committed > b->committed ? a->committed : b->committed;
    a->writes_proposed += b->writes_proposed;
    a->writes_applied += b->writes_applied;
    a->msgs_sent += b->msgs_sent;
    a->msgs_dropped += b->msgs_dropped;
    a->msgs_duplicated += b->msgs_duplicated;
    a->crashes += b->crashes;
    a->partitions += b->partitions;
    a->snapshots_built += b->snapshots_built;
    a->snapshots_sent += b->snapshots_sent;
    a->snapshots_installed += b->snapshots_installed;
    a->compacted_reports += b->compacted_reports;
    a->stale_dropped += b->stale_dropped;
    a->config_changes += b->config_changes;
    a->transfers += b->transfers;
    a->reads_ready += b->reads_ready;
    a->reads_failed += b->reads_failed;
}

void sim_stats_print(FILE *f, const sim_stats *s)
{
    fprintf(
        f,
        "stats: runs %" PRIu64 ", steps %" PRIu64 ", virtual %" PRIu64
        " ms, leaders %" PRIu64 " (max term %" PRIu64 "), max commit %" PRIu64
        ", writes %" PRIu64 " proposed / %" PRIu64 " applied, msgs %" PRIu64
        " (%" PRIu64 " dropped, %" PRIu64 " dup), crashes %" PRIu64
        ", partitions %" PRIu64 ", snapshots %" PRIu64 " built / %" PRIu64
        " sent / %" PRIu64 " installed, compacted %" PRIu64
        ", stale held commands dropped %" PRIu64 ", config changes %" PRIu64
        ", transfers %" PRIu64 ", reads %" PRIu64 " ok / %" PRIu64 " failed\n",
        s->runs, s->steps, s->virtual_ms, s->leaders, s->max_term, s->committed,
        s->writes_proposed, s->writes_applied, s->msgs_sent, s->msgs_dropped,
        s->msgs_duplicated, s->crashes, s->partitions, s->snapshots_built,
        s->snapshots_sent, s->snapshots_installed, s->compacted_reports,
        s->stale_dropped, s->config_changes, s->transfers, s->reads_ready,
        s->reads_failed);
}
