/* codec.h - the binary wire format of the Raft RPCs (core/engine.h `msg`)
 * between nodes: encoder, defensive decoder, snapshot chunk assembler.
 *
 * The format (every field, its size, the versioning rules) is specified in
 * docs/wire.md. In short, one RPC is one frame, little-endian throughout:
 *
 *   header (44 bytes): magic "ZRFT" | u8 version | u8 type | u16 flags |
 *                      u64 cluster_id | u64 from | u64 to | u64 term |
 *                      u32 body_len
 *   body   (body_len bytes, layout per type)
 * Frames are neither signed nor encrypted here: peers authenticate and
 * encrypt with CurveZMQ (transport/curve.h) below the codec.
 *
 * Framing design (the one choice the transport must know about):
 *   A frame is a byte string; how it is cut into ZeroMQ message parts is up
 *   to the sender and invisible to the receiver.
 *   - codec_encode() writes it into one contiguous buffer;
 *   - codec_encode_iov() writes it as a list of segments whose concatenation
 *     is exactly the same bytes: fixed fields go into a caller's scratch
 *     buffer, while entry payloads and snapshot chunk bytes of at least
 *     codec_ctx.zerocopy_min bytes are referenced where they are (send each
 *     segment as one part of a multipart message; zmq_msg_init_data for the
 *     referenced ones, holding a payload reference until ZeroMQ frees it);
 *   - codec_decode() reads a contiguous frame, codec_decode_iov() reads the
 *     concatenation of any number of segments (the parts of a received
 *     multipart message), so both sides may cut differently.
 *   A decoded payload is a zraft_buf that the engine and the log keep by
 *   reference. It is a copy of the frame's bytes, except when it is at least
 *   codec_ctx.zerocopy_min bytes and lies within one segment, of which it
 *   is at least half, that names a buffer holding its bytes (codec_iov.buf
 *   or codec_arena.hold: the transport's received message): then it
 *   references those bytes, and keeps that buffer alive (never more than
 *   twice its own size, however long it is kept).
 *   Receivers of version 3 and older read only the first part of a message,
 *   so a frame is cut into parts only in version 4 (docs/wire.md).
 *
 * MSG_SNAPSHOT travels as chunks. A chunk frame carries the snapshot's
 * metadata, its total size, and one contiguous byte range (codec_chunk).
 * codec_encode() of a MSG_SNAPSHOT sends the whole snapshot as one final
 * chunk with snapshot id 0; codec_encode_chunk() sends any range. On the
 * receiving side a codec_assembler collects the chunks of one transfer,
 * keyed by (leader term, snapshot id), in order, into memory or into a
 * codec_sink (a file), and the receiver answers every chunk with a
 * SNAPSHOT_ACK (version 2; codec_ack): where the transfer continues. The
 * ack is the transport's own message: it never reaches the engine, and its
 * type (CODEC_MSG_SNAPSHOT_ACK) continues the numbering after msg_type.
 *
 * Versions: the decoder accepts every version from CODEC_VERSION_MIN to
 * CODEC_VERSION (a version 1 frame is a version 2 frame without the ack
 * type); the encoder writes codec_ctx.version, so that a node can keep
 * talking to peers that only know an older one (docs/wire.md, Versioning).
 *
 * Decoder contract: it never trusts the peer. Every length is checked
 * against the bytes left in the frame before it is used, counts are checked
 * against the smallest possible encoding of their items before anything is
 * allocated, and on any error the output owns nothing. Errors:
 *   ZRAFT_EMALFORMED  anything that a correct encoder of this version cannot
 *                     produce (bad magic, unknown version, type or flag,
 *                     truncated frame, trailing bytes, bad entry type,
 *                     non-contiguous or out-of-order entry ids, membership
 *                     that does not decode, inconsistent chunk, ...);
 *   ZRAFT_ETOOBIG     the frame or the entry count exceeds the ctx limits;
 *   ZRAFT_ENOTMEMBER  the frame belongs to another cluster (cluster id);
 *   ZRAFT_EINVAL      the frame is addressed to another node (ctx.self);
 *   ZRAFT_ENOMEM      out of memory.
 * codec_arena.why names the failed check (for logs and tests).
 *
 * Threads: a codec_ctx is read-only after setup and may be shared; an arena
 * and an assembler belong to one thread at a time. */
