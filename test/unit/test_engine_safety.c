/* test_engine_safety.c - the rules that keep Raft safe across crashes and
 * delays: persistence before replies (Figure 2: "updated on stable storage
 * before responding to RPCs"), stale responses from an older term or
 * replication session ignored (the seed's does_vote_match), terms only
 * move forward (§5.1), and a restart from restored state keeping its term
 * and vote. */
#include "engine_fixture.h"

static fx F;

static void fini(void)
{
    fx_close(&F);
}

TestSuite(safety, .fini = fini);

static void boot3(bool pre_vote)
{
    engine_config c;
    zraft_membership m;
    fx_config(&c, 1);
    c.pre_vote = pre_vote;
    c.check_quorum = false;
    fx_members_n(&m, 3);
    fx_boot_with(&F, &c, &m);
}

/* Node 1 led term 2, lost it to a term-3 leader, and now leads term 4:
 * log [1:1, 2:2, 3:4]. Followers are probing. */
static void leader_of_second_session(void)
{
    fx_boot(&F, 1, 3);
    fx_elect(&F);
    cr_assert_eq(fx_term(&F), 2);
    msg hb = fx_hb(3, 1, 3, 0, 0);
    fx_recv(&F, &hb);
    cr_assert_eq(fx_role(&F), ROLE_FOLLOWER);
    fx_flush(&F);
    fx_elect(&F);
    cr_assert_eq(fx_term(&F), 4);
    cr_assert_eq(fx_last(&F), 3);
}

/* ------------------------------------------------ persistence first */

/* §5.2 / Figure 2: votedFor is persistent state, written before the grant
 * leaves: the grant waits for the SAVE_VOTE that records it. */
Test(safety, vote_grant_waits_for_vote_to_be_durable)
{
    boot3(false);
    msg v = fx_vote_req(2, 1, 2, 1, 1, false);
    fx_recv(&F, &v);
    /* The last SAVE_VOTE is the one that records the vote. */
    const command *sv =
        fx_nth(&F, CMD_SAVE_VOTE, fx_count(&F, CMD_SAVE_VOTE) - 1);
    const command *r = fx_sent(&F, MSG_VOTE_RESP, 2);
    cr_assert_not_null(sv);
    cr_assert_not_null(r);
    cr_assert(r->u.send.u.vote_resp.granted);
    cr_assert_eq(sv->u.save_vote.term, 2);
    cr_assert_eq(sv->u.save_vote.voted_for, 2);
    cr_assert_gt(sv->io_seq, 0);
    cr_assert_geq(r->wait_io, sv->io_seq);
    cr_assert_lt(fx_pos(&F, sv), fx_pos(&F, r));
}

/* §5.2: a candidate's vote for itself is durable before it asks anyone
 * (otherwise after a crash it could vote for another in the same term). */
Test(safety, vote_request_waits_for_self_vote_to_be_durable)
{
    boot3(false);
    cr_assert(fx_tick_until_role(&F, ROLE_CANDIDATE, FX_ELECTION_MAX));
    const command *sv = fx_find(&F, CMD_SAVE_VOTE);
    cr_assert_not_null(sv);
    cr_assert_eq(sv->u.save_vote.voted_for, 1);
    for (zraft_id to = 2; to <= 3; to++) {
        const command *v = fx_sent(&F, MSG_VOTE, to);
        cr_assert_not_null(v);
        cr_assert_geq(v->wait_io, sv->io_seq);
    }
}

/* §5.3 / Figure 2: a follower acknowledges entries only once they are on
 * its stable storage - the leader counts the acknowledgement toward
 * commitment. */
