/* rpc.c - Raft RPCs over ZeroMQ ROUTER/DEALER, and the in-process
 * network's fault table (see rpc.h).
 *
 * Addressing: every DEALER sets its routing id to (kind, node id), so a
 * node's ROUTER replies to "the replication stream of node 3" without a
 * table of connections; ROUTER_HANDOVER lets a restarted peer take its id
 * back. Faults of an in-process network are applied where frames arrive,
 * after decoding (the sender never blocks on them); delayed frames wait in
 * a small per-socket queue, in arrival order.
 *
 * Snapshots arrive as chunks on the ROUTER (the core's thread): each one is
 * written into a scratch file and acknowledged at once to the sender's
 * stream, so the sender keeps a bounded window in flight and resumes at
 * the acknowledged offset after a reconnect; the complete file is mapped
 * and handed to the engine as one message.
 *
 * Zero copy (wire version 4 and later, docs/wire.md): an AppendEntries or
 * a snapshot chunk is sent as a multipart message cut by codec_encode_iov():
 * the fixed fields are copied into parts of their own, each payload of at
 * least the send cut-off (rpc_ctx.zerocopy_send_min: by default 1 KiB in
 * process; never over TCP, see s_send_min) is a part that references the
 * entry's zraft_buf (zmq_msg_init_data), holding one reference that ZeroMQ
 * drops when it is done with the part: on this thread when the send fails,
 * on an I/O thread after writing it to TCP (or encrypting it, with CURVE),
 * on the receiving thread with inproc (the receiver gets the very same
 * bytes). The receiver decodes the concatenation of the parts, whoever cut
 * them: a part holding a payload of at least codec_ctx.zerocopy_min bytes
 * is moved into a zraft_buf that owns the zmq_msg_t (s_hold, asked by the
 * decoder), and the decoded payloads reference it instead of copying
 * (codec_decode_iov) - a whole frame sent as one part included. Other messages,
 * and every frame of an older wire version, are one copied part, as before.
 *
 * ThreadSanitizer: a frame that is copied hands over no memory of ours (it
 * is copied by zmq_send() into a buffer of libzmq's and decoded on the
 * receiving thread; TSan ignores libzmq's own accesses, test/tsan/
 * tsan.supp). A referenced payload part does, with inproc: the receiver
 * reads the sender's bytes, ordered by libzmq's pipe, which TSan cannot
 * see. So the sender releases on the part's address before sending it and
 * the receiver acquires on the address of every part it receives (the
 * same address with inproc; with TCP an unrelated one, which orders
 * nothing and costs nothing). Likewise the free callback, which runs on a
 * thread of ZeroMQ's choosing, acquires on the buffer the sender released
 * on before handing the part over. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "core/tsan.h"
#include "transport/rpc.h"
#include "zraft_storage.h"

/* ============================================================ network */

typedef struct {
    zraft_id from, to; /* 0 matches any */
    uint8_t kind;      /* 0 cut, 1 lossy, 2 delay */
    uint32_t value;
} fault;

struct zraft_network {
    pthread_mutex_t lock;
    fault *faults;
    size_t n, cap;
    uint64_t rng;
    _Atomic uint64_t dropped;
    void *zctx; /* inproc endpoints only connect within one context */
};

zraft_network *zraft_network_new(void)
{
    zraft_network *n = calloc(1, sizeof(*n));
    if (n != NULL) {
        pthread_mutex_init(&n->lock, NULL);
        n->rng = 0x2545f4914f6cdd1dull;
        n->zctx = zmq_ctx_new();
        if (n->zctx == NULL) {
            free(n);
            return NULL;
        }
    }
    return n;
}

void zraft_network_destroy(zraft_network **np)
{
    if (np == NULL || *np == NULL) {
        return;
    }
    pthread_mutex_destroy(&(*np)->lock);
    zmq_ctx_term((*np)->zctx);
    free((*np)->faults);
    free(*np);
    *np = NULL;
}

static void s_add(zraft_network *n, zraft_id from, zraft_id to, uint8_t kind,
                  uint32_t value)
{
    pthread_mutex_lock(&n->lock);
    if (n->n == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 16;
        fault *f = realloc(n->faults, cap * sizeof(*f));
        if (f == NULL) {
            pthread_mutex_unlock(&n->lock);
            return;
        }
        n->faults = f;
        n->cap = cap;
    }
    n->faults[n->n++] = (fault){from, to, kind, value};
    pthread_mutex_unlock(&n->lock);
}

void zraft_network_isolate(zraft_network *n, zraft_id id)
{
    s_add(n, id, 0, 0, 0);
    s_add(n, 0, id, 0, 0);
}

void zraft_network_cut(zraft_network *n, zraft_id from, zraft_id to)
{
    s_add(n, from, to, 0, 0);
}

void zraft_network_lossy(zraft_network *n, zraft_id from, zraft_id to,
                         uint32_t permille)
{
    s_add(n, from, to, 1, permille);
}

