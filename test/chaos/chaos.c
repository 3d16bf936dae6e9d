/* chaos.c - zraft-chaos: a Jepsen-style fault campaign against real zraftd
 * processes, judged by the linearizability checker (lincheck.h).
 *
 *   zraft-chaos --zraftd PATH [--seed N] [--runs R] [--duration S]
 *               [--nodes 3|5] [--clients K] [--keys N] [--faults LIST]
 *               [--dir DIR] [--keep]
 *
 * One run: N zraftd processes, node i on its own loopback address
 * 127.0.0.(100+i) (raft and HTTP ports there), running as group id
 * gid_base+i, durable log with fdatasync. K client threads do random PUTs
 * of unique values, linearizable GETs and compare-and-sets
 * (PUT ?if-match=) against random nodes (following redirects), each op
 * recorded with its invocation and completion times and its outcome: ok,
 * fail (certainly not applied: refused before the node took it) or info
 * (unknown: time-out, reset, an error after the node took it). Meanwhile
 * one nemesis thread plays a schedule drawn from the seed (printed, so a
 * run repeats): kill -9 and restart, SIGSTOP/SIGCONT, partitions (a node
 * cut off, the leader cut off, a bridge, a majority ring with 5 nodes),
 * leader transfers and membership changes (remove a voter, add it back as
 * a learner, promote it). Partitions are iptables rules in a chain of this
 * run's own (ZCHAOS<pid>, jumped to from OUTPUT, removed at the end) that
 * drop what a node's group sends to another node's address.
 *
 * At the end: heal everything, wait for one leader and every node caught
 * up, read every key linearizably, check the history for linearizability
 * and that no acknowledged write was lost. On failure the run's directory
 * (seed, schedule, fault log, history, node logs) is kept and the failing
 * window of the history printed. Exit status: 0 every run passed, 1 a run
 * failed, 2 bad usage or the cluster could not start. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lincheck.h"

#define MAX_NODES     5
#define MAX_CLIENTS   64
#define OP_TIMEOUT_MS 3000
#define MAX_EVENTS    512

/* ------------------------------------------------------------- options */

static struct {
    const char *zraftd;
    uint64_t seed;
    int runs;
    int duration; /* s */
    int nodes;
    int clients;
    int keys;
    const char *faults; /* comma list, "all" */
    const char *dir;
    bool keep;
} O = {NULL, 1, 1, 30, 3, 8, 8, "all", "/tmp", false};

/* Set by SIGINT/SIGTERM: the run stops, cleans up (processes, iptables
 * chain) and exits. */
static volatile sig_atomic_t g_signalled;

static void s_on_signal(int sig)
{
    (void)sig;
    g_signalled = 1;
}

/* ---------------------------------------------------------------- util */

static int64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void s_sleep_ms(int64_t ms)
{
    if (ms <= 0) {
        return;
    }
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* splitmix64: the schedule's and the clients' random numbers. */
static uint64_t s_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int s_between(uint64_t *s, int lo, int hi)
{
    return lo + (int)(s_rand(s) % (uint64_t)(hi - lo + 1));
}

/* ------------------------------------------------------------- cluster */

typedef enum { N_UP, N_KILLED, N_PAUSED } node_state;

typedef struct {
    int id;
    char ip[16];
    int raft_port, http_port;
    gid_t gid;
    pid_t pid;
    node_state st;
    bool removed; /* not a voter (membership nemesis) */
} node;

typedef struct {
    char dir[512];
    int n;
    node nd[MAX_NODES];
    char chain[32];
    bool iptables; /* partitions available */
    bool tmpfs;    /* each data dir a small tmpfs: full disk available */
    int64_t t0;
    FILE *flog; /* fault log */
    pthread_mutex_t lock;
} cluster;

static void s_flog(cluster *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void s_flog(cluster *c, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&c->lock);
    fprintf(c->flog, "%8.3f ", (double)(s_now_ns() - c->t0) / 1e9);
    va_start(ap, fmt);
    vfprintf(c->flog, fmt, ap);
    va_end(ap);
    fputc('\n', c->flog);
    fflush(c->flog);
    pthread_mutex_unlock(&c->lock);
}

static void s_node_start(cluster *c, node *n)
{
    char ic[512] = "", a[64], h[64], d[600], log[600], id[8];
    for (int i = 0; i < c->n; i++) {
        char one[64];
        snprintf(one, sizeof one, "%s%d=%s:%d", i ? "," : "", c->nd[i].id,
                 c->nd[i].ip, c->nd[i].raft_port);
        strcat(ic, one);
    }
    snprintf(a, sizeof a, "%s:%d", n->ip, n->raft_port);
    snprintf(h, sizeof h, "%s:%d", n->ip, n->http_port);
    snprintf(d, sizeof d, "%s/n%d", c->dir, n->id);
    snprintf(log, sizeof log, "%s/node%d.log", c->dir, n->id);
    snprintf(id, sizeof id, "%d", n->id);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
#ifdef ZRAFT_SLOWDISK_SO
        char slow[600];
        snprintf(slow, sizeof slow, "%s/slow%d", c->dir, n->id);
        setenv("LD_PRELOAD", ZRAFT_SLOWDISK_SO, 1);
        setenv("ZRAFT_SLOWDISK", slow, 1);
#endif
        /* Its own group: what the partition rules match. */
        if (c->iptables && (setgroups(0, NULL) != 0 || setgid(n->gid) != 0)) {
            perror("zraft-chaos: setgid");
            _exit(126);
        }
        execl(O.zraftd, O.zraftd, "--id", id, "--raft-addr", a, "--http-addr",
              h, "--data-dir", d, "--initial-cluster", ic,
              "--election-timeout-min-ms", "300", "--election-timeout-max-ms",
              "600", (char *)NULL);
        perror("zraft-chaos: exec zraftd");
        _exit(127);
    }
    n->pid = pid;
    n->st = N_UP;
}

static void s_node_kill(node *n)
{
    if (n->pid > 0) {
        kill(n->pid, SIGCONT);
        kill(n->pid, SIGKILL);
        waitpid(n->pid, NULL, 0);
        n->pid = 0;
    }
    n->st = N_KILLED;
}

/* Runs an iptables command (words after "iptables -w"); 0 on success. */
static int s_ipt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_ipt(const char *fmt, ...)
{
    char args[512], cmd[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "iptables -w %s >/dev/null 2>&1", args);
    int rv = system(cmd);
    return rv == 0 ? 0 : -1;
}

