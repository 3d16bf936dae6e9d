/* test_engine_election.c - leader election: timeouts and votes (§5.2), the
 * election restriction (§5.4.1), pre-vote (thesis §9.6), check-quorum
 * (thesis §6.2) and ignoring disruptive servers while a leader is known to
 * be alive (thesis §4.2.3). One rule per test; each asserts on the engine's
 * command list and status. */
#include "engine_fixture.h"

static fx F;

static void fini(void)
{
    fx_close(&F);
}

TestSuite(election, .fini = fini);

/* Node 1 of voters {1,2,3}, bootstrapped (term 1, log [1]). */
static void boot3(bool pre_vote, bool check_quorum)
{
    engine_config c;
    zraft_membership m;
    fx_config(&c, 1);
    c.pre_vote = pre_vote;
    c.check_quorum = check_quorum;
    fx_members_n(&m, 3);
    fx_boot_with(&F, &c, &m);
}

/* Node 1 follows leader 2 in term 2 with log [1:1, 2:2, 3:2], commit 1. */
static void follower_with_log(bool pre_vote, bool check_quorum)
{
    boot3(pre_vote, check_quorum);
    const uint64_t terms[] = {2, 2};
    fx_follow(&F, 2, 2, 2, terms, 1);
}

static const msg *vote_resp_to(zraft_id to)
{
    const command *c = fx_sent(&F, MSG_VOTE_RESP, to);
    return c ? &c->u.send : NULL;
}

/* --------------------------------------------------------------- §5.2 */

/* §5.2: "If a follower receives no communication over a period of time
 * called the election timeout, then it assumes there is no viable leader and
 * begins an election": it increments its term, votes for itself and sends
 * RequestVote to every other server. */
Test(election, follower_times_out_and_becomes_candidate)
{
    boot3(false, false);
    fx_tick(&F, FX_ELECTION_MAX);
    engine_status s = fx_status(&F);
    cr_assert_eq(s.role, ROLE_CANDIDATE);
    cr_assert_eq(s.term, 2);
    cr_assert_eq(s.voted_for, 1);
    const command *sv = fx_find(&F, CMD_SAVE_VOTE);
    cr_assert_not_null(sv);
    cr_assert_eq(sv->u.save_vote.term, 2);
    cr_assert_eq(sv->u.save_vote.voted_for, 1);
    for (zraft_id to = 2; to <= 3; to++) {
        const command *v = fx_sent(&F, MSG_VOTE, to);
        cr_assert_not_null(v, "no RequestVote to %d", (int)to);
        cr_assert_eq(v->u.send.term, 2);
        cr_assert_not(v->u.send.u.vote.pre_vote);
        cr_assert_eq(v->u.send.u.vote.last_log_id.index, 1);
        cr_assert_eq(v->u.send.u.vote.last_log_id.term, 1);
    }
    cr_assert_eq(fx_sent_count(&F, MSG_VOTE, 0), 2);
}

/* §5.2: the election timeout is at least its minimum. */
Test(election, follower_waits_at_least_min_election_timeout)
{
    boot3(false, false);
    fx_tick(&F, FX_ELECTION_MIN - 1);
    cr_assert_eq(fx_role(&F), ROLE_FOLLOWER);
    cr_assert_eq(fx_sent_count(&F, MSG_VOTE, 0), 0);
    cr_assert_eq(fx_term(&F), 1);
}

/* §5.2: "Raft uses randomized election timeouts", chosen from a fixed
 * interval, so that split votes are rare. Different seeds give different
 * timeouts, all within [min, max). */
