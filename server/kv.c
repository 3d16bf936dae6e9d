/* kv.c - the key-value state machine (see kv.h).
 *
 * Command records (little-endian), the payload of a NORMAL entry:
 *   PUT, DEL  u8 op | u16 key_len | key | value (the rest; PUT only)
 *   MULTI     u8 op | u16 count | count x { u8 op (PUT or DEL) | u16 key_len
 *             | u32 value_len | key | value }; applied all or nothing (a
 *             malformed one changes nothing); answers u64 deleted-and-existed
 *   INCR      u8 op | u16 key_len | key | i64 delta; answers u8 outcome |
 *             i64 new value. The new value is stored in decimal in a buffer
 *             of its own (the others live in their entry's payload).
 *   CAS       u8 op | u16 key_len | u32 expect_len | key | expect | value
 *             (the rest); answers u8 KV_CAS_OK or KV_CAS_MISMATCH. The
 *             comparison happens here, at apply, in log order: that is what
 *             makes it linearizable (a check on the serving thread would
 *             race with the writes in flight).
 * Snapshot:
 *   "ZKV1" | u64 count | count x { u16 key_len | u32 val_len | key | val }
 * A malformed command is applied as a no-op (it was committed; every node
 * skips it identically) and counted; a malformed snapshot is refused. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "zraft.h"

typedef struct {
    uint64_t hash;  /* 0: empty slot */
    zraft_buf *src; /* holds key and value */
    uint32_t koff, klen;
    uint32_t voff, vlen;
    bool tomb;
} slot;

struct kv {
    pthread_rwlock_t lock;
    slot *slots;
    size_t cap;   /* power of two */
    size_t used;  /* live + tombstones */
    size_t count; /* live */
    uint64_t malformed;
};

static uint64_t s_hash(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 0x100000001b3ull;
    }
    return h ? h : 1;
}

static bool s_eq(const slot *s, uint64_t h, const void *key, size_t klen)
{
    return s->hash == h && !s->tomb && s->klen == klen &&
           memcmp(s->src->data + s->koff, key, klen) == 0;
}

kv *kv_new(void)
{
    kv *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return NULL;
    }
    k->cap = 64;
    k->slots = calloc(k->cap, sizeof(slot));
    if (k->slots == NULL) {
        free(k);
        return NULL;
    }
    pthread_rwlock_init(&k->lock, NULL);
    return k;
}

static void s_clear(slot *slots, size_t cap)
{
    for (size_t i = 0; i < cap; i++) {
        if (slots[i].hash != 0) {
            zraft_buf_unref(slots[i].src);
        }
    }
}

void kv_destroy(kv **kp)
{
    if (kp == NULL || *kp == NULL) {
        return;
    }
    kv *k = *kp;
    s_clear(k->slots, k->cap);
    free(k->slots);
    pthread_rwlock_destroy(&k->lock);
    free(k);
    *kp = NULL;
}

/* Slot of `key` or of the first free/tombstone slot for it. */
static slot *s_find(slot *slots, size_t cap, uint64_t h, const void *key,
                    size_t klen, bool for_insert)
{
    slot *tomb = NULL;
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        slot *s = &slots[i];
        if (s->hash == 0) {
            return for_insert ? (tomb ? tomb : s) : NULL;
        }
        if (s->tomb) {
            if (tomb == NULL) {
                tomb = s;
            }
            continue;
        }
        if (s_eq(s, h, key, klen)) {
            return s;
        }
    }
}

static int s_grow(kv *k)
{
    size_t cap = k->cap * 2;
    slot *ns = calloc(cap, sizeof(slot));
    if (ns == NULL) {
        return ZRAFT_ENOMEM;
    }
    for (size_t i = 0; i < k->cap; i++) {
        slot *s = &k->slots[i];
        if (s->hash == 0) {
            continue;
        }
        if (s->tomb) {
            zraft_buf_unref(s->src);
            continue;
        }
        size_t j = s->hash & (cap - 1);
        while (ns[j].hash != 0) {
            j = (j + 1) & (cap - 1);
        }
        ns[j] = *s;
    }
    free(k->slots);
    k->slots = ns;
    k->cap = cap;
    k->used = k->count;
    return 0;
}

