/* engine.c - the Raft engine: lifecycle, the event handlers and the command
 * list they produce.
 *
 * One struct holds all Raft state; every public function is an event that
 * may change it and appends commands for the driver (see engine.h for the
 * output contract). The sections follow the paper: election (§5.2, with
 * pre-vote and check-quorum from the thesis §9.6/§6.2), replication (§5.3),
 * commitment (§5.4.2), membership (§6, joint consensus), snapshots (§7),
 * read-index (thesis §6.4) and leadership transfer (thesis §3.10). */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "progress.h"

/* ================================================================ names */

const char *msg_type_name(int type)
{
    static const char *const names[] = {
        "NONE",          "VOTE",       "VOTE_RESP",      "APPEND",
        "APPEND_RESP",   "HEARTBEAT",  "HEARTBEAT_RESP", "SNAPSHOT",
        "SNAPSHOT_RESP", "TIMEOUT_NOW"};
    return type > 0 && type < MSG__COUNT ? names[type] : "UNKNOWN";
}

const char *cmd_type_name(int type)
{
    static const char *const names[] = {
        "NONE",  "SAVE_VOTE",      "APPEND",           "TRUNCATE",
        "PURGE", "SEND",           "REPLICATE",        "SEND_SNAPSHOT",
        "APPLY", "BUILD_SNAPSHOT", "INSTALL_SNAPSHOT", "STREAMS",
        "ROLE",  "READ_READY",     "READ_FAIL"};
    return type > 0 && type < CMD__COUNT ? names[type] : "UNKNOWN";
}

const char *engine_role_name(int role)
{
    static const char *const names[] = {"follower", "precandidate", "candidate",
                                        "leader", "learner"};
    return role >= 0 && role <= ROLE_LEARNER ? names[role] : "unknown";
}

/* =============================================================== config */

void engine_config_default(engine_config *c, zraft_id id)
{
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->seed = id * 0x9e3779b97f4a7c15ull + 1;
    c->election_timeout_min_ms = 150;
    c->election_timeout_max_ms = 300;
    c->heartbeat_interval_ms = 50;
    c->pre_vote = true;
    c->check_quorum = true;
    c->max_entries_per_msg = 4096;
    c->max_bytes_per_msg = 1u << 20;
    c->max_inflight_msgs = 64;
    c->max_inflight_bytes = 32u << 20;
    c->snapshot_threshold = 0;
    c->snapshot_keep_entries = 1024;
}

int engine_config_validate(const engine_config *c, const char **why)
{
    const char *w = NULL;
    if (c->id == 0) {
        w = "id must be non-zero";
    } else if (c->heartbeat_interval_ms == 0) {
        w = "heartbeat interval must be positive";
    } else if (c->election_timeout_min_ms <= c->heartbeat_interval_ms) {
        w = "election timeout must exceed the heartbeat interval";
    } else if (c->election_timeout_max_ms <= c->election_timeout_min_ms) {
        w = "election timeout max must exceed min";
    } else if (c->max_entries_per_msg == 0 || c->max_bytes_per_msg == 0) {
        w = "message limits must be positive";
    } else if (c->max_inflight_msgs == 0 || c->max_inflight_msgs > 65536) {
        w = "max in-flight messages must be in 1..65536";
    }
    if (why != NULL) {
        *why = w;
    }
    return w ? ZRAFT_EINVAL : 0;
}

/* ============================================================== helpers */

static uint64_t s_rand(engine *e)
{
    /* splitmix64: a seeded, reproducible stream. */
    uint64_t z = (e->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void s_reset_election_timer(engine *e)
{
    uint64_t span = e->c.election_timeout_max_ms - e->c.election_timeout_min_ms;
    e->election_deadline =
        e->now + e->c.election_timeout_min_ms + s_rand(e) % span;
}

static command *s_cmd(engine *e, uint8_t type)
{
    if (e->n_cmds == e->cap_cmds) {
        size_t cap = e->cap_cmds ? e->cap_cmds * 2 : 64;
        command *c = realloc(e->cmds, cap * sizeof(*c));
        if (c == NULL) {
            abort(); /* the command list is the engine's only output */
        }
        e->cmds = c;
        e->cap_cmds = cap;
    }
    command *c = &e->cmds[e->n_cmds++];
    memset(c, 0, sizeof(*c));
    c->type = type;
    return c;
}

static void *s_grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) {
        return p;
    }
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need) {
        n *= 2;
    }
    void *q = realloc(p, n * elem);
    if (q == NULL) {
        abort();
    }
    *cap = n;
    return q;
}

static uint64_t s_term_at(const engine *e, uint64_t index, int *err)
{
    return rlog_term(&e->log, index, err);
}

static const zraft_membership *s_config(const engine *e)
{
    return &e->mems[e->mems_n - 1].m;
}

static bool s_is_voter(const engine *e, zraft_id id)
{
    return e->mems_n > 0 && zraft_membership_is_voter(s_config(e), id);
}

static bool s_has_config(const engine *e)
{
    return e->mems_n > 0 && e->mems[e->mems_n - 1].m.n > 0;
}

static progress *s_progress(engine *e, zraft_id id)
{
    for (uint32_t i = 0; i < e->n_prs; i++) {
        if (e->prs[i].id == id) {
            return &e->prs[i];
        }
    }
    return NULL;
}

/* ----------------------------------------------------------- storage I/O */

static uint64_t s_io(engine *e, command *c, uint8_t kind, uint64_t since)
{
    c->io_seq = ++e->io_last;
    e->ioq = s_grow(e->ioq, &e->ioq_cap, e->ioq_n + 1, sizeof(io_op));
    io_op *op = &e->ioq[e->ioq_n++];
    op->seq = c->io_seq;
    op->kind = kind;
    op->since = since;
    op->last = rlog_last_id(&e->log);
    return c->io_seq;
}

static void s_save_vote(engine *e)
{
    command *c = s_cmd(e, CMD_SAVE_VOTE);
    c->u.save_vote.term = e->term;
    c->u.save_vote.voted_for = e->vote;
    s_io(e, c, IO_OTHER, 0);
}

/* The highest index this node has durably that agrees with its current log:
 * what the leader may count for itself (§5.4.2, thesis §10.2.1). */
static uint64_t s_self_match(const engine *e)
{
    uint64_t m = e->flushed_log.index;
    for (size_t i = 0; i < e->ioq_n; i++) {
        const io_op *op = &e->ioq[i];
        if (op->kind == IO_TRUNCATE && op->since - 1 < m) {
            m = op->since - 1;
        } else if (op->kind == IO_RESET) {
            m = 0;
        }
    }
    uint64_t last = rlog_last(&e->log);
    return m < last ? m : last;
}

/* ============================================================ messaging */

static msg *s_send(engine *e, uint8_t type, zraft_id to)
{
    command *c = s_cmd(e, CMD_SEND);
    msg *m = &c->u.send;
    m->type = type;
    m->from = e->c.id;
    m->to = to;
    m->term = e->term;
    return m;
}

/* Sends `m`'s reply after every storage op issued so far is durable. */
static void s_wait_io_last(engine *e)
{
    e->cmds[e->n_cmds - 1].wait_io = e->io_last;
}

/* ========================================================== membership */

static void s_streams(engine *e)
{
    command *c = s_cmd(e, CMD_STREAMS);
    c->u.streams.term = e->role == ROLE_LEADER ? e->term : 0;
}

static uint8_t s_follower_role(const engine *e)
{
    return s_is_voter(e, e->c.id) ? ROLE_FOLLOWER : ROLE_LEARNER;
}

static const zraft_membership *s_committed_config(const engine *e)
{
    for (size_t i = e->mems_n; i > 0; i--) {
        if (e->mems[i - 1].id.index <= e->committed) {
            return &e->mems[i - 1].m;
        }
    }
    return &e->mems[0].m;
}

/* Whom the leader replicates to: the members of the effective
 * configuration and, until C_new commits, those of the committed one, so
 * that removed servers learn of their removal (thesis §4.2.2). */
static bool s_is_target(const engine *e, zraft_id id)
{
    return zraft_membership_find(s_config(e), id) != NULL ||
           zraft_membership_find(s_committed_config(e), id) != NULL;
}

