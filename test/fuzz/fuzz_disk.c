/* fuzz_disk.c - libFuzzer target for the disk storage's recovery
 * (storage/disk_recover.c): every input is a data directory (segment files,
 * meta, snapshot, leftover temp files; format in fuzz_disk.h) that the
 * store is opened on.
 *
 * For every input:
 *  - opening must not crash, leak or read out of bounds (ASan, UBSan);
 *  - it either fails with ZRAFT_ECORRUPT, ZRAFT_EIO or ZRAFT_ENOMEM and a
 *    message, or recovers;
 *  - a recovered store is consistent: load() is sane, every entry from the
 *    first to the last index reads back, the snapshot it reports loads;
 *  - it is writable: one entry appended after the last one syncs;
 *  - recovery is idempotent: reopened, the store shows the same state plus
 *    that entry.
 * Any violated property aborts, which libFuzzer reports as a crash.
 * Run it with scripts/fuzz.sh. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test/fuzz/fuzz_disk.h"
#include "zraft_disk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[64]; /* a scratch directory of this process */
static char dir[96];  /* the data directory, remade for every input */

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_disk: property violated: %s\n", what);
        abort();
    }
}

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s;
    (void)f;
    (void)w;
    return remove(p);
}

static void cleanup(void)
{
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void put_file(const char *path, const uint8_t *b, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    check(fd >= 0, "create a file of the input");
    check(n == 0 || write(fd, b, n) == (ssize_t)n, "write a file");
    close(fd);
}

/* Lays the input out as DIR. */
static void unpack(const uint8_t *data, size_t size)
{
    char path[160];
    snprintf(path, sizeof path, "%s/log", dir);
    check(mkdir(dir, 0755) == 0 && mkdir(path, 0755) == 0, "mkdir");
    size_t off = 0;
    while (off < size) {
        unsigned kind = data[off++] % FUZZ_DISK_KINDS;
        uint32_t first = 0;
        if (kind == FUZZ_DISK_SEGMENT) {
            if (size - off < 4) {
                break;
            }
            first = get32(data + off);
            off += 4;
        }
        if (size - off < 4) {
            break;
        }
        size_t len = get32(data + off);
        off += 4;
        if (len > size - off) {
            len = size - off;
        }
        static const char *names[] = {"meta", "snapshot", NULL, "meta.tmp",
                                      "snapshot.tmp"};
        if (kind == FUZZ_DISK_SEGMENT) {
            snprintf(path, sizeof path, "%s/log/%020lu.seg", dir,
                     (unsigned long)first);
        } else {
            snprintf(path, sizeof path, "%s/%s", dir, names[kind]);
        }
        put_file(path, data + off, len);
        off += len;
    }
}

static zraft_storage *open_store(int *err, char *why, size_t whylen)
{
    zraft_disk_options o;
    zraft_disk_options_default(&o);
    o.segment_bytes = FUZZ_DISK_SEGMENT_BYTES;
    o.fsync = false; /* nothing here needs to survive a power cut */
    o.quiet = true;
    return zraft_storage_disk_new(dir, &o, err, why, whylen);
}

/* Reads every entry of the log; returns the count. */
static uint64_t read_all(zraft_storage *s, const zraft_storage_state *st)
{
    uint64_t i = st->first_index, n_read = 0;
    while (i <= st->last_log_id.index) {
        zraft_entry out[32];
        size_t n = 32;
        int rv = s->get(s->ctx, i, st->last_log_id.index, 1 << 16, out, &n);
        check(rv == 0 && n > 0, "every recovered entry reads back");
        for (size_t k = 0; k < n; k++) {
            check(out[k].id.index == i + k, "entries in order");
            check(out[k].id.term > 0, "a recovered entry has a term");
            zraft_buf_unref(out[k].payload);
        }
        i += n;
        n_read += n;
    }
    return n_read;
}

static void check_state(zraft_storage *s, zraft_storage_state *st)
{
    s->load(s->ctx, st);
    check(st->first_index >= 1, "first index >= 1");
    check(st->last_log_id.index + 1 >= st->first_index,
          "the log is empty or [first, last]");
    if (st->has_snapshot) {
        check(st->committed >= st->snapshot.last_log_id.index,
              "committed covers the snapshot");
        check(st->first_index <= st->snapshot.last_log_id.index + 1,
              "no hole between the snapshot and the log");
        zraft_snapshot_meta m;
        zraft_buf *b = NULL;
        check(s->snapshot_load(s->ctx, &m, &b) == 0 &&
                  m.last_log_id.index == st->snapshot.last_log_id.index,
              "the snapshot reported loads");
        zraft_buf_unref(b);
    }
    read_all(s, st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (root[0] == '\0') {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(root, sizeof root, "%s/zraft-fuzz-XXXXXX", base);
        check(mkdtemp(root) != NULL, "mkdtemp");
        snprintf(dir, sizeof dir, "%s/d", root);
        atexit(cleanup);
    }
    unpack(data, size);
    int err;
    char why[512];
    why[0] = '\0';
    zraft_storage *s = open_store(&err, why, sizeof why);
    if (s == NULL) {
        check(err == ZRAFT_ECORRUPT || err == ZRAFT_EIO || err == ZRAFT_ENOMEM,
              "opening fails with ECORRUPT, EIO or ENOMEM");
        check(why[0] != '\0', "a failure says why");
    } else {
        zraft_storage_state st, again;
        check_state(s, &st);
        zraft_entry e = {{st.last_log_id.term ? st.last_log_id.term : 1,
                          st.last_log_id.index + 1},
                         ZRAFT_ENTRY_NORMAL,
                         zraft_buf_new("fuzz", 4)};
        check(s->append(s->ctx, &e, 1) == 0 && s->sync(s->ctx) == 0,
              "a recovered store is writable");
        zraft_storage_free(s);
        s = open_store(&err, why, sizeof why);
        check(s != NULL, "a recovered store opens again");
        check_state(s, &again);
        check(again.last_log_id.index == e.id.index &&
                  again.last_log_id.term == e.id.term,
              "the entry appended after recovery is kept");
        check(again.first_index == st.first_index && again.term == st.term &&
                  again.voted_for == st.voted_for &&
                  again.committed == st.committed &&
                  again.has_snapshot == st.has_snapshot,
              "recovery is idempotent");
        zraft_entry got;
        size_t n = 1;
        check(s->get(s->ctx, e.id.index, e.id.index, SIZE_MAX, &got, &n) == 0 &&
                  got.payload != NULL && got.payload->len == 4 &&
                  memcmp(got.payload->data, "fuzz", 4) == 0,
              "the appended entry reads back");
        zraft_buf_unref(got.payload);
        zraft_buf_unref(e.payload);
        zraft_storage_free(s);
    }
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
