/* read.c - linearizable reads (read-index) and leadership transfer.
 *
 * A read is answered with the commit index at its arrival once a heartbeat
 * round started after it is acknowledged by a quorum, and only after the
 * leader committed an entry of its term (thesis §6.4). Leadership transfer
 * brings the target up to date, then sends it TimeoutNow so that it
 * campaigns at once (thesis §3.10). */
#include <string.h>

#include "engine_int.h"
#include "progress.h"

void read_fail_all(engine *e, int err)
{
    for (size_t i = 0; i < e->reads_n; i++) {
        command *c = engine_cmd(e, CMD_READ_FAIL);
        c->u.read.req_id = e->reads[i].req_id;
        c->u.read.err = err;
    }
    for (size_t i = 0; i < e->reads_wait_n; i++) {
        command *c = engine_cmd(e, CMD_READ_FAIL);
        c->u.read.req_id = e->reads_wait[i];
        c->u.read.err = err;
    }
    e->reads_n = 0;
    e->reads_wait_n = 0;
}

static int s_acked(const engine *e, zraft_id id, const void *arg)
{
    uint64_t ctx = *(const uint64_t *)arg;
    if (id == e->c.id) {
        return 1;
    }
    const progress *p = engine_progress((engine *)e, id);
    return p != NULL && p->hb_acked >= ctx ? 1 : 0;
}

/* Answers reads whose heartbeat round a quorum confirmed (thesis §6.4). */
void read_release(engine *e)
{
    size_t done = 0;
    while (done < e->reads_n &&
           commit_quorum(e, engine_conf(e), s_acked, &e->reads[done].ctx) > 0) {
        command *c = engine_cmd(e, CMD_READ_READY);
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
        engine_grow(e->reads, &e->reads_cap, e->reads_n + 1, sizeof(read_req));
    read_req *r = &e->reads[e->reads_n++];
    r->req_id = req_id;
    r->index = e->committed;
    r->ctx = e->hb_ctx;
}

/* Reads that waited for this term's first commit go out in one round. */
void read_start_waiting(engine *e)
{
    if (e->reads_wait_n == 0 || !commit_in_term(e)) {
        return;
    }
    e->hb_ctx++;
    for (size_t i = 0; i < e->reads_wait_n; i++) {
        s_start_read(e, e->reads_wait[i]);
    }
    e->reads_wait_n = 0;
    replication_bcast_heartbeat(e);
    read_release(e);
}

void read_send_timeout_now(engine *e, zraft_id to)
{
    engine_send(e, MSG_TIMEOUT_NOW, to);
}

int engine_transfer_leader(engine *e, zraft_id to)
{
    if (e->role != ROLE_LEADER) {
        return ZRAFT_ENOTLEADER;
    }
    if (to == e->c.id) {
        return 0;
    }
    const zraft_member *mb = zraft_membership_find(engine_conf(e), to);
    if (mb == NULL || !(mb->roles & ZRAFT_ROLE_VOTER)) {
        return ZRAFT_ENOTMEMBER;
    }
    progress *p = engine_progress(e, to);
    if (p == NULL) {
        return ZRAFT_ENOTMEMBER;
    }
    e->transferee = to;
    e->transfer_deadline = e->now + e->c.election_timeout_min_ms;
    if (p->match == rlog_last(&e->log)) {
        read_send_timeout_now(e, to);
    } else {
        replication_send_append(e, p, false);
    }
    engine_announce(e);
    return 0;
}

void engine_read_index(engine *e, uint64_t req_id)
{
    if (e->role != ROLE_LEADER) {
        command *c = engine_cmd(e, CMD_READ_FAIL);
        c->u.read.req_id = req_id;
        c->u.read.err = ZRAFT_ENOTLEADER;
        return;
    }
    if (!commit_in_term(e)) {
        /* Thesis §6.4 step 1: the commit index is current only once an entry
         * of this term is committed. */
        e->reads_wait = engine_grow(e->reads_wait, &e->reads_wait_cap,
                                    e->reads_wait_n + 1, sizeof(uint64_t));
        e->reads_wait[e->reads_wait_n++] = req_id;
        return;
    }
    e->hb_ctx++;
    s_start_read(e, req_id);
    replication_bcast_heartbeat(e);
    read_release(e); /* a sole voter confirms itself */
}
