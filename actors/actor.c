/* actor.c - the actor primitive: thread, named, with an inproc PULL
 * mailbox, a start handshake and a STOP message (see actor.h). */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "actors/actor.h"

/* ThreadSanitizer and the mailboxes (TSan builds only, core/tsan.h). An
 * envelope hands memory from the sender to the receiver (entry arrays, payload
 * references, pending writes, snapshot metas...), and ZeroMQ orders the
 * sender's writes before the receiver's reads, but TSan cannot see how (libzmq
 * is not instrumented), so every hand-off looks like a race. actor_send()
 * releases and actor_recv() acquires a synchronization object, and the two must
 * name the same one. The envelope itself cannot: ZeroMQ copies it, so the
 * sender's and the receiver's amsg live at different addresses. The pointers it
 * carries cannot either: many envelopes carry none (LOG_FLUSHED,
 * SM_APPLIED...) yet order what the sender did before (the log writer's
 * storage writes before the core's reads of storage).
 *
 * So each envelope carries its own: actor_send() allocates a one-byte
 * token, releases on its address and sends the address in the envelope
 * (amsg.tsan_token, a field of TSan builds only); actor_recv() acquires on
 * it and frees it, and TSan forgets a sync object when its memory is freed.
 * The edge TSan sees is then exactly the one ZeroMQ provides: this send
 * happens before the receive of this envelope, and nothing more - no edge
 * between two senders of one mailbox, none from a later send, none through
 * an object shared by many envelopes (a mailbox-wide object, or a table of
 * reused addresses, would add edges that hide real races). A send that
 * fails frees its token; actor_close() receives, and so frees, whatever is
 * left in a mailbox. */

