/* resp.h - zraftd's Redis-protocol (RESP2) port: one event-loop thread
 * ("resp") serves every connection, so redis-cli, redis-benchmark and Redis
 * client libraries can use a zraft cluster.
 *
 * Commands: GET, SET key value (no options: NX, XX, EX, PX, KEEPTTL and GET
 * are refused with an error), DEL, EXISTS, MGET, MSET (one log entry),
 * INCR, INCRBY, DECR, DECRBY (applied in the state machine, so they are
 * linearizable), PING, ECHO, SELECT 0, INFO, DBSIZE, COMMAND, CONFIG GET,
 * READONLY, READWRITE, QUIT; anything else is "-ERR unknown command".
 *
 * Consistency. Writes are answered once applied on the leader. Reads are
 * linearizable (read-index on the leader; the reads of one loop turn share
 * one barrier) unless the connection sent READONLY, after which they read
 * this node's state (stale allowed) until READWRITE. The commands of one
 * connection take effect in order: a read waits for the connection's
 * earlier writes, a write for its earlier reads; pipelined writes go to the
 * node together and share log appends.
 *
 * On a follower, a write or linearizable read is forwarded to the leader
 * over the Raft transport (the backend asks the node to: Redis clients do
 * not follow redirects) and answered with the leader's answer. When the
 * node answers ENOTLEADER anyway (no forwarding: a cluster sending wire
 * version 2), it answers
 *   -MOVED <slot> <leader's RESP address>
 * (Redis Cluster's redirect: `redis-cli -c` follows it). While no leader
 * is known a command waits for one up to leader_wait_ms (in the node, and
 * again here if the node gave up), then answers -TRYAGAIN. */
#ifndef ZRAFT_SERVER_RESP_H
#define ZRAFT_SERVER_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "kv.h"

typedef struct resp_op resp_op;

/* One asynchronous backend call. The server owns it; the backend borrows
 * it from the call until it calls op->complete(op). */
struct resp_op {
    /* Set by the backend before complete(): 0 or ZRAFT_E*; for a write,
     * the state machine's answer (a reference the server takes over) or
     * NULL. */
    int err;
    zraft_buf *result;
    /* Call exactly once, from any thread (also during the call). */
    void (*complete)(resp_op *op);
};

typedef struct {
    void *ctx;
    /* The store, read directly (any thread; after a barrier for
     * linearizable reads: it only moves forward). Borrowed. */
    kv *store;
    /* Replicates `cmd` (kv_encode*) and completes once it is applied on
     * this (leader) node. Takes ownership of `cmd` on success. Never
     * blocks. 0: op->complete will run; ZRAFT_E*: it never runs. */
    int (*write)(void *ctx, zraft_buf *cmd, resp_op *op);
    /* Linearizable read barrier (read-index): completes once the store
     * reflects every write acknowledged before the call. Same contract. */
    int (*barrier)(void *ctx, resp_op *op);
    /* Non-blocking, as http_backend.leader_known: 1 this node leads, 0
     * another does and its address is known, ZRAFT_ENOTFOUND none yet,
     * another error: none will be. */
    int (*leader_known)(void *ctx);
    /* Non-blocking. The leader's RESP address ("host:port");
     * ZRAFT_ENOTFOUND if unknown. */
    int (*leader_addr)(void *ctx, char *out, size_t cap);
    /* Non-blocking. malloc'ed INFO text ("# Section\r\nkey:value\r\n"...);
     * the caller frees. */
    char *(*info)(void *ctx);
    uint32_t leader_wait_ms; /* how long a command waits for a leader */
    uint32_t op_timeout_ms;  /* a write or read not completed: -ERR (0: 10 s) */
} resp_backend;

typedef struct {
    size_t max_value;         /* longest value (and argument) accepted */
    uint32_t max_connections; /* open connections (0: 16384) */
    /* The key-value API's token (borrowed until resp_stop; NULL or empty:
     * none). When set, a connection must send AUTH <token> (or AUTH
     * default <token>) before any other command but QUIT: until then
     * they answer -NOAUTH, as Redis does with requirepass. */
    const auth_token *token;
} resp_options;

typedef struct resp_server resp_server;

/* Starts serving on `addr` ("host:port"; port 0 picks one). The backend is
 * borrowed until resp_stop. Caller owns the return value; NULL with a
 * message in `why` on failure. */
resp_server *resp_start(const char *addr, const resp_backend *b,
                        const resp_options *o, char *why, size_t whylen);
uint16_t resp_port(const resp_server *s);
/* Stops taking commands: the listening socket closes, commands not yet
 * sent to the node answer an error, waiting ones too. Returns once no
 * backend call runs or will start, after waiting up to wait_ms for those in
 * flight to complete. Idempotent. */
void resp_drain(resp_server *s, uint32_t wait_ms);
/* Drains, waits until every call in flight has completed (the caller sees
 * to it, e.g. by destroying the node), closes every connection and frees
 * (NULL-safe, nulls *s). */
void resp_stop(resp_server **s);

#endif
