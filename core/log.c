/* log.c - the engine's index of the log: term and payload size per entry.
 *
 * The engine needs terms for log matching (§5.3) and the commit rule
 * (§5.4.2), and sizes to bound messages and the in-flight window; it never
 * needs payloads, which stay in storage. Purging the front is O(1): the
 * arrays are compacted only when the dead prefix exceeds half the capacity. */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

void rlog_init(rlog *l)
{
    memset(l, 0, sizeof(*l));
    l->first = 1;
}

void rlog_free(rlog *l)
{
    free(l->terms);
    free(l->sizes);
    rlog_init(l);
}

uint64_t rlog_term(const rlog *l, uint64_t index, int *err)
{
    *err = 0;
    if (index == 0) {
        return 0;
    }
    if (l->len > 0 && index >= l->first && index <= rlog_last(l)) {
        return l->terms[l->start + (index - l->first)];
    }
    if (index == l->snap.index) {
        return l->snap.term;
    }
    *err = index < l->first ? ZRAFT_ECOMPACTED : ZRAFT_ENOTFOUND;
    if (index > rlog_last(l)) {
        *err = ZRAFT_ENOTFOUND;
    }
    return 0;
}

uint32_t rlog_size(const rlog *l, uint64_t index)
{
    if (l->len > 0 && index >= l->first && index <= rlog_last(l)) {
        return l->sizes[l->start + (index - l->first)];
    }
    return 0;
}

zraft_log_id rlog_last_id(const rlog *l)
{
    zraft_log_id id;
    int err;
    id.index = rlog_last(l);
    id.term = rlog_term(l, id.index, &err);
    return id;
}

int rlog_append(rlog *l, uint64_t term, uint32_t size)
{
    if (l->start + l->len == l->cap) {
        if (l->start > 0 && l->start >= l->cap / 2) {
            /* Reclaim the purged prefix before growing. */
            memmove(l->terms, l->terms + l->start, l->len * sizeof(uint64_t));
            memmove(l->sizes, l->sizes + l->start, l->len * sizeof(uint32_t));
            l->start = 0;
        } else {
            uint64_t cap = l->cap ? l->cap * 2 : 256;
            uint64_t *t = realloc(l->terms, cap * sizeof(uint64_t));
            if (t == NULL) {
                return ZRAFT_ENOMEM;
            }
            l->terms = t;
            uint32_t *s = realloc(l->sizes, cap * sizeof(uint32_t));
            if (s == NULL) {
                return ZRAFT_ENOMEM;
            }
            l->sizes = s;
            l->cap = cap;
        }
    }
    if (l->len == 0) {
        l->first = l->snap.index + 1;
        l->start = 0;
    }
    l->terms[l->start + l->len] = term;
    l->sizes[l->start + l->len] = size;
    l->len++;
    return 0;
}

void rlog_truncate(rlog *l, uint64_t since)
{
    if (l->len == 0 || since > rlog_last(l)) {
        return;
    }
    l->len = since <= l->first ? 0 : since - l->first;
    if (l->len == 0) {
        l->first = l->snap.index + 1;
        l->start = 0;
    }
}

void rlog_purge(rlog *l, uint64_t upto)
{
    if (l->len == 0 || upto < l->first) {
        return;
    }
    uint64_t last = rlog_last(l);
    if (upto >= last) {
        l->len = 0;
        l->start = 0;
        l->first = upto + 1;
        return;
    }
    uint64_t drop = upto - l->first + 1;
    l->start += drop;
    l->len -= drop;
    l->first = upto + 1;
}

void rlog_reset(rlog *l, zraft_log_id snap)
{
    l->len = 0;
    l->start = 0;
    l->snap = snap;
    l->first = snap.index + 1;
}

int rlog_append_at(rlog *l, uint64_t index, uint64_t term, uint32_t size)
{
    if (l->len == 0) {
        /* The first entry may sit below the snapshot (a kept tail) but
         * never leave a gap after it. */
        if (index == 0 || index > l->snap.index + 1) {
            return ZRAFT_ECORRUPT;
        }
        int rv = rlog_append(l, term, size);
        if (rv == 0) {
            l->first = index;
        }
        return rv;
    }
    if (index != rlog_last(l) + 1) {
        return ZRAFT_ECORRUPT;
    }
    return rlog_append(l, term, size);
}