static void s_heal(cluster *c)
{
    if (c->iptables) {
        s_ipt("-F %s", c->chain);
    }
}

/* Cuts the link between nodes a and b, both ways: what either node's
 * group sends to the other's address is dropped. */
static void s_cut(cluster *c, int a, int b)
{
    s_ipt("-A %s -m owner --gid-owner %u -d %s -j DROP", c->chain,
          (unsigned)c->nd[a].gid, c->nd[b].ip);
    s_ipt("-A %s -m owner --gid-owner %u -d %s -j DROP", c->chain,
          (unsigned)c->nd[b].gid, c->nd[a].ip);
}

static int s_cluster_init(cluster *c, uint64_t seed)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    snprintf(c->dir, sizeof c->dir, "%s/zraft-chaos-%" PRIu64 "-%d", O.dir,
             seed, (int)getpid());
    if (mkdir(c->dir, 0755) != 0) {
        fprintf(stderr, "zraft-chaos: mkdir %s: %s\n", c->dir, strerror(errno));
        return -1;
    }
    char p[600];
    snprintf(p, sizeof p, "%s/faults.log", c->dir);
    c->flog = fopen(p, "w");
    if (c->flog == NULL) {
        return -1;
    }
    c->n = O.nodes;
    /* Ports and group ids from the clock and pid: other runs on this
     * machine (other helpers, other seeds) must not collide. */
    uint64_t r = (uint64_t)s_now_ns() ^ ((uint64_t)getpid() << 20);
    int base = 20000 + (int)(s_rand(&r) % 30000);
    gid_t gbase = 40000 + (gid_t)(s_rand(&r) % 20000) * 8;
    for (int i = 0; i < c->n; i++) {
        node *n = &c->nd[i];
        n->id = i + 1;
        snprintf(n->ip, sizeof n->ip, "127.0.0.%d", 101 + i);
        n->raft_port = base + 2 * i;
        n->http_port = base + 2 * i + 1;
        n->gid = gbase + (gid_t)i;
    }
    /* Full disk: each data directory a 128 MiB tmpfs, filled by the
     * fault (as test/system/full_disk.sh does). Only when asked for by
     * name or "all", and only as root. */
    c->tmpfs = geteuid() == 0;
    for (int i = 0; i < c->n && c->tmpfs; i++) {
        char d[600];
        snprintf(d, sizeof d, "%s/n%d", c->dir, c->nd[i].id);
        if (mkdir(d, 0755) != 0 ||
            mount("tmpfs", d, "tmpfs", 0, "size=128m") != 0) {
            fprintf(stderr,
                    "zraft-chaos: cannot mount a tmpfs on %s: %s; "
                    "full-disk left out\n",
                    d, strerror(errno));
            for (int j = 0; j < i; j++) {
                snprintf(d, sizeof d, "%s/n%d", c->dir, c->nd[j].id);
                umount2(d, MNT_DETACH);
            }
            c->tmpfs = false;
        }
    }
    snprintf(c->chain, sizeof c->chain, "ZCHAOS%d", (int)getpid());
    c->iptables = geteuid() == 0 && s_ipt("-N %s", c->chain) == 0;
    if (c->iptables && s_ipt("-I OUTPUT -j %s", c->chain) != 0) {
        s_ipt("-X %s", c->chain);
        c->iptables = false;
    }
    if (!c->iptables) {
        fprintf(stderr, "zraft-chaos: no iptables (needs root): partitions "
                        "left out\n");
    }
    c->t0 = s_now_ns();
    return 0;
}

static void s_cluster_stop(cluster *c)
{
    for (int i = 0; i < c->n; i++) {
        s_node_kill(&c->nd[i]);
    }
    if (c->iptables) {
        s_ipt("-D OUTPUT -j %s", c->chain);
        s_ipt("-F %s", c->chain);
        s_ipt("-X %s", c->chain);
        c->iptables = false;
    }
    for (int i = 0; i < c->n && c->tmpfs; i++) {
        char d[600];
        snprintf(d, sizeof d, "%s/n%d", c->dir, c->nd[i].id);
        umount2(d, MNT_DETACH);
    }
    c->tmpfs = false;
    if (c->flog) {
        fclose(c->flog);
        c->flog = NULL;
    }
}

/* ---------------------------------------------------------------- HTTP */

typedef struct {
    char *buf;
    size_t len, cap;
} body;

static size_t s_collect(char *p, size_t sz, size_t nm, void *arg)
{
    body *b = arg;
    size_t n = sz * nm;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + n;
        char *nb = realloc(b->buf, cap);
        if (nb == NULL) {
            return 0;
        }
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return n;
}

/* One HTTP call (redirects followed); the curl code, status in *status,
 * body in *b (reset first). */
static CURLcode s_http(CURL *h, const char *method, const char *url,
                       const char *data, long timeout_ms, long *status, body *b)
{
    b->len = 0;
    if (b->buf) {
        b->buf[0] = '\0';
    }
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 4L);
    curl_easy_setopt(h, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    /* A new connection for every call: on a reused one that the server
     * closed, curl resends the request on a fresh connection, and a failed
     * connect would then hide that the request was sent once already (an
     * op we would call failed could have been applied). */
    curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    if (data != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(data));
    }
    CURLcode rc = curl_easy_perform(h);
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    return rc;
}

/* Node i's /cluster/status field `name` as a number (-1: unreachable or
 * null); role copied when asked. */
static int64_t s_status(CURL *h, const node *n, const char *name, char *role,
                        size_t rcap)
{
    char url[128];
    snprintf(url, sizeof url, "http://%s:%d/cluster/status", n->ip,
             n->http_port);
    body b = {0};
    long st;
    int64_t v = -1;
    if (s_http(h, "GET", url, NULL, 1000, &st, &b) == CURLE_OK && st == 200) {
        cJSON *o = cJSON_Parse(b.buf);
        cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
        if (cJSON_IsNumber(f)) {
            v = (int64_t)f->valuedouble;
        }
        cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "role");
        if (role && cJSON_IsString(r)) {
            snprintf(role, rcap, "%s", r->valuestring);
        }
        cJSON_Delete(o);
    }
    free(b.buf);
    return v;
}

