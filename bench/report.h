/* report.h - zraft-bench's --report FILE.html: one self-contained HTML page
 * per run (inline SVG and CSS, no script, nothing fetched) with throughput
 * over time, a latency histogram on a logarithmic axis, the percentile
 * table, the run's parameters, the machine (cores, CPU, memory, kernel,
 * load, a measured fdatasync latency) and zraft's version. Two reports side
 * by side compare two runs by eye; the numbers are also in the page as JSON
 * (<script type="application/json" id="zraft-bench">). */
#ifndef ZRAFT_BENCH_REPORT_H
#define ZRAFT_BENCH_REPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct report report;

/* What was run (borrowed until report_write returns). */
typedef struct {
    const char *mode;    /* "inproc", "http+zmq-tcp", "resp+zmq-tcp" */
    const char *storage; /* "memory", "disk", "server" */
    const char *target;  /* --http/--resp address, or NULL */
    const char *cmdline; /* the arguments, as given */
    uint32_t nodes;      /* 0: a running cluster of unknown size */
    uint32_t clients, payload, pipeline;
    double duration;       /* --duration (s) */
    uint64_t ops_limit;    /* --ops (0: none) */
    uint64_t done, errors; /* writes that succeeded, failed */
    uint64_t elapsed_us;
    /* Latency histogram: hist[i] writes took i..i+1 us (n buckets), then
     * `overflow` writes took longer; max_us the longest. */
    const uint32_t *hist;
    size_t n;
    uint64_t overflow, max_us;
} report_run;

/* A new report; caller owns it (report_free). NULL when out of memory. */
report *report_new(void);
void report_free(report **r);

/* Records that `done` writes had completed `t_us` after the start (call
 * every ~100 ms from the thread that watches the run; cumulative). */
void report_sample(report *r, uint64_t t_us, uint64_t done);

/* Measures fdatasync latency in `dir` (a file written 4 KiB at a time and
 * synced, then removed): before the run, so that it does not disturb it.
 * Quietly records nothing if the directory is not writable. */
void report_probe_fsync(report *r, const char *dir);

/* Reads the machine's load average, for the page (call at the start and
 * at the end of the run). */
void report_load(report *r, int end);

/* Writes the page to `path`; 0, or -1 with errno (the message printed). */
int report_write(report *r, const char *path, const report_run *run);

#endif
