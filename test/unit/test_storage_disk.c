/* test_storage_disk.c - the durable storage: round trips, atomic
 * metadata, snapshots (never an older one over a newer), installing a
 * snapshot with a crash at every step, concurrent reads, sticky I/O errors,
 * large batches and short writes, and loss of exactly the unsynced suffix
 * after a simulated power cut. Recovery from damaged files is in
 * test_storage_recovery.c. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "test/unit/disk_fixture.h"

TestSuite(disk, .init = tmpdir_setup, .fini = tmpdir_teardown);

Test(disk, append_read_truncate_purge_across_segments)
{
    zraft_storage *s = must_open(1024);
    append_range(s, 1, 300);
    check_range(s, 1, 300);
    cr_assert_eq(s->truncate(s->ctx, 251), 0);
    zraft_entry e;
    size_t n = 1;
    cr_assert_eq(s->get(s->ctx, 251, 251, SIZE_MAX, &e, &n), ZRAFT_ENOTFOUND);
    append_range(s, 251, 320);
    cr_assert_eq(s->purge(s->ctx, 100), ZRAFT_EINVAL, "purged unsnapshotted");
    cr_assert_eq(snapshot_at(s, 100), 0);
    cr_assert_eq(s->purge(s->ctx, 100), 0);
    zraft_storage_state st;
    s->load(s->ctx, &st);
    cr_assert_leq(st.first_index, 101, "purged past the point asked");
    cr_assert_gt(st.first_index, 1, "purged nothing");
    n = 1;
    cr_assert_eq(s->get(s->ctx, 1, 1, SIZE_MAX, &e, &n), ZRAFT_ECOMPACTED);
    check_range(s, st.first_index, 320);
    zraft_storage_free(s);
    /* Reopen: the same log. */
    s = must_open(1024);
    zraft_storage_state st2;
    s->load(s->ctx, &st2);
    cr_assert_eq(st2.first_index, st.first_index);
    cr_assert_eq(st2.last_log_id.index, 320);
    check_range(s, st.first_index, 320);
    zraft_storage_free(s);
}

Test(disk, snapshot_save_load_and_reset)
{
    zraft_storage *s = must_open(1024);
    append_range(s, 1, 100);
    zraft_snapshot_meta m = fx_snap_meta(10, 90);
    zraft_buf *data = zraft_buf_new("state!", 6);
    cr_assert_eq(s->snapshot_save(s->ctx, &m, data), 0);
    zraft_buf_unref(data);
    zraft_storage_free(s);
    s = must_open(1024);
    zraft_snapshot_meta got;
    zraft_buf *d = NULL;
    cr_assert_eq(s->snapshot_load(s->ctx, &got, &d), 0);
    cr_assert_eq(got.last_log_id.index, 90);
    cr_assert_eq(got.membership.members[0].id, 1);
    cr_assert_eq(d->len, 6);
    cr_assert_eq(memcmp(d->data, "state!", 6), 0);
    zraft_buf_unref(d);
    /* Installing a snapshot from a leader discards the whole log. */
    m.last_log_id = (zraft_log_id){12, 500};
    data = zraft_buf_new("newer", 5);
    cr_assert_eq(s->snapshot_save(s->ctx, &m, data), 0);
    zraft_buf_unref(data);
    cr_assert_eq(s->reset(s->ctx, m.last_log_id), 0);
    zraft_entry e;
    make(&e, 501);
    cr_assert_eq(s->append(s->ctx, &e, 1), 0);
    zraft_buf_unref(e.payload);
    cr_assert_eq(s->sync(s->ctx), 0);
    zraft_storage_free(s);
    s = must_open(1024);
    zraft_storage_state st;
    s->load(s->ctx, &st);
    cr_assert_eq(st.first_index, 501);
    cr_assert_eq(st.last_log_id.index, 501);
    cr_assert_eq(st.snapshot.last_log_id.index, 500);
    zraft_storage_free(s);
}

typedef struct {
    zraft_storage *s;
    atomic_bool stop; /* set by the test's thread, read by the reader's */
    uint64_t reads;
} reader;