static void *s_main(void *p)
{
    actor *a = p;
    pthread_setname_np(pthread_self(), a->name);
    a->mailbox = zmq_socket(a->zctx, ZMQ_PULL);
    int hwm = 0, linger = 0;
    zmq_setsockopt(a->mailbox, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(a->mailbox, ZMQ_LINGER, &linger, sizeof linger);
    int rv = a->mailbox != NULL ? zmq_bind(a->mailbox, a->endpoint) : -1;
    if (rv != 0 && a->mailbox != NULL) {
        zmq_close(a->mailbox);
        a->mailbox = NULL;
    }
    pthread_mutex_lock(&a->lock);
    a->bound = rv == 0;
    a->ready = true;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    if (rv == 0) {
        a->body(a, a->arg);
    }
    /* The mailbox stays open (actor_close): messages sent to this actor
     * from now on are queued, not lost and never blocking, until the owner
     * closes it and releases what they carry. */
    return NULL;
}

int actor_start(actor *a, void *zctx, const char *name, const char *endpoint,
                actor_body body, void *arg)
{
    memset(a, 0, sizeof(*a));
    a->zctx = zctx;
    snprintf(a->name, sizeof a->name, "%s", name);
    snprintf(a->endpoint, sizeof a->endpoint, "%s", endpoint);
    a->body = body;
    a->arg = arg;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    if (pthread_create(&a->thread, NULL, s_main, a) != 0) {
        return ZRAFT_ENOMEM;
    }
    pthread_mutex_lock(&a->lock);
    while (!a->ready) {
        pthread_cond_wait(&a->cond, &a->lock);
    }
    bool bound = a->bound;
    pthread_mutex_unlock(&a->lock);
    if (!bound) {
        /* No mailbox, no actor: the thread has nothing to wait for. */
        pthread_join(a->thread, NULL);
        pthread_mutex_destroy(&a->lock);
        pthread_cond_destroy(&a->cond);
        return ZRAFT_EIO;
    }
    a->running = true;
    a->open = true;
    return 0;
}

void actor_stop(actor *a)
{
    if (!a->running) {
        return;
    }
    void *push = actor_connect(a->zctx, a->endpoint);
    int rv = push != NULL ? actor_send_stop(push) : ZRAFT_ENOMEM;
    zmq_close(push);
    if (rv != 0) {
        /* Cannot happen while the mailbox is open; joining would hang. */
        fprintf(stderr, "zraft: cannot stop actor %s: %s\n", a->name,
                zraft_strerror(rv));
        abort();
    }
    pthread_join(a->thread, NULL);
    a->running = false;
}

int actor_send_stop(void *push)
{
    amsg m;
    memset(&m, 0, sizeof m);
    m.type = AM_STOP;
    return actor_send(push, &m);
}

void actor_join(actor *a)
{
    if (!a->running) {
        return;
    }
    pthread_join(a->thread, NULL);
    a->running = false;
}

void actor_close(actor *a)
{
    actor_stop(a);
    if (!a->open) {
        return;
    }
    /* The thread is joined (a full barrier): its socket may be used here. */
    amsg m;
    while (actor_recv(a->mailbox, &m, ZMQ_DONTWAIT) == 1) {
        amsg_release(&m);
    }
    /* A pipe connected lately may still be unattached (its bind command
     * waits in the socket's own mailbox): a blocking poll processes
     * commands, then the drain runs again. */
    zmq_pollitem_t it = {a->mailbox, 0, ZMQ_POLLIN, 0};
    while (zmq_poll(&it, 1, 1) > 0 &&
           actor_recv(a->mailbox, &m, ZMQ_DONTWAIT) == 1) {
        amsg_release(&m);
    }
    zmq_close(a->mailbox);
    a->mailbox = NULL;
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    a->open = false;
}

void *actor_connect(void *zctx, const char *endpoint)
{
    void *s = zmq_socket(zctx, ZMQ_PUSH);
    if (s == NULL) {
        return NULL;
    }
    int hwm = 0, linger = -1;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(s, endpoint);
    return s;
}

int actor_send(void *push, const amsg *m)
{
#if ZRAFT_TSAN_ON
    amsg tagged = *m;
    tagged.tsan_token = malloc(1);
    if (tagged.tsan_token != NULL) {
        TSAN_RELEASE(tagged.tsan_token);
    }
    m = &tagged;
#endif
    /* A PUSH socket blocks in zmq_send() while it has no peer, which is
     * the case for good once the receiving actor closed its mailbox (a
     * state machine reporting to a core that already stopped): never wait
     * for one. With an unlimited queue, EAGAIN means exactly that. */
    if (zmq_send(push, m, sizeof(*m), ZMQ_DONTWAIT) == (int)sizeof(*m)) {
        return 0;
    }
#if ZRAFT_TSAN_ON
    free(tagged.tsan_token);
#endif
    return ZRAFT_ESHUTDOWN;
}

int actor_recv(void *pull, amsg *m, int flags)
{
    int n = zmq_recv(pull, m, sizeof(*m), flags);
    if (n < 0) {
        return zmq_errno() == EAGAIN ? 0 : -1;
    }
    if (n != (int)sizeof(*m)) {
        return -1;
    }
#if ZRAFT_TSAN_ON
    if (m->tsan_token != NULL) {
        TSAN_ACQUIRE(m->tsan_token);
        free(m->tsan_token);
        m->tsan_token = NULL;
    }
#endif
    return 1;
}

static _Atomic uint64_t s_endpoint_seq;

uint64_t actor_endpoint_seq(void)
{
    return atomic_fetch_add(&s_endpoint_seq, 1) + 1;
}

/* Threads spinning now, and how many may (CPUs - 1; -1: not known yet). */
static _Atomic int s_spinners;
static _Atomic int s_max_spinners = -1;

/* The machine's runnable threads (/proc/loadavg's "running" field, this
 * one included), read at most every 50 ms by whichever thread asks. */
static _Atomic uint64_t s_busy_read_us;
static _Atomic int s_busy_threads;

static int s_busy(uint64_t now)
{
    uint64_t last = atomic_load_explicit(&s_busy_read_us, memory_order_relaxed);
    if (now - last >= 50000 &&
        atomic_compare_exchange_strong(&s_busy_read_us, &last, now)) {
        FILE *f = fopen("/proc/loadavg", "r");
        int running = 0;
        if (f == NULL || fscanf(f, "%*s %*s %*s %d", &running) != 1) {
            running = 1 << 20; /* unknown: do not spin */
        }
        if (f != NULL) {
            fclose(f);
        }
        atomic_store(&s_busy_threads, running);
    }
    return atomic_load_explicit(&s_busy_threads, memory_order_relaxed);
}

/* A spinner's place: fewer than CPUs - 1 threads of this process spin and
 * the machine has a CPU with nothing to run (a spinner on a machine with
 * more runnable threads than CPUs takes the CPU of a thread that works). */
static bool s_spin_slot(uint64_t now)
{
    int max = atomic_load_explicit(&s_max_spinners, memory_order_relaxed);
    if (max < 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        max = cpus > 1 ? (int)cpus - 1 : 0;
        atomic_store(&s_max_spinners, max);
    }
    if (max == 0 || s_busy(now) > max) {
        return false;
    }
    int cur = atomic_load_explicit(&s_spinners, memory_order_relaxed);
    while (cur < max) {
        if (atomic_compare_exchange_weak(&s_spinners, &cur, cur + 1)) {
            return true;
        }
    }
    return false;
}

int actor_poll(actor_idle *w, zmq_pollitem_t *items, int n, long timeout_ms)
{
    uint64_t now = actor_now_us();
    int rc = 0;
    if (w->spin_us > 0 && now - w->busy_us < 1000 && s_spin_slot(now)) {
        uint64_t end = now + w->spin_us;
        do {
            rc = zmq_poll(items, n, 0);
        } while (rc == 0 && actor_now_us() < end);
        atomic_fetch_sub(&s_spinners, 1);
    }
    if (rc == 0) {
        rc = zmq_poll(items, n, timeout_ms);
    }
    if (rc > 0) {
        w->busy_us = actor_now_us();
    }
    return rc;
}

uint64_t actor_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t actor_now_ms(void)
{
    return actor_now_us() / 1000u;
}
