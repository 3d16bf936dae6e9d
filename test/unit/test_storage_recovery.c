/* test_storage_recovery.c - recovery of the disk storage from crafted
 * damage (docs/storage.md "Recovery"): what a crash can leave after the
 * last sync is cut, anything else is refused with the file and offset.
 *
 * Each case builds a log, damages one segment file as a crash or a bad
 * disk would, and asserts the outcome: how far the log is kept, or the
 * refusal and its message. Records are laid out as disk_fixture.h's make()
 * builds them: record i is 32 + i % 50 bytes. */
#include <criterion/criterion.h>

#include "storage/crc32c.h"
#include "test/unit/disk_fixture.h"

TestSuite(recovery, .init = tmpdir_setup, .fini = tmpdir_teardown);

/* A torn write: record 20 was being written, never synced, when the power
 * went; the file ends anywhere inside it. The complete records stay. */
Test(recovery, torn_tail_at_every_offset_keeps_exactly_complete_records)
{
    zraft_disk_options o = fx_opts(1u << 20, true);
    o.fsync = false;      /* fast: the power cut is simulated */
    o.prealloc_bytes = 0; /* the file ends with record 20 */
    zraft_storage *s = fx_must_open(&o);
    append_range(s, 1, 19);
    append_nosync(s, 20, 20);
    char path[256];
    seg_path(path, sizeof path, 1);
    off_t full;
    unsigned char *copy = slurp(path, &full); /* 20 in the page cache */
    zraft_storage_free(s);                    /* power cut: 20 is gone */
    off_t start = rec_off(1, 20);
    cr_assert_eq(full, start + rec_size(20));
    for (off_t cut = start + 1; cut < full; cut++) {
        spill(path, copy, cut);
        s = fx_must_open(&o);
        cr_assert_eq(last_index(s), 19, "cut at %lld kept %llu", (long long)cut,
                     (unsigned long long)last_index(s));
        check_range(s, 1, 19);
        cr_assert_eq(file_size(path), start, "tail not cut");
        /* It appends again after the cut. */
        append_range(s, 20, 20);
        check_range(s, 1, 20);
        zraft_storage_free(s);
    }
    free(copy);
}

/* A flipped payload byte of a record that a later sync covered (the clean
 * close recorded the synced mark). */
Test(recovery, bad_crc_in_the_middle_is_refused)
{
    zraft_storage *s = must_open(1u << 20);
    append_range(s, 1, 20);
    zraft_storage_free(s);
    char path[256];
    seg_path(path, sizeof path, 1);
    off_t off = rec_off(1, 5);
    unsigned char b = 0x5a;
    poke(path, off + 32 + 1, &b, 1);
    char why[256];
    zraft_disk_options o = fx_opts(1u << 20, false);
    must_refuse(&o, path, off, why);
    cr_assert(strstr(why, "index 5") != NULL, "names the index: %s", why);
}

/* The same damage in the last group of records, written by one batch and
 * synced once, after a power cut: nothing says whether that sync happened,
 * but valid records after the bad one, with no lost page between, mean
 * the bytes did reach the disk: corruption, not a torn write. */
Test(recovery, bad_crc_followed_by_valid_records_is_refused_after_a_crash)
{
    zraft_disk_options o = fx_opts(1u << 20, true);
    zraft_storage *s = fx_must_open(&o);
    append_range(s, 1, 20);
    zraft_storage_free(s);
    char path[256];
    seg_path(path, sizeof path, 1);
    off_t off = rec_off(1, 5);
    unsigned char b = 0x5a;
    poke(path, off + 32 + 1, &b, 1);
    char why[256];
    must_refuse(&o, path, off, why);
    cr_assert(strstr(why, "followed by a valid record") != NULL, "%s", why);
}

/* A bad length field in the last segment, in a record that later ones
 * vouch for (each written after the previous sync). The old recovery saw a
 * record running past the end of the file, called it torn and silently cut
 * it and every record after it. */
