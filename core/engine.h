/* engine.h - the pure Raft engine: events in, an ordered list of commands out.
 *
 * The engine decides everything Raft decides and does nothing else: no
 * threads, no clock, no I/O, no sockets. Time arrives as `now` (milliseconds,
 * any monotonic origin) in engine_tick(); randomness comes from a PRNG seeded
 * in the config. Every event handler appends commands to the engine's output
 * list; the driver (the actor runtime, or the simulator) runs them in order.
 *
 * The output contract (etcd's "entries saved to stable storage BEFORE messages
 * are sent", in this engine's words):
 *  - Commands that start storage I/O (SAVE_VOTE, APPEND, TRUNCATE, PURGE,
 *    INSTALL_SNAPSHOT) carry an increasing `io_seq`. The driver performs them
 *    in that order and reports durability with engine_io_flushed(seq), which
 *    is cumulative: seq N flushed means every op <= N is durable.
 *  - A command with `wait_io` > 0 must not run before engine_io_flushed() has
 *    reported at least `wait_io`. The driver holds such commands back, in
 *    order, and must not reorder a later command of the same kind of output
 *    (sends to one peer) ahead of it. Exception: a HEARTBEAT_RESP with no
 *    wait_io may overtake held sends (it claims nothing about the log; etcd
 *    likewise sends heartbeat responses without waiting for storage).
 *  - A command held back past the event that produced it (for its own
 *    wait_io or behind another one) runs only if engine_command_current()
 *    still says yes when it is released; otherwise the driver drops it. A
 *    request made for a role in a term (the leader's REPLICATE,
 *    SEND_SNAPSHOT, heartbeats and TimeoutNow; a candidate's vote requests)
 *    must not outlive that role: a leader that stepped down may have
 *    truncated the very entries a held REPLICATE names (the seed's
 *    does_vote_match, applied to the engine's own output).
 *  - APPLY(upto) asks the state machine to apply every committed entry up to
 *    `upto`; the driver reports progress with engine_applied(). An APPLY
 *    whose entries are already covered by the state machine (applied >= the
 *    index, e.g. after an INSTALL_SNAPSHOT that ran before it was released)
 *    is a no-op for those entries.
 *  - INSTALL_SNAPSHOT replaces the log (storage reset to the snapshot) and
 *    the state machine's state; afterwards applied == the snapshot's index.
 *
 * Modelled on etcd-io/raft (raft.go, tracker/) and openraft's Engine; the
 * rules cite the Raft paper (§) and Ongaro's thesis. */
#ifndef ZRAFT_CORE_ENGINE_H
#define ZRAFT_CORE_ENGINE_H

#include "zraft_types.h"

/* ------------------------------------------------------------- messages */

/* The RPCs between engines. On the wire the transport codec encodes these. */
typedef enum {
    MSG_VOTE = 1, /* RequestVote / pre-vote (§5.2, thesis §9.6) */
    MSG_VOTE_RESP,
    MSG_APPEND, /* AppendEntries (§5.3) */
    MSG_APPEND_RESP,
    MSG_HEARTBEAT, /* empty AppendEntries that carries commit + read ctx */
    MSG_HEARTBEAT_RESP,
    MSG_SNAPSHOT, /* InstallSnapshot (§7), whole snapshot */
    MSG_SNAPSHOT_RESP,
    MSG_TIMEOUT_NOW, /* leadership transfer (thesis §3.10) */
    MSG__COUNT
} msg_type;

/* Name of a message type for logs ("VOTE", ...); never NULL. */
const char *msg_type_name(int type);

typedef zraft_snapshot_meta snapshot_meta;

