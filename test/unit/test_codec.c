/* test_codec.c - the wire codec (transport/codec.h): round trips of every
 * RPC, rejection of every truncation and of forged fields, bit flips,
 * the retired HMAC flag refused, snapshot chunk assembly. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/codec.h"

#define CLUSTER 0x1122334455667788ull

/* ------------------------------------------------------------- helpers */

static void membership3(zraft_membership *m)
{
    memset(m, 0, sizeof(*m));
    m->n = 3;
    for (uint32_t i = 0; i < 3; i++) {
        m->members[i].id = i + 1;
        m->members[i].roles = ZRAFT_ROLE_VOTER;
        snprintf(m->members[i].addr, ZRAFT_ADDR_MAX, "tcp://10.0.0.%u:7000",
                 i + 1);
    }
}

static zraft_buf *membership_buf(const zraft_membership *m)
{
    size_t len = zraft_membership_encoded_len(m);
    zraft_buf *b = zraft_buf_new(NULL, len);
    cr_assert_not_null(b);
    zraft_membership_encode(m, b->data);
    return b;
}

static zraft_buf *pattern_buf(size_t len, unsigned seed)
{
    zraft_buf *b = zraft_buf_new(NULL, len);
    cr_assert_not_null(b);
    for (size_t i = 0; i < len; i++) {
        b->data[i] = (unsigned char)(i * 31 + seed);
    }
    return b;
}

static bool membership_same(const zraft_membership *a,
                            const zraft_membership *b)
{
    if (a->n != b->n || a->joint != b->joint) {
        return false;
    }
    for (uint32_t i = 0; i < a->n; i++) {
        if (a->members[i].id != b->members[i].id ||
            a->members[i].roles != b->members[i].roles ||
            strcmp(a->members[i].addr, b->members[i].addr) != 0) {
            return false;
        }
    }
    return true;
}

static bool buf_same(const zraft_buf *a, const zraft_buf *b)
{
    size_t la = a ? a->len : 0, lb = b ? b->len : 0;
    return la == lb && (la == 0 || memcmp(a->data, b->data, la) == 0);
}

/* Field-by-field equality of two messages (snapshots: meta and data). */
static void assert_msg_eq(const msg *a, const msg *b)
{
    cr_assert_eq(a->type, b->type);
    cr_assert_eq(a->from, b->from);
    cr_assert_eq(a->to, b->to);
    cr_assert_eq(a->term, b->term);
    switch (a->type) {
    case MSG_VOTE:
        cr_assert_eq(a->u.vote.last_log_id.term, b->u.vote.last_log_id.term);
        cr_assert_eq(a->u.vote.last_log_id.index, b->u.vote.last_log_id.index);
        cr_assert_eq(a->u.vote.pre_vote, b->u.vote.pre_vote);
        cr_assert_eq(a->u.vote.transfer, b->u.vote.transfer);
        break;
    case MSG_VOTE_RESP:
        cr_assert_eq(a->u.vote_resp.granted, b->u.vote_resp.granted);
        cr_assert_eq(a->u.vote_resp.pre_vote, b->u.vote_resp.pre_vote);
        break;
    case MSG_APPEND:
        cr_assert_eq(a->u.append.prev.term, b->u.append.prev.term);
        cr_assert_eq(a->u.append.prev.index, b->u.append.prev.index);
        cr_assert_eq(a->u.append.commit, b->u.append.commit);
        cr_assert_eq(a->u.append.n_entries, b->u.append.n_entries);
        for (uint32_t i = 0; i < a->u.append.n_entries; i++) {
            const zraft_entry *x = &a->u.append.entries[i];
            const zraft_entry *y = &b->u.append.entries[i];
            cr_assert_eq(x->id.term, y->id.term, "entry %u", i);
            cr_assert_eq(x->id.index, y->id.index, "entry %u", i);
            cr_assert_eq(x->type, y->type, "entry %u", i);
            cr_assert(buf_same(x->payload, y->payload), "entry %u", i);
        }
        break;
    case MSG_APPEND_RESP:
        cr_assert_eq(a->u.append_resp.success, b->u.append_resp.success);
        cr_assert_eq(a->u.append_resp.index, b->u.append_resp.index);
        cr_assert_eq(a->u.append_resp.hint_index, b->u.append_resp.hint_index);
        cr_assert_eq(a->u.append_resp.hint_term, b->u.append_resp.hint_term);
        break;
    case MSG_HEARTBEAT:
        cr_assert_eq(a->u.heartbeat.commit, b->u.heartbeat.commit);
        cr_assert_eq(a->u.heartbeat.ctx, b->u.heartbeat.ctx);
        break;
    case MSG_HEARTBEAT_RESP:
        cr_assert_eq(a->u.heartbeat_resp.ctx, b->u.heartbeat_resp.ctx);
        break;
    case MSG_SNAPSHOT:
        cr_assert_eq(a->u.snapshot.meta->last_log_id.term,
                     b->u.snapshot.meta->last_log_id.term);
        cr_assert_eq(a->u.snapshot.meta->last_log_id.index,
                     b->u.snapshot.meta->last_log_id.index);
        cr_assert(membership_same(&a->u.snapshot.meta->membership,
                                  &b->u.snapshot.meta->membership));
        cr_assert(buf_same(a->u.snapshot.data, b->u.snapshot.data));
        break;
    case MSG_SNAPSHOT_RESP:
        cr_assert_eq(a->u.snapshot_resp.success, b->u.snapshot_resp.success);
        cr_assert_eq(a->u.snapshot_resp.index, b->u.snapshot_resp.index);
        break;
    default:
        break;
    }
}

/* A set of messages covering every type; owns its payloads. */
typedef struct {
    msg m[16];
    size_t n;
    zraft_entry ents[8];
    snapshot_meta meta;
} sample_set;

static void samples_init(sample_set *s)
{
    memset(s, 0, sizeof(*s));
    msg *m;

    m = &s->m[s->n++];
    *m = (msg){.type = MSG_VOTE, .from = 1, .to = 2, .term = 7};
    m->u.vote.last_log_id = (zraft_log_id){6, 123456789012ull};
    m->u.vote.pre_vote = true;

    m = &s->m[s->n++];
    *m = (msg){.type = MSG_VOTE, .from = 3, .to = 2, .term = UINT64_MAX};
    m->u.vote.last_log_id = (zraft_log_id){UINT64_MAX, UINT64_MAX};
    m->u.vote.transfer = true;

    m = &s->m[s->n++];
    *m = (msg){.type = MSG_VOTE_RESP, .from = 2, .to = 1, .term = 7};
    m->u.vote_resp.granted = true;
    m->u.vote_resp.pre_vote = true;

    /* APPEND with every entry type, empty and large payloads. */
    zraft_membership mm;
    membership3(&mm);
    uint8_t types[8] = {ZRAFT_ENTRY_BLANK,  ZRAFT_ENTRY_NORMAL,
                        ZRAFT_ENTRY_NORMAL, ZRAFT_ENTRY_MEMBERSHIP,
                        ZRAFT_ENTRY_NORMAL, ZRAFT_ENTRY_NORMAL,
                        ZRAFT_ENTRY_NORMAL, ZRAFT_ENTRY_NORMAL};
    size_t lens[8] = {0, 0, 1, 0, 255, 256, 4000, 17};
    for (int i = 0; i < 8; i++) {
        zraft_entry *e = &s->ents[i];
        e->id = (zraft_log_id){i < 4 ? 5 : 9, 100 + (uint64_t)i};
        e->type = types[i];
        if (types[i] == ZRAFT_ENTRY_MEMBERSHIP) {
            e->payload = membership_buf(&mm);
        } else if (types[i] == ZRAFT_ENTRY_NORMAL) {
            e->payload = pattern_buf(lens[i], (unsigned)i);
        }
    }
    m = &s->m[s->n++];
    *m = (msg){.type = MSG_APPEND, .from = 1, .to = 3, .term = 9};
    m->u.append.prev = (zraft_log_id){4, 99};
    m->u.append.commit = 97;
    m->u.append.n_entries = 8;
    m->u.append.entries = s->ents;

    m = &s->m[s->n++]; /* empty append (probe) */
    *m = (msg){.type = MSG_APPEND, .from = 1, .to = 3, .term = 9};
    m->u.append.prev = (zraft_log_id){0, 0};

    m = &s->m[s->n++];
    *m = (msg){.type = MSG_APPEND_RESP, .from = 3, .to = 1, .term = 9};
    m->u.append_resp.index = 99;
    m->u.append_resp.hint_index = 50;
    m->u.append_resp.hint_term = 3;

    m = &s->m[s->n++];
    *m = (msg){.type = MSG_APPEND_RESP, .from = 3, .to = 1, .term = 9};
    m->u.append_resp.success = true;
    m->u.append_resp.index = 107;

    m = &s->m[s->n++];
    *m = (msg){.type = MSG_HEARTBEAT, .from = 1, .to = 2, .term = 9};
    m->u.heartbeat.commit = 107;
    m->u.heartbeat.ctx = 0xdeadbeefcafebabeull;

    m = &s->m[s->n++];
    *m = (msg){.type = MSG_HEARTBEAT_RESP, .from = 2, .to = 1, .term = 9};
    m->u.heartbeat_resp.ctx = 42;

    s->meta.last_log_id = (zraft_log_id){8, 5000};
    membership3(&s->meta.membership);
    s->meta.membership.joint = true;
    s->meta.membership.members[0].roles =
        ZRAFT_ROLE_VOTER | ZRAFT_ROLE_VOTER_OLD;
    s->meta.membership.members[2].roles = ZRAFT_ROLE_LEARNER;
    m = &s->m[s->n++];
    *m = (msg){.type = MSG_SNAPSHOT, .from = 1, .to = 2, .term = 9};
    m->u.snapshot.meta = &s->meta;
    m->u.snapshot.data = pattern_buf(3000, 7);

    m = &s->m[s->n++];
    *m = (msg){.type = MSG_SNAPSHOT_RESP, .from = 2, .to = 1, .term = 9};
    m->u.snapshot_resp.success = true;
    m->u.snapshot_resp.index = 5000;

    m = &s->m[s->n++];
    *m = (msg){.type = MSG_TIMEOUT_NOW, .from = 1, .to = 2, .term = 9};
}

