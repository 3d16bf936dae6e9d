/* logw.c - the log writer actor ("log-<id>"): the only thread that writes
 * to storage's log and vote file.
 *
 * It performs the core's storage commands in io_seq order: appends go to
 * storage as they come, and once the mailbox is empty it makes everything
 * durable with ONE sync and reports Flushed(highest seq) to the core. While
 * a sync runs, new batches pile up in the mailbox and share the next sync
 * (group commit). After a failed write or sync it stops: nothing later is
 * reported durable, and the core stops the node's part in the cluster
 * (docs/failure-handling.md). */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "actors/node_int.h"

typedef struct {
    zraft_node *n;
    void *push_core;
    uint64_t done_seq;     /* highest seq performed */
    bool dirty;            /* appends since the last sync */
    uint64_t tr_lo, tr_hi; /* tracing: indexes appended since the sync */
    int err;
} logw;

static void s_hist(zraft_metrics *m, void *arg)
{
    uint64_t us = *(uint64_t *)arg;
    m->fsyncs++;
    m->fsync_us_total += us;
    int b = 0;
    while (b < 15 && us >= (1ull << (b + 4))) {
        b++;
    }
    m->fsync_hist[b]++;
}

static void s_do(logw *w, amsg *m)
{
    zraft_storage *st = w->n->st;
    const command *k = &m->u.log_io.cmd;
    int rv = 0;
    if (w->err == 0) {
        switch (k->type) {
        case CMD_SAVE_VOTE:
            rv =
                st->save_state(st->ctx, k->u.save_vote.term,
                               k->u.save_vote.voted_for, m->u.log_io.committed);
            break;
        case CMD_APPEND:
            rv = st->append(st->ctx, m->u.log_io.ents, k->u.append.n);
            w->dirty = true;
            if (k->u.append.n > 0 && trace_sampled(0)) {
                if (w->tr_lo == 0) {
                    w->tr_lo = m->u.log_io.ents[0].id.index;
                }
                w->tr_hi = m->u.log_io.ents[k->u.append.n - 1].id.index;
            }
            break;
        case CMD_TRUNCATE:
            rv = st->truncate(st->ctx, k->u.truncate.since);
            break;
        case CMD_PURGE:
            rv = st->purge(st->ctx, k->u.purge.upto.index);
            break;
        case CMD_INSTALL_SNAPSHOT:
            rv = st->snapshot_save(st->ctx, m->u.log_io.meta, m->u.log_io.data);
            if (rv == 0) {
                rv = st->reset(st->ctx, m->u.log_io.meta->last_log_id);
            }
            break;
        default:
            break;
        }
        if (rv != 0) {
            w->err = rv;
        } else {
            w->done_seq = k->io_seq;
        }
    }
    if (m->u.log_io.ents != NULL) {
        for (uint32_t i = 0; i < k->u.append.n; i++) {
            zraft_buf_unref(m->u.log_io.ents[i].payload);
        }
        batchpool_put(&w->n->arrays, m->u.log_io.ents);
    }
    free(m->u.log_io.meta);
    zraft_buf_unref(m->u.log_io.data);
}

static void s_flush(logw *w, uint64_t *reported)
{
    if (w->err == 0 && w->dirty) {
        uint64_t t0 = actor_now_us();
        int rv = w->n->st->sync(w->n->st->ctx);
        uint64_t us = actor_now_us() - t0;
        node_metrics_update(w->n, s_hist, &us);
        w->dirty = false;
        if (rv != 0) {
            w->err = rv;
        } else if (w->tr_lo != 0) {
            zraft_id id = w->n->cfg.id; /* the node's role picks one */
            trace_stamp_range(id, w->tr_lo, w->tr_hi, TRACE_LDURABLE);
            trace_stamp_range(id, w->tr_lo, w->tr_hi, TRACE_FDURABLE);
            w->tr_lo = w->tr_hi = 0;
        }
    }
    amsg out;
    memset(&out, 0, sizeof out);
    out.type = AM_LOG_FLUSHED;
    if (w->err != 0) {
        out.u.flushed.err = w->err;
        actor_send(w->push_core, &out);
        *reported = UINT64_MAX;
        return;
    }
    if (w->done_seq > *reported) {
        out.u.flushed.seq = w->done_seq;
        actor_send(w->push_core, &out);
        *reported = w->done_seq;
    }
}

void log_main(actor *a, void *arg)
{
    logw w;
    memset(&w, 0, sizeof w);
    w.n = arg;
    w.push_core = actor_connect(w.n->zctx, w.n->ep_core);
    uint64_t reported = 0;
    bool stop = false;
    while (!stop) {
        amsg m;
        if (actor_recv(a->mailbox, &m, 0) != 1) {
            continue;
        }
        /* Take everything queued: one sync for the whole group. */
        do {
            if (m.type == AM_STOP) {
                stop = true;
            } else if (m.type == AM_LOG_IO) {
                s_do(&w, &m);
            }
        } while (actor_recv(a->mailbox, &m, ZMQ_DONTWAIT) == 1);
        if (reported != UINT64_MAX) {
            s_flush(&w, &reported);
        }
    }
    zmq_close(w.push_core);
}
