/* batchpool.c - recycled arrays for the per-batch hand-offs between a
 * node's threads (see batchpool.h). */
#include <malloc.h>
#include <stdlib.h>

#include "actors/batchpool.h"

void batchpool_init(batchpool *p)
{
    pthread_mutex_init(&p->lock, NULL);
    p->n = 0;
}

void batchpool_fini(batchpool *p)
{
    for (unsigned i = 0; i < p->n; i++) {
        free(p->free[i]);
    }
    p->n = 0;
    pthread_mutex_destroy(&p->lock);
}

void *batchpool_get(batchpool *p, size_t bytes)
{
    void *a = NULL;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = p->n; i-- > 0;) {
        if (p->cap[i] >= bytes) {
            a = p->free[i];
            p->n--;
            p->free[i] = p->free[p->n];
            p->cap[i] = p->cap[p->n];
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (a != NULL) {
        return a;
    }
    /* Rounded up, so that batches of slightly different sizes share. */
    size_t want = 1024;
    while (want < bytes) {
        want *= 2;
    }
    a = malloc(want);
    if (a == NULL) {
        abort();
    }
    return a;
}

void batchpool_put(batchpool *p, void *a)
{
    if (a == NULL) {
        return;
    }
    size_t cap = malloc_usable_size(a);
    if (cap <= BATCHPOOL_MAX_BYTES) {
        pthread_mutex_lock(&p->lock);
        if (p->n < BATCHPOOL_SLOTS) {
            p->free[p->n] = a;
            p->cap[p->n] = cap;
            p->n++;
            a = NULL;
        } else {
            /* Full: keep the larger arrays, or a run of small ones would
             * make every larger batch allocate. */
            unsigned min = 0;
            for (unsigned i = 1; i < p->n; i++) {
                min = p->cap[i] < p->cap[min] ? i : min;
            }
            if (p->cap[min] < cap) {
                void *old = p->free[min];
                p->free[min] = a;
                p->cap[min] = cap;
                a = old;
            }
        }
        pthread_mutex_unlock(&p->lock);
    }
    free(a); /* too big to keep, or the pool is full */
}
