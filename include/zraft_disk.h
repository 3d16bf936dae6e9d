/* zraft_disk.h - the durable storage: a segmented write-ahead log, an
 * atomically replaced metadata file and snapshot file, in one directory.
 * See docs/storage.md for the on-disk format and the recovery rules. */
#ifndef ZRAFT_DISK_H
#define ZRAFT_DISK_H

#include "zraft_storage.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t segment_bytes; /* start a new segment past this size (64 MiB) */
    bool fsync;             /* false: skip fdatasync (tests, benchmarks) */
    bool quiet; /* no reports on stderr of what recovery cut (fuzzing) */
    /* Tests: fail the Nth sync (1-based) and every later write with EIO
     * (0: never). */
    uint32_t fail_sync_at;
    /* Tests: on destroy, drop every byte not yet synced, as a power cut
     * would. */
    bool crash_on_destroy;
    /* Tests: write at most this many bytes per write call, as a signal or
     * the kernel's 2 GiB cap would (0: no limit). */
    uint32_t max_write_bytes;
    /* Tests: reset() stops after its Nth durable step (1: the purge point
     * recorded in meta; 2, 3, ...: each segment deleted, newest first) and
     * fails with ZRAFT_EIO, leaving the directory as a crash there would
     * (0: never). */
    uint32_t crash_reset_at;
    /* The newest segment is kept this many bytes longer than its records,
     * zero-filled, so that an fdatasync finds the file's size and blocks
     * already on disk and flushes only data (1 MiB; 0: off, the file grows
     * with each append). docs/storage.md "Preallocation". */
    uint32_t prealloc_bytes;
} zraft_disk_options;

void zraft_disk_options_default(zraft_disk_options *o);

/* Opens (creating if needed, and syncing new directories in their parents)
 * the storage in `dir` and recovers it: verifies every record's CRC, cuts a
 * torn tail - damage after everything the log shows was ever synced, with
 * no intact record after it - off the last segment (reported on stderr),
 * and refuses any other damage, or a log shorter than what was synced, with
 * ZRAFT_ECORRUPT and a message naming the file and offset in `why`; then
 * syncs everything it read before reporting it (docs/storage.md,
 * "Recovery"). Caller owns the result (zraft_storage_free). */
zraft_storage *zraft_storage_disk_new(const char *dir,
                                      const zraft_disk_options *o, int *err,
                                      char *why, size_t whylen);

#ifdef __cplusplus
}
#endif
#endif
