/* resp_load.h - zraft-bench's --resp mode: drive a running zraftd's RESP
 * port with pipelined SETs. */
#ifndef ZRAFT_BENCH_RESP_LOAD_H
#define ZRAFT_BENCH_RESP_LOAD_H

#include "bench/http_load.h"

typedef struct {
    const char *target; /* host:port of the leader's RESP port */
    uint32_t clients, payload, pipeline;
    double duration;
    uint64_t ops;
    /* Optional: called about every 100 ms from the thread that watches the
     * run, with the time since the start and the writes done so far. */
    void (*sample)(void *arg, uint64_t t_us, uint64_t done);
    void *sample_arg;
} resp_load_opts;

/* Runs the load; 0, or -1 on bad options or no connection. The result is
 * http_load's (same histogram). */
int resp_load_run(const resp_load_opts *o, http_load_result *r);

#endif
