/* disk_int.h - what the files of the durable storage share: storage/disk.c
 * (files, meta, snapshots, the interface), storage/disk_log.c (the log) and
 * storage/disk_recover.c (recovery at open). The formats are in disk.c's
 * opening comment and in docs/storage.md. Internal to storage/. */
#ifndef ZRAFT_STORAGE_DISK_INT_H
#define ZRAFT_STORAGE_DISK_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zraft_disk.h"

#define DISK_HDR         32 /* record header bytes */
#define DISK_META_LEN    56
#define DISK_META_MAGIC  "ZRMETA02"
#define DISK_META1_LEN   48 /* the first format, without the synced mark */
#define DISK_META1_MAGIC "ZRMETA01"
#define DISK_SNAP_MAGIC  "ZRSNAP01"
/* The synced mark of a record header is 7 bytes. */
#define DISK_DURABLE_MAX ((1ull << 56) - 1)
/* Indexes, terms and purge points beyond this are corruption (no log gets
 * there, and index arithmetic stays far from overflow). */
#define DISK_INDEX_MAX (1ull << 62)

/* One segment file. Pinned by the table and by each reader; the last unpin
 * closes it, so a purge or truncate never closes a file under a reader. */
typedef struct seg {
    uint64_t first; /* index in the file name */
    uint64_t last;  /* first - 1 when empty */
    int fd;
    char path[PATH_MAX];
    uint64_t size;   /* bytes of records written */
    uint64_t synced; /* bytes of records durable */
    uint64_t alloc;  /* bytes in the file: records, then zeros (prealloc) */
    bool no_fill;    /* a fill found no room: not again until cut */
    _Atomic int refs;
} seg;

/* Where an entry is: its segment, offset and length. */
typedef struct {
    uint64_t term;
    uint64_t off;
    uint32_t len;
    uint8_t type;
    seg *s;
} pos;

typedef struct {
    pthread_rwlock_t lock;     /* segs, idx*, next_index: held to copy only */
    pthread_mutex_t snap_lock; /* has_snap, snap: held to copy only */
    pthread_mutex_t save_lock; /* one snapshot_save at a time, across I/O */
    zraft_disk_options o;
    char dir[PATH_MAX - 128];
    char logdir[PATH_MAX - 64];
    int dirfd, logdirfd;
    seg **segs; /* oldest first; the last one is written */
    size_t n_segs, cap_segs;
    pos *idx;           /* idx[i] is entry idx_first + i */
    uint64_t idx_first; /* index of idx[0] */
    uint64_t n_idx, cap_idx;
    uint64_t next_index;
    /* Log writer only (and open/destroy): */
    uint64_t term, vote, committed, purged; /* as in DIR/meta */
    uint64_t durable;     /* every entry <= durable has been synced */
    uint64_t meta_synced; /* the synced mark DIR/meta holds */
    int err;              /* sticky write error */
    uint32_t syncs;       /* sync() calls (fail_sync_at) */
    uint64_t filled_us;   /* monotonic time of the last top-up (prealloc) */
    unsigned char *hdrs;  /* scratch for append headers */
    size_t cap_hdrs;
    bool has_snap;
    zraft_snapshot_meta snap;
} disk;

static inline void disk_put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static inline void disk_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static inline uint64_t disk_get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static inline uint32_t disk_get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* errno -> ZRAFT_ENOSPACE (ENOSPC, EDQUOT) or ZRAFT_EIO. */
int disk_errno(int e);

/* fsync(fd) unless the store runs without syncs; 0 or a ZRAFT_E*. */
int disk_fsync(const disk *d, int fd);

/* fsyncs the file or directory at `path` (see disk_fsync). */
int disk_fsync_path(const disk *d, const char *path);

/* Reads a whole file. Caller owns the return value; NULL with *err set
 * (ZRAFT_ENOTFOUND if absent). */
unsigned char *disk_read_file(const char *path, size_t *len, int *err);

/* Parses the record at buf[off] (size bytes in buf): true if it is whole,
 * its CRC matches and its fields are sane, and (want != 0) its index is
 * `want`. Fills *out (seg NULL) and *durable (its synced mark). */
bool disk_parse(const unsigned char *buf, size_t size, size_t off,
                uint64_t want, pos *out, uint64_t *durable);

/* Opens (create: creates, must not exist) the segment starting at `first`.
 * Caller owns the return value (disk_seg_unpin); NULL with *err set. */
seg *disk_seg_open(const disk *d, uint64_t first, bool create, int *err);
void disk_seg_unpin(seg *s);

/* Table upkeep; ZRAFT_ENOMEM. */
int disk_idx_push(disk *d, const pos *p);
int disk_seg_push(disk *d, seg *s);

/* Writes DIR/meta (term, vote, commit, purge point, durable) atomically and
 * durably; sets meta_synced. */
int disk_save_meta(disk *d);

/* Parses and checks DIR/snapshot (CRC over the whole file, read in pieces
 * from a mapping); data optional (caller owns it): the data part of the
 * file, mapped (ZRAFT_BUF_MAPPED), never copied into memory.
 * ZRAFT_ENOTFOUND, ZRAFT_ECORRUPT (with a message in why, if given),
 * ZRAFT_EIO. */
int disk_read_snapshot(const disk *d, zraft_snapshot_meta *meta,
                       zraft_buf **data, char *why, size_t whylen);

/* The log's side of the storage interface (storage/disk_log.c); the
 * contracts are zraft_storage's (include/zraft_storage.h). */
int disk_log_append(void *ctx, const zraft_entry *ents, size_t n);
int disk_log_sync(void *ctx);
int disk_log_truncate(void *ctx, uint64_t since);
int disk_log_purge(void *ctx, uint64_t upto);
int disk_log_get(void *ctx, uint64_t from, uint64_t to, size_t max_bytes,
                 zraft_entry *out, size_t *n);
/* Replaces the log by the stored snapshot at `last` (ZRAFT_EINVAL if no
 * stored snapshot covers it). */
int disk_log_reset(void *ctx, zraft_log_id last);

/* Recovers the store at open (storage/disk_recover.c): reads meta and the
 * snapshot, scans every segment into the index, cuts a torn tail, refuses
 * corruption, finishes interrupted purges and resets, and syncs everything
 * it read. 0, or an error with a message in why. */
int disk_recover(disk *d, char *why, size_t whylen);

#endif /* ZRAFT_STORAGE_DISK_INT_H */
