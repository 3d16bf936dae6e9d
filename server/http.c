/* http.c - zraftd's HTTP/JSON API, the HTTP side (see http.h): routes,
 * requests and their bodies, answers and status codes; the threads and the
 * suspend/resume machinery are http_loop.c's.
 *
 * A request's body goes straight into the log entry's buffer when it is a
 * PUT of a small announced length (no copy between the socket buffer and
 * the entry); a GET answers from the stored entry's buffer (no copy either).
 * Every failure becomes a status code and a JSON error; no input is trusted
 * (sizes, JSON, ids, keys). Runs on the serving threads only. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "ui_page.h"

/* Bodies up to this size are received straight into the log entry's
 * buffer; larger ones (and chunked ones) are collected, then encoded. The
 * bound keeps a client that announces a large body and sends nothing from
 * making us allocate it. */
#define DIRECT_BODY_MAX (64u << 10)

/* --------------------------------------------------------- responses */

static enum MHD_Result s_queue(struct MHD_Connection *c, unsigned status,
                               struct MHD_Response *r)
{
    if (r == NULL) {
        return MHD_NO;
    }
    enum MHD_Result rv = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rv;
}

static enum MHD_Result s_reply(struct MHD_Connection *c, unsigned status,
                               const char *ctype, const void *data, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (r != NULL && ctype != NULL) {
        MHD_add_response_header(r, "Content-Type", ctype);
    }
    return s_queue(c, status, r);
}

static enum MHD_Result s_error_hdr(struct MHD_Connection *c, unsigned status,
                                   int err, const char *msg, const char *hdr,
                                   const char *val)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg ? msg : zraft_strerror(err));
    if (err != 0) {
        cJSON_AddStringToObject(o, "code", zraft_err_name(err));
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    const char *body = s ? s : "{}";
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    free(s);
    if (r != NULL) {
        MHD_add_response_header(r, "Content-Type", "application/json");
        if (hdr != NULL) {
            MHD_add_response_header(r, hdr, val);
        }
    }
    return s_queue(c, status, r);
}

static enum MHD_Result s_error(struct MHD_Connection *c, unsigned status,
                               int err, const char *msg)
{
    return s_error_hdr(c, status, err, msg, NULL, NULL);
}

/* The read-only endpoints the cluster page polls from another node's
 * origin (/cluster/status, /metrics): any origin may read them. They hold
 * nothing a client of the API could not read, and a browser sends no
 * credentials with these requests. */
static enum MHD_Result s_reply_public(struct MHD_Connection *c, unsigned status,
                                      const char *ctype, const void *data,
                                      size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (r != NULL) {
        MHD_add_response_header(r, "Content-Type", ctype);
        MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
        MHD_add_response_header(r, "Cache-Control", "no-store");
    }
    return s_queue(c, status, r);
}

/* A JSON answer of a read-only endpoint (/cluster/status): public. */
static enum MHD_Result s_json(struct MHD_Connection *c, unsigned status,
                              char *owned)
{
    if (owned == NULL) {
        return s_error(c, 500, ZRAFT_ENOMEM, NULL);
    }
    enum MHD_Result rv =
        s_reply_public(c, status, "application/json", owned, strlen(owned));
    free(owned);
    return rv;
}

/* The cluster page (ui/cluster.html), from the binary. */
static enum MHD_Result s_page(struct MHD_Connection *c, const char *method)
{
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        return s_error(c, 405, 0, "use GET");
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(
        ui_page_len, (void *)ui_page_html, MHD_RESPMEM_PERSISTENT);
    if (r != NULL) {
        MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
    }
    return s_queue(c, 200, r);
}