Test(election, election_timeouts_are_randomized_within_range)
{
    uint64_t seen[8];
    bool differ = false;
    for (int i = 0; i < 8; i++) {
        engine_config c;
        zraft_membership m;
        fx_config(&c, 1);
        c.seed = 1000 + (uint64_t)i * 7919;
        c.pre_vote = false;
        fx_members_n(&m, 3);
        fx_boot_with(&F, &c, &m);
        cr_assert(fx_tick_until_role(&F, ROLE_CANDIDATE, 2 * FX_ELECTION_MAX));
        seen[i] = F.now;
        cr_assert_geq(seen[i], FX_ELECTION_MIN);
        cr_assert_leq(seen[i], FX_ELECTION_MAX);
        differ |= seen[i] != seen[0];
        fx_close(&F);
    }
    cr_assert(differ, "every seed gave the same timeout %llu",
              (unsigned long long)seen[0]);
}

/* Figure 2 (Followers): the election timer restarts on "granting vote to
 * candidate", so a voter gives the candidate it chose time to win. */
Test(election, granting_vote_resets_election_timer)
{
    boot3(false, false);
    fx_tick(&F, FX_ELECTION_MIN - 1);
    msg v = fx_vote_req(2, 1, 2, 1, 1, false);
    fx_recv(&F, &v);
    cr_assert(fx_sent(&F, MSG_VOTE_RESP, 2)->u.send.u.vote_resp.granted);
    fx_tick(&F, FX_ELECTION_MIN - 1);
    cr_assert_eq(fx_role(&F), ROLE_FOLLOWER);
    cr_assert_eq(fx_sent_count(&F, MSG_VOTE, 0), 0);
}

/* §5.1: messages from a deposed leader (older term) are rejected; they
 * must not keep the follower from electing a new leader. */
Test(election, stale_leader_heartbeats_do_not_reset_election_timer)
{
    follower_with_log(true, false);
    bool campaigned = false;
    for (int ms = 0; ms < 2 * FX_ELECTION_MAX && !campaigned; ms += 10) {
        msg hb = fx_hb(3, 1, 1, 1, 0);
        fx_recv(&F, &hb);
        fx_tick(&F, 10);
        campaigned = fx_sent_count(&F, MSG_VOTE, 0) > 0;
    }
    cr_assert(campaigned, "a term-1 leader kept a term-2 follower quiet");
}

/* §5.2: "Leaders send periodic heartbeats ... to all followers in order to
 * maintain their authority": a follower that keeps hearing from its leader
 * never starts an election. */
Test(election, heartbeats_keep_follower_from_campaigning)
{
    boot3(false, false);
    for (int i = 0; i < 20; i++) {
        msg hb = fx_hb(2, 1, 2, 1, 0);
        fx_recv(&F, &hb);
        fx_tick(&F, FX_ELECTION_MIN - 10);
        cr_assert_eq(fx_role(&F), ROLE_FOLLOWER);
        cr_assert_eq(fx_sent_count(&F, MSG_VOTE, 0), 0);
    }
    cr_assert_eq(fx_term(&F), 2);
    cr_assert_eq(engine_leader(F.e), 2);
}

/* §5.2: "A candidate wins an election if it receives votes from a majority
 * of the servers in the full cluster for the same term"; it then becomes
 * leader and sends AppendEntries to every other server. */
Test(election, candidate_with_majority_becomes_leader)
{
    boot3(false, false);
    fx_tick(&F, FX_ELECTION_MAX);
    cr_assert_eq(fx_role(&F), ROLE_CANDIDATE);
    fx_flush(&F);
    msg r = fx_vote_resp(2, 1, 2, true, false);
    fx_recv(&F, &r);
    engine_status s = fx_status(&F);
    cr_assert_eq(s.role, ROLE_LEADER);
    cr_assert_eq(s.leader, 1);
    const command *role = fx_find(&F, CMD_ROLE);
    cr_assert_not_null(role);
    cr_assert_eq(role->u.role.role, ROLE_LEADER);
    cr_assert_eq(role->u.role.term, 2);
    cr_assert_not_null(fx_repl(&F, 2));
    cr_assert_not_null(fx_repl(&F, 3));
}

/* §5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry
 * no log entries) to all followers in order to maintain their authority",
 * one round per heartbeat interval. */