/* The node that leads, as every live node says (index), or -1. */
static int s_leader(cluster *c, CURL *h)
{
    int l = -1;
    for (int i = 0; i < c->n; i++) {
        if (c->nd[i].st != N_UP) {
            continue;
        }
        char role[32] = "";
        s_status(h, &c->nd[i], "leader", role, sizeof role);
        if (!strcmp(role, "leader")) {
            l = i;
        }
    }
    return l;
}

/* ------------------------------------------------------------- history */

/* What the client saw of an op (the history file's comment): the node
 * asked, curl's code, the HTTP status and the start of the body. */
typedef struct {
    char s[72];
} op_note;

typedef struct {
    lc_op *ops;
    op_note *notes;
    size_t n, cap;
    pthread_mutex_t lock;
} history;

static void s_record(history *h, const lc_op *o, const op_note *note)
{
    pthread_mutex_lock(&h->lock);
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 4096;
        lc_op *n = realloc(h->ops, cap * sizeof(lc_op));
        op_note *nn = n ? realloc(h->notes, cap * sizeof(op_note)) : NULL;
        if (n == NULL || nn == NULL) {
            pthread_mutex_unlock(&h->lock);
            fprintf(stderr, "zraft-chaos: out of memory\n");
            exit(2);
        }
        h->ops = n;
        h->notes = nn;
        h->cap = cap;
    }
    h->notes[h->n] = *note;
    h->ops[h->n++] = *o;
    pthread_mutex_unlock(&h->lock);
}

static void s_note(op_note *n, int node, CURLcode rc, long st, const body *b)
{
    char bb[40] = "";
    if (b->buf != NULL) {
        snprintf(bb, sizeof bb, "%s", b->buf);
        for (char *p = bb; *p; p++) {
            if (*p == '\n' || *p == '\r') {
                *p = ' ';
            }
        }
    }
    snprintf(n->s, sizeof n->s, "n%d curl=%d http=%ld %s", node, (int)rc, st,
             bb);
}

/* ------------------------------------------------------------- clients */

typedef struct {
    cluster *c;
    history *h;
    int id;
    uint64_t rng;
    atomic_bool *stop;
    atomic_uint_fast64_t *next_value;
    uint64_t last[256]; /* last value seen per key (CAS expects it) */
    int64_t t0;
} client;

/* Whether a write's error answer says for certain it was not applied: no
 * leader was known, so the node never took it. */
static bool s_refused(long status, const body *b)
{
    return status == 503 && b->buf && strstr(b->buf, "ENOTLEADER") != NULL;
}

/* One random op, recorded; its status. */
static int s_client_op(client *cl, CURL *h, body *b)
{
    cluster *c = cl->c;
    const node *n = &c->nd[s_rand(&cl->rng) % (uint64_t)c->n];
    uint64_t key = 1 + s_rand(&cl->rng) % (uint64_t)O.keys;
    int r = (int)(s_rand(&cl->rng) % 100);
    lc_op o = {(uint32_t)cl->id, LC_GET, LC_INFO, key, 0, 0, 0, 0, 0};
    char url[256], val[32];
    if (r < 40) {
        o.type = LC_PUT;
        o.arg = atomic_fetch_add(cl->next_value, 1);
        snprintf(url, sizeof url, "http://%s:%d/kv/k%" PRIu64 "?timeout=1000",
                 n->ip, n->http_port, key);
    } else if (r < 75) {
        snprintf(url, sizeof url, "http://%s:%d/kv/k%" PRIu64 "?timeout=1000",
                 n->ip, n->http_port, key);
    } else {
        o.type = LC_CAS;
        o.arg = cl->last[key % 256];
        o.arg2 = atomic_fetch_add(cl->next_value, 1);
        if (o.arg == LC_ABSENT) {
            o.type = LC_PUT; /* nothing to expect yet */
            o.arg = o.arg2;
            o.arg2 = 0;
            snprintf(url, sizeof url,
                     "http://%s:%d/kv/k%" PRIu64 "?timeout=1000", n->ip,
                     n->http_port, key);
        } else {
            snprintf(url, sizeof url,
                     "http://%s:%d/kv/k%" PRIu64
                     "?timeout=1000&if-match=%" PRIu64,
                     n->ip, n->http_port, key, o.arg);
        }
    }
    long st = 0;
    o.inv = s_now_ns() - cl->t0;
    CURLcode rc;
    if (o.type == LC_GET) {
        rc = s_http(h, "GET", url, NULL, OP_TIMEOUT_MS, &st, b);
    } else {
        snprintf(val, sizeof val, "%" PRIu64,
                 o.type == LC_PUT ? o.arg : o.arg2);
        rc = s_http(h, "PUT", url, val, OP_TIMEOUT_MS, &st, b);
    }
    o.ret = s_now_ns() - cl->t0;
    if (rc == CURLE_COULDNT_CONNECT) {
        o.status = LC_FAIL; /* nothing sent */
    } else if (rc == CURLE_OK) {
        if (o.type == LC_GET && st == 200) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(b->buf ? b->buf : "", &end, 10);
            o.status = LC_OK;
            o.out = (errno == 0 && end != b->buf && *end == '\0')
                        ? (uint64_t)v
                        : UINT64_MAX; /* garbage: never written */
            cl->last[key % 256] = o.out;
        } else if (o.type == LC_GET && st == 404 && b->buf &&
                   strstr(b->buf, "key not found")) {
            o.status = LC_OK;
            o.out = LC_ABSENT;
        } else if (o.type != LC_GET && st == 204) {
            o.status = LC_OK;
            o.out = 1;
            cl->last[key % 256] = o.type == LC_PUT ? o.arg : o.arg2;
        } else if (o.type == LC_CAS && st == 412) {
            o.status = LC_OK;
            o.out = 0;
            cl->last[key % 256] = LC_ABSENT;
        } else if (o.type != LC_GET && s_refused(st, b)) {
            o.status = LC_FAIL;
        }
    }
    if (o.type == LC_PUT) {
        o.out = 0;
    }
    op_note note;
    s_note(&note, n->id, rc, st, b);
    s_record(cl->h, &o, &note);
    return o.status;
}

