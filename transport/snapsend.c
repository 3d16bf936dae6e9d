/* snapsend.c - the sending half of a snapshot transfer (see snapsend.h). */
#include <string.h>

#include "transport/snapsend.h"

void snapsend_init(snapsend *x, const rpc_ctx *c)
{
    memset(x, 0, sizeof(*x));
    x->chunk = c->snapshot_chunk ? c->snapshot_chunk : (1u << 20);
    x->window = c->snapshot_window ? c->snapshot_window : 4ull * x->chunk;
    if (x->window < x->chunk) {
        x->window = x->chunk;
    }
    x->acks = c->codec.version >= 2;
    x->gap = UINT64_MAX;
}

void snapsend_stop(snapsend *x)
{
    zraft_buf_unref(x->data);
    x->data = NULL;
    x->state = SNAPSEND_IDLE;
}

void snapsend_start(snapsend *x, zraft_id from, zraft_id to, uint64_t term,
                    const snapshot_meta *meta, zraft_buf *data, uint64_t id,
                    uint64_t now_ms)
{
    snapsend_stop(x);
    memset(&x->head, 0, sizeof x->head);
    x->head.type = MSG_SNAPSHOT;
    x->head.from = from;
    x->head.to = to;
    x->head.term = term;
    x->meta = *meta;
    x->data = zraft_buf_ref(data);
    x->id = id;
    x->total = data != NULL ? data->len : 0;
    x->next = x->acked = x->high = 0;
    x->sent_last = false;
    x->gap = UINT64_MAX;
    x->moved_ms = x->retry_ms = now_ms;
    x->state = SNAPSEND_SENDING;
    x->started++;
}

bool snapsend_can_send(const snapsend *x)
{
    return x->state == SNAPSEND_SENDING && !x->sent_last &&
           x->next - x->acked < x->window;
}

/* The receiver holds the whole snapshot. */
static void s_sent(snapsend *x, uint64_t now_ms)
{
    zraft_buf_unref(x->data);
    x->data = NULL;
    x->state = SNAPSEND_SENT;
    x->done_ms = now_ms;
}

/* The receiver holds [0, to): pages below are not needed any more. */
static void s_progress(snapsend *x, uint64_t to, uint64_t now_ms)
{
    zraft_buf_drop_pages(x->data, (size_t)x->acked, (size_t)(to - x->acked));
    x->acked = to;
    if (x->next < to) {
        x->next = to;
    }
    x->gap = UINT64_MAX;
    x->moved_ms = now_ms;
}

int snapsend_pump(snapsend *x, rpc_conn *k, uint64_t now_ms)
{
    x->head.u.snapshot.meta = &x->meta;
    uint64_t budget = x->window; /* per call, acknowledged or not */
    while (snapsend_can_send(x) && budget > 0) {
        uint64_t left = x->total - x->next;
        codec_chunk ch;
        memset(&ch, 0, sizeof ch);
        ch.snapshot_id = x->id;
        ch.total = x->total;
        ch.offset = x->next;
        ch.len = left < x->chunk ? (uint32_t)left : x->chunk;
        ch.bytes = x->total > 0 ? x->data->data + x->next : NULL;
        ch.buf = x->total > 0 ? x->data : NULL; /* sent by reference */
        ch.last = ch.len == left;
        int rv = rpc_conn_send_chunk(k, &x->head, &ch);
        if (rv == ZRAFT_EAGAIN) {
            return rv;
        }
        if (rv != 0) {
            snapsend_stop(x);
            return rv;
        }
        x->bytes_sent += ch.len;
        budget = ch.len < budget ? budget - ch.len : 0;
        if (x->next < x->high) {
            uint64_t again = x->high - x->next;
            x->resent += again < ch.len ? again : ch.len;
        }
        x->next += ch.len;
        if (x->next > x->high) {
            x->high = x->next;
        }
        x->sent_last = ch.last;
        if (!x->acks) {
            /* Nobody will say: count it held once sent. */
            s_progress(x, x->next, now_ms);
            if (ch.last) {
                s_sent(x, now_ms);
            }
        }
    }
    return 0;
}

int snapsend_ack(snapsend *x, uint64_t term, const codec_ack *a,
                 uint64_t now_ms)
{
    if (x->state != SNAPSEND_SENDING || term != x->head.term ||
        a->snapshot_id != x->id) {
        return 0;
    }
    if (a->status == CODEC_ACK_ABORTED) {
        snapsend_stop(x);
        return ZRAFT_EUNAVAILABLE;
    }
    uint64_t next = a->next < x->total ? a->next : x->total;
    if (next > x->acked) {
        s_progress(x, next, now_ms);
    }
    if (a->status == CODEC_ACK_ACCEPTED) {
        if (next == x->total) {
            s_sent(x, now_ms);
            return 1;
        }
        return 0;
    }
    /* Refused: a gap at `next`, or the receiver lost the transfer (it
     * restarted: next is 0). Rewind once per gap: the refusals of the
     * chunks still in flight behind the missing one say the same. */
    if (next < x->acked) {
        x->acked = next;
    }
    if (next < x->next && next != x->gap) {
        x->next = next;
        x->sent_last = false;
        x->gap = next;
    }
    return 0;
}

void snapsend_reconnected(snapsend *x)
{
    if (x->state == SNAPSEND_SENDING) {
        x->next = x->acked;
        x->sent_last = false;
        x->gap = UINT64_MAX;
    }
}

void snapsend_tick(snapsend *x, uint64_t now_ms, uint64_t stall_ms)
{
    uint64_t since = x->moved_ms > x->retry_ms ? x->moved_ms : x->retry_ms;
    if (x->state == SNAPSEND_SENDING && (x->next > x->acked || x->sent_last) &&
        now_ms - since >= stall_ms) {
        x->next = x->acked;
        x->sent_last = false;
        x->gap = UINT64_MAX;
        x->retry_ms = now_ms;
    }
}
