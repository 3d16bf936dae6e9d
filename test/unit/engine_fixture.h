/* engine_fixture.h - helpers for the engine's unit tests: one engine under
 * test, fed hand-built messages from its (imaginary) peers, with virtual
 * time and a fixed PRNG seed so that every run is the same.
 *
 * Every event helper (fx_tick, fx_recv, fx_flush, ...) clears the engine's
 * output first, so after it returns engine_commands() holds exactly what
 * that event produced; fx_count / fx_nth / fx_sent / fx_repl search it.
 * Helpers also remember the highest io_seq seen, so fx_flush() can make
 * every storage op issued so far durable.
 *
 * Cluster states are built by feeding messages, never by poking internals:
 * fx_boot() bootstraps node `id` of voters 1..n (engine_initialize),
 * fx_elect() makes it leader, fx_lead() also has every follower acknowledge
 * the leader's blank entry so that it is committed. */
#ifndef ZRAFT_TEST_ENGINE_FIXTURE_H
#define ZRAFT_TEST_ENGINE_FIXTURE_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"

#define FX_ELECTION_MIN 100
#define FX_ELECTION_MAX 200
#define FX_HEARTBEAT    10
#define FX_MAX_ENTS     256
#define FX_MAX_BUFS     64

typedef struct {
    engine *e;
    engine_config c;
    uint64_t now;     /* virtual time (ms) */
    uint64_t io_seen; /* highest io_seq in any output so far */
    /* Entries for MSG_APPEND built by fx_append_msg (payload-less NORMAL
     * entries unless a test sets type/payload). */
    zraft_entry ents[FX_MAX_ENTS];
    /* Entries of the last fx_propose (CMD_APPEND borrows them); their
     * payloads are released at once, so only ids and types stay valid. */
    zraft_entry prop[64];
    /* Buffers the fixture allocated (membership payloads), freed at close. */
    zraft_buf *bufs[FX_MAX_BUFS];
    int n_bufs;
} fx;

/* ------------------------------------------------------------ config */

/* Fixed timers and seed; pre-vote and check-quorum on (the defaults). */
static inline void fx_config(engine_config *c, zraft_id id)
{
    engine_config_default(c, id);
    c->seed = 0x5eed0000u + id;
    c->election_timeout_min_ms = FX_ELECTION_MIN;
    c->election_timeout_max_ms = FX_ELECTION_MAX;
    c->heartbeat_interval_ms = FX_HEARTBEAT;
    c->snapshot_threshold = 0;
    c->snapshot_keep_entries = 0;
}

/* `m` = voters `v[0..nv)` plus learners `l[0..nl)`. */
static inline void fx_members(zraft_membership *m, const zraft_id *v,
                              uint32_t nv, const zraft_id *l, uint32_t nl)
{
    memset(m, 0, sizeof(*m));
    for (uint32_t i = 0; i < nv + nl; i++) {
        zraft_member *p = &m->members[m->n++];
        p->id = i < nv ? v[i] : l[i - nv];
        p->roles = i < nv ? ZRAFT_ROLE_VOTER : ZRAFT_ROLE_LEARNER;
        snprintf(p->addr, sizeof(p->addr), "n%llu", (unsigned long long)p->id);
    }
}

/* Voters 1..n. */
static inline void fx_members_n(zraft_membership *m, uint32_t n)
{
    zraft_id v[ZRAFT_MAX_MEMBERS];
    for (uint32_t i = 0; i < n; i++) {
        v[i] = i + 1;
    }
    fx_members(m, v, n, NULL, 0);
}

/* An encoded membership payload, owned by the fixture. */
static inline zraft_buf *fx_membership_buf(fx *f, const zraft_membership *m)
{
    cr_assert(f->n_bufs < FX_MAX_BUFS);
    zraft_buf *b = zraft_buf_new(NULL, zraft_membership_encoded_len(m));
    cr_assert_not_null(b);
    zraft_membership_encode(m, b->data);
    f->bufs[f->n_bufs++] = b;
    return b;
}

/* ------------------------------------------------------------ output */

static inline const command *fx_out(const fx *f, size_t *n)
{
    return engine_commands(f->e, n);
}

/* Records the highest io_seq in the current output. */
static inline void fx_note(fx *f)
{
    size_t n;
    const command *c = fx_out(f, &n);
    for (size_t i = 0; i < n; i++) {
        if (c[i].io_seq > f->io_seen) {
            f->io_seen = c[i].io_seq;
        }
    }
}

/* Start / end of an event the test calls on the engine itself. */
static inline void fx_begin(fx *f)
{
    engine_commands_clear(f->e);
}

static inline void fx_end(fx *f)
{
    fx_note(f);
}

