/* resp_cmd.c - the commands of zraftd's RESP port (see resp.h): what each
 * one asks of the node, and its replies, in Redis's words where Redis has
 * them. Runs on the RESP loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "resp_int.h"
#include "zraft.h"

typedef void (*cmd_fn)(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                       resp_req *r);

typedef struct {
    const char *name;
    int arity; /* argc exactly, or at least -arity */
    cmd_fn fn;
} cmd_def;

static void s_error(resp_req *r, const char *msg)
{
    r->cls = RC_LOCAL;
    r->reply.len = 0;
    resp_out_error(&r->reply, msg);
}

static void s_errorf(resp_req *r, const char *fmt, const char *a)
{
    char msg[256];
    snprintf(msg, sizeof msg, fmt, a);
    s_error(r, msg);
}

static bool s_is(const resp_cmd *cmd, size_t i, const char *word)
{
    return cmd->argl[i] == strlen(word) &&
           strncasecmp(cmd->argv[i], word, cmd->argl[i]) == 0;
}

/* A decimal int64 argument (Redis's rule, as kv.c's). */
static bool s_int_arg(const char *p, size_t n, int64_t *out)
{
    if (n == 0 || n > 20) {
        return false;
    }
    char tmp[24];
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    char *end;
    long long v = strtoll(tmp, &end, 10);
    if (*end != '\0' || tmp[0] == '+' || tmp[0] == ' ' ||
        (tmp[0] == '0' && n > 1) || (tmp[0] == '-' && tmp[1] == '0')) {
        return false;
    }
    char back[24];
    snprintf(back, sizeof back, "%lld", v);
    if (strcmp(back, tmp) != 0) { /* out of range: strtoll clamped */
        return false;
    }
    *out = (int64_t)v;
    return true;
}

/* Checks a key; false (and the error reply) when zraft cannot store it. */
static bool s_key_ok(resp_req *r, size_t n)
{
    if (n == 0) {
        s_error(r, "ERR empty keys are not supported by zraft");
        return false;
    }
    if (n > KV_MAX_KEY) {
        s_error(r, "ERR key too long (zraft keys are at most 1024 bytes)");
        return false;
    }
    return true;
}

static bool s_value_ok(resp_server *s, resp_req *r, size_t n)
{
    if (n > resp_max_value(s)) {
        s_error(r, "ERR value too large (max_body_bytes)");
        return false;
    }
    return true;
}

static void s_write(resp_req *r, int what, zraft_buf *cmd, const char *key,
                    size_t klen)
{
    r->cls = RC_WRITE;
    r->what = what;
    r->cmd = cmd;
    r->slot = resp_key_slot(key, klen);
}

/* RC_READ over keys argv[from..]. */
static void s_read(resp_req *r, int what, const resp_cmd *cmd, size_t from)
{
    size_t n = cmd->argc - from, bytes = 0;
    for (size_t i = from; i < cmd->argc; i++) {
        if (!s_key_ok(r, cmd->argl[i])) {
            return;
        }
        bytes += cmd->argl[i];
    }
    r->klen = malloc(n * sizeof(size_t));
    r->keys = malloc(n * sizeof(char *) + bytes);
    if (r->klen == NULL || r->keys == NULL) {
        s_error(r, "ERR out of memory");
        return;
    }
    char *o = (char *)(r->keys + n);
    for (size_t i = 0; i < n; i++) {
        r->keys[i] = o;
        r->klen[i] = cmd->argl[from + i];
        memcpy(o, cmd->argv[from + i], r->klen[i]);
        o += r->klen[i];
    }
    r->nkeys = n;
    r->cls = RC_READ;
    r->what = what;
    r->slot = resp_key_slot(cmd->argv[from], cmd->argl[from]);
}

/* ----------------------------------------------------- node commands */

static void c_get(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                  resp_req *r)
{
    (void)s;
    (void)c;
    s_read(r, RQ_GET, cmd, 1);
}

static void c_mget(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                   resp_req *r)
{
    (void)s;
    (void)c;
    s_read(r, RQ_MGET, cmd, 1);
}

static void c_exists(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                     resp_req *r)
{
    (void)s;
    (void)c;
    s_read(r, RQ_EXISTS, cmd, 1);
}