#ifndef ZRAFT_TRANSPORT_CODEC_H
#define ZRAFT_TRANSPORT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"
#include "zraft_types.h"

/* ------------------------------------------------------------ constants */

#define CODEC_MAGIC0  0x5a /* 'Z' */
#define CODEC_MAGIC1  0x52 /* 'R' */
#define CODEC_MAGIC2  0x46 /* 'F' */
#define CODEC_MAGIC3  0x54 /* 'T' */
#define CODEC_VERSION 4    /* written by default, newest decoded */
/* The first version whose receivers take a frame cut into several parts
 * (the bytes are those of version 3). */
#define CODEC_VERSION_MULTIPART 4
#define CODEC_VERSION_MIN       1 /* oldest version decoded */
#define CODEC_HEADER_LEN        44
/* Header flags: none is defined (bit 0 was an HMAC tag, replaced by
 * CurveZMQ; a frame with any flag set is refused). */
#define CODEC_FLAGS_KNOWN 0x0000u

/* The transport's acknowledgement of one snapshot chunk (version >= 2).
 * Decoded as a msg of this type (header fields only) with the body in
 * codec_arena.ack; never handed to the engine. */
#define CODEC_MSG_SNAPSHOT_ACK 10

/* Request forwarding (version >= 3, docs/wire.md): a follower sends its
 * clients' writes and read-index requests to the leader (FORWARD), which
 * answers each one (FORWARD_REPLY). Runtime messages like the ack: decoded
 * as a msg of this type (header fields only) with the items in
 * codec_arena.fwd; never handed to the engine. */
#define CODEC_MSG_FORWARD       11
#define CODEC_MSG_FORWARD_REPLY 12
enum { CODEC_FWD_WRITE = 1, CODEC_FWD_READ = 2 };
/* Smallest encoding of one item: request (id, op, length), reply (id, op,
 * flags, err, term, index, length). */
#define CODEC_FWD_MIN_LEN       13
#define CODEC_FWD_REPLY_MIN_LEN 34

/* Smallest encoding of one AppendEntries entry (term, type, length). */
#define CODEC_ENTRY_MIN_LEN 13

/* Defaults for codec_ctx limits. */
#define CODEC_DEFAULT_MAX_FRAME   (64u << 20)
#define CODEC_DEFAULT_MAX_ENTRIES 65536u

/* Default codec_ctx.zerocopy_min: payloads at least this long are
 * referenced, not copied, by codec_encode_iov() and by the decoder given
 * segments that name their buffer. Below it a copy is cheaper than a part
 * of its own (measured with zraft-bench: docs/wire.md, Zero copy). */
#ifndef CODEC_ZEROCOPY_MIN /* -D for measurements of the cut-off */
#define CODEC_ZEROCOPY_MIN 256
#endif

/* ---------------------------------------------------------------- types */

/* What both ends of a connection must agree on. Set up with
 * codec_ctx_init(), then read-only. */
typedef struct {
    uint8_t version;       /* written into every frame (CODEC_VERSION_MIN ..
                              CODEC_VERSION); decoding accepts them all */
    uint64_t cluster_id;   /* frames of another cluster are rejected */
    zraft_id self;         /* decode: reject frames whose `to` differs
                              (0: accept any destination) */
    uint32_t max_frame;    /* largest frame produced or accepted */
    uint32_t max_entries;  /* most entries in one AppendEntries */
    uint32_t zerocopy_min; /* payloads referenced, not copied, from this
                              length on (0: CODEC_ZEROCOPY_MIN) */
} codec_ctx;

/* The position of one snapshot chunk within its transfer.
 * Encode: `bytes` points at the chunk's `len` bytes (borrowed for the call);
 * `buf`, if not NULL, is the buffer that holds them (codec_encode_iov()
 * names it in the segment, so that the sender can keep it alive).
 * Decode: `bytes` points into the decoded msg's u.snapshot.data, borrowed
 * until codec_msg_release() of that msg; `buf` is NULL. */
