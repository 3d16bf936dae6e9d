/* counter.c - an embedded replicated counter: three zraft nodes in one
 * process, on zraft's in-process network, each with the same tiny state
 * machine (a 64-bit counter). The program adds 1..N through whoever leads,
 * stops the leader half-way (the other two elect a new one and carry on),
 * and checks that both survivors hold exactly 1 + 2 + ... + N.
 *
 * A write that fails with ENOTLEADER or ELEADERSHIP_LOST may still have
 * been committed, so a retry could count twice. Each command therefore
 * carries a request id, and the state machine skips ids it has applied:
 * with one writer sending ids in order, "id <= last applied id" is a
 * duplicate.
 *
 * Build against an installed zraft:
 *     cc -o counter counter.c $(pkg-config --cflags --libs zraft)
 * Run: ./counter [N]            (N additions, default 1000) */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zraft.h>

#define NODES 3

/* The state machine: one counter and the last request id applied.
 * apply() runs on the node's state machine thread; main() reads `value`
 * from its own thread, hence atomic. */
typedef struct {
    _Atomic uint64_t value;
    uint64_t last_id;
} counter;

/* A command is 16 bytes: request id, amount to add, each 8 bytes
 * little-endian (the machines of a cluster may differ in byte order; the
 * log must not). */
static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static int c_apply(void *ctx, const zraft_entry *e, zraft_buf **result)
{
    counter *c = ctx;
    if (e->payload == NULL || e->payload->len != 16) {
        return 0; /* not a command of ours: ignore (a real program logs) */
    }
    uint64_t id = get_u64(e->payload->data);
    uint64_t v = atomic_load(&c->value);
    if (id > c->last_id) { /* else a retried duplicate: already counted */
        v += get_u64(e->payload->data + 8);
        c->last_id = id;
        atomic_store(&c->value, v);
    }
    /* The writer gets the new total back. */
    unsigned char out[8];
    put_u64(out, v);
    *result = zraft_buf_new(out, 8);
    return 0;
}

static int c_snapshot(void *ctx, zraft_buf **out)
{
    counter *c = ctx;
    unsigned char b[16];
    put_u64(b, c->last_id);
    put_u64(b + 8, atomic_load(&c->value));
    *out = zraft_buf_new(b, 16);
    return *out ? 0 : ZRAFT_ENOMEM;
}

static int c_restore(void *ctx, const zraft_buf *data)
{
    counter *c = ctx;
    if (data->len != 16) {
        return ZRAFT_ECORRUPT;
    }
    c->last_id = get_u64(data->data);
    atomic_store(&c->value, get_u64(data->data + 8));
    return 0;
}

static void c_destroy(void *ctx)
{
    (void)ctx; /* the counters live in main()'s array */
}

/* True once the node follows a leader that is still running (after the
 * leader is stopped, the others remember it until they elect another). */
static bool has_live_leader(const zraft_metrics *m, void *arg)
{
    zraft_node **nodes = arg;
    return m->leader != 0 && m->leader <= NODES && nodes[m->leader - 1];
}

static bool applied_at_least(const zraft_metrics *m, void *arg)
{
    return m->last_applied >= *(const uint64_t *)arg;
}

/* The node that leads now, among those still running (0 if none within
 * the deadline). */
static zraft_id leader_of(zraft_node **nodes)
{
    for (int i = 0; i < NODES; i++) {
        if (nodes[i] != NULL) {
            zraft_metrics m;
            if (zraft_wait(nodes[i], has_live_leader, nodes, 10000) != 0 ||
                zraft_metrics_get(nodes[i], &m) != 0) {
                return 0;
            }
            return m.leader;
        }
    }
    return 0;
}

/* Adds `amount` as request `id` through the leader, retrying while
 * leadership moves. */
