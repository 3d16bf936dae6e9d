/* main.c - zraft-sim: runs the deterministic simulator over many seeds.
 *
 *   zraft-sim [--from S] [--seeds N] [--seconds T] [--jobs J] [--seed S]
 *             [--steps K] [--voters V] [--verbose] [--stats] [--progress]
 *
 * Seeds S..S+N-1 run in order (--from 1 --seeds 100 by default); --from
 * random picks a start and says which first, so that a failure can be
 * replayed. --seconds T stops taking new seeds after T seconds of wall time
 * (each seed started is finished) and prints the range it covered. --jobs J
 * runs the seeds in J processes (fork) that take the next seed from a
 * shared counter, so the seeds covered are always one contiguous range.
 *
 * One line per failing seed names the seed, the step and the invariant, and
 * the command that replays it with a trace; then the range covered, the
 * failed seeds in order, and "N passed, M failed". Exits 1 if any seed
 * failed (or a worker died: its seed counts as failed), 2 on a usage error.
 * The simulator itself uses no clock and no threads: only this driver
 * reads the time, to honour --seconds. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

#define MAX_JOBS        64
#define PROGRESS_EVERY  30.0       /* seconds between --progress lines */
#define RANDOM_FROM_MIN 1000000ull /* above the fixed blocks CI runs */
#define RANDOM_FROM_MAX 4000000000ull

static void usage(FILE *f)
{
    fputs("usage: zraft-sim [--from S|random] [--seeds N] [--seconds T] "
          "[--jobs J]\n"
          "                 [--seed S] [--steps K] [--voters V] [--verbose] "
          "[--stats] [--progress]\n"
          "  --from S      first seed (default 1); 'random' picks one and "
          "prints it\n"
          "  --seeds N     run N seeds: S..S+N-1 (default 100, or no limit "
          "with --seconds)\n"
          "  --seconds T   take no new seed after T seconds; print the range "
          "covered\n"
          "  --jobs J      run seeds in J processes (default 1)\n"
          "  --seed S      run only seed S\n"
          "  --steps K     random steps per run before the liveness phase\n"
          "  --voters V    initial voters: 3, 5 or 7 (default: by seed; "
          "alias --nodes)\n"
          "  --verbose     trace every action, event and command (one job)\n"
          "  --stats       print what the runs exercised\n"
          "  --progress    print seeds done and the rate to stderr every "
          "30 s\n",
          f);
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (s == NULL || *s == '\0' || *s == '-') {
        return false;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno != 0) {
        return false;
    }
    *out = v;
    return true;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A seed in [RANDOM_FROM_MIN, RANDOM_FROM_MAX) from the kernel (or the
 * clock and pid if /dev/urandom cannot be read). */
static uint64_t random_from(void)
{
    uint64_t r = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, &r, sizeof r) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec ^
            ((uint64_t)getpid() << 32);
    }
    if (fd >= 0) {
        close(fd);
    }
    return RANDOM_FROM_MIN + r % (RANDOM_FROM_MAX - RANDOM_FROM_MIN);
}

/* ------------------------------------------------------------- records */

/* What a worker reports: one REC_FAIL per failing seed, one REC_DONE at
 * the end. Small enough (< PIPE_BUF) that a write to the shared pipe is
 * atomic. */
enum { REC_FAIL = 1, REC_DONE };
typedef struct {
    uint8_t kind;
    uint64_t seed, step; /* REC_FAIL */
    sim_stats stats;     /* REC_DONE: the worker's runs */
    char what[512];      /* REC_FAIL */
} rec;

/* Shared by the workers (MAP_SHARED), so that the parent knows what a
 * worker that died had done. */
typedef struct {
    uint64_t next;              /* next seed to take */
    uint64_t running[MAX_JOBS]; /* seed a worker is running */
    bool busy[MAX_JOBS];        /* running[] is under way */
    uint64_t passed[MAX_JOBS];  /* seeds a worker ran that passed */
} shared;

typedef struct {
    uint64_t from, last; /* seeds from..last */
    double deadline;     /* 0: none */
    uint32_t steps, voters;
    bool verbose;
    bool progress;
} plan;

/* The parent's (or the only process's) tally. */
typedef struct {
    uint64_t failed;
    uint64_t *bad; /* failed seeds */
    size_t nbad, capbad;
    sim_stats total;
    double started, last_progress;
} tally;

static void tally_fail(tally *t, const plan *p, uint64_t seed, uint64_t step,
                       const char *what)
{
    char extra[64] = "";
    size_t len = 0;
    if (p->steps) {
        len += (size_t)snprintf(extra + len, sizeof(extra) - len,
                                " --steps %" PRIu32, p->steps);
    }
    if (p->voters) {
        snprintf(extra + len, sizeof(extra) - len, " --voters %" PRIu32,
                 p->voters);
    }
    t->failed++;
    printf("FAIL seed %" PRIu64 " step %" PRIu64
           ": %s  (replay: zraft-sim --seed %" PRIu64 "%s --verbose)\n",
           seed, step, what, seed, extra);
    fflush(stdout);
    if (t->nbad == t->capbad) {
        t->capbad = t->capbad ? 2 * t->capbad : 16;
        t->bad = realloc(t->bad, t->capbad * sizeof(*t->bad));
        if (t->bad == NULL) {
            abort();
        }
    }
    t->bad[t->nbad++] = seed;
}

