/* fuzz_kv.c - libFuzzer target for zraftd's key-value state machine
 * (server/kv.c): the command records it applies (bytes from the log, which
 * any client shapes through the HTTP and RESP ports) and the snapshot
 * format it restores (bytes from disk or from a leader).
 *
 * The input is a list of records, each a little-endian u16 length and that
 * many bytes. Every record is applied as a committed entry to the store and
 * to a model written here independently of kv.c (an array of key/value
 * pairs searched linearly; the record layouts as kv.h and kv.c document
 * them). Checked:
 *  - nothing crashes, leaks or reads out of bounds (ASan, UBSan);
 *  - apply never fails, and answers exactly what the model answers: no
 *    answer for PUT, DEL and malformed records, the deleted count for
 *    MULTI, the outcome and new value for INCR, the outcome for CAS;
 *  - after every record the store holds exactly the model's keys and
 *    values (kv_count and kv_get of every key the input named);
 *  - a snapshot restored into a fresh store gives the same contents;
 *  - the whole input restored as a snapshot is either refused, leaving
 *    the store unchanged, or accepted, and then its own snapshot restores
 *    to the same contents.
 * Any violated property aborts, which libFuzzer reports as a crash.
 * Run it with scripts/fuzz.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/kv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_KEYS 256

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_kv: property violated: %s\n", what);
        abort();
    }
}

/* ------------------------------------------------------------- model */

typedef struct {
    unsigned char *k, *v;
    size_t kl, vl;
} pair;

typedef struct {
    pair p[MAX_KEYS]; /* live keys */
    size_t n;
    pair seen[MAX_KEYS]; /* every key named (values unused), for lookups */
    size_t nseen;
} model;

static unsigned char *s_dup(const unsigned char *b, size_t n)
{
    unsigned char *d = malloc(n ? n : 1);
    check(d != NULL, "malloc");
    memcpy(d, b, n);
    return d;
}

static pair *m_find(pair *a, size_t n, const unsigned char *k, size_t kl)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].kl == kl && memcmp(a[i].k, k, kl) == 0) {
            return &a[i];
        }
    }
    return NULL;
}

static void m_seen(model *m, const unsigned char *k, size_t kl)
{
    if (m->nseen < MAX_KEYS && m_find(m->seen, m->nseen, k, kl) == NULL) {
        m->seen[m->nseen].k = s_dup(k, kl);
        m->seen[m->nseen].kl = kl;
        m->nseen++;
    }
}

static void m_put(model *m, const unsigned char *k, size_t kl,
                  const unsigned char *v, size_t vl)
{
    m_seen(m, k, kl);
    pair *p = m_find(m->p, m->n, k, kl);
    if (p == NULL) {
        check(m->n < MAX_KEYS, "model capacity");
        p = &m->p[m->n++];
        p->k = s_dup(k, kl);
        p->kl = kl;
    } else {
        free(p->v);
    }
    p->v = s_dup(v, vl);
    p->vl = vl;
}

static bool m_del(model *m, const unsigned char *k, size_t kl)
{
    m_seen(m, k, kl);
    pair *p = m_find(m->p, m->n, k, kl);
    if (p == NULL) {
        return false;
    }
    free(p->k);
    free(p->v);
    *p = m->p[--m->n];
    return true;
}

static void m_free(model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->p[i].k);
        free(m->p[i].v);
    }
    for (size_t i = 0; i < m->nseen; i++) {
        free(m->seen[i].k);
    }
}

static uint64_t le(const unsigned char *b, int n)
{
    uint64_t v = 0;
    while (n-- > 0) {
        v = (v << 8) | b[n];
    }
    return v;
}

/* Redis's integer rule: "-"? ("0" | [1-9][0-9]*), not "-0", int64 range. */
static bool m_int(const unsigned char *v, size_t n, int64_t *out)
{
    size_t i = n > 0 && v[0] == '-';
    if (n == 0 || n > 20 || i == n || (v[i] == '0' && n != 1)) {
        return false;
    }
    __int128 acc = 0;
    for (; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return false;
        }
        acc = acc * 10 + (v[i] - '0');
    }
    acc = v[0] == '-' ? -acc : acc;
    if (acc > INT64_MAX || acc < INT64_MIN) {
        return false;
    }
    *out = (int64_t)acc;
    return true;
}

