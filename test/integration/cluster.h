/* cluster.h - an in-process cluster for integration tests: N nodes on a
 * zraft_network with memory storage and a recording state machine. Every
 * wait has a deadline and waits on the node's metrics condition. */
#ifndef ZRAFT_TEST_CLUSTER_H
#define ZRAFT_TEST_CLUSTER_H

#include <pthread.h>
#include <stdatomic.h>

#include "zraft.h"

#define CL_MAX         8
#define CL_DEADLINE_MS 20000

/* The recording state machine: every applied payload, in order. */
typedef struct {
    pthread_mutex_t lock;
    uint64_t n;
    uint64_t cap;
    uint64_t *ids;          /* payload's first 8 bytes (a write id) */
    uint64_t hash;          /* rolling hash of the sequence */
    _Atomic int fail_apply; /* non-zero: apply() returns it */
} recorder;

typedef struct {
    zraft_network *net;
    uint32_t n;
    zraft_node *nodes[CL_MAX + 1]; /* by id; NULL when stopped */
    recorder *rec[CL_MAX + 1];
    const char *disk_dir;        /* NULL: memory storage; else DIR/node-<id> */
    uint64_t snapshot_threshold; /* applied to nodes started later */
    uint64_t snapshot_keep;
    uint32_t election_timeout_ms;     /* likewise; 0: 300 (the max is twice) */
    uint32_t heartbeat_ms;            /* likewise; 0: 50 */
    bool forward;                     /* likewise: zraft_config.forward */
    uint32_t leader_wait_ms;          /* likewise (0: the default) */
    uint32_t forward_timeout_ms;      /* likewise (0: the default) */
    uint8_t wire_version[CL_MAX + 1]; /* by node id (0: the newest) */
    /* Set before cl_start: the nodes talk over ZeroMQ TCP on 127.0.0.1
     * (no zraft_network: no fault controls), at addr[id]. */
    bool tcp;
    char addr[CL_MAX + 1][ZRAFT_ADDR_MAX];
    /* Optional: fills the state machine of node `id` (default: a
     * recorder; cl_applied() and cl_assert_same() need the recorder). */
    void (*make_fsm)(void *arg, zraft_id id, zraft_fsm *out);
    void *fsm_arg;
    /* Storage faults: while non-zero, node id's append, sync and
     * save_state return this error (a disk that filled up or failed). */
    _Atomic int storage_fail[CL_MAX + 1];
    /* While non-zero, node id's snapshot_save takes this many ms longer (a
     * slow disk writing a large snapshot). */
    _Atomic int save_delay_ms[CL_MAX + 1];
} cluster;

/* Starts nodes 1..n (all voters) and initializes them. */
void cl_start(cluster *c, uint32_t n);
/* Starts node `id` with an empty memory store (not initialized). */
void cl_start_node(cluster *c, zraft_id id);
void cl_stop_node(cluster *c, zraft_id id);
void cl_stop(cluster *c);
/* Waits for a leader that all running nodes agree on; returns its id. */
zraft_id cl_leader(cluster *c);
/* The same among the running nodes except `skip`. */
zraft_id cl_leader_except(cluster *c, zraft_id skip);
/* False once node `id` sees itself outside the configuration. */
bool cl_is_member(cluster *c, zraft_id id);
/* Waits until every running node (but `skip`) applied at least `index`. */
void cl_wait_applied_except(cluster *c, uint64_t index, zraft_id skip);
/* Asserts that every running node applied the same sequence. */
void cl_assert_same(cluster *c);
/* Writes with retries through whoever leads now; returns the log id. */
zraft_log_id cl_write_any(cluster *c, uint64_t wid, zraft_id skip);
/* Waits until every running node applied at least `index`. */
void cl_wait_applied(cluster *c, uint64_t index);
/* Writes one entry carrying write id `wid`; returns its error. */
int cl_write(cluster *c, zraft_id via, uint64_t wid, zraft_log_id *id);
/* zraft_wait() predicate: the node leads in a term after `after`; the term
 * it leads in is stored in `won` (read there: it may change once the wait
 * returns). */
typedef struct {
    uint64_t after;
    uint64_t won;
} cl_leads_arg;
bool cl_leads_after(const zraft_metrics *m, void *arg);
/* Copies node id's applied sequence (caller frees *ids). */
uint64_t cl_applied(cluster *c, zraft_id id, uint64_t **ids);

#endif
