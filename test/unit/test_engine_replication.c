/* test_engine_replication.c - log replication (§5.3): the AppendEntries
 * consistency check, conflict truncation, fast backtracking with conflict
 * hints, never truncating committed entries (§5.4), and the leader's
 * per-follower progress: probe, pipeline, in-flight limits by count and
 * bytes, per-message limits. */
#include "engine_fixture.h"

static fx F;

static void fini(void)
{
    fx_close(&F);
}

TestSuite(replication, .fini = fini);

/* Node 1 leader of {1,2,3} in term 2, blank (2,2) committed, followers
 * pipelining from match 2. `tweak` may change the config. */
static void leader3(void (*tweak)(engine_config *))
{
    engine_config c;
    zraft_membership m;
    fx_config(&c, 1);
    if (tweak != NULL) {
        tweak(&c);
    }
    fx_members_n(&m, 3);
    fx_boot_with(&F, &c, &m);
    fx_lead(&F);
}

/* Node 1 of {1,2,3} as a follower of leader 2 in term `term` with
 * entries 2.. of the given terms, commit `commit`. */
static void follower(uint64_t term, uint32_t n, const uint64_t *terms,
                     uint64_t commit)
{
    fx_boot(&F, 1, 3);
    fx_follow(&F, 2, term, n, terms, commit);
}

/* Node 1 took entries 2..6 of term 2 from leader 2, then won term 3: log
 * [1:1, 2..6:2, 7:3], followers probing at prev (6,2). */
static void leader_with_long_log(void)
{
    const uint64_t t2[] = {2, 2, 2, 2, 2};
    follower(2, 5, t2, 1);
    fx_elect(&F);
    cr_assert_eq(fx_term(&F), 3);
    cr_assert_eq(fx_last(&F), 7);
}

static const msg *append_resp_to(zraft_id to)
{
    const command *c = fx_sent(&F, MSG_APPEND_RESP, to);
    return c ? &c->u.send : NULL;
}

/* ------------------------------------------------- follower side, §5.3 */

/* §5.3: "the leader issues AppendEntries RPCs in parallel to each of the
 * other servers to replicate the entry": the entry gets the leader's term
 * and the next index, and every follower is asked for it. */
Test(replication, leader_replicates_proposal_to_every_follower)
{
    leader3(NULL);
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    const command *a = fx_find(&F, CMD_APPEND);
    cr_assert_not_null(a);
    cr_assert_eq(a->u.append.n, 1);
    cr_assert_eq(a->u.append.entries[0].id.index, 3);
    cr_assert_eq(a->u.append.entries[0].id.term, 2);
    for (zraft_id to = 2; to <= 3; to++) {
        const command *r = fx_repl(&F, to);
        cr_assert_not_null(r, "nothing sent to %d", (int)to);
        cr_assert_eq(r->u.replicate.term, 2);
        cr_assert_eq(r->u.replicate.prev.index, 2);
        cr_assert_eq(r->u.replicate.prev.term, 2);
        cr_assert_eq(r->u.replicate.last, 3);
        cr_assert_eq(r->u.replicate.commit, 2);
    }
}

/* §5.3 consistency check: "If the follower does not find an entry in its
 * log with the same index and term, then it refuses the new entries." Here
 * the follower lacks prev altogether. */
Test(replication, follower_rejects_append_when_prev_missing)
{
    fx_boot(&F, 1, 3);
    const uint64_t t[] = {2};
    msg a = fx_append_msg(&F, 2, 2, 5, 2, 1, 1, t);
    fx_recv(&F, &a);
    cr_assert_eq(fx_count(&F, CMD_APPEND), 0);
    const msg *r = append_resp_to(2);
    cr_assert_not_null(r);
    cr_assert_not(r->u.append_resp.success);
    cr_assert_eq(r->u.append_resp.index, 5);
    cr_assert_leq(r->u.append_resp.hint_index, 1);
    cr_assert_eq(fx_last(&F), 1);
}

