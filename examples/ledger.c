/* ledger.c - a replicated ledger, one zraft node per process: three
 * processes on one machine (or three machines) over ZeroMQ TCP, each with a
 * durable log in its own directory and a custom state machine - account
 * balances that deposits and transfers change, where a transfer that would
 * overdraw an account is refused, the same way on every node.
 *
 * Build against an installed zraft:
 *     cc -o ledger ledger.c $(pkg-config --cflags --libs zraft)
 * Run one process per node (same address list everywhere):
 *     ./ledger 1 /tmp/ledger/n1 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
 * 500 &
 *     ./ledger 2 /tmp/ledger/n2 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
 * 500 &
 *     ./ledger 3 /tmp/ledger/n3 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
 * 500 &
 *
 * Whichever node leads writes operations 1..N (each operation is a
 * function of its number, so any leader can take over where another
 * stopped); every node applies them. Once a node has applied all N, it
 * prints its balances and whether they equal what a local replay of the N
 * operations gives, then keeps serving its peers until SIGTERM or SIGINT
 * (a node that left at once could leave the others without a quorum).
 * Started again on the same directories with a larger N, the nodes recover
 * their state from disk and carry on from where they were. */
#define _POSIX_C_SOURCE 200809L /* sigwait, pthread_sigmask under -std=c11 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zraft.h>
#include <zraft_disk.h>

#define NODES    3
#define ACCOUNTS 3

static const char *const names[ACCOUNTS] = {"alice", "bob", "carol"};

/* ------------------------------------------------------- state machine */

typedef struct {
    uint64_t seq;              /* last operation applied (duplicates skip) */
    int64_t balance[ACCOUNTS]; /* never below zero */
    uint64_t refused;          /* transfers refused for lack of funds */
} ledger;

/* The state machine context: the ledger, and a copy for main() to read
 * (apply runs on the node's state machine thread). */
typedef struct {
    ledger state;
    _Atomic uint64_t seq_seen;
    pthread_mutex_t lock;
    ledger shown;
} machine;

/* Operation `seq` as text: "SEQ deposit ACCOUNT AMOUNT" or
 * "SEQ transfer FROM TO AMOUNT". Text keeps the log readable. */
static int op_text(uint64_t seq, char *out, size_t cap)
{
    int a = (int)(seq % ACCOUNTS), b = (int)((seq / ACCOUNTS) % ACCOUNTS);
    if (seq % 4 == 1) {
        return snprintf(out, cap, "%llu deposit %d %llu",
                        (unsigned long long)seq, a,
                        (unsigned long long)(seq % 50 + 1));
    }
    return snprintf(out, cap, "%llu transfer %d %d %llu",
                    (unsigned long long)seq, a, b == a ? (a + 1) % ACCOUNTS : b,
                    (unsigned long long)(seq % 70 + 1));
}

/* Applies one operation's text. Returns 0, or -1 for a command it cannot
 * read (the log holds only what this program wrote; anything else is a
 * bug, and stopping the node is safer than diverging). */
static int ledger_apply(ledger *l, const char *cmd, size_t len)
{
    char buf[96];
    if (len == 0 || len >= sizeof buf) {
        return -1;
    }
    memcpy(buf, cmd, len);
    buf[len] = '\0';
    unsigned long long seq, amount;
    int from, to, used = 0;
    if (sscanf(buf, "%llu deposit %d %llu%n", &seq, &to, &amount, &used) == 3 &&
        used == (int)len && to >= 0 && to < ACCOUNTS) {
        from = -1;
    } else if (sscanf(buf, "%llu transfer %d %d %llu%n", &seq, &from, &to,
                      &amount, &used) == 4 &&
               used == (int)len && from >= 0 && from < ACCOUNTS && to >= 0 &&
               to < ACCOUNTS) {
    } else {
        return -1;
    }
    if (seq <= l->seq) {
        return 0; /* a leader's retry of an operation already applied */
    }
    l->seq = seq;
    if (from >= 0) {
        if (l->balance[from] < (int64_t)amount) {
            l->refused++;
            return 0;
        }
        l->balance[from] -= (int64_t)amount;
    }
    l->balance[to] += (int64_t)amount;
    return 0;
}

static void publish(machine *m)
{
    pthread_mutex_lock(&m->lock);
    m->shown = m->state;
    pthread_mutex_unlock(&m->lock);
    atomic_store(&m->seq_seen, m->state.seq);
}

static int m_apply(void *ctx, const zraft_entry *e, zraft_buf **result)
{
    machine *m = ctx;
    (void)result;
    if (e->payload == NULL ||
        ledger_apply(&m->state, (const char *)e->payload->data,
                     e->payload->len) != 0) {
        fprintf(stderr, "ledger: unreadable entry %llu\n",
                (unsigned long long)e->id.index);
        return ZRAFT_ECORRUPT; /* stops the node */
    }
    publish(m);
    return 0;
}

/* Snapshot: "SEQ REFUSED B0 B1 B2" as text. */
static int m_snapshot(void *ctx, zraft_buf **out)
{
    machine *m = ctx;
    char b[128];
    int n = snprintf(
        b, sizeof b, "%llu %llu %lld %lld %lld",
        (unsigned long long)m->state.seq, (unsigned long long)m->state.refused,
        (long long)m->state.balance[0], (long long)m->state.balance[1],
        (long long)m->state.balance[2]);
    *out = zraft_buf_new(b, (size_t)n);
    return *out ? 0 : ZRAFT_ENOMEM;
}

