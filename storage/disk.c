/* disk.c - the durable storage (include/zraft_disk.h, docs/storage.md):
 * the store as a whole - its files, metadata, snapshots, the storage
 * interface, opening and closing. The log (records, segments, appends,
 * reads) is storage/disk_log.c, recovery at open storage/disk_recover.c;
 * what the three share is storage/disk_int.h.
 *
 *   DIR/meta            term, vote, commit index, purge point, synced mark
 *   DIR/snapshot        latest snapshot: meta + data
 *   DIR/log/<first>.seg segments of records, named by their first index
 *
 * A record is a 32-byte header [u32 len | u32 crc32c | u64 term | u64 index
 * | u8 type | u56 durable] and `len` payload bytes; the CRC covers the header
 * after itself and the payload. `durable` is the synced mark when the record
 * was written: every entry up to it had been synced, so a later record
 * vouches for the earlier ones and recovery knows what it may not cut.
 * Appends are written at once (pwritev) and made durable by sync() with one
 * fdatasync (the log writer calls it once per group of batches). meta and
 * snapshot are replaced by write temp + fsync + rename + fsync(dir); a
 * directory created here is synced in its parent. Every change to the log is
 * ordered so that a crash at any point recovers (disk_log.c).
 *
 * Threads: the log writer appends, syncs, truncates, purges, resets and
 * saves meta; streams and the state machine read; the state machine and the
 * log writer save snapshots (one at a time, never an older one over a
 * newer). The index of positions is guarded by a rwlock held only to copy
 * positions; readers pin the segment (refcount) and pread outside the lock,
 * so a purge or truncate never closes a file under a reader. After a failed
 * write or sync every later write fails (the error is sticky): fsync
 * failures cannot be retried safely, and nothing unsynced is ever reported
 * durable. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/crc32c.h"
#include "storage/disk_int.h"

/* ------------------------------------------------------------ helpers */

int disk_errno(int e)
{
    return e == ENOSPC || e == EDQUOT ? ZRAFT_ENOSPACE : ZRAFT_EIO;
}

int disk_fsync(const disk *d, int fd)
{
    if (!d->o.fsync) {
        return 0;
    }
    return fsync(fd) == 0 ? 0 : disk_errno(errno);
}

