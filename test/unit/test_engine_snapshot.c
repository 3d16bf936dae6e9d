/* test_engine_snapshot.c - log compaction (§7): building a snapshot, purging
 * the log it covers while keeping the configured tail, the leader sending a
 * snapshot to a follower whose next entries were purged, and the follower
 * installing it (or ignoring a stale one). */
#include "engine_fixture.h"

static fx F;
static zraft_buf *DATA;

static void init(void)
{
    DATA = zraft_buf_new("state", 5);
}

static void fini(void)
{
    fx_close(&F);
    zraft_buf_unref(DATA);
}

TestSuite(snapshot, .init = init, .fini = fini);

static void keep(engine_config *c, uint64_t threshold, uint64_t tail)
{
    c->snapshot_threshold = threshold;
    c->snapshot_keep_entries = tail;
}

/* Single voter with `n` proposals after its blank (2,2), all committed and
 * applied: log [1:1, 2..2+n:2]. */
static void single_with_entries(uint64_t threshold, uint64_t tail, uint32_t n)
{
    engine_config c;
    zraft_membership m;
    fx_config(&c, 1);
    keep(&c, threshold, tail);
    fx_members_n(&m, 1);
    fx_boot_with(&F, &c, &m);
    cr_assert_eq(fx_role(&F), ROLE_LEADER);
    cr_assert_eq(fx_propose(&F, n, 8), 0);
    fx_flush(&F);
    cr_assert_eq(fx_committed(&F), 2 + n);
}

static snapshot_meta meta_at(uint64_t term, uint64_t index, uint32_t voters)
{
    snapshot_meta s;
    memset(&s, 0, sizeof(s));
    s.last_log_id.term = term;
    s.last_log_id.index = index;
    fx_members_n(&s.membership, voters);
    return s;
}

static void built(const snapshot_meta *m)
{
    fx_begin(&F);
    engine_snapshot_built(F.e, m, 0);
    fx_end(&F);
}

/* §7: "Each server takes snapshots independently" - here every
 * snapshot_threshold applied entries, one at a time. */
Test(snapshot, build_requested_every_threshold_entries)
{
    single_with_entries(5, 0, 10); /* last 12 */
    fx_applied(&F, 4);
    cr_assert_eq(fx_count(&F, CMD_BUILD_SNAPSHOT), 0);
    fx_applied(&F, 6);
    cr_assert_eq(fx_count(&F, CMD_BUILD_SNAPSHOT), 1);
    fx_applied(&F, 11);
    cr_assert_eq(fx_count(&F, CMD_BUILD_SNAPSHOT), 0, "one at a time");
    snapshot_meta m = meta_at(2, 6, 1);
    built(&m);
    fx_applied(&F, 12);
    cr_assert_eq(fx_count(&F, CMD_BUILD_SNAPSHOT), 1);
}

/* §7: the snapshot replaces the entries it covers, which are discarded -
 * except a configured tail kept so that slightly lagging followers can be
 * caught up from the log. */
Test(snapshot, purge_after_snapshot_keeps_configured_tail)
{
    single_with_entries(0, 3, 8); /* last 10 */
    fx_applied(&F, 10);
    snapshot_meta m = meta_at(2, 10, 1);
    built(&m);
    const command *p = fx_find(&F, CMD_PURGE);
    cr_assert_not_null(p);
    cr_assert_eq(p->u.purge.upto.index, 7);
    cr_assert_eq(p->u.purge.upto.term, 2);
    cr_assert_gt(p->io_seq, 0);
    engine_status s = fx_status(&F);
    cr_assert_eq(s.first_index, 8);
    cr_assert_eq(s.snapshot.index, 10);
    cr_assert_eq(s.snapshot.term, 2);
    cr_assert_eq(s.last_log_id.index, 10);
    int err = 0;
    engine_term_at(F.e, 7, &err);
    cr_assert_eq(err, ZRAFT_ECOMPACTED);
    cr_assert_eq(engine_term_at(F.e, 8, &err), 2);
    cr_assert_eq(err, 0);
}

/* §7: nothing is purged while the log is within the kept tail. */
Test(snapshot, no_purge_while_log_within_kept_tail)
{
    single_with_entries(0, 100, 8);
    fx_applied(&F, 10);
    snapshot_meta m = meta_at(2, 10, 1);
    built(&m);
    cr_assert_eq(fx_count(&F, CMD_PURGE), 0);
    cr_assert_eq(fx_status(&F).snapshot.index, 10);
    cr_assert_eq(fx_status(&F).first_index, 1);
}

