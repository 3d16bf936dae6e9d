/* disk_recover.c - recovery of the durable storage at open (storage/disk.c,
 * docs/storage.md "Recovery").
 *
 * What a crash can do, and so what may be cut: after the last sync, any
 * mixture of the bytes written since - a record cut short, zeros where
 * pages never reached the disk (ext4 extends a file before its data lands),
 * valid records after a lost page (pages are written back out of order).
 * Nothing a sync covered can be damaged by a crash; damage there is
 * corruption, and cutting it would silently drop entries this node may
 * have acknowledged, votes and commits counted on them. So recovery first
 * establishes how far the log was ever synced, the synced mark W:
 *
 *   - every entry of a segment other than the last (a segment is synced
 *     before the next one is started);
 *   - the mark in DIR/meta (meta saves, purges, resets, truncates below it,
 *     a clean close, the end of each recovery);
 *   - the `durable` field of every valid record of the last segment, those
 *     after a damaged one included: each says how far the log had been
 *     synced when it was written.
 *
 * At the first damaged record of the last segment (index b, offset o):
 *
 *   - b <= W: corruption, refused (file, offset, index, W);
 *   - a valid record follows and the bytes between are not the shape of a
 *     torn write (all zeros, or overlapped by an aligned 512-byte sector of
 *     zeros, as a page that never reached the disk leaves): corruption,
 *     refused;
 *   - zeros from o to the end of the file, and b > W: the preallocated end
 *     of the log (disk_log.c s_prealloc), possibly over appends that were
 *     never synced: the log ends at o, the zeros stay for the next append,
 *     and only more zeros than prealloc_bytes are reported;
 *   - otherwise a torn tail: cut at o and reported on stderr.
 *
 * Damage in any other segment is corruption. A log that ends before W (a
 * lost tail or segment) is refused too, unless the snapshot covers it. A
 * record is never skipped. Then everything recovery read is synced - the
 * files, then their directories - before it counts as durable, and the
 * synced mark in meta is brought up to the recovered log. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/crc32c.h"
#include "storage/disk_int.h"

#define SECTOR 512

static uint64_t s_max(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* ---------------------------------------------------------------- meta */

static int s_read_meta(disk *d, char *why, size_t whylen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/meta", d->dir);
    size_t len;
    int err = 0;
    unsigned char *b = disk_read_file(path, &len, &err);
    if (b == NULL) {
        if (err == ZRAFT_ENOTFOUND) {
            return 0; /* a new store */
        }
        snprintf(why, whylen, "%s: cannot read (%s)", path,
                 zraft_strerror(err));
        return err;
    }
    bool v2 = len == DISK_META_LEN && memcmp(b, DISK_META_MAGIC, 8) == 0 &&
              crc32c(0, b, 48) == disk_get32(b + 48);
    bool v1 = len == DISK_META1_LEN && memcmp(b, DISK_META1_MAGIC, 8) == 0 &&
              crc32c(0, b, 40) == disk_get32(b + 40);
    if (v1 || v2) {
        d->term = disk_get64(b + 8);
        d->vote = disk_get64(b + 16);
        d->committed = disk_get64(b + 24);
        d->purged = disk_get64(b + 32);
        d->meta_synced = v2 ? disk_get64(b + 40) : 0;
    }
    free(b);
    if ((!v1 && !v2) || d->committed > DISK_INDEX_MAX ||
        d->purged > DISK_INDEX_MAX || d->meta_synced > DISK_INDEX_MAX) {
        snprintf(why, whylen, "%s: corrupt metadata file", path);
        return ZRAFT_ECORRUPT;
    }
    return 0;
}

/* ------------------------------------------------------------ segments */

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The first indexes of DIR/log/<20 digits>.seg, sorted. */
static int s_list(disk *d, uint64_t **out, size_t *nf, char *why, size_t whylen)
{
    DIR *dh = opendir(d->logdir);
    if (dh == NULL) {
        snprintf(why, whylen, "%s: cannot list (%s)", d->logdir,
                 strerror(errno));
        return ZRAFT_EIO;
    }
    uint64_t *firsts = NULL;
    size_t n = 0, cap = 0;
    int rv = 0;
    struct dirent *de;
    while (rv == 0 && (de = readdir(dh)) != NULL) {
        const char *name = de->d_name;
        if (strlen(name) != 24 || strcmp(name + 20, ".seg") != 0 ||
            strspn(name, "0123456789") != 20) {
            continue; /* not ours */
        }
        uint64_t f = strtoull(name, NULL, 10);
        if (f == 0 || f > DISK_INDEX_MAX) {
            snprintf(why, whylen, "%s/%s: no log has such an index", d->logdir,
                     name);
            rv = ZRAFT_ECORRUPT;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nfs = realloc(firsts, cap * sizeof(uint64_t));
            if (nfs == NULL) {
                rv = ZRAFT_ENOMEM;
                break;
            }
            firsts = nfs;
        }
        firsts[n++] = f;
    }
    closedir(dh);
    if (rv != 0) {
        free(firsts);
        return rv;
    }
    if (n > 0) {
        qsort(firsts, n, sizeof(uint64_t), s_cmp_u64);
    }
    *out = firsts;
    *nf = n;
    return 0;
}