static void *reader_main(void *p)
{
    reader *r = p;
    while (!atomic_load(&r->stop)) {
        zraft_storage_state st;
        r->s->load(r->s->ctx, &st);
        if (st.last_log_id.index < st.first_index) {
            continue;
        }
        uint64_t i = st.first_index;
        zraft_entry out[8];
        size_t n = 8;
        int rv =
            r->s->get(r->s->ctx, i, st.last_log_id.index, SIZE_MAX, out, &n);
        if (rv == ZRAFT_ECOMPACTED) {
            continue; /* purged meanwhile */
        }
        cr_assert_eq(rv, 0);
        for (size_t k = 0; k < n; k++) {
            zraft_entry want;
            make(&want, i + k);
            cr_assert_eq(out[k].id.term, want.id.term);
            cr_assert_eq(out[k].payload->len, want.payload->len);
            cr_assert_eq(memcmp(out[k].payload->data, want.payload->data,
                                want.payload->len),
                         0);
            zraft_buf_unref(want.payload);
            zraft_buf_unref(out[k].payload);
        }
        r->reads++;
    }
    return NULL;
}

Test(disk, reads_run_concurrently_with_appends_and_purges)
{
    zraft_storage *s = must_open(2048);
    append_range(s, 1, 10);
    reader r = {s, false, 0};
    pthread_t t;
    pthread_create(&t, NULL, reader_main, &r);
    for (uint64_t i = 11; i <= 3000; i += 10) {
        append_range(s, i, i + 9);
        if (i % 500 == 1) {
            cr_assert_eq(snapshot_at(s, i - 200), 0);
            cr_assert_eq(s->purge(s->ctx, i - 200), 0);
        }
    }
    atomic_store(&r.stop, true);
    pthread_join(t, NULL);
    cr_assert_gt(r.reads, 0);
    zraft_storage_free(s);
}

Test(disk, io_error_is_sticky_and_durable_data_stays)
{
    zraft_disk_options o;
    zraft_disk_options_default(&o);
    o.fail_sync_at = 2;
    int err;
    zraft_storage *s = zraft_storage_disk_new(dir, &o, &err, NULL, 0);
    cr_assert_not_null(s);
    append_range(s, 1, 10); /* sync 1 succeeds */
    zraft_entry e;
    make(&e, 11);
    cr_assert_eq(s->append(s->ctx, &e, 1), 0);
    cr_assert_eq(s->sync(s->ctx), ZRAFT_EIO);
    cr_assert_eq(s->append(s->ctx, &e, 1), ZRAFT_EIO, "error not sticky");
    cr_assert_eq(s->sync(s->ctx), ZRAFT_EIO);
    cr_assert_eq(s->save_state(s->ctx, 9, 1, 0), ZRAFT_EIO);
    zraft_buf_unref(e.payload);
    check_range(s, 1, 10);
    zraft_storage_free(s);
}

Test(disk, power_cut_loses_exactly_the_unsynced_suffix)
{
    zraft_disk_options o;
    zraft_disk_options_default(&o);
    o.crash_on_destroy = true;
    int err;
    zraft_storage *s = zraft_storage_disk_new(dir, &o, &err, NULL, 0);
    append_range(s, 1, 50); /* synced */
    for (uint64_t i = 51; i <= 60; i++) {
        zraft_entry e;
        make(&e, i);
        cr_assert_eq(s->append(s->ctx, &e, 1), 0);
        zraft_buf_unref(e.payload);
    }
    zraft_storage_free(s); /* no sync: 51..60 are lost */
    s = must_open(1u << 20);
    zraft_storage_state st;
    s->load(s->ctx, &st);
    cr_assert_eq(st.last_log_id.index, 50);
    check_range(s, 1, 50);
    zraft_storage_free(s);
}

/* Issue 10: a batch of more than 511 records whose first entry has no
 * payload filled `struct iovec iov[1024]` one past its end (the header of
 * the 512th record at iov[1023], its payload at iov[1024]), smashing the
 * log writer's stack on every large catch-up. */
