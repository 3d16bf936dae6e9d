/* test_engine_commit.c - commitment (§5.3, §5.4.2): majority counting of
 * current-term entries only, the blank entry a new leader appends, the
 * leader counting itself only for what it has flushed (thesis §10.2.1),
 * commit propagation to followers by AppendEntries and heartbeats, and the
 * APPLY commands that follow. */
#include "engine_fixture.h"

static fx F;

static void fini(void)
{
    fx_close(&F);
}

TestSuite(commit, .fini = fini);

static void leader3(void)
{
    fx_boot(&F, 1, 3);
    fx_lead(&F);
}

/* §5.4.2 / §8: "Raft handles this by having each leader commit a blank
 * no-op entry into the log at the start of its term." */
Test(commit, new_leader_appends_blank_entry_of_its_term)
{
    engine_config c;
    zraft_membership m;
    fx_config(&c, 1);
    c.pre_vote = false;
    fx_members_n(&m, 3);
    fx_boot_with(&F, &c, &m);
    cr_assert(fx_tick_until_role(&F, ROLE_CANDIDATE, FX_ELECTION_MAX));
    fx_flush(&F);
    msg r = fx_vote_resp(2, 1, 2, true, false);
    fx_recv(&F, &r);
    cr_assert_eq(fx_role(&F), ROLE_LEADER);
    const command *a = fx_find(&F, CMD_APPEND);
    cr_assert_not_null(a, "no blank entry");
    cr_assert_eq(a->u.append.n, 1);
    cr_assert_eq(a->u.append.entries[0].type, ZRAFT_ENTRY_BLANK);
    cr_assert_eq(a->u.append.entries[0].id.index, 2);
    cr_assert_eq(a->u.append.entries[0].id.term, 2);
    const command *rp = fx_repl(&F, 2);
    cr_assert_not_null(rp);
    cr_assert_eq(rp->u.replicate.last, 2);
    cr_assert_lt(fx_committed(&F), 2, "nothing committed yet");
}

/* §5.3: "A log entry is committed once the leader that created the entry
 * has replicated it on a majority of the servers"; it is then applied. */
Test(commit, leader_commits_entry_on_majority_ack)
{
    fx_boot(&F, 1, 3);
    fx_elect(&F);
    fx_ack(&F, 2, 2);
    cr_assert_eq(fx_committed(&F), 2);
    cr_assert_eq(fx_apply_upto(&F), 2);
}

/* §5.3: two of five is not a majority. */
Test(commit, leader_does_not_commit_without_majority)
{
    fx_boot(&F, 1, 5);
    fx_elect(&F);
    fx_ack(&F, 2, 2);
    cr_assert_lt(fx_committed(&F), 2);
    cr_assert_eq(fx_count(&F, CMD_APPLY), 0);
    fx_ack(&F, 3, 2);
    cr_assert_eq(fx_committed(&F), 2);
}

/* Thesis §10.2.1: the leader may write its log in parallel with
 * replication, but it counts itself toward a majority only for entries it
 * has flushed (engine_io_flushed). */
Test(commit, leader_counts_itself_only_after_flush)
{
    leader3();
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    fx_ack(&F, 2, 3);
    cr_assert_eq(fx_committed(&F), 2, "leader's own copy is not durable");
    cr_assert_eq(engine_matched(F.e, 1), 2);
    fx_flush(&F);
    cr_assert_eq(fx_committed(&F), 3);
    cr_assert_eq(fx_apply_upto(&F), 3);
}

/* Thesis §10.2.1: a majority of followers commits an entry even before the
 * leader's own write finishes. */
Test(commit, followers_alone_commit_before_leader_flush)
{
    leader3();
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    fx_ack(&F, 2, 3);
    fx_ack(&F, 3, 3);
    cr_assert_eq(fx_committed(&F), 3);
}

/* Node 1 took (2,2) from leader 2 uncommitted, then won term 3 and
 * appended its blank (3,3). */
static void leader_with_old_term_entry(void)
{
    fx_boot(&F, 1, 3);
    const uint64_t t[] = {2};
    fx_follow(&F, 2, 2, 1, t, 1);
    fx_elect(&F);
    cr_assert_eq(fx_term(&F), 3);
    cr_assert_eq(fx_last(&F), 3);
}

/* §5.4.2 (Figure 8): "Raft never commits log entries from previous terms by
 * counting replicas": (2,2) stored on a majority is still not committed. */
Test(commit, previous_term_entry_not_committed_by_counting)
{
    leader_with_old_term_entry();
    fx_ack(&F, 3, 2); /* {1,3} hold (2,2): a majority */
    cr_assert_eq(engine_matched(F.e, 3), 2);
    cr_assert_eq(fx_committed(&F), 1);
    cr_assert_eq(fx_count(&F, CMD_APPLY), 0);
}

/* §5.4.2: "once an entry from the current term has been committed ... all
 * prior entries are committed indirectly because of the Log Matching
 * Property." */
