/* test_engine_read_transfer.c - linearizable reads by read-index (thesis
 * §6.4) and leadership transfer (thesis §3.10). */
#include "engine_fixture.h"

static fx F;

static void fini(void)
{
    fx_close(&F);
}

TestSuite(read_index, .fini = fini);
TestSuite(transfer, .fini = fini);

static void leader3(void)
{
    fx_boot(&F, 1, 3);
    fx_lead(&F);
}

/* Node 1 follows leader 2 in term 2, log [1:1, 2:2, 3:2]. */
static void follower3(void)
{
    fx_boot(&F, 1, 3);
    const uint64_t t[] = {2, 2};
    fx_follow(&F, 2, 2, 2, t, 3);
}

static const command *read_ready(uint64_t req)
{
    for (size_t k = 0; fx_nth(&F, CMD_READ_READY, k) != NULL; k++) {
        const command *c = fx_nth(&F, CMD_READ_READY, k);
        if (c->u.read.req_id == req) {
            return c;
        }
    }
    return NULL;
}

static const command *read_fail(uint64_t req)
{
    for (size_t k = 0; fx_nth(&F, CMD_READ_FAIL, k) != NULL; k++) {
        const command *c = fx_nth(&F, CMD_READ_FAIL, k);
        if (c->u.read.req_id == req) {
            return c;
        }
    }
    return NULL;
}

/* Ticks `ms`, answering every heartbeat to `peer` at once. */
static void tick_with_heartbeats_from(uint64_t ms, zraft_id peer)
{
    for (uint64_t i = 0; i < ms; i++) {
        fx_tick(&F, 1);
        const command *hb = fx_sent(&F, MSG_HEARTBEAT, peer);
        if (hb != NULL) {
            msg r = fx_hb_resp(peer, F.c.id, fx_term(&F),
                               hb->u.send.u.heartbeat.ctx);
            fx_recv(&F, &r);
        }
    }
}

/* ---------------------------------------------- read-index, §6.4 */

/* Thesis §6.4 step 3: "the leader sends a new round of heartbeats and waits
 * for their acknowledgments from a majority of the cluster"; the read may
 * then be served at the commit index it recorded (step 2). */
Test(read_index, read_confirmed_by_heartbeat_quorum)
{
    leader3();
    fx_read(&F, 7);
    cr_assert_null(read_ready(7), "not before a quorum confirms leadership");
    const command *h2 = fx_sent(&F, MSG_HEARTBEAT, 2);
    const command *h3 = fx_sent(&F, MSG_HEARTBEAT, 3);
    cr_assert_not_null(h2);
    cr_assert_not_null(h3);
    uint64_t ctx = h2->u.send.u.heartbeat.ctx;
    cr_assert_gt(ctx, 0);
    msg r = fx_hb_resp(2, 1, 2, ctx);
    fx_recv(&F, &r);
    const command *ok = read_ready(7);
    cr_assert_not_null(ok);
    cr_assert_eq(ok->u.read.index, 2);
}

/* Thesis §6.4: only acknowledgements of heartbeats sent after the read
 * arrived prove that the leader was still leader at that time. */
Test(read_index, acks_of_earlier_heartbeats_do_not_confirm)
{
    leader3();
    fx_read(&F, 7);
    uint64_t ctx = fx_sent(&F, MSG_HEARTBEAT, 2)->u.send.u.heartbeat.ctx;
    msg old = fx_hb_resp(2, 1, 2, ctx - 1);
    fx_recv(&F, &old);
    msg old3 = fx_hb_resp(3, 1, 2, ctx - 1);
    fx_recv(&F, &old3);
    cr_assert_null(read_ready(7));
}

/* Thesis §6.4 step 1: "If the leader has not yet marked an entry from its
 * current term committed, it waits until it has done so." */
Test(read_index, read_waits_for_current_term_commit)
{
    fx_boot(&F, 1, 3);
    fx_elect(&F);
    fx_read(&F, 7);
    cr_assert_null(read_ready(7));
    cr_assert_null(read_fail(7));
    msg hb = fx_hb_resp(2, 1, 2, 0);
    fx_recv(&F, &hb);
    cr_assert_null(read_ready(7), "blank entry not committed yet");
    fx_ack(&F, 2, 2);
    cr_assert_eq(fx_committed(&F), 2);
    const command *h = fx_sent(&F, MSG_HEARTBEAT, 2);
    cr_assert_not_null(h, "confirmation round starts once committed");
    msg r = fx_hb_resp(2, 1, 2, h->u.send.u.heartbeat.ctx);
    fx_recv(&F, &r);
    const command *ok = read_ready(7);
    cr_assert_not_null(ok);
    cr_assert_geq(ok->u.read.index, 2);
}

