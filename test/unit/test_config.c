/* test_config.c - zraftd configuration: precedence (file < env < flags),
 * validation and one clear message per mistake. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

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
