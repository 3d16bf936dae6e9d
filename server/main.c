/* main.c - zraftd: a replicated key-value store served over HTTP/JSON,
 * one Raft node per process, nodes talking over ZeroMQ TCP.
 *
 * Threads: main (waits for SIGTERM/SIGINT with sigwait; every other thread
 * has the signals blocked), the HTTP server's serving threads (they call
 * the non-blocking backend below; the node's state machine thread
 * completes their writes and reads) and its admin thread (blocking admin
 * calls), the RESP port's loop thread (with resp_addr), the node's own
 * threads, and a registrar that, while
 * this node leads, records its HTTP (and RESP) address in the replicated
 * store under reserved keys so that followers can redirect clients to it (user
 * keys come from URL paths and can never contain the NUL that starts reserved
 * ones).
 *
 * Shutdown: stop taking HTTP requests, let those in flight finish (up to
 * OP_TIMEOUT_MS), stop the node (which fails what is left with ESHUTDOWN:
 * 503), stop the HTTP server, exit 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "http.h"
#include "keys.h"
#include "kv.h"
#include "resp.h"
#include "zraft.h"
#include "zraft_disk.h"

extern char **environ;

#define OP_TIMEOUT_MS 10000

typedef struct {
    config cfg;
    kv *store;
    zraft_node *node;
    http_server *http;
    resp_server *resp; /* NULL unless resp_addr is set */
    atomic_bool stop;
    int level;
} daemon_t;

static daemon_t D;

/* CURVE: the node's secret key and the keys configuration gives (members
 * of initial_cluster with a key, then peer_keys). Static: the node copies
 * the secret at start; `known` is borrowed only until then. */
static char s_sec[CONFIG_KEY_MAX], s_pub[CONFIG_KEY_MAX];
static zraft_member s_known[2 * CONFIG_MAX_PEERS];

/* ------------------------------------------------------------- logging */

static void logf_(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void logf_(int level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (level < D.level) {
        return;
    }
    char when[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    uint64_t term = 0;
    if (D.node != NULL) {
        zraft_metrics m;
        zraft_metrics_get(D.node, &m);
        term = m.term;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s level=%s node=%llu term=%llu %s\n", when, names[level],
            (unsigned long long)D.cfg.id, (unsigned long long)term, msg);
}

enum { L_DEBUG, L_INFO, L_WARN, L_ERROR };

/* ------------------------------------------- reserved address keys */

static size_t s_addr_key(const char *what, zraft_id id, char *out)
{
    out[0] = '\0';
    return 1 + (size_t)sprintf(out + 1, "zraft/%s/%llu", what,
                               (unsigned long long)id);
}

static size_t s_http_key(zraft_id id, char *out)
{
    return s_addr_key("http", id, out);
}

/* -------------------------------------------------------------- backend */

/* Blocking write of a reserved key, for the admin and registrar threads
 * (never an HTTP serving thread). */
static int s_write_sync(const char *key, size_t klen, const char *val,
                        size_t vlen)
{
    zraft_buf *cmd;
    int rv = kv_encode(KV_OP_PUT, key, klen, val, vlen, &cmd);
    if (rv != 0) {
        return rv;
    }
    rv = zraft_write_sync(D.node, cmd->data, cmd->len, OP_TIMEOUT_MS, NULL);
    zraft_buf_unref(cmd);
    return rv;
}

/* Runs on the node's state machine thread. */
static void b_write_done(void *arg, int err, zraft_log_id id, zraft_buf *result)
{
    http_op *op = arg;
    (void)id;
    op->err = err;
    op->mismatch = err == 0 && kv_cas_result(result) == KV_CAS_MISMATCH;
    op->complete(op);
}

/* HTTP forwards from a follower when asked (forward_writes), else the
 * node answers ENOTLEADER and the client gets a 307 to the leader. */
static unsigned s_http_flags(void)
{
    return D.cfg.forward_writes ? ZRAFT_CALL_FORWARD : ZRAFT_CALL_NO_FORWARD;
}

static int b_write(void *ctx, zraft_buf *cmd, http_op *op)
{
    (void)ctx;
    return zraft_write_ex(D.node, cmd, s_http_flags(), b_write_done, op);
}

/* Runs on the node's state machine thread, once the read-index is
 * applied: the store reflects every write acknowledged before the read. */
static void b_read_done(void *arg, int err)
{
    http_op *op = arg;
    if (err == 0) {
        err = kv_get(D.store, op->key, op->klen, &op->val, &op->off, &op->len);
    }
    op->err = err;
    op->complete(op);
}

static void b_batch(void *ctx, bool begin)
{
    (void)ctx;
    if (begin) {
        zraft_batch_begin(D.node);
    } else {
        zraft_batch_end(D.node);
    }
}

static int b_read(void *ctx, http_op *op)
{
    (void)ctx;
    if (op->stale) {
        b_read_done(op, 0);
        return 0;
    }
    return zraft_read_ex(D.node, s_http_flags(), b_read_done, op);
}

/* The leader's address for a front end ("http" or "resp"), from the
 * reserved key its registrar wrote. */
static int s_leader_addr(const char *what, char *out, size_t cap)
{
    zraft_metrics m;
    zraft_metrics_get(D.node, &m);
    if (m.leader == 0) {
        return ZRAFT_ENOTFOUND;
    }
    if (m.leader == D.cfg.id) {
        return ZRAFT_EINVAL;
    }
    char key[64];
    size_t kl = s_addr_key(what, m.leader, key);
    zraft_buf *v;
    size_t off, len;
    if (kv_get(D.store, key, kl, &v, &off, &len) != 0) {
        return ZRAFT_ENOTFOUND;
    }
    int rv = len + 1 <= cap ? 0 : ZRAFT_ENOTFOUND;
    if (rv == 0) {
        memcpy(out, v->data + off, len);
        out[len] = '\0';
    }
    zraft_buf_unref(v);
    return rv;
}

static int b_leader_http(void *ctx, char *out, size_t cap)
{
    (void)ctx;
    return s_leader_addr("http", out, cap);
}

static cJSON *s_ids(const zraft_membership *m, uint8_t role)
{
    cJSON *a = cJSON_CreateArray();
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->members[i].roles & role) {
            cJSON_AddItemToArray(a,
                                 cJSON_CreateNumber((double)m->members[i].id));
        }
    }
    return a;
}

