/* lincheck.h - a linearizability checker for a map of registers with put,
 * get and compare-and-set: the chaos campaign's judge (test/chaos).
 *
 * The search is Wing & Gong's, with Lowe's just-in-time linearization and
 * memoisation of (linearized set, state) as Porcupine does it; a map of
 * registers is checked one key at a time (linearizability is local:
 * Herlihy & Wing, "Linearizability", 1990, Theorem 1). An op whose outcome
 * is unknown (time-out, reset connection) may take effect at any time after
 * its invocation, or never: the search may skip it, and must place or skip
 * it by the first return of an op that saw its value (else by the last
 * "mismatch" CAS it could explain, else at the end). Unknown writes no op
 * saw are left out of a first search (exact when it passes) and kept, where
 * a failed CAS might need them, in a second that confirms a violation
 * (lincheck.c says why each step is sound). Failed ops (certainly not
 * applied) and reads of unknown outcome are left out.
 *
 * Values and keys are numbers; value 0 is "absent" (a GET that found
 * nothing reads 0; a key starts absent). Each value is written by one op
 * at most (the campaign's values are unique): the bounds put on unknown
 * ops, and the lost-write check, rely on it. */
#ifndef ZRAFT_CHAOS_LINCHECK_H
#define ZRAFT_CHAOS_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LC_ABSENT 0

typedef enum { LC_PUT, LC_GET, LC_CAS } lc_type;
/* OK: completed with a known result; FAIL: certainly not applied; INFO:
 * unknown (may have been applied, at any time after its invocation). */
typedef enum { LC_OK, LC_FAIL, LC_INFO } lc_status;

typedef struct {
    uint32_t client;
    uint8_t type;   /* lc_type */
    uint8_t status; /* lc_status */
    uint64_t key;
    uint64_t arg;  /* PUT: the value; CAS: the expected value */
    uint64_t arg2; /* CAS: the new value */
    uint64_t out;  /* GET: the value read; CAS (OK): 1 swapped, 0 mismatch */
    int64_t inv;   /* invocation time (any monotonic unit) */
    int64_t ret;   /* completion time (ignored for INFO) */
} lc_op;

typedef enum {
    LC_LINEARIZABLE = 0,
    LC_VIOLATION = 1,
    LC_GAVE_UP = 2, /* a key's search passed the state bound */
} lc_verdict;

typedef struct {
    lc_verdict verdict;
    size_t keys;    /* keys checked */
    size_t checked; /* ops that took part (OK and INFO, no INFO reads) */
    /* On a violation or give-up: the first such key, and the window of the
     * history that shows it (indexes into the caller's ops, in invocation
     * order; malloc'd, lc_report_free): the op that cannot be linearized,
     * the ops concurrent with it, and the write whose value the deepest
     * attempt had as the register's state. */
    uint64_t key;
    size_t bad_op;  /* the op no order could place */
    uint64_t state; /* the register at the deepest attempt */
    size_t depth;   /* ops of the key linearized at the deepest attempt */
    size_t key_ops; /* ops of the key */
    size_t *window;
    size_t n_window;
    /* LC_GAVE_UP only: the search without the unknown writes no op saw
     * found no order (so the window is that search's), and the exact one,
     * with those of them a failed CAS might need, passed its bound. */
    bool pruned_violation;
} lc_report;

/* Checks ops[0..n) (any order). max_states bounds the memo entries of one
 * key's search (0: 4 million); past it the verdict is LC_GAVE_UP. Fills
 * *rep (lc_report_free it). Returns the verdict, or -1 on ENOMEM. */
int lc_check(const lc_op *ops, size_t n, size_t max_states, lc_report *rep);
void lc_report_free(lc_report *rep);

/* No acknowledged write lost: finals[i] is the value key keys[i] held after
 * the final heal (read linearizably once the cluster is whole). A value can
 * be the last one only if no acknowledged write of that key (OK PUT,
 * swapped CAS) was invoked after the op that wrote it (values are unique
 * per key) returned; absent can be last only if no write was acknowledged.
 * Prints each lost write to `out`; returns how many keys lost one (a value
 * no op wrote counts too). */
size_t lc_lost_writes(const lc_op *ops, size_t n, const uint64_t *keys,
                      const uint64_t *finals, size_t nkeys, FILE *out);

/* One op as a line of the history file:
 *   client type key arg arg2 out status inv ret [# comment]
 * with type put|get|cas and status ok|fail|info (lc_print_op writes no
 * comment and no newline-less line; the caller may add one). */
void lc_print_op(FILE *f, const lc_op *op);
/* Parses one such line (blank lines and '#' comments: 1, nothing read).
 * 0 on success, -1 for a malformed line. */
int lc_parse_op(const char *line, lc_op *op);

#endif
