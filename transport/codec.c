/* codec.c - the wire codec: msg <-> frame bytes (docs/wire.md).
 *
 * Encoding runs in two steps: s_prepare() checks the message against
 * everything the decoder will check and computes the body length; s_emit()
 * then writes header and body through a small writer that either fills
 * one buffer, or fills a scratch buffer plus a list of segments referencing
 * large payloads in place, or only counts (to plan the other two).
 *
 * Decoding reads through a cursor over one or more segments that knows how
 * many bytes remain, so every length and count is compared with what is
 * left before anything is copied or allocated. Authentication is not the
 * codec's: with CurveZMQ (transport/curve.h) no stranger's bytes get here,
 * and the transport checks the sender before decoding. */
#include <stdlib.h>
#include <string.h>

#include "transport/codec.h"

/* Longest zraft_membership_encode() output: 4-byte head and per member
 * 8 (id) + 1 (roles) + 1 (addr_len) + at most ZRAFT_ADDR_MAX - 1. */
#define MEMBERSHIP_MAX_LEN (4 + ZRAFT_MAX_MEMBERS * (10 + (ZRAFT_ADDR_MAX - 1)))

/* Fixed body sizes (docs/wire.md). */
#define VOTE_LEN           17
#define VOTE_RESP_LEN      1
#define APPEND_FIXED_LEN   28
#define APPEND_RESP_LEN    25
#define HEARTBEAT_LEN      16
#define HEARTBEAT_RESP_LEN 8
#define SNAPSHOT_FIXED_LEN 47
#define SNAPSHOT_RESP_LEN  9
#define TIMEOUT_NOW_LEN    0
#define SNAPSHOT_ACK_LEN   25 /* version >= 2 */
#define FWD_FIXED_LEN      4  /* version >= 3: item count */
#define FWD_ERR_MIN        (-255)
#define FWD_F_DATA         0x01

#define VOTE_F_PRE_VOTE     0x01
#define VOTE_F_TRANSFER     0x02
#define VOTE_RESP_F_GRANTED 0x01
#define VOTE_RESP_F_PRE     0x02
#define CHUNK_F_LAST        0x01

/* ============================================================ encoding */

enum { W_FLAT, W_IOV, W_COUNT };

/* Where s_emit() puts the bytes. */
typedef struct {
    int mode;
    unsigned char *buf; /* W_FLAT: the frame; W_IOV: scratch */
    size_t cap;         /* of buf */
    size_t pos;         /* bytes written to buf (W_COUNT: counted) */
    size_t run;         /* W_IOV: start of the scratch run not yet listed */
    codec_iov *iov;     /* W_IOV */
    size_t iov_cap;
    size_t n_iov;  /* segments listed (W_COUNT: counted) */
    size_t zc_min; /* payloads referenced from this length on */
    int err;       /* first error (ZRAFT_ENOSPACE) */
} writer;

static void w_flush_run(writer *w)
{
    if (w->pos == w->run) {
        return;
    }
    if (w->mode == W_IOV) {
        if (w->n_iov == w->iov_cap) {
            w->err = ZRAFT_ENOSPACE;
            return;
        }
        w->iov[w->n_iov].base = w->buf + w->run;
        w->iov[w->n_iov].len = w->pos - w->run;
        w->iov[w->n_iov].buf = NULL;
    }
    w->n_iov++;
    w->run = w->pos;
}

/* Copies n bytes into the frame. */
static void w_put(writer *w, const void *p, size_t n)
{
    if (w->err != 0 || n == 0) {
        return;
    }
    if (w->mode != W_COUNT) {
        if (w->cap - w->pos < n) {
            w->err = ZRAFT_ENOSPACE;
            return;
        }
        memcpy(w->buf + w->pos, p, n);
    }
    w->pos += n;
}

/* The payload length from which `c` references instead of copying. */
static size_t s_zc_min(const codec_ctx *c)
{
    return c->zerocopy_min ? c->zerocopy_min : CODEC_ZEROCOPY_MIN;
}

/* Payload bytes (held by `owner`, NULL: unknown): referenced in place by
 * the iov writer when large enough, otherwise copied. */
static void w_ref(writer *w, const void *p, size_t n, zraft_buf *owner)
{
    if (w->mode == W_FLAT || n < w->zc_min) {
        w_put(w, p, n);
        return;
    }
    if (w->err != 0) {
        return;
    }
    w_flush_run(w);
    if (w->err != 0) {
        return;
    }
    if (w->mode == W_IOV) {
        if (w->n_iov == w->iov_cap) {
            w->err = ZRAFT_ENOSPACE;
            return;
        }
        w->iov[w->n_iov].base = p;
        w->iov[w->n_iov].len = n;
        w->iov[w->n_iov].buf = owner;
    }
    w->n_iov++;
}

static void w_u8(writer *w, uint8_t v)
{
    w_put(w, &v, 1);
}

static void w_u16(writer *w, uint16_t v)
{
    unsigned char b[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    w_put(w, b, 2);
}

static void w_u32(writer *w, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++) {
        b[i] = (unsigned char)(v >> (8 * i));
    }
    w_put(w, b, 4);
}

static void w_u64(writer *w, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(v >> (8 * i));
    }
    w_put(w, b, 8);
}

static bool entry_type_valid(uint8_t t)
{
    return t == ZRAFT_ENTRY_NORMAL || t == ZRAFT_ENTRY_BLANK ||
           t == ZRAFT_ENTRY_MEMBERSHIP;
}

/* True when `p` is the canonical encoding of a valid configuration: it
 * decodes, and encoding the result gives the same bytes back (so that, for
 * example, an address with a NUL inside is not silently shortened). */
static bool membership_canonical(const unsigned char *p, size_t len,
                                 zraft_membership *out)
{
    unsigned char again[MEMBERSHIP_MAX_LEN];
    if (len > MEMBERSHIP_MAX_LEN || zraft_membership_decode(p, len, out) != 0 ||
        zraft_membership_encoded_len(out) != len) {
        return false;
    }
    zraft_membership_encode(out, again);
    return memcmp(again, p, len) == 0;
}

static bool membership_equal(const zraft_membership *x,
                             const zraft_membership *y)
{
    if (x->n != y->n || x->joint != y->joint) {
        return false;
    }
    for (uint32_t i = 0; i < x->n && i < ZRAFT_MAX_MEMBERS; i++) {
        const zraft_member *p = &x->members[i], *q = &y->members[i];
        if (p->id != q->id || p->roles != q->roles ||
            strncmp(p->addr, q->addr, ZRAFT_ADDR_MAX) != 0) {
            return false;
        }
    }
    return true;
}

