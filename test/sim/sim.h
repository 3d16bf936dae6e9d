/* sim.h - the deterministic cluster simulator: N engines (core/engine.h) with
 * virtual time, a lossy, reordering, partitioning network, crashing nodes
 * whose storage keeps only what was flushed, and a checker that tests the
 * Raft safety properties after every step and liveness at the end.
 *
 * One run is a pure function of its options: the same seed (and steps and
 * voters) gives the same trace, so `zraft-sim --seed S --verbose` replays a
 * failure exactly. No threads, no clock, no global mutable state; everything
 * a run allocates is freed before sim_run() returns.
 *
 * docs/simulator.md describes the model and which invariant catches which
 * class of engine bug. */
#ifndef ZRAFT_TEST_SIM_H
#define ZRAFT_TEST_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Default number of steps of one run (zraft-sim --steps). */
#define SIM_DEFAULT_STEPS 3000

typedef struct {
    uint64_t seed;   /* the run's seed; everything random derives from it */
    uint32_t steps;  /* random steps before the liveness phase (0: default) */
    uint32_t voters; /* initial voters: 3, 5 or 7 (0: chosen by the seed) */
    bool verbose;    /* print a trace of every action, event and command */
    FILE *trace;     /* where the trace goes (NULL: stdout) */
} sim_options;

/* What a run did, to show that the runs are not vacuous. */
typedef struct {
    uint64_t runs;
    uint64_t steps;
    uint64_t virtual_ms;
    uint64_t leaders; /* distinct (term, leader) pairs */
    uint64_t max_term;
    uint64_t committed;       /* highest committed index */
    uint64_t writes_proposed; /* client entries the engines accepted */
    uint64_t writes_applied;  /* distinct client entries applied somewhere */
    uint64_t msgs_sent;
    uint64_t msgs_dropped;
    uint64_t msgs_duplicated;
    uint64_t crashes;
    uint64_t partitions;
    uint64_t snapshots_built;
    uint64_t snapshots_sent;
    uint64_t snapshots_installed;
    uint64_t compacted_reports; /* REPLICATE of purged entries */
    uint64_t stale_dropped;     /* held commands dropped (role gone) */
    uint64_t config_changes;    /* membership changes the leader accepted */
    uint64_t transfers;
    uint64_t reads_ready;
    uint64_t reads_failed;
} sim_stats;

typedef struct {
    bool ok;
    uint64_t step;  /* the step at which the first invariant failed */
    char what[512]; /* which invariant, with the details */
    sim_stats stats;
} sim_result;

/* Runs one simulation. Returns true when every invariant held; otherwise
 * res->step and res->what say which failed first (the run stops there). */
bool sim_run(const sim_options *o, sim_result *res);

/* acc += s, field by field (max_term and committed take the maximum). */
void sim_stats_add(sim_stats *acc, const sim_stats *s);
/* Prints the stats on one line. */
void sim_stats_print(FILE *f, const sim_stats *s);

#endif /* ZRAFT_TEST_SIM_H */
