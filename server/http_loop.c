/* http_loop.c - zraftd's HTTP server, the machinery (see http.h; the HTTP
 * side is http.c).
 *
 * Threads. `threads` serving threads ("http-<i>"), each running its own
 * libmicrohttpd daemon in external epoll mode over one shared non-blocking
 * listening socket (all of them wait on it; one accepts, the others find
 * nothing), and one admin thread ("http-admin") for the /cluster/ calls
 * that block until a membership change commits. A connection stays with
 * the serving thread that accepted it, so an idle keep-alive connection
 * costs a socket and a little memory, never a thread.
 *
 * Requests. A write or read calls the backend, which never blocks, and
 * suspends the connection (MHD_suspend_connection). The completion runs on
 * the node's state machine thread, or on the serving thread during the call
 * itself: in the first case it queues the request to its serving thread and
 * wakes it through an eventfd, once per batch (only when the queue was
 * empty); the serving thread resumes the connection and libmicrohttpd calls
 * the handler again, which answers. A completion that comes during the
 * call is answered at once, without suspending. `phase` tells the two
 * apart: it is the only field of a request, with `op`, that another thread
 * touches; everything else belongs to the serving thread.
 *
 * Waiting for a leader. A write or read answered ENOTLEADER while no
 * leader address is known waits for one: the request is suspended on its
 * thread's waiting list, and the loop asks backend->leader_known every
 * HTTP_LEADER_POLL_MS while the list is not empty (never while it is),
 * until a leader is known (this node: the operation is tried again here;
 * another: 307) or the bound passes (503 with Retry-After).
 *
 * Time-outs. An operation the node has not completed after op_timeout_ms
 * answers 504; its request stays allocated until the completion comes (the
 * node completes everything it accepted, at the latest with ESHUTDOWN).
 *
 * Shutdown. http_drain() makes each thread close the listening socket, turn
 * new requests away and release its leader waiters, and returns once no
 * backend call runs; http_stop() waits for every completion, stops the
 * threads and then the daemons (libmicrohttpd must not be stopped with a
 * connection suspended).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_int.h"
#include "netutil.h"

/* ------------------------------------------------------------- lists */

static void s_append(rlist *l, http_req *rq)
{
    rq->next = NULL;
    rq->prev = l->tail;
    if (l->tail) {
        l->tail->next = rq;
    } else {
        l->head = rq;
    }
    l->tail = rq;
}

static void s_remove(rlist *l, http_req *rq)
{
    if (rq->prev) {
        rq->prev->next = rq->next;
    } else {
        l->head = rq->next;
    }
    if (rq->next) {
        rq->next->prev = rq->prev;
    } else {
        l->tail = rq->prev;
    }
    rq->prev = rq->next = NULL;
}

/* ------------------------------------------------------------ calls */

/* After the backend call (or the admin push) returned `rv`: answer now if
 * it failed or completed meanwhile, else suspend until the completion. */
enum MHD_Result http_loop_called(http_req *rq, int rv)
{
    if (rv != 0) { /* the completion will never run */
        atomic_store(&rq->phase, PH_IDLE);
        rq->op.err = rv;
        return http_req_done(rq);
    }
    int expect = PH_CALLING;
    if (!atomic_compare_exchange_strong(&rq->phase, &expect, PH_SUSPENDED)) {
        atomic_store(&rq->phase, PH_IDLE); /* PH_EARLY */
        return http_req_done(rq);
    }
    /* From here the completion may be queued at any moment; the queue is
     * only read by this thread, after this handler returns. */
    http_worker *w = rq->w;
    rq->outstanding = true;
    w->outstanding++;
    atomic_fetch_add(&w->s->outstanding, 1);
    rq->wait = W_OP;
    if (rq->kind != K_ADMIN) {
        uint32_t t = w->s->b.op_timeout_ms ? w->s->b.op_timeout_ms
                                           : NETUTIL_OP_TIMEOUT_MS;
        rq->deadline = netutil_now_ms() + t;
        s_append(&w->pending, rq);
    }
    MHD_suspend_connection(rq->conn);
    return MHD_YES;
}

