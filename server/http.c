/* http.c - zraftd's HTTP/JSON API on libmicrohttpd (see http.h).
 *
 * Threads: libmicrohttpd runs one thread per connection; a handler reads the
 * whole body (bounded by max_body), then calls the backend, which blocks
 * until the node answers. Nothing here holds a lock across a backend call.
 * Every failure becomes a status code and a JSON error; no input is trusted
 * (sizes, JSON, ids, keys). */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "kv.h"

struct http_server {
    struct MHD_Daemon *d;
    http_backend b;
    size_t max_body;
    uint16_t port;
};

typedef struct {
    char *body;
    size_t len, cap;
    bool too_big;
} request;

static enum MHD_Result s_reply(struct MHD_Connection *c, unsigned status,
                               const char *ctype, const void *data, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }
    if (ctype != NULL) {
        MHD_add_response_header(r, "Content-Type", ctype);
    }
    enum MHD_Result rv = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rv;
}

static enum MHD_Result s_error_hdr(struct MHD_Connection *c, unsigned status,
                                   int err, const char *msg, const char *hdr,
                                   const char *val);

static enum MHD_Result s_error(struct MHD_Connection *c, unsigned status,
                               int err, const char *msg)
{
    return s_error_hdr(c, status, err, msg, NULL, NULL);
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
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (hdr != NULL) {
        MHD_add_response_header(r, hdr, val);
    }
    enum MHD_Result rv = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rv;
}

static enum MHD_Result s_json(struct MHD_Connection *c, unsigned status,
                              char *owned)
{
    if (owned == NULL) {
        return s_error(c, 500, ZRAFT_ENOMEM, NULL);
    }
    enum MHD_Result rv =
        s_reply(c, status, "application/json", owned, strlen(owned));
    free(owned);
    return rv;
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
        char loc[4096];
        snprintf(loc, sizeof loc, "http://%s%s%s", leader, path,
                 query ? query : "");
        struct MHD_Response *r =
            MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (r == NULL) {
            return MHD_NO;
        }
        MHD_add_response_header(r, "Location", loc);
        enum MHD_Result rv =
            MHD_queue_response(c, MHD_HTTP_TEMPORARY_REDIRECT, r);
        MHD_destroy_response(r);
        return rv;
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

/* A call answered ENOTLEADER while no leader (or no leader address) is
 * known, as during an election or right after one: wait for a leader, up to
 * the bound. True when this node leads now (the caller tries again here);
 * otherwise s_node_error redirects to the leader or answers 503. */
static bool s_wait_leader(http_server *s, struct MHD_Connection *c, int err)
{
    char leader[256];
    if (err != ZRAFT_ENOTLEADER || s->b.wait_leader == NULL ||
        s->b.leader_http(s->b.ctx, leader, sizeof leader) == 0) {
        return false;
    }
    uint32_t ms = s->b.leader_wait_ms;
    const char *t =
        MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "timeout");
    if (t != NULL) {
        char *end;
        unsigned long v = strtoul(t, &end, 10);
        if (*end == '\0' && end != t) {
            ms = v > 60000 ? 60000 : (uint32_t)v;
        }
    }
    return ms > 0 && s->b.wait_leader(s->b.ctx, ms) == 1;
}

