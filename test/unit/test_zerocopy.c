/* test_zerocopy.c - payloads sent and received by reference (wire version
 * 4): the codec's segments name their buffers, the decoder references held
 * segments instead of copying, and rpc_conn -> rpc_server carries an
 * AppendEntries of mixed small and large payloads over inproc, TCP and
 * CURVE, with every reference ZeroMQ took dropped again - also when the
 * message is still queued as the receiver or the sender goes away.
 *
 * A leak or a use after free shows under the ASan build (every payload is
 * checked after the sender dropped its own references and after the
 * sockets are gone); reference counts are read to check that nothing is
 * held once ZeroMQ is done, polled with a deadline (ZeroMQ frees parts on
 * its own threads). */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "transport/codec.h"
#include "transport/rpc.h"

#define CLUSTER 0x2c0b7ull

/* Payload sizes of the test entries: below, at and above the cut-off. */
static const size_t sizes[] = {
    8, 300, 0, 70000, CODEC_ZEROCOPY_MIN, CODEC_ZEROCOPY_MIN - 1, 4096, 1};
#define N_ENT (sizeof(sizes) / sizeof(sizes[0]))

static uint64_t s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t s_refs(const zraft_buf *b)
{
    return atomic_load(&((zraft_buf *)b)->refs);
}

/* An AppendEntries from 1 to 2 of N_ENT entries at indexes 11.. */
typedef struct {
    zraft_entry e[N_ENT];
    msg m;
} append;

static void append_init(append *a, unsigned seed)
{
    memset(a, 0, sizeof(*a));
    for (size_t i = 0; i < N_ENT; i++) {
        a->e[i].id = (zraft_log_id){2, 11 + i};
        a->e[i].type = ZRAFT_ENTRY_NORMAL;
        a->e[i].payload = zraft_buf_new(NULL, sizes[i]);
        cr_assert_not_null(a->e[i].payload);
        for (size_t j = 0; j < sizes[i]; j++) {
            a->e[i].payload->data[j] = (unsigned char)(seed + i * 7 + j * 13);
        }
    }
    a->m.type = MSG_APPEND;
    a->m.from = 1;
    a->m.to = 2;
    a->m.term = 2;
    a->m.u.append.prev = (zraft_log_id){2, 10};
    a->m.u.append.commit = 9;
    a->m.u.append.n_entries = N_ENT;
    a->m.u.append.entries = a->e;
}

static void append_fini(append *a)
{
    for (size_t i = 0; i < N_ENT; i++) {
        zraft_buf_unref(a->e[i].payload);
    }
}

/* Waits until ZeroMQ dropped every reference it took to a's payloads. */
static void expect_released(const append *a)
{
    uint64_t deadline = s_now() + 10000;
    for (size_t i = 0; i < N_ENT; i++) {
        while (s_refs(a->e[i].payload) != 1) {
            cr_assert_lt(s_now(), deadline, "entry %zu: %u references", i,
                         s_refs(a->e[i].payload));
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
}

/* ---------------------------------------------------------------- codec */

Test(zerocopy, segments_name_their_buffers)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 2);
    append a;
    append_init(&a, 1);
    size_t scratch_len, n;
    cr_assert_eq(codec_iov_plan(&c, &a.m, NULL, &scratch_len, &n), 0);
    unsigned char *scratch = malloc(scratch_len);
    codec_iov *iov = calloc(n, sizeof(*iov));
    size_t got;
    cr_assert_eq(
        codec_encode_iov(&c, &a.m, NULL, scratch, scratch_len, iov, n, &got),
        0);
    cr_assert_eq(got, n);
    size_t referenced = 0, flat_len = codec_encoded_len(&c, &a.m), at = 0;
    unsigned char *flat = malloc(flat_len), *cat = malloc(flat_len);
    cr_assert_eq(codec_encode(&c, &a.m, flat, flat_len, &flat_len), 0);
    for (size_t i = 0; i < n; i++) {
        if (iov[i].buf != NULL) {
            cr_assert_geq(iov[i].len, CODEC_ZEROCOPY_MIN);
            cr_assert_eq(iov[i].base, iov[i].buf->data, "the payload itself");
            cr_assert_eq(iov[i].len, iov[i].buf->len);
            referenced++;
        } else {
            cr_assert(iov[i].base >= (void *)scratch &&
                      iov[i].base < (void *)(scratch + scratch_len));
        }
        memcpy(cat + at, iov[i].base, iov[i].len);
        at += iov[i].len;
    }
    cr_assert_eq(referenced, 4, "300, 70000, 256 and 4096 bytes");
    cr_assert_eq(at, flat_len);
    cr_assert_eq(memcmp(cat, flat, flat_len), 0, "the same frame");
    /* A higher cut-off references fewer payloads. */
    c.zerocopy_min = 4096;
    cr_assert_eq(codec_iov_plan(&c, &a.m, NULL, &scratch_len, &n), 0);
    cr_assert_eq(n, 1 + 2 * 2,
                 "70000 and 4096 bytes, each followed by "
                 "fixed fields (or the end)");
    free(cat);
    free(flat);
    free(iov);
    free(scratch);
    append_fini(&a);
}