/* Thesis §6.4 with §4.2.1: a learner's heartbeat acknowledgement does not
 * confirm leadership; only a majority of voters does. */
Test(read_index, learner_ack_does_not_confirm_read)
{
    engine_config c;
    zraft_membership m;
    const zraft_id v[] = {1, 2, 3}, l[] = {4};
    fx_config(&c, 1);
    fx_members(&m, v, 3, l, 1);
    fx_boot_with(&F, &c, &m);
    fx_lead(&F);
    fx_read(&F, 7);
    const command *h4 = fx_sent(&F, MSG_HEARTBEAT, 4);
    cr_assert_not_null(h4);
    uint64_t ctx = h4->u.send.u.heartbeat.ctx;
    msg r4 = fx_hb_resp(4, 1, 2, ctx);
    fx_recv(&F, &r4);
    cr_assert_null(read_ready(7));
    msg r2 = fx_hb_resp(2, 1, 2, ctx);
    fx_recv(&F, &r2);
    cr_assert_not_null(read_ready(7));
}

/* A leader that steps down fails the reads it could not confirm. */
Test(read_index, pending_reads_fail_on_step_down)
{
    fx_boot(&F, 1, 3);
    fx_elect(&F);
    fx_read(&F, 6); /* waiting for the blank to commit */
    fx_ack(&F, 2, 2);
    fx_read(&F, 7); /* waiting for its heartbeat quorum */
    cr_assert_null(read_ready(7));
    msg up = fx_append_resp(3, 1, 9, false, 0, 0, 0);
    fx_recv(&F, &up);
    cr_assert_neq(fx_role(&F), ROLE_LEADER);
    const command *f6 = read_fail(6);
    const command *f7 = read_fail(7);
    cr_assert_not_null(f6);
    cr_assert_not_null(f7);
    cr_assert_eq(f7->u.read.err, ZRAFT_ELEADERSHIP_LOST);
}

/* Only a leader answers read-index requests. */
Test(read_index, read_on_follower_fails_not_leader)
{
    follower3();
    fx_read(&F, 7);
    const command *f = read_fail(7);
    cr_assert_not_null(f);
    cr_assert_eq(f->u.read.err, ZRAFT_ENOTLEADER);
    cr_assert_null(read_ready(7));
}

/* A single voter is its own quorum. */
Test(read_index, single_voter_read_ready_at_once)
{
    fx_boot(&F, 1, 1);
    fx_read(&F, 7);
    const command *ok = read_ready(7);
    cr_assert_not_null(ok);
    cr_assert_eq(ok->u.read.index, 2);
}

/* --------------------------------------------- transfer, §3.10 */

/* Thesis §3.10: once the target's log is up to date, "the prior leader
 * sends a TimeoutNow request to the target server". */
Test(transfer, timeout_now_sent_when_target_caught_up)
{
    leader3();
    fx_begin(&F);
    cr_assert_eq(engine_transfer_leader(F.e, 2), 0);
    fx_end(&F);
    const command *t = fx_sent(&F, MSG_TIMEOUT_NOW, 2);
    cr_assert_not_null(t);
    cr_assert_eq(t->u.send.term, 2);
}

/* Thesis §3.10: "The prior leader ... [brings] the target server's log up
 * to date", and only then sends TimeoutNow. */
Test(transfer, timeout_now_waits_for_target_to_catch_up)
{
    leader3();
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    fx_flush(&F);
    fx_ack(&F, 2, 3);
    fx_begin(&F);
    cr_assert_eq(engine_transfer_leader(F.e, 3), 0);
    fx_end(&F);
    cr_assert_null(fx_sent(&F, MSG_TIMEOUT_NOW, 3));
    fx_ack(&F, 3, 3);
    cr_assert_not_null(fx_sent(&F, MSG_TIMEOUT_NOW, 3));
}

/* Thesis §3.10: "the prior leader stops accepting new client requests"
 * during the transfer. */
