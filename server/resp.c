/* resp.c - zraftd's RESP port, the event loop (see resp.h; the commands are
 * resp_cmd.c's).
 *
 * One thread ("resp") runs an epoll loop over the listening socket, an
 * eventfd and every connection (level-triggered, non-blocking sockets).
 * Each turn it reads what the readable connections sent, parses every
 * complete command (resp_proto.c), sends the node what it may, takes the
 * completions other threads queued, answers, and writes each connection's
 * replies with one write() per turn.
 *
 * Order. A connection's commands are kept in arrival order and answered in
 * that order. They go to the node in order too, with one rule: a write is
 * not sent while a read of the same connection is in flight, nor a read
 * while a write is (so a read sees the writes sent before it, and never one
 * sent after it); consecutive writes go together, and the node batches
 * them into shared log appends. The linearizable reads of a loop turn, of
 * every connection, share one read barrier (one read-index round).
 *
 * Calls to the node. The backend never blocks; its completion (on the
 * node's state machine thread, or on this one during the call) always goes
 * through the completion queue (a mutex-guarded list; the eventfd is
 * written only when the list was empty, so a batch costs one wake-up). The
 * queue and the calls' `op` fields are all that other threads touch. A
 * call not completed after op_timeout_ms has its commands answered with an
 * error; the call itself stays allocated until its completion comes (the
 * node completes everything it accepted, at the latest with ESHUTDOWN).
 *
 * No leader. Writes and linearizable reads are sent with ZRAFT_CALL_FORWARD
 * (a follower forwards them to the leader), so ENOTLEADER comes only when
 * forwarding is unavailable or found no leader in time. Then it gets -MOVED
 * to the leader's RESP address when one is known; otherwise it waits on
 * the waiting list, which the loop checks every RESP_LEADER_POLL_MS while
 * it is not empty, until this node leads (sent again), another node is
 * known (-MOVED) or leader_wait_ms passed (-TRYAGAIN).
 *
 * Limits. A connection stops being read while 1024 of its commands are
 * queued or 4 MiB of its replies are unsent; a command larger than the
 * input bound, or a protocol error, answers -ERR and closes it (as Redis
 * does). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "netutil.h"
#include "resp_int.h"
#include "zraft.h"

#define RESP_LEADER_POLL_MS 5
#define MAX_QUEUED          1024
#define OUT_HIGH            (4u << 20)
#define INLINE_MAX          (64u << 10)

struct resp_conn {
    resp_server *s;
    int fd;
    char *in; /* received, not yet parsed */
    size_t in_len, in_cap, in_need;
    resp_out out; /* replies not yet written */
    size_t out_off;
    resp_req *head, *tail; /* commands, in order */
    resp_req *issue;       /* the first one not sent yet */
    size_t queued;
    size_t w_inflight, r_inflight; /* sent, not answered */
    bool readonly;                 /* READONLY: stale reads */
    bool authed;                   /* AUTH passed (or no token is set) */
    bool closing;                  /* close once the replies are out */
    bool paused;                   /* not reading (backpressure) */
    bool want_out;                 /* EPOLLOUT registered */
    bool dirty;                    /* replies to write this turn */
    bool closed;
    resp_conn *dnext;       /* s->dirty or s->dead */
    resp_conn *prev, *next; /* s->conns */
};

struct resp_server {
    resp_backend b;
    resp_options o;
    resp_limits lim;
    size_t max_in; /* largest command */
    int lfd, ep, efd;
    uint16_t port;
    pthread_t thread;
    bool started;
    atomic_bool draining, stopping;
    _Atomic size_t outstanding; /* calls not completed */
    pthread_mutex_t lock;       /* acked, for resp_drain */
    pthread_cond_t cond;
    bool acked;
    pthread_mutex_t qlock; /* the completion queue */
    resp_pend *qhead, *qtail;
    /* The loop thread's own. */
    resp_conn *conns;
    size_t nconns;
    resp_pend *phead, *ptail; /* calls in flight, oldest first */
    resp_req *whead, *wtail;  /* waiting for a leader */
    uint64_t next_probe;
    resp_pend *group; /* the read barrier this turn assembles */
    resp_conn *dirty, *dead;
    resp_cmd parse;
};

const resp_backend *resp_backend_of(const resp_server *s)
{
    return &s->b;
}

size_t resp_max_value(const resp_server *s)
{
    return s->o.max_value;
}

bool resp_conn_authed(const resp_conn *c)
{
    const auth_token *t = c->s->o.token;
    return c->authed || t == NULL || t->token == NULL;
}

