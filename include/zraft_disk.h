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
    /* Tests: fail the Nth sync (1-based) and every later write with EIO
     * (0: never). */
    uint32_t fail_sync_at;
    /* Tests: on destroy, drop every byte not yet synced, as a power cut
     * would. */
    bool crash_on_destroy;
    /* Tests: write at most this many bytes per write call, as a signal or
     * the kernel's 2 GiB cap would (0: no limit). */
    uint32_t max_write_bytes;
} zraft_disk_options;

void zraft_disk_options_default(zraft_disk_options *o);

/* Opens (creating if needed) the storage in `dir` and recovers it: verifies
 * every record's CRC, cuts a torn tail off the last segment (reported on
 * stderr) and refuses corruption anywhere else with ZRAFT_ECORRUPT and a
 * message naming the file and offset in `why`. Caller owns the result
 * (zraft_storage_free). */
zraft_storage *zraft_storage_disk_new(const char *dir,
                                      const zraft_disk_options *o, int *err,
                                      char *why, size_t whylen);

#ifdef __cplusplus
}
#endif
#endif
