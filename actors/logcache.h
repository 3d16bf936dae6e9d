/* logcache.h - the node's recent log entries in memory (references), shared
 * by the core (writer) and the replication streams and state machine
 * worker (readers).
 *
 * The leader replicates an entry while its own write of it is still in
 * flight (thesis §10.2.1), so a stream must be able to read entries the log
 * writer has not written yet: the core adds them here before it hands them
 * to the log writer. Entries leave the cache only once durable and only
 * when the cache is over its budget; readers fall back to storage for
 * older ones. One mutex, held only to copy references. */
#ifndef ZRAFT_ACTORS_LOGCACHE_H
#define ZRAFT_ACTORS_LOGCACHE_H

#include <pthread.h>

#include "zraft_types.h"

typedef struct {
    pthread_mutex_t lock;
    zraft_entry *ring;
    uint64_t cap;     /* ring slots (power of two) */
    uint64_t first;   /* index of the oldest cached entry */
    uint64_t n;       /* entries cached */
    uint64_t bytes;   /* payload bytes cached */
    uint64_t durable; /* highest index known durable */
    uint64_t budget;  /* soft limit in bytes */
} logcache;

int logcache_init(logcache *c, uint64_t budget_bytes);
void logcache_fini(logcache *c);
/* Appends entries (taking references); a gap or overlap with the cached
 * range restarts the cache at ents[0]. */
void logcache_append(logcache *c, const zraft_entry *ents, size_t n);
/* Forgets entries with index >= since. */
void logcache_truncate(logcache *c, uint64_t since);
/* Forgets everything (snapshot installed). */
void logcache_reset(logcache *c);
/* Entries up to `index` are durable: they may be evicted. */
void logcache_durable(logcache *c, uint64_t index);
/* Copies entries [from, to] (up to *n, stopping past max_bytes after the
 * first) with a reference each. Returns the count, 0 if `from` is not
 * cached. */
size_t logcache_get(logcache *c, uint64_t from, uint64_t to, size_t max_bytes,
                    zraft_entry *out, size_t n);

#endif
