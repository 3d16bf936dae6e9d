/* disk.c - the durable storage (include/zraft_disk.h, docs/storage.md).
 *
 *   DIR/meta            term, vote, commit index, purge point (atomic)
 *   DIR/snapshot        latest snapshot: meta + data (atomic)
 *   DIR/log/<first>.seg segments of records, named by their first index
 *
 * A record is a 32-byte header [u32 len | u32 crc32c | u64 term | u64 index
 * | u8 type | 7 zero bytes] and `len` payload bytes; the CRC covers the
 * header after itself and the payload. Appends are written at once (writev)
 * and made durable by sync() with one fdatasync (the log writer calls it
 * once per group of batches). Files are replaced by write temp + fsync +
 * rename + fsync(dir).
 *
 * Threads: the log writer appends, syncs, truncates, purges; streams and
 * the state machine read; the state machine saves snapshots. The index of
 * positions is guarded by a rwlock held only to copy positions; readers
 * pin the segment (refcount) and pread outside the lock, so a purge or
 * truncate never closes a file under a reader. After a failed write or
 * sync every later write fails (the error is sticky): fsync failures cannot
 * be retried safely, and nothing unsynced is ever reported durable. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "storage/crc32c.h"
#include "zraft_disk.h"

#define HDR        32
#define META_MAGIC "ZRMETA01"
#define SNAP_MAGIC "ZRSNAP01"

typedef struct seg {
    uint64_t first; /* index in the file name */
    uint64_t last;  /* first - 1 when empty */
    int fd;
    char path[PATH_MAX];
    uint64_t size;   /* bytes written */
    uint64_t synced; /* bytes durable */
    _Atomic int refs;
} seg;

typedef struct {
    uint64_t term;
    uint64_t off;
    uint32_t len;
    uint8_t type;
    seg *s;
} pos;

typedef struct {
    pthread_rwlock_t lock;
    pthread_mutex_t snap_lock;
    zraft_disk_options o;
    char dir[PATH_MAX - 128];
    char logdir[PATH_MAX - 64];
    int dirfd, logdirfd;
    seg **segs;
    size_t n_segs, cap_segs;
    pos *idx;
    uint64_t idx_first; /* index of idx[0] */
    uint64_t n_idx, cap_idx;
    uint64_t next_index;
    uint64_t term, vote, committed, purged;
    bool has_snap;
    zraft_snapshot_meta snap;
    int err;
    uint32_t syncs;
    unsigned char *hdrs; /* scratch for append headers */
    size_t cap_hdrs;
} disk;

/* ------------------------------------------------------------ helpers */

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static int s_errno(int e)
{
    return e == ENOSPC || e == EDQUOT ? ZRAFT_ENOSPACE : ZRAFT_EIO;
}

static int s_fsync_dir(int fd)
{
    return fsync(fd) == 0 ? 0 : s_errno(errno);
}