/* What s_emit() needs beyond the msg, computed by s_prepare(). */
typedef struct {
    uint32_t body_len;
    const codec_ack *ack; /* CODEC_MSG_SNAPSHOT_ACK */
    const codec_fwd *fwd; /* FORWARD[_REPLY] items */
    uint32_t n_fwd;
    codec_chunk chunk;                      /* MSG_SNAPSHOT */
    unsigned char mbuf[MEMBERSHIP_MAX_LEN]; /* MSG_SNAPSHOT: encoded meta */
    uint16_t mlen;
} plan;

/* Checks `m` (and `ch`) against the rules the decoder enforces and sizes
 * the body. */
static int s_prepare(const codec_ctx *c, const msg *m, const codec_chunk *ch,
                     plan *p)
{
    uint64_t body = 0;
    p->ack = NULL;
    p->fwd = NULL;
    if (m->type < MSG_VOTE || m->type >= MSG__COUNT || m->from == 0 ||
        m->to == 0 || c->version < CODEC_VERSION_MIN ||
        c->version > CODEC_VERSION) {
        return ZRAFT_EINVAL;
    }
    if (ch != NULL && m->type != MSG_SNAPSHOT) {
        return ZRAFT_EINVAL;
    }
    switch (m->type) {
    case MSG_VOTE:
        body = VOTE_LEN;
        break;
    case MSG_VOTE_RESP:
        body = VOTE_RESP_LEN;
        break;
    case MSG_APPEND: {
        const zraft_log_id prev = m->u.append.prev;
        uint32_t n = m->u.append.n_entries;
        if (n > c->max_entries) {
            return ZRAFT_ETOOBIG;
        }
        if (n > 0 &&
            (m->u.append.entries == NULL || prev.index > UINT64_MAX - n)) {
            return ZRAFT_EINVAL;
        }
        body = APPEND_FIXED_LEN;
        uint64_t last_term = prev.term;
        for (uint32_t i = 0; i < n; i++) {
            const zraft_entry *e = &m->u.append.entries[i];
            size_t len = zraft_entry_len(e);
            zraft_membership scratch;
            if (e->id.index != prev.index + 1 + i || e->id.term < last_term ||
                e->id.term == 0 || e->id.term > m->term ||
                !entry_type_valid(e->type) ||
                (e->type == ZRAFT_ENTRY_BLANK && len != 0)) {
                return ZRAFT_EINVAL;
            }
            if (len > UINT32_MAX) {
                return ZRAFT_ETOOBIG;
            }
            if (e->type == ZRAFT_ENTRY_MEMBERSHIP &&
                !membership_canonical(len ? e->payload->data : NULL, len,
                                      &scratch)) {
                return ZRAFT_EINVAL;
            }
            last_term = e->id.term;
            body += CODEC_ENTRY_MIN_LEN + (uint64_t)len;
            if (body > c->max_frame) {
                return ZRAFT_ETOOBIG;
            }
        }
        break;
    }
    case MSG_APPEND_RESP:
        body = APPEND_RESP_LEN;
        break;
    case MSG_HEARTBEAT:
        body = HEARTBEAT_LEN;
        break;
    case MSG_HEARTBEAT_RESP:
        body = HEARTBEAT_RESP_LEN;
        break;
    case MSG_SNAPSHOT: {
        const snapshot_meta *meta = m->u.snapshot.meta;
        zraft_membership scratch;
        if (meta == NULL) {
            return ZRAFT_EINVAL;
        }
        if (ch == NULL) {
            const zraft_buf *d = m->u.snapshot.data;
            size_t len = d ? d->len : 0;
            if (len > UINT32_MAX) {
                return ZRAFT_ETOOBIG;
            }
            p->chunk.snapshot_id = 0;
            p->chunk.total = len;
            p->chunk.offset = 0;
            p->chunk.bytes = len ? d->data : NULL;
            p->chunk.len = (uint32_t)len;
            p->chunk.last = true;
            p->chunk.buf = len ? (zraft_buf *)d : NULL;
        } else {
            p->chunk = *ch;
            if (ch->offset > ch->total || ch->total - ch->offset < ch->len ||
                ch->last != (ch->total - ch->offset == ch->len) ||
                (ch->bytes == NULL && ch->len > 0)) {
                return ZRAFT_EINVAL;
            }
        }
        size_t ml = zraft_membership_encoded_len(&meta->membership);
        if (ml > MEMBERSHIP_MAX_LEN) {
            return ZRAFT_EINVAL;
        }
        zraft_membership_encode(&meta->membership, p->mbuf);
        /* Also refuse a configuration the encoding would alter (more than
         * ZRAFT_MAX_MEMBERS, an address without its NUL). */
        if (!membership_canonical(p->mbuf, ml, &scratch) ||
            !membership_equal(&scratch, &meta->membership)) {
            return ZRAFT_EINVAL;
        }
        p->mlen = (uint16_t)ml;
        body = SNAPSHOT_FIXED_LEN + (uint64_t)ml + p->chunk.len;
        break;
    }
    case MSG_SNAPSHOT_RESP:
        body = SNAPSHOT_RESP_LEN;
        break;
    case MSG_TIMEOUT_NOW:
        body = TIMEOUT_NOW_LEN;
        break;
    }
    uint64_t frame = CODEC_HEADER_LEN + body;
    if (frame > c->max_frame) {
        return ZRAFT_ETOOBIG;
    }
    p->body_len = (uint32_t)body;
    return 0;
}

