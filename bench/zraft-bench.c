/* zraft-bench - starts an N-node cluster in this process (in-process
 * network, memory storage) and drives it with C concurrent clients for a
 * duration or an op count; prints committed writes/s and latency
 * percentiles as a table and, with --json FILE, as JSON; with --report
 * FILE.html, as a self-contained page with charts (bench/report.c).
 *
 * Clients are closed loops without threads of their own: each keeps one
 * write outstanding and issues the next from the previous one's completion
 * callback (which runs on the leader's state machine thread and only queues
 * the next request). Latency is measured from zraft_write() to the
 * callback: committed on a quorum and applied on the leader. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bench/http_load.h"
#include "bench/report.h"
#include "bench/resp_load.h"
#include "bench/trace.h"
#include "zraft.h"
#include "zraft_disk.h"

#define HIST_US 200000 /* 1 us buckets up to 200 ms, then one overflow */

typedef struct {
    uint32_t nodes, clients, payload;
    double duration;
    uint64_t ops;
    const char *json;
    bool threads;
    const char *storage; /* "memory" or "disk" */
    const char *dir;
    const char *http;   /* host:port of a running zraftd cluster */
    const char *resp;   /* host:port of a zraftd RESP port (the leader's) */
    uint32_t pipeline;  /* --resp: requests in flight per connection */
    const char *report; /* --report FILE.html */
    char cmdline[1024]; /* the arguments, for the report */
    uint32_t trace;     /* --trace: sample one write in this many (0: off) */
    int spin;           /* --spin: zraft_config.spin_us (-1: the default) */
    /* In-process cluster: "inproc" (in-process network), "tcp" (ZeroMQ TCP
     * on 127.0.0.1) or "curve" (the same with CurveZMQ, fresh keys). */
    const char *transport;
    /* --transfer-every MS: hand leadership to the next node this often
     * (in-process runs), to measure writes through leader changes. */
    uint32_t transfer_ms;
    long prealloc; /* --prealloc: zraft_disk_options.prealloc_bytes (-1:
                      default) */
} opts;

typedef struct bench bench;

typedef struct {
    bench *b;
    uint64_t started_us;
    uint32_t idx;
} client;

