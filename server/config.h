/* config.h - zraftd's configuration: defaults, then a JSON file, then
 * ZRAFT_* environment variables, then --flags (each key of the file is also
 * a flag with '_' written '-' and an environment variable in upper case).
 * Every value is validated; an invalid one gives one clear message. */
#ifndef ZRAFT_SERVER_CONFIG_H
#define ZRAFT_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv.h"
#include "zraft.h"

#define CONFIG_MAX_PEERS 64
#define CONFIG_ADDR_MAX  96
#define CONFIG_PATH_MAX  512
/* The largest value a PUT may carry: with the longest key it still fits in
 * one log entry (ZRAFT_MAX_PAYLOAD_BYTES), so every accepted write can be
 * replicated. */
#define CONFIG_MAX_BODY (ZRAFT_MAX_PAYLOAD_BYTES - KV_MAX_KEY - KV_CMD_OVERHEAD)

/* A CurveZMQ public key in Z85 and its NUL (as ZRAFT_KEY_MAX). */
#define CONFIG_KEY_MAX 41

typedef struct {
    uint64_t id;
    char raft_addr[CONFIG_ADDR_MAX];
    char key[CONFIG_KEY_MAX]; /* public key, "" if none given */
} config_peer;

typedef struct {
    uint64_t id;
    /* Take the id from this host's name, "<name>-<ordinal>": ordinal + 1
     * (a Kubernetes StatefulSet's pod zraft-2 is node 3), so that one pod
     * template serves every member. */
    bool id_from_hostname;
    /* The name id_from_hostname reads; empty: gethostname() (tests set it;
     * not a configuration key). */
    char hostname[256];
    char raft_addr[CONFIG_ADDR_MAX]; /* host:port peers reach us at */
    /* host:port the Raft port binds; empty: raft_addr's host (a name is
     * resolved once at start). "0.0.0.0:port" binds every interface. */
    char raft_listen[CONFIG_ADDR_MAX];
    char http_addr[CONFIG_ADDR_MAX]; /* host:port of the HTTP API */
    /* host:port the HTTP server binds; empty: http_addr. Set when the
     * address clients are redirected to is not one this host can bind
     * (a container name, a load balancer, NAT). */
    char http_listen[CONFIG_ADDR_MAX];
    char data_dir[CONFIG_PATH_MAX];
    /* "1=host:port,2=host:port", each member optionally with its public
     * key: "1=KEY@host:port" */
    char initial_cluster[8192];
    config_peer peers[CONFIG_MAX_PEERS]; /* parsed initial_cluster */
    uint32_t n_peers;
    char security[16];                   /* "none" or "curve" */
    char node_key[CONFIG_PATH_MAX];      /* secret key file ("": data_dir) */
    char peer_keys[4096];                /* "1=KEY,2=KEY": known members */
    config_peer known[CONFIG_MAX_PEERS]; /* parsed peer_keys (no addr) */
    uint32_t n_known;
    char tls_cert[CONFIG_PATH_MAX];         /* HTTPS: certificate (PEM) */
    char tls_key[CONFIG_PATH_MAX];          /* HTTPS: its private key (PEM) */
    char tls_client_ca[CONFIG_PATH_MAX];    /* mutual TLS: clients' CA */
    char api_token_file[CONFIG_PATH_MAX];   /* bearer token for /kv, RESP */
    char admin_token_file[CONFIG_PATH_MAX]; /* bearer token for /cluster */
    /* Never bootstrap from initial_cluster: an empty node waits to be
     * added (a member replaced with an empty volume, same id). */
    bool join;
    /* join, or with id_from_hostname an id that initial_cluster does not
     * list: n_peers is 0 and the node starts empty, to be added later. */
    bool joins_later;
    uint64_t cluster_id;
    uint32_t election_timeout_min_ms;
    uint32_t election_timeout_max_ms;
    uint32_t heartbeat_interval_ms;
    uint64_t snapshot_threshold;
    uint64_t snapshot_keep_entries;
    char storage[16]; /* "disk" or "memory" */
    bool fsync;
    char secret[128]; /* removed (was the HMAC secret): must stay empty */
    uint64_t max_body_bytes;  /* <= CONFIG_MAX_BODY: one write, one entry */
    uint32_t leader_wait_ms;  /* 0: two election timeouts */
    bool forward_writes;      /* HTTP on a follower: forward, not 307 */
    uint32_t http_threads;    /* HTTP serving (event-loop) threads */
    uint32_t max_connections; /* per front end */
    char
        resp_addr[CONFIG_ADDR_MAX]; /* RESP port as clients reach it; "": off */
    char resp_listen[CONFIG_ADDR_MAX]; /* bound; "": resp_addr */
    char log_level[16];                /* debug, info, warn, error */
    uint32_t wire_version; /* 0: newest (docs/wire.md, Versioning) */
} config;

/* Fills `c` with defaults. */
void config_defaults(config *c);
/* Applies a JSON document. On error returns -1 with a message in why. */
int config_load_json(config *c, const char *text, char *why, size_t whylen);
/* Applies ZRAFT_* variables from `envp` (NULL-terminated "K=V" strings). */
int config_load_env(config *c, char *const *envp, char *why, size_t whylen);
/* Applies --key value / --key=value flags; `--config FILE` must have been
 * handled by the caller (config_parse does it all). */
int config_load_flags(config *c, int argc, char **argv, char *why,
                      size_t whylen);
/* Sets c->id from `hostname` ("name-N", or its first label when it has
 * dots: N + 1). An id given too must be the same. Returns 0, or -1 with a
 * message in why (no ordinal, one too large, a disagreeing id). */
int config_id_from_hostname(config *c, const char *hostname, char *why,
                            size_t whylen);
/* Checks the whole configuration and parses initial_cluster; with
 * id_from_hostname, takes the id from gethostname() first. */
int config_validate(config *c, char *why, size_t whylen);
/* Everything: defaults, --config FILE (or ZRAFT_CONFIG), env, flags,
 * validation. Returns 0, 1 for --help (usage printed to `why`), -1. */
int config_parse(config *c, int argc, char **argv, char *const *envp, char *why,
                 size_t whylen);
/* The key peer_keys gives for member `id`, or NULL. */
const char *config_known_key(const config *c, uint64_t id);
/* Usage text listing every key. */
const char *config_usage(void);

#endif