/* Stores key/value (which live in `src`, referenced). Write lock held. */
static int s_put(kv *k, zraft_buf *src, uint32_t koff, uint32_t klen,
                 uint32_t voff, uint32_t vlen)
{
    if ((k->used + 1) * 4 > k->cap * 3) {
        int rv = s_grow(k);
        if (rv != 0) {
            return rv;
        }
    }
    uint64_t h = s_hash(src->data + koff, klen);
    slot *s = s_find(k->slots, k->cap, h, src->data + koff, klen, true);
    if (s->hash != 0 && !s->tomb) {
        zraft_buf_unref(s->src);
    } else {
        if (s->hash == 0) {
            k->used++;
        } else {
            zraft_buf_unref(s->src); /* reused tombstone */
        }
        k->count++;
    }
    s->hash = h;
    s->tomb = false;
    s->src = zraft_buf_ref(src);
    s->koff = koff;
    s->klen = klen;
    s->voff = voff;
    s->vlen = vlen;
    return 0;
}

static bool s_del(kv *k, const void *key, size_t klen)
{
    uint64_t h = s_hash(key, klen);
    slot *s = s_find(k->slots, k->cap, h, key, klen, false);
    if (s != NULL) {
        s->tomb = true; /* keeps src until the next grow or destroy */
        k->count--;
    }
    return s != NULL;
}

int kv_encode(uint8_t op, const void *key, size_t klen, const void *val,
              size_t vlen, zraft_buf **out)
{
    if (klen == 0 || klen > KV_MAX_KEY ||
        (op != KV_OP_PUT && op != KV_OP_DEL) || vlen > UINT32_MAX - 8) {
        return ZRAFT_EINVAL;
    }
    if (op == KV_OP_DEL) {
        vlen = 0;
    }
    zraft_buf *b = zraft_buf_new(NULL, 3 + klen + vlen);
    if (b == NULL) {
        return ZRAFT_ENOMEM;
    }
    b->data[0] = op;
    b->data[1] = (unsigned char)(klen & 0xff);
    b->data[2] = (unsigned char)(klen >> 8);
    memcpy(b->data + 3, key, klen);
    if (vlen > 0 && val != NULL) {
        memcpy(b->data + 3 + klen, val, vlen);
    }
    *out = b;
    return 0;
}

static void s_put64(unsigned char *o, uint64_t v, int n);
static uint64_t s_get64(const unsigned char *o, int n);

/* Checks a MULTI record; its item count, or 0 when malformed. */
static size_t s_multi_check(const unsigned char *p, size_t len)
{
    if (len < 3) {
        return 0;
    }
    size_t n = s_get64(p + 1, 2), off = 3;
    for (size_t i = 0; i < n; i++) {
        if (len - off < 7) {
            return 0;
        }
        uint8_t op = p[off];
        size_t kl = s_get64(p + off + 1, 2), vl = s_get64(p + off + 3, 4);
        if ((op != KV_OP_PUT && op != KV_OP_DEL) || kl == 0 ||
            kl > KV_MAX_KEY || (op == KV_OP_DEL && vl != 0) ||
            len - off - 7 < kl + vl) {
            return 0;
        }
        off += 7 + kl + vl;
    }
    return off == len ? n : 0;
}

static zraft_buf *s_answer(size_t len)
{
    return zraft_buf_new(NULL, len); /* NULL: the caller answers nothing */
}

/* Write lock held. */
static int s_apply_multi(kv *k, zraft_buf *p, size_t n, zraft_buf **result)
{
    uint64_t deleted = 0;
    size_t off = 3;
    int rv = 0;
    for (size_t i = 0; i < n && rv == 0; i++) {
        uint8_t op = p->data[off];
        size_t kl = s_get64(p->data + off + 1, 2);
        size_t vl = s_get64(p->data + off + 3, 4);
        if (op == KV_OP_PUT) {
            rv = s_put(k, p, (uint32_t)(off + 7), (uint32_t)kl,
                       (uint32_t)(off + 7 + kl), (uint32_t)vl);
        } else {
            deleted += s_del(k, p->data + off + 7, kl);
        }
        off += 7 + kl + vl;
    }
    *result = s_answer(8);
    if (*result != NULL) {
        s_put64((*result)->data, deleted, 8);
    }
    return rv;
}

/* The value as a decimal int64 (Redis's rule: optional '-', digits, no
 * leading zeros or spaces, at most 20 characters). */
static bool s_parse_i64(const unsigned char *v, size_t n, int64_t *out)
{
    if (n == 0 || n > 20) {
        return false;
    }
    bool neg = v[0] == '-';
    size_t i = neg;
    if (i == n || (v[i] == '0' && n > i + 1) || (neg && v[i] == '0')) {
        return false;
    }
    uint64_t acc = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX;
    for (; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return false;
        }
        unsigned d = v[i] - '0';
        if (acc > (lim - d) / 10) {
            return false;
        }
        acc = acc * 10 + d;
    }
    *out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return true;
}