/* A snapshot older than the current one changes nothing. */
Test(snapshot, older_snapshot_built_is_ignored)
{
    single_with_entries(0, 0, 8);
    fx_applied(&F, 10);
    snapshot_meta m10 = meta_at(2, 10, 1);
    built(&m10);
    snapshot_meta m8 = meta_at(2, 8, 1);
    built(&m8);
    cr_assert_eq(fx_count(&F, CMD_PURGE), 0);
    cr_assert_eq(fx_status(&F).snapshot.index, 10);
}

/* Leader 1 of {1,2,3}, kept tail 2: follower 2 has everything, follower 3
 * never answered the election probe (prev (1,1)). Entries 3..10 are
 * committed and applied, and a snapshot at (2,10) purged 1..8. */
static void leader_after_purge(void)
{
    engine_config c;
    zraft_membership m;
    fx_config(&c, 1);
    keep(&c, 0, 2);
    fx_members_n(&m, 3);
    fx_boot_with(&F, &c, &m);
    fx_elect(&F);
    fx_ack(&F, 2, 2);
    cr_assert_eq(fx_propose(&F, 8, 8), 0);
    fx_flush(&F);
    fx_ack(&F, 2, 10);
    cr_assert_eq(fx_committed(&F), 10);
    fx_applied(&F, 10);
    snapshot_meta sm = meta_at(2, 10, 3);
    built(&sm);
    cr_assert_not_null(fx_find(&F, CMD_PURGE));
    cr_assert_eq(fx_status(&F).first_index, 9);
}

/* §7: "the leader must occasionally send snapshots to followers that lag
 * behind ... when the leader has already discarded the next log entry that
 * it needs to send to a follower." */
Test(snapshot, leader_sends_snapshot_when_follower_needs_purged_entries)
{
    leader_after_purge();
    msg hb = fx_hb_resp(3, 1, 2, 0);
    fx_recv(&F, &hb);
    const command *s = fx_find(&F, CMD_SEND_SNAPSHOT);
    cr_assert_not_null(s, "no snapshot for follower 3");
    cr_assert_eq(s->u.send_snapshot.to, 3);
    cr_assert_eq(s->u.send_snapshot.term, 2);
    cr_assert_null(fx_repl(&F, 3));
}

/* §7, same rule when a rejection moves the probe to the very start of the
 * log: entries from index 1 are gone, so only a snapshot can help; an
 * AppendEntries from prev (0,0) would name purged entries. */
Test(snapshot, leader_sends_snapshot_when_probe_rewinds_into_purged_prefix)
{
    leader_after_purge();
    msg r = fx_append_resp(3, 1, 2, false, 1, 0, 0);
    fx_recv(&F, &r);
    const command *c = fx_repl(&F, 3);
    if (c != NULL) {
        cr_assert_geq(c->u.replicate.prev.index + 1, 9,
                      "REPLICATE (%llu, %llu] names purged entries (first "
                      "index 9)",
                      (unsigned long long)c->u.replicate.prev.index,
                      (unsigned long long)c->u.replicate.last);
    }
    cr_assert_not_null(fx_find(&F, CMD_SEND_SNAPSHOT));
}

/* §7: once the follower has installed the snapshot the leader resumes
 * normal replication after it. */
Test(snapshot, leader_resumes_replication_after_snapshot_ack)
{
    leader_after_purge();
    msg hb = fx_hb_resp(3, 1, 2, 0);
    fx_recv(&F, &hb);
    cr_assert_not_null(fx_find(&F, CMD_SEND_SNAPSHOT));
    cr_assert_eq(fx_propose(&F, 1, 8), 0);
    cr_assert_null(fx_repl(&F, 3), "nothing while the snapshot is in flight");
    msg ok = fx_msg(MSG_SNAPSHOT_RESP, 3, 1, 2);
    ok.u.snapshot_resp.success = true;
    ok.u.snapshot_resp.index = 10;
    fx_recv(&F, &ok);
    cr_assert_eq(engine_matched(F.e, 3), 10);
    const command *c = fx_repl(&F, 3);
    cr_assert_not_null(c);
    cr_assert_eq(c->u.replicate.prev.index, 10);
    cr_assert_eq(c->u.replicate.prev.term, 2);
    cr_assert_eq(c->u.replicate.last, 11);
}

