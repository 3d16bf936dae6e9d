/* test_storage_model.c - a property test of the disk storage against the
 * memory store as a model (issue 10).
 *
 * A seeded PRNG drives both stores through the same random operations:
 * appends of 1 to 4000 entries with empty and non-empty payloads of random
 * sizes and types, syncs, truncations, snapshot saves followed by purges,
 * saves of stale snapshots (never stored: ZRAFT_ESUPERSEDED), snapshot
 * installs (save + reset), vote/term/commit saves. After every step the
 * disk store is closed and reopened - cleanly, or by a simulated power cut
 * that drops every unsynced byte, sometimes followed by a torn write at the
 * end of the last segment (zeros, garbage, or part of a lost record) - and
 * every observable is compared with the model: first and last index and
 * term, every entry (type, term, payload bytes) through get() with random
 * limits, the errors for indexes on both sides of the log, the snapshot
 * (meta and data) and the term, vote and commit index. After a power cut
 * the disk keeps a prefix of the model's log at least as long as what was
 * synced; the model is cut to it.
 *
 * The seed is printed; ZRAFT_SEED=N reruns one seed, ZRAFT_MODEL_STEPS=N
 * sets the steps per seed. Every assertion names seed, step and operation. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>

#include "test/unit/disk_fixture.h"

TestSuite(model, .init = tmpdir_setup, .fini = tmpdir_teardown);

/* ------------------------------------------------------------ the PRNG */

static uint64_t rng_state;

