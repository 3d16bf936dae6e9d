/* resp_int.h - what the two halves of zraftd's RESP port share: resp_cmd.c
 * (the commands: arguments in, what to ask the node, replies out) and
 * resp.c (the event loop: connections, order, calls to the node,
 * completions, leader waits, time-outs, start and shutdown). Internal to
 * server/. Everything here belongs to the loop thread, except what
 * resp_op.complete touches (resp.c says what). */
#ifndef ZRAFT_SERVER_RESP_INT_H
#define ZRAFT_SERVER_RESP_INT_H

#include "resp.h"
#include "resp_proto.h"

typedef struct resp_pend resp_pend;
typedef struct resp_req resp_req;
typedef struct resp_conn resp_conn;

/* What a command needs: nothing (answered at once), a write, a read. */
enum { RC_LOCAL, RC_WRITE, RC_READ };

/* The commands that need the node. */
enum { RQ_SET, RQ_MSET, RQ_DEL, RQ_INCR, RQ_GET, RQ_MGET, RQ_EXISTS };

/* A call to the node in flight: one write, or one read barrier shared by
 * the reads of a loop turn. */
enum { P_WRITE, P_BARRIER };

struct resp_pend {
    resp_op op; /* first: &op is the call */
    int type;
    resp_server *server;
    resp_pend *qnext;       /* completion queue (s->qlock) */
    resp_pend *prev, *next; /* s->pending, oldest first (time-outs) */
    uint64_t deadline;      /* ms */
    bool timed_out;         /* its commands were answered already */
    resp_req *reads;        /* P_BARRIER: the reads it serves (rnext) */
};

struct resp_req {
    resp_pend p;     /* RC_WRITE: the call (first) */
    resp_conn *c;    /* NULL once answered while its call is in flight */
    resp_req *next;  /* the connection's commands, in order */
    resp_req *rnext; /* the barrier's reads */
    resp_req *wprev, *wnext; /* s->waiting (for a leader) */
    int cls;                 /* RC_* */
    int what;                /* RQ_*, for RC_WRITE and RC_READ */
    bool issued;             /* sent to the node (or answered) */
    bool done;               /* reply ready */
    bool in_flight;          /* its write call is outstanding */
    bool attached;           /* served by a read barrier in flight */
    bool stale;              /* RC_READ after READONLY: no barrier */
    bool quit;               /* QUIT: close once this reply is out */
    bool waited;             /* has waited for a leader */
    int leader;              /* outcome of the leader wait */
    uint64_t wait_deadline;  /* ms */
    unsigned slot;           /* the first key's hash slot (MOVED) */
    zraft_buf *cmd;          /* RC_WRITE: the kv command (kept to retry) */
    size_t nkeys;            /* RC_READ: the keys, copied */
    size_t *klen;
    char **keys;
    resp_out reply;
};

/* Classifies a parsed command into r (cls, what, cmd or keys), or answers
 * it (cls RC_LOCAL, reply filled: also for every error). Arguments are
 * borrowed for the call only: whatever r needs later is copied. May set
 * c's READONLY flag. */
void resp_cmd_prepare(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                      resp_req *r);
/* r's write completed with err 0 and the state machine's answer. */
void resp_cmd_write_reply(resp_req *r, const zraft_buf *result);
/* Performs r's read on the store (its barrier passed, or stale). */
void resp_cmd_read_reply(resp_server *s, resp_req *r);
/* An error reply for a node error (not ENOTLEADER). */
void resp_cmd_error_reply(resp_req *r, int err);

/* resp.c: the backend, and a connection's READONLY flag. */
const resp_backend *resp_backend_of(const resp_server *s);
size_t resp_max_value(const resp_server *s);
void resp_conn_set_readonly(resp_conn *c, bool on);
/* The connection may run commands: it passed AUTH, or no token is set. */
bool resp_conn_authed(const resp_conn *c);
void resp_conn_set_authed(resp_conn *c, bool on);
/* The token AUTH checks (NULL: none). */
const auth_token *resp_token(const resp_server *s);

#endif
