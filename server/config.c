/* config.c - zraftd configuration from JSON (cJSON), environment and flags.
 *
 * One table lists every key with its type and bounds; the three sources all
 * go through s_set(), so a key means the same thing wherever it is given. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

typedef enum { K_U64, K_U32, K_STR, K_BOOL } ktype;

typedef struct {
    const char *name;
    ktype type;
    size_t off;
    size_t size; /* K_STR: capacity */
    uint64_t min, max;
    const char *help;
} key;

#define U64(n, lo, hi, h)                                                      \
    {                                                                          \
#n, K_U64, offsetof(config, n), 8, lo, hi, h                           \
    }
#define U32(n, lo, hi, h)                                                      \
    {                                                                          \
#n, K_U32, offsetof(config, n), 4, lo, hi, h                           \
    }
#define STR(n, h)                                                              \
    {                                                                          \
#n, K_STR, offsetof(config, n), sizeof(((config *)0)->n), 0, 0, h      \
    }
#define BOOL(n, h)                                                             \
    {                                                                          \
#n, K_BOOL, offsetof(config, n), 1, 0, 1, h                            \
    }

static const key keys[] = {
    U64(id, 1, UINT64_MAX, "this node's id (non-zero)"),
    BOOL(id_from_hostname,
         "id = N + 1 from this host's name name-N (a StatefulSet pod: "
         "zraft-2 is id 3); a bare --id-from-hostname means true"),
    STR(raft_addr, "host:port for Raft traffic, as peers reach it"),
    STR(raft_listen, "host:port the Raft port binds (default: raft_addr; "
                     "0.0.0.0:port for every interface)"),
    STR(http_addr, "host:port of the HTTP API, as clients reach it"),
    STR(http_listen, "host:port the HTTP server binds (default: http_addr)"),
    STR(data_dir, "directory for the log, metadata and snapshots"),
    STR(initial_cluster,
        "bootstrap members: \"1=host:port,2=host:port\"; with CURVE each "
        "with its public key: \"1=KEY@host:port\""),
    STR(security, "peer transport: \"none\" (plain TCP) or \"curve\" "
                  "(CurveZMQ: encrypted, only configured keys admitted)"),
    STR(node_key, "CURVE: this node's secret key file (zraftd keygen; "
                  "default: data_dir/node.key)"),
    STR(peer_keys, "CURVE: members' public keys \"1=KEY,2=KEY\", admitted "
                   "while this node waits to be added (and for members "
                   "listed without a key)"),
    STR(tls_cert, "HTTPS: certificate file (PEM); with tls_key, the API "
                  "speaks only HTTPS"),
    STR(tls_key, "HTTPS: private key file (PEM)"),
    STR(tls_client_ca,
        "HTTPS: CA file (PEM); clients must present a certificate it signed"),
    STR(api_token_file, "file holding the bearer token for /kv and the RESP "
                        "port (or env ZRAFT_API_TOKEN); empty: open"),
    STR(admin_token_file, "file holding the bearer token for /cluster/* (or "
                          "env ZRAFT_ADMIN_TOKEN); empty: open"),
    BOOL(join, "never bootstrap: start empty and wait to be added, even when "
               "initial_cluster lists this id (a member whose data was lost)"),
    U64(cluster_id, 1, UINT64_MAX, "cluster id carried in every frame"),
    U32(election_timeout_min_ms, 10, 600000, "election timeout, lower bound"),
    U32(election_timeout_max_ms, 11, 600000, "election timeout, upper bound"),
    U32(heartbeat_interval_ms, 1, 60000, "leader heartbeat interval"),
    U64(snapshot_threshold, 0, UINT64_MAX, "snapshot every N entries (0: off)"),
    U64(snapshot_keep_entries, 0, UINT64_MAX, "entries kept below a snapshot"),
    STR(storage, "\"disk\" or \"memory\""),
    BOOL(fsync, "fdatasync the log (disable only for tests)"),
    STR(secret, "removed: peers authenticate with CurveZMQ (security, "
                "docs/security.md); must be empty"),
    U64(max_body_bytes, 1, CONFIG_MAX_BODY,
        "largest accepted HTTP body (at most 64 MiB - 65 KiB: one entry)"),
    U32(leader_wait_ms, 0, 600000,
        "how long a request waits for a leader (0: two election timeouts)"),
    BOOL(forward_writes,
         "HTTP on a follower forwards writes and linearizable reads to the "
         "leader over the Raft transport instead of answering 307 (RESP "
         "always forwards)"),
    U32(http_threads, 1, 64,
        "HTTP serving threads (event loops; each serves many connections)"),
    U32(max_connections, 1, 1000000,
        "open connections per front end (idle ones cost no thread)"),
    STR(resp_addr, "host:port of the Redis-protocol (RESP2) port, as clients "
                   "reach it (default: off)"),
    STR(resp_listen, "host:port the RESP port binds (default: resp_addr; "
                     "the port is off unless resp_addr is set)"),
    STR(log_level, "debug, info, warn or error"),
    U32(wire_version, 0, 4,
        "wire format version sent (0: newest; while upgrading a cluster, "
        "the version of the oldest nodes: 2 turns forwarding off, 3 sends "
        "every frame as one copied part)"),
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static int s_err(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    /* Messages quote the offending value: keep them one printable line
     * whatever bytes the value held (a JSON string may hold "\n"). */
    for (size_t i = 0; n > 0 && why[i] != '\0'; i++) {
        if ((unsigned char)why[i] < 0x20 || why[i] == 0x7f) {
            why[i] = '?';
        }
    }
    return -1;
}

void config_defaults(config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->raft_addr, sizeof c->raft_addr, "127.0.0.1:7001");
    snprintf(c->http_addr, sizeof c->http_addr, "127.0.0.1:8001");
    snprintf(c->data_dir, sizeof c->data_dir, "./zraft-data");
    c->cluster_id = 1;
    c->election_timeout_min_ms = 300;
    c->election_timeout_max_ms = 600;
    c->heartbeat_interval_ms = 75;
    c->snapshot_threshold = 100000;
    c->snapshot_keep_entries = 10000;
    snprintf(c->storage, sizeof c->storage, "disk");
    c->fsync = true;
    c->max_body_bytes = 1u << 20;
    c->http_threads = 1;
    c->max_connections = 16384;
    snprintf(c->log_level, sizeof c->log_level, "info");
    snprintf(c->security, sizeof c->security, "none");
}

