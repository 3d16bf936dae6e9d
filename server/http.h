/* http.h - zraftd's HTTP/JSON API: libmicrohttpd driven by a few
 * event-loop threads, no thread per connection and no blocking call on a
 * serving thread.
 *
 * The API is served over a backend: a struct of calls into the node (the
 * daemon wires it to libzraft). Writes and reads are asynchronous: the
 * backend starts them and completes them later from any thread; the
 * request's connection is suspended meanwhile. Admin calls may block; they
 * run on one admin thread of the server's own.
 *
 *   PUT    /kv/{key}                 body = value      -> 204
 *   PUT    /kv/{key}?if-match=V      body = value      -> 204 | 412 (CAS:
 *                                    stored only if the key holds V)
 *   GET    /kv/{key}[?consistency=stale]               -> 200 value | 404
 *   DELETE /kv/{key}                                   -> 204
 *   GET    /cluster/status                             -> 200 JSON
 *   POST   /cluster/learners    {"id","raft_addr","http_addr"[,"key"]}
 *   POST   /cluster/membership  {"voters":[...]}
 *   POST   /cluster/transfer-leader {"to":N}
 *   POST   /cluster/snapshot
 *   GET    /metrics (Prometheus text)
 *   GET    / and /ui  the live cluster page (ui/cluster.html, embedded)
 *   GET    /healthz   200 "ok", or 503 JSON when the node stopped on a
 *                     fatal error (full disk, I/O error, state machine)
 *
 * On a node that is not the leader: 307 to the same path on the leader's
 * HTTP address. While no leader (or no leader address) is known, a request
 * waits for one up to leader_wait_ms (or ?timeout=ms), then answers 503 with
 * Retry-After. /cluster/status and /metrics answer any origin
 * (Access-Control-Allow-Origin: *): the cluster page polls every node from
 * the one that served it. A write or read the node has not completed within
 * op_timeout_ms answers 504 (it may still take effect). Errors are JSON:
 * {"error":"...","code":"ENOTLEADER"}. Keep-alive and HTTP/1.1 pipelining
 * work; the requests of one connection are answered in order. */
#ifndef ZRAFT_SERVER_HTTP_H
#define ZRAFT_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "zraft_types.h"

/* How often a request waiting for a leader asks the backend again. */
#define HTTP_LEADER_POLL_MS 5

typedef struct http_op http_op;

/* One asynchronous backend call, a KV write or read. The server owns it;
 * the backend borrows it from the call until it calls op->complete(op). */
struct http_op {
    /* Reads: the key (borrowed until complete) and whether a stale read
     * (this node's state, no read-index) is fine. */
    const char *key;
    size_t klen;
    bool stale;
    /* Set by the backend before complete(): 0 or ZRAFT_E* (reads:
     * ZRAFT_ENOTFOUND when absent); a read that found the key sets `val`
     * to a reference the server takes over, the value being val->data +
     * off, len bytes. */
    int err;
    zraft_buf *val;
    size_t off, len;
    /* Set by the backend for a write whose command was a CAS that found
     * another value (or none): applied, nothing changed. */
    bool mismatch;
    /* The server's completion: call it exactly once, from any thread,
     * possibly before the backend call returns. */
    void (*complete)(http_op *op);
};

