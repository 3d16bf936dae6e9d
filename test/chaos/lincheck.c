/* lincheck.c - the linearizability checker (see lincheck.h).
 *
 * One key at a time: its ops become call and return events in time order
 * (a call before a return at the same instant), held in a doubly linked
 * list. The search walks the list: at a call it tries to linearize that op
 * now (the register model says whether the op's result fits the state);
 * if (linearized set, new state) was never seen it commits, lifts the op's
 * two events out of the list and starts again from the head; at a return
 * whose op is not linearized yet it backtracks (the op had to take effect
 * before it returned), unless the op's outcome is unknown: then it may be
 * placed there as never applied. The list running empty means a linearization
 * was found; backtracking with nothing to undo means there is none. The
 * linearized set's hash is kept incrementally (one random word per op,
 * XORed), so a memo probe costs a hash lookup and, on a hit, one compare of
 * the set's compact form. */
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"

#define INF        INT64_MAX
#define WINDOW_MAX 64

typedef struct ev ev;
struct ev {
    size_t op; /* index into the key's op list */
    bool call; /* call event, else return */
    ev *match; /* the call's return */
    ev *prev, *next;
};

/* The memo: open addressing over (hash, state, linearized set). A set is
 * stored compactly: ops are numbered in invocation order and everything
 * long past is linearized, so a set is "all ops below p" plus the few above
 * p: stored as p and those indexes (uint32 each) in one arena. */
typedef struct {
    uint64_t hash; /* 0: empty */
    uint64_t state;
    uint64_t off; /* into the arena */
    uint32_t len; /* words: p, then the indexes */
} mslot;

typedef struct {
    mslot *t;
    size_t cap, used, limit;
    uint32_t *arena;
    size_t alen, acap;
    uint32_t *scratch; /* one set being probed */
    size_t words;      /* of the caller's bitset */
} memo;

typedef struct {
    ev *e;
    uint64_t state;
} frame;

static uint64_t s_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static bool s_step(uint64_t s, const lc_op *o, uint64_t *ns)
{
    switch (o->type) {
    case LC_PUT:
        *ns = o->arg;
        return true;
    case LC_GET:
        *ns = s;
        return s == o->out;
    default: /* LC_CAS */
        if (o->status == LC_INFO) {
            *ns = s == o->arg ? o->arg2 : s;
            return true;
        }
        if (o->out == 1) {
            *ns = o->arg2;
            return s == o->arg;
        }
        *ns = s;
        return s != o->arg;
    }
}

static int s_memo_init(memo *m, size_t n_ops, size_t limit)
{
    m->words = (n_ops + 63) / 64;
    m->limit = limit;
    m->cap = 1024;
    m->used = 0;
    m->t = calloc(m->cap, sizeof(mslot));
    m->acap = 4096;
    m->alen = 0;
    m->arena = malloc(m->acap * sizeof(uint32_t));
    m->scratch = malloc((n_ops + 1) * sizeof(uint32_t));
    return m->t && m->arena && m->scratch ? 0 : -1;
}

static void s_memo_free(memo *m)
{
    free(m->t);
    free(m->arena);
    free(m->scratch);
}

static int s_memo_grow(memo *m)
{
    size_t cap = m->cap * 2;
    mslot *t = calloc(cap, sizeof(mslot));
    if (t == NULL) {
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->t[i].hash == 0) {
            continue;
        }
        size_t j = m->t[i].hash & (cap - 1);
        while (t[j].hash != 0) {
            j = (j + 1) & (cap - 1);
        }
        t[j] = m->t[i];
    }
    free(m->t);
    m->t = t;
    m->cap = cap;
    return 0;
}

/* The compact form of `bits` into m->scratch; its length. */
static uint32_t s_compact(memo *m, const uint64_t *bits)
{
    size_t w = 0;
    while (w < m->words && bits[w] == ~0ull) {
        w++;
    }
    size_t p = w * 64;
    if (w < m->words) {
        p += (size_t)__builtin_ctzll(~bits[w]);
    }
    uint32_t n = 0;
    m->scratch[n++] = (uint32_t)p;
    for (size_t i = w; i < m->words; i++) {
        uint64_t x = bits[i];
        while (x != 0) {
            size_t b = i * 64 + (size_t)__builtin_ctzll(x);
            x &= x - 1;
            if (b > p) {
                m->scratch[n++] = (uint32_t)b;
            }
        }
    }
    return n;
}