/* What the model answers: len bytes into ans (0: no answer). The model
 * counts a record malformed exactly as kv.h's layouts say. */
static size_t m_apply(model *m, const unsigned char *r, size_t n,
                      unsigned char ans[9])
{
    if (n < 3) {
        return 0;
    }
    uint8_t op = r[0];
    size_t kl = le(r + 1, 2);
    bool key_ok = kl >= 1 && kl <= KV_MAX_KEY;
    if ((op == KV_OP_PUT || op == KV_OP_DEL) && key_ok && n >= 3 + kl) {
        if (op == KV_OP_PUT) {
            m_put(m, r + 3, kl, r + 3 + kl, n - 3 - kl);
        } else {
            m_del(m, r + 3, kl);
        }
        return 0;
    }
    if (op == KV_OP_INCR && key_ok && n == 3 + kl + 8) {
        int64_t delta = (int64_t)le(r + 3 + kl, 8), cur = 0;
        pair *p = m_find(m->p, m->n, r + 3, kl);
        ans[0] = KV_INCR_OK;
        if (p != NULL && !m_int(p->v, p->vl, &cur)) {
            ans[0] = KV_INCR_NOT_INTEGER;
        } else if ((__int128)cur + delta > INT64_MAX ||
                   (__int128)cur + delta < INT64_MIN) {
            ans[0] = KV_INCR_OVERFLOW;
        } else {
            cur += delta;
            char d[24];
            int dl = snprintf(d, sizeof d, "%lld", (long long)cur);
            m_put(m, r + 3, kl, (const unsigned char *)d, (size_t)dl);
        }
        for (int i = 0; i < 8; i++) {
            ans[1 + i] = (unsigned char)((uint64_t)cur >> (8 * i));
        }
        return 9;
    }
    if (op == KV_OP_CAS && key_ok && n >= 7 && n - 7 >= kl + le(r + 3, 4)) {
        size_t el = le(r + 3, 4);
        const unsigned char *k = r + 7, *e = k + kl, *v = e + el;
        pair *p = m_find(m->p, m->n, k, kl);
        bool match = p != NULL && p->vl == el && memcmp(p->v, e, el) == 0;
        if (match) {
            m_put(m, k, kl, v, n - 7 - kl - el);
        } else {
            m_seen(m, k, kl);
        }
        ans[0] = match ? KV_CAS_OK : KV_CAS_MISMATCH;
        return 1;
    }
    if (op != KV_OP_MULTI) {
        return 0;
    }
    /* MULTI: u16 count, then items op u8, klen u16, vlen u32, key, value;
     * all checked before any is applied, and the record must end there. */
    size_t items = kl, off = 3;
    for (size_t i = 0; i < items; i++) {
        if (n - off < 7) {
            return 0;
        }
        size_t ikl = le(r + off + 1, 2), ivl = le(r + off + 3, 4);
        bool put = r[off] == KV_OP_PUT, del = r[off] == KV_OP_DEL;
        if ((!put && !del) || ikl == 0 || ikl > KV_MAX_KEY ||
            (del && ivl != 0) || n - off - 7 < ikl + ivl) {
            return 0;
        }
        off += 7 + ikl + ivl;
    }
    if (off != n || items == 0) {
        return 0;
    }
    uint64_t deleted = 0;
    off = 3;
    for (size_t i = 0; i < items; i++) {
        size_t ikl = le(r + off + 1, 2), ivl = le(r + off + 3, 4);
        if (r[off] == KV_OP_PUT) {
            m_put(m, r + off + 7, ikl, r + off + 7 + ikl, ivl);
        } else {
            deleted += m_del(m, r + off + 7, ikl);
        }
        off += 7 + ikl + ivl;
    }
    for (int i = 0; i < 8; i++) {
        ans[i] = (unsigned char)(deleted >> (8 * i));
    }
    return 8;
}

