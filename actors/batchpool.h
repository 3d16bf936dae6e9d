/* batchpool.h - recycled arrays for the per-batch hand-offs between a
 * node's threads (APPLY's and FAIL's pending writes, the log writer's
 * entries), so the core allocates nothing per batch once warm.
 *
 * The core takes an array (batchpool_get), the thread that consumes the
 * message gives it back (batchpool_put); one lock per batch. The arrays are
 * plain malloc() blocks: code that frees one with free() instead (an
 * envelope released at shutdown, amsg_release) is correct, the array is
 * just not reused. */
#ifndef ZRAFT_ACTORS_BATCHPOOL_H
#define ZRAFT_ACTORS_BATCHPOOL_H

#include <pthread.h>
#include <stddef.h>

/* Arrays kept at most, and the largest kept (bigger ones are freed). */
#define BATCHPOOL_SLOTS     32
#define BATCHPOOL_MAX_BYTES (1u << 20)

typedef struct {
    pthread_mutex_t lock;
    void *free[BATCHPOOL_SLOTS]; /* arrays ready for reuse */
    size_t cap[BATCHPOOL_SLOTS]; /* ... and their usable sizes */
    unsigned n;
} batchpool;

void batchpool_init(batchpool *p);
/* Frees every array kept. No other thread may use `p` any more. */
void batchpool_fini(batchpool *p);

/* An array of at least `bytes` (> 0): a kept one that is large enough,
 * else a new one. Caller owns the return value (free() or batchpool_put());
 * aborts when memory is exhausted, like the core's other growth. */
void *batchpool_get(batchpool *p, size_t bytes);

/* Gives back an array from batchpool_get (NULL is ignored); any thread. */
void batchpool_put(batchpool *p, void *a);

#endif
