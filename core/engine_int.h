/* engine_int.h - internals shared by the engine's files: the in-memory log
 * index, per-follower progress and the engine state struct. Nothing outside
 * core/ includes this. */
#ifndef ZRAFT_CORE_ENGINE_INT_H
#define ZRAFT_CORE_ENGINE_INT_H

#include "engine.h"

/* ------------------------------------------------------------ log index */

/* The engine keeps, per entry still in the log, its term and payload size -
 * never the payload (storage has it). Entries [first, last] live in
 * terms[start..start+len) / sizes[...]. `snap` is the latest snapshot's last
 * log id, whose term stays known after the entry is purged. */
typedef struct {
    uint64_t first; /* index of the oldest entry held */
    uint64_t len;   /* entries held */
    uint64_t start; /* array offset of `first` (purge is O(1)) */
    uint64_t cap;   /* array capacity */
    uint64_t *terms;
    uint32_t *sizes;
    zraft_log_id snap; /* (0,0) when there is no snapshot */
} rlog;

void rlog_init(rlog *l);
void rlog_free(rlog *l);
static inline uint64_t rlog_last(const rlog *l)
{
    return l->len ? l->first + l->len - 1 : l->snap.index;
}
/* Term at `index`: 0 for index 0, the snapshot's term at its index. Sets
 * *err to ZRAFT_ECOMPACTED / ZRAFT_ENOTFOUND when unknown. */
uint64_t rlog_term(const rlog *l, uint64_t index, int *err);
uint32_t rlog_size(const rlog *l, uint64_t index);
zraft_log_id rlog_last_id(const rlog *l);
/* Appends the entry after the last one. ZRAFT_ENOMEM. */
int rlog_append(rlog *l, uint64_t term, uint32_t size);
/* Appends the entry at `index` (restart: the first may lie below the
 * snapshot). ZRAFT_ECORRUPT on a gap. */
int rlog_append_at(rlog *l, uint64_t index, uint64_t term, uint32_t size);
/* Drops entries with index >= since. */
void rlog_truncate(rlog *l, uint64_t since);
/* Drops entries with index <= upto. */
void rlog_purge(rlog *l, uint64_t upto);
/* Forgets every entry; the log continues after `snap`. */
void rlog_reset(rlog *l, zraft_log_id snap);

/* ------------------------------------------------------------- progress */

/* How the leader replicates to one follower (etcd's tracker.Progress). */
enum {
    PR_PROBE = 0, /* one AppendEntries at a time until a match is found */
    PR_REPLICATE, /* optimistic pipelining within the in-flight window */
    PR_SNAPSHOT,  /* a snapshot is on its way; nothing else is sent */
};

typedef struct {
    uint64_t last;  /* last index carried by the message */
    uint64_t bytes; /* payload bytes */
} inflight;

typedef struct {
    zraft_id id;
    uint8_t state;
    bool probe_sent;           /* PROBE: a message is unanswered, wait */
    bool recent_active;        /* heard from since the last check-quorum */
    uint64_t match;            /* highest index known replicated */
    uint64_t next;             /* next index to send */
    uint64_t pending_snapshot; /* SNAPSHOT: index of the snapshot sent */
    uint64_t snapshot_sent_at; /* SNAPSHOT: when (ms), to retry a lost one */
    uint64_t hb_acked;         /* highest heartbeat ctx echoed back */
    /* In-flight window: a ring of max_inflight_msgs slots. */
    inflight *inf;
    uint32_t inf_head;
    uint32_t inf_count;
    uint64_t inf_bytes;
} progress;

/* ------------------------------------------------------- engine state */

typedef struct {
    zraft_log_id id;
    zraft_membership m;
} mem_entry;

enum { IO_OTHER = 0, IO_TRUNCATE, IO_RESET };

typedef struct {
    uint64_t seq;
    uint8_t kind;
    uint64_t since;    /* IO_TRUNCATE: first index removed */
    zraft_log_id last; /* last log id once this op is durable */
} io_op;

typedef struct {
    uint64_t req_id;
    uint64_t index; /* commit index when the read arrived */
    uint64_t ctx;   /* heartbeat round that confirms it */
} read_req;

typedef struct {
    zraft_id id;
    bool granted;
} vote_rec;

struct engine {
    engine_config c;
    uint64_t now;
    uint64_t rng;
    bool started;

    /* Persistent state (§5.2 Figure 2), durable once its SAVE_VOTE flushed. */
    uint64_t term;
    zraft_id vote;

    /* Volatile state. */
    uint8_t role;
    zraft_id leader;
    uint64_t committed;
    uint64_t applied;
    rlog log;

    /* Storage I/O bookkeeping. */
    uint64_t io_last;         /* last io_seq assigned */
    uint64_t io_flushed;      /* highest io_seq reported durable */
    zraft_log_id flushed_log; /* last log id made durable */
    io_op *ioq;               /* ops not yet durable, in seq order */
    size_t ioq_n, ioq_cap;

    /* Configurations: mems[0] is the latest committed one (or the
     * snapshot's), the rest are uncommitted, in log order. */
    mem_entry *mems;
    size_t mems_n, mems_cap;

