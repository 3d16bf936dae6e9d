/* snapsend.h - the sending half of a snapshot transfer: a bounded window of
 * chunks in flight over an rpc_conn, acknowledged chunk by chunk by the
 * receiver (SNAPSHOT_ACK, docs/wire.md) and resumed from the receiver's
 * offset after a reconnect or a loss.
 *
 * A replication stream owns one and drives it from its poll loop: each
 * turn it feeds the acknowledgements it received (snapsend_ack), lets the
 * clock run (snapsend_tick) and sends what the window allows
 * (snapsend_pump), so that one turn never sends more than a window and the
 * stream keeps answering its mailbox (heartbeats, STOP) while a large
 * snapshot goes out. The snapshot's bytes are read from its buffer chunk by
 * chunk; the pages of a mapped buffer (ZRAFT_BUF_MAPPED, a file) are
 * dropped once the receiver holds them, so the sender never holds the
 * snapshot in memory either.
 *
 * States: IDLE; SENDING (bytes left to send or to be acknowledged); SENT
 * (the receiver holds every byte and hands the snapshot to its engine,
 * whose MSG_SNAPSHOT_RESP follows once the install is durable; the owner
 * goes back to IDLE when that reply arrives).
 *
 * Recovery rules:
 *  - an acknowledgement that moves `acked` forward is progress;
 *  - a refused chunk (the receiver has a gap at `next`, or lost the transfer
 *    and says 0) rewinds the send position to `next`, once per gap: the
 *    refusals of the other chunks already in flight say the same;
 *  - a reconnect (snapsend_reconnected) loses what was in flight: the send
 *    position goes back to `acked`;
 *  - no progress for `stall_ms` while chunks are in flight resends from
 *    `acked` (lost chunks or lost acks);
 *  - an aborted transfer, or an encoding error, stops it (the owner tells
 *    the core, which asks again later).
 * Without acknowledgements (a peer that speaks wire version 1), chunks
 * count as acknowledged when sent: one window per turn, no resume.
 *
 * Threads: one snapsend belongs to one thread (its stream's). */
#ifndef ZRAFT_TRANSPORT_SNAPSEND_H
#define ZRAFT_TRANSPORT_SNAPSEND_H

#include "transport/rpc.h"

enum { SNAPSEND_IDLE = 0, SNAPSEND_SENDING, SNAPSEND_SENT };

typedef struct {
    /* Set by snapsend_init(), from the rpc_ctx. */
    uint32_t chunk;  /* bytes per chunk */
    uint64_t window; /* bytes sent and not acknowledged, at most */
    bool acks;       /* the receiver acknowledges (wire version >= 2) */

    /* The transfer. */
    int state;          /* SNAPSEND_* */
    msg head;           /* MSG_SNAPSHOT header: from, to, term, meta */
    snapshot_meta meta; /* what head.u.snapshot.meta points at */
    zraft_buf *data;    /* SENDING: owned reference */
    uint64_t id;        /* snapshot id on the wire */
    uint64_t total;
    uint64_t next;     /* next byte to send (acked <= next <= total) */
    bool sent_last;    /* the last chunk went out since the last rewind */
    uint64_t acked;    /* the receiver holds [0, acked) */
    uint64_t high;     /* highest byte sent in this transfer */
    uint64_t gap;      /* the offset last rewound to on a refusal
                          (UINT64_MAX: none since the last progress) */
    uint64_t moved_ms; /* last progress (or the start) */
    uint64_t retry_ms; /* last resend after a stall (or the start) */
    uint64_t done_ms;  /* SENT: when the last byte was acknowledged */

    /* Statistics, over every transfer. */
    uint64_t bytes_sent; /* chunk bytes handed to the socket */
    uint64_t resent;     /* ... of which were sent before */
    uint64_t started;    /* transfers started */
} snapsend;

/* An idle sender with the chunk size and window of `c` (defaults: 1 MiB,
 * 4 chunks). */
void snapsend_init(snapsend *x, const rpc_ctx *c);
/* Drops any transfer (and its data reference): IDLE. Idempotent. */
void snapsend_stop(snapsend *x);

/* Starts sending snapshot `meta` / `data` (takes a reference to data) from
 * `from` to `to` in leader term `term`, as transfer `id` (a new id per
 * transfer: the receiver keys what it holds by (term, id)). Any previous
 * transfer is dropped. */
void snapsend_start(snapsend *x, zraft_id from, zraft_id to, uint64_t term,
                    const snapshot_meta *meta, zraft_buf *data, uint64_t id,
                    uint64_t now_ms);

/* True when a chunk may be sent now (SENDING, bytes left, window open). */
bool snapsend_can_send(const snapsend *x);
/* Sends chunks while snapsend_can_send(), at most one window. 0 (sent what
 * it could), ZRAFT_EAGAIN (the socket took no more: no peer connected or
 * its queue is full; retry later), or an encoding error (the transfer is
 * stopped). */
int snapsend_pump(snapsend *x, rpc_conn *k, uint64_t now_ms);

/* Feeds an acknowledgement received in term `term` (the ack frame's
 * header); acks of another transfer are ignored. Returns 0, 1 when the
 * receiver now holds every byte (SENT; the data reference is dropped), or
 * ZRAFT_EUNAVAILABLE when the receiver aborted the transfer (stopped). */
int snapsend_ack(snapsend *x, uint64_t term, const codec_ack *a,
                 uint64_t now_ms);
/* What was in flight on the connection is lost (it was replaced). */
void snapsend_reconnected(snapsend *x);
/* Resends from the acknowledged offset when nothing moved for `stall_ms`
 * while chunks were in flight. */
void snapsend_tick(snapsend *x, uint64_t now_ms, uint64_t stall_ms);

#endif /* ZRAFT_TRANSPORT_SNAPSEND_H */
