/* rpc.h - Raft RPCs over ZeroMQ: one ROUTER per node for inbound requests,
 * one DEALER per outbound connection (a replication stream's, or the core's
 * vote/timeout-now sender). Replies travel back on the requester's DEALER.
 *
 * The same code serves both transports: the in-process one (endpoints
 * inproc://zraft-<net>-<id>, faults from a zraft_network applied on
 * receipt) and ZeroMQ TCP (endpoints from the members' addresses). Frames
 * are the wire codec's (transport/codec.h) in both cases.
 *
 * Each rpc_server / rpc_conn belongs to the thread that created it: it owns
 * a ZeroMQ socket. Sends never block: when a peer is slow or gone and the
 * high-water mark is reached, the frame is dropped (Raft retries). */
#ifndef ZRAFT_TRANSPORT_RPC_H
#define ZRAFT_TRANSPORT_RPC_H

#include <limits.h>

#include "core/engine.h"
#include "transport/codec.h"
#include "transport/curve.h"
#include "transport/resolver.h"
#include "zraft.h"

/* Which DEALER of a node a reply goes to. */
enum { RPC_KIND_REPL = 'r', RPC_KIND_VOTE = 'v', RPC_KIND_FWD = 'f' };

typedef struct {
    codec_ctx codec;
    zraft_network *net; /* NULL: TCP */
    zraft_id self;
    uint32_t snapshot_chunk;    /* bytes per snapshot chunk */
    uint64_t snapshot_window;   /* snapshot bytes sent and not acknowledged,
                                   at most (per transfer) */
    resolver *res;              /* TCP: peer host names (NULL: inproc) */
    curve_auth *auth;           /* TCP with CURVE: keys and admission
                                   (NULL: plain TCP, transport/curve.h) */
    char scratch_dir[PATH_MAX]; /* where received snapshots are written */
    /* Wire version 4: AppendEntries payloads and snapshot chunks of at
     * least this many bytes are sent by reference, each as a message part
     * of its own (rpc.c), in process only. 0: the measured default,
     * RPC_ZEROCOPY_INPROC_MIN. Over TCP frames are always one copied part:
     * libzmq's per-part cost exceeded the copy at every size measured, and
     * libzmq 4.3.4 can abort when a connection ends in the middle of a
     * multipart message (docs/wire.md, Zero copy). */
    uint32_t zerocopy_send_min;
} rpc_ctx;

/* Default zerocopy_send_min of the in-process network (measured). */
#define RPC_ZEROCOPY_INPROC_MIN 1024

/* The endpoint node `id` binds: inproc name for an in-process network, else
 * "tcp://" + addr. `out` has ZRAFT_ADDR_MAX + 32 bytes. */
void rpc_endpoint(const rpc_ctx *c, zraft_id id, const char *addr, char *out,
                  size_t cap);
/* The endpoint to connect to peer `id` at `addr`: its inproc name, or for
 * TCP "tcp://IP:port" from c->res, so that ZeroMQ never blocks its I/O
 * thread on a name server. 0, or (resolver_endpoint) ZRAFT_EAGAIN /
 * ZRAFT_ENOTFOUND while the name has no address yet (ask again later),
 * ZRAFT_EINVAL. `refresh`: the peer stopped answering, look its name up
 * again. */
int rpc_peer_endpoint(const rpc_ctx *c, zraft_id id, const char *addr,
                      bool refresh, char *out, size_t cap);

/* ---- in-process network faults (rpc.c keeps the table) */
/* True if a frame from `from` to `to` may be delivered now; *delay_ms is the
 * configured delay (0: none). */
bool rpc_net_allow(zraft_network *n, zraft_id from, zraft_id to,
                   uint32_t *delay_ms);

/* The ZeroMQ context every node of an in-process network shares. */
void *rpc_net_zctx(zraft_network *n);

typedef struct rpc_server rpc_server;
typedef struct rpc_conn rpc_conn;

/* Binds the node's ROUTER on `endpoint` (a CURVE server when c->auth is
 * set: every frame's sender must then be the member whose key the
 * connection authenticated with, or it is dropped). NULL on failure
 * (errno-style reason in *why). */
rpc_server *rpc_server_new(void *zctx, const rpc_ctx *c, const char *endpoint,
                           const char **why);
void rpc_server_destroy(rpc_server **s);
void *rpc_server_socket(rpc_server *s);
/* Receives one request if one is ready (non-blocking): 1 and *out filled
 * (release with codec_msg_release), 0 if nothing is ready (or the frame was
 * dropped: malformed, faulted, a snapshot chunk). `now_ms` orders delayed
 * frames.
 *
 * Snapshot chunks never come out one by one: each is written at its offset
 * into a file in c->scratch_dir (unnamed, or unlinked at once) and answered
 * at once with a SNAPSHOT_ACK to the sender's stream (docs/wire.md); the
 * transfer in progress is kept across the sender's reconnects, so it
 * resumes where the acks say. When the last chunk arrives, the file is
 * mapped and comes out as one MSG_SNAPSHOT whose data (owned by *out) is
 * that mapping (ZRAFT_BUF_MAPPED): the snapshot is never held in memory. */