typedef struct {
    uint64_t snapshot_id; /* sender-chosen id of the transfer */
    uint64_t total;       /* size of the whole snapshot */
    uint64_t offset;      /* position of bytes[0] within the snapshot */
    const unsigned char *bytes;
    uint32_t len;   /* bytes in this chunk */
    bool last;      /* offset + len == total */
    zraft_buf *buf; /* encode: holds `bytes` (NULL: unknown) */
} codec_chunk;

/* What a receiver says about one snapshot chunk (CODEC_MSG_SNAPSHOT_ACK).
 * The header's term is the transfer's (the chunk's), not the receiver's. */
enum {
    CODEC_ACK_ACCEPTED = 0, /* the receiver holds this chunk's bytes (just
                               stored, or a duplicate): it holds [0, next) */
    CODEC_ACK_REFUSED = 1,  /* not stored: beyond what the receiver holds
                               (a gap), or of a transfer it does not know
                               (then next is 0): resume at `next` */
    CODEC_ACK_ABORTED = 2,  /* the receiver dropped or will not take this
                               transfer (stale term, too big, contradicts
                               itself, cannot store it) */
};
typedef struct {
    uint64_t snapshot_id; /* the transfer */
    uint64_t offset;      /* the chunk answered */
    uint64_t next;        /* the receiver holds bytes [0, next) */
    uint8_t status;       /* CODEC_ACK_* */
} codec_ack;

/* One forwarded request or its answer (CODEC_MSG_FORWARD[_REPLY]).
 * Request: req_id, op and, for a write, `data` = the payload (err, id
 * unused, 0). Reply: req_id and op of the request, err (0 or a ZRAFT_E*
 * code), for a write the entry's id and `data` = the state machine's
 * result (NULL: none), for a read the read index in id.index (id.term 0,
 * data NULL). Encode: `data` borrowed for the call. Decode: `data` is a
 * reference owned by the arena until the next decode into it (take your
 * own to keep it). */
typedef struct {
    uint64_t req_id;
    uint8_t op; /* CODEC_FWD_* */
    int32_t err;
    zraft_log_id id;
    zraft_buf *data;
} codec_fwd;

/* One piece of a frame.
 * From codec_encode_iov(): `buf` is the payload buffer whose bytes the
 * segment references (an entry's payload, codec_chunk.buf), NULL for
 * scratch bytes and chunk bytes of no known buffer. The sender takes its own
 * reference to `buf` to keep the bytes alive while they are queued.
 * To codec_decode_iov(): `buf`, if not NULL, holds the segment's bytes
 * (borrowed for the call): payloads of at least zerocopy_min bytes that lie
 * within the segment and are at least half of it take a reference to it
 * instead of a copy. */
typedef struct {
    const void *base;
    size_t len;
    zraft_buf *buf;
} codec_iov;

/* Per-receiver scratch space that decoded messages point into, reused from
 * frame to frame so that decoding costs no allocation beyond the payloads.
 * Everything a decoded msg borrows from the arena (the entries array, the
 * snapshot meta) stays valid until the next decode into the same arena or
 * codec_arena_fini(). */
typedef struct {
    zraft_entry *entries; /* storage for msg.u.append.entries */
    uint32_t entries_cap;
    snapshot_meta meta; /* storage for msg.u.snapshot.meta */
    codec_chunk chunk;  /* position of a decoded MSG_SNAPSHOT chunk */
    codec_ack ack;      /* body of a decoded CODEC_MSG_SNAPSHOT_ACK */
    codec_fwd *fwd;     /* items of a decoded FORWARD / FORWARD_REPLY */
    uint32_t n_fwd, fwd_cap;
    uint8_t version; /* version of the last frame decoded */
    const char *why; /* static text naming the last failed check */
    /* Optional, set by the receiver: called by codec_decode_iov() the first
     * time a payload could reference segment `seg` (at least zerocopy_min
     * bytes within it) whose codec_iov.buf is NULL, to get a buffer holding
     * the segment's bytes; it must store that buffer in the segment's
     * codec_iov.buf too (and drop it after the decode), so that a segment
     * it holds is not asked for again; a segment it refused (returned
     * NULL: copy) is asked again for each payload in it. Lets a receiver
     * pay for a holder only when a payload needs one. */
    zraft_buf *(*hold)(void *ctx, size_t seg);
    void *hold_ctx;
} codec_arena;