typedef struct {
    void *ctx;
    /* Replicates a KV command (kv_encode) and completes `op` once it is
     * applied on this (leader) node. Takes ownership of `cmd` on success.
     * Never blocks. 0: op->complete will run; ZRAFT_E*: it never runs. */
    int (*write)(void *ctx, zraft_buf *cmd, http_op *op);
    /* Reads op->key, linearizable (read-index) unless op->stale; same
     * contract as write. */
    int (*read)(void *ctx, http_op *op);
    /* Non-blocking: 1 when this node leads, 0 when another node does and
     * its HTTP address is known, ZRAFT_ENOTFOUND while none is, any other
     * error when none will be (waiting requests give up at once). Polled
     * every HTTP_LEADER_POLL_MS, on a serving thread, while a request waits
     * for a leader. NULL: requests never wait. */
    int (*leader_known)(void *ctx);
    /* Optional (NULL: none). Called with true before a serving thread
     * handles a round of events and with false after it (same thread, no
     * blocking in between): the backend may hold the wake-ups of the calls
     * made meanwhile and send one at the end (zraft_batch_begin/end). */
    void (*batch)(void *ctx, bool begin);
    /* Non-blocking. The leader's HTTP address ("host:port");
     * ZRAFT_ENOTFOUND if unknown (or ZRAFT_EINVAL if this node leads). */
    int (*leader_http)(void *ctx, char *out, size_t cap);
    /* Non-blocking. malloc'ed JSON / Prometheus text; the caller frees. */
    char *(*status_json)(void *ctx);
    char *(*metrics_text)(void *ctx);
    /* Non-blocking. 0 while the node works; else the error that stopped it
     * (storage or state machine failure), which /healthz reports as 503. */
    int (*health)(void *ctx);
    /* Admin calls; they may block (the admin thread runs one at a time). */
    /* `key`: the learner's CurveZMQ public key (Z85), NULL if none given. */
    int (*add_learner)(void *ctx, uint64_t id, const char *raft_addr,
                       const char *http_addr, const char *key);
    int (*change_membership)(void *ctx, const uint64_t *voters, size_t n);
    int (*transfer_leader)(void *ctx, uint64_t to);
    int (*snapshot)(void *ctx);
    /* How long a request that finds no leader waits for one (?timeout=ms
     * overrides it per request, up to 60 s). */
    uint32_t leader_wait_ms;
    /* write and read forward to the leader from a follower (zraftd's
     * forward_writes), and so wait for a leader themselves, up to the
     * node's leader_wait_ms: their ENOTLEADER comes after that wait, and
     * the server answers it at once (307 if a leader's address is known by
     * then, else 503) instead of waiting a second time. ?timeout=ms does
     * not apply to them. */
    bool backend_waits;
    /* How long a write or read may stay with the node before its request
     * answers 504 (0: 10 s). */
    uint32_t op_timeout_ms;
} http_backend;

/* HTTPS and bearer tokens (http_sec.c). Everything is borrowed until
 * http_stop(). A request to /kv/... must carry "Authorization: Bearer
 * <api token>", one to /cluster/... the admin token, when that token is
 * set; otherwise it answers 401 with a JSON error and WWW-Authenticate.
 * /healthz and /metrics are always open (they carry no data and change
 * nothing; a load balancer and a scraper reach them without secrets). */
typedef struct {
    const auth_token *api;   /* NULL or empty: /kv is open */
    const auth_token *admin; /* NULL or empty: /cluster/... is open */
    /* PEM text. With cert and key the port speaks HTTPS only. With ca as
     * well, a request must come with a client certificate that ca signed
     * (403 otherwise; /healthz excepted). */
    const char *tls_cert, *tls_key, *tls_ca;
} http_security;

typedef struct {
    size_t max_body;          /* largest accepted body (413 above) */
    uint32_t threads;         /* serving threads (0: 1) */
    uint32_t max_connections; /* open connections, all threads (0: 16384) */
    const http_security *sec; /* NULL: plain HTTP, no tokens */
} http_options;

typedef struct http_server http_server;

/* Starts serving on `addr` ("host:port"; port 0 picks one). The backend is
 * borrowed until http_stop. Caller owns the return value; NULL with a
 * message in `why` on failure. */
http_server *http_start(const char *addr, const http_backend *b,
                        const http_options *o, char *why, size_t whylen);
/* The port actually bound. */
uint16_t http_port(const http_server *s);
/* Stops taking requests: the listening socket closes, requests that arrive
 * on open connections answer 503 (and close them), requests waiting for a
 * leader answer 503 at once. Returns once no backend call is running or
 * will start, after waiting up to wait_ms for the writes and reads in
 * flight to complete. Idempotent. */
void http_drain(http_server *s, uint32_t wait_ms);
/* Drains, waits until every write and read in flight has completed (the
 * caller sees to it, e.g. by destroying the node, which completes them with
 * ZRAFT_ESHUTDOWN), stops the threads and frees (NULL-safe, nulls *s). */
void http_stop(http_server **s);

#endif