static inline size_t fx_count(const fx *f, uint8_t type)
{
    size_t n, k = 0;
    const command *c = fx_out(f, &n);
    for (size_t i = 0; i < n; i++) {
        k += c[i].type == type;
    }
    return k;
}

/* The k-th (from 0) command of `type`, or NULL. */
static inline const command *fx_nth(const fx *f, uint8_t type, size_t k)
{
    size_t n;
    const command *c = fx_out(f, &n);
    for (size_t i = 0; i < n; i++) {
        if (c[i].type == type && k-- == 0) {
            return &c[i];
        }
    }
    return NULL;
}

static inline const command *fx_find(const fx *f, uint8_t type)
{
    return fx_nth(f, type, 0);
}

/* Position of `c` in the output (for ordering asserts). */
static inline size_t fx_pos(const fx *f, const command *c)
{
    size_t n;
    const command *base = fx_out(f, &n);
    return (size_t)(c - base);
}

/* The k-th CMD_SEND of message `type` to `to` (0: any peer), or NULL. */
static inline const command *fx_sent_nth(const fx *f, uint8_t type, zraft_id to,
                                         size_t k)
{
    size_t n;
    const command *c = fx_out(f, &n);
    for (size_t i = 0; i < n; i++) {
        if (c[i].type == CMD_SEND && c[i].u.send.type == type &&
            (to == 0 || c[i].u.send.to == to) && k-- == 0) {
            return &c[i];
        }
    }
    return NULL;
}

static inline const command *fx_sent(const fx *f, uint8_t type, zraft_id to)
{
    return fx_sent_nth(f, type, to, 0);
}

static inline size_t fx_sent_count(const fx *f, uint8_t type, zraft_id to)
{
    size_t k = 0;
    while (fx_sent_nth(f, type, to, k) != NULL) {
        k++;
    }
    return k;
}

/* The k-th CMD_REPLICATE to `to`, or NULL. */
static inline const command *fx_repl_nth(const fx *f, zraft_id to, size_t k)
{
    size_t n;
    const command *c = fx_out(f, &n);
    for (size_t i = 0; i < n; i++) {
        if (c[i].type == CMD_REPLICATE && c[i].u.replicate.to == to &&
            k-- == 0) {
            return &c[i];
        }
    }
    return NULL;
}

static inline const command *fx_repl(const fx *f, zraft_id to)
{
    return fx_repl_nth(f, to, 0);
}

static inline size_t fx_repl_count(const fx *f, zraft_id to)
{
    size_t k = 0;
    while (fx_repl_nth(f, to, k) != NULL) {
        k++;
    }
    return k;
}

/* The highest upto of any CMD_APPLY in the output (0: none). */
static inline uint64_t fx_apply_upto(const fx *f)
{
    uint64_t u = 0;
    for (size_t k = 0; fx_nth(f, CMD_APPLY, k) != NULL; k++) {
        const command *c = fx_nth(f, CMD_APPLY, k);
        if (c->u.apply.upto > u) {
            u = c->u.apply.upto;
        }
    }
    return u;
}

/* ------------------------------------------------------------ status */

static inline engine_status fx_status(const fx *f)
{
    engine_status s;
    engine_get_status(f->e, &s);
    return s;
}

static inline uint8_t fx_role(const fx *f)
{
    return fx_status(f).role;
}

static inline uint64_t fx_term(const fx *f)
{
    return fx_status(f).term;
}

static inline uint64_t fx_committed(const fx *f)
{
    return fx_status(f).committed;
}

static inline uint64_t fx_last(const fx *f)
{
    return fx_status(f).last_log_id.index;
}

/* ------------------------------------------------------------ events */

/* Advances virtual time by `ms`, one millisecond per engine_tick. The
 * output of all those ticks is kept. */
static inline void fx_tick(fx *f, uint64_t ms)
{
    fx_begin(f);
    for (uint64_t i = 0; i < ms; i++) {
        engine_tick(f->e, ++f->now);
    }
    fx_end(f);
}

/* Ticks until the role is `role` (true) or `max_ms` passed (false); the
 * output of all the ticks is kept. */
static inline bool fx_tick_until_role(fx *f, uint8_t role, uint64_t max_ms)
{
    fx_begin(f);
    for (uint64_t i = 0; i < max_ms && fx_role(f) != role; i++) {
        engine_tick(f->e, ++f->now);
    }
    fx_end(f);
    return fx_role(f) == role;
}

static inline void fx_recv(fx *f, const msg *m)
{
    fx_begin(f);
    engine_recv(f->e, m);
    fx_end(f);
}

/* Every storage op issued so far is durable. */
static inline void fx_flush(fx *f)
{
    fx_begin(f);
    engine_io_flushed(f->e, f->io_seen);
    fx_end(f);
}