static void samples_fini(sample_set *s)
{
    for (int i = 0; i < 8; i++) {
        zraft_buf_unref(s->ents[i].payload);
    }
    for (size_t i = 0; i < s->n; i++) {
        if (s->m[i].type == MSG_SNAPSHOT) {
            zraft_buf_unref(s->m[i].u.snapshot.data);
        }
    }
}

/* Encodes `m` into a new buffer (caller frees). */
static unsigned char *encode(const codec_ctx *c, const msg *m, size_t *len)
{
    size_t need = codec_encoded_len(c, m);
    cr_assert_gt(need, 0, "type %d not encodable", m->type);
    unsigned char *buf = malloc(need);
    cr_assert_not_null(buf);
    size_t w = 0;
    cr_assert_eq(codec_encode(c, m, buf, need, &w), 0);
    cr_assert_eq(w, need);
    *len = w;
    return buf;
}

/* Decodes and re-encodes: succeeds exactly when the bytes are a frame,
 * and a decoded frame re-encodes to the same bytes (the format has one
 * encoding per message). Returns the decode result. */
static int decode_check(const codec_ctx *c, const unsigned char *buf,
                        size_t len)
{
    codec_arena a;
    msg m;
    codec_arena_init(&a);
    int rv = codec_decode(c, buf, len, &m, &a);
    if (rv == 0) {
        /* Re-encoded in the frame's own version, the same bytes. */
        codec_ctx cv = *c;
        cv.version = a.version;
        bool fwd =
            m.type == CODEC_MSG_FORWARD || m.type == CODEC_MSG_FORWARD_REPLY;
        size_t need = m.type == MSG_SNAPSHOT
                          ? codec_chunk_encoded_len(&cv, &m, &a.chunk)
                      : m.type == CODEC_MSG_SNAPSHOT_ACK ? len
                      : fwd ? codec_fwd_encoded_len(&cv, &m, a.fwd, a.n_fwd)
                            : codec_encoded_len(&cv, &m);
        cr_assert_eq(need, len);
        unsigned char *again = malloc(need);
        size_t w;
        int erv =
            m.type == MSG_SNAPSHOT
                ? codec_encode_chunk(&cv, &m, &a.chunk, again, need, &w)
            : m.type == CODEC_MSG_SNAPSHOT_ACK
                ? codec_encode_ack(&cv, &m, &a.ack, again, need, &w)
            : fwd ? codec_encode_fwd(&cv, &m, a.fwd, a.n_fwd, again, need, &w)
                  : codec_encode(&cv, &m, again, need, &w);
        cr_assert_eq(erv, 0);
        cr_assert_eq(w, len);
        cr_assert_eq(memcmp(again, buf, len), 0);
        free(again);
    } else {
        cr_assert_not_null(a.why);
        cr_assert_eq(m.type, 0, "a failed decode leaves out zeroed");
    }
    codec_msg_release(&m);
    codec_arena_fini(&a);
    return rv;
}

/* ---------------------------------------------------------- round trips */

static void round_trip_all(const codec_ctx *c)
{
    sample_set s;
    samples_init(&s);
    codec_arena a;
    codec_arena_init(&a);
    for (size_t i = 0; i < s.n; i++) {
        size_t len;
        unsigned char *buf = encode(c, &s.m[i], &len);
        msg out;
        int rv = codec_decode(c, buf, len, &out, &a);
        cr_assert_eq(rv, 0, "type %s: %s", msg_type_name(s.m[i].type),
                     a.why ? a.why : "");
        assert_msg_eq(&s.m[i], &out);
        if (out.type == MSG_SNAPSHOT) {
            cr_assert_eq(a.chunk.offset, 0);
            cr_assert_eq(a.chunk.total, s.m[i].u.snapshot.data->len);
            cr_assert(a.chunk.last);
        }
        codec_msg_release(&out);
        cr_assert_eq(decode_check(c, buf, len), 0);
        free(buf);
    }
    codec_arena_fini(&a);
    samples_fini(&s);
}

Test(codec, round_trip_every_type)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 0);
    round_trip_all(&c);
}

Test(codec, header_layout_is_little_endian)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 0);
    msg m = {.type = MSG_HEARTBEAT_RESP, .from = 2, .to = 1, .term = 0x0102};
    m.u.heartbeat_resp.ctx = 9;
    unsigned char buf[64];
    size_t w;
    cr_assert_eq(codec_encode(&c, &m, buf, sizeof(buf), &w), 0);
    cr_assert_eq(w, CODEC_HEADER_LEN + 8);
    cr_assert_eq(memcmp(buf, "ZRFT", 4), 0);
    cr_assert_eq(buf[4], CODEC_VERSION);
    cr_assert_eq(buf[5], MSG_HEARTBEAT_RESP);
    cr_assert_eq(buf[6] | buf[7], 0);
    cr_assert_eq(buf[8], 0x88); /* cluster id, low byte first */
    cr_assert_eq(buf[15], 0x11);
    cr_assert_eq(buf[16], 2);
    cr_assert_eq(buf[24], 1);
    cr_assert_eq(buf[32], 0x02);
    cr_assert_eq(buf[33], 0x01);
    cr_assert_eq(buf[40], 8); /* body length */
    cr_assert_eq(buf[44], 9);
}

Test(codec, many_entries_and_empty_payloads)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 0);
    enum { N = 5000 };
    zraft_entry *e = calloc(N, sizeof(*e));
    for (uint32_t i = 0; i < N; i++) {
        e[i].id = (zraft_log_id){1 + i / 1000, 1 + i};
        e[i].type = i % 7 == 0 ? ZRAFT_ENTRY_BLANK : ZRAFT_ENTRY_NORMAL;
        if (e[i].type == ZRAFT_ENTRY_NORMAL && i % 3 != 0) {
            e[i].payload = pattern_buf(i % 300, i);
        } /* else: NULL payload, encoded as empty */
    }
    msg m = {.type = MSG_APPEND, .from = 1, .to = 2, .term = 10};
    m.u.append.n_entries = N;
    m.u.append.entries = e;
    size_t len;
    unsigned char *buf = encode(&c, &m, &len);
    codec_arena a;
    codec_arena_init(&a);
    msg out;
    cr_assert_eq(codec_decode(&c, buf, len, &out, &a), 0);
    assert_msg_eq(&m, &out);
    for (uint32_t i = 0; i < N; i++) {
        if (e[i].type == ZRAFT_ENTRY_BLANK) {
            cr_assert_null(out.u.append.entries[i].payload);
        } else {
            cr_assert_not_null(out.u.append.entries[i].payload,
                               "normal entries always get a buffer");
        }
    }
    /* The payloads outlive the decoder's references when taken. */
    zraft_buf *kept = zraft_buf_ref(out.u.append.entries[1].payload);
    codec_msg_release(&out);
    cr_assert(buf_same(kept, e[1].payload));
    zraft_buf_unref(kept);
    codec_arena_fini(&a);
    free(buf);
    for (uint32_t i = 0; i < N; i++) {
        zraft_buf_unref(e[i].payload);
    }
    free(e);
}