static void tally_progress(tally *t, const shared *sh, const plan *p)
{
    double now = now_s();
    if (!p->progress || now - t->last_progress < PROGRESS_EVERY) {
        return;
    }
    t->last_progress = now;
    uint64_t next = __atomic_load_n(&sh->next, __ATOMIC_RELAXED);
    uint64_t done = next > p->from ? next - p->from : 0;
    fprintf(stderr,
            "zraft-sim: %.0f s: %" PRIu64 " seeds taken (up to %" PRIu64
            "), %zu failed, %.0f seeds/s\n",
            now - t->started, done, next - 1, t->nbad,
            (double)done / (now - t->started));
}

/* ------------------------------------------------------------- workers */

/* Takes seeds from sh->next until the plan is done or the deadline has
 * passed; reports through `out` (a pipe) or, when out < 0, into `t`. */
static void work(shared *sh, int slot, const plan *p, int out, tally *t)
{
    sim_stats total;
    memset(&total, 0, sizeof(total));
    for (;;) {
        if (p->deadline > 0 && now_s() >= p->deadline) {
            break;
        }
        uint64_t seed = __atomic_fetch_add(&sh->next, 1, __ATOMIC_RELAXED);
        if (seed > p->last || seed < p->from) {
            break;
        }
        sh->running[slot] = seed;
        sh->busy[slot] = true;
        sim_options o = {.seed = seed,
                         .steps = p->steps,
                         .voters = p->voters,
                         .verbose = p->verbose};
        sim_result r;
        if (sim_run(&o, &r)) {
            sh->passed[slot]++;
        } else if (out >= 0) {
            rec x;
            memset(&x, 0, sizeof(x));
            x.kind = REC_FAIL;
            x.seed = seed;
            x.step = r.step;
            snprintf(x.what, sizeof(x.what), "%s", r.what);
            if (write(out, &x, sizeof(x)) != (ssize_t)sizeof(x)) {
                _exit(3);
            }
        } else {
            tally_fail(t, p, seed, r.step, r.what);
        }
        sim_stats_add(&total, &r.stats);
        sh->busy[slot] = false;
        if (out < 0) {
            tally_progress(t, sh, p);
        }
    }
    if (out >= 0) {
        rec x;
        memset(&x, 0, sizeof(x));
        x.kind = REC_DONE;
        x.stats = total;
        if (write(out, &x, sizeof(x)) != (ssize_t)sizeof(x)) {
            _exit(3);
        }
    } else {
        sim_stats_add(&t->total, &total);
    }
}

/* Runs the plan in `jobs` forked workers; the parent collects their
 * records. A worker that dies counts the seed it was running as failed.
 * Returns 0, or -1 if the workers could not be started. */