/* Where an assembler stores the bytes of a transfer, instead of memory
 * (codec_assembler_init_sink): a receiving node's scratch file. */
typedef struct {
    void *ctx;
    /* A transfer of `total` bytes starts: forget any earlier one. 0 or an
     * error (the chunk is refused; the assembler is then empty). */
    int (*open)(void *ctx, uint64_t total);
    /* Stores `len` bytes at `offset`, which is always where the previous
     * chunk ended. 0 or an error (the transfer is dropped). */
    int (*write)(void *ctx, uint64_t offset, const unsigned char *p,
                 uint32_t len);
    /* The transfer was dropped before it completed: forget its bytes. */
    void (*close)(void *ctx);
} codec_sink;

/* Collects the chunks of one snapshot transfer, in order. One per receiving
 * node (one transfer at a time: a newer one replaces an older one). */
typedef struct {
    uint64_t max_size;      /* largest snapshot accepted */
    const codec_sink *sink; /* NULL: bytes go to `data` */
    bool active;            /* a transfer is in progress or complete */
    uint64_t term;          /* key of the transfer: leader term ... */
    uint64_t snapshot_id;   /* ... and snapshot id */
    snapshot_meta meta;     /* as carried by the first chunk */
    uint64_t total;         /* announced size */
    uint64_t received;      /* bytes [0, received) are in data */
    bool complete;          /* the last chunk arrived */
    bool taken;             /* ... and codec_assembler_take() handed it over:
                               only its key is kept, to answer duplicates */
    unsigned char *data;    /* no sink: grows with the bytes received, never
                               beyond total */
    size_t cap;
} codec_assembler;

/* ------------------------------------------------------------------ ctx */

/* Fills `c` for `cluster_id` and node `self` (0: do not check the
 * destination), version CODEC_VERSION, default limits. */
void codec_ctx_init(codec_ctx *c, uint64_t cluster_id, zraft_id self);

/* ------------------------------------------------------------- encoding */

/* Size of the frame codec_encode() writes for `m`; 0 when `m` cannot be
 * encoded (see codec_encode()). */
size_t codec_encoded_len(const codec_ctx *c, const msg *m);

/* Writes `m` as one frame into `out` (`cap` bytes) and its size into
 * *written. A MSG_SNAPSHOT becomes one final chunk holding the whole
 * snapshot, snapshot id 0. Errors (nothing useful is written):
 *   ZRAFT_EINVAL   `m` is not something the decoder would accept: unknown
 *                  type, from or to 0, entry ids not contiguous after prev,
 *                  entry terms decreasing or outside [prev.term, term], bad
 *                  entry type, blank entry with a payload, membership
 *                  payload or snapshot membership that does not decode;
 *   ZRAFT_ETOOBIG  frame longer than c->max_frame, more entries than
 *                  c->max_entries, or a field longer than its length field;
 *   ZRAFT_ENOSPACE `cap` is too small (use codec_encoded_len()). */
int codec_encode(const codec_ctx *c, const msg *m, unsigned char *out,
                 size_t cap, size_t *written);

/* The same for one chunk of a snapshot transfer: `m` is a MSG_SNAPSHOT
 * whose meta is sent; its data is ignored, the bytes come from `ch`.
 * ZRAFT_EINVAL when ch is inconsistent (offset + len > total, last not
 * equal to offset + len == total, bytes NULL with len > 0). */
size_t codec_chunk_encoded_len(const codec_ctx *c, const msg *m,
                               const codec_chunk *ch);
int codec_encode_chunk(const codec_ctx *c, const msg *m, const codec_chunk *ch,
                       unsigned char *out, size_t cap, size_t *written);

