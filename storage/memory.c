/* memory.c - the memory storage: a log, a vote and a snapshot held in RAM.
 *
 * Nothing survives the process; tests and the in-memory bench use it. The
 * log is an array of entries (payload references, never copies) guarded by a
 * rwlock that is held only to copy entries out or to append pointers, so
 * replication streams read while the log writer appends. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "zraft_storage.h"

typedef struct {
    pthread_rwlock_t lock;
    uint64_t term;
    zraft_id vote;
    uint64_t committed;
    zraft_entry *ents; /* ents[i] has index first + i */
    uint64_t first;
    uint64_t n, cap;
    bool has_snap;
    zraft_snapshot_meta snap;
    zraft_buf *snap_data;
} mem;

static int m_load(void *ctx, zraft_storage_state *out)
{
    mem *m = ctx;
    pthread_rwlock_rdlock(&m->lock);
    memset(out, 0, sizeof(*out));
    out->term = m->term;
    out->voted_for = m->vote;
    out->committed = m->committed;
    out->first_index = m->first;
    if (m->n > 0) {
        out->last_log_id = m->ents[m->n - 1].id;
    } else if (m->has_snap) {
        out->last_log_id = m->snap.last_log_id;
    }
    out->has_snapshot = m->has_snap;
    if (m->has_snap) {
        out->snapshot = m->snap;
        if (out->committed < m->snap.last_log_id.index) {
            out->committed = m->snap.last_log_id.index; /* by definition */
        }
    }
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static int m_save_state(void *ctx, uint64_t term, zraft_id vote,
                        uint64_t committed)
{
    mem *m = ctx;
    pthread_rwlock_wrlock(&m->lock);
    m->term = term;
    m->vote = vote;
    if (committed > m->committed) {
        m->committed = committed; /* never backwards, as on disk */
    }
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static int m_append(void *ctx, const zraft_entry *ents, size_t n)
{
    mem *m = ctx;
    pthread_rwlock_wrlock(&m->lock);
    if (m->n + n > m->cap) {
        uint64_t cap = m->cap ? m->cap : 1024;
        while (cap < m->n + n) {
            cap *= 2;
        }
        zraft_entry *ne = realloc(m->ents, cap * sizeof(*ne));
        if (ne == NULL) {
            pthread_rwlock_unlock(&m->lock);
            return ZRAFT_ENOMEM;
        }
        m->ents = ne;
        m->cap = cap;
    }
    uint64_t next = m->n ? m->ents[m->n - 1].id.index + 1
                         : (m->has_snap ? m->snap.last_log_id.index + 1 : 1);
    if (n > 0 && ents[0].id.index != next) {
        pthread_rwlock_unlock(&m->lock);
        return ZRAFT_EINVAL;
    }
    if (m->n == 0) {
        m->first = next;
    }
    for (size_t i = 0; i < n; i++) {
        m->ents[m->n] = ents[i];
        zraft_buf_ref(ents[i].payload);
        m->n++;
    }
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static int m_sync(void *ctx)
{
    (void)ctx;
    return 0;
}

static void s_drop(mem *m, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        zraft_buf_unref(m->ents[i].payload);
    }
}

static int m_truncate(void *ctx, uint64_t since)
{
    mem *m = ctx;
    pthread_rwlock_wrlock(&m->lock);
    if (m->n > 0 && since <= m->first + m->n - 1) {
        uint64_t keep = since > m->first ? since - m->first : 0;
        s_drop(m, keep, m->n);
        m->n = keep;
    }
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static int m_purge(void *ctx, uint64_t upto)
{
    mem *m = ctx;
    pthread_rwlock_wrlock(&m->lock);
    if (!m->has_snap || m->snap.last_log_id.index < upto) {
        pthread_rwlock_unlock(&m->lock);
        return ZRAFT_EINVAL; /* the entries would be gone for good */
    }
    if (m->n > 0 && upto >= m->first) {
        uint64_t drop = upto - m->first + 1;
        if (drop > m->n) {
            drop = m->n;
        }
        s_drop(m, 0, drop);
        memmove(m->ents, m->ents + drop, (m->n - drop) * sizeof(zraft_entry));
        m->n -= drop;
        m->first += drop;
    }
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static int m_get(void *ctx, uint64_t from, uint64_t to, size_t max_bytes,
                 zraft_entry *out, size_t *n)
{
    mem *m = ctx;
    size_t cap = *n, got = 0, bytes = 0;
    *n = 0;
    pthread_rwlock_rdlock(&m->lock);
    if (m->n == 0 || from < m->first) {
        int rv =
            (m->n == 0 && m->has_snap && from <= m->snap.last_log_id.index) ||
                    (m->n > 0 && from < m->first)
                ? ZRAFT_ECOMPACTED
                : ZRAFT_ENOTFOUND;
        pthread_rwlock_unlock(&m->lock);
        return rv;
    }
    uint64_t last = m->first + m->n - 1;
    if (from > last) {
        pthread_rwlock_unlock(&m->lock);
        return ZRAFT_ENOTFOUND;
    }
    for (uint64_t i = from; i <= to && i <= last && got < cap; i++) {
        const zraft_entry *e = &m->ents[i - m->first];
        size_t len = zraft_entry_len(e);
        if (got > 0 && bytes + len > max_bytes) {
            break;
        }
        out[got] = *e;
        zraft_buf_ref(e->payload);
        bytes += len;
        got++;
    }
    pthread_rwlock_unlock(&m->lock);
    *n = got;
    return 0;
}

/* True if the configuration survives its encoding (as the disk store
 * requires: it could not read back what does not). */
static bool s_membership_ok(const zraft_membership *mm)
{
    size_t len = zraft_membership_encoded_len(mm);
    unsigned char *b = malloc(len);
    zraft_membership *back = malloc(sizeof(*back));
    bool ok = b != NULL && back != NULL;
    if (ok) {
        zraft_membership_encode(mm, b);
        ok = zraft_membership_decode(b, len, back) == 0;
    }
    free(b);
    free(back);
    return ok;
}

static int m_snapshot_save(void *ctx, const zraft_snapshot_meta *meta,
                           zraft_buf *data)
{
    mem *m = ctx;
    if (!s_membership_ok(&meta->membership)) {
        return ZRAFT_EINVAL;
    }
    pthread_rwlock_wrlock(&m->lock);
    if (m->has_snap && meta->last_log_id.index < m->snap.last_log_id.index) {
        pthread_rwlock_unlock(&m->lock);
        return ZRAFT_ESUPERSEDED; /* never an older one over a newer */
    }
    zraft_buf_ref(data);
    zraft_buf *old = m->snap_data;
    m->snap_data = data;
    m->snap = *meta;
    m->has_snap = true;
    pthread_rwlock_unlock(&m->lock);
    zraft_buf_unref(old);
    return 0;
}

static int m_snapshot_load(void *ctx, zraft_snapshot_meta *meta,
                           zraft_buf **data)
{
    mem *m = ctx;
    pthread_rwlock_rdlock(&m->lock);
    if (!m->has_snap) {
        pthread_rwlock_unlock(&m->lock);
        return ZRAFT_ENOTFOUND;
    }
    *meta = m->snap;
    *data = zraft_buf_ref(m->snap_data);
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static int m_reset(void *ctx, zraft_log_id last)
{
    mem *m = ctx;
    pthread_rwlock_wrlock(&m->lock);
    if (!m->has_snap || m->snap.last_log_id.index < last.index) {
        pthread_rwlock_unlock(&m->lock);
        return ZRAFT_EINVAL; /* the snapshot must be stored first */
    }
    s_drop(m, 0, m->n);
    m->n = 0;
    m->first = last.index + 1;
    if (last.index > m->committed) {
        m->committed = last.index; /* a snapshot holds committed entries */
    }
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static void m_destroy(void *ctx)
{
    mem *m = ctx;
    s_drop(m, 0, m->n);
    free(m->ents);
    zraft_buf_unref(m->snap_data);
    pthread_rwlock_destroy(&m->lock);
    free(m);
}

zraft_storage *zraft_storage_memory_new(void)
{
    zraft_storage *s = calloc(1, sizeof(*s));
    mem *m = calloc(1, sizeof(*m));
    if (s == NULL || m == NULL) {
        free(s);
        free(m);
        return NULL;
    }
    pthread_rwlock_init(&m->lock, NULL);
    m->first = 1;
    s->ctx = m;
    s->load = m_load;
    s->save_state = m_save_state;
    s->append = m_append;
    s->sync = m_sync;
    s->truncate = m_truncate;
    s->purge = m_purge;
    s->get = m_get;
    s->snapshot_save = m_snapshot_save;
    s->snapshot_load = m_snapshot_load;
    s->reset = m_reset;
    s->destroy = m_destroy;
    s->inline_writes = true; /* RAM: nothing to wait for */
    return s;
}

void zraft_storage_free(zraft_storage *s)
{
    if (s == NULL) {
        return;
    }
    if (s->destroy != NULL) {
        s->destroy(s->ctx);
    }
    free(s);
}
