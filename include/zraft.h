/* zraft.h - the public API of libzraft: start a Raft node on its own threads,
 * hand it a state machine and a storage, write, read linearizably, change
 * membership, watch metrics, stop.
 *
 * Threads: every call here may be made from any thread. Callbacks run on
 * the node's state machine thread ("sm-<id>"), in log order; they must not
 * block for long and must not call zraft_node_destroy(). When a function
 * that takes a callback returns an error, the callback is never called.
 *
 * Errors: 0 or a negative ZRAFT_E* constant (zraft_strerror()). */
#ifndef ZRAFT_H
#define ZRAFT_H

#include "zraft_storage.h"
#include "zraft_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ network */

/* An in-process network: nodes of one process that share it talk over
 * ZeroMQ inproc sockets, with fault controls for tests. Without one, nodes
 * talk over ZeroMQ TCP to the addresses in the membership. */
typedef struct zraft_network zraft_network;

/* Caller owns the return value; destroy it after every node using it. */
zraft_network *zraft_network_new(void);
void zraft_network_destroy(zraft_network **n);
/* Drops every message to and from `id` until zraft_network_heal(). */
void zraft_network_isolate(zraft_network *n, zraft_id id);
/* Drops messages from `from` to `to` (one way). */
void zraft_network_cut(zraft_network *n, zraft_id from, zraft_id to);
/* Drops each message from `from` to `to` with probability permille/1000,
 * using a seeded generator (reproducible counts, not timing). */
void zraft_network_lossy(zraft_network *n, zraft_id from, zraft_id to,
                         uint32_t permille);
/* Delays messages from `from` to `to` by `ms` milliseconds. */
void zraft_network_delay(zraft_network *n, zraft_id from, zraft_id to,
                         uint32_t ms);
/* Removes every fault. */
void zraft_network_heal(zraft_network *n);
/* Messages dropped by faults so far. */
uint64_t zraft_network_dropped(const zraft_network *n);

/* ------------------------------------------------------------- config */

typedef struct {
    zraft_id id;
    uint64_t cluster_id;
    /* TCP only: "host:port" to bind for Raft RPCs ("*:port" binds all). */
    char listen_addr[ZRAFT_ADDR_MAX];
    zraft_network *network; /* NULL: ZeroMQ TCP */
    uint32_t election_timeout_min_ms;
    uint32_t election_timeout_max_ms;
    uint32_t heartbeat_interval_ms;
    bool pre_vote;
    bool check_quorum;
    uint32_t max_entries_per_msg;
    uint32_t max_bytes_per_msg;
    uint32_t max_inflight_msgs;
    uint64_t max_inflight_bytes;
    uint64_t snapshot_threshold;    /* entries between snapshots (0: off) */
    uint64_t snapshot_keep_entries; /* log kept below a snapshot */
    uint32_t max_batch;             /* client writes per engine batch */
    /* CurveZMQ (ZeroMQ TCP only): this node's long-term secret key in Z85
     * (ZRAFT_KEY_LEN characters); NULL or "": plain TCP. With a key, every
     * connection between nodes is encrypted and authenticated, and a node
     * admits only the members of its configuration, each with the key its
     * membership entry carries (zraft_member.key) or else the one listed
     * in curve_known; a stranger is refused at the handshake (counted in
     * zraft_metrics.peers_refused). Copied at zraft_node_new(). */
    const char *curve_secret_key;
    /* Members' ids and public keys known by configuration (addr and roles
     * are ignored; borrowed until zraft_node_new() returns): admitted while
     * the node holds no configuration yet (so a node that waits to be added
     * admits the cluster that will add it), and the key of a member whose
     * entry has none. */
    const zraft_member *curve_known;
    size_t n_curve_known;
    /* Where snapshots being received are written (NULL: $TMPDIR, else
     * /tmp). Use a directory on the data disk: a transfer needs room for
     * the whole snapshot. The files have no name (or lose it at once), so
     * nothing is left behind by a crash. Copied at zraft_node_new(). */
    const char *scratch_dir;
    /* Wire format version this node sends (docs/wire.md, Versioning):
     * 0 for the newest (4). Set 1, 2 or 3 while a cluster is upgraded from
     * nodes of that version; below 4 every frame is one copied ZeroMQ part
     * (older receivers read only the first part of a message), below 3
     * nothing is forwarded (the frames do not exist there), below 2
     * snapshots go without chunk acknowledgements (no flow control, no
     * resume). */
    uint8_t wire_version;
    /* Followers forward zraft_write() / zraft_read() to the leader over the
     * Raft transport instead of failing them with ZRAFT_ENOTLEADER (the
     * default of the per-call ZRAFT_CALL_* flags; off by default). See
     * zraft_write_ex(). */
    bool forward;
    /* A forwarded request waits this long for a leader to be known before
     * it fails with ZRAFT_ENOTLEADER (0: two election_timeout_max_ms). */
    uint32_t leader_wait_ms;
    /* A forwarded request sent to the leader and not answered after this
     * long fails with ZRAFT_ETIMEDOUT (0: 10 s); for a write that is an
     * unknown outcome, as for any time-out. */
    uint32_t forward_timeout_ms;
    uint64_t seed; /* election PRNG seed (0: from id and time) */
    /* Before a node's thread sleeps on a mailbox that was busy less than a
     * millisecond ago, it polls it for up to this many microseconds (0:
     * never): a message that comes meanwhile costs no wake-up (about
     * 10-35 us each on a small VM) but the spin costs CPU. At most (CPUs
     * - 1) threads of the process spin at once, and none while the
     * machine has more runnable threads than that (/proc/loadavg, read
     * every 50 ms), so a one-CPU or busy machine never spins and one CPU
     * is always left for the threads that work. At most 10000. */
    uint32_t spin_us;
} zraft_config;