Test(disk, large_batch_with_an_empty_entry_is_written_whole)
{
    enum { N = 3000 };
    zraft_storage *s = must_open(1u << 20);
    zraft_entry *ents = calloc(N, sizeof(*ents));
    cr_assert_not_null(ents);
    for (uint64_t i = 1; i <= N; i++) {
        make(&ents[i - 1], i);
    }
    /* A new leader's blank entry first: odd iovec count from then on. */
    zraft_buf_unref(ents[0].payload);
    ents[0].payload = NULL;
    ents[0].type = ZRAFT_ENTRY_BLANK;
    cr_assert_eq(s->append(s->ctx, ents, N), 0);
    cr_assert_eq(s->sync(s->ctx), 0);
    for (int round = 0; round < 2; round++) {
        zraft_entry e;
        size_t n = 1;
        cr_assert_eq(s->get(s->ctx, 1, 1, SIZE_MAX, &e, &n), 0);
        cr_assert_eq(e.type, ZRAFT_ENTRY_BLANK);
        cr_assert_null(e.payload);
        check_range(s, 2, N);
        zraft_storage_free(s);
        s = must_open(1u << 20); /* and the same after recovery */
    }
    zraft_storage_state st;
    s->load(s->ctx, &st);
    cr_assert_eq(st.last_log_id.index, N);
    zraft_storage_free(s);
    for (size_t i = 0; i < N; i++) {
        zraft_buf_unref(ents[i].payload);
    }
    free(ents);
}

/* pwritev may write less than asked; the append resumes mid-iovec and
 * across iovecs until every byte is written. */
Test(disk, short_writes_are_resumed)
{
    zraft_disk_options o;
    zraft_disk_options_default(&o);
    o.max_write_bytes = 7; /* cuts headers and payloads alike */
    int err;
    zraft_storage *s = zraft_storage_disk_new(dir, &o, &err, NULL, 0);
    cr_assert_not_null(s);
    zraft_entry ents[200];
    for (uint64_t i = 1; i <= 200; i++) {
        make(&ents[i - 1], i);
    }
    cr_assert_eq(s->append(s->ctx, ents, 200), 0);
    cr_assert_eq(s->sync(s->ctx), 0);
    for (size_t i = 0; i < 200; i++) {
        zraft_buf_unref(ents[i].payload);
    }
    check_range(s, 1, 200);
    zraft_storage_free(s);
    s = must_open(1u << 20);
    check_range(s, 1, 200);
    zraft_storage_free(s);
}

static void expect_snap(zraft_storage *s, uint64_t index, const char *data)
{
    zraft_snapshot_meta m;
    zraft_buf *b = NULL;
    cr_assert_eq(s->snapshot_load(s->ctx, &m, &b), 0);
    cr_assert_eq(m.last_log_id.index, index, "snapshot at %llu, want %llu",
                 (unsigned long long)m.last_log_id.index,
                 (unsigned long long)index);
    cr_assert_eq(b->len, strlen(data));
    cr_assert_eq(memcmp(b->data, data, b->len), 0);
    zraft_buf_unref(b);
    zraft_storage_state st;
    s->load(s->ctx, &st);
    cr_assert(st.has_snapshot);
    cr_assert_eq(st.snapshot.last_log_id.index, index);
}

/* Issue 10 item 3: the state machine's own snapshot (built at what it had
 * applied) loses the race with the log writer installing the leader's newer
 * one. Saved last, it must not replace the newer one. */
static void older_snapshot_never_replaces_a_newer_one(zraft_storage *s)
{
    cr_assert_eq(fx_save_snap(s, 3, 500, "installed"), 0);
    cr_assert_eq(fx_save_snap(s, 2, 120, "local"), ZRAFT_ESUPERSEDED);
    expect_snap(s, 500, "installed");
    /* The same index replaces it (the same committed state). */
    cr_assert_eq(fx_save_snap(s, 3, 500, "again"), 0);
    expect_snap(s, 500, "again");
    cr_assert_eq(fx_save_snap(s, 4, 600, "newer"), 0);
    expect_snap(s, 600, "newer");
}