typedef struct {
    uint8_t type; /* msg_type */
    zraft_id from;
    zraft_id to;
    uint64_t term; /* sender's term (for pre-vote: the term it would take) */
    union {
        struct {
            zraft_log_id last_log_id;
            bool pre_vote;
            bool transfer; /* sent because of TIMEOUT_NOW: ignore leases */
        } vote;
        struct {
            bool granted;
            bool pre_vote;
        } vote_resp;
        struct {
            zraft_log_id prev;
            uint64_t commit;
            uint32_t n_entries;
            zraft_entry *entries; /* borrowed for the duration of the call */
        } append;
        struct {
            bool success;
            uint64_t index;      /* success: matched index; reject: prev.index
                                    of the rejected request */
            uint64_t hint_index; /* reject: follower's suggestion */
            uint64_t hint_term;  /* reject: term at hint_index (0: unknown) */
        } append_resp;
        struct {
            uint64_t commit;
            uint64_t ctx; /* read-index round number, echoed back */
        } heartbeat;
        struct {
            uint64_t ctx;
        } heartbeat_resp;
        struct {
            snapshot_meta *meta; /* borrowed for the duration of the call */
            zraft_buf *data;     /* borrowed; take a ref to keep */
        } snapshot;
        struct {
            bool success;
            uint64_t index; /* follower's last index after the install */
        } snapshot_resp;
    } u;
} msg;

/* ------------------------------------------------------------- commands */

typedef enum {
    CMD_SAVE_VOTE = 1,    /* persist (term, voted_for) */
    CMD_APPEND,           /* append entries to the log (after any TRUNCATE) */
    CMD_TRUNCATE,         /* delete log entries with index >= since */
    CMD_PURGE,            /* delete log entries with index <= upto.index */
    CMD_SEND,             /* send `msg` (no entries) to msg.to */
    CMD_REPLICATE,        /* send entries (prev.index, last] to a follower */
    CMD_SEND_SNAPSHOT,    /* send the latest snapshot to a follower */
    CMD_APPLY,            /* apply committed entries up to `upto` */
    CMD_BUILD_SNAPSHOT,   /* state machine: snapshot what is applied */
    CMD_INSTALL_SNAPSHOT, /* replace log and state with a received snapshot */
    CMD_STREAMS,          /* the set of replication targets changed */
    CMD_ROLE,       /* role, term or leader changed (for metrics/waiters) */
    CMD_READ_READY, /* read `req_id` may be served once applied >= index */
    CMD_READ_FAIL,  /* read `req_id` failed (err) */
    CMD__COUNT
} cmd_type;

const char *cmd_type_name(int type);

typedef enum {
    ROLE_FOLLOWER = 0,
    ROLE_PRECANDIDATE,
    ROLE_CANDIDATE,
    ROLE_LEADER,
    ROLE_LEARNER, /* a follower that is a learner or not a member at all */
} engine_role;

const char *engine_role_name(int role);

typedef struct {
    uint8_t type;     /* cmd_type */
    uint64_t io_seq;  /* I/O commands: this op's sequence number */
    uint64_t wait_io; /* 0 or: run only after io_flushed >= wait_io */
    union {
        struct {
            uint64_t term;
            zraft_id voted_for;
        } save_vote;
        struct {
            zraft_entry
                *entries; /* borrowed from the event's input: take refs
                             to the payloads before the input is freed */
            uint32_t n;
        } append;
        struct {
            uint64_t since;
        } truncate;
        struct {
            zraft_log_id upto;
        } purge;
        msg send;
        struct {
            zraft_id to;
            uint64_t term;     /* the leader's term: the replication session */
            zraft_log_id prev; /* entry before the first one to send */
            uint64_t last;     /* last index to send (== prev.index: empty) */
            uint64_t commit;
        } replicate;
        struct {
            zraft_id to;
            uint64_t term;
        } send_snapshot;
        struct {
            uint64_t upto;
        } apply;
        struct {
            snapshot_meta *meta; /* owned by the engine until the next event */
            zraft_buf *data;     /* borrowed from the input message */
        } install_snapshot;
        struct {
            uint64_t term; /* 0: no streams (not leader) */
        } streams;
        struct {
            uint8_t role;
            uint64_t term;
            zraft_id leader;
        } role;
        struct {
            uint64_t req_id;
            uint64_t index;
            int err;
        } read;
    } u;
} command;