int rpc_server_recv(rpc_server *s, msg *out, uint64_t now_ms);
/* Next time a delayed frame becomes due (UINT64_MAX: none). */
uint64_t rpc_server_next_due(const rpc_server *s);
/* Sends a reply (or any message) to the DEALER of kind `kind` of m->to. */
int rpc_server_send(rpc_server *s, const msg *m, int kind);
/* Forwarding (codec.h, CODEC_MSG_FORWARD[_REPLY]): sends a frame of `n`
 * items with header `m` to the DEALER of kind RPC_KIND_FWD of m->to.
 * Errors as rpc_server_send() and codec_encode_fwd(). */
int rpc_server_send_fwd(rpc_server *s, const msg *m, const codec_fwd *items,
                        uint32_t n);
/* The items of the FORWARD[_REPLY] rpc_server_recv() just returned;
 * borrowed until the next rpc_server_recv(). */
const codec_fwd *rpc_server_fwd(const rpc_server *s, uint32_t *n);
/* Frames dropped for being malformed (and their last reason). */
uint64_t rpc_server_rejected(const rpc_server *s, const char **why);

/* A DEALER from this node to `peer` at `endpoint` (a CURVE client of the
 * peer's key when c->auth is set; NULL while that key is unknown). */
rpc_conn *rpc_conn_new(void *zctx, const rpc_ctx *c, zraft_id peer,
                       const char *endpoint, int kind);
void rpc_conn_destroy(rpc_conn **c);
void *rpc_conn_socket(rpc_conn *c);
/* Sends a request (not a MSG_SNAPSHOT: ZRAFT_EINVAL, see below).
 * ZRAFT_EAGAIN when the peer's queue is full or no peer is connected
 * (nothing was sent). */
int rpc_conn_send(rpc_conn *c, const msg *m);
/* Sends one chunk `ch` of the snapshot described by the MSG_SNAPSHOT `m`
 * (its data is ignored). Errors as rpc_conn_send() and codec_encode_chunk().
 * A transfer is driven chunk by chunk by a snapsend (transport/snapsend.h),
 * never queued whole. */
int rpc_conn_send_chunk(rpc_conn *c, const msg *m, const codec_chunk *ch);
/* Sends a FORWARD[_REPLY] frame (see rpc_server_send_fwd). */
int rpc_conn_send_fwd(rpc_conn *c, const msg *m, const codec_fwd *items,
                      uint32_t n);
/* The items of the FORWARD[_REPLY] rpc_conn_recv() just returned;
 * borrowed until the next rpc_conn_recv(). */
const codec_fwd *rpc_conn_fwd(const rpc_conn *c, uint32_t *n);
/* Receives one reply if ready: 1 / 0 as rpc_server_recv. A reply of type
 * CODEC_MSG_SNAPSHOT_ACK carries its body in rpc_conn_ack(). */
int rpc_conn_recv(rpc_conn *c, msg *out, uint64_t now_ms);
/* The body of the CODEC_MSG_SNAPSHOT_ACK rpc_conn_recv() just returned;
 * borrowed until the next rpc_conn_recv(). */
const codec_ack *rpc_conn_ack(const rpc_conn *c);
uint64_t rpc_conn_next_due(const rpc_conn *c);
/* True when something was sent since the last reply (or since the
 * connection was made) and that reply is more than `timeout_ms` old: the
 * owner should replace the connection (an inproc peer that restarted is
 * not reconnected by ZeroMQ). A connection idle for longer than that is
 * stale as soon as it sends again: harmless for a stream, which sends all
 * the time, and kept for vote requests, which may go unanswered by design
 * (a node in a leader lease ignores them): with rpc_conn_unanswered(), a
 * vote connection whose last request was ignored was replaced at the next
 * campaign, and the new DEALER refused that campaign's request
 * (ZMQ_IMMEDIATE, not connected yet; the core now keeps a refused vote
 * request until the connection is up: core.c s_keep_vote). */
bool rpc_conn_stale(const rpc_conn *c, uint64_t now_ms, uint64_t timeout_ms);
/* True when the first send after the last reply (a refused send counts)
 * is more than `timeout_ms` old: every request of the connection gets an
 * answer, and one has not for that long. Unlike rpc_conn_stale(), a
 * connection idle for long and then sent two frames in a row is not
 * stale at the second (forwarding: replacing it lost the answers to the
 * first; test_rpc_conn.c). */
bool rpc_conn_unanswered(const rpc_conn *c, uint64_t now_ms,
                         uint64_t timeout_ms);

#endif