static void *s_client(void *arg)
{
    client *cl = arg;
    CURL *h = curl_easy_init();
    body b = {0};
    while (!atomic_load(cl->stop)) {
        if (s_client_op(cl, h, &b) != LC_OK) {
            s_sleep_ms(20); /* a node down: do not spin on it */
        }
    }
    free(b.buf);
    curl_easy_cleanup(h);
    return NULL;
}

/* ------------------------------------------------------------- nemesis */

typedef enum {
    F_KILL,
    F_KILL_MAJORITY,
    F_PAUSE,
    F_PAUSE_LEADER,
    F_PART_ONE,
    F_PART_LEADER,
    F_PART_BRIDGE,
    F_PART_RING,
    F_TRANSFER,
    F_MEMBER,
    F_SLOW_DISK,
    F_FULL_DISK,
    F_COUNT
} fault_kind;

static const char *const fault_names[F_COUNT] = {
    [F_KILL] = "kill",
    [F_KILL_MAJORITY] = "kill-majority",
    [F_PAUSE] = "pause",
    [F_PAUSE_LEADER] = "pause-leader",
    [F_PART_ONE] = "partition-one",
    [F_PART_LEADER] = "partition-leader",
    [F_PART_BRIDGE] = "partition-bridge",
    [F_PART_RING] = "partition-ring",
    [F_TRANSFER] = "transfer",
    [F_MEMBER] = "member",
    [F_SLOW_DISK] = "slow-disk",
    [F_FULL_DISK] = "full-disk",
};

typedef struct {
    int64_t at_ms, dur_ms;
    fault_kind kind;
    int target; /* node index (unused by partition-leader) */
    int other;  /* bridge: the second cut-off side's node */
} fault;

typedef struct {
    fault ev[MAX_EVENTS];
    int n;
} schedule;

static bool s_fault_enabled(fault_kind k, bool iptables, bool tmpfs)
{
    if (k >= F_PART_ONE && k <= F_PART_RING && !iptables) {
        return false;
    }
    if (k == F_PART_RING && O.nodes < 5) {
        return false;
    }
#ifndef ZRAFT_SLOWDISK_SO
    if (k == F_SLOW_DISK) {
        return false;
    }
#endif
    if (k == F_FULL_DISK && !tmpfs) {
        return false;
    }
    if (!strcmp(O.faults, "all")) {
        return true;
    }
    const char *p = O.faults;
    size_t l = strlen(fault_names[k]);
    while ((p = strstr(p, fault_names[k])) != NULL) {
        bool start = p == O.faults || p[-1] == ',';
        bool end = p[l] == '\0' || p[l] == ',';
        if (start && end) {
            return true;
        }
        p += l;
    }
    return false;
}

static void s_schedule(schedule *s, uint64_t seed, bool iptables, bool tmpfs)
{
    uint64_t r = seed * 0x2545f4914f6cdd1dull + 1;
    fault_kind kinds[F_COUNT];
    int nk = 0;
    for (int k = 0; k < F_COUNT; k++) {
        if (s_fault_enabled((fault_kind)k, iptables, tmpfs)) {
            kinds[nk++] = (fault_kind)k;
        }
    }
    s->n = 0;
    int64_t t = 1000, end = (int64_t)O.duration * 1000 - 1500;
    while (nk > 0 && t < end && s->n < MAX_EVENTS) {
        fault *f = &s->ev[s->n++];
        f->kind = kinds[s_rand(&r) % (uint64_t)nk];
        f->at_ms = t;
        f->dur_ms = s_between(&r, 800, 4000);
        if (f->kind == F_MEMBER) {
            f->dur_ms = s_between(&r, 3000, 6000);
        }
        if (t + f->dur_ms > end) {
            f->dur_ms = end - t > 200 ? end - t : 200;
        }
        f->target = (int)(s_rand(&r) % (uint64_t)O.nodes);
        f->other =
            (f->target + 1 + (int)(s_rand(&r) % (uint64_t)(O.nodes - 1))) %
            O.nodes;
        t += f->dur_ms + s_between(&r, 300, 2000);
    }
}

static void s_print_schedule(FILE *out, const schedule *s, uint64_t seed)
{
    fprintf(out,
            "# seed %" PRIu64 ": %d nodes, %d clients, %d keys, %d s, "
            "faults %s\n",
            seed, O.nodes, O.clients, O.keys, O.duration, O.faults);
    for (int i = 0; i < s->n; i++) {
        const fault *f = &s->ev[i];
        fprintf(out, "  t=%6.3fs %-16s", (double)f->at_ms / 1000,
                fault_names[f->kind]);
        if (f->kind != F_PART_LEADER && f->kind != F_PAUSE_LEADER) {
            fprintf(out, " n%d", f->target + 1);
        }
        if (f->kind == F_PART_BRIDGE) {
            fprintf(out, "|n%d (the others bridge)", f->other + 1);
        }
        fprintf(out, " for %.3fs\n", (double)f->dur_ms / 1000);
    }
}

typedef struct {
    cluster *c;
    const schedule *s;
    atomic_bool *stop;
    int64_t t0;
    int done; /* faults played */
} nemesis;

/* Sleeps until t (ms since t0) or the stop flag; false when stopped. */
static bool s_until(nemesis *nm, int64_t t)
{
    while (!atomic_load(nm->stop)) {
        int64_t now = (s_now_ns() - nm->t0) / 1000000;
        if (now >= t) {
            return true;
        }
        s_sleep_ms(t - now < 50 ? t - now : 50);
    }
    return false;
}

static long s_post(cluster *c, CURL *h, int via, const char *path,
                   const char *json)
{
    char url[256];
    snprintf(url, sizeof url, "http://%s:%d%s", c->nd[via].ip,
             c->nd[via].http_port, path);
    body b = {0};
    long st = 0;
    CURLcode rc = s_http(h, "POST", url, json, 15000, &st, &b);
    s_flog(c, "  POST %s %s via n%d: %s %ld %s", path, json, via + 1,
           curl_easy_strerror(rc), st, b.buf ? b.buf : "");
    free(b.buf);
    return rc == CURLE_OK ? st : 0;
}

/* The voters' JSON list without node `skip` (-1: all). */
static void s_voters(cluster *c, int skip, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "{\"voters\":[");
    bool first = true;
    for (int i = 0; i < c->n && o < cap; i++) {
        if (i != skip) {
            o += (size_t)snprintf(out + o, cap - o, "%s%d", first ? "" : ",",
                                  c->nd[i].id);
            first = false;
        }
    }
    snprintf(out + o, cap > o ? cap - o : 0, "]}");
}

