/* test_storage_durability.c - what the disk storage makes durable, and in
 * which order: directories it creates are synced in their parents, recovery
 * syncs what it read before reporting it durable, and a snapshot install
 * records the purge point before deleting segments newest first, each
 * deletion synced before the next.
 *
 * This executable interposes fsync, fdatasync and unlink (the storage is a
 * static library linked into it) and records each call as "fsync PATH" or
 * "unlink PATH", then does the real call. */
#include <criterion/criterion.h>
#include <sys/syscall.h>

#include "test/unit/disk_fixture.h"

TestSuite(durability, .init = tmpdir_setup, .fini = tmpdir_teardown);

#define MAX_EVENTS 4096
static char events[MAX_EVENTS][300];
static int n_events;

static void s_record(const char *what, const char *path)
{
    if (n_events < MAX_EVENTS) {
        snprintf(events[n_events++], sizeof events[0], "%s %s", what, path);
    }
}

static void s_record_fd(int fd)
{
    char link[64], path[256];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    path[n > 0 ? n : 0] = '\0';
    s_record("fsync", path);
}

int fsync(int fd)
{
    s_record_fd(fd);
    return (int)syscall(SYS_fsync, fd);
}

int fdatasync(int fd)
{
    s_record_fd(fd);
    return (int)syscall(SYS_fdatasync, fd);
}

int unlink(const char *path)
{
    s_record("unlink", path);
    return (int)syscall(SYS_unlinkat, AT_FDCWD, path, 0);
}

/* True if event i is `what PATH`. */
static bool is(int i, const char *what, const char *path)
{
    size_t n = strlen(what);
    return strncmp(events[i], what, n) == 0 && events[i][n] == ' ' &&
           strcmp(events[i] + n + 1, path) == 0;
}

/* Index of the first event `what PATH` at or after `from`, -1 if none. */
static int find(const char *what, const char *path, int from)
{
    for (int i = from; i < n_events; i++) {
        if (is(i, what, path)) {
            return i;
        }
    }
    return -1;
}

static void dump(void)
{
    for (int i = 0; i < n_events; i++) {
        cr_log_info("%d: %s", i, events[i]);
    }
}

static void must_sync(const char *path)
{
    if (find("fsync", path, 0) < 0) {
        dump();
        cr_assert_fail("%s was not synced", path);
    }
}

/* Issue 10 item 7: a crash after creating a data directory could lose it,
 * and with it the vote file: a node that voted would vote again. */
Test(durability, new_directories_are_synced_in_their_parents)
{
    char node[128], log[160];
    snprintf(node, sizeof node, "%s/node-1", dir);
    snprintf(log, sizeof log, "%s/log", node);
    n_events = 0;
    int err;
    zraft_storage *s = zraft_storage_disk_new(node, NULL, &err, NULL, 0);
    cr_assert_not_null(s);
    must_sync(dir);  /* holds the entry of node-1 */
    must_sync(node); /* holds the entry of log */
    cr_assert_eq(s->save_state(s->ctx, 3, 2, 0), 0);
    zraft_storage_free(s);
}

/* Issue 10 item 6: a process crash leaves written bytes in the page cache;
 * recovery must not report them durable before syncing them. */
Test(durability, recovery_syncs_what_it_read_before_reporting_it)
{
    zraft_disk_options o = fx_opts(1024, false);
    o.fsync = false; /* nothing written here reaches the disk */
    zraft_storage *s = fx_must_open(&o);
    append_range(s, 1, 60);
    cr_assert_eq(s->save_state(s->ctx, 3, 2, 10), 0);
    cr_assert_eq(fx_save_snap(s, 1, 5, "x"), 0);
    zraft_storage_free(s);

    n_events = 0;
    o.fsync = true;
    s = fx_must_open(&o);
    char path[300];
    snprintf(path, sizeof path, "%s/log", dir);
    char ls[320];
    snprintf(ls, sizeof ls, "ls %s", path);
    FILE *p = popen(ls, "r");
    char name[64];
    int segs = 0;
    while (fgets(name, sizeof name, p) != NULL) {
        name[strcspn(name, "\n")] = '\0';
        char seg[400];
        snprintf(seg, sizeof seg, "%s/%s", path, name);
        must_sync(seg);
        segs++;
    }
    pclose(p);
    cr_assert_gt(segs, 1);
    must_sync(path);
    must_sync(dir);
    snprintf(path, sizeof path, "%s/meta", dir);
    must_sync(path);
    snprintf(path, sizeof path, "%s/snapshot", dir);
    must_sync(path);
    zraft_storage_free(s);
}

/* Issue 10 item 7: the purge point first (meta written and its directory
 * synced), then the segments, newest first, each deletion synced before
 * the next: a crash anywhere leaves a prefix of the old log, which
 * recovery deletes or discards. */
Test(durability, install_records_the_purge_point_then_deletes_newest_first)
{
    zraft_storage *s = must_open(1024);
    append_range(s, 1, 100);
    zraft_snapshot_meta m = fx_snap_meta(9, 500);
    cr_assert_eq(fx_save_snap(s, 9, 500, "x"), 0);
    char logdir[128];
    snprintf(logdir, sizeof logdir, "%s/log", dir);
    n_events = 0;
    cr_assert_eq(s->reset(s->ctx, m.last_log_id), 0);
    int meta = find("fsync", dir, 0); /* the rename of meta made durable */
    cr_assert_geq(meta, 0);
    char last[300] = "";
    int unlinks = 0;
    for (int i = 0; i < n_events; i++) {
        if (strncmp(events[i], "unlink ", 7) != 0 ||
            strstr(events[i], ".seg") == NULL) {
            continue;
        }
        cr_assert_gt(i, meta, "a segment deleted before the purge point");
        if (last[0] != '\0') {
            cr_assert_lt(strcmp(events[i] + 7, last), 0, "%s deleted after %s",
                         events[i] + 7, last);
        }
        memcpy(last, events[i] + 7, sizeof events[0] - 7);
        cr_assert(i + 1 < n_events && is(i + 1, "fsync", logdir),
                  "deletion of %s not synced before the next", last);
        unlinks++;
    }
    cr_assert_gt(unlinks, 1);
    zraft_storage_free(s);
}