static uint64_t rnd(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static uint64_t between(uint64_t lo, uint64_t hi)
{
    return lo + rnd() % (hi - lo + 1);
}

static bool chance(unsigned percent)
{
    return rnd() % 100 < percent;
}

/* ------------------------------------------------------------ the run */

typedef struct {
    uint64_t seed;
    unsigned step;
    const char *op;
    zraft_storage *disk, *model;
    zraft_disk_options o;
    uint64_t term;   /* of the next appended entries */
    uint64_t synced; /* the disk has synced the model's log up to here */
} run;

static run g;

#define CHECK(cond, fmt, ...)                                                  \
    cr_assert((cond), "[seed %" PRIu64 " step %u %s] " fmt, g.seed, g.step,    \
              g.op, __VA_ARGS__)

static zraft_storage_state state(zraft_storage *s)
{
    zraft_storage_state st;
    s->load(s->ctx, &st);
    return st;
}

static bool log_empty(const zraft_storage_state *st)
{
    return st->last_log_id.index < st->first_index;
}

static zraft_buf *random_bytes(size_t len)
{
    zraft_buf *b = zraft_buf_new(NULL, len);
    cr_assert_not_null(b);
    for (size_t i = 0; i < len; i++) {
        b->data[i] = (unsigned char)rnd();
    }
    return b;
}

static size_t payload_size(void)
{
    unsigned r = (unsigned)between(0, 99);
    if (r < 30) {
        return 0;
    }
    if (r < 80) {
        return between(1, 64);
    }
    if (r < 97) {
        return between(65, 1024);
    }
    return between(1025, 16384);
}

static void random_entry(zraft_entry *e, uint64_t index)
{
    e->id.index = index;
    e->id.term = g.term;
    unsigned r = (unsigned)between(0, 99);
    if (r < 5) {
        e->type = ZRAFT_ENTRY_BLANK;
        e->payload = NULL;
        return;
    }
    e->type = r < 10 ? ZRAFT_ENTRY_MEMBERSHIP : ZRAFT_ENTRY_NORMAL;
    size_t len = payload_size();
    /* An empty payload is either no buffer or an empty one. */
    e->payload = len == 0 && chance(50) ? NULL : random_bytes(len);
}

static size_t batch_size(void)
{
    unsigned r = (unsigned)between(0, 99);
    if (r < 60) {
        return between(1, 16);
    }
    if (r < 92) {
        return between(17, 600);
    }
    return between(601, 4000);
}

/* ------------------------------------------------------------ compare */

static size_t buf_len(const zraft_buf *b)
{
    return b ? b->len : 0;
}

static void same_entry(const zraft_entry *d, const zraft_entry *m)
{
    CHECK(d->id.index == m->id.index && d->id.term == m->id.term,
          "entry %" PRIu64 ": disk (%" PRIu64 ", %" PRIu64 ") model (%" PRIu64
          ", %" PRIu64 ")",
          m->id.index, d->id.index, d->id.term, m->id.index, m->id.term);
    CHECK(d->type == m->type, "entry %" PRIu64 ": type %d, model %d",
          m->id.index, d->type, m->type);
    CHECK(buf_len(d->payload) == buf_len(m->payload),
          "entry %" PRIu64 ": %zu payload bytes, model %zu", m->id.index,
          buf_len(d->payload), buf_len(m->payload));
    CHECK(buf_len(m->payload) == 0 ||
              memcmp(d->payload->data, m->payload->data, m->payload->len) == 0,
          "entry %" PRIu64 ": payload differs", m->id.index);
}

static void same_get_error(uint64_t from)
{
    zraft_entry e;
    size_t n = 1;
    int rd = g.disk->get(g.disk->ctx, from, from, SIZE_MAX, &e, &n);
    if (rd == 0) {
        zraft_buf_unref(e.payload);
    }
    n = 1;
    int rm = g.model->get(g.model->ctx, from, from, SIZE_MAX, &e, &n);
    if (rm == 0) {
        zraft_buf_unref(e.payload);
    }
    CHECK(rd == rm, "get %" PRIu64 ": disk %s, model %s", from,
          zraft_err_name(rd), zraft_err_name(rm));
}

static void same_snapshot(void)
{
    zraft_snapshot_meta md, mm;
    zraft_buf *bd = NULL, *bm = NULL;
    int rd = g.disk->snapshot_load(g.disk->ctx, &md, &bd);
    int rm = g.model->snapshot_load(g.model->ctx, &mm, &bm);
    CHECK(rd == rm, "snapshot_load: disk %s, model %s", zraft_err_name(rd),
          zraft_err_name(rm));
    if (rd == 0) {
        CHECK(md.last_log_id.index == mm.last_log_id.index &&
                  md.last_log_id.term == mm.last_log_id.term,
              "snapshot at %" PRIu64 ", model %" PRIu64, md.last_log_id.index,
              mm.last_log_id.index);
        CHECK(md.membership.n == mm.membership.n &&
                  md.membership.members[0].id == mm.membership.members[0].id,
              "snapshot membership (%u members)", md.membership.n);
        CHECK(
            buf_len(bd) == buf_len(bm) &&
                (buf_len(bm) == 0 || memcmp(bd->data, bm->data, bm->len) == 0),
            "snapshot data (%zu bytes, model %zu)", buf_len(bd), buf_len(bm));
        zraft_buf_unref(bd);
        zraft_buf_unref(bm);
    }
}

static void compare(void)
{
    zraft_storage_state d = state(g.disk), m = state(g.model);
    CHECK(d.term == m.term && d.voted_for == m.voted_for &&
              d.committed == m.committed,
          "meta: disk term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64
          ", model %" PRIu64 " %" PRIu64 " %" PRIu64,
          d.term, d.voted_for, d.committed, m.term, m.voted_for, m.committed);
    CHECK(d.first_index == m.first_index,
          "first index %" PRIu64 ", model %" PRIu64, d.first_index,
          m.first_index);
    CHECK(d.last_log_id.index == m.last_log_id.index &&
              d.last_log_id.term == m.last_log_id.term,
          "last (%" PRIu64 ", %" PRIu64 "), model (%" PRIu64 ", %" PRIu64 ")",
          d.last_log_id.term, d.last_log_id.index, m.last_log_id.term,
          m.last_log_id.index);
    CHECK(d.has_snapshot == m.has_snapshot &&
              (!d.has_snapshot ||
               d.snapshot.last_log_id.index == m.snapshot.last_log_id.index),
          "snapshot state (disk %d, model %d)", d.has_snapshot, m.has_snapshot);
    same_snapshot();
    /* Every entry, through reads with random limits. */
    uint64_t i = m.first_index, last = m.last_log_id.index;
    while (!log_empty(&m) && i <= last) {
        zraft_entry od[64], om[64];
        size_t cap = (size_t)between(1, 64);
        size_t max_bytes = chance(50) ? SIZE_MAX : (size_t)between(0, 8192);
        uint64_t to = chance(80) ? last : between(i, last);
        size_t nd = cap, nm = cap;
        int rd = g.disk->get(g.disk->ctx, i, to, max_bytes, od, &nd);
        int rm = g.model->get(g.model->ctx, i, to, max_bytes, om, &nm);
        CHECK(rd == 0 && rm == 0, "get %" PRIu64 ": disk %s, model %s", i,
              zraft_err_name(rd), zraft_err_name(rm));
        /* The disk stops at a segment's end: never more than the model. */
        CHECK(nd >= 1 && nd <= nm, "get %" PRIu64 ": %zu entries, model %zu", i,
              nd, nm);
        for (size_t k = 0; k < nm; k++) {
            if (k < nd) {
                same_entry(&od[k], &om[k]);
                zraft_buf_unref(od[k].payload);
            }
            zraft_buf_unref(om[k].payload);
        }
        i += nd;
    }
    if (m.first_index > 1) {
        same_get_error(m.first_index - 1);
    }
    same_get_error(log_empty(&m) ? m.first_index : last + 1);
}

/* ------------------------------------------------------------ reopening */

static char *newest_segment(char *out, size_t cap)
{
    char logdir[128];
    snprintf(logdir, sizeof logdir, "%s/log", dir);
    DIR *dh = opendir(logdir);
    cr_assert_not_null(dh);
    char best[256] = "";
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        if (strstr(de->d_name, ".seg") != NULL &&
            strcmp(de->d_name, best) > 0) {
            snprintf(best, sizeof best, "%s", de->d_name);
        }
    }
    closedir(dh);
    if (best[0] == '\0') {
        return NULL;
    }
    snprintf(out, cap, "%s/%.64s", logdir, best);
    return out;
}