static const key *s_key(const char *name, size_t len)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strlen(keys[i].name) == len &&
            strncmp(keys[i].name, name, len) == 0) {
            return &keys[i];
        }
    }
    return NULL;
}

/* Sets key `k` from its text form. `src` names the source for errors. */
static int s_set(config *c, const key *k, const char *val, const char *src,
                 char *why, size_t whylen)
{
    char *p = (char *)c + k->off;
    switch (k->type) {
    case K_STR:
        if (strlen(val) >= k->size) {
            return s_err(why, whylen, "%s: %s is too long (max %zu bytes)", src,
                         k->name, k->size - 1);
        }
        memcpy(p, val, strlen(val) + 1);
        return 0;
    case K_BOOL:
        if (!strcmp(val, "true") || !strcmp(val, "1") || !strcmp(val, "yes")) {
            *(bool *)p = true;
        } else if (!strcmp(val, "false") || !strcmp(val, "0") ||
                   !strcmp(val, "no")) {
            *(bool *)p = false;
        } else {
            return s_err(why, whylen, "%s: %s must be true or false, not '%s'",
                         src, k->name, val);
        }
        return 0;
    case K_U64:
    case K_U32: {
        char *end;
        errno = 0;
        if (*val == '-' || !isdigit((unsigned char)*val)) {
            return s_err(why, whylen, "%s: %s must be a number, not '%s'", src,
                         k->name, val);
        }
        unsigned long long v = strtoull(val, &end, 10);
        if (errno != 0 || *end != '\0' || v < k->min || v > k->max) {
            return s_err(why, whylen, "%s: %s must be in %llu..%llu, not '%s'",
                         src, k->name, (unsigned long long)k->min,
                         (unsigned long long)k->max, val);
        }
        if (k->type == K_U64) {
            *(uint64_t *)p = v;
        } else {
            *(uint32_t *)p = (uint32_t)v;
        }
        return 0;
    }
    }
    return -1;
}