/* Write lock held. */
static int s_apply_incr(kv *k, zraft_buf *p, size_t klen, zraft_buf **result)
{
    const unsigned char *key = p->data + 3;
    int64_t delta = (int64_t)s_get64(p->data + 3 + klen, 8), cur = 0;
    uint8_t outcome = KV_INCR_OK;
    slot *s = s_find(k->slots, k->cap, s_hash(key, klen), key, klen, false);
    if (s != NULL && !s_parse_i64(s->src->data + s->voff, s->vlen, &cur)) {
        outcome = KV_INCR_NOT_INTEGER;
    } else if ((delta > 0 && cur > INT64_MAX - delta) ||
               (delta < 0 && cur < INT64_MIN - delta)) {
        outcome = KV_INCR_OVERFLOW;
    }
    int rv = 0;
    if (outcome == KV_INCR_OK) {
        cur += delta;
        char digits[24];
        int dl = snprintf(digits, sizeof digits, "%lld", (long long)cur);
        zraft_buf *b = zraft_buf_new(NULL, klen + (size_t)dl);
        if (b == NULL) {
            return ZRAFT_ENOMEM;
        }
        memcpy(b->data, key, klen);
        memcpy(b->data + klen, digits, (size_t)dl);
        rv = s_put(k, b, 0, (uint32_t)klen, (uint32_t)klen, (uint32_t)dl);
        zraft_buf_unref(b);
    }
    *result = s_answer(9);
    if (*result != NULL) {
        (*result)->data[0] = outcome;
        s_put64((*result)->data + 1, (uint64_t)cur, 8);
    }
    return rv;
}

/* Write lock held; the record's lengths are checked. */
static int s_apply_cas(kv *k, zraft_buf *p, size_t klen, zraft_buf **result)
{
    const unsigned char *key = p->data + 7;
    size_t elen = s_get64(p->data + 3, 4);
    size_t voff = 7 + klen + elen;
    slot *s = s_find(k->slots, k->cap, s_hash(key, klen), key, klen, false);
    bool match = s != NULL && s->vlen == elen &&
                 memcmp(s->src->data + s->voff, key + klen, elen) == 0;
    int rv = 0;
    if (match) {
        rv = s_put(k, p, 7, (uint32_t)klen, (uint32_t)voff,
                   (uint32_t)(p->len - voff));
    }
    *result = s_answer(1);
    if (*result != NULL) {
        (*result)->data[0] = match ? KV_CAS_OK : KV_CAS_MISMATCH;
    }
    return rv;
}

static int s_apply(void *ctx, const zraft_entry *e, zraft_buf **result)
{
    kv *k = ctx;
    zraft_buf *p = e->payload;
    if (p == NULL || p->len < 3 || p->len > UINT32_MAX) {
        k->malformed++;
        return 0;
    }
    uint8_t op = p->data[0];
    if (op == KV_OP_MULTI) {
        size_t n = s_multi_check(p->data, p->len);
        if (n == 0) {
            k->malformed++;
            return 0;
        }
        pthread_rwlock_wrlock(&k->lock);
        int rv = s_apply_multi(k, p, n, result);
        pthread_rwlock_unlock(&k->lock);
        return rv;
    }
    size_t klen = (size_t)p->data[1] | ((size_t)p->data[2] << 8);
    if (op == KV_OP_CAS) {
        if (p->len < 7 || klen == 0 || klen > KV_MAX_KEY ||
            p->len - 7 < klen + s_get64(p->data + 3, 4)) {
            k->malformed++;
            return 0;
        }
        pthread_rwlock_wrlock(&k->lock);
        int rv = s_apply_cas(k, p, klen, result);
        pthread_rwlock_unlock(&k->lock);
        return rv;
    }
    if (klen == 0 || klen > KV_MAX_KEY || p->len < 3 + klen ||
        (op != KV_OP_PUT && op != KV_OP_DEL && op != KV_OP_INCR) ||
        (op == KV_OP_INCR && p->len != 3 + klen + 8)) {
        k->malformed++;
        return 0;
    }
    int rv = 0;
    pthread_rwlock_wrlock(&k->lock);
    if (op == KV_OP_PUT) {
        rv = s_put(k, p, 3, (uint32_t)klen, (uint32_t)(3 + klen),
                   (uint32_t)(p->len - 3 - klen));
    } else if (op == KV_OP_DEL) {
        s_del(k, p->data + 3, klen);
    } else {
        rv = s_apply_incr(k, p, klen, result);
    }
    pthread_rwlock_unlock(&k->lock);
    return rv;
}