static void s_restore_members(cluster *c, CURL *h);

/* Posts `json` to `path` on the leader until it answers 200 or time `t`
 * (ms since t0) passes; a change refused while another is in progress
 * (409) or sent to a node that no longer leads is tried again. */
static bool s_admin_until(nemesis *nm, CURL *h, const char *path,
                          const char *json, int64_t t)
{
    cluster *c = nm->c;
    do {
        int l = s_leader(c, h);
        if (l >= 0 && s_post(c, h, l, path, json) == 200) {
            return true;
        }
        s_sleep_ms(200);
    } while (!atomic_load(nm->stop) && (s_now_ns() - nm->t0) / 1000000 < t);
    return false;
}

/* Remove a voter, add it back as a learner, promote it: one phase per
 * third of the fault's time. Starts from every node a voter (a fault cut
 * off before may have left one out). */
static void s_member(nemesis *nm, CURL *h, const fault *f)
{
    cluster *c = nm->c;
    const node *t = &c->nd[f->target];
    char js[256], all[256];
    s_voters(c, -1, all, sizeof all);
    s_restore_members(c, h);
    s_voters(c, f->target, js, sizeof js);
    s_flog(c, "member: remove n%d", t->id);
    if (!s_admin_until(nm, h, "/cluster/membership", js,
                       f->at_ms + f->dur_ms / 3) ||
        !s_until(nm, f->at_ms + f->dur_ms / 3)) {
        return;
    }
    snprintf(js, sizeof js,
             "{\"id\":%d,\"raft_addr\":\"%s:%d\",\"http_addr\":\"%s:%d\"}",
             t->id, t->ip, t->raft_port, t->ip, t->http_port);
    s_flog(c, "member: add n%d back as a learner", t->id);
    if (!s_admin_until(nm, h, "/cluster/learners", js,
                       f->at_ms + 2 * f->dur_ms / 3) ||
        !s_until(nm, f->at_ms + 2 * f->dur_ms / 3)) {
        return;
    }
    s_flog(c, "member: promote n%d", t->id);
    s_admin_until(nm, h, "/cluster/membership", all, f->at_ms + f->dur_ms);
}

/* Node t's fdatasync and fsync take `ms` longer (0: heal). */
static void s_set_slow(cluster *c, const node *t, int ms)
{
    char p[600];
    snprintf(p, sizeof p, "%s/slow%d", c->dir, t->id);
    if (ms == 0) {
        unlink(p);
        return;
    }
    FILE *f = fopen(p, "w");
    if (f != NULL) {
        fprintf(f, "%d\n", ms);
        fclose(f);
    }
}

static void s_slow_disk(nemesis *nm, const fault *f)
{
    cluster *c = nm->c;
    const node *t = &c->nd[f->target];
    int ms = 5 + (int)((uint64_t)f->at_ms * 7919 % 200);
    s_flog(c, "slow disk: n%d syncs take %d ms more", t->id, ms);
    s_set_slow(c, t, ms);
    s_until(nm, f->at_ms + f->dur_ms);
    s_flog(c, "slow disk: n%d healed", t->id);
    s_set_slow(c, t, 0);
}

/* Fills node t's tmpfs until ENOSPC; bytes written. */
static size_t s_fill(cluster *c, const node *t)
{
    char p[600];
    snprintf(p, sizeof p, "%s/n%d/fill", c->dir, t->id);
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
        return 0;
    }
    static char chunk[1 << 16];
    size_t total = 0;
    ssize_t w;
    while ((w = write(fd, chunk, sizeof chunk)) > 0) {
        total += (size_t)w;
    }
    close(fd);
    return total;
}

static void s_full_disk(nemesis *nm, CURL *h, const fault *f)
{
    cluster *c = nm->c;
    node *t = &c->nd[f->target];
    size_t n = s_fill(c, t);
    s_flog(c, "full disk: n%d's file system filled (%zu bytes)", t->id, n);
    s_until(nm, f->at_ms + f->dur_ms);
    char p[600];
    snprintf(p, sizeof p, "%s/n%d/fill", c->dir, t->id);
    unlink(p);
    /* A node whose write failed stopped for good (it says so on
     * /healthz): restart it, as an operator would once space is back. */
    char url[128];
    snprintf(url, sizeof url, "http://%s:%d/healthz", t->ip, t->http_port);
    body b = {0};
    long st = 0;
    s_http(h, "GET", url, NULL, 1000, &st, &b);
    free(b.buf);
    if (st == 503) {
        s_flog(c, "full disk: space freed; n%d had stopped: restart", t->id);
        s_node_kill(t);
        s_node_start(c, t);
    } else {
        s_flog(c, "full disk: space freed; n%d still serving (%ld)", t->id, st);
    }
}