static enum MHD_Result s_kv(http_server *s, struct MHD_Connection *c,
                            const char *method, const char *url, request *rq)
{
    const char *key = url + 4; /* after "/kv/" */
    size_t klen = strlen(key);
    if (klen == 0 || klen > KV_MAX_KEY) {
        return s_error(c, 400, ZRAFT_EINVAL,
                       klen ? "key longer than 1024 bytes" : "empty key");
    }
    char path[3 * KV_MAX_KEY + 8] = "/kv/";
    s_escape(key, klen, path + 4, sizeof path - 4);
    if (!strcmp(method, "PUT") || !strcmp(method, "DELETE")) {
        bool put = method[0] == 'P';
        int rv = s->b.write(s->b.ctx, put ? KV_OP_PUT : KV_OP_DEL, key, klen,
                            rq->body, put ? rq->len : 0);
        if (s_wait_leader(s, c, rv)) {
            rv = s->b.write(s->b.ctx, put ? KV_OP_PUT : KV_OP_DEL, key, klen,
                            rq->body, put ? rq->len : 0);
        }
        if (rv != 0) {
            return s_node_error(s, c, rv, path, NULL);
        }
        return s_reply(c, MHD_HTTP_NO_CONTENT, NULL, "", 0);
    }
    if (!strcmp(method, "GET")) {
        const char *cons = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                       "consistency");
        bool stale = false;
        if (cons != NULL) {
            if (!strcmp(cons, "stale")) {
                stale = true;
            } else if (strcmp(cons, "linearizable") != 0) {
                return s_error(c, 400, ZRAFT_EINVAL,
                               "consistency must be stale or linearizable");
            }
        }
        zraft_buf *v = NULL;
        size_t off = 0, len = 0;
        int rv = s->b.read(s->b.ctx, stale, key, klen, &v, &off, &len);
        if (s_wait_leader(s, c, rv)) {
            rv = s->b.read(s->b.ctx, stale, key, klen, &v, &off, &len);
        }
        if (rv == ZRAFT_ENOTFOUND) {
            return s_error(c, 404, rv, "key not found");
        }
        if (rv != 0) {
            return s_node_error(s, c, rv, path,
                                stale ? "?consistency=stale" : NULL);
        }
        enum MHD_Result r =
            s_reply(c, 200, "application/octet-stream", v->data + off, len);
        zraft_buf_unref(v);
        return r;
    }
    return s_error(c, 405, 0, "method not allowed on /kv/{key}");
}

static cJSON *s_body_json(request *rq)
{
    if (rq->len == 0) {
        return NULL;
    }
    return cJSON_ParseWithLength(rq->body, rq->len);
}

static bool s_get_id(cJSON *o, const char *name, uint64_t *out)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 9.0e15 ||
        v->valuedouble != (double)(uint64_t)v->valuedouble) {
        return false;
    }
    *out = (uint64_t)v->valuedouble;
    return true;
}