Test(zerocopy, decoded_payloads_reference_held_segments)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 2);
    append a;
    append_init(&a, 2);
    size_t scratch_len, n, got;
    cr_assert_eq(codec_iov_plan(&c, &a.m, NULL, &scratch_len, &n), 0);
    unsigned char *scratch = malloc(scratch_len);
    codec_iov *iov = calloc(n, sizeof(*iov));
    cr_assert_eq(
        codec_encode_iov(&c, &a.m, NULL, scratch, scratch_len, iov, n, &got),
        0);
    /* As a receiver holds them: each segment in a buffer of its own. */
    codec_iov *held = calloc(n, sizeof(*held));
    for (size_t i = 0; i < n; i++) {
        zraft_buf *b = zraft_buf_new(iov[i].base, iov[i].len);
        held[i] = (codec_iov){b->data, b->len, b};
    }
    codec_arena ar;
    codec_arena_init(&ar);
    msg out;
    cr_assert_eq(codec_decode_iov(&c, held, n, &out, &ar), 0);
    for (size_t i = 0; i < n; i++) {
        zraft_buf_unref(held[i].buf); /* the receiver lets go of the parts */
    }
    cr_assert_eq(out.u.append.n_entries, N_ENT);
    size_t by_ref = 0;
    for (size_t i = 0; i < N_ENT; i++) {
        const zraft_buf *p = out.u.append.entries[i].payload;
        cr_assert_eq(p->len, sizes[i]);
        cr_assert_eq(memcmp(p->data, a.e[i].payload->data, sizes[i]), 0);
        bool is_held = false;
        for (size_t j = 0; j < n; j++) {
            is_held |= p == held[j].buf;
        }
        cr_assert_eq(is_held, sizes[i] >= CODEC_ZEROCOPY_MIN,
                     "entry %zu (%zu bytes)", i, sizes[i]);
        by_ref += is_held;
    }
    cr_assert_eq(by_ref, 4);
    /* A payload outlives the message, the arena and the other payloads. */
    zraft_buf *keep = zraft_buf_ref(out.u.append.entries[3].payload);
    codec_msg_release(&out);
    codec_arena_fini(&ar);
    cr_assert_eq(keep->len, 70000);
    cr_assert_eq(memcmp(keep->data, a.e[3].payload->data, 70000), 0);
    zraft_buf_unref(keep);
    free(held);
    free(iov);
    free(scratch);
    append_fini(&a);
}

Test(zerocopy, a_payload_within_a_flat_frame_references_it)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 2);
    append a;
    append_init(&a, 3);
    size_t len = codec_encoded_len(&c, &a.m);
    zraft_buf *frame = zraft_buf_new(NULL, len);
    cr_assert_eq(codec_encode(&c, &a.m, frame->data, len, &len), 0);
    codec_iov seg = {frame->data, len, frame};
    codec_arena ar;
    codec_arena_init(&ar);
    msg out;
    cr_assert_eq(codec_decode_iov(&c, &seg, 1, &out, &ar), 0);
    zraft_buf_unref(frame); /* the payloads keep the frame */
    for (size_t i = 0; i < N_ENT; i++) {
        const zraft_buf *p = out.u.append.entries[i].payload;
        cr_assert_eq(memcmp(p->data, a.e[i].payload->data, sizes[i]), 0);
    }
    codec_msg_release(&out);
    codec_arena_fini(&ar);
    append_fini(&a);
}