int config_load_json(config *c, const char *text, char *why, size_t whylen)
{
    cJSON *root = cJSON_Parse(text);
    if (root == NULL) {
        const char *at = cJSON_GetErrorPtr();
        return s_err(why, whylen, "config file: invalid JSON near '%.20s'",
                     at ? at : "?");
    }
    int rv = 0;
    if (!cJSON_IsObject(root)) {
        rv = s_err(why, whylen, "config file: the top level must be an object");
    }
    for (cJSON *it = root->child; rv == 0 && it != NULL; it = it->next) {
        const key *k = s_key(it->string, strlen(it->string));
        char buf[1100];
        if (k == NULL) {
            rv =
                s_err(why, whylen, "config file: unknown key '%s'", it->string);
            break;
        }
        if (k->type == K_STR && cJSON_IsString(it)) {
            rv = s_set(c, k, it->valuestring, "config file", why, whylen);
        } else if (k->type == K_BOOL && cJSON_IsBool(it)) {
            rv = s_set(c, k, cJSON_IsTrue(it) ? "true" : "false", "config file",
                       why, whylen);
        } else if ((k->type == K_U64 || k->type == K_U32) &&
                   cJSON_IsNumber(it)) {
            double d = it->valuedouble;
            if (d < 0 || d > 9.0e15 || d != (double)(uint64_t)d) {
                rv = s_err(why, whylen,
                           "config file: %s must be a non-negative integer",
                           k->name);
                break;
            }
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)d);
            rv = s_set(c, k, buf, "config file", why, whylen);
        } else if ((k->type == K_U64 || k->type == K_U32) &&
                   cJSON_IsString(it)) {
            rv = s_set(c, k, it->valuestring, "config file", why, whylen);
        } else {
            rv = s_err(why, whylen, "config file: %s has the wrong type",
                       k->name);
        }
    }
    cJSON_Delete(root);
    return rv;
}

int config_load_env(config *c, char *const *envp, char *why, size_t whylen)
{
    for (; envp != NULL && *envp != NULL; envp++) {
        const char *e = *envp;
        if (strncmp(e, "ZRAFT_", 6) != 0) {
            continue;
        }
        const char *eq = strchr(e, '=');
        if (eq == NULL) {
            continue;
        }
        char name[64];
        size_t n = (size_t)(eq - e) - 6;
        if (n == 0 || n >= sizeof name) {
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            name[i] = (char)tolower((unsigned char)e[6 + i]);
        }
        name[n] = '\0';
        if (!strcmp(name, "config")) {
            continue;
        }
        const key *k = s_key(name, n);
        if (k == NULL) {
            continue; /* other ZRAFT_ variables (e.g. test knobs) are fine */
        }
        char src[80];
        snprintf(src, sizeof src, "environment ZRAFT_%.60s", e + 6);
        src[strcspn(src, "=")] = '\0';
        if (s_set(c, k, eq + 1, src, why, whylen) != 0) {
            return -1;
        }
    }
    return 0;
}

int config_load_flags(config *c, int argc, char **argv, char *why,
                      size_t whylen)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            return s_err(why, whylen, "unexpected argument '%s'", a);
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        char name[64];
        if (n == 0 || n >= sizeof name) {
            return s_err(why, whylen, "unknown flag '%s'", argv[i]);
        }
        for (size_t j = 0; j < n; j++) {
            name[j] = a[j] == '-' ? '_' : a[j];
        }
        name[n] = '\0';
        if (!eq && !strcmp(name, "help")) {
            continue;
        }
        const key *k = s_key(name, n);
        const char *val;
        if (eq) {
            val = eq + 1;
        } else if (k != NULL && k->type == K_BOOL &&
                   (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2))) {
            val = "true"; /* a bare boolean flag: --id-from-hostname */
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            return s_err(why, whylen, "flag --%s needs a value", a);
        }
        if (!strcmp(name, "config")) {
            continue; /* handled by config_parse */
        }
        if (k == NULL) {
            return s_err(why, whylen, "unknown flag '--%.*s'", (int)n, a);
        }
        char src[80];
        snprintf(src, sizeof src, "flag --%.*s", (int)n, a);
        if (s_set(c, k, val, src, why, whylen) != 0) {
            return -1;
        }
    }
    return 0;
}

static int s_check_addr(const char *what, const char *a, char *why,
                        size_t whylen)
{
    const char *colon = strrchr(a, ':');
    if (colon == NULL || colon == a || colon[1] == '\0') {
        return s_err(why, whylen, "%s '%s' must be host:port", what, a);
    }
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || port == 0 || port > 65535) {
        return s_err(why, whylen, "%s '%s' has an invalid port", what, a);
    }
    return 0;
}

