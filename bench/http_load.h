/* http_load.h - zraft-bench's --http mode (drive a running zraftd cluster). */
#ifndef ZRAFT_BENCH_HTTP_LOAD_H
#define ZRAFT_BENCH_HTTP_LOAD_H

#include <stdbool.h>
#include <stdint.h>

#define HTTP_HIST_US 2000000 /* 1 us buckets up to 2 s */

typedef struct {
    const char *target; /* host:port of any node */
    uint32_t clients, payload;
    double duration;
    uint64_t ops;
    /* Optional: called about every 100 ms from the thread that watches the
     * run, with the time since the start and the writes done so far. */
    void (*sample)(void *arg, uint64_t t_us, uint64_t done);
    void *sample_arg;
} http_load_opts;

typedef struct {
    uint64_t done, errors, elapsed_us, max_us;
    uint32_t *hist; /* caller frees */
} http_load_result;

/* A TCP connection to host:port with Nagle off (the --http and --resp
 * clients' one way to connect); the fd, or -1. */
int load_tcp_connect(const char *host, const char *port);

/* Runs the load; 0, or -1 on bad options. */
int http_load_run(const http_load_opts *o, http_load_result *r);

#endif