/* A receiver's hold callback: wraps segment `seg` of `segs` on demand. */
typedef struct {
    codec_iov *segs;
    zraft_buf *frame; /* what the segment's bytes live in */
    int calls;
} holder;

static zraft_buf *s_hold(void *ctx, size_t seg)
{
    holder *h = ctx;
    h->calls++;
    h->segs[seg].buf = zraft_buf_ref(h->frame);
    return h->segs[seg].buf;
}

Test(zerocopy, hold_is_asked_once_and_only_when_a_payload_needs_it)
{
    codec_ctx c;
    codec_ctx_init(&c, CLUSTER, 2);
    append a;
    append_init(&a, 8);
    size_t len = codec_encoded_len(&c, &a.m);
    zraft_buf *frame = zraft_buf_new(NULL, len);
    cr_assert_eq(codec_encode(&c, &a.m, frame->data, len, &len), 0);
    codec_iov seg = {frame->data, len, NULL};
    holder h = {&seg, frame, 0};
    codec_arena ar;
    codec_arena_init(&ar);
    ar.hold = s_hold;
    ar.hold_ctx = &h;
    msg out;
    cr_assert_eq(codec_decode_iov(&c, &seg, 1, &out, &ar), 0);
    cr_assert_eq(h.calls, 1, "one segment, asked once");
    const unsigned char *lo = frame->data, *hi = frame->data + len;
    zraft_buf_unref(seg.buf); /* the receiver drops its hold */
    zraft_buf_unref(frame);   /* the referencing payloads keep it */
    for (size_t i = 0; i < N_ENT; i++) {
        const zraft_buf *p = out.u.append.entries[i].payload;
        bool inside = p->data >= lo && p->data < hi;
        /* At least 256 bytes and half the frame: the 70000-byte one. */
        cr_assert_eq(inside,
                     sizes[i] >= CODEC_ZEROCOPY_MIN && 2 * sizes[i] >= len,
                     "entry %zu", i);
        cr_assert_eq(memcmp(p->data, a.e[i].payload->data, sizes[i]), 0);
    }
    codec_msg_release(&out);
    /* Only small payloads: the callback is never asked. */
    append small;
    append_init(&small, 9);
    small.m.u.append.n_entries = 1; /* the 8-byte entry */
    len = codec_encoded_len(&c, &small.m);
    frame = zraft_buf_new(NULL, len);
    cr_assert_eq(codec_encode(&c, &small.m, frame->data, len, &len), 0);
    seg = (codec_iov){frame->data, len, NULL};
    h = (holder){&seg, frame, 0};
    cr_assert_eq(codec_decode_iov(&c, &seg, 1, &out, &ar), 0);
    cr_assert_eq(h.calls, 0);
    cr_assert_eq(s_refs(frame), 1, "nothing references the frame");
    codec_msg_release(&out);
    zraft_buf_unref(frame);
    codec_arena_fini(&ar);
    append_fini(&small);
    append_fini(&a);
}

/* ------------------------------------------------------------------ rpc */

typedef struct {
    void *zs, *zc; /* receiver's and sender's contexts (one with inproc) */
    zraft_network *net;
    rpc_ctx sc, rc;
    curve_auth *sa, *ra;
    rpc_server *srv;
    rpc_conn *conn;
} zlink;

static void s_ctx(rpc_ctx *c, zraft_network *net, zraft_id self)
{
    memset(c, 0, sizeof(*c));
    codec_ctx_init(&c->codec, CLUSTER, self);
    c->net = net;
    c->self = self;
    c->snapshot_chunk = 64u << 10;
    c->snapshot_window = 256u << 10;
    snprintf(c->scratch_dir, sizeof c->scratch_dir, "/tmp");
}

enum { INPROC, TCP, CURVE };