Test(safety, append_ack_waits_for_append_io)
{
    boot3(true);
    const uint64_t t[] = {2, 2};
    msg a = fx_append_msg(&F, 2, 2, 1, 1, 1, 2, t);
    fx_recv(&F, &a);
    const command *ap = fx_find(&F, CMD_APPEND);
    const command *r = fx_sent(&F, MSG_APPEND_RESP, 2);
    cr_assert_not_null(ap);
    cr_assert_not_null(r);
    cr_assert(r->u.send.u.append_resp.success);
    cr_assert_gt(ap->io_seq, 0);
    cr_assert_geq(r->wait_io, ap->io_seq);
}

/* A truncation is storage I/O too: the acknowledgement of the replacing
 * entries waits for both. */
Test(safety, append_ack_after_truncate_waits_for_both_ops)
{
    boot3(true);
    const uint64_t t[] = {2, 2};
    fx_follow(&F, 2, 2, 2, t, 1);
    const uint64_t t3[] = {3};
    msg a = fx_append_msg(&F, 3, 3, 1, 1, 1, 1, t3);
    fx_recv(&F, &a);
    const command *tr = fx_find(&F, CMD_TRUNCATE);
    const command *ap = fx_find(&F, CMD_APPEND);
    const command *r = fx_sent(&F, MSG_APPEND_RESP, 3);
    cr_assert_not_null(tr);
    cr_assert_not_null(ap);
    cr_assert_not_null(r);
    cr_assert_gt(ap->io_seq, tr->io_seq);
    cr_assert_geq(r->wait_io, ap->io_seq);
}

/* Figure 2: currentTerm is persistent: a follower that adopts a new term
 * from a leader persists it (vote cleared) before acknowledging. */
Test(safety, new_term_persisted_before_acking_leader)
{
    boot3(true);
    msg a = fx_append_msg(&F, 2, 3, 1, 1, 1, 0, NULL);
    fx_recv(&F, &a);
    const command *sv = fx_find(&F, CMD_SAVE_VOTE);
    const command *r = fx_sent(&F, MSG_APPEND_RESP, 2);
    cr_assert_not_null(sv);
    cr_assert_not_null(r);
    cr_assert_eq(sv->u.save_vote.term, 3);
    cr_assert_eq(sv->u.save_vote.voted_for, 0);
    cr_assert(r->u.send.u.append_resp.success);
    cr_assert_geq(r->wait_io, sv->io_seq);
}

/* ------------------------------------------------ stale messages */

/* The seed's does_vote_match: progress reported for an older term (an
 * older replication session) is dropped, even when it names indices that
 * exist in the current log. */
Test(safety, append_response_from_older_term_ignored)
{
    leader_of_second_session();
    msg ok = fx_append_resp(2, 1, 2, true, 2, 0, 0);
    fx_recv(&F, &ok);
    cr_assert_eq(engine_matched(F.e, 2), 0);
    msg rej = fx_append_resp(3, 1, 2, false, 2, 0, 0);
    fx_recv(&F, &rej);
    cr_assert_eq(fx_repl_count(&F, 3), 0);
    cr_assert_eq(fx_role(&F), ROLE_LEADER);
    cr_assert_eq(fx_term(&F), 4);
}

/* Heartbeat acknowledgements from an older term say nothing about the
 * current leadership and must not confirm a read (thesis §6.4). */
Test(safety, heartbeat_response_from_older_term_does_not_confirm_read)
{
    leader_of_second_session();
    fx_ack(&F, 2, 3);
    cr_assert_eq(fx_committed(&F), 3);
    fx_read(&F, 7);
    uint64_t ctx = fx_sent(&F, MSG_HEARTBEAT, 2)->u.send.u.heartbeat.ctx;
    msg h2 = fx_hb_resp(2, 1, 2, ctx);
    msg h3 = fx_hb_resp(3, 1, 2, ctx);
    fx_recv(&F, &h2);
    fx_recv(&F, &h3);
    cr_assert_eq(fx_count(&F, CMD_READ_READY), 0);
}