void resp_conn_set_authed(resp_conn *c, bool on)
{
    c->authed = on;
}

const auth_token *resp_token(const resp_server *s)
{
    return s->o.token;
}

void resp_conn_set_readonly(resp_conn *c, bool on)
{
    c->readonly = on;
}

/* ------------------------------------------------------------ lists */

static void s_pend_add(resp_server *s, resp_pend *p)
{
    uint32_t t =
        s->b.op_timeout_ms ? s->b.op_timeout_ms : NETUTIL_OP_TIMEOUT_MS;
    p->deadline = netutil_now_ms() + t;
    p->next = NULL;
    p->prev = s->ptail;
    if (s->ptail) {
        s->ptail->next = p;
    } else {
        s->phead = p;
    }
    s->ptail = p;
    atomic_fetch_add(&s->outstanding, 1);
}

static void s_pend_remove(resp_server *s, resp_pend *p)
{
    if (p->prev) {
        p->prev->next = p->next;
    } else {
        s->phead = p->next;
    }
    if (p->next) {
        p->next->prev = p->prev;
    } else {
        s->ptail = p->prev;
    }
    p->prev = p->next = NULL;
}

static void s_wait_add(resp_server *s, resp_req *r)
{
    r->wnext = NULL;
    r->wprev = s->wtail;
    if (s->wtail) {
        s->wtail->wnext = r;
    } else {
        s->whead = r;
    }
    s->wtail = r;
}

static void s_wait_remove(resp_server *s, resp_req *r)
{
    if (r->wprev) {
        r->wprev->wnext = r->wnext;
    } else {
        s->whead = r->wnext;
    }
    if (r->wnext) {
        r->wnext->wprev = r->wprev;
    } else {
        s->wtail = r->wprev;
    }
    r->wprev = r->wnext = NULL;
}

static bool s_waiting(const resp_server *s, const resp_req *r)
{
    return r->wprev != NULL || s->whead == r;
}

/* Frees r once nothing holds it: its connection (until its reply is out),
 * its write call, its barrier, the waiting list. */
static void s_release(resp_server *s, resp_req *r)
{
    if (r->c != NULL || r->in_flight || r->attached || s_waiting(s, r)) {
        return;
    }
    zraft_buf_unref(r->cmd);
    free(r->klen);
    free(r->keys);
    resp_out_free(&r->reply);
    free(r);
}

/* Any thread: a call completed. Always queued, also during the call: the
 * loop thread alone looks at results. */
static void s_complete(resp_op *op)
{
    resp_pend *p = (resp_pend *)op;
    resp_server *s = p->server;
    p->qnext = NULL;
    pthread_mutex_lock(&s->qlock);
    bool wake = s->qhead == NULL;
    if (s->qtail) {
        s->qtail->qnext = p;
    } else {
        s->qhead = p;
    }
    s->qtail = p;
    pthread_mutex_unlock(&s->qlock);
    if (wake) {
        netutil_wake(s->efd);
    }
}

/* ------------------------------------------------------- connections */

static void s_mark_dirty(resp_conn *c)
{
    if (!c->dirty && !c->closed) {
        c->dirty = true;
        c->dnext = c->s->dirty;
        c->s->dirty = c;
    }
}

