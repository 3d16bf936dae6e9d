/* disk_fixture.h - helpers of the disk storage suites (test_storage_*.c):
 * opening a store in the test's scratch directory, entries with a payload
 * derived from their index, appending and checking ranges of them, and
 * poking at segment files. Header-only; include after test/tmpdir.h. */
#ifndef ZRAFT_TEST_DISK_FIXTURE_H
#define ZRAFT_TEST_DISK_FIXTURE_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test/tmpdir.h"
#include "zraft_disk.h"

/* Options with the given segment size; power cuts on destroy if `crash`. */
static inline zraft_disk_options fx_opts(uint64_t seg_bytes, bool crash)
{
    zraft_disk_options o;
    zraft_disk_options_default(&o);
    o.segment_bytes = seg_bytes;
    o.crash_on_destroy = crash;
    return o;
}

static inline zraft_storage *fx_open(const zraft_disk_options *o, int *err,
                                     char *why)
{
    return zraft_storage_disk_new(dir, o, err, why, 256);
}

static inline zraft_storage *fx_must_open(const zraft_disk_options *o)
{
    int err;
    char why[256];
    zraft_storage *s = fx_open(o, &err, why);
    cr_assert_not_null(s, "open: %s (%s)", zraft_strerror(err), why);
    return s;
}

static inline zraft_storage *must_open(uint64_t seg_bytes)
{
    zraft_disk_options o = fx_opts(seg_bytes, false);
    return fx_must_open(&o);
}

/* Entry i has term 1 + i/10 and i % 50 payload bytes. */
static inline void make(zraft_entry *e, uint64_t i)
{
    size_t len = (size_t)(i % 50);
    char buf[64];
    for (size_t k = 0; k < len; k++) {
        buf[k] = (char)('a' + (i + k) % 26);
    }
    e->id.term = 1 + i / 10;
    e->id.index = i;
    e->type = ZRAFT_ENTRY_NORMAL;
    e->payload = zraft_buf_new(buf, len);
}

/* Size of entry i's record. */
static inline off_t rec_size(uint64_t i)
{
    return 32 + (off_t)(i % 50);
}

/* Offset of record i in the segment that starts at `first`. */
static inline off_t rec_off(uint64_t first, uint64_t i)
{
    off_t off = 0;
    for (uint64_t k = first; k < i; k++) {
        off += rec_size(k);
    }
    return off;
}

static inline void append_nosync(zraft_storage *s, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i <= to; i++) {
        zraft_entry e;
        make(&e, i);
        cr_assert_eq(s->append(s->ctx, &e, 1), 0, "append %llu",
                     (unsigned long long)i);
        zraft_buf_unref(e.payload);
    }
}

/* Appends [from, to] one by one, then one sync. */
static inline void append_range(zraft_storage *s, uint64_t from, uint64_t to)
{
    append_nosync(s, from, to);
    cr_assert_eq(s->sync(s->ctx), 0);
}

/* Appends [from, to], each entry synced before the next is written. */
static inline void append_each_synced(zraft_storage *s, uint64_t from,
                                      uint64_t to)
{
    for (uint64_t i = from; i <= to; i++) {
        append_range(s, i, i);
    }
}

static inline void check_range(zraft_storage *s, uint64_t from, uint64_t to)
{
    uint64_t i = from;
    while (i <= to) {
        zraft_entry out[16];
        size_t n = 16;
        cr_assert_eq(s->get(s->ctx, i, to, SIZE_MAX, out, &n), 0, "get %llu",
                     (unsigned long long)i);
        cr_assert_gt(n, 0);
        for (size_t k = 0; k < n; k++, i++) {
            zraft_entry want;
            make(&want, i);
            cr_assert_eq(out[k].id.index, i);
            cr_assert_eq(out[k].id.term, want.id.term);
            cr_assert_eq(out[k].payload->len, want.payload->len);
            cr_assert_eq(memcmp(out[k].payload->data, want.payload->data,
                                want.payload->len),
                         0);
            zraft_buf_unref(want.payload);
            zraft_buf_unref(out[k].payload);
        }
    }
}

/* The metadata of a snapshot at {term, index} of a one-voter cluster
 * (node 1). */
static inline zraft_snapshot_meta fx_snap_meta(uint64_t term, uint64_t index)
{
    zraft_snapshot_meta m;
    memset(&m, 0, sizeof m);
    m.last_log_id = (zraft_log_id){term, index};
    m.membership.n = 1;
    m.membership.members[0].id = 1;
    m.membership.members[0].roles = ZRAFT_ROLE_VOTER;
    return m;
}

/* Saves a snapshot at {term, index} (fx_snap_meta) holding the string
 * `data`; returns snapshot_save's result. */
static inline int fx_save_snap(zraft_storage *s, uint64_t term, uint64_t index,
                               const char *data)
{
    zraft_snapshot_meta m = fx_snap_meta(term, index);
    zraft_buf *b = zraft_buf_new(data, strlen(data));
    int rv = s->snapshot_save(s->ctx, &m, b);
    zraft_buf_unref(b);
    return rv;
}

/* Saves a snapshot at entry `index` (as make() made it), as the state
 * machine does before a purge. */
static inline int snapshot_at(zraft_storage *s, uint64_t index)
{
    return fx_save_snap(s, 1 + index / 10, index, "state");
}

static inline uint64_t last_index(zraft_storage *s)
{
    zraft_storage_state st;
    s->load(s->ctx, &st);
    return st.last_log_id.index;
}

/* DIR/log/<first>.seg */
static inline char *seg_path(char *out, size_t cap, uint64_t first)
{
    snprintf(out, cap, "%s/log/%020llu.seg", dir, (unsigned long long)first);
    return out;
}

static inline off_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s", path);
    return st.st_size;
}

/* Overwrites n bytes at off (extending the file if needed). */
static inline void poke(const char *path, off_t off, const void *b, size_t n)
{
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0, "open %s", path);
    cr_assert_eq(pwrite(fd, b, n, off), (ssize_t)n);
    close(fd);
}

/* Writes n zero bytes at off. */
static inline void poke_zeros(const char *path, off_t off, size_t n)
{
    void *z = calloc(1, n);
    poke(path, off, z, n);
    free(z);
}

/* Reads the whole file; caller frees. */
static inline unsigned char *slurp(const char *path, off_t *len)
{
    *len = file_size(path);
    unsigned char *b = malloc((size_t)*len + 1);
    int fd = open(path, O_RDONLY);
    cr_assert_eq(read(fd, b, (size_t)*len), *len);
    close(fd);
    return b;
}

/* Replaces the file's content by b[0, n). */
static inline void spill(const char *path, const unsigned char *b, off_t n)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0644);
    cr_assert_eq(write(fd, b, (size_t)n), n);
    close(fd);
}

/* Opens expecting ZRAFT_ECORRUPT with a message naming `path` and "offset"
 * (when off >= 0, the offset itself); returns the message. */
static inline void must_refuse(const zraft_disk_options *o, const char *path,
                               off_t off, char *why)
{
    int err;
    zraft_storage *s = fx_open(o, &err, why);
    cr_assert_null(s, "opened a corrupt log");
    cr_assert_eq(err, ZRAFT_ECORRUPT, "%s", zraft_strerror(err));
    cr_assert(strstr(why, path) != NULL, "message names the file: %s", why);
    if (off >= 0) {
        char at[64];
        snprintf(at, sizeof at, "offset %lld", (long long)off);
        cr_assert(strstr(why, at) != NULL, "message names %s: %s", at, why);
    }
}

#endif /* ZRAFT_TEST_DISK_FIXTURE_H */