/* What a torn write leaves at the end of the newest segment. */
static void tear(void)
{
    char path[256];
    if (newest_segment(path, sizeof path) == NULL) {
        return;
    }
    off_t end = file_size(path);
    size_t n = (size_t)between(1, 3000);
    unsigned char *b = calloc(1, n);
    unsigned r = (unsigned)between(0, 2);
    if (r == 1) {
        for (size_t k = 0; k < n; k++) {
            b[k] = (unsigned char)rnd();
        }
    } else if (r == 2 && n > 32) {
        /* A header that promises more than follows. */
        zraft_storage_state st = state(g.model);
        uint64_t next = st.last_log_id.index + 1;
        b[0] = 0xff;
        b[1] = 0x7f;
        for (int k = 0; k < 8; k++) {
            b[8 + k] = (unsigned char)(g.term >> (8 * k));
            b[16 + k] = (unsigned char)(next >> (8 * k));
        }
        b[24] = ZRAFT_ENTRY_NORMAL;
    }
    poke(path, end, b, n);
    free(b);
}

/* Pages written back out of order: the power cut kept the unsynced bytes
 * of the newest segment (`copy`, `len` bytes before the cut) except one
 * aligned sector, which never landed (zeros). */
static void lose_a_sector(const char *path, const unsigned char *copy,
                          off_t len)
{
    off_t synced = file_size(path);
    off_t lo = (synced + 511) / 512 * 512;
    if (len - lo < 1024) {
        return;
    }
    off_t at = lo + (off_t)between(0, (uint64_t)(len - lo - 512) / 512) * 512;
    unsigned char *b = malloc((size_t)(len - synced));
    memcpy(b, copy + synced, (size_t)(len - synced));
    memset(b + (at - synced), 0, 512);
    poke(path, synced, b, (size_t)(len - synced));
    free(b);
}

