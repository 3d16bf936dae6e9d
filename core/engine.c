/* engine.c - the Raft engine: lifecycle, the event entry points and their
 * dispatch, and the helpers every part of the engine shares.
 *
 * One struct holds all Raft state; every public function is an event that
 * may change it and appends commands for the driver (see engine.h for the
 * output contract). The protocol lives in one file per concern: election.c
 * (§5.2, with pre-vote and check-quorum from the thesis §9.6/§6.2),
 * replication.c (§5.3), commit.c (§5.4.2), membership_change.c (§6, joint
 * consensus), snapshot.c (§7) and read.c (read-index, thesis §6.4, and
 * leadership transfer, thesis §3.10). This file keeps the command list, the
 * storage I/O bookkeeping, log writes, timers and message dispatch. */
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

command *engine_cmd(engine *e, uint8_t type)
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

void *engine_grow(void *p, size_t *cap, size_t need, size_t elem)
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

uint64_t engine_log_term(const engine *e, uint64_t index, int *err)
{
    return rlog_term(&e->log, index, err);
}

const zraft_membership *engine_conf(const engine *e)
{
    return &e->mems[e->mems_n - 1].m;
}

bool engine_is_voter(const engine *e, zraft_id id)
{
    return e->mems_n > 0 && zraft_membership_is_voter(engine_conf(e), id);
}

bool engine_has_conf(const engine *e)
{
    return e->mems_n > 0 && e->mems[e->mems_n - 1].m.n > 0;
}

progress *engine_progress(engine *e, zraft_id id)
{
    for (uint32_t i = 0; i < e->n_prs; i++) {
        if (e->prs[i].id == id) {
            return &e->prs[i];
        }
    }
    return NULL;
}

/* ----------------------------------------------------------- storage I/O */

uint64_t engine_io(engine *e, command *c, uint8_t kind, uint64_t since)
{
    c->io_seq = ++e->io_last;
    e->ioq = engine_grow(e->ioq, &e->ioq_cap, e->ioq_n + 1, sizeof(io_op));
    io_op *op = &e->ioq[e->ioq_n++];
    op->seq = c->io_seq;
    op->kind = kind;
    op->since = since;
    op->last = rlog_last_id(&e->log);
    return c->io_seq;
}

void engine_save_vote(engine *e)
{
    command *c = engine_cmd(e, CMD_SAVE_VOTE);
    c->u.save_vote.term = e->term;
    c->u.save_vote.voted_for = e->vote;
    engine_io(e, c, IO_OTHER, 0);
}

/* ============================================================ messaging */

msg *engine_send(engine *e, uint8_t type, zraft_id to)
{
    command *c = engine_cmd(e, CMD_SEND);
    msg *m = &c->u.send;
    m->type = type;
    m->from = e->c.id;
    m->to = to;
    m->term = e->term;
    return m;
}

/* Sends `m`'s reply after every storage op issued so far is durable. */
void engine_wait_io_last(engine *e)
{
    e->cmds[e->n_cmds - 1].wait_io = e->io_last;
}

/* ========================================================== membership */

void engine_streams(engine *e)
{
    command *c = engine_cmd(e, CMD_STREAMS);
    c->u.streams.term = e->role == ROLE_LEADER ? e->term : 0;
}

uint8_t engine_follower_role(const engine *e)
{
    return engine_is_voter(e, e->c.id) ? ROLE_FOLLOWER : ROLE_LEARNER;
}

const zraft_membership *engine_committed_conf(const engine *e)
{
    for (size_t i = e->mems_n; i > 0; i--) {
        if (e->mems[i - 1].id.index <= e->committed) {
            return &e->mems[i - 1].m;
        }
    }
    return &e->mems[0].m;
}

void engine_mem_push(engine *e, zraft_log_id id, const zraft_membership *m)
{
    e->mems =
        engine_grow(e->mems, &e->mems_cap, e->mems_n + 1, sizeof(mem_entry));
    e->mems[e->mems_n].id = id;
    e->mems[e->mems_n].m = *m;
    e->mems_n++;
}

/* Forget configurations superseded by a committed one. */
void engine_mem_compact(engine *e)
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
void engine_append(engine *e, zraft_entry *ents, uint32_t n)
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
                engine_mem_push(e, ents[i].id, &m);
                conf = true;
            }
        }
    }
    command *c = engine_cmd(e, CMD_APPEND);
    c->u.append.entries = ents;
    c->u.append.n = n;
    engine_io(e, c, IO_OTHER, 0);
    if (conf) {
        membership_change_config_changed(e);
    }
}

