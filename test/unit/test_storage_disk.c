/* test_storage_disk.c - the durable storage: round trips, recovery from a
 * torn tail at every byte offset, refusal of corruption in the middle,
 * atomic metadata, snapshots, concurrent reads, sticky I/O errors, and
 * loss of exactly the unsynced suffix after a simulated power cut. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test/tmpdir.h"
#include "zraft_disk.h"

TestSuite(disk, .init = tmpdir_setup, .fini = tmpdir_teardown);

static zraft_storage *open_disk(uint64_t seg_bytes, int *err, char *why)
{
    zraft_disk_options o;
    zraft_disk_options_default(&o);
    o.segment_bytes = seg_bytes;
    return zraft_storage_disk_new(dir, &o, err, why, 256);
}

static zraft_storage *must_open(uint64_t seg_bytes)
{
    int err;
    char why[256];
    zraft_storage *s = open_disk(seg_bytes, &err, why);
    cr_assert_not_null(s, "open: %s (%s)", zraft_strerror(err), why);
    return s;
}

/* Entry i has term 1 + i/10 and payload "p<i>" repeated to i % 50 bytes. */
static void make(zraft_entry *e, uint64_t i)
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

static void append_range(zraft_storage *s, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i <= to; i++) {
        zraft_entry e;
        make(&e, i);
        cr_assert_eq(s->append(s->ctx, &e, 1), 0, "append %llu",
                     (unsigned long long)i);
        zraft_buf_unref(e.payload);
    }
    cr_assert_eq(s->sync(s->ctx), 0);
}

static void check_range(zraft_storage *s, uint64_t from, uint64_t to)
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

static char *last_segment(char *out, size_t cap)
{
    char logdir[128];
    snprintf(logdir, sizeof logdir, "%s/log", dir);
    FILE *p;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s | sort | tail -1", logdir);
    p = popen(cmd, "r");
    char name[64] = "";
    cr_assert_not_null(fgets(name, sizeof name, p));
    pclose(p);
    name[strcspn(name, "\n")] = '\0';
    snprintf(out, cap, "%s/%s", logdir, name);
    return out;
}

Test(disk, torn_tail_at_every_offset_keeps_exactly_complete_records)
{
    zraft_storage *s = must_open(1u << 20);
    append_range(s, 1, 20);
    zraft_storage_free(s);
    char path[256];
    last_segment(path, sizeof path);
    struct stat st;
    stat(path, &st);
    off_t full = st.st_size;
    /* The last record (index 20) is 32 + 20 bytes. */
    off_t rec = 32 + 20;
    unsigned char *copy = malloc((size_t)full);
    int fd = open(path, O_RDONLY);
    cr_assert_eq(read(fd, copy, (size_t)full), full);
    close(fd);
    for (off_t cut = full - rec; cut < full; cut++) {
        fd = open(path, O_WRONLY | O_TRUNC);
        cr_assert_eq(write(fd, copy, (size_t)cut), cut);
        close(fd);
        s = must_open(1u << 20);
        zraft_storage_state ls;
        s->load(s->ctx, &ls);
        cr_assert_eq(ls.last_log_id.index, 19, "cut at %lld kept %llu",
                     (long long)cut, (unsigned long long)ls.last_log_id.index);
        check_range(s, 1, 19);
        /* It appends again after the cut. */
        append_range(s, 20, 20);
        zraft_storage_free(s);
    }
    free(copy);
}

Test(disk, corrupt_record_in_the_middle_is_refused)
{
    zraft_storage *s = must_open(1u << 20);
    append_range(s, 1, 20);
    zraft_storage_free(s);
    char path[256];
    last_segment(path, sizeof path);
    /* Flip a payload byte of record 5 (offset of record 5 = sum of sizes). */
    off_t off = 0;
    for (uint64_t i = 1; i < 5; i++) {
        off += 32 + (off_t)(i % 50);
    }
    int fd = open(path, O_RDWR);
    unsigned char b;
    cr_assert_eq(pread(fd, &b, 1, off + 32), 1);
    b ^= 0xff;
    cr_assert_eq(pwrite(fd, &b, 1, off + 32), 1);
    close(fd);
    int err;
    char why[256];
    s = open_disk(1u << 20, &err, why);
    cr_assert_null(s);
    cr_assert_eq(err, ZRAFT_ECORRUPT);
    cr_assert(strstr(why, path) != NULL, "message names the file: %s", why);
    cr_assert(strstr(why, "offset") != NULL, "and the offset: %s", why);
}

Test(disk, metadata_survives_a_crash_between_write_and_rename)
{
    zraft_storage *s = must_open(1u << 20);
    cr_assert_eq(s->save_state(s->ctx, 7, 3, 0), 0);
    zraft_storage_free(s);
    /* A crash after writing the temp file, before the rename. */
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/meta.tmp", dir);
    FILE *f = fopen(tmp, "w");
    fputs("half-written garbage", f);
    fclose(f);
    s = must_open(1u << 20);
    zraft_storage_state st;
    s->load(s->ctx, &st);
    cr_assert_eq(st.term, 7);
    cr_assert_eq(st.voted_for, 3);
    cr_assert_eq(access(tmp, F_OK), -1, "temp file left behind");
    zraft_storage_free(s);
}

Test(disk, snapshot_save_load_and_reset)
{
    zraft_storage *s = must_open(1024);
    append_range(s, 1, 100);
    zraft_snapshot_meta m;
    memset(&m, 0, sizeof m);
    m.last_log_id = (zraft_log_id){10, 90};
    m.membership.n = 1;
    m.membership.members[0].id = 1;
    m.membership.members[0].roles = ZRAFT_ROLE_VOTER;
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
    volatile bool stop;
    uint64_t reads;
} reader;

static void *reader_main(void *p)
{
    reader *r = p;
    while (!r->stop) {
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
            cr_assert_eq(s->purge(s->ctx, i - 200), 0);
        }
    }
    r.stop = true;
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