Test(codec, limits_max_frame_and_max_entries)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 0);
    zraft_entry e[4] = {0};
    for (int i = 0; i < 4; i++) {
        e[i].id = (zraft_log_id){1, 1 + (uint64_t)i};
        e[i].type = ZRAFT_ENTRY_NORMAL;
        e[i].payload = pattern_buf(100, i);
    }
    msg m = {.type = MSG_APPEND, .from = 1, .to = 2, .term = 1};
    m.u.append.n_entries = 4;
    m.u.append.entries = e;
    size_t len;
    unsigned char *buf = encode(&c, &m, &len);
    cr_assert_eq(len, CODEC_HEADER_LEN + 28 + 4 * (13 + 100));

    /* Exactly at the limit works, one byte under does not (both ways). */
    codec_ctx tight = c;
    tight.max_frame = (uint32_t)len;
    cr_assert_eq(decode_check(&tight, buf, len), 0);
    tight.max_frame = (uint32_t)len - 1;
    cr_assert_eq(codec_encoded_len(&tight, &m), 0);
    size_t w;
    cr_assert_eq(codec_encode(&tight, &m, buf, len, &w), ZRAFT_ETOOBIG);
    cr_assert_eq(decode_check(&tight, buf, len), ZRAFT_ETOOBIG);

    codec_ctx few = c;
    few.max_entries = 4;
    cr_assert_eq(decode_check(&few, buf, len), 0);
    few.max_entries = 3;
    cr_assert_eq(codec_encode(&few, &m, buf, len, &w), ZRAFT_ETOOBIG);
    cr_assert_eq(decode_check(&few, buf, len), ZRAFT_ETOOBIG);

    cr_assert_eq(codec_encode(&c, &m, buf, len - 1, &w), ZRAFT_ENOSPACE);
    free(buf);
    for (int i = 0; i < 4; i++) {
        zraft_buf_unref(e[i].payload);
    }
}

Test(codec, large_payload_round_trip)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 0);
    zraft_entry e = {.id = {2, 10}, .type = ZRAFT_ENTRY_NORMAL};
    e.payload = pattern_buf(8u << 20, 3);
    msg m = {.type = MSG_APPEND, .from = 1, .to = 2, .term = 2};
    m.u.append.prev = (zraft_log_id){2, 9};
    m.u.append.n_entries = 1;
    m.u.append.entries = &e;
    size_t len;
    unsigned char *buf = encode(&c, &m, &len);
    cr_assert_eq(decode_check(&c, buf, len), 0);
    free(buf);
    zraft_buf_unref(e.payload);
}

/* ------------------------------------------------------------ zero copy */

Test(codec, iov_encoding_equals_flat_and_references_payloads)
{
    {
        codec_ctx c;
        codec_ctx_init(&c, CLUSTER, 0);
        sample_set s;
        samples_init(&s);
        for (size_t i = 0; i < s.n; i++) {
            const msg *m = &s.m[i];
            size_t flat_len;
            unsigned char *flat = encode(&c, m, &flat_len);
            size_t scratch_len, n_iov;
            cr_assert_eq(codec_iov_plan(&c, m, NULL, &scratch_len, &n_iov), 0);
            unsigned char *scratch = malloc(scratch_len + 1);
            codec_iov *iov = calloc(n_iov, sizeof(*iov));
            size_t got;
            cr_assert_eq(codec_encode_iov(&c, m, NULL, scratch, scratch_len,
                                          iov, n_iov, &got),
                         0);
            cr_assert_eq(got, n_iov);
            /* The concatenation is the flat frame. */
            size_t off = 0, referenced = 0;
            for (size_t k = 0; k < got; k++) {
                cr_assert_leq(off + iov[k].len, flat_len);
                cr_assert_eq(memcmp(flat + off, iov[k].base, iov[k].len), 0);
                off += iov[k].len;
                const unsigned char *p = iov[k].base;
                if (p < scratch || p >= scratch + scratch_len) {
                    referenced += iov[k].len;
                    cr_assert_geq(iov[k].len, CODEC_ZEROCOPY_MIN);
                }
            }
            cr_assert_eq(off, flat_len);
            cr_assert_eq(scratch_len + referenced, flat_len);
            /* Decoding the segments as received parts works too. */
            codec_arena a;
            codec_arena_init(&a);
            msg out;
            cr_assert_eq(codec_decode_iov(&c, iov, got, &out, &a), 0);
            assert_msg_eq(m, &out);
            codec_msg_release(&out);
            /* Too little room is reported, not overrun. */
            if (n_iov > 1) {
                cr_assert_eq(codec_encode_iov(&c, m, NULL, scratch, scratch_len,
                                              iov, n_iov - 1, &got),
                             ZRAFT_ENOSPACE);
            }
            cr_assert_eq(codec_encode_iov(&c, m, NULL, scratch, scratch_len - 1,
                                          iov, n_iov, &got),
                         ZRAFT_ENOSPACE);
            codec_arena_fini(&a);
            free(iov);
            free(scratch);
            free(flat);
        }
        samples_fini(&s);
    }
}

Test(codec, decode_any_segmentation)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 0);
    sample_set s;
    samples_init(&s);
    const msg *m = &s.m[3]; /* the append with every entry type */
    size_t len;
    unsigned char *buf = encode(&c, m, &len);
    codec_arena a;
    codec_arena_init(&a);
    msg out;
    for (size_t cut = 0; cut <= len; cut++) {
        codec_iov two[3] = {
            {buf, cut, NULL}, {NULL, 0, NULL}, {buf + cut, len - cut, NULL}};
        cr_assert_eq(codec_decode_iov(&c, two, 3, &out, &a), 0, "cut %zu", cut);
        assert_msg_eq(m, &out);
        codec_msg_release(&out);
    }
    codec_iov *bytes = calloc(len, sizeof(*bytes));
    for (size_t i = 0; i < len; i++) {
        bytes[i] = (codec_iov){buf + i, 1, NULL};
    }
    cr_assert_eq(codec_decode_iov(&c, bytes, len, &out, &a), 0);
    assert_msg_eq(m, &out);
    codec_msg_release(&out);
    /* Missing last byte across segments. */
    cr_assert_eq(codec_decode_iov(&c, bytes, len - 1, &out, &a),
                 ZRAFT_EMALFORMED);
    free(bytes);
    codec_arena_fini(&a);
    free(buf);
    samples_fini(&s);
}

/* ------------------------------------------------------------ rejection */

Test(codec, every_truncation_is_rejected)
{
    {
        codec_ctx c;
        codec_ctx_init(&c, CLUSTER, 0);
        sample_set s;
        samples_init(&s);
        for (size_t i = 0; i < s.n; i++) {
            size_t len;
            unsigned char *buf = encode(&c, &s.m[i], &len);
            for (size_t cut = 0; cut < len; cut++) {
                /* A fresh allocation of the exact prefix, so that ASan
                 * sees any read past it. */
                unsigned char *p = malloc(cut ? cut : 1);
                memcpy(p, buf, cut);
                cr_assert_neq(decode_check(&c, p, cut), 0, "type %d cut %zu",
                              s.m[i].type, cut);
                free(p);
            }
            free(buf);
        }
        samples_fini(&s);
    }
}

Test(codec, trailing_garbage_is_rejected)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 0);
    sample_set s;
    samples_init(&s);
    for (size_t i = 0; i < s.n; i++) {
        size_t len;
        unsigned char *buf = encode(&c, &s.m[i], &len);
        unsigned char *p = malloc(len + 1);
        memcpy(p, buf, len);
        p[len] = 0;
        cr_assert_eq(decode_check(&c, p, len + 1), ZRAFT_EMALFORMED);
        /* Also when the body length field is raised to cover it. */
        uint32_t bl = (uint32_t)(len - CODEC_HEADER_LEN + 1);
        for (int k = 0; k < 4; k++) {
            p[40 + k] = (unsigned char)(bl >> (8 * k));
        }
        cr_assert_eq(decode_check(&c, p, len + 1), ZRAFT_EMALFORMED);
        free(p);
        free(buf);
    }
    samples_fini(&s);
}