static void s_add_progress(engine *e, zraft_id id, bool *changed)
{
    if (id == e->c.id || s_progress(e, id) != NULL ||
        e->n_prs >= ZRAFT_MAX_MEMBERS) {
        return;
    }
    progress *p = &e->prs[e->n_prs++];
    if (progress_init(p, id, rlog_last(&e->log) + 1, e->c.max_inflight_msgs) !=
        0) {
        abort();
    }
    p->recent_active = true;
    *changed = true;
}

/* The leader's progress set follows the replication targets. */
static void s_sync_progress(engine *e)
{
    if (e->role != ROLE_LEADER) {
        return;
    }
    bool changed = false;
    for (uint32_t i = 0; i < e->n_prs;) {
        if (!s_is_target(e, e->prs[i].id)) {
            progress_free(&e->prs[i]);
            e->prs[i] = e->prs[--e->n_prs];
            changed = true;
        } else {
            i++;
        }
    }
    const zraft_membership *m = s_config(e);
    for (uint32_t i = 0; i < m->n; i++) {
        s_add_progress(e, m->members[i].id, &changed);
    }
    m = s_committed_config(e);
    for (uint32_t i = 0; i < m->n; i++) {
        s_add_progress(e, m->members[i].id, &changed);
    }
    if (changed) {
        s_streams(e);
    }
}

static void s_config_changed(engine *e)
{
    if (e->role == ROLE_LEADER) {
        s_sync_progress(e);
    } else if (e->role == ROLE_FOLLOWER || e->role == ROLE_LEARNER) {
        e->role = s_follower_role(e);
    } else if (!s_is_voter(e, e->c.id)) {
        e->role = ROLE_LEARNER; /* a candidate removed from the voters */
    }
}

static void s_mem_push(engine *e, zraft_log_id id, const zraft_membership *m)
{
    e->mems = s_grow(e->mems, &e->mems_cap, e->mems_n + 1, sizeof(mem_entry));
    e->mems[e->mems_n].id = id;
    e->mems[e->mems_n].m = *m;
    e->mems_n++;
}

/* Forget configurations superseded by a committed one. */
static void s_mem_compact(engine *e)
{
    size_t keep = 0;
    for (size_t i = 0; i < e->mems_n; i++) {
        if (e->mems[i].id.index <= e->committed) {
            keep = i;
        }
    }
    if (keep > 0) {
        memmove(e->mems, e->mems + keep,
                (e->mems_n - keep) * sizeof(mem_entry));
        e->mems_n -= keep;
    }
}

/* ============================================================ log writes */

/* Appends entries already carrying ids to the index, the configuration list
 * and the output. Caller checked contiguity and membership payloads. */
static void s_append(engine *e, zraft_entry *ents, uint32_t n)
{
    if (n == 0) {
        return;
    }
    bool conf = false;
    for (uint32_t i = 0; i < n; i++) {
        if (rlog_append(&e->log, ents[i].id.term,
                        (uint32_t)zraft_entry_len(&ents[i])) != 0) {
            abort();
        }
        if (ents[i].type == ZRAFT_ENTRY_MEMBERSHIP) {
            zraft_membership m;
            if (zraft_membership_decode(ents[i].payload->data,
                                        ents[i].payload->len, &m) == 0) {
                s_mem_push(e, ents[i].id, &m);
                conf = true;
            }
        }
    }
    command *c = s_cmd(e, CMD_APPEND);
    c->u.append.entries = ents;
    c->u.append.n = n;
    s_io(e, c, IO_OTHER, 0);
    if (conf) {
        s_config_changed(e);
    }
}

static void s_truncate(engine *e, uint64_t since)
{
    rlog_truncate(&e->log, since);
    bool conf = false;
    while (e->mems_n > 1 && e->mems[e->mems_n - 1].id.index >= since) {
        e->mems_n--;
        conf = true;
    }
    command *c = s_cmd(e, CMD_TRUNCATE);
    c->u.truncate.since = since;
    s_io(e, c, IO_TRUNCATE, since);
    if (conf) {
        s_config_changed(e);
    }
}

/* An entry the engine itself creates (blank or membership); the payload is
 * held until engine_commands_clear(). */
static zraft_entry *s_own_entry(engine *e, uint8_t type, zraft_buf *payload)
{
    e->own = s_grow(e->own, &e->own_cap, e->own_n + 1, sizeof(zraft_entry));
    zraft_entry *en = &e->own[e->own_n++];
    en->type = type;
    en->payload = payload;
    en->id.term = e->term;
    en->id.index = rlog_last(&e->log) + 1;
    return en;
}

static zraft_buf *s_encode_membership(const zraft_membership *m)
{
    size_t len = zraft_membership_encoded_len(m);
    zraft_buf *b = zraft_buf_new(NULL, len);
    if (b == NULL) {
        abort();
    }
    zraft_membership_encode(m, b->data);
    return b;
}

/* ============================================================ quorum */

/* Does the set of ids for which `yes(id)` holds form a majority of the
 * voters of `m` - in both halves when joint (§6)? `no` (optional) counts
 * definite refusals: returns -1 once a majority can no longer be reached. */
typedef int (*vote_fn)(const engine *e, zraft_id id, const void *arg);

static int s_quorum(const engine *e, const zraft_membership *m, vote_fn fn,
                    const void *arg)
{
    int result = 1;
    for (int half = 0; half < (m->joint ? 2 : 1); half++) {
        uint8_t bit = half == 0 ? ZRAFT_ROLE_VOTER : ZRAFT_ROLE_VOTER_OLD;
        uint32_t n = 0, yes = 0, no = 0;
        for (uint32_t i = 0; i < m->n; i++) {
            if (!(m->members[i].roles & bit)) {
                continue;
            }
            n++;
            int v = fn(e, m->members[i].id, arg);
            yes += v > 0;
            no += v < 0;
        }
        if (n == 0) {
            continue;
        }
        if (no >= n - n / 2) {
            return -1;
        }
        if (yes < n / 2 + 1) {
            result = 0;
        }
    }
    return result;
}

/* Highest index replicated on a majority (of each half when joint). */
static uint64_t s_quorum_index(const engine *e)
{
    const zraft_membership *m = s_config(e);
    uint64_t result = UINT64_MAX;
    for (int half = 0; half < (m->joint ? 2 : 1); half++) {
        uint8_t bit = half == 0 ? ZRAFT_ROLE_VOTER : ZRAFT_ROLE_VOTER_OLD;
        uint64_t v[ZRAFT_MAX_MEMBERS];
        uint32_t n = 0;
        for (uint32_t i = 0; i < m->n; i++) {
            if (!(m->members[i].roles & bit)) {
                continue;
            }
            zraft_id id = m->members[i].id;
            uint64_t x = 0;
            if (id == e->c.id) {
                x = s_self_match(e);
            } else {
                const progress *p = s_progress((engine *)e, id);
                x = p ? p->match : 0;
            }
            /* insertion sort, descending */
            uint32_t j = n++;
            while (j > 0 && v[j - 1] < x) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = x;
        }
        if (n == 0) {
            continue;
        }
        uint64_t q = v[n / 2];
        if (q < result) {
            result = q;
        }
    }
    return result == UINT64_MAX ? 0 : result;
}

/* ============================================================ roles */

static void s_fail_reads(engine *e, int err)
{
    for (size_t i = 0; i < e->reads_n; i++) {
        command *c = s_cmd(e, CMD_READ_FAIL);
        c->u.read.req_id = e->reads[i].req_id;
        c->u.read.err = err;
    }
    for (size_t i = 0; i < e->reads_wait_n; i++) {
        command *c = s_cmd(e, CMD_READ_FAIL);
        c->u.read.req_id = e->reads_wait[i];
        c->u.read.err = err;
    }
    e->reads_n = 0;
    e->reads_wait_n = 0;
}

static void s_clear_progress(engine *e)
{
    for (uint32_t i = 0; i < e->n_prs; i++) {
        progress_free(&e->prs[i]);
    }
    e->n_prs = 0;
}