void zraft_network_delay(zraft_network *n, zraft_id from, zraft_id to,
                         uint32_t ms)
{
    s_add(n, from, to, 2, ms);
}

void zraft_network_heal(zraft_network *n)
{
    pthread_mutex_lock(&n->lock);
    n->n = 0;
    pthread_mutex_unlock(&n->lock);
}

void *rpc_net_zctx(zraft_network *n)
{
    return n->zctx;
}

uint64_t zraft_network_dropped(const zraft_network *n)
{
    return atomic_load(&((zraft_network *)n)->dropped);
}

bool rpc_net_allow(zraft_network *n, zraft_id from, zraft_id to,
                   uint32_t *delay_ms)
{
    bool ok = true;
    *delay_ms = 0;
    pthread_mutex_lock(&n->lock);
    for (size_t i = 0; i < n->n && ok; i++) {
        const fault *f = &n->faults[i];
        if ((f->from != 0 && f->from != from) || (f->to != 0 && f->to != to)) {
            continue;
        }
        if (f->kind == 0) {
            ok = false;
        } else if (f->kind == 1) {
            n->rng ^= n->rng << 13;
            n->rng ^= n->rng >> 7;
            n->rng ^= n->rng << 17;
            ok = n->rng % 1000 >= f->value;
        } else if (f->value > *delay_ms) {
            *delay_ms = f->value;
        }
    }
    pthread_mutex_unlock(&n->lock);
    if (!ok) {
        atomic_fetch_add(&n->dropped, 1);
    }
    return ok;
}

void rpc_endpoint(const rpc_ctx *c, zraft_id id, const char *addr, char *out,
                  size_t cap)
{
    if (c->net != NULL) {
        snprintf(out, cap, "inproc://zraft-%p-%llu", (void *)c->net,
                 (unsigned long long)id);
    } else {
        snprintf(out, cap, "tcp://%s", addr);
    }
}

int rpc_peer_endpoint(const rpc_ctx *c, zraft_id id, const char *addr,
                      bool refresh, char *out, size_t cap)
{
    if (c->net != NULL || c->res == NULL) {
        rpc_endpoint(c, id, addr, out, cap);
        return 0;
    }
    return resolver_endpoint(c->res, addr, refresh, out, cap);
}

/* ======================================================= receive side */

typedef struct {
    uint64_t due;
    unsigned char *frame;
    size_t len;
} delayed;

/* The file a snapshot being received is written into (a codec_sink): no
 * name (O_TMPFILE), or a name removed at once, so that it disappears with
 * its last descriptor or mapping, crash included. */
typedef struct {
    const char *dir;
    int fd; /* -1: none */
} scratch;

static void sc_close(void *ctx)
{
    scratch *f = ctx;
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
}

static int sc_errno(int e)
{
    return e == ENOSPC || e == EDQUOT ? ZRAFT_ENOSPACE : ZRAFT_EIO;
}

static int sc_open(void *ctx, uint64_t total)
{
    scratch *f = ctx;
    (void)total; /* the file grows with what arrives */
    sc_close(f);
    int fd = open(f->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        /* No O_TMPFILE on this file system: a named file, unlinked. */
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/zraft-snapshot-XXXXXX", f->dir);
        fd = mkostemp(path, O_CLOEXEC);
        if (fd >= 0) {
            unlink(path);
        }
    }
    if (fd < 0) {
        return sc_errno(errno);
    }
    f->fd = fd;
    return 0;
}

static int sc_write(void *ctx, uint64_t off, const unsigned char *p,
                    uint32_t len)
{
    scratch *f = ctx;
    while (len > 0) {
        ssize_t n = pwrite(f->fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? sc_errno(errno) : ZRAFT_EIO;
        }
        p += n;
        off += (uint64_t)n;
        len -= (uint32_t)n;
    }
    return 0;
}

/* What a server and a connection share on the receiving side. */
typedef struct {
    const rpc_ctx *c;
    void *sock;
    bool router; /* first part is the peer's routing id */
    codec_arena arena;
    codec_assembler snap; /* router: the transfer being received */
    scratch file;         /* ... and its bytes */
    uint64_t snap_seen;   /* when its last chunk arrived */
    codec_sink sink;
    snapshot_meta snap_meta;
    delayed *q; /* in arrival order */
    size_t qn, qcap;
    zmq_msg_t *parts; /* the parts of the message being received */
    codec_iov *segs;  /* ... as segments for the decoder */
    size_t pcap;
    size_t live; /* parts being decoded (0: a delayed copy is: s_hold) */
    uint64_t rejected;
    const char *why;
} inbox;

static zraft_buf *s_hold(void *ctx, size_t i);

