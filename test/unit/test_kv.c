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

static zraft_buf *apply_cmd(zraft_fsm *f, uint64_t idx, zraft_buf *cmd)
{
    zraft_entry e = {{1, idx}, ZRAFT_ENTRY_NORMAL, cmd};
    zraft_buf *res = NULL;
    cr_assert_eq(f->apply(f->ctx, &e, &res), 0);
    zraft_buf_unref(cmd);
    return res;
}

static int incr(zraft_fsm *f, uint64_t idx, const char *key, int64_t by,
                int64_t *value)
{
    zraft_buf *cmd;
    cr_assert_eq(kv_encode_incr(key, strlen(key), by, &cmd), 0);
    zraft_buf *res = apply_cmd(f, idx, cmd);
    int outcome = kv_incr_result(res, value);
    zraft_buf_unref(res);
    return outcome;
}

Test(kv, multi_puts_and_deletes_in_one_entry_and_counts_what_existed)
{
    kv *k = kv_new();
    zraft_fsm f = kv_fsm(k);
    put(&f, 1, "gone", "x");
    kv_item its[] = {
        {KV_OP_PUT, "a", 1, "1", 1},  {KV_OP_PUT, "b", 1, "22", 2},
        {KV_OP_DEL, "gone", 4, 0, 0}, {KV_OP_DEL, "never", 5, 0, 0},
        {KV_OP_PUT, "a", 1, "3", 1},
    };
    zraft_buf *cmd;
    cr_assert_eq(kv_encode_multi(its, 5, &cmd), 0);
    zraft_buf *res = apply_cmd(&f, 2, cmd);
    uint64_t deleted = 99;
    cr_assert_eq(kv_multi_result(res, &deleted), 0);
    cr_assert_eq(deleted, 1, "only 'gone' existed");
    zraft_buf_unref(res);
    expect(k, "a", "3"); /* in order: the later put wins */
    expect(k, "b", "22");
    expect(k, "gone", NULL);
    cr_assert_eq(kv_count(k), 2);
    kv_item bad = {KV_OP_INCR, "a", 1, NULL, 0};
    cr_assert_eq(kv_encode_multi(&bad, 1, &cmd), ZRAFT_EINVAL);
    cr_assert_eq(kv_encode_multi(its, 0, &cmd), ZRAFT_EINVAL);
    kv_destroy(&k);
}

Test(kv, incr_counts_from_zero_and_refuses_non_integers_and_overflow)
{
    kv *k = kv_new();
    zraft_fsm f = kv_fsm(k);
    int64_t v = 0;
    cr_assert_eq(incr(&f, 1, "n", 1, &v), KV_INCR_OK);
    cr_assert_eq(v, 1);
    cr_assert_eq(incr(&f, 2, "n", 41, &v), KV_INCR_OK);
    cr_assert_eq(v, 42);
    expect(k, "n", "42");
    cr_assert_eq(incr(&f, 3, "n", -50, &v), KV_INCR_OK);
    expect(k, "n", "-8");
    put(&f, 4, "s", "abc");
    cr_assert_eq(incr(&f, 5, "s", 1, &v), KV_INCR_NOT_INTEGER);
    expect(k, "s", "abc");
    put(&f, 6, "z", "007"); /* Redis's rule: no leading zeros */
    cr_assert_eq(incr(&f, 7, "z", 1, &v), KV_INCR_NOT_INTEGER);
    put(&f, 8, "max", "9223372036854775807");
    cr_assert_eq(incr(&f, 9, "max", 1, &v), KV_INCR_OVERFLOW);
    expect(k, "max", "9223372036854775807");
    put(&f, 10, "min", "-9223372036854775808");
    cr_assert_eq(incr(&f, 11, "min", -1, &v), KV_INCR_OVERFLOW);
    cr_assert_eq(incr(&f, 12, "min", 1, &v), KV_INCR_OK);
    expect(k, "min", "-9223372036854775807");
    /* An incremented value lives in a buffer of its own: it survives a
     * snapshot and restore like any other. */
    zraft_buf *snap;
    cr_assert_eq(f.snapshot(f.ctx, &snap), 0);
    kv *k2 = kv_new();
    zraft_fsm f2 = kv_fsm(k2);
    cr_assert_eq(f2.restore(f2.ctx, snap), 0);
    zraft_buf_unref(snap);
    expect(k2, "n", "-8");
    kv_destroy(&k2);
    kv_destroy(&k);
}