/* send_min: rpc_ctx.zerocopy_send_min of the sender (0: the default). */
static void link_init(zlink *l, int kind, uint8_t version, uint32_t send_min)
{
    memset(l, 0, sizeof(*l));
    if (kind == INPROC) {
        l->net = zraft_network_new();
        l->zs = l->zc = rpc_net_zctx(l->net);
    } else {
        l->zs = zmq_ctx_new();
        l->zc = zmq_ctx_new();
    }
    s_ctx(&l->sc, l->net, 1);
    s_ctx(&l->rc, l->net, 2);
    l->sc.codec.version = version;
    l->sc.zerocopy_send_min = send_min;
    if (kind == CURVE) {
        if (!curve_available()) {
            cr_skip_test("libzmq without CURVE");
        }
        char p1[ZRAFT_KEY_MAX], s1[ZRAFT_KEY_MAX], p2[ZRAFT_KEY_MAX],
            s2[ZRAFT_KEY_MAX];
        cr_assert_eq(curve_keypair(p1, s1), 0);
        cr_assert_eq(curve_keypair(p2, s2), 0);
        zraft_member known[2] = {{1, ZRAFT_ROLE_VOTER, "", ""},
                                 {2, ZRAFT_ROLE_VOTER, "", ""}};
        snprintf(known[0].key, sizeof known[0].key, "%s", p1);
        snprintf(known[1].key, sizeof known[1].key, "%s", p2);
        const char *why = NULL;
        l->ra = curve_auth_new(l->zs, 2, s2, known, 2, &why);
        cr_assert_not_null(l->ra, "%s", why ? why : "");
        l->sa = curve_auth_new(l->zc, 1, s1, known, 2, &why);
        cr_assert_not_null(l->sa, "%s", why ? why : "");
        l->rc.auth = l->ra;
        l->sc.auth = l->sa;
    }
    char ep[ZRAFT_ADDR_MAX + 32];
    if (kind == INPROC) {
        rpc_endpoint(&l->rc, 2, "", ep, sizeof ep);
    } else {
        snprintf(ep, sizeof ep, "tcp://127.0.0.1:*");
    }
    const char *why = NULL;
    l->srv = rpc_server_new(l->zs, &l->rc, ep, &why);
    cr_assert_not_null(l->srv, "%s", why ? why : "");
    if (kind != INPROC) {
        size_t n = sizeof ep;
        cr_assert_eq(zmq_getsockopt(rpc_server_socket(l->srv),
                                    ZMQ_LAST_ENDPOINT, ep, &n),
                     0);
    }
    l->conn = rpc_conn_new(l->zc, &l->sc, 2, ep, RPC_KIND_REPL);
    cr_assert_not_null(l->conn);
}

static void link_fini(zlink *l)
{
    rpc_conn_destroy(&l->conn);
    rpc_server_destroy(&l->srv);
    curve_auth_destroy(&l->sa);
    curve_auth_destroy(&l->ra);
    if (l->net != NULL) {
        zraft_network_destroy(&l->net);
    } else {
        zmq_ctx_term(l->zc);
        zmq_ctx_term(l->zs);
    }
}

/* Sends until the connection takes the frame (TCP connects in the
 * background: ZMQ_IMMEDIATE refuses sends until then). */
static void send_append(zlink *l, const msg *m)
{
    uint64_t deadline = s_now() + 10000;
    int rv;
    while ((rv = rpc_conn_send(l->conn, m)) == ZRAFT_EAGAIN) {
        cr_assert_lt(s_now(), deadline, "never connected");
        zmq_pollitem_t it = {rpc_conn_socket(l->conn), 0, ZMQ_POLLOUT, 0};
        zmq_poll(&it, 1, 10);
    }
    cr_assert_eq(rv, 0, "%s", zraft_strerror(rv));
}

static void recv_msg(zlink *l, msg *out)
{
    uint64_t deadline = s_now() + 10000;
    while (rpc_server_recv(l->srv, out, s_now()) != 1) {
        cr_assert_lt(s_now(), deadline, "nothing arrived");
        zmq_pollitem_t it = {rpc_server_socket(l->srv), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 10);
    }
}

/* Sends a mixed AppendEntries, drops the sender's references at once
 * (unless `hold`), receives it and checks every payload after the link is
 * gone. With inproc and version 4, payloads from the send cut-off on
 * arrive as the sender's very bytes; held, every other payload is seen to
 * be a copy (unheld, a copy may reuse the address of a freed original).
 * Over TCP the sender is made to cut the frame (send_min). */