/* §5.3: same index, different term at prev: refused, nothing changes. */
Test(replication, follower_rejects_append_when_prev_term_differs)
{
    const uint64_t t[] = {2, 2};
    follower(2, 2, t, 1); /* [1:1, 2:2, 3:2] */
    const uint64_t t3[] = {3};
    msg a = fx_append_msg(&F, 3, 3, 3, 3, 1, 1, t3);
    fx_recv(&F, &a);
    cr_assert_eq(fx_count(&F, CMD_APPEND), 0);
    cr_assert_eq(fx_count(&F, CMD_TRUNCATE), 0);
    const msg *r = append_resp_to(3);
    cr_assert_not_null(r);
    cr_assert_not(r->u.append_resp.success);
    cr_assert_eq(r->u.append_resp.index, 3);
    cr_assert_eq(fx_last(&F), 3);
}

/* §5.3: when prev matches, the follower appends the new entries and
 * reports the index it now matches. */
Test(replication, follower_appends_entries_after_matching_prev)
{
    fx_boot(&F, 1, 3);
    const uint64_t t[] = {2, 2};
    msg a = fx_append_msg(&F, 2, 2, 1, 1, 1, 2, t);
    fx_recv(&F, &a);
    const command *ap = fx_find(&F, CMD_APPEND);
    cr_assert_not_null(ap);
    cr_assert_eq(ap->u.append.n, 2);
    cr_assert_eq(ap->u.append.entries[0].id.index, 2);
    const msg *r = append_resp_to(2);
    cr_assert_not_null(r);
    cr_assert(r->u.append_resp.success);
    cr_assert_eq(r->u.append_resp.index, 3);
    engine_status s = fx_status(&F);
    cr_assert_eq(s.last_log_id.index, 3);
    cr_assert_eq(s.last_log_id.term, 2);
}

/* §5.3 / Figure 2 step 3: "If an existing entry conflicts with a new one
 * (same index but different terms), delete the existing entry and all that
 * follow it" - before appending the new ones. */
Test(replication, follower_truncates_conflicting_suffix)
{
    const uint64_t t[] = {2, 2};
    follower(2, 2, t, 1); /* [1:1, 2:2, 3:2] */
    const uint64_t t3[] = {3};
    msg a = fx_append_msg(&F, 3, 3, 1, 1, 1, 1, t3);
    fx_recv(&F, &a);
    const command *tr = fx_find(&F, CMD_TRUNCATE);
    const command *ap = fx_find(&F, CMD_APPEND);
    cr_assert_not_null(tr);
    cr_assert_not_null(ap);
    cr_assert_eq(tr->u.truncate.since, 2);
    cr_assert_lt(fx_pos(&F, tr), fx_pos(&F, ap));
    cr_assert_lt(tr->io_seq, ap->io_seq);
    cr_assert_eq(ap->u.append.n, 1);
    cr_assert_eq(ap->u.append.entries[0].id.term, 3);
    engine_status s = fx_status(&F);
    cr_assert_eq(s.last_log_id.index, 2);
    cr_assert_eq(s.last_log_id.term, 3);
    const msg *r = append_resp_to(3);
    cr_assert_not_null(r);
    cr_assert(r->u.append_resp.success);
    cr_assert_eq(r->u.append_resp.index, 2);
}

/* Figure 2 step 4: "Append any new entries not already in the log": a
 * retransmitted AppendEntries changes nothing. */
Test(replication, follower_ignores_entries_it_already_has)
{
    const uint64_t t[] = {2, 2};
    follower(2, 2, t, 1);
    msg a = fx_append_msg(&F, 2, 2, 1, 1, 1, 2, t);
    fx_recv(&F, &a);
    cr_assert_eq(fx_count(&F, CMD_TRUNCATE), 0);
    cr_assert_eq(fx_count(&F, CMD_APPEND), 0);
    const msg *r = append_resp_to(2);
    cr_assert_not_null(r);
    cr_assert(r->u.append_resp.success);
    cr_assert_eq(r->u.append_resp.index, 3);
}