/* Writes the frame planned by s_prepare(). */
static void s_emit(const codec_ctx *c, const msg *m, const plan *p, writer *w)
{
    static const unsigned char magic[4] = {CODEC_MAGIC0, CODEC_MAGIC1,
                                           CODEC_MAGIC2, CODEC_MAGIC3};
    w_put(w, magic, 4);
    w_u8(w, c->version);
    w_u8(w, m->type);
    w_u16(w, 0); /* flags */
    w_u64(w, c->cluster_id);
    w_u64(w, m->from);
    w_u64(w, m->to);
    w_u64(w, m->term);
    w_u32(w, p->body_len);

    switch (m->type) {
    case MSG_VOTE:
        w_u64(w, m->u.vote.last_log_id.term);
        w_u64(w, m->u.vote.last_log_id.index);
        w_u8(w, (m->u.vote.pre_vote ? VOTE_F_PRE_VOTE : 0) |
                    (m->u.vote.transfer ? VOTE_F_TRANSFER : 0));
        break;
    case MSG_VOTE_RESP:
        w_u8(w, (m->u.vote_resp.granted ? VOTE_RESP_F_GRANTED : 0) |
                    (m->u.vote_resp.pre_vote ? VOTE_RESP_F_PRE : 0));
        break;
    case MSG_APPEND:
        w_u64(w, m->u.append.prev.term);
        w_u64(w, m->u.append.prev.index);
        w_u64(w, m->u.append.commit);
        w_u32(w, m->u.append.n_entries);
        for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
            const zraft_entry *e = &m->u.append.entries[i];
            size_t len = zraft_entry_len(e);
            w_u64(w, e->id.term);
            w_u8(w, e->type);
            w_u32(w, (uint32_t)len);
            if (len > 0) {
                w_ref(w, e->payload->data, len, e->payload);
            }
        }
        break;
    case MSG_APPEND_RESP:
        w_u8(w, m->u.append_resp.success ? 1 : 0);
        w_u64(w, m->u.append_resp.index);
        w_u64(w, m->u.append_resp.hint_index);
        w_u64(w, m->u.append_resp.hint_term);
        break;
    case MSG_HEARTBEAT:
        w_u64(w, m->u.heartbeat.commit);
        w_u64(w, m->u.heartbeat.ctx);
        break;
    case MSG_HEARTBEAT_RESP:
        w_u64(w, m->u.heartbeat_resp.ctx);
        break;
    case MSG_SNAPSHOT:
        w_u64(w, p->chunk.snapshot_id);
        w_u64(w, m->u.snapshot.meta->last_log_id.term);
        w_u64(w, m->u.snapshot.meta->last_log_id.index);
        w_u64(w, p->chunk.total);
        w_u64(w, p->chunk.offset);
        w_u8(w, p->chunk.last ? CHUNK_F_LAST : 0);
        w_u16(w, p->mlen);
        w_u32(w, p->chunk.len);
        w_put(w, p->mbuf, p->mlen);
        w_ref(w, p->chunk.bytes, p->chunk.len, p->chunk.buf);
        break;
    case MSG_SNAPSHOT_RESP:
        w_u8(w, m->u.snapshot_resp.success ? 1 : 0);
        w_u64(w, m->u.snapshot_resp.index);
        break;
    case CODEC_MSG_SNAPSHOT_ACK:
        w_u64(w, p->ack->snapshot_id);
        w_u64(w, p->ack->offset);
        w_u64(w, p->ack->next);
        w_u8(w, p->ack->status);
        break;
    case CODEC_MSG_FORWARD:
    case CODEC_MSG_FORWARD_REPLY:
        w_u32(w, p->n_fwd);
        for (uint32_t i = 0; i < p->n_fwd; i++) {
            const codec_fwd *f = &p->fwd[i];
            size_t len = f->data ? f->data->len : 0;
            w_u64(w, f->req_id);
            w_u8(w, f->op);
            if (m->type == CODEC_MSG_FORWARD_REPLY) {
                w_u8(w, f->data ? FWD_F_DATA : 0);
                w_u32(w, (uint32_t)f->err);
                w_u64(w, f->id.term);
                w_u64(w, f->id.index);
            }
            w_u32(w, (uint32_t)len);
            if (len > 0) {
                w_ref(w, f->data->data, len, f->data);
            }
        }
        break;
    default: /* MSG_TIMEOUT_NOW: empty body */
        break;
    }
    if (w->mode != W_FLAT) {
        w_flush_run(w);
    }
}

static size_t s_encoded_len(const codec_ctx *c, const msg *m,
                            const codec_chunk *ch)
{
    plan p;
    if (s_prepare(c, m, ch, &p) != 0) {
        return 0;
    }
    return CODEC_HEADER_LEN + (size_t)p.body_len;
}

/* Writes a planned frame into out[0..cap): the one flat-buffer path of
 * every encoder (messages, chunks, acks, forwards). */
static int s_emit_flat(const codec_ctx *c, const msg *m, const plan *p,
                       unsigned char *out, size_t cap, size_t *written)
{
    if (cap < CODEC_HEADER_LEN + (size_t)p->body_len) {
        return ZRAFT_ENOSPACE;
    }
    writer w = {.mode = W_FLAT, .buf = out, .cap = cap};
    s_emit(c, m, p, &w);
    if (w.err != 0) {
        return w.err;
    }
    *written = w.pos;
    return 0;
}

static int s_encode_flat(const codec_ctx *c, const msg *m,
                         const codec_chunk *ch, unsigned char *out, size_t cap,
                         size_t *written)
{
    plan p;
    int rv = s_prepare(c, m, ch, &p);
    if (rv != 0) {
        return rv;
    }
    return s_emit_flat(c, m, &p, out, cap, written);
}

size_t codec_encoded_len(const codec_ctx *c, const msg *m)
{
    return s_encoded_len(c, m, NULL);
}

int codec_encode(const codec_ctx *c, const msg *m, unsigned char *out,
                 size_t cap, size_t *written)
{
    return s_encode_flat(c, m, NULL, out, cap, written);
}

size_t codec_chunk_encoded_len(const codec_ctx *c, const msg *m,
                               const codec_chunk *ch)
{
    if (ch == NULL) {
        return 0;
    }
    return s_encoded_len(c, m, ch);
}

int codec_encode_chunk(const codec_ctx *c, const msg *m, const codec_chunk *ch,
                       unsigned char *out, size_t cap, size_t *written)
{
    if (ch == NULL) {
        return ZRAFT_EINVAL;
    }
    return s_encode_flat(c, m, ch, out, cap, written);
}

int codec_encode_ack(const codec_ctx *c, const msg *m, const codec_ack *a,
                     unsigned char *out, size_t cap, size_t *written)
{
    if (m->type != CODEC_MSG_SNAPSHOT_ACK || m->from == 0 || m->to == 0 ||
        a == NULL || a->status > CODEC_ACK_ABORTED || c->version < 2 ||
        c->version > CODEC_VERSION) {
        return ZRAFT_EINVAL;
    }
    plan p;
    memset(&p, 0, sizeof p);
    p.body_len = SNAPSHOT_ACK_LEN;
    p.ack = a;
    return s_emit_flat(c, m, &p, out, cap, written);
}