static void inbox_init(inbox *in, const rpc_ctx *c, void *sock, bool router)
{
    memset(in, 0, sizeof(*in));
    in->c = c;
    in->sock = sock;
    in->router = router;
    codec_arena_init(&in->arena);
    in->arena.hold = s_hold;
    in->arena.hold_ctx = in;
    in->file.dir = c->scratch_dir[0] ? c->scratch_dir : "/tmp";
    in->file.fd = -1;
    in->sink = (codec_sink){&in->file, sc_open, sc_write, sc_close};
    codec_assembler_init_sink(&in->snap, 1ull << 40, &in->sink);
}

static void inbox_fini(inbox *in)
{
    for (size_t i = 0; i < in->qn; i++) {
        free(in->q[i].frame);
    }
    free(in->q);
    free(in->parts);
    free(in->segs);
    codec_arena_fini(&in->arena);
    codec_assembler_fini(&in->snap);
    sc_close(&in->file);
}

static uint64_t inbox_next_due(const inbox *in)
{
    uint64_t d = UINT64_MAX;
    for (size_t i = 0; i < in->qn; i++) {
        if (in->q[i].due < d) {
            d = in->q[i].due;
        }
    }
    return d;
}

/* Answers a snapshot chunk to the stream that sent it (a node that sends
 * version 1 frames, or a version 1 chunk, gets none: it cannot read it). */
static void s_ack(inbox *in, const msg *chunk, const codec_chunk *ch,
                  uint8_t status, uint64_t next)
{
    if (!in->router || in->arena.version < 2 || in->c->codec.version < 2) {
        return;
    }
    msg m;
    memset(&m, 0, sizeof m);
    m.type = CODEC_MSG_SNAPSHOT_ACK;
    m.from = in->c->self;
    m.to = chunk->from;
    m.term = chunk->term;
    codec_ack a = {ch->snapshot_id, ch->offset, next, status};
    unsigned char buf[CODEC_ACK_FRAME_MAX], rid[9];
    size_t len;
    if (codec_encode_ack(&in->c->codec, &m, &a, buf, sizeof buf, &len) != 0) {
        return;
    }
    rid[0] = RPC_KIND_REPL;
    for (int i = 0; i < 8; i++) {
        rid[1 + i] = (unsigned char)(chunk->from >> (8 * i));
    }
    if (zmq_send(in->sock, rid, sizeof rid, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 9) {
        zmq_send(in->sock, buf, len, ZMQ_DONTWAIT);
    }
}

/* Stores the chunk just decoded into *out, acknowledges it, and when it
 * completes its transfer puts the whole snapshot (mapped) in *out. 1: *out
 * ready. */
static int inbox_chunk(inbox *in, msg *out, uint64_t now)
{
    in->snap_seen = now;
    codec_chunk ch = in->arena.chunk;
    ch.bytes = NULL; /* released below; only the position is used after */
    int rv = codec_assembler_add(&in->snap, out, &in->arena.chunk);
    codec_msg_release(out);
    if (rv == 0) {
        s_ack(in, out, &ch, CODEC_ACK_ACCEPTED, ch.offset + ch.len);
        return 0;
    }
    if (rv == ZRAFT_EAGAIN) {
        /* A duplicate of bytes held is as good as accepted; anything else
         * is a gap (or an unknown transfer: next 0). */
        uint64_t next =
            codec_assembler_next_for(&in->snap, out->term, ch.snapshot_id);
        s_ack(in, out, &ch,
              ch.offset + ch.len <= next ? CODEC_ACK_ACCEPTED
                                         : CODEC_ACK_REFUSED,
              next);
        return 0;
    }
    zraft_buf *data = NULL;
    if (rv == 1) {
        codec_assembler_take(&in->snap, &in->snap_meta, NULL);
        rv = in->file.fd >= 0 || ch.total == 0
                 ? zraft_buf_map(in->file.fd, 0, (size_t)ch.total, &data)
                 : ZRAFT_EIO;
        sc_close(&in->file); /* the mapping keeps the bytes */
    }
    if (rv != 1 && rv != 0) {
        s_ack(in, out, &ch, CODEC_ACK_ABORTED, 0);
        return 0;
    }
    s_ack(in, out, &ch, CODEC_ACK_ACCEPTED, ch.total);
    out->u.snapshot.meta = &in->snap_meta;
    out->u.snapshot.data = data;
    return 1;
}

/* A copy of the concatenation of `n` segments (NULL: out of memory). */
static unsigned char *s_flatten(const codec_iov *segs, size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += segs[i].len;
    }
    unsigned char *f = malloc(total ? total : 1);
    if (f == NULL) {
        return NULL;
    }
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (segs[i].len > 0) {
            memcpy(f + at, segs[i].base, segs[i].len);
            at += segs[i].len;
        }
    }
    *len = total;
    return f;
}

/* Decodes a frame (the concatenation of `n` segments); applies faults and
 * snapshot assembly. 1: *out ready. */