/* §5.3: truncation happens only on a conflict: an older, shorter
 * AppendEntries delivered late must not cut entries that agree with it. */
Test(replication, late_shorter_append_does_not_truncate)
{
    const uint64_t t[] = {2, 2, 2};
    follower(2, 3, t, 1); /* [1:1, 2..4:2] */
    msg a = fx_append_msg(&F, 2, 2, 1, 1, 1, 1, t);
    fx_recv(&F, &a);
    cr_assert_eq(fx_count(&F, CMD_TRUNCATE), 0);
    cr_assert_eq(fx_last(&F), 4);
    const msg *r = append_resp_to(2);
    cr_assert_not_null(r);
    cr_assert(r->u.append_resp.success);
}

/* §5.4 (Leader Completeness, State Machine Safety): a committed entry is
 * never removed from a log, whatever a message claims. */
Test(replication, follower_never_truncates_committed_entries)
{
    const uint64_t t[] = {2, 2};
    follower(2, 2, t, 3); /* [1:1, 2:2, 3:2], committed 3 */
    cr_assert_eq(fx_committed(&F), 3);
    const uint64_t t3[] = {3, 3};
    msg a = fx_append_msg(&F, 3, 3, 1, 1, 1, 2, t3);
    fx_recv(&F, &a);
    cr_assert_eq(fx_count(&F, CMD_TRUNCATE), 0);
    int err;
    cr_assert_eq(engine_term_at(F.e, 2, &err), 2);
    cr_assert_eq(engine_term_at(F.e, 3, &err), 2);
    cr_assert_eq(fx_committed(&F), 3);
}

/* ------------------------------------------ fast backtracking, §5.3 */

/* §5.3 optimization: on a rejection the follower names the conflicting
 * term's first index so the leader skips a whole term per round trip. With
 * log [1:1, 2..4:3] and prev (4, term 2), nothing of term 3 can match: the
 * hint is (1, 1), the last entry with a term <= 2. */
Test(replication, follower_hint_skips_whole_conflicting_term)
{
    const uint64_t t[] = {3, 3, 3};
    follower(3, 3, t, 1);
    msg a = fx_append_msg(&F, 3, 5, 4, 2, 1, 0, NULL);
    fx_recv(&F, &a);
    const msg *r = append_resp_to(3);
    cr_assert_not_null(r);
    cr_assert_not(r->u.append_resp.success);
    cr_assert_eq(r->u.append_resp.index, 4);
    cr_assert_eq(r->u.append_resp.hint_index, 1);
    cr_assert_eq(r->u.append_resp.hint_term, 1);
}

/* §5.3: the leader uses the hint: it retries from the last index where its
 * own term is <= the hinted term, not one entry back. */
Test(replication, leader_rewinds_next_by_conflict_hint)
{
    leader_with_long_log();
    /* Follower 3 has [1:1, 2..3:2]: the logs agree up to 3. */
    msg r3 = fx_append_resp(3, 1, 3, false, 6, 3, 2);
    fx_recv(&F, &r3);
    const command *c = fx_repl(&F, 3);
    cr_assert_not_null(c);
    cr_assert_eq(c->u.replicate.prev.index, 3);
    cr_assert_eq(c->u.replicate.prev.term, 2);
    cr_assert_eq(c->u.replicate.last, 7);
    /* Follower 2 has [1:1, 2..4:1]: only index 1 can match. */
    msg r2 = fx_append_resp(2, 1, 3, false, 6, 4, 1);
    fx_recv(&F, &r2);
    c = fx_repl(&F, 2);
    cr_assert_not_null(c);
    cr_assert_eq(c->u.replicate.prev.index, 1);
    cr_assert_eq(c->u.replicate.prev.term, 1);
}

/* A rejection of a message that is no longer the one being probed (late,
 * reordered) does not move `next`. */