/* §5.2: votes count only for the term they were cast in. */
Test(safety, vote_response_from_older_term_ignored)
{
    boot3(false);
    cr_assert(fx_tick_until_role(&F, ROLE_CANDIDATE, FX_ELECTION_MAX));
    while (fx_term(&F) == 2) {
        fx_tick(&F, 1);
    }
    cr_assert_eq(fx_term(&F), 3);
    fx_flush(&F);
    msg old = fx_vote_resp(2, 1, 2, true, false);
    fx_recv(&F, &old);
    cr_assert_eq(fx_role(&F), ROLE_CANDIDATE);
    msg cur = fx_vote_resp(2, 1, 3, true, false);
    fx_recv(&F, &cur);
    cr_assert_eq(fx_role(&F), ROLE_LEADER);
}

/* §5.1: "If a server receives a request with a stale term number, it
 * rejects the request" - and the reply carries its term so that the stale
 * leader steps down. */
Test(safety, append_from_stale_leader_rejected_with_current_term)
{
    fx_boot(&F, 1, 3);
    const uint64_t t[] = {3};
    fx_follow(&F, 3, 3, 1, t, 1);
    const uint64_t t2[] = {2};
    msg a = fx_append_msg(&F, 2, 2, 1, 1, 1, 1, t2);
    fx_recv(&F, &a);
    cr_assert_eq(fx_count(&F, CMD_APPEND), 0);
    cr_assert_eq(fx_count(&F, CMD_TRUNCATE), 0);
    const command *r = fx_sent(&F, MSG_APPEND_RESP, 2);
    cr_assert_not_null(r);
    cr_assert_not(r->u.send.u.append_resp.success);
    cr_assert_eq(r->u.send.term, 3);
    cr_assert_eq(engine_leader(F.e), 3);
}

/* The same without check-quorum and pre-vote (Figure 2 makes no
 * exception). etcd stays silent there, counting on the node to campaign
 * with its higher term; a learner never campaigns, so a learner that took
 * a term from a vote request (learners must process them: a promoted
 * learner may not know it yet) would ignore its leader for good (zraft-sim
 * seed 1578540666: learner n1 at term 56, leader n2 of term 55). */
Test(safety, stale_leader_told_the_term_without_check_quorum_or_pre_vote)
{
    engine_config c;
    zraft_membership m;
    const zraft_id v[] = {2, 3, 4}, l[] = {1};
    fx_config(&c, 1);
    c.pre_vote = false;
    c.check_quorum = false;
    fx_members(&m, v, 3, l, 1);
    fx_boot_with(&F, &c, &m);
    cr_assert_eq(fx_role(&F), ROLE_LEARNER);
    msg vote = fx_vote_req(3, 1, 5, 1, 1, false);
    fx_recv(&F, &vote);
    cr_assert_eq(fx_term(&F), 5, "a learner takes the term of a vote request");
    fx_flush(&F);
    msg hb = fx_hb(2, 1, 4, 1, 0);
    fx_recv(&F, &hb);
    const command *r = fx_sent(&F, MSG_APPEND_RESP, 2);
    cr_assert_not_null(r, "the stale leader must learn of term 5");
    cr_assert_eq(r->u.send.term, 5);
    cr_assert_not(r->u.send.u.append_resp.success);
    const uint64_t t[] = {4};
    msg a = fx_append_msg(&F, 2, 4, 1, 1, 1, 1, t);
    fx_recv(&F, &a);
    cr_assert_not_null(fx_sent(&F, MSG_APPEND_RESP, 2));
    cr_assert_eq(fx_count(&F, CMD_APPEND), 0);
}

/* A follower cannot have matched entries the leader never created; such a
 * claim must not move progress or commit anything. */
Test(safety, ack_beyond_leader_log_ignored)
{
    fx_boot(&F, 1, 3);
    fx_elect(&F);
    fx_ack(&F, 2, 99);
    cr_assert_eq(engine_matched(F.e, 2), 0);
    cr_assert_lt(fx_committed(&F), 2);
}