static void s_become_follower(engine *e, uint64_t term, zraft_id leader)
{
    bool was_leader = e->role == ROLE_LEADER;
    if (term != e->term) {
        e->term = term;
        e->vote = 0;
        s_save_vote(e);
    }
    e->role = s_follower_role(e);
    e->leader = leader;
    e->n_votes = 0;
    e->transferee = 0;
    if (was_leader) {
        s_fail_reads(e, ZRAFT_ELEADERSHIP_LOST);
        s_clear_progress(e);
        s_streams(e);
    }
    s_reset_election_timer(e);
}

static void s_bcast_append(engine *e);
static void s_bcast_heartbeat(engine *e);

static void s_become_leader(engine *e)
{
    e->role = ROLE_LEADER;
    e->leader = e->c.id;
    e->n_votes = 0;
    e->transferee = 0;
    e->hb_ctx = 0;
    e->leader_contact = e->now;
    e->heartbeat_due = e->now + e->c.heartbeat_interval_ms;
    e->check_quorum_due = e->now + e->c.election_timeout_min_ms;
    s_clear_progress(e);
    /* Room for every member; s_sync_progress fills it. */
    free(e->prs);
    e->prs = calloc(ZRAFT_MAX_MEMBERS, sizeof(progress));
    if (e->prs == NULL) {
        abort();
    }
    e->n_prs = 0;
    s_sync_progress(e);
    s_streams(e);
    /* §5.4.2 / §8: a new leader commits a blank entry of its own term. */
    zraft_entry *blank = s_own_entry(e, ZRAFT_ENTRY_BLANK, NULL);
    s_append(e, blank, 1);
    s_bcast_append(e);
}

static int s_granted(const engine *e, zraft_id id, const void *arg)
{
    (void)arg;
    for (uint32_t i = 0; i < e->n_votes; i++) {
        if (e->votes[i].id == id) {
            return e->votes[i].granted ? 1 : -1;
        }
    }
    return 0;
}

static void s_record_vote(engine *e, zraft_id id, bool granted)
{
    for (uint32_t i = 0; i < e->n_votes; i++) {
        if (e->votes[i].id == id) {
            return; /* first answer counts */
        }
    }
    if (e->n_votes < ZRAFT_MAX_MEMBERS) {
        e->votes[e->n_votes].id = id;
        e->votes[e->n_votes].granted = granted;
        e->n_votes++;
    }
}

static void s_campaign(engine *e, bool pre_vote, bool transfer);

static void s_tally(engine *e)
{
    int r = s_quorum(e, s_config(e), s_granted, NULL);
    if (r > 0) {
        if (e->role == ROLE_PRECANDIDATE) {
            s_campaign(e, false, false);
        } else {
            s_become_leader(e);
        }
    } else if (r < 0) {
        s_become_follower(e, e->term, 0);
    }
}

/* §5.2: increment the term, vote for self (durably before asking anyone),
 * request votes. Pre-vote (thesis §9.6) asks first without changing term. */
static void s_campaign(engine *e, bool pre_vote, bool transfer)
{
    const zraft_membership *m = s_config(e);
    e->n_votes = 0;
    e->leader = 0;
    uint64_t term;
    if (pre_vote) {
        e->role = ROLE_PRECANDIDATE;
        term = e->term + 1;
    } else {
        e->role = ROLE_CANDIDATE;
        e->term++;
        e->vote = e->c.id;
        s_save_vote(e);
        term = e->term;
    }
    s_reset_election_timer(e);
    s_record_vote(e, e->c.id, true);
    zraft_log_id last = rlog_last_id(&e->log);
    for (uint32_t i = 0; i < m->n; i++) {
        const zraft_member *p = &m->members[i];
        if (p->id == e->c.id ||
            !(p->roles & (ZRAFT_ROLE_VOTER | ZRAFT_ROLE_VOTER_OLD))) {
            continue;
        }
        msg *req = s_send(e, MSG_VOTE, p->id);
        req->term = term;
        req->u.vote.last_log_id = last;
        req->u.vote.pre_vote = pre_vote;
        req->u.vote.transfer = transfer;
        if (!pre_vote) {
            s_wait_io_last(e); /* the self-vote is durable first */
        }
    }
    s_tally(e);
}

static bool s_in_lease(const engine *e)
{
    return e->c.check_quorum && e->leader != 0 &&
           e->now - e->leader_contact < e->c.election_timeout_min_ms;
}

/* ============================================================ leader */

/* Largest index <= index whose term is <= term (etcd's findConflictByTerm):
 * the first place two logs may agree. */
static uint64_t s_conflict_by_term(const engine *e, uint64_t index,
                                   uint64_t term)
{
    uint64_t last = rlog_last(&e->log);
    if (index > last) {
        index = last;
    }
    for (;;) {
        int err;
        uint64_t t = s_term_at(e, index, &err);
        if (err != 0 || t <= term || index == 0) {
            return index;
        }
        index--;
    }
}

/* Sends the next AppendEntries (or a snapshot) to `p` unless paused.
 * Returns true if it sent something. `empty_ok` sends even with no entries
 * (to carry the commit index). */
static bool s_send_append(engine *e, progress *p, bool empty_ok)
{
    if (progress_paused(p, e->c.max_inflight_msgs, e->c.max_inflight_bytes)) {
        return false;
    }
    int err;
    uint64_t prev_index = p->next - 1;
    uint64_t prev_term = s_term_at(e, prev_index, &err);
    /* The previous entry's term may be known (index 0, or the snapshot's)
     * while the entries after it are purged: both must be available. */
    if (err != 0 || (e->has_snap && p->next < e->log.first)) {
        /* §7: the entries it needs are gone; send the snapshot. */
        if (!e->has_snap) {
            return false;
        }
        command *c = s_cmd(e, CMD_SEND_SNAPSHOT);
        c->u.send_snapshot.to = p->id;
        c->u.send_snapshot.term = e->term;
        progress_become_snapshot(p, e->snap.last_log_id.index, e->now);
        return true;
    }
    uint64_t last = rlog_last(&e->log);
    uint64_t upto = prev_index;
    uint64_t bytes = 0;
    while (upto < last && upto - prev_index < e->c.max_entries_per_msg) {
        uint32_t sz = rlog_size(&e->log, upto + 1);
        if (upto > prev_index && bytes + sz > e->c.max_bytes_per_msg) {
            break;
        }
        bytes += sz;
        upto++;
    }
    if (upto == prev_index && !empty_ok) {
        return false;
    }
    command *c = s_cmd(e, CMD_REPLICATE);
    c->u.replicate.to = p->id;
    c->u.replicate.term = e->term;
    c->u.replicate.prev.index = prev_index;
    c->u.replicate.prev.term = prev_term;
    c->u.replicate.last = upto;
    c->u.replicate.commit = e->committed;
    if (p->state == PR_REPLICATE) {
        if (upto > prev_index) {
            p->next = upto + 1;
            progress_inflight_add(p, upto, bytes, e->c.max_inflight_msgs);
        }
    } else {
        p->probe_sent = true;
    }
    return true;
}

static void s_bcast_append(engine *e)
{
    for (uint32_t i = 0; i < e->n_prs; i++) {
        s_send_append(e, &e->prs[i], false);
    }
}

static void s_bcast_heartbeat(engine *e)
{
    for (uint32_t i = 0; i < e->n_prs; i++) {
        progress *p = &e->prs[i];
        msg *m = s_send(e, MSG_HEARTBEAT, p->id);
        m->u.heartbeat.commit =
            p->match < e->committed ? p->match : e->committed;
        m->u.heartbeat.ctx = e->hb_ctx;
    }
}

static int s_acked(const engine *e, zraft_id id, const void *arg)
{
    uint64_t ctx = *(const uint64_t *)arg;
    if (id == e->c.id) {
        return 1;
    }
    const progress *p = s_progress((engine *)e, id);
    return p != NULL && p->hb_acked >= ctx ? 1 : 0;
}

static bool s_committed_in_term(const engine *e)
{
    int err;
    return s_term_at(e, e->committed, &err) == e->term && err == 0;
}