Test(disk, older_snapshot_never_replaces_a_newer_one)
{
    zraft_storage *s = must_open(1u << 20);
    older_snapshot_never_replaces_a_newer_one(s);
    zraft_storage_free(s);
    s = must_open(1u << 20);
    expect_snap(s, 600, "newer");
    cr_assert_eq(fx_save_snap(s, 2, 120, "local"), ZRAFT_ESUPERSEDED);
    zraft_storage_free(s);
    s = must_open(1u << 20);
    expect_snap(s, 600, "newer");
    zraft_storage_free(s);
}

Test(disk, memory_store_never_replaces_a_newer_snapshot)
{
    zraft_storage *s = zraft_storage_memory_new();
    older_snapshot_never_replaces_a_newer_one(s);
    zraft_storage_free(s);
}

/* Issue 10 item 7: installing a snapshot (save, then reset) with a crash
 * after every durable step of the reset: the node starts again with the
 * snapshot and an empty log after it, and appends from there. The old
 * reset deleted segments, oldest first, before recording the purge point:
 * a crash in between left a log with a hole after the snapshot, which
 * recovery refused. */
Test(disk, install_snapshot_survives_a_crash_at_every_step)
{
    for (uint32_t stop = 1; stop <= 12; stop++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf %s/log %s/meta %s/snapshot", dir, dir,
                 dir);
        cr_assert_eq(system(cmd), 0);
        zraft_disk_options o = fx_opts(2048, false);
        o.fsync = false; /* the directory is what a crash leaves */
        o.crash_reset_at = stop;
        zraft_storage *s = fx_must_open(&o);
        append_range(s, 1, 300); /* 9 segments of 2 KiB */
        cr_assert_eq(fx_save_snap(s, 7, 150, "leader's"), 0);
        int rv = s->reset(s->ctx, (zraft_log_id){7, 150});
        cr_assert(rv == (stop <= 10 ? ZRAFT_EIO : 0), "step %u: %s", stop,
                  zraft_strerror(rv));
        zraft_storage_free(s); /* the crash */
        o.crash_reset_at = 0;
        s = fx_must_open(&o);
        zraft_storage_state st;
        s->load(s->ctx, &st);
        cr_assert_eq(st.first_index, 151, "crash after step %u: first %llu",
                     stop, (unsigned long long)st.first_index);
        cr_assert_eq(st.last_log_id.index, 150);
        cr_assert_eq(st.last_log_id.term, 7);
        cr_assert_geq(st.committed, 150);
        expect_snap(s, 150, "leader's");
        zraft_entry e;
        make(&e, 151);
        cr_assert_eq(s->append(s->ctx, &e, 1), 0);
        zraft_buf_unref(e.payload);
        cr_assert_eq(s->sync(s->ctx), 0);
        zraft_storage_free(s);
        s = fx_must_open(&o);
        cr_assert_eq(last_index(s), 151);
        check_range(s, 151, 151);
        zraft_storage_free(s);
    }
}

Test(disk, reset_requires_the_snapshot_first)
{
    zraft_storage *s = must_open(1u << 20);
    append_range(s, 1, 10);
    cr_assert_eq(s->reset(s->ctx, (zraft_log_id){9, 100}), ZRAFT_EINVAL);
    check_range(s, 1, 10);
    zraft_storage_free(s);
    s = zraft_storage_memory_new();
    cr_assert_eq(s->reset(s->ctx, (zraft_log_id){9, 100}), ZRAFT_EINVAL);
    zraft_storage_free(s);
}

typedef struct {
    zraft_storage *s;
    _Atomic bool stop;
    uint64_t probes;
} prober;

/* Asks for purged entries while snapshots are saved: get() reads the
 * snapshot's index to tell "compacted" from "not found", under its lock. */