struct bench {
    opts o;
    zraft_network *net;
    zraft_node *nodes[16];
    _Atomic zraft_id leader;
    client *clients;
    zraft_buf *payload;
    _Atomic uint64_t issued, done, errors;
    _Atomic bool stop;
    uint32_t *hist;
    uint64_t overflow;
    uint64_t max_us;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint32_t outstanding;
    /* Clients whose last write failed (a leader change: ZRAFT_ENOTLEADER,
     * or one lost with the old leader), under `lock`. The main thread
     * finds the new leader and sends them again; a client never retries
     * in a loop of its own against a node that no longer leads. */
    client **parked;
    uint32_t n_parked;
    uint64_t no_leader_us; /* main thread: parked clients found none since */
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int c_apply(void *ctx, const zraft_entry *e, zraft_buf **result)
{
    (void)ctx;
    (void)e;
    *result = NULL;
    return 0;
}

static int c_snapshot(void *ctx, zraft_buf **out)
{
    (void)ctx;
    *out = zraft_buf_new("", 0);
    return *out ? 0 : ZRAFT_ENOMEM;
}

static int c_restore(void *ctx, const zraft_buf *data)
{
    (void)ctx;
    (void)data;
    return 0;
}

static void c_destroy(void *ctx)
{
    (void)ctx;
}

static void s_issue(client *c);
static void s_park(client *c);

static void s_finish(bench *b)
{
    pthread_mutex_lock(&b->lock);
    b->outstanding--;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static void s_done(void *arg, int err, zraft_log_id id, zraft_buf *result)
{
    client *c = arg;
    bench *b = c->b;
    (void)id;
    (void)result;
    uint64_t us = now_us() - c->started_us;
    if (err != 0) {
        atomic_fetch_add(&b->errors, 1);
        s_park(c);
        return;
    } else {
        atomic_fetch_add(&b->done, 1);
        /* Callbacks of one leader run on one thread; the lock covers a
         * leader change. */
        pthread_mutex_lock(&b->lock);
        if (us < HIST_US) {
            b->hist[us]++;
        } else {
            b->overflow++;
        }
        if (us > b->max_us) {
            b->max_us = us;
        }
        pthread_mutex_unlock(&b->lock);
    }
    if (atomic_load(&b->stop)) {
        s_finish(b);
        return;
    }
    s_issue(c);
}

static void s_issue(client *c)
{
    bench *b = c->b;
    if (b->o.ops > 0 && atomic_fetch_add(&b->issued, 1) >= b->o.ops) {
        atomic_store(&b->stop, true);
        s_finish(b);
        return;
    }
    zraft_id l = atomic_load(&b->leader);
    c->started_us = now_us();
    int rv = zraft_write_buf(b->nodes[l], zraft_buf_ref(b->payload), s_done, c);
    if (rv != 0) {
        zraft_buf_unref(b->payload);
        atomic_fetch_add(&b->errors, 1);
        s_park(c);
    }
}

static void s_park(client *c)
{
    bench *b = c->b;
    if (atomic_load(&b->stop)) {
        s_finish(b);
        return;
    }
    pthread_mutex_lock(&b->lock);
    b->parked[b->n_parked++] = c;
    pthread_mutex_unlock(&b->lock);
}

/* The node that leads in the highest term, or 0. */
static zraft_id s_find_leader(bench *b)
{
    zraft_id leader = 0;
    uint64_t term = 0;
    for (uint32_t i = 1; i <= b->o.nodes; i++) {
        zraft_metrics m;
        if (zraft_metrics_get(b->nodes[i], &m) == 0 && m.role_code == 3 &&
            m.term > term) {
            leader = i;
            term = m.term;
        }
    }
    return leader;
}

/* Main thread: sends the parked clients again, to the leader now (if one
 * is known; else they wait for the next turn). On stop, finishes them. */
static void s_unpark(bench *b, bool stop)
{
    pthread_mutex_lock(&b->lock);
    bool none = b->n_parked == 0;
    pthread_mutex_unlock(&b->lock);
    if (none) {
        b->no_leader_us = 0;
        return;
    }
    zraft_id l = stop ? 0 : s_find_leader(b);
    if (!stop && l == 0) {
        /* A run that can find no leader for 10 s ends (an --ops run would
         * otherwise wait for good). */
        uint64_t now = now_us();
        if (b->no_leader_us == 0) {
            b->no_leader_us = now;
        } else if (now - b->no_leader_us >= 10000000u) {
            fprintf(stderr, "zraft-bench: no leader for 10 s; stopping\n");
            atomic_store(&b->stop, true);
        }
        return;
    }
    b->no_leader_us = 0;
    pthread_mutex_lock(&b->lock);
    uint32_t n = b->n_parked;
    client **them = malloc((n ? n : 1) * sizeof(*them));
    if (them != NULL) {
        memcpy(them, b->parked, n * sizeof(*them));
        b->n_parked = 0;
    } else {
        n = 0;
    }
    pthread_mutex_unlock(&b->lock);
    if (l != 0) {
        atomic_store(&b->leader, l);
    }
    for (uint32_t i = 0; i < n; i++) {
        if (stop) {
            s_finish(b);
        } else {
            s_issue(them[i]);
        }
    }
    free(them);
}

static bool p_leader(const zraft_metrics *m, void *arg)
{
    (void)arg;
    return m->leader != 0 && m->role_code == 3;
}

static uint64_t s_pct(bench *b, double p, uint64_t total)
{
    uint64_t want = (uint64_t)(p * (double)total);
    if (want >= total) {
        want = total - 1;
    }
    uint64_t seen = 0;
    for (uint32_t i = 0; i < HIST_US; i++) {
        seen += b->hist[i];
        if (seen > want) {
            return i;
        }
    }
    return b->max_us;
}

static void s_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL) {
        return;
    }
    struct dirent *de;
    fprintf(stderr, "threads:");
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        char path[300], name[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            if (fgets(name, sizeof name, f) != NULL) {
                name[strcspn(name, "\n")] = '\0';
            }
            fclose(f);
        }
        fprintf(stderr, " %s", name);
    }
    fprintf(stderr, "\n");
    closedir(d);
}

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s;
    (void)f;
    (void)w;
    return remove(p);
}