static int m_restore(void *ctx, const zraft_buf *data)
{
    machine *m = ctx;
    char b[128];
    if (data->len >= sizeof b) {
        return ZRAFT_ECORRUPT;
    }
    memcpy(b, data->data, data->len);
    b[data->len] = '\0';
    unsigned long long seq, refused;
    long long b0, b1, b2;
    if (sscanf(b, "%llu %llu %lld %lld %lld", &seq, &refused, &b0, &b1, &b2) !=
        5) {
        return ZRAFT_ECORRUPT;
    }
    m->state = (ledger){seq, {b0, b1, b2}, refused};
    publish(m);
    return 0;
}

static void m_destroy(void *ctx)
{
    (void)ctx; /* lives in main() */
}

/* ---------------------------------------------------------------- main */

static bool changed(const zraft_metrics *m, void *arg)
{
    const zraft_metrics *was = arg;
    return m->last_applied != was->last_applied || m->leader != was->leader ||
           m->term != was->term;
}

/* Splits "a,b,c" into NODES addresses. */
static int parse_addrs(const char *list, zraft_member *members)
{
    const char *p = list;
    for (int i = 0; i < NODES; i++) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= ZRAFT_ADDR_MAX) {
            return -1;
        }
        members[i].id = (zraft_id)(i + 1);
        members[i].roles = ZRAFT_ROLE_VOTER;
        memcpy(members[i].addr, p, n);
        members[i].addr[n] = '\0';
        p += n;
        if (i < NODES - 1 && *p++ != ',') {
            return -1;
        }
    }
    return *p == '\0' ? 0 : -1;
}

static void print_ledger(zraft_id id, const ledger *l, const char *verdict)
{
    printf("node %llu: seq=%llu", (unsigned long long)id,
           (unsigned long long)l->seq);
    for (int i = 0; i < ACCOUNTS; i++) {
        printf(" %s=%lld", names[i], (long long)l->balance[i]);
    }
    printf(" refused=%llu %s\n", (unsigned long long)l->refused, verdict);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    zraft_member members[NODES];
    memset(members, 0, sizeof members);
    unsigned long id = argc == 5 ? strtoul(argv[1], NULL, 10) : 0;
    unsigned long long ops = argc == 5 ? strtoull(argv[4], NULL, 10) : 0;
    if (id < 1 || id > NODES || ops == 0 ||
        parse_addrs(argv[3], members) != 0) {
        fprintf(stderr, "usage: ledger ID(1-3) DATA_DIR ADDR1,ADDR2,ADDR3 "
                        "OPERATIONS\n");
        return 2;
    }
    /* SIGTERM and SIGINT are waited for below, not delivered: blocked
     * before any zraft thread starts, so none of them takes the signal. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    int err;
    char why[256];
    zraft_storage *st =
        zraft_storage_disk_new(argv[2], NULL, &err, why, sizeof why);
    if (st == NULL) {
        fprintf(stderr, "ledger: %s\n", why);
        return 1;
    }
    static machine m;
    pthread_mutex_init(&m.lock, NULL);
    zraft_config c;
    zraft_config_default(&c, id);
    snprintf(c.listen_addr, sizeof c.listen_addr, "%s", members[id - 1].addr);
    c.scratch_dir = argv[2];
    c.snapshot_threshold = 200; /* snapshots (and restores) happen here too */
    zraft_fsm fsm = {&m, m_apply, m_snapshot, m_restore, m_destroy};
    zraft_node *n;
    int rv = zraft_node_new(&c, st, &fsm, &n);
    if (rv != 0) {
        fprintf(stderr, "ledger: start: %s\n", zraft_strerror(rv));
        return 1;
    }
    rv = zraft_initialize(n, members, NODES);
    if (rv != 0 && rv != ZRAFT_EBUSY) { /* EBUSY: restarted, has state */
        fprintf(stderr, "ledger: initialize: %s\n", zraft_strerror(rv));
        zraft_node_destroy(&n);
        return 1;
    }

    /* Until every operation is applied here: lead, or wait. */
    while (atomic_load(&m.seq_seen) < ops) {
        zraft_metrics mt;
        zraft_metrics_get(n, &mt);
        if (mt.fatal != 0) {
            fprintf(stderr, "ledger: node stopped: %s\n",
                    zraft_strerror(mt.fatal));
            zraft_node_destroy(&n);
            return 1;
        }
        if (mt.leader == id) {
            /* The next operation after what this leader has applied; one
             * still in the log from an earlier leader may be applied
             * first, and then this one is a duplicate that apply skips. */
            char cmd[96];
            int len = op_text(atomic_load(&m.seq_seen) + 1, cmd, sizeof cmd);
            rv = zraft_write_sync(n, cmd, (size_t)len, 5000, NULL);
            if (rv != 0) { /* leadership moved, or no quorum yet */
                if (rv != ZRAFT_ENOTLEADER && rv != ZRAFT_ELEADERSHIP_LOST &&
                    rv != ZRAFT_ETIMEDOUT) {
                    fprintf(stderr, "ledger: write: %s\n", zraft_strerror(rv));
                }
                zraft_wait(n, changed, &mt, 100);
            }
        } else {
            zraft_wait(n, changed, &mt, 500);
        }
    }

    /* The balances every node must reach: the same operations replayed
     * here without Raft. */
    ledger want = {0};
    for (uint64_t s = 1; s <= ops; s++) {
        char cmd[96];
        int len = op_text(s, cmd, sizeof cmd);
        ledger_apply(&want, cmd, (size_t)len);
    }
    pthread_mutex_lock(&m.lock);
    ledger got = m.shown;
    pthread_mutex_unlock(&m.lock);
    bool ok = memcmp(&got, &want, sizeof got) == 0;
    print_ledger(id, &got, ok ? "ok" : "MISMATCH");

    int sig;
    sigwait(&stop, &sig);
    zraft_node_destroy(&n);
    return ok ? 0 : 1;
}