void engine_truncate(engine *e, uint64_t since)
{
    rlog_truncate(&e->log, since);
    bool conf = false;
    while (e->mems_n > 1 && e->mems[e->mems_n - 1].id.index >= since) {
        e->mems_n--;
        conf = true;
    }
    command *c = engine_cmd(e, CMD_TRUNCATE);
    c->u.truncate.since = since;
    engine_io(e, c, IO_TRUNCATE, since);
    if (conf) {
        membership_change_config_changed(e);
    }
}

/* An entry the engine itself creates (blank or membership); the payload is
 * held until engine_commands_clear(). */
zraft_entry *engine_own_entry(engine *e, uint8_t type, zraft_buf *payload)
{
    e->own =
        engine_grow(e->own, &e->own_cap, e->own_n + 1, sizeof(zraft_entry));
    zraft_entry *en = &e->own[e->own_n++];
    en->type = type;
    en->payload = payload;
    en->id.term = e->term;
    en->id.index = rlog_last(&e->log) + 1;
    return en;
}

/* A leader's own durable writes count towards its quorum. */
static void s_self_progress(engine *e)
{
    if (e->role == ROLE_LEADER) {
        commit_maybe_advance(e);
    }
}

/* ============================================================ events */

void engine_announce(engine *e)
{
    if (e->said_role != e->role || e->said_term != e->term ||
        e->said_leader != e->leader) {
        command *c = engine_cmd(e, CMD_ROLE);
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
    engine_mem_push(e, zero, &empty);
    return e;
}

void engine_destroy(engine **ep)
{
    if (ep == NULL || *ep == NULL) {
        return;
    }
    engine *e = *ep;
    engine_commands_clear(e);
    replication_clear_progress(e);
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
    engine_mem_push(e, m->last_log_id, &m->membership);
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
                engine_mem_push(e, en->id, &m);
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
        command *c = engine_cmd(e, CMD_TRUNCATE);
        c->u.truncate.since = e->log.first;
        rlog_reset(&e->log, e->snap.last_log_id);
        engine_io(e, c, IO_TRUNCATE, c->u.truncate.since);
    }
    e->flushed_log = rlog_last_id(&e->log);
    if (e->term < e->flushed_log.term) {
        /* The saved term is behind the log (a snapshot or log restored
         * without its meta file): a term is never below one of its own
         * entries, else this node could lead in a term whose entries
         * conflict with ones it holds. Catch up as if it had heard of
         * that term, with no vote, and make that durable. */
        e->term = e->flushed_log.term;
        e->vote = 0;
        engine_save_vote(e);
    }
    engine_mem_compact(e);
    e->role = engine_follower_role(e);
    e->leader = 0;
    election_reset_timer(e);
    if (e->committed > e->applied) {
        command *c = engine_cmd(e, CMD_APPLY);
        c->u.apply.upto = e->committed;
    }
    /* A sole voter need not wait for anyone. */
    const zraft_membership *m = engine_conf(e);
    if (m->n > 0 && !m->joint && engine_is_voter(e, e->c.id)) {
        uint32_t voters = 0;
        for (uint32_t i = 0; i < m->n; i++) {
            voters += (m->members[i].roles & ZRAFT_ROLE_VOTER) != 0;
        }
        if (voters == 1) {
            election_campaign(e, false, false);
        }
    }
    engine_announce(e);
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
        engine_save_vote(e);
    }
    zraft_entry *en = engine_own_entry(e, ZRAFT_ENTRY_MEMBERSHIP, b);
    en->id.term = 1;
    en->id.index = 1;
    engine_append(e, en, 1);
    e->role = engine_follower_role(e);
    election_reset_timer(e);
    uint32_t voters = 0;
    for (uint32_t i = 0; i < chk.n; i++) {
        voters += (chk.members[i].roles & ZRAFT_ROLE_VOTER) != 0;
    }
    if (voters == 1 && engine_is_voter(e, e->c.id)) {
        election_campaign(e, false, false);
    }
    engine_announce(e);
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
            replication_bcast_heartbeat(e);
        }
        /* Retry snapshots whose answer never came. */
        for (uint32_t i = 0; i < e->n_prs; i++) {
            progress *p = &e->prs[i];
            if (p->state == PR_SNAPSHOT &&
                e->now - p->snapshot_sent_at >
                    2ull * e->c.election_timeout_max_ms) {
                p->pending_snapshot = 0;
                progress_become_probe(p);
                replication_send_append(e, p, false);
            }
        }
        if (e->transferee != 0 && e->now >= e->transfer_deadline) {
            e->transferee = 0; /* thesis §3.10: abort after a timeout */
        }
        if (e->now >= e->check_quorum_due) {
            e->check_quorum_due = e->now + e->c.election_timeout_min_ms;
            if (e->c.check_quorum) {
                int active = 1;
                const zraft_membership *m = engine_conf(e);
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
                        progress *p = engine_progress(e, id);
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
                    election_become_follower(e, e->term, 0);
                } else {
                    e->leader_contact = e->now;
                }
            }
        }
    } else if (e->now >= e->election_deadline) {
        if (e->role != ROLE_LEARNER && engine_has_conf(e) &&
            engine_is_voter(e, e->c.id)) {
            election_campaign(e, e->c.pre_vote, false);
        } else {
            election_reset_timer(e);
        }
    }
    engine_announce(e);
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
        if (m->type == MSG_VOTE && !m->u.vote.transfer &&
            election_in_lease(e)) {
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
            election_become_follower(e, m->term, from_leader ? m->from : 0);
        }
    } else if (m->term < e->term) {
        if (from_leader) {
            /* §5.1, Figure 2: reject with the current term, so that a
             * stale leader steps down. Always: etcd answers only with
             * check-quorum or pre-vote and otherwise counts on this node
             * campaigning with its higher term, which a learner never
             * does - its leader would never learn of the term. */
            msg *r = engine_send(e, MSG_APPEND_RESP, m->from);
            r->u.append_resp.success = false;
        } else if (m->type == MSG_VOTE && m->u.vote.pre_vote) {
            msg *r = engine_send(e, MSG_VOTE_RESP, m->from);
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
            e->role = engine_follower_role(e);
            e->leader = m->from;
            e->n_votes = 0;
        }
        e->leader_contact = e->now;
        election_reset_timer(e);
    }

    switch (m->type) {
    case MSG_VOTE:
        election_handle_vote(e, m);
        break;
    case MSG_VOTE_RESP:
        election_handle_vote_resp(e, m);
        break;
    case MSG_APPEND:
        replication_handle_append(e, m);
        break;
    case MSG_HEARTBEAT:
        replication_handle_heartbeat(e, m);
        break;
    case MSG_SNAPSHOT:
        snapshot_handle(e, m);
        break;
    case MSG_APPEND_RESP:
        if (e->role == ROLE_LEADER && m->term == e->term) {
            replication_handle_append_resp(e, m);
        }
        break;
    case MSG_HEARTBEAT_RESP:
        if (e->role == ROLE_LEADER && m->term == e->term) {
            replication_handle_heartbeat_resp(e, m);
        }
        break;
    case MSG_SNAPSHOT_RESP:
        if (e->role == ROLE_LEADER && m->term == e->term) {
            snapshot_handle_resp(e, m);
        }
        break;
    case MSG_TIMEOUT_NOW:
        if (e->role != ROLE_LEADER && e->role != ROLE_LEARNER &&
            engine_is_voter(e, e->c.id)) {
            election_campaign(e, false, true);
        }
        break;
    default:
        break;
    }