/* Inserts (bits, state) unless present: 1 inserted, 0 present, -1 ENOMEM,
 * -2 past the bound. */
static int s_memo_add(memo *m, uint64_t zh, uint64_t state,
                      const uint64_t *bits)
{
    uint64_t h = s_mix(zh ^ s_mix(state + 0x9e3779b97f4a7c15ull));
    h = h ? h : 1;
    uint32_t len = s_compact(m, bits);
    size_t i = h & (m->cap - 1);
    for (; m->t[i].hash != 0; i = (i + 1) & (m->cap - 1)) {
        const mslot *t = &m->t[i];
        if (t->hash == h && t->state == state && t->len == len &&
            memcmp(m->arena + t->off, m->scratch, len * sizeof(uint32_t)) ==
                0) {
            return 0;
        }
    }
    if (m->used >= m->limit) {
        return -2;
    }
    if (m->alen + len > m->acap) {
        size_t cap = m->acap * 2 + len;
        uint32_t *a = realloc(m->arena, cap * sizeof(uint32_t));
        if (a == NULL) {
            return -1;
        }
        m->arena = a;
        m->acap = cap;
    }
    memcpy(m->arena + m->alen, m->scratch, len * sizeof(uint32_t));
    m->t[i] = (mslot){h, state, m->alen, len};
    m->alen += len;
    m->used++;
    if (m->used * 2 > m->cap && s_memo_grow(m) != 0) {
        return -1;
    }
    return 1;
}

static void s_lift(ev *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    ev *m = e->match;
    m->prev->next = m->next;
    if (m->next != NULL) {
        m->next->prev = m->prev;
    }
}

static void s_unlift(ev *e)
{
    ev *m = e->match;
    m->prev->next = m;
    if (m->next != NULL) {
        m->next->prev = m;
    }
    e->prev->next = e;
    e->next->prev = e;
}

typedef struct {
    int64_t t;
    int ret; /* 0 call, 1 return: calls first at a tie */
    size_t op;
} evkey;

static int s_cmp_ev(const void *a, const void *b)
{
    const evkey *x = a, *y = b;
    if (x->t != y->t) {
        return x->t < y->t ? -1 : 1;
    }
    if (x->ret != y->ret) {
        return x->ret - y->ret;
    }
    return x->op < y->op ? -1 : x->op > y->op;
}

static int64_t s_ret(const lc_op *o)
{
    return o->status == LC_INFO ? INF : o->ret;
}

/* The values some op writes (sorted), over every key: a superset of one
 * key's, which only makes s_can_hold say yes more often (the safe way). */
typedef struct {
    uint64_t *v;
    size_t n;
    const lc_op *ops;     /* the caller's */
    const uint8_t *needy; /* per op: a "mismatch" CAS that might need an
                           * unknown write (s_needy) */
} vset;

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Whether the register could ever hold v (absent, or some op writes v):
 * a CAS expecting anything else fails whatever the state. */
static bool s_can_hold(const vset *vs, uint64_t v)
{
    return v == LC_ABSENT ||
           bsearch(&v, vs->v, vs->n, sizeof(uint64_t), s_cmp_u64) != NULL;
}

/* The return time the search gives op i. An unknown write is optional
 * (the search may skip it at its return event: never applied) and gets:
 * the earliest return of an op that saw its value (a GET that read it, a
 * CAS that swapped it: values are unique, so it took effect before that op
 * did); else the last return of a CAS that answered "mismatch" and
 * returned after the write began (the only ops its value could have
 * affected unseen: placed later, it changes nothing anyone observed, the
 * same as skipping it); else after everything. Bounding it keeps the
 * unknown op from being a choice at every later step of the search. */