/* Percent-encodes a path segment. */
static void s_escape(const char *in, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap; i++) {
        unsigned char ch = (unsigned char)in[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' ||
            ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
}

/* Maps a node error to a response; ENOTLEADER becomes a redirect. */
static enum MHD_Result s_node_error(http_server *s, struct MHD_Connection *c,
                                    int err, const char *path,
                                    const char *query)
{
    if (err == ZRAFT_ENOTLEADER) {
        char leader[256];
        if (s->b.leader_http(s->b.ctx, leader, sizeof leader) != 0) {
            return s_error_hdr(c, 503, err, "no leader is known; retry later",
                               "Retry-After", "1");
        }
        /* Sized for the whole path and query: a CAS's if-match value may
         * be long, and a cut one would ask the leader for another swap. */
        const char *scheme = http_sec_scheme(s), *q = query ? query : "";
        size_t n =
            strlen(scheme) + 3 + strlen(leader) + strlen(path) + strlen(q) + 1;
        char *loc = malloc(n);
        if (loc == NULL) {
            return s_error(c, 500, ZRAFT_ENOMEM, NULL);
        }
        snprintf(loc, n, "%s://%s%s%s", scheme, leader, path, q);
        struct MHD_Response *r =
            MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (r != NULL) {
            MHD_add_response_header(r, "Location", loc); /* copies it */
        }
        free(loc);
        return s_queue(c, MHD_HTTP_TEMPORARY_REDIRECT, r);
    }
    unsigned status = 500;
    switch (err) {
    case ZRAFT_ENOTFOUND:
        status = 404;
        break;
    case ZRAFT_EINVAL:
    case ZRAFT_ENOTMEMBER:
        status = 400;
        break;
    case ZRAFT_ETOOBIG:
        status = 413;
        break;
    case ZRAFT_EBUSY:
    case ZRAFT_ETRANSFER:
        status = 409;
        break;
    case ZRAFT_ETIMEDOUT:
        status = 504;
        break;
    case ZRAFT_ESHUTDOWN:
    case ZRAFT_EUNAVAILABLE:
    case ZRAFT_ELEADERSHIP_LOST:
    case ZRAFT_EAGAIN:
        status = 503;
        break;
    case ZRAFT_ENOSPACE:
        status = 507;
        break;
    default:
        break;
    }
    return s_error(c, status, err, NULL);
}

static void s_unref_cb(void *cls)
{
    zraft_buf_unref(cls);
}

/* ---------------------------------------------------------- requests */

http_req *http_req_new(http_worker *w)
{
    http_req *rq = w->free_reqs;
    if (rq == NULL) {
        return calloc(1, sizeof(*rq));
    }
    w->free_reqs = rq->fnext;
    w->n_free--;
    memset(rq, 0, offsetof(http_req, ids));
    return rq;
}

void http_req_free(http_req *rq)
{
    zraft_buf_unref(rq->cmd);
    zraft_buf_unref(rq->op.val);
    free(rq->body);
    free(rq->raft_addr);
    free(rq->http_addr);
    free(rq->pubkey);
    http_worker *w = rq->w;
    if (w->n_free < HTTP_REQ_POOL) {
        rq->fnext = w->free_reqs;
        w->free_reqs = rq;
        w->n_free++;
    } else {
        free(rq);
    }
}

void http_req_pool_free(http_worker *w)
{
    while (w->free_reqs != NULL) {
        http_req *rq = w->free_reqs;
        w->free_reqs = rq->fnext;
        free(rq);
    }
    w->n_free = 0;
}

/* The escaped request path of a KV request (for redirects). */
static void s_kv_path(const http_req *rq, char *out, size_t cap)
{
    snprintf(out, cap, "/kv/");
    s_escape(rq->key, rq->klen, out + 4, cap - 4);
}

/* A CAS's expected value (PUT ...?if-match=V), or NULL. */
static const char *s_if_match(const http_req *rq)
{
    return rq->kind == K_PUT ? MHD_lookup_connection_value(
                                   rq->conn, MHD_GET_ARGUMENT_KIND, "if-match")
                             : NULL;
}

/* The query a redirect of this KV write keeps ("" when none). */
static void s_kv_query(const http_req *rq, char *out, size_t cap)
{
    const char *m = s_if_match(rq);
    out[0] = '\0';
    if (m != NULL && cap > 11) {
        snprintf(out, cap, "?if-match=");
        s_escape(m, strlen(m), out + 10, cap - 10);
    }
}

/* The answer to a finished write, read or admin call. */
static enum MHD_Result s_answer(http_req *rq)
{
    http_server *s = rq->w->s;
    struct MHD_Connection *c = rq->conn;
    int err = rq->op.err;
    if (rq->kind == K_ADMIN) {
        if (err != 0) {
            return s_node_error(s, c, err, rq->url, NULL);
        }
        return s_reply(c, 200, "application/json", "{\"ok\":true}", 11);
    }
    char path[3 * KV_MAX_KEY + 8];
    s_kv_path(rq, path, sizeof path);
    if (rq->kind != K_GET) {
        if (err != 0) {
            char query[3 * 4096 + 16];
            s_kv_query(rq, query, sizeof query);
            return s_node_error(s, c, err, path, query);
        }
        if (rq->op.mismatch) {
            return s_error(c, MHD_HTTP_PRECONDITION_FAILED, 0,
                           "the key does not hold the if-match value");
        }
        if (rq->w->no_content != NULL) {
            return MHD_queue_response(c, MHD_HTTP_NO_CONTENT,
                                      rq->w->no_content);
        }
        return s_reply(c, MHD_HTTP_NO_CONTENT, NULL, "", 0);
    }
    if (err == ZRAFT_ENOTFOUND) {
        return s_error(c, 404, err, "key not found");
    }
    if (err != 0) {
        return s_node_error(s, c, err, path,
                            rq->op.stale ? "?consistency=stale" : NULL);
    }
    /* The value goes out from the entry's own buffer (no copy). */
    zraft_buf *v = rq->op.val;
    rq->op.val = NULL;
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback_cls(
            rq->op.len, v->data + rq->op.off, s_unref_cb, v);
    if (r == NULL) {
        zraft_buf_unref(v);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/octet-stream");
    return s_queue(c, 200, r);
}

/* How long this request may wait for a leader. */
static uint32_t s_wait_ms(const http_req *rq)
{
    uint32_t ms = rq->w->s->b.leader_wait_ms;
    const char *t =
        MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "timeout");
    if (t != NULL) {
        char *end;
        unsigned long v = strtoul(t, &end, 10);
        if (*end == '\0' && end != t) {
            ms = v > 60000 ? 60000 : (uint32_t)v;
        }
    }
    return ms;
}

/* A write or read finished (result in rq->op): answer, or wait for a
 * leader first when the node knows none (as during an election), unless
 * the backend waited already (backend_waits: a stale read never gets
 * ENOTLEADER, so every ENOTLEADER there is after the node's wait). */
enum MHD_Result http_req_done(http_req *rq)
{
    http_server *s = rq->w->s;
    char leader[256];
    if (rq->op.err == ZRAFT_ENOTLEADER && rq->kind != K_ADMIN && !rq->waited &&
        !s->b.backend_waits && s->b.leader_known != NULL &&
        !atomic_load(&s->draining) &&
        s->b.leader_http(s->b.ctx, leader, sizeof leader) != 0) {
        uint32_t ms = s_wait_ms(rq);
        if (ms > 0) {
            return http_loop_wait_leader(rq, ms);
        }
    }
    return s_answer(rq);
}

static enum MHD_Result s_start_op(http_req *rq)
{
    http_server *s = rq->w->s;
    zraft_buf_unref(rq->op.val);
    rq->op.val = NULL;
    rq->op.err = 0;
    rq->op.mismatch = false;
    rq->op.off = rq->op.len = 0;
    atomic_store(&rq->phase, PH_CALLING);
    int rv;
    if (rq->kind == K_GET) {
        rv = s->b.read(s->b.ctx, &rq->op);
    } else {
        zraft_buf *cmd = zraft_buf_ref(rq->cmd); /* kept for a retry */
        rv = s->b.write(s->b.ctx, cmd, &rq->op);
        if (rv != 0) {
            zraft_buf_unref(cmd);
        }
    }
    return http_loop_called(rq, rv);
}

/* ------------------------------------------------------------ routes */

static enum MHD_Result s_kv(http_req *rq, const char *method)
{
    http_server *s = rq->w->s;
    struct MHD_Connection *c = rq->conn;
    if (rq->bad_key) {
        return s_error(c, 400, ZRAFT_EINVAL,
                       rq->klen ? "key longer than 1024 bytes" : "empty key");
    }
    const char *match = s_if_match(rq);
    if (match != NULL && strlen(match) > 4096) {
        return s_error(c, 400, ZRAFT_EINVAL, "if-match longer than 4096 bytes");
    }
    if (match != NULL && (rq->cmd == NULL || rq->got == rq->vlen)) {
        /* CAS: the value is in the PUT command or in the body; one more
         * copy, into the CAS record. */
        const char *v =
            rq->cmd ? (const char *)rq->cmd->data + KV_CMD_OVERHEAD + rq->klen
                    : rq->body;
        size_t vl = rq->cmd ? rq->vlen : rq->len;
        zraft_buf *cmd;
        int rv =
            kv_encode_cas(rq->key, rq->klen, match, strlen(match), v, vl, &cmd);
        if (rv != 0) {
            return s_node_error(s, c, rv, "", NULL);
        }
        zraft_buf_unref(rq->cmd);
        rq->cmd = cmd;
        free(rq->body);
        rq->body = NULL;
        return s_start_op(rq);
    }
    if (rq->kind == K_PUT || rq->kind == K_DEL) {
        if (rq->cmd == NULL) {
            int rv = kv_encode(rq->kind == K_PUT ? KV_OP_PUT : KV_OP_DEL,
                               rq->key, rq->klen, rq->body,
                               rq->kind == K_PUT ? rq->len : 0, &rq->cmd);
            if (rv != 0) {
                return s_node_error(s, c, rv, "", NULL);
            }
            free(rq->body);
            rq->body = NULL;
        } else if (rq->got != rq->vlen) {
            return s_error(c, 400, ZRAFT_EINVAL, "short body");
        }
        return s_start_op(rq);
    }
    if (rq->kind == K_GET) {
        const char *cons = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                       "consistency");
        if (cons != NULL) {
            if (!strcmp(cons, "stale")) {
                rq->op.stale = true;
            } else if (strcmp(cons, "linearizable") != 0) {
                return s_error(c, 400, ZRAFT_EINVAL,
                               "consistency must be stale or linearizable");
            }
        }
        return s_start_op(rq);
    }
    (void)method;
    return s_error(c, 405, 0, "method not allowed on /kv/{key}");
}