Test(transfer, proposals_rejected_during_transfer)
{
    leader3();
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    cr_assert_eq(engine_transfer_leader(F.e, 3), 0);
    fx_note(&F);
    cr_assert_eq(fx_propose(&F, 1, 8), ZRAFT_ETRANSFER);
    cr_assert_eq(fx_count(&F, CMD_APPEND), 0);
}

/* Thesis §3.10: "If the transfer does not complete after about one election
 * timeout, the prior leader aborts the transfer and resumes accepting
 * client requests." */
Test(transfer, transfer_aborted_after_election_timeout)
{
    leader3();
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    fx_flush(&F);
    fx_ack(&F, 2, 3);
    cr_assert_eq(engine_transfer_leader(F.e, 3), 0); /* 3 is lagging */
    fx_note(&F);
    tick_with_heartbeats_from(FX_ELECTION_MAX + 1, 2);
    cr_assert_eq(fx_role(&F), ROLE_LEADER);
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
}

/* A TimeoutNow the runtime could not send yet (its connection was not up)
 * stands only while its transfer runs: once the transfer was abandoned, it
 * would depose this working leader. */
Test(transfer, timeout_now_not_current_once_the_transfer_is_over)
{
    leader3();
    fx_begin(&F);
    cr_assert_eq(engine_transfer_leader(F.e, 2), 0);
    fx_end(&F);
    const command *t = fx_sent(&F, MSG_TIMEOUT_NOW, 2);
    cr_assert_not_null(t);
    command held = *t;
    cr_assert(engine_command_current(F.e, &held), "the transfer runs");
    tick_with_heartbeats_from(FX_ELECTION_MAX + 1, 2); /* 2 never campaigns */
    cr_assert_eq(fx_role(&F), ROLE_LEADER);
    cr_assert_eq(fx_propose(&F, 1, 8), 0, "the transfer was abandoned");
    cr_assert_not(engine_command_current(F.e, &held),
                  "a TimeoutNow of an abandoned transfer is not sent");
}

/* Thesis §3.10: "Upon receiving TimeoutNow, the target server starts a new
 * election immediately" - without waiting for its timer or a pre-vote, and
 * its requests say why so that voters ignore their leader lease. */
Test(transfer, timeout_now_starts_election_at_once)
{
    follower3();
    msg t = fx_msg(MSG_TIMEOUT_NOW, 2, 1, 2);
    fx_recv(&F, &t);
    engine_status s = fx_status(&F);
    cr_assert_eq(s.role, ROLE_CANDIDATE);
    cr_assert_eq(s.term, 3);
    const command *v = fx_sent(&F, MSG_VOTE, 3);
    cr_assert_not_null(v);
    cr_assert_not(v->u.send.u.vote.pre_vote);
    cr_assert(v->u.send.u.vote.transfer);
}

/* §5.1: a TimeoutNow from an older term (a leader since deposed) is stale
 * and must not start an election. */
Test(transfer, stale_timeout_now_ignored)
{
    fx_boot(&F, 1, 3);
    const uint64_t t[] = {3};
    fx_follow(&F, 3, 3, 1, t, 1);
    msg tn = fx_msg(MSG_TIMEOUT_NOW, 2, 1, 2);
    fx_recv(&F, &tn);
    cr_assert_eq(fx_role(&F), ROLE_FOLLOWER);
    cr_assert_eq(fx_term(&F), 3);
    cr_assert_eq(fx_sent_count(&F, MSG_VOTE, 0), 0);
}

/* Only a voter can take over: a transfer to a learner is refused, and a
 * learner that receives TimeoutNow does not campaign. */
Test(transfer, transfer_only_to_voters)
{
    engine_config c;
    zraft_membership m;
    const zraft_id v[] = {1, 2, 3}, l[] = {4};
    fx_config(&c, 1);
    fx_members(&m, v, 3, l, 1);
    fx_boot_with(&F, &c, &m);
    fx_lead(&F);
    cr_assert_eq(engine_transfer_leader(F.e, 4), ZRAFT_ENOTMEMBER);
    cr_assert_eq(engine_transfer_leader(F.e, 9), ZRAFT_ENOTMEMBER);
    fx_close(&F);

    fx_config(&c, 4);
    fx_boot_with(&F, &c, &m);
    msg t = fx_msg(MSG_TIMEOUT_NOW, 1, 4, 1);
    fx_recv(&F, &t);
    cr_assert_eq(fx_role(&F), ROLE_LEARNER);
    cr_assert_eq(fx_sent_count(&F, MSG_VOTE, 0), 0);
}