static uint64_t s_hist_pct(const uint32_t *h, uint32_t n, uint64_t total,
                           double p, uint64_t max)
{
    uint64_t want = (uint64_t)(p * (double)total), seen = 0;
    if (want >= total) {
        want = total - 1;
    }
    for (uint32_t i = 0; i < n; i++) {
        seen += h[i];
        if (seen > want) {
            return i;
        }
    }
    return max;
}

static void s_report(const opts *o, const char *transport, uint64_t done,
                     uint64_t errors, uint64_t elapsed, uint64_t p50,
                     uint64_t p99, uint64_t p999, uint64_t max)
{
    double wps = (double)done * 1e6 / (double)elapsed;
    printf("%-8s %-8s %-8s %-10s %-12s %-9s %-9s %-9s %-7s\n", "nodes",
           "clients", "payload", "ops", "writes/s", "p50_us", "p99_us",
           "p999_us", "errors");
    printf("%-8u %-8u %-8u %-10llu %-12.0f %-9llu %-9llu %-9llu %-7llu\n",
           o->nodes, o->clients, o->payload, (unsigned long long)done, wps,
           (unsigned long long)p50, (unsigned long long)p99,
           (unsigned long long)p999, (unsigned long long)errors);
    if (o->json == NULL) {
        return;
    }
    FILE *f = fopen(o->json, "w");
    if (f == NULL) {
        perror(o->json);
        return;
    }
    fprintf(f,
            "{\"nodes\":%u,\"clients\":%u,\"payload\":%u,"
            "\"duration_s\":%.3f,\"storage\":\"%s\","
            "\"transport\":\"%s\",\"pipeline\":%u,\"ops\":%llu,"
            "\"errors\":%llu,"
            "\"writes_per_sec\":%.1f,\"p50_us\":%llu,\"p99_us\":%llu,"
            "\"p999_us\":%llu,\"max_us\":%llu}\n",
            o->nodes, o->clients, o->payload, (double)elapsed / 1e6,
            o->http || o->resp ? "server" : o->storage, transport,
            o->resp ? o->pipeline : 1, (unsigned long long)done,
            (unsigned long long)errors, wps, (unsigned long long)p50,
            (unsigned long long)p99, (unsigned long long)p999,
            (unsigned long long)max);
    fclose(f);
}

/* --report: the page, from what the run measured. */
static int s_write_report(report *rp, const opts *o, const char *mode,
                          const char *storage, uint64_t done, uint64_t errors,
                          uint64_t elapsed, const uint32_t *hist, size_t n,
                          uint64_t overflow, uint64_t max)
{
    report_load(rp, 1);
    report_run run = {
        .mode = mode,
        .storage = storage,
        .target = o->http ? o->http : o->resp,
        .cmdline = o->cmdline,
        .nodes = o->nodes,
        .clients = o->clients,
        .payload = o->payload,
        .pipeline = o->resp ? o->pipeline : 1,
        .duration = o->duration,
        .ops_limit = o->ops,
        .done = done,
        .errors = errors,
        .elapsed_us = elapsed,
        .hist = hist,
        .n = n,
        .overflow = overflow,
        .max_us = max,
    };
    int rv = report_write(rp, o->report, &run);
    if (rv == 0) {
        fprintf(stderr, "zraft-bench: report written to %s\n", o->report);
    }
    return rv;
}