/* Answers reads whose heartbeat round a quorum confirmed (thesis §6.4). */
static void s_release_reads(engine *e)
{
    size_t done = 0;
    while (done < e->reads_n &&
           s_quorum(e, s_config(e), s_acked, &e->reads[done].ctx) > 0) {
        command *c = s_cmd(e, CMD_READ_READY);
        c->u.read.req_id = e->reads[done].req_id;
        c->u.read.index = e->reads[done].index;
        done++;
    }
    if (done > 0) {
        memmove(e->reads, e->reads + done,
                (e->reads_n - done) * sizeof(read_req));
        e->reads_n -= done;
    }
}

static void s_start_read(engine *e, uint64_t req_id)
{
    e->reads =
        s_grow(e->reads, &e->reads_cap, e->reads_n + 1, sizeof(read_req));
    read_req *r = &e->reads[e->reads_n++];
    r->req_id = req_id;
    r->index = e->committed;
    r->ctx = e->hb_ctx;
}

/* Reads that waited for this term's first commit go out in one round. */
static void s_start_waiting_reads(engine *e)
{
    if (e->reads_wait_n == 0 || !s_committed_in_term(e)) {
        return;
    }
    e->hb_ctx++;
    for (size_t i = 0; i < e->reads_wait_n; i++) {
        s_start_read(e, e->reads_wait[i]);
    }
    e->reads_wait_n = 0;
    s_bcast_heartbeat(e);
    s_release_reads(e);
}

static void s_apply(engine *e)
{
    command *c = s_cmd(e, CMD_APPLY);
    c->u.apply.upto = e->committed;
    /* Apply only what this node has durably written, leader included: a
     * leader may learn that a quorum of followers holds an entry before its
     * own write of it completes, and the state machine (and any snapshot of
     * it) must never run ahead of the local log. */
    s_wait_io_last(e);
}

static void s_step_down_if_removed(engine *e);
static void s_finish_joint(engine *e);

/* §5.4.2: commit the highest index a quorum holds, only if it is an entry
 * of the current term; earlier entries commit with it (Log Matching). */
static void s_maybe_commit(engine *e)
{
    if (e->role != ROLE_LEADER) {
        return;
    }
    uint64_t q = s_quorum_index(e);
    int err;
    if (q <= e->committed || s_term_at(e, q, &err) != e->term || err != 0) {
        return;
    }
    e->committed = q;
    s_mem_compact(e);
    s_sync_progress(e);
    s_apply(e);
    s_start_waiting_reads(e);
    s_finish_joint(e);
    s_step_down_if_removed(e);
    if (e->role != ROLE_LEADER) {
        return;
    }
    /* Tell idle followers about the new commit index. */
    for (uint32_t i = 0; i < e->n_prs; i++) {
        progress *p = &e->prs[i];
        if (p->state == PR_REPLICATE && p->inf_count == 0) {
            s_send_append(e, p, true);
        }
    }
}

/* §6: once C_old,new is committed the leader appends C_new. */
static void s_finish_joint(engine *e)
{
    const mem_entry *cur = &e->mems[e->mems_n - 1];
    if (!cur->m.joint || cur->id.index > e->committed) {
        return;
    }
    zraft_membership next = cur->m;
    uint32_t n = 0;
    for (uint32_t i = 0; i < next.n; i++) {
        zraft_member mb = cur->m.members[i];
        mb.roles &= (uint8_t)~ZRAFT_ROLE_VOTER_OLD;
        if (mb.roles != 0) {
            next.members[n++] = mb;
        }
    }
    next.n = n;
    next.joint = false;
    zraft_entry *en =
        s_own_entry(e, ZRAFT_ENTRY_MEMBERSHIP, s_encode_membership(&next));
    s_append(e, en, 1);
    s_bcast_append(e);
    s_maybe_commit(e); /* a single-voter C_new commits at once */
}

/* §6 / thesis §4.2.2: a leader that is not a voter of the committed C_new
 * steps down. */
static void s_step_down_if_removed(engine *e)
{
    if (e->role != ROLE_LEADER) {
        return;
    }
    const mem_entry *cur = &e->mems[e->mems_n - 1];
    if (cur->m.joint || cur->id.index > e->committed ||
        s_is_voter(e, e->c.id)) {
        return;
    }
    s_become_follower(e, e->term, 0);
}

static void s_self_progress(engine *e)
{
    if (e->role == ROLE_LEADER) {
        s_maybe_commit(e);
    }
}

static void s_send_timeout_now(engine *e, zraft_id to)
{
    s_send(e, MSG_TIMEOUT_NOW, to);
}

static void s_handle_append_resp(engine *e, const msg *m)
{
    progress *p = s_progress(e, m->from);
    if (p == NULL) {
        return;
    }
    p->recent_active = true;
    if (!m->u.append_resp.success) {
        uint64_t hint = m->u.append_resp.hint_index;
        if (m->u.append_resp.hint_term > 0) {
            hint = s_conflict_by_term(e, hint, m->u.append_resp.hint_term);
        }
        if (progress_maybe_decr(p, m->u.append_resp.index, hint)) {
            if (p->state == PR_REPLICATE) {
                progress_become_probe(p);
            }
            s_send_append(e, p, false);
        }
        return;
    }
    uint64_t idx = m->u.append_resp.index;
    if (idx > rlog_last(&e->log)) {
        return; /* claims entries we never had: ignore */
    }
    if (!progress_maybe_update(p, idx)) {
        if (p->state == PR_REPLICATE) {
            progress_inflight_free_to(p, idx, e->c.max_inflight_msgs);
        }
        return;
    }
    if (p->state == PR_PROBE) {
        progress_become_replicate(p);
    } else if (p->state == PR_SNAPSHOT && p->match >= p->pending_snapshot) {
        progress_become_probe(p);
    } else if (p->state == PR_REPLICATE) {
        progress_inflight_free_to(p, idx, e->c.max_inflight_msgs);
    }
    zraft_id id = p->id;
    s_maybe_commit(e);
    /* Committing may have appended C_new and dropped this follower's
     * progress: look it up again. */
    if (e->role != ROLE_LEADER || (p = s_progress(e, id)) == NULL) {
        return;
    }
    /* Fill the window. */
    while (s_send_append(e, p, false)) {
    }
    if (e->transferee == p->id && p->match == rlog_last(&e->log)) {
        s_send_timeout_now(e, p->id);
    }
}

static void s_handle_heartbeat_resp(engine *e, const msg *m)
{
    progress *p = s_progress(e, m->from);
    if (p == NULL) {
        return;
    }
    p->recent_active = true;
    p->probe_sent = false;
    if (p->state == PR_REPLICATE &&
        progress_paused(p, e->c.max_inflight_msgs, e->c.max_inflight_bytes)) {
        progress_inflight_free_first(p, e->c.max_inflight_msgs);
    }
    if (m->u.heartbeat_resp.ctx > p->hb_acked) {
        p->hb_acked = m->u.heartbeat_resp.ctx;
    }
    if (p->match < rlog_last(&e->log)) {
        /* Even with nothing new to send: an empty probe at next-1 gets a
         * rejection that rewinds `next` when earlier messages were lost or
         * reordered (etcd does the same). */
        s_send_append(e, p, true);
    }
    s_release_reads(e);
}

static void s_handle_snapshot_resp(engine *e, const msg *m)
{
    progress *p = s_progress(e, m->from);
    if (p == NULL) {
        return;
    }
    p->recent_active = true;
    if (p->state != PR_SNAPSHOT) {
        return;
    }
    if (m->u.snapshot_resp.success) {
        uint64_t idx = m->u.snapshot_resp.index;
        if (idx <= rlog_last(&e->log) && idx > p->match) {
            p->match = idx;
        }
        if (p->pending_snapshot < p->match) {
            p->pending_snapshot = p->match;
        }
        progress_become_probe(p);
        zraft_id id = p->id;
        s_maybe_commit(e);
        if (e->role != ROLE_LEADER || (p = s_progress(e, id)) == NULL) {
            return;
        }
    } else {
        p->pending_snapshot = 0;
        progress_become_probe(p);
    }
    s_send_append(e, p, false);
}

/* ============================================================ follower */

