/* trace.c - zraft-bench --trace: reads the stamps of the sampled writes
 * (actors/trace.h) once the load stopped and prints, for each step of the
 * commit path, the median and p99 of the time between its two stages,
 * then the same for the whole write. A step may be negative for a sample
 * when two stages race (the leader's own write and the follower's, for
 * instance): the table shows that rather than hiding it. */
#include <stdlib.h>

#include "actors/trace.h"
#include "bench/trace.h"

#define TRACE_SLOTS 65536

/* The steps shown: from stage a to stage b. */
static const int s_steps[][2] = {
    {TRACE_PROPOSED, TRACE_CORE},     {TRACE_CORE, TRACE_SENT},
    {TRACE_SENT, TRACE_FRECV},        {TRACE_FRECV, TRACE_FDURABLE},
    {TRACE_FDURABLE, TRACE_FREPLIED}, {TRACE_FREPLIED, TRACE_ACKED},
    {TRACE_ACKED, TRACE_MATCHED},     {TRACE_MATCHED, TRACE_COMMITTED},
    {TRACE_COMMITTED, TRACE_APPLIED}, {TRACE_APPLIED, TRACE_CALLBACK},
    {TRACE_CORE, TRACE_LDURABLE},     {TRACE_PROPOSED, TRACE_CALLBACK},
};

int bench_trace_start(uint32_t every)
{
    return trace_enable(every, TRACE_SLOTS);
}

static int s_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double s_pct(const int64_t *v, uint32_t n, double p)
{
    uint32_t i = (uint32_t)(p * (double)n);
    return (double)v[i < n ? i : n - 1] / 1000.0;
}

void bench_trace_report(FILE *f)
{
    trace_disable();
    uint64_t(*t)[TRACE__COUNT] = calloc(TRACE_SLOTS, sizeof(*t));
    int64_t *d = calloc(TRACE_SLOTS, sizeof(int64_t));
    if (t == NULL || d == NULL) {
        free(t);
        free(d);
        return;
    }
    uint32_t n = trace_read(t, TRACE_SLOTS);
    fprintf(f, "trace: %u sampled writes with every stage stamped\n", n);
    if (n == 0) {
        free(t);
        free(d);
        return;
    }
    fprintf(f, "%-30s %10s %10s\n", "step", "p50_us", "p99_us");
    size_t nsteps = sizeof s_steps / sizeof s_steps[0];
    for (size_t k = 0; k < nsteps; k++) {
        int a = s_steps[k][0], b = s_steps[k][1];
        for (uint32_t i = 0; i < n; i++) {
            d[i] = (int64_t)(t[i][b] - t[i][a]);
        }
        qsort(d, n, sizeof *d, s_cmp);
        char name[64];
        snprintf(name, sizeof name, "%s -> %s", trace_stage_name(a),
                 trace_stage_name(b));
        if (k == nsteps - 2) {
            fprintf(f, "  (beside the chain)\n");
        }
        fprintf(f, "%-30s %10.1f %10.1f\n", name, s_pct(d, n, 0.5),
                s_pct(d, n, 0.99));
    }
    free(t);
    free(d);
}