/* Parses an admin request's body into rq (on the serving thread); NULL,
 * or the message of a refusal (status in *status). */
static const char *s_parse_admin(http_req *rq, const char *what,
                                 unsigned *status)
{
    http_admin a;
    const char *bad = http_admin_parse(what, rq->body, rq->len, &a, status);
    if (bad != NULL) {
        return bad;
    }
    rq->admin = a.admin;
    rq->id = a.id;
    rq->n_ids = a.n_ids;
    memcpy(rq->ids, a.ids, a.n_ids * sizeof(a.ids[0]));
    rq->raft_addr = a.raft_addr; /* now rq's: http_req_free frees them */
    rq->http_addr = a.http_addr;
    rq->pubkey = a.pubkey;
    return NULL;
}

static enum MHD_Result s_cluster(http_req *rq, const char *method,
                                 const char *url)
{
    http_server *s = rq->w->s;
    struct MHD_Connection *c = rq->conn;
    const char *what = url + strlen("/cluster/");
    if (!strcmp(what, "status")) {
        if (strcmp(method, "GET") != 0) {
            return s_error(c, 405, 0, "use GET");
        }
        return s_json(c, 200, s->b.status_json(s->b.ctx));
    }
    if (strcmp(method, "POST") != 0) {
        return s_error(c, 405, 0, "use POST");
    }
    unsigned status;
    const char *bad = s_parse_admin(rq, what, &status);
    if (bad != NULL) {
        return s_error(c, status, status == 400 ? ZRAFT_EINVAL : 0, bad);
    }
    return http_loop_admin(rq);
}

