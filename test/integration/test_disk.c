/* test_disk.c - a 3-node in-process cluster on the durable storage: a node
 * that loses power (unsynced bytes dropped) restarts from its directory,
 * re-applies from snapshot + log and converges; a follower far behind is
 * caught up by a snapshot. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test/tmpdir.h"
#include "cluster.h"

TestSuite(disk3, .init = tmpdir_setup, .fini = tmpdir_teardown);

Test(disk3, crashed_node_restarts_from_disk_and_converges, .timeout = 300)
{
    cluster c;
    memset(&c, 0, sizeof c);
    c.disk_dir = dir;
    c.snapshot_threshold = 40;
    c.snapshot_keep = 5;
    cl_start(&c, 3);
    zraft_log_id last = {0, 0};
    for (uint64_t w = 1; w <= 100; w++) {
        last = cl_write_any(&c, w, 0);
    }
    cl_wait_applied(&c, last.index);
    /* Power cut on a follower, more writes, then it comes back. */
    zraft_id l = cl_leader(&c);
    zraft_id f = l == 1 ? 2 : 1;
    cl_stop_node(&c, f);
    for (uint64_t w = 101; w <= 200; w++) {
        last = cl_write_any(&c, w, f);
    }
    cl_start_node(&c, f); /* same directory: recovers, not initialized */
    cl_wait_applied(&c, last.index);
    cl_assert_same(&c);
    /* Then the leader itself. */
    l = cl_leader(&c);
    cl_stop_node(&c, l);
    for (uint64_t w = 201; w <= 250; w++) {
        last = cl_write_any(&c, w, l);
    }
    cl_start_node(&c, l);
    cl_wait_applied(&c, last.index);
    cl_assert_same(&c);
    uint64_t *ids;
    uint64_t n = cl_applied(&c, l, &ids);
    cr_assert_eq(n, 250, "restarted node holds %llu writes",
                 (unsigned long long)n);
    for (uint64_t k = 0; k < n; k++) {
        cr_assert_eq(ids[k], k + 1);
    }
    free(ids);
    zraft_metrics m;
    zraft_metrics_get(c.nodes[l], &m);
    cr_assert_gt(m.snapshot_index, 0);
    cl_stop(&c);
}
