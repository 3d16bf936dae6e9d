/* actor.h - a thread with an inproc mailbox (czmq's actor pattern).
 *
 * actor_start() creates the thread, which names itself, binds its PULL
 * mailbox and signals ready before actor_start() returns (the start
 * handshake). The body receives amsg envelopes until AM_STOP; actor_stop()
 * sends AM_STOP from the calling thread (over a socket of its own) and
 * joins. Senders connect their own PUSH socket with actor_connect(): a
 * ZeroMQ socket is never shared between threads, except that the mailbox
 * passes to the thread that joined its actor (actor_close).
 *
 * Stopping is two steps so that nothing sent between actors is lost or
 * leaked and no send ever waits: after actor_stop() the mailbox stays open
 * and keeps queueing what other actors still send; actor_close(), once
 * every actor that could send to it is stopped too, releases what is left
 * (amsg_release: owned memory freed, callbacks answered ZRAFT_ESHUTDOWN)
 * and closes it. */
#ifndef ZRAFT_ACTORS_ACTOR_H
#define ZRAFT_ACTORS_ACTOR_H

#include <pthread.h>
#include <stdbool.h>
#include <zmq.h>

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
    bool running; /* thread started and not joined */
    bool open;    /* mailbox bound and not closed */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ready;
    bool bound;
};

/* Starts `body(a, arg)` on a new thread named `name`, with its mailbox at
 * `endpoint`. Returns once the mailbox is bound. ZRAFT_ENOMEM (no thread),
 * ZRAFT_EIO (the mailbox could not be bound; no thread is left running). */
int actor_start(actor *a, void *zctx, const char *name, const char *endpoint,
                actor_body body, void *arg);
/* Sends STOP and joins (no-op if not running). The mailbox stays open. */
void actor_stop(actor *a);
/* Sends STOP on `push` (0, or ZRAFT_ESHUTDOWN as actor_send()). */
int actor_send_stop(void *push);
/* Joins an actor its owner sent STOP itself, on the socket it sends
 * everything else on, so that STOP comes after all of it (the mailbox
 * takes its inbound sockets in turn: actor_stop()'s STOP, from a socket of
 * its own, can overtake what is queued). No-op if not running. */
void actor_join(actor *a);
/* Stops if running, then releases every message left in the mailbox
 * (amsg_release) and closes it. Call it once no other actor can send to
 * this one any more. Idempotent. */
void actor_close(actor *a);

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

/* An actor's idle policy: spin before sleeping (zraft_config.spin_us). */
typedef struct {
    uint32_t spin_us; /* 0: never spin */
    uint64_t busy_us; /* when the last poll found something */
} actor_idle;

/* zmq_poll(items, n, timeout_ms), but if the last poll through `w` found
 * something less than a millisecond ago, first polls without waiting for
 * up to w->spin_us (if fewer than CPUs - 1 threads of the process spin).
 * Returns what zmq_poll returns. */
int actor_poll(actor_idle *w, zmq_pollitem_t *items, int n, long timeout_ms);

/* A number never returned before in this process, for inproc endpoint
 * names: ZeroMQ frees a closed socket's name asynchronously (its reaper
 * thread), so reusing a name at once can fail to bind. */
uint64_t actor_endpoint_seq(void);

/* Monotonic milliseconds. */
uint64_t actor_now_ms(void);
uint64_t actor_now_us(void);

#endif