/* --------------------------------------------------------------- engine */

typedef struct {
    zraft_id id;
    uint64_t seed;                    /* PRNG seed for election timeouts */
    uint32_t election_timeout_min_ms; /* randomized in [min, max) */
    uint32_t election_timeout_max_ms;
    uint32_t heartbeat_interval_ms;
    bool pre_vote;
    bool check_quorum;
    uint32_t max_entries_per_msg; /* entries in one AppendEntries */
    uint32_t max_bytes_per_msg;   /* payload bytes in one AppendEntries */
    uint32_t max_inflight_msgs;   /* unacknowledged AppendEntries per peer */
    uint64_t max_inflight_bytes;  /* unacknowledged payload bytes per peer */
    uint64_t snapshot_threshold; /* build a snapshot every N applied (0: off) */
    uint64_t snapshot_keep_entries; /* entries kept below a snapshot on purge */
} engine_config;

/* Fills `c` with defaults for node `id` (150-300 ms elections, 50 ms
 * heartbeats, pre-vote and check-quorum on). */
void engine_config_default(engine_config *c, zraft_id id);
/* ZRAFT_EINVAL with a reason in *why when the config is unusable. */
int engine_config_validate(const engine_config *c, const char **why);

typedef struct engine engine;

/* A new engine in the follower role with an empty log and term 0. Before
 * engine_start(), a restarting node restores its durable state with the
 * engine_restore_* calls. Caller owns the return value; NULL on ENOMEM. */
engine *engine_new(const engine_config *c);
void engine_destroy(engine **e);

/* Restore persisted (term, vote) and the commit index last persisted (0 if
 * none: the engine learns it again from the leader). */
void engine_restore_vote(engine *e, uint64_t term, zraft_id voted_for,
                         uint64_t committed);
/* Restore the latest snapshot's metadata. */
void engine_restore_snapshot(engine *e, const snapshot_meta *m);
/* Restore log entries in index order, after the snapshot (or overlapping it
 * by the kept tail). The engine reads their ids, sizes and membership
 * payloads and keeps no pointer. ZRAFT_ECORRUPT if the ids are not
 * contiguous or a membership payload does not decode. */
int engine_restore_entries(engine *e, const zraft_entry *ents, size_t n);
/* Starts the timers; the state machine has applied up to `applied`. */
void engine_start(engine *e, uint64_t now, uint64_t applied);

/* Bootstrap a brand-new cluster: only on a node that never held a log entry
 * or a snapshot. Appends the first membership entry (index 1, term 1 by a
 * pseudo leader, as canonical/raft does) and starts an election when this
 * node is the only voter. A term already durable is kept: bootstrapping
 * saves term 1 and then appends, and a node that crashed in between must be
 * able to bootstrap again. ZRAFT_EBUSY if the node has log entries or a
 * snapshot. */
int engine_initialize(engine *e, const zraft_membership *m);

/* ---- events; each appends commands, see engine_commands() */

void engine_tick(engine *e, uint64_t now);
/* An RPC from a peer. Malformed field combinations are ignored. */
void engine_recv(engine *e, const msg *m);

/* Leader: assign ids to `n` client entries (type NORMAL, payload set by the
 * caller) and append them. On success the entries' ids are filled in.
 * ZRAFT_ENOTLEADER (leader hint via engine_leader()), ZRAFT_ETRANSFER. */
int engine_propose(engine *e, zraft_entry *ents, uint32_t n);

/* Leader: change the voters to `voters` through joint consensus (§6). Every
 * new voter must already be a member (learner). ZRAFT_EBUSY while another
 * change is uncommitted. The engine appends C_old,new now and C_new when it
 * commits; *index receives the joint entry's index (0 if nothing changed). */
int engine_change_voters(engine *e, const zraft_id *voters, uint32_t n,
                         uint64_t *index);
