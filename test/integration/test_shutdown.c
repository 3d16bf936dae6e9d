/* test_shutdown.c - zraft_node_destroy() under load: a 3-node in-process
 * cluster is destroyed while 64 closed-loop clients write to the leader
 * (each callback issues the next write, so writes are queued while destroy
 * runs), and readers ask for read barriers. Destroy must return (the test
 * timeout bounds it) and every accepted call must be answered exactly once.
 *
 * ZRAFT_SHUTDOWN_ITERATIONS sets the number of rounds (default 10; the
 * acceptance run for issue 10 uses 200 under ASan and TSan). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test/tmpdir.h"
#include "cluster.h"

#define CLIENTS 64

typedef struct {
    zraft_node *node; /* valid until destroy has joined the sm thread */
    atomic_uint issued;
    atomic_uint answered;
    atomic_uint ok;
    atomic_uint shutdown_errs;
    atomic_uint read_issued;
    atomic_uint read_answered;
} load;

static void s_write(load *l);

static void s_write_cb(void *arg, int err, zraft_log_id id, zraft_buf *result)
{
    load *l = arg;
    (void)id;
    (void)result;
    atomic_fetch_add(&l->answered, 1);
    if (err == 0) {
        atomic_fetch_add(&l->ok, 1);
    } else if (err == ZRAFT_ESHUTDOWN) {
        atomic_fetch_add(&l->shutdown_errs, 1);
        return; /* the client stops */
    }
    s_write(l);
}

static void s_write(load *l)
{
    unsigned char p[24];
    uint64_t wid = atomic_fetch_add(&l->issued, 1) + 1;
    memcpy(p, &wid, 8);
    memset(p + 8, 0xab, sizeof p - 8);
    if (zraft_write(l->node, p, sizeof p, s_write_cb, l) != 0) {
        atomic_fetch_sub(&l->issued, 1); /* refused: no callback comes */
    }
}

static void s_read(load *l);

static void s_read_cb(void *arg, int err)
{
    load *l = arg;
    atomic_fetch_add(&l->read_answered, 1);
    if (err != ZRAFT_ESHUTDOWN) {
        s_read(l);
    }
}

static void s_read(load *l)
{
    atomic_fetch_add(&l->read_issued, 1);
    if (zraft_read(l->node, s_read_cb, l) != 0) {
        atomic_fetch_sub(&l->read_issued, 1);
    }
}

static unsigned s_iterations(void)
{
    const char *s = getenv("ZRAFT_SHUTDOWN_ITERATIONS");
    int n = s ? atoi(s) : 0;
    return n > 0 ? (unsigned)n : 10;
}

/* One round: start, elect, load, let some writes commit, destroy. Returns
 * how many writes were still waiting (answered ZRAFT_ESHUTDOWN). */
static unsigned s_round(const char *disk_dir, unsigned round)
{
    cluster c;
    memset(&c, 0, sizeof c);
    c.disk_dir = disk_dir;
    c.snapshot_threshold = 200; /* snapshots run during the load too */
    cl_start(&c, 3);
    zraft_id leader = cl_leader(&c);
    load *l = calloc(1, sizeof(*l));
    cr_assert_not_null(l);
    l->node = c.nodes[leader];
    for (int i = 0; i < CLIENTS; i++) {
        s_write(l);
    }
    for (int i = 0; i < 4; i++) {
        s_read(l);
    }
    /* Wait until the load is really flowing (some writes committed). */
    zraft_log_id last = cl_write_any(&c, 1ull << 60, 0);
    cr_assert_gt(last.index, 0);
    /* Destroy in an order that varies by round: leader first, last or in
     * the middle, so every actor meets peers that are already gone. */
    zraft_id order[3] = {1, 2, 3};
    unsigned rot = round % 3;
    for (unsigned k = 0; k < 3; k++) {
        order[k] = (zraft_id)((k + rot) % 3 + 1);
    }
    for (unsigned k = 0; k < 3; k++) {
        cl_stop_node(&c, order[k]);
    }
    /* Every accepted call was answered exactly once, and the calls that
     * were waiting were failed with ZRAFT_ESHUTDOWN. */
    unsigned issued = atomic_load(&l->issued);
    unsigned answered = atomic_load(&l->answered);
    cr_assert_eq(answered, issued, "round %u: %u write answers for %u writes",
                 round, answered, issued);
    cr_assert_eq(atomic_load(&l->read_answered), atomic_load(&l->read_issued),
                 "round %u: %u read answers for %u reads", round,
                 atomic_load(&l->read_answered), atomic_load(&l->read_issued));
    unsigned waiting = atomic_load(&l->shutdown_errs);
    cl_stop(&c);
    free(l);
    return waiting;
}

Test(shutdown, destroy_under_write_load_memory, .timeout = 600)
{
    unsigned n = s_iterations(), waiting = 0;
    for (unsigned i = 0; i < n; i++) {
        waiting += s_round(NULL, i);
    }
    /* The test exercised what it claims: writes were in flight. */
    cr_assert_gt(waiting, 0, "no write was waiting in any round");
}

TestSuite(shutdown_disk, .init = tmpdir_setup, .fini = tmpdir_teardown);

Test(shutdown_disk, destroy_under_write_load_disk, .timeout = 600)
{
    unsigned n = s_iterations(), waiting = 0;
    for (unsigned i = 0; i < n; i++) {
        char sub[512];
        snprintf(sub, sizeof sub, "%s/r%u", dir, i);
        cr_assert_eq(mkdir(sub, 0700), 0);
        waiting += s_round(sub, i);
    }
    cr_assert_gt(waiting, 0, "no write was waiting in any round");
}