static int add(zraft_node **nodes, uint64_t id, uint64_t amount)
{
    unsigned char cmd[16];
    put_u64(cmd, id);
    put_u64(cmd + 8, amount);
    for (int attempt = 0; attempt < 50; attempt++) {
        zraft_id l = leader_of(nodes);
        if (l == 0) {
            return ZRAFT_ETIMEDOUT;
        }
        int rv = zraft_write_sync(nodes[l - 1], cmd, sizeof cmd, 5000, NULL);
        if (rv == 0) {
            return 0;
        }
        /* ENOTLEADER, ELEADERSHIP_LOST, ETIMEDOUT: the write may or may
         * not have been committed; the request id makes the retry safe. */
        if (rv != ZRAFT_ENOTLEADER && rv != ZRAFT_ELEADERSHIP_LOST &&
            rv != ZRAFT_ETIMEDOUT) {
            return rv;
        }
    }
    return ZRAFT_ETIMEDOUT;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000;
    if (n == 0) {
        fprintf(stderr, "usage: counter [N > 0]\n");
        return 2;
    }
    zraft_network *net = zraft_network_new();
    counter state[NODES];
    zraft_node *nodes[NODES] = {0};
    zraft_member members[NODES];
    memset(members, 0, sizeof members);
    for (int i = 0; i < NODES; i++) {
        members[i].id = (zraft_id)(i + 1);
        members[i].roles = ZRAFT_ROLE_VOTER;
    }
    for (int i = 0; i < NODES; i++) {
        atomic_init(&state[i].value, 0);
        state[i].last_id = 0;
        zraft_config c;
        zraft_config_default(&c, (zraft_id)(i + 1));
        c.network = net; /* in-process; set c.listen_addr for TCP */
        zraft_fsm fsm = {&state[i], c_apply, c_snapshot, c_restore, c_destroy};
        int rv =
            zraft_node_new(&c, zraft_storage_memory_new(), &fsm, &nodes[i]);
        if (rv == 0) {
            rv = zraft_initialize(nodes[i], members, NODES);
        }
        if (rv != 0) {
            fprintf(stderr, "node %d: %s\n", i + 1, zraft_strerror(rv));
            return 1;
        }
    }

    uint64_t expect = 0;
    for (uint64_t k = 1; k <= n; k++) {
        if (k == n / 2 + 1) {
            /* Half-way: stop the leader; the others elect a new one. */
            zraft_id stopped = leader_of(nodes);
            if (stopped == 0) {
                fprintf(stderr, "no leader elected\n");
                return 1;
            }
            printf("stopping leader %llu after %llu additions\n",
                   (unsigned long long)stopped, (unsigned long long)(k - 1));
            fflush(stdout);
            zraft_node_destroy(&nodes[stopped - 1]);
        }
        int rv = add(nodes, k, k);
        if (rv != 0) {
            fprintf(stderr, "add %llu: %s\n", (unsigned long long)k,
                    zraft_strerror(rv));
            return 1;
        }
        expect += k;
    }
    /* A linearizable read on the leader: once it passes, the leader has
     * applied every write acknowledged above. The follower waits until it
     * has applied up to the leader's commit index. */
    zraft_id l = leader_of(nodes);
    zraft_metrics lm;
    if (l == 0 || zraft_read_sync(nodes[l - 1], 5000) != 0 ||
        zraft_metrics_get(nodes[l - 1], &lm) != 0) {
        fprintf(stderr, "no leader to read from\n");
        return 1;
    }
    int bad = 0;
    for (int i = 0; i < NODES; i++) {
        if (nodes[i] == NULL) {
            continue;
        }
        uint64_t target = lm.commit_index;
        zraft_wait(nodes[i], applied_at_least, &target, 10000);
        uint64_t v = atomic_load(&state[i].value);
        printf("node %d%s: counter = %llu\n", i + 1,
               (zraft_id)(i + 1) == l ? " (leader)" : "",
               (unsigned long long)v);
        bad |= v != expect;
    }
    for (int i = 0; i < NODES; i++) {
        zraft_node_destroy(&nodes[i]);
    }
    zraft_network_destroy(&net);
    printf("%s: expected %llu on every running node\n", bad ? "FAIL" : "ok",
           (unsigned long long)expect);
    return bad;
}
