/* election.c - leader election: timeouts, votes, pre-votes and role changes.
 *
 * A follower whose election timer fires campaigns (§5.2), first with a
 * pre-vote when configured (thesis §9.6) so that a partitioned node does not
 * inflate the term; votes are tallied per half of a joint configuration.
 * This file also holds the role transitions (follower, leader) that the rest
 * of the engine triggers, and the RequestVote receiver with its up-to-date
 * check (§5.4.1). */
#include <stdlib.h>

#include "engine_int.h"
#include "progress.h"

static uint64_t s_rand(engine *e)
{
    /* splitmix64: a seeded, reproducible stream. */
    uint64_t z = (e->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void election_reset_timer(engine *e)
{
    uint64_t span = e->c.election_timeout_max_ms - e->c.election_timeout_min_ms;
    e->election_deadline =
        e->now + e->c.election_timeout_min_ms + s_rand(e) % span;
}

void election_become_follower(engine *e, uint64_t term, zraft_id leader)
{
    bool was_leader = e->role == ROLE_LEADER;
    if (term != e->term) {
        e->term = term;
        e->vote = 0;
        engine_save_vote(e);
    }
    e->role = engine_follower_role(e);
    e->leader = leader;
    e->n_votes = 0;
    e->transferee = 0;
    if (was_leader) {
        read_fail_all(e, ZRAFT_ELEADERSHIP_LOST);
        replication_clear_progress(e);
        engine_streams(e);
    }
    election_reset_timer(e);
}

void election_become_leader(engine *e)
{
    e->role = ROLE_LEADER;
    e->leader = e->c.id;
    e->n_votes = 0;
    e->transferee = 0;
    e->hb_ctx = 0;
    e->leader_contact = e->now;
    e->heartbeat_due = e->now + e->c.heartbeat_interval_ms;
    e->check_quorum_due = e->now + e->c.election_timeout_min_ms;
    replication_clear_progress(e);
    /* Room for every member; membership_change_sync_progress fills it. */
    free(e->prs);
    e->prs = calloc(ZRAFT_MAX_MEMBERS, sizeof(progress));
    if (e->prs == NULL) {
        abort();
    }
    e->n_prs = 0;
    membership_change_sync_progress(e);
    engine_streams(e);
    /* §5.4.2 / §8: a new leader commits a blank entry of its own term. */
    zraft_entry *blank = engine_own_entry(e, ZRAFT_ENTRY_BLANK, NULL);
    engine_append(e, blank, 1);
    replication_bcast_append(e);
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

static void s_tally(engine *e)
{
    int r = commit_quorum(e, engine_conf(e), s_granted, NULL);
    if (r > 0) {
        if (e->role == ROLE_PRECANDIDATE) {
            election_campaign(e, false, false);
        } else {
            election_become_leader(e);
        }
    } else if (r < 0) {
        election_become_follower(e, e->term, 0);
    }
}

/* §5.2: increment the term, vote for self (durably before asking anyone),
 * request votes. Pre-vote (thesis §9.6) asks first without changing term. */
void election_campaign(engine *e, bool pre_vote, bool transfer)
{
    const zraft_membership *m = engine_conf(e);
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
        engine_save_vote(e);
        term = e->term;
    }
    election_reset_timer(e);
    s_record_vote(e, e->c.id, true);
    zraft_log_id last = rlog_last_id(&e->log);
    for (uint32_t i = 0; i < m->n; i++) {
        const zraft_member *p = &m->members[i];
        if (p->id == e->c.id ||
            !(p->roles & (ZRAFT_ROLE_VOTER | ZRAFT_ROLE_VOTER_OLD))) {
            continue;
        }
        msg *req = engine_send(e, MSG_VOTE, p->id);
        req->term = term;
        req->u.vote.last_log_id = last;
        req->u.vote.pre_vote = pre_vote;
        req->u.vote.transfer = transfer;
        if (!pre_vote) {
            engine_wait_io_last(e); /* the self-vote is durable first */
        }
    }
    s_tally(e);
}

bool election_in_lease(const engine *e)
{
    return e->c.check_quorum && e->leader != 0 &&
           e->now - e->leader_contact < e->c.election_timeout_min_ms;
}

/* §5.2, §5.4.1: RequestVote receiver (and pre-vote, thesis §9.6). */
void election_handle_vote(engine *e, const msg *m)
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
        engine_save_vote(e);
        election_reset_timer(e);
    }
    msg *r = engine_send(e, MSG_VOTE_RESP, m->from);
    r->u.vote_resp.pre_vote = pre;
    r->u.vote_resp.granted = grant;
    if (grant) {
        r->term = m->term; /* a granted pre-vote carries the future term */
        if (!pre) {
            engine_wait_io_last(e);
        }
    }
}

void election_handle_vote_resp(engine *e, const msg *m)
{
    bool pre = m->u.vote_resp.pre_vote;
    if ((e->role == ROLE_PRECANDIDATE && pre) ||
        (e->role == ROLE_CANDIDATE && !pre && m->term == e->term)) {
        s_record_vote(e, m->from, m->u.vote_resp.granted);
        s_tally(e);
    }
}