int config_id_from_hostname(config *c, const char *hostname, char *why,
                            size_t whylen)
{
    /* The first label: a pod's name, also when given as an FQDN. */
    size_t len = strcspn(hostname, ".");
    const char *dash = NULL;
    for (size_t i = 0; i < len; i++) {
        if (hostname[i] == '-') {
            dash = hostname + i;
        }
    }
    const char *digits = dash ? dash + 1 : NULL;
    size_t nd = digits ? len - (size_t)(digits - hostname) : 0;
    bool ok = digits != NULL && dash != hostname && nd > 0 && nd <= 9;
    for (size_t i = 0; ok && i < nd; i++) {
        ok = isdigit((unsigned char)digits[i]) != 0;
    }
    if (!ok) {
        return s_err(why, whylen,
                     "id_from_hostname: host name '%.*s' does not end in "
                     "-<ordinal> of at most 9 digits (a StatefulSet pod's "
                     "name: zraft-2 is id 3); set id instead",
                     (int)len, hostname);
    }
    uint64_t id = strtoull(digits, NULL, 10) + 1;
    if (c->id != 0 && c->id != id) {
        return s_err(why, whylen,
                     "id %llu disagrees with id_from_hostname ('%.*s' is id "
                     "%llu); give one of them",
                     (unsigned long long)c->id, (int)len, hostname,
                     (unsigned long long)id);
    }
    c->id = id;
    return 0;
}

/* Z85 text of a 32-byte key: ZRAFT_KEY_LEN characters of its alphabet
 * (ZeroMQ RFC 32); the node checks it decodes when it starts. */
static bool s_key_text(const char *k, size_t len)
{
    static const char z85[] =
        "0123456789abcdefghijklmnopqrstuvwxyz"
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    if (len != CONFIG_KEY_MAX - 1) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (k[i] == '\0' || strchr(z85, k[i]) == NULL) {
            return false;
        }
    }
    return true;
}

const char *config_known_key(const config *c, uint64_t id)
{
    for (uint32_t i = 0; i < c->n_known; i++) {
        if (c->known[i].id == id) {
            return c->known[i].key;
        }
    }
    return NULL;
}

/* Parses "id=[KEY@]host:port,..." (with_addr) or "id=KEY,..." into
 * out[0..*n). A key is the 40 Z85 characters before '@' (an address never
 * has 40 characters then '@'). */
static int s_parse_members(const char *list, bool with_addr, config_peer *out,
                           uint32_t *count, char *why, size_t whylen)
{
    const char *what = with_addr ? "initial_cluster" : "peer_keys";
    *count = 0;
    const char *p = list;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char item[CONFIG_ADDR_MAX + CONFIG_KEY_MAX + 32];
        if (n == 0 || n >= sizeof item) {
            return s_err(why, whylen, "%s: bad member '%.*s'", what, (int)n, p);
        }
        memcpy(item, p, n);
        item[n] = '\0';
        char *eq = strchr(item, '=');
        if (eq == NULL) {
            return s_err(why, whylen, "%s: '%s' must be %s", what, item,
                         with_addr ? "id=host:port or id=KEY@host:port"
                                   : "id=KEY");
        }
        *eq = '\0';
        char *e2;
        errno = 0;
        unsigned long long id = strtoull(item, &e2, 10);
        if (errno != 0 || *e2 != '\0' || id == 0 || item[0] == '-') {
            return s_err(why, whylen, "%s: bad id '%s'", what, item);
        }
        const char *rest = eq + 1, *key = NULL;
        size_t klen = CONFIG_KEY_MAX - 1;
        if (!with_addr) {
            key = rest;
            if (!s_key_text(key, strlen(key))) {
                return s_err(why, whylen,
                             "%s: the key of %llu is not 40 Z85 characters",
                             what, id);
            }
        } else if (strlen(rest) > klen && rest[klen] == '@') {
            key = rest;
            rest += klen + 1;
            if (!s_key_text(key, klen)) {
                return s_err(why, whylen,
                             "%s: the key of %llu is not 40 Z85 characters",
                             what, id);
            }
        }
        if (with_addr) {
            if (s_check_addr("initial_cluster address", rest, why, whylen) !=
                0) {
                return -1;
            }
            if (strlen(rest) >= CONFIG_ADDR_MAX) {
                return s_err(why, whylen, "%s: address too long", what);
            }
        }
        if (*count == CONFIG_MAX_PEERS) {
            return s_err(why, whylen, "%s: more than %d members", what,
                         CONFIG_MAX_PEERS);
        }
        for (uint32_t i = 0; i < *count; i++) {
            if (out[i].id == id) {
                return s_err(why, whylen, "%s: id %llu twice", what, id);
            }
        }
        config_peer *m = &out[*count];
        memset(m, 0, sizeof(*m));
        m->id = id;
        if (with_addr) {
            snprintf(m->raft_addr, CONFIG_ADDR_MAX, "%s", rest);
        }
        if (key != NULL) {
            memcpy(m->key, key, klen);
            m->key[klen] = '\0';
        }
        (*count)++;
        p += n;
        if (*p == ',') {
            p++;
        }
    }
    return 0;
}