int kv_encode_multi(const kv_item *items, size_t n, zraft_buf **out)
{
    if (n == 0 || n > 65535) {
        return ZRAFT_EINVAL;
    }
    size_t len = 3;
    for (size_t i = 0; i < n; i++) {
        const kv_item *it = &items[i];
        if (it->klen == 0 || it->klen > KV_MAX_KEY ||
            (it->op != KV_OP_PUT && it->op != KV_OP_DEL) ||
            it->vlen > UINT32_MAX - 8) {
            return ZRAFT_EINVAL;
        }
        len += 7 + it->klen + (it->op == KV_OP_PUT ? it->vlen : 0);
        if (len > ZRAFT_MAX_PAYLOAD_BYTES) {
            return ZRAFT_ETOOBIG;
        }
    }
    zraft_buf *b = zraft_buf_new(NULL, len);
    if (b == NULL) {
        return ZRAFT_ENOMEM;
    }
    unsigned char *o = b->data;
    o[0] = KV_OP_MULTI;
    s_put64(o + 1, n, 2);
    o += 3;
    for (size_t i = 0; i < n; i++) {
        const kv_item *it = &items[i];
        size_t vl = it->op == KV_OP_PUT ? it->vlen : 0;
        o[0] = it->op;
        s_put64(o + 1, it->klen, 2);
        s_put64(o + 3, vl, 4);
        memcpy(o + 7, it->key, it->klen);
        if (vl > 0) {
            memcpy(o + 7 + it->klen, it->val, vl);
        }
        o += 7 + it->klen + vl;
    }
    *out = b;
    return 0;
}

int kv_encode_incr(const void *key, size_t klen, int64_t delta, zraft_buf **out)
{
    if (klen == 0 || klen > KV_MAX_KEY) {
        return ZRAFT_EINVAL;
    }
    zraft_buf *b = zraft_buf_new(NULL, 3 + klen + 8);
    if (b == NULL) {
        return ZRAFT_ENOMEM;
    }
    b->data[0] = KV_OP_INCR;
    s_put64(b->data + 1, klen, 2);
    memcpy(b->data + 3, key, klen);
    s_put64(b->data + 3 + klen, (uint64_t)delta, 8);
    *out = b;
    return 0;
}

int kv_encode_cas(const void *key, size_t klen, const void *expect, size_t elen,
                  const void *val, size_t vlen, zraft_buf **out)
{
    if (klen == 0 || klen > KV_MAX_KEY || elen > UINT32_MAX) {
        return ZRAFT_EINVAL;
    }
    if (vlen > ZRAFT_MAX_PAYLOAD_BYTES ||
        elen > ZRAFT_MAX_PAYLOAD_BYTES - 7 - klen - vlen) {
        return ZRAFT_ETOOBIG;
    }
    zraft_buf *b = zraft_buf_new(NULL, 7 + klen + elen + vlen);
    if (b == NULL) {
        return ZRAFT_ENOMEM;
    }
    b->data[0] = KV_OP_CAS;
    s_put64(b->data + 1, klen, 2);
    s_put64(b->data + 3, elen, 4);
    memcpy(b->data + 7, key, klen);
    if (elen > 0) {
        memcpy(b->data + 7 + klen, expect, elen);
    }
    if (vlen > 0) {
        memcpy(b->data + 7 + klen + elen, val, vlen);
    }
    *out = b;
    return 0;
}

int kv_cas_result(const zraft_buf *r)
{
    if (r == NULL || r->len != 1 || r->data[0] > KV_CAS_MISMATCH) {
        return -1;
    }
    return r->data[0];
}

int kv_multi_result(const zraft_buf *r, uint64_t *deleted)
{
    if (r == NULL || r->len != 8) {
        return -1;
    }
    *deleted = s_get64(r->data, 8);
    return 0;
}

int kv_incr_result(const zraft_buf *r, int64_t *value)
{
    if (r == NULL || r->len != 9 || r->data[0] > KV_INCR_OVERFLOW) {
        return -1;
    }
    *value = (int64_t)s_get64(r->data + 1, 8);
    return r->data[0];
}