static int inbox_take(inbox *in, const codec_iov *segs, size_t n, msg *out,
                      uint64_t now, bool allow_delay)
{
    int rv = codec_decode_iov(&in->c->codec, segs, n, out, &in->arena);
    if (rv != 0) {
        in->rejected++;
        in->why = in->arena.why;
        return 0;
    }
    if (in->c->net != NULL && allow_delay) {
        uint32_t delay;
        if (!rpc_net_allow(in->c->net, out->from, in->c->self, &delay)) {
            codec_msg_release(out);
            return 0;
        }
        if (delay > 0) {
            codec_msg_release(out);
            if (in->qn == in->qcap) {
                size_t cap = in->qcap ? in->qcap * 2 : 16;
                delayed *q = realloc(in->q, cap * sizeof(*q));
                if (q == NULL) {
                    return 0;
                }
                in->q = q;
                in->qcap = cap;
            }
            size_t len;
            unsigned char *copy = s_flatten(segs, n, &len);
            if (copy == NULL) {
                return 0;
            }
            in->q[in->qn++] = (delayed){now + delay, copy, len};
            return 0;
        }
    }
    if (out->type != MSG_SNAPSHOT) {
        return 1;
    }
    if (!in->router) {
        codec_msg_release(out); /* snapshots are requests, not replies */
        return 0;
    }
    return inbox_chunk(in, out, now);
}

/* A partial transfer nobody continues for this long is dropped with its
 * file (its sender gave up long before; a new one starts from 0). */
#define PARTIAL_TTL_MS (300u * 1000u)

/* With CURVE, a request is taken only from the member whose key its
 * connection authenticated with ("User-Id", set by the ZAP handler) and
 * only while that key is admitted: the sender id in the header (checked
 * here, before anything is decoded) cannot be borrowed, and a member
 * removed from the configuration is refused on the connection it already
 * had. */
static bool s_sender_admitted(inbox *in, zmq_msg_t *part)
{
    if (!in->router || in->c->auth == NULL) {
        return true;
    }
    /* The sender id is in the header, which an encoder of ours puts in the
     * first part: a peer that cuts it elsewhere is refused (from 0). */
    const unsigned char *f = zmq_msg_data(part);
    size_t len = zmq_msg_size(part);
    uint64_t from = 0;
    if (len >= 24) {
        for (int i = 0; i < 8; i++) {
            from |= (uint64_t)f[16 + i] << (8 * i);
        }
    }
    if (curve_auth_check(in->c->auth, from, zmq_msg_gets(part, "User-Id"))) {
        return true;
    }
    in->rejected++;
    in->why = "sender is not the member its key belongs to (or was removed)";
    return false;
}

/* libzmq's receive batch (ZMQ_IN_BATCH_SIZE, 8 KiB by default): TCP
 * messages up to this size share a receive buffer. */
#define RPC_ZMQ_BATCH 8192

/* Most parts one frame may come in: the header's part, each payload and
 * the fixed fields after it. A message with more is dropped. */
static size_t s_max_parts(const inbox *in)
{
    return 2 * (size_t)in->c->codec.max_entries + 4;
}

/* Called with every one of the pcap parts live (a message is being
 * received into them): they move to the new array with zmq_msg_move, as
 * libzmq asks (a zmq_msg_t must not be copied bit for bit). New segment
 * slots start empty, so that releasing them is a no-op. */
static int s_grow_parts(inbox *in)
{
    size_t cap = in->pcap ? in->pcap * 2 : 8;
    zmq_msg_t *p = malloc(cap * sizeof(*p));
    codec_iov *g = realloc(in->segs, cap * sizeof(*g));
    if (g != NULL) {
        memset(g + in->pcap, 0, (cap - in->pcap) * sizeof(*g));
        in->segs = g;
    }
    if (p == NULL || g == NULL) {
        free(p);
        return ZRAFT_ENOMEM;
    }
    for (size_t i = 0; i < in->pcap; i++) {
        zmq_msg_init(&p[i]);
        zmq_msg_move(&p[i], &in->parts[i]);
        zmq_msg_close(&in->parts[i]);
    }
    free(in->parts);
    in->parts = p;
    in->pcap = cap;
    return 0;
}

/* Receives every part of the next message into in->parts (*n of them;
 * 0 when the message was dropped: too many parts, out of memory). False
 * when nothing was waiting (dealer) or the socket failed. */