/* True if the damaged stretch buf[from, to) (size bytes in buf) looks like
 * a write that never reached the disk: all zeros, or overlapped by an
 * aligned sector of zeros. The sector may reach into the valid record at
 * `to` (its own bytes there were zeros, e.g. a small length field). */
static bool s_torn_shape(const unsigned char *buf, size_t size, size_t from,
                         size_t to)
{
    size_t i = from;
    while (i < to && buf[i] == 0) {
        i++;
    }
    if (i == to) {
        return true;
    }
    for (size_t a = from / SECTOR * SECTOR; a < to && a + SECTOR <= size;
         a += SECTOR) {
        size_t k = 0;
        while (k < SECTOR && buf[a + k] == 0) {
            k++;
        }
        if (k == SECTOR) {
            return true;
        }
    }
    return false;
}

/* Looks for whole, valid records at any offset in buf[from, size) that
 * could continue a log whose record `want` is damaged at `bad`: the offset
 * of the first (SIZE_MAX if none); the highest synced mark among them in
 * *durable. */
static size_t s_next_valid(const unsigned char *buf, size_t size, size_t bad,
                           size_t from, uint64_t want, uint64_t *durable)
{
    size_t first = SIZE_MAX;
    size_t q = from;
    while (size >= DISK_HDR && q <= size - DISK_HDR) {
        /* Cheap filter: the index a record here would have to carry. */
        uint64_t idx = disk_get64(buf + q + 16);
        pos p;
        uint64_t dur;
        if (idx >= want && idx - want <= (q - bad) / DISK_HDR &&
            disk_parse(buf, size, q, 0, &p, &dur)) {
            if (first == SIZE_MAX) {
                first = q;
            }
            *durable = s_max(*durable, dur);
            q += DISK_HDR + p.len;
            continue;
        }
        q++;
    }
    return first;
}

/* The record `want` at buf[off] of segment s is damaged: cut the tail, or
 * refuse with ECORRUPT (see the opening comment). */
static int s_damaged(disk *d, seg *s, const unsigned char *buf, size_t size,
                     size_t off, uint64_t want, bool last, uint64_t synced,
                     bool *zero_end, char *why, size_t whylen)
{
    if (!last) {
        snprintf(why, whylen,
                 "%s: corrupt record at offset %zu (index %llu) in a segment "
                 "that was synced before the next one was started; refusing "
                 "to start",
                 s->path, off, (unsigned long long)want);
        return ZRAFT_ECORRUPT;
    }
    size_t z = off;
    while (z < size && buf[z] == 0) {
        z++;
    }
    if (z == size && want > synced) {
        /* Zeros to the end: the preallocated end of the log (disk_log.c
         * s_prealloc), or appends not synced that never reached the disk
         * over it. Nothing is cut; the next append writes over them. More
         * zeros than preallocation leaves means appends were lost: said. */
        if (!d->o.quiet && size - off > d->o.prealloc_bytes) {
            fprintf(stderr,
                    "zraft disk: %s: the log ends at offset %zu (index %llu "
                    "onwards never reached the disk; it was synced up to "
                    "%llu): %zu bytes of zeros follow\n",
                    s->path, off, (unsigned long long)want,
                    (unsigned long long)synced, size - off);
        }
        *zero_end = true;
        return 0;
    }
    uint64_t after = 0;
    size_t next = s_next_valid(buf, size, off, off + 1, want, &after);
    uint64_t w = s_max(synced, after);
    if (want <= w) {
        snprintf(why, whylen,
                 "%s: corrupt record at offset %zu (index %llu), but entries "
                 "up to %llu were synced: not a torn write; refusing to start",
                 s->path, off, (unsigned long long)want, (unsigned long long)w);
        return ZRAFT_ECORRUPT;
    }
    if (next != SIZE_MAX && !s_torn_shape(buf, size, off, next)) {
        snprintf(why, whylen,
                 "%s: corrupt record at offset %zu (index %llu) followed by "
                 "a valid record at offset %zu: not a torn write; refusing "
                 "to start",
                 s->path, off, (unsigned long long)want, next);
        return ZRAFT_ECORRUPT;
    }
    if (!d->o.quiet) {
        fprintf(
            stderr,
            "zraft disk: %s: dropping a torn tail of %zu bytes at offset %zu "
            "(index %llu onwards; the log was synced up to %llu)\n",
            s->path, size - off, off, (unsigned long long)want,
            (unsigned long long)w);
    }
    if (ftruncate(s->fd, (off_t)off) != 0 || disk_fsync(d, s->fd) != 0) {
        snprintf(why, whylen, "%s: cannot cut the torn tail (%s)", s->path,
                 strerror(errno));
        return ZRAFT_EIO;
    }
    return 0;
}