static int run_jobs(shared *sh, uint32_t jobs, const plan *p, tally *t)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("zraft-sim: pipe");
        return -1;
    }
    fflush(stdout);
    pid_t pids[MAX_JOBS];
    for (uint32_t j = 0; j < jobs; j++) {
        pids[j] = fork();
        if (pids[j] < 0) {
            perror("zraft-sim: fork");
            /* Stop the ones started: they take no new seed. */
            __atomic_store_n(&sh->next, p->last + 1, __ATOMIC_RELAXED);
            jobs = j;
            break;
        }
        if (pids[j] == 0) {
            close(fds[0]);
            work(sh, (int)j, p, fds[1], NULL);
            close(fds[1]);
            exit(0); /* not _exit: leak checkers run at exit */
        }
    }
    close(fds[1]);
    for (;;) {
        struct pollfd pf = {.fd = fds[0], .events = POLLIN};
        int rc = poll(&pf, 1, 1000);
        tally_progress(t, sh, p);
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (rc <= 0) {
            continue;
        }
        rec x;
        ssize_t got = read(fds[0], &x, sizeof(x));
        if (got == 0) {
            break; /* every worker closed its end */
        }
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got != (ssize_t)sizeof(x)) {
            fprintf(stderr, "zraft-sim: short record from a worker\n");
            break;
        }
        if (x.kind == REC_FAIL) {
            tally_fail(t, p, x.seed, x.step, x.what);
        } else if (x.kind == REC_DONE) {
            sim_stats_add(&t->total, &x.stats);
        }
    }
    close(fds[0]);
    for (uint32_t j = 0; j < jobs; j++) {
        int st = 0;
        while (waitpid(pids[j], &st, 0) < 0 && errno == EINTR) {
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            continue;
        }
        char what[128];
        if (WIFSIGNALED(st)) {
            snprintf(what, sizeof(what), "worker died of signal %d (%s)",
                     WTERMSIG(st), strsignal(WTERMSIG(st)));
        } else {
            snprintf(what, sizeof(what), "worker exited with status %d",
                     WEXITSTATUS(st));
        }
        if (sh->busy[j]) {
            tally_fail(t, p, sh->running[j], 0, what);
        } else {
            fprintf(stderr, "zraft-sim: %s between seeds\n", what);
            t->failed++;
        }
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    uint64_t seeds = 0, from = 1, seed = 0, steps = 0, voters = 0, jobs = 1;
    double seconds = 0;
    bool one = false, verbose = false, stats = false, progress = false;
    bool random = false, have_seeds = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--seeds") == 0) {
            ok = parse_u64(v, &seeds) && seeds > 0;
            have_seeds = true;
            i++;
        } else if (strcmp(a, "--from") == 0) {
            if (v != NULL && strcmp(v, "random") == 0) {
                random = true;
            } else {
                ok = parse_u64(v, &from) && from > 0;
            }
            i++;
        } else if (strcmp(a, "--seed") == 0) {
            ok = parse_u64(v, &seed);
            one = true;
            i++;
        } else if (strcmp(a, "--seconds") == 0) {
            uint64_t s;
            ok = parse_u64(v, &s) && s > 0;
            seconds = (double)s;
            i++;
        } else if (strcmp(a, "--jobs") == 0) {
            ok = parse_u64(v, &jobs) && jobs >= 1 && jobs <= MAX_JOBS;
            i++;
        } else if (strcmp(a, "--steps") == 0) {
            ok = parse_u64(v, &steps) && steps > 0 && steps <= UINT32_MAX;
            i++;
        } else if (strcmp(a, "--voters") == 0 || strcmp(a, "--nodes") == 0) {
            ok = parse_u64(v, &voters) &&
                 (voters == 3 || voters == 5 || voters == 7);
            i++;
        } else if (strcmp(a, "--verbose") == 0) {
            verbose = true;
        } else if (strcmp(a, "--stats") == 0) {
            stats = true;
        } else if (strcmp(a, "--progress") == 0) {
            progress = true;
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
    if (verbose && jobs > 1) {
        fprintf(stderr, "zraft-sim: --verbose runs one job\n");
        return 2;
    }
    plan p;
    memset(&p, 0, sizeof(p));
    p.steps = (uint32_t)steps;
    p.voters = (uint32_t)voters;
    p.verbose = verbose;
    p.progress = progress;
    if (one) {
        p.from = p.last = seed;
        jobs = 1;
    } else {
        if (random) {
            from = random_from();
        }
        if (!have_seeds) {
            seeds = seconds > 0 ? UINT64_MAX - from : 100;
        }
        p.from = from;
        p.last = seeds > UINT64_MAX - from ? UINT64_MAX - 1 : from + seeds - 1;
    }
    if (random) {
        printf("zraft-sim: random start %" PRIu64
               " (replay a failing seed with the command on its line)\n",
               p.from);
        fflush(stdout);
    }
    tally t;
    memset(&t, 0, sizeof(t));
    t.started = t.last_progress = now_s();
    if (seconds > 0) {
        p.deadline = t.started + seconds;
    }
    shared *sh = mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("zraft-sim: mmap");
        return 2;
    }
    memset(sh, 0, sizeof(*sh));
    sh->next = p.from;
    if (jobs == 1) {
        work(sh, 0, &p, -1, &t);
    } else if (run_jobs(sh, (uint32_t)jobs, &p, &t) != 0) {
        return 2;
    }
    double took = now_s() - t.started;
    uint64_t next = sh->next;
    uint64_t end = next - 1 < p.last ? next - 1 : p.last;
    if (stats) {
        sim_stats_print(stdout, &t.total);
    }
    uint64_t passed = 0;
    for (uint64_t j = 0; j < jobs; j++) {
        passed += sh->passed[j];
    }
    if (!one) {
        char vv[32] = "";
        if (voters) {
            snprintf(vv, sizeof(vv), " --voters %" PRIu64, voters);
        }
        printf("seeds %" PRIu64 "..%" PRIu64 " in %.1f s with %" PRIu64
               " job%s (this block: zraft-sim --from %" PRIu64
               " --seeds %" PRIu64 "%s)\n",
               p.from, end, took, jobs, jobs > 1 ? "s" : "", p.from,
               end - p.from + 1, vv);
    }
    if (t.nbad > 0) {
        qsort(t.bad, t.nbad, sizeof(*t.bad), cmp_u64);
        printf("failed seeds:");
        for (size_t i = 0; i < t.nbad; i++) {
            printf(" %" PRIu64, t.bad[i]);
        }
        printf("\n");
    }
    printf("%" PRIu64 " passed, %" PRIu64 " failed\n", passed, t.failed);
    munmap(sh, sizeof(shared));
    free(t.bad);
    return t.failed ? 1 : 0;
}