Test(election, leader_sends_heartbeat_every_interval)
{
    boot3(true, false);
    fx_lead(&F);
    for (int round = 0; round < 5; round++) {
        fx_tick(&F, FX_HEARTBEAT);
        for (zraft_id to = 2; to <= 3; to++) {
            const command *h = fx_sent(&F, MSG_HEARTBEAT, to);
            cr_assert_not_null(h, "round %d: no heartbeat to %d", round,
                               (int)to);
            cr_assert_eq(h->u.send.term, 2);
        }
        cr_assert_eq(fx_sent_count(&F, MSG_HEARTBEAT, 0), 2);
    }
}

/* §5.2: a majority of five is three: one grant besides its own is not
 * enough. */
Test(election, candidate_needs_majority_of_full_cluster)
{
    engine_config c;
    zraft_membership m;
    fx_config(&c, 1);
    c.pre_vote = false;
    fx_members_n(&m, 5);
    fx_boot_with(&F, &c, &m);
    fx_tick(&F, FX_ELECTION_MAX);
    fx_flush(&F);
    msg r2 = fx_vote_resp(2, 1, 2, true, false);
    fx_recv(&F, &r2);
    cr_assert_eq(fx_role(&F), ROLE_CANDIDATE);
    fx_recv(&F, &r2); /* a duplicate grant counts once */
    cr_assert_eq(fx_role(&F), ROLE_CANDIDATE);
    msg r3 = fx_vote_resp(3, 1, 2, true, false);
    fx_recv(&F, &r3);
    cr_assert_eq(fx_role(&F), ROLE_LEADER);
}

/* §5.2: "If many followers become candidates at the same time, votes could
 * be split ... each candidate will time out and start a new election by
 * incrementing its term". */
Test(election, candidate_without_majority_starts_new_election)
{
    boot3(false, false);
    fx_tick(&F, FX_ELECTION_MAX);
    cr_assert_eq(fx_term(&F), 2);
    for (int ms = 0; ms < FX_ELECTION_MAX && fx_term(&F) == 2; ms++) {
        fx_tick(&F, 1);
    }
    cr_assert_eq(fx_role(&F), ROLE_CANDIDATE);
    cr_assert_eq(fx_term(&F), 3);
    const command *v = fx_sent(&F, MSG_VOTE, 2);
    cr_assert_not_null(v);
    cr_assert_eq(v->u.send.term, 3);
}

/* §5.2: "If the leader's term is at least as large as the candidate's
 * current term, then the candidate recognizes the leader as legitimate and
 * returns to follower state." */
Test(election, candidate_returns_to_follower_on_append_from_leader)
{
    boot3(false, false);
    fx_tick(&F, FX_ELECTION_MAX);
    fx_flush(&F);
    cr_assert_eq(fx_role(&F), ROLE_CANDIDATE);
    msg a = fx_append_msg(&F, 3, 2, 1, 1, 1, 0, NULL);
    fx_recv(&F, &a);
    engine_status s = fx_status(&F);
    cr_assert_eq(s.role, ROLE_FOLLOWER);
    cr_assert_eq(s.term, 2);
    cr_assert_eq(s.leader, 3);
    const command *r = fx_sent(&F, MSG_APPEND_RESP, 3);
    cr_assert_not_null(r);
    cr_assert(r->u.send.u.append_resp.success);
}

/* §5.1: "If a candidate or leader discovers that its term is out of date,
 * it immediately reverts to follower state." */
Test(election, leader_reverts_to_follower_on_higher_term)
{
    boot3(false, false);
    fx_elect(&F);
    msg r = fx_append_resp(2, 1, 5, false, 0, 0, 0);
    fx_recv(&F, &r);
    engine_status s = fx_status(&F);
    cr_assert_eq(s.role, ROLE_FOLLOWER);
    cr_assert_eq(s.term, 5);
    cr_assert_eq(s.voted_for, 0);
    const command *sv = fx_find(&F, CMD_SAVE_VOTE);
    cr_assert_not_null(sv);
    cr_assert_eq(sv->u.save_vote.term, 5);
}