/* Defaults for node `id`: 150-300 ms elections, 50 ms heartbeats,
 * pre-vote and check-quorum on, in-process network off. */
void zraft_config_default(zraft_config *c, zraft_id id);
/* ZRAFT_EINVAL with a static reason in *why. */
int zraft_config_validate(const zraft_config *c, const char **why);

/* --------------------------------------------------------------- node */

typedef struct zraft_node zraft_node;

/* Starts node `c->id`: recovers from `storage`, restores `fsm` from the
 * latest snapshot and starts the threads core-<id>, log-<id>, sm-<id>
 * (and repl-<id>-<peer> while leader). Takes ownership of `storage` and
 * `fsm` on success (their destroy callbacks run at zraft_node_destroy).
 * ZRAFT_EINVAL, ZRAFT_ENOMEM, ZRAFT_EIO / ZRAFT_ECORRUPT from storage. */
int zraft_node_new(const zraft_config *c, zraft_storage *storage,
                   zraft_fsm *fsm, zraft_node **out);
/* Stops and joins every thread, fails pending callbacks with
 * ZRAFT_ESHUTDOWN, frees everything and sets *n to NULL. Idempotent. */
void zraft_node_destroy(zraft_node **n);

/* Bootstraps a new cluster with these members (on one node, or on every
 * node with the same list). ZRAFT_EBUSY if the node already has state. */
int zraft_initialize(zraft_node *n, const zraft_member *members, size_t count);

/* ------------------------------------------------------------- writes */

/* The largest payload one write may carry. One entry always fits in one
 * Raft frame (64 MiB, headers included), so a write this node accepts can
 * always be replicated; anything larger is refused with ZRAFT_ETOOBIG. */
#define ZRAFT_MAX_PAYLOAD_BYTES ((64u << 20) - (64u << 10))

/* Called once per write: err 0 when the entry is committed and applied
 * (`result` is the state machine's answer, a reference the callee may keep
 * by taking its own ref; NULL if none), or an error:
 * ZRAFT_ENOTLEADER (this node is not the leader: see zraft_metrics().leader),
 * ZRAFT_ELEADERSHIP_LOST (the entry was overwritten by a new leader),
 * ZRAFT_ESHUTDOWN. */
typedef void (*zraft_write_cb)(void *arg, int err, zraft_log_id id,
                               zraft_buf *result);

