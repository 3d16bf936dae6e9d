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

enum { KV_OP_PUT = 1, KV_OP_DEL = 2 };

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

/* Looks a key up. On success *val is a new reference to a buffer holding
 * the value at (*val)->data + *off, *len bytes; caller unrefs it.
 * ZRAFT_ENOTFOUND when absent. Any thread. */
int kv_get(kv *k, const void *key, size_t klen, zraft_buf **val, size_t *off,
           size_t *len);
/* Number of keys. Any thread. */
size_t kv_count(kv *k);

#endif