/* ---------------------------------------------- held commands (issue 15) */

/* The seed's does_vote_match, applied to the engine's own output: a
 * REPLICATE a driver held back (behind an APPLY waiting for the leader's
 * write, in a one-FIFO driver) must not run after its leader stepped down
 * and truncated the entries it names (seed 15210: term-2 leader n1 held
 * REPLICATE (29, 32], stepped down to term 3, truncated at 30). */
Test(safety, held_replicate_not_current_once_leader_truncated)
{
    boot3(true);
    fx_lead(&F); /* term 2, log [1:1, 2:2], followers pipelining */
    cr_assert_eq(fx_propose(&F, 3, 8), 0);
    const command *rp = fx_repl(&F, 2);
    cr_assert_not_null(rp);
    command held = *rp;
    cr_assert_eq(held.u.replicate.term, 2);
    cr_assert_eq(held.u.replicate.last, 5);
    cr_assert(engine_command_current(F.e, &held), "still leader of term 2");
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    cr_assert(engine_command_current(F.e, &held), "the log only grew");
    /* A term-3 leader whose log diverges at 3: truncate, append 3:3. */
    const uint64_t t3[] = {3};
    msg a = fx_append_msg(&F, 3, 3, 2, 2, 1, 1, t3);
    fx_recv(&F, &a);
    cr_assert_not_null(fx_find(&F, CMD_TRUNCATE));
    cr_assert_eq(fx_last(&F), 3, "entries 4..5 the REPLICATE names are gone");
    cr_assert_not(engine_command_current(F.e, &held));
    /* What the follower emitted for the new leader stays good. */
    const command *ack = fx_sent(&F, MSG_APPEND_RESP, 3);
    cr_assert_not_null(ack);
    cr_assert_gt(ack->wait_io, 0);
    cr_assert(engine_command_current(F.e, ack));
}

/* Thesis §6.2: a leader that steps down keeps its term; its held
 * heartbeats, snapshots and TimeoutNow die with the leadership all the
 * same (a node leads at most once per term). */
Test(safety, held_leader_sends_not_current_after_step_down_in_same_term)
{
    engine_config c;
    zraft_membership m;
    fx_config(&c, 1);
    fx_members_n(&m, 3);
    fx_boot_with(&F, &c, &m);
    fx_lead(&F);
    uint64_t term = fx_term(&F);
    const command *hb = NULL;
    while (hb == NULL) {
        fx_tick(&F, 1);
        hb = fx_sent(&F, MSG_HEARTBEAT, 2);
    }
    command held_hb = *hb;
    command held_snap = {.type = CMD_SEND_SNAPSHOT};
    held_snap.u.send_snapshot.to = 3;
    held_snap.u.send_snapshot.term = term;
    cr_assert(engine_command_current(F.e, &held_hb));
    cr_assert(engine_command_current(F.e, &held_snap));
    for (int ms = 0; ms <= 2 * FX_ELECTION_MAX && fx_role(&F) == ROLE_LEADER;
         ms++) {
        fx_tick(&F, 1);
    }
    cr_assert_eq(fx_role(&F), ROLE_FOLLOWER);
    cr_assert_eq(fx_term(&F), term);
    cr_assert_not(engine_command_current(F.e, &held_hb));
    cr_assert_not(engine_command_current(F.e, &held_snap));
}

/* A candidate's vote requests wait for its own vote to be durable; if it
 * has moved to a later term meanwhile they speak for a candidacy that is
 * over. */
Test(safety, held_vote_request_not_current_after_term_change)
{
    boot3(false);
    cr_assert(fx_tick_until_role(&F, ROLE_CANDIDATE, FX_ELECTION_MAX));
    const command *v = fx_sent(&F, MSG_VOTE, 2);
    cr_assert_not_null(v);
    cr_assert_gt(v->wait_io, 0);
    command held = *v;
    cr_assert(engine_command_current(F.e, &held));
    msg a = fx_append_msg(&F, 3, fx_term(&F) + 1, 1, 1, 1, 0, NULL);
    fx_recv(&F, &a);
    cr_assert_eq(fx_role(&F), ROLE_FOLLOWER);
    cr_assert_not(engine_command_current(F.e, &held));
}