/* Scans segment s into the index; *synced: the synced mark so far, raised
 * by what the segment shows. */
static int s_scan(disk *d, seg *s, bool last, uint64_t *synced, char *why,
                  size_t whylen)
{
    size_t size;
    int err = 0;
    unsigned char *buf = disk_read_file(s->path, &size, &err);
    if (buf == NULL) {
        snprintf(why, whylen, "%s: cannot read (%s)", s->path,
                 zraft_strerror(err));
        return err;
    }
    size_t off = 0;
    uint64_t want = s->first;
    s->alloc = size;
    while (off < size) {
        pos p;
        uint64_t dur;
        if (!disk_parse(buf, size, off, want, &p, &dur)) {
            bool zero_end = false;
            err = s_damaged(d, s, buf, size, off, want, last, *synced,
                            &zero_end, why, whylen);
            if (err != 0) {
                free(buf);
                return err;
            }
            if (!zero_end) {
                s->alloc = off; /* cut */
            }
            size = off;
            break;
        }
        *synced = s_max(*synced, dur);
        p.s = s;
        if (d->n_idx == 0) {
            d->idx_first = want;
        }
        if (disk_idx_push(d, &p) != 0) {
            free(buf);
            return ZRAFT_ENOMEM;
        }
        off += DISK_HDR + p.len;
        want++;
    }
    free(buf);
    s->size = size;
    s->synced = size;
    s->last = want - 1;
    if (!last) {
        *synced = s_max(*synced, s->last);
    }
    return 0;
}

/* Removes segments [from, n_segs) from the table and deletes their files
 * (all empty, or a log that the snapshot replaced). */
static void s_drop_segs_from(disk *d, size_t from)
{
    for (size_t i = from; i < d->n_segs; i++) {
        unlink(d->segs[i]->path);
        disk_seg_unpin(d->segs[i]);
    }
    d->n_segs = from;
}

static int s_segments(disk *d, uint64_t *synced, char *why, size_t whylen)
{
    uint64_t *firsts = NULL;
    size_t nf = 0;
    int rv = s_list(d, &firsts, &nf, why, whylen);
    for (size_t i = 0; i < nf && rv == 0; i++) {
        bool last = i + 1 == nf;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%020llu.seg", d->logdir,
                 (unsigned long long)firsts[i]);
        /* Wholly purged (an interrupted purge or reset): finish it. */
        if (!last && firsts[i + 1] - 1 <= d->purged) {
            unlink(path);
            continue;
        }
        if (d->n_segs > 0 && firsts[i] != d->next_index) {
            snprintf(why, whylen,
                     "%s: starts at index %llu but the log before it ends "
                     "at %llu (a segment is missing)",
                     path, (unsigned long long)firsts[i],
                     (unsigned long long)(d->next_index - 1));
            rv = ZRAFT_ECORRUPT;
            break;
        }
        seg *s = disk_seg_open(d, firsts[i], false, &rv);
        if (s == NULL) {
            snprintf(why, whylen, "%s: cannot open (%s)", path,
                     zraft_strerror(rv));
            break;
        }
        rv = s_scan(d, s, last, synced, why, whylen);
        if (rv != 0) {
            disk_seg_unpin(s);
            break;
        }
        d->next_index = s->last + 1;
        if (s->size == 0 && !last) {
            unlink(s->path); /* an empty segment left by a crash */
            disk_seg_unpin(s);
            continue;
        }
        if ((rv = disk_seg_push(d, s)) != 0) {
            disk_seg_unpin(s);
        }
    }
    free(firsts);
    return rv;
}

/* ----------------------------------------------------- log vs snapshot */

/* Fits the recovered log to the snapshot and the purge point. Sets
 * *replaced when the log was discarded in favour of the snapshot. */
