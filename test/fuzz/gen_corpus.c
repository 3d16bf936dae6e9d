/* gen_corpus.c - writes the seed corpus of fuzz_codec: one valid frame per
 * file, covering every message type and the interesting entry and chunk
 * shapes. Usage: gen_corpus DIR (the files are committed in
 * test/fuzz/corpus/codec; rerun after a format change). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test/fuzz/fuzz_codec.h"
#include "transport/codec.h"

static const char *dir;
static codec_ctx ctx;
static int written;

static void put(const char *name, const msg *m, const codec_chunk *ch)
{
    unsigned char buf[8192];
    size_t len;
    int rv = ch ? codec_encode_chunk(&ctx, m, ch, buf, sizeof(buf), &len)
                : codec_encode(&ctx, m, buf, sizeof(buf), &len);
    if (rv != 0) {
        fprintf(stderr, "gen_corpus: %s: %s\n", name, zraft_strerror(rv));
        exit(1);
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    written++;
}

static void put_ack(const char *name, const msg *m, const codec_ack *a)
{
    unsigned char buf[CODEC_ACK_FRAME_MAX];
    size_t len;
    int rv = codec_encode_ack(&ctx, m, a, buf, sizeof(buf), &len);
    if (rv != 0) {
        fprintf(stderr, "gen_corpus: %s: %s\n", name, zraft_strerror(rv));
        exit(1);
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    written++;
}

static void put_fwd(const char *name, const msg *m, const codec_fwd *f,
                    uint32_t n)
{
    unsigned char buf[8192];
    size_t len;
    int rv = codec_encode_fwd(&ctx, m, f, n, buf, sizeof(buf), &len);
    if (rv != 0) {
        fprintf(stderr, "gen_corpus: %s: %s\n", name, zraft_strerror(rv));
        exit(1);
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (fp == NULL || fwrite(buf, 1, len, fp) != len || fclose(fp) != 0) {
        perror(path);
        exit(1);
    }
    written++;
}

static void members(zraft_membership *mm, uint32_t n, bool joint)
{
    memset(mm, 0, sizeof(*mm));
    mm->n = n;
    mm->joint = joint;
    for (uint32_t i = 0; i < n; i++) {
        mm->members[i].id = i + 1;
        mm->members[i].roles = ZRAFT_ROLE_VOTER;
        snprintf(mm->members[i].addr, ZRAFT_ADDR_MAX, "10.0.0.%u:70%02u", i + 1,
                 i);
    }
    if (joint) {
        mm->members[0].roles |= ZRAFT_ROLE_VOTER_OLD;
    }
    if (n > 2) {
        mm->members[n - 1].roles = ZRAFT_ROLE_LEARNER;
    }
}

static zraft_buf *bytes(size_t len, unsigned seed)
{
    zraft_buf *b = zraft_buf_new(NULL, len);
    for (size_t i = 0; i < len; i++) {
        b->data[i] = (unsigned char)(seed + i * 7);
    }
    return b;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus DIR\n");
        return 2;
    }
    dir = argv[1];
    codec_ctx_init(&ctx, FUZZ_CLUSTER, 0);
    msg m;

    m = (msg){.type = MSG_VOTE, .from = 1, .to = 2, .term = 5};
    m.u.vote.last_log_id = (zraft_log_id){4, 40};
    put("vote", &m, NULL);
    m.u.vote.pre_vote = true;
    put("vote_pre", &m, NULL);
    m.u.vote.pre_vote = false;
    m.u.vote.transfer = true;
    put("vote_transfer", &m, NULL);

    m = (msg){.type = MSG_VOTE_RESP, .from = 2, .to = 1, .term = 5};
    m.u.vote_resp.granted = true;
    put("vote_resp", &m, NULL);
    m.u.vote_resp.granted = false;
    m.u.vote_resp.pre_vote = true;
    put("vote_resp_pre", &m, NULL);

    /* AppendEntries shapes. */
    zraft_membership mm;
    zraft_entry e[64];
    memset(e, 0, sizeof(e));
    m = (msg){.type = MSG_APPEND, .from = 1, .to = 3, .term = 7};
    m.u.append.prev = (zraft_log_id){6, 20};
    m.u.append.commit = 18;
    put("append_probe", &m, NULL);

    e[0] = (zraft_entry){.id = {7, 21}, .type = ZRAFT_ENTRY_BLANK};
    m.u.append.entries = e;
    m.u.append.n_entries = 1;
    put("append_blank", &m, NULL);

    e[1] = (zraft_entry){.id = {7, 22}, .type = ZRAFT_ENTRY_NORMAL};
    e[1].payload = bytes(12, 1);
    members(&mm, 3, false);
    e[2] = (zraft_entry){.id = {7, 23}, .type = ZRAFT_ENTRY_MEMBERSHIP};
    e[2].payload = zraft_buf_new(NULL, zraft_membership_encoded_len(&mm));
    zraft_membership_encode(&mm, e[2].payload->data);
    e[3] = (zraft_entry){.id = {7, 24}, .type = ZRAFT_ENTRY_NORMAL};
    e[3].payload = zraft_buf_new(NULL, 0);
    m.u.append.n_entries = 4;
    put("append_mixed", &m, NULL);

    members(&mm, 5, true);
    zraft_entry joint = {.id = {7, 21}, .type = ZRAFT_ENTRY_MEMBERSHIP};
    joint.payload = zraft_buf_new(NULL, zraft_membership_encoded_len(&mm));
    zraft_membership_encode(&mm, joint.payload->data);
    m.u.append.entries = &joint;
    m.u.append.n_entries = 1;
    put("append_membership_joint", &m, NULL);

    /* CURVE: members carrying public keys (membership encoding v2), one
     * without. */
    members(&mm, 3, false);
    for (uint32_t i = 0; i < 2; i++) {
        for (int k = 0; k < ZRAFT_KEY_LEN; k++) {
            mm.members[i].key[k] = "0123456789abcdefABCDEF.-:+=^!/*?&<>()[]{}"
                [(i * 7 + (uint32_t)k) % 42];
        }
    }
    zraft_entry keyed = {.id = {7, 21}, .type = ZRAFT_ENTRY_MEMBERSHIP};
    keyed.payload = zraft_buf_new(NULL, zraft_membership_encoded_len(&mm));
    zraft_membership_encode(&mm, keyed.payload->data);
    m.u.append.entries = &keyed;
    m.u.append.n_entries = 1;
    put("append_membership_keys", &m, NULL);

    zraft_entry big = {.id = {7, 21}, .type = ZRAFT_ENTRY_NORMAL};
    big.payload = bytes(300, 9);
    m.u.append.entries = &big;
    put("append_large_payload", &m, NULL);

    for (int i = 0; i < 64; i++) {
        zraft_buf_unref(i < 4 ? NULL : e[i].payload);
        e[i] = (zraft_entry){.id = {6 + (i >= 32), 21 + (uint64_t)i},
                             .type = ZRAFT_ENTRY_NORMAL};
        e[i].payload = bytes((size_t)(i % 5), (unsigned)i);
    }
    m.u.append.entries = e;
    m.u.append.n_entries = 64;
    put("append_many", &m, NULL);

    m = (msg){.type = MSG_APPEND_RESP, .from = 3, .to = 1, .term = 7};
    m.u.append_resp.success = true;
    m.u.append_resp.index = 84;
    put("append_resp_ok", &m, NULL);
    m.u.append_resp.success = false;
    m.u.append_resp.index = 20;
    m.u.append_resp.hint_index = 12;
    m.u.append_resp.hint_term = 3;
    put("append_resp_reject", &m, NULL);

    m = (msg){.type = MSG_HEARTBEAT, .from = 1, .to = 2, .term = 7};
    m.u.heartbeat.commit = 84;
    m.u.heartbeat.ctx = 5;
    put("heartbeat", &m, NULL);
    m = (msg){.type = MSG_HEARTBEAT_RESP, .from = 2, .to = 1, .term = 7};
    m.u.heartbeat_resp.ctx = 5;
    put("heartbeat_resp", &m, NULL);

    /* Snapshot chunks: whole, first, middle, last, empty. */
    snapshot_meta meta = {.last_log_id = {6, 500}};
    members(&meta.membership, 3, false);
    zraft_buf *snap = bytes(1000, 3);
    m = (msg){.type = MSG_SNAPSHOT, .from = 1, .to = 2, .term = 7};
    m.u.snapshot.meta = &meta;
    m.u.snapshot.data = snap;
    put("snapshot_whole", &m, NULL);
    codec_chunk ch = {.snapshot_id = 9, .total = 1000, .bytes = snap->data};
    ch.len = 400;
    put("snapshot_chunk_first", &m, &ch);
    ch.offset = 400;
    ch.bytes = snap->data + 400;
    put("snapshot_chunk_middle", &m, &ch);
    ch.offset = 800;
    ch.bytes = snap->data + 800;
    ch.len = 200;
    ch.last = true;
    members(&meta.membership, 4, true);
    put("snapshot_chunk_last_joint", &m, &ch);
    codec_chunk empty = {.snapshot_id = 10, .last = true};
    put("snapshot_empty", &m, &empty);

    m = (msg){.type = MSG_SNAPSHOT_RESP, .from = 2, .to = 1, .term = 7};
    m.u.snapshot_resp.success = true;
    m.u.snapshot_resp.index = 500;
    put("snapshot_resp", &m, NULL);
    m = (msg){.type = MSG_TIMEOUT_NOW, .from = 1, .to = 2, .term = 7};
    put("timeout_now", &m, NULL);

    /* Version 2: chunk acknowledgements, one per status. */
    static const char *names[] = {"snapshot_ack_accepted",
                                  "snapshot_ack_refused",
                                  "snapshot_ack_aborted"};
    for (uint8_t st = CODEC_ACK_ACCEPTED; st <= CODEC_ACK_ABORTED; st++) {
        m = (msg){
            .type = CODEC_MSG_SNAPSHOT_ACK, .from = 2, .to = 1, .term = 7};
        codec_ack ack = {9, 400, st == CODEC_ACK_ACCEPTED ? 800 : 400, st};
        if (st == CODEC_ACK_ABORTED) {
            ack.next = 0;
        }
        put_ack(names[st], &m, &ack);
    }
    /* Version 3: forwarded writes and reads, and their answers. */
    {
        zraft_buf *set = zraft_buf_new("set k v", 7);
        zraft_buf *val = zraft_buf_new("42", 2);
        zraft_buf *none = zraft_buf_new(NULL, 0);
        codec_fwd rq[3] = {{.req_id = 1, .op = CODEC_FWD_WRITE, .data = set},
                           {.req_id = 2, .op = CODEC_FWD_READ},
                           {.req_id = 3, .op = CODEC_FWD_WRITE, .data = none}};
        m = (msg){.type = CODEC_MSG_FORWARD, .from = 2, .to = 1, .term = 7};
        put_fwd("forward_mixed", &m, rq, 3);
        put_fwd("forward_read", &m, &rq[1], 1);
        codec_fwd rp[4] = {
            {.req_id = 1, .op = CODEC_FWD_WRITE, .id = {7, 41}, .data = val},
            {.req_id = 2, .op = CODEC_FWD_READ, .id = {0, 41}},
            {.req_id = 3, .op = CODEC_FWD_WRITE, .id = {7, 42}},
            {.req_id = 4, .op = CODEC_FWD_WRITE, .err = ZRAFT_ENOTLEADER}};
        m = (msg){
            .type = CODEC_MSG_FORWARD_REPLY, .from = 1, .to = 2, .term = 7};
        put_fwd("forward_reply_mixed", &m, rp, 4);
        put_fwd("forward_reply_error", &m, &rp[3], 1);
        zraft_buf_unref(set);
        zraft_buf_unref(val);
        zraft_buf_unref(none);
    }
    /* Version 2 and 1 frames, still read. */
    ctx.version = 2;
    m = (msg){.type = MSG_HEARTBEAT, .from = 1, .to = 2, .term = 7};
    m.u.heartbeat.commit = 40;
    put("v2_heartbeat", &m, NULL);
    ctx.version = 1;
    m = (msg){.type = MSG_HEARTBEAT, .from = 1, .to = 2, .term = 7};
    m.u.heartbeat.commit = 40;
    put("v1_heartbeat", &m, NULL);
    m = (msg){.type = MSG_SNAPSHOT, .from = 1, .to = 2, .term = 7};
    m.u.snapshot.meta = &meta;
    put("v1_snapshot_chunk", &m, &ch);
    ctx.version = CODEC_VERSION;

    for (int i = 0; i < 64; i++) {
        zraft_buf_unref(e[i].payload);
    }
    zraft_buf_unref(joint.payload);
    zraft_buf_unref(big.payload);
    zraft_buf_unref(snap);
    printf("gen_corpus: %d frames in %s\n", written, dir);
    return 0;
}