enum MHD_Result http_loop_wait_leader(http_req *rq, uint32_t ms)
{
    rq->waited = true;
    rq->deadline = netutil_now_ms() + ms;
    rq->wait = W_LEADER;
    s_append(&rq->w->waiting, rq);
    MHD_suspend_connection(rq->conn);
    return MHD_YES;
}

/* Any thread: the backend (or the admin thread) finished rq's call. */
void http_loop_complete(http_op *op)
{
    http_req *rq = (http_req *)op;
    int expect = PH_CALLING;
    if (atomic_compare_exchange_strong(&rq->phase, &expect, PH_EARLY)) {
        return; /* during the call: the handler answers */
    }
    http_worker *w = rq->w;
    rq->qnext = NULL;
    pthread_mutex_lock(&w->qlock);
    bool wake = w->qhead == NULL;
    if (w->qtail) {
        w->qtail->qnext = rq;
    } else {
        w->qhead = rq;
    }
    w->qtail = rq;
    pthread_mutex_unlock(&w->qlock);
    if (wake) {
        netutil_wake(w->efd);
    }
}

/* ------------------------------------------------------------- admin */

static void *s_admin_main(void *arg)
{
    http_server *s = arg;
    pthread_setname_np(pthread_self(), "http-admin");
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (atomic_load(&s->draining) && !s->admin_acked) {
            s->admin_acked = true; /* no call runs, none will */
            s->acks++;
            pthread_cond_broadcast(&s->cond);
        }
        http_req *rq = s->ahead;
        if (rq == NULL) {
            if (s->admin_exit) {
                break;
            }
            pthread_cond_wait(&s->cond, &s->lock);
            continue;
        }
        s->ahead = rq->anext;
        if (s->ahead == NULL) {
            s->atail = NULL;
        }
        bool refuse = s->admin_acked;
        pthread_mutex_unlock(&s->lock);
        int rv = ZRAFT_ESHUTDOWN;
        if (!refuse) {
            void *ctx = s->b.ctx;
            switch (rq->admin) {
            case A_LEARNER:
                rv = s->b.add_learner(ctx, rq->id, rq->raft_addr,
                                      rq->http_addr ? rq->http_addr : "",
                                      rq->pubkey);
                break;
            case A_MEMBERSHIP:
                rv = s->b.change_membership(ctx, rq->ids, rq->n_ids);
                break;
            case A_TRANSFER:
                rv = s->b.transfer_leader(ctx, rq->id);
                break;
            default:
                rv = s->b.snapshot(ctx);
                break;
            }
        }
        rq->op.err = rv;
        http_loop_complete(&rq->op);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

enum MHD_Result http_loop_admin(http_req *rq)
{
    http_server *s = rq->w->s;
    rq->kind = K_ADMIN;
    atomic_store(&rq->phase, PH_CALLING);
    rq->anext = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->atail) {
        s->atail->anext = rq;
    } else {
        s->ahead = rq;
    }
    s->atail = rq;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return http_loop_called(rq, 0);
}

/* ------------------------------------------------------- event loop */

/* Takes the completions queued by other threads and resumes their
 * connections. */
static void s_take(http_worker *w)
{
    pthread_mutex_lock(&w->qlock);
    http_req *rq = w->qhead;
    w->qhead = w->qtail = NULL;
    pthread_mutex_unlock(&w->qlock);
    while (rq != NULL) {
        http_req *next = rq->qnext;
        atomic_store(&rq->phase, PH_IDLE);
        rq->outstanding = false;
        w->outstanding--;
        atomic_fetch_sub(&w->s->outstanding, 1);
        if (rq->kind != K_ADMIN && !rq->timed_out) {
            s_remove(&w->pending, rq);
        }
        if (rq->finished) {
            http_req_free(rq); /* answered 504 and gone */
        } else if (!rq->timed_out) {
            MHD_resume_connection(rq->conn);
        } /* else: answered 504; http_completed frees it */
        rq = next;
    }
}