int config_validate(config *c, char *why, size_t whylen)
{
    if (c->id_from_hostname) {
        char host[sizeof c->hostname];
        if (c->hostname[0] != '\0') {
            memcpy(host, c->hostname, sizeof host);
        } else if (gethostname(host, sizeof host) != 0) {
            return s_err(why, whylen, "id_from_hostname: gethostname: %s",
                         strerror(errno));
        }
        host[sizeof host - 1] = '\0';
        if (config_id_from_hostname(c, host, why, whylen) != 0) {
            return -1;
        }
    }
    if (c->id == 0) {
        return s_err(why, whylen,
                     "id is required (a non-zero number, or id_from_hostname)");
    }
    if (s_check_addr("raft_addr", c->raft_addr, why, whylen) != 0 ||
        s_check_addr("http_addr", c->http_addr, why, whylen) != 0 ||
        (c->http_listen[0] != '\0' &&
         s_check_addr("http_listen", c->http_listen, why, whylen) != 0) ||
        (c->raft_listen[0] != '\0' &&
         s_check_addr("raft_listen", c->raft_listen, why, whylen) != 0) ||
        (c->resp_addr[0] != '\0' &&
         s_check_addr("resp_addr", c->resp_addr, why, whylen) != 0) ||
        (c->resp_listen[0] != '\0' &&
         s_check_addr("resp_listen", c->resp_listen, why, whylen) != 0)) {
        return -1;
    }
    if (c->election_timeout_max_ms <= c->election_timeout_min_ms) {
        return s_err(why, whylen,
                     "election_timeout_max_ms (%u) must exceed "
                     "election_timeout_min_ms (%u)",
                     c->election_timeout_max_ms, c->election_timeout_min_ms);
    }
    if (c->heartbeat_interval_ms >= c->election_timeout_min_ms) {
        return s_err(why, whylen,
                     "heartbeat_interval_ms (%u) must be below "
                     "election_timeout_min_ms (%u)",
                     c->heartbeat_interval_ms, c->election_timeout_min_ms);
    }
    if (strcmp(c->storage, "disk") != 0 && strcmp(c->storage, "memory") != 0) {
        return s_err(why, whylen, "storage must be \"disk\" or \"memory\"");
    }
    if (strcmp(c->storage, "disk") == 0 && c->data_dir[0] == '\0') {
        return s_err(why, whylen, "data_dir is required with disk storage");
    }
    const char *lv[] = {"debug", "info", "warn", "error"};
    bool ok = false;
    for (size_t i = 0; i < 4; i++) {
        ok |= strcmp(c->log_level, lv[i]) == 0;
    }
    if (!ok) {
        return s_err(why, whylen,
                     "log_level must be debug, info, warn or error");
    }
    c->joins_later = false;
    if (s_parse_members(c->initial_cluster, true, c->peers, &c->n_peers, why,
                        whylen) != 0 ||
        s_parse_members(c->peer_keys, false, c->known, &c->n_known, why,
                        whylen) != 0) {
        return -1;
    }
    if (c->secret[0] != '\0') {
        return s_err(why, whylen,
                     "secret (the frame HMAC) was removed: use security "
                     "\"curve\" with keys (docs/security.md)");
    }
    if (strcmp(c->security, "none") != 0 && strcmp(c->security, "curve") != 0) {
        return s_err(why, whylen, "security must be \"none\" or \"curve\"");
    }
    bool curve = strcmp(c->security, "curve") == 0;
    for (uint32_t i = 0; i < c->n_peers; i++) {
        const char *k = config_known_key(c, c->peers[i].id);
        if (k != NULL && c->peers[i].key[0] != '\0' &&
            strcmp(k, c->peers[i].key) != 0) {
            return s_err(why, whylen,
                         "member %llu has one key in initial_cluster and "
                         "another in peer_keys",
                         (unsigned long long)c->peers[i].id);
        }
        if (!curve && c->peers[i].key[0] != '\0') {
            return s_err(why, whylen,
                         "initial_cluster gives keys but security is \"none\" "
                         "(set security to \"curve\")");
        }
        if (curve && c->peers[i].key[0] == '\0' &&
            config_known_key(c, c->peers[i].id) == NULL) {
            return s_err(why, whylen,
                         "security \"curve\": initial_cluster member %llu has "
                         "no key (id=KEY@host:port, or peer_keys)",
                         (unsigned long long)c->peers[i].id);
        }
    }
    if (!curve && c->n_known > 0) {
        return s_err(why, whylen, "peer_keys needs security \"curve\"");
    }
    if ((c->tls_cert[0] != '\0') != (c->tls_key[0] != '\0')) {
        return s_err(why, whylen, "tls_cert and tls_key go together");
    }
    if (c->tls_client_ca[0] != '\0' && c->tls_cert[0] == '\0') {
        return s_err(why, whylen, "tls_client_ca needs tls_cert and tls_key");
    }
    if (c->n_peers > 0) {
        bool self = false;
        for (uint32_t i = 0; i < c->n_peers; i++) {
            self |= c->peers[i].id == c->id;
        }
        if (c->join) {
            /* Told to join: wait to be added by the running cluster. */
            c->joins_later = true;
        } else if (!self && c->id_from_hostname) {
            /* One pod template for every member: a pod beyond the initial
             * members (a StatefulSet scaled out) starts empty and waits to
             * be added, as a node with no initial_cluster does. */
            c->joins_later = true;
        } else if (!self) {
            return s_err(why, whylen,
                         "initial_cluster does not include this node's id %llu",
                         (unsigned long long)c->id);
        }
    }
    if (c->joins_later) {
        /* Not a bootstrap list, but the members' keys are still the ones
         * to admit while this node waits to be added (as peer_keys). */
        for (uint32_t i = 0; i < c->n_peers; i++) {
            if (c->peers[i].key[0] == '\0' ||
                config_known_key(c, c->peers[i].id) != NULL) {
                continue;
            }
            if (c->n_known == CONFIG_MAX_PEERS) {
                return s_err(why, whylen,
                             "initial_cluster and peer_keys name more than %d "
                             "members",
                             CONFIG_MAX_PEERS);
            }
            c->known[c->n_known++] = c->peers[i];
        }
        c->n_peers = 0;
    }
    return 0;
}

