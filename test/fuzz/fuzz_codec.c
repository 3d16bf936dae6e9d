/* fuzz_codec.c - libFuzzer target for the wire decoder (transport/codec.c)
 * and, through MEMBERSHIP entries and snapshot chunks, for
 * zraft_membership_decode().
 *
 * For every input:
 *  - decoding must not crash, leak or read out of bounds (ASan, UBSan);
 *  - decoding the same bytes cut into two segments gives the same result,
 *    also when the segments name buffers holding them (codec_iov.buf) and
 *    payloads reference those instead of copying: the payloads are the
 *    same bytes and keep the buffers alive after the decoder's caller drops
 *    them (ASan sees a use after free otherwise);
 *  - an accepted frame re-encodes (in its own version) to exactly the input
 *    bytes (the format has one encoding per message), and decodes again;
 *  - the zero-copy encoding of an accepted frame decodes from its
 *    segments;
 *  - a snapshot chunk goes through a codec_assembler;
 *  - forward frames (version 3) re-encode from their decoded items.
 * Any violated property aborts, which libFuzzer reports as a crash.
 * Run it with scripts/fuzz.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test/fuzz/fuzz_codec.h"
#include "transport/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_codec: property violated: %s\n", what);
        abort();
    }
}

/* The forward items of the frame being checked (FORWARD[_REPLY]). */
static const codec_fwd *fwd_items;
static uint32_t fwd_n;

static bool is_fwd(const msg *m)
{
    return m->type == CODEC_MSG_FORWARD || m->type == CODEC_MSG_FORWARD_REPLY;
}

/* Encodes `m` (a chunk when `ch` is set, an ack when `ack` is, forward
 * items from fwd_items) with `c` into a new buffer. */
static unsigned char *encode(const codec_ctx *c, const msg *m,
                             const codec_chunk *ch, const codec_ack *ack,
                             size_t *len)
{
    bool fwd = is_fwd(m);
    size_t need = ack   ? CODEC_ACK_FRAME_MAX
                  : fwd ? codec_fwd_encoded_len(c, m, fwd_items, fwd_n)
                  : ch  ? codec_chunk_encoded_len(c, m, ch)
                        : codec_encoded_len(c, m);
    check(need > 0, "a decoded message is encodable");
    unsigned char *buf = malloc(need);
    check(buf != NULL, "malloc");
    int rv = ack   ? codec_encode_ack(c, m, ack, buf, need, len)
             : fwd ? codec_encode_fwd(c, m, fwd_items, fwd_n, buf, need, len)
             : ch  ? codec_encode_chunk(c, m, ch, buf, need, len)
                   : codec_encode(c, m, buf, need, len);
    check(rv == 0 && (ack || *len == need),
          "encode succeeds at the planned size");
    return buf;
}

/* Zero-copy form: same bytes, decodes from its segments. */
static void zerocopy_round_trip(const codec_ctx *c, const msg *m,
                                const codec_chunk *ch, const codec_ack *ack)
{
    if (ack != NULL || is_fwd(m)) {
        return; /* acks and forwards have no zero-copy form */
    }
    codec_arena a;
    msg out;
    codec_arena_init(&a);
    size_t scratch_len, n_iov, got;
    check(codec_iov_plan(c, m, ch, &scratch_len, &n_iov) == 0, "plan");
    unsigned char *scratch = malloc(scratch_len ? scratch_len : 1);
    codec_iov *iov = malloc(n_iov * sizeof(*iov));
    check(scratch != NULL && iov != NULL, "malloc");
    check(codec_encode_iov(c, m, ch, scratch, scratch_len, iov, n_iov, &got) ==
                  0 &&
              got == n_iov,
          "iov encode succeeds as planned");
    check(codec_decode_iov(c, iov, got, &out, &a) == 0, "iov frame decodes");
    codec_msg_release(&out);
    free(iov);
    free(scratch);
    codec_arena_fini(&a);
}

static void assemble(const msg *m, const codec_chunk *ch)
{
    codec_assembler as;
    codec_assembler_init(&as, 1u << 20);
    int rv = codec_assembler_add(&as, m, ch);
    if (ch->offset != 0) {
        check(rv == ZRAFT_EAGAIN, "a new transfer must start at 0");
    } else if (ch->total > (1u << 20)) {
        check(rv == ZRAFT_ETOOBIG, "size limit");
    } else {
        check(rv == (ch->last ? 1 : 0), "first chunk accepted");
        if (rv == 1) {
            snapshot_meta meta;
            zraft_buf *b = NULL;
            check(codec_assembler_take(&as, &meta, &b) == 0, "take");
            check(
                b->len == ch->len &&
                    (ch->len == 0 || memcmp(b->data, ch->bytes, ch->len) == 0),
                "assembled bytes");
            zraft_buf_unref(b);
        }
    }
    codec_assembler_fini(&as);
}