static void s_events(resp_conn *c)
{
    struct epoll_event ev = {0};
    ev.events = (c->paused ? 0 : EPOLLIN) | (c->want_out ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(c->s->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Closes c now. Its commands still with the node stay until their calls
 * complete; the struct is freed at the end of the turn. */
static void s_close(resp_conn *c)
{
    resp_server *s = c->s;
    if (c->closed) {
        return;
    }
    c->closed = true;
    epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    resp_req *next;
    for (resp_req *r = c->head; r != NULL; r = next) {
        next = r->next;
        if (s_waiting(s, r)) {
            s_wait_remove(s, r);
        }
        r->c = NULL;
        s_release(s, r);
    }
    c->head = c->tail = c->issue = NULL;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    s->nconns--;
    c->dnext = s->dead;
    s->dead = c;
}

static void s_conn_free(resp_conn *c)
{
    free(c->in);
    resp_out_free(&c->out);
    free(c);
}

/* ------------------------------------------------------ node answers */

static void s_pump(resp_conn *c);

/* r's write or read met ENOTLEADER: -MOVED when the leader is known, else
 * wait for one (false: r is waiting), else -TRYAGAIN. */
static bool s_not_leader(resp_server *s, resp_req *r)
{
    char addr[256], msg[320];
    if (s->b.leader_addr(s->b.ctx, addr, sizeof addr) == 0) {
        snprintf(msg, sizeof msg, "MOVED %u %s", r->slot, addr);
        r->reply.len = 0;
        resp_out_error(&r->reply, msg);
        return true;
    }
    if (!r->waited && s->b.leader_known != NULL && s->b.leader_wait_ms > 0 &&
        !atomic_load(&s->draining)) {
        r->waited = true;
        r->wait_deadline = netutil_now_ms() + s->b.leader_wait_ms;
        s_wait_add(s, r);
        return false;
    }
    r->reply.len = 0;
    resp_out_error(&r->reply, "TRYAGAIN no leader is known; retry later");
    return true;
}

/* r (a write or read sent to the node) has its answer, or is waiting. */
static void s_answered(resp_server *s, resp_req *r, int err,
                       const zraft_buf *result)
{
    if (err == ZRAFT_ENOTLEADER) {
        if (!s_not_leader(s, r)) {
            return; /* waiting: still in flight for the connection */
        }
    } else if (err != 0) {
        resp_cmd_error_reply(r, err);
    } else if (r->cls == RC_WRITE) {
        resp_cmd_write_reply(r, result);
    } else {
        resp_cmd_read_reply(s, r);
    }
    r->done = true;
    if (r->cls == RC_WRITE) {
        r->c->w_inflight--;
    } else {
        r->c->r_inflight--;
    }
}

static void s_send_write(resp_server *s, resp_req *r)
{
    r->p.type = P_WRITE;
    r->p.server = s;
    r->p.timed_out = false;
    r->p.op.err = 0;
    r->p.op.result = NULL;
    r->p.op.complete = s_complete;
    zraft_buf *cmd = zraft_buf_ref(r->cmd); /* kept for a retry */
    int rv = s->b.write(s->b.ctx, cmd, &r->p.op);
    if (rv != 0) {
        zraft_buf_unref(cmd);
        s_answered(s, r, rv, NULL);
        return;
    }
    r->in_flight = true;
    s_pend_add(s, &r->p);
}

/* A linearizable read joins this turn's barrier (sent at the turn's end). */
static void s_join_barrier(resp_server *s, resp_req *r)
{
    if (s->group == NULL) {
        s->group = calloc(1, sizeof(resp_pend));
        if (s->group == NULL) {
            s_answered(s, r, ZRAFT_ENOMEM, NULL);
            return;
        }
        s->group->type = P_BARRIER;
        s->group->server = s;
        s->group->op.complete = s_complete;
    }
    r->rnext = s->group->reads;
    s->group->reads = r;
    r->attached = true;
}

/* The reads of a barrier have their answer (err). */
static void s_barrier_done(resp_server *s, resp_pend *g, int err)
{
    resp_req *next;
    for (resp_req *r = g->reads; r != NULL; r = next) {
        next = r->rnext;
        r->attached = false;
        if (r->c == NULL) {
            s_release(s, r);
            continue;
        }
        s_answered(s, r, err, NULL);
        s_pump(r->c);
    }
    g->reads = NULL;
}

static void s_send_barrier(resp_server *s)
{
    resp_pend *g = s->group;
    s->group = NULL;
    if (g == NULL) {
        return;
    }
    int rv = s->b.barrier(s->b.ctx, &g->op);
    if (rv != 0) {
        s_barrier_done(s, g, rv);
        free(g);
        return;
    }
    s_pend_add(s, g);
}

/* Sends c's commands to the node, in order, as far as the rule allows. */
static void s_issue(resp_server *s, resp_conn *c)
{
    bool draining = atomic_load(&s->draining);
    while (c->issue != NULL) {
        resp_req *r = c->issue;
        if (r->cls == RC_WRITE && c->r_inflight > 0) {
            return;
        }
        if (r->cls == RC_READ && c->w_inflight > 0) {
            return;
        }
        c->issue = r->next;
        r->issued = true;
        if (r->cls == RC_LOCAL) {
            continue;
        }
        if (draining) {
            resp_cmd_error_reply(r, ZRAFT_ESHUTDOWN);
            r->done = true;
            continue;
        }
        if (r->cls == RC_WRITE) {
            c->w_inflight++;
            s_send_write(s, r);
        } else if (r->stale) {
            resp_cmd_read_reply(s, r);
            r->done = true;
        } else {
            c->r_inflight++;
            s_join_barrier(s, r);
        }
    }
}

static void s_parse(resp_conn *c);

/* Moves the replies that are ready, in order, to the output. */
static void s_pump(resp_conn *c)
{
    resp_server *s = c->s;
    s_issue(s, c);
    while (c->head != NULL && c->head->done) {
        resp_req *r = c->head;
        if (resp_out_raw(&c->out, r->reply.data, r->reply.len) != 0) {
            c->closing = true;
        }
        if (r->quit) {
            c->closing = true;
        }
        c->head = r->next;
        if (c->head == NULL) {
            c->tail = NULL;
        }
        if (c->issue == r) {
            c->issue = r->next;
        }
        c->queued--;
        r->c = NULL;
        s_release(s, r);
        s_mark_dirty(c);
    }
    if (c->paused && !c->closing && c->queued < MAX_QUEUED / 2 &&
        c->out.len - c->out_off < OUT_HIGH / 2) {
        c->paused = false;
        s_events(c);
        s_parse(c); /* what was buffered meanwhile */
    }
}

/* ------------------------------------------------------------ input */

static resp_req *s_req_new(resp_conn *c)
{
    resp_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    r->c = c;
    if (c->tail) {
        c->tail->next = r;
    } else {
        c->head = r;
    }
    c->tail = r;
    if (c->issue == NULL) {
        c->issue = r;
    }
    c->queued++;
    return r;
}

/* A last reply, then close. */
static void s_fatal(resp_conn *c, const char *msg)
{
    resp_req *r = s_req_new(c);
    if (r == NULL) {
        s_close(c);
        return;
    }
    r->cls = RC_LOCAL;
    r->done = true;
    r->quit = true;
    resp_out_error(&r->reply, msg);
    c->closing = true;
}

static void s_parse(resp_conn *c)
{
    resp_server *s = c->s;
    size_t off = 0;
    while (off < c->in_len && !c->closing && !c->paused) {
        if (c->queued >= MAX_QUEUED || c->out.len - c->out_off >= OUT_HIGH) {
            c->paused = true;
            s_events(c);
            break;
        }
        if (c->in_len - off < c->in_need) {
            break;
        }
        size_t used;
        const char *why;
        int rv = resp_parse(c->in + off, c->in_len - off, &s->lim, &s->parse,
                            &used, &why);
        if (rv == RESP_MORE) {
            c->in_need = used;
            if (used > s->max_in) {
                s_fatal(c, "ERR command too large for zraft");
            }
            break;
        }
        c->in_need = 0;
        if (rv != RESP_DONE) {
            char msg[128];
            snprintf(msg, sizeof msg, "ERR %s",
                     rv == RESP_ERROR ? why : "out of memory");
            s_fatal(c, msg);
            break;
        }
        off += used;
        if (s->parse.argc == 0) {
            continue;
        }
        resp_req *r = s_req_new(c);
        if (r == NULL) {
            s_fatal(c, "ERR out of memory");
            break;
        }
        resp_cmd_prepare(s, c, &s->parse, r);
        r->stale = c->readonly;
        if (r->cls == RC_LOCAL) {
            r->done = true;
        }
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    if (c->in_len == 0 && c->in_cap > 0) {
        free(c->in); /* an idle connection keeps no buffer */
        c->in = NULL;
        c->in_cap = 0;
    }
    s_pump(c);
}

static void s_read(resp_conn *c)
{
    resp_server *s = c->s;
    bool eof = false;
    while (!c->paused && !c->closing) {
        if (c->in_len == c->in_cap) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 16384;
            if (cap > s->max_in + 1) {
                cap = s->max_in + 1;
            }
            if (cap <= c->in_cap) {
                break; /* full: s_parse decides */
            }
            char *in = realloc(c->in, cap);
            if (in == NULL) {
                break;
            }
            c->in = in;
            c->in_cap = cap;
        }
        size_t room = c->in_cap - c->in_len;
        ssize_t n = read(c->fd, c->in + c->in_len, room);
        if (n > 0) {
            c->in_len += (size_t)n;
            if ((size_t)n < room) {
                break;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        eof = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
        break;
    }
    s_parse(c);
    if (eof) {
        s_close(c); /* the client went away: its replies have nobody */
    }
}

static void s_write_out(resp_conn *c)
{
    c->dirty = false;
    if (c->closed) {
        return;
    }
    while (c->out_off < c->out.len) {
        ssize_t n =
            write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) {
                c->want_out = true;
                s_events(c);
            }
            return;
        }
        s_close(c);
        return;
    }
    c->out.len = c->out_off = 0;
    if (c->out.cap > 4096) {
        resp_out_free(&c->out); /* nor a large reply buffer */
    }
    if (c->want_out) {
        c->want_out = false;
        s_events(c);
    }
    if (c->closing && c->head == NULL) {
        s_close(c);
    } else if (c->paused) {
        s_pump(c); /* output drained: maybe read again */
    }
}

static void s_accept(resp_server *s)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return; /* EAGAIN, or out of descriptors: try next turn */
        }
        uint32_t max = s->o.max_connections ? s->o.max_connections
                                            : NETUTIL_MAX_CONNECTIONS;
        resp_conn *c = s->nconns < max ? calloc(1, sizeof(*c)) : NULL;
        if (c == NULL) {
            static const char full[] = "-ERR max number of clients reached\r\n";
            ssize_t w = write(fd, full, sizeof full - 1);
            (void)w;
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->s = s;
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = s->conns;
        if (s->conns) {
            s->conns->prev = c;
        }
        s->conns = c;
        s->nconns++;
    }
}

/* ------------------------------------------------------------- loop */

static void s_take(resp_server *s)
{
    pthread_mutex_lock(&s->qlock);
    resp_pend *p = s->qhead;
    s->qhead = s->qtail = NULL;
    pthread_mutex_unlock(&s->qlock);
    while (p != NULL) {
        resp_pend *next = p->qnext;
        atomic_fetch_sub(&s->outstanding, 1);
        if (!p->timed_out) {
            s_pend_remove(s, p);
        }
        if (p->type == P_BARRIER) {
            if (!p->timed_out) {
                s_barrier_done(s, p, p->op.err);
            }
            free(p);
        } else {
            resp_req *r = (resp_req *)p;
            zraft_buf *res = p->op.result;
            p->op.result = NULL;
            r->in_flight = false;
            if (r->c == NULL || p->timed_out) {
                s_release(s, r); /* answered already, or its client left */
            } else {
                s_answered(s, r, p->op.err, res);
                s_pump(r->c);
            }
            zraft_buf_unref(res);
        }
        p = next;
    }
    if (atomic_load(&s->draining)) {
        pthread_mutex_lock(&s->lock);
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
    }
}

/* Answers the commands of calls that outlived op_timeout_ms. */
static void s_expire(resp_server *s, uint64_t now)
{
    while (s->phead != NULL && s->phead->deadline <= now) {
        resp_pend *p = s->phead;
        s_pend_remove(s, p);
        p->timed_out = true;
        if (p->type == P_BARRIER) {
            s_barrier_done(s, p, ZRAFT_ETIMEDOUT);
        } else {
            resp_req *r = (resp_req *)p;
            if (r->c != NULL) {
                resp_conn *c = r->c;
                s_answered(s, r, ZRAFT_ETIMEDOUT, NULL);
                s_pump(c);
            }
        }
    }
}

static void s_poll_leader(resp_server *s, uint64_t now, bool draining)
{
    if (s->whead == NULL || (!draining && now < s->next_probe)) {
        return;
    }
    int st = draining ? ZRAFT_ESHUTDOWN : s->b.leader_known(s->b.ctx);
    s->next_probe = now + RESP_LEADER_POLL_MS;
    resp_req *next;
    for (resp_req *r = s->whead; r != NULL; r = next) {
        next = r->wnext;
        if (st == ZRAFT_ENOTFOUND && now < r->wait_deadline) {
            continue;
        }
        s_wait_remove(s, r);
        resp_conn *c = r->c;
        if (st == 1) { /* this node leads: send it again */
            if (r->cls == RC_WRITE) {
                s_send_write(s, r);
            } else {
                s_join_barrier(s, r);
            }
        } else {
            s_answered(s, r, ZRAFT_ENOTLEADER, NULL);
        }
        s_pump(c);
    }
}

static int s_timeout(resp_server *s, uint64_t now)
{
    int64_t t = -1;
    if (s->phead != NULL) {
        t = netutil_sooner(t, s->phead->deadline, now);
    }
    if (s->whead != NULL) {
        t = netutil_sooner(t, s->next_probe, now);
    }
    return (int)(t > 60000 ? 60000 : t);
}

static void *s_main(void *arg)
{
    resp_server *s = arg;
    pthread_setname_np(pthread_self(), "resp");
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(s->ep, evs, 64, s_timeout(s, netutil_now_ms()));
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &s->lfd) {
                s_accept(s);
            } else if (p == &s->efd) {
                netutil_wake_clear(s->efd);
            } else {
                resp_conn *c = p;
                if (c->closed) {
                    continue;
                }
                if (evs[i].events & EPOLLIN) {
                    s_read(c);
                }
                if (evs[i].events & (EPOLLHUP | EPOLLERR)) {
                    s_close(c); /* reported even while not reading */
                    continue;
                }
                if (!c->closed && (evs[i].events & EPOLLOUT)) {
                    s_mark_dirty(c);
                }
            }
        }
        uint64_t now = netutil_now_ms();
        bool draining = atomic_load(&s->draining);
        if (draining && s->lfd >= 0) {
            epoll_ctl(s->ep, EPOLL_CTL_DEL, s->lfd, NULL);
            close(s->lfd);
            s->lfd = -1;
        }
        s_take(s);
        s_expire(s, now);
        s_poll_leader(s, now, draining);
        if (draining) {
            /* Reads gathered before the drain are refused like the rest. */
            if (s->group != NULL) {
                s_barrier_done(s, s->group, ZRAFT_ESHUTDOWN);
                free(s->group);
                s->group = NULL;
            }
        }
        s_send_barrier(s);
        while (s->dirty != NULL) {
            resp_conn *c = s->dirty;
            s->dirty = c->dnext;
            s_write_out(c);
        }
        while (s->dead != NULL) {
            resp_conn *c = s->dead;
            s->dead = c->dnext;
            s_conn_free(c);
        }
        if (draining && !s->acked) {
            pthread_mutex_lock(&s->lock);
            s->acked = true; /* no call runs, none will start */
            pthread_cond_broadcast(&s->cond);
            pthread_mutex_unlock(&s->lock);
        }
        if (atomic_load(&s->stopping) && atomic_load(&s->outstanding) == 0) {
            break;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ start */

static void s_free(resp_server *s)
{
    while (s->conns != NULL) {
        s_close(s->conns);
    }
    while (s->dead != NULL) {
        resp_conn *c = s->dead;
        s->dead = c->dnext;
        s_conn_free(c);
    }
    if (s->lfd >= 0) {
        close(s->lfd);
    }
    if (s->ep >= 0) {
        close(s->ep);
    }
    if (s->efd >= 0) {
        close(s->efd);
    }
    resp_cmd_free(&s->parse);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->qlock);
    free(s);
}

