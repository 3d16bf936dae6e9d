/* test_config.c - zraftd configuration: precedence (file < env < flags),
 * validation and one clear message per mistake. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char why[512];

Test(config, flags_override_env_override_file)
{
    config c;
    config_defaults(&c);
    cr_assert_eq(config_load_json(&c,
                                  "{\"id\":1,\"http_addr\":\"h:1\","
                                  "\"raft_addr\":\"r:1\",\"fsync\":false}",
                                  why, sizeof why),
                 0, "%s", why);
    char *env[] = {"ZRAFT_HTTP_ADDR=h:2", "ZRAFT_ID=2", "PATH=/bin", NULL};
    cr_assert_eq(config_load_env(&c, env, why, sizeof why), 0, "%s", why);
    char *argv[] = {"zraftd", "--id", "3", "--election-timeout-min-ms=200",
                    NULL};
    cr_assert_eq(config_load_flags(&c, 4, argv, why, sizeof why), 0, "%s", why);
    cr_assert_eq(c.id, 3);
    cr_assert_str_eq(c.http_addr, "h:2");
    cr_assert_str_eq(c.raft_addr, "r:1");
    cr_assert_eq(c.election_timeout_min_ms, 200);
    cr_assert_eq(c.fsync, false);
}

Test(config, initial_cluster_is_parsed)
{
    config c;
    config_defaults(&c);
    c.id = 2;
    snprintf(c.initial_cluster, sizeof c.initial_cluster,
             "1=10.0.0.1:7001,2=node2:7002,3=node3:7003");
    cr_assert_eq(config_validate(&c, why, sizeof why), 0, "%s", why);
    cr_assert_eq(c.n_peers, 3);
    cr_assert_eq(c.peers[1].id, 2);
    cr_assert_str_eq(c.peers[1].raft_addr, "node2:7002");
}

static void expect_error(const char *json, const char *needle)
{
    config c;
    config_defaults(&c);
    int rv = config_load_json(&c, json, why, sizeof why);
    if (rv == 0) {
        rv = config_validate(&c, why, sizeof why);
    }
    cr_assert_eq(rv, -1, "accepted %s", json);
    cr_assert(strstr(why, needle) != NULL, "message '%s' lacks '%s'", why,
              needle);
}

Test(config, mistakes_get_one_clear_message)
{
    expect_error("{", "invalid JSON");
    expect_error("[]", "top level");
    expect_error("{\"idd\":1}", "unknown key 'idd'");
    expect_error("{\"id\":\"x\"}", "must be a number");
    expect_error("{\"id\":-1}", "non-negative");
    expect_error("{\"id\":0}", "id must be in");
    expect_error("{\"fsync\":3}", "wrong type");
    expect_error("{}", "id is required");
    expect_error("{\"id\":1,\"raft_addr\":\"nocolon\"}", "host:port");
    expect_error("{\"id\":1,\"http_addr\":\"h:99999\"}", "invalid port");
    expect_error("{\"id\":1,\"http_listen\":\"0.0.0.0:0\"}",
                 "http_listen '0.0.0.0:0' has an invalid port");
    expect_error("{\"id\":1,\"election_timeout_min_ms\":500,"
                 "\"election_timeout_max_ms\":400}",
                 "must exceed");
    expect_error("{\"id\":1,\"heartbeat_interval_ms\":400}", "must be below");
    expect_error("{\"id\":1,\"storage\":\"tape\"}", "storage must be");
    expect_error("{\"id\":1,\"initial_cluster\":\"1=a:1,1=b:2\"}", "twice");
    expect_error("{\"id\":1,\"initial_cluster\":\"2=a:1\"}",
                 "does not include");
    expect_error("{\"id\":1,\"initial_cluster\":\"x=a:1\"}", "bad id");
    /* A body that could not be one log entry (frames are 64 MiB). */
    expect_error("{\"id\":1,\"max_body_bytes\":67108864}",
                 "max_body_bytes must be in");
    expect_error("{\"id\":1,\"resp_addr\":\"6379\"}", "resp_addr");
    expect_error("{\"id\":1,\"http_threads\":0}", "http_threads must be in");
    expect_error("{\"id\":1,\"max_connections\":0}",
                 "max_connections must be in");
    expect_error("{\"id\":1,\"raft_listen\":\"0.0.0.0\"}",
                 "raft_listen '0.0.0.0' must be host:port");
}

Test(config, unknown_flag_and_missing_value_are_errors)
{
    config c;
    config_defaults(&c);
    char *a1[] = {"zraftd", "--bogus", "1", NULL};
    cr_assert_eq(config_load_flags(&c, 3, a1, why, sizeof why), -1);
    cr_assert(strstr(why, "unknown flag") != NULL, "%s", why);
    char *a2[] = {"zraftd", "--id", NULL};
    cr_assert_eq(config_load_flags(&c, 2, a2, why, sizeof why), -1);
    cr_assert(strstr(why, "needs a value") != NULL, "%s", why);
}