    /* Snapshots. */
    bool has_snap;
    snapshot_meta snap;
    bool snap_building;
    snapshot_meta install_meta; /* referenced by CMD_INSTALL_SNAPSHOT */

    /* Timers (ms). */
    uint64_t election_deadline;
    uint64_t leader_contact; /* last time a leader was heard (or confirmed) */
    uint64_t heartbeat_due;
    uint64_t check_quorum_due;

    /* Election. */
    vote_rec votes[ZRAFT_MAX_MEMBERS];
    uint32_t n_votes;

    /* Leader. */
    progress *prs;
    uint32_t n_prs;
    uint64_t hb_ctx;
    read_req *reads; /* waiting for their heartbeat quorum */
    size_t reads_n, reads_cap;
    uint64_t *reads_wait; /* waiting for a commit in this term */
    size_t reads_wait_n, reads_wait_cap;
    zraft_id transferee;
    uint64_t transfer_deadline;

    /* Output. */
    command *cmds;
    size_t n_cmds, cap_cmds;
    /* Entries the engine created (blank, membership) for CMD_APPEND; freed
     * at engine_commands_clear(). */
    zraft_entry *own;
    size_t own_n, own_cap;

    /* Last (role, term, leader) announced with CMD_ROLE. */
    uint8_t said_role;
    uint64_t said_term;
    zraft_id said_leader;
};

/* ------------------------------------------------ engine internals */

/* Functions shared by the engine's files (core/engine.c, election.c,
 * replication.c, commit.c, membership_change.c, snapshot.c, read.c), each
 * named after the file that defines it; their comments are at the
 * definitions. All take an engine and may append commands to it. */

/* A voter's answer for commit_quorum(): 1 yes, -1 no, 0 not known. */
typedef int (*vote_fn)(const engine *e, zraft_id id, const void *arg);

/* engine.c: the command list, storage I/O, messages, configurations and log
 * writes. */
command *engine_cmd(engine *e, uint8_t type);
void *engine_grow(void *p, size_t *cap, size_t need, size_t elem);
uint64_t engine_log_term(const engine *e, uint64_t index, int *err);
const zraft_membership *engine_conf(const engine *e);
bool engine_is_voter(const engine *e, zraft_id id);
bool engine_has_conf(const engine *e);
progress *engine_progress(engine *e, zraft_id id);
uint64_t engine_io(engine *e, command *c, uint8_t kind, uint64_t since);
void engine_save_vote(engine *e);
msg *engine_send(engine *e, uint8_t type, zraft_id to);
void engine_wait_io_last(engine *e);
void engine_streams(engine *e);
uint8_t engine_follower_role(const engine *e);
const zraft_membership *engine_committed_conf(const engine *e);
void engine_mem_push(engine *e, zraft_log_id id, const zraft_membership *m);
void engine_mem_compact(engine *e);
void engine_append(engine *e, zraft_entry *ents, uint32_t n);
void engine_truncate(engine *e, uint64_t since);
zraft_entry *engine_own_entry(engine *e, uint8_t type, zraft_buf *payload);
void engine_announce(engine *e);

/* election.c: timers, votes and role changes. */
void election_reset_timer(engine *e);
void election_become_follower(engine *e, uint64_t term, zraft_id leader);
void election_become_leader(engine *e);
void election_campaign(engine *e, bool pre_vote, bool transfer);
bool election_in_lease(const engine *e);
void election_handle_vote(engine *e, const msg *m);
void election_handle_vote_resp(engine *e, const msg *m);

/* replication.c: AppendEntries and heartbeats, leader and follower side. */
void replication_clear_progress(engine *e);
bool replication_send_append(engine *e, progress *p, bool empty_ok);
void replication_bcast_append(engine *e);
void replication_bcast_heartbeat(engine *e);
void replication_handle_append_resp(engine *e, const msg *m);
void replication_handle_heartbeat_resp(engine *e, const msg *m);
void replication_handle_append(engine *e, const msg *m);
void replication_handle_heartbeat(engine *e, const msg *m);

/* commit.c: quorums and the commit index. */
uint64_t commit_self_match(const engine *e);
int commit_quorum(const engine *e, const zraft_membership *m, vote_fn fn,
                  const void *arg);
bool commit_in_term(const engine *e);
void commit_maybe_advance(engine *e);
void commit_to(engine *e, uint64_t c);

/* membership_change.c: joint consensus and the progress set. */
void membership_change_sync_progress(engine *e);
void membership_change_config_changed(engine *e);
void membership_change_finish_joint(engine *e);
void membership_change_step_down_if_removed(engine *e);

/* snapshot.c: the InstallSnapshot receiver and its answer. */
void snapshot_handle_resp(engine *e, const msg *m);
void snapshot_handle(engine *e, const msg *m);

/* read.c: read-index and leadership transfer. */
void read_fail_all(engine *e, int err);
void read_release(engine *e);
void read_start_waiting(engine *e);
void read_send_timeout_now(engine *e, zraft_id to);
#endif /* ZRAFT_CORE_ENGINE_INT_H */