static void s_put64(unsigned char *o, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        o[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint64_t s_get64(const unsigned char *o, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        v |= (uint64_t)o[i] << (8 * i);
    }
    return v;
}

static int s_snapshot(void *ctx, zraft_buf **out)
{
    kv *k = ctx;
    pthread_rwlock_rdlock(&k->lock);
    size_t len = 12;
    for (size_t i = 0; i < k->cap; i++) {
        const slot *s = &k->slots[i];
        if (s->hash != 0 && !s->tomb) {
            len += 6 + s->klen + s->vlen;
        }
    }
    zraft_buf *b = zraft_buf_new(NULL, len);
    if (b == NULL) {
        pthread_rwlock_unlock(&k->lock);
        return ZRAFT_ENOMEM;
    }
    unsigned char *o = b->data;
    memcpy(o, "ZKV1", 4);
    s_put64(o + 4, k->count, 8);
    o += 12;
    for (size_t i = 0; i < k->cap; i++) {
        const slot *s = &k->slots[i];
        if (s->hash == 0 || s->tomb) {
            continue;
        }
        s_put64(o, s->klen, 2);
        s_put64(o + 2, s->vlen, 4);
        memcpy(o + 6, s->src->data + s->koff, s->klen);
        memcpy(o + 6 + s->klen, s->src->data + s->voff, s->vlen);
        o += 6 + s->klen + s->vlen;
    }
    pthread_rwlock_unlock(&k->lock);
    *out = b;
    return 0;
}

static int s_restore(void *ctx, const zraft_buf *data)
{
    kv *k = ctx;
    const unsigned char *p = data->data;
    size_t len = data->len;
    if (len < 12 || memcmp(p, "ZKV1", 4) != 0) {
        return ZRAFT_ECORRUPT;
    }
    uint64_t n = s_get64(p + 4, 8);
    /* Validate everything before touching the live map. */
    size_t off = 12;
    for (uint64_t i = 0; i < n; i++) {
        if (len - off < 6) {
            return ZRAFT_ECORRUPT;
        }
        size_t kl = s_get64(p + off, 2), vl = s_get64(p + off + 2, 4);
        if (kl == 0 || kl > KV_MAX_KEY || len - off - 6 < kl + vl) {
            return ZRAFT_ECORRUPT;
        }
        off += 6 + kl + vl;
    }
    if (off != len) {
        return ZRAFT_ECORRUPT;
    }
    /* The snapshot buffer itself becomes the values' storage. */
    zraft_buf *src = zraft_buf_ref((zraft_buf *)data);
    kv *fresh = kv_new();
    if (fresh == NULL) {
        zraft_buf_unref(src);
        return ZRAFT_ENOMEM;
    }
    int rv = 0;
    off = 12;
    for (uint64_t i = 0; i < n && rv == 0; i++) {
        uint32_t kl = (uint32_t)s_get64(p + off, 2);
        uint32_t vl = (uint32_t)s_get64(p + off + 2, 4);
        rv = s_put(fresh, src, (uint32_t)(off + 6), kl,
                   (uint32_t)(off + 6 + kl), vl);
        off += 6 + (size_t)kl + vl;
    }
    zraft_buf_unref(src);
    if (rv != 0) {
        kv_destroy(&fresh);
        return rv;
    }
    pthread_rwlock_wrlock(&k->lock);
    slot *old = k->slots;
    size_t oldcap = k->cap;
    k->slots = fresh->slots;
    k->cap = fresh->cap;
    k->used = fresh->used;
    k->count = fresh->count;
    pthread_rwlock_unlock(&k->lock);
    s_clear(old, oldcap);
    free(old);
    fresh->slots = NULL;
    fresh->cap = 0;
    pthread_rwlock_destroy(&fresh->lock);
    free(fresh);
    return 0;
}

static void s_noop_destroy(void *ctx)
{
    (void)ctx; /* the kv is freed by its owner with kv_destroy */
}

zraft_fsm kv_fsm(kv *k)
{
    zraft_fsm f = {.ctx = k,
                   .apply = s_apply,
                   .snapshot = s_snapshot,
                   .restore = s_restore,
                   .destroy = s_noop_destroy};
    return f;
}

int kv_get(kv *k, const void *key, size_t klen, zraft_buf **val, size_t *off,
           size_t *len)
{
    int rv = ZRAFT_ENOTFOUND;
    pthread_rwlock_rdlock(&k->lock);
    slot *s = s_find(k->slots, k->cap, s_hash(key, klen), key, klen, false);
    if (s != NULL) {
        *val = zraft_buf_ref(s->src);
        *off = s->voff;
        *len = s->vlen;
        rv = 0;
    }
    pthread_rwlock_unlock(&k->lock);
    return rv;
}

size_t kv_count(kv *k)
{
    pthread_rwlock_rdlock(&k->lock);
    size_t n = k->count;
    pthread_rwlock_unlock(&k->lock);
    return n;
}
