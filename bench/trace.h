/* trace.h - zraft-bench --trace: the latency breakdown of sampled writes
 * (actors/trace.h stamps them), printed as the median and p99 of each step
 * of the commit path. */
#ifndef ZRAFT_BENCH_TRACE_H
#define ZRAFT_BENCH_TRACE_H

#include <stdint.h>
#include <stdio.h>

/* Samples one write in `every` from now on. 0, or a ZRAFT_E* error. */
int bench_trace_start(uint32_t every);
/* Stops sampling and prints the breakdown to `f`. */
void bench_trace_report(FILE *f);

#endif