static int s_write_all(int fd, const void *buf, size_t len, off_t off)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return s_errno(errno);
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* Writes the iovecs whole at `off`: pwritev may write less than asked (a
 * signal, the kernel's per-call cap of 2 GiB - 4 KiB), so it resumes from
 * where the last call stopped. `cap` (tests) limits the bytes per call to
 * force that path; 0: no limit. Modifies iov. */
static int s_pwritev_all(int fd, struct iovec *iov, int k, off_t off,
                         size_t cap)
{
    while (k > 0) {
        /* With a cap, offer only the iovecs (the last one cut) that fit. */
        int m = k;
        size_t saved = 0, sum = 0;
        if (cap > 0) {
            m = 0;
            while (m < k && sum + iov[m].iov_len <= cap) {
                sum += iov[m++].iov_len;
            }
            if (m < k) {
                saved = iov[m].iov_len;
                iov[m].iov_len = cap - sum;
                m++;
            }
        }
        ssize_t w = pwritev(fd, iov, m, off);
        if (saved > 0) {
            iov[m - 1].iov_len = saved;
        }
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return s_errno(errno);
        }
        if (w == 0) {
            return ZRAFT_EIO; /* no progress on a regular file: give up */
        }
        off += w;
        size_t done = (size_t)w;
        while (k > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            k--;
        }
        if (k > 0) {
            iov->iov_base = (unsigned char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

/* Writes `len` bytes to DIR/name via a temp file, fsync, rename, fsync
 * dir: after a crash either the old or the new file is there, whole. */
static int s_replace(disk *d, const char *name, const void *data, size_t len)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", d->dir, name);
    snprintf(path, sizeof path, "%s/%s", d->dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return s_errno(errno);
    }
    int rv = s_write_all(fd, data, len, 0);
    if (rv == 0 && d->o.fsync && fsync(fd) != 0) {
        rv = s_errno(errno);
    }
    close(fd);
    if (rv == 0 && rename(tmp, path) != 0) {
        rv = s_errno(errno);
    }
    if (rv == 0 && d->o.fsync) {
        rv = s_fsync_dir(d->dirfd);
    }
    if (rv != 0) {
        unlink(tmp);
    }
    return rv;
}

static int s_save_meta(disk *d)
{
    unsigned char b[48];
    memcpy(b, META_MAGIC, 8);
    put64(b + 8, d->term);
    put64(b + 16, d->vote);
    put64(b + 24, d->committed);
    put64(b + 32, d->purged);
    put32(b + 40, crc32c(0, b, 40));
    put32(b + 44, 0);
    return s_replace(d, "meta", b, sizeof b);
}

/* Reads a whole file; NULL with *err set (ZRAFT_ENOTFOUND if absent). */
static unsigned char *s_read_file(const char *path, size_t *len, int *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = errno == ENOENT ? ZRAFT_ENOTFOUND : s_errno(errno);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        *err = s_errno(errno);
        close(fd);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    size_t got = 0;
    while (buf != NULL && got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            free(buf);
            buf = NULL;
            *err = ZRAFT_EIO;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (buf == NULL && *err == 0) {
        *err = ZRAFT_ENOMEM;
    }
    *len = got;
    return buf;
}

static void seg_unpin(seg *s)
{
    if (atomic_fetch_sub(&s->refs, 1) == 1) {
        close(s->fd);
        free(s);
    }
}

static uint64_t s_last(const disk *d)
{
    return d->next_index - 1;
}

/* ------------------------------------------------------------ records */

static void s_header(unsigned char *h, const zraft_entry *e,
                     const unsigned char *payload, size_t len)
{
    put32(h, (uint32_t)len);
    put64(h + 8, e->id.term);
    put64(h + 16, e->id.index);
    h[24] = e->type;
    memset(h + 25, 0, 7);
    uint32_t crc = crc32c(0, h + 8, HDR - 8);
    crc = crc32c(crc, payload, len);
    put32(h + 4, crc);
}

/* Parses the record at buf[off]: 1 valid, 0 torn/invalid. */
static int s_parse(const unsigned char *buf, size_t size, size_t off,
                   uint64_t want_index, pos *out)
{
    if (size - off < HDR) {
        return 0;
    }
    const unsigned char *h = buf + off;
    uint32_t len = get32(h);
    if (size - off - HDR < len) {
        return 0;
    }
    uint32_t crc = crc32c(0, h + 8, HDR - 8);
    crc = crc32c(crc, h + HDR, len);
    if (crc != get32(h + 4)) {
        return 0;
    }
    for (int i = 25; i < 32; i++) {
        if (h[i] != 0) {
            return 0;
        }
    }
    uint8_t type = h[24];
    if (type < ZRAFT_ENTRY_NORMAL || type > ZRAFT_ENTRY_MEMBERSHIP ||
        get64(h + 8) == 0 || (want_index && get64(h + 16) != want_index)) {
        return 0;
    }
    out->term = get64(h + 8);
    out->off = off;
    out->len = len;
    out->type = type;
    return 1;
}

/* ------------------------------------------------------- index upkeep */

static int s_idx_push(disk *d, const pos *p)
{
    if (d->n_idx == d->cap_idx) {
        uint64_t cap = d->cap_idx ? d->cap_idx * 2 : 4096;
        pos *n = realloc(d->idx, cap * sizeof(pos));
        if (n == NULL) {
            return ZRAFT_ENOMEM;
        }
        d->idx = n;
        d->cap_idx = cap;
    }
    d->idx[d->n_idx++] = *p;
    return 0;
}

static int s_seg_push(disk *d, seg *s)
{
    if (d->n_segs == d->cap_segs) {
        size_t cap = d->cap_segs ? d->cap_segs * 2 : 16;
        seg **n = realloc(d->segs, cap * sizeof(seg *));
        if (n == NULL) {
            return ZRAFT_ENOMEM;
        }
        d->segs = n;
        d->cap_segs = cap;
    }
    d->segs[d->n_segs++] = s;
    return 0;
}

static seg *s_seg_new(disk *d, uint64_t first, bool create, int *err)
{
    seg *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        *err = ZRAFT_ENOMEM;
        return NULL;
    }
    s->first = first;
    s->last = first - 1;
    snprintf(s->path, sizeof s->path, "%s/%020llu.seg", d->logdir,
             (unsigned long long)first);
    s->fd = open(s->path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0),
                 0644);
    if (s->fd < 0) {
        *err = s_errno(errno);
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    return s;
}

/* Removes segments [from, n_segs) from the table and deletes their files.
 * Write lock held. */
static void s_drop_segs_from(disk *d, size_t from)
{
    for (size_t i = from; i < d->n_segs; i++) {
        unlink(d->segs[i]->path);
        seg_unpin(d->segs[i]);
    }
    d->n_segs = from;
}

/* -------------------------------------------------------- interface */

static int d_load(void *ctx, zraft_storage_state *out)
{
    disk *d = ctx;
    pthread_rwlock_rdlock(&d->lock);
    memset(out, 0, sizeof(*out));
    out->term = d->term;
    out->voted_for = d->vote;
    out->committed = d->committed;
    out->first_index = d->n_idx ? d->idx_first : d->next_index;
    if (d->n_idx > 0) {
        out->last_log_id.index = s_last(d);
        out->last_log_id.term = d->idx[d->n_idx - 1].term;
    } else if (d->has_snap) {
        out->last_log_id = d->snap.last_log_id;
    }
    pthread_mutex_lock(&d->snap_lock);
    out->has_snapshot = d->has_snap;
    if (d->has_snap) {
        out->snapshot = d->snap;
    }
    pthread_mutex_unlock(&d->snap_lock);
    pthread_rwlock_unlock(&d->lock);
    return 0;
}

static int d_save_state(void *ctx, uint64_t term, zraft_id vote,
                        uint64_t committed)
{
    disk *d = ctx;
    if (d->err) {
        return d->err;
    }
    d->term = term;
    d->vote = vote;
    if (committed > d->committed) {
        d->committed = committed;
    }
    int rv = s_save_meta(d);
    if (rv != 0) {
        d->err = rv;
    }
    return rv;
}

static int d_append(void *ctx, const zraft_entry *ents, size_t n)
{
    disk *d = ctx;
    if (d->err) {
        return d->err;
    }
    if (n == 0) {
        return 0;
    }
    for (size_t j = 0; j < n; j++) {
        if (ents[j].id.index != d->next_index + j || ents[j].id.term == 0 ||
            ents[j].type < ZRAFT_ENTRY_NORMAL ||
            ents[j].type > ZRAFT_ENTRY_MEMBERSHIP) {
            return ZRAFT_EINVAL;
        }
        if (zraft_entry_len(&ents[j]) > UINT32_MAX) {
            return ZRAFT_ETOOBIG; /* the record's length field is 32 bits */
        }
    }
    int rv = 0;
    seg *cur = d->n_segs ? d->segs[d->n_segs - 1] : NULL;
    if (cur == NULL || cur->size >= d->o.segment_bytes) {
        /* Rotate: the old segment is made durable first, so sync() only
         * ever needs the current one. */
        if (cur != NULL && d->o.fsync && cur->synced < cur->size) {
            if (fdatasync(cur->fd) != 0) {
                return d->err = s_errno(errno);
            }
            cur->synced = cur->size;
        }
        seg *s = s_seg_new(d, ents[0].id.index, true, &rv);
        if (s == NULL) {
            return d->err = rv;
        }
        if (d->o.fsync && (rv = s_fsync_dir(d->logdirfd)) != 0) {
            close(s->fd);
            free(s);
            return d->err = rv;
        }
        pthread_rwlock_wrlock(&d->lock);
        rv = s_seg_push(d, s);
        pthread_rwlock_unlock(&d->lock);
        if (rv != 0) {
            return d->err = rv;
        }
        cur = s;
    }
    if (d->cap_hdrs < n * HDR) {
        unsigned char *h = realloc(d->hdrs, n * HDR);
        if (h == NULL) {
            return ZRAFT_ENOMEM;
        }
        d->hdrs = h;
        d->cap_hdrs = n * HDR;
    }
    /* pwritev in runs of at most IOV_MAX iovecs: a header and, unless it
     * is empty, a payload per record. */
    uint64_t off = cur->size;
    size_t i = 0;
    while (i < n && rv == 0) {
        struct iovec iov[IOV_MAX];
        int k = 0;
        size_t run_bytes = 0;
        while (i < n && k + 2 <= IOV_MAX) {
            const zraft_entry *e = &ents[i];
            size_t len = zraft_entry_len(e);
            const unsigned char *p = e->payload ? e->payload->data : NULL;
            unsigned char *h = d->hdrs + i * HDR;
            s_header(h, e, p, len);
            iov[k].iov_base = h;
            iov[k++].iov_len = HDR;
            if (len > 0) {
                iov[k].iov_base = (void *)p;
                iov[k++].iov_len = len;
            }
            run_bytes += HDR + len;
            i++;
        }
        rv = s_pwritev_all(cur->fd, iov, k, (off_t)off, d->o.max_write_bytes);
        off += run_bytes;
    }
    if (rv != 0) {
        return d->err = rv;
    }
    pthread_rwlock_wrlock(&d->lock);
    uint64_t o = cur->size;
    for (size_t j = 0; j < n && rv == 0; j++) {
        size_t len = zraft_entry_len(&ents[j]);
        if (d->n_idx == 0) {
            d->idx_first = ents[0].id.index;
        }
        pos p = {ents[j].id.term, o, (uint32_t)len, ents[j].type, cur};
        rv = s_idx_push(d, &p);
        o += HDR + len;
    }
    cur->size = o;
    cur->last = ents[n - 1].id.index;
    d->next_index = ents[n - 1].id.index + 1;
    pthread_rwlock_unlock(&d->lock);
    return rv ? (d->err = rv) : 0;
}

static int d_sync(void *ctx)
{
    disk *d = ctx;
    if (d->err) {
        return d->err;
    }
    d->syncs++;
    if (d->o.fail_sync_at != 0 && d->syncs >= d->o.fail_sync_at) {
        return d->err = ZRAFT_EIO;
    }
    seg *cur = d->n_segs ? d->segs[d->n_segs - 1] : NULL;
    if (cur == NULL || cur->synced == cur->size) {
        return 0;
    }
    uint64_t size = cur->size;
    if (d->o.fsync && fdatasync(cur->fd) != 0) {
        return d->err = s_errno(errno);
    }
    cur->synced = size;
    return 0;
}

static int d_truncate(void *ctx, uint64_t since)
{
    disk *d = ctx;
    if (d->err) {
        return d->err;
    }
    if (since >= d->next_index || d->n_idx == 0) {
        return 0;
    }
    if (since < d->idx_first) {
        since = d->idx_first;
    }
    pthread_rwlock_wrlock(&d->lock);
    pos at = d->idx[since - d->idx_first];
    size_t k = 0;
    while (k < d->n_segs && d->segs[k] != at.s) {
        k++;
    }
    s_drop_segs_from(d, k + 1);
    seg *s = at.s;
    int rv = 0;
    if (ftruncate(s->fd, (off_t)at.off) != 0) {
        rv = s_errno(errno);
    }
    s->size = at.off;
    if (s->synced > at.off) {
        s->synced = at.off;
    }
    s->last = since - 1;
    d->n_idx = since - d->idx_first;
    d->next_index = since;
    pthread_rwlock_unlock(&d->lock);
    if (rv == 0 && d->o.fsync) {
        if (fdatasync(s->fd) != 0) {
            rv = s_errno(errno);
        } else {
            s->synced = s->size;
            rv = s_fsync_dir(d->logdirfd);
        }
    }
    return rv ? (d->err = rv) : 0;
}

static int d_purge(void *ctx, uint64_t upto)
{
    disk *d = ctx;
    if (d->err) {
        return d->err;
    }
    /* Whole segments only, never the one being written. */
    size_t k = 0;
    while (k + 1 < d->n_segs && d->segs[k]->last <= upto) {
        k++;
    }
    if (k == 0) {
        return 0;
    }
    uint64_t new_first = d->segs[k]->first;
    /* The purge point first: recovery finishes an interrupted purge. */
    d->purged = new_first - 1;
    int rv = s_save_meta(d);
    if (rv != 0) {
        return d->err = rv;
    }
    pthread_rwlock_wrlock(&d->lock);
    seg *gone[64];
    size_t ng = 0;
    for (size_t i = 0; i < k; i++) {
        if (ng < 64) {
            gone[ng++] = d->segs[i];
        } else {
            unlink(d->segs[i]->path);
            seg_unpin(d->segs[i]);
        }
    }
    memmove(d->segs, d->segs + k, (d->n_segs - k) * sizeof(seg *));
    d->n_segs -= k;
    uint64_t drop = new_first - d->idx_first;
    memmove(d->idx, d->idx + drop, (d->n_idx - drop) * sizeof(pos));
    d->n_idx -= drop;
    d->idx_first = new_first;
    pthread_rwlock_unlock(&d->lock);
    for (size_t i = 0; i < ng; i++) {
        unlink(gone[i]->path); /* oldest first: a crash leaves a suffix */
        seg_unpin(gone[i]);
    }
    if (d->o.fsync) {
        rv = s_fsync_dir(d->logdirfd);
    }
    return rv ? (d->err = rv) : 0;
}

static int d_get(void *ctx, uint64_t from, uint64_t to, size_t max_bytes,
                 zraft_entry *out, size_t *n)
{
    disk *d = ctx;
    size_t cap = *n;
    *n = 0;
    pthread_rwlock_rdlock(&d->lock);
    if (d->n_idx == 0 || from < d->idx_first) {
        int rv =
            (d->n_idx > 0 || (d->has_snap && from <= d->snap.last_log_id.index))
                ? ZRAFT_ECOMPACTED
                : ZRAFT_ENOTFOUND;
        pthread_rwlock_unlock(&d->lock);
        return rv;
    }
    if (from > s_last(d)) {
        pthread_rwlock_unlock(&d->lock);
        return ZRAFT_ENOTFOUND;
    }
    if (to > s_last(d)) {
        to = s_last(d);
    }
    /* One segment per call; pin it, read outside the lock. */
    pos first = d->idx[from - d->idx_first];
    seg *s = first.s;
    size_t count = 0, bytes = 0;
    uint64_t end = first.off;
    for (uint64_t i = from; i <= to && count < cap; i++) {
        const pos *p = &d->idx[i - d->idx_first];
        if (p->s != s || (count > 0 && bytes + p->len > max_bytes)) {
            break;
        }
        bytes += p->len;
        end = p->off + HDR + p->len;
        count++;
    }
    atomic_fetch_add(&s->refs, 1);
    pthread_rwlock_unlock(&d->lock);

    size_t span = (size_t)(end - first.off);
    unsigned char *buf = malloc(span ? span : 1);
    int rv = buf ? 0 : ZRAFT_ENOMEM;
    size_t got = 0;
    while (rv == 0 && got < span) {
        ssize_t r =
            pread(s->fd, buf + got, span - got, (off_t)(first.off + got));
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            rv = ZRAFT_EIO;
        } else {
            got += (size_t)r;
        }
    }
    size_t off = 0, k = 0;
    while (rv == 0 && k < count) {
        pos p;
        if (!s_parse(buf, span, off, from + k, &p)) {
            rv = ZRAFT_ECORRUPT;
            break;
        }
        zraft_entry *e = &out[k];
        e->id.term = p.term;
        e->id.index = from + k;
        e->type = p.type;
        e->payload = NULL;
        if (p.type != ZRAFT_ENTRY_BLANK) {
            e->payload = zraft_buf_new(buf + off + HDR, p.len);
            if (e->payload == NULL) {
                rv = ZRAFT_ENOMEM;
                break;
            }
        }
        off += HDR + p.len;
        k++;
    }
    free(buf);
    seg_unpin(s);
    if (rv != 0) {
        for (size_t i = 0; i < k; i++) {
            zraft_buf_unref(out[i].payload);
        }
        return rv;
    }
    *n = count;
    return 0;
}

static int d_snapshot_save(void *ctx, const zraft_snapshot_meta *meta,
                           zraft_buf *data)
{
    disk *d = ctx;
    size_t ml = zraft_membership_encoded_len(&meta->membership);
    size_t len = 8 + 16 + 4 + ml + 8 + data->len + 4;
    unsigned char *b = malloc(len);
    if (b == NULL) {
        return ZRAFT_ENOMEM;
    }
    memcpy(b, SNAP_MAGIC, 8);
    put64(b + 8, meta->last_log_id.term);
    put64(b + 16, meta->last_log_id.index);
    put32(b + 24, (uint32_t)ml);
    zraft_membership_encode(&meta->membership, b + 28);
    put64(b + 28 + ml, data->len);
    memcpy(b + 36 + ml, data->data, data->len);
    put32(b + len - 4, crc32c(0, b, len - 4));
    pthread_mutex_lock(&d->snap_lock);
    int rv = s_replace(d, "snapshot", b, len);
    if (rv == 0) {
        d->snap = *meta;
        d->has_snap = true;
    }
    pthread_mutex_unlock(&d->snap_lock);
    free(b);
    return rv;
}

/* Parses DIR/snapshot; data optional. */
static int s_read_snapshot(disk *d, zraft_snapshot_meta *meta, zraft_buf **data,
                           char *why, size_t whylen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/snapshot", d->dir);
    size_t len;
    int err = 0;
    unsigned char *b = s_read_file(path, &len, &err);
    if (b == NULL) {
        return err;
    }
    int rv = ZRAFT_ECORRUPT;
    if (len >= 40 && memcmp(b, SNAP_MAGIC, 8) == 0 &&
        crc32c(0, b, len - 4) == get32(b + len - 4)) {
        uint32_t ml = get32(b + 24);
        if ((size_t)ml + 40 <= len) {
            uint64_t dl = get64(b + 28 + ml);
            if (dl == len - 40 - ml &&
                zraft_membership_decode(b + 28, ml, &meta->membership) == 0) {
                meta->last_log_id.term = get64(b + 8);
                meta->last_log_id.index = get64(b + 16);
                rv = 0;
                if (data != NULL) {
                    *data = zraft_buf_new(b + 36 + ml, dl);
                    rv = *data ? 0 : ZRAFT_ENOMEM;
                }
            }
        }
    }
    if (rv == ZRAFT_ECORRUPT && why != NULL) {
        snprintf(why, whylen, "%s: corrupt snapshot file (bad CRC or layout)",
                 path);
    }
    free(b);
    return rv;
}

static int d_snapshot_load(void *ctx, zraft_snapshot_meta *meta,
                           zraft_buf **data)
{
    disk *d = ctx;
    pthread_mutex_lock(&d->snap_lock);
    int rv =
        d->has_snap ? s_read_snapshot(d, meta, data, NULL, 0) : ZRAFT_ENOTFOUND;
    pthread_mutex_unlock(&d->snap_lock);
    return rv;
}

static int d_reset(void *ctx, zraft_log_id last)
{
    disk *d = ctx;
    if (d->err) {
        return d->err;
    }
    pthread_rwlock_wrlock(&d->lock);
    s_drop_segs_from(d, 0);
    d->n_idx = 0;
    d->next_index = last.index + 1;
    d->idx_first = d->next_index;
    pthread_rwlock_unlock(&d->lock);
    d->purged = last.index;
    if (last.index > d->committed) {
        d->committed = last.index;
    }
    int rv = s_save_meta(d);
    if (rv == 0 && d->o.fsync) {
        rv = s_fsync_dir(d->logdirfd);
    }
    return rv ? (d->err = rv) : 0;
}

static void d_destroy(void *ctx)
{
    disk *d = ctx;
    for (size_t i = 0; i < d->n_segs; i++) {
        seg *s = d->segs[i];
        if (d->o.crash_on_destroy && s->synced < s->size) {
            /* A power cut: what was not synced is gone (possibly torn). */
            if (ftruncate(s->fd, (off_t)s->synced) != 0) {
                perror("zraft disk: crash simulation");
            }
        }
        seg_unpin(s);
    }
    free(d->segs);
    free(d->idx);
    free(d->hdrs);
    close(d->dirfd);
    close(d->logdirfd);
    pthread_rwlock_destroy(&d->lock);
    pthread_mutex_destroy(&d->snap_lock);
    free(d);
}

/* ------------------------------------------------------------ recovery */

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Scans one segment into the index. `last` says whether a bad tail may be
 * cut (last segment) or is corruption. */
static int s_scan(disk *d, seg *s, bool last, char *why, size_t whylen)
{
    size_t size;
    int err = 0;
    unsigned char *buf = s_read_file(s->path, &size, &err);
    if (buf == NULL) {
        snprintf(why, whylen, "%s: cannot read (%s)", s->path,
                 zraft_strerror(err));
        return err;
    }
    size_t off = 0;
    uint64_t want = s->first;
    while (off < size) {
        pos p;
        if (!s_parse(buf, size, off, want, &p)) {
            /* Torn tail or corruption? A valid record right after the bad
             * one means the damage is in the middle. */
            pos q;
            uint32_t len = size - off >= HDR ? get32(buf + off) : 0;
            bool more = size - off >= HDR && size - off - HDR >= len &&
                        s_parse(buf, size, off + HDR + len, 0, &q);
            if (!last || more) {
                snprintf(why, whylen,
                         "%s: corrupt record at offset %zu (index %llu); "
                         "refusing to start",
                         s->path, off, (unsigned long long)want);
                free(buf);
                return ZRAFT_ECORRUPT;
            }
            fprintf(stderr,
                    "zraft disk: %s: dropping a torn tail of %zu bytes at "
                    "offset %zu (index %llu onwards)\n",
                    s->path, size - off, off, (unsigned long long)want);
            if (ftruncate(s->fd, (off_t)off) != 0 ||
                (d->o.fsync && fsync(s->fd) != 0)) {
                free(buf);
                snprintf(why, whylen, "%s: cannot cut the torn tail", s->path);
                return ZRAFT_EIO;
            }
            size = off;
            break;
        }
        p.s = s;
        if (d->n_idx == 0) {
            d->idx_first = want;
        }
        if (s_idx_push(d, &p) != 0) {
            free(buf);
            return ZRAFT_ENOMEM;
        }
        off += HDR + p.len;
        want++;
    }
    free(buf);
    s->size = size;
    s->synced = size;
    s->last = want - 1;
    return 0;
}

static int s_recover(disk *d, char *why, size_t whylen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/meta.tmp", d->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/snapshot.tmp", d->dir);
    unlink(path);
    /* Metadata. */
    snprintf(path, sizeof path, "%s/meta", d->dir);
    size_t len;
    int err = 0;
    unsigned char *b = s_read_file(path, &len, &err);
    if (b != NULL) {
        if (len != 48 || memcmp(b, META_MAGIC, 8) != 0 ||
            crc32c(0, b, 40) != get32(b + 40)) {
            free(b);
            snprintf(why, whylen, "%s: corrupt metadata file", path);
            return ZRAFT_ECORRUPT;
        }
        d->term = get64(b + 8);
        d->vote = get64(b + 16);
        d->committed = get64(b + 24);
        d->purged = get64(b + 32);
        free(b);
    } else if (err != ZRAFT_ENOTFOUND) {
        snprintf(why, whylen, "%s: cannot read", path);
        return err;
    }
    /* Snapshot. */
    err = s_read_snapshot(d, &d->snap, NULL, why, whylen);
    if (err == 0) {
        d->has_snap = true;
    } else if (err != ZRAFT_ENOTFOUND) {
        return err;
    }
    /* Segments, in index order. */
    DIR *dh = opendir(d->logdir);
    if (dh == NULL) {
        snprintf(why, whylen, "%s: cannot list", d->logdir);
        return ZRAFT_EIO;
    }
    uint64_t *firsts = NULL;
    size_t nf = 0, cf = 0;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        unsigned long long f;
        char tail[8];
        if (strlen(de->d_name) != 24 ||
            sscanf(de->d_name, "%20llu%7s", &f, tail) != 2 ||
            strcmp(tail, ".seg") != 0) {
            continue;
        }
        if (nf == cf) {
            cf = cf ? cf * 2 : 16;
            uint64_t *nfs = realloc(firsts, cf * sizeof(uint64_t));
            if (nfs == NULL) {
                free(firsts);
                closedir(dh);
                return ZRAFT_ENOMEM;
            }
            firsts = nfs;
        }
        firsts[nf++] = f;
    }
    closedir(dh);
    if (nf > 0) {
        qsort(firsts, nf, sizeof(uint64_t), s_cmp_u64);
    }
    int rv = 0;
    for (size_t i = 0; i < nf && rv == 0; i++) {
        seg *s = s_seg_new(d, firsts[i], false, &rv);
        if (s == NULL) {
            snprintf(why, whylen, "%s/%020llu.seg: cannot open", d->logdir,
                     (unsigned long long)firsts[i]);
            break;
        }
        /* Wholly purged (an interrupted purge): finish it. */
        if (i + 1 < nf && firsts[i + 1] - 1 <= d->purged) {
            unlink(s->path);
            seg_unpin(s);
            continue;
        }
        if (d->n_idx > 0 && s->first != s_last(d) + 1) {
            snprintf(why, whylen,
                     "%s: starts at index %llu but the log before it ends "
                     "at %llu (a segment is missing)",
                     s->path, (unsigned long long)s->first,
                     (unsigned long long)s_last(d));
            seg_unpin(s);
            rv = ZRAFT_ECORRUPT;
            break;
        }
        d->next_index = s->first; /* s_last() while scanning */
        rv = s_scan(d, s, i + 1 == nf, why, whylen);
        if (rv != 0) {
            seg_unpin(s);
            break;
        }
        d->next_index = s->last + 1;
        if (s->size == 0 && i + 1 < nf) {
            unlink(s->path); /* an empty segment left by a crash */
            seg_unpin(s);
            continue;
        }
        if (s_seg_push(d, s) != 0) {
            seg_unpin(s);
            rv = ZRAFT_ENOMEM;
        }
    }
    free(firsts);
    if (rv != 0) {
        return rv;
    }
    if (d->n_idx == 0) {
        d->next_index = d->has_snap ? d->snap.last_log_id.index + 1 : 1;
        if (d->purged + 1 > d->next_index) {
            d->next_index = d->purged + 1;
        }
        d->idx_first = d->next_index;
        s_drop_segs_from(d, 0); /* empty files only */
        return 0;
    }
    /* A log that does not continue the snapshot (a crash between
     * installing a snapshot and resetting the log) is discarded. */
    if (d->has_snap) {
        uint64_t si = d->snap.last_log_id.index;
        bool ok = s_last(d) >= si &&
                  (si < d->idx_first ||
                   d->idx[si - d->idx_first].term == d->snap.last_log_id.term);
        if (si + 1 < d->idx_first) {
            snprintf(why, whylen,
                     "%s: the log starts at %llu, after the snapshot's "
                     "index %llu (entries are missing)",
                     d->logdir, (unsigned long long)d->idx_first,
                     (unsigned long long)si);
            return ZRAFT_ECORRUPT;
        }
        if (!ok) {
            fprintf(stderr,
                    "zraft disk: %s: the log does not continue the "
                    "snapshot at %llu; discarding it\n",
                    d->logdir, (unsigned long long)si);
            s_drop_segs_from(d, 0);
            d->n_idx = 0;
            d->next_index = si + 1;
            d->idx_first = d->next_index;
        }
    }
    return 0;
}