/* A new report with the machine's side measured (fdatasync in `dir`),
 * or NULL without --report. */
static report *s_report_start(const opts *o, const char *dir)
{
    if (o->report == NULL) {
        return NULL;
    }
    report *rp = report_new();
    if (rp != NULL) {
        report_probe_fsync(rp, dir);
        report_load(rp, 0);
    }
    return rp;
}

/* The directory of a path ("." if none), for the fsync probe. */
static void s_dirname(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(out, cap, ".");
    } else if (slash == path) {
        snprintf(out, cap, "/");
    } else {
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
    }
}

static void s_sample(void *arg, uint64_t t_us, uint64_t done)
{
    report_sample(arg, t_us, done);
}

/* Reports a run against a running cluster (--http, --resp). */
static int s_report_load(opts *o, const char *mode, http_load_result *r,
                         report *rp)
{
    uint64_t total = r->done ? r->done : 1;
    o->nodes = 0; /* unknown: an existing cluster */
    s_report(o, mode, r->done, r->errors, r->elapsed_us,
             s_hist_pct(r->hist, HTTP_HIST_US, total, 0.50, r->max_us),
             s_hist_pct(r->hist, HTTP_HIST_US, total, 0.99, r->max_us),
             s_hist_pct(r->hist, HTTP_HIST_US, total, 0.999, r->max_us),
             r->max_us);
    uint64_t overflow = r->done;
    for (uint32_t i = 0; i < HTTP_HIST_US; i++) {
        overflow -= r->hist[i];
    }
    int rv = 0;
    if (rp != NULL) {
        rv = s_write_report(rp, o, mode, "server", r->done, r->errors,
                            r->elapsed_us, r->hist, HTTP_HIST_US, overflow,
                            r->max_us);
    }
    free(r->hist);
    return r->done > 0 && rv == 0 ? 0 : 1;
}

static int s_http_mode(opts *o)
{
    char dir[512];
    s_dirname(o->report ? o->report : ".", dir, sizeof dir);
    report *rp = s_report_start(o, dir);
    http_load_opts ho = {.target = o->http,
                         .clients = o->clients,
                         .payload = o->payload,
                         .duration = o->duration,
                         .ops = o->ops,
                         .sample = rp ? s_sample : NULL,
                         .sample_arg = rp};
    http_load_result r;
    int rv = http_load_run(&ho, &r) != 0
                 ? 2
                 : s_report_load(o, "http+zmq-tcp", &r, rp);
    report_free(&rp);
    return rv;
}

static int s_resp_mode(opts *o)
{
    char dir[512];
    s_dirname(o->report ? o->report : ".", dir, sizeof dir);
    report *rp = s_report_start(o, dir);
    resp_load_opts ro = {.target = o->resp,
                         .clients = o->clients,
                         .payload = o->payload,
                         .pipeline = o->pipeline,
                         .duration = o->duration,
                         .ops = o->ops,
                         .sample = rp ? s_sample : NULL,
                         .sample_arg = rp};
    http_load_result r;
    int rv = resp_load_run(&ro, &r) != 0
                 ? 2
                 : s_report_load(o, "resp+zmq-tcp", &r, rp);
    report_free(&rp);
    return rv;
}

/* A TCP port of 127.0.0.1 that is free now (the kernel's pick). */
static unsigned s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    unsigned port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

