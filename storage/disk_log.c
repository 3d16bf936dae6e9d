/* disk_log.c - the log of the durable storage: records, segments, and the
 * log writer's operations on them (append, sync, truncate, purge, reset)
 * and reads from any thread (get). The formats and threads are described in
 * storage/disk.c's opening comment; recovery is storage/disk_recover.c.
 *
 * Every change is ordered so that a crash at any point recovers: a segment
 * is synced before the next one is started; a purge or reset records the
 * purge point in meta before it deletes segments; a reset and a truncate
 * delete segments newest first, each deletion durable before the next, so
 * that a crash leaves a prefix of the log and never a hole; a truncate
 * below the synced mark lowers the mark in meta before it cuts. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "storage/crc32c.h"
#include "storage/disk_int.h"

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
            return disk_errno(errno);
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

void disk_seg_unpin(seg *s)
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

/* Deletes the files of segs[0..n) newest first, each deletion durable
 * before the next, so that a crash leaves a prefix of them; unpins them.
 * `stop_at` (tests: crash_reset_at) stops after that many deletions. */
static int s_delete_newest_first(const disk *d, seg **segs, size_t n,
                                 uint32_t stop_at)
{
    int rv = 0;
    size_t done = 0;
    for (size_t i = n; i-- > 0;) {
        if (rv == 0 && (stop_at == 0 || done < stop_at)) {
            if (unlink(segs[i]->path) != 0 && errno != ENOENT) {
                rv = disk_errno(errno);
            } else {
                rv = disk_fsync(d, d->logdirfd);
            }
            done++;
            if (rv == 0 && stop_at != 0 && done == stop_at) {
                rv = ZRAFT_EIO; /* a simulated crash */
            }
        }
        disk_seg_unpin(segs[i]);
    }
    return rv;
}

/* ------------------------------------------------------------ records */

static void s_header(unsigned char *h, const zraft_entry *e,
                     const unsigned char *payload, size_t len, uint64_t durable)
{
    if (durable > DISK_DURABLE_MAX) {
        durable = DISK_DURABLE_MAX; /* still below the index: still true */
    }
    disk_put32(h, (uint32_t)len);
    disk_put64(h + 8, e->id.term);
    disk_put64(h + 16, e->id.index);
    disk_put64(h + 24, durable << 8 | e->type);
    uint32_t crc = crc32c(0, h + 8, DISK_HDR - 8);
    crc = crc32c(crc, payload, len);
    disk_put32(h + 4, crc);
}

bool disk_parse(const unsigned char *buf, size_t size, size_t off,
                uint64_t want, pos *out, uint64_t *durable)
{
    if (off > size || size - off < DISK_HDR) {
        return false;
    }
    const unsigned char *h = buf + off;
    uint32_t len = disk_get32(h);
    if (size - off - DISK_HDR < len) {
        return false;
    }
    uint64_t term = disk_get64(h + 8);
    uint64_t index = disk_get64(h + 16);
    uint8_t type = h[24];
    uint64_t dur = disk_get64(h + 24) >> 8;
    if (type < ZRAFT_ENTRY_NORMAL || type > ZRAFT_ENTRY_MEMBERSHIP ||
        term == 0 || term > DISK_INDEX_MAX || index == 0 ||
        index > DISK_INDEX_MAX || dur >= index || (want && index != want)) {
        return false;
    }
    uint32_t crc = crc32c(0, h + 8, DISK_HDR - 8);
    crc = crc32c(crc, h + DISK_HDR, len);
    if (crc != disk_get32(h + 4)) {
        return false;
    }
    out->term = term;
    out->off = off;
    out->len = len;
    out->type = type;
    out->s = NULL;
    *durable = dur;
    return true;
}

/* ------------------------------------------------------- index upkeep */

int disk_idx_push(disk *d, const pos *p)
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

int disk_seg_push(disk *d, seg *s)
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

seg *disk_seg_open(const disk *d, uint64_t first, bool create, int *err)
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
        *err = disk_errno(errno);
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    return s;
}

/* Zeros for preallocation: one static block, written as many iovecs. */
#define ZEROS_BLOCK (64u * 1024u)
static const unsigned char s_zeros[ZEROS_BLOCK];

/* Keeps the newest segment zero-filled prealloc_bytes past its records
 * (zraft_disk_options.prealloc_bytes): an fdatasync then writes records
 * into blocks already allocated, in a file whose size does not change, and
 * the file system has no metadata to commit with them. Measured on ext4
 * here (docs/storage.md "Preallocation"): fdatasync of a 64-byte append
 * 122-129 us, of the same write into zeros 82-90 us; three at once 182-198
 * against 132-145 us. It is topped up once fewer than half of it is left
 * (at most every PREALLOC_EVERY_US), so one sync in every prealloc_bytes
 * / 2 of log also flushes the new zeros. Never past segment_bytes: the segment
 * ends there. A fill the file system has no room for (ENOSPC, EDQUOT, EFBIG) is
 * not an error: the file keeps whatever zeros were written, recovery reads
 * zeros at the end as the end of the log, and the appends that follow grow the
 * file as without prealloc; the segment is not filled again until it is cut
 * (truncate) or the next one starts. Any other failure is a write error
 * like the append's own (sticky). 0 or ZRAFT_EIO. */
