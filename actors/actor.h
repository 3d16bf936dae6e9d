/* actor.h - a thread with an inproc mailbox (czmq's actor pattern).
 *
 * actor_start() creates the thread, which names itself, binds its PULL
 * mailbox and signals ready before actor_start() returns (the start
 * handshake). The body receives amsg envelopes until AM_STOP; actor_stop()
 * sends AM_STOP from the calling thread (over a socket of its own) and
 * joins. Senders connect their own PUSH socket with actor_connect(): a
 * ZeroMQ socket is never shared between threads. */
#ifndef ZRAFT_ACTORS_ACTOR_H
#define ZRAFT_ACTORS_ACTOR_H

#include <pthread.h>
#include <stdbool.h>

#include "actors/msg.h"

typedef struct actor actor;
typedef void (*actor_body)(actor *a, void *arg);

struct actor {
    pthread_t thread;
    void *zctx;
    char name[16];     /* thread name, 15 characters at most */
    char endpoint[96]; /* inproc://... */
    void *mailbox;     /* PULL, owned by the actor's thread */
    actor_body body;
    void *arg;
    bool running;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ready;
};

/* Starts `body(a, arg)` on a new thread named `name`, with its mailbox at
 * `endpoint`. Returns once the mailbox is bound. ZRAFT_ENOMEM. */
int actor_start(actor *a, void *zctx, const char *name, const char *endpoint,
                actor_body body, void *arg);
/* Sends STOP and joins (no-op if not running). */
void actor_stop(actor *a);

/* A PUSH socket connected to `endpoint`, for the calling thread only. */
void *actor_connect(void *zctx, const char *endpoint);
/* Sends an envelope without ever blocking: the inproc queue has no limit
 * (SNDHWM 0), and a send to an actor that has stopped (its mailbox is
 * closed, so the PUSH has no peer) fails at once instead of waiting for one.
 * 0, or ZRAFT_ESHUTDOWN when the receiver is gone (the envelope was not
 * sent: the caller still owns what it points to). */
int actor_send(void *push, const amsg *m);
/* Receives one envelope: 1, 0 if none ready (flags ZMQ_DONTWAIT), -1. */
int actor_recv(void *pull, amsg *m, int flags);

/* Monotonic milliseconds. */
uint64_t actor_now_ms(void);
uint64_t actor_now_us(void);

#endif
