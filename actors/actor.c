/* actor.c - the actor primitive: thread, named, with an inproc PULL
 * mailbox, a start handshake and a STOP message (see actor.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "actors/actor.h"

const char *actor_msg_name(int type)
{
    static const char *const names[] = {
#define X_(name) #name,
        ACTOR_MSGS(X_)
#undef X_
    };
    return type >= 0 && type < AM__COUNT ? names[type] : "UNKNOWN";
}

static void *s_main(void *p)
{
    actor *a = p;
    pthread_setname_np(pthread_self(), a->name);
    a->mailbox = zmq_socket(a->zctx, ZMQ_PULL);
    int hwm = 0, linger = 0;
    zmq_setsockopt(a->mailbox, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(a->mailbox, ZMQ_LINGER, &linger, sizeof linger);
    int rv = zmq_bind(a->mailbox, a->endpoint);
    pthread_mutex_lock(&a->lock);
    a->ready = true;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    if (rv == 0) {
        a->body(a, a->arg);
    }
    zmq_close(a->mailbox);
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
    pthread_mutex_unlock(&a->lock);
    a->running = true;
    return 0;
}

void actor_stop(actor *a)
{
    if (!a->running) {
        return;
    }
    void *push = actor_connect(a->zctx, a->endpoint);
    amsg m;
    memset(&m, 0, sizeof m);
    m.type = AM_STOP;
    actor_send(push, &m);
    zmq_close(push);
    pthread_join(a->thread, NULL);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    a->running = false;
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
    /* A PUSH socket blocks in zmq_send() while it has no peer, which is
     * the case for good once the receiving actor closed its mailbox (a
     * state machine reporting to a core that already stopped): never wait
     * for one. With an unlimited queue, EAGAIN means exactly that. */
    if (zmq_send(push, m, sizeof(*m), ZMQ_DONTWAIT) == (int)sizeof(*m)) {
        return 0;
    }
    return ZRAFT_ESHUTDOWN;
}

int actor_recv(void *pull, amsg *m, int flags)
{
    int n = zmq_recv(pull, m, sizeof(*m), flags);
    if (n < 0) {
        return zmq_errno() == EAGAIN ? 0 : -1;
    }
    return n == (int)sizeof(*m) ? 1 : -1;
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
