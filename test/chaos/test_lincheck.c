/* test_lincheck.c - the chaos campaign's linearizability checker on crafted
 * histories: each known anomaly is caught, valid histories (with unknown
 * outcomes, and large ones) pass, and the lost-write check. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"

#define X 1 /* keys */
#define Y 2

static lc_op put(uint32_t c, uint64_t k, uint64_t v, int64_t inv, int64_t ret)
{
    return (lc_op){c, LC_PUT, LC_OK, k, v, 0, 0, inv, ret};
}

static lc_op get(uint32_t c, uint64_t k, uint64_t v, int64_t inv, int64_t ret)
{
    return (lc_op){c, LC_GET, LC_OK, k, 0, 0, v, inv, ret};
}

static lc_op cas(uint32_t c, uint64_t k, uint64_t exp, uint64_t v, bool swapped,
                 int64_t inv, int64_t ret)
{
    return (lc_op){c, LC_CAS, LC_OK, k, exp, v, swapped, inv, ret};
}

static lc_op with(lc_op o, lc_status s)
{
    o.status = s;
    return o;
}

static int check(const lc_op *ops, size_t n, lc_report *rep)
{
    int v = lc_check(ops, n, 0, rep);
    cr_assert_geq(v, 0, "out of memory");
    return v;
}

Test(lincheck, sequential_history_passes)
{
    lc_op h[] = {get(1, X, LC_ABSENT, 0, 1),
                 put(1, X, 10, 2, 3),
                 get(2, X, 10, 4, 5),
                 cas(1, X, 10, 11, true, 6, 7),
                 cas(2, X, 10, 12, false, 8, 9),
                 get(1, X, 11, 10, 11)};
    lc_report rep;
    cr_assert_eq(check(h, 6, &rep), LC_LINEARIZABLE);
    cr_assert_eq(rep.checked, 6);
    lc_report_free(&rep);
}

Test(lincheck, stale_read_is_caught)
{
    lc_op h[] = {put(1, X, 10, 0, 10), put(1, X, 20, 20, 30),
                 get(2, X, 10, 40, 50)};
    lc_report rep;
    cr_assert_eq(check(h, 3, &rep), LC_VIOLATION);
    cr_assert_eq(rep.key, X);
    cr_assert_eq(rep.bad_op, 2, "the stale read is the op that cannot fit");
    cr_assert_geq(rep.n_window, 1);
    lc_report_free(&rep);
}

Test(lincheck, lost_write_is_caught)
{
    /* The write was acknowledged, then a later read misses it. */
    lc_op h[] = {put(1, X, 10, 0, 10), get(2, X, LC_ABSENT, 20, 30)};
    lc_report rep;
    cr_assert_eq(check(h, 2, &rep), LC_VIOLATION);
    lc_report_free(&rep);
    uint64_t keys[] = {X}, finals[] = {LC_ABSENT};
    FILE *null = fopen("/dev/null", "w");
    cr_assert_eq(lc_lost_writes(h, 2, keys, finals, 1, null), 1);
    fclose(null);
}

Test(lincheck, read_of_a_value_never_written_is_caught)
{
    lc_op h[] = {put(1, X, 10, 0, 10), get(2, X, 99, 5, 30)};
    lc_report rep;
    cr_assert_eq(check(h, 2, &rep), LC_VIOLATION);
    cr_assert_eq(rep.bad_op, 1);
    lc_report_free(&rep);
}

Test(lincheck, new_then_old_read_over_two_registers_is_caught)
{
    /* Y alone is fine; on X a read sees the concurrent write, and a read
     * that starts after it returned sees the old value again. */
    lc_op h[] = {put(1, Y, 5, 0, 2),           put(3, X, 7, 0, 100),
                 get(1, X, 7, 10, 20),         get(2, Y, 5, 12, 14),
                 get(2, X, LC_ABSENT, 30, 40), put(1, Y, 6, 50, 60),
                 get(2, Y, 6, 70, 80)};
    lc_report rep;
    cr_assert_eq(check(h, 7, &rep), LC_VIOLATION);
    cr_assert_eq(rep.key, X, "the violation is on X");
    cr_assert_eq(rep.keys, 2);
    lc_report_free(&rep);
}

Test(lincheck, concurrent_reads_may_see_either_value)
{
    /* Both reads overlap the write: old then new is fine. */
    lc_op h[] = {put(1, X, 1, 0, 1), put(1, X, 2, 10, 100),
                 get(2, X, 1, 20, 30), get(3, X, 2, 40, 50),
                 get(2, X, 2, 60, 70)};
    lc_report rep;
    cr_assert_eq(check(h, 5, &rep), LC_LINEARIZABLE);
    lc_report_free(&rep);
}