/* Checks a forward frame against the decoder's rules and sizes its body. */
static int s_prepare_fwd(const codec_ctx *c, const msg *m,
                         const codec_fwd *items, uint32_t n, plan *p)
{
    bool reply = m->type == CODEC_MSG_FORWARD_REPLY;
    memset(p, 0, sizeof(*p));
    if ((m->type != CODEC_MSG_FORWARD && !reply) || m->from == 0 ||
        m->to == 0 || c->version < 3 || c->version > CODEC_VERSION || n == 0 ||
        items == NULL) {
        return ZRAFT_EINVAL;
    }
    if (n > c->max_entries) {
        return ZRAFT_ETOOBIG;
    }
    uint64_t body = FWD_FIXED_LEN;
    for (uint32_t i = 0; i < n; i++) {
        const codec_fwd *f = &items[i];
        size_t len = f->data ? f->data->len : 0;
        bool read = f->op == CODEC_FWD_READ;
        if ((f->op != CODEC_FWD_WRITE && !read) || (read && f->data) ||
            f->err > 0 || f->err < FWD_ERR_MIN ||
            (!reply && (f->err != 0 || f->id.term || f->id.index)) ||
            (read && f->id.term != 0)) {
            return ZRAFT_EINVAL;
        }
        if (len > UINT32_MAX) {
            return ZRAFT_ETOOBIG;
        }
        body += (reply ? CODEC_FWD_REPLY_MIN_LEN : CODEC_FWD_MIN_LEN) +
                (uint64_t)len;
        if (body > c->max_frame) {
            return ZRAFT_ETOOBIG;
        }
    }
    if (CODEC_HEADER_LEN + body > c->max_frame) {
        return ZRAFT_ETOOBIG;
    }
    p->body_len = (uint32_t)body;
    p->fwd = items;
    p->n_fwd = n;
    return 0;
}

size_t codec_fwd_encoded_len(const codec_ctx *c, const msg *m,
                             const codec_fwd *items, uint32_t n)
{
    plan p;
    if (s_prepare_fwd(c, m, items, n, &p) != 0) {
        return 0;
    }
    return CODEC_HEADER_LEN + (size_t)p.body_len;
}

int codec_encode_fwd(const codec_ctx *c, const msg *m, const codec_fwd *items,
                     uint32_t n, unsigned char *out, size_t cap,
                     size_t *written)
{
    plan p;
    int rv = s_prepare_fwd(c, m, items, n, &p);
    if (rv != 0) {
        return rv;
    }
    return s_emit_flat(c, m, &p, out, cap, written);
}

int codec_iov_plan(const codec_ctx *c, const msg *m, const codec_chunk *ch,
                   size_t *scratch_len, size_t *n_iov)
{
    plan p;
    int rv = s_prepare(c, m, ch, &p);
    if (rv != 0) {
        return rv;
    }
    writer w = {.mode = W_COUNT, .zc_min = s_zc_min(c)};
    s_emit(c, m, &p, &w);
    /* As in W_IOV, pos counts only the bytes that go to scratch: w_ref()
     * does not advance it for referenced payloads. */
    *scratch_len = w.pos;
    *n_iov = w.n_iov;
    return 0;
}

int codec_encode_iov(const codec_ctx *c, const msg *m, const codec_chunk *ch,
                     unsigned char *scratch, size_t scratch_cap, codec_iov *iov,
                     size_t iov_cap, size_t *n_iov)
{
    plan p;
    int rv = s_prepare(c, m, ch, &p);
    if (rv != 0) {
        return rv;
    }
    writer w = {.mode = W_IOV,
                .buf = scratch,
                .cap = scratch_cap,
                .iov = iov,
                .iov_cap = iov_cap,
                .zc_min = s_zc_min(c)};
    /* w.pos counts only scratch bytes in W_IOV: w_ref() does not advance
     * it, so runs of scratch stay contiguous. */
    s_emit(c, m, &p, &w);
    if (w.err != 0) {
        return w.err;
    }
    *n_iov = w.n_iov;
    return 0;
}

/* ============================================================ decoding */

/* A cursor over the concatenation of segments, limited to `left` bytes. */
typedef struct {
    const codec_iov *seg;
    size_t nseg;
    size_t i;       /* current segment */
    size_t off;     /* offset in it */
    size_t left;    /* bytes that may still be read */
    size_t zc_min;  /* payloads referenced from this length on */
    codec_arena *a; /* its hold callback, if any */
} reader;