Test(replication, leader_ignores_stale_rejection_while_probing)
{
    leader_with_long_log();
    msg r = fx_append_resp(3, 1, 3, false, 3, 1, 1);
    fx_recv(&F, &r);
    cr_assert_eq(fx_repl_count(&F, 3), 0);
    msg cur = fx_append_resp(3, 1, 3, false, 6, 5, 2);
    fx_recv(&F, &cur);
    const command *c = fx_repl(&F, 3);
    cr_assert_not_null(c, "the current probe's rejection counts");
    cr_assert_eq(c->u.replicate.prev.index, 5);
}

/* ------------------------------------------------ progress: probe/pipe */

/* etcd's probe state: until a follower's match is known the leader sends
 * one AppendEntries per round trip. */
Test(replication, probe_sends_one_append_until_answered)
{
    fx_boot(&F, 1, 3);
    fx_elect(&F);
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    cr_assert_eq(fx_repl_count(&F, 2), 0, "probe already in flight");
    fx_ack(&F, 2, 2);
    const command *c = fx_repl(&F, 2);
    cr_assert_not_null(c);
    cr_assert_eq(c->u.replicate.prev.index, 2);
    cr_assert_eq(c->u.replicate.last, 3);
    cr_assert_eq(engine_matched(F.e, 2), 2);
}

/* A heartbeat response shows the follower is alive: a paused probe is sent
 * again (the first may have been lost). */
Test(replication, heartbeat_response_resumes_paused_probe)
{
    fx_boot(&F, 1, 3);
    fx_elect(&F);
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    cr_assert_eq(fx_repl_count(&F, 2), 0);
    msg hb = fx_hb_resp(2, 1, fx_term(&F), 0);
    fx_recv(&F, &hb);
    const command *c = fx_repl(&F, 2);
    cr_assert_not_null(c);
    cr_assert_eq(c->u.replicate.prev.index, 1);
}

/* A follower that lost entries it acknowledged (a wiped disk; in tests, a
 * memory store restarted) rejects every probe at `match` with a hint below
 * it. Raft cannot rewind past match, so the leader does not answer each
 * rejection with the same probe at once (that exchange ran as fast as the
 * network goes: 42 s of CPU in 29 s, review finding); it probes again at
 * the next heartbeat response. */
Test(replication, rejection_below_match_probes_again_only_at_a_heartbeat)
{
    leader3(NULL);                         /* 2 matched 2 */
    cr_assert_eq(fx_propose(&F, 1, 8), 0); /* (2,3] */
    fx_begin(&F);
    engine_report_unreachable(F.e, 2, ZRAFT_EAGAIN); /* back to probing */
    fx_end(&F);
    msg hb = fx_hb_resp(2, 1, fx_term(&F), 0);
    fx_recv(&F, &hb);
    const command *c = fx_repl(&F, 2);
    cr_assert_not_null(c, "the probe from match");
    cr_assert_eq(c->u.replicate.prev.index, 2);
    msg r = fx_append_resp(2, 1, fx_term(&F), false, 2, 0, 0);
    fx_recv(&F, &r);
    cr_assert_eq(fx_repl_count(&F, 2), 0,
                 "the same probe again at once: it cannot rewind past match");
    fx_recv(&F, &hb);
    c = fx_repl(&F, 2);
    cr_assert_not_null(c, "probed again at the heartbeat response");
    cr_assert_eq(c->u.replicate.prev.index, 2);
}

/* Thesis §10.2.2: once matched, the leader pipelines: every proposal goes
 * out at once without waiting for the previous acknowledgement. */
Test(replication, pipeline_sends_without_waiting_once_matched)
{
    leader3(NULL);
    for (uint64_t i = 0; i < 3; i++) {
        cr_assert_eq(fx_propose(&F, 1, 8), 0);
        const command *c = fx_repl(&F, 2);
        cr_assert_not_null(c, "proposal %d not sent", (int)i);
        cr_assert_eq(c->u.replicate.prev.index, 2 + i);
        cr_assert_eq(c->u.replicate.last, 3 + i);
    }
}

/* A rejection while pipelining sends the leader back to probing from the
 * known match. */