static int64_t s_info_ret(const lc_op *const *k, size_t m, size_t i,
                          const vset *vs)
{
    const lc_op *w = k[i];
    if (w->status != LC_INFO) {
        return w->ret;
    }
    uint64_t v = w->type == LC_PUT ? w->arg : w->arg2;
    int64_t seen = INF, mismatch = INT64_MIN;
    for (size_t j = 0; j < m; j++) {
        const lc_op *o = k[j];
        if (o->status != LC_OK) {
            continue;
        }
        bool saw = v != LC_ABSENT &&
                   ((o->type == LC_GET && o->out == v) ||
                    (o->type == LC_CAS && o->out == 1 && o->arg == v));
        if (saw && o->ret < seen) {
            seen = o->ret;
        }
        if (o->type == LC_CAS && o->out == 0 && o->ret >= w->inv &&
            o->ret > mismatch && vs->needy[o - vs->ops]) {
            mismatch = o->ret;
        }
    }
    int64_t ret = seen != INF ? seen : mismatch != INT64_MIN ? mismatch : INF;
    return ret < w->inv ? w->inv : ret; /* seen before it began: no order */
}

/* The register's value after an unknown PUT that no op tells apart from
 * another such PUT (s_unseen_put): all such values are one to the search. */
#define UNSEEN (UINT64_MAX - 1)

/* Whether op i is an unknown write (PUT, CAS) whose value no op reads or
 * expects: its value is one with every other such (UNSEEN). Such PUTs are
 * interchangeable but for their time windows, so the search only ever
 * applies, among those invoked and not yet placed, the one whose window
 * ends first (it leaves the others, whose windows end later, free for any
 * use the first could have had): without this, n of them pending at once
 * cost 2^n sets. */
static bool s_unseen(const lc_op *const *k, size_t m, size_t i)
{
    const lc_op *w = k[i];
    if (w->status != LC_INFO || w->type == LC_GET) {
        return false;
    }
    uint64_t v = w->type == LC_PUT ? w->arg : w->arg2;
    for (size_t j = 0; j < m; j++) {
        if ((k[j]->type == LC_GET && k[j]->out == v) ||
            (k[j]->type == LC_CAS && k[j]->arg == v)) {
            return false;
        }
    }
    return true;
}

/* Whether another unseen PUT, invoked (its call is before the first return
 * still in the list) and not placed, has a window ending before op i's. */
static bool s_later_choice(const lc_op *const *k, const ev *head, size_t i,
                           const bool *unseen, const int64_t *dl)
{
    for (const ev *x = head->next; x != NULL && x->call; x = x->next) {
        size_t j = x->op;
        if (j != i && unseen[j] && k[j]->type == LC_PUT &&
            (dl[j] < dl[i] || (dl[j] == dl[i] && j < i))) {
            return true;
        }
    }
    return false;
}

/* What the search of one key found. */
typedef struct {
    lc_verdict verdict;
    size_t bad; /* key-local index */
    uint64_t state;
    size_t depth;
} key_result;