static int s_fit(disk *d, bool *replaced, char *why, size_t whylen)
{
    *replaced = false;
    uint64_t si = d->has_snap ? d->snap.last_log_id.index : 0;
    if (d->purged > si) {
        snprintf(why, whylen,
                 "%s/meta: entries up to %llu were purged but %s covers "
                 "them (the snapshot file is missing or older)",
                 d->dir, (unsigned long long)d->purged,
                 d->has_snap ? "the snapshot no longer" : "no snapshot");
        return ZRAFT_ECORRUPT;
    }
    if (d->n_idx == 0) {
        d->next_index = s_max(s_max(si, d->purged) + 1, 1);
        d->idx_first = d->next_index;
        s_drop_segs_from(d, 0); /* empty files only */
        return 0;
    }
    if (!d->has_snap) {
        return 0;
    }
    if (si + 1 < d->idx_first) {
        snprintf(why, whylen,
                 "%s: the log starts at %llu, after the snapshot's index "
                 "%llu (entries are missing)",
                 d->logdir, (unsigned long long)d->idx_first,
                 (unsigned long long)si);
        return ZRAFT_ECORRUPT;
    }
    /* A log that does not continue the snapshot (a crash in the middle of
     * installing one) is discarded. */
    uint64_t last = d->next_index - 1;
    bool ok = last >= si &&
              (si < d->idx_first ||
               d->idx[si - d->idx_first].term == d->snap.last_log_id.term);
    if (!ok && !d->o.quiet) {
        fprintf(stderr,
                "zraft disk: %s: the log does not continue the snapshot at "
                "%llu; discarding it\n",
                d->logdir, (unsigned long long)si);
    }
    if (!ok) {
        s_drop_segs_from(d, 0);
        d->n_idx = 0;
        d->next_index = si + 1;
        d->idx_first = d->next_index;
        *replaced = true;
    }
    return 0;
}

/* ------------------------------------------------------------- syncing */

/* Makes durable what recovery read: a process crash leaves written bytes
 * in the page cache only, and a power cut after this open must not take
 * away entries this node reports as durable. */
static int s_sync_all(disk *d, char *why, size_t whylen)
{
    int rv = 0;
    for (size_t i = 0; i < d->n_segs && rv == 0; i++) {
        if ((rv = disk_fsync(d, d->segs[i]->fd)) != 0) {
            snprintf(why, whylen, "%s: cannot sync (%s)", d->segs[i]->path,
                     zraft_strerror(rv));
        }
    }
    const char *files[] = {"meta", "snapshot"};
    for (size_t i = 0; i < 2 && rv == 0; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", d->dir, files[i]);
        if (access(path, F_OK) == 0 && (rv = disk_fsync_path(d, path)) != 0) {
            snprintf(why, whylen, "%s: cannot sync (%s)", path,
                     zraft_strerror(rv));
        }
    }
    if (rv == 0 && ((rv = disk_fsync(d, d->logdirfd)) != 0 ||
                    (rv = disk_fsync(d, d->dirfd)) != 0)) {
        snprintf(why, whylen, "%s: cannot sync the directories (%s)", d->dir,
                 zraft_strerror(rv));
    }
    return rv;
}

int disk_recover(disk *d, char *why, size_t whylen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/meta.tmp", d->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/snapshot.tmp", d->dir);
    unlink(path);
    int rv = s_read_meta(d, why, whylen);
    if (rv != 0) {
        return rv;
    }
    rv = disk_read_snapshot(d, &d->snap, NULL, why, whylen);
    if (rv == 0) {
        d->has_snap = true;
    } else if (rv != ZRAFT_ENOTFOUND) {
        return rv;
    }
    uint64_t synced = d->meta_synced;
    bool replaced;
    if ((rv = s_segments(d, &synced, why, whylen)) != 0 ||
        (rv = s_fit(d, &replaced, why, whylen)) != 0) {
        return rv;
    }
    uint64_t last = d->next_index - 1;
    if (!replaced && synced > last) {
        snprintf(why, whylen,
                 "%s: the log ends at index %llu but entries up to %llu were "
                 "synced (a segment or its tail is missing); refusing to "
                 "start",
                 d->logdir, (unsigned long long)last,
                 (unsigned long long)synced);
        return ZRAFT_ECORRUPT;
    }
    if ((rv = s_sync_all(d, why, whylen)) != 0) {
        return rv;
    }
    d->durable = last;
    if (d->meta_synced != d->durable && (rv = disk_save_meta(d)) != 0) {
        snprintf(why, whylen, "%s/meta: cannot write (%s)", d->dir,
                 zraft_strerror(rv));
    }
    return rv;
}