static void round_trip(int kind, uint8_t version, bool hold, uint32_t send_min)
{
    zlink l;
    link_init(&l, kind, version, send_min);
    size_t zc_min = send_min ? send_min : RPC_ZEROCOPY_INPROC_MIN;
    append a;
    append_init(&a, 4);
    const unsigned char *sent_at[N_ENT];
    unsigned char *copy[N_ENT];
    for (size_t i = 0; i < N_ENT; i++) {
        sent_at[i] = a.e[i].payload->data;
        copy[i] = malloc(sizes[i] + 1);
        memcpy(copy[i], a.e[i].payload->data, sizes[i]);
    }
    send_append(&l, &a.m);
    if (!hold) {
        append_fini(&a); /* ZeroMQ's references keep queued parts' bytes */
    }
    msg out;
    recv_msg(&l, &out);
    cr_assert_eq(out.type, MSG_APPEND);
    cr_assert_eq(out.u.append.n_entries, N_ENT);
    zraft_buf *got[N_ENT];
    for (size_t i = 0; i < N_ENT; i++) {
        got[i] = zraft_buf_ref(out.u.append.entries[i].payload);
        cr_assert_eq(out.u.append.entries[i].id.index, 11 + i);
    }
    codec_msg_release(&out);
    link_fini(&l);
    for (size_t i = 0; i < N_ENT; i++) {
        cr_assert_eq(got[i]->len, sizes[i]);
        cr_assert_eq(memcmp(got[i]->data, copy[i], sizes[i]), 0, "entry %zu",
                     i);
        bool same = got[i]->data == sent_at[i];
        bool zc = kind == INPROC && version >= CODEC_VERSION_MULTIPART &&
                  sizes[i] >= zc_min;
        if (zc || hold) {
            cr_assert_eq(same, zc, "entry %zu of %zu bytes %s", i, sizes[i],
                         zc ? "was copied" : "was not copied");
        }
        zraft_buf_unref(got[i]);
        free(copy[i]);
    }
    if (hold) {
        expect_released(&a);
        append_fini(&a);
    }
}

Test(zerocopy, inproc_mixed_payloads_by_reference)
{
    round_trip(INPROC, CODEC_VERSION, false, 0);
    round_trip(INPROC, CODEC_VERSION, true, 0);
    round_trip(INPROC, CODEC_VERSION, true, CODEC_ZEROCOPY_MIN);
}

Test(zerocopy, inproc_version_3_is_one_copied_part)
{
    round_trip(INPROC, 3, true, 0);
}

Test(zerocopy, tcp_mixed_payloads)
{
    round_trip(TCP, CODEC_VERSION, false, CODEC_ZEROCOPY_MIN);
    round_trip(TCP, CODEC_VERSION, true, CODEC_ZEROCOPY_MIN);
    round_trip(TCP, CODEC_VERSION, true, 0); /* one copied part */
}

Test(zerocopy, curve_mixed_payloads)
{
    round_trip(CURVE, CODEC_VERSION, false, CODEC_ZEROCOPY_MIN);
    round_trip(CURVE, CODEC_VERSION, true, CODEC_ZEROCOPY_MIN);
}

/* Frames queued towards a receiver that goes away, or from a sender that
 * goes away: ZeroMQ drops the parts and with them its references. */
static void gone_while_queued(int kind, bool receiver_first)
{
    zlink l;
    link_init(&l, kind, CODEC_VERSION, CODEC_ZEROCOPY_MIN);
    append a;
    append_init(&a, 5);
    for (int i = 0; i < 3; i++) {
        send_append(&l, &a.m);
    }
    if (receiver_first) {
        rpc_server_destroy(&l.srv);
    } else {
        rpc_conn_destroy(&l.conn);
    }
    link_fini(&l);
    expect_released(&a);
    append_fini(&a);
}

Test(zerocopy, inproc_receiver_gone_while_queued)
{
    gone_while_queued(INPROC, true);
}

Test(zerocopy, inproc_sender_gone_while_queued)
{
    gone_while_queued(INPROC, false);
}

Test(zerocopy, tcp_receiver_gone_while_queued)
{
    gone_while_queued(TCP, true);
}

Test(zerocopy, tcp_sender_gone_while_queued)
{
    gone_while_queued(TCP, false);
}

/* By default a TCP connection sends one copied part: ZeroMQ holds no
 * reference once the send returned. */
Test(zerocopy, tcp_default_copies_the_frame)
{
    zlink l;
    link_init(&l, TCP, CODEC_VERSION, 0);
    append a;
    append_init(&a, 7);
    send_append(&l, &a.m);
    for (size_t i = 0; i < N_ENT; i++) {
        cr_assert_eq(s_refs(a.e[i].payload), 1, "entry %zu", i);
    }
    msg out;
    recv_msg(&l, &out);
    cr_assert_eq(out.u.append.n_entries, N_ENT);
    codec_msg_release(&out);
    link_fini(&l);
    append_fini(&a);
}

