/* test_engine_membership.c - cluster membership changes (§6, thesis ch. 4):
 * learners never vote or count, joint consensus C_old,new then C_new with a
 * majority of both during the joint phase, the removed leader stepping down
 * once C_new commits, one change at a time, and a configuration taking
 * effect when appended and reverting when truncated. */
#include "engine_fixture.h"

static fx F;

static void fini(void)
{
    fx_close(&F);
}

TestSuite(membership, .fini = fini);

/* Node `id` bootstrapped with voters {1,2,3} and learners `l[0..nl)`. */
static void boot_with_learners(zraft_id id, bool pre_vote, const zraft_id *l,
                               uint32_t nl)
{
    engine_config c;
    zraft_membership m;
    const zraft_id v[] = {1, 2, 3};
    fx_config(&c, id);
    c.pre_vote = pre_vote;
    fx_members(&m, v, 3, l, nl);
    fx_boot_with(&F, &c, &m);
}

/* Every other member acknowledges the whole log; the leader flushes. */
static void ack_all(void)
{
    fx_flush(&F);
    const zraft_membership *m = engine_membership(F.e);
    zraft_id ids[ZRAFT_MAX_MEMBERS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->members[i].id != F.c.id) {
            ids[n++] = m->members[i].id;
        }
    }
    uint64_t last = fx_last(&F);
    for (uint32_t i = 0; i < n && fx_role(&F) == ROLE_LEADER; i++) {
        fx_ack(&F, ids[i], last);
    }
}

static uint8_t roles_of(const zraft_membership *m, zraft_id id)
{
    const zraft_member *p = zraft_membership_find(m, id);
    return p ? p->roles : 0;
}

/* Joint C_old,new with C_old = {1,2,3}, C_new = `nv`, others learners. */
static void joint_config(zraft_membership *m, const zraft_id *nv, uint32_t n,
                         const zraft_id *all, uint32_t nall)
{
    memset(m, 0, sizeof(*m));
    m->joint = true;
    for (uint32_t i = 0; i < nall; i++) {
        zraft_member *p = &m->members[m->n++];
        p->id = all[i];
        snprintf(p->addr, sizeof(p->addr), "n%llu", (unsigned long long)p->id);
        if (all[i] <= 3) {
            p->roles |= ZRAFT_ROLE_VOTER_OLD;
        }
        for (uint32_t j = 0; j < n; j++) {
            if (nv[j] == all[i]) {
                p->roles |= ZRAFT_ROLE_VOTER;
            }
        }
        if (p->roles == 0) {
            p->roles = ZRAFT_ROLE_LEARNER;
        }
    }
}

/* ------------------------------------------ learners, thesis §4.2.1 */

/* Thesis §4.2.1: new servers join as non-voting members; a learner never
 * starts an election. */
Test(membership, learner_never_campaigns)
{
    const zraft_id l[] = {4};
    boot_with_learners(4, true, l, 1);
    cr_assert_eq(fx_role(&F), ROLE_LEARNER);
    fx_tick(&F, 10 * FX_ELECTION_MAX);
    cr_assert_eq(fx_role(&F), ROLE_LEARNER);
    cr_assert_eq(fx_sent_count(&F, MSG_VOTE, 0), 0);
    cr_assert_eq(fx_term(&F), 1);
}

/* Thesis §4.2.1: learners are not asked for votes ... */
Test(membership, candidate_does_not_ask_learners_for_votes)
{
    const zraft_id l[] = {4};
    boot_with_learners(1, true, l, 1);
    cr_assert(fx_tick_until_role(&F, ROLE_PRECANDIDATE, FX_ELECTION_MAX));
    cr_assert_not_null(fx_sent(&F, MSG_VOTE, 2));
    cr_assert_not_null(fx_sent(&F, MSG_VOTE, 3));
    cr_assert_null(fx_sent(&F, MSG_VOTE, 4));
}

