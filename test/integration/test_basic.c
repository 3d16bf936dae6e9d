/* test_basic.c - a 3-node in-process cluster: election, replication, the
 * same order everywhere; writes made in a batch (zraft_batch_begin/end). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Counts the answers of asynchronous writes. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t ok, failed;
} tally;

static void tally_cb(void *arg, int err, zraft_log_id id, zraft_buf *result)
{
    tally *t = arg;
    (void)id;
    (void)result;
    pthread_mutex_lock(&t->lock);
    if (err == 0) {
        t->ok++;
    } else {
        t->failed++;
    }
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

/* Waits (CL_DEADLINE_MS at most) until `n` writes were answered. */
static void tally_wait(tally *t, uint64_t n)
{
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += CL_DEADLINE_MS / 1000;
    pthread_mutex_lock(&t->lock);
    while (t->ok + t->failed < n &&
           pthread_cond_timedwait(&t->cond, &t->lock, &end) == 0) {
    }
    pthread_mutex_unlock(&t->lock);
}

/* An event loop's round: the writes queued between zraft_batch_begin() and
 * zraft_batch_end() (nested: the outer pair counts) are all served, in
 * order, once the batch ends. */
Test(cluster3, writes_made_in_a_batch_are_served_in_order, .timeout = 120)
{
    cluster c;
    memset(&c, 0, sizeof c);
    c.election_timeout_ms = 1000; /* one leader for the whole test */
    cl_start(&c, 3);
    zraft_id l = cl_leader(&c);
    tally t = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    zraft_batch_end(c.nodes[l]); /* no batch: nothing happens */
    zraft_batch_end(c.nodes[l]);
    for (uint64_t round = 0; round < 5; round++) {
        zraft_batch_begin(c.nodes[l]);
        zraft_batch_begin(c.nodes[l]); /* nested */
        for (uint64_t i = 1; i <= 40; i++) {
            uint64_t w = round * 40 + i;
            cr_assert_eq(zraft_write(c.nodes[l], &w, sizeof w, tally_cb, &t),
                         0);
        }
        zraft_batch_end(c.nodes[l]); /* the inner one */
        zraft_batch_end(c.nodes[l]); /* the outer one: wakes the core */
        tally_wait(&t, (round + 1) * 40);
        cr_assert_eq(t.ok, (round + 1) * 40, "round %llu: %llu ok, %llu failed",
                     (unsigned long long)round, (unsigned long long)t.ok,
                     (unsigned long long)t.failed);
    }
    uint64_t *a;
    uint64_t na = cl_applied(&c, l, &a);
    cr_assert_eq(na, 200);
    for (uint64_t w = 0; w < 200; w++) {
        cr_assert_eq(a[w], w + 1);
    }
    free(a);
    cl_stop(&c);
}
