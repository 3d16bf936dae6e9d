/* commit.c - quorums, the commit index and applying.
 *
 * A leader commits the highest index a quorum (of each half when joint, §6)
 * holds durably, and only an entry of its own term (§5.4.2); a follower
 * takes the leader's commit index, bounded by its own log. Either way the
 * driver is told to apply up to it once the local writes are durable. The
 * generic quorum test here is shared by vote tallies and read-index. */
#include <stdint.h>

#include "engine_int.h"
#include "progress.h"

/* The highest index this node has durably that agrees with its current log:
 * what the leader may count for itself (§5.4.2, thesis §10.2.1). */
uint64_t commit_self_match(const engine *e)
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

/* Does the set of ids for which `yes(id)` holds form a majority of the
 * voters of `m` - in both halves when joint (§6)? `no` (optional) counts
 * definite refusals: returns -1 once a majority can no longer be reached. */
int commit_quorum(const engine *e, const zraft_membership *m, vote_fn fn,
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
    const zraft_membership *m = engine_conf(e);
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
                x = commit_self_match(e);
            } else {
                const progress *p = engine_progress((engine *)e, id);
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

bool commit_in_term(const engine *e)
{
    int err;
    return engine_log_term(e, e->committed, &err) == e->term && err == 0;
}

static void s_apply(engine *e)
{
    command *c = engine_cmd(e, CMD_APPLY);
    c->u.apply.upto = e->committed;
    /* Apply only what this node has durably written, leader included: a
     * leader may learn that a quorum of followers holds an entry before its
     * own write of it completes, and the state machine (and any snapshot of
     * it) must never run ahead of the local log. */
    engine_wait_io_last(e);
}

/* §5.4.2: commit the highest index a quorum holds, only if it is an entry
 * of the current term; earlier entries commit with it (Log Matching). */
void commit_maybe_advance(engine *e)
{
    if (e->role != ROLE_LEADER) {
        return;
    }
    uint64_t q = s_quorum_index(e);
    int err;
    if (q <= e->committed || engine_log_term(e, q, &err) != e->term ||
        err != 0) {
        return;
    }
    e->committed = q;
    engine_mem_compact(e);
    membership_change_sync_progress(e);
    s_apply(e);
    read_start_waiting(e);
    membership_change_finish_joint(e);
    membership_change_step_down_if_removed(e);
    if (e->role != ROLE_LEADER) {
        return;
    }
    /* Tell idle followers about the new commit index. */
    for (uint32_t i = 0; i < e->n_prs; i++) {
        progress *p = &e->prs[i];
        if (p->state == PR_REPLICATE && p->inf_count == 0) {
            replication_send_append(e, p, true);
        }
    }
}

void commit_to(engine *e, uint64_t c)
{
    uint64_t last = rlog_last(&e->log);
    if (c > last) {
        c = last;
    }
    if (c > e->committed) {
        e->committed = c;
        engine_mem_compact(e);
        s_apply(e);
    }
}