static void s_commit_to(engine *e, uint64_t c)
{
    uint64_t last = rlog_last(&e->log);
    if (c > last) {
        c = last;
    }
    if (c > e->committed) {
        e->committed = c;
        s_mem_compact(e);
        s_apply(e);
    }
}

static void s_reply_append(engine *e, const msg *m, bool ok, uint64_t index,
                           uint64_t hint_index, uint64_t hint_term)
{
    msg *r = s_send(e, MSG_APPEND_RESP, m->from);
    r->u.append_resp.success = ok;
    r->u.append_resp.index = index;
    r->u.append_resp.hint_index = hint_index;
    r->u.append_resp.hint_term = hint_term;
    if (ok) {
        s_wait_io_last(e); /* acknowledge only what is durable */
    }
}

static bool s_valid_entries(const engine *e, const msg *m)
{
    const zraft_entry *ents = m->u.append.entries;
    uint64_t prev_term = m->u.append.prev.term;
    (void)e;
    if (m->u.append.n_entries > 0 && ents == NULL) {
        return false;
    }
    for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
        const zraft_entry *en = &ents[i];
        if (en->id.index != m->u.append.prev.index + 1 + i ||
            en->id.term < prev_term || en->id.term > m->term ||
            en->type < ZRAFT_ENTRY_NORMAL ||
            en->type > ZRAFT_ENTRY_MEMBERSHIP) {
            return false;
        }
        if (en->type == ZRAFT_ENTRY_MEMBERSHIP) {
            zraft_membership tmp;
            if (en->payload == NULL ||
                zraft_membership_decode(en->payload->data, en->payload->len,
                                        &tmp) != 0) {
                return false;
            }
        }
        prev_term = en->id.term;
    }
    return true;
}

/* §5.3: AppendEntries receiver. */
static void s_handle_append(engine *e, const msg *m)
{
    if (!s_valid_entries(e, m)) {
        return;
    }
    zraft_log_id prev = m->u.append.prev;
    uint32_t n = m->u.append.n_entries;
    if (prev.index < e->committed) {
        /* Everything up to our commit index matches already. */
        s_reply_append(e, m, true, e->committed, 0, 0);
        return;
    }
    int err;
    uint64_t t = s_term_at(e, prev.index, &err);
    if (err != 0 || t != prev.term) {
        /* Reject, suggesting where our logs may agree (fast backtracking). */
        uint64_t last = rlog_last(&e->log);
        uint64_t hint = prev.index < last ? prev.index : last;
        hint = s_conflict_by_term(e, hint, prev.term);
        uint64_t hint_term = s_term_at(e, hint, &err);
        s_reply_append(e, m, false, prev.index, hint, err ? 0 : hint_term);
        return;
    }
    /* Find the first new or conflicting entry. */
    uint32_t i = 0;
    uint64_t last = rlog_last(&e->log);
    for (; i < n; i++) {
        const zraft_entry *en = &m->u.append.entries[i];
        if (en->id.index > last) {
            break;
        }
        uint64_t have = s_term_at(e, en->id.index, &err);
        if (err != 0 || have != en->id.term) {
            break;
        }
    }
    if (i < n) {
        uint64_t at = m->u.append.entries[i].id.index;
        if (at <= e->committed) {
            return; /* would truncate a committed entry: never (§5.4) */
        }
        if (at <= last) {
            s_truncate(e, at);
        }
        s_append(e, &m->u.append.entries[i], n - i);
    }
    uint64_t lastnew = prev.index + n;
    s_commit_to(e, m->u.append.commit < lastnew ? m->u.append.commit : lastnew);
    s_reply_append(e, m, true, lastnew, 0, 0);
}

static void s_handle_heartbeat(engine *e, const msg *m)
{
    s_commit_to(e, m->u.heartbeat.commit);
    msg *r = s_send(e, MSG_HEARTBEAT_RESP, m->from);
    r->u.heartbeat_resp.ctx = m->u.heartbeat.ctx;
}

/* §7: InstallSnapshot receiver. */
static void s_handle_snapshot(engine *e, const msg *m)
{
    const snapshot_meta *meta = m->u.snapshot.meta;
    msg *r;
    if (meta == NULL || m->u.snapshot.data == NULL || meta->membership.n == 0) {
        return;
    }
    zraft_log_id sl = meta->last_log_id;
    if (sl.index <= e->committed) {
        r = s_send(e, MSG_SNAPSHOT_RESP, m->from);
        r->u.snapshot_resp.success = true;
        r->u.snapshot_resp.index = e->committed;
        s_wait_io_last(e);
        return;
    }
    int err;
    if (s_term_at(e, sl.index, &err) == sl.term && err == 0) {
        /* We hold the snapshot's last entry: the log is good up to there. */
        s_commit_to(e, sl.index);
        r = s_send(e, MSG_SNAPSHOT_RESP, m->from);
        r->u.snapshot_resp.success = true;
        r->u.snapshot_resp.index = sl.index;
        s_wait_io_last(e);
        return;
    }
    /* Discard the log and take the snapshot's state. */
    e->install_meta = *meta;
    rlog_reset(&e->log, sl);
    e->mems_n = 0;
    s_mem_push(e, sl, &meta->membership);
    e->committed = sl.index;
    if (e->applied < sl.index) {
        e->applied = sl.index;
    }
    e->has_snap = true;
    e->snap = *meta;
    command *c = s_cmd(e, CMD_INSTALL_SNAPSHOT);
    c->u.install_snapshot.meta = &e->install_meta;
    c->u.install_snapshot.data = m->u.snapshot.data;
    s_io(e, c, IO_RESET, 0);
    s_config_changed(e);
    r = s_send(e, MSG_SNAPSHOT_RESP, m->from);
    r->u.snapshot_resp.success = true;
    r->u.snapshot_resp.index = sl.index;
    s_wait_io_last(e);
}

/* §5.2, §5.4.1: RequestVote receiver (and pre-vote, thesis §9.6). */
static void s_handle_vote(engine *e, const msg *m)
{
    zraft_log_id last = rlog_last_id(&e->log);
    zraft_log_id cand = m->u.vote.last_log_id;
    bool pre = m->u.vote.pre_vote;
    bool up_to_date = cand.term > last.term ||
                      (cand.term == last.term && cand.index >= last.index);
    bool can_vote = e->vote == m->from || (e->vote == 0 && e->leader == 0) ||
                    (pre && m->term > e->term);
    bool grant = can_vote && up_to_date;
    if (grant && !pre) {
        /* Persist the vote before the grant leaves (§5.2, Figure 2). */
        e->vote = m->from;
        s_save_vote(e);
        s_reset_election_timer(e);
    }
    msg *r = s_send(e, MSG_VOTE_RESP, m->from);
    r->u.vote_resp.pre_vote = pre;
    r->u.vote_resp.granted = grant;
    if (grant) {
        r->term = m->term; /* a granted pre-vote carries the future term */
        if (!pre) {
            s_wait_io_last(e);
        }
    }
}

static void s_handle_vote_resp(engine *e, const msg *m)
{
    bool pre = m->u.vote_resp.pre_vote;
    if ((e->role == ROLE_PRECANDIDATE && pre) ||
        (e->role == ROLE_CANDIDATE && !pre && m->term == e->term)) {
        s_record_vote(e, m->from, m->u.vote_resp.granted);
        s_tally(e);
    }
}

/* ============================================================ events */

static void s_announce(engine *e)
{
    if (e->said_role != e->role || e->said_term != e->term ||
        e->said_leader != e->leader) {
        command *c = s_cmd(e, CMD_ROLE);
        c->u.role.role = e->role;
        c->u.role.term = e->term;
        c->u.role.leader = e->leader;
        e->said_role = e->role;
        e->said_term = e->term;
        e->said_leader = e->leader;
    }
}

engine *engine_new(const engine_config *c)
{
    if (engine_config_validate(c, NULL) != 0) {
        return NULL;
    }
    engine *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    e->c = *c;
    e->rng = c->seed;
    rlog_init(&e->log);
    e->role = ROLE_LEARNER; /* no configuration yet */
    e->said_role = 0xff;
    /* An empty configuration until one is restored or received. */
    zraft_membership empty;
    memset(&empty, 0, sizeof(empty));
    zraft_log_id zero = {0, 0};
    s_mem_push(e, zero, &empty);
    return e;
}

