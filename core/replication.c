/* replication.c - log replication: AppendEntries and heartbeats, both ends.
 *
 * The leader side sends entries to each follower as its progress allows
 * (probe, pipelined replicate or snapshot; see progress.c), handles the
 * answers with fast backtracking (etcd's findConflictByTerm) and reports
 * unreachable peers. The follower side is the AppendEntries receiver of
 * §5.3: consistency check, truncation of conflicting entries (never
 * committed ones, §5.4), append and acknowledgement once durable. */
#include <stdlib.h>

#include "engine_int.h"
#include "progress.h"

void replication_clear_progress(engine *e)
{
    for (uint32_t i = 0; i < e->n_prs; i++) {
        progress_free(&e->prs[i]);
    }
    e->n_prs = 0;
}

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
        uint64_t t = engine_log_term(e, index, &err);
        if (err != 0 || t <= term || index == 0) {
            return index;
        }
        index--;
    }
}

/* Sends the next AppendEntries (or a snapshot) to `p` unless paused.
 * Returns true if it sent something. `empty_ok` sends even with no entries
 * (to carry the commit index). */
bool replication_send_append(engine *e, progress *p, bool empty_ok)
{
    if (progress_paused(p, e->c.max_inflight_msgs, e->c.max_inflight_bytes)) {
        return false;
    }
    int err;
    uint64_t prev_index = p->next - 1;
    uint64_t prev_term = engine_log_term(e, prev_index, &err);
    /* The previous entry's term may be known (index 0, or the snapshot's)
     * while the entries after it are purged: both must be available. */
    if (err != 0 || (e->has_snap && p->next < e->log.first)) {
        /* §7: the entries it needs are gone; send the snapshot. */
        if (!e->has_snap) {
            return false;
        }
        command *c = engine_cmd(e, CMD_SEND_SNAPSHOT);
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
    command *c = engine_cmd(e, CMD_REPLICATE);
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

void replication_bcast_append(engine *e)
{
    for (uint32_t i = 0; i < e->n_prs; i++) {
        replication_send_append(e, &e->prs[i], false);
    }
}

void replication_bcast_heartbeat(engine *e)
{
    for (uint32_t i = 0; i < e->n_prs; i++) {
        progress *p = &e->prs[i];
        msg *m = engine_send(e, MSG_HEARTBEAT, p->id);
        m->u.heartbeat.commit =
            p->match < e->committed ? p->match : e->committed;
        m->u.heartbeat.ctx = e->hb_ctx;
    }
}

void replication_handle_append_resp(engine *e, const msg *m)
{
    progress *p = engine_progress(e, m->from);
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
            replication_send_append(e, p, false);
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
    commit_maybe_advance(e);
    /* Committing may have appended C_new and dropped this follower's
     * progress: look it up again. */
    if (e->role != ROLE_LEADER || (p = engine_progress(e, id)) == NULL) {
        return;
    }
    /* Fill the window. */
    while (replication_send_append(e, p, false)) {
    }
    if (e->transferee == p->id && p->match == rlog_last(&e->log)) {
        read_send_timeout_now(e, p->id);
    }
}

void replication_handle_heartbeat_resp(engine *e, const msg *m)
{
    progress *p = engine_progress(e, m->from);
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
        replication_send_append(e, p, true);
    }
    read_release(e);
}

static void s_reply_append(engine *e, const msg *m, bool ok, uint64_t index,
                           uint64_t hint_index, uint64_t hint_term)
{
    msg *r = engine_send(e, MSG_APPEND_RESP, m->from);
    r->u.append_resp.success = ok;
    r->u.append_resp.index = index;
    r->u.append_resp.hint_index = hint_index;
    r->u.append_resp.hint_term = hint_term;
    if (ok) {
        engine_wait_io_last(e); /* acknowledge only what is durable */
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
void replication_handle_append(engine *e, const msg *m)
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
    uint64_t t = engine_log_term(e, prev.index, &err);
    if (err != 0 || t != prev.term) {
        /* Reject, suggesting where our logs may agree (fast backtracking). */
        uint64_t last = rlog_last(&e->log);
        uint64_t hint = prev.index < last ? prev.index : last;
        hint = s_conflict_by_term(e, hint, prev.term);
        uint64_t hint_term = engine_log_term(e, hint, &err);
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
        uint64_t have = engine_log_term(e, en->id.index, &err);
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
            engine_truncate(e, at);
        }
        engine_append(e, &m->u.append.entries[i], n - i);
    }
    uint64_t lastnew = prev.index + n;
    commit_to(e, m->u.append.commit < lastnew ? m->u.append.commit : lastnew);
    s_reply_append(e, m, true, lastnew, 0, 0);
}

void replication_handle_heartbeat(engine *e, const msg *m)
{
    commit_to(e, m->u.heartbeat.commit);
    msg *r = engine_send(e, MSG_HEARTBEAT_RESP, m->from);
    r->u.heartbeat_resp.ctx = m->u.heartbeat.ctx;
}

void engine_report_unreachable(engine *e, zraft_id to, int err)
{
    if (e->role != ROLE_LEADER) {
        return;
    }
    progress *p = engine_progress(e, to);
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
        command *c = engine_cmd(e, CMD_SEND_SNAPSHOT);
        c->u.send_snapshot.to = p->id;
        c->u.send_snapshot.term = e->term;
        progress_become_snapshot(p, e->snap.last_log_id.index, e->now);
    }
}
