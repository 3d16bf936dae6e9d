/* progress.c - the leader's view of one follower (etcd's tracker): which
 * index it matches, what to send next, and how many AppendEntries are in
 * flight. PROBE sends one message per round trip until the follower's log
 * matches; REPLICATE pipelines up to the in-flight window (by messages and by
 * bytes); SNAPSHOT waits for a snapshot to land. */
#include <stdlib.h>
#include <string.h>

#include "progress.h"

int progress_init(progress *p, zraft_id id, uint64_t next, uint32_t max_msgs)
{
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->next = next;
    p->state = PR_PROBE;
    p->inf = calloc(max_msgs ? max_msgs : 1, sizeof(inflight));
    return p->inf ? 0 : ZRAFT_ENOMEM;
}

void progress_free(progress *p)
{
    free(p->inf);
    p->inf = NULL;
}

static void inflight_reset(progress *p)
{
    p->inf_head = 0;
    p->inf_count = 0;
    p->inf_bytes = 0;
}

void progress_become_probe(progress *p)
{
    /* After a snapshot, resume right after it (etcd does the same). */
    uint64_t from = p->match + 1;
    if (p->state == PR_SNAPSHOT && p->pending_snapshot + 1 > from) {
        from = p->pending_snapshot + 1;
    }
    p->state = PR_PROBE;
    p->next = from;
    p->probe_sent = false;
    p->pending_snapshot = 0;
    inflight_reset(p);
}

void progress_become_replicate(progress *p)
{
    p->state = PR_REPLICATE;
    p->next = p->match + 1;
    p->probe_sent = false;
    inflight_reset(p);
}

void progress_become_snapshot(progress *p, uint64_t index, uint64_t now)
{
    p->state = PR_SNAPSHOT;
    p->pending_snapshot = index;
    p->snapshot_sent_at = now;
    p->probe_sent = false;
    inflight_reset(p);
}

bool progress_maybe_update(progress *p, uint64_t n)
{
    bool updated = false;
    if (p->match < n) {
        p->match = n;
        updated = true;
        p->probe_sent = false;
    }
    if (p->next < n + 1) {
        p->next = n + 1;
    }
    return updated;
}

bool progress_maybe_decr(progress *p, uint64_t rejected, uint64_t hint)
{
    if (p->state == PR_REPLICATE) {
        /* A rejection at or below match is stale (reordered). */
        if (rejected <= p->match) {
            return false;
        }
        p->next = p->match + 1;
        return true;
    }
    /* PROBE: only the answer to the message in flight counts. */
    if (p->next == 0 || p->next - 1 != rejected) {
        return false;
    }
    uint64_t n = hint + 1 < rejected ? hint + 1 : rejected;
    if (n <= p->match) {
        /* The follower lacks entries it acknowledged (its log was lost: a
         * wiped disk). Nothing can rewind past match, and probing again at
         * once would repeat this exchange as fast as the network goes: the
         * probe stays sent until a heartbeat response (which probes
         * again). */
        if (p->next == p->match + 1) {
            return false;
        }
        n = p->match + 1;
    }
    p->next = n < 1 ? 1 : n;
    p->probe_sent = false;
    return true;
}

bool progress_paused(const progress *p, uint32_t max_msgs, uint64_t max_bytes)
{
    switch (p->state) {
    case PR_PROBE:
        return p->probe_sent;
    case PR_REPLICATE:
        return p->inf_count >= max_msgs ||
               (max_bytes > 0 && p->inf_bytes >= max_bytes);
    default:
        return true;
    }
}

void progress_inflight_add(progress *p, uint64_t last, uint64_t bytes,
                           uint32_t max_msgs)
{
    if (p->inf_count >= max_msgs) {
        return;
    }
    uint32_t slot = (p->inf_head + p->inf_count) % max_msgs;
    p->inf[slot].last = last;
    p->inf[slot].bytes = bytes;
    p->inf_count++;
    p->inf_bytes += bytes;
}

void progress_inflight_free_to(progress *p, uint64_t index, uint32_t max_msgs)
{
    while (p->inf_count > 0 && p->inf[p->inf_head].last <= index) {
        p->inf_bytes -= p->inf[p->inf_head].bytes;
        p->inf_head = (p->inf_head + 1) % max_msgs;
        p->inf_count--;
    }
}

void progress_inflight_free_first(progress *p, uint32_t max_msgs)
{
    if (p->inf_count > 0) {
        progress_inflight_free_to(p, p->inf[p->inf_head].last, max_msgs);
    }
}