/* Answers 504 for the calls that outlived op_timeout_ms. */
static void s_expire(http_worker *w, uint64_t now)
{
    while (w->pending.head != NULL && w->pending.head->deadline <= now) {
        http_req *rq = w->pending.head;
        s_remove(&w->pending, rq);
        rq->timed_out = true;
        MHD_resume_connection(rq->conn);
    }
}

/* Asks whether a leader is known, for the requests waiting for one. */
static void s_poll_leader(http_worker *w, uint64_t now, bool draining)
{
    if (w->waiting.head == NULL || (!draining && now < w->next_probe)) {
        return;
    }
    http_server *s = w->s;
    int st = draining ? ZRAFT_ESHUTDOWN : s->b.leader_known(s->b.ctx);
    w->next_probe = now + HTTP_LEADER_POLL_MS;
    http_req *next;
    for (http_req *rq = w->waiting.head; rq != NULL; rq = next) {
        next = rq->next;
        if (st == ZRAFT_ENOTFOUND && now < rq->deadline) {
            continue;
        }
        rq->leader = st;
        s_remove(&w->waiting, rq);
        MHD_resume_connection(rq->conn);
    }
}

static int s_timeout(http_worker *w, uint64_t now)
{
    int64_t t = -1;
    MHD_UNSIGNED_LONG_LONG mt;
    if (MHD_get_timeout(w->d, &mt) == MHD_YES) {
        t = mt > INT_MAX ? INT_MAX : (int64_t)mt;
    }
    if (w->pending.head != NULL) {
        t = netutil_sooner(t, w->pending.head->deadline, now);
    }
    if (w->waiting.head != NULL) {
        t = netutil_sooner(t, w->next_probe, now);
    }
    return (int)t;
}