/* §5.2: "Each server will vote for at most one candidate in a given term,
 * on a first-come-first-served basis." A retransmitted request from the
 * candidate it voted for is granted again. */
Test(election, voter_grants_at_most_one_vote_per_term)
{
    boot3(false, false);
    msg v2 = fx_vote_req(2, 1, 2, 1, 1, false);
    fx_recv(&F, &v2);
    cr_assert_not_null(vote_resp_to(2));
    cr_assert(vote_resp_to(2)->u.vote_resp.granted);
    cr_assert_eq(fx_status(&F).voted_for, 2);
    fx_flush(&F);

    msg v3 = fx_vote_req(3, 1, 2, 1, 1, false);
    fx_recv(&F, &v3);
    cr_assert_not_null(vote_resp_to(3));
    cr_assert_not(vote_resp_to(3)->u.vote_resp.granted);
    cr_assert_eq(fx_status(&F).voted_for, 2);

    fx_recv(&F, &v2);
    cr_assert_not_null(vote_resp_to(2));
    cr_assert(vote_resp_to(2)->u.vote_resp.granted);
}

/* §5.1 / Figure 2: "Reply false if term < currentTerm." */
Test(election, vote_request_from_older_term_not_granted)
{
    follower_with_log(false, false);
    msg v = fx_vote_req(3, 1, 1, 2, 9, false);
    fx_recv(&F, &v);
    const msg *r = vote_resp_to(3);
    cr_assert(r == NULL || !r->u.vote_resp.granted);
    cr_assert_eq(fx_term(&F), 2);
    cr_assert_eq(fx_status(&F).voted_for, 0);
}

/* -------------------------------------------------------------- §5.4.1 */

/* §5.4.1: "If the logs have last entries with different terms, then the log
 * with the later term is more up-to-date": a longer log with an older last
 * term loses. The voter still adopts the newer term (§5.1). */
Test(election, candidate_with_stale_log_loses)
{
    follower_with_log(false, false); /* last (2, 3) */
    msg v = fx_vote_req(3, 1, 3, 1, 9, false);
    fx_recv(&F, &v);
    const msg *r = vote_resp_to(3);
    cr_assert_not_null(r);
    cr_assert_not(r->u.vote_resp.granted);
    engine_status s = fx_status(&F);
    cr_assert_eq(s.term, 3);
    cr_assert_eq(s.voted_for, 0);
}

/* §5.4.1: "If the logs end with the same term, then whichever log is
 * longer is more up-to-date." */
Test(election, candidate_with_shorter_log_of_same_term_loses)
{
    follower_with_log(false, false); /* last (2, 3) */
    msg v = fx_vote_req(3, 1, 3, 2, 2, false);
    fx_recv(&F, &v);
    const msg *r = vote_resp_to(3);
    cr_assert_not_null(r);
    cr_assert_not(r->u.vote_resp.granted);
}

/* §5.4.1: a later last term wins even with a shorter log; an equal log wins
 * too ("at least as up-to-date"). */
Test(election, candidate_with_later_last_term_wins_vote)
{
    follower_with_log(false, false); /* last (2, 3) */
    msg v = fx_vote_req(3, 1, 4, 3, 2, false);
    fx_recv(&F, &v);
    const msg *r = vote_resp_to(3);
    cr_assert_not_null(r);
    cr_assert(r->u.vote_resp.granted);
    cr_assert_eq(fx_status(&F).voted_for, 3);

    msg w = fx_vote_req(2, 1, 5, 2, 3, false);
    fx_recv(&F, &w);
    r = vote_resp_to(2);
    cr_assert_not_null(r);
    cr_assert(r->u.vote_resp.granted);
}