Test(codec, bit_flips_never_crash)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 0);
    sample_set s;
    samples_init(&s);
    unsigned accepted = 0, rejected = 0;
    for (size_t i = 0; i < s.n; i++) {
        size_t len;
        unsigned char *buf = encode(&c, &s.m[i], &len);
        /* Every bit of the header and the first 512 body bytes. */
        size_t span = len < 556 ? len : 556;
        for (size_t bit = 0; bit < span * 8; bit++) {
            buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            /* decode_check asserts that whatever is accepted re-encodes
             * to exactly these bytes. */
            if (decode_check(&c, buf, len) == 0) {
                accepted++;
            } else {
                rejected++;
            }
            buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        }
        free(buf);
    }
    cr_assert_gt(accepted, 0); /* flips in ids, terms, payload bytes */
    cr_assert_gt(rejected, 0);
    samples_fini(&s);
}

Test(codec, wrong_cluster_version_type_flags)
{
    codec_ctx c, other;
    codec_ctx_init(&c, CLUSTER, 0);
    codec_ctx_init(&other, CLUSTER + 1, 0);
    msg m = {.type = MSG_TIMEOUT_NOW, .from = 1, .to = 2, .term = 3};
    unsigned char buf[64];
    size_t len;
    cr_assert_eq(codec_encode(&c, &m, buf, sizeof(buf), &len), 0);
    cr_assert_eq(decode_check(&c, buf, len), 0);
    cr_assert_eq(decode_check(&other, buf, len), ZRAFT_ENOTMEMBER);

    buf[4] = CODEC_VERSION + 1;
    cr_assert_eq(decode_check(&c, buf, len), ZRAFT_EMALFORMED);
    buf[4] = 0;
    cr_assert_eq(decode_check(&c, buf, len), ZRAFT_EMALFORMED);
    buf[4] = CODEC_VERSION;

    buf[5] = 0;
    cr_assert_eq(decode_check(&c, buf, len), ZRAFT_EMALFORMED);
    buf[5] = CODEC_MSG_SNAPSHOT_ACK + 1;
    cr_assert_eq(decode_check(&c, buf, len), ZRAFT_EMALFORMED);
    buf[5] = MSG_TIMEOUT_NOW;

    buf[6] = 0x02; /* unknown header flag */
    cr_assert_eq(decode_check(&c, buf, len), ZRAFT_EMALFORMED);
    buf[6] = 0x01; /* the retired HMAC flag (docs/security.md) */
    cr_assert_eq(decode_check(&c, buf, len), ZRAFT_EMALFORMED);
    buf[6] = 0;
    buf[0] = 'X';
    cr_assert_eq(decode_check(&c, buf, len), ZRAFT_EMALFORMED);
    buf[0] = 'Z';
    cr_assert_eq(decode_check(&c, buf, len), 0);
}

Test(codec, version_1_frames_are_read_and_written_on_request)
{
    codec_ctx c, v1;
    codec_ctx_init(&c, CLUSTER, 0);
    codec_ctx_init(&v1, CLUSTER, 0);
    cr_assert_eq(c.version, CODEC_VERSION);
    v1.version = 1;
    sample_set s;
    samples_init(&s);
    codec_arena a;
    codec_arena_init(&a);
    for (size_t i = 0; i < s.n; i++) {
        /* Every version 1 message is unchanged but for the version byte,
         * and a version 2 node reads it. */
        size_t len1, len2;
        unsigned char *b1 = encode(&v1, &s.m[i], &len1);
        unsigned char *b2 = encode(&c, &s.m[i], &len2);
        cr_assert_eq(len1, len2);
        cr_assert_eq(b1[4], 1);
        cr_assert_eq(b2[4], CODEC_VERSION);
        b1[4] = CODEC_VERSION;
        cr_assert_eq(memcmp(b1, b2, len1), 0);
        b1[4] = 1;
        msg out;
        cr_assert_eq(codec_decode(&c, b1, len1, &out, &a), 0);
        cr_assert_eq(a.version, 1);
        assert_msg_eq(&s.m[i], &out);
        codec_msg_release(&out);
        cr_assert_eq(decode_check(&c, b1, len1), 0);
        free(b1);
        free(b2);
    }
    codec_arena_fini(&a);
    samples_fini(&s);
    /* No acknowledgements in version 1. */
    msg m = {.type = CODEC_MSG_SNAPSHOT_ACK, .from = 2, .to = 1, .term = 3};
    codec_ack ack = {7, 0, 100, CODEC_ACK_ACCEPTED};
    unsigned char buf[CODEC_ACK_FRAME_MAX];
    size_t w;
    cr_assert_eq(codec_encode_ack(&v1, &m, &ack, buf, sizeof buf, &w),
                 ZRAFT_EINVAL);
    v1.version = CODEC_VERSION + 1;
    cr_assert_eq(codec_encode(&v1, &s.m[0], buf, sizeof buf, &w), ZRAFT_EINVAL);
}

Test(snapshot_ack, layout_round_trip_and_rules)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 1);
    msg m = {.type = CODEC_MSG_SNAPSHOT_ACK, .from = 2, .to = 1, .term = 9};
    codec_ack ack = {0x0102030405060708ull, 3u << 20, 4u << 20,
                     CODEC_ACK_REFUSED};
    unsigned char buf[CODEC_ACK_FRAME_MAX];
    size_t w;
    cr_assert_eq(codec_encode_ack(&c, &m, &ack, buf, sizeof buf, &w), 0);
    cr_assert_eq(w, CODEC_HEADER_LEN + 25);
    cr_assert_eq(w, CODEC_ACK_FRAME_MAX);
    cr_assert_eq(buf[4], CODEC_VERSION);
    cr_assert_eq(buf[5], CODEC_MSG_SNAPSHOT_ACK);
    cr_assert_eq(buf[40], 25);            /* body length */
    cr_assert_eq(buf[44], 0x08);          /* snapshot id, low byte first */
    cr_assert_eq(buf[44 + 8 + 2], 0x30);  /* offset 3 MiB */
    cr_assert_eq(buf[44 + 16 + 2], 0x40); /* next 4 MiB */
    cr_assert_eq(buf[44 + 24], CODEC_ACK_REFUSED);
    codec_arena a;
    codec_arena_init(&a);
    msg out;
    cr_assert_eq(codec_decode(&c, buf, w, &out, &a), 0);
    cr_assert_eq(out.type, CODEC_MSG_SNAPSHOT_ACK);
    cr_assert(out.from == 2 && out.to == 1 && out.term == 9);
    cr_assert(a.ack.snapshot_id == ack.snapshot_id &&
              a.ack.offset == ack.offset && a.ack.next == ack.next &&
              a.ack.status == ack.status);
    codec_msg_release(&out);
    cr_assert_eq(decode_check(&c, buf, w), 0);
    /* Every truncation and any trailing byte are refused. */
    for (size_t n = 0; n < w; n++) {
        cr_assert_eq(decode_check(&c, buf, n), ZRAFT_EMALFORMED);
    }
    /* An unknown status; the ack type in a version 1 frame. */
    buf[44 + 24] = 3;
    cr_assert_eq(decode_check(&c, buf, w), ZRAFT_EMALFORMED);
    buf[44 + 24] = CODEC_ACK_ABORTED;
    cr_assert_eq(decode_check(&c, buf, w), 0);
    buf[4] = 1;
    cr_assert_eq(decode_check(&c, buf, w), ZRAFT_EMALFORMED);
    /* The encoder refuses what the decoder would. */
    ack.status = 3;
    cr_assert_eq(codec_encode_ack(&c, &m, &ack, buf, sizeof buf, &w),
                 ZRAFT_EINVAL);
    ack.status = CODEC_ACK_ACCEPTED;
    cr_assert_eq(codec_encode_ack(&c, &m, &ack, buf, 10, &w), ZRAFT_ENOSPACE);
    m.type = MSG_SNAPSHOT_RESP;
    cr_assert_eq(codec_encode_ack(&c, &m, &ack, buf, sizeof buf, &w),
                 ZRAFT_EINVAL);
    m.type = CODEC_MSG_SNAPSHOT_ACK;
    m.from = 0;
    cr_assert_eq(codec_encode_ack(&c, &m, &ack, buf, sizeof buf, &w),
                 ZRAFT_EINVAL);
    codec_arena_fini(&a);
}

