/* snapshot.c - snapshots: triggering, building, purging and installing.
 *
 * The driver builds a snapshot when asked (by threshold or on demand); once
 * built, the log before it is purged, keeping a tail for lagging followers
 * (§7). A follower installs a snapshot from the leader by discarding its log
 * unless it already holds the snapshot's last entry; the leader handles the
 * answer. Sending a snapshot is decided by replication.c. */
#include "engine_int.h"
#include "progress.h"

void snapshot_handle_resp(engine *e, const msg *m)
{
    progress *p = engine_progress(e, m->from);
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
        commit_maybe_advance(e);
        if (e->role != ROLE_LEADER || (p = engine_progress(e, id)) == NULL) {
            return;
        }
    } else {
        p->pending_snapshot = 0;
        progress_become_probe(p);
    }
    replication_send_append(e, p, false);
}

/* §7: InstallSnapshot receiver. */
void snapshot_handle(engine *e, const msg *m)
{
    const snapshot_meta *meta = m->u.snapshot.meta;
    msg *r;
    if (meta == NULL || m->u.snapshot.data == NULL || meta->membership.n == 0) {
        return;
    }
    zraft_log_id sl = meta->last_log_id;
    if (sl.index <= e->committed) {
        r = engine_send(e, MSG_SNAPSHOT_RESP, m->from);
        r->u.snapshot_resp.success = true;
        r->u.snapshot_resp.index = e->committed;
        engine_wait_io_last(e);
        return;
    }
    int err;
    if (engine_log_term(e, sl.index, &err) == sl.term && err == 0) {
        /* We hold the snapshot's last entry: the log is good up to there. */
        commit_to(e, sl.index);
        r = engine_send(e, MSG_SNAPSHOT_RESP, m->from);
        r->u.snapshot_resp.success = true;
        r->u.snapshot_resp.index = sl.index;
        engine_wait_io_last(e);
        return;
    }
    /* Discard the log and take the snapshot's state. */
    e->install_meta = *meta;
    rlog_reset(&e->log, sl);
    e->mems_n = 0;
    engine_mem_push(e, sl, &meta->membership);
    e->committed = sl.index;
    if (e->applied < sl.index) {
        e->applied = sl.index;
    }
    e->has_snap = true;
    e->snap = *meta;
    command *c = engine_cmd(e, CMD_INSTALL_SNAPSHOT);
    c->u.install_snapshot.meta = &e->install_meta;
    c->u.install_snapshot.data = m->u.snapshot.data;
    engine_io(e, c, IO_RESET, 0);
    membership_change_config_changed(e);
    r = engine_send(e, MSG_SNAPSHOT_RESP, m->from);
    r->u.snapshot_resp.success = true;
    r->u.snapshot_resp.index = sl.index;
    engine_wait_io_last(e);
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
    engine_cmd(e, CMD_BUILD_SNAPSHOT);
    return 0;
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
        engine_cmd(e, CMD_BUILD_SNAPSHOT);
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
    uint64_t t = engine_log_term(e, m->last_log_id.index, &terr);
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
            uint64_t pt = engine_log_term(e, upto, &terr);
            command *c = engine_cmd(e, CMD_PURGE);
            c->u.purge.upto.index = upto;
            c->u.purge.upto.term = pt;
            rlog_purge(&e->log, upto);
            engine_io(e, c, IO_OTHER, 0);
        }
    }
}