static void *probe_main(void *p)
{
    prober *r = p;
    while (!atomic_load(&r->stop)) {
        zraft_entry e;
        size_t n = 1;
        int rv = r->s->get(r->s->ctx, 1, 1, SIZE_MAX, &e, &n);
        cr_assert(rv == ZRAFT_ECOMPACTED, "get 1: %s", zraft_strerror(rv));
        r->probes++;
    }
    return NULL;
}

Test(disk, get_reads_the_snapshot_index_under_its_lock)
{
    zraft_disk_options o = fx_opts(1u << 20, false);
    o.fsync = false;
    zraft_storage *s = fx_must_open(&o);
    cr_assert_eq(fx_save_snap(s, 1, 10, "s"), 0);
    cr_assert_eq(s->reset(s->ctx, (zraft_log_id){1, 10}), 0);
    prober r = {s, false, 0};
    pthread_t t;
    pthread_create(&t, NULL, probe_main, &r);
    for (uint64_t i = 11; i < 200; i++) {
        cr_assert_eq(fx_save_snap(s, 1, i, "s"), 0);
    }
    atomic_store(&r.stop, true);
    pthread_join(t, NULL);
    cr_assert_gt(r.probes, 0);
    zraft_storage_free(s);
}

/* ------------------------------------------------------- preallocation */

/* The newest segment is kept prealloc_bytes past its records, in zeros;
 * appends write over them, and a reopen reads the zeros as the end. */
Test(disk, newest_segment_is_zero_filled_ahead)
{
    zraft_disk_options o = fx_opts(64u << 20, false);
    o.prealloc_bytes = 65536;
    zraft_storage *s = fx_must_open(&o);
    append_range(s, 1, 1);
    char path[256];
    seg_path(path, sizeof path, 1);
    off_t filled = rec_off(1, 2) + 65536; /* filled after record 1 */
    cr_assert_eq(file_size(path), filled);
    /* Topped up only when less than half is left. */
    append_range(s, 2, 30);
    cr_assert_eq(file_size(path), filled);
    unsigned char zero[64] = {0}, got[64];
    int fd = open(path, O_RDONLY);
    cr_assert_eq(pread(fd, got, sizeof got, rec_off(1, 31)), 64);
    close(fd);
    cr_assert_eq(memcmp(got, zero, sizeof got), 0, "zeros after the records");
    /* About 55 KiB more: topped up once, and never less than half left.
     * At most one top-up per 250 ms (PREALLOC_EVERY_US): the pause makes
     * this one due whatever the machine's speed. */
    usleep(300000);
    append_range(s, 31, 1000);
    off_t now = file_size(path), end = rec_off(1, 1001);
    cr_assert_gt(now, filled, "topped up");
    cr_assert(now - end >= 32768 && now - end <= 65536,
              "%lld zero bytes after the records", (long long)(now - end));
    zraft_storage_free(s);
    s = fx_must_open(&o);
    cr_assert_eq(last_index(s), 1000);
    check_range(s, 1, 1000);
    append_range(s, 1001, 1010);
    zraft_storage_free(s);
    s = fx_must_open(&o);
    check_range(s, 1, 1010);
    zraft_storage_free(s);
}

/* Only the newest segment may end in zeros: a segment is cut to its
 * records before the next one starts (recovery refuses damage in older
 * segments, so a reopen proves it too). */
Test(disk, a_finished_segment_ends_at_its_last_record)
{
    zraft_disk_options o = fx_opts(1024, false);
    o.prealloc_bytes = 4096;
    zraft_storage *s = fx_must_open(&o);
    for (uint64_t i = 1; i <= 200; i += 10) {
        append_range(s, i, i + 9);
    }
    zraft_storage_state st;
    s->load(s->ctx, &st);
    zraft_storage_free(s);
    /* Walk the segments: each older one holds whole records only. */
    uint64_t first = 1;
    int segs = 0;
    char path[256];
    while (first <= 200) {
        seg_path(path, sizeof path, first);
        off_t size = file_size(path);
        cr_assert_gt(size, 0, "segment %llu", (unsigned long long)first);
        uint64_t i = first;
        while (rec_off(first, i) < size && i <= 200) {
            i++;
        }
        if (i <= 200) {
            cr_assert_eq(rec_off(first, i), size,
                         "segment %llu ends inside or after record %llu",
                         (unsigned long long)first, (unsigned long long)i);
        }
        first = i;
        segs++;
    }
    cr_assert_gt(segs, 2);
    s = fx_must_open(&o);
    check_range(s, 1, 200);
    zraft_storage_free(s);
}