static void reopen(void)
{
    /* The options the closing store was opened with decide how it
     * closes: cleanly, or as a power cut. */
    bool crash = g.o.crash_on_destroy;
    char path[256];
    unsigned char *copy = NULL;
    off_t len = 0;
    if (crash && chance(40) && newest_segment(path, sizeof path) != NULL) {
        copy = slurp(path, &len);
    }
    zraft_storage_free(g.disk);
    if (copy != NULL) {
        lose_a_sector(path, copy, len);
        free(copy);
    } else if (crash && chance(50)) {
        tear();
    }
    g.o.crash_on_destroy = chance(30);
    g.o.max_write_bytes = chance(10) ? (uint32_t)between(1, 4096) : 0;
    int err;
    char why[256];
    g.disk = zraft_storage_disk_new(dir, &g.o, &err, why, sizeof why);
    CHECK(g.disk != NULL, "reopen: %s (%s)", zraft_strerror(err), why);
    if (crash) {
        /* A prefix of the model's log, at least what was synced. */
        zraft_storage_state d = state(g.disk), m = state(g.model);
        uint64_t l = d.last_log_id.index;
        CHECK(l >= g.synced && l <= m.last_log_id.index,
              "after a power cut the log ends at %" PRIu64 ", synced %" PRIu64
              ", model %" PRIu64,
              l, g.synced, m.last_log_id.index);
        if (log_empty(&d) && d.has_snapshot && d.first_index != m.first_index) {
            /* What survived did not reach the snapshot (a follower applies
             * entries it has not synced yet): the log starts after it. */
            CHECK(d.first_index == d.snapshot.last_log_id.index + 1,
                  "empty log at %" PRIu64, d.first_index);
            cr_assert_eq(g.model->reset(g.model->ctx, d.snapshot.last_log_id),
                         0);
        } else if (l < m.last_log_id.index) {
            cr_assert_eq(g.model->truncate(g.model->ctx, l + 1), 0);
        }
    }
    g.synced = state(g.model).last_log_id.index; /* recovery synced it */
}

/* ------------------------------------------------------------ operations */

static void both(int rd, int rm, const char *what)
{
    CHECK(rd == rm, "%s: disk %s, model %s", what, zraft_err_name(rd),
          zraft_err_name(rm));
}

static void op_append(void)
{
    g.op = "append";
    zraft_storage_state m = state(g.model);
    if (chance(10)) {
        g.term++; /* a new leader */
    }
    if (g.term < m.last_log_id.term) {
        g.term = m.last_log_id.term;
    }
    size_t n = batch_size();
    zraft_entry *ents = calloc(n, sizeof(*ents));
    for (size_t k = 0; k < n; k++) {
        random_entry(&ents[k], m.last_log_id.index + 1 + k);
    }
    both(g.disk->append(g.disk->ctx, ents, n),
         g.model->append(g.model->ctx, ents, n), "append");
    for (size_t k = 0; k < n; k++) {
        zraft_buf_unref(ents[k].payload);
    }
    free(ents);
    if (chance(60)) {
        both(g.disk->sync(g.disk->ctx), g.model->sync(g.model->ctx), "sync");
        g.synced = state(g.model).last_log_id.index;
    }
}