Test(codec, node_ids_and_destination)
{
    codec_ctx c, me, them;
    codec_ctx_init(&c, CLUSTER, 0);
    codec_ctx_init(&me, CLUSTER, 2);
    codec_ctx_init(&them, CLUSTER, 3);
    msg m = {.type = MSG_TIMEOUT_NOW, .from = 1, .to = 2, .term = 3};
    unsigned char buf[64];
    size_t len;
    cr_assert_eq(codec_encode(&c, &m, buf, sizeof(buf), &len), 0);
    cr_assert_eq(decode_check(&me, buf, len), 0);
    cr_assert_eq(decode_check(&them, buf, len), ZRAFT_EINVAL);
    m.from = 0;
    cr_assert_eq(codec_encode(&c, &m, buf, sizeof(buf), &len), ZRAFT_EINVAL);
    memset(buf + 16, 0, 8); /* forge from = 0 */
    cr_assert_eq(decode_check(&c, buf, CODEC_HEADER_LEN), ZRAFT_EMALFORMED);
}

/* Builds an APPEND frame by hand: header, fixed fields, then raw entry
 * bytes `ents` claimed to hold `n` entries. */
static size_t forge_append(unsigned char *out, uint32_t n,
                           const unsigned char *ents, size_t ents_len,
                           uint64_t term)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 0);
    msg m = {.type = MSG_APPEND, .from = 1, .to = 2, .term = term};
    m.u.append.prev = (zraft_log_id){1, 10};
    size_t len;
    cr_assert_eq(codec_encode(&c, &m, out, 256, &len), 0);
    for (int k = 0; k < 4; k++) {
        out[CODEC_HEADER_LEN + 24 + k] = (unsigned char)(n >> (8 * k));
    }
    memcpy(out + len, ents, ents_len);
    uint32_t bl = (uint32_t)(len - CODEC_HEADER_LEN + ents_len);
    for (int k = 0; k < 4; k++) {
        out[40 + k] = (unsigned char)(bl >> (8 * k));
    }
    return len + ents_len;
}

/* One raw entry: term, type, payload length, payload. */
static size_t raw_entry(unsigned char *p, uint64_t term, uint8_t type,
                        uint32_t len, const void *payload)
{
    for (int k = 0; k < 8; k++) {
        p[k] = (unsigned char)(term >> (8 * k));
    }
    p[8] = type;
    for (int k = 0; k < 4; k++) {
        p[9 + k] = (unsigned char)(len >> (8 * k));
    }
    if (payload) {
        memcpy(p + 13, payload, len);
    }
    return 13 + (payload ? len : 0);
}

Test(codec, forged_entry_count_allocates_nothing_large)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 0);
    c.max_entries = UINT32_MAX; /* only the frame size check is left */
    unsigned char buf[512], ents[64];
    size_t el = raw_entry(ents, 2, ZRAFT_ENTRY_NORMAL, 3, "abc");
    size_t len = forge_append(buf, 1, ents, el, 5);
    cr_assert_eq(decode_check(&c, buf, len), 0);
    static const uint32_t counts[] = {
        2, 3, 100, 65536, 0x1000000, 0x7fffffff, 0x80000000, 0xfffffffe};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        uint32_t n = counts[i];
        len = forge_append(buf, n, ents, el, 5);
        codec_arena a;
        codec_arena_init(&a);
        msg out;
        cr_assert_eq(codec_decode(&c, buf, len, &out, &a), ZRAFT_EMALFORMED,
                     "n %u", n);
        cr_assert_eq(a.entries_cap, 0, "no entries array for n %u", n);
        codec_arena_fini(&a);
    }
    len = forge_append(buf, UINT32_MAX, ents, el, 5);
    cr_assert_eq(decode_check(&c, buf, len), ZRAFT_EMALFORMED);
}

Test(codec, bad_entries_are_rejected)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 0);
    unsigned char buf[8192], ents[8000];
    size_t el, len;
    for (int t = 0; t < 256; t++) {
        el = raw_entry(ents, 2, (uint8_t)t, 0, "");
        len = forge_append(buf, 1, ents, el, 5);
        bool known = t == ZRAFT_ENTRY_NORMAL || t == ZRAFT_ENTRY_BLANK;
        cr_assert_eq(decode_check(&c, buf, len) == 0, known, "type %d", t);
    }
    /* A blank entry carries no payload. */
    el = raw_entry(ents, 2, ZRAFT_ENTRY_BLANK, 1, "x");
    len = forge_append(buf, 1, ents, el, 5);
    cr_assert_eq(decode_check(&c, buf, len), ZRAFT_EMALFORMED);
    /* Terms: not below prev.term (1), not decreasing, not above the
     * message term (5), never 0. */
    el = raw_entry(ents, 6, ZRAFT_ENTRY_NORMAL, 1, "x");
    cr_assert_eq(decode_check(&c, buf, forge_append(buf, 1, ents, el, 5)),
                 ZRAFT_EMALFORMED);
    el = raw_entry(ents, 0, ZRAFT_ENTRY_NORMAL, 1, "x");
    cr_assert_eq(decode_check(&c, buf, forge_append(buf, 1, ents, el, 5)),
                 ZRAFT_EMALFORMED);
    el = raw_entry(ents, 3, ZRAFT_ENTRY_NORMAL, 1, "x");
    el += raw_entry(ents + el, 2, ZRAFT_ENTRY_NORMAL, 1, "y");
    cr_assert_eq(decode_check(&c, buf, forge_append(buf, 2, ents, el, 5)),
                 ZRAFT_EMALFORMED);
    /* Payload length beyond the frame. */
    el = raw_entry(ents, 2, ZRAFT_ENTRY_NORMAL, 1000, NULL);
    cr_assert_eq(decode_check(&c, buf, forge_append(buf, 1, ents, el, 5)),
                 ZRAFT_EMALFORMED);

    /* Membership payloads must decode, canonically. */
    zraft_membership mm;
    membership3(&mm);
    unsigned char enc[4096];
    size_t ml = zraft_membership_encoded_len(&mm);
    zraft_membership_encode(&mm, enc);
    el = raw_entry(ents, 2, ZRAFT_ENTRY_MEMBERSHIP, (uint32_t)ml, enc);
    cr_assert_eq(decode_check(&c, buf, forge_append(buf, 1, ents, el, 5)), 0);
    enc[4 + 8] = 0; /* roles 0 */
    el = raw_entry(ents, 2, ZRAFT_ENTRY_MEMBERSHIP, (uint32_t)ml, enc);
    cr_assert_eq(decode_check(&c, buf, forge_append(buf, 1, ents, el, 5)),
                 ZRAFT_EMALFORMED);
    zraft_membership_encode(&mm, enc);
    enc[4 + 10 + 3] = '\0'; /* NUL inside the first address */
    el = raw_entry(ents, 2, ZRAFT_ENTRY_MEMBERSHIP, (uint32_t)ml, enc);
    cr_assert_eq(decode_check(&c, buf, forge_append(buf, 1, ents, el, 5)),
                 ZRAFT_EMALFORMED);
    el = raw_entry(ents, 2, ZRAFT_ENTRY_MEMBERSHIP, 3, "abc");
    cr_assert_eq(decode_check(&c, buf, forge_append(buf, 1, ents, el, 5)),
                 ZRAFT_EMALFORMED);
    /* A good entry before a bad one: its payload is freed (ASan). */
    el = raw_entry(ents, 2, ZRAFT_ENTRY_NORMAL, 300, enc);
    el += raw_entry(ents + el, 2, ZRAFT_ENTRY_MEMBERSHIP, 3, "abc");
    cr_assert_eq(decode_check(&c, buf, forge_append(buf, 2, ents, el, 5)),
                 ZRAFT_EMALFORMED);
}