/* At most one top-up in this long: a log that grows faster (about 2 MiB/s
 * and up with the default 1 MiB) appends past the zeros instead, since
 * there writing every byte twice costs more than the syncs save (measured:
 * 256 clients, 256-byte writes, 8 s runs, about 70 MB/s of zeros; p99
 * 1.4-1.6 ms without preallocation, 4.3-5.4 ms with a top-up whenever half
 * was used; docs/storage.md). A slow log, where a sync's metadata is most
 * of its cost, is topped up every time. */
#define PREALLOC_EVERY_US 250000u

static uint64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int s_prealloc(disk *d, seg *s)
{
    uint64_t want = s->size + d->o.prealloc_bytes;
    if (want > d->o.segment_bytes) {
        want = d->o.segment_bytes;
    }
    uint64_t from = s->alloc > s->size ? s->alloc : s->size;
    if (d->o.prealloc_bytes == 0 || s->no_fill || want <= from ||
        s->alloc >= s->size + (d->o.prealloc_bytes + 1) / 2) {
        return 0;
    }
    uint64_t now = s_now_us();
    if (d->filled_us != 0 && now - d->filled_us < PREALLOC_EVERY_US) {
        return 0;
    }
    d->filled_us = now;
    uint64_t start = from;
    struct iovec iov[IOV_MAX];
    while (from < want) {
        int k = 0;
        uint64_t run = 0;
        while (k < IOV_MAX && from + run < want) {
            uint64_t len = want - from - run;
            iov[k].iov_base = (void *)s_zeros;
            iov[k].iov_len = len < ZEROS_BLOCK ? (size_t)len : ZEROS_BLOCK;
            run += iov[k++].iov_len;
        }
        if (s_pwritev_all(s->fd, iov, k, (off_t)from, d->o.max_write_bytes) !=
            0) {
            if (errno != ENOSPC && errno != EDQUOT && errno != EFBIG) {
                return ZRAFT_EIO;
            }
            s->no_fill = true;
            break;
        }
        from += run;
    }
    if (from == want && d->o.fsync) {
        /* Start writing the zeros back now, so that the next sync, which
         * must flush them with its records, finds less to wait for. */
        (void)sync_file_range(s->fd, (off_t)start, (off_t)(want - start),
                              SYNC_FILE_RANGE_WRITE);
    }
    if (from < want) {
        /* Part of the fill may have landed: the file says how much. */
        struct stat st;
        from = fstat(s->fd, &st) == 0 && (uint64_t)st.st_size > s->size
                   ? (uint64_t)st.st_size
                   : s->size;
    }
    s->alloc = from;
    return 0;
}

/* Starts a new segment at `first`, the current one made durable first so
 * that sync() only ever needs the newest. Its preallocated zeros are cut
 * off first: only the last segment may end in zeros (disk_recover.c). */
static int s_rotate(disk *d, seg *cur, uint64_t first, seg **out)
{
    int rv = 0;
    bool cut = cur != NULL && cur->alloc > cur->size;
    if (cut && ftruncate(cur->fd, (off_t)cur->size) != 0) {
        return disk_errno(errno);
    }
    if (cur != NULL && (cur->synced < cur->size || cut)) {
        if (d->o.fsync && fdatasync(cur->fd) != 0) {
            return disk_errno(errno);
        }
        cur->alloc = cur->size;
        cur->synced = cur->size;
        d->durable = cur->last;
    }
    seg *s = disk_seg_open(d, first, true, &rv);
    if (s == NULL) {
        return rv;
    }
    if ((rv = disk_fsync(d, d->logdirfd)) != 0) {
        disk_seg_unpin(s);
        return rv;
    }
    pthread_rwlock_wrlock(&d->lock);
    rv = disk_seg_push(d, s);
    pthread_rwlock_unlock(&d->lock);
    if (rv != 0) {
        disk_seg_unpin(s);
        return rv;
    }
    *out = s;
    return 0;
}

