/* test_kv.c - the zraftd key-value state machine: apply, snapshot, restore,
 * and refusal of malformed input. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "kv.h"

static void put(zraft_fsm *f, uint64_t idx, const char *k, const char *v)
{
    zraft_buf *b;
    cr_assert_eq(kv_encode(KV_OP_PUT, k, strlen(k), v, strlen(v), &b), 0);
    zraft_entry e = {{1, idx}, ZRAFT_ENTRY_NORMAL, b};
    zraft_buf *res = NULL;
    cr_assert_eq(f->apply(f->ctx, &e, &res), 0);
    zraft_buf_unref(b);
}

static void del(zraft_fsm *f, uint64_t idx, const char *k)
{
    zraft_buf *b;
    cr_assert_eq(kv_encode(KV_OP_DEL, k, strlen(k), NULL, 0, &b), 0);
    zraft_entry e = {{1, idx}, ZRAFT_ENTRY_NORMAL, b};
    zraft_buf *res = NULL;
    cr_assert_eq(f->apply(f->ctx, &e, &res), 0);
    zraft_buf_unref(b);
}

static void expect(kv *k, const char *key, const char *want)
{
    zraft_buf *v = NULL;
    size_t off, len;
    int rv = kv_get(k, key, strlen(key), &v, &off, &len);
    if (want == NULL) {
        cr_assert_eq(rv, ZRAFT_ENOTFOUND, "key %s should be absent", key);
        return;
    }
    cr_assert_eq(rv, 0, "key %s missing", key);
    cr_assert_eq(len, strlen(want));
    cr_assert_eq(memcmp(v->data + off, want, len), 0);
    zraft_buf_unref(v);
}

Test(kv, put_overwrite_delete)
{
    kv *k = kv_new();
    zraft_fsm f = kv_fsm(k);
    put(&f, 1, "a", "1");
    put(&f, 2, "b", "2");
    put(&f, 3, "a", "3");
    del(&f, 4, "b");
    expect(k, "a", "3");
    expect(k, "b", NULL);
    cr_assert_eq(kv_count(k), 1);
    kv_destroy(&k);
    cr_assert_null(k);
}

Test(kv, many_keys_survive_growth_and_tombstones)
{
    kv *k = kv_new();
    zraft_fsm f = kv_fsm(k);
    char key[32], val[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        snprintf(val, sizeof val, "v%d", i);
        put(&f, (uint64_t)i + 1, key, val);
        if (i % 3 == 0) {
            del(&f, (uint64_t)i + 1, key);
        }
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        snprintf(val, sizeof val, "v%d", i);
        expect(k, key, i % 3 == 0 ? NULL : val);
    }
    cr_assert_eq(kv_count(k), 5000 - 1667);
    kv_destroy(&k);
}

Test(kv, snapshot_restores_same_content)
{
    kv *a = kv_new(), *b = kv_new();
    zraft_fsm fa = kv_fsm(a), fb = kv_fsm(b);
    put(&fa, 1, "x", "hello");
    put(&fa, 2, "y", "");
    put(&fb, 1, "stale", "gone after restore");
    zraft_buf *snap = NULL;
    cr_assert_eq(fa.snapshot(fa.ctx, &snap), 0);
    cr_assert_eq(fb.restore(fb.ctx, snap), 0);
    zraft_buf_unref(snap);
    expect(b, "x", "hello");
    expect(b, "y", "");
    expect(b, "stale", NULL);
    cr_assert_eq(kv_count(b), 2);
    kv_destroy(&a);
    kv_destroy(&b);
}

Test(kv, malformed_snapshot_is_refused_and_state_kept)
{
    kv *a = kv_new(), *b = kv_new();
    zraft_fsm fa = kv_fsm(a), fb = kv_fsm(b);
    put(&fa, 1, "key", "value");
    put(&fb, 1, "mine", "kept");
    zraft_buf *snap = NULL;
    cr_assert_eq(fa.snapshot(fa.ctx, &snap), 0);
    /* Every truncation of a valid snapshot is refused. */
    for (size_t cut = 0; cut < snap->len; cut++) {
        zraft_buf *t = zraft_buf_new(snap->data, cut);
        cr_assert_eq(fb.restore(fb.ctx, t), ZRAFT_ECORRUPT, "cut at %zu", cut);
        zraft_buf_unref(t);
    }
    expect(b, "mine", "kept");
    zraft_buf_unref(snap);
    kv_destroy(&a);
    kv_destroy(&b);
}

Test(kv, malformed_command_is_a_noop)
{
    kv *k = kv_new();
    zraft_fsm f = kv_fsm(k);
    unsigned char bad[] = {KV_OP_PUT, 200, 0, 'a'}; /* key_len past the end */
    zraft_buf *b = zraft_buf_new(bad, sizeof bad);
    zraft_entry e = {{1, 1}, ZRAFT_ENTRY_NORMAL, b};
    zraft_buf *res = NULL;
    cr_assert_eq(f.apply(f.ctx, &e, &res), 0);
    cr_assert_eq(kv_count(k), 0);
    zraft_buf_unref(b);
    cr_assert_eq(kv_encode(KV_OP_PUT, "", 0, "v", 1, &b), ZRAFT_EINVAL);
    kv_destroy(&k);
}