/* The request's body is in: route it. */
static enum MHD_Result s_route(http_req *rq, const char *url,
                               const char *method)
{
    http_server *s = rq->w->s;
    struct MHD_Connection *c = rq->conn;
    if (atomic_load(&s->draining)) {
        return s_error_hdr(c, 503, ZRAFT_ESHUTDOWN, "shutting down",
                           "Connection", "close");
    }
    if (rq->deny != 0) {
        return http_sec_deny(c, rq->deny);
    }
    if (rq->too_big) {
        return s_error(c, 413, ZRAFT_ETOOBIG, "request body too large");
    }
    if (!strncmp(url, "/kv/", 4)) {
        return s_kv(rq, method);
    }
    if (!strncmp(url, "/cluster/", 9)) {
        return s_cluster(rq, method, url);
    }
    if (!strcmp(url, "/healthz")) {
        int err = s->b.health ? s->b.health(s->b.ctx) : 0;
        if (err != 0) {
            return s_error(c, 503, err, NULL);
        }
        return s_reply(c, 200, "text/plain", "ok\n", 3);
    }
    if (!strcmp(url, "/metrics")) {
        char *t = s->b.metrics_text(s->b.ctx);
        if (t == NULL) {
            return s_error(c, 500, ZRAFT_ENOMEM, NULL);
        }
        enum MHD_Result rv =
            s_reply_public(c, 200, "text/plain; version=0.0.4", t, strlen(t));
        free(t);
        return rv;
    }
    if (!strcmp(url, "/") || !strcmp(url, "/ui")) {
        return s_page(c, method);
    }
    return s_error(c, 404, 0, "no such endpoint");
}