int disk_fsync_path(const disk *d, const char *path)
{
    if (!d->o.fsync) {
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return disk_errno(errno);
    }
    int rv = disk_fsync(d, fd);
    close(fd);
    return rv;
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
            return disk_errno(errno);
        }
        if (n == 0) {
            return ZRAFT_EIO;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* Replacing DIR/name: a temp file is opened, written, then committed
 * (fsync, rename, fsync dir): after a crash either the old or the new file
 * is there, whole. */
static int s_tmp_open(const disk *d, const char *name, char *tmp, size_t cap)
{
    snprintf(tmp, cap, "%s/%s.tmp", d->dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    return fd < 0 ? disk_errno(errno) : fd;
}

/* Commits (rv 0) or abandons the temp file; closes fd. */
static int s_tmp_commit(const disk *d, const char *name, const char *tmp,
                        int fd, int rv)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", d->dir, name);
    if (rv == 0) {
        rv = disk_fsync(d, fd);
    }
    close(fd);
    if (rv == 0 && rename(tmp, path) != 0) {
        rv = disk_errno(errno);
    }
    if (rv == 0) {
        rv = disk_fsync(d, d->dirfd);
    }
    if (rv != 0) {
        unlink(tmp);
    }
    return rv;
}

/* Writes `len` bytes to DIR/name, replacing it atomically. */
static int s_replace(const disk *d, const char *name, const void *data,
                     size_t len)
{
    char tmp[PATH_MAX];
    int fd = s_tmp_open(d, name, tmp, sizeof tmp);
    if (fd < 0) {
        return fd;
    }
    return s_tmp_commit(d, name, tmp, fd, s_write_all(fd, data, len, 0));
}

int disk_save_meta(disk *d)
{
    unsigned char b[DISK_META_LEN];
    memcpy(b, DISK_META_MAGIC, 8);
    disk_put64(b + 8, d->term);
    disk_put64(b + 16, d->vote);
    disk_put64(b + 24, d->committed);
    disk_put64(b + 32, d->purged);
    disk_put64(b + 40, d->durable);
    disk_put32(b + 48, crc32c(0, b, 48));
    disk_put32(b + 52, 0);
    int rv = s_replace(d, "meta", b, sizeof b);
    if (rv == 0) {
        d->meta_synced = d->durable;
    }
    return rv;
}

unsigned char *disk_read_file(const char *path, size_t *len, int *err)
{
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = errno == ENOENT ? ZRAFT_ENOTFOUND : disk_errno(errno);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        *err = disk_errno(errno);
        close(fd);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    *err = buf ? 0 : ZRAFT_ENOMEM;
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
    *len = got;
    return buf;
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
    pthread_mutex_lock(&d->snap_lock);
    if (d->n_idx > 0) {
        out->last_log_id.index = d->next_index - 1;
        out->last_log_id.term = d->idx[d->n_idx - 1].term;
    } else if (d->has_snap) {
        out->last_log_id = d->snap.last_log_id;
    }
    out->has_snapshot = d->has_snap;
    if (d->has_snap) {
        out->snapshot = d->snap;
        if (out->committed < d->snap.last_log_id.index) {
            out->committed = d->snap.last_log_id.index; /* by definition */
        }
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
    int rv = disk_save_meta(d);
    if (rv != 0) {
        d->err = rv;
    }
    return rv;
}

/* Snapshot data is written, checksummed and read in pieces of this size;
 * the pages of a mapped buffer are dropped after each piece. */
#define SNAP_PIECE (8u << 20)

/* Writes the snapshot file to a temp file: header, data (in pieces, never
 * copied whole), CRC of both. */
static int s_write_snapshot(int fd, const unsigned char *head, size_t hl,
                            const zraft_buf *data)
{
    size_t dl = data ? data->len : 0;
    uint32_t crc = crc32c(0, head, hl);
    int rv = s_write_all(fd, head, hl, 0);
    for (size_t off = 0; rv == 0 && off < dl; off += SNAP_PIECE) {
        size_t n = dl - off < SNAP_PIECE ? dl - off : SNAP_PIECE;
        crc = crc32c(crc, data->data + off, n);
        rv = s_write_all(fd, data->data + off, n, (off_t)(hl + off));
        zraft_buf_drop_pages(data, off, n);
    }
    unsigned char tail[4];
    disk_put32(tail, crc);
    return rv == 0 ? s_write_all(fd, tail, 4, (off_t)(hl + dl)) : rv;
}

static int d_snapshot_save(void *ctx, const zraft_snapshot_meta *meta,
                           zraft_buf *data)
{
    disk *d = ctx;
    size_t ml = zraft_membership_encoded_len(&meta->membership);
    size_t dl = data ? data->len : 0;
    size_t hl = 8 + 16 + 4 + ml + 8;
    unsigned char *b = malloc(hl);
    if (b == NULL) {
        return ZRAFT_ENOMEM;
    }
    memcpy(b, DISK_SNAP_MAGIC, 8);
    disk_put64(b + 8, meta->last_log_id.term);
    disk_put64(b + 16, meta->last_log_id.index);
    disk_put32(b + 24, (uint32_t)ml);
    zraft_membership_encode(&meta->membership, b + 28);
    disk_put64(b + 28 + ml, dl);
    zraft_membership check;
    if (zraft_membership_decode(b + 28, ml, &check) != 0) {
        free(b);
        return ZRAFT_EINVAL; /* recovery could not read it back */
    }
    /* One save at a time, so that the index comparison and the file
     * replacement are one step: a local snapshot that lost the race with
     * an installed newer one never replaces it. */
    pthread_mutex_lock(&d->save_lock);
    pthread_mutex_lock(&d->snap_lock);
    bool older =
        d->has_snap && meta->last_log_id.index < d->snap.last_log_id.index;
    pthread_mutex_unlock(&d->snap_lock);
    int rv = ZRAFT_ESUPERSEDED;
    if (!older) {
        char tmp[PATH_MAX];
        int fd = s_tmp_open(d, "snapshot", tmp, sizeof tmp);
        rv = fd < 0 ? fd
                    : s_tmp_commit(d, "snapshot", tmp, fd,
                                   s_write_snapshot(fd, b, hl, data));
    }
    if (rv == 0) {
        pthread_mutex_lock(&d->snap_lock);
        d->snap = *meta;
        d->has_snap = true;
        pthread_mutex_unlock(&d->snap_lock);
    }
    pthread_mutex_unlock(&d->save_lock);
    free(b);
    return rv;
}

/* Checks the snapshot file mapped in `f` (magic, CRC, layout) and reads
 * its meta; the data is f->data[*data_off, f->len - 4). The CRC is
 * computed in pieces, dropping each piece's pages: the whole file is read
 * once but never held. */
static bool s_snapshot_valid(const zraft_buf *f, zraft_snapshot_meta *meta,
                             size_t *data_off)
{
    size_t len = f->len;
    const unsigned char *b = f->data;
    if (len < 40 || memcmp(b, DISK_SNAP_MAGIC, 8) != 0) {
        return false;
    }
    uint32_t crc = 0;
    for (size_t off = 0; off < len - 4; off += SNAP_PIECE) {
        size_t n = len - 4 - off < SNAP_PIECE ? len - 4 - off : SNAP_PIECE;
        crc = crc32c(crc, b + off, n);
        zraft_buf_drop_pages(f, off, n);
    }
    if (crc != disk_get32(b + len - 4)) {
        return false;
    }
    uint32_t ml = disk_get32(b + 24);
    if ((size_t)ml + 40 > len) {
        return false;
    }
    uint64_t dl = disk_get64(b + 28 + ml);
    uint64_t idx = disk_get64(b + 16), term = disk_get64(b + 8);
    if (dl != len - 40 - ml || idx == 0 || idx > DISK_INDEX_MAX || term == 0 ||
        term > DISK_INDEX_MAX ||
        zraft_membership_decode(b + 28, ml, &meta->membership) != 0) {
        return false;
    }
    meta->last_log_id.term = term;
    meta->last_log_id.index = idx;
    *data_off = 36 + ml;
    return true;
}

int disk_read_snapshot(const disk *d, zraft_snapshot_meta *meta,
                       zraft_buf **data, char *why, size_t whylen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/snapshot", d->dir);
    int rv = 0;
    struct stat st;
    zraft_buf *f = NULL;
    size_t off = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rv = errno == ENOENT ? ZRAFT_ENOTFOUND : disk_errno(errno);
    } else if (fstat(fd, &st) != 0) {
        rv = disk_errno(errno);
    } else if (st.st_size >= 40) {
        /* The file is replaced by rename, never written in place: the one
         * mapped here stays whole while the buffers live. */
        rv = zraft_buf_map(fd, 0, (size_t)st.st_size, &f);
    }
    if (rv == 0 && (f == NULL || !s_snapshot_valid(f, meta, &off))) {
        rv = ZRAFT_ECORRUPT;
    }
    if (rv == 0 && data != NULL) {
        /* The data part, mapped: read from the file's pages, not copied. */
        rv = zraft_buf_map(fd, off, f->len - 4 - off, data);
    }
    if (fd >= 0) {
        close(fd);
    }
    zraft_buf_unref(f);
    if (rv == ZRAFT_ECORRUPT && why != NULL) {
        snprintf(why, whylen, "%s: corrupt snapshot file (bad CRC or layout)",
                 path);
    } else if (rv != 0 && rv != ZRAFT_ENOTFOUND && why != NULL) {
        snprintf(why, whylen, "%s: cannot read (%s)", path, zraft_strerror(rv));
    }
    return rv;
}

static int d_snapshot_load(void *ctx, zraft_snapshot_meta *meta,
                           zraft_buf **data)
{
    disk *d = ctx;
    pthread_mutex_lock(&d->snap_lock);
    bool has = d->has_snap;
    pthread_mutex_unlock(&d->snap_lock);
    /* No lock across the read: the file is replaced by rename, so the one
     * open() finds is whole, and its meta is read from it. */
    return has ? disk_read_snapshot(d, meta, data, NULL, 0) : ZRAFT_ENOTFOUND;
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
    }
    /* A clean close records how far the log was synced: recovery then
     * refuses damage to those entries instead of cutting it as torn. */
    if (!d->o.crash_on_destroy && d->err == 0 && d->durable > d->meta_synced &&
        disk_save_meta(d) != 0) {
        fprintf(stderr, "zraft disk: %s: cannot record the synced mark\n",
                d->dir);
    }
    for (size_t i = 0; i < d->n_segs; i++) {
        disk_seg_unpin(d->segs[i]);
    }
    free(d->segs);
    free(d->idx);
    free(d->hdrs);
    close(d->dirfd);
    close(d->logdirfd);
    pthread_rwlock_destroy(&d->lock);
    pthread_mutex_destroy(&d->snap_lock);
    pthread_mutex_destroy(&d->save_lock);
    free(d);
}

