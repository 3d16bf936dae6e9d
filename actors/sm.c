/* sm.c - the state machine worker ("sm-<id>"): applies committed entries
 * in log order and answers the clients.
 *
 * It reads entries from the log cache, or storage once they left it
 * (payload references either way), passes NORMAL ones to
 * the embedder's zraft_fsm, tracks the last applied configuration (for
 * snapshot metadata), then calls each client's callback: success when the
 * applied entry is the one the client proposed (same term), otherwise
 * ZRAFT_ELEADERSHIP_LOST. Reads wait here until applied >= their
 * read-index. Snapshots are built and installed on this thread, so the
 * state machine is only ever touched by it. A failed apply or restore is
 * fatal: nothing more is applied, and the core stops the node. */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "actors/node_int.h"

typedef struct {
    uint64_t index;
    zraft_read_cb cb;
    void *arg;
} read_wait;

typedef struct {
    zraft_node *n;
    void *push_core;
    uint64_t applied;
    zraft_log_id applied_id;
    zraft_membership membership;
    read_wait *reads;
    size_t n_reads, cap_reads;
    pending_write *late; /* callbacks whose entries were not readable */
    size_t n_late;
    zraft_entry buf[512];
    int fatal;       /* apply or restore failed: nothing more is applied */
    bool report_due; /* applied since it was last published */
} smw;

typedef struct {
    smw *w;
    uint64_t count;
} count_arg;

static void s_count(zraft_metrics *m, void *arg)
{
    count_arg *a = arg;
    m->last_applied = a->w->applied;
    m->applied += a->count;
}

static void s_set_applied(zraft_metrics *m, void *arg)
{
    smw *w = arg;
    m->last_applied = w->applied;
}

static void s_answer_reads(smw *w)
{
    size_t keep = 0;
    for (size_t i = 0; i < w->n_reads; i++) {
        if (w->fatal != 0) {
            w->reads[i].cb(w->reads[i].arg, w->fatal);
        } else if (w->reads[i].index <= w->applied) {
            w->reads[i].cb(w->reads[i].arg, 0);
        } else {
            w->reads[keep++] = w->reads[i];
        }
    }
    w->n_reads = keep;
}

/* Publishes the applied index. The core reads it every turn of its loop
 * (at least every 5 ms: only snapshot scheduling depends on it), so a batch
 * wakes no core; SM_APPLIED is sent only when the core must act at once:
 * a failure (`tell` or not), or an installed snapshot (`tell`). */
static void s_report(smw *w, bool tell)
{
    atomic_store_explicit(&w->n->sm_applied, w->applied, memory_order_release);
    if (tell || w->fatal != 0) {
        amsg m;
        memset(&m, 0, sizeof m);
        m.type = AM_SM_APPLIED;
        m.u.sm_applied.index = w->applied;
        m.u.sm_applied.err = w->fatal;
        actor_send(w->push_core, &m); /* fails only once the core stopped */
    }
    node_metrics_update(w->n, s_set_applied, w);
    s_answer_reads(w);
}

static void s_apply(smw *w, amsg *m)
{
    zraft_node *n = w->n;
    pending_write *ws = m->u.sm_apply.writes;
    size_t nw = m->u.sm_apply.n, wi = 0;
    uint64_t upto = m->u.sm_apply.upto;
    uint64_t batch = 0;
    while (w->applied < upto && w->fatal == 0) {
        size_t got = sizeof w->buf / sizeof w->buf[0];
        /* From the log cache while the entries are still there (no read,
         * no CRC, no copy), else from storage. */
        int rv =
            node_get_entries(n, w->applied + 1, upto, 4u << 20, w->buf, &got);
        if (rv != 0 || got == 0) {
            /* Covered by a snapshot being installed (it follows). */
            break;
        }
        for (size_t i = 0; i < got; i++) {
            zraft_entry *e = &w->buf[i];
            zraft_buf *result = NULL;
            if (e->type == ZRAFT_ENTRY_NORMAL) {
                int rv = n->fsm->apply(n->fsm->ctx, e, &result);
                if (rv != 0) {
                    /* A state machine that cannot apply a committed entry
                     * cannot go on (zraft_storage.h): skipping it would
                     * fork this replica, retrying it is the embedder's
                     * business. The node stops (s_report tells the core). */
                    w->fatal = rv < 0 ? rv : ZRAFT_EIO;
                    upto = w->applied;
                }
            } else if (e->type == ZRAFT_ENTRY_MEMBERSHIP && e->payload) {
                zraft_membership mb;
                if (zraft_membership_decode(e->payload->data, e->payload->len,
                                            &mb) == 0) {
                    w->membership = mb;
                }
            }
            if (upto == w->applied) {
                zraft_buf_unref(result);
                break;
            }
            w->applied = e->id.index;
            w->applied_id = e->id;
            batch++;
            if (trace_sampled(e->id.index)) {
                trace_stamp(n->cfg.id, e->id.index, TRACE_APPLIED);
            }
            while (wi < nw && ws[wi].id.index < e->id.index) {
                ws[wi].cb(ws[wi].arg, ZRAFT_ELEADERSHIP_LOST, ws[wi].id, NULL);
                wi++;
            }
            if (wi < nw && ws[wi].id.index == e->id.index &&
                trace_sampled(e->id.index)) {
                trace_stamp(n->cfg.id, e->id.index, TRACE_CALLBACK);
            }
            while (wi < nw && ws[wi].id.index == e->id.index) {
                int err =
                    ws[wi].id.term == e->id.term ? 0 : ZRAFT_ELEADERSHIP_LOST;
                ws[wi].cb(ws[wi].arg, err, e->id, err ? NULL : result);
                wi++;
            }
            zraft_buf_unref(result);
        }
        for (size_t i = 0; i < got; i++) {
            zraft_buf_unref(w->buf[i].payload);
        }
        count_arg ca = {w, batch};
        node_metrics_update(n, s_count, &ca); /* once per chunk */
        batch = 0;
    }
    /* Anything left: its entry was not applied here (overwritten or
     * replaced by a snapshot, or the state machine failed); the outcome is
     * not known to this node. */
    for (; wi < nw; wi++) {
        ws[wi].cb(ws[wi].arg, w->fatal ? w->fatal : ZRAFT_ELEADERSHIP_LOST,
                  ws[wi].id, NULL);
    }
    batchpool_put(&n->arrays, ws);
    w->report_due = true; /* once the mailbox is empty (sm_main) */
}

