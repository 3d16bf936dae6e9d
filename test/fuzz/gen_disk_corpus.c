/* gen_disk_corpus.c - writes the seed corpus of fuzz_disk: data directories
 * made by the real store (a fresh one, meta only, one and many segments,
 * purged, snapshotted, installed, with a torn or zero-filled tail, a
 * corrupt record, old-format meta, leftover temp files), each packed into
 * one file in fuzz_disk.h's format. Usage: gen_disk_corpus DIR (the files
 * are committed in test/fuzz/corpus/disk; rerun after a format change). */
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/crc32c.h"
#include "test/fuzz/fuzz_disk.h"
#include "zraft_disk.h"

static const char *out_dir;
static char work[64], data_dir[96];

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s;
    (void)f;
    (void)w;
    return remove(p);
}

static void put32(FILE *f, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        fputc((int)(v >> (8 * i)) & 0xff, f);
    }
}

static void pack_file(FILE *f, unsigned kind, uint32_t first, const char *path)
{
    FILE *in = fopen(path, "rb");
    if (in == NULL) {
        return;
    }
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    fputc((int)kind, f);
    if (kind == FUZZ_DISK_SEGMENT) {
        put32(f, first);
    }
    put32(f, (uint32_t)n);
    fwrite(buf, 1, n, f);
}