/* The little-endian integer of `n` <= 8 bytes at `p`. */
static uint64_t le_get(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static bool r_bytes(reader *r, void *dst, size_t n)
{
    unsigned char *d = dst;
    if (n > r->left) {
        return false;
    }
    r->left -= n;
    while (n > 0) {
        while (r->i < r->nseg && r->off == r->seg[r->i].len) {
            r->i++;
            r->off = 0;
        }
        if (r->i == r->nseg) {
            return false; /* `left` exceeded the segments: a bug, not input */
        }
        size_t avail = r->seg[r->i].len - r->off;
        size_t take = avail < n ? avail : n;
        memcpy(d, (const unsigned char *)r->seg[r->i].base + r->off, take);
        d += take;
        r->off += take;
        n -= take;
    }
    return true;
}

static bool r_u8(reader *r, uint8_t *v)
{
    return r_bytes(r, v, 1);
}

static bool r_u16(reader *r, uint16_t *v)
{
    unsigned char b[2];
    if (!r_bytes(r, b, 2)) {
        return false;
    }
    *v = (uint16_t)le_get(b, 2);
    return true;
}

static bool r_u32(reader *r, uint32_t *v)
{
    unsigned char b[4];
    if (!r_bytes(r, b, 4)) {
        return false;
    }
    *v = (uint32_t)le_get(b, 4);
    return true;
}

static bool r_u64(reader *r, uint64_t *v)
{
    unsigned char b[8];
    if (!r_bytes(r, b, 8)) {
        return false;
    }
    *v = le_get(b, 8);
    return true;
}

static void s_unref_owner(void *ctx, void *data)
{
    (void)data;
    zraft_buf_unref(ctx);
}

/* The `len` bytes at the cursor as a reference to the segment's buffer,
 * if they lie within one segment that names it (or the hold callback
 * names) and are worth it: at least zerocopy_min bytes, and at least half
 * of the segment, so that a payload kept for long (a state machine's
 * value) never keeps more than twice its size alive. NULL otherwise (or
 * out of memory): the caller copies. Advances on success. */
static zraft_buf *r_ref(reader *r, size_t len)
{
    while (r->i < r->nseg && r->off == r->seg[r->i].len) {
        r->i++;
        r->off = 0;
    }
    if (len < r->zc_min || r->i == r->nseg) {
        return NULL;
    }
    const codec_iov *g = &r->seg[r->i];
    if (g->len - r->off < len || len < g->len - len) {
        return NULL;
    }
    if (g->buf == NULL && r->a->hold != NULL) {
        r->a->hold(r->a->hold_ctx, r->i); /* sets g->buf, or leaves NULL */
    }
    if (g->buf == NULL) {
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)g->base + r->off;
    zraft_buf *b;
    if (p == g->buf->data && len == g->buf->len) {
        b = zraft_buf_ref(g->buf); /* the payload is the whole part */
    } else {
        b = zraft_buf_wrap((void *)p, len, s_unref_owner, g->buf);
        if (b == NULL) {
            return NULL;
        }
        zraft_buf_ref(g->buf);
    }
    r->off += len;
    r->left -= len;
    return b;
}

/* Reads `len` bytes as a new buffer (one reference, caller owns it): a
 * reference to the received bytes when r_ref() can, else a copy. */
static int r_buf(reader *r, size_t len, zraft_buf **out)
{
    if (len > r->left) {
        return ZRAFT_EMALFORMED;
    }
    zraft_buf *b = r_ref(r, len);
    if (b != NULL) {
        *out = b;
        return 0;
    }
    b = zraft_buf_new(NULL, len);
    if (b == NULL) {
        return ZRAFT_ENOMEM;
    }
    r_bytes(r, b->data, len);
    *out = b;
    return 0;
}

void codec_arena_init(codec_arena *a)
{
    memset(a, 0, sizeof(*a));
}

/* Drops the payload references of the forward items decoded last. */
static void s_fwd_clear(codec_arena *a)
{
    for (uint32_t i = 0; i < a->n_fwd; i++) {
        zraft_buf_unref(a->fwd[i].data);
        a->fwd[i].data = NULL;
    }
    a->n_fwd = 0;
}

void codec_arena_fini(codec_arena *a)
{
    s_fwd_clear(a);
    free(a->fwd);
    free(a->entries);
    memset(a, 0, sizeof(*a));
}

void codec_msg_release(msg *m)
{
    if (m == NULL) {
        return;
    }
    if (m->type == MSG_APPEND) {
        for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
            zraft_buf_unref(m->u.append.entries[i].payload);
            m->u.append.entries[i].payload = NULL;
        }
        m->u.append.n_entries = 0;
        m->u.append.entries = NULL;
    } else if (m->type == MSG_SNAPSHOT) {
        zraft_buf_unref(m->u.snapshot.data);
        m->u.snapshot.data = NULL;
    }
}

/* Records which check failed; returns `code` for the caller to return. */
static int fail(codec_arena *a, int code, const char *why)
{
    a->why = why;
    return code;
}

static int s_decode_append(const codec_ctx *c, reader *r, msg *out,
                           codec_arena *a)
{
    uint32_t n;
    zraft_log_id prev;
    if (!r_u64(r, &prev.term) || !r_u64(r, &prev.index) ||
        !r_u64(r, &out->u.append.commit) || !r_u32(r, &n)) {
        return fail(a, ZRAFT_EMALFORMED, "append: short fixed fields");
    }
    out->u.append.prev = prev;
    if (n > c->max_entries) {
        return fail(a, ZRAFT_ETOOBIG, "append: more entries than max_entries");
    }
    /* No allocation from a forged count: each entry needs at least
     * CODEC_ENTRY_MIN_LEN bytes of what is left. */
    if ((uint64_t)n * CODEC_ENTRY_MIN_LEN > r->left) {
        return fail(a, ZRAFT_EMALFORMED,
                    "append: entry count exceeds the frame");
    }
    if (n > 0 && prev.index > UINT64_MAX - n) {
        return fail(a, ZRAFT_EMALFORMED, "append: entry index overflows");
    }
    if (n > a->entries_cap) {
        zraft_entry *e = realloc(a->entries, (size_t)n * sizeof(*e));
        if (e == NULL) {
            return fail(a, ZRAFT_ENOMEM, "append: out of memory");
        }
        a->entries = e;
        a->entries_cap = n;
    }
    out->u.append.entries = n > 0 ? a->entries : NULL;
    out->u.append.n_entries = 0; /* counts the entries that own a payload */
    uint64_t last_term = prev.term;
    for (uint32_t i = 0; i < n; i++) {
        zraft_entry *e = &a->entries[i];
        uint32_t len;
        int rv;
        e->payload = NULL;
        if (!r_u64(r, &e->id.term) || !r_u8(r, &e->type) || !r_u32(r, &len)) {
            return fail(a, ZRAFT_EMALFORMED, "append: short entry header");
        }
        e->id.index = prev.index + 1 + i;
        if (!entry_type_valid(e->type)) {
            return fail(a, ZRAFT_EMALFORMED, "append: unknown entry type");
        }
        /* Terms along a log never decrease (§5.3 log matching) and a leader
         * sends no entry newer than its own term. */
        if (e->id.term == 0 || e->id.term < last_term ||
            e->id.term > out->term) {
            return fail(a, ZRAFT_EMALFORMED, "append: entry term out of order");
        }
        last_term = e->id.term;
        if (len > r->left) {
            return fail(a, ZRAFT_EMALFORMED,
                        "append: payload exceeds the frame");
        }
        if (e->type == ZRAFT_ENTRY_BLANK) {
            if (len != 0) {
                return fail(a, ZRAFT_EMALFORMED,
                            "append: blank entry with payload");
            }
            continue;
        }
        rv = r_buf(r, len, &e->payload);
        if (rv != 0) {
            return fail(a, rv, "append: out of memory");
        }
        out->u.append.n_entries = i + 1;
        if (e->type == ZRAFT_ENTRY_MEMBERSHIP) {
            zraft_membership scratch;
            if (!membership_canonical(e->payload->data, len, &scratch)) {
                return fail(a, ZRAFT_EMALFORMED,
                            "append: bad membership payload");
            }
        }
    }
    out->u.append.n_entries = n;
    return 0;
}

