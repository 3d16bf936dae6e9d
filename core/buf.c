/* buf.c - reference-counted immutable byte buffers (zraft_buf).
 *
 * A payload is allocated once (by the client API or the wire decoder) and
 * then only referenced: the log, each replication stream and the state
 * machine hold references, never copies. The count is atomic because those
 * holders live on different threads. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "zraft_types.h"

zraft_buf *zraft_buf_new(const void *data, size_t len)
{
    zraft_buf *b = malloc(sizeof(*b) + (len ? len : 1));
    if (b == NULL) {
        return NULL;
    }
    atomic_init(&b->refs, 1);
    b->flags = 0;
    b->len = len;
    b->free_fn = NULL;
    b->free_ctx = NULL;
    b->data = (unsigned char *)(b + 1);
    if (data != NULL && len > 0) {
        memcpy(b->data, data, len);
    }
    return b;
}

zraft_buf *zraft_buf_wrap(void *data, size_t len,
                          void (*free_fn)(void *ctx, void *data), void *ctx)
{
    zraft_buf *b = malloc(sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    atomic_init(&b->refs, 1);
    b->flags = 0;
    b->len = len;
    b->free_fn = free_fn;
    b->free_ctx = ctx;
    b->data = data;
    return b;
}

zraft_buf *zraft_buf_ref(zraft_buf *b)
{
    if (b != NULL) {
        atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    }
    return b;
}

void zraft_buf_unref(zraft_buf *b)
{
    if (b == NULL) {
        return;
    }
    /* Release on the decrement, acquire before freeing: every holder's reads
     * of the bytes happen before the free. */
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1) {
        return;
    }
    if (b->free_fn != NULL) {
        b->free_fn(b->free_ctx, b->data);
    }
    free(b);
}