/* ------------------------------------------------------------ opening */

void zraft_disk_options_default(zraft_disk_options *o)
{
    memset(o, 0, sizeof(*o));
    o->segment_bytes = 64u << 20;
    o->prealloc_bytes = 1u << 20;
    o->fsync = true;
}

/* mkdir that says whether it created the directory. */
static int s_mkdir(const char *path, bool *created)
{
    *created = false;
    if (mkdir(path, 0755) == 0) {
        *created = true;
        return 0;
    }
    return errno == EEXIST ? 0 : -1;
}

/* Creates the directories if needed and opens them. A directory created
 * here is made durable in its parent: otherwise a crash could lose the
 * directory and with it the vote file (a node voting twice in a term). */
static int s_open_dirs(disk *d, char *why, size_t whylen)
{
    bool made_dir, made_log;
    if (s_mkdir(d->dir, &made_dir) != 0 || s_mkdir(d->logdir, &made_log) != 0) {
        snprintf(why, whylen, "%s: cannot create (%s)", d->dir,
                 strerror(errno));
        return ZRAFT_EIO;
    }
    d->dirfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    d->logdirfd = open(d->logdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->dirfd < 0 || d->logdirfd < 0) {
        snprintf(why, whylen, "%s: cannot open (%s)", d->dir, strerror(errno));
        return ZRAFT_EIO;
    }
    int rv = 0;
    if (made_dir) {
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s/..", d->dir);
        rv = disk_fsync_path(d, parent);
    }
    if (rv == 0 && made_log) {
        rv = disk_fsync(d, d->dirfd);
    }
    if (rv != 0) {
        snprintf(why, whylen, "%s: cannot sync the new directory (%s)", d->dir,
                 zraft_strerror(rv));
    }
    return rv;
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
    d->dirfd = d->logdirfd = -1;
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
    rv = s_open_dirs(d, why, whylen);
    if (rv != 0) {
        goto err_after_dirs;
    }
    pthread_rwlock_init(&d->lock, NULL);
    pthread_mutex_init(&d->snap_lock, NULL);
    pthread_mutex_init(&d->save_lock, NULL);
    d->next_index = 1;
    d->idx_first = 1;
    rv = disk_recover(d, why, whylen);
    if (rv != 0) {
        goto err_after_locks;
    }
    s->ctx = d;
    s->load = d_load;
    s->save_state = d_save_state;
    s->append = disk_log_append;
    s->sync = disk_log_sync;
    s->truncate = disk_log_truncate;
    s->purge = disk_log_purge;
    s->get = disk_log_get;
    s->snapshot_save = d_snapshot_save;
    s->snapshot_load = d_snapshot_load;
    s->reset = disk_log_reset;
    s->destroy = d_destroy;
    *err = 0;
    return s;

err_after_locks:
    for (size_t i = 0; i < d->n_segs; i++) {
        disk_seg_unpin(d->segs[i]);
    }
    free(d->segs);
    free(d->idx);
    pthread_rwlock_destroy(&d->lock);
    pthread_mutex_destroy(&d->snap_lock);
    pthread_mutex_destroy(&d->save_lock);
err_after_dirs:
    if (d->dirfd >= 0) {
        close(d->dirfd);
    }
    if (d->logdirfd >= 0) {
        close(d->logdirfd);
    }
err_after_alloc:
    free(d);
    free(s);
    *err = rv;
    return NULL;
}