/* Replies and local work outlive a term change: an acknowledgement of
 * entries made durable in term 2 is still true (Raft takes it as a delayed
 * message), and an APPLY of committed entries is owed whatever the role. */
Test(safety, held_replies_and_apply_stay_current_across_terms)
{
    boot3(true);
    const uint64_t t[] = {2, 2};
    msg a = fx_append_msg(&F, 2, 2, 1, 1, 2, 2, t);
    fx_recv(&F, &a);
    const command *ack = fx_sent(&F, MSG_APPEND_RESP, 2);
    const command *ap = fx_find(&F, CMD_APPLY);
    cr_assert_not_null(ack);
    cr_assert_not_null(ap);
    command held_ack = *ack, held_apply = *ap;
    const uint64_t t3[] = {3};
    msg b = fx_append_msg(&F, 3, 3, 2, 2, 2, 1, t3);
    fx_recv(&F, &b);
    cr_assert_not_null(fx_find(&F, CMD_TRUNCATE));
    cr_assert_eq(fx_term(&F), 3);
    cr_assert(engine_command_current(F.e, &held_ack));
    cr_assert(engine_command_current(F.e, &held_apply));
}

/* -------------------------------------------------------- restart */

/* A node restarted from its durable state: term 5, voted for 2, log
 * [1:1 membership, 2:2, 3:2], commit 3, state machine at `applied`. */
static void restarted(uint64_t applied)
{
    engine_config c;
    zraft_membership m;
    fx_config(&c, 1);
    c.check_quorum = false;
    memset(&F, 0, sizeof(F));
    F.c = c;
    F.e = engine_new(&c);
    cr_assert_not_null(F.e);
    fx_members_n(&m, 3);
    zraft_entry ents[3];
    memset(ents, 0, sizeof(ents));
    ents[0].id = (zraft_log_id){1, 1};
    ents[0].type = ZRAFT_ENTRY_MEMBERSHIP;
    ents[0].payload = fx_membership_buf(&F, &m);
    ents[1].id = (zraft_log_id){2, 2};
    ents[1].type = ZRAFT_ENTRY_NORMAL;
    ents[2].id = (zraft_log_id){2, 3};
    ents[2].type = ZRAFT_ENTRY_NORMAL;
    engine_restore_vote(F.e, 5, 2, 3);
    cr_assert_eq(engine_restore_entries(F.e, ents, 3), 0);
    fx_begin(&F);
    engine_start(F.e, 0, applied);
    fx_end(&F);
}

/* Figure 2: currentTerm and votedFor survive a restart, so a node never
 * votes twice in one term. */
Test(safety, restart_keeps_term_and_vote)
{
    restarted(3);
    engine_status s = fx_status(&F);
    cr_assert_eq(s.term, 5);
    cr_assert_eq(s.voted_for, 2);
    cr_assert_eq(s.last_log_id.index, 3);
    cr_assert_eq(s.last_log_id.term, 2);
    msg v3 = fx_vote_req(3, 1, 5, 2, 3, false);
    fx_recv(&F, &v3);
    const command *r = fx_sent(&F, MSG_VOTE_RESP, 3);
    cr_assert(r == NULL || !r->u.send.u.vote_resp.granted,
              "voted twice in term 5");
    msg v2 = fx_vote_req(2, 1, 5, 2, 3, false);
    fx_recv(&F, &v2);
    r = fx_sent(&F, MSG_VOTE_RESP, 2);
    cr_assert_not_null(r);
    cr_assert(r->u.send.u.vote_resp.granted);
}