/* First call of a request: what it is, and where its body goes. */
static http_req *s_request_new(http_worker *w, struct MHD_Connection *c,
                               const char *url, const char *method)
{
    http_req *rq = http_req_new(w);
    if (rq == NULL) {
        return NULL;
    }
    rq->w = w;
    rq->conn = c;
    rq->url = url;
    rq->op.complete = http_loop_complete;
    rq->deny = http_sec_check(w->s, c, url);
    if (rq->deny != 0 || strncmp(url, "/kv/", 4) != 0) {
        return rq;
    }
    if (!strcmp(method, "PUT")) {
        rq->kind = K_PUT;
    } else if (!strcmp(method, "DELETE")) {
        rq->kind = K_DEL;
    } else if (!strcmp(method, "GET")) {
        rq->kind = K_GET;
    }
    size_t klen = strlen(url + 4);
    if (klen == 0 || klen > KV_MAX_KEY) {
        rq->bad_key = true;
        rq->klen = klen;
        return rq;
    }
    memcpy(rq->key, url + 4, klen);
    rq->key[klen] = '\0';
    rq->klen = klen;
    rq->op.key = rq->key;
    rq->op.klen = klen;
    if (rq->kind != K_PUT) {
        return rq;
    }
    /* A PUT with a small Content-Length: receive the value straight into
     * the command buffer that becomes the log entry's payload. */
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl != NULL) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == 0 && *end == '\0' && end != cl && cl[0] != '-' &&
            n <= DIRECT_BODY_MAX && n <= w->s->o.max_body &&
            kv_encode(KV_OP_PUT, rq->key, klen, NULL, (size_t)n, &rq->cmd) ==
                0) {
            rq->vlen = (size_t)n;
        }
    }
    return rq;
}

static int s_body(http_req *rq, const char *data, size_t n)
{
    if (rq->too_big || rq->deny != 0) {
        return 0;
    }
    if (rq->cmd != NULL) {
        if (n > rq->vlen - rq->got) {
            rq->too_big = true; /* more than announced */
            return 0;
        }
        memcpy(rq->cmd->data + KV_CMD_OVERHEAD + rq->klen + rq->got, data, n);
        rq->got += n;
        return 0;
    }
    if (rq->len + n > rq->w->s->o.max_body) {
        rq->too_big = true;
        free(rq->body);
        rq->body = NULL;
        rq->len = rq->cap = 0;
        return 0;
    }
    if (rq->len + n > rq->cap) {
        size_t cap = rq->cap ? rq->cap : 1024;
        while (cap < rq->len + n) {
            cap *= 2;
        }
        char *nb = realloc(rq->body, cap);
        if (nb == NULL) {
            return -1;
        }
        rq->body = nb;
        rq->cap = cap;
    }
    memcpy(rq->body + rq->len, data, n);
    rq->len += n;
    return 0;
}

enum MHD_Result http_handle(void *cls, struct MHD_Connection *c,
                            const char *url, const char *method,
                            const char *version, const char *data,
                            size_t *data_size, void **con_cls)
{
    http_worker *w = cls;
    http_req *rq = *con_cls;
    (void)version;
    if (rq == NULL) {
        rq = s_request_new(w, c, url, method);
        *con_cls = rq;
        return rq ? MHD_YES : MHD_NO;
    }
    if (*data_size > 0) {
        int rv = s_body(rq, data, *data_size);
        *data_size = 0;
        return rv == 0 ? MHD_YES : MHD_NO;
    }
    int wait = rq->wait;
    rq->wait = W_NONE;
    switch (wait) {
    case W_OP:
        if (rq->timed_out) {
            return s_node_error(w->s, c, ZRAFT_ETIMEDOUT, url, NULL);
        }
        return http_req_done(rq);
    case W_LEADER:
        if (rq->leader == 1) {
            return s_start_op(rq); /* this node leads now: try here */
        }
        return s_answer(rq); /* ENOTLEADER: redirect, or 503 */
    default:
        return s_route(rq, url, method);
    }
}

void http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    http_req *rq = *con_cls;
    if (rq == NULL) {
        return;
    }
    *con_cls = NULL;
    rq->finished = true;
    if (!rq->outstanding) {
        http_req_free(rq);
    }
}
