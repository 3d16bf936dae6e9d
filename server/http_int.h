/* http_int.h - what the two halves of zraftd's HTTP server share:
 * http.c (routes, requests and answers: the HTTP semantics) and http_loop.c
 * (the serving threads, suspend and resume, completions, leader waits,
 * time-outs, the admin thread, start and shutdown). Internal to server/. */
#ifndef ZRAFT_SERVER_HTTP_INT_H
#define ZRAFT_SERVER_HTTP_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "http.h"
#include "http_admin.h"
#include "kv.h"

typedef struct http_req http_req;
typedef struct http_worker http_worker;

/* Who has the request's backend call (request.phase). */
enum {
    PH_IDLE,      /* no call */
    PH_CALLING,   /* the handler is in the call */
    PH_EARLY,     /* completed during the call: the handler answers */
    PH_SUSPENDED, /* the handler returned; the completion queues it */
};

/* What a request does. */
enum { K_OTHER, K_PUT, K_DEL, K_GET, K_ADMIN };

/* Why a request is suspended. */
enum { W_NONE, W_OP, W_LEADER };

typedef struct {
    http_req *head, *tail;
} rlist;

struct http_req {
    http_op op; /* the backend call; first: &op is the request */
    http_worker *w;
    struct MHD_Connection *conn;
    const char *url; /* libmicrohttpd's, valid until the request ends */
    _Atomic int phase;
    http_req *qnext;       /* completion queue (w->qlock) */
    http_req *prev, *next; /* w->pending or w->waiting */
    int kind;
    int wait;         /* W_* while suspended */
    bool outstanding; /* the backend or admin thread holds it */
    bool timed_out;   /* answered 504 while outstanding */
    bool waited;      /* has waited for a leader (once at most) */
    bool finished;    /* libmicrohttpd is done with it */
    bool too_big;
    bool bad_key;
    unsigned deny; /* 401 or 403: refused by http_sec_check(); body dropped */
    int leader;    /* outcome of the leader wait */
    uint64_t deadline; /* ms: op time-out, or end of the leader wait */
    zraft_buf *cmd;    /* PUT/DELETE: the kv command */
    size_t vlen, got;  /* PUT into cmd: value length, bytes received */
    char *body;        /* other bodies (and large or chunked PUTs) */
    size_t len, cap;
    /* admin call */
    int admin;
    uint64_t id;
    size_t n_ids;
    char *raft_addr, *http_addr;
    char *pubkey; /* learner's public key, NULL if the body had none */
    http_req *anext;
    http_req *fnext; /* the worker's free list */
    size_t klen;
    /* Not cleared when a request is reused (the fields above are): only
     * their first n_ids and klen (+ NUL) are ever read. */
    uint64_t ids[ZRAFT_MAX_MEMBERS];
    char key[KV_MAX_KEY + 1];
};

/* Freed requests a serving thread keeps for reuse, at most (a request is
 * ~1.7 KiB: reusing one saves a malloc, a 1.7 KiB clear and a free per
 * request). */
#define HTTP_REQ_POOL 1024

struct http_worker {
    http_server *s;
    unsigned idx;
    pthread_t thread;
    bool started;
    struct MHD_Daemon *d;
    int efd; /* eventfd: completions queued, or drain/stop */
    int ep;  /* epoll set: efd and the daemon's own epoll fd */
    pthread_mutex_t qlock;
    http_req *qhead, *qtail; /* completed (any thread pushes) */
    rlist pending;           /* calls in flight, oldest first */
    rlist waiting;           /* waiting for a leader */
    uint64_t next_probe;     /* ms */
    size_t outstanding;      /* calls not completed yet */
    bool acked;              /* saw the drain */
    http_req *free_reqs;     /* for reuse (HTTP_REQ_POOL at most) */
    unsigned n_free;
    /* The answer to every successful write (204, no body): one response
     * object queued again and again, not one made and destroyed per
     * request. */
    struct MHD_Response *no_content;
};

struct http_server {
    http_backend b;
    http_options o;
    int lfd;
    uint16_t port;
    http_worker *w;
    unsigned nw;
    atomic_bool draining, stopping;
    pthread_mutex_t lock; /* everything below */
    pthread_cond_t cond;
    unsigned acks; /* threads that saw the drain */
    _Atomic size_t outstanding;
    pthread_t admin;
    bool admin_started, admin_exit, admin_acked;
    http_req *ahead, *atail;
};

/* ---- http_sec.c: HTTPS and tokens */

/* 0 if the request to `url` may go on, else the status that refuses it
 * (401: token missing or wrong; 403: no valid client certificate). */
unsigned http_sec_check(const http_server *s, struct MHD_Connection *c,
                        const char *url);
/* "https" when the port speaks TLS (every node of a cluster is assumed
 * to: redirects to the leader use it), else "http". */
const char *http_sec_scheme(const http_server *s);
/* Answers a refused request (status from http_sec_check). */
enum MHD_Result http_sec_deny(struct MHD_Connection *c, unsigned status);
/* The daemon flags and options HTTPS needs: adds to *flags, writes up to 4
 * items into `opts` and returns how many. */
size_t http_sec_options(const http_server *s, unsigned *flags,
                        struct MHD_OptionItem *opts);

/* ---- http_loop.c: the machinery (serving thread unless noted) */

/* After rq's backend call (or admin push) returned rv, phase PH_CALLING set
 * before the call: answers now (http_req_done) if it failed or completed
 * during the call, else suspends the connection until the completion. */
enum MHD_Result http_loop_called(http_req *rq, int rv);
/* rq->op.complete: any thread, once per call. */
void http_loop_complete(http_op *op);
/* Suspends rq until a leader is known or `ms` passed (rq->leader). */
enum MHD_Result http_loop_wait_leader(http_req *rq, uint32_t ms);
/* Hands rq's admin call (rq->admin ...) to the admin thread. */
enum MHD_Result http_loop_admin(http_req *rq);

/* ---- http.c: the HTTP side */

/* libmicrohttpd's access handler and completion notice (cls: the worker). */
enum MHD_Result http_handle(void *cls, struct MHD_Connection *c,
                            const char *url, const char *method,
                            const char *version, const char *data,
                            size_t *data_size, void **con_cls);
void http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe);
/* rq's write or read finished (result in rq->op): answers, or waits for a
 * leader first. */
enum MHD_Result http_req_done(http_req *rq);
/* A cleared request of worker w (reused when one is free), or NULL. */
http_req *http_req_new(http_worker *w);
/* Releases what rq holds and keeps it for reuse (or frees it). */
void http_req_free(http_req *rq);
/* Frees the requests w keeps for reuse (its daemon stopped). */
void http_req_pool_free(http_worker *w);

#endif
