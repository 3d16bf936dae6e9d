/* fuzz_config.c - libFuzzer target for zraftd's configuration parsers
 * (server/config.c): the JSON config file, the ZRAFT_* environment and the
 * --flags, each followed by config_validate(). All three read bytes an
 * operator (or a mounted file, or an orchestrator's template) supplies.
 *
 * The input is used three ways, each on a fresh default configuration:
 *  - as the text of a config file (up to its first NUL);
 *  - split at '\n' into environment entries ("ZRAFT_ID=3"; others ignored);
 *  - split at '\n' into argv after "zraftd" (--key value, --key=value).
 * For every input:
 *  - nothing crashes, leaks or reads out of bounds (ASan, UBSan);
 *  - a refusal comes with a message: non-empty, NUL-terminated, one line;
 *  - a configuration that config_validate() accepts keeps its promises:
 *    a non-zero id, election_timeout_min_ms < election_timeout_max_ms,
 *    heartbeat_interval_ms < election_timeout_min_ms, at most
 *    CONFIG_MAX_PEERS members with distinct non-zero ids, each with a
 *    host:port and a key of 0 or 40 characters, this node among the
 *    initial members unless it joins later, no key without "curve", and
 *    every string field NUL-terminated within its array.
 * Any violated property aborts, which libFuzzer reports as a crash.
 * Run it with scripts/fuzz.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PARTS 64

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_config: property violated: %s\n", what);
        abort();
    }
}

static void check_why(const char *why, size_t cap)
{
    size_t n = strnlen(why, cap);
    check(n < cap, "the refusal is NUL-terminated");
    check(n > 0, "a refusal says why");
    check(memchr(why, '\n', n) == NULL, "the refusal is one line");
}

#define TERMINATED(c, f) (memchr((c)->f, '\0', sizeof((c)->f)) != NULL)

static void check_members(const config_peer *m, uint32_t n, bool with_addr)
{
    check(n <= CONFIG_MAX_PEERS, "at most CONFIG_MAX_PEERS members");
    for (uint32_t i = 0; i < n; i++) {
        check(m[i].id != 0, "member ids are not zero");
        check(TERMINATED(&m[i], raft_addr) && TERMINATED(&m[i], key),
              "member strings are terminated");
        size_t kl = strlen(m[i].key);
        check(kl == 0 || kl == CONFIG_KEY_MAX - 1, "a key is 40 characters");
        if (with_addr) {
            check(strchr(m[i].raft_addr, ':') != NULL,
                  "a member has host:port");
        }
        for (uint32_t j = 0; j < i; j++) {
            check(m[j].id != m[i].id, "member ids are distinct");
        }
    }
}

/* What an accepted configuration promises zraftd. */
static void check_valid(const config *c)
{
    check(c->id != 0, "id is not zero");
    check(c->election_timeout_min_ms < c->election_timeout_max_ms,
          "election time-out range is not empty");
    check(c->heartbeat_interval_ms < c->election_timeout_min_ms,
          "heartbeats come faster than elections");
    check(TERMINATED(c, raft_addr) && TERMINATED(c, http_addr) &&
              TERMINATED(c, data_dir) && TERMINATED(c, initial_cluster) &&
              TERMINATED(c, security) && TERMINATED(c, storage) &&
              TERMINATED(c, log_level) && TERMINATED(c, resp_addr) &&
              TERMINATED(c, peer_keys) && TERMINATED(c, node_key),
          "strings are terminated");
    check(strcmp(c->storage, "disk") == 0 || strcmp(c->storage, "memory") == 0,
          "storage is disk or memory");
    check(strcmp(c->storage, "memory") == 0 || c->data_dir[0] != '\0',
          "disk storage has a data_dir");
    check(c->secret[0] == '\0', "no HMAC secret");
    check_members(c->peers, c->n_peers, true);
    check_members(c->known, c->n_known, false);
    bool curve = strcmp(c->security, "curve") == 0;
    check(curve || strcmp(c->security, "none") == 0, "security is known");
    check(curve || c->n_known == 0, "peer_keys only with curve");
    bool self = c->n_peers == 0;
    for (uint32_t i = 0; i < c->n_peers; i++) {
        self |= c->peers[i].id == c->id;
        check(curve || c->peers[i].key[0] == '\0', "keys only with curve");
    }
    check(self, "this node is an initial member");
    check(!c->joins_later || c->n_peers == 0, "a joining node bootstraps none");
    check((c->tls_cert[0] == '\0') == (c->tls_key[0] == '\0'),
          "tls_cert and tls_key go together");
}

static void s_validate(config *c, int loaded, char *why, size_t cap)
{
    if (loaded != 0) {
        check_why(why, cap);
        return;
    }
    /* id_from_hostname reads this name rather than the machine's. */
    snprintf(c->hostname, sizeof c->hostname, "zraft-2");
    why[0] = '\0';
    if (config_validate(c, why, cap) == 0) {
        check_valid(c);
    } else {
        check_why(why, cap);
    }
}

/* Splits text at '\n' into at most MAX_PARTS NUL-terminated parts. */
static int s_split(char *text, char **parts, int first)
{
    int n = first;
    char *p = text;
    while (n < MAX_PARTS && p != NULL) {
        parts[n++] = p;
        p = strchr(p, '\n');
        if (p != NULL) {
            *p++ = '\0';
        }
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384) {
        return 0;
    }
    char *text = malloc(size + 1);
    check(text != NULL, "malloc");
    memcpy(text, data, size);
    text[size] = '\0';
    config *c = malloc(sizeof *c);
    check(c != NULL, "malloc");
    char why[256];

    config_defaults(c);
    why[0] = '\0';
    s_validate(c, config_load_json(c, text, why, sizeof why), why, sizeof why);

    char *copy = strdup(text);
    check(copy != NULL, "strdup");
    char *parts[MAX_PARTS + 1];
    int n = s_split(copy, parts, 0);
    parts[n] = NULL;
    config_defaults(c);
    why[0] = '\0';
    s_validate(c, config_load_env(c, parts, why, sizeof why), why, sizeof why);
    free(copy);

    copy = strdup(text);
    check(copy != NULL, "strdup");
    parts[0] = "zraftd";
    n = s_split(copy, parts, 1);
    parts[n] = NULL;
    config_defaults(c);
    why[0] = '\0';
    s_validate(c, config_load_flags(c, n, parts, why, sizeof why), why,
               sizeof why);
    free(copy);

    free(c);
    free(text);
    return 0;
}