/* Replicates `len` bytes (copied). Any thread; never blocks on the
 * network. ZRAFT_ETOOBIG above ZRAFT_MAX_PAYLOAD_BYTES. */
int zraft_write(zraft_node *n, const void *data, size_t len, zraft_write_cb cb,
                void *arg);
/* Same with a buffer: takes ownership of one reference to `payload` on
 * success (no copy anywhere in the node). */
int zraft_write_buf(zraft_node *n, zraft_buf *payload, zraft_write_cb cb,
                    void *arg);
/* Per-call flags of zraft_write_ex() and zraft_read_ex(). */
enum {
    ZRAFT_CALL_FORWARD = 1,    /* forward to the leader on a follower */
    ZRAFT_CALL_NO_FORWARD = 2, /* never forward (fail with ENOTLEADER) */
};

/* zraft_write_buf() with flags (0: zraft_config.forward decides).
 *
 * Forwarding (docs/runtime.md, Forwarding): on a node that is not the
 * leader the write travels to the leader in a FORWARD frame, the leader
 * proposes it like its own, and `cb` runs (on this node's state machine
 * thread) with the leader's answer: on success the entry's id and the
 * state machine's result (this node may not have applied the entry yet:
 * a linearizable read here sees it, a local stale read may not). Retried on the
 * next leader only when the leader refused it without proposing it
 * (ZRAFT_ENOTLEADER, ZRAFT_ETRANSFER): a write is never proposed twice. While
 * no leader is known it waits up to leader_wait_ms (then ZRAFT_ENOTLEADER); an
 * answer that does not come within forward_timeout_ms fails with
 * ZRAFT_ETIMEDOUT: the outcome is unknown (the write may have been
 * applied), as for any time-out. */
int zraft_write_ex(zraft_node *n, zraft_buf *payload, unsigned flags,
                   zraft_write_cb cb, void *arg);
/* Blocking form: waits up to timeout_ms (<0: forever). *id (optional)
 * receives the entry's log id. */
int zraft_write_sync(zraft_node *n, const void *data, size_t len,
                     int timeout_ms, zraft_log_id *id);

/* -------------------------------------------------------------- reads */

/* Linearizable read barrier (read-index, thesis §6.4): `cb(arg, 0)` runs
 * on the state machine thread once the state machine reflects every write
 * acknowledged before this call; read your state machine there.
 * ZRAFT_ENOTLEADER through the callback when this node is not the leader. */
typedef void (*zraft_read_cb)(void *arg, int err);
int zraft_read(zraft_node *n, zraft_read_cb cb, void *arg);
/* zraft_read() with flags (0: zraft_config.forward decides). Forwarded, a
 * follower asks the leader for its read index (the leader confirms its
 * leadership with a heartbeat round first, thesis §6.4) and `cb` runs once
 * this node has applied up to it. A read has no side effect: it is asked
 * again of the next leader whenever the answer is lost or refused, until
 * leader_wait_ms (no leader) or forward_timeout_ms pass. */
int zraft_read_ex(zraft_node *n, unsigned flags, zraft_read_cb cb, void *arg);
/* Blocking form: returns 0 once the barrier passed; the state machine may
 * then be read (it only moves forward). */
int zraft_read_sync(zraft_node *n, int timeout_ms);

/* Batching for an event loop that makes many calls in a row on one thread
 * (zraftd's HTTP serving threads): between zraft_batch_begin() and
 * zraft_batch_end(), the writes and reads this thread queues on `n` wake
 * its core thread once, at zraft_batch_end(), instead of once per call
 * that finds the core idle (a wake-up costs a system call here and a
 * context switch there). Nothing is held back otherwise: a call is queued
 * at once, and taken early if the core wakes for another reason. Do not
 * block in between (the calls may wait for the end), end the batch on the
 * thread that began it, with the same node. Batches nest (the outermost
 * end wakes the core). Inside a callback (where the state machine thread
 * batches already) both calls do nothing. */
void zraft_batch_begin(zraft_node *n);
void zraft_batch_end(zraft_node *n);

/* -------------------------------------------------------------- admin */

/* Each waits until the change is committed (or timeout_ms passes:
 * ZRAFT_ETIMEDOUT; the change may still happen). */