Test(commit, current_term_entry_commits_earlier_entries)
{
    leader_with_old_term_entry();
    fx_ack(&F, 3, 2);
    fx_ack(&F, 3, 3);
    cr_assert_eq(fx_committed(&F), 3);
    cr_assert_eq(fx_apply_upto(&F), 3);
}

/* §5.3: "the leader ... includes that index in future AppendEntries RPCs
 * ... Once a follower learns that a log entry is committed, it applies the
 * entry": a follower with nothing in flight hears of the new commit index
 * at once. */
Test(commit, leader_sends_new_commit_to_idle_follower)
{
    leader3();
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    fx_flush(&F);
    fx_ack(&F, 2, 3);
    cr_assert_eq(fx_committed(&F), 3);
    const command *c = fx_repl(&F, 2);
    cr_assert_not_null(c, "follower 2 not told about commit 3");
    cr_assert_eq(c->u.replicate.commit, 3);
}

/* §5.3 (heartbeats carry the commit index), bounded by what the follower is
 * known to hold so that it never commits an entry it may not have. */
Test(commit, heartbeat_commit_bounded_by_follower_match)
{
    leader3();
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    fx_flush(&F);
    fx_ack(&F, 2, 3);
    cr_assert_eq(fx_committed(&F), 3);
    fx_tick(&F, FX_HEARTBEAT);
    const command *h2 = fx_sent(&F, MSG_HEARTBEAT, 2);
    const command *h3 = fx_sent(&F, MSG_HEARTBEAT, 3);
    cr_assert_not_null(h2);
    cr_assert_not_null(h3);
    cr_assert_eq(h2->u.send.u.heartbeat.commit, 3);
    cr_assert_eq(h3->u.send.u.heartbeat.commit, 2);
}

/* Figure 2, AppendEntries step 5: "If leaderCommit > commitIndex, set
 * commitIndex = min(leaderCommit, index of last new entry)". */
Test(commit, follower_commit_is_min_of_leader_commit_and_last_new)
{
    fx_boot(&F, 1, 3);
    const uint64_t t[] = {2};
    msg a = fx_append_msg(&F, 2, 2, 1, 1, 5, 1, t);
    fx_recv(&F, &a);
    cr_assert_eq(fx_committed(&F), 2);
    cr_assert_eq(fx_apply_upto(&F), 2);
}

/* §5.3: a follower learns the commit index from heartbeats too, and applies
 * the newly committed entries. */
Test(commit, follower_learns_commit_from_heartbeat)
{
    fx_boot(&F, 1, 3);
    const uint64_t t[] = {2, 2};
    fx_follow(&F, 2, 2, 2, t, 1);
    msg hb = fx_hb(2, 1, 2, 3, 0);
    fx_recv(&F, &hb);
    cr_assert_eq(fx_committed(&F), 3);
    cr_assert_eq(fx_apply_upto(&F), 3);
    const command *r = fx_sent(&F, MSG_HEARTBEAT_RESP, 2);
    cr_assert_not_null(r);
}

/* The commit index only grows: a late message with an older commit index
 * does not lower it (Figure 2: "commitIndex ... increases monotonically"). */
Test(commit, follower_commit_never_decreases)
{
    fx_boot(&F, 1, 3);
    const uint64_t t[] = {2, 2};
    fx_follow(&F, 2, 2, 2, t, 3);
    cr_assert_eq(fx_committed(&F), 3);
    msg hb = fx_hb(2, 1, 2, 1, 0);
    fx_recv(&F, &hb);
    cr_assert_eq(fx_committed(&F), 3);
    cr_assert_eq(fx_count(&F, CMD_APPLY), 0);
}

/* A follower applies only entries it has written: APPLY waits for the
 * APPEND that brought them. */
Test(commit, follower_apply_waits_for_its_log_write)
{
    fx_boot(&F, 1, 3);
    const uint64_t t[] = {2, 2};
    msg a = fx_append_msg(&F, 2, 2, 1, 1, 3, 2, t);
    fx_recv(&F, &a);
    const command *ap = fx_find(&F, CMD_APPEND);
    const command *apply = fx_find(&F, CMD_APPLY);
    cr_assert_not_null(ap);
    cr_assert_not_null(apply);
    cr_assert_eq(apply->u.apply.upto, 3);
    cr_assert_geq(apply->wait_io, ap->io_seq);
}

/* A single voter is its own majority: its entries commit as soon as its own
 * write is durable, not before. */
Test(commit, single_voter_commits_on_own_flush)
{
    fx_boot(&F, 1, 1);
    cr_assert_eq(fx_role(&F), ROLE_LEADER);
    cr_assert_eq(fx_committed(&F), 2, "blank committed on flush");
    cr_assert_eq(fx_propose(&F, 2, 8), 0);
    cr_assert_eq(fx_committed(&F), 2);
    fx_flush(&F);
    cr_assert_eq(fx_committed(&F), 4);
    cr_assert_eq(fx_apply_upto(&F), 4);
}