/* Searches the m ops `k` (pointers into the caller's array). */
static int s_check_key(const lc_op *const *k, size_t m, size_t limit,
                       const vset *vs, key_result *kr)
{
    int rv = -1;
    evkey *keys = malloc(2 * m * sizeof(*keys));
    ev *evs = calloc(2 * m + 1, sizeof(*evs));
    ev **call_of = malloc(m * sizeof(*call_of));
    frame *stack = malloc(m * sizeof(*stack));
    uint64_t *z = malloc(m * sizeof(uint64_t));
    uint64_t *bits = calloc((m + 63) / 64, sizeof(uint64_t));
    bool *unseen = calloc(m ? m : 1, sizeof(bool));
    int64_t *dl = malloc((m ? m : 1) * sizeof(int64_t));
    memo mo = {0};
    if (!keys || !evs || !call_of || !stack || !z || !bits || !unseen || !dl ||
        s_memo_init(&mo, m, limit) != 0) {
        goto out;
    }
    for (size_t i = 0; i < m; i++) {
        dl[i] = s_info_ret(k, m, i, vs);
        unseen[i] = s_unseen(k, m, i);
        keys[2 * i] = (evkey){k[i]->inv, 0, i};
        keys[2 * i + 1] = (evkey){dl[i], 1, i};
        z[i] = s_mix(i + 1) | 1;
    }
    qsort(keys, 2 * m, sizeof(*keys), s_cmp_ev);
    ev *head = &evs[2 * m];
    ev *prev = head;
    for (size_t i = 0; i < 2 * m; i++) {
        ev *e = &evs[i];
        e->op = keys[i].op;
        e->call = keys[i].ret == 0;
        e->prev = prev;
        prev->next = e;
        prev = e;
        if (e->call) {
            call_of[e->op] = e;
        } else {
            call_of[e->op]->match = e;
        }
    }
    size_t sp = 0;
    uint64_t state = LC_ABSENT, zh = 0;
    *kr = (key_result){LC_LINEARIZABLE, 0, LC_ABSENT, 0};
    ev *e = head->next;
    while (head->next != NULL) {
        if (e->call) {
            uint64_t ns;
            const lc_op *o = k[e->op];
            if (unseen[e->op] && o->type == LC_PUT &&
                s_later_choice(k, head, e->op, unseen, dl)) {
                e = e->next;
                continue;
            }
            if (s_step(state, k[e->op], &ns)) {
                if (unseen[e->op]) {
                    ns = UNSEEN;
                }
                bits[e->op / 64] |= 1ull << (e->op % 64);
                int added = s_memo_add(&mo, zh ^ z[e->op], ns, bits);
                if (added == -1) {
                    goto out;
                }
                if (added == -2) {
                    kr->verdict = LC_GAVE_UP;
                    kr->bad = e->op;
                    break;
                }
                if (added == 1) {
                    stack[sp++] = (frame){e, state};
                    state = ns;
                    zh ^= z[e->op];
                    s_lift(e);
                    e = head->next;
                    continue;
                }
                bits[e->op / 64] &= ~(1ull << (e->op % 64));
            }
            e = e->next;
            continue;
        }
        /* A return whose op is not linearized. An unknown op may be
         * skipped (never applied): linearized here as a no-op. */
        if (k[e->op]->status == LC_INFO) {
            ev *c = call_of[e->op];
            bits[c->op / 64] |= 1ull << (c->op % 64);
            int added = s_memo_add(&mo, zh ^ z[c->op], state, bits);
            if (added == -1) {
                goto out;
            }
            if (added == 1) {
                stack[sp++] = (frame){c, state};
                zh ^= z[c->op];
                s_lift(c);
                e = head->next;
                continue;
            }
            bits[c->op / 64] &= ~(1ull << (c->op % 64));
            if (added == -2) {
                kr->verdict = LC_GAVE_UP;
                kr->bad = e->op;
                break;
            }
        }
        /* Else undo the last choice. */
        if (sp >= kr->depth) {
            kr->depth = sp;
            kr->bad = e->op;
            kr->state = state;
        }
        if (sp == 0) {
            kr->verdict = LC_VIOLATION;
            break;
        }
        frame f = stack[--sp];
        state = f.state;
        zh ^= z[f.e->op];
        bits[f.e->op / 64] &= ~(1ull << (f.e->op % 64));
        s_unlift(f.e);
        e = f.e->next;
    }
    rv = 0;
out:
    s_memo_free(&mo);
    free(unseen);
    free(dl);
    free(keys);
    free(evs);
    free(call_of);
    free(stack);
    free(z);
    free(bits);
    return rv;
}

typedef struct {
    uint64_t key;
    int64_t inv;
    size_t idx;
} opkey;

