/* http.h - zraftd's HTTP/JSON API (libmicrohttpd, a thread per connection).
 *
 * The API is served over a backend: a struct of blocking calls into the
 * node (the daemon wires it to libzraft). Handlers run on libmicrohttpd's
 * connection threads and may block; the node's own threads never do.
 *
 *   PUT    /kv/{key}                 body = value      -> 204
 *   GET    /kv/{key}[?consistency=stale]               -> 200 value | 404
 *   DELETE /kv/{key}                                   -> 204
 *   GET    /cluster/status                             -> 200 JSON
 *   POST   /cluster/learners    {"id","raft_addr","http_addr"}
 *   POST   /cluster/membership  {"voters":[...]}
 *   POST   /cluster/transfer-leader {"to":N}
 *   POST   /cluster/snapshot
 *   GET    /metrics (Prometheus text)
 *   GET    /healthz   200 "ok", or 503 JSON when the node stopped on a
 *                     fatal error (full disk, I/O error, state machine)
 *
 * On a node that is not the leader: 307 to the same path on the leader's
 * HTTP address. While no leader (or no leader address) is known, a request
 * waits for one up to leader_wait_ms (or ?timeout=ms), then answers 503 with
 * Retry-After. Errors are JSON: {"error":"...","code":"ENOTLEADER"}. */
#ifndef ZRAFT_SERVER_HTTP_H
#define ZRAFT_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zraft_types.h"

typedef struct {
    void *ctx;
    /* Replicates a KV command (kv_encode) and waits until it is applied on
     * this (leader) node. 0 or ZRAFT_E*. */
    int (*write)(void *ctx, uint8_t op, const char *key, size_t klen,
                 const void *val, size_t vlen);
    /* Reads a key: linearizable (read-index) unless `stale`. On success
     * *val is a reference the caller unrefs. ZRAFT_ENOTFOUND if absent. */
    int (*read)(void *ctx, bool stale, const char *key, size_t klen,
                zraft_buf **val, size_t *off, size_t *len);
    /* The leader's HTTP address ("host:port"); ZRAFT_ENOTFOUND if unknown
     * (or ZRAFT_EINVAL if this node is the leader). */
    int (*leader_http)(void *ctx, char *out, size_t cap);
    /* malloc'ed JSON / Prometheus text; the caller frees. */
    char *(*status_json)(void *ctx);
    char *(*metrics_text)(void *ctx);
    int (*add_learner)(void *ctx, uint64_t id, const char *raft_addr,
                       const char *http_addr);
    int (*change_membership)(void *ctx, const uint64_t *voters, size_t n);
    int (*transfer_leader)(void *ctx, uint64_t to);
    int (*snapshot)(void *ctx);
    /* 0 while the node works; else the error that stopped it (storage or
     * state machine failure), which /healthz reports with 503. */
    int (*health)(void *ctx);
    /* Waits up to timeout_ms until a leader is known: 1 when this node
     * leads, 0 when another node does and its HTTP address is known,
     * ZRAFT_ETIMEDOUT. NULL: requests never wait. */
    int (*wait_leader)(void *ctx, uint32_t timeout_ms);
    /* How long a request that finds no leader waits for one (?timeout=ms
     * overrides it per request, up to 60 s). */
    uint32_t leader_wait_ms;
} http_backend;

typedef struct http_server http_server;

/* Starts serving on `addr` ("host:port"; port 0 picks one). The backend is
 * borrowed until http_stop. Caller owns the return value; NULL with a
 * message in `why` on failure. */
http_server *http_start(const char *addr, const http_backend *b,
                        size_t max_body, char *why, size_t whylen);
/* The port actually bound. */
uint16_t http_port(const http_server *s);
/* Stops accepting, lets in-flight requests finish, frees (NULL-safe). */
void http_stop(http_server **s);

#endif