Test(replication, pipeline_rejection_falls_back_to_probe)
{
    leader3(NULL);
    cr_assert_eq(fx_propose(&F, 1, 8), 0); /* (2,3]: lost */
    cr_assert_eq(fx_propose(&F, 1, 8), 0); /* (3,4]: rejected */
    msg r = fx_append_resp(2, 1, 2, false, 3, 2, 2);
    fx_recv(&F, &r);
    const command *c = fx_repl(&F, 2);
    cr_assert_not_null(c);
    cr_assert_eq(c->u.replicate.prev.index, 2);
    cr_assert_eq(c->u.replicate.last, 4);
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    cr_assert_eq(fx_repl_count(&F, 2), 0, "probing: one message at a time");
}

static void inflight_two(engine_config *c)
{
    c->max_inflight_msgs = 2;
}

/* The in-flight window (by messages) bounds unacknowledged AppendEntries;
 * an acknowledgement reopens it. */
Test(replication, inflight_count_limit_pauses_pipeline)
{
    leader3(inflight_two);
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    cr_assert_eq(fx_repl_count(&F, 2), 1);
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    cr_assert_eq(fx_repl_count(&F, 2), 1);
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    cr_assert_eq(fx_repl_count(&F, 2), 0, "window of 2 is full");
    fx_ack(&F, 2, 3);
    const command *c = fx_repl(&F, 2);
    cr_assert_not_null(c);
    cr_assert_eq(c->u.replicate.prev.index, 4);
    cr_assert_eq(c->u.replicate.last, 5);
}

static void inflight_100_bytes(engine_config *c)
{
    c->max_inflight_bytes = 100;
}

/* The in-flight window (by payload bytes) bounds unacknowledged data. */
Test(replication, inflight_bytes_limit_pauses_pipeline)
{
    leader3(inflight_100_bytes);
    cr_assert_eq(fx_propose(&F, 1, 60), 0);
    cr_assert_eq(fx_repl_count(&F, 2), 1);
    cr_assert_eq(fx_propose(&F, 1, 60), 0);
    cr_assert_eq(fx_repl_count(&F, 2), 1);
    cr_assert_eq(fx_propose(&F, 1, 60), 0);
    cr_assert_eq(fx_repl_count(&F, 2), 0, "120 bytes in flight >= 100");
    fx_ack(&F, 2, 3);
    const command *c = fx_repl(&F, 2);
    cr_assert_not_null(c);
    cr_assert_eq(c->u.replicate.prev.index, 4);
}

static void two_entries_per_msg(engine_config *c)
{
    c->max_entries_per_msg = 2;
}

/* One AppendEntries carries at most max_entries_per_msg entries. */
Test(replication, replicate_bounded_by_max_entries_per_msg)
{
    leader3(two_entries_per_msg);
    cr_assert_eq(fx_propose(&F, 5, 8), 0);
    const command *c = fx_repl(&F, 2);
    cr_assert_not_null(c);
    cr_assert_eq(c->u.replicate.prev.index, 2);
    cr_assert_eq(c->u.replicate.last, 4);
}

static void hundred_bytes_per_msg(engine_config *c)
{
    c->max_bytes_per_msg = 100;
}

/* One AppendEntries carries at most max_bytes_per_msg payload bytes, but
 * always at least one entry (or a large entry could never be sent). */
Test(replication, replicate_bounded_by_max_bytes_per_msg)
{
    leader3(hundred_bytes_per_msg);
    cr_assert_eq(fx_propose(&F, 3, 60), 0);
    const command *c = fx_repl(&F, 2);
    cr_assert_not_null(c);
    cr_assert_eq(c->u.replicate.last - c->u.replicate.prev.index, 1);
    fx_ack(&F, 2, 5);
    cr_assert_eq(fx_propose(&F, 1, 500), 0);
    c = fx_repl(&F, 2);
    cr_assert_not_null(c);
    cr_assert_eq(c->u.replicate.prev.index, 5);
    cr_assert_eq(c->u.replicate.last, 6);
}