static bool s_recv_parts(inbox *in, size_t *n)
{
    size_t k = 0;
    bool keep = true, more = true, first = true;
    while (more) {
        if (keep && (k >= s_max_parts(in) ||
                     (k == in->pcap && s_grow_parts(in) != 0))) {
            keep = false;
        }
        zmq_msg_t spill;
        zmq_msg_t *part = keep ? &in->parts[k] : &spill;
        zmq_msg_init(part);
        int flags = first && !in->router ? ZMQ_DONTWAIT : 0;
        first = false;
        if (zmq_msg_recv(part, in->sock, flags) < 0) {
            zmq_msg_close(part);
            for (size_t i = 0; i < k; i++) {
                zmq_msg_close(&in->parts[i]);
            }
            return false;
        }
        more = zmq_msg_more(part);
        if (!keep) {
            zmq_msg_close(part);
            continue;
        }
        /* With inproc a referenced part is the sender's memory (above). */
        TSAN_ACQUIRE(zmq_msg_data(part));
        k++;
    }
    if (!keep) {
        for (size_t i = 0; i < k; i++) {
            zmq_msg_close(&in->parts[i]);
        }
        in->rejected++;
        in->why = "too many parts in one message";
        k = 0;
    }
    *n = k;
    return true;
}

static void s_close_held(void *ctx, void *data)
{
    (void)data;
    zmq_msg_close(ctx);
    free(ctx);
}

/* Describes the received parts to the decoder (no holder yet: s_hold). */
static void s_describe_parts(inbox *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        in->segs[i] = (codec_iov){zmq_msg_data(&in->parts[i]),
                                  zmq_msg_size(&in->parts[i]), NULL};
    }
}

/* The decoder's hold callback (codec_arena.hold): a payload is about to
 * reference part `i`, so the part moves into a zraft_buf of its own, freed
 * with zmq_msg_close() on the thread that drops the last reference. Only
 * parts that hold such a payload pay for it. NULL: copy instead. */
static zraft_buf *s_hold(void *ctx, size_t i)
{
    inbox *in = ctx;
    /* Over TCP libzmq reads messages up to its batch size into one shared
     * receive buffer, which a reference would keep whole: only larger
     * parts, allocated on their own, are held. In process a part is its
     * sender's allocation. */
    if (i >= in->live ||
        (in->c->net == NULL && zmq_msg_size(&in->parts[i]) <= RPC_ZMQ_BATCH)) {
        return NULL;
    }
    zmq_msg_t *h = malloc(sizeof(*h));
    if (h == NULL) {
        return NULL;
    }
    zmq_msg_init(h);
    zmq_msg_move(h, &in->parts[i]); /* leaves the part empty */
    zraft_buf *b =
        zraft_buf_wrap(zmq_msg_data(h), zmq_msg_size(h), s_close_held, h);
    if (b == NULL) {
        zmq_msg_move(&in->parts[i], h);
        zmq_msg_close(h);
        free(h);
        return NULL;
    }
    in->segs[i].base = b->data; /* the same bytes (moved only if the part
                                   was short enough to live inside the
                                   zmq_msg_t) */
    in->segs[i].buf = b;
    return b;
}

/* Drops this thread's hold on the parts: decoded payloads keep theirs. */
static void s_release_parts(inbox *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        zmq_msg_close(&in->parts[i]);
        zraft_buf_unref(in->segs[i].buf);
        in->segs[i].buf = NULL;
    }
}

static int inbox_recv(inbox *in, msg *out, uint64_t now)
{
    if (in->snap.active && !in->snap.taken &&
        now - in->snap_seen > PARTIAL_TTL_MS) {
        codec_assembler_reset(&in->snap);
    }
    /* Delayed frames first: the earliest arrival that is due, so that one
     * link's frames (all delayed alike) keep their order. */
    for (;;) {
        size_t i = 0;
        while (i < in->qn && in->q[i].due > now) {
            i++;
        }
        if (i == in->qn) {
            break;
        }
        delayed d = in->q[i];
        memmove(in->q + i, in->q + i + 1, (in->qn - i - 1) * sizeof(*in->q));
        in->qn--;
        codec_iov seg = {d.frame, d.len, NULL};
        int rv = inbox_take(in, &seg, 1, out, now, false);
        free(d.frame);
        if (rv == 1) {
            return 1;
        }
    }
    for (;;) {
        if (in->router) {
            zmq_msg_t rid;
            zmq_msg_init(&rid);
            int rc = zmq_msg_recv(&rid, in->sock, ZMQ_DONTWAIT);
            zmq_msg_close(&rid); /* routing id: replies go by node id */
            if (rc < 0) {
                return 0;
            }
        }
        size_t n;
        if (!s_recv_parts(in, &n)) {
            return 0;
        }
        int rv = 0;
        if (n > 0 && s_sender_admitted(in, &in->parts[0])) {
            s_describe_parts(in, n);
            in->live = n;
            rv = inbox_take(in, in->segs, n, out, now, true);
            in->live = 0;
        }
        s_release_parts(in, n);
        if (rv == 1) {
            return 1;
        }
    }
}

/* ========================================================== sockets */

static void s_opts(void *sock)
{
    int linger = 0, hwm = 20000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
}

struct rpc_server {
    void *sock;
    inbox in;
    unsigned char *buf;
    size_t cap;
};