static int s_decode_snapshot(reader *r, msg *out, codec_arena *a)
{
    codec_chunk *ch = &a->chunk;
    snapshot_meta *meta = &a->meta;
    uint8_t flags;
    uint16_t mlen;
    uint32_t clen;
    unsigned char mbuf[MEMBERSHIP_MAX_LEN];
    if (!r_u64(r, &ch->snapshot_id) || !r_u64(r, &meta->last_log_id.term) ||
        !r_u64(r, &meta->last_log_id.index) || !r_u64(r, &ch->total) ||
        !r_u64(r, &ch->offset) || !r_u8(r, &flags) || !r_u16(r, &mlen) ||
        !r_u32(r, &clen)) {
        return fail(a, ZRAFT_EMALFORMED, "snapshot: short fixed fields");
    }
    if ((flags & ~CHUNK_F_LAST) != 0) {
        return fail(a, ZRAFT_EMALFORMED, "snapshot: unknown chunk flag");
    }
    ch->last = (flags & CHUNK_F_LAST) != 0;
    ch->len = clen;
    if (ch->offset > ch->total || ch->total - ch->offset < clen ||
        ch->last != (ch->total - ch->offset == clen)) {
        return fail(a, ZRAFT_EMALFORMED, "snapshot: chunk range inconsistent");
    }
    if ((uint64_t)mlen + clen != r->left) {
        return fail(a, ZRAFT_EMALFORMED,
                    "snapshot: lengths do not match the frame");
    }
    if (mlen > sizeof(mbuf) || !r_bytes(r, mbuf, mlen) ||
        !membership_canonical(mbuf, mlen, &meta->membership)) {
        return fail(a, ZRAFT_EMALFORMED, "snapshot: bad membership");
    }
    int rv = r_buf(r, clen, &out->u.snapshot.data);
    if (rv != 0) {
        return fail(a, rv, "snapshot: out of memory");
    }
    out->u.snapshot.meta = meta;
    ch->bytes = out->u.snapshot.data->data;
    return 0;
}

static int s_decode_fwd(const codec_ctx *c, reader *r, const msg *out,
                        codec_arena *a)
{
    bool reply = out->type == CODEC_MSG_FORWARD_REPLY;
    uint32_t n;
    if (!r_u32(r, &n)) {
        return fail(a, ZRAFT_EMALFORMED, "forward: short fixed fields");
    }
    if (n == 0) {
        return fail(a, ZRAFT_EMALFORMED, "forward: no items");
    }
    if (n > c->max_entries) {
        return fail(a, ZRAFT_ETOOBIG, "forward: more items than max_entries");
    }
    /* No allocation from a forged count (as for entries). */
    if ((uint64_t)n * (reply ? CODEC_FWD_REPLY_MIN_LEN : CODEC_FWD_MIN_LEN) >
        r->left) {
        return fail(a, ZRAFT_EMALFORMED, "forward: item count exceeds frame");
    }
    if (n > a->fwd_cap) {
        codec_fwd *f = realloc(a->fwd, (size_t)n * sizeof(*f));
        if (f == NULL) {
            return fail(a, ZRAFT_ENOMEM, "forward: out of memory");
        }
        a->fwd = f;
        a->fwd_cap = n;
    }
    for (uint32_t i = 0; i < n; i++) {
        codec_fwd *f = &a->fwd[i];
        uint8_t flags = 0;
        uint32_t err = 0, len;
        memset(f, 0, sizeof(*f));
        if (!r_u64(r, &f->req_id) || !r_u8(r, &f->op) ||
            (reply && (!r_u8(r, &flags) || !r_u32(r, &err) ||
                       !r_u64(r, &f->id.term) || !r_u64(r, &f->id.index))) ||
            !r_u32(r, &len)) {
            return fail(a, ZRAFT_EMALFORMED, "forward: short item");
        }
        f->err = (int32_t)err;
        bool read = f->op == CODEC_FWD_READ;
        if (f->op != CODEC_FWD_WRITE && !read) {
            return fail(a, ZRAFT_EMALFORMED, "forward: unknown op");
        }
        if ((flags & ~FWD_F_DATA) != 0 || f->err > 0 || f->err < FWD_ERR_MIN) {
            return fail(a, ZRAFT_EMALFORMED, "forward: bad flags or error");
        }
        if (read && (len != 0 || flags != 0 || f->id.term != 0)) {
            return fail(a, ZRAFT_EMALFORMED, "forward: read with data");
        }
        if (reply && !(flags & FWD_F_DATA) && len != 0) {
            return fail(a, ZRAFT_EMALFORMED, "forward: data without its flag");
        }
        if (len > r->left) {
            return fail(a, ZRAFT_EMALFORMED, "forward: data exceeds the frame");
        }
        a->n_fwd = i + 1; /* owns what is decoded so far */
        if (read || (reply && !(flags & FWD_F_DATA))) {
            continue;
        }
        int rv = r_buf(r, len, &f->data);
        if (rv != 0) {
            return fail(a, rv, "forward: out of memory");
        }
    }
    return 0;
}