/* ------------------------------------------------------ pre-vote §9.6 */

/* Thesis §9.6: a pre-candidate asks whether it could win before it
 * increments its term; nothing is persisted. */
Test(election, prevote_does_not_increment_term)
{
    boot3(true, false);
    cr_assert(fx_tick_until_role(&F, ROLE_PRECANDIDATE, FX_ELECTION_MAX));
    engine_status s = fx_status(&F);
    cr_assert_eq(s.term, 1);
    cr_assert_eq(s.voted_for, 0);
    cr_assert_eq(fx_count(&F, CMD_SAVE_VOTE), 0);
    for (zraft_id to = 2; to <= 3; to++) {
        const command *v = fx_sent(&F, MSG_VOTE, to);
        cr_assert_not_null(v);
        cr_assert(v->u.send.u.vote.pre_vote);
        cr_assert_eq(v->u.send.term, 2); /* the term it would take */
    }
}

/* Thesis §9.6: "If the candidate hears from a majority of the cluster" in
 * the pre-vote, "it increments its term and starts a normal election." */
Test(election, prevote_majority_starts_real_election)
{
    boot3(true, false);
    cr_assert(fx_tick_until_role(&F, ROLE_PRECANDIDATE, FX_ELECTION_MAX));
    msg r = fx_vote_resp(2, 1, 2, true, true);
    fx_recv(&F, &r);
    engine_status s = fx_status(&F);
    cr_assert_eq(s.role, ROLE_CANDIDATE);
    cr_assert_eq(s.term, 2);
    cr_assert_eq(s.voted_for, 1);
    cr_assert_not_null(fx_find(&F, CMD_SAVE_VOTE));
    const command *v = fx_sent(&F, MSG_VOTE, 3);
    cr_assert_not_null(v);
    cr_assert_not(v->u.send.u.vote.pre_vote);
    cr_assert_eq(v->u.send.term, 2);
}

/* Thesis §9.6: granting a pre-vote changes neither the voter's term nor its
 * vote. */
Test(election, prevote_grant_leaves_voter_term_and_vote_unchanged)
{
    boot3(true, false);
    msg v = fx_vote_req(2, 1, 2, 1, 1, true);
    fx_recv(&F, &v);
    const msg *r = vote_resp_to(2);
    cr_assert_not_null(r);
    cr_assert(r->u.vote_resp.granted);
    cr_assert(r->u.vote_resp.pre_vote);
    engine_status s = fx_status(&F);
    cr_assert_eq(s.term, 1);
    cr_assert_eq(s.voted_for, 0);
    cr_assert_eq(fx_count(&F, CMD_SAVE_VOTE), 0);
}

/* Thesis §9.6: a pre-vote is granted only if the candidate's log is at
 * least as up-to-date (§5.4.1). */
Test(election, prevote_denied_to_stale_log)
{
    follower_with_log(true, false); /* last (2, 3) */
    msg v = fx_vote_req(3, 1, 3, 1, 7, true);
    fx_recv(&F, &v);
    const msg *r = vote_resp_to(3);
    cr_assert(r == NULL || !r->u.vote_resp.granted);
    cr_assert_eq(fx_term(&F), 2);
}

/* Thesis §9.6: a partitioned server that cannot win a pre-vote never
 * increments its term, so it cannot disrupt the cluster when it rejoins. */
Test(election, isolated_node_does_not_inflate_term)
{
    boot3(true, false);
    fx_tick(&F, 10 * FX_ELECTION_MAX);
    cr_assert_gt(fx_sent_count(&F, MSG_VOTE, 2), 1, "kept pre-voting");
    engine_status s = fx_status(&F);
    cr_assert_eq(s.term, 1);
    cr_assert_neq(s.role, ROLE_CANDIDATE);
    cr_assert_neq(s.role, ROLE_LEADER);
}

/* ---------------------------------------------- check-quorum §6.2 */