static enum MHD_Result s_cluster(http_server *s, struct MHD_Connection *c,
                                 const char *method, const char *url,
                                 request *rq)
{
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
    int rv;
    if (!strcmp(what, "snapshot")) {
        rv = s->b.snapshot(s->b.ctx);
    } else {
        cJSON *o = s_body_json(rq);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            return s_error(c, 400, ZRAFT_EINVAL, "body must be a JSON object");
        }
        uint64_t id;
        if (!strcmp(what, "learners")) {
            cJSON *ra = cJSON_GetObjectItemCaseSensitive(o, "raft_addr");
            cJSON *ha = cJSON_GetObjectItemCaseSensitive(o, "http_addr");
            if (!s_get_id(o, "id", &id) || !cJSON_IsString(ra) ||
                (ha != NULL && !cJSON_IsString(ha))) {
                cJSON_Delete(o);
                return s_error(c, 400, ZRAFT_EINVAL,
                               "need {\"id\":N,\"raft_addr\":\"host:port\","
                               "\"http_addr\":\"host:port\"}");
            }
            rv = s->b.add_learner(s->b.ctx, id, ra->valuestring,
                                  ha ? ha->valuestring : "");
        } else if (!strcmp(what, "membership")) {
            cJSON *vs = cJSON_GetObjectItemCaseSensitive(o, "voters");
            uint64_t ids[ZRAFT_MAX_MEMBERS];
            size_t n = 0;
            bool ok = cJSON_IsArray(vs) && cJSON_GetArraySize(vs) > 0 &&
                      cJSON_GetArraySize(vs) <= ZRAFT_MAX_MEMBERS;
            cJSON *it = NULL;
            cJSON_ArrayForEach(it, vs)
            {
                if (!ok) {
                    break;
                }
                if (!cJSON_IsNumber(it) || it->valuedouble < 1 ||
                    it->valuedouble > 9.0e15 ||
                    it->valuedouble != (double)(uint64_t)it->valuedouble) {
                    ok = false;
                    break;
                }
                ids[n++] = (uint64_t)it->valuedouble;
            }
            if (!ok) {
                cJSON_Delete(o);
                return s_error(c, 400, ZRAFT_EINVAL,
                               "need {\"voters\":[id,...]} with 1..64 ids");
            }
            rv = s->b.change_membership(s->b.ctx, ids, n);
        } else if (!strcmp(what, "transfer-leader")) {
            if (!s_get_id(o, "to", &id)) {
                cJSON_Delete(o);
                return s_error(c, 400, ZRAFT_EINVAL, "need {\"to\":N}");
            }
            rv = s->b.transfer_leader(s->b.ctx, id);
        } else {
            cJSON_Delete(o);
            return s_error(c, 404, 0, "no such endpoint");
        }
        cJSON_Delete(o);
    }
    if (rv != 0) {
        return s_node_error(s, c, rv, url, NULL);
    }
    return s_reply(c, 200, "application/json", "{\"ok\":true}", 11);
}

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *c,
                                const char *url, const char *method,
                                const char *version, const char *data,
                                size_t *data_size, void **con_cls)
{
    http_server *s = cls;
    request *rq = *con_cls;
    (void)version;
    if (rq == NULL) {
        rq = calloc(1, sizeof(*rq));
        if (rq == NULL) {
            return MHD_NO;
        }
        *con_cls = rq;
        return MHD_YES;
    }
    if (*data_size > 0) {
        if (!rq->too_big) {
            if (rq->len + *data_size > s->max_body) {
                rq->too_big = true;
                free(rq->body);
                rq->body = NULL;
                rq->len = rq->cap = 0;
            } else {
                if (rq->len + *data_size > rq->cap) {
                    size_t cap = rq->cap ? rq->cap : 1024;
                    while (cap < rq->len + *data_size) {
                        cap *= 2;
                    }
                    char *nb = realloc(rq->body, cap);
                    if (nb == NULL) {
                        return MHD_NO;
                    }
                    rq->body = nb;
                    rq->cap = cap;
                }
                memcpy(rq->body + rq->len, data, *data_size);
                rq->len += *data_size;
            }
        }
        *data_size = 0;
        return MHD_YES;
    }
    if (rq->too_big) {
        return s_error(c, 413, ZRAFT_ETOOBIG, "request body too large");
    }
    if (!strncmp(url, "/kv/", 4)) {
        return s_kv(s, c, method, url, rq);
    }
    if (!strncmp(url, "/cluster/", 9)) {
        return s_cluster(s, c, method, url, rq);
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
            s_reply(c, 200, "text/plain; version=0.0.4", t, strlen(t));
        free(t);
        return rv;
    }
    return s_error(c, 404, 0, "no such endpoint");
}

static void s_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    request *rq = *con_cls;
    if (rq != NULL) {
        free(rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

http_server *http_start(const char *addr, const http_backend *b,
                        size_t max_body, char *why, size_t whylen)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof host) {
        snprintf(why, whylen, "http_addr '%s' must be host:port", addr);
        return NULL;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host[0] ? host : "0.0.0.0", colon + 1, &hints, &res);
    if (gai != 0) {
        snprintf(why, whylen, "http_addr '%s': %s", addr, gai_strerror(gai));
        return NULL;
    }
    http_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        freeaddrinfo(res);
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    s->b = *b;
    s->max_body = max_body;
    struct sockaddr_in sa;
    memcpy(&sa, res->ai_addr, sizeof sa);
    freeaddrinfo(res);
    s->d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
            MHD_USE_ITC,
        ntohs(sa.sin_port), NULL, NULL, s_handle, s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, s_completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)2048, MHD_OPTION_END);
    if (s->d == NULL) {
        snprintf(why, whylen, "cannot listen on %s (in use or not local?)",
                 addr);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : ntohs(sa.sin_port);
    return s;
}

uint16_t http_port(const http_server *s)
{
    return s->port;
}

void http_stop(http_server **sp)
{
    if (sp == NULL || *sp == NULL) {
        return;
    }
    http_server *s = *sp;
    MHD_stop_daemon(s->d);
    free(s);
    *sp = NULL;
}