Test(codec, encoder_refuses_what_the_decoder_rejects)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 0);
    zraft_entry e[2] = {{.id = {1, 5}, .type = ZRAFT_ENTRY_NORMAL},
                        {.id = {1, 7}, .type = ZRAFT_ENTRY_NORMAL}};
    msg m = {.type = MSG_APPEND, .from = 1, .to = 2, .term = 1};
    m.u.append.prev = (zraft_log_id){1, 4};
    m.u.append.n_entries = 2;
    m.u.append.entries = e;
    unsigned char buf[256];
    size_t w;
    cr_assert_eq(codec_encode(&c, &m, buf, sizeof(buf), &w), ZRAFT_EINVAL);
    e[1].id.index = 6;
    cr_assert_eq(codec_encode(&c, &m, buf, sizeof(buf), &w), 0);
    e[1].type = 9;
    cr_assert_eq(codec_encode(&c, &m, buf, sizeof(buf), &w), ZRAFT_EINVAL);
    e[1].type = ZRAFT_ENTRY_NORMAL;
    m.term = 0; /* entries newer than the leader's term */
    cr_assert_eq(codec_encode(&c, &m, buf, sizeof(buf), &w), ZRAFT_EINVAL);
    m.type = 0;
    cr_assert_eq(codec_encode(&c, &m, buf, sizeof(buf), &w), ZRAFT_EINVAL);
    m.type = MSG__COUNT;
    cr_assert_eq(codec_encoded_len(&c, &m), 0);

    /* Snapshot metadata that does not encode faithfully. */
    snapshot_meta meta = {.last_log_id = {1, 1}};
    msg s = {.type = MSG_SNAPSHOT, .from = 1, .to = 2, .term = 1};
    s.u.snapshot.meta = &meta;
    cr_assert_eq(codec_encode(&c, &s, buf, sizeof(buf), &w), ZRAFT_EINVAL,
                 "no voter");
    membership3(&meta.membership);
    cr_assert_eq(codec_encode(&c, &s, buf, sizeof(buf), &w), 0);
    memset(meta.membership.members[0].addr, 'x', ZRAFT_ADDR_MAX);
    cr_assert_eq(codec_encode(&c, &s, buf, sizeof(buf), &w), ZRAFT_EINVAL,
                 "address without NUL");
    s.u.snapshot.meta = NULL;
    cr_assert_eq(codec_encode(&c, &s, buf, sizeof(buf), &w), ZRAFT_EINVAL);
}

/* ------------------------------------------------------ snapshot chunks */

typedef struct {
    snapshot_meta meta;
    unsigned char data[10000];
    codec_assembler a;
} snap_fixture;

static void snap_init(snap_fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->meta.last_log_id = (zraft_log_id){4, 777};
    membership3(&f->meta.membership);
    for (size_t i = 0; i < sizeof(f->data); i++) {
        f->data[i] = (unsigned char)(i * 13 + 1);
    }
    codec_assembler_init(&f->a, 0);
}

static msg snap_msg(snap_fixture *f, uint64_t term)
{
    msg m = {.type = MSG_SNAPSHOT, .from = 1, .to = 2, .term = term};
    m.u.snapshot.meta = &f->meta;
    return m;
}

static codec_chunk chunk(snap_fixture *f, uint64_t id, uint64_t off,
                         uint32_t len)
{
    return (codec_chunk){.snapshot_id = id,
                         .total = sizeof(f->data),
                         .offset = off,
                         .bytes = f->data + off,
                         .len = len,
                         .last = off + len == sizeof(f->data)};
}

static void expect_complete(snap_fixture *f)
{
    snapshot_meta meta;
    zraft_buf *b = NULL;
    cr_assert_eq(codec_assembler_take(&f->a, &meta, &b), 0);
    cr_assert_eq(b->len, sizeof(f->data));
    cr_assert_eq(memcmp(b->data, f->data, sizeof(f->data)), 0);
    cr_assert_eq(meta.last_log_id.index, 777);
    cr_assert(membership_same(&meta.membership, &f->meta.membership));
    zraft_buf_unref(b);
    cr_assert_eq(codec_assembler_take(&f->a, &meta, &b), ZRAFT_EAGAIN);
}

Test(snapshot_chunks, in_order_through_the_wire)
{
    snap_fixture *f = malloc(sizeof(*f));
    snap_init(f);
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 2);
    codec_arena ar;
    codec_arena_init(&ar);
    msg m = snap_msg(f, 5);
    int rv = -100;
    for (uint64_t off = 0; off < sizeof(f->data); off += 3000) {
        uint32_t len =
            (uint32_t)(sizeof(f->data) - off < 3000 ? sizeof(f->data) - off
                                                    : 3000);
        codec_chunk ch = chunk(f, 42, off, len);
        unsigned char frame[4000];
        size_t w;
        cr_assert_eq(codec_chunk_encoded_len(&c, &m, &ch),
                     CODEC_HEADER_LEN + 47 +
                         zraft_membership_encoded_len(&f->meta.membership) +
                         len);
        cr_assert_eq(codec_encode_chunk(&c, &m, &ch, frame, sizeof(frame), &w),
                     0);
        msg out;
        cr_assert_eq(codec_decode(&c, frame, w, &out, &ar), 0);
        cr_assert_eq(ar.chunk.snapshot_id, 42);
        cr_assert_eq(ar.chunk.offset, off);
        cr_assert_eq(codec_assembler_next_offset(&f->a), off);
        rv = codec_assembler_add(&f->a, &out, &ar.chunk);
        codec_msg_release(&out);
        cr_assert_eq(rv, off + len == sizeof(f->data) ? 1 : 0);
    }
    cr_assert_eq(rv, 1);
    expect_complete(f);
    codec_arena_fini(&ar);
    codec_assembler_fini(&f->a);
    free(f);
}

Test(snapshot_chunks, gap_and_duplicate_are_refused_and_harmless)
{
    snap_fixture *f = malloc(sizeof(*f));
    snap_init(f);
    msg m = snap_msg(f, 5);
    codec_chunk c0 = chunk(f, 1, 0, 4000), c1 = chunk(f, 1, 4000, 4000),
                c2 = chunk(f, 1, 8000, 2000);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c0), 0);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c2), ZRAFT_EAGAIN); /* gap */
    cr_assert_eq(codec_assembler_next_offset(&f->a), 4000);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c0), ZRAFT_EAGAIN); /* dup */
    codec_chunk overlap = chunk(f, 1, 3000, 2000);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &overlap), ZRAFT_EAGAIN);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c1), 0);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c2), 1);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c2), ZRAFT_EAGAIN);
    expect_complete(f);
    codec_assembler_fini(&f->a);
    free(f);
}

Test(snapshot_chunks, wrong_total_or_meta_drops_the_transfer)
{
    snap_fixture *f = malloc(sizeof(*f));
    snap_init(f);
    msg m = snap_msg(f, 5);
    codec_chunk c0 = chunk(f, 1, 0, 4000), c1 = chunk(f, 1, 4000, 4000);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c0), 0);
    codec_chunk bad = c1;
    bad.total += 1;
    cr_assert_eq(codec_assembler_add(&f->a, &m, &bad), ZRAFT_EMALFORMED);
    cr_assert_eq(codec_assembler_next_offset(&f->a), 0);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c1), ZRAFT_EAGAIN);

    cr_assert_eq(codec_assembler_add(&f->a, &m, &c0), 0);
    snapshot_meta other = f->meta;
    other.last_log_id.index++;
    msg m2 = m;
    m2.u.snapshot.meta = &other;
    cr_assert_eq(codec_assembler_add(&f->a, &m2, &c1), ZRAFT_EMALFORMED);

    /* A chunk inconsistent with itself. */
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c0), 0);
    bad = c1;
    bad.last = true;
    cr_assert_eq(codec_assembler_add(&f->a, &m, &bad), ZRAFT_EMALFORMED);
    bad = c1;
    bad.offset = bad.total;
    bad.last = false;
    cr_assert_eq(codec_assembler_add(&f->a, &m, &bad), ZRAFT_EMALFORMED);
    codec_assembler_fini(&f->a);
    free(f);
}

