/* trace.c - the commit path's latency breakdown (see trace.h).
 *
 * A table of slots, one per sampled index modulo its size, each holding the
 * sample's index, its leader and one stamp per stage. Every field is an
 * atomic: threads of several nodes stamp the same slot at once, the first
 * stamp of a stage wins (compare-and-swap from zero). The table is
 * allocated by the first trace_enable() and kept until the process exits:
 * a thread may still be stamping when tracing is switched off, so it is
 * never freed under it. */
#include <stdlib.h>
#include <time.h>

#include "actors/trace.h"
#include "zraft.h"

typedef struct {
    _Atomic uint64_t index;
    _Atomic uint64_t leader;
    _Atomic uint64_t t[TRACE__COUNT];
} slot;

_Atomic uint32_t trace_every;
static slot *_Atomic s_slots;
static _Atomic uint32_t s_nslots;

static const char *const s_names[] = {
#define X_(name) #name,
    TRACE_STAGES(X_)
#undef X_
};

const char *trace_stage_name(int stage)
{
    return stage >= 0 && stage < TRACE__COUNT ? s_names[stage] : "?";
}

uint64_t trace_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int trace_enable(uint32_t every, uint32_t slots)
{
    if (every == 0 || slots == 0) {
        return ZRAFT_EINVAL;
    }
    if (atomic_load(&s_slots) == NULL) {
        slot *t = calloc(slots, sizeof(slot));
        if (t == NULL) {
            return ZRAFT_ENOMEM;
        }
        atomic_store(&s_nslots, slots);
        atomic_store(&s_slots, t);
    }
    atomic_store(&trace_every, every);
    return 0;
}

void trace_disable(void)
{
    atomic_store(&trace_every, 0);
}

static slot *s_slot(uint64_t index)
{
    uint32_t every = atomic_load_explicit(&trace_every, memory_order_relaxed);
    slot *t = atomic_load_explicit(&s_slots, memory_order_acquire);
    if (every == 0 || t == NULL || index % every != 0) {
        return NULL;
    }
    return &t[(index / every) % atomic_load(&s_nslots)];
}

void trace_begin(uint64_t index, zraft_id leader, uint64_t t_ns)
{
    slot *s = s_slot(index);
    if (s == NULL) {
        return;
    }
    atomic_store(&s->index, 0); /* stamps of the old sample stop landing */
    for (int i = 0; i < TRACE__COUNT; i++) {
        atomic_store(&s->t[i], 0);
    }
    atomic_store(&s->leader, leader);
    atomic_store(&s->t[TRACE_PROPOSED], t_ns ? t_ns : trace_now_ns());
    atomic_store(&s->index, index);
}

static bool s_follower_stage(int stage)
{
    return stage == TRACE_FRECV || stage == TRACE_FDURABLE ||
           stage == TRACE_FREPLIED;
}

static void s_stamp(slot *s, zraft_id node, uint64_t index, int stage,
                    uint64_t now)
{
    if (atomic_load(&s->index) != index) {
        return; /* not begun (a leader's blank entry), or reused */
    }
    bool is_leader = atomic_load(&s->leader) == node;
    if (is_leader == s_follower_stage(stage)) {
        return;
    }
    uint64_t zero = 0;
    atomic_compare_exchange_strong(&s->t[stage], &zero, now);
}

void trace_stamp(zraft_id node, uint64_t index, int stage)
{
    slot *s = s_slot(index);
    if (s != NULL) {
        s_stamp(s, node, index, stage, trace_now_ns());
    }
}

void trace_stamp_range(zraft_id node, uint64_t lo, uint64_t hi, int stage)
{
    uint32_t every = atomic_load_explicit(&trace_every, memory_order_relaxed);
    if (every == 0 || hi < lo) {
        return;
    }
    /* Only the last table-full of samples can still be in the table. */
    uint64_t span = (uint64_t)every * atomic_load(&s_nslots);
    if (hi - lo > span) {
        lo = hi - span;
    }
    uint64_t now = trace_now_ns();
    for (uint64_t i = (lo + every - 1) / every * every; i <= hi; i += every) {
        slot *s = s_slot(i);
        if (s == NULL) {
            return;
        }
        s_stamp(s, node, i, stage, now);
    }
}

uint32_t trace_read(uint64_t (*out)[TRACE__COUNT], uint32_t max)
{
    slot *t = atomic_load(&s_slots);
    uint32_t n = atomic_load(&s_nslots), got = 0;
    for (uint32_t i = 0; t != NULL && i < n && got < max; i++) {
        bool full = atomic_load(&t[i].index) != 0;
        for (int k = 0; k < TRACE__COUNT && full; k++) {
            out[got][k] = atomic_load(&t[i].t[k]);
            full = out[got][k] != 0;
        }
        got += full;
    }
    return got;
}