static int s_decode_body(const codec_ctx *c, reader *r, msg *out,
                         codec_arena *a)
{
    uint8_t f;
    switch (out->type) {
    case MSG_VOTE:
        if (!r_u64(r, &out->u.vote.last_log_id.term) ||
            !r_u64(r, &out->u.vote.last_log_id.index) || !r_u8(r, &f)) {
            return fail(a, ZRAFT_EMALFORMED, "vote: short body");
        }
        if ((f & ~(VOTE_F_PRE_VOTE | VOTE_F_TRANSFER)) != 0) {
            return fail(a, ZRAFT_EMALFORMED, "vote: unknown flag");
        }
        out->u.vote.pre_vote = (f & VOTE_F_PRE_VOTE) != 0;
        out->u.vote.transfer = (f & VOTE_F_TRANSFER) != 0;
        return 0;
    case MSG_VOTE_RESP:
        if (!r_u8(r, &f)) {
            return fail(a, ZRAFT_EMALFORMED, "vote_resp: short body");
        }
        if ((f & ~(VOTE_RESP_F_GRANTED | VOTE_RESP_F_PRE)) != 0) {
            return fail(a, ZRAFT_EMALFORMED, "vote_resp: unknown flag");
        }
        out->u.vote_resp.granted = (f & VOTE_RESP_F_GRANTED) != 0;
        out->u.vote_resp.pre_vote = (f & VOTE_RESP_F_PRE) != 0;
        return 0;
    case MSG_APPEND:
        return s_decode_append(c, r, out, a);
    case MSG_APPEND_RESP:
        if (!r_u8(r, &f) || !r_u64(r, &out->u.append_resp.index) ||
            !r_u64(r, &out->u.append_resp.hint_index) ||
            !r_u64(r, &out->u.append_resp.hint_term)) {
            return fail(a, ZRAFT_EMALFORMED, "append_resp: short body");
        }
        if (f > 1) {
            return fail(a, ZRAFT_EMALFORMED, "append_resp: bad success byte");
        }
        out->u.append_resp.success = f == 1;
        return 0;
    case MSG_HEARTBEAT:
        if (!r_u64(r, &out->u.heartbeat.commit) ||
            !r_u64(r, &out->u.heartbeat.ctx)) {
            return fail(a, ZRAFT_EMALFORMED, "heartbeat: short body");
        }
        return 0;
    case MSG_HEARTBEAT_RESP:
        if (!r_u64(r, &out->u.heartbeat_resp.ctx)) {
            return fail(a, ZRAFT_EMALFORMED, "heartbeat_resp: short body");
        }
        return 0;
    case MSG_SNAPSHOT:
        return s_decode_snapshot(r, out, a);
    case MSG_SNAPSHOT_RESP:
        if (!r_u8(r, &f) || !r_u64(r, &out->u.snapshot_resp.index)) {
            return fail(a, ZRAFT_EMALFORMED, "snapshot_resp: short body");
        }
        if (f > 1) {
            return fail(a, ZRAFT_EMALFORMED, "snapshot_resp: bad success byte");
        }
        out->u.snapshot_resp.success = f == 1;
        return 0;
    case MSG_TIMEOUT_NOW:
        return 0;
    case CODEC_MSG_SNAPSHOT_ACK:
        if (!r_u64(r, &a->ack.snapshot_id) || !r_u64(r, &a->ack.offset) ||
            !r_u64(r, &a->ack.next) || !r_u8(r, &a->ack.status)) {
            return fail(a, ZRAFT_EMALFORMED, "snapshot_ack: short body");
        }
        if (a->ack.status > CODEC_ACK_ABORTED) {
            return fail(a, ZRAFT_EMALFORMED, "snapshot_ack: unknown status");
        }
        return 0;
    case CODEC_MSG_FORWARD:
    case CODEC_MSG_FORWARD_REPLY:
        return s_decode_fwd(c, r, out, a);
    default:
        return fail(a, ZRAFT_EMALFORMED, "unknown message type");
    }
}

static int s_decode(const codec_ctx *c, const codec_iov *segs, size_t n,
                    msg *out, codec_arena *a)
{
    unsigned char h[CODEC_HEADER_LEN];
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (segs[i].len > SIZE_MAX - total) {
            return fail(a, ZRAFT_ETOOBIG, "frame: length overflows");
        }
        total += segs[i].len;
    }
    reader r = {
        .seg = segs, .nseg = n, .left = total, .zc_min = s_zc_min(c), .a = a};
    if (!r_bytes(&r, h, sizeof(h))) {
        return fail(a, ZRAFT_EMALFORMED, "frame: shorter than a header");
    }
    if (h[0] != CODEC_MAGIC0 || h[1] != CODEC_MAGIC1 || h[2] != CODEC_MAGIC2 ||
        h[3] != CODEC_MAGIC3) {
        return fail(a, ZRAFT_EMALFORMED, "frame: bad magic");
    }
    if (h[4] < CODEC_VERSION_MIN || h[4] > CODEC_VERSION) {
        return fail(a, ZRAFT_EMALFORMED, "frame: unsupported version");
    }
    a->version = h[4];
    bool fwd = h[5] == CODEC_MSG_FORWARD || h[5] == CODEC_MSG_FORWARD_REPLY;
    if (h[5] < MSG_VOTE ||
        (h[5] >= MSG__COUNT && h[5] != CODEC_MSG_SNAPSHOT_ACK && !fwd)) {
        return fail(a, ZRAFT_EMALFORMED, "frame: unknown message type");
    }
    if ((h[5] == CODEC_MSG_SNAPSHOT_ACK && h[4] < 2) || (fwd && h[4] < 3)) {
        return fail(a, ZRAFT_EMALFORMED,
                    "frame: message type unknown in its version");
    }
    uint16_t flags = (uint16_t)le_get(h + 6, 2);
    uint64_t cluster = le_get(h + 8, 8);
    out->from = le_get(h + 16, 8);
    out->to = le_get(h + 24, 8);
    out->term = le_get(h + 32, 8);
    uint32_t body_len = (uint32_t)le_get(h + 40, 4);
    out->type = h[5];
    if ((flags & ~CODEC_FLAGS_KNOWN) != 0) {
        return fail(a, ZRAFT_EMALFORMED, "frame: unknown header flag");
    }
    uint64_t want = CODEC_HEADER_LEN + (uint64_t)body_len;
    if (want > c->max_frame) {
        return fail(a, ZRAFT_ETOOBIG, "frame: longer than max_frame");
    }
    if (total < want) {
        return fail(a, ZRAFT_EMALFORMED, "frame: truncated");
    }
    if (total > want) {
        return fail(a, ZRAFT_EMALFORMED, "frame: trailing bytes");
    }
    if (cluster != c->cluster_id) {
        return fail(a, ZRAFT_ENOTMEMBER, "frame: another cluster");
    }
    if (out->from == 0 || out->to == 0) {
        return fail(a, ZRAFT_EMALFORMED, "frame: node id 0");
    }
    if (c->self != 0 && out->to != c->self) {
        return fail(a, ZRAFT_EINVAL, "frame: addressed to another node");
    }
    r.left = body_len;
    int rv = s_decode_body(c, &r, out, a);
    if (rv != 0) {
        return rv;
    }
    if (r.left != 0) {
        return fail(a, ZRAFT_EMALFORMED, "frame: body longer than its fields");
    }
    return 0;
}

int codec_decode_iov(const codec_ctx *c, const codec_iov *segs, size_t n,
                     msg *out, codec_arena *a)
{
    memset(out, 0, sizeof(*out));
    a->why = NULL;
    s_fwd_clear(a);
    int rv = s_decode(c, segs, n, out, a);
    if (rv != 0) {
        s_fwd_clear(a);
        codec_msg_release(out);
        memset(out, 0, sizeof(*out));
    }
    return rv;
}

int codec_decode(const codec_ctx *c, const unsigned char *buf, size_t len,
                 msg *out, codec_arena *a)
{
    codec_iov seg = {buf, len, NULL};
    return codec_decode_iov(c, &seg, buf != NULL || len == 0 ? 1 : 0, out, a);
}