static void s_build(smw *w)
{
    zraft_node *n = w->n;
    amsg out;
    memset(&out, 0, sizeof out);
    out.type = AM_SM_BUILT;
    zraft_buf *data = NULL;
    int rv = w->fatal ? w->fatal : n->fsm->snapshot(n->fsm->ctx, &data);
    snapshot_meta *meta = NULL;
    if (rv == 0) {
        meta = malloc(sizeof(*meta));
        if (meta == NULL) {
            rv = ZRAFT_ENOMEM;
        } else {
            meta->last_log_id = w->applied_id;
            meta->membership = w->membership;
            rv = n->st->snapshot_save(n->st->ctx, meta, data);
        }
    }
    zraft_buf_unref(data);
    if (rv != 0) {
        free(meta);
        meta = NULL;
    }
    out.u.sm_built.meta = meta;
    out.u.sm_built.err = rv;
    if (actor_send(w->push_core, &out) != 0) {
        amsg_release(&out);
    }
}

static void s_install(smw *w, amsg *m)
{
    zraft_node *n = w->n;
    if (w->fatal == 0 && m->u.sm_install.meta->last_log_id.index > w->applied) {
        int rv = n->fsm->restore(n->fsm->ctx, m->u.sm_install.data);
        if (rv == 0) {
            w->applied = m->u.sm_install.meta->last_log_id.index;
            w->applied_id = m->u.sm_install.meta->last_log_id;
            w->membership = m->u.sm_install.meta->membership;
        } else {
            /* The state may be half replaced: the node stops. */
            w->fatal = rv < 0 ? rv : ZRAFT_EIO;
        }
    }
    zraft_buf_unref(m->u.sm_install.data);
    free(m->u.sm_install.meta);
    s_report(w, true);
}

void sm_main(actor *a, void *arg)
{
    smw *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return;
    }
    w->n = arg;
    w->push_core = actor_connect(w->n->zctx, w->n->ep_core);
    w->applied = w->n->start_applied;
    w->applied_id = w->n->start_applied_id;
    w->membership = w->n->start_membership;
    bool stop = false;
    actor_idle idle = {w->n->cfg.spin_us, 0};
    while (true) {
        amsg m;
        int rv = actor_recv(a->mailbox, &m, ZMQ_DONTWAIT);
        if (rv == 0 && w->report_due) {
            /* Published once for every APPLY handled since the mailbox
             * was last empty (s_report). */
            w->report_due = false;
            s_report(w, false);
            continue;
        }
        if (rv == 0 && !stop) {
            zmq_pollitem_t it = {a->mailbox, 0, ZMQ_POLLIN, 0};
            actor_poll(&idle, &it, 1, -1);
            rv = actor_recv(a->mailbox, &m, ZMQ_DONTWAIT);
        }
        if (rv != 1) {
            if (stop) {
                break;
            }
            continue;
        }
        if (m.type != AM_SM_APPLY && w->report_due) {
            w->report_due = false; /* in order with what follows */
            s_report(w, false);
        }
        /* Writes the callbacks queue wake the core once per message. */
        node_callbacks_begin(w->n);
        switch (m.type) {
        case AM_STOP:
            stop = true; /* finish what is queued, then exit */
            break;
        case AM_SM_APPLY:
            s_apply(w, &m);
            break;
        case AM_SM_BUILD:
            s_build(w);
            break;
        case AM_SM_INSTALL:
            s_install(w, &m);
            break;
        case AM_SM_READ:
            if (m.u.sm_read.err != 0 || w->fatal != 0) {
                m.u.sm_read.cb(m.u.sm_read.arg,
                               m.u.sm_read.err ? m.u.sm_read.err : w->fatal);
            } else if (m.u.sm_read.index <= w->applied) {
                m.u.sm_read.cb(m.u.sm_read.arg, 0);
            } else {
                if (w->n_reads == w->cap_reads) {
                    size_t cap = w->cap_reads ? w->cap_reads * 2 : 16;
                    read_wait *r = realloc(w->reads, cap * sizeof(*r));
                    if (r == NULL) {
                        m.u.sm_read.cb(m.u.sm_read.arg, ZRAFT_ENOMEM);
                        break;
                    }
                    w->reads = r;
                    w->cap_reads = cap;
                }
                w->reads[w->n_reads++] = (read_wait){
                    m.u.sm_read.index, m.u.sm_read.cb, m.u.sm_read.arg};
            }
            break;
        case AM_SM_FAIL:
            for (size_t i = 0; i < m.u.sm_fail.n; i++) {
                pending_write *p = &m.u.sm_fail.writes[i];
                p->cb(p->arg, m.u.sm_fail.err, p->id, NULL);
            }
            batchpool_put(&w->n->arrays, m.u.sm_fail.writes);
            break;
        default:
            break;
        }
        node_callbacks_end(w->n);
    }
    for (size_t i = 0; i < w->n_reads; i++) {
        w->reads[i].cb(w->reads[i].arg, ZRAFT_ESHUTDOWN);
    }
    free(w->reads);
    zmq_close(w->push_core);
    free(w);
}
