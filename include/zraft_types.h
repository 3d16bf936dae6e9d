/* zraft_types.h - the value types shared by the engine, the runtime and
 * embedders: error codes, log ids, reference-counted buffers, entries and
 * membership configurations.
 *
 * This header is included by <zraft.h>; it is separate so that core/ (the pure
 * engine, libc only) can use the same types without the runtime API. */
#ifndef ZRAFT_TYPES_H
#define ZRAFT_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

/* One list gives the constants, zraft_strerror() and zraft_err_name(). */
#define ZRAFT_ERRNO_MAP(X)                                                     \
    X(NOMEM, -1, "out of memory")                                              \
    X(INVAL, -2, "invalid argument")                                           \
    X(NOTLEADER, -3, "this node is not the leader")                            \
    X(BUSY, -4, "a conflicting operation is in progress")                      \
    X(SHUTDOWN, -5, "the node is shutting down")                               \
    X(TIMEDOUT, -6, "timed out")                                               \
    X(IO, -7, "storage I/O error")                                             \
    X(CORRUPT, -8, "corrupt data")                                             \
    X(NOSPACE, -9, "no space left on device")                                  \
    X(COMPACTED, -10, "the requested entries were compacted into a snapshot")  \
    X(LEADERSHIP_LOST, -11, "leadership lost before the entry was committed")  \
    X(TOOBIG, -12, "payload too large")                                        \
    X(NOTFOUND, -13, "not found")                                              \
    X(MALFORMED, -14, "malformed message")                                     \
    X(TRANSFER, -15, "leadership transfer in progress")                        \
    X(UNAVAILABLE, -16, "node is unavailable (stopped after a fatal error)")   \
    X(NOTMEMBER, -17, "node is not a member of the configuration")             \
    X(AGAIN, -18, "resource temporarily unavailable, try again")               \
    X(SUPERSEDED, -19, "a newer snapshot is already stored")

enum {
    ZRAFT_OK = 0,
#define ZRAFT_X_(name, code, text) ZRAFT_E##name = code,
    ZRAFT_ERRNO_MAP(ZRAFT_X_)
#undef ZRAFT_X_
};

/* A static, human-readable description of an error code (never NULL). */
const char *zraft_strerror(int err);
/* The constant's name without the ZRAFT_ prefix ("ENOTLEADER"); never NULL. */
const char *zraft_err_name(int err);

/* ---------------------------------------------------------------- ids */

typedef uint64_t zraft_id; /* node id; 0 means "none" */

/* A log position: entry `index` was created by the leader of `term`. (0,0) is
 * the position before the first entry. */
typedef struct {
    uint64_t term;
    uint64_t index;
} zraft_log_id;

/* -------------------------------------------------------------- buffers */

/* An immutable, reference-counted byte buffer. Payloads travel between
 * threads as pointers to one of these; nobody copies them. The count is
 * atomic, the bytes are never written after the buffer is shared. */
typedef struct zraft_buf zraft_buf;
struct zraft_buf {
    _Atomic uint32_t refs;
    uint32_t flags; /* ZRAFT_BUF_* */
    size_t len;
    void (*free_fn)(void *ctx, void *data); /* NULL: data is inline */
    void *free_ctx;
    unsigned char *data;
};

/* zraft_buf.flags: `data` is a read-only shared mapping of a file
 * (zraft_buf_map(), zraft_storage.h). Its bytes never change; a reader done
 * with a range may drop that range's pages from memory
 * (zraft_buf_drop_pages()), which reads them again from the file if they are
 * needed later. This is how a snapshot larger than memory travels. */
#define ZRAFT_BUF_MAPPED 0x1u

/* New buffer of `len` bytes with one reference, data copied from `data` (if
 * not NULL). Caller owns the return value; NULL when out of memory. */
zraft_buf *zraft_buf_new(const void *data, size_t len);
/* Wraps memory the caller allocated: `free_fn(ctx, data)` runs when the last
 * reference goes. Takes ownership of `data` on success. */
zraft_buf *zraft_buf_wrap(void *data, size_t len,
                          void (*free_fn)(void *ctx, void *data), void *ctx);
/* Adds a reference; returns `b` (NULL-safe). */
zraft_buf *zraft_buf_ref(zraft_buf *b);
/* Drops a reference, freeing on the last one (NULL-safe). */
void zraft_buf_unref(zraft_buf *b);

/* --------------------------------------------------------------- entries */

typedef enum {
    ZRAFT_ENTRY_NORMAL = 1,     /* application command */
    ZRAFT_ENTRY_BLANK = 2,      /* appended by each new leader (§5.4.2) */
    ZRAFT_ENTRY_MEMBERSHIP = 3, /* payload: zraft_membership_encode() */
} zraft_entry_type;

/* A log entry. The payload (NULL for blank entries) is borrowed by whoever
 * holds the entry; to keep it beyond the call that handed it over, take a
 * reference. */
typedef struct {
    zraft_log_id id;
    uint8_t type;
    zraft_buf *payload;
} zraft_entry;

static inline size_t zraft_entry_len(const zraft_entry *e)
{
    return e->payload ? e->payload->len : 0;
}

/* ------------------------------------------------------------ membership */

#define ZRAFT_MAX_MEMBERS 64
#define ZRAFT_ADDR_MAX    96
/* A CurveZMQ public key in Z85 text (40 characters) and its NUL. */
#define ZRAFT_KEY_LEN 40
#define ZRAFT_KEY_MAX (ZRAFT_KEY_LEN + 1)

/* Roles a member holds in a configuration (bit mask). */
enum {
    ZRAFT_ROLE_VOTER = 1,     /* votes in C_new (or the only config) */
    ZRAFT_ROLE_VOTER_OLD = 2, /* votes in C_old while joint (§6) */
    ZRAFT_ROLE_LEARNER = 4,   /* receives the log, never votes */
};

typedef struct {
    zraft_id id;
    uint8_t roles;
    char addr[ZRAFT_ADDR_MAX]; /* opaque to the engine; NUL-terminated */
    /* The member's CurveZMQ public key (Z85, ZRAFT_KEY_LEN characters), or
     * "" when it has none (plain TCP). Opaque to the engine: it travels
     * with the configuration so that every node knows whom to admit. */
    char key[ZRAFT_KEY_MAX];
} zraft_member;

/* A cluster configuration: a uniform one (only VOTER and LEARNER bits) or a
 * joint one (C_old,new: VOTER_OLD bits mark C_old). */
typedef struct {
    uint32_t n;
    bool joint;
    zraft_member members[ZRAFT_MAX_MEMBERS];
} zraft_membership;

/* Member with `id` or NULL. */
const zraft_member *zraft_membership_find(const zraft_membership *m,
                                          zraft_id id);
bool zraft_membership_is_voter(const zraft_membership *m, zraft_id id);
/* Size of the encoded form of `m`. */
size_t zraft_membership_encoded_len(const zraft_membership *m);
/* Writes the encoded form into `out` (at least encoded_len bytes). */
void zraft_membership_encode(const zraft_membership *m, unsigned char *out);
/* Parses an encoded configuration; ZRAFT_EMALFORMED on any inconsistency
 * (never reads past len). */
int zraft_membership_decode(const unsigned char *in, size_t len,
                            zraft_membership *out);

/* What a snapshot covers: every entry up to last_log_id, and the
 * configuration in force at that point. */
typedef struct {
    zraft_log_id last_log_id;
    zraft_membership membership;
} zraft_snapshot_meta;

#ifdef __cplusplus
}
#endif
#endif /* ZRAFT_TYPES_H */