static inline void fx_flush_to(fx *f, uint64_t seq)
{
    fx_begin(f);
    engine_io_flushed(f->e, seq);
    fx_end(f);
}

static inline void fx_applied(fx *f, uint64_t index)
{
    fx_begin(f);
    engine_applied(f->e, index);
    fx_end(f);
}

/* Proposes `n` NORMAL entries of `bytes` payload bytes each; returns the
 * engine's result. The fixture keeps no reference to the payloads. */
static inline int fx_propose(fx *f, uint32_t n, size_t bytes)
{
    zraft_entry *ents = f->prop;
    cr_assert(n <= 64);
    memset(f->prop, 0, sizeof(f->prop));
    for (uint32_t i = 0; i < n; i++) {
        ents[i].type = ZRAFT_ENTRY_NORMAL;
        ents[i].payload = bytes ? zraft_buf_new(NULL, bytes) : NULL;
    }
    fx_begin(f);
    int rc = engine_propose(f->e, ents, n);
    fx_end(f);
    for (uint32_t i = 0; i < n; i++) {
        zraft_buf_unref(ents[i].payload);
        ents[i].payload = NULL;
    }
    return rc;
}

static inline void fx_read(fx *f, uint64_t req_id)
{
    fx_begin(f);
    engine_read_index(f->e, req_id);
    fx_end(f);
}

/* ---------------------------------------------------------- messages */

static inline msg fx_msg(uint8_t type, zraft_id from, zraft_id to,
                         uint64_t term)
{
    msg m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.from = from;
    m.to = to;
    m.term = term;
    return m;
}

static inline msg fx_vote_req(zraft_id from, zraft_id to, uint64_t term,
                              uint64_t last_term, uint64_t last_index, bool pre)
{
    msg m = fx_msg(MSG_VOTE, from, to, term);
    m.u.vote.last_log_id.term = last_term;
    m.u.vote.last_log_id.index = last_index;
    m.u.vote.pre_vote = pre;
    return m;
}

static inline msg fx_vote_resp(zraft_id from, zraft_id to, uint64_t term,
                               bool granted, bool pre)
{
    msg m = fx_msg(MSG_VOTE_RESP, from, to, term);
    m.u.vote_resp.granted = granted;
    m.u.vote_resp.pre_vote = pre;
    return m;
}

/* AppendEntries from `from` to the engine under test with entries at
 * prev_index+1.. whose terms are `terms[0..n)`. The entries live in f->ents
 * (NORMAL, no payload) until the next fx_append_msg. */
static inline msg fx_append_msg(fx *f, zraft_id from, uint64_t term,
                                uint64_t prev_index, uint64_t prev_term,
                                uint64_t commit, uint32_t n,
                                const uint64_t *terms)
{
    cr_assert(n <= FX_MAX_ENTS);
    msg m = fx_msg(MSG_APPEND, from, f->c.id, term);
    m.u.append.prev.index = prev_index;
    m.u.append.prev.term = prev_term;
    m.u.append.commit = commit;
    m.u.append.n_entries = n;
    m.u.append.entries = n ? f->ents : NULL;
    for (uint32_t i = 0; i < n; i++) {
        memset(&f->ents[i], 0, sizeof(f->ents[i]));
        f->ents[i].id.index = prev_index + 1 + i;
        f->ents[i].id.term = terms[i];
        f->ents[i].type = ZRAFT_ENTRY_NORMAL;
    }
    return m;
}

static inline msg fx_append_resp(zraft_id from, zraft_id to, uint64_t term,
                                 bool success, uint64_t index,
                                 uint64_t hint_index, uint64_t hint_term)
{
    msg m = fx_msg(MSG_APPEND_RESP, from, to, term);
    m.u.append_resp.success = success;
    m.u.append_resp.index = index;
    m.u.append_resp.hint_index = hint_index;
    m.u.append_resp.hint_term = hint_term;
    return m;
}

static inline msg fx_hb(zraft_id from, zraft_id to, uint64_t term,
                        uint64_t commit, uint64_t ctx)
{
    msg m = fx_msg(MSG_HEARTBEAT, from, to, term);
    m.u.heartbeat.commit = commit;
    m.u.heartbeat.ctx = ctx;
    return m;
}

static inline msg fx_hb_resp(zraft_id from, zraft_id to, uint64_t term,
                             uint64_t ctx)
{
    msg m = fx_msg(MSG_HEARTBEAT_RESP, from, to, term);
    m.u.heartbeat_resp.ctx = ctx;
    return m;
}

/* Shortcuts: a success acknowledgement of `index` from `from` to the
 * engine under test, in the engine's current term. */