/* ... and a learner's grant is not counted. */
Test(membership, learner_vote_does_not_count)
{
    const zraft_id l[] = {4};
    boot_with_learners(1, false, l, 1);
    cr_assert(fx_tick_until_role(&F, ROLE_CANDIDATE, FX_ELECTION_MAX));
    fx_flush(&F);
    msg r = fx_vote_resp(4, 1, fx_term(&F), true, false);
    fx_recv(&F, &r);
    cr_assert_eq(fx_role(&F), ROLE_CANDIDATE);
}

/* Thesis §4.2.1: a learner's copy does not count toward a majority. */
Test(membership, learner_ack_does_not_count_toward_commit)
{
    const zraft_id l[] = {4};
    boot_with_learners(1, true, l, 1);
    fx_elect(&F);
    fx_ack(&F, 4, 2);
    cr_assert_eq(engine_matched(F.e, 4), 2, "learners are replicated to");
    cr_assert_lt(fx_committed(&F), 2);
    fx_ack(&F, 2, 2);
    cr_assert_eq(fx_committed(&F), 2);
}

/* ----------------------------------------------- one change, §4.1 */

/* Thesis §4.1: "a server always uses the latest configuration in its log,
 * regardless of whether the entry is committed": the leader replicates to
 * a new learner as soon as the entry is appended. */
Test(membership, config_takes_effect_when_appended)
{
    fx_boot(&F, 1, 3);
    fx_lead(&F);
    uint64_t idx = 0;
    fx_begin(&F);
    cr_assert_eq(engine_add_learner(F.e, 4, "n4", &idx), 0);
    fx_end(&F);
    cr_assert_eq(idx, 3);
    const command *a = fx_find(&F, CMD_APPEND);
    cr_assert_not_null(a);
    cr_assert_eq(a->u.append.entries[0].type, ZRAFT_ENTRY_MEMBERSHIP);
    cr_assert_not_null(fx_find(&F, CMD_STREAMS));
    cr_assert_eq(roles_of(engine_membership(F.e), 4), ZRAFT_ROLE_LEARNER);
    cr_assert_null(zraft_membership_find(engine_committed_membership(F.e), 4));
    cr_assert_eq(fx_status(&F).membership_index, 3);
    cr_assert_lt(fx_committed(&F), 3);
}

/* Thesis §4.1: "a leader may not begin a new configuration change until
 * the previous one has committed" (ZRAFT_EBUSY). */
Test(membership, one_change_at_a_time)
{
    fx_boot(&F, 1, 3);
    fx_lead(&F);
    uint64_t idx;
    cr_assert_eq(engine_add_learner(F.e, 4, "n4", &idx), 0);
    fx_note(&F);
    cr_assert_eq(engine_add_learner(F.e, 5, "n5", &idx), ZRAFT_EBUSY);
    const zraft_id v[] = {1, 2, 4};
    cr_assert_eq(engine_change_voters(F.e, v, 3, &idx), ZRAFT_EBUSY);
    ack_all();
    cr_assert_geq(fx_committed(&F), 3);
    cr_assert_eq(engine_add_learner(F.e, 5, "n5", &idx), 0);
    cr_assert_eq(idx, 4);
}

/* Thesis §4.1 (the fix to the single-server change bug): a new leader makes
 * no configuration change before an entry of its own term commits. */
Test(membership, no_change_before_current_term_commit)
{
    fx_boot(&F, 1, 3);
    fx_elect(&F);
    uint64_t idx;
    cr_assert_eq(engine_add_learner(F.e, 4, "n4", &idx), ZRAFT_EBUSY);
    fx_ack(&F, 2, 2);
    cr_assert_eq(engine_add_learner(F.e, 4, "n4", &idx), 0);
}

/* A new voter must already be a member (caught up as a learner first,
 * thesis §4.2.1). */