int disk_log_append(void *ctx, const zraft_entry *ents, size_t n)
{
    disk *d = ctx;
    if (d->err) {
        return d->err;
    }
    if (n == 0) {
        return 0;
    }
    /* Nothing recovery could not read back is written. */
    for (size_t j = 0; j < n; j++) {
        if (ents[j].id.index != d->next_index + j || ents[j].id.term == 0 ||
            ents[j].id.term > DISK_INDEX_MAX ||
            ents[j].id.index > DISK_INDEX_MAX ||
            ents[j].type < ZRAFT_ENTRY_NORMAL ||
            ents[j].type > ZRAFT_ENTRY_MEMBERSHIP) {
            return ZRAFT_EINVAL;
        }
        if (zraft_entry_len(&ents[j]) > UINT32_MAX) {
            return ZRAFT_ETOOBIG; /* the record's length field is 32 bits */
        }
    }
    if (d->cap_hdrs < n * DISK_HDR) {
        unsigned char *h = realloc(d->hdrs, n * DISK_HDR);
        if (h == NULL) {
            return ZRAFT_ENOMEM;
        }
        d->hdrs = h;
        d->cap_hdrs = n * DISK_HDR;
    }
    int rv = 0;
    seg *cur = d->n_segs ? d->segs[d->n_segs - 1] : NULL;
    if (cur == NULL || cur->size >= d->o.segment_bytes) {
        if ((rv = s_rotate(d, cur, ents[0].id.index, &cur)) != 0) {
            return d->err = rv;
        }
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
            unsigned char *h = d->hdrs + i * DISK_HDR;
            s_header(h, e, p, len, d->durable);
            iov[k].iov_base = h;
            iov[k++].iov_len = DISK_HDR;
            if (len > 0) {
                iov[k].iov_base = (void *)p;
                iov[k++].iov_len = len;
            }
            run_bytes += DISK_HDR + len;
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
        rv = disk_idx_push(d, &p);
        o += DISK_HDR + len;
    }
    cur->size = o;
    if (cur->alloc < o) {
        cur->alloc = o;
    }
    cur->last = ents[n - 1].id.index;
    d->next_index = ents[n - 1].id.index + 1;
    pthread_rwlock_unlock(&d->lock);
    if (rv != 0) {
        return d->err = rv;
    }
    rv = s_prealloc(d, cur);
    return rv ? (d->err = rv) : 0;
}

int disk_log_sync(void *ctx)
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
    if (cur != NULL && cur->synced < cur->size) {
        uint64_t size = cur->size;
        if (d->o.fsync && fdatasync(cur->fd) != 0) {
            return d->err = disk_errno(errno);
        }
        cur->synced = size;
    }
    /* Older segments were synced when the next one was started. */
    d->durable = s_last(d);
    return 0;
}

int disk_log_truncate(void *ctx, uint64_t since)
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
    /* The entries appended in place of the cut ones are not synced: the
     * synced mark in meta must stop vouching for their indexes first. */
    if (d->durable > since - 1) {
        d->durable = since - 1;
    }
    int rv = 0;
    if (d->meta_synced > d->durable && (rv = disk_save_meta(d)) != 0) {
        return d->err = rv;
    }
    pthread_rwlock_wrlock(&d->lock);
    pos at = d->idx[since - d->idx_first];
    size_t k = 0;
    while (k < d->n_segs && d->segs[k] != at.s) {
        k++;
    }
    size_t n_gone = d->n_segs - (k + 1);
    seg **gone = NULL;
    if (n_gone > 0) {
        gone = malloc(n_gone * sizeof(seg *));
        if (gone == NULL) {
            pthread_rwlock_unlock(&d->lock);
            return d->err = ZRAFT_ENOMEM;
        }
        memcpy(gone, d->segs + k + 1, n_gone * sizeof(seg *));
    }
    d->n_segs = k + 1;
    seg *s = at.s;
    s->size = at.off;
    if (s->synced > at.off) {
        s->synced = at.off;
    }
    s->last = since - 1;
    d->n_idx = since - d->idx_first;
    d->next_index = since;
    pthread_rwlock_unlock(&d->lock);
    /* Later segments first, newest first: a crash leaves a prefix. */
    rv = s_delete_newest_first(d, gone, n_gone, 0);
    free(gone);
    if (rv == 0 && ftruncate(s->fd, (off_t)at.off) != 0) {
        rv = disk_errno(errno);
    }
    if (rv == 0) {
        s->alloc = at.off; /* the next append fills again */
        s->no_fill = false;
    }
    if (rv == 0 && d->o.fsync && fdatasync(s->fd) != 0) {
        rv = disk_errno(errno);
    }
    if (rv != 0) {
        return d->err = rv;
    }
    s->synced = s->size;
    d->durable = since - 1;
    return 0;
}

