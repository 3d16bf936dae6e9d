/* progress.h - per-follower replication progress (see progress.c). */
#ifndef ZRAFT_CORE_PROGRESS_H
#define ZRAFT_CORE_PROGRESS_H

#include "engine_int.h"

/* Initializes `p` for follower `id` in PROBE from `next`. ZRAFT_ENOMEM. */
int progress_init(progress *p, zraft_id id, uint64_t next, uint32_t max_msgs);
void progress_free(progress *p);
void progress_become_probe(progress *p);
void progress_become_replicate(progress *p);
void progress_become_snapshot(progress *p, uint64_t index, uint64_t now);
/* A success acknowledged `n`: true if match grew. */
bool progress_maybe_update(progress *p, uint64_t n);
/* A rejection of the message with prev index `rejected`; `hint` is where the
 * logs may match. False if the rejection is stale. */
bool progress_maybe_decr(progress *p, uint64_t rejected, uint64_t hint);
bool progress_paused(const progress *p, uint32_t max_msgs, uint64_t max_bytes);
void progress_inflight_add(progress *p, uint64_t last, uint64_t bytes,
                           uint32_t max_msgs);
void progress_inflight_free_to(progress *p, uint64_t index, uint32_t max_msgs);
void progress_inflight_free_first(progress *p, uint32_t max_msgs);

#endif