static void op_truncate(void)
{
    g.op = "truncate";
    zraft_storage_state m = state(g.model);
    uint64_t lo = m.first_index;
    if (m.has_snapshot && m.snapshot.last_log_id.index + 1 > lo) {
        lo = m.snapshot.last_log_id.index + 1; /* never what a snapshot has */
    }
    if (log_empty(&m) || lo > m.last_log_id.index) {
        return;
    }
    uint64_t since = between(lo, m.last_log_id.index);
    both(g.disk->truncate(g.disk->ctx, since),
         g.model->truncate(g.model->ctx, since), "truncate");
    g.synced = since - 1; /* durable on return, everything before too */
    g.term++;             /* the entries that replace them: a newer leader */
}

static zraft_snapshot_meta snap_meta(uint64_t term, uint64_t index)
{
    zraft_snapshot_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.last_log_id = (zraft_log_id){term, index};
    meta.membership.n = (uint32_t)between(1, 3);
    uint64_t base = between(1, 9);
    for (uint32_t k = 0; k < meta.membership.n; k++) {
        meta.membership.members[k].id = base + k;
        meta.membership.members[k].roles = ZRAFT_ROLE_VOTER;
    }
    return meta;
}

static int save_both(const zraft_snapshot_meta *meta)
{
    zraft_buf *data = random_bytes(payload_size());
    int rd = g.disk->snapshot_save(g.disk->ctx, meta, data);
    int rm = g.model->snapshot_save(g.model->ctx, meta, data);
    zraft_buf_unref(data);
    both(rd, rm, "snapshot_save");
    return rd;
}

static uint64_t term_at(uint64_t index)
{
    zraft_entry e;
    size_t n = 1;
    cr_assert_eq(g.model->get(g.model->ctx, index, index, SIZE_MAX, &e, &n), 0);
    zraft_buf_unref(e.payload);
    return e.id.term;
}

/* The state machine's snapshot at an entry of the log, then a purge. */
static void op_snapshot_purge(void)
{
    g.op = "snapshot+purge";
    zraft_storage_state m = state(g.model);
    uint64_t lo = m.first_index;
    if (m.has_snapshot && m.snapshot.last_log_id.index > lo) {
        lo = m.snapshot.last_log_id.index;
    }
    if (log_empty(&m) || lo > m.last_log_id.index) {
        return;
    }
    uint64_t at = between(lo, m.last_log_id.index);
    zraft_snapshot_meta meta = snap_meta(term_at(at), at);
    cr_assert_eq(save_both(&meta), 0);
    if (chance(70)) {
        uint64_t upto = between(m.first_index - 1, at);
        both(g.disk->purge(g.disk->ctx, upto), 0, "purge");
        uint64_t first = state(g.disk).first_index;
        CHECK(first >= m.first_index && first <= upto + 1,
              "purge %" PRIu64 " left the log at %" PRIu64, upto, first);
        if (first > m.first_index) {
            cr_assert_eq(g.model->purge(g.model->ctx, first - 1), 0);
        }
    }
}

/* A snapshot that lost the race with a newer one is not stored. */
static void op_stale_snapshot(void)
{
    g.op = "stale snapshot";
    zraft_storage_state m = state(g.model);
    if (!m.has_snapshot || m.snapshot.last_log_id.index < 2) {
        return;
    }
    uint64_t at = between(1, m.snapshot.last_log_id.index - 1);
    zraft_snapshot_meta meta = snap_meta(1, at);
    CHECK(save_both(&meta) == ZRAFT_ESUPERSEDED,
          "a snapshot at %" PRIu64 " replaced the one at %" PRIu64, at,
          m.snapshot.last_log_id.index);
}

/* A snapshot neither store could read back (a member twice): refused by
 * both, the stored one stays. */
static void op_bad_snapshot(void)
{
    g.op = "bad snapshot";
    zraft_storage_state m = state(g.model);
    zraft_snapshot_meta meta = snap_meta(g.term, m.last_log_id.index + 1);
    meta.membership.n = 2;
    meta.membership.members[1] = meta.membership.members[0];
    CHECK(save_both(&meta) == ZRAFT_EINVAL, "%s", "a bad snapshot stored");
}