Test(snapshot_chunks, newer_transfer_replaces_stale_is_refused)
{
    snap_fixture *f = malloc(sizeof(*f));
    snap_init(f);
    msg t5 = snap_msg(f, 5), t6 = snap_msg(f, 6), t4 = snap_msg(f, 4);
    codec_chunk a0 = chunk(f, 1, 0, 4000);
    codec_chunk b1 = chunk(f, 2, 4000, 6000);
    cr_assert_eq(codec_assembler_add(&f->a, &t5, &a0), 0);
    /* Unknown transfer, not at 0: the sender must restart. */
    cr_assert_eq(codec_assembler_add(&f->a, &t5, &b1), ZRAFT_EAGAIN);
    cr_assert_eq(codec_assembler_next_offset(&f->a), 4000);
    /* Older term: stale, nothing changes. */
    cr_assert_eq(codec_assembler_add(&f->a, &t4, &a0), ZRAFT_EINVAL);
    cr_assert_eq(codec_assembler_next_offset(&f->a), 4000);
    /* A new leader restarts at 0 with its own id. */
    codec_chunk b0 = chunk(f, 2, 0, 4000);
    cr_assert_eq(codec_assembler_add(&f->a, &t6, &b0), 0);
    codec_chunk a1 = chunk(f, 1, 4000, 6000);
    cr_assert_eq(codec_assembler_add(&f->a, &t5, &a1), ZRAFT_EINVAL);
    cr_assert_eq(codec_assembler_add(&f->a, &t6, &b1), 1);
    expect_complete(f);
    msg vote = {.type = MSG_VOTE};
    cr_assert_eq(codec_assembler_add(&f->a, &vote, &a0), ZRAFT_EINVAL);
    codec_assembler_fini(&f->a);
    free(f);
}

Test(snapshot_chunks, taken_transfer_answers_duplicates_with_its_total)
{
    snap_fixture *f = malloc(sizeof(*f));
    snap_init(f);
    msg m = snap_msg(f, 5);
    codec_chunk c0 = chunk(f, 1, 0, 4000), c1 = chunk(f, 1, 4000, 6000);
    cr_assert_eq(codec_assembler_next_for(&f->a, 5, 1), 0);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c0), 0);
    cr_assert_eq(codec_assembler_next_for(&f->a, 5, 1), 4000);
    cr_assert_eq(codec_assembler_next_for(&f->a, 5, 2), 0);
    cr_assert_eq(codec_assembler_next_for(&f->a, 6, 1), 0);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c1), 1);
    expect_complete(f);
    /* Late duplicates of the taken transfer: refused, and its total says
     * the receiver holds it all. */
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c1), ZRAFT_EAGAIN);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c0), ZRAFT_EAGAIN);
    cr_assert_eq(codec_assembler_next_for(&f->a, 5, 1), sizeof(f->data));
    /* A new transfer replaces it. */
    codec_chunk d0 = chunk(f, 2, 0, 4000);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &d0), 0);
    cr_assert_eq(codec_assembler_next_for(&f->a, 5, 1), 0);
    codec_assembler_fini(&f->a);
    free(f);
}

/* A sink that records what it is told (and can fail). */
typedef struct {
    unsigned char bytes[10000];
    uint64_t stored;
    int opens, closes;
    int fail_write_at; /* write number (1-based) that fails, 0: none */
    int writes;
} rec_sink;

static int rs_open(void *ctx, uint64_t total)
{
    rec_sink *r = ctx;
    (void)total;
    r->opens++;
    r->stored = 0;
    return 0;
}

static int rs_write(void *ctx, uint64_t off, const unsigned char *p,
                    uint32_t len)
{
    rec_sink *r = ctx;
    if (++r->writes == r->fail_write_at) {
        return ZRAFT_ENOSPACE;
    }
    cr_assert_eq(off, r->stored, "writes are contiguous");
    memcpy(r->bytes + off, p, len);
    r->stored += len;
    return 0;
}

static void rs_close(void *ctx)
{
    rec_sink *r = ctx;
    r->closes++;
}

Test(snapshot_chunks, sink_receives_the_bytes_in_order)
{
    snap_fixture *f = malloc(sizeof(*f));
    rec_sink *r = calloc(1, sizeof(*r));
    snap_init(f);
    codec_sink sink = {r, rs_open, rs_write, rs_close};
    codec_assembler_fini(&f->a);
    codec_assembler_init_sink(&f->a, 0, &sink);
    msg m = snap_msg(f, 5);
    codec_chunk c0 = chunk(f, 1, 0, 4000), c1 = chunk(f, 1, 4000, 4000),
                c2 = chunk(f, 1, 8000, 2000);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c0), 0);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c2), ZRAFT_EAGAIN);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c1), 0);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c2), 1);
    snapshot_meta meta;
    zraft_buf *b = (zraft_buf *)1;
    cr_assert_eq(codec_assembler_take(&f->a, &meta, &b), 0);
    cr_assert_null(b, "the bytes are the sink's");
    cr_assert_eq(meta.last_log_id.index, 777);
    cr_assert_eq(r->stored, sizeof(f->data));
    cr_assert_eq(memcmp(r->bytes, f->data, sizeof(f->data)), 0);
    cr_assert(r->opens == 1 && r->closes == 0);
    /* A transfer that is dropped is closed; one that fails to store is
     * dropped. */
    codec_chunk d0 = chunk(f, 2, 0, 4000), d1 = chunk(f, 2, 4000, 4000);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &d0), 0);
    cr_assert_eq(r->opens, 2);
    codec_chunk bad = d1;
    bad.total++;
    cr_assert_eq(codec_assembler_add(&f->a, &m, &bad), ZRAFT_EMALFORMED);
    cr_assert_eq(r->closes, 1);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &d0), 0);
    r->fail_write_at = r->writes + 1;
    cr_assert_eq(codec_assembler_add(&f->a, &m, &d1), ZRAFT_ENOSPACE);
    cr_assert_eq(r->closes, 2);
    cr_assert_eq(codec_assembler_next_offset(&f->a), 0);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &d1), ZRAFT_EAGAIN);
    codec_assembler_fini(&f->a);
    cr_assert_eq(r->closes, 2, "nothing left to close");
    free(r);
    free(f);
}

Test(snapshot_chunks, size_limit_and_empty_snapshot)
{
    snap_fixture *f = malloc(sizeof(*f));
    snap_init(f);
    codec_assembler_fini(&f->a);
    codec_assembler_init(&f->a, 9999);
    msg m = snap_msg(f, 5);
    codec_chunk c0 = chunk(f, 1, 0, 100);
    cr_assert_eq(codec_assembler_add(&f->a, &m, &c0), ZRAFT_ETOOBIG);
    codec_chunk empty = {.snapshot_id = 3, .total = 0, .last = true};
    cr_assert_eq(codec_assembler_add(&f->a, &m, &empty), 1);
    snapshot_meta meta;
    zraft_buf *b;
    cr_assert_eq(codec_assembler_take(&f->a, &meta, &b), 0);
    cr_assert_eq(b->len, 0);
    zraft_buf_unref(b);
    codec_assembler_fini(&f->a);
    free(f);
}

Test(snapshot_chunks, forged_chunk_fields_are_rejected_by_the_decoder)
{
    snap_fixture *f = malloc(sizeof(*f));
    snap_init(f);
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 0);
    msg m = snap_msg(f, 5);
    codec_chunk ch = chunk(f, 1, 100, 50);
    unsigned char frame[1000];
    size_t w;
    cr_assert_eq(codec_encode_chunk(&c, &m, &ch, frame, sizeof(frame), &w), 0);
    cr_assert_eq(decode_check(&c, frame, w), 0);
    const size_t body = CODEC_HEADER_LEN;
    /* last flag set although offset + len < total */
    frame[body + 40] = 1;
    cr_assert_eq(decode_check(&c, frame, w), ZRAFT_EMALFORMED);
    frame[body + 40] = 2; /* unknown chunk flag */
    cr_assert_eq(decode_check(&c, frame, w), ZRAFT_EMALFORMED);
    frame[body + 40] = 0;
    /* offset beyond total */
    frame[body + 39] = 0xff;
    cr_assert_eq(decode_check(&c, frame, w), ZRAFT_EMALFORMED);
    frame[body + 39] = 0;
    cr_assert_eq(decode_check(&c, frame, w), 0);
    /* Encoder refuses inconsistent chunks too. */
    ch.last = true;
    cr_assert_eq(codec_encode_chunk(&c, &m, &ch, frame, sizeof(frame), &w),
                 ZRAFT_EINVAL);
    codec_assembler_fini(&f->a);
    free(f);
}

/* ---------------------------------------------------------- forwarding */