Test(membership, new_voter_must_be_a_member)
{
    fx_boot(&F, 1, 3);
    fx_lead(&F);
    const zraft_id v[] = {1, 2, 9};
    uint64_t idx;
    cr_assert_eq(engine_change_voters(F.e, v, 3, &idx), ZRAFT_ENOTMEMBER);
    cr_assert_eq(fx_last(&F), 2);
}

/* ------------------------------------------- joint consensus, §6 */

/* §6: "the cluster first switches to a transitional configuration we call
 * joint consensus": C_old voters keep VOTER_OLD, C_new voters get VOTER. */
Test(membership, change_voters_enters_joint_config)
{
    const zraft_id l[] = {4};
    boot_with_learners(1, true, l, 1);
    fx_lead(&F);
    const zraft_id v[] = {1, 2, 4};
    uint64_t idx = 0;
    fx_begin(&F);
    cr_assert_eq(engine_change_voters(F.e, v, 3, &idx), 0);
    fx_end(&F);
    cr_assert_eq(idx, 3);
    const zraft_membership *m = engine_membership(F.e);
    cr_assert(m->joint);
    cr_assert_eq(roles_of(m, 1), ZRAFT_ROLE_VOTER | ZRAFT_ROLE_VOTER_OLD);
    cr_assert_eq(roles_of(m, 2), ZRAFT_ROLE_VOTER | ZRAFT_ROLE_VOTER_OLD);
    cr_assert_eq(roles_of(m, 3), ZRAFT_ROLE_VOTER_OLD);
    cr_assert_eq(roles_of(m, 4), ZRAFT_ROLE_VOTER);
    const command *a = fx_find(&F, CMD_APPEND);
    cr_assert_not_null(a);
    cr_assert_eq(a->u.append.entries[0].type, ZRAFT_ENTRY_MEMBERSHIP);
}

/* Leader 1 of {1,2,3} with learners 4 and 5 moved to joint
 * C_old {1,2,3}, C_new {1,4,5} at index 3, flushed. */
static void leader_in_joint_to_145(void)
{
    const zraft_id l[] = {4, 5};
    boot_with_learners(1, true, l, 2);
    fx_lead(&F);
    const zraft_id v[] = {1, 4, 5};
    uint64_t idx;
    cr_assert_eq(engine_change_voters(F.e, v, 3, &idx), 0);
    fx_note(&F);
    cr_assert_eq(idx, 3);
    fx_flush(&F);
}

/* §6: "Agreement (for elections and entry commitment) requires separate
 * majorities from both the old and new configurations." */
Test(membership, joint_commit_needs_majority_of_both_configs)
{
    leader_in_joint_to_145();
    fx_ack(&F, 2, 3);
    fx_ack(&F, 3, 3);
    cr_assert_lt(fx_committed(&F), 3, "only C_old has a majority");
    fx_ack(&F, 4, 3);
    cr_assert_geq(fx_committed(&F), 3);
}

/* §6: "Once C_old,new has been committed ... the leader [creates] a log
 * entry describing C_new and replicate[s] it to the cluster." Removed
 * voters leave the configuration. */
Test(membership, joint_commit_appends_c_new)
{
    leader_in_joint_to_145();
    fx_ack(&F, 4, 3);
    fx_ack(&F, 2, 3);
    cr_assert_eq(fx_committed(&F), 3);
    const command *a = fx_find(&F, CMD_APPEND);
    cr_assert_not_null(a, "C_new not appended");
    cr_assert_eq(a->u.append.entries[0].type, ZRAFT_ENTRY_MEMBERSHIP);
    cr_assert_eq(a->u.append.entries[0].id.index, 4);
    const zraft_membership *m = engine_membership(F.e);
    cr_assert_not(m->joint);
    cr_assert_eq(roles_of(m, 1), ZRAFT_ROLE_VOTER);
    cr_assert_eq(roles_of(m, 4), ZRAFT_ROLE_VOTER);
    cr_assert_eq(roles_of(m, 5), ZRAFT_ROLE_VOTER);
    cr_assert_null(zraft_membership_find(m, 2));
    cr_assert_null(zraft_membership_find(m, 3));
    /* C_new commits with a majority of C_new alone. */
    fx_flush(&F);
    fx_ack(&F, 5, 4);
    cr_assert_eq(fx_committed(&F), 4);
    cr_assert_not(engine_committed_membership(F.e)->joint);
}