static msg snapshot_msg(zraft_id from, uint64_t term, snapshot_meta *m)
{
    msg s = fx_msg(MSG_SNAPSHOT, from, 1, term);
    s.u.snapshot.meta = m;
    s.u.snapshot.data = DATA;
    return s;
}

/* §7 InstallSnapshot receiver: "If ... discard the entire log; reset state
 * machine using snapshot contents (and load snapshot's cluster
 * configuration)", acknowledging only once the install is durable. */
Test(snapshot, follower_installs_snapshot)
{
    fx_boot(&F, 1, 3);
    snapshot_meta m = meta_at(3, 10, 3);
    m.membership.members[2].roles = ZRAFT_ROLE_LEARNER;
    msg s = snapshot_msg(2, 3, &m);
    fx_recv(&F, &s);
    const command *in = fx_find(&F, CMD_INSTALL_SNAPSHOT);
    cr_assert_not_null(in);
    cr_assert_gt(in->io_seq, 0);
    cr_assert_eq(in->u.install_snapshot.meta->last_log_id.index, 10);
    cr_assert_eq(in->u.install_snapshot.data, DATA);
    const command *r = fx_sent(&F, MSG_SNAPSHOT_RESP, 2);
    cr_assert_not_null(r);
    cr_assert(r->u.send.u.snapshot_resp.success);
    cr_assert_eq(r->u.send.u.snapshot_resp.index, 10);
    cr_assert_geq(r->wait_io, in->io_seq);
    engine_status st = fx_status(&F);
    cr_assert_eq(st.term, 3);
    cr_assert_eq(st.committed, 10);
    cr_assert_eq(st.last_log_id.index, 10);
    cr_assert_eq(st.last_log_id.term, 3);
    cr_assert_eq(st.snapshot.index, 10);
    cr_assert_eq(st.first_index, 11);
    const zraft_member *p3 = zraft_membership_find(engine_membership(F.e), 3);
    cr_assert_not_null(p3);
    cr_assert_eq(p3->roles, ZRAFT_ROLE_LEARNER, "snapshot's configuration");
}

/* §7: "If existing log entry has same index and term as snapshot's last
 * included entry, retain log entries following it and reply." */
Test(snapshot, follower_keeps_log_after_snapshot_it_already_has)
{
    fx_boot(&F, 1, 3);
    const uint64_t t[] = {2, 2, 2, 2};
    fx_follow(&F, 2, 2, 4, t, 1); /* [1:1, 2..5:2] */
    snapshot_meta m = meta_at(2, 3, 3);
    msg s = snapshot_msg(2, 2, &m);
    fx_recv(&F, &s);
    cr_assert_eq(fx_count(&F, CMD_INSTALL_SNAPSHOT), 0);
    cr_assert_eq(fx_count(&F, CMD_TRUNCATE), 0);
    cr_assert_eq(fx_last(&F), 5);
    cr_assert_geq(fx_committed(&F), 3);
    const command *r = fx_sent(&F, MSG_SNAPSHOT_RESP, 2);
    cr_assert_not_null(r);
    cr_assert(r->u.send.u.snapshot_resp.success);
}

/* §7: a snapshot that covers no more than is already committed (a late
 * retransmission) is not installed: it would roll the state back. */
Test(snapshot, stale_snapshot_is_ignored)
{
    fx_boot(&F, 1, 3);
    const uint64_t t[] = {2, 2, 2};
    fx_follow(&F, 2, 2, 3, t, 4); /* [1:1, 2..4:2], committed 4 */
    snapshot_meta m = meta_at(2, 3, 3);
    msg s = snapshot_msg(2, 2, &m);
    fx_recv(&F, &s);
    cr_assert_eq(fx_count(&F, CMD_INSTALL_SNAPSHOT), 0);
    engine_status st = fx_status(&F);
    cr_assert_eq(st.committed, 4);
    cr_assert_eq(st.last_log_id.index, 4);
    cr_assert_eq(st.snapshot.index, 0);
    const command *r = fx_sent(&F, MSG_SNAPSHOT_RESP, 2);
    cr_assert_not_null(r);
    cr_assert_geq(r->u.send.u.snapshot_resp.index, 4);
}