/* ================================================================= ctx */

void codec_ctx_init(codec_ctx *c, uint64_t cluster_id, zraft_id self)
{
    memset(c, 0, sizeof(*c));
    c->version = CODEC_VERSION;
    c->cluster_id = cluster_id;
    c->self = self;
    c->max_frame = CODEC_DEFAULT_MAX_FRAME;
    c->max_entries = CODEC_DEFAULT_MAX_ENTRIES;
}

/* ============================================================ assembler */

void codec_assembler_init(codec_assembler *a, uint64_t max_size)
{
    codec_assembler_init_sink(a, max_size, NULL);
}

void codec_assembler_init_sink(codec_assembler *a, uint64_t max_size,
                               const codec_sink *sink)
{
    memset(a, 0, sizeof(*a));
    a->max_size = max_size ? max_size : UINT64_MAX;
    a->sink = sink;
}

void codec_assembler_reset(codec_assembler *a)
{
    uint64_t max = a->max_size;
    const codec_sink *sink = a->sink;
    if (sink != NULL && a->active && !a->taken) {
        sink->close(sink->ctx);
    }
    free(a->data);
    memset(a, 0, sizeof(*a));
    a->max_size = max;
    a->sink = sink;
}

void codec_assembler_fini(codec_assembler *a)
{
    codec_assembler_reset(a);
}

uint64_t codec_assembler_next_offset(const codec_assembler *a)
{
    return a->active ? a->received : 0;
}

uint64_t codec_assembler_next_for(const codec_assembler *a, uint64_t term,
                                  uint64_t snapshot_id)
{
    bool same = a->active && a->term == term && a->snapshot_id == snapshot_id;
    return same ? a->received : 0;
}

/* Makes room for `more` bytes after `received`, growing geometrically but
 * never past the announced total (which bounds more + received). */
static int s_reserve(codec_assembler *a, size_t more)
{
    size_t need = (size_t)a->received + more;
    if (need <= a->cap) {
        return 0;
    }
    size_t cap = a->cap < 65536 ? 65536 : a->cap;
    while (cap < need && cap <= SIZE_MAX / 2) {
        cap *= 2;
    }
    if (cap < need) {
        cap = need;
    }
    if (cap > a->total) {
        cap = (size_t)a->total;
    }
    unsigned char *d = realloc(a->data, cap);
    if (d == NULL) {
        return ZRAFT_ENOMEM;
    }
    a->data = d;
    a->cap = cap;
    return 0;
}

/* Stores the chunk's bytes after `received`. */
static int s_store(codec_assembler *a, const codec_chunk *ch)
{
    if (a->sink != NULL) {
        return a->sink->write(a->sink->ctx, a->received, ch->bytes, ch->len);
    }
    int rv = s_reserve(a, ch->len);
    if (rv == 0) {
        memcpy(a->data + a->received, ch->bytes, ch->len);
    }
    return rv;
}

int codec_assembler_add(codec_assembler *a, const msg *m, const codec_chunk *ch)
{
    if (m == NULL || ch == NULL || m->type != MSG_SNAPSHOT ||
        m->u.snapshot.meta == NULL) {
        return ZRAFT_EINVAL;
    }
    bool same =
        a->active && a->term == m->term && a->snapshot_id == ch->snapshot_id;
    if (a->active && m->term < a->term) {
        return ZRAFT_EINVAL; /* a deposed leader's transfer */
    }
    if (ch->offset > ch->total || ch->total - ch->offset < ch->len ||
        ch->last != (ch->total - ch->offset == ch->len) ||
        (ch->bytes == NULL && ch->len > 0)) {
        if (same) {
            codec_assembler_reset(a);
        }
        return ZRAFT_EMALFORMED;
    }
    if (!same) {
        if (ch->offset != 0) {
            return ZRAFT_EAGAIN;
        }
        if (ch->total > a->max_size || ch->total > SIZE_MAX) {
            return ZRAFT_ETOOBIG;
        }
        codec_assembler_reset(a);
        if (a->sink != NULL) {
            int rv = a->sink->open(a->sink->ctx, ch->total);
            if (rv != 0) {
                return rv;
            }
        }
        a->active = true;
        a->term = m->term;
        a->snapshot_id = ch->snapshot_id;
        a->meta = *m->u.snapshot.meta;
        a->total = ch->total;
    } else {
        if (ch->total != a->total ||
            a->meta.last_log_id.term != m->u.snapshot.meta->last_log_id.term ||
            a->meta.last_log_id.index !=
                m->u.snapshot.meta->last_log_id.index ||
            !membership_equal(&a->meta.membership,
                              &m->u.snapshot.meta->membership)) {
            if (a->taken) {
                return ZRAFT_EAGAIN; /* not ours to drop any more */
            }
            codec_assembler_reset(a);
            return ZRAFT_EMALFORMED;
        }
        if (a->complete || ch->offset != a->received) {
            return ZRAFT_EAGAIN;
        }
    }
    if (ch->len > 0) {
        int rv = s_store(a, ch);
        if (rv != 0) {
            if (a->received == 0 || a->sink != NULL) {
                codec_assembler_reset(a); /* nothing changed, or dropped */
            }
            return rv;
        }
        a->received += ch->len;
    }
    if (ch->last) {
        a->complete = true;
        return 1;
    }
    return 0;
}

static void s_free_data(void *ctx, void *data)
{
    (void)ctx;
    free(data);
}

int codec_assembler_take(codec_assembler *a, snapshot_meta *meta,
                         zraft_buf **data)
{
    if (!a->active || !a->complete || a->taken) {
        return ZRAFT_EAGAIN;
    }
    zraft_buf *b = NULL;
    if (a->sink != NULL) {
        /* The bytes are the sink's. */
    } else if (a->total == 0) {
        b = zraft_buf_new(NULL, 0);
    } else {
        b = zraft_buf_wrap(a->data, (size_t)a->total, s_free_data, NULL);
    }
    if (b == NULL && a->sink == NULL) {
        return ZRAFT_ENOMEM;
    }
    if (a->sink == NULL && a->total != 0) {
        a->data = NULL; /* now owned by b */
        a->cap = 0;
    }
    *meta = a->meta;
    if (data != NULL) {
        *data = b;
    } else {
        zraft_buf_unref(b);
    }
    a->taken = true;
    return 0;
}