static void s_play(nemesis *nm, CURL *h, const fault *f)
{
    cluster *c = nm->c;
    node *t = &c->nd[f->target];
    int l;
    char js[64];
    switch (f->kind) {
    case F_KILL:
        s_flog(c, "kill -9 n%d", t->id);
        s_node_kill(t);
        s_until(nm, f->at_ms + f->dur_ms);
        s_flog(c, "restart n%d", t->id);
        s_node_start(c, t);
        break;
    case F_KILL_MAJORITY:
        /* A majority from the target on, all at once: the cluster loses
         * its quorum and restarts from what the disks kept. */
        for (int i = 0; i < c->n / 2 + 1; i++) {
            node *x = &c->nd[(f->target + i) % c->n];
            s_flog(c, "kill -9 n%d", x->id);
            s_node_kill(x);
        }
        s_until(nm, f->at_ms + f->dur_ms);
        for (int i = 0; i < c->n / 2 + 1; i++) {
            node *x = &c->nd[(f->target + i) % c->n];
            s_flog(c, "restart n%d", x->id);
            s_node_start(c, x);
        }
        break;
    case F_PAUSE_LEADER:
        l = s_leader(c, h);
        t = &c->nd[l >= 0 ? l : f->target];
        /* fall through */
    case F_PAUSE:
        if (t->pid <= 0 || t->st != N_UP) {
            break; /* never kill(0, ...): that is our own group */
        }
        s_flog(c, "SIGSTOP n%d%s", t->id,
               f->kind == F_PAUSE_LEADER ? " (the leader)" : "");
        kill(t->pid, SIGSTOP);
        t->st = N_PAUSED;
        s_until(nm, f->at_ms + f->dur_ms);
        s_flog(c, "SIGCONT n%d", t->id);
        kill(t->pid, SIGCONT);
        t->st = N_UP;
        break;
    case F_PART_ONE:
    case F_PART_LEADER:
        l = f->kind == F_PART_LEADER ? s_leader(c, h) : f->target;
        if (l < 0) {
            l = f->target;
        }
        s_flog(c, "partition: n%d cut off%s", l + 1,
               f->kind == F_PART_LEADER ? " (the leader)" : "");
        for (int i = 0; i < c->n; i++) {
            if (i != l) {
                s_cut(c, l, i);
            }
        }
        s_until(nm, f->at_ms + f->dur_ms);
        s_flog(c, "heal");
        s_heal(c);
        break;
    case F_PART_BRIDGE:
        s_flog(c, "partition: n%d and n%d cannot talk; the others bridge",
               f->target + 1, f->other + 1);
        s_cut(c, f->target, f->other);
        s_until(nm, f->at_ms + f->dur_ms);
        s_flog(c, "heal");
        s_heal(c);
        break;
    case F_PART_RING:
        /* Each node talks to its two ring neighbours only: every node sees
         * a majority (3 of 5), no two see the same one. */
        s_flog(c, "partition: majority ring from n%d", f->target + 1);
        for (int i = 0; i < c->n; i++) {
            for (int j = i + 1; j < c->n; j++) {
                int d = (j - i + c->n) % c->n;
                if (d != 1 && d != c->n - 1) {
                    s_cut(c, (i + f->target) % c->n, (j + f->target) % c->n);
                }
            }
        }
        s_until(nm, f->at_ms + f->dur_ms);
        s_flog(c, "heal");
        s_heal(c);
        break;
    case F_TRANSFER:
        l = s_leader(c, h);
        snprintf(js, sizeof js, "{\"to\":%d}", t->id);
        s_flog(c, "transfer leadership to n%d", t->id);
        s_post(c, h, l >= 0 ? l : f->target, "/cluster/transfer-leader", js);
        s_until(nm, f->at_ms + f->dur_ms);
        break;
    case F_MEMBER:
        s_member(nm, h, f);
        s_until(nm, f->at_ms + f->dur_ms);
        break;
    case F_SLOW_DISK:
        s_slow_disk(nm, f);
        break;
    case F_FULL_DISK:
        s_full_disk(nm, h, f);
        break;
    default:
        break;
    }
}

static void *s_nemesis(void *arg)
{
    nemesis *nm = arg;
    CURL *h = curl_easy_init();
    for (int i = 0; i < nm->s->n; i++) {
        if (!s_until(nm, nm->s->ev[i].at_ms)) {
            break;
        }
        s_play(nm, h, &nm->s->ev[i]);
        nm->done++;
    }
    curl_easy_cleanup(h);
    return NULL;
}

/* ---------------------------------------------------------------- run */

/* Restores full membership after a membership fault cut off midway:
 * every node added as a learner (refused for a voter: fine), then all made
 * voters. */
static void s_restore_members(cluster *c, CURL *h)
{
    int l = s_leader(c, h);
    if (l < 0) {
        return;
    }
    char js[256], url[256];
    body b = {0};
    long st;
    for (int i = 0; i < c->n; i++) {
        const node *t = &c->nd[i];
        snprintf(js, sizeof js,
                 "{\"id\":%d,\"raft_addr\":\"%s:%d\",\"http_addr\":\"%s:%d\"}",
                 t->id, t->ip, t->raft_port, t->ip, t->http_port);
        snprintf(url, sizeof url, "http://%s:%d/cluster/learners", c->nd[l].ip,
                 c->nd[l].http_port);
        s_http(h, "POST", url, js, 15000, &st, &b);
    }
    s_voters(c, -1, js, sizeof js);
    snprintf(url, sizeof url, "http://%s:%d/cluster/membership", c->nd[l].ip,
             c->nd[l].http_port);
    s_http(h, "POST", url, js, 15000, &st, &b);
    s_flog(c, "recover: membership %s: %ld %s", js, st, b.buf ? b.buf : "");
    free(b.buf);
}

/* Heals every fault, restarts what is down, makes every node a voter
 * again and waits (up to 60 s for each) for a leader, then for every node
 * applied up to its commit index; the leader's index, or -1. */
static int s_recover(cluster *c, CURL *h)
{
    s_heal(c);
    for (int i = 0; i < c->n; i++) {
        if (c->nd[i].st == N_PAUSED && c->nd[i].pid > 0) {
            kill(c->nd[i].pid, SIGCONT);
            c->nd[i].st = N_UP;
        } else if (c->nd[i].st == N_KILLED) {
            s_node_start(c, &c->nd[i]);
        }
    }
    int64_t deadline = s_now_ns() + 60 * 1000000000ll;
    while (s_leader(c, h) < 0 && s_now_ns() < deadline && !g_signalled) {
        s_sleep_ms(100);
    }
    s_restore_members(c, h);
    deadline = s_now_ns() + 60 * 1000000000ll;
    while (s_now_ns() < deadline && !g_signalled) {
        int l = s_leader(c, h);
        if (l >= 0) {
            int64_t commit = s_status(h, &c->nd[l], "commit_index", NULL, 0);
            bool all = commit > 0;
            for (int i = 0; i < c->n && all; i++) {
                all = s_status(h, &c->nd[i], "last_applied", NULL, 0) >= commit;
            }
            if (all) {
                return l;
            }
        }
        s_sleep_ms(100);
    }
    return -1;
}

/* Reads every key through the leader after the heal (recorded in the
 * history too); 0, or -1 if a key could not be read in 30 s. */