Test(lincheck, cas_outcomes_must_fit_the_state)
{
    /* A mismatch answer while the register held the expected value. */
    lc_op bad[] = {put(1, X, 1, 0, 1), cas(2, X, 1, 2, false, 5, 6)};
    lc_report rep;
    cr_assert_eq(check(bad, 2, &rep), LC_VIOLATION);
    lc_report_free(&rep);
    /* Two CAS from the same value cannot both succeed. */
    lc_op twice[] = {put(1, X, 1, 0, 1), cas(2, X, 1, 2, true, 5, 20),
                     cas(3, X, 1, 3, true, 6, 21)};
    cr_assert_eq(check(twice, 3, &rep), LC_VIOLATION);
    lc_report_free(&rep);
    /* ... but one succeeds and one sees the other's value. */
    lc_op one[] = {put(1, X, 1, 0, 1), cas(2, X, 1, 2, true, 5, 20),
                   cas(3, X, 1, 3, false, 6, 21), get(1, X, 2, 30, 31)};
    cr_assert_eq(check(one, 4, &rep), LC_LINEARIZABLE);
    lc_report_free(&rep);
}

Test(lincheck, unknown_write_may_apply_late_or_never)
{
    lc_op late[] = {put(1, X, 1, 0, 1), with(put(2, X, 5, 2, 0), LC_INFO),
                    get(3, X, 1, 10, 11), get(3, X, 5, 100, 101)};
    lc_report rep;
    cr_assert_eq(check(late, 4, &rep), LC_LINEARIZABLE, "late");
    lc_report_free(&rep);
    lc_op never[] = {put(1, X, 1, 0, 1), with(put(2, X, 5, 2, 0), LC_INFO),
                     get(3, X, 1, 100, 101)};
    cr_assert_eq(check(never, 3, &rep), LC_LINEARIZABLE, "never");
    lc_report_free(&rep);
    /* Once seen it took effect: an older value cannot come back. */
    lc_op back[] = {put(1, X, 1, 0, 1), with(put(2, X, 5, 2, 0), LC_INFO),
                    get(3, X, 5, 10, 11), get(3, X, 1, 20, 21)};
    cr_assert_eq(check(back, 4, &rep), LC_VIOLATION, "back");
    lc_report_free(&rep);
    /* Not before its invocation. */
    lc_op early[] = {get(3, X, 5, 0, 1), with(put(2, X, 5, 2, 0), LC_INFO)};
    cr_assert_eq(check(early, 2, &rep), LC_VIOLATION, "early");
    lc_report_free(&rep);
}

Test(lincheck, failed_write_must_not_be_seen)
{
    lc_op h[] = {with(put(1, X, 5, 0, 1), LC_FAIL), get(2, X, 5, 10, 11)};
    lc_report rep;
    cr_assert_eq(check(h, 2, &rep), LC_VIOLATION);
    lc_report_free(&rep);
    /* An unknown read says nothing. */
    lc_op r[] = {put(1, X, 5, 0, 1), with(get(2, X, 9, 10, 11), LC_INFO)};
    cr_assert_eq(check(r, 2, &rep), LC_LINEARIZABLE);
    cr_assert_eq(rep.checked, 1);
    lc_report_free(&rep);
}

Test(lincheck, lost_write_check_on_final_values)
{
    lc_op h[] = {put(1, X, 1, 0, 10), put(2, X, 2, 20, 30),
                 with(put(3, X, 3, 25, 0), LC_INFO), put(1, Y, 4, 0, 10)};
    uint64_t keys[] = {X, Y};
    FILE *null = fopen("/dev/null", "w");
    uint64_t ok[] = {2, 4}, unknown_last[] = {3, 4}, old[] = {1, 4},
             nowhere[] = {2, 77};
    cr_assert_eq(lc_lost_writes(h, 4, keys, ok, 2, null), 0);
    cr_assert_eq(lc_lost_writes(h, 4, keys, unknown_last, 2, null), 0);
    cr_assert_eq(lc_lost_writes(h, 4, keys, old, 2, null), 1, "1 overwritten");
    cr_assert_eq(lc_lost_writes(h, 4, keys, nowhere, 2, null), 1);
    fclose(null);
}

Test(lincheck, history_lines_round_trip)
{
    lc_op o = with(cas(7, 42, 3, 4, false, 100, 0), LC_INFO), p;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    lc_print_op(f, &o);
    fclose(f);
    int rv = lc_parse_op(buf, &p);
    free(buf);
    cr_assert_eq(rv, 0);
    cr_assert(o.client == p.client && o.type == p.type &&
              o.status == p.status && o.key == p.key && o.arg == p.arg &&
              o.arg2 == p.arg2 && o.out == p.out && o.inv == p.inv &&
              o.ret == p.ret);
    cr_assert_eq(lc_parse_op("1 get 1 0 0 5 ok 1 2  # n1 curl=0", &p), 0,
                 "a trailing comment");
    cr_assert_eq(lc_parse_op("# comment", &p), 1);
    cr_assert_eq(lc_parse_op("1 put 1 2 3 4 ok 5", &p), -1, "short");
    cr_assert_eq(lc_parse_op("1 zap 1 2 3 4 ok 5 6", &p), -1, "bad type");
    cr_assert_eq(lc_parse_op("1 put 1 2 3 4 ok 9 6", &p), -1, "ret < inv");
    cr_assert_eq(lc_parse_op("1 put 1 2 3 4 ok 5 6 junk", &p), -1);
}