out:
    engine_announce(e);
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
    engine_append(e, ents, n);
    replication_bcast_append(e);
    commit_maybe_advance(
        e); /* nothing commits before a flush, but be uniform */
    engine_announce(e);
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
    engine_announce(e);
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
            return s_leads(e, c->u.send.term);
        case MSG_TIMEOUT_NOW:
            /* Only while that transfer runs: once it was abandoned, a
             * TimeoutNow would depose this working leader. */
            return s_leads(e, c->u.send.term) && e->transferee == c->u.send.to;
        case MSG_VOTE:
            /* A pre-vote asks for the term it would take (election_campaign).
             */
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
    return engine_conf(e);
}

const zraft_membership *engine_committed_membership(const engine *e)
{
    return engine_committed_conf(e);
}

zraft_id engine_leader(const engine *e)
{
    return e->leader;
}

uint64_t engine_term_at(const engine *e, uint64_t index, int *err)
{
    int dummy;
    return engine_log_term(e, index, err ? err : &dummy);
}

uint64_t engine_matched(const engine *e, zraft_id peer)
{
    if (e->role != ROLE_LEADER) {
        return 0;
    }
    if (peer == e->c.id) {
        return commit_self_match(e);
    }
    const progress *p = engine_progress((engine *)e, peer);
    return p ? p->match : 0;
}
