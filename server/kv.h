/* kv.h - the replicated key-value store that zraftd serves: a zraft_fsm
 * whose commands are PUT and DELETE records, with snapshot and restore.
 *
 * Values are not copied out of the log: a stored value is a reference to the
 * committed entry's payload plus an offset. Readers on other threads (stale
 * reads, and linearizable reads after read-index) take a read lock; apply
 * takes the write lock for the map update only. */
#ifndef ZRAFT_SERVER_KV_H
#define ZRAFT_SERVER_KV_H

#include "zraft_storage.h"

#define KV_MAX_KEY 1024
/* Bytes a command adds to its key and value (op, key length). */
#define KV_CMD_OVERHEAD 3

/* Command records (kv.c has their layout). PUT and DEL answer nothing;
 * MULTI (puts and deletes applied together, one entry) answers how many of
 * its deleted keys existed; INCR answers the new value or why not; CAS
 * (compare-and-set) stores its value only when the key holds the expected
 * one, decided when the entry is applied, so it is linearizable. */
enum {
    KV_OP_PUT = 1,
    KV_OP_DEL = 2,
    KV_OP_MULTI = 3,
    KV_OP_INCR = 4,
    KV_OP_CAS = 5
};

/* One put or delete of a MULTI command (borrowed by kv_encode_multi). */
typedef struct {
    uint8_t op; /* KV_OP_PUT or KV_OP_DEL */
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
} kv_item;

/* Outcomes of CAS (kv_cas_result): swapped, or the key was absent or held
 * another value (nothing changed). */
enum { KV_CAS_OK = 0, KV_CAS_MISMATCH = 1 };

/* Outcomes of INCR (kv_incr_result). */
enum { KV_INCR_OK = 0, KV_INCR_NOT_INTEGER = 1, KV_INCR_OVERFLOW = 2 };

typedef struct kv kv;

/* New empty store. Caller owns the return value; NULL on ENOMEM. */
kv *kv_new(void);
/* Frees the store and every reference it holds (NULL-safe, nulls *k). */
void kv_destroy(kv **k);
/* The state machine interface backed by `k` (borrowed until kv_destroy). */
zraft_fsm kv_fsm(kv *k);

/* Encodes a command into a new buffer; caller owns it. With `val` NULL the
 * vlen value bytes are left for the caller to fill in, at
 * (*out)->data + KV_CMD_OVERHEAD + klen. ZRAFT_EINVAL for an empty or
 * oversized key, ZRAFT_ENOMEM. */
int kv_encode(uint8_t op, const void *key, size_t klen, const void *val,
              size_t vlen, zraft_buf **out);

/* Encodes a MULTI command of n items (1..65535) into a new buffer; caller
 * owns it. ZRAFT_EINVAL for a bad key or op, ZRAFT_ETOOBIG above
 * ZRAFT_MAX_PAYLOAD_BYTES, ZRAFT_ENOMEM. */
int kv_encode_multi(const kv_item *items, size_t n, zraft_buf **out);
/* Encodes INCR key by delta (the stored value must be the decimal form of
 * a 64-bit signed integer, or absent: 0; the sum must not overflow). */
int kv_encode_incr(const void *key, size_t klen, int64_t delta,
                   zraft_buf **out);
/* Encodes CAS: key := val if key holds exactly `expect` (elen bytes, may
 * be 0: an empty value, not an absent key). Caller owns *out. ZRAFT_EINVAL
 * for a bad key or sizes, ZRAFT_ETOOBIG above ZRAFT_MAX_PAYLOAD_BYTES,
 * ZRAFT_ENOMEM. */
int kv_encode_cas(const void *key, size_t klen, const void *expect, size_t elen,
                  const void *val, size_t vlen, zraft_buf **out);
/* KV_CAS_OK or KV_CAS_MISMATCH from the state machine's answer to a CAS;
 * -1 when `result` is not such an answer. */
int kv_cas_result(const zraft_buf *result);
/* Reads the state machine's answer to a MULTI (deleted keys that existed)
 * and to an INCR (KV_INCR_*, and the new value when KV_INCR_OK); -1 when
 * `result` is not such an answer. */
int kv_multi_result(const zraft_buf *result, uint64_t *deleted);
int kv_incr_result(const zraft_buf *result, int64_t *value);

/* Looks a key up. On success *val is a new reference to a buffer holding
 * the value at (*val)->data + *off, *len bytes; caller unrefs it.
 * ZRAFT_ENOTFOUND when absent. Any thread. */
int kv_get(kv *k, const void *key, size_t klen, zraft_buf **val, size_t *off,
           size_t *len);
/* Number of keys. Any thread. */
size_t kv_count(kv *k);

#endif