void engine_destroy(engine **ep)
{
    if (ep == NULL || *ep == NULL) {
        return;
    }
    engine *e = *ep;
    engine_commands_clear(e);
    s_clear_progress(e);
    free(e->prs);
    rlog_free(&e->log);
    free(e->ioq);
    free(e->mems);
    free(e->reads);
    free(e->reads_wait);
    free(e->cmds);
    free(e->own);
    free(e);
    *ep = NULL;
}

void engine_restore_vote(engine *e, uint64_t term, zraft_id voted_for,
                         uint64_t committed)
{
    e->term = term;
    e->vote = voted_for;
    if (committed > e->committed) {
        e->committed = committed;
    }
}

void engine_restore_snapshot(engine *e, const snapshot_meta *m)
{
    e->has_snap = true;
    e->snap = *m;
    rlog_reset(&e->log, m->last_log_id);
    e->mems_n = 0;
    s_mem_push(e, m->last_log_id, &m->membership);
    if (e->committed < m->last_log_id.index) {
        e->committed = m->last_log_id.index;
    }
    e->flushed_log = m->last_log_id;
}

int engine_restore_entries(engine *e, const zraft_entry *ents, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const zraft_entry *en = &ents[i];
        if (rlog_append_at(&e->log, en->id.index, en->id.term,
                           (uint32_t)zraft_entry_len(en)) != 0) {
            return ZRAFT_ECORRUPT;
        }
        if (en->type == ZRAFT_ENTRY_MEMBERSHIP) {
            zraft_membership m;
            if (en->payload == NULL ||
                zraft_membership_decode(en->payload->data, en->payload->len,
                                        &m) != 0) {
                return ZRAFT_ECORRUPT;
            }
            if (en->id.index > e->mems[e->mems_n - 1].id.index) {
                s_mem_push(e, en->id, &m);
            }
        }
    }
    e->flushed_log = rlog_last_id(&e->log);
    return 0;
}

void engine_start(engine *e, uint64_t now, uint64_t applied)
{
    e->now = now;
    e->started = true;
    e->applied = applied;
    if (e->committed < applied) {
        e->committed = applied;
    }
    if (e->committed > rlog_last(&e->log)) {
        e->committed = rlog_last(&e->log);
    }
    if (e->has_snap && e->log.len > 0 &&
        rlog_last(&e->log) < e->snap.last_log_id.index) {
        /* A tail that stops short of the snapshot cannot be continued
         * after it: drop it (storage too). */
        command *c = s_cmd(e, CMD_TRUNCATE);
        c->u.truncate.since = e->log.first;
        rlog_reset(&e->log, e->snap.last_log_id);
        s_io(e, c, IO_TRUNCATE, c->u.truncate.since);
    }
    e->flushed_log = rlog_last_id(&e->log);
    s_mem_compact(e);
    e->role = s_follower_role(e);
    e->leader = 0;
    s_reset_election_timer(e);
    if (e->committed > e->applied) {
        command *c = s_cmd(e, CMD_APPLY);
        c->u.apply.upto = e->committed;
    }
    /* A sole voter need not wait for anyone. */
    const zraft_membership *m = s_config(e);
    if (m->n > 0 && !m->joint && s_is_voter(e, e->c.id)) {
        uint32_t voters = 0;
        for (uint32_t i = 0; i < m->n; i++) {
            voters += (m->members[i].roles & ZRAFT_ROLE_VOTER) != 0;
        }
        if (voters == 1) {
            s_campaign(e, false, false);
        }
    }
    s_announce(e);
}

int engine_initialize(engine *e, const zraft_membership *m)
{
    /* Not e->term: a crash between the SAVE_VOTE and the APPEND below
     * leaves term 1 and an empty log, and no configuration to run with. */
    if (rlog_last(&e->log) != 0 || e->has_snap) {
        return ZRAFT_EBUSY;
    }
    if (m->joint || m->n == 0) {
        return ZRAFT_EINVAL;
    }
    size_t len = zraft_membership_encoded_len(m);
    zraft_buf *b = zraft_buf_new(NULL, len);
    if (b == NULL) {
        return ZRAFT_ENOMEM;
    }
    zraft_membership_encode(m, b->data);
    zraft_membership chk;
    if (zraft_membership_decode(b->data, b->len, &chk) != 0) {
        zraft_buf_unref(b);
        return ZRAFT_EINVAL;
    }
    if (e->term == 0) {
        e->term = 1;
        e->vote = 0;
        s_save_vote(e);
    }
    zraft_entry *en = s_own_entry(e, ZRAFT_ENTRY_MEMBERSHIP, b);
    en->id.term = 1;
    en->id.index = 1;
    s_append(e, en, 1);
    e->role = s_follower_role(e);
    s_reset_election_timer(e);
    uint32_t voters = 0;
    for (uint32_t i = 0; i < chk.n; i++) {
        voters += (chk.members[i].roles & ZRAFT_ROLE_VOTER) != 0;
    }
    if (voters == 1 && s_is_voter(e, e->c.id)) {
        s_campaign(e, false, false);
    }
    s_announce(e);
    return 0;
}

void engine_tick(engine *e, uint64_t now)
{
    if (now > e->now) {
        e->now = now;
    }
    if (e->role == ROLE_LEADER) {
        if (e->now >= e->heartbeat_due) {
            e->heartbeat_due = e->now + e->c.heartbeat_interval_ms;
            s_bcast_heartbeat(e);
        }
        /* Retry snapshots whose answer never came. */
        for (uint32_t i = 0; i < e->n_prs; i++) {
            progress *p = &e->prs[i];
            if (p->state == PR_SNAPSHOT &&
                e->now - p->snapshot_sent_at >
                    2ull * e->c.election_timeout_max_ms) {
                p->pending_snapshot = 0;
                progress_become_probe(p);
                s_send_append(e, p, false);
            }
        }
        if (e->transferee != 0 && e->now >= e->transfer_deadline) {
            e->transferee = 0; /* thesis §3.10: abort after a timeout */
        }
        if (e->now >= e->check_quorum_due) {
            e->check_quorum_due = e->now + e->c.election_timeout_min_ms;
            if (e->c.check_quorum) {
                int active = 1;
                const zraft_membership *m = s_config(e);
                for (int half = 0; half < (m->joint ? 2 : 1); half++) {
                    uint8_t bit =
                        half == 0 ? ZRAFT_ROLE_VOTER : ZRAFT_ROLE_VOTER_OLD;
                    uint32_t n = 0, yes = 0;
                    for (uint32_t i = 0; i < m->n; i++) {
                        if (!(m->members[i].roles & bit)) {
                            continue;
                        }
                        n++;
                        zraft_id id = m->members[i].id;
                        progress *p = s_progress(e, id);
                        yes += id == e->c.id || (p && p->recent_active);
                    }
                    if (n > 0 && yes < n / 2 + 1) {
                        active = 0;
                    }
                }
                for (uint32_t i = 0; i < e->n_prs; i++) {
                    e->prs[i].recent_active = false;
                }
                if (!active) {
                    /* Thesis §6.2: a leader cut off from a quorum steps
                     * down. */
                    s_become_follower(e, e->term, 0);
                } else {
                    e->leader_contact = e->now;
                }
            }
        }
    } else if (e->now >= e->election_deadline) {
        if (e->role != ROLE_LEARNER && s_has_config(e) &&
            s_is_voter(e, e->c.id)) {
            s_campaign(e, e->c.pre_vote, false);
        } else {
            s_reset_election_timer(e);
        }
    }
    s_announce(e);
}