rpc_server *rpc_server_new(void *zctx, const rpc_ctx *c, const char *endpoint,
                           const char **why)
{
    rpc_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        *why = "out of memory";
        return NULL;
    }
    s->sock = zmq_socket(zctx, ZMQ_ROUTER);
    if (s->sock == NULL) {
        *why = zmq_strerror(zmq_errno());
        free(s);
        return NULL;
    }
    s_opts(s->sock);
    int one = 1;
    int64_t maxmsg = c->codec.max_frame;
    zmq_setsockopt(s->sock, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (c->auth != NULL && curve_server_setup(c->auth, s->sock) != 0) {
        *why = "cannot set up CURVE";
        zmq_close(s->sock);
        free(s);
        return NULL;
    }
    if (zmq_bind(s->sock, endpoint) != 0) {
        *why = zmq_strerror(zmq_errno());
        zmq_close(s->sock);
        free(s);
        return NULL;
    }
    inbox_init(&s->in, c, s->sock, true);
    return s;
}

void rpc_server_destroy(rpc_server **sp)
{
    if (sp == NULL || *sp == NULL) {
        return;
    }
    rpc_server *s = *sp;
    inbox_fini(&s->in);
    zmq_close(s->sock);
    free(s->buf);
    free(s);
    *sp = NULL;
}

void *rpc_server_socket(rpc_server *s)
{
    return s->sock;
}

int rpc_server_recv(rpc_server *s, msg *out, uint64_t now_ms)
{
    return inbox_recv(&s->in, out, now_ms);
}

uint64_t rpc_server_next_due(const rpc_server *s)
{
    return inbox_next_due(&s->in);
}

uint64_t rpc_server_rejected(const rpc_server *s, const char **why)
{
    if (why != NULL) {
        *why = s->in.why;
    }
    return s->in.rejected;
}

/* Forward items to encode instead of a msg body (s_encode). */
typedef struct {
    const codec_fwd *items;
    uint32_t n;
} fwd_body;

/* Encodes `m` (or one chunk of it, or forward items) into the reusable
 * buffer. */
static int s_encode_any(const rpc_ctx *c, unsigned char **buf, size_t *cap,
                        const msg *m, const codec_chunk *ch, const fwd_body *fb,
                        size_t *len)
{
    /* A node held at an older wire version (an upgrade in progress) still
     * answers a FORWARD in version 3: its sender reads it. */
    const codec_ctx *fx = &c->codec;
    codec_ctx v3;
    if (fb != NULL && fx->version < 3) {
        v3 = *fx;
        v3.version = 3;
        fx = &v3;
    }
    size_t need = fb   ? codec_fwd_encoded_len(fx, m, fb->items, fb->n)
                  : ch ? codec_chunk_encoded_len(&c->codec, m, ch)
                       : codec_encoded_len(&c->codec, m);
    if (need == 0) {
        return ZRAFT_EINVAL;
    }
    if (need > *cap) {
        unsigned char *nb = realloc(*buf, need);
        if (nb == NULL) {
            return ZRAFT_ENOMEM;
        }
        *buf = nb;
        *cap = need;
    }
    if (fb != NULL) {
        return codec_encode_fwd(fx, m, fb->items, fb->n, *buf, *cap, len);
    }
    return ch ? codec_encode_chunk(&c->codec, m, ch, *buf, *cap, len)
              : codec_encode(&c->codec, m, *buf, *cap, len);
}

