/* logcache.c - recent log entries in memory (see logcache.h). */
#include <stdlib.h>
#include <string.h>

#include "actors/logcache.h"

int logcache_init(logcache *c, uint64_t budget)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    c->cap = 1024;
    c->ring = calloc(c->cap, sizeof(zraft_entry));
    c->budget = budget;
    return c->ring ? 0 : ZRAFT_ENOMEM;
}

static zraft_entry *s_at(logcache *c, uint64_t index)
{
    return &c->ring[index & (c->cap - 1)];
}

static void s_drop_front(logcache *c)
{
    zraft_entry *e = s_at(c, c->first);
    c->bytes -= zraft_entry_len(e);
    zraft_buf_unref(e->payload);
    e->payload = NULL;
    c->first++;
    c->n--;
}

static void s_clear(logcache *c)
{
    while (c->n > 0) {
        s_drop_front(c);
    }
}

void logcache_fini(logcache *c)
{
    s_clear(c);
    free(c->ring);
    pthread_mutex_destroy(&c->lock);
}

static void s_evict(logcache *c)
{
    while (c->n > 0 && c->bytes > c->budget && c->first <= c->durable) {
        s_drop_front(c);
    }
    /* Keep the ring from growing without bound when entries are tiny. */
    while (c->n > 65536 && c->first <= c->durable) {
        s_drop_front(c);
    }
}

static int s_grow(logcache *c, uint64_t need)
{
    if (need <= c->cap) {
        return 0;
    }
    uint64_t cap = c->cap;
    while (cap < need) {
        cap *= 2;
    }
    zraft_entry *r = calloc(cap, sizeof(zraft_entry));
    if (r == NULL) {
        return ZRAFT_ENOMEM;
    }
    for (uint64_t i = 0; i < c->n; i++) {
        r[(c->first + i) & (cap - 1)] = *s_at(c, c->first + i);
    }
    free(c->ring);
    c->ring = r;
    c->cap = cap;
    return 0;
}

void logcache_append(logcache *c, const zraft_entry *ents, size_t n)
{
    if (n == 0) {
        return;
    }
    pthread_mutex_lock(&c->lock);
    if (c->n > 0 && ents[0].id.index != c->first + c->n) {
        if (ents[0].id.index > c->first &&
            ents[0].id.index <= c->first + c->n) {
            /* Overwrite from here (a truncation the caller did not tell). */
            while (c->first + c->n > ents[0].id.index) {
                zraft_entry *e = s_at(c, c->first + c->n - 1);
                c->bytes -= zraft_entry_len(e);
                zraft_buf_unref(e->payload);
                e->payload = NULL;
                c->n--;
            }
        } else {
            s_clear(c);
        }
    }
    if (c->n == 0) {
        c->first = ents[0].id.index;
    }
    if (s_grow(c, c->n + n) != 0) {
        s_clear(c); /* out of memory: readers fall back to storage */
        pthread_mutex_unlock(&c->lock);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        zraft_entry *e = s_at(c, c->first + c->n);
        *e = ents[i];
        zraft_buf_ref(e->payload);
        c->bytes += zraft_entry_len(e);
        c->n++;
    }
    s_evict(c);
    pthread_mutex_unlock(&c->lock);
}

void logcache_truncate(logcache *c, uint64_t since)
{
    pthread_mutex_lock(&c->lock);
    if (since <= c->first) {
        s_clear(c);
    } else {
        while (c->n > 0 && c->first + c->n > since) {
            zraft_entry *e = s_at(c, c->first + c->n - 1);
            c->bytes -= zraft_entry_len(e);
            zraft_buf_unref(e->payload);
            e->payload = NULL;
            c->n--;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void logcache_reset(logcache *c)
{
    pthread_mutex_lock(&c->lock);
    s_clear(c);
    pthread_mutex_unlock(&c->lock);
}

void logcache_durable(logcache *c, uint64_t index)
{
    pthread_mutex_lock(&c->lock);
    if (index > c->durable) {
        c->durable = index;
    }
    s_evict(c);
    pthread_mutex_unlock(&c->lock);
}

size_t logcache_get(logcache *c, uint64_t from, uint64_t to, size_t max_bytes,
                    zraft_entry *out, size_t n)
{
    size_t got = 0, bytes = 0;
    pthread_mutex_lock(&c->lock);
    if (c->n > 0 && from >= c->first) {
        uint64_t end = c->first + c->n; /* exclusive */
        for (uint64_t i = from; i <= to && i < end && got < n; i++) {
            zraft_entry *e = s_at(c, i);
            size_t len = zraft_entry_len(e);
            if (got > 0 && bytes + len > max_bytes) {
                break;
            }
            out[got] = *e;
            zraft_buf_ref(e->payload);
            bytes += len;
            got++;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return got;
}
