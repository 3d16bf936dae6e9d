/* zraft_storage.h - the two interfaces an embedder may bring: the log/vote/
 * snapshot storage and the state machine. Both are structs of function
 * pointers plus a context; zraft ships a memory store and a durable disk store
 * (storage/) and the zraftd key-value state machine (server/).
 *
 * Threads: zraft calls a storage from several of its threads at once - the log
 * writer appends/syncs/truncates/purges, replication streams and the state
 * machine worker read. Implementations must allow reads concurrently with
 * writes (no global lock held across I/O). The state machine is only ever
 * called from one thread (the node's state machine worker). */
#ifndef ZRAFT_STORAGE_H
#define ZRAFT_STORAGE_H

#include "zraft_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What storage holds when a node starts. */
typedef struct {
    uint64_t term;        /* persisted current term */
    zraft_id voted_for;   /* persisted vote in `term` (0: none) */
    uint64_t committed;   /* persisted commit index (may lag the real one;
                             never below the snapshot's index) */
    uint64_t first_index; /* oldest entry in the log (last_index+1 if empty) */
    zraft_log_id last_log_id; /* newest entry (or the snapshot's if empty) */
    bool has_snapshot;
    zraft_snapshot_meta snapshot;
} zraft_storage_state;

typedef struct zraft_storage zraft_storage;
struct zraft_storage {
    void *ctx;

    /* Reads the durable state at start (after recovery). */
    int (*load)(void *ctx, zraft_storage_state *out);

    /* Persists (term, vote, committed) atomically and durably before it
     * returns; the committed index never goes backwards (a lower one keeps
     * the stored one). Called by the log writer only. */
    int (*save_state)(void *ctx, uint64_t term, zraft_id voted_for,
                      uint64_t committed);

    /* Appends entries (ids contiguous with the log, index = last+1). Not yet
     * durable: sync() makes every append before it durable (group commit).
     * Takes a reference to each payload it keeps. Log writer only (or the core
     * thread, see inline_writes). */
    int (*append)(void *ctx, const zraft_entry *ents, size_t n);
    int (*sync)(void *ctx);

    /* Deletes entries with index >= since (durable on return). */
    int (*truncate)(void *ctx, uint64_t since);
    /* Deletes entries with index <= upto (may keep a few more: whole
     * segments). Requires a stored snapshot covering upto (ZRAFT_EINVAL
     * otherwise). */
    int (*purge)(void *ctx, uint64_t upto);

    /* Reads entries [from, to] into out (capacity *n), stopping early once
     * max_bytes of payload is reached (always at least one entry). On return
     * *n is the count read; caller owns one reference to each payload.
     * ZRAFT_ECOMPACTED if `from` was purged, ZRAFT_ENOTFOUND past the end.
     * Any thread. */
    int (*get)(void *ctx, uint64_t from, uint64_t to, size_t max_bytes,
               zraft_entry *out, size_t *n);

    /* Stores a complete snapshot durably (temp file + rename), replacing the
     * previous one unless that one is newer: a snapshot whose last index is
     * below the stored one's is not stored and the call returns
     * ZRAFT_ESUPERSEDED (the state machine's own snapshot that lost the race
     * with an installed newer one; not a failure: drop it, the stored one
     * stays). The same index replaces it. ZRAFT_EINVAL for a membership
     * that zraft_membership_decode() would refuse. Takes a reference to
     * `data` if it keeps it. Called by the state machine worker and the log
     * writer; saves are serialized. */
    int (*snapshot_save)(void *ctx, const zraft_snapshot_meta *meta,
                         zraft_buf *data);
    /* The latest snapshot; caller owns the returned reference.
     * ZRAFT_ENOTFOUND if there is none. Any thread. */
    int (*snapshot_load)(void *ctx, zraft_snapshot_meta *meta,
                         zraft_buf **data);
    /* Replaces the whole log by an installed snapshot: deletes every entry
     * (a follower that installs a snapshot discards its log, §7) and raises
     * the committed index to snapshot_last. Requires the snapshot saved
     * first (snapshot_save returned 0): ZRAFT_EINVAL if no stored snapshot
     * covers snapshot_last. Log writer only. */
    int (*reset)(void *ctx, zraft_log_id snapshot_last);

    /* Frees the storage (after the node is destroyed). */
    void (*destroy)(void *ctx);

    /* Optional (false by default): save_state, append, sync, truncate and
     * purge return at once with nothing to wait for (the memory store).
     * The node then calls them on its core thread whenever its log writer
     * has nothing queued, which saves a thread hand-off (two, on a
     * follower) per write; snapshot_save and reset stay on the log writer.
     * The calls never overlap: each thread calls only once the other's
     * writes are finished and reported. A storage that may block in those
     * calls must leave this false: the core thread would block with it. */
    bool inline_writes;
};

/* A state machine. Every callback runs on the node's state machine thread. */
typedef struct zraft_fsm zraft_fsm;
struct zraft_fsm {
    void *ctx;
    /* Applies a committed NORMAL entry. `*result` (optional, caller of the
     * write receives it, may stay NULL) is owned by zraft afterwards. A
     * non-zero return is a fatal state machine error: the node stops. */
    int (*apply)(void *ctx, const zraft_entry *e, zraft_buf **result);
    /* Serializes the whole state (at the last applied entry). */
    int (*snapshot)(void *ctx, zraft_buf **out);
    /* Replaces the whole state by a snapshot's. */
    int (*restore)(void *ctx, const zraft_buf *data);
    void (*destroy)(void *ctx);
};

/* Snapshots larger than memory. A state machine may return from snapshot()
 * a buffer made by zraft_buf_map() over a file it wrote, and restore() may
 * receive one (a snapshot received from the leader is one, as is what the
 * disk storage's snapshot_load() returns): zraft reads such buffers in
 * pieces and drops each piece's pages when done, so that no thread holds a
 * whole snapshot in memory. */

/* A new buffer (one reference, caller owns it) over `len` bytes of the file
 * `fd` from `offset`, mapped read-only and shared, flagged ZRAFT_BUF_MAPPED.
 * The mapping keeps the file alive: `fd` may be closed and the file unlinked
 * at once. The file must not be truncated or written while the buffer
 * lives. `len` 0 gives an ordinary empty buffer. ZRAFT_EIO (or
 * ZRAFT_ENOMEM) when the file cannot be mapped. */
int zraft_buf_map(int fd, uint64_t offset, size_t len, zraft_buf **out);
/* Drops from memory the whole pages of bytes [off, off + len) of a
 * ZRAFT_BUF_MAPPED buffer; the bytes stay readable (from the file). Does
 * nothing for other buffers. Any thread, while the caller holds a
 * reference. */
void zraft_buf_drop_pages(const zraft_buf *b, size_t off, size_t len);

/* The memory storage: nothing survives the process. Caller owns the result
 * (free with its destroy callback). NULL on ENOMEM. */
zraft_storage *zraft_storage_memory_new(void);
void zraft_storage_free(zraft_storage *s);

#ifdef __cplusplus
}
#endif
#endif /* ZRAFT_STORAGE_H */