Test(kv, malformed_multi_changes_nothing)
{
    kv *k = kv_new();
    zraft_fsm f = kv_fsm(k);
    kv_item its[] = {{KV_OP_PUT, "a", 1, "1", 1}, {KV_OP_PUT, "b", 1, "2", 1}};
    zraft_buf *cmd;
    cr_assert_eq(kv_encode_multi(its, 2, &cmd), 0);
    for (size_t cut = 1; cut < cmd->len; cut++) {
        zraft_buf *t = zraft_buf_new(cmd->data, cut);
        zraft_buf *res = apply_cmd(&f, cut, t);
        cr_assert_null(res);
    }
    cr_assert_eq(kv_count(k), 0, "no prefix of a MULTI applies anything");
    zraft_buf_unref(cmd);
    kv_destroy(&k);
}

/* Applies a CAS; its outcome (KV_CAS_*). */
static int cas(zraft_fsm *f, uint64_t idx, const char *k, const char *exp,
               const char *v)
{
    zraft_buf *b;
    cr_assert_eq(
        kv_encode_cas(k, strlen(k), exp, strlen(exp), v, strlen(v), &b), 0);
    zraft_entry e = {{1, idx}, ZRAFT_ENTRY_NORMAL, b};
    zraft_buf *res = NULL;
    cr_assert_eq(f->apply(f->ctx, &e, &res), 0);
    zraft_buf_unref(b);
    int outcome = kv_cas_result(res);
    zraft_buf_unref(res);
    return outcome;
}

Test(kv, cas_swaps_only_on_the_expected_value)
{
    kv *k = kv_new();
    zraft_fsm f = kv_fsm(k);
    cr_assert_eq(cas(&f, 1, "a", "x", "y"), KV_CAS_MISMATCH, "absent key");
    expect(k, "a", NULL);
    put(&f, 2, "a", "x");
    cr_assert_eq(cas(&f, 3, "a", "z", "y"), KV_CAS_MISMATCH);
    expect(k, "a", "x");
    cr_assert_eq(cas(&f, 4, "a", "x", "y"), KV_CAS_OK);
    expect(k, "a", "y");
    cr_assert_eq(cas(&f, 5, "a", "x", "w"), KV_CAS_MISMATCH, "stale expect");
    expect(k, "a", "y");
    cr_assert_eq(cas(&f, 6, "a", "y", ""), KV_CAS_OK, "empty new value");
    expect(k, "a", "");
    cr_assert_eq(cas(&f, 7, "a", "", "q"), KV_CAS_OK, "empty expected value");
    expect(k, "a", "q");
    cr_assert_eq(cas(&f, 8, "a", "qq", "r"), KV_CAS_MISMATCH, "prefix");
    expect(k, "a", "q");
    /* A CAS-stored value survives a snapshot and restore. */
    zraft_buf *snap;
    cr_assert_eq(f.snapshot(f.ctx, &snap), 0);
    kv *k2 = kv_new();
    zraft_fsm f2 = kv_fsm(k2);
    cr_assert_eq(f2.restore(f2.ctx, snap), 0);
    expect(k2, "a", "q");
    zraft_buf_unref(snap);
    kv_destroy(&k2);
    kv_destroy(&k);
}

Test(kv, malformed_cas_is_a_counted_no_op)
{
    kv *k = kv_new();
    zraft_fsm f = kv_fsm(k);
    put(&f, 1, "a", "x");
    /* expect_len runs past the end of the record. */
    unsigned char raw[] = {KV_OP_CAS, 1, 0, 9, 0, 0, 0, 'a', 'x'};
    zraft_buf *b = zraft_buf_new(raw, sizeof raw);
    zraft_entry e = {{1, 2}, ZRAFT_ENTRY_NORMAL, b};
    zraft_buf *res = NULL;
    cr_assert_eq(f.apply(f.ctx, &e, &res), 0);
    cr_assert_null(res);
    zraft_buf_unref(b);
    expect(k, "a", "x");
    cr_assert_eq(kv_cas_result(NULL), -1);
    kv_destroy(&k);
}