int zraft_add_learner(zraft_node *n, zraft_id id, const char *addr,
                      int timeout_ms);
/* Same, with the learner's CurveZMQ public key (Z85; NULL keeps the key a
 * learner already has, "" removes it). Every node admits the learner from
 * the moment it applies the change. ZRAFT_EINVAL for a key that is not Z85
 * of ZRAFT_KEY_LEN characters. */
int zraft_add_learner_key(zraft_node *n, zraft_id id, const char *addr,
                          const char *key, int timeout_ms);
int zraft_remove_learner(zraft_node *n, zraft_id id, int timeout_ms);
/* Joint consensus to exactly `voters` (each already a member). Returns
 * once C_new is committed. */
int zraft_change_membership(zraft_node *n, const zraft_id *voters, size_t count,
                            int timeout_ms);
/* Asks the leader to hand leadership to `to` (returns once asked). */
int zraft_transfer_leader(zraft_node *n, zraft_id to);
/* Builds a snapshot now (returns once requested). */
int zraft_trigger_snapshot(zraft_node *n);

/* ------------------------------------------------------------ metrics */

typedef struct {
    zraft_id id;
    uint64_t matched;
} zraft_peer_metrics;

typedef struct {
    zraft_id id;
    const char *role; /* "leader", "follower", "candidate", "learner", ... */
    int role_code;    /* engine role */
    uint64_t term;
    zraft_id leader;
    uint64_t commit_index;
    uint64_t last_applied;
    zraft_log_id last_log_id;
    uint64_t snapshot_index;
    zraft_membership membership; /* effective configuration */
    uint32_t n_peers;
    zraft_peer_metrics peers[ZRAFT_MAX_MEMBERS]; /* leader only */
    uint64_t writes;  /* entries proposed by this node as leader */
    uint64_t applied; /* entries applied */
    uint64_t fsyncs;  /* storage syncs */
    uint64_t fsync_us_total;
    uint64_t fsync_hist[16]; /* syncs with duration < 2^(i+4) us */
    int fatal;               /* non-zero: the node stopped on this error */
    /* Snapshot chunk bytes this node sent as leader (resends included),
     * and how many of them were sent again (after a reconnect or a loss;
     * a transfer resumes where the follower's acknowledgements say). */
    uint64_t snapshot_bytes_sent;
    uint64_t snapshot_bytes_resent;
    /* CurveZMQ handshakes refused (a key not in the configuration). */
    uint64_t peers_refused;
    /* Forwarding (zraft_write_ex(), docs/runtime.md, Forwarding), counted
     * since this node started. As a follower: writes and reads sent to a
     * leader (each counted once, at its first send); sends after the
     * first (a write refused before it was proposed, a read asked again
     * after a leader change or a refusal); requests that got no answer
     * within forward_timeout_ms (ZRAFT_ETIMEDOUT); requests that failed
     * otherwise (no leader within leader_wait_ms, an error answered by the
     * leader, shutdown). As the leader: writes and reads received from
     * followers. */
    uint64_t fwd_writes, fwd_reads;
    uint64_t fwd_retries, fwd_timeouts, fwd_failures;
    uint64_t fwd_served_writes, fwd_served_reads;
    /* Connections to a leader replaced (a send unanswered for two election
     * timeouts, or the leader's address moved): answers on their way over
     * the old one are lost, and the writes they answer time out. */
    uint64_t fwd_reconnects;
    /* As the leader: reports that a follower was unreachable because its
     * connection refused a send (it was down; the leader probes that
     * follower again). One report may cover several frames refused at
     * once. A new connection's first frames wait for it to come up (up to
     * a heartbeat interval) and are counted only if it does not. */
    uint64_t repl_refused;
} zraft_metrics;

/* A consistent snapshot of the node's state. */
int zraft_metrics_get(zraft_node *n, zraft_metrics *out);
/* Waits until pred(metrics, arg) is true, re-checking on every change;
 * ZRAFT_ETIMEDOUT after timeout_ms. */
int zraft_wait(zraft_node *n, bool (*pred)(const zraft_metrics *, void *),
               void *arg, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif /* ZRAFT_H */