static unsigned char *fwd_encode(const codec_ctx *c, const msg *m,
                                 const codec_fwd *f, uint32_t n, size_t *len)
{
    size_t need = codec_fwd_encoded_len(c, m, f, n);
    cr_assert_gt(need, 0);
    unsigned char *buf = malloc(need);
    cr_assert_not_null(buf);
    cr_assert_eq(codec_encode_fwd(c, m, f, n, buf, need, len), 0);
    cr_assert_eq(*len, need);
    return buf;
}

Test(forward, request_layout_and_round_trip)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 1);
    zraft_buf *p = zraft_buf_new("abc", 3);
    codec_fwd rq[2] = {{.req_id = 0x0102, .op = CODEC_FWD_WRITE, .data = p},
                       {.req_id = 9, .op = CODEC_FWD_READ}};
    msg m = {.type = CODEC_MSG_FORWARD, .from = 2, .to = 1, .term = 4};
    size_t w;
    unsigned char *buf = fwd_encode(&c, &m, rq, 2, &w);
    cr_assert_eq(w, CODEC_HEADER_LEN + 4 + 2 * CODEC_FWD_MIN_LEN + 3);
    cr_assert_eq(buf[4], CODEC_VERSION);
    cr_assert_eq(buf[5], CODEC_MSG_FORWARD);
    cr_assert_eq(buf[44], 2);    /* item count */
    cr_assert_eq(buf[48], 0x02); /* req_id, low byte first */
    cr_assert_eq(buf[56], CODEC_FWD_WRITE);
    cr_assert_eq(buf[57], 3); /* payload length */
    cr_assert_eq(memcmp(buf + 61, "abc", 3), 0);
    codec_arena a;
    codec_arena_init(&a);
    msg out;
    cr_assert_eq(codec_decode(&c, buf, w, &out, &a), 0);
    cr_assert_eq(out.type, CODEC_MSG_FORWARD);
    cr_assert(out.from == 2 && out.to == 1 && out.term == 4);
    cr_assert_eq(a.n_fwd, 2);
    cr_assert_eq(a.fwd[0].req_id, 0x0102);
    cr_assert_eq(a.fwd[0].op, CODEC_FWD_WRITE);
    cr_assert_eq(a.fwd[0].data->len, 3);
    cr_assert_eq(memcmp(a.fwd[0].data->data, "abc", 3), 0);
    cr_assert_eq(a.fwd[1].op, CODEC_FWD_READ);
    cr_assert_null(a.fwd[1].data);
    /* The arena owns the payload until the next decode; a kept ref stays. */
    zraft_buf *kept = zraft_buf_ref(a.fwd[0].data);
    cr_assert_eq(decode_check(&c, buf, w), 0);
    for (size_t n = 0; n < w; n++) {
        cr_assert_neq(codec_decode(&c, buf, n, &out, &a), 0);
        cr_assert_eq(a.n_fwd, 0); /* an error leaves nothing owned */
    }
    cr_assert_eq(kept->len, 3);
    zraft_buf_unref(kept);
    free(buf);
    codec_arena_fini(&a);
    zraft_buf_unref(p);
}

Test(forward, reply_layout_and_round_trip)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 2);
    zraft_buf *res = zraft_buf_new("17", 2);
    zraft_buf *empty = zraft_buf_new(NULL, 0);
    codec_fwd rp[4] = {
        {.req_id = 1, .op = CODEC_FWD_WRITE, .id = {4, 77}, .data = res},
        {.req_id = 2, .op = CODEC_FWD_READ, .id = {0, 76}},
        {.req_id = 3, .op = CODEC_FWD_WRITE, .err = ZRAFT_ENOTLEADER},
        {.req_id = 4, .op = CODEC_FWD_WRITE, .id = {4, 78}, .data = empty}};
    msg m = {.type = CODEC_MSG_FORWARD_REPLY, .from = 1, .to = 2, .term = 4};
    size_t w;
    unsigned char *buf = fwd_encode(&c, &m, rp, 4, &w);
    cr_assert_eq(w, CODEC_HEADER_LEN + 4 + 4 * CODEC_FWD_REPLY_MIN_LEN + 2);
    codec_arena a;
    codec_arena_init(&a);
    msg out;
    cr_assert_eq(codec_decode(&c, buf, w, &out, &a), 0);
    cr_assert_eq(out.type, CODEC_MSG_FORWARD_REPLY);
    cr_assert_eq(a.n_fwd, 4);
    cr_assert(a.fwd[0].id.term == 4 && a.fwd[0].id.index == 77);
    cr_assert_eq(memcmp(a.fwd[0].data->data, "17", 2), 0);
    cr_assert(a.fwd[1].op == CODEC_FWD_READ && a.fwd[1].id.index == 76);
    cr_assert_eq(a.fwd[2].err, ZRAFT_ENOTLEADER);
    cr_assert_null(a.fwd[2].data);
    cr_assert(a.fwd[3].data != NULL && a.fwd[3].data->len == 0);
    cr_assert_eq(decode_check(&c, buf, w), 0);
    free(buf);
    codec_arena_fini(&a);
    zraft_buf_unref(res);
    zraft_buf_unref(empty);
}

Test(forward, malformed_frames_are_refused)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 0);
    codec_fwd rd = {.req_id = 5, .op = CODEC_FWD_READ};
    msg m = {.type = CODEC_MSG_FORWARD, .from = 2, .to = 1, .term = 4};
    size_t w;
    unsigned char *buf = fwd_encode(&c, &m, &rd, 1, &w);
    /* Unknown op. */
    buf[44 + 4 + 8] = 3;
    cr_assert_eq(decode_check(&c, buf, w), ZRAFT_EMALFORMED);
    buf[44 + 4 + 8] = CODEC_FWD_READ;
    cr_assert_eq(decode_check(&c, buf, w), 0);
    /* A count that the frame cannot hold, and zero items. */
    buf[44] = 200;
    cr_assert_eq(decode_check(&c, buf, w), ZRAFT_EMALFORMED);
    buf[44] = 0;
    cr_assert_eq(decode_check(&c, buf, w), ZRAFT_EMALFORMED);
    buf[44] = 1;
    /* Not in version 2 frames. */
    buf[4] = 2;
    cr_assert_eq(decode_check(&c, buf, w), ZRAFT_EMALFORMED);
    buf[4] = 3;
    /* A read whose length claims data. */
    buf[44 + 4 + 9] = 1;
    cr_assert_eq(decode_check(&c, buf, w), ZRAFT_EMALFORMED);
    free(buf);

    /* Reply: data without its flag, an error code out of range. */
    codec_fwd rp = {.req_id = 1, .op = CODEC_FWD_WRITE, .id = {1, 2}};
    m.type = CODEC_MSG_FORWARD_REPLY;
    buf = fwd_encode(&c, &m, &rp, 1, &w);
    size_t item = 44 + 4;
    buf[item + 9] = 2; /* flags */
    cr_assert_eq(decode_check(&c, buf, w), ZRAFT_EMALFORMED);
    buf[item + 9] = 0;
    buf[item + 10] = 1; /* err = +1 */
    cr_assert_eq(decode_check(&c, buf, w), ZRAFT_EMALFORMED);
    buf[item + 10] = 0;
    cr_assert_eq(decode_check(&c, buf, w), 0);
    free(buf);

    /* The encoder refuses what the decoder would. */
    codec_ctx v2 = c;
    v2.version = 2;
    unsigned char out[256];
    cr_assert_eq(codec_encode_fwd(&v2, &m, &rp, 1, out, sizeof out, &w),
                 ZRAFT_EINVAL);
    cr_assert_eq(codec_encode_fwd(&c, &m, &rp, 0, out, sizeof out, &w),
                 ZRAFT_EINVAL);
    rp.err = 5;
    cr_assert_eq(codec_encode_fwd(&c, &m, &rp, 1, out, sizeof out, &w),
                 ZRAFT_EINVAL);
    rp.err = 0;
    m.type = CODEC_MSG_FORWARD;
    cr_assert_eq(codec_encode_fwd(&c, &m, &rp, 1, out, sizeof out, &w),
                 ZRAFT_EINVAL); /* a request carries no id */
    m.type = MSG_HEARTBEAT;
    cr_assert_eq(codec_encode_fwd(&c, &m, &rd, 1, out, sizeof out, &w),
                 ZRAFT_EINVAL);
    m.type = CODEC_MSG_FORWARD;
    cr_assert_eq(codec_encode_fwd(&c, &m, &rd, 1, out, 10, &w), ZRAFT_ENOSPACE);
}