/* Thesis §6.2: "a leader steps down if an election timeout elapses without
 * a successful round of heartbeats to a majority of its cluster". */
Test(election, leader_steps_down_without_quorum_contact)
{
    boot3(true, true);
    fx_lead(&F);
    uint64_t term = fx_term(&F);
    for (int ms = 0; ms <= 2 * FX_ELECTION_MAX && fx_role(&F) == ROLE_LEADER;
         ms++) {
        fx_tick(&F, 1);
    }
    engine_status s = fx_status(&F);
    cr_assert_eq(s.role, ROLE_FOLLOWER);
    cr_assert_eq(s.term, term, "stepping down does not change the term");
    cr_assert_eq(s.leader, 0);
}

/* Thesis §6.2: a leader that hears from a majority stays leader. */
Test(election, leader_with_quorum_contact_stays_leader)
{
    boot3(true, true);
    fx_lead(&F);
    for (int ms = 0; ms < 10 * FX_ELECTION_MAX; ms++) {
        fx_tick(&F, 1);
        const command *hb = fx_sent(&F, MSG_HEARTBEAT, 2);
        if (hb != NULL) {
            msg r = fx_hb_resp(2, 1, fx_term(&F), hb->u.send.u.heartbeat.ctx);
            fx_recv(&F, &r);
        }
        cr_assert_eq(fx_role(&F), ROLE_LEADER, "stepped down at %d ms", ms);
    }
}

/* ----------------------------------- disruptive servers, thesis §4.2.3 */

/* Thesis §4.2.3: "if a server receives a RequestVote request within the
 * minimum election timeout of hearing from a current leader, it does not
 * update its term or grant its vote." */
Test(election, follower_ignores_vote_while_leader_alive)
{
    follower_with_log(false, true);
    msg v = fx_vote_req(3, 1, 3, 2, 3, false);
    fx_recv(&F, &v);
    const msg *r = vote_resp_to(3);
    cr_assert(r == NULL || !r->u.vote_resp.granted);
    engine_status s = fx_status(&F);
    cr_assert_eq(s.term, 2);
    cr_assert_eq(s.voted_for, 0);
    cr_assert_eq(s.leader, 2);
}

/* Thesis §9.6 with §4.2.3: a follower that heard from its leader recently
 * does not grant pre-votes either. */
Test(election, follower_denies_prevote_while_leader_alive)
{
    follower_with_log(true, true);
    msg v = fx_vote_req(3, 1, 3, 2, 3, true);
    fx_recv(&F, &v);
    const msg *r = vote_resp_to(3);
    cr_assert(r == NULL || !r->u.vote_resp.granted);
    cr_assert_eq(fx_term(&F), 2);
}

/* Thesis §4.2.3: once the minimum election timeout passes without word from
 * the leader, votes are granted again. */
Test(election, follower_grants_vote_after_leader_lease_expires)
{
    follower_with_log(true, true);
    fx_tick(&F, FX_ELECTION_MIN);
    msg v = fx_vote_req(3, 1, 3, 2, 3, false);
    fx_recv(&F, &v);
    const msg *r = vote_resp_to(3);
    cr_assert_not_null(r);
    cr_assert(r->u.vote_resp.granted);
    cr_assert_eq(fx_term(&F), 3);
    cr_assert_eq(fx_status(&F).voted_for, 3);
}

/* Thesis §3.10 with §4.2.3: a vote request caused by a leadership transfer
 * (TimeoutNow) is not disruptive and bypasses the lease. */
Test(election, transfer_vote_bypasses_leader_lease)
{
    follower_with_log(false, true);
    msg v = fx_vote_req(3, 1, 3, 2, 3, false);
    v.u.vote.transfer = true;
    fx_recv(&F, &v);
    const msg *r = vote_resp_to(3);
    cr_assert_not_null(r);
    cr_assert(r->u.vote_resp.granted);
    cr_assert_eq(fx_term(&F), 3);
}