/* §6: elections during the joint phase need both majorities too. The
 * configuration is used as soon as it is in the log (thesis §4.1). */
Test(membership, joint_election_needs_majority_of_both_configs)
{
    const zraft_id l[] = {4, 5};
    boot_with_learners(1, false, l, 2);
    zraft_membership j;
    const zraft_id nv[] = {1, 4, 5}, all[] = {1, 2, 3, 4, 5};
    joint_config(&j, nv, 3, all, 5);
    const uint64_t t[] = {2};
    msg a = fx_append_msg(&F, 2, 2, 1, 1, 1, 1, t);
    F.ents[0].type = ZRAFT_ENTRY_MEMBERSHIP;
    F.ents[0].payload = fx_membership_buf(&F, &j);
    fx_recv(&F, &a);
    fx_flush(&F);
    cr_assert(engine_membership(F.e)->joint, "uncommitted config in effect");
    cr_assert(fx_tick_until_role(&F, ROLE_CANDIDATE, 2 * FX_ELECTION_MAX));
    uint64_t term = fx_term(&F);
    for (zraft_id id = 2; id <= 5; id++) {
        cr_assert_not_null(fx_sent(&F, MSG_VOTE, id), "no vote asked of %d",
                           (int)id);
    }
    fx_flush(&F);
    msg r2 = fx_vote_resp(2, 1, term, true, false);
    msg r3 = fx_vote_resp(3, 1, term, true, false);
    fx_recv(&F, &r2);
    fx_recv(&F, &r3);
    cr_assert_eq(fx_role(&F), ROLE_CANDIDATE, "C_new has no majority");
    msg r4 = fx_vote_resp(4, 1, term, true, false);
    fx_recv(&F, &r4);
    cr_assert_eq(fx_role(&F), ROLE_LEADER);
}

/* Thesis §4.1: "a log entry for a configuration change can be removed (if
 * leadership changes); in this case, a server must be prepared to fall back
 * to the previous configuration in its log." */
Test(membership, config_reverts_when_its_entry_is_truncated)
{
    const zraft_id l[] = {4};
    boot_with_learners(1, true, l, 1);
    zraft_membership j;
    const zraft_id nv[] = {1, 2, 4}, all[] = {1, 2, 3, 4};
    joint_config(&j, nv, 3, all, 4);
    const uint64_t t[] = {2};
    msg a = fx_append_msg(&F, 2, 2, 1, 1, 1, 1, t);
    F.ents[0].type = ZRAFT_ENTRY_MEMBERSHIP;
    F.ents[0].payload = fx_membership_buf(&F, &j);
    fx_recv(&F, &a);
    cr_assert(engine_membership(F.e)->joint);
    cr_assert_eq(fx_status(&F).membership_index, 2);

    const uint64_t t3[] = {3};
    msg b = fx_append_msg(&F, 3, 3, 1, 1, 1, 1, t3);
    fx_recv(&F, &b);
    cr_assert_not_null(fx_find(&F, CMD_TRUNCATE));
    const zraft_membership *m = engine_membership(F.e);
    cr_assert_not(m->joint);
    cr_assert_eq(roles_of(m, 3), ZRAFT_ROLE_VOTER);
    cr_assert_eq(roles_of(m, 4), ZRAFT_ROLE_LEARNER);
    cr_assert_eq(fx_status(&F).membership_index, 1);
}

/* A learner made a voter (by a configuration in its log) becomes a
 * follower that may campaign. */