/* Writes the acknowledgement `a` of a chunk as one frame: `m` gives the
 * header (type CODEC_MSG_SNAPSHOT_ACK, from, to, and the term of the
 * transfer). ZRAFT_EINVAL when c->version is 1 (no acks there), `m` is
 * not an ack or a->status is unknown; ZRAFT_ENOSPACE when `cap` is short
 * (CODEC_ACK_FRAME_MAX always suffices). */
#define CODEC_ACK_FRAME_MAX (CODEC_HEADER_LEN + 25)
int codec_encode_ack(const codec_ctx *c, const msg *m, const codec_ack *a,
                     unsigned char *out, size_t cap, size_t *written);

/* Writes a FORWARD or FORWARD_REPLY frame: `m` gives the header (type
 * CODEC_MSG_FORWARD or CODEC_MSG_FORWARD_REPLY, from, to, term), `items`
 * the body (n >= 1). codec_fwd_encoded_len() is its size (0: `m` or an
 * item cannot be encoded). ZRAFT_EINVAL when c->version < 3, the type is
 * not a forward type, n is 0, an op is unknown, a read carries data, a
 * request carries an err or id, or an err is not 0 or a negative
 * ZRAFT_E* code (>= -255); ZRAFT_ETOOBIG over c->max_frame or more items
 * than c->max_entries; ZRAFT_ENOSPACE when `cap` is short. */
size_t codec_fwd_encoded_len(const codec_ctx *c, const msg *m,
                             const codec_fwd *items, uint32_t n);
int codec_encode_fwd(const codec_ctx *c, const msg *m, const codec_fwd *items,
                     uint32_t n, unsigned char *out, size_t cap,
                     size_t *written);

/* Zero-copy encoding. codec_iov_plan() tells how many scratch bytes and
 * segments codec_encode_iov() needs for `m` (and `ch`, NULL unless `m` is
 * a snapshot chunk); codec_encode_iov() fills `iov` with *n_iov segments
 * whose concatenation equals codec_encode()'s output. Segments point into
 * `scratch` and at payload bytes (entries' zraft_buf data or ch->bytes),
 * which must stay unchanged and alive until the segments are sent; a
 * segment that references a payload names its buffer (codec_iov.buf), so a
 * sender can hold a reference for as long as the bytes are queued. Only
 * FORWARD and FORWARD_REPLY have no iov form (ZRAFT_EINVAL).
 * Errors as codec_encode(); ZRAFT_ENOSPACE when scratch or iov is short. */
int codec_iov_plan(const codec_ctx *c, const msg *m, const codec_chunk *ch,
                   size_t *scratch_len, size_t *n_iov);
int codec_encode_iov(const codec_ctx *c, const msg *m, const codec_chunk *ch,
                     unsigned char *scratch, size_t scratch_cap, codec_iov *iov,
                     size_t iov_cap, size_t *n_iov);

/* ------------------------------------------------------------- decoding */

/* An empty arena (no hold callback). */
void codec_arena_init(codec_arena *a);
/* Frees the arena's storage (not the payloads of decoded messages). */
void codec_arena_fini(codec_arena *a);

/* Decodes the frame of `len` bytes at `buf` into `out` (payloads are
 * copied: no segment names a buffer). On success `out`
 * owns one reference to every payload it carries (entry payloads, snapshot
 * chunk bytes): keep them with zraft_buf_ref(), then drop the decoder's with
 * codec_msg_release(out), which must happen before the next decode into the
 * same arena. For MSG_SNAPSHOT, `out` is one chunk: u.snapshot.meta points
 * at arena->meta, u.snapshot.data holds the chunk bytes, and arena->chunk
 * says where they belong (feed it to a codec_assembler). A
 * CODEC_MSG_SNAPSHOT_ACK carries its body in arena->ack (and nothing to
 * release); a FORWARD or FORWARD_REPLY its items in arena->fwd (n_fwd,
 * payloads owned by the arena until the next decode or fini). arena->version is
 * the frame's version. Entries' ids are filled in (prev.index + 1, ...). Blank
 * entries have a NULL payload, others a buffer (possibly empty). On error `out`
 * is zeroed and owns nothing; errors are listed at the top of this header. */