/* A random linearizable history: `clients` clients with random op
 * durations; each op takes effect at a random point of its interval, in
 * the order of those points; some writes are left unknown (applied or
 * not). */
static size_t s_valid_history(lc_op *h, size_t n, unsigned clients,
                              unsigned keys, unsigned seed)
{
    srand(seed);
    int64_t *free_at = calloc(clients, sizeof(int64_t));
    uint64_t *reg = calloc(keys + 1, sizeof(uint64_t));
    typedef struct {
        int64_t point;
        size_t i;
    } pt;
    pt *pts = malloc(n * sizeof(pt));
    uint64_t next = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned)rand() % clients;
        int64_t inv = free_at[c] + rand() % 5;
        int64_t ret = inv + 1 + rand() % 40;
        free_at[c] = ret + 1;
        uint64_t k = 1 + (unsigned)rand() % keys;
        int r = rand() % 10;
        if (r < 4) {
            h[i] = put(c, k, next++, inv, ret);
        } else if (r < 7) {
            h[i] = get(c, k, 0, inv, ret);
        } else {
            h[i] = cas(c, k, 0, next++, false, inv, ret);
        }
        pts[i] = (pt){inv + rand() % (ret - inv + 1), i};
    }
    /* Apply in linearization-point order (insertion sort: the points are
     * nearly sorted already). */
    for (size_t i = 1; i < n; i++) {
        pt x = pts[i];
        size_t j = i;
        while (j > 0 && pts[j - 1].point > x.point) {
            pts[j] = pts[j - 1];
            j--;
        }
        pts[j] = x;
    }
    for (size_t j = 0; j < n; j++) {
        lc_op *o = &h[pts[j].i];
        uint64_t *s = &reg[o->key];
        if (o->type == LC_GET) {
            o->out = *s;
        } else if (o->type == LC_PUT) {
            if (rand() % 20 == 0) {
                o->status = LC_INFO; /* unknown, applied */
            }
            *s = o->arg;
        } else {
            /* Expect the current value half the time. */
            o->arg = rand() % 2 ? *s : *s + 1000000;
            o->out = *s == o->arg;
            if (o->out) {
                *s = o->arg2;
            }
        }
    }
    /* Some unknown writes that never took effect. */
    for (size_t i = 0; i < n; i += 97) {
        if (h[i].type == LC_GET) {
            h[i] =
                with(put(h[i].client, h[i].key, next++, h[i].inv, 0), LC_INFO);
        }
    }
    free(pts);
    free(reg);
    free(free_at);
    return n;
}

Test(lincheck, large_valid_histories_pass, .timeout = 120)
{
    size_t n = 100000;
    lc_op *h = malloc(n * sizeof(lc_op));
    for (unsigned seed = 1; seed <= 3; seed++) {
        s_valid_history(h, n, 16, 20, seed);
        lc_report rep;
        cr_assert_eq(check(h, n, &rep), LC_LINEARIZABLE, "seed %u", seed);
        cr_assert_eq(rep.keys, 20);
        lc_report_free(&rep);
    }
    /* One key, many clients: the hardest partition. */
    s_valid_history(h, 20000, 8, 1, 9);
    lc_report rep;
    cr_assert_eq(check(h, 20000, &rep), LC_LINEARIZABLE);
    lc_report_free(&rep);
    free(h);
}

Test(lincheck, corrupting_a_large_history_is_caught, .timeout = 120)
{
    size_t n = 20000;
    lc_op *h = malloc(n * sizeof(lc_op));
    s_valid_history(h, n, 8, 5, 4);
    /* A read late in the history returns a value overwritten long ago. */
    size_t i = n - 1;
    while (h[i].type != LC_GET || h[i].status != LC_OK) {
        i--;
    }
    h[i].out = h[0].type == LC_PUT ? h[0].arg : 999999999;
    h[i].key = h[0].key;
    lc_report rep;
    cr_assert_eq(check(h, n, &rep), LC_VIOLATION);
    cr_assert_eq(rep.bad_op, i);
    lc_report_free(&rep);
    free(h);
}

Test(lincheck, many_unseen_unknown_writes_stay_cheap, .timeout = 60)
{
    /* 60 unknown writes nobody reads, all pending at once, and a CAS that
     * answered "mismatch" which only one of them can explain. */
    lc_op h[70];
    size_t n = 0;
    h[n++] = put(1, X, 1, 0, 1);
    for (int i = 0; i < 60; i++) {
        h[n++] = with(put(2 + (uint32_t)i, X, 100 + (uint64_t)i, 2 + i, 70),
                      LC_INFO);
    }
    h[n++] = cas(90, X, 1, 5, false, 80, 81);
    h[n++] = put(91, X, 2, 90, 91);
    h[n++] = get(92, X, 2, 92, 93);
    lc_report rep;
    cr_assert_eq(check(h, n, &rep), LC_LINEARIZABLE);
    lc_report_free(&rep);
    /* The old value cannot come back once one of them explained the
     * mismatch. */
    h[n - 2] = get(91, X, 1, 85, 86);
    cr_assert_eq(check(h, n - 1, &rep), LC_VIOLATION);
    lc_report_free(&rep);
}