static void usage(void)
{
    fprintf(
        stderr,
        "usage: zraft-bench [--nodes N] [--clients C] [--duration S]\n"
        "                   [--ops N] [--payload BYTES] [--json FILE]\n"
        "                   [--threads] [--storage memory|disk] [--dir DIR]\n"
        "                   [--report FILE.html]\n"
        "                   [--http HOST:PORT]\n"
        "                   [--resp HOST:PORT [--pipeline N]]\n"
        "                   [--trace[=N]] [--spin US]\n"
        "                   [--transport inproc|tcp|curve]\n"
        "                   [--transfer-every MS] [--prealloc BYTES]\n"
        "--http drives a running zraftd cluster (any node; redirects to\n"
        "the leader are followed) with C keep-alive HTTP clients, one PUT\n"
        "in flight each (one client thread, epoll).\n"
        "--resp drives the leader's RESP port with C connections, each\n"
        "keeping N SETs in flight (one client thread, epoll).\n"
        "Starts an N-node cluster in this process (in-process network,\n"
        "memory storage, or the durable log with fsync under DIR) and\n"
        "drives it with C closed-loop clients.\n"
        "--report writes a self-contained HTML page: throughput over time,\n"
        "a latency histogram, percentiles, the run's parameters, the\n"
        "machine (cores, fdatasync latency) and the version.\n"
        "--trace samples one write in N (default 64) and prints the median\n"
        "and p99 of each step of its commit path (in-process runs only).\n"
        "--spin sets the nodes' zraft_config.spin_us (0: never spin).\n"
        "--transport tcp runs the in-process cluster's nodes over ZeroMQ\n"
        "TCP on 127.0.0.1, curve the same with CurveZMQ\n"
        "(docs/security.md).\n"
        "--transfer-every hands leadership to the next node every MS\n"
        "milliseconds (in-process runs); writes that fail with the old\n"
        "leader count as errors, and the clients go on with the new one.\n"
        "--prealloc sets the disk store's zraft_disk_options.prealloc_bytes\n"
        "(0: off; docs/storage.md).\n");
}