static void *s_worker_main(void *arg)
{
    http_worker *w = arg;
    http_server *s = w->s;
    char name[16];
    snprintf(name, sizeof name, "http-%u", w->idx);
    pthread_setname_np(pthread_self(), name);
    for (;;) {
        struct epoll_event evs[2];
        int n = epoll_wait(w->ep, evs, 2, s_timeout(w, netutil_now_ms()));
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u32 == 0) {
                netutil_wake_clear(w->efd);
            }
        }
        uint64_t now = netutil_now_ms();
        bool draining = atomic_load(&s->draining);
        if (draining && !w->acked) {
            MHD_quiesce_daemon(w->d); /* the listening socket is shared */
        }
        /* The writes and reads of this round wake the node once. Not
         * after this thread acknowledged the drain: it makes no backend
         * call from then on, and the node may be destroyed meanwhile. */
        bool batch = s->b.batch != NULL && !w->acked;
        if (batch) {
            s->b.batch(s->b.ctx, true);
        }
        s_take(w);
        s_expire(w, now);
        s_poll_leader(w, now, draining);
        MHD_run(w->d);
        if (batch) {
            s->b.batch(s->b.ctx, false);
        }
        if (draining) {
            pthread_mutex_lock(&s->lock);
            if (!w->acked) {
                w->acked = true; /* not in a backend call, none will start */
                s->acks++;
            }
            pthread_cond_broadcast(&s->cond); /* outstanding may be 0 */
            pthread_mutex_unlock(&s->lock);
        }
        if (atomic_load(&s->stopping) && w->outstanding == 0 &&
            w->waiting.head == NULL) {
            break;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------- start */

static void s_destroy(http_server *s)
{
    for (unsigned i = 0; i < s->nw; i++) {
        http_worker *w = &s->w[i];
        if (w->d != NULL) {
            MHD_quiesce_daemon(w->d); /* never closes the shared socket */
            MHD_stop_daemon(w->d);
        }
        if (w->no_content != NULL) {
            MHD_destroy_response(w->no_content);
        }
        http_req_pool_free(w); /* after the daemon: it frees requests */
        if (w->efd >= 0) {
            close(w->efd);
        }
        if (w->ep >= 0) {
            close(w->ep);
        }
        pthread_mutex_destroy(&w->qlock);
    }
    if (s->lfd >= 0) {
        close(s->lfd);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s->w);
    free(s);
}

http_server *http_start(const char *addr, const http_backend *b,
                        const http_options *o, char *why, size_t whylen)
{
    http_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    s->b = *b;
    s->o = *o;
    s->nw = o->threads ? o->threads : 1;
    uint32_t maxc =
        o->max_connections ? o->max_connections : NETUTIL_MAX_CONNECTIONS;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->w = calloc(s->nw, sizeof(http_worker));
    s->lfd = s->w ? netutil_listen(addr, "http_addr", why, whylen) : -1;
    if (s->w == NULL || s->lfd < 0) {
        if (s->w == NULL) {
            snprintf(why, whylen, "out of memory");
        }
        s->nw = 0;
        s_destroy(s);
        return NULL;
    }
    s->port = netutil_port(s->lfd);
    for (unsigned i = 0; i < s->nw; i++) {
        http_worker *w = &s->w[i];
        w->s = s;
        w->idx = i;
        pthread_mutex_init(&w->qlock, NULL);
        w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        /* NULL (out of memory): each 204 is made on its own, as before. */
        w->no_content =
            MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        unsigned per = (maxc + s->nw - 1) / s->nw;
        unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
        struct MHD_OptionItem tls[5];
        size_t nt = http_sec_options(s, &flags, tls);
        tls[nt] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
        w->d = MHD_start_daemon(
            flags, 0, NULL, NULL, http_handle, w, MHD_OPTION_LISTEN_SOCKET,
            s->lfd, MHD_OPTION_NOTIFY_COMPLETED, http_completed, w,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16u << 10),
            MHD_OPTION_CONNECTION_LIMIT, per, MHD_OPTION_ARRAY, tls,
            MHD_OPTION_END);
        const union MHD_DaemonInfo *di =
            w->d ? MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
        bool ok = w->efd >= 0 && w->ep >= 0 && di != NULL &&
                  epoll_ctl(w->ep, EPOLL_CTL_ADD, w->efd, &ev) == 0;
        ev.data.u32 = 1;
        if (!ok || epoll_ctl(w->ep, EPOLL_CTL_ADD, di->epoll_fd, &ev) != 0) {
            snprintf(why, whylen, "cannot start the HTTP server on %s", addr);
            s->nw = i + 1;
            s_destroy(s);
            return NULL;
        }
    }
    for (unsigned i = 0; i < s->nw; i++) {
        if (pthread_create(&s->w[i].thread, NULL, s_worker_main, &s->w[i]) !=
            0) {
            snprintf(why, whylen, "cannot start a thread");
            http_stop(&s);
            return NULL;
        }
        s->w[i].started = true;
    }
    if (pthread_create(&s->admin, NULL, s_admin_main, s) != 0) {
        snprintf(why, whylen, "cannot start a thread");
        http_stop(&s);
        return NULL;
    }
    s->admin_started = true;
    return s;
}

uint16_t http_port(const http_server *s)
{
    return s->port;
}

void http_drain(http_server *s, uint32_t wait_ms)
{
    atomic_store(&s->draining, true);
    for (unsigned i = 0; i < s->nw; i++) {
        netutil_wake(s->w[i].efd);
    }
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->cond); /* the admin thread */
    unsigned want = 0;
    for (unsigned i = 0; i < s->nw; i++) {
        want += s->w[i].started;
    }
    want += s->admin_started;
    while (s->acks < want) {
        pthread_cond_wait(&s->cond, &s->lock);
    }
    netutil_wait_outstanding(&s->cond, &s->lock, &s->outstanding, wait_ms);
    pthread_mutex_unlock(&s->lock);
}

void http_stop(http_server **sp)
{
    if (sp == NULL || *sp == NULL) {
        return;
    }
    http_server *s = *sp;
    http_drain(s, 0);
    atomic_store(&s->stopping, true);
    for (unsigned i = 0; i < s->nw; i++) {
        if (s->w[i].started) {
            netutil_wake(s->w[i].efd);
            pthread_join(s->w[i].thread, NULL);
        }
    }
    if (s->admin_started) {
        pthread_mutex_lock(&s->lock);
        s->admin_exit = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->admin, NULL);
    }
    s_destroy(s);
    *sp = NULL;
}
