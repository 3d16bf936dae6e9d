/* membership_change.c - configuration changes: joint consensus and learners.
 *
 * Voters change through a joint configuration C_old,new that the leader
 * leaves by appending C_new once C_old,new commits (§6); learners are added
 * and removed with one entry each. A configuration takes effect as soon as
 * it is in the log, so this file also keeps the leader's progress set in
 * step with the replication targets and steps a leader down once the
 * committed C_new no longer lists it as a voter (thesis §4.2.2). */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "progress.h"

/* Whom the leader replicates to: the members of the effective
 * configuration and, until C_new commits, those of the committed one, so
 * that removed servers learn of their removal (thesis §4.2.2). */
static bool s_is_target(const engine *e, zraft_id id)
{
    return zraft_membership_find(engine_conf(e), id) != NULL ||
           zraft_membership_find(engine_committed_conf(e), id) != NULL;
}

static void s_add_progress(engine *e, zraft_id id, bool *changed)
{
    if (id == e->c.id || engine_progress(e, id) != NULL ||
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
void membership_change_sync_progress(engine *e)
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
    const zraft_membership *m = engine_conf(e);
    for (uint32_t i = 0; i < m->n; i++) {
        s_add_progress(e, m->members[i].id, &changed);
    }
    m = engine_committed_conf(e);
    for (uint32_t i = 0; i < m->n; i++) {
        s_add_progress(e, m->members[i].id, &changed);
    }
    if (changed) {
        engine_streams(e);
    }
}

void membership_change_config_changed(engine *e)
{
    if (e->role == ROLE_LEADER) {
        membership_change_sync_progress(e);
    } else if (e->role == ROLE_FOLLOWER || e->role == ROLE_LEARNER) {
        e->role = engine_follower_role(e);
    } else if (!engine_is_voter(e, e->c.id)) {
        e->role = ROLE_LEARNER; /* a candidate removed from the voters */
    }
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

/* §6: once C_old,new is committed the leader appends C_new. */
void membership_change_finish_joint(engine *e)
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
        engine_own_entry(e, ZRAFT_ENTRY_MEMBERSHIP, s_encode_membership(&next));
    engine_append(e, en, 1);
    replication_bcast_append(e);
    commit_maybe_advance(e); /* a single-voter C_new commits at once */
}

/* §6 / thesis §4.2.2: a leader that is not a voter of the committed C_new
 * steps down. */
void membership_change_step_down_if_removed(engine *e)
{
    if (e->role != ROLE_LEADER) {
        return;
    }
    const mem_entry *cur = &e->mems[e->mems_n - 1];
    if (cur->m.joint || cur->id.index > e->committed ||
        engine_is_voter(e, e->c.id)) {
        return;
    }
    election_become_follower(e, e->term, 0);
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
    if (cur->m.joint || cur->id.index > e->committed || !commit_in_term(e)) {
        return ZRAFT_EBUSY;
    }
    return 0;
}

static void s_propose_config(engine *e, const zraft_membership *m,
                             uint64_t *index)
{
    zraft_entry *en =
        engine_own_entry(e, ZRAFT_ENTRY_MEMBERSHIP, s_encode_membership(m));
    if (index != NULL) {
        *index = en->id.index;
    }
    engine_append(e, en, 1);
    replication_bcast_append(e);
    commit_maybe_advance(e);
    engine_announce(e);
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
    const zraft_membership *cur = engine_conf(e);
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
    return engine_add_learner_key(e, id, addr, NULL, index);
}

int engine_add_learner_key(engine *e, zraft_id id, const char *addr,
                           const char *key, uint64_t *index)
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
    zraft_membership next = *engine_conf(e);
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
    if (key != NULL) {
        size_t l = strnlen(key, ZRAFT_KEY_MAX);
        if (l != 0 && l != ZRAFT_KEY_LEN) {
            return ZRAFT_EINVAL;
        }
        memcpy(mb->key, key, l + 1);
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
    zraft_membership next = *engine_conf(e);
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