int codec_decode(const codec_ctx *c, const unsigned char *buf, size_t len,
                 msg *out, codec_arena *arena);
/* The same for a frame given as the concatenation of `n` segments. A
 * payload decoded from a segment that names its buffer (codec_iov.buf) may
 * reference it: the segment's bytes must then never change while any
 * reference lasts (they are those of a received message). */
int codec_decode_iov(const codec_ctx *c, const codec_iov *segs, size_t n,
                     msg *out, codec_arena *arena);

/* Drops the references a successful decode gave `m` and clears its payload
 * pointers. Only for messages produced by codec_decode*(); NULL-safe and
 * idempotent. */
void codec_msg_release(msg *m);

/* ------------------------------------------------------ snapshot chunks */

/* An empty assembler accepting snapshots up to `max_size` bytes (0: no
 * limit). Its buffer grows with the bytes actually received, never with a
 * size announced by the peer. */
void codec_assembler_init(codec_assembler *a, uint64_t max_size);
/* The same, storing the bytes through `sink` (borrowed until fini). */
void codec_assembler_init_sink(codec_assembler *a, uint64_t max_size,
                               const codec_sink *sink);
/* Drops any transfer and frees the buffer. */
void codec_assembler_fini(codec_assembler *a);
/* Drops any transfer (keeps max_size). */
void codec_assembler_reset(codec_assembler *a);

/* Adds the chunk `ch` of the MSG_SNAPSHOT `m` (as decoded: m->term is the
 * leader's term, m->u.snapshot.meta the snapshot's metadata; the bytes are
 * copied from ch->bytes). The transfer is keyed by (m->term,
 * ch->snapshot_id); a chunk at offset 0 with a key other than the current
 * transfer's, and a term not lower, starts a new transfer and drops the
 * old one. Returns:
 *   0                 accepted, more chunks expected;
 *   1                 accepted and the snapshot is complete: take it with
 *                     codec_assembler_take();
 *   ZRAFT_EAGAIN      out of order: a gap, an overlap, a duplicate, or a
 *                     chunk of an unknown transfer that does not start at
 *                     0. Nothing changed; the sender should resume at
 *                     codec_assembler_next_offset() (0 for a new transfer);
 *   ZRAFT_EINVAL      stale: the chunk's term is lower than the current
 *                     transfer's, or `m` is not a MSG_SNAPSHOT. Nothing
 *                     changed;
 *   ZRAFT_EMALFORMED  the chunk contradicts itself or its transfer (total or
 *                     meta differ from the first chunk's, range beyond the
 *                     total, last flag wrong). The transfer is dropped;
 *   ZRAFT_ETOOBIG     total exceeds max_size; the transfer is dropped;
 *   ZRAFT_ENOMEM      the chunk was not added;
 *   other errors      the sink failed (ZRAFT_EIO, ZRAFT_ENOSPACE, ...): the
 *                     transfer is dropped. */
int codec_assembler_add(codec_assembler *a, const msg *m,
                        const codec_chunk *ch);
/* Hands over a complete snapshot: copies its metadata into *meta and,
 * without a sink, puts a new buffer holding the whole snapshot in *data
 * (caller owns it); with a sink, `data` is NULL and the bytes are the
 * sink's. The assembler then keeps only the transfer's key, so that late
 * duplicates of its chunks are refused with next = total; a new transfer
 * replaces it. ZRAFT_EAGAIN when no snapshot is complete (or it was
 * taken), ZRAFT_ENOMEM (the snapshot stays). */
int codec_assembler_take(codec_assembler *a, snapshot_meta *meta,
                         zraft_buf **data);
/* Where the current transfer continues (0 when there is none). */
uint64_t codec_assembler_next_offset(const codec_assembler *a);
/* Where transfer (term, snapshot_id) continues: the current transfer's
 * next offset (its total once complete) if that is the one, else 0 (the
 * receiver holds nothing of it). */
uint64_t codec_assembler_next_for(const codec_assembler *a, uint64_t term,
                                  uint64_t snapshot_id);

#endif /* ZRAFT_TRANSPORT_CODEC_H */