Test(recovery, bad_length_in_the_last_segment_does_not_cut_synced_records)
{
    zraft_disk_options o = fx_opts(1u << 20, true);
    zraft_storage *s = fx_must_open(&o);
    append_each_synced(s, 1, 20);
    zraft_storage_free(s); /* a power cut: no clean close */
    char path[256];
    seg_path(path, sizeof path, 1);
    off_t full = file_size(path);
    unsigned char len[4] = {0x00, 0xff, 0xff, 0x7f};
    for (uint64_t i = 10; i <= 19; i++) {
        off_t off = rec_off(1, i);
        unsigned char keep[4];
        int fd = open(path, O_RDONLY);
        cr_assert_eq(pread(fd, keep, 4, off), 4);
        close(fd);
        poke(path, off, len, 4);
        char why[256];
        must_refuse(&o, path, off, why);
        cr_assert(strstr(why, "were synced") != NULL, "%s", why);
        cr_assert_eq(file_size(path), full, "the file was cut");
        poke(path, off, keep, 4);
    }
    s = fx_must_open(&o);
    check_range(s, 1, 20);
    zraft_storage_free(s);
}

/* The last record itself: after a clean close meta says it was synced, so
 * a bad length there is corruption too. */
Test(recovery, bad_length_in_the_last_record_after_a_clean_close_is_refused)
{
    zraft_storage *s = must_open(1u << 20);
    append_range(s, 1, 20);
    zraft_storage_free(s);
    char path[256];
    seg_path(path, sizeof path, 1);
    off_t off = rec_off(1, 20);
    unsigned char len[4] = {0x00, 0xff, 0xff, 0x7f};
    poke(path, off, len, 4);
    char why[256];
    zraft_disk_options o = fx_opts(1u << 20, false);
    must_refuse(&o, path, off, why);
    cr_assert(strstr(why, "up to 20 were synced") != NULL, "%s", why);
}

/* The limit of what a file can say: after a power cut, the newest group of
 * records (here the last record, synced alone) has no later record or meta
 * to vouch for it. Damage there looks exactly like a torn write and is cut
 * (reported on stderr); everything before it stays. */
Test(recovery, bad_length_in_an_unvouched_last_record_is_cut)
{
    zraft_disk_options o = fx_opts(1u << 20, true);
    zraft_storage *s = fx_must_open(&o);
    append_each_synced(s, 1, 20);
    zraft_storage_free(s);
    char path[256];
    seg_path(path, sizeof path, 1);
    off_t off = rec_off(1, 20);
    unsigned char len[4] = {0x00, 0xff, 0xff, 0x7f};
    poke(path, off, len, 4);
    s = fx_must_open(&o);
    cr_assert_eq(last_index(s), 19);
    check_range(s, 1, 19);
    cr_assert_eq(file_size(path), off);
    zraft_storage_free(s);
}

/* Zeros after the last record (a preallocated end, or appends that never
 * reached the disk over one): the log ends at the last record, the zeros
 * stay, and the next appends write over them. */
Test(recovery, zeros_at_the_end_end_the_log)
{
    zraft_disk_options o = fx_opts(1u << 20, true);
    o.prealloc_bytes = 0; /* the zeros are the test's own */
    zraft_storage *s = fx_must_open(&o);
    append_range(s, 1, 20);
    zraft_storage_free(s);
    char path[256];
    seg_path(path, sizeof path, 1);
    off_t end = file_size(path);
    cr_assert_eq(end, rec_off(1, 21));
    poke_zeros(path, end, 8192);
    s = fx_must_open(&o);
    cr_assert_eq(last_index(s), 20);
    cr_assert_eq(file_size(path), end + 8192, "the zeros are kept");
    append_range(s, 21, 25);
    cr_assert_eq(file_size(path), end + 8192, "21..25 went over the zeros");
    zraft_storage_free(s);
    s = fx_must_open(&o);
    check_range(s, 1, 25);
    zraft_storage_free(s);
}

/* Zeros from a synced record to the end (meta vouches for 1..20): not a
 * preallocated end but lost data, refused. */
Test(recovery, zeros_to_the_end_over_synced_records_are_refused)
{
    zraft_disk_options o = fx_opts(1u << 20, false);
    zraft_storage *s = fx_must_open(&o);
    append_range(s, 1, 20);
    zraft_storage_free(s); /* a clean close records the synced mark */
    char path[256];
    seg_path(path, sizeof path, 1);
    off_t off = rec_off(1, 15);
    poke_zeros(path, off, (size_t)(file_size(path) - off));
    char why[256];
    must_refuse(&o, path, off, why);
    cr_assert(strstr(why, "index 15") != NULL, "names the index: %s", why);
}