/* A leader's snapshot: past the log, or over a conflicting part of it. */
static void op_install(void)
{
    g.op = "install";
    zraft_storage_state m = state(g.model);
    uint64_t lo = m.has_snapshot ? m.snapshot.last_log_id.index + 1 : 1;
    uint64_t hi = m.last_log_id.index + 2000;
    uint64_t at = between(lo > hi ? hi : lo, hi);
    g.term++;
    zraft_snapshot_meta meta = snap_meta(g.term, at);
    if (save_both(&meta) == 0) {
        both(g.disk->reset(g.disk->ctx, meta.last_log_id),
             g.model->reset(g.model->ctx, meta.last_log_id), "reset");
        g.synced = at;
    }
}

static void op_save_state(void)
{
    g.op = "save_state";
    zraft_storage_state m = state(g.model);
    uint64_t term = m.term + between(0, 2);
    zraft_id vote = between(0, 5);
    uint64_t committed = between(0, m.last_log_id.index + 10);
    both(g.disk->save_state(g.disk->ctx, term, vote, committed),
         g.model->save_state(g.model->ctx, term, vote, committed),
         "save_state");
}

static void op_sync(void)
{
    g.op = "sync";
    both(g.disk->sync(g.disk->ctx), g.model->sync(g.model->ctx), "sync");
    g.synced = state(g.model).last_log_id.index;
}

static void one_run(uint64_t seed, unsigned steps)
{
    memset(&g, 0, sizeof g);
    g.seed = seed;
    rng_state = seed;
    g.op = "open";
    fprintf(stderr,
            "test_storage_model: seed %" PRIu64 " (%u steps); rerun "
            "with ZRAFT_SEED=%" PRIu64 "\n",
            seed, steps, seed);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s/log %s/meta %s/snapshot", dir, dir,
             dir);
    cr_assert_eq(system(cmd), 0);
    zraft_disk_options_default(&g.o);
    uint64_t sizes[] = {512, 4096, 65536, 1u << 20};
    g.o.segment_bytes = sizes[between(0, 3)];
    uint32_t prealloc[] = {0, 100, 4096, 1u << 20};
    g.o.prealloc_bytes = prealloc[between(0, 3)];
    g.o.fsync = false; /* the power cut is simulated; keep it fast */
    g.o.crash_on_destroy = chance(30);
    int err;
    char why[256];
    g.disk = zraft_storage_disk_new(dir, &g.o, &err, why, sizeof why);
    cr_assert_not_null(g.disk, "open: %s", why);
    g.model = zraft_storage_memory_new();
    g.term = 1;
    for (g.step = 1; g.step <= steps; g.step++) {
        unsigned r = (unsigned)between(0, 99);
        if (r < 45) {
            op_append();
        } else if (r < 55) {
            op_sync();
        } else if (r < 65) {
            op_truncate();
        } else if (r < 77) {
            op_snapshot_purge();
        } else if (r < 81) {
            op_stale_snapshot();
        } else if (r < 86) {
            op_install();
        } else if (r < 88) {
            op_bad_snapshot();
        } else {
            op_save_state();
        }
        /* Keep the log small enough to reread after every step. */
        zraft_storage_state m = state(g.model);
        if (!log_empty(&m) && m.last_log_id.index - m.first_index > 6000) {
            op_snapshot_purge();
        }
        reopen();
        compare();
    }
    zraft_storage_free(g.disk);
    zraft_storage_free(g.model);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 10) : dflt;
}

Test(model, disk_store_behaves_like_the_memory_store, .timeout = 240)
{
    unsigned steps = (unsigned)env_u64("ZRAFT_MODEL_STEPS", 120);
    if (getenv("ZRAFT_SEED") != NULL) {
        one_run(env_u64("ZRAFT_SEED", 1), steps);
        return;
    }
    uint64_t seeds[] = {1, 2, 3};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        one_run(seeds[i], steps);
    }
}