/* Leader: add (or update the address of) a learner. */
int engine_add_learner(engine *e, zraft_id id, const char *addr,
                       uint64_t *index);
/* Same, also setting the learner's public key (opaque to the engine: at
 * most ZRAFT_KEY_LEN characters, "" for none; NULL leaves a learner's key
 * as it is). A key of another length is ZRAFT_EINVAL. */
int engine_add_learner_key(engine *e, zraft_id id, const char *addr,
                           const char *key, uint64_t *index);
/* Leader: remove a learner (voters are removed by engine_change_voters). */
int engine_remove_learner(engine *e, zraft_id id, uint64_t *index);
/* Leader: hand leadership to voter `to` (thesis §3.10). */
int engine_transfer_leader(engine *e, zraft_id to);
/* Linearizable read (thesis §6.4, read-index). Answered by CMD_READ_READY or
 * CMD_READ_FAIL carrying `req_id`. */
void engine_read_index(engine *e, uint64_t req_id);
/* Build a snapshot now (CMD_BUILD_SNAPSHOT) if one is not being built. */
int engine_trigger_snapshot(engine *e);

/* Storage ops up to `io_seq` are durable. */
void engine_io_flushed(engine *e, uint64_t io_seq);
/* The state machine has applied every entry up to `index`. */
void engine_applied(engine *e, uint64_t index);
/* The state machine finished a snapshot (err != 0: it failed). */
void engine_snapshot_built(engine *e, const snapshot_meta *m, int err);
/* The driver could not reach `to`, or could not read the entries a
 * CMD_REPLICATE named (ZRAFT_ECOMPACTED): fall back to probing. */
void engine_report_unreachable(engine *e, zraft_id to, int err);

/* ---- output */

/* The commands produced since the last engine_commands_clear(); valid until
 * the next event. */
const command *engine_commands(const engine *e, size_t *n);
void engine_commands_clear(engine *e);

/* May `c`, produced by an earlier event and held back by the driver, still
 * run? False for a request the engine made for a role it no longer holds:
 * REPLICATE, SEND_SNAPSHOT and SENDs of HEARTBEAT / TIMEOUT_NOW unless the
 * engine is still leader of the term they carry (a TIMEOUT_NOW: and still
 * transferring to its target); a vote request unless it is still
 * (pre)candidate of that term. True for everything else: replies
 * state facts that stay true (a durable vote, durable entries: Raft takes
 * them as delayed messages), and APPLY, BUILD_SNAPSHOT, INSTALL_SNAPSHOT
 * and READ_READY / READ_FAIL are owed whatever the role. `c` is a copy of
 * a command this engine produced; no side effects. */
bool engine_command_current(const engine *e, const command *c);

/* ---- queries (cheap, no side effects) */

typedef struct {
    zraft_id id;
    uint8_t role;
    uint64_t term;
    zraft_id voted_for;
    zraft_id leader;
    uint64_t committed;
    uint64_t applied;
    zraft_log_id last_log_id;
    zraft_log_id flushed_log_id;
    uint64_t first_index;      /* oldest entry still in the log */
    zraft_log_id snapshot;     /* last_log_id of the latest snapshot */
    uint64_t membership_index; /* index of the effective config's entry */
} engine_status;

void engine_get_status(const engine *e, engine_status *s);
/* The effective configuration (latest in the log, §6). */
const zraft_membership *engine_membership(const engine *e);
/* The committed configuration. */
const zraft_membership *engine_committed_membership(const engine *e);
zraft_id engine_leader(const engine *e);
/* Term of the entry at `index` (0 for index 0); ZRAFT_ECOMPACTED or
 * ZRAFT_ENOTFOUND through *err when it is not known. */
uint64_t engine_term_at(const engine *e, uint64_t index, int *err);
/* Leader: the index replicated to `peer` (0 if unknown or not leader). */
uint64_t engine_matched(const engine *e, zraft_id peer);

#endif /* ZRAFT_CORE_ENGINE_H */