static void c_set(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                  resp_req *r)
{
    (void)c;
    if (cmd->argc > 3) {
        s_error(r, "ERR SET options (NX, XX, EX, PX, EXAT, PXAT, KEEPTTL, "
                   "GET) are not supported by zraft");
        return;
    }
    if (!s_key_ok(r, cmd->argl[1]) || !s_value_ok(s, r, cmd->argl[2])) {
        return;
    }
    zraft_buf *b;
    if (kv_encode(KV_OP_PUT, cmd->argv[1], cmd->argl[1], cmd->argv[2],
                  cmd->argl[2], &b) != 0) {
        s_error(r, "ERR out of memory");
        return;
    }
    s_write(r, RQ_SET, b, cmd->argv[1], cmd->argl[1]);
}

/* MSET k v ... and DEL k ...: one MULTI entry. */
static void s_multi(resp_server *s, resp_req *r, const resp_cmd *cmd, bool put)
{
    size_t step = put ? 2 : 1, n = (cmd->argc - 1) / step;
    if (n > 65535) {
        s_error(r, "ERR too many keys in one command (at most 65535)");
        return;
    }
    kv_item *its = malloc(n * sizeof(*its));
    if (its == NULL) {
        s_error(r, "ERR out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t a = 1 + i * step;
        if (!s_key_ok(r, cmd->argl[a]) ||
            (put && !s_value_ok(s, r, cmd->argl[a + 1]))) {
            free(its);
            return;
        }
        its[i] = (kv_item){put ? KV_OP_PUT : KV_OP_DEL, cmd->argv[a],
                           cmd->argl[a], put ? cmd->argv[a + 1] : NULL,
                           put ? cmd->argl[a + 1] : 0};
    }
    zraft_buf *b;
    int rv = kv_encode_multi(its, n, &b);
    free(its);
    if (rv != 0) {
        s_error(r, rv == ZRAFT_ETOOBIG ? "ERR command too large for one entry"
                                       : "ERR out of memory");
        return;
    }
    s_write(r, put ? RQ_MSET : RQ_DEL, b, cmd->argv[1], cmd->argl[1]);
}

static void c_mset(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                   resp_req *r)
{
    (void)c;
    if (cmd->argc % 2 == 0) {
        s_error(r, "ERR wrong number of arguments for 'mset' command");
        return;
    }
    s_multi(s, r, cmd, true);
}

static void c_del(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                  resp_req *r)
{
    (void)c;
    s_multi(s, r, cmd, false);
}

static void s_incr(resp_req *r, const resp_cmd *cmd, int64_t by)
{
    if (!s_key_ok(r, cmd->argl[1])) {
        return;
    }
    zraft_buf *b;
    if (kv_encode_incr(cmd->argv[1], cmd->argl[1], by, &b) != 0) {
        s_error(r, "ERR out of memory");
        return;
    }
    s_write(r, RQ_INCR, b, cmd->argv[1], cmd->argl[1]);
}

static void c_incr(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                   resp_req *r)
{
    (void)s;
    (void)c;
    s_incr(r, cmd, s_is(cmd, 0, "decr") ? -1 : 1);
}

static void c_incrby(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                     resp_req *r)
{
    (void)s;
    (void)c;
    int64_t by;
    if (!s_int_arg(cmd->argv[2], cmd->argl[2], &by) ||
        (s_is(cmd, 0, "decrby") && by == INT64_MIN)) {
        s_error(r, "ERR value is not an integer or out of range");
        return;
    }
    s_incr(r, cmd, s_is(cmd, 0, "decrby") ? -by : by);
}

/* ---------------------------------------------------- local commands */

static void c_ping(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                   resp_req *r)
{
    (void)s;
    (void)c;
    if (cmd->argc > 2) {
        s_error(r, "ERR wrong number of arguments for 'ping' command");
    } else if (cmd->argc == 2) {
        resp_out_bulk(&r->reply, cmd->argv[1], cmd->argl[1]);
    } else {
        resp_out_simple(&r->reply, "PONG");
    }
}

static void c_echo(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                   resp_req *r)
{
    (void)s;
    (void)c;
    resp_out_bulk(&r->reply, cmd->argv[1], cmd->argl[1]);
}

static void c_select(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                     resp_req *r)
{
    (void)s;
    (void)c;
    if (cmd->argl[1] == 1 && cmd->argv[1][0] == '0') {
        resp_out_simple(&r->reply, "OK");
    } else {
        s_error(r, "ERR DB index is out of range (zraft has database 0)");
    }
}

static void c_quit(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                   resp_req *r)
{
    (void)s;
    (void)c;
    (void)cmd;
    resp_out_simple(&r->reply, "OK");
    r->quit = true;
}

/* Enough for redis-cli (COMMAND DOCS at start) and client libraries that
 * look commands up: an empty table. */
static void c_command(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                      resp_req *r)
{
    (void)s;
    (void)c;
    if (cmd->argc >= 2 && s_is(cmd, 1, "count")) {
        resp_out_int(&r->reply, 0);
    } else {
        resp_out_array(&r->reply, 0);
    }
}

/* CONFIG GET: the two parameters redis-benchmark asks for at start ("save":
 * zraft takes no RDB snapshots of its own, "appendonly": its log is not an
 * AOF), as Redis answers them; nothing else is configurable here. */
static void c_config(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                     resp_req *r)
{
    (void)s;
    (void)c;
    if (!s_is(cmd, 1, "get")) {
        s_error(r, "ERR CONFIG is not supported by zraft (except GET)");
        return;
    }
    size_t n = 0;
    for (size_t i = 2; i < cmd->argc; i++) {
        n += s_is(cmd, i, "save") || s_is(cmd, i, "appendonly");
    }
    resp_out_array(&r->reply, 2 * n);
    for (size_t i = 2; i < cmd->argc; i++) {
        if (s_is(cmd, i, "save")) {
            resp_out_bulk(&r->reply, "save", 4);
            resp_out_bulk(&r->reply, "", 0);
        } else if (s_is(cmd, i, "appendonly")) {
            resp_out_bulk(&r->reply, "appendonly", 10);
            resp_out_bulk(&r->reply, "no", 2);
        }
    }
}

static void c_info(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                   resp_req *r)
{
    (void)c;
    (void)cmd;
    const resp_backend *b = resp_backend_of(s);
    char *t = b->info(b->ctx);
    if (t == NULL) {
        s_error(r, "ERR out of memory");
        return;
    }
    resp_out_bulk(&r->reply, t, strlen(t));
    free(t);
}

static void c_dbsize(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                     resp_req *r)
{
    (void)c;
    (void)cmd;
    resp_out_int(&r->reply, (int64_t)kv_count(resp_backend_of(s)->store));
}

static void c_readonly(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                       resp_req *r)
{
    (void)s;
    resp_conn_set_readonly(c, s_is(cmd, 0, "readonly"));
    resp_out_simple(&r->reply, "OK");
}

static void c_client(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                     resp_req *r)
{
    (void)s;
    (void)c;
    if (s_is(cmd, 1, "setname") || s_is(cmd, 1, "setinfo")) {
        resp_out_simple(&r->reply, "OK");
    } else {
        s_error(r, "ERR CLIENT is not supported by zraft (except SETNAME)");
    }
}

/* AUTH <token> | AUTH <user> <token>: the only user is "default" (Redis
 * 6's form). Answers in Redis's words. */
static void c_auth(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                   resp_req *r)
{
    const auth_token *t = resp_token(s);
    if (t == NULL || t->token == NULL) {
        s_error(r, "ERR AUTH <password> called without any password "
                   "configured for the default user. Are you sure your "
                   "configuration is correct?");
        return;
    }
    if (cmd->argc > 3) {
        s_error(r, "ERR syntax error");
        return;
    }
    size_t i = cmd->argc - 1;
    bool user_ok = cmd->argc == 2 || s_is(cmd, 1, "default");
    /* The token is compared even for a wrong user: same time either way. */
    bool ok = auth_token_equal(t, cmd->argv[i], cmd->argl[i]) && user_ok;
    resp_conn_set_authed(c, ok);
    if (!ok) {
        s_error(r, "WRONGPASS invalid username-password pair or user is "
                   "disabled.");
        return;
    }
    resp_out_simple(&r->reply, "OK");
}

static const cmd_def commands[] = {
    {"get", 2, c_get},           {"set", -3, c_set},
    {"del", -2, c_del},          {"exists", -2, c_exists},
    {"mget", -2, c_mget},        {"mset", -3, c_mset},
    {"incr", 2, c_incr},         {"decr", 2, c_incr},
    {"incrby", 3, c_incrby},     {"decrby", 3, c_incrby},
    {"ping", -1, c_ping},        {"echo", 2, c_echo},
    {"select", 2, c_select},     {"quit", -1, c_quit},
    {"command", -1, c_command},  {"config", -2, c_config},
    {"info", -1, c_info},        {"dbsize", 1, c_dbsize},
    {"readonly", 1, c_readonly}, {"readwrite", 1, c_readonly},
    {"client", -2, c_client},    {"auth", -2, c_auth},
};

void resp_cmd_prepare(resp_server *s, resp_conn *c, const resp_cmd *cmd,
                      resp_req *r)
{
    r->cls = RC_LOCAL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const cmd_def *d = &commands[i];
        if (!s_is(cmd, 0, d->name)) {
            continue;
        }
        if (!resp_conn_authed(c) && d->fn != c_auth && d->fn != c_quit) {
            s_error(r, "NOAUTH Authentication required.");
            return;
        }
        if ((d->arity > 0 && cmd->argc != (size_t)d->arity) ||
            (d->arity < 0 && cmd->argc < (size_t)-d->arity)) {
            s_errorf(r, "ERR wrong number of arguments for '%s' command",
                     d->name);
            return;
        }
        d->fn(s, c, cmd, r);
        return;
    }
    if (!resp_conn_authed(c)) {
        s_error(r, "NOAUTH Authentication required.");
        return;
    }
    /* Redis's words: -ERR unknown command 'x', with args beginning
     * with: 'a' 'b' */
    char msg[256];
    int n =
        snprintf(msg, sizeof msg,
                 "ERR unknown command '%.*s', with args "
                 "beginning with: ",
                 (int)(cmd->argl[0] > 64 ? 64 : cmd->argl[0]), cmd->argv[0]);
    for (size_t i = 1; i < cmd->argc && n > 0 && (size_t)n < 200; i++) {
        n += snprintf(msg + n, sizeof msg - (size_t)n, "'%.*s' ",
                      (int)(cmd->argl[i] > 32 ? 32 : cmd->argl[i]),
                      cmd->argv[i]);
    }
    s_error(r, msg);
}