static int s_final_reads(cluster *c, CURL *h, history *hist, int64_t t0,
                         uint64_t *keys, uint64_t *finals)
{
    body b = {0};
    int rv = 0;
    for (int k = 1; k <= O.keys && rv == 0; k++) {
        int64_t deadline = s_now_ns() + 30 * 1000000000ll;
        bool done = false;
        while (!done && s_now_ns() < deadline) {
            int l = s_leader(c, h);
            if (l < 0) {
                s_sleep_ms(100);
                continue;
            }
            char url[256];
            snprintf(url, sizeof url, "http://%s:%d/kv/k%d", c->nd[l].ip,
                     c->nd[l].http_port, k);
            lc_op o = {999, LC_GET, LC_OK, (uint64_t)k, 0, 0, 0, 0, 0};
            long st;
            o.inv = s_now_ns() - t0;
            CURLcode rc = s_http(h, "GET", url, NULL, OP_TIMEOUT_MS, &st, &b);
            o.ret = s_now_ns() - t0;
            if (rc == CURLE_OK && st == 200) {
                o.out = strtoull(b.buf, NULL, 10);
                done = true;
            } else if (rc == CURLE_OK && st == 404) {
                o.out = LC_ABSENT;
                done = true;
            }
            if (done) {
                op_note note;
                s_note(&note, c->nd[l].id, rc, st, &b);
                s_record(hist, &o, &note);
                keys[k - 1] = (uint64_t)k;
                finals[k - 1] = o.out;
            }
        }
        if (!done) {
            rv = -1;
        }
    }
    free(b.buf);
    return rv;
}

static const char *s_verdict(int v, const lc_report *rep)
{
    switch (v) {
    case LC_LINEARIZABLE:
        return "linearizable";
    case LC_VIOLATION:
        return "NOT LINEARIZABLE";
    case LC_GAVE_UP:
        return rep->pruned_violation
                   ? "NOT LINEARIZABLE without the unknown writes no op saw; "
                     "the exact check gave up (state bound)"
                   : "GAVE UP (state bound)";
    default:
        return "checker out of memory";
    }
}

static void s_print_window(FILE *out, const history *h, const lc_report *rep)
{
    fprintf(out,
            "failing window (key k%" PRIu64 ", %zu of its %zu ops; the "
            "deepest attempt linearized %zu, register = %" PRIu64 "):\n"
            "  client type key arg arg2 out status inv_ns ret_ns\n",
            rep->key, rep->n_window, rep->key_ops, rep->depth, rep->state);
    for (size_t i = 0; i < rep->n_window; i++) {
        fprintf(out, "%s", rep->window[i] == rep->bad_op ? "> " : "  ");
        lc_print_op(out, &h->ops[rep->window[i]]);
        fprintf(out, "      # %s\n", h->notes[rep->window[i]].s);
    }
}

typedef struct {
    size_t ops, ok, fail, info, faults;
    bool passed;
} run_stats;

static int s_run(uint64_t seed, run_stats *rs)
{
    cluster c;
    memset(rs, 0, sizeof(*rs));
    if (s_cluster_init(&c, seed) != 0) {
        return 2;
    }
    schedule sch;
    s_schedule(&sch, seed, c.iptables, c.tmpfs);
    s_print_schedule(stdout, &sch, seed);
    char p[700];
    snprintf(p, sizeof p, "%s/schedule.txt", c.dir);
    FILE *f = fopen(p, "w");
    if (f) {
        s_print_schedule(f, &sch, seed);
        fclose(f);
    }
    for (int i = 0; i < c.n; i++) {
        s_node_start(&c, &c.nd[i]);
    }
    CURL *h = curl_easy_init();
    int64_t deadline = s_now_ns() + 30 * 1000000000ll;
    while (s_leader(&c, h) < 0 && s_now_ns() < deadline) {
        s_sleep_ms(50);
    }
    int result = 2;
    if (s_leader(&c, h) < 0) {
        fprintf(stderr, "zraft-chaos: no leader within 30 s (%s)\n", c.dir);
        goto out;
    }
    history hist = {NULL, NULL, 0, 0, PTHREAD_MUTEX_INITIALIZER};
    atomic_bool stop = false;
    atomic_uint_fast64_t next_value = 1;
    int64_t t0 = s_now_ns();
    c.t0 = t0;
    client *cls = calloc((size_t)O.clients, sizeof(client));
    pthread_t th[MAX_CLIENTS], nth;
    for (int i = 0; i < O.clients; i++) {
        cls[i] = (client){&c,    &hist,       i,   seed * 1000 + (uint64_t)i,
                          &stop, &next_value, {0}, t0};
        pthread_create(&th[i], NULL, s_client, &cls[i]);
    }
    nemesis nm = {&c, &sch, &stop, t0, 0};
    pthread_create(&nth, NULL, s_nemesis, &nm);
    int64_t end = t0 + (int64_t)O.duration * 1000000000;
    while (s_now_ns() < end && !g_signalled) {
        s_sleep_ms(100);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < O.clients; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_join(nth, NULL);
    free(cls);
    s_flog(&c, "end of load: heal, restart, wait for the cluster");
    int l = g_signalled ? -1 : s_recover(&c, h);
    uint64_t *keys = calloc((size_t)O.keys, sizeof(uint64_t));
    uint64_t *finals = calloc((size_t)O.keys, sizeof(uint64_t));
    bool reads_ok =
        l >= 0 && s_final_reads(&c, h, &hist, t0, keys, finals) == 0;
    /* The history file first: it is the evidence whatever the verdict. */
    snprintf(p, sizeof p, "%s/history.txt", c.dir);
    f = fopen(p, "w");
    if (f) {
        fprintf(f, "# client type key arg arg2 out status inv_ns ret_ns\n");
        for (size_t i = 0; i < hist.n; i++) {
            char line[256];
            FILE *m = fmemopen(line, sizeof line, "w");
            lc_print_op(m, &hist.ops[i]);
            fputc('\0', m);
            fclose(m);
            line[strcspn(line, "\n")] = '\0';
            fprintf(f, "%s  # %s\n", line, hist.notes[i].s);
        }
        fclose(f);
    }
    for (size_t i = 0; i < hist.n; i++) {
        rs->ok += hist.ops[i].status == LC_OK;
        rs->fail += hist.ops[i].status == LC_FAIL;
        rs->info += hist.ops[i].status == LC_INFO;
    }
    rs->ops = hist.n;
    rs->faults = (size_t)nm.done;
    lc_report rep;
    int64_t c0 = s_now_ns();
    int v = lc_check(hist.ops, hist.n, 0, &rep);
    double check_s = (double)(s_now_ns() - c0) / 1e9;
    size_t lost = reads_ok ? lc_lost_writes(hist.ops, hist.n, keys, finals,
                                            (size_t)O.keys, stdout)
                           : 0;
    printf("seed %" PRIu64 ": %zu ops (%zu ok, %zu failed, %zu unknown), "
           "%zu faults; checked %zu ops over %zu keys in %.2f s: %s; "
           "%zu lost writes%s\n",
           seed, rs->ops, rs->ok, rs->fail, rs->info, rs->faults, rep.checked,
           rep.keys, check_s, s_verdict(v, &rep), lost,
           reads_ok      ? ""
           : g_signalled ? "; interrupted"
                         : "; THE CLUSTER DID NOT RECOVER");
    if (v != LC_LINEARIZABLE && v >= 0) {
        s_print_window(stdout, &hist, &rep);
    }
    lc_report_free(&rep);
    rs->passed = v == LC_LINEARIZABLE && lost == 0 && reads_ok;
    result = rs->passed ? 0 : 1;
    free(keys);
    free(finals);
    free(hist.ops);
    free(hist.notes);
out:
    curl_easy_cleanup(h);
    s_cluster_stop(&c);
    if (result == 0 && !O.keep) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", c.dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "zraft-chaos: could not remove %s\n", c.dir);
        }
    } else {
        printf("seed %" PRIu64 ": kept %s (schedule.txt, faults.log, "
               "history.txt, node*.log); repeat with: zraft-chaos --zraftd "
               "%s --seed %" PRIu64 " --nodes %d --duration %d --clients %d "
               "--keys %d --faults %s\n",
               seed, c.dir, O.zraftd, seed, O.nodes, O.duration, O.clients,
               O.keys, O.faults);
    }
    return result;
}