static inline void fx_ack(fx *f, zraft_id from, uint64_t index)
{
    msg m = fx_append_resp(from, f->c.id, fx_term(f), true, index, 0, 0);
    fx_recv(f, &m);
}

/* ------------------------------------------------------ cluster states */

/* Engine for config `c`, started at time 0, no state. */
static inline void fx_open(fx *f, const engine_config *c)
{
    memset(f, 0, sizeof(*f));
    f->c = *c;
    f->e = engine_new(c);
    cr_assert_not_null(f->e, "engine_new");
    fx_begin(f);
    engine_start(f->e, 0, 0);
    fx_end(f);
}

static inline void fx_close(fx *f)
{
    engine_destroy(&f->e);
    for (int i = 0; i < f->n_bufs; i++) {
        zraft_buf_unref(f->bufs[i]);
    }
    f->n_bufs = 0;
}

/* Bootstraps with `m` (engine_initialize) and flushes. */
static inline void fx_boot_with(fx *f, const engine_config *c,
                                const zraft_membership *m)
{
    fx_open(f, c);
    fx_begin(f);
    int rc = engine_initialize(f->e, m);
    fx_end(f);
    cr_assert_eq(rc, 0, "engine_initialize: %d", rc);
    fx_flush(f);
}

/* Node `id` of voters 1..n, default fixture config. */
static inline void fx_boot(fx *f, zraft_id id, uint32_t n)
{
    engine_config c;
    zraft_membership m;
    fx_config(&c, id);
    fx_members_n(&m, n);
    fx_boot_with(f, &c, &m);
}

/* Follower (term 1, log [1]) becomes leader: times out, wins the pre-vote
 * (if on) and the vote with a grant from every other voter, and flushes.
 * Followers have acknowledged nothing; their progress is probing. */
static inline void fx_elect(fx *f)
{
    uint8_t want = f->c.pre_vote ? ROLE_PRECANDIDATE : ROLE_CANDIDATE;
    cr_assert(fx_tick_until_role(f, want, 10 * FX_ELECTION_MAX),
              "no campaign (role %d)", fx_role(f));
    const zraft_membership *mb = engine_membership(f->e);
    zraft_id voters[ZRAFT_MAX_MEMBERS];
    uint32_t nv = 0;
    for (uint32_t i = 0; i < mb->n; i++) {
        if ((mb->members[i].roles &
             (ZRAFT_ROLE_VOTER | ZRAFT_ROLE_VOTER_OLD)) &&
            mb->members[i].id != f->c.id) {
            voters[nv++] = mb->members[i].id;
        }
    }
    if (f->c.pre_vote) {
        uint64_t t = fx_term(f) + 1;
        for (uint32_t i = 0; i < nv && fx_role(f) == ROLE_PRECANDIDATE; i++) {
            msg r = fx_vote_resp(voters[i], f->c.id, t, true, true);
            fx_recv(f, &r);
        }
        cr_assert_eq(fx_role(f), ROLE_CANDIDATE);
    }
    fx_flush(f);
    uint64_t t = fx_term(f);
    for (uint32_t i = 0; i < nv && fx_role(f) == ROLE_CANDIDATE; i++) {
        msg r = fx_vote_resp(voters[i], f->c.id, t, true, false);
        fx_recv(f, &r);
    }
    cr_assert_eq(fx_role(f), ROLE_LEADER);
    fx_flush(f);
}

/* fx_elect, then every other member acknowledges the leader's log, which
 * commits the blank entry; followers' progress is pipelining. */
static inline void fx_lead(fx *f)
{
    fx_elect(f);
    const zraft_membership *mb = engine_membership(f->e);
    zraft_id peers[ZRAFT_MAX_MEMBERS];
    uint32_t np = 0;
    for (uint32_t i = 0; i < mb->n; i++) {
        if (mb->members[i].id != f->c.id) {
            peers[np++] = mb->members[i].id;
        }
    }
    uint64_t last = fx_last(f);
    for (uint32_t i = 0; i < np; i++) {
        fx_ack(f, peers[i], last);
    }
    cr_assert_eq(fx_committed(f), last);
    fx_begin(f);
}

/* Makes the engine a follower of `leader` in `term` whose log (terms of
 * entries 2..) is appended after the bootstrap entry, committed to
 * `commit`. Flushes. */
static inline void fx_follow(fx *f, zraft_id leader, uint64_t term, uint32_t n,
                             const uint64_t *terms, uint64_t commit)
{
    msg m = fx_append_msg(f, leader, term, 1, 1, commit, n, terms);
    fx_recv(f, &m);
    cr_assert_eq(fx_status(f).leader, leader);
    fx_flush(f);
}

#endif /* ZRAFT_TEST_ENGINE_FIXTURE_H */