/* Pages written back out of order: of an unsynced batch (11..20) the page
 * holding 11..14 never landed (zeros) but the one after did. A torn write:
 * cut at 11, the later records with it (never synced either). */
Test(recovery, lost_page_before_valid_unsynced_records_is_cut)
{
    zraft_disk_options o = fx_opts(1u << 20, true);
    zraft_storage *s = fx_must_open(&o);
    append_range(s, 1, 10);
    append_nosync(s, 11, 20);
    char path[256];
    seg_path(path, sizeof path, 1);
    off_t full;
    unsigned char *copy = slurp(path, &full);
    zraft_storage_free(s);
    off_t from = rec_off(1, 11), to = rec_off(1, 15);
    memset(copy + from, 0, (size_t)(to - from));
    spill(path, copy, full);
    free(copy);
    s = fx_must_open(&o);
    cr_assert_eq(last_index(s), 10);
    check_range(s, 1, 10);
    cr_assert_eq(file_size(path), from);
    zraft_storage_free(s);
}

/* Zeros where synced records were (later records vouch for them): not a
 * crash, refused. */
Test(recovery, zeroed_synced_records_are_refused)
{
    zraft_disk_options o = fx_opts(1u << 20, true);
    zraft_storage *s = fx_must_open(&o);
    append_each_synced(s, 1, 20);
    zraft_storage_free(s);
    char path[256];
    seg_path(path, sizeof path, 1);
    off_t off = rec_off(1, 5);
    poke_zeros(path, off, (size_t)(rec_off(1, 7) - off));
    char why[256];
    must_refuse(&o, path, off, why);
}

/* A segment other than the last was synced before the next one started:
 * damage anywhere in it is corruption, even at its very end. */
Test(recovery, damage_in_an_older_segment_is_refused)
{
    zraft_disk_options o = fx_opts(1024, true);
    zraft_storage *s = fx_must_open(&o);
    append_range(s, 1, 100);
    zraft_storage_free(s);
    char path[256];
    seg_path(path, sizeof path, 1);
    off_t size = file_size(path);
    cr_assert_eq(truncate(path, size - 3), 0);
    char why[256];
    must_refuse(&o, path, -1, why);
    cr_assert(strstr(why, "synced before the next one") != NULL, "%s", why);
}

/* The newest segment deleted (or lost with its directory entry) although
 * meta says its entries were synced: refused, not a shorter log. */
Test(recovery, missing_synced_segment_is_refused)
{
    zraft_storage *s = must_open(1024);
    append_range(s, 1, 100);
    zraft_storage_free(s);
    zraft_storage_state st;
    s = must_open(1024);
    s->load(s->ctx, &st);
    zraft_storage_free(s);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm $(ls -d %s/log/*.seg | sort | tail -1)", dir);
    cr_assert_eq(system(cmd), 0);
    int err;
    char why[256];
    zraft_disk_options o = fx_opts(1024, false);
    cr_assert_null(fx_open(&o, &err, why));
    cr_assert_eq(err, ZRAFT_ECORRUPT);
    cr_assert(strstr(why, "were synced") != NULL, "%s", why);
}

/* A leftover temp file from a crash between write and rename. */
Test(recovery, metadata_survives_a_crash_between_write_and_rename)
{
    zraft_storage *s = must_open(1u << 20);
    cr_assert_eq(s->save_state(s->ctx, 7, 3, 0), 0);
    zraft_storage_free(s);
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

/* Meta written by the first format (48 bytes, no synced mark) still
 * opens. */
Test(recovery, first_format_metadata_is_read)
{
    zraft_storage *s = must_open(1u << 20);
    append_range(s, 1, 5);
    zraft_storage_free(s);
    unsigned char b[48];
    memset(b, 0, sizeof b);
    memcpy(b, "ZRMETA01", 8);
    b[8] = 9;  /* term */
    b[16] = 2; /* vote */
    uint32_t c = crc32c(0, b, 40);
    for (int i = 0; i < 4; i++) {
        b[40 + i] = (unsigned char)(c >> (8 * i));
    }
    char path[128];
    snprintf(path, sizeof path, "%s/meta", dir);
    spill(path, b, sizeof b);
    s = must_open(1u << 20);
    zraft_storage_state st;
    s->load(s->ctx, &st);
    cr_assert_eq(st.term, 9);
    cr_assert_eq(st.voted_for, 2);
    check_range(s, 1, 5);
    zraft_storage_free(s);
}