/* A power cut after the zeros were synced but not the records written over
 * them: the log keeps what was synced, quietly, and goes on after it. */
Test(disk, power_cut_over_preallocated_zeros_keeps_the_synced_log)
{
    zraft_disk_options o = fx_opts(64u << 20, true);
    o.prealloc_bytes = 65536;
    o.fsync = false; /* the power cut is simulated */
    zraft_storage *s = fx_must_open(&o);
    append_range(s, 1, 10);
    append_nosync(s, 11, 20);
    char path[256];
    seg_path(path, sizeof path, 1);
    off_t full = file_size(path);
    zraft_storage_free(s); /* cut at the end of 10 */
    off_t from = rec_off(1, 11);
    cr_assert_eq(file_size(path), from);
    poke_zeros(path, from, (size_t)(full - from)); /* the zeros landed */
    s = fx_must_open(&o);
    cr_assert_eq(last_index(s), 10);
    cr_assert_eq(file_size(path), full, "zeros kept for the next appends");
    append_range(s, 11, 15);
    zraft_storage_free(s);
    s = fx_must_open(&o);
    check_range(s, 1, 15);
    zraft_storage_free(s);
}

/* Zeros after the records of a segment that is already full (ext4 after a
 * crash: the size extended, the data never landed), kept by recovery: the
 * next append starts a new segment, and this one must be cut to its
 * records first (recovery refuses damage in any segment but the last). */
Test(disk, a_recovered_zero_tail_is_cut_when_the_next_segment_starts)
{
    zraft_disk_options o = fx_opts(1024, false);
    o.prealloc_bytes = 0; /* the zeros are the test's own */
    zraft_storage *s = fx_must_open(&o);
    uint64_t i = 1;
    while (rec_off(1, i) < 1024) {
        append_range(s, i, i);
        i++;
    }
    zraft_storage_free(s);
    char path[256];
    seg_path(path, sizeof path, 1);
    off_t end = file_size(path);
    cr_assert_eq(end, rec_off(1, i));
    poke_zeros(path, end, 4096);
    s = fx_must_open(&o);
    cr_assert_eq(last_index(s), i - 1);
    cr_assert_eq(file_size(path), end + 4096, "recovery keeps the zeros");
    append_range(s, i, i + 5); /* a new segment starts */
    zraft_storage_free(s);
    cr_assert_eq(file_size(path), end, "segment 1 ends at its records");
    s = fx_must_open(&o);
    check_range(s, 1, i + 5);
    zraft_storage_free(s);
}

/* A fill the file system refuses (here EFBIG, from RLIMIT_FSIZE; ENOSPC
 * and EDQUOT alike) is not an error: the appends go on into the zeros that
 * landed and past them, and the log reopens whole. */
Test(disk, a_fill_without_room_is_not_an_error)
{
    signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of the signal */
    zraft_disk_options o = fx_opts(64u << 20, false);
    o.prealloc_bytes = 65536;
    zraft_storage *s = fx_must_open(&o);
    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 20000;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    append_range(s, 1, 1);
    char path[256];
    seg_path(path, sizeof path, 1);
    cr_assert_eq(file_size(path), 20000, "the fill stopped at the limit");
    append_range(s, 2, 100); /* into the zeros, then past them */
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    append_range(s, 101, 600);
    cr_assert_gt(rec_off(1, 601), 20000);
    zraft_storage_free(s);
    s = fx_must_open(&o);
    cr_assert_eq(last_index(s), 600);
    check_range(s, 1, 600);
    zraft_storage_free(s);
}
