/* test_basic.c - a 3-node in-process cluster: election, replication, the
 * same order everywhere. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

Test(cluster3, elects_a_leader_and_replicates_in_order, .timeout = 120)
{
    cluster c;
    memset(&c, 0, sizeof c);
    /* 1 s elections: the 100 writes go to one leader, and a thread starved
     * 300 ms on a loaded machine cost it its leadership once (TSan, load
     * 24): this test is about order, not failover (test_faults is). */
    c.election_timeout_ms = 1000;
    cl_start(&c, 3);
    zraft_id l = cl_leader(&c);
    zraft_log_id last = {0, 0};
    for (uint64_t w = 1; w <= 100; w++) {
        int rv = cl_write(&c, l, w, &last);
        cr_assert_eq(rv, 0, "write %llu: %s", (unsigned long long)w,
                     zraft_strerror(rv));
    }
    cl_wait_applied(&c, last.index);
    uint64_t *a, *b;
    uint64_t na = cl_applied(&c, 1, &a);
    for (zraft_id i = 2; i <= 3; i++) {
        uint64_t nb = cl_applied(&c, i, &b);
        cr_assert_eq(na, nb);
        cr_assert_eq(memcmp(a, b, na * 8), 0, "node %llu differs",
                     (unsigned long long)i);
        free(b);
    }
    cr_assert_eq(na, 100);
    for (uint64_t w = 0; w < 100; w++) {
        cr_assert_eq(a[w], w + 1);
    }
    free(a);
    cl_stop(&c);
}