/* {"id":"host:port",...}: the HTTP address the cluster recorded for each
 * member that has one (each member registers its own once it knows a
 * leader, followers by a forwarded write; a learner added
 * with http_addr has one), for the cluster page to find the others. */
static cJSON *s_member_addrs(const zraft_membership *ms)
{
    cJSON *o = cJSON_CreateObject();
    for (uint32_t i = 0; i < ms->n; i++) {
        char key[64], k[32], addr[ZRAFT_ADDR_MAX];
        size_t kl = s_http_key(ms->members[i].id, key);
        zraft_buf *v;
        size_t off, len;
        if (kv_get(D.store, key, kl, &v, &off, &len) != 0) {
            continue;
        }
        if (len < sizeof addr) {
            memcpy(addr, v->data + off, len);
            addr[len] = '\0';
            snprintf(k, sizeof k, "%llu",
                     (unsigned long long)ms->members[i].id);
            cJSON_AddStringToObject(o, k, addr);
        }
        zraft_buf_unref(v);
    }
    return o;
}

static char *b_status(void *ctx)
{
    (void)ctx;
    zraft_metrics m;
    zraft_metrics_get(D.node, &m);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)m.id);
    cJSON_AddStringToObject(o, "role", m.role ? m.role : "unknown");
    if (m.fatal != 0) {
        cJSON_AddStringToObject(o, "fatal", zraft_strerror(m.fatal));
        cJSON_AddStringToObject(o, "fatal_code", zraft_err_name(m.fatal));
    }
    cJSON_AddNumberToObject(o, "term", (double)m.term);
    if (m.leader) {
        cJSON_AddNumberToObject(o, "leader", (double)m.leader);
    } else {
        cJSON_AddNullToObject(o, "leader");
    }
    cJSON_AddNumberToObject(o, "commit_index", (double)m.commit_index);
    cJSON_AddNumberToObject(o, "last_applied", (double)m.last_applied);
    cJSON_AddNumberToObject(o, "last_log_index", (double)m.last_log_id.index);
    cJSON_AddNumberToObject(o, "snapshot_index", (double)m.snapshot_index);
    cJSON_AddItemToObject(
        o, "voters",
        s_ids(&m.membership, ZRAFT_ROLE_VOTER | ZRAFT_ROLE_VOTER_OLD));
    cJSON_AddItemToObject(o, "learners",
                          s_ids(&m.membership, ZRAFT_ROLE_LEARNER));
    cJSON_AddBoolToObject(o, "joint", m.membership.joint);
    cJSON_AddStringToObject(o, "http_addr", D.cfg.http_addr);
    cJSON_AddItemToObject(o, "members", s_member_addrs(&m.membership));
    cJSON_AddStringToObject(o, "security", D.cfg.security);
    if (s_pub[0] != '\0') {
        cJSON_AddStringToObject(o, "public_key", s_pub);
    }
    cJSON_AddNumberToObject(o, "peers_refused", (double)m.peers_refused);
    /* Forwarding counters (the same as /metrics' zraft_forward*). */
    cJSON *fw = cJSON_AddObjectToObject(o, "forward");
    cJSON_AddNumberToObject(fw, "writes", (double)m.fwd_writes);
    cJSON_AddNumberToObject(fw, "reads", (double)m.fwd_reads);
    cJSON_AddNumberToObject(fw, "retries", (double)m.fwd_retries);
    cJSON_AddNumberToObject(fw, "timeouts", (double)m.fwd_timeouts);
    cJSON_AddNumberToObject(fw, "failures", (double)m.fwd_failures);
    cJSON_AddNumberToObject(fw, "reconnects", (double)m.fwd_reconnects);
    cJSON_AddNumberToObject(fw, "served_writes", (double)m.fwd_served_writes);
    cJSON_AddNumberToObject(fw, "served_reads", (double)m.fwd_served_reads);
    if (m.role_code == 3) {
        cJSON *mt = cJSON_CreateObject();
        for (uint32_t i = 0; i < m.n_peers; i++) {
            char k[32];
            snprintf(k, sizeof k, "%llu", (unsigned long long)m.peers[i].id);
            cJSON_AddNumberToObject(mt, k, (double)m.peers[i].matched);
        }
        cJSON_AddItemToObject(o, "matched", mt);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static char *b_metrics(void *ctx)
{
    (void)ctx;
    zraft_metrics m;
    zraft_metrics_get(D.node, &m);
    size_t cap = 8192, off = 0;
    char *s = malloc(cap);
    if (s == NULL) {
        return NULL;
    }
    /* A line that does not fit is cut, never written past the end (off
     * stays below cap). */
#define P(...)                                                                 \
    do {                                                                       \
        int k_ = snprintf(s + off, cap - off, __VA_ARGS__);                    \
        off = k_ < 0                   ? off                                   \
              : off + (size_t)k_ < cap ? off + (size_t)k_                      \
                                       : cap - 1;                              \
    } while (0)
    P("# TYPE zraft_is_leader gauge\nzraft_is_leader %d\n", m.role_code == 3);
    P("# HELP zraft_fatal 1 once the node stopped on a fatal error\n");
    P("# TYPE zraft_fatal gauge\nzraft_fatal{code=\"%s\"} %d\n",
      m.fatal ? zraft_err_name(m.fatal) : "", m.fatal != 0);
    P("# TYPE zraft_term gauge\nzraft_term %llu\n", (unsigned long long)m.term);
    P("# TYPE zraft_commit_index gauge\nzraft_commit_index %llu\n",
      (unsigned long long)m.commit_index);
    P("# TYPE zraft_last_applied gauge\nzraft_last_applied %llu\n",
      (unsigned long long)m.last_applied);
    P("# TYPE zraft_writes_total counter\nzraft_writes_total %llu\n",
      (unsigned long long)m.writes);
    P("# TYPE zraft_applied_total counter\nzraft_applied_total %llu\n",
      (unsigned long long)m.applied);
    P("# TYPE zraft_keys gauge\nzraft_keys %zu\n", kv_count(D.store));
    P("# HELP zraft_peers_refused_total CURVE handshakes refused (a key not "
      "in the configuration)\n");
    P("# TYPE zraft_peers_refused_total counter\n"
      "zraft_peers_refused_total %llu\n",
      (unsigned long long)m.peers_refused);
    P("# HELP zraft_forwarded_total Writes and reads this node sent to the "
      "leader (forwarding), each counted once\n");
    P("# TYPE zraft_forwarded_total counter\n"
      "zraft_forwarded_total{op=\"write\"} %llu\n"
      "zraft_forwarded_total{op=\"read\"} %llu\n",
      (unsigned long long)m.fwd_writes, (unsigned long long)m.fwd_reads);
    P("# HELP zraft_forward_retries_total Forwarded requests sent again "
      "(refused before being proposed, or a read asked again)\n");
    P("# TYPE zraft_forward_retries_total counter\n"
      "zraft_forward_retries_total %llu\n",
      (unsigned long long)m.fwd_retries);
    P("# HELP zraft_forward_timeouts_total Forwarded requests the leader did "
      "not answer in time\n");
    P("# TYPE zraft_forward_timeouts_total counter\n"
      "zraft_forward_timeouts_total %llu\n",
      (unsigned long long)m.fwd_timeouts);
    P("# HELP zraft_forward_failures_total Forwarded requests failed "
      "otherwise (no leader in time, the leader's error, shutdown)\n");
    P("# TYPE zraft_forward_failures_total counter\n"
      "zraft_forward_failures_total %llu\n",
      (unsigned long long)m.fwd_failures);
    P("# HELP zraft_forward_reconnects_total Connections to the leader "
      "replaced (no answer for two election timeouts, or an address that "
      "moved)\n");
    P("# TYPE zraft_forward_reconnects_total counter\n"
      "zraft_forward_reconnects_total %llu\n",
      (unsigned long long)m.fwd_reconnects);
    P("# HELP zraft_replication_refused_total Reports of a follower "
      "unreachable because its connection refused sends (the leader probes "
      "it again)\n");
    P("# TYPE zraft_replication_refused_total counter\n"
      "zraft_replication_refused_total %llu\n",
      (unsigned long long)m.repl_refused);
    P("# HELP zraft_forward_served_total Forwarded writes and reads this "
      "node received from followers as leader\n");
    P("# TYPE zraft_forward_served_total counter\n"
      "zraft_forward_served_total{op=\"write\"} %llu\n"
      "zraft_forward_served_total{op=\"read\"} %llu\n",
      (unsigned long long)m.fwd_served_writes,
      (unsigned long long)m.fwd_served_reads);
    P("# TYPE zraft_replication_lag gauge\n");
    for (uint32_t i = 0; i < m.n_peers && off < cap - 256; i++) {
        if (m.peers[i].id == m.id) {
            continue;
        }
        uint64_t lag = m.last_log_id.index > m.peers[i].matched
                           ? m.last_log_id.index - m.peers[i].matched
                           : 0;
        P("zraft_replication_lag{peer=\"%llu\"} %llu\n",
          (unsigned long long)m.peers[i].id, (unsigned long long)lag);
    }
    P("# TYPE zraft_fsync_seconds histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b < 16; b++) {
        cum += m.fsync_hist[b];
        P("zraft_fsync_seconds_bucket{le=\"%g\"} %llu\n",
          (double)(1ull << (b + 4)) / 1e6, (unsigned long long)cum);
    }
    P("zraft_fsync_seconds_bucket{le=\"+Inf\"} %llu\n",
      (unsigned long long)m.fsyncs);
    P("zraft_fsync_seconds_sum %g\n", (double)m.fsync_us_total / 1e6);
    P("zraft_fsync_seconds_count %llu\n", (unsigned long long)m.fsyncs);
#undef P
    return s;
}

static int b_add_learner(void *ctx, uint64_t id, const char *raft_addr,
                         const char *http_addr, const char *key)
{
    (void)ctx;
    int rv = zraft_add_learner_key(D.node, id, raft_addr, key, OP_TIMEOUT_MS);
    if (rv == 0 && http_addr != NULL && http_addr[0] != '\0') {
        char key[64];
        size_t kl = s_http_key(id, key);
        rv = s_write_sync(key, kl, http_addr, strlen(http_addr));
    }
    logf_(L_INFO, "add learner %llu at %s: %s", (unsigned long long)id,
          raft_addr, zraft_strerror(rv));
    return rv;
}

static int b_membership(void *ctx, const uint64_t *voters, size_t n)
{
    (void)ctx;
    int rv = zraft_change_membership(D.node, voters, n, OP_TIMEOUT_MS);
    logf_(L_INFO, "change membership to %zu voters: %s", n, zraft_strerror(rv));
    return rv;
}

static int b_transfer(void *ctx, uint64_t to)
{
    (void)ctx;
    int rv = zraft_transfer_leader(D.node, to);
    logf_(L_INFO, "transfer leadership to %llu: %s", (unsigned long long)to,
          zraft_strerror(rv));
    return rv;
}

static int b_snapshot(void *ctx)
{
    (void)ctx;
    return zraft_trigger_snapshot(D.node);
}

/* A leader is known when this node leads, or when the leader's HTTP
 * address (a replicated key the leader writes once elected) is applied
 * here. Non-blocking: the HTTP server polls it while requests wait. */
static int b_leader_known(void *ctx)
{
    zraft_metrics m;
    zraft_metrics_get(D.node, &m);
    char addr[CONFIG_ADDR_MAX];
    if (m.fatal != 0) {
        return m.fatal; /* none will be: stop waiting */
    }
    if (m.role_code == 3) {
        return 1;
    }
    return b_leader_http(ctx, addr, sizeof addr) == 0 ? 0 : ZRAFT_ENOTFOUND;
}

static int b_health(void *ctx)
{
    (void)ctx;
    zraft_metrics m;
    zraft_metrics_get(D.node, &m);
    return m.fatal;
}

/* ----------------------------------------------------- RESP backend */

/* Runs on the node's state machine thread. */
static void r_write_done(void *arg, int err, zraft_log_id id, zraft_buf *result)
{
    resp_op *op = arg;
    (void)id;
    op->err = err;
    op->result = result != NULL ? zraft_buf_ref(result) : NULL;
    op->complete(op);
}

/* RESP always forwards from a follower: Redis clients do not follow
 * redirects (docs/frontends.md). */
static int r_write(void *ctx, zraft_buf *cmd, resp_op *op)
{
    (void)ctx;
    return zraft_write_ex(D.node, cmd, ZRAFT_CALL_FORWARD, r_write_done, op);
}

static void r_barrier_done(void *arg, int err)
{
    resp_op *op = arg;
    op->err = err;
    op->result = NULL;
    op->complete(op);
}

static int r_barrier(void *ctx, resp_op *op)
{
    (void)ctx;
    return zraft_read_ex(D.node, ZRAFT_CALL_FORWARD, r_barrier_done, op);
}

/* A leader is known when this node leads, or when the leader's RESP
 * address is applied here. */
static int r_leader_known(void *ctx)
{
    (void)ctx;
    zraft_metrics m;
    zraft_metrics_get(D.node, &m);
    char addr[CONFIG_ADDR_MAX];
    if (m.fatal != 0) {
        return m.fatal;
    }
    if (m.role_code == 3) {
        return 1;
    }
    return s_leader_addr("resp", addr, sizeof addr) == 0 ? 0 : ZRAFT_ENOTFOUND;
}

static int r_leader_addr(void *ctx, char *out, size_t cap)
{
    (void)ctx;
    return s_leader_addr("resp", out, cap);
}

/* INFO, in Redis's layout. redis_version is the Redis level of the
 * commands this port speaks, for clients that look at it. */
static char *r_info(void *ctx)
{
    (void)ctx;
    zraft_metrics m;
    zraft_metrics_get(D.node, &m);
    char *t = malloc(2048);
    if (t == NULL) {
        return NULL;
    }
    snprintf(t, 2048,
             "# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\n"
             "zraft:1\r\nprocess_id:%d\r\ntcp_port:%s\r\n\r\n"
             "# Replication\r\nrole:%s\r\n\r\n"
             "# Zraft\r\nzraft_id:%llu\r\nzraft_role:%s\r\nzraft_term:%llu\r\n"
             "zraft_leader:%llu\r\nzraft_commit_index:%llu\r\n"
             "zraft_last_applied:%llu\r\nzraft_last_log_index:%llu\r\n"
             "zraft_fatal:%s\r\n\r\n"
             "# Keyspace\r\ndb0:keys=%zu,expires=0,avg_ttl=0\r\n",
             (int)getpid(), strrchr(D.cfg.resp_addr, ':') + 1,
             m.role_code == 3 ? "master" : "slave", (unsigned long long)m.id,
             m.role ? m.role : "unknown", (unsigned long long)m.term,
             (unsigned long long)m.leader, (unsigned long long)m.commit_index,
             (unsigned long long)m.last_applied,
             (unsigned long long)m.last_log_id.index,
             m.fatal ? zraft_err_name(m.fatal) : "", kv_count(D.store));
    return t;
}

/* ----------------------------------------------------------- binding */

/* The address the Raft port binds: raft_listen, else raft_addr. ZeroMQ
 * binds numeric addresses and interface names only, so a host name in
 * raft_addr is resolved here, once (IPv4 first). */
static int s_raft_bind(char *out, size_t cap, char *why, size_t whylen)
{
    const char *a = D.cfg.raft_listen[0] ? D.cfg.raft_listen : D.cfg.raft_addr;
    const char *colon = strrchr(a, ':');
    char host[CONFIG_ADDR_MAX];
    snprintf(host, sizeof host, "%.*s", (int)(colon - a), a);
    if (host[0] == '[') { /* [v6]:port */
        snprintf(out, cap, "%s", a);
        return 0;
    }
    unsigned char bin[sizeof(struct in6_addr)];
    if (strcmp(host, "*") == 0 || inet_pton(AF_INET, host, bin) == 1) {
        snprintf(out, cap, "%s", a);
        return 0;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int rv = getaddrinfo(host, NULL, &hints, &res);
    if (rv != 0 || res == NULL) {
        snprintf(why, whylen,
                 "cannot bind the Raft port: '%s' does not resolve (%s); set "
                 "raft_listen (e.g. 0.0.0.0%s)",
                 host, gai_strerror(rv), colon);
        return -1;
    }
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip,
              sizeof ip);
    freeaddrinfo(res);
    snprintf(out, cap, "%s%s", ip, colon);
    return 0;
}

/* ------------------------------------------------------------ registrar */

static bool p_role_change(const zraft_metrics *m, void *arg)
{
    const zraft_metrics *was = arg;
    return m->term != was->term || m->role_code != was->role_code ||
           m->leader != was->leader || m->fatal != was->fatal;
}

/* A follower's registration write in flight (forwarded to the leader);
 * the registrar never waits for it, so SIGTERM never waits on a leader. */
static atomic_bool s_reg_busy;

static void s_reg_done(void *arg, int err, zraft_log_id id, zraft_buf *result)
{
    (void)arg;
    (void)err; /* looked at again on the next turn: the store tells */
    (void)id;
    (void)result;
    atomic_store(&s_reg_busy, false);
}

/* Sends the write forwarded; 0 when sent (answered later), else an error. */
static int s_write_fwd_async(const char *key, size_t klen, const char *val,
                             size_t vlen)
{
    zraft_buf *cmd;
    int rv = kv_encode(KV_OP_PUT, key, klen, val, vlen, &cmd);
    if (rv != 0) {
        return rv;
    }
    atomic_store(&s_reg_busy, true);
    rv = zraft_write_ex(D.node, cmd, ZRAFT_CALL_FORWARD, s_reg_done, NULL);
    if (rv != 0) { /* on success the node owns the reference */
        zraft_buf_unref(cmd);
        atomic_store(&s_reg_busy, false);
    }
    return rv;
}

/* Writes this node's address for a front end under its reserved key,
 * unless it is there already. 0: there; 1: a follower's forwarded write
 * was sent (look again later); else an error. */
static int s_register(const char *what, const char *addr, bool leader)
{
    char key[64];
    size_t kl = s_addr_key(what, D.cfg.id, key);
    zraft_buf *v;
    size_t off, len;
    bool same = false;
    if (kv_get(D.store, key, kl, &v, &off, &len) == 0) {
        same = len == strlen(addr) && memcmp(v->data + off, addr, len) == 0;
        zraft_buf_unref(v);
    }
    if (same) {
        return 0;
    }
    if (leader) {
        return s_write_sync(key, kl, addr, strlen(addr));
    }
    int rv = s_write_fwd_async(key, kl, addr, strlen(addr));
    return rv == 0 ? 1 : rv;
}

/* Makes sure our HTTP (and RESP) addresses are in the store, once per
 * term: as leader (followers redirect to it), and as a follower or learner
 * that knows a leader, through forwarding (the cluster page then finds
 * every member, not only those that have led). */
static void *registrar(void *arg)
{
    (void)arg;
    uint64_t done_term = 0;
    bool fatal_logged = false;
    zraft_metrics was;
    memset(&was, 0, sizeof was);
    while (!atomic_load(&D.stop)) {
        /* 100 ms: how long SIGTERM waits for this thread at most. */
        zraft_wait(D.node, p_role_change, &was, 100);
        zraft_metrics_get(D.node, &was);
        if (was.fatal != 0 && !fatal_logged) {
            fatal_logged = true;
            logf_(L_ERROR,
                  "FATAL: the node stopped (%s): it no longer votes, leads or "
                  "accepts writes; /healthz answers 503. Fix the cause (disk "
                  "space, device) and restart zraftd: it recovers from what "
                  "is durable",
                  zraft_strerror(was.fatal));
        }
        bool leader = was.role_code == 3;
        bool led = was.leader != 0 && was.leader != D.cfg.id;
        if (leader && done_term != was.term) {
            logf_(L_INFO, "became leader");
        }
        if (was.fatal != 0 || was.term == done_term || (!leader && !led) ||
            (!leader && atomic_load(&s_reg_busy))) {
            continue;
        }
        if (s_register("http", D.cfg.http_addr, leader) == 0 &&
            (D.cfg.resp_addr[0] == '\0' ||
             s_register("resp", D.cfg.resp_addr, leader) == 0)) {
            done_term = was.term;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------- security */

/* The key configuration gives member `id` ("" if none). */
static const char *s_conf_key(uint64_t id)
{
    for (uint32_t i = 0; i < D.cfg.n_peers; i++) {
        if (D.cfg.peers[i].id == id && D.cfg.peers[i].key[0] != '\0') {
            return D.cfg.peers[i].key;
        }
    }
    const char *k = config_known_key(&D.cfg, id);
    return k ? k : "";
}

static int s_curve_setup(zraft_config *zc, char *why, size_t whylen)
{
    if (strcmp(D.cfg.security, "curve") != 0) {
        return 0;
    }
    char path[CONFIG_PATH_MAX];
    if (D.cfg.node_key[0] != '\0') {
        snprintf(path, sizeof path, "%s", D.cfg.node_key);
    } else if ((size_t)snprintf(path, sizeof path, "%s/node.key",
                                D.cfg.data_dir) >= sizeof path) {
        snprintf(why, whylen, "data_dir is too long for node.key");
        return -1;
    }
    if (keys_load_secret(path, s_sec, s_pub, why, whylen) != 0) {
        return -1;
    }
    const char *mine = s_conf_key(D.cfg.id);
    if (mine[0] != '\0' && strcmp(mine, s_pub) != 0) {
        snprintf(why, whylen,
                 "node_key %s: its public key %s is not the one the "
                 "configuration lists for node %llu (%s)",
                 path, s_pub, (unsigned long long)D.cfg.id, mine);
        return -1;
    }
    size_t n = 0;
    for (uint32_t i = 0; i < D.cfg.n_peers; i++) {
        if (D.cfg.peers[i].key[0] != '\0') {
            s_known[n].id = D.cfg.peers[i].id;
            memcpy(s_known[n].key, D.cfg.peers[i].key, CONFIG_KEY_MAX);
            n++;
        }
    }
    for (uint32_t i = 0; i < D.cfg.n_known; i++) {
        s_known[n].id = D.cfg.known[i].id;
        memcpy(s_known[n].key, D.cfg.known[i].key, CONFIG_KEY_MAX);
        n++;
    }
    zc->curve_secret_key = s_sec;
    zc->curve_known = s_known;
    zc->n_curve_known = n;
    logf_(L_INFO, "CURVE on: this node's public key is %s; %zu keys known",
          s_pub, n);
    return 0;
}

/* The front ends' tokens and TLS material (alive until exit). */
static auth_token s_api_token, s_admin_token;
static http_security s_hsec;

/* Reads a whole PEM file; caller owns the return value. NULL with a
 * message in why. */
static char *s_read_pem(const char *what, const char *path, char *why,
                        size_t whylen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(why, whylen, "%s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    while (s != NULL) {
        size_t n = fread(s + len, 1, cap - len - 1, f);
        len += n;
        if (len < cap - 1) {
            break;
        }
        char *ns = cap < (1u << 20) ? realloc(s, cap * 2) : NULL;
        if (ns == NULL) {
            free(s);
            s = NULL;
            break;
        }
        s = ns;
        cap *= 2;
    }
    bool err = ferror(f);
    fclose(f);
    if (s == NULL || err || len == 0 || strstr(s, "-----BEGIN") == NULL) {
        snprintf(why, whylen, "%s %s: %s", what, path,
                 s == NULL ? "too large (1 MiB at most)"
                           : "not a PEM file (no -----BEGIN line)");
        free(s);
        return NULL;
    }
    s[len] = '\0';
    return s;
}

static int s_api_setup(char *why, size_t whylen)
{
    if (auth_token_load(&s_api_token, D.cfg.api_token_file, "ZRAFT_API_TOKEN",
                        why, whylen) != 0 ||
        auth_token_load(&s_admin_token, D.cfg.admin_token_file,
                        "ZRAFT_ADMIN_TOKEN", why, whylen) != 0) {
        return -1;
    }
    s_hsec.api = &s_api_token;
    s_hsec.admin = &s_admin_token;
    if (D.cfg.tls_cert[0] != '\0') {
        s_hsec.tls_cert = s_read_pem("tls_cert", D.cfg.tls_cert, why, whylen);
        s_hsec.tls_key = s_hsec.tls_cert
                             ? s_read_pem("tls_key", D.cfg.tls_key, why, whylen)
                             : NULL;
        if (s_hsec.tls_key == NULL) {
            return -1;
        }
    }
    if (D.cfg.tls_client_ca[0] != '\0') {
        s_hsec.tls_ca =
            s_read_pem("tls_client_ca", D.cfg.tls_client_ca, why, whylen);
        if (s_hsec.tls_ca == NULL) {
            return -1;
        }
    }
    logf_(L_INFO, "API: %s%s; token for /kv and RESP: %s; for /cluster: %s",
          s_hsec.tls_cert ? "HTTPS" : "plain HTTP",
          s_hsec.tls_ca ? " with client certificates" : "",
          s_api_token.token ? "set" : "none (open)",
          s_admin_token.token ? "set" : "none (open)");
    return 0;
}

/* ----------------------------------------------------------------- main */

/* Every open connection is a descriptor: allow as many as the hard limit
 * does (idle keep-alive connections cost no thread, only this). */
static void s_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    char why[4096];
    if (argc >= 2 && strcmp(argv[1], "keygen") == 0) {
        return keys_keygen_main(argc, argv);
    }
    int rv = config_parse(&D.cfg, argc, argv, environ, why, sizeof why);
    if (rv == 1) {
        fputs(why, stdout);
        return 0;
    }
    if (rv != 0) {
        fprintf(stderr, "zraftd: %s\n", why);
        return 2;
    }
    const char *lv[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(D.cfg.log_level, lv[i]) == 0) {
            D.level = i;
        }
    }
    /* Signals go to main's sigwait only: block them before any thread. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    zraft_storage *st;
    if (strcmp(D.cfg.storage, "disk") == 0) {
        zraft_disk_options o;
        zraft_disk_options_default(&o);
        o.fsync = D.cfg.fsync;
        int err;
        st = zraft_storage_disk_new(D.cfg.data_dir, &o, &err, why, sizeof why);
        if (st == NULL) {
            fprintf(stderr, "zraftd: storage: %s (%s)\n", why,
                    zraft_strerror(err));
            return 1;
        }
    } else {
        st = zraft_storage_memory_new();
    }
    D.store = kv_new();
    zraft_fsm fsm = kv_fsm(D.store);
    zraft_config zc;
    zraft_config_default(&zc, D.cfg.id);
    zc.cluster_id = D.cfg.cluster_id;
    if (s_raft_bind(zc.listen_addr, sizeof zc.listen_addr, why, sizeof why) !=
        0) {
        fprintf(stderr, "zraftd: %s\n", why);
        return 2;
    }
    zc.election_timeout_min_ms = D.cfg.election_timeout_min_ms;
    zc.election_timeout_max_ms = D.cfg.election_timeout_max_ms;
    zc.heartbeat_interval_ms = D.cfg.heartbeat_interval_ms;
    zc.snapshot_threshold = D.cfg.snapshot_threshold;
    zc.snapshot_keep_entries = D.cfg.snapshot_keep_entries;
    if (s_curve_setup(&zc, why, sizeof why) != 0 ||
        s_api_setup(why, sizeof why) != 0) {
        fprintf(stderr, "zraftd: %s\n", why);
        return 2;
    }
    zc.wire_version = (uint8_t)D.cfg.wire_version;
    /* Forwarded requests wait for a leader as the front ends do, and time
     * out with them. */
    zc.leader_wait_ms = D.cfg.leader_wait_ms;
    zc.forward_timeout_ms = OP_TIMEOUT_MS;
    /* Snapshots being received go next to the stored ones. */
    zc.scratch_dir = strcmp(D.cfg.storage, "disk") == 0 ? D.cfg.data_dir : NULL;
    rv = zraft_node_new(&zc, st, &fsm, &D.node);
    memset(s_sec, 0, sizeof s_sec); /* the node has its copy */
    if (rv != 0) {
        fprintf(stderr, "zraftd: cannot start the node: %s\n",
                zraft_strerror(rv));
        return 1;
    }
    zraft_metrics m;
    zraft_metrics_get(D.node, &m);
    /* Nothing durable beyond a vote (a crash may fall between saving term
     * 1 and the first entry): bootstrap, with the same members as every
     * other initial node. The engine refuses once a log or snapshot exists. */
    if (m.last_log_id.index == 0 && m.snapshot_index == 0 &&
        D.cfg.n_peers > 0) {
        zraft_member ms[CONFIG_MAX_PEERS];
        memset(ms, 0, sizeof ms);
        for (uint32_t i = 0; i < D.cfg.n_peers; i++) {
            ms[i].id = D.cfg.peers[i].id;
            ms[i].roles = ZRAFT_ROLE_VOTER;
            snprintf(ms[i].addr, sizeof ms[i].addr, "%s",
                     D.cfg.peers[i].raft_addr);
            snprintf(ms[i].key, sizeof ms[i].key, "%s",
                     s_conf_key(D.cfg.peers[i].id));
        }
        rv = zraft_initialize(D.node, ms, D.cfg.n_peers);
        logf_(L_INFO, "bootstrapped a %u-member cluster: %s", D.cfg.n_peers,
              zraft_strerror(rv));
    }
    if (D.cfg.joins_later) {
        logf_(L_INFO,
              "%s: not bootstrapping; unless it has a log already, it waits "
              "for the leader to add it (POST /cluster/learners, then "
              "/cluster/membership)",
              D.cfg.join ? "join is set" : "id not in initial_cluster");
    }
    http_backend b = {
        .write = b_write,
        .read = b_read,
        .batch = b_batch,
        .leader_known = b_leader_known,
        .leader_http = b_leader_http,
        .status_json = b_status,
        .metrics_text = b_metrics,
        .health = b_health,
        .add_learner = b_add_learner,
        .change_membership = b_membership,
        .transfer_leader = b_transfer,
        .snapshot = b_snapshot,
        .leader_wait_ms = D.cfg.leader_wait_ms
                              ? D.cfg.leader_wait_ms
                              : 2 * D.cfg.election_timeout_max_ms,
        .op_timeout_ms = OP_TIMEOUT_MS,
        /* Forwarding needs wire version 3 (below, the node answers a
         * follower's write ENOTLEADER at once, and HTTP waits). */
        .backend_waits = D.cfg.forward_writes &&
                         (D.cfg.wire_version == 0 || D.cfg.wire_version >= 3),
    };
    http_options ho = {D.cfg.max_body_bytes, D.cfg.http_threads,
                       D.cfg.max_connections, &s_hsec};
    s_raise_fd_limit();
    const char *listen =
        D.cfg.http_listen[0] ? D.cfg.http_listen : D.cfg.http_addr;
    D.http = http_start(listen, &b, &ho, why, sizeof why);
    if (D.http == NULL) {
        fprintf(stderr, "zraftd: %s\n", why);
        zraft_node_destroy(&D.node);
        return 1;
    }
    if (D.cfg.resp_addr[0] != '\0') {
        resp_backend rb = {
            .store = D.store,
            .write = r_write,
            .barrier = r_barrier,
            .leader_known = r_leader_known,
            .leader_addr = r_leader_addr,
            .info = r_info,
            .leader_wait_ms = b.leader_wait_ms,
            .op_timeout_ms = OP_TIMEOUT_MS,
        };
        resp_options ro = {D.cfg.max_body_bytes, D.cfg.max_connections,
                           &s_api_token};
        const char *rl =
            D.cfg.resp_listen[0] ? D.cfg.resp_listen : D.cfg.resp_addr;
        D.resp = resp_start(rl, &rb, &ro, why, sizeof why);
        if (D.resp == NULL) {
            fprintf(stderr, "zraftd: %s\n", why);
            http_stop(&D.http);
            zraft_node_destroy(&D.node);
            return 1;
        }
        logf_(L_INFO, "serving RESP on %s (bound to %s)", D.cfg.resp_addr, rl);
    }
    pthread_t reg;
    pthread_create(&reg, NULL, registrar, NULL);
    logf_(L_INFO,
          "serving raft on %s, http on %s (bound to %s), data in %s (%s)",
          D.cfg.raft_addr, D.cfg.http_addr, listen, D.cfg.data_dir,
          D.cfg.storage);
    int sig = 0;
    sigwait(&sigs, &sig);
    logf_(L_INFO, "signal %d: shutting down", sig);
    atomic_store(&D.stop, true);
    /* Stop taking requests; give those in flight a moment to complete,
     * then the node fails what is left with ESHUTDOWN (503), and the HTTP
     * threads answer it before they stop. */
    http_drain(D.http, 0); /* both front ends stop taking requests */
    if (D.resp != NULL) {
        resp_drain(D.resp, OP_TIMEOUT_MS);
    }
    http_drain(D.http, OP_TIMEOUT_MS);
    pthread_join(reg, NULL);
    zraft_node_destroy(&D.node);
    http_stop(&D.http);
    resp_stop(&D.resp);
    kv_destroy(&D.store);
    fprintf(stderr, "zraftd: stopped\n");
    return 0;
}
