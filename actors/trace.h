/* trace.h - the commit path's latency breakdown: sampled writes stamped at
 * each stage on the threads that reach it (zraft-bench --trace).
 *
 * Off by default and compiled in: a stamp site costs one relaxed atomic
 * load and a branch while tracing is off. When on (trace_enable), one log
 * index in `every` is sampled; each stage of a sampled entry keeps the
 * first CLOCK_MONOTONIC time any thread stamps it at, so "follower received"
 * is the first follower to receive it (the one that makes the quorum of a
 * 3-node cluster). The table is process-wide: meant for a cluster whose
 * nodes all run in this process (zraft-bench), where the clocks agree. The
 * proposing node (the leader) is recorded with the sample so that leader
 * stages stamped on a follower (its own log write, its own apply) and
 * follower stages stamped on the leader are ignored.
 *
 * Threads: any thread stamps (atomics only, no lock); the reader
 * (trace_read) runs once the load stopped, so a sample it reads is
 * complete or visibly incomplete (a zero stamp). */
#ifndef ZRAFT_ACTORS_TRACE_H
#define ZRAFT_ACTORS_TRACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "zraft_types.h"

/* Stages, in commit-path order. L: stamped on the leader, F: on a follower. */
#define TRACE_STAGES(X)                                                        \
    X(PROPOSED)  /* L zraft_write() called */                                  \
    X(CORE)      /* L the core took the write from its queue */                \
    X(SENT)      /* L a replication stream sent the entry */                   \
    X(FRECV)     /* F the follower's core received it */                       \
    X(FDURABLE)  /* F the follower's log writer made it durable */             \
    X(FREPLIED)  /* F the follower's core sent the acknowledgement */          \
    X(ACKED)     /* L a stream received the acknowledgement */                 \
    X(MATCHED)   /* L the core handled the acknowledgement */                  \
    X(LDURABLE)  /* L the leader's own log write was durable */                \
    X(COMMITTED) /* L the core sent APPLY (committed, durable here) */         \
    X(APPLIED)   /* L the state machine applied it */                          \
    X(CALLBACK)  /* L the client's callback was called */

enum {
#define X_(name) TRACE_##name,
    TRACE_STAGES(X_)
#undef X_
        TRACE__COUNT
};

/* One sample in every this many log indexes; 0 = tracing off. */
extern _Atomic uint32_t trace_every;

/* True when `index` is sampled (cheap; false while tracing is off). */
static inline bool trace_sampled(uint64_t index)
{
    uint32_t every = atomic_load_explicit(&trace_every, memory_order_relaxed);
    return every != 0 && index % every == 0;
}

/* Starts tracing one index in `every` (> 0) with room for `slots` samples
 * (the last ones are kept). 0, or ZRAFT_ENOMEM / ZRAFT_EINVAL. Call it
 * before the load starts. */
int trace_enable(uint32_t every, uint32_t slots);
/* Stops stamping and frees the table. */
void trace_disable(void);

/* The current monotonic time in nanoseconds. */
uint64_t trace_now_ns(void);

/* Starts the sample of `index` (sampled) proposed by `leader` at `t_ns`. */
void trace_begin(uint64_t index, zraft_id leader, uint64_t t_ns);
/* Stamps `stage` of `index` now, from node `node`, if it is a sampled index
 * that has no such stamp yet. */
void trace_stamp(zraft_id node, uint64_t index, int stage);
/* Stamps `stage` now for every sampled index in [lo, hi] (a batch: an
 * append, an acknowledgement, a commit). */
void trace_stamp_range(zraft_id node, uint64_t lo, uint64_t hi, int stage);

/* Name of a stage ("PROPOSED", ...). */
const char *trace_stage_name(int stage);

/* Copies the stamps of up to `max` complete samples (every stage stamped)
 * into out[i][stage], in ns. Returns how many. */
uint32_t trace_read(uint64_t (*out)[TRACE__COUNT], uint32_t max);

#endif