void zraft_disk_options_default(zraft_disk_options *o)
{
    memset(o, 0, sizeof(*o));
    o->segment_bytes = 64u << 20;
    o->fsync = true;
}

zraft_storage *zraft_storage_disk_new(const char *dir,
                                      const zraft_disk_options *opts, int *err,
                                      char *why, size_t whylen)
{
    char dummy[8];
    if (why == NULL) {
        why = dummy;
        whylen = sizeof dummy;
    }
    why[0] = '\0';
    disk *d = calloc(1, sizeof(*d));
    zraft_storage *s = calloc(1, sizeof(*s));
    int rv = ZRAFT_ENOMEM;
    if (d == NULL || s == NULL) {
        goto err_after_alloc;
    }
    zraft_disk_options_default(&d->o);
    if (opts != NULL) {
        d->o = *opts;
    }
    if (d->o.segment_bytes == 0) {
        d->o.segment_bytes = 64u << 20;
    }
    rv = ZRAFT_EINVAL;
    if (strlen(dir) >= sizeof d->dir) {
        snprintf(why, whylen, "%s: path too long", dir);
        goto err_after_alloc;
    }
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    snprintf(d->logdir, sizeof d->logdir, "%s/log", dir);
    rv = ZRAFT_EIO;
    if ((mkdir(d->dir, 0755) != 0 && errno != EEXIST) ||
        (mkdir(d->logdir, 0755) != 0 && errno != EEXIST)) {
        snprintf(why, whylen, "%s: cannot create (%s)", dir, strerror(errno));
        goto err_after_alloc;
    }
    d->dirfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    d->logdirfd = open(d->logdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->dirfd < 0 || d->logdirfd < 0) {
        snprintf(why, whylen, "%s: cannot open (%s)", dir, strerror(errno));
        goto err_after_dirs;
    }
    pthread_rwlock_init(&d->lock, NULL);
    pthread_mutex_init(&d->snap_lock, NULL);
    d->next_index = 1;
    d->idx_first = 1;
    rv = s_recover(d, why, whylen);
    if (rv != 0) {
        for (size_t i = 0; i < d->n_segs; i++) {
            seg_unpin(d->segs[i]);
        }
        free(d->segs);
        free(d->idx);
        pthread_rwlock_destroy(&d->lock);
        pthread_mutex_destroy(&d->snap_lock);
        goto err_after_dirs;
    }
    s->ctx = d;
    s->load = d_load;
    s->save_state = d_save_state;
    s->append = d_append;
    s->sync = d_sync;
    s->truncate = d_truncate;
    s->purge = d_purge;
    s->get = d_get;
    s->snapshot_save = d_snapshot_save;
    s->snapshot_load = d_snapshot_load;
    s->reset = d_reset;
    s->destroy = d_destroy;
    *err = 0;
    return s;

err_after_dirs:
    if (d->dirfd > 0) {
        close(d->dirfd);
    }
    if (d->logdirfd > 0) {
        close(d->logdirfd);
    }
err_after_alloc:
    free(d);
    free(s);
    *err = rv;
    return NULL;
}