/* ----------------------------------------------------------- replies */

void resp_cmd_write_reply(resp_req *r, const zraft_buf *result)
{
    r->reply.len = 0;
    switch (r->what) {
    case RQ_DEL: {
        uint64_t n = 0;
        if (kv_multi_result(result, &n) != 0) {
            resp_out_error(&r->reply, "ERR no answer from the state machine");
        } else {
            resp_out_int(&r->reply, (int64_t)n);
        }
        break;
    }
    case RQ_INCR: {
        int64_t v = 0;
        int out = kv_incr_result(result, &v);
        if (out == KV_INCR_OK) {
            resp_out_int(&r->reply, v);
        } else if (out == KV_INCR_NOT_INTEGER) {
            resp_out_error(&r->reply,
                           "ERR value is not an integer or out of range");
        } else if (out == KV_INCR_OVERFLOW) {
            resp_out_error(&r->reply,
                           "ERR increment or decrement would overflow");
        } else {
            resp_out_error(&r->reply, "ERR no answer from the state machine");
        }
        break;
    }
    default:
        resp_out_simple(&r->reply, "OK");
        break;
    }
}

void resp_cmd_read_reply(resp_server *s, resp_req *r)
{
    kv *store = resp_backend_of(s)->store;
    r->reply.len = 0;
    if (r->what == RQ_MGET) {
        resp_out_array(&r->reply, r->nkeys);
    }
    int64_t found = 0;
    for (size_t i = 0; i < r->nkeys; i++) {
        zraft_buf *v;
        size_t off, len;
        if (kv_get(store, r->keys[i], r->klen[i], &v, &off, &len) != 0) {
            if (r->what != RQ_EXISTS) {
                resp_out_nil(&r->reply);
            }
            continue;
        }
        found++;
        if (r->what != RQ_EXISTS) {
            resp_out_bulk(&r->reply, v->data + off, len);
        }
        zraft_buf_unref(v);
    }
    if (r->what == RQ_EXISTS) {
        resp_out_int(&r->reply, found);
    }
}

void resp_cmd_error_reply(resp_req *r, int err)
{
    char msg[160];
    if (err == ZRAFT_ETIMEDOUT) {
        snprintf(msg, sizeof msg,
                 "ERR timed out waiting for the cluster (a write may still "
                 "take effect)");
    } else if (err == ZRAFT_ELEADERSHIP_LOST) {
        snprintf(msg, sizeof msg,
                 "ERR leadership lost before the write committed (it may "
                 "still take effect)");
    } else {
        snprintf(msg, sizeof msg, "ERR zraft: %s (%s)", zraft_strerror(err),
                 zraft_err_name(err));
    }
    r->reply.len = 0;
    resp_out_error(&r->reply, msg);
}