const char *config_usage(void)
{
    static char buf[8192];
    if (buf[0] != '\0') {
        return buf;
    }
    size_t off = (size_t)snprintf(
        buf, sizeof buf,
        "usage: zraftd [--config FILE] [--key value ...]\n"
        "       zraftd keygen [--dir DIR] [--force]   (CURVE keypair: "
        "docs/security.md)\n"
        "Every key may be given in the JSON file, as --key-name, or as the\n"
        "environment variable ZRAFT_KEY_NAME (flags win over the environment,\n"
        "which wins over the file).\n\nkeys:\n");
    for (size_t i = 0; i < N_KEYS && off < sizeof buf; i++) {
        off += (size_t)snprintf(buf + off, sizeof buf - off, "  %-26s %s\n",
                                keys[i].name, keys[i].help);
    }
    return buf;
}

static char *s_read_file(const char *path, char *why, size_t whylen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        s_err(why, whylen, "config file %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) {
            break;
        }
        if (len + 1 == cap) {
            if (cap >= (1u << 20)) {
                free(buf);
                buf = NULL;
                s_err(why, whylen, "config file %s: larger than 1 MiB", path);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf != NULL) {
        buf[len] = '\0';
    }
    return buf;
}

int config_parse(config *c, int argc, char **argv, char *const *envp, char *why,
                 size_t whylen)
{
    config_defaults(c);
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            snprintf(why, whylen, "%s", config_usage());
            return 1;
        }
        if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            file = argv[i + 1];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            file = argv[i] + 9;
        }
    }
    for (char *const *e = envp; file == NULL && e && *e; e++) {
        if (!strncmp(*e, "ZRAFT_CONFIG=", 13)) {
            file = *e + 13;
        }
    }
    if (file != NULL) {
        char *text = s_read_file(file, why, whylen);
        if (text == NULL) {
            return -1;
        }
        int rv = config_load_json(c, text, why, whylen);
        free(text);
        if (rv != 0) {
            return -1;
        }
    }
    if (config_load_env(c, envp, why, whylen) != 0 ||
        config_load_flags(c, argc, argv, why, whylen) != 0) {
        return -1;
    }
    return config_validate(c, why, whylen);
}