static int s_cmp_op(const void *a, const void *b)
{
    const opkey *x = a, *y = b;
    if (x->key != y->key) {
        return x->key < y->key ? -1 : 1;
    }
    if (x->inv != y->inv) {
        return x->inv < y->inv ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool s_takes_part(const lc_op *o)
{
    return o->status == LC_OK || (o->status == LC_INFO && o->type != LC_GET);
}

static bool s_writes(const lc_op *o, uint64_t v)
{
    return (o->type == LC_PUT && o->arg == v) ||
           (o->type == LC_CAS && o->arg2 == v);
}

/* The value an unknown write would leave, else LC_ABSENT. */
static uint64_t s_written(const lc_op *o)
{
    if (o->status != LC_INFO || o->type == LC_GET) {
        return LC_ABSENT;
    }
    return o->type == LC_PUT ? o->arg : o->arg2;
}

/* Whether some op of the key observes value v (reads it, or expects it). */
static bool s_observed(const lc_op *ops, const opkey *ks, size_t m, uint64_t v)
{
    for (size_t i = 0; i < m; i++) {
        const lc_op *o = &ops[ks[i].idx];
        if ((o->type == LC_GET && o->out == v) ||
            (o->type == LC_CAS && o->arg == v)) {
            return true;
        }
    }
    return false;
}

static bool s_acked_write(const lc_op *o);

/* Marks in needy[] each CAS of the key (ks, m) that answered "mismatch" and
 * might owe it to an unknown write: one for which the register could hold
 * the expected value right before it. It could not if the value can never
 * be held (s_can_hold), or if an acknowledged write began after the
 * expected value's writer returned and itself returned before the CAS
 * began: that write comes between them in any order, and values are
 * unique, so the register no longer holds the expected value (absent: any
 * acknowledged write that returned before the CAS began). Only needy CASes
 * keep unknown writes no op saw in the search. */
static void s_needy(const lc_op *ops, const opkey *ks, size_t m, const vset *vs,
                    uint8_t *needy)
{
    for (size_t i = 0; i < m; i++) {
        const lc_op *c = &ops[ks[i].idx];
        if (c->type != LC_CAS || c->status != LC_OK || c->out != 0) {
            continue;
        }
        bool need = s_can_hold(vs, c->arg);
        int64_t after = INT64_MIN; /* the writer's return */
        if (need && c->arg != LC_ABSENT) {
            need = false;
            for (size_t j = 0; j < m; j++) {
                const lc_op *x = &ops[ks[j].idx];
                if (x->status != LC_FAIL && s_writes(x, c->arg)) {
                    need = true;
                    after = s_ret(x);
                }
            }
        }
        for (size_t j = 0; j < m && need; j++) {
            const lc_op *y = &ops[ks[j].idx];
            if (s_acked_write(y) && y->inv > after && y->ret < c->inv &&
                !s_writes(y, c->arg)) {
                need = false;
            }
        }
        needy[ks[i].idx] = need;
    }
}

/* Copies the key's ops to out[], leaving out unknown writes whose value no
 * op observes. Such a write can always be linearized at the very end, so a
 * history without them that passes means one with them passes. The other
 * way round holds only if no CAS that answered "mismatch" could have been
 * linearized while the write's value was the state (its value made the CAS
 * fail; the value before might not have; an unknown CAS applied while it
 * fails is a no-op, the same as never applied, so it does not count).
 * `strict` leaves out only the writes for which that holds. Returns the
 * count. */
static size_t s_prune(const lc_op *ops, const opkey *ks, size_t m, bool strict,
                      const vset *vs, opkey *out)
{
    size_t n = 0;
    for (size_t i = 0; i < m; i++) {
        const lc_op *w = &ops[ks[i].idx];
        uint64_t v = s_written(w);
        bool drop = v != LC_ABSENT && !s_observed(ops, ks, m, v);
        for (size_t j = 0; drop && strict && j < m; j++) {
            const lc_op *c = &ops[ks[j].idx];
            if (c->type == LC_CAS && c->status == LC_OK && c->out == 0 &&
                c->ret >= w->inv && vs->needy[c - vs->ops]) {
                drop = false;
            }
        }
        if (!drop) {
            out[n++] = ks[i];
        }
    }
    return n;
}

/* The window of a failed key: ops concurrent with the bad one (unknown
 * ones by the return time the search gave them), and the writer of the
 * state the deepest attempt reached. */
static int s_window(const lc_op *const *k, const opkey *ks, size_t m,
                    const vset *vs, const key_result *kr, lc_report *rep)
{
    int64_t bad_inv = k[kr->bad]->inv, bad_ret = s_info_ret(k, m, kr->bad, vs);
    rep->window = malloc(WINDOW_MAX * sizeof(size_t));
    if (rep->window == NULL) {
        return -1;
    }
    rep->n_window = 0;
    for (size_t i = 0; i < m && rep->n_window < WINDOW_MAX; i++) {
        bool overlaps =
            k[i]->inv <= bad_ret && s_info_ret(k, m, i, vs) >= bad_inv;
        bool writer = kr->state != LC_ABSENT && s_writes(k[i], kr->state) &&
                      k[i]->status != LC_FAIL;
        if (overlaps || writer || i == kr->bad) {
            rep->window[rep->n_window++] = ks[i].idx;
        }
    }
    return 0;
}

int lc_check(const lc_op *ops, size_t n, size_t max_states, lc_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    if (max_states == 0) {
        max_states = (size_t)4 << 20;
    }
    opkey *ks = malloc((n ? n : 1) * sizeof(*ks));
    opkey *fk = malloc((n ? n : 1) * sizeof(*fk));
    const lc_op **k = malloc((n ? n : 1) * sizeof(*k));
    if (ks == NULL || fk == NULL || k == NULL) {
        free(ks);
        free(fk);
        free(k);
        return -1;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (s_takes_part(&ops[i])) {
            ks[m++] = (opkey){ops[i].key, ops[i].inv, i};
        }
    }
    qsort(ks, m, sizeof(*ks), s_cmp_op);
    rep->checked = m;
    uint8_t *needy = calloc(n ? n : 1, 1);
    vset vs = {malloc((n ? n : 1) * sizeof(uint64_t)), 0, ops, needy};
    if (vs.v == NULL || needy == NULL) {
        free(vs.v);
        free(needy);
        free(ks);
        free(fk);
        free(k);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (ops[i].type == LC_PUT || ops[i].type == LC_CAS) {
            vs.v[vs.n++] = ops[i].type == LC_PUT ? ops[i].arg : ops[i].arg2;
        }
    }
    qsort(vs.v, vs.n, sizeof(uint64_t), s_cmp_u64);
    int rv = 0;
    for (size_t a = 0; a < m && rv == 0;) {
        size_t b = a;
        while (b < m && ks[b].key == ks[a].key) {
            b++;
        }
        rep->keys++;
        /* First without the unobserved unknown writes (a pass there is a
         * pass); on a violation again without only those that cannot
         * matter, so that a reported violation is one. */
        key_result kr = {LC_LINEARIZABLE, 0, LC_ABSENT, 0}, kr1 = kr;
        size_t mk = 0;
        s_needy(ops, ks + a, b - a, &vs, needy);
        for (int strict = 0; strict < 2; strict++) {
            mk = s_prune(ops, ks + a, b - a, strict, &vs, fk);
            for (size_t i = 0; i < mk; i++) {
                k[i] = &ops[fk[i].idx];
            }
            /* The exact search gets a 16th of the bound: it only
             * confirms what the first found. */
            if (s_check_key(k, mk, strict ? max_states / 16 + 1 : max_states,
                            &vs, &kr) != 0) {
                rv = -1;
                break;
            }
            if (kr.verdict == LC_LINEARIZABLE) {
                break;
            }
            if (!strict) {
                kr1 = kr;
            }
        }
        bool pruned = false;
        if (rv == 0 && kr.verdict == LC_GAVE_UP &&
            kr1.verdict == LC_VIOLATION) {
            /* Report the first search's window: it found no order. */
            pruned = true;
            kr = kr1;
            kr.verdict = LC_GAVE_UP;
            mk = s_prune(ops, ks + a, b - a, false, &vs, fk);
            for (size_t i = 0; i < mk; i++) {
                k[i] = &ops[fk[i].idx];
            }
        }
        if (rv == 0 && kr.verdict != LC_LINEARIZABLE &&
            rep->verdict == LC_LINEARIZABLE) {
            rep->verdict = kr.verdict;
            rep->pruned_violation = pruned;
            rep->key = ks[a].key;
            rep->bad_op = fk[kr.bad].idx;
            rep->state = kr.state;
            rep->depth = kr.depth;
            rep->key_ops = mk;
            if (s_window(k, fk, mk, &vs, &kr, rep) != 0) {
                rv = -1;
            }
        }
        a = b;
    }
    free(vs.v);
    free(needy);
    free(fk);
    free(ks);
    free(k);
    return rv == 0 ? (int)rep->verdict : -1;
}

void lc_report_free(lc_report *rep)
{
    free(rep->window);
    rep->window = NULL;
    rep->n_window = 0;
}

static bool s_acked_write(const lc_op *o)
{
    return o->status == LC_OK &&
           (o->type == LC_PUT || (o->type == LC_CAS && o->out == 1));
}

size_t lc_lost_writes(const lc_op *ops, size_t n, const uint64_t *keys,
                      const uint64_t *finals, size_t nkeys, FILE *out)
{
    size_t lost = 0;
    for (size_t i = 0; i < nkeys; i++) {
        const lc_op *writer = NULL;
        const lc_op *acked_last = NULL; /* the acked write invoked last */
        for (size_t j = 0; j < n; j++) {
            const lc_op *o = &ops[j];
            if (o->key != keys[i]) {
                continue;
            }
            if (finals[i] != LC_ABSENT && o->status != LC_FAIL &&
                s_writes(o, finals[i])) {
                writer = o;
            }
            if (s_acked_write(o) &&
                (acked_last == NULL || o->inv > acked_last->inv)) {
                acked_last = o;
            }
        }
        if (finals[i] == LC_ABSENT) {
            if (acked_last != NULL) {
                fprintf(out,
                        "lost write: key %llu is absent after the heal, "
                        "but value %llu was acknowledged\n",
                        (unsigned long long)keys[i],
                        (unsigned long long)(acked_last->type == LC_PUT
                                                 ? acked_last->arg
                                                 : acked_last->arg2));
                lost++;
            }
            continue;
        }
        if (writer == NULL) {
            fprintf(out, "key %llu holds %llu after the heal: no op wrote it\n",
                    (unsigned long long)keys[i], (unsigned long long)finals[i]);
            lost++;
            continue;
        }
        /* An acked write invoked after the writer returned must come later
         * in any linearization, so the final value cannot be the writer's. */
        if (acked_last != NULL && acked_last->inv > s_ret(writer)) {
            fprintf(out,
                    "lost write: key %llu holds %llu after the heal, but "
                    "%llu was acknowledged later (invoked at %lld, after "
                    "%llu's write returned at %lld)\n",
                    (unsigned long long)keys[i], (unsigned long long)finals[i],
                    (unsigned long long)(acked_last->type == LC_PUT
                                             ? acked_last->arg
                                             : acked_last->arg2),
                    (long long)acked_last->inv, (unsigned long long)finals[i],
                    (long long)writer->ret);
            lost++;
        }
    }
    return lost;
}

static const char *const type_names[] = {"put", "get", "cas"};
static const char *const status_names[] = {"ok", "fail", "info"};

void lc_print_op(FILE *f, const lc_op *o)
{
    fprintf(f, "%u %s %llu %llu %llu %llu %s %lld %lld\n", o->client,
            type_names[o->type], (unsigned long long)o->key,
            (unsigned long long)o->arg, (unsigned long long)o->arg2,
            (unsigned long long)o->out, status_names[o->status],
            (long long)o->inv, (long long)o->ret);
}

static int s_lookup(const char *w, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        if (!strcmp(w, names[i])) {
            return i;
        }
    }
    return -1;
}

int lc_parse_op(const char *line, lc_op *o)
{
    while (*line == ' ' || *line == '\t') {
        line++;
    }
    if (*line == '\0' || *line == '\n' || *line == '#') {
        return 1;
    }
    char type[8], status[8];
    unsigned client;
    unsigned long long key, arg, arg2, outv;
    long long inv, ret;
    int used = 0;
    if (sscanf(line, "%u %7s %llu %llu %llu %llu %7s %lld %lld %n", &client,
               type, &key, &arg, &arg2, &outv, status, &inv, &ret,
               &used) != 9 ||
        (line[used] != '\0' && line[used] != '#')) {
        return -1;
    }
    int t = s_lookup(type, type_names, 3);
    int s = s_lookup(status, status_names, 3);
    if (t < 0 || s < 0 || (s != LC_INFO && ret < inv)) {
        return -1;
    }
    *o =
        (lc_op){client, (uint8_t)t, (uint8_t)s, key, arg, arg2, outv, inv, ret};
    return 0;
}