Test(config, parse_reads_the_file_named_by_flag)
{
    char path[] = "/tmp/zraft-config-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"id\":7,\"initial_cluster\":\"7=127.0.0.1:7007\"}", f);
    fclose(f);
    config c;
    char *argv[] = {"zraftd",      "--config",  path,
                    "--http-addr", "0.0.0.0:9", NULL};
    char *env[] = {NULL};
    int rv = config_parse(&c, 5, argv, env, why, sizeof why);
    remove(path);
    cr_assert_eq(rv, 0, "%s", why);
    cr_assert_eq(c.id, 7);
    cr_assert_eq(c.n_peers, 1);
    cr_assert_str_eq(c.http_addr, "0.0.0.0:9");
}

Test(config, http_listen_is_optional_and_separate_from_http_addr)
{
    config c;
    config_defaults(&c);
    c.id = 1;
    cr_assert_eq(config_validate(&c, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(c.http_listen, "", "unset: zraftd binds http_addr");
    char *env[] = {"ZRAFT_HTTP_ADDR=node1:8001",
                   "ZRAFT_HTTP_LISTEN=0.0.0.0:8001", NULL};
    cr_assert_eq(config_load_env(&c, env, why, sizeof why), 0, "%s", why);
    cr_assert_eq(config_validate(&c, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(c.http_addr, "node1:8001");
    cr_assert_str_eq(c.http_listen, "0.0.0.0:8001");
}

/* The id from a StatefulSet pod's name: one template for every member. */
static void expect_host_id(const char *host, uint64_t want)
{
    config c;
    config_defaults(&c);
    cr_assert_eq(config_id_from_hostname(&c, host, why, sizeof why), 0,
                 "%s: %s", host, why);
    cr_assert_eq(c.id, want, "%s: id %llu, want %llu", host,
                 (unsigned long long)c.id, (unsigned long long)want);
}

static void expect_host_error(const char *host, const char *needle)
{
    config c;
    config_defaults(&c);
    cr_assert_eq(config_id_from_hostname(&c, host, why, sizeof why), -1,
                 "accepted host name '%s'", host);
    cr_assert_eq(c.id, 0, "%s: id set on error", host);
    cr_assert(strstr(why, needle) != NULL, "message '%s' lacks '%s'", why,
              needle);
}

Test(config, id_from_hostname_is_the_ordinal_plus_one)
{
    expect_host_id("zraft-0", 1);
    expect_host_id("zraft-2", 3);
    expect_host_id("my-kv-store-10", 11);
    expect_host_id("zraft-2.zraft.default.svc.cluster.local", 3);
    expect_host_id("zraft-999999999", 1000000000);
}

Test(config, id_from_hostname_refuses_names_without_an_ordinal)
{
    const char *need = "does not end in -<ordinal>";
    expect_host_error("zraft", need);
    expect_host_error("zraft-", need);
    expect_host_error("zraft-x2", need);
    expect_host_error("zraft-2a", need);
    expect_host_error("-2", need);
    expect_host_error("", need);
    expect_host_error("zraft.-2", need);         /* the ordinal is in label 1 */
    expect_host_error("zraft-1234567890", need); /* 10 digits */
}

Test(config, id_from_hostname_and_an_explicit_id_must_agree)
{
    config c;
    config_defaults(&c);
    c.id = 3;
    cr_assert_eq(config_id_from_hostname(&c, "zraft-2", why, sizeof why), 0,
                 "%s", why);
    cr_assert_eq(c.id, 3);
    c.id = 5;
    cr_assert_eq(config_id_from_hostname(&c, "zraft-2", why, sizeof why), -1);
    cr_assert(strstr(why, "id 5 disagrees") != NULL, "%s", why);
    cr_assert_eq(c.id, 5, "a refused name changed the id");
}

Test(config, id_from_hostname_is_a_key_and_a_bare_flag)
{
    config c;
    config_defaults(&c);
    char *env[] = {"ZRAFT_ID_FROM_HOSTNAME=true", NULL};
    cr_assert_eq(config_load_env(&c, env, why, sizeof why), 0, "%s", why);
    cr_assert(c.id_from_hostname);
    config_defaults(&c);
    /* Bare, before another flag and at the end; an explicit value too. */
    char *a1[] = {"zraftd", "--id-from-hostname", "--log-level", "warn", NULL};
    cr_assert_eq(config_load_flags(&c, 4, a1, why, sizeof why), 0, "%s", why);
    cr_assert(c.id_from_hostname);
    cr_assert_str_eq(c.log_level, "warn");
    config_defaults(&c);
    char *a2[] = {"zraftd", "--id-from-hostname", NULL};
    cr_assert_eq(config_load_flags(&c, 2, a2, why, sizeof why), 0, "%s", why);
    cr_assert(c.id_from_hostname);
    char *a3[] = {"zraftd", "--id-from-hostname", "false", NULL};
    cr_assert_eq(config_load_flags(&c, 3, a3, why, sizeof why), 0, "%s", why);
    cr_assert(!c.id_from_hostname);
}

Test(config, validate_takes_the_id_from_this_hosts_name)
{
    char host[256];
    cr_assert_eq(gethostname(host, sizeof host), 0);
    config want;
    config_defaults(&want);
    int rv_want = config_id_from_hostname(&want, host, why, sizeof why);
    config c;
    config_defaults(&c);
    c.id_from_hostname = true;
    int rv = config_validate(&c, why, sizeof why);
    if (rv_want == 0) { /* this machine's name has an ordinal */
        cr_assert_eq(rv, 0, "%s", why);
        cr_assert_eq(c.id, want.id);
    } else {
        cr_assert_eq(rv, -1);
        cr_assert(strstr(why, "does not end in -<ordinal>") != NULL, "%s", why);
    }
}

Test(config, a_pod_beyond_initial_cluster_starts_empty)
{
    /* zraft-3 of a StatefulSet scaled to 4: id 4, not an initial member. */
    const char *ic =
        "1=zraft-0.zraft:7001,2=zraft-1.zraft:7001,3=zraft-2.zraft:7001";
    config c;
    config_defaults(&c);
    snprintf(c.initial_cluster, sizeof c.initial_cluster, "%s", ic);
    c.id_from_hostname = true;
    snprintf(c.hostname, sizeof c.hostname, "zraft-3");
    cr_assert_eq(config_validate(&c, why, sizeof why), 0, "%s", why);
    cr_assert_eq(c.id, 4);
    cr_assert(c.joins_later);
    cr_assert_eq(c.n_peers, 0, "it must not bootstrap a cluster of its own");
    /* An initial member of the same template bootstraps. */
    config m;
    config_defaults(&m);
    snprintf(m.initial_cluster, sizeof m.initial_cluster, "%s", ic);
    m.id_from_hostname = true;
    snprintf(m.hostname, sizeof m.hostname, "zraft-1");
    cr_assert_eq(config_validate(&m, why, sizeof why), 0, "%s", why);
    cr_assert_eq(m.id, 2);
    cr_assert(!m.joins_later);
    cr_assert_eq(m.n_peers, 3);
    /* A given id outside initial_cluster stays an error (a typo). */
    config d;
    config_defaults(&d);
    snprintf(d.initial_cluster, sizeof d.initial_cluster, "%s", ic);
    d.id = 4;
    cr_assert_eq(config_validate(&d, why, sizeof why), -1);
    cr_assert(strstr(why, "does not include this node's id 4") != NULL, "%s",
              why);
}

Test(config, join_never_bootstraps)
{
    /* A member replaced with an empty volume keeps its id and its place in
     * initial_cluster, but must wait to be added, not found a cluster. */
    config c;
    config_defaults(&c);
    char *env[] = {"ZRAFT_ID=2", "ZRAFT_JOIN=true",
                   "ZRAFT_INITIAL_CLUSTER=1=a:7001,2=b:7001,3=c:7001", NULL};
    cr_assert_eq(config_load_env(&c, env, why, sizeof why), 0, "%s", why);
    cr_assert_eq(config_validate(&c, why, sizeof why), 0, "%s", why);
    cr_assert(c.join);
    cr_assert(c.joins_later);
    cr_assert_eq(c.n_peers, 0);
    /* Validation still checks the list it ignores. */
    char *bad[] = {"ZRAFT_INITIAL_CLUSTER=1=a", NULL};
    cr_assert_eq(config_load_env(&c, bad, why, sizeof why), 0, "%s", why);
    cr_assert_eq(config_validate(&c, why, sizeof why), -1);
}

Test(config, forward_writes_from_file_env_or_flag)
{
    config c;
    config_defaults(&c);
    cr_assert_eq(c.forward_writes, false); /* followers redirect by default */
    cr_assert_eq(
        config_load_json(&c, "{\"forward_writes\":true}", why, sizeof why), 0,
        "%s", why);
    cr_assert_eq(c.forward_writes, true);
    char *env[] = {"ZRAFT_FORWARD_WRITES=false", NULL};
    cr_assert_eq(config_load_env(&c, env, why, sizeof why), 0, "%s", why);
    cr_assert_eq(c.forward_writes, false);
    char *argv[] = {"zraftd", "--forward-writes", "yes", NULL};
    cr_assert_eq(config_load_flags(&c, 3, argv, why, sizeof why), 0, "%s", why);
    cr_assert_eq(c.forward_writes, true);
    char *bad[] = {"zraftd", "--forward-writes", "maybe", NULL};
    cr_assert_neq(config_load_flags(&c, 3, bad, why, sizeof why), 0);
    cr_assert(strstr(why, "forward_writes") != NULL, "%s", why);
}
