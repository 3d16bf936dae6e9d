/* main.c - zraft-sim: runs the deterministic simulator over many seeds.
 *
 *   zraft-sim --seeds N [--seed S] [--steps K] [--nodes V] [--verbose]
 *
 * --seeds N runs seeds 1..N; --seed S runs only S. One line per failing
 * seed names the seed, the step and the invariant, and the command that
 * replays it with a trace; the last line is "N passed, M failed". Exits 1
 * if any seed failed, 2 on a usage error. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void usage(FILE *f)
{
    fputs("usage: zraft-sim --seeds N [--seed S] [--steps K] [--nodes V] "
          "[--verbose]\n"
          "  --seeds N   run seeds 1..N (default 100)\n"
          "  --seed S    run only seed S\n"
          "  --steps K   random steps per run before the liveness phase\n"
          "  --nodes V   initial voters: 3, 5 or 7 (default: by seed)\n"
          "  --verbose   trace every action, event and command\n"
          "  --stats     print what the runs exercised\n",
          f);
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (s == NULL || *s == '\0') {
        return false;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    uint64_t seeds = 100, seed = 0, steps = 0, voters = 0;
    bool one = false, verbose = false, stats = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--seeds") == 0) {
            ok = parse_u64(v, &seeds);
            i++;
        } else if (strcmp(a, "--seed") == 0) {
            ok = parse_u64(v, &seed);
            one = true;
            i++;
        } else if (strcmp(a, "--steps") == 0) {
            ok = parse_u64(v, &steps) && steps > 0 && steps <= UINT32_MAX;
            i++;
        } else if (strcmp(a, "--nodes") == 0) {
            ok = parse_u64(v, &voters) &&
                 (voters == 3 || voters == 5 || voters == 7);
            i++;
        } else if (strcmp(a, "--verbose") == 0) {
            verbose = true;
        } else if (strcmp(a, "--stats") == 0) {
            stats = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "zraft-sim: bad argument %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    uint64_t first = one ? seed : 1, last = one ? seed : seeds;
    uint64_t passed = 0, failed = 0;
    sim_stats total;
    memset(&total, 0, sizeof(total));
    for (uint64_t s = first; s <= last && s >= first; s++) {
        sim_options o = {.seed = s,
                         .steps = (uint32_t)steps,
                         .voters = (uint32_t)voters,
                         .verbose = verbose};
        sim_result r;
        if (sim_run(&o, &r)) {
            passed++;
        } else {
            failed++;
            char extra[64] = "";
            size_t len = 0;
            if (steps) {
                len += (size_t)snprintf(extra + len, sizeof(extra) - len,
                                        " --steps %" PRIu64, steps);
            }
            if (voters) {
                snprintf(extra + len, sizeof(extra) - len, " --nodes %" PRIu64,
                         voters);
            }
            printf("FAIL seed %" PRIu64 " step %" PRIu64
                   ": %s  (replay: zraft-sim --seed %" PRIu64 "%s --verbose)\n",
                   s, r.step, r.what, s, extra);
            fflush(stdout);
        }
        sim_stats_add(&total, &r.stats);
    }
    if (stats) {
        sim_stats_print(stdout, &total);
    }
    printf("%" PRIu64 " passed, %" PRIu64 " failed\n", passed, failed);
    return failed ? 1 : 0;
}
