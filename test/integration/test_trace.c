/* test_trace.c - the commit-path trace (actors/trace.h, zraft-bench
 * --trace): off it stamps nothing; on, a stage keeps its first stamp, and
 * only from the side it belongs to (leader or follower); a live cluster
 * stamps every stage of a sampled write. Each test runs in its own process
 * (Criterion), so each starts with tracing off. */
#include <criterion/criterion.h>
#include <string.h>

#include "actors/trace.h"
#include "cluster.h"

enum { LEADER = 1, FOLLOWER = 2 };

static bool s_follower_stage(int k)
{
    return k == TRACE_FRECV || k == TRACE_FDURABLE || k == TRACE_FREPLIED;
}

/* Stamps every stage of `index` but PROPOSED from its own side. */
static void s_stamp_all(uint64_t index)
{
    for (int k = TRACE_PROPOSED + 1; k < TRACE__COUNT; k++) {
        trace_stamp(s_follower_stage(k) ? FOLLOWER : LEADER, index, k);
    }
}

Test(trace, off_stamps_nothing)
{
    trace_begin(8, LEADER, 1);
    s_stamp_all(8);
    uint64_t out[4][TRACE__COUNT];
    cr_assert_eq(trace_read(out, 4), 0);
    cr_assert_not(trace_sampled(8));
}

Test(trace, a_stage_counts_only_from_its_side)
{
    cr_assert_eq(trace_enable(4, 16), 0);
    cr_assert(trace_sampled(8));
    cr_assert_not(trace_sampled(9));
    trace_begin(8, LEADER, 1);
    /* Follower stages stamped by the leader, leader stages by a follower:
     * ignored, so the sample stays incomplete. */
    for (int k = TRACE_PROPOSED + 1; k < TRACE__COUNT; k++) {
        trace_stamp(s_follower_stage(k) ? LEADER : FOLLOWER, 8, k);
    }
    uint64_t out[4][TRACE__COUNT];
    cr_assert_eq(trace_read(out, 4), 0);
    s_stamp_all(8);
    cr_assert_eq(trace_read(out, 4), 1);
    cr_assert_eq(out[0][TRACE_PROPOSED], 1);
}

Test(trace, the_first_stamp_wins_and_ranges_stamp_sampled_indexes)
{
    cr_assert_eq(trace_enable(4, 16), 0);
    trace_begin(8, LEADER, 1);
    trace_begin(12, LEADER, 2);
    trace_stamp_range(LEADER, 5, 13, TRACE_CORE); /* 8 and 12 */
    s_stamp_all(8);
    s_stamp_all(12);
    uint64_t a[4][TRACE__COUNT], b[4][TRACE__COUNT];
    cr_assert_eq(trace_read(a, 4), 2);
    trace_stamp_range(LEADER, 1, 100, TRACE_CORE);
    trace_stamp(LEADER, 8, TRACE_APPLIED);
    cr_assert_eq(trace_read(b, 4), 2);
    cr_assert_eq(memcmp(a, b, 2 * sizeof a[0]), 0,
                 "a later stamp replaced one");
    /* Index 16 was never begun (a leader's blank entry): no sample. */
    s_stamp_all(16);
    cr_assert_eq(trace_read(b, 4), 2);
    trace_disable();
    cr_assert_not(trace_sampled(8));
}

Test(trace, a_live_cluster_stamps_every_stage)
{
    cr_assert_eq(trace_enable(1, 1024), 0);
    cluster c;
    memset(&c, 0, sizeof c);
    cl_start(&c, 3);
    for (uint64_t w = 1; w <= 20; w++) {
        cl_write_any(&c, w, 0);
    }
    /* The callback stamp precedes the callback that cl_write waits for. */
    uint64_t out[64][TRACE__COUNT];
    uint32_t n = trace_read(out, 64);
    cr_assert_geq(n, 1, "no write was stamped at every stage");
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_leq(out[i][TRACE_PROPOSED], out[i][TRACE_CORE]);
        cr_assert_leq(out[i][TRACE_CORE], out[i][TRACE_COMMITTED]);
        cr_assert_leq(out[i][TRACE_COMMITTED], out[i][TRACE_CALLBACK]);
    }
    cl_stop(&c);
}
