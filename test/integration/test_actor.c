/* test_actor.c - the actor primitive (actors/actor.h): a start that cannot
 * bind its mailbox fails instead of leaving a thread that never answers;
 * a send to an actor that has stopped never blocks; what is left in a
 * mailbox is released when it closes. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "actors/actor.h"

static void s_body(actor *a, void *arg)
{
    atomic_int *runs = arg;
    atomic_fetch_add(runs, 1);
    amsg m;
    while (actor_recv(a->mailbox, &m, 0) == 1 && m.type != AM_STOP) {
        amsg_release(&m);
    }
}

Test(actor, start_fails_when_the_mailbox_cannot_be_bound, .timeout = 30)
{
    void *ctx = zmq_ctx_new();
    atomic_int runs = 0;
    actor a, b;
    cr_assert_eq(actor_start(&a, ctx, "a", "inproc://dup", s_body, &runs), 0);
    /* The same endpoint again: bound already. */
    int rv = actor_start(&b, ctx, "b", "inproc://dup", s_body, &runs);
    cr_assert_eq(rv, ZRAFT_EIO, "second start: %d", rv);
    actor_close(&a);
    cr_assert_eq(atomic_load(&runs), 1);
    zmq_ctx_term(ctx);
}

static void s_read_cb(void *arg, int err)
{
    *(int *)arg = err;
}

Test(actor, messages_left_in_a_mailbox_are_released_on_close, .timeout = 30)
{
    void *ctx = zmq_ctx_new();
    atomic_int runs = 0;
    actor a;
    cr_assert_eq(actor_start(&a, ctx, "a", "inproc://left", s_body, &runs), 0);
    actor_stop(&a);
    /* Sent after the actor stopped: queued without blocking... */
    void *push = actor_connect(ctx, "inproc://left");
    int answer = 0;
    amsg m;
    memset(&m, 0, sizeof m);
    m.type = AM_SM_READ;
    m.u.sm_read.cb = s_read_cb;
    m.u.sm_read.arg = &answer;
    cr_assert_eq(actor_send(push, &m), 0);
    memset(&m, 0, sizeof m);
    m.type = AM_SM_BUILT;
    m.u.sm_built.meta = malloc(sizeof(snapshot_meta)); /* LSan checks it */
    cr_assert_eq(actor_send(push, &m), 0);
    /* ... and answered when the mailbox closes. */
    actor_close(&a);
    cr_assert_eq(answer, ZRAFT_ESHUTDOWN);
    /* With the mailbox gone, sends return instead of waiting for a peer
     * (ZeroMQ notices the closed pipe on a later send, so the first few
     * may still be queued into it and dropped). */
    memset(&m, 0, sizeof m);
    m.type = AM_SM_APPLIED;
    uint64_t deadline = actor_now_ms() + 10000;
    int rv = 0;
    while (rv == 0 && actor_now_ms() < deadline) {
        rv = actor_send(push, &m);
    }
    cr_assert_eq(rv, ZRAFT_ESHUTDOWN);
    zmq_close(push);
    zmq_ctx_term(ctx);
}