resp_server *resp_start(const char *addr, const resp_backend *b,
                        const resp_options *o, char *why, size_t whylen)
{
    resp_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    s->b = *b;
    s->o = *o;
    s->lim.max_bulk = o->max_value;
    s->lim.max_args = 2 * 65535 + 1; /* MSET of the most keys one entry has */
    s->lim.max_inline = INLINE_MAX;
    s->max_in =
        (o->max_value > (1u << 20) ? 4 * o->max_value : 4u << 20) + (64u << 10);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_mutex_init(&s->qlock, NULL);
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->lfd = netutil_listen(addr, "resp_addr", why, whylen);
    if (s->lfd < 0 || s->ep < 0 || s->efd < 0) {
        if (s->lfd >= 0) {
            snprintf(why, whylen, "out of descriptors");
        }
        s_free(s);
        return NULL;
    }
    s->port = netutil_port(s->lfd);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->lfd};
    bool ok = epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &ev) == 0;
    ev.data.ptr = &s->efd;
    ok = ok && epoll_ctl(s->ep, EPOLL_CTL_ADD, s->efd, &ev) == 0;
    if (!ok || pthread_create(&s->thread, NULL, s_main, s) != 0) {
        snprintf(why, whylen, "cannot start the RESP thread");
        s_free(s);
        return NULL;
    }
    s->started = true;
    return s;
}

uint16_t resp_port(const resp_server *s)
{
    return s->port;
}

void resp_drain(resp_server *s, uint32_t wait_ms)
{
    atomic_store(&s->draining, true);
    netutil_wake(s->efd);
    pthread_mutex_lock(&s->lock);
    while (!s->acked) {
        pthread_cond_wait(&s->cond, &s->lock);
    }
    netutil_wait_outstanding(&s->cond, &s->lock, &s->outstanding, wait_ms);
    pthread_mutex_unlock(&s->lock);
}

void resp_stop(resp_server **sp)
{
    if (sp == NULL || *sp == NULL) {
        return;
    }
    resp_server *s = *sp;
    resp_drain(s, 0);
    atomic_store(&s->stopping, true);
    netutil_wake(s->efd);
    pthread_join(s->thread, NULL);
    s_free(s);
    *sp = NULL;
}