/* A send refused (no peer: ZMQ_IMMEDIATE) takes no reference. */
Test(zerocopy, refused_send_keeps_no_reference)
{
    void *z = zmq_ctx_new();
    rpc_ctx c;
    s_ctx(&c, NULL, 1);
    c.zerocopy_send_min = CODEC_ZEROCOPY_MIN;
    rpc_conn *k = rpc_conn_new(z, &c, 2, "tcp://127.0.0.1:1", RPC_KIND_REPL);
    cr_assert_not_null(k);
    append a;
    append_init(&a, 6);
    cr_assert_eq(rpc_conn_send(k, &a.m), ZRAFT_EAGAIN);
    for (size_t i = 0; i < N_ENT; i++) {
        cr_assert_eq(s_refs(a.e[i].payload), 1);
    }
    rpc_conn_destroy(&k);
    zmq_ctx_term(z);
    append_fini(&a);
}

/* A message of more parts than any frame needs is dropped whole (nothing
 * is allocated for it beyond the limit), and the next frame decodes. */
Test(zerocopy, too_many_parts_are_dropped)
{
    zlink l;
    link_init(&l, INPROC, CODEC_VERSION, 0);
    l.rc.codec.max_entries = N_ENT; /* the server reads its ctx live */
    void *raw = zmq_socket(l.zc, ZMQ_DEALER);
    cr_assert_not_null(raw);
    char ep[ZRAFT_ADDR_MAX + 32];
    rpc_endpoint(&l.rc, 2, "", ep, sizeof ep);
    cr_assert_eq(zmq_connect(raw, ep), 0);
    size_t limit = 2 * N_ENT + 4;
    for (size_t i = 0; i <= limit; i++) {
        cr_assert_geq(zmq_send(raw, "x", 1, i < limit ? ZMQ_SNDMORE : 0), 0);
    }
    const char *why = NULL;
    msg out;
    uint64_t deadline = s_now() + 10000;
    while (rpc_server_rejected(l.srv, &why) == 0) {
        cr_assert_lt(s_now(), deadline, "never received");
        cr_assert_eq(rpc_server_recv(l.srv, &out, s_now()), 0);
        zmq_pollitem_t it = {rpc_server_socket(l.srv), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 10);
    }
    cr_assert_str_eq(why, "too many parts in one message");
    append a;
    append_init(&a, 10);
    send_append(&l, &a.m);
    recv_msg(&l, &out);
    cr_assert_eq(out.type, MSG_APPEND);
    cr_assert_eq(out.u.append.n_entries, N_ENT);
    codec_msg_release(&out);
    cr_assert_eq(rpc_server_rejected(l.srv, NULL), 1);
    zmq_close(raw);
    link_fini(&l);
    append_fini(&a);
}

/* A member whose key passed CURVE but whose frames claim another id is
 * refused (the sender check), here with a multipart frame as the very
 * first message the server receives: the parts are released without
 * touching segment slots that were never filled (they held garbage once,
 * and releasing them freed it), and the next frame from the right id is
 * read. */
Test(zerocopy, curve_refused_sender_multipart_first)
{
    zlink l;
    link_init(&l, CURVE, CODEC_VERSION, CODEC_ZEROCOPY_MIN);
    append a;
    append_init(&a, 5);
    a.m.from = 3; /* node 1's key, node 3's id */
    send_append(&l, &a.m);
    const char *why = NULL;
    msg out;
    uint64_t deadline = s_now() + 10000;
    while (rpc_server_rejected(l.srv, &why) == 0) {
        cr_assert_lt(s_now(), deadline, "never received");
        cr_assert_eq(rpc_server_recv(l.srv, &out, s_now()), 0);
        zmq_pollitem_t it = {rpc_server_socket(l.srv), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 10);
    }
    cr_assert_not_null(strstr(why, "sender is not the member"));
    a.m.from = 1;
    send_append(&l, &a.m);
    recv_msg(&l, &out);
    cr_assert_eq(out.type, MSG_APPEND);
    cr_assert_eq(out.from, 1);
    codec_msg_release(&out);
    link_fini(&l);
    expect_released(&a);
    append_fini(&a);
}
