/* msg.h - every message that crosses a thread inside a node: the one list
 * (X-macro: enum + names for logs), and the envelope that carries them over
 * the actors' ZeroMQ inproc mailboxes.
 *
 * Envelopes are small and copied; bulk data never is: entries travel as
 * arrays of zraft_entry whose payloads are zraft_buf references, snapshots
 * as a meta pointer plus a data reference. Whoever receives an envelope owns
 * what it points to (and drops the references when done). */
#ifndef ZRAFT_ACTORS_MSG_H
#define ZRAFT_ACTORS_MSG_H

#include "core/engine.h"
#include "core/tsan.h"
#include "zraft.h"

#define ACTOR_MSGS(X)                                                          \
    X(STOP)             /* any actor: finish and exit */                       \
    X(LOG_IO)           /* core -> log: one storage command, io_seq order */   \
    X(LOG_FLUSHED)      /* log -> core: ops up to seq are durable (or err) */  \
    X(REPL_UPDATE)      /* core -> repl: UpdateReplication (prev, last] */     \
    X(REPL_SEND)        /* core -> repl: send this message (heartbeat) */      \
    X(REPL_SNAPSHOT)    /* core -> repl: send the latest snapshot */           \
    X(REPL_MATCHED)     /* repl -> core: UpdateReplicationMatched + vote */    \
    X(REPL_UNREACHABLE) /* repl -> core: could not send or read entries */     \
    X(SM_APPLY)         /* core -> sm: apply up to index; client callbacks */  \
    X(SM_APPLIED)       /* sm -> core: failed, or installed (sm.c) */          \
    X(SM_BUILD)         /* core -> sm: build a snapshot */                     \
    X(SM_BUILT)         /* sm -> core: snapshot built (meta) or failed */      \
    X(SM_INSTALL)       /* core -> sm: replace the state by a snapshot */      \
    X(SM_READ)          /* core -> sm: answer a read once applied >= index */  \
    X(SM_FAIL)          /* core -> sm: fail these client callbacks */

enum {
#define X_(name) AM_##name,
    ACTOR_MSGS(X_)
#undef X_
        AM__COUNT
};

const char *actor_msg_name(int type);

/* A client write waiting for its entry to be applied. */
typedef struct {
    zraft_log_id id;
    zraft_write_cb cb;
    void *arg;
} pending_write;

typedef struct {
    uint32_t type;
#if ZRAFT_TSAN_ON
    void *tsan_token; /* TSan builds only: actor_send/actor_recv */
#endif
    union {
        struct {
            command cmd;         /* as emitted (borrowed pointers cleared) */
            zraft_entry *ents;   /* APPEND: owned array, payload refs */
            snapshot_meta *meta; /* INSTALL: owned */
            zraft_buf *data;     /* INSTALL: owned ref */
            uint64_t committed;  /* SAVE_VOTE: commit index to persist */
        } log_io;
        struct {
            uint64_t seq;
            int err;
        } flushed;
        struct {
            uint64_t term;
            zraft_log_id prev;
            uint64_t last;
            uint64_t commit;
        } repl_update;
        struct {
            msg m; /* no entries */
        } repl_send;
        struct {
            uint64_t term;
        } repl_snapshot;
        struct {
            zraft_id target;
            uint64_t vote_term; /* the term the request was sent under */
            msg resp;           /* no entries */
        } matched;
        struct {
            zraft_id target;
            uint64_t vote_term;
            int err;
        } unreachable;
        struct {
            uint64_t upto;
            pending_write *writes; /* owned, sorted by index */
            size_t n;
        } sm_apply;
        struct {
            uint64_t index;
            int err; /* the state machine failed: the node stops */
        } sm_applied;
        struct {
            snapshot_meta *meta; /* owned (NULL on error) */
            int err;
        } sm_built;
        struct {
            snapshot_meta *meta; /* owned */
            zraft_buf *data;     /* owned ref */
        } sm_install;
        struct {
            uint64_t index;
            int err;
            zraft_read_cb cb;
            void *arg;
        } sm_read;
        struct {
            pending_write *writes; /* owned */
            size_t n;
            int err;
        } sm_fail;
    } u;
} amsg;

/* Releases what an envelope that will never be handled owns: references
 * and arrays freed, client callbacks answered with ZRAFT_ESHUTDOWN (on the
 * calling thread), admin waiters completed. Used by actor_close(). */
void amsg_release(amsg *m);

#endif