static int s_server_send(rpc_server *s, const msg *m, int kind,
                         const fwd_body *fb)
{
    unsigned char rid[9];
    rid[0] = (unsigned char)kind;
    for (int i = 0; i < 8; i++) {
        rid[1 + i] = (unsigned char)(m->to >> (8 * i));
    }
    size_t len;
    int rv = s_encode_any(s->in.c, &s->buf, &s->cap, m, NULL, fb, &len);
    if (rv != 0) {
        return rv;
    }
    if (zmq_send(s->sock, rid, sizeof rid, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        return ZRAFT_EAGAIN;
    }
    if (zmq_send(s->sock, s->buf, len, ZMQ_DONTWAIT) < 0) {
        return ZRAFT_EAGAIN;
    }
    return 0;
}

int rpc_server_send(rpc_server *s, const msg *m, int kind)
{
    return s_server_send(s, m, kind, NULL);
}

int rpc_server_send_fwd(rpc_server *s, const msg *m, const codec_fwd *items,
                        uint32_t n)
{
    fwd_body fb = {items, n};
    return s_server_send(s, m, RPC_KIND_FWD, &fb);
}

const codec_fwd *rpc_server_fwd(const rpc_server *s, uint32_t *n)
{
    *n = s->in.arena.n_fwd;
    return s->in.arena.fwd;
}

struct rpc_conn {
    void *sock;
    inbox in;
    const rpc_ctx *c;
    codec_ctx parts;    /* c->codec with the send cut-off (s_send_min) */
    bool multipart;     /* version 4 and a cut-off: payloads by reference */
    unsigned char *buf; /* the frame, or a multipart frame's copied bytes */
    size_t cap;
    codec_iov *iov; /* a multipart frame's parts */
    size_t iov_cap;
    uint64_t created_ms, last_send_ms, last_recv_ms;
    /* The first send since the last receive (0: none), for
     * rpc_conn_unanswered(). */
    uint64_t unanswered_ms;
};

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool rpc_conn_stale(const rpc_conn *k, uint64_t now_ms, uint64_t timeout_ms)
{
    uint64_t heard =
        k->last_recv_ms > k->created_ms ? k->last_recv_ms : k->created_ms;
    return k->last_send_ms > heard && now_ms - heard > timeout_ms;
}

bool rpc_conn_unanswered(const rpc_conn *k, uint64_t now_ms,
                         uint64_t timeout_ms)
{
    /* (now_ms may have been read before the send: no wrap-around) */
    return k->unanswered_ms != 0 && now_ms > k->unanswered_ms &&
           now_ms - k->unanswered_ms > timeout_ms;
}

/* The payload length from which a connection sends by reference; 0:
 * never. Never over TCP, whatever zerocopy_send_min says: libzmq 4.3.4
 * aborts the process (errno_assert in session_base_t::clean_pipes) when a
 * TCP connection ends while its I/O thread has taken only some parts of a
 * multipart message (seen in 2 of 40 runs of a test that closes one end
 * with frames queued), and by reference never paid over TCP anyway. */
static uint32_t s_send_min(const rpc_ctx *c)
{
    if (c->net == NULL) {
        return 0;
    }
    return c->zerocopy_send_min != 0 ? c->zerocopy_send_min
                                     : RPC_ZEROCOPY_INPROC_MIN;
}

rpc_conn *rpc_conn_new(void *zctx, const rpc_ctx *c, zraft_id peer,
                       const char *endpoint, int kind)
{
    rpc_conn *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return NULL;
    }
    k->sock = zmq_socket(zctx, ZMQ_DEALER);
    if (k->sock == NULL) {
        free(k);
        return NULL;
    }
    s_opts(k->sock);
    unsigned char rid[9];
    rid[0] = (unsigned char)kind;
    for (int i = 0; i < 8; i++) {
        rid[1 + i] = (unsigned char)(c->self >> (8 * i));
    }
    /* A connect that got no answer in 500 ms is abandoned and retried
     * (after ivl, backing off to ivl_max) rather than left to the kernel's
     * SYN retransmissions at 1, 3, 7 s...: a peer whose host was unreachable
     * (a partition, a container off its network) is reached within about a
     * second once it is back. */
    int ivl = 50, ivl_max = 1000, one = 1, connect_timeout = 500;
    int64_t maxmsg = c->codec.max_frame;
    zmq_setsockopt(k->sock, ZMQ_ROUTING_ID, rid, sizeof rid);
    zmq_setsockopt(k->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(k->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt(k->sock, ZMQ_CONNECT_TIMEOUT, &connect_timeout,
                   sizeof connect_timeout);
    zmq_setsockopt(k->sock, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(k->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if ((c->auth != NULL && c->net == NULL &&
         curve_client_setup(c->auth, k->sock, peer) != 0) ||
        zmq_connect(k->sock, endpoint) != 0) {
        zmq_close(k->sock);
        free(k);
        return NULL;
    }
    k->c = c;
    k->parts = c->codec;
    k->parts.zerocopy_min = s_send_min(c);
    k->multipart = k->parts.zerocopy_min != 0 &&
                   c->codec.version >= CODEC_VERSION_MULTIPART;
    k->created_ms = s_now_ms();
    inbox_init(&k->in, c, k->sock, false);
    return k;
}

void rpc_conn_destroy(rpc_conn **kp)
{
    if (kp == NULL || *kp == NULL) {
        return;
    }
    rpc_conn *k = *kp;
    inbox_fini(&k->in);
    zmq_close(k->sock); /* parts still queued drop their references */
    free(k->buf);
    free(k->iov);
    free(k);
    *kp = NULL;
}

void *rpc_conn_socket(rpc_conn *k)
{
    return k->sock;
}

/* ZeroMQ is done with a referenced part: drop the reference it held (on
 * any thread: see the top of this file). */
static void s_part_free(void *data, void *hint)
{
    (void)data;
    TSAN_ACQUIRE(hint); /* the send happened before (s_send_part) */
    zraft_buf_unref(hint);
}

/* Sends one part: by reference when the segment names its buffer, else
 * copied. */
static int s_send_part(void *sock, const codec_iov *g, int flags)
{
    if (g->buf != NULL) {
        zmq_msg_t part;
        if (zmq_msg_init_data(&part, (void *)g->base, g->len, s_part_free,
                              zraft_buf_ref(g->buf)) == 0) {
            TSAN_RELEASE(g->base);
            TSAN_RELEASE(g->buf);
            if (zmq_msg_send(&part, sock, flags) >= 0) {
                return 0;
            }
            zmq_msg_close(&part); /* not taken: the reference goes here */
            return -1;
        }
        zraft_buf_unref(g->buf); /* out of memory: copy it instead */
    }
    return zmq_send(sock, g->base, g->len, flags) < 0 ? -1 : 0;
}

/* Sends the segments as the parts of one message. Only the first part can
 * be refused for a full pipe: ZeroMQ takes the rest of a message whose
 * first part it took. Should a later part fail anyway, the message is
 * closed with an empty part, so that the next one does not run into it:
 * the receiver drops the truncated frame (Raft sends again). */
static int s_send_iov(void *sock, const codec_iov *iov, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int more = i + 1 < n ? ZMQ_SNDMORE : 0;
        if (s_send_part(sock, &iov[i], more | ZMQ_DONTWAIT) != 0) {
            if (i > 0) {
                zmq_send(sock, "", 0, ZMQ_DONTWAIT);
            }
            return ZRAFT_EAGAIN;
        }
    }
    return 0;
}

/* Encodes `m` (or its chunk `ch`) into k->iov, the copied bytes into
 * k->buf, growing both as needed. */
static int s_encode_parts(rpc_conn *k, const msg *m, const codec_chunk *ch,
                          size_t *n)
{
    const codec_ctx *c = &k->parts;
    int rv = codec_encode_iov(c, m, ch, k->buf, k->cap, k->iov, k->iov_cap, n);
    if (rv != ZRAFT_ENOSPACE) {
        return rv;
    }
    size_t scratch, parts;
    rv = codec_iov_plan(c, m, ch, &scratch, &parts);
    if (rv != 0) {
        return rv;
    }
    if (scratch > k->cap) {
        unsigned char *nb = realloc(k->buf, scratch);
        if (nb == NULL) {
            return ZRAFT_ENOMEM;
        }
        k->buf = nb;
        k->cap = scratch;
    }
    if (parts > k->iov_cap) {
        codec_iov *ni = realloc(k->iov, parts * sizeof(*ni));
        if (ni == NULL) {
            return ZRAFT_ENOMEM;
        }
        k->iov = ni;
        k->iov_cap = parts;
    }
    return codec_encode_iov(c, m, ch, k->buf, k->cap, k->iov, k->iov_cap, n);
}

static int s_conn_send(rpc_conn *k, const msg *m, const codec_chunk *ch,
                       const fwd_body *fb)
{
    size_t len;
    k->last_send_ms = s_now_ms();
    if (k->unanswered_ms == 0) {
        k->unanswered_ms = k->last_send_ms; /* a refused send counts too */
    }
    if (fb == NULL && k->multipart &&
        (m->type == MSG_APPEND || m->type == MSG_SNAPSHOT)) {
        size_t n;
        int rv = s_encode_parts(k, m, ch, &n);
        return rv != 0 ? rv : s_send_iov(k->sock, k->iov, n);
    }
    int rv = s_encode_any(k->c, &k->buf, &k->cap, m, ch, fb, &len);
    if (rv != 0) {
        return rv;
    }
    return zmq_send(k->sock, k->buf, len, ZMQ_DONTWAIT) < 0 ? ZRAFT_EAGAIN : 0;
}

int rpc_conn_send(rpc_conn *k, const msg *m)
{
    if (m->type == MSG_SNAPSHOT) {
        return ZRAFT_EINVAL; /* chunk by chunk: rpc_conn_send_chunk() */
    }
    return s_conn_send(k, m, NULL, NULL);
}

int rpc_conn_send_fwd(rpc_conn *k, const msg *m, const codec_fwd *items,
                      uint32_t n)
{
    fwd_body fb = {items, n};
    return s_conn_send(k, m, NULL, &fb);
}

const codec_fwd *rpc_conn_fwd(const rpc_conn *k, uint32_t *n)
{
    *n = k->in.arena.n_fwd;
    return k->in.arena.fwd;
}

int rpc_conn_send_chunk(rpc_conn *k, const msg *m, const codec_chunk *ch)
{
    if (m->type != MSG_SNAPSHOT || ch == NULL) {
        return ZRAFT_EINVAL;
    }
    return s_conn_send(k, m, ch, NULL);
}

const codec_ack *rpc_conn_ack(const rpc_conn *k)
{
    return &k->in.arena.ack;
}

int rpc_conn_recv(rpc_conn *k, msg *out, uint64_t now_ms)
{
    int rv = inbox_recv(&k->in, out, now_ms);
    if (rv == 1) {
        k->last_recv_ms = s_now_ms();
        k->unanswered_ms = 0;
    }
    return rv;
}

uint64_t rpc_conn_next_due(const rpc_conn *k)
{
    return inbox_next_due(&k->in);
}