/* §5.4.1 after a restart: the restored log decides what is up to date, and
 * the node campaigns with its restored last log id in a later term. */
Test(safety, restart_campaigns_from_restored_log)
{
    restarted(3);
    msg v = fx_vote_req(3, 1, 6, 1, 1, false);
    fx_recv(&F, &v);
    const command *r = fx_sent(&F, MSG_VOTE_RESP, 3);
    cr_assert(r == NULL || !r->u.send.u.vote_resp.granted);
    cr_assert(fx_tick_until_role(&F, ROLE_PRECANDIDATE, FX_ELECTION_MAX));
    const command *req = fx_sent(&F, MSG_VOTE, 2);
    cr_assert_not_null(req);
    cr_assert_eq(req->u.send.term, 7);
    cr_assert_eq(req->u.send.u.vote.last_log_id.index, 3);
    cr_assert_eq(req->u.send.u.vote.last_log_id.term, 2);
}

/* A restarted node re-applies what it had committed beyond what its state
 * machine recovered (commit index persisted with the vote). */
Test(safety, restart_applies_restored_commit)
{
    restarted(1);
    cr_assert_eq(fx_committed(&F), 3);
    cr_assert_eq(fx_apply_upto(&F), 3);
}

/* §7 after a restart: the snapshot and the kept tail below it are
 * restored; what the snapshot covers counts as committed, and the purged
 * prefix stays unknown. */
Test(safety, restart_from_snapshot_keeps_tail_and_commit)
{
    engine_config c;
    fx_config(&c, 1);
    memset(&F, 0, sizeof(F));
    F.c = c;
    F.e = engine_new(&c);
    cr_assert_not_null(F.e);
    snapshot_meta sm;
    memset(&sm, 0, sizeof(sm));
    sm.last_log_id = (zraft_log_id){2, 10};
    fx_members_n(&sm.membership, 3);
    zraft_entry ents[4];
    memset(ents, 0, sizeof(ents));
    for (int i = 0; i < 4; i++) {
        ents[i].id = (zraft_log_id){2, 9 + (uint64_t)i};
        ents[i].type = ZRAFT_ENTRY_NORMAL;
    }
    engine_restore_vote(F.e, 2, 0, 0);
    engine_restore_snapshot(F.e, &sm);
    cr_assert_eq(engine_restore_entries(F.e, ents, 4), 0);
    fx_begin(&F);
    engine_start(F.e, 0, 10);
    fx_end(&F);
    engine_status s = fx_status(&F);
    cr_assert_eq(s.first_index, 9);
    cr_assert_eq(s.last_log_id.index, 12);
    cr_assert_eq(s.snapshot.index, 10);
    cr_assert_eq(s.committed, 10);
    cr_assert_eq(s.term, 2);
    int err = 0;
    cr_assert_eq(engine_term_at(F.e, 9, &err), 2);
    cr_assert_eq(err, 0);
    engine_term_at(F.e, 8, &err);
    cr_assert_eq(err, ZRAFT_ECOMPACTED);
    cr_assert_eq(engine_membership(F.e)->n, 3);
    cr_assert_eq(fx_role(&F), ROLE_FOLLOWER);
}

/* A snapshot restored without its meta file (the durable term and vote):
 * the node would start at term 0 below the snapshot's term 2, and as
 * leader append term-1 entries after a term-2 snapshot; the cluster then
 * elected leaders that never committed (found by the restore procedure of
 * docs/deploy.md). The term is raised to the log's, with no vote, and that
 * is made durable. */