/* The segments of the held decode and their buffers (hold callback). */
static codec_iov *held_segs;
static zraft_buf *held_bufs[2];

static zraft_buf *hold(void *ctx, size_t seg)
{
    (void)ctx;
    check(seg < 2 && held_segs[seg].buf == NULL, "asked once per segment");
    held_segs[seg].buf = zraft_buf_ref(held_bufs[seg]);
    return held_segs[seg].buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static codec_ctx plain, byref;
    static int ready;
    if (!ready) {
        codec_ctx_init(&plain, FUZZ_CLUSTER, 0);
        byref = plain;
        byref.zerocopy_min = 1; /* reference every payload it can */
        ready = 1;
    }
    codec_arena a, a2;
    msg m, m2;
    codec_arena_init(&a);
    codec_arena_init(&a2);

    int rv = codec_decode(&plain, data, size, &m, &a);
    check(rv <= 0, "decode returns 0 or an error");
    check(rv == 0 || a.why != NULL, "a failure names its check");

    /* The same bytes in two segments (cut chosen by the input). */
    size_t cut = size ? data[size - 1] % (size + 1) : 0;
    codec_iov two[2] = {{data, cut, NULL}, {data + cut, size - cut, NULL}};
    int rv2 = codec_decode_iov(&plain, two, 2, &m2, &a2);
    check(rv2 == rv, "segmentation does not change the result");
    codec_msg_release(&m2);

    /* The same, referencing: each segment held by a buffer of its own,
     * named up front (the first) or handed out by the hold callback when
     * a payload asks (the second). */
    zraft_buf *h0 = zraft_buf_new(data, cut);
    zraft_buf *h1 = zraft_buf_new(data + cut, size - cut);
    check(h0 != NULL && h1 != NULL, "malloc");
    codec_iov held[2] = {{h0->data, cut, h0}, {h1->data, size - cut, NULL}};
    held_segs = held;
    held_bufs[0] = h0;
    held_bufs[1] = h1;
    a2.hold = hold;
    rv2 = codec_decode_iov(&byref, held, 2, &m2, &a2);
    a2.hold = NULL;
    zraft_buf_unref(held[1].buf); /* the hold the callback gave, if any */
    zraft_buf_unref(h0); /* the payloads must keep what they reference */
    zraft_buf_unref(h1);
    check(rv2 == rv, "referencing does not change the result");
    if (rv == 0 && m.type == MSG_APPEND) {
        for (uint32_t i = 0; i < m.u.append.n_entries; i++) {
            const zraft_buf *x = m.u.append.entries[i].payload;
            const zraft_buf *y = m2.u.append.entries[i].payload;
            check((x == NULL) == (y == NULL) &&
                      (x == NULL || (x->len == y->len &&
                                     memcmp(x->data, y->data, x->len) == 0)),
                  "a referenced payload holds the same bytes");
        }
    }
    codec_msg_release(&m2);

    if (rv == 0) {
        const codec_chunk *ch = m.type == MSG_SNAPSHOT ? &a.chunk : NULL;
        const codec_ack *ack = m.type == CODEC_MSG_SNAPSHOT_ACK ? &a.ack : NULL;
        /* a2 is reused below: encode from a's items. */
        fwd_items = a.fwd;
        fwd_n = a.n_fwd;
        /* In the frame's own version (a version 2 node reads 1 too). */
        codec_ctx pv = plain;
        pv.version = a.version;
        size_t len;
        unsigned char *again = encode(&pv, &m, ch, ack, &len);
        check(len == size && memcmp(again, data, size) == 0,
              "re-encoding gives the input bytes");
        check(codec_decode(&plain, again, len, &m2, &a2) == 0,
              "a re-encoded frame decodes");
        codec_msg_release(&m2);
        free(again);
        zerocopy_round_trip(&pv, &m, ch, ack);
        if (ch != NULL) {
            assemble(&m, ch);
        }
    }
    codec_msg_release(&m);
    codec_arena_fini(&a);
    codec_arena_fini(&a2);
    return 0;
}