int main(int argc, char **argv)
{
    static struct option lo[] = {
        {"nodes", 1, 0, 'n'},          {"clients", 1, 0, 'c'},
        {"duration", 1, 0, 'd'},       {"ops", 1, 0, 'o'},
        {"payload", 1, 0, 'p'},        {"json", 1, 0, 'j'},
        {"threads", 0, 0, 't'},        {"help", 0, 0, 'h'},
        {"storage", 1, 0, 's'},        {"dir", 1, 0, 'D'},
        {"http", 1, 0, 'H'},           {"resp", 1, 0, 'R'},
        {"pipeline", 1, 0, 'P'},       {"report", 1, 0, 'r'},
        {"trace", 2, 0, 'T'},          {"spin", 1, 0, 'S'},
        {"transfer-every", 1, 0, 'L'}, {"prealloc", 1, 0, 'A'},
        {"transport", 1, 0, 'X'},      {0, 0, 0, 0}};
    /* Static: the early returns (usage, --http, --resp) leave nothing on
     * the heap (LeakSanitizer saw the calloc'ed one once they returned). */
    static bench the_bench;
    bench *b = &the_bench;
    b->o = (opts){3,    16, 128,  5.0, 0, NULL, false,    "memory", NULL, NULL,
                  NULL, 1,  NULL, "",  0, -1,   "inproc", 0,        -1};
    for (int i = 0, off = 0; i < argc && off < (int)sizeof b->o.cmdline; i++) {
        off += snprintf(b->o.cmdline + off, sizeof b->o.cmdline - (size_t)off,
                        "%s%s", i ? " " : "", argv[i]);
    }
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'n':
            b->o.nodes = (uint32_t)atoi(optarg);
            break;
        case 'c':
            b->o.clients = (uint32_t)atoi(optarg);
            break;
        case 'd':
            b->o.duration = atof(optarg);
            break;
        case 'o':
            b->o.ops = strtoull(optarg, NULL, 10);
            break;
        case 'p':
            b->o.payload = (uint32_t)atoi(optarg);
            break;
        case 'j':
            b->o.json = optarg;
            break;
        case 't':
            b->o.threads = true;
            break;
        case 's':
            b->o.storage = optarg;
            break;
        case 'D':
            b->o.dir = optarg;
            break;
        case 'H':
            b->o.http = optarg;
            break;
        case 'R':
            b->o.resp = optarg;
            break;
        case 'P':
            b->o.pipeline = (uint32_t)atoi(optarg);
            break;
        case 'r':
            b->o.report = optarg;
            break;
        case 'S':
            b->o.spin = atoi(optarg);
            break;
        case 'L':
            b->o.transfer_ms = (uint32_t)atoi(optarg);
            break;
        case 'A':
            b->o.prealloc = atol(optarg);
            break;
        case 'T':
            b->o.trace = optarg ? (uint32_t)atoi(optarg) : 64;
            if (b->o.trace == 0) {
                fprintf(stderr, "zraft-bench: --trace=N needs N > 0\n");
                return 2;
            }
            break;
        case 'X':
            b->o.transport = optarg;
            break;
        default:
            usage();
            return ch == 'h' ? 0 : 2;
        }
    }
    if (b->o.nodes < 1 || b->o.nodes > 9 || b->o.clients < 1 ||
        b->o.clients > 100000 || b->o.payload < 8 ||
        b->o.payload > (64u << 20) || b->o.duration <= 0) {
        fprintf(stderr, "zraft-bench: invalid arguments (nodes 1..9, clients "
                        "1..100000, payload 8..64MiB, duration > 0)\n");
        return 2;
    }
    if (b->o.http != NULL) {
        return s_http_mode(&b->o);
    }
    if (b->o.resp != NULL) {
        if (b->o.pipeline < 1 || b->o.pipeline > 4096) {
            fprintf(stderr, "zraft-bench: --pipeline must be 1..4096\n");
            return 2;
        }
        return s_resp_mode(&b->o);
    }
    bool disk = strcmp(b->o.storage, "disk") == 0;
    if (!disk && strcmp(b->o.storage, "memory") != 0) {
        fprintf(stderr, "zraft-bench: --storage must be memory or disk\n");
        return 2;
    }
    char run[512] = "";
    if (disk) {
        const char *base = b->o.dir ? b->o.dir : "/tmp";
        snprintf(run, sizeof run, "%s/zraft-bench-%d", base, (int)getpid());
        if (mkdir(base, 0755) != 0 && errno != EEXIST) {
            perror(base);
            return 2;
        }
        if (mkdir(run, 0755) != 0) {
            perror(run);
            return 2;
        }
    }
    char rdir[512];
    s_dirname(b->o.report ? b->o.report : ".", rdir, sizeof rdir);
    /* The fsync probe runs where the log will be (disk), else next to the
     * report. */
    report *rp = s_report_start(&b->o, disk ? run : rdir);
    b->hist = calloc(HIST_US, sizeof(uint32_t));
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    bool tcp = strcmp(b->o.transport, "tcp") == 0;
    bool curve = strcmp(b->o.transport, "curve") == 0;
    if (!tcp && !curve && strcmp(b->o.transport, "inproc") != 0) {
        fprintf(stderr, "zraft-bench: --transport must be inproc, tcp or "
                        "curve\n");
        return 2;
    }
    b->net = tcp || curve ? NULL : zraft_network_new();
    zraft_member ms[16];
    memset(ms, 0, sizeof ms);
    char sec[16][ZRAFT_KEY_MAX];
    for (uint32_t i = 1; i <= b->o.nodes; i++) {
        ms[i - 1].id = i;
        ms[i - 1].roles = ZRAFT_ROLE_VOTER;
        if (tcp || curve) {
            snprintf(ms[i - 1].addr, sizeof ms[i - 1].addr, "127.0.0.1:%u",
                     s_free_port());
        }
        if (curve && zmq_curve_keypair(ms[i - 1].key, sec[i]) != 0) {
            fprintf(stderr, "zraft-bench: this libzmq has no CURVE\n");
            return 2;
        }
    }
    for (uint32_t i = 1; i <= b->o.nodes; i++) {
        zraft_config cfg;
        zraft_config_default(&cfg, i);
        cfg.network = b->net;
        if (b->o.spin >= 0) {
            cfg.spin_us = (uint32_t)b->o.spin;
        }
        if (tcp || curve) {
            snprintf(cfg.listen_addr, sizeof cfg.listen_addr, "%s",
                     ms[i - 1].addr);
        }
        if (curve) {
            cfg.curve_secret_key = sec[i];
        }
        zraft_fsm f = {NULL, c_apply, c_snapshot, c_restore, c_destroy};
        zraft_storage *st = zraft_storage_memory_new();
        if (disk) {
            char path[600], why[256];
            snprintf(path, sizeof path, "%s/node-%u", run, i);
            int err;
            zraft_storage_free(st);
            zraft_disk_options dopt;
            zraft_disk_options_default(&dopt);
            if (b->o.prealloc >= 0) {
                dopt.prealloc_bytes = (uint32_t)b->o.prealloc;
            }
            st = zraft_storage_disk_new(path, &dopt, &err, why, sizeof why);
            if (st == NULL) {
                fprintf(stderr, "zraft-bench: %s\n", why);
                return 1;
            }
        }
        int rv = zraft_node_new(&cfg, st, &f, &b->nodes[i]);
        if (rv != 0) {
            fprintf(stderr, "zraft-bench: node %u: %s\n", i,
                    zraft_strerror(rv));
            return 1;
        }
    }
    for (uint32_t i = 1; i <= b->o.nodes; i++) {
        zraft_initialize(b->nodes[i], ms, b->o.nodes);
    }
    if (zraft_wait(b->nodes[1], p_leader, NULL, 0) != 0) {
        /* Whoever it is: ask node 1 who leads. */
    }
    zraft_id leader = 0;
    for (int tries = 0; tries < 100 && leader == 0; tries++) {
        for (uint32_t i = 1; i <= b->o.nodes; i++) {
            if (zraft_wait(b->nodes[i], p_leader, NULL, 100) == 0) {
                leader = i;
                break;
            }
        }
    }
    if (leader == 0) {
        fprintf(stderr, "zraft-bench: no leader elected\n");
        return 1;
    }
    atomic_store(&b->leader, leader);
    b->payload = zraft_buf_new(NULL, b->o.payload);
    memset(b->payload->data, 'x', b->o.payload);
    b->clients = calloc(b->o.clients, sizeof(client));
    b->parked = calloc(b->o.clients, sizeof(client *));
    if (b->clients == NULL || b->parked == NULL) {
        fprintf(stderr, "zraft-bench: out of memory\n");
        return 1;
    }
    b->outstanding = b->o.clients;
    if (b->o.trace > 0 && bench_trace_start(b->o.trace) != 0) {
        fprintf(stderr, "zraft-bench: cannot start the trace\n");
        return 1;
    }
    uint64_t t0 = now_us();
    for (uint32_t i = 0; i < b->o.clients; i++) {
        b->clients[i].b = b;
        b->clients[i].idx = i;
        s_issue(&b->clients[i]);
    }
    uint64_t last_done = 0, last_t = t0;
    bool progress = b->o.duration > 3 || b->o.ops > 0;
    uint32_t ticks = 0;
    uint64_t transfers = 0, transfer_t = t0;
    while (!atomic_load(&b->stop)) {
        usleep(10000);
        s_unpark(b, false);
        if (b->o.transfer_ms > 0 &&
            now_us() - transfer_t >= b->o.transfer_ms * 1000ull) {
            transfer_t = now_us();
            zraft_id l = atomic_load(&b->leader);
            if (zraft_transfer_leader(b->nodes[l], l % b->o.nodes + 1) == 0) {
                transfers++;
            }
        }
        if (++ticks % 10 != 0) {
            continue; /* the rest every 100 ms */
        }
        uint64_t t = now_us();
        if (b->o.ops == 0 && t - t0 >= (uint64_t)(b->o.duration * 1e6)) {
            atomic_store(&b->stop, true);
        }
        if (rp != NULL) {
            report_sample(rp, t - t0, atomic_load(&b->done));
        }
        if (progress && t - last_t >= 1000000) {
            uint64_t d = atomic_load(&b->done);
            fprintf(stderr, "  %5.1fs  %10llu ops  %10.0f writes/s\n",
                    (double)(t - t0) / 1e6, (unsigned long long)d,
                    (double)(d - last_done) * 1e6 / (double)(t - last_t));
            last_done = d;
            last_t = t;
        }
        if (b->o.threads && t - t0 >= 500000) {
            s_threads();
            b->o.threads = false;
        }
    }
    pthread_mutex_lock(&b->lock);
    while (b->outstanding > 0) {
        pthread_mutex_unlock(&b->lock);
        s_unpark(b, true); /* parked before the stop was seen */
        pthread_mutex_lock(&b->lock);
        if (b->outstanding > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 10000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&b->cond, &b->lock, &ts);
        }
    }
    pthread_mutex_unlock(&b->lock);
    uint64_t elapsed = now_us() - t0;
    if (b->o.trace > 0) {
        bench_trace_report(stdout);
    }
    uint64_t done = atomic_load(&b->done), errors = atomic_load(&b->errors);
    double wps = (double)done * 1e6 / (double)elapsed;
    uint64_t total = done ? done : 1;
    uint64_t p50 = s_pct(b, 0.50, total), p99 = s_pct(b, 0.99, total),
             p999 = s_pct(b, 0.999, total);
    printf("%-8s %-8s %-8s %-10s %-12s %-9s %-9s %-9s %-7s\n", "nodes",
           "clients", "payload", "ops", "writes/s", "p50_us", "p99_us",
           "p999_us", "errors");
    printf("%-8u %-8u %-8u %-10llu %-12.0f %-9llu %-9llu %-9llu %-7llu\n",
           b->o.nodes, b->o.clients, b->o.payload, (unsigned long long)done,
           wps, (unsigned long long)p50, (unsigned long long)p99,
           (unsigned long long)p999, (unsigned long long)errors);
    if (b->o.json != NULL) {
        FILE *f = fopen(b->o.json, "w");
        if (f == NULL) {
            perror(b->o.json);
            return 1;
        }
        fprintf(f,
                "{\"nodes\":%u,\"clients\":%u,\"payload\":%u,"
                "\"duration_s\":%.3f,\"storage\":\"%s\","
                "\"transport\":\"%s\",\"ops\":%llu,\"errors\":%llu,"
                "\"writes_per_sec\":%.1f,\"p50_us\":%llu,\"p99_us\":%llu,"
                "\"p999_us\":%llu,\"max_us\":%llu,\"transfers\":%llu}\n",
                b->o.nodes, b->o.clients, b->o.payload, (double)elapsed / 1e6,
                b->o.storage, b->o.transport, (unsigned long long)done,
                (unsigned long long)errors, wps, (unsigned long long)p50,
                (unsigned long long)p99, (unsigned long long)p999,
                (unsigned long long)b->max_us, (unsigned long long)transfers);
        fclose(f);
    }
    int rv = 0;
    if (rp != NULL) {
        rv = s_write_report(rp, &b->o, "inproc", b->o.storage, done, errors,
                            elapsed, b->hist, HIST_US, b->overflow, b->max_us);
        report_free(&rp);
    }
    for (uint32_t i = 1; i <= b->o.nodes; i++) {
        zraft_node_destroy(&b->nodes[i]);
    }
    zraft_network_destroy(&b->net);
    if (disk) {
        nftw(run, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    zraft_buf_unref(b->payload);
    free(b->clients);
    free(b->parked);
    free(b->hist);
    return rv == 0 ? 0 : 1;
}