int disk_log_purge(void *ctx, uint64_t upto)
{
    disk *d = ctx;
    if (d->err) {
        return d->err;
    }
    pthread_mutex_lock(&d->snap_lock);
    bool covered = d->has_snap && d->snap.last_log_id.index >= upto;
    pthread_mutex_unlock(&d->snap_lock);
    if (!covered) {
        return ZRAFT_EINVAL; /* the entries would be gone for good */
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
    int rv = disk_save_meta(d);
    if (rv != 0) {
        return d->err = rv;
    }
    seg **gone = malloc(k * sizeof(seg *));
    if (gone == NULL) {
        return 0; /* recorded: recovery deletes them */
    }
    pthread_rwlock_wrlock(&d->lock);
    memcpy(gone, d->segs, k * sizeof(seg *));
    memmove(d->segs, d->segs + k, (d->n_segs - k) * sizeof(seg *));
    d->n_segs -= k;
    uint64_t drop = new_first - d->idx_first;
    memmove(d->idx, d->idx + drop, (d->n_idx - drop) * sizeof(pos));
    d->n_idx -= drop;
    d->idx_first = new_first;
    pthread_rwlock_unlock(&d->lock);
    /* Any order is safe: recovery deletes what lies below the point. */
    for (size_t i = 0; i < k; i++) {
        unlink(gone[i]->path);
        disk_seg_unpin(gone[i]);
    }
    free(gone);
    rv = disk_fsync(d, d->logdirfd);
    return rv ? (d->err = rv) : 0;
}

int disk_log_get(void *ctx, uint64_t from, uint64_t to, size_t max_bytes,
                 zraft_entry *out, size_t *n)
{
    disk *d = ctx;
    size_t cap = *n;
    *n = 0;
    pthread_rwlock_rdlock(&d->lock);
    if (d->n_idx == 0 || from < d->idx_first) {
        pthread_mutex_lock(&d->snap_lock);
        bool snap_covers = d->has_snap && from <= d->snap.last_log_id.index;
        pthread_mutex_unlock(&d->snap_lock);
        int rv =
            d->n_idx > 0 || snap_covers ? ZRAFT_ECOMPACTED : ZRAFT_ENOTFOUND;
        pthread_rwlock_unlock(&d->lock);
        return rv;
    }
    if (from > s_last(d) || cap == 0) {
        pthread_rwlock_unlock(&d->lock);
        return from > s_last(d) ? ZRAFT_ENOTFOUND : 0;
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
        end = p->off + DISK_HDR + p->len;
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
        uint64_t dur;
        if (!disk_parse(buf, span, off, from + k, &p, &dur)) {
            rv = ZRAFT_ECORRUPT;
            break;
        }
        zraft_entry *e = &out[k];
        e->id.term = p.term;
        e->id.index = from + k;
        e->type = p.type;
        e->payload = NULL;
        if (p.type != ZRAFT_ENTRY_BLANK) {
            e->payload = zraft_buf_new(buf + off + DISK_HDR, p.len);
            if (e->payload == NULL) {
                rv = ZRAFT_ENOMEM;
                break;
            }
        }
        off += DISK_HDR + p.len;
        k++;
    }
    free(buf);
    disk_seg_unpin(s);
    if (rv != 0) {
        for (size_t i = 0; i < k; i++) {
            zraft_buf_unref(out[i].payload);
        }
        return rv;
    }
    *n = count;
    return 0;
}

/* Replaces the log by the stored snapshot at `last` (§7). In an order that
 * recovers from a crash at any point: (1) the purge point and synced mark
 * `last` recorded in meta - recovery then deletes what lies below it and
 * discards a log that does not continue the snapshot; (2) segments deleted
 * newest first, each deletion durable before the next - a crash leaves a
 * prefix of the old log, never a hole after the snapshot. */
int disk_log_reset(void *ctx, zraft_log_id last)
{
    disk *d = ctx;
    if (d->err) {
        return d->err;
    }
    pthread_mutex_lock(&d->snap_lock);
    bool covered = d->has_snap && d->snap.last_log_id.index >= last.index;
    pthread_mutex_unlock(&d->snap_lock);
    if (!covered || last.index == 0 || last.index > DISK_INDEX_MAX) {
        return ZRAFT_EINVAL; /* the snapshot must be stored first */
    }
    uint32_t stop = d->o.crash_reset_at;
    d->purged = last.index;
    if (last.index > d->committed) {
        d->committed = last.index;
    }
    d->durable = last.index; /* in the snapshot: durable */
    int rv = disk_save_meta(d);
    if (rv == 0 && stop == 1) {
        rv = ZRAFT_EIO; /* a simulated crash */
    }
    if (rv != 0) {
        return d->err = rv;
    }
    pthread_rwlock_wrlock(&d->lock);
    seg **gone = d->segs;
    size_t n_gone = d->n_segs;
    d->segs = NULL;
    d->n_segs = d->cap_segs = 0;
    d->n_idx = 0;
    d->next_index = last.index + 1;
    d->idx_first = d->next_index;
    pthread_rwlock_unlock(&d->lock);
    rv = s_delete_newest_first(d, gone, n_gone, stop > 1 ? stop - 1 : 0);
    free(gone);
    return rv ? (d->err = rv) : 0;
}