void engine_recv(engine *e, const msg *m)
{
    if (m->from == 0 || m->from == e->c.id || m->type == 0 ||
        m->type >= MSG__COUNT) {
        return;
    }
    bool from_leader = m->type == MSG_APPEND || m->type == MSG_HEARTBEAT ||
                       m->type == MSG_SNAPSHOT;
    if (m->term > e->term) {
        if (m->type == MSG_VOTE && !m->u.vote.transfer && s_in_lease(e)) {
            /* Thesis §4.2.3: ignore disruptive servers while a leader is
             * known to be alive. */
            goto out;
        }
        if (m->type == MSG_VOTE && m->u.vote.pre_vote) {
            /* never change term for a pre-vote */
        } else if (m->type == MSG_VOTE_RESP && m->u.vote_resp.pre_vote &&
                   m->u.vote_resp.granted) {
            /* granted pre-votes carry the future term */
        } else {
            s_become_follower(e, m->term, from_leader ? m->from : 0);
        }
    } else if (m->term < e->term) {
        if (from_leader) {
            /* §5.1, Figure 2: reject with the current term, so that a
             * stale leader steps down. Always: etcd answers only with
             * check-quorum or pre-vote and otherwise counts on this node
             * campaigning with its higher term, which a learner never
             * does - its leader would never learn of the term. */
            msg *r = s_send(e, MSG_APPEND_RESP, m->from);
            r->u.append_resp.success = false;
        } else if (m->type == MSG_VOTE && m->u.vote.pre_vote) {
            msg *r = s_send(e, MSG_VOTE_RESP, m->from);
            r->u.vote_resp.pre_vote = true;
            r->u.vote_resp.granted = false;
        }
        goto out;
    }

    if (from_leader) {
        if (e->role == ROLE_LEADER) {
            goto out; /* two leaders in one term cannot happen */
        }
        if (e->role == ROLE_CANDIDATE || e->role == ROLE_PRECANDIDATE ||
            e->leader != m->from) {
            e->role = s_follower_role(e);
            e->leader = m->from;
            e->n_votes = 0;
        }
        e->leader_contact = e->now;
        s_reset_election_timer(e);
    }

    switch (m->type) {
    case MSG_VOTE:
        s_handle_vote(e, m);
        break;
    case MSG_VOTE_RESP:
        s_handle_vote_resp(e, m);
        break;
    case MSG_APPEND:
        s_handle_append(e, m);
        break;
    case MSG_HEARTBEAT:
        s_handle_heartbeat(e, m);
        break;
    case MSG_SNAPSHOT:
        s_handle_snapshot(e, m);
        break;
    case MSG_APPEND_RESP:
        if (e->role == ROLE_LEADER && m->term == e->term) {
            s_handle_append_resp(e, m);
        }
        break;
    case MSG_HEARTBEAT_RESP:
        if (e->role == ROLE_LEADER && m->term == e->term) {
            s_handle_heartbeat_resp(e, m);
        }
        break;
    case MSG_SNAPSHOT_RESP:
        if (e->role == ROLE_LEADER && m->term == e->term) {
            s_handle_snapshot_resp(e, m);
        }
        break;
    case MSG_TIMEOUT_NOW:
        if (e->role != ROLE_LEADER && e->role != ROLE_LEARNER &&
            s_is_voter(e, e->c.id)) {
            s_campaign(e, false, true);
        }
        break;
    default:
        break;
    }
out:
    s_announce(e);
}

int engine_propose(engine *e, zraft_entry *ents, uint32_t n)
{
    if (e->role != ROLE_LEADER) {
        return ZRAFT_ENOTLEADER;
    }
    if (e->transferee != 0) {
        return ZRAFT_ETRANSFER;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (ents[i].type != ZRAFT_ENTRY_NORMAL) {
            return ZRAFT_EINVAL;
        }
    }
    uint64_t next = rlog_last(&e->log) + 1;
    for (uint32_t i = 0; i < n; i++) {
        ents[i].id.term = e->term;
        ents[i].id.index = next + i;
    }
    s_append(e, ents, n);
    s_bcast_append(e);
    s_maybe_commit(e); /* nothing commits before a flush, but be uniform */
    s_announce(e);
    return 0;
}

/* Leader, no uncommitted configuration, no transfer. */
static int s_can_change(const engine *e)
{
    if (e->role != ROLE_LEADER) {
        return ZRAFT_ENOTLEADER;
    }
    if (e->transferee != 0) {
        return ZRAFT_ETRANSFER;
    }
    const mem_entry *cur = &e->mems[e->mems_n - 1];
    if (cur->m.joint || cur->id.index > e->committed ||
        !s_committed_in_term(e)) {
        return ZRAFT_EBUSY;
    }
    return 0;
}

static void s_propose_config(engine *e, const zraft_membership *m,
                             uint64_t *index)
{
    zraft_entry *en =
        s_own_entry(e, ZRAFT_ENTRY_MEMBERSHIP, s_encode_membership(m));
    if (index != NULL) {
        *index = en->id.index;
    }
    s_append(e, en, 1);
    s_bcast_append(e);
    s_maybe_commit(e);
    s_announce(e);
}

int engine_change_voters(engine *e, const zraft_id *voters, uint32_t n,
                         uint64_t *index)
{
    int rv = s_can_change(e);
    if (index != NULL) {
        *index = 0;
    }
    if (rv != 0) {
        return rv;
    }
    if (n == 0 || n > ZRAFT_MAX_MEMBERS) {
        return ZRAFT_EINVAL;
    }
    const zraft_membership *cur = s_config(e);
    for (uint32_t i = 0; i < n; i++) {
        if (voters[i] == 0 || zraft_membership_find(cur, voters[i]) == NULL) {
            return ZRAFT_ENOTMEMBER;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (voters[j] == voters[i]) {
                return ZRAFT_EINVAL;
            }
        }
    }
    zraft_membership next = *cur;
    bool same = true;
    for (uint32_t i = 0; i < next.n; i++) {
        zraft_member *mb = &next.members[i];
        bool was = (mb->roles & ZRAFT_ROLE_VOTER) != 0;
        bool will = false;
        for (uint32_t j = 0; j < n; j++) {
            will |= voters[j] == mb->id;
        }
        if (was != will) {
            same = false;
        }
        uint8_t roles = 0;
        if (was) {
            roles |= ZRAFT_ROLE_VOTER_OLD;
        }
        if (will) {
            roles |= ZRAFT_ROLE_VOTER;
        }
        if (!was && !will) {
            roles = ZRAFT_ROLE_LEARNER;
        }
        mb->roles = roles;
    }
    if (same) {
        return 0;
    }
    next.joint = true;
    s_propose_config(e, &next, index);
    return 0;
}

int engine_add_learner(engine *e, zraft_id id, const char *addr,
                       uint64_t *index)
{
    int rv = s_can_change(e);
    if (index != NULL) {
        *index = 0;
    }
    if (rv != 0) {
        return rv;
    }
    if (id == 0) {
        return ZRAFT_EINVAL;
    }
    zraft_membership next = *s_config(e);
    zraft_member *mb = NULL;
    for (uint32_t i = 0; i < next.n; i++) {
        if (next.members[i].id == id) {
            mb = &next.members[i];
        }
    }
    if (mb != NULL && !(mb->roles & ZRAFT_ROLE_LEARNER)) {
        return ZRAFT_EINVAL; /* already a voter */
    }
    if (mb == NULL) {
        if (next.n >= ZRAFT_MAX_MEMBERS) {
            return ZRAFT_EINVAL;
        }
        mb = &next.members[next.n++];
        memset(mb, 0, sizeof(*mb));
        mb->id = id;
        mb->roles = ZRAFT_ROLE_LEARNER;
    }
    if (addr != NULL) {
        size_t l = strnlen(addr, ZRAFT_ADDR_MAX);
        if (l >= ZRAFT_ADDR_MAX) {
            return ZRAFT_EINVAL;
        }
        memcpy(mb->addr, addr, l + 1);
    }
    s_propose_config(e, &next, index);
    return 0;
}

int engine_remove_learner(engine *e, zraft_id id, uint64_t *index)
{
    int rv = s_can_change(e);
    if (index != NULL) {
        *index = 0;
    }
    if (rv != 0) {
        return rv;
    }
    zraft_membership next = *s_config(e);
    for (uint32_t i = 0; i < next.n; i++) {
        if (next.members[i].id == id) {
            if (!(next.members[i].roles & ZRAFT_ROLE_LEARNER)) {
                return ZRAFT_EINVAL;
            }
            next.members[i] = next.members[--next.n];
            s_propose_config(e, &next, index);
            return 0;
        }
    }
    return ZRAFT_ENOTMEMBER;
}