Test(membership, promoted_learner_becomes_follower)
{
    const zraft_id l[] = {4};
    boot_with_learners(4, true, l, 1);
    cr_assert_eq(fx_role(&F), ROLE_LEARNER);
    zraft_membership j;
    const zraft_id nv[] = {1, 2, 3, 4}, all[] = {1, 2, 3, 4};
    joint_config(&j, nv, 4, all, 4);
    const uint64_t t[] = {2};
    msg a = fx_append_msg(&F, 1, 2, 1, 1, 1, 1, t);
    F.ents[0].type = ZRAFT_ENTRY_MEMBERSHIP;
    F.ents[0].payload = fx_membership_buf(&F, &j);
    fx_recv(&F, &a);
    cr_assert_eq(fx_role(&F), ROLE_FOLLOWER);
}

/* §6: "the leader ... steps down ... once C_new is committed" if it is not
 * part of C_new; until then it manages the cluster without counting itself
 * in C_new's majority. */
Test(membership, removed_leader_steps_down_after_c_new_commits)
{
    const zraft_id l[] = {4};
    boot_with_learners(1, true, l, 1);
    fx_lead(&F);
    const zraft_id v[] = {2, 3, 4};
    uint64_t idx;
    cr_assert_eq(engine_change_voters(F.e, v, 3, &idx), 0);
    fx_note(&F);
    ack_all(); /* commits C_old,new (3), appends C_new (4) */
    cr_assert_eq(fx_committed(&F), 3);
    cr_assert_eq(fx_last(&F), 4);
    cr_assert_eq(fx_role(&F), ROLE_LEADER, "leads until C_new commits");
    fx_flush(&F);
    fx_ack(&F, 2, 4);
    cr_assert_eq(fx_committed(&F), 3, "the leader is not in C_new");
    cr_assert_eq(fx_role(&F), ROLE_LEADER);
    fx_ack(&F, 3, 4);
    cr_assert_eq(fx_committed(&F), 4);
    cr_assert_neq(fx_role(&F), ROLE_LEADER);
    const command *r = fx_find(&F, CMD_ROLE);
    cr_assert_not_null(r);
    cr_assert_neq(r->u.role.role, ROLE_LEADER);
    fx_tick(&F, 10 * FX_ELECTION_MAX);
    cr_assert_eq(fx_sent_count(&F, MSG_VOTE, 0), 0, "a removed node is quiet");
}

/* §6: a leader elected while C_old,new is in force finishes the change:
 * once the joint entry is committed (here together with its blank entry)
 * it appends C_new itself. */
Test(membership, new_leader_completes_joint_change)
{
    const zraft_id l[] = {4, 5};
    boot_with_learners(1, true, l, 2);
    zraft_membership j;
    const zraft_id nv[] = {1, 4, 5}, all[] = {1, 2, 3, 4, 5};
    joint_config(&j, nv, 3, all, 5);
    const uint64_t t[] = {2};
    msg a = fx_append_msg(&F, 2, 2, 1, 1, 1, 1, t);
    F.ents[0].type = ZRAFT_ENTRY_MEMBERSHIP;
    F.ents[0].payload = fx_membership_buf(&F, &j);
    fx_recv(&F, &a);
    fx_flush(&F);
    fx_elect(&F);
    cr_assert_eq(fx_last(&F), 3);
    fx_ack(&F, 2, 3);
    cr_assert_lt(fx_committed(&F), 3, "C_new {1,4,5} has no majority yet");
    fx_ack(&F, 4, 3);
    cr_assert_eq(fx_committed(&F), 3);
    const command *c = fx_find(&F, CMD_APPEND);
    cr_assert_not_null(c, "C_new not appended by the new leader");
    cr_assert_eq(c->u.append.entries[0].type, ZRAFT_ENTRY_MEMBERSHIP);
    cr_assert_eq(c->u.append.entries[0].id.index, 4);
    const zraft_membership *m = engine_membership(F.e);
    cr_assert_not(m->joint);
    cr_assert_eq(roles_of(m, 4), ZRAFT_ROLE_VOTER);
    cr_assert_null(zraft_membership_find(m, 2));
}