Test(safety, restart_raises_term_to_the_restored_log)
{
    engine_config c;
    fx_config(&c, 1);
    memset(&F, 0, sizeof(F));
    F.c = c;
    F.e = engine_new(&c);
    cr_assert_not_null(F.e);
    snapshot_meta sm;
    memset(&sm, 0, sizeof(sm));
    sm.last_log_id = (zraft_log_id){2, 10};
    fx_members_n(&sm.membership, 3);
    engine_restore_snapshot(F.e, &sm);
    fx_begin(&F);
    engine_start(F.e, 0, 10);
    fx_end(&F);
    engine_status s = fx_status(&F);
    cr_assert_eq(s.term, 2);
    const command *sv = fx_find(&F, CMD_SAVE_VOTE);
    cr_assert_not_null(sv, "the raised term is saved");
    cr_assert_eq(sv->u.save_vote.term, 2);
    cr_assert_eq(sv->u.save_vote.voted_for, 0);
}

/* -------------------------------------------------------- bootstrap */

/* A node restarted with only `term` durable (vote none), no log. */
static void restarted_empty(uint64_t term)
{
    engine_config c;
    fx_config(&c, 1);
    memset(&F, 0, sizeof(F));
    F.c = c;
    F.e = engine_new(&c);
    cr_assert_not_null(F.e);
    engine_restore_vote(F.e, term, 0, 0);
    fx_begin(&F);
    engine_start(F.e, 0, 0);
    fx_end(&F);
}

/* Bootstrapping saves term 1 and then appends the first configuration. A
 * node that crashed between the two flushes has term 1 and no log: it must
 * be able to bootstrap again, or a cluster whose voters all crashed there
 * never gets a configuration (found by zraft-sim, seed 1680419039). The
 * durable term is kept, never lowered (§5.1). */
Test(safety, bootstrap_again_after_crash_between_term_and_entry)
{
    restarted_empty(1);
    zraft_membership m;
    fx_members_n(&m, 3);
    fx_begin(&F);
    cr_assert_eq(engine_initialize(F.e, &m), 0);
    fx_end(&F);
    cr_assert_eq(fx_count(&F, CMD_SAVE_VOTE), 0, "term 1 is durable already");
    const command *ap = fx_find(&F, CMD_APPEND);
    cr_assert_not_null(ap);
    cr_assert_eq(ap->u.append.n, 1);
    cr_assert_eq(ap->u.append.entries[0].id.index, 1);
    cr_assert_eq(ap->u.append.entries[0].id.term, 1);
    cr_assert_eq(ap->u.append.entries[0].type, ZRAFT_ENTRY_MEMBERSHIP);
    cr_assert_eq(fx_term(&F), 1);
    cr_assert_eq(fx_role(&F), ROLE_FOLLOWER);
    cr_assert_eq(engine_membership(F.e)->n, 3);
}

/* Same after a later term was saved (a vote request heard before the
 * crash): the bootstrap entry is still 1/1, the term stays. */
Test(safety, bootstrap_again_keeps_a_higher_durable_term)
{
    restarted_empty(4);
    zraft_membership m;
    fx_members_n(&m, 3);
    fx_begin(&F);
    cr_assert_eq(engine_initialize(F.e, &m), 0);
    fx_end(&F);
    cr_assert_eq(fx_count(&F, CMD_SAVE_VOTE), 0);
    cr_assert_eq(fx_find(&F, CMD_APPEND)->u.append.entries[0].id.term, 1);
    cr_assert_eq(fx_term(&F), 4);
}

/* A node that holds any entry (or a snapshot) has state: EBUSY. */
Test(safety, bootstrap_refused_once_the_log_has_an_entry)
{
    restarted(3);
    zraft_membership m;
    fx_members_n(&m, 3);
    fx_begin(&F);
    cr_assert_eq(engine_initialize(F.e, &m), ZRAFT_EBUSY);
    fx_end(&F);
    cr_assert_eq(fx_count(&F, CMD_APPEND), 0);
    fx_close(&F);
    fx_boot(&F, 1, 3);
    fx_begin(&F);
    cr_assert_eq(engine_initialize(F.e, &m), ZRAFT_EBUSY,
                 "a second bootstrap in one life");
    fx_end(&F);
}