/* Packs data_dir into OUT/name and removes it. */
static void pack(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        die(path);
    }
    const char *files[] = {"meta", "snapshot", NULL, "meta.tmp",
                           "snapshot.tmp"};
    for (unsigned k = 0; k < FUZZ_DISK_KINDS; k++) {
        if (files[k] != NULL) {
            snprintf(path, sizeof path, "%s/%s", data_dir, files[k]);
            pack_file(f, k, 0, path);
        }
    }
    snprintf(path, sizeof path, "%s/log", data_dir);
    DIR *dh = opendir(path);
    struct dirent *de;
    while (dh != NULL && (de = readdir(dh)) != NULL) {
        if (strstr(de->d_name, ".seg") != NULL) {
            char seg[600];
            snprintf(seg, sizeof seg, "%s/log/%.64s", data_dir, de->d_name);
            pack_file(f, FUZZ_DISK_SEGMENT,
                      (uint32_t)strtoull(de->d_name, NULL, 10), seg);
        }
    }
    if (dh != NULL) {
        closedir(dh);
    }
    if (fclose(f) != 0) {
        die(name);
    }
    nftw(data_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static zraft_storage *open_store(bool crash)
{
    zraft_disk_options o;
    zraft_disk_options_default(&o);
    o.segment_bytes = FUZZ_DISK_SEGMENT_BYTES;
    o.fsync = false;
    o.crash_on_destroy = crash;
    o.quiet = true;
    int err;
    char why[256];
    zraft_storage *s = zraft_storage_disk_new(data_dir, &o, &err, why, 256);
    if (s == NULL) {
        fprintf(stderr, "gen_disk_corpus: %s\n", why);
        exit(1);
    }
    return s;
}

/* Appends [from, to] in one batch: every fifth entry blank, payload sizes
 * 0..99. */
static void append(zraft_storage *s, uint64_t from, uint64_t to, uint64_t term,
                   bool sync)
{
    for (uint64_t i = from; i <= to; i++) {
        zraft_entry e = {{term, i}, ZRAFT_ENTRY_NORMAL, NULL};
        if (i % 5 == 0) {
            e.type = ZRAFT_ENTRY_BLANK;
        } else {
            char p[100];
            memset(p, (int)('a' + i % 26), sizeof p);
            e.payload = zraft_buf_new(p, (size_t)(i * 7 % 100));
        }
        if (s->append(s->ctx, &e, 1) != 0) {
            die("append");
        }
        zraft_buf_unref(e.payload);
    }
    if (sync && s->sync(s->ctx) != 0) {
        die("sync");
    }
}

static void snapshot(zraft_storage *s, uint64_t term, uint64_t index)
{
    zraft_snapshot_meta m;
    memset(&m, 0, sizeof m);
    m.last_log_id = (zraft_log_id){term, index};
    m.membership.n = 2;
    m.membership.members[0] = (zraft_member){1, ZRAFT_ROLE_VOTER, "a:1"};
    m.membership.members[1] = (zraft_member){2, ZRAFT_ROLE_LEARNER, "b:2"};
    zraft_buf *b = zraft_buf_new("kv-state", 8);
    if (s->snapshot_save(s->ctx, &m, b) != 0) {
        die("snapshot_save");
    }
    zraft_buf_unref(b);
}

static void write_at_end(const char *name, const void *b, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", data_dir, name);
    FILE *f = fopen(path, "ab");
    if (f == NULL || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
        die(path);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_disk_corpus DIR\n");
        return 2;
    }
    out_dir = argv[1];
    snprintf(work, sizeof work, "/tmp/zraft-gen-XXXXXX");
    if (mkdtemp(work) == NULL) {
        die("mkdtemp");
    }
    snprintf(data_dir, sizeof data_dir, "%s/d", work);
    zraft_storage *s;

    s = open_store(false); /* a new store: no files but the log dir */
    zraft_storage_free(s);
    pack("empty");

    s = open_store(false);
    if (s->save_state(s->ctx, 5, 2, 0) != 0) {
        die("save_state");
    }
    zraft_storage_free(s);
    pack("meta_only");

    s = open_store(false);
    append(s, 1, 12, 1, true);
    zraft_storage_free(s);
    pack("one_segment");

    s = open_store(false);
    append(s, 1, 200, 2, true);
    s->save_state(s->ctx, 3, 1, 150);
    zraft_storage_free(s);
    pack("segments");

    s = open_store(false);
    append(s, 1, 200, 2, true);
    snapshot(s, 2, 120);
    s->purge(s->ctx, 110);
    append(s, 201, 230, 3, true);
    zraft_storage_free(s);
    pack("snapshot_purged");

    s = open_store(false);
    append(s, 1, 50, 1, true);
    snapshot(s, 4, 400);
    s->reset(s->ctx, (zraft_log_id){4, 400});
    append(s, 401, 420, 4, true);
    zraft_storage_free(s);
    pack("installed");

    s = open_store(false);
    append(s, 1, 60, 1, true);
    s->truncate(s->ctx, 41);
    append(s, 41, 70, 2, true);
    zraft_storage_free(s);
    pack("truncated");

    s = open_store(true); /* power cut: 31..40 never synced */
    append(s, 1, 30, 1, true);
    append(s, 31, 40, 1, false);
    zraft_storage_free(s);
    {
        char seg[64];
        unsigned char torn[40] = {70, 0, 0, 0, 1, 2, 3, 4, 1};
        snprintf(seg, sizeof seg, "log/%020d.seg", 1);
        write_at_end(seg, torn, sizeof torn);
    }
    pack("torn_tail");

    s = open_store(true);
    append(s, 1, 30, 1, true);
    zraft_storage_free(s);
    {
        char seg[64];
        static unsigned char zeros[4096];
        snprintf(seg, sizeof seg, "log/%020d.seg", 1);
        write_at_end(seg, zeros, sizeof zeros);
    }
    pack("zero_tail");

    s = open_store(false);
    append(s, 1, 30, 1, true);
    zraft_storage_free(s);
    {
        char path[256];
        snprintf(path, sizeof path, "%s/log/%020d.seg", data_dir, 1);
        FILE *f = fopen(path, "r+b");
        if (f == NULL) {
            die(path);
        }
        fseek(f, 200, SEEK_SET);
        fputc(0x5a, f);
        fclose(f);
    }
    pack("corrupt_middle");

    s = open_store(false);
    append(s, 1, 10, 1, true);
    zraft_storage_free(s);
    {
        char path[256];
        snprintf(path, sizeof path, "%s/meta", data_dir);
        remove(path);
        /* ZRMETA01, term 3, vote 1, CRC-32C of the first 40 bytes. */
        static unsigned char v1[48] = {
            'Z', 'R', 'M', 'E', 'T', 'A', '0', '1', 3, 0, 0, 0, 0, 0, 0, 0,
            1,   0,   0,   0,   0,   0,   0,   0,   0, 0, 0, 0, 0, 0, 0, 0,
            0,   0,   0,   0,   0,   0,   0,   0,   0, 0, 0, 0, 0, 0, 0, 0};
        uint32_t c = crc32c(0, v1, 40);
        for (int i = 0; i < 4; i++) {
            v1[40 + i] = (unsigned char)(c >> (8 * i));
        }
        write_at_end("meta", v1, sizeof v1);
        write_at_end("meta.tmp", "half", 4);
        write_at_end("snapshot.tmp", "half", 4);
    }
    pack("meta_v1_and_leftovers");

    nftw(work, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    printf("gen_disk_corpus: wrote the corpus to %s\n", out_dir);
    return 0;
}