/* --check FILE: checks a kept history again (the final reads are in it;
 * the lost-write check needs the run). */
static int s_check_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "zraft-chaos: %s: %s\n", path, strerror(errno));
        return 2;
    }
    history h = {NULL, NULL, 0, 0, PTHREAD_MUTEX_INITIALIZER};
    char line[512];
    size_t lineno = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        lc_op o;
        op_note note = {""};
        int rv = lc_parse_op(line, &o);
        if (rv < 0) {
            fprintf(stderr, "zraft-chaos: %s:%zu: malformed line\n", path,
                    lineno);
            fclose(f);
            free(h.ops);
            free(h.notes);
            return 2;
        }
        if (rv == 0) {
            const char *c = strchr(line, '#');
            if (c != NULL) {
                snprintf(note.s, sizeof note.s, "%s", c + 2);
                note.s[strcspn(note.s, "\n")] = '\0';
            }
            s_record(&h, &o, &note);
        }
    }
    fclose(f);
    lc_report rep;
    int64_t c0 = s_now_ns();
    int v = lc_check(h.ops, h.n, 0, &rep);
    printf("%s: %zu ops, checked %zu over %zu keys in %.2f s: %s\n", path, h.n,
           rep.checked, rep.keys, (double)(s_now_ns() - c0) / 1e9,
           s_verdict(v, &rep));
    if (v != LC_LINEARIZABLE && v >= 0) {
        s_print_window(stdout, &h, &rep);
    }
    lc_report_free(&rep);
    free(h.ops);
    free(h.notes);
    return v == LC_LINEARIZABLE ? 0 : 1;
}

/* ---------------------------------------------------------------- main */

static int s_usage(void)
{
    fprintf(stderr,
            "usage: zraft-chaos --zraftd PATH [--seed N] [--runs R] "
            "[--duration S]\n"
            "       zraft-chaos --check HISTORY   (a kept history.txt "
            "again)\n"
            "       [--nodes 3|5] [--clients K] [--keys N] [--faults LIST] "
            "[--dir DIR] [--keep]\n"
            "faults: all, or a comma list of kill, kill-majority, pause, "
            "pause-leader, "
            "partition-one, partition-leader,\n"
            "        partition-bridge, partition-ring, transfer, member, "
            "slow-disk, full-disk\n");
    return 2;
}

static bool s_int_arg(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "--keep")) {
            O.keep = true;
            continue;
        }
        if (v == NULL) {
            return s_usage();
        }
        i++;
        if (!strcmp(a, "--check")) {
            return s_check_file(v);
        }
        if (!strcmp(a, "--zraftd")) {
            O.zraftd = v;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            O.seed = strtoull(v, &end, 10);
            if (errno || *end || end == v) {
                return s_usage();
            }
        } else if (!strcmp(a, "--runs") && s_int_arg(v, 1, 100000, &n)) {
            O.runs = (int)n;
        } else if (!strcmp(a, "--duration") && s_int_arg(v, 3, 86400, &n)) {
            O.duration = (int)n;
        } else if (!strcmp(a, "--nodes") && s_int_arg(v, 3, 5, &n)) {
            O.nodes = (int)n;
        } else if (!strcmp(a, "--clients") &&
                   s_int_arg(v, 1, MAX_CLIENTS, &n)) {
            O.clients = (int)n;
        } else if (!strcmp(a, "--keys") && s_int_arg(v, 1, 256, &n)) {
            O.keys = (int)n;
        } else if (!strcmp(a, "--faults")) {
            O.faults = v;
        } else if (!strcmp(a, "--dir")) {
            O.dir = v;
        } else {
            return s_usage();
        }
    }
    if (O.zraftd == NULL || access(O.zraftd, X_OK) != 0) {
        fprintf(stderr, "zraft-chaos: --zraftd must name the zraftd "
                        "executable\n");
        return s_usage();
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows in a log file */
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = 0, passed = 0;
    size_t ops = 0, faults = 0, info = 0;
    for (int r = 0; r < O.runs && !g_signalled; r++) {
        run_stats rs;
        int rv = s_run(O.seed + (uint64_t)r, &rs);
        if (rv == 2) {
            return 2;
        }
        ops += rs.ops;
        faults += rs.faults;
        info += rs.info;
        if (rv == 0) {
            passed++;
        } else {
            failed++;
        }
    }
    printf("zraft-chaos: %d runs (seeds %" PRIu64 "..%" PRIu64 "), %d passed, "
           "%d failed; %zu ops (%zu unknown), %zu faults%s\n",
           passed + failed, O.seed, O.seed + (uint64_t)(passed + failed) - 1,
           passed, failed, ops, info, faults,
           g_signalled ? "; interrupted (the last run unchecked)" : "");
    curl_global_cleanup();
    return failed ? 1 : 0;
}