/* ------------------------------------------------------------ checks */

static void same_contents(kv *k, const model *m, const char *what)
{
    check(kv_count(k) == m->n, what);
    for (size_t i = 0; i < m->nseen; i++) {
        const pair *s = &m->seen[i];
        const pair *p = m_find((pair *)m->p, m->n, s->k, s->kl);
        zraft_buf *b = NULL;
        size_t off = 0, len = 0;
        int rv = kv_get(k, s->k, s->kl, &b, &off, &len);
        if (p == NULL) {
            check(rv == ZRAFT_ENOTFOUND, what);
            continue;
        }
        check(rv == 0 && len == p->vl && memcmp(b->data + off, p->v, len) == 0,
              what);
        zraft_buf_unref(b);
    }
}

/* A fresh store restored from a snapshot of `k` (its snapshot in *snap
 * when asked for, else dropped). */
static kv *s_restored(kv *k, const char *what, zraft_buf **snap)
{
    zraft_fsm f = kv_fsm(k);
    zraft_buf *s = NULL;
    check(f.snapshot(f.ctx, &s) == 0, "snapshot");
    kv *k2 = kv_new();
    check(k2 != NULL, "kv_new");
    zraft_fsm f2 = kv_fsm(k2);
    check(f2.restore(f2.ctx, s) == 0, what);
    if (snap != NULL) {
        *snap = s;
    } else {
        zraft_buf_unref(s);
    }
    return k2;
}

/* A snapshot of `k` restored into a fresh store holds what `m` holds. */
static void round_trip(kv *k, const model *m)
{
    kv *k2 = s_restored(k, "a snapshot restores", NULL);
    same_contents(k2, m, "a restored snapshot holds the same contents");
    kv_destroy(&k2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) {
        return 0;
    }
    kv *k = kv_new();
    check(k != NULL, "kv_new");
    zraft_fsm f = kv_fsm(k);
    model *m = calloc(1, sizeof *m);
    check(m != NULL, "calloc");
    size_t off = 0;
    uint64_t index = 1;
    while (size - off >= 2) {
        size_t n = (size_t)le(data + off, 2);
        off += 2;
        n = n < size - off ? n : size - off;
        zraft_entry e = {.id = {1, index++},
                         .type = ZRAFT_ENTRY_NORMAL,
                         .payload = zraft_buf_new(data + off, n)};
        check(e.payload != NULL, "zraft_buf_new");
        off += n;
        zraft_buf *res = NULL;
        check(f.apply(f.ctx, &e, &res) == 0, "apply never fails");
        unsigned char want[9];
        size_t wl = m_apply(m, e.payload->data, n, want);
        check((res == NULL) == (wl == 0), "an answer exactly when expected");
        check(res == NULL || (res->len == wl && !memcmp(res->data, want, wl)),
              "the answer the model gives");
        zraft_buf_unref(res);
        zraft_buf_unref(e.payload);
        same_contents(k, m, "the store holds what the model holds");
        if (m->n >= MAX_KEYS - 64) {
            break; /* the model's capacity, not the store's */
        }
    }
    round_trip(k, m);

    /* The whole input as a snapshot. */
    zraft_buf *raw = zraft_buf_new(data, size);
    check(raw != NULL, "zraft_buf_new");
    if (f.restore(f.ctx, raw) != 0) {
        same_contents(k, m, "a refused snapshot changes nothing");
    } else {
        zraft_buf *s1 = NULL;
        kv *k2 = s_restored(k, "its own snapshot restores", &s1);
        zraft_fsm f2 = kv_fsm(k2);
        check(kv_count(k2) == kv_count(k), "with the same keys");
        zraft_buf *s2 = NULL;
        check(f2.snapshot(f2.ctx, &s2) == 0, "snapshot");
        check(s1->len == s2->len, "and the same size");
        zraft_buf_unref(s1);
        zraft_buf_unref(s2);
        kv_destroy(&k2);
    }
    zraft_buf_unref(raw);
    m_free(m);
    free(m);
    kv_destroy(&k);
    return 0;
}