int engine_transfer_leader(engine *e, zraft_id to)
{
    if (e->role != ROLE_LEADER) {
        return ZRAFT_ENOTLEADER;
    }
    if (to == e->c.id) {
        return 0;
    }
    const zraft_member *mb = zraft_membership_find(s_config(e), to);
    if (mb == NULL || !(mb->roles & ZRAFT_ROLE_VOTER)) {
        return ZRAFT_ENOTMEMBER;
    }
    progress *p = s_progress(e, to);
    if (p == NULL) {
        return ZRAFT_ENOTMEMBER;
    }
    e->transferee = to;
    e->transfer_deadline = e->now + e->c.election_timeout_min_ms;
    if (p->match == rlog_last(&e->log)) {
        s_send_timeout_now(e, to);
    } else {
        s_send_append(e, p, false);
    }
    s_announce(e);
    return 0;
}

void engine_read_index(engine *e, uint64_t req_id)
{
    if (e->role != ROLE_LEADER) {
        command *c = s_cmd(e, CMD_READ_FAIL);
        c->u.read.req_id = req_id;
        c->u.read.err = ZRAFT_ENOTLEADER;
        return;
    }
    if (!s_committed_in_term(e)) {
        /* Thesis §6.4 step 1: the commit index is current only once an entry
         * of this term is committed. */
        e->reads_wait = s_grow(e->reads_wait, &e->reads_wait_cap,
                               e->reads_wait_n + 1, sizeof(uint64_t));
        e->reads_wait[e->reads_wait_n++] = req_id;
        return;
    }
    e->hb_ctx++;
    s_start_read(e, req_id);
    s_bcast_heartbeat(e);
    s_release_reads(e); /* a sole voter confirms itself */
}

int engine_trigger_snapshot(engine *e)
{
    if (e->snap_building) {
        return ZRAFT_EBUSY;
    }
    if (e->applied == 0 ||
        (e->has_snap && e->applied <= e->snap.last_log_id.index)) {
        return 0;
    }
    e->snap_building = true;
    s_cmd(e, CMD_BUILD_SNAPSHOT);
    return 0;
}

void engine_io_flushed(engine *e, uint64_t io_seq)
{
    if (io_seq <= e->io_flushed) {
        return;
    }
    e->io_flushed = io_seq;
    size_t done = 0;
    while (done < e->ioq_n && e->ioq[done].seq <= io_seq) {
        e->flushed_log = e->ioq[done].last;
        done++;
    }
    if (done > 0) {
        memmove(e->ioq, e->ioq + done, (e->ioq_n - done) * sizeof(io_op));
        e->ioq_n -= done;
    }
    s_self_progress(e);
    s_announce(e);
}

void engine_applied(engine *e, uint64_t index)
{
    if (index <= e->applied) {
        return;
    }
    e->applied = index;
    if (e->c.snapshot_threshold > 0 && !e->snap_building &&
        e->applied - (e->has_snap ? e->snap.last_log_id.index : 0) >=
            e->c.snapshot_threshold) {
        e->snap_building = true;
        s_cmd(e, CMD_BUILD_SNAPSHOT);
    }
}

void engine_snapshot_built(engine *e, const snapshot_meta *m, int err)
{
    e->snap_building = false;
    if (err != 0 || m == NULL) {
        return;
    }
    if (e->has_snap && m->last_log_id.index <= e->snap.last_log_id.index) {
        return;
    }
    int terr;
    uint64_t t = s_term_at(e, m->last_log_id.index, &terr);
    if (terr == 0 && t != m->last_log_id.term) {
        return; /* not a snapshot of this log */
    }
    e->has_snap = true;
    e->snap = *m;
    e->log.snap = m->last_log_id;
    /* §7: discard entries covered by the snapshot, keeping a tail so that
     * slightly lagging followers need no snapshot. */
    uint64_t idx = m->last_log_id.index;
    if (idx > e->c.snapshot_keep_entries) {
        uint64_t upto = idx - e->c.snapshot_keep_entries;
        if (upto >= e->log.first && e->log.len > 0) {
            uint64_t pt = s_term_at(e, upto, &terr);
            command *c = s_cmd(e, CMD_PURGE);
            c->u.purge.upto.index = upto;
            c->u.purge.upto.term = pt;
            rlog_purge(&e->log, upto);
            s_io(e, c, IO_OTHER, 0);
        }
    }
}

void engine_report_unreachable(engine *e, zraft_id to, int err)
{
    if (e->role != ROLE_LEADER) {
        return;
    }
    progress *p = s_progress(e, to);
    if (p == NULL) {
        return;
    }
    if (p->state == PR_SNAPSHOT) {
        p->pending_snapshot = 0;
    }
    if (p->state != PR_PROBE || p->probe_sent) {
        progress_become_probe(p);
    }
    if (err == ZRAFT_ECOMPACTED && e->has_snap) {
        command *c = s_cmd(e, CMD_SEND_SNAPSHOT);
        c->u.send_snapshot.to = p->id;
        c->u.send_snapshot.term = e->term;
        progress_become_snapshot(p, e->snap.last_log_id.index, e->now);
    }
}

/* Is the engine still the leader of `term`? A node leads at most once per
 * term and a leader never truncates, so while this holds the log still
 * extends the one a leader command was made against. */
static bool s_leads(const engine *e, uint64_t term)
{
    return e->role == ROLE_LEADER && e->term == term;
}

bool engine_command_current(const engine *e, const command *c)
{
    switch (c->type) {
    case CMD_REPLICATE:
        return s_leads(e, c->u.replicate.term);
    case CMD_SEND_SNAPSHOT:
        return s_leads(e, c->u.send_snapshot.term);
    case CMD_SEND:
        switch (c->u.send.type) {
        case MSG_APPEND:
        case MSG_HEARTBEAT:
        case MSG_SNAPSHOT:
        case MSG_TIMEOUT_NOW:
            return s_leads(e, c->u.send.term);
        case MSG_VOTE:
            /* A pre-vote asks for the term it would take (s_campaign). */
            if (c->u.send.u.vote.pre_vote) {
                return e->role == ROLE_PRECANDIDATE &&
                       c->u.send.term == e->term + 1;
            }
            return e->role == ROLE_CANDIDATE && c->u.send.term == e->term;
        default:
            return true; /* replies */
        }
    default:
        return true;
    }
}

const command *engine_commands(const engine *e, size_t *n)
{
    *n = e->n_cmds;
    return e->cmds;
}

void engine_commands_clear(engine *e)
{
    e->n_cmds = 0;
    for (size_t i = 0; i < e->own_n; i++) {
        zraft_buf_unref(e->own[i].payload);
    }
    e->own_n = 0;
}

void engine_get_status(const engine *e, engine_status *s)
{
    memset(s, 0, sizeof(*s));
    s->id = e->c.id;
    s->role = e->role;
    s->term = e->term;
    s->voted_for = e->vote;
    s->leader = e->leader;
    s->committed = e->committed;
    s->applied = e->applied;
    s->last_log_id = rlog_last_id(&e->log);
    s->flushed_log_id = e->flushed_log;
    s->first_index = e->log.len ? e->log.first : rlog_last(&e->log) + 1;
    s->snapshot = e->has_snap ? e->snap.last_log_id : (zraft_log_id){0, 0};
    s->membership_index = e->mems[e->mems_n - 1].id.index;
}

const zraft_membership *engine_membership(const engine *e)
{
    return s_config(e);
}

const zraft_membership *engine_committed_membership(const engine *e)
{
    return s_committed_config(e);
}

zraft_id engine_leader(const engine *e)
{
    return e->leader;
}

uint64_t engine_term_at(const engine *e, uint64_t index, int *err)
{
    int dummy;
    return s_term_at(e, index, err ? err : &dummy);
}

uint64_t engine_matched(const engine *e, zraft_id peer)
{
    if (e->role != ROLE_LEADER) {
        return 0;
    }
    if (peer == e->c.id) {
        return s_self_match(e);
    }
    const progress *p = s_progress((engine *)e, peer);
    return p ? p->match : 0;
}
