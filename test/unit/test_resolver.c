/* test_resolver.c - peer names are resolved off ZeroMQ's I/O thread: numeric
 * hosts at once, names by the lookup thread, answers cached, malformed
 * addresses refused. Only /etc/hosts names are looked up (localhost), so
 * no test depends on a name server. */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "transport/resolver.h"
#include "zraft_types.h"

static char out[160];

/* Asks until the answer is not EAGAIN (at most 30 s: a lookup of localhost
 * takes microseconds, the deadline only bounds a broken resolver). */
static int s_until_answered(resolver *r, const char *addr)
{
    struct timespec pause = {0, 1000000};
    for (int i = 0; i < 30000; i++) {
        int rv = resolver_endpoint(r, addr, false, out, sizeof out);
        if (rv != ZRAFT_EAGAIN) {
            return rv;
        }
        nanosleep(&pause, NULL);
    }
    return ZRAFT_EAGAIN;
}

Test(resolver, numeric_hosts_are_answered_without_a_lookup)
{
    resolver *r = resolver_new(1000);
    cr_assert_not_null(r);
    cr_assert_eq(resolver_endpoint(r, "10.1.2.3:7001", false, out, sizeof out),
                 0);
    cr_assert_str_eq(out, "tcp://10.1.2.3:7001");
    cr_assert_eq(resolver_endpoint(r, "*:7001", true, out, sizeof out), 0);
    cr_assert_str_eq(out, "tcp://*:7001");
    cr_assert_eq(resolver_lookups(r), 0);
    resolver_destroy(&r);
    cr_assert_null(r);
}

Test(resolver, a_name_is_looked_up_once_then_served_from_the_cache)
{
    resolver *r = resolver_new(60000);
    int first = resolver_endpoint(r, "localhost:7002", false, out, sizeof out);
    cr_assert(first == ZRAFT_EAGAIN || first == 0, "first answer %d", first);
    cr_assert_eq(s_until_answered(r, "localhost:7002"), 0);
    cr_assert_str_eq(out, "tcp://127.0.0.1:7002");
    /* Another port of the same host: the same lookup serves it. */
    cr_assert_eq(resolver_endpoint(r, "localhost:9", true, out, sizeof out), 0);
    cr_assert_str_eq(out, "tcp://127.0.0.1:9");
    cr_assert_eq(resolver_lookups(r), 1,
                 "a refresh within refresh_ms started another lookup");
    resolver_destroy(&r);
}

Test(resolver, a_refresh_request_looks_the_name_up_again_when_old_enough)
{
    resolver *r = resolver_new(0);
    cr_assert_eq(s_until_answered(r, "localhost:7003"), 0);
    cr_assert_eq(resolver_lookups(r), 1);
    /* Not asked to refresh: the cached answer, no lookup. */
    cr_assert_eq(resolver_endpoint(r, "localhost:7003", false, out, sizeof out),
                 0);
    /* Asked: the cached answer now, a new lookup in the background. */
    cr_assert_eq(resolver_endpoint(r, "localhost:7003", true, out, sizeof out),
                 0);
    cr_assert_str_eq(out, "tcp://127.0.0.1:7003");
    struct timespec pause = {0, 1000000};
    for (int i = 0; i < 30000 && resolver_lookups(r) < 2; i++) {
        nanosleep(&pause, NULL);
    }
    cr_assert_eq(resolver_lookups(r), 2);
    resolver_destroy(&r);
}

Test(resolver, malformed_addresses_are_refused)
{
    resolver *r = resolver_new(1000);
    cr_assert_eq(resolver_endpoint(r, "nocolon", false, out, sizeof out),
                 ZRAFT_EINVAL);
    cr_assert_eq(resolver_endpoint(r, ":7001", false, out, sizeof out),
                 ZRAFT_EINVAL);
    cr_assert_eq(resolver_endpoint(r, "host:", false, out, sizeof out),
                 ZRAFT_EINVAL);
    char tiny[8];
    cr_assert_eq(
        resolver_endpoint(r, "10.0.0.1:7001", false, tiny, sizeof tiny),
        ZRAFT_EINVAL);
    cr_assert_eq(resolver_lookups(r), 0);
    resolver_destroy(&r);
}

Test(resolver, destroy_does_not_wait_for_a_lookup)
{
    /* Queue lookups and destroy at once: the detached thread finishes
     * (or never starts) them and frees the state; LSan checks the rest. */
    resolver *r = resolver_new(1000);
    resolver_endpoint(r, "localhost:1", false, out, sizeof out);
    resolver_endpoint(r, "ip6-localhost:1", false, out, sizeof out);
    resolver_destroy(&r);
    cr_assert_null(r);
}

Test(resolver, a_name_that_never_resolved_is_looked_up_again_unasked)
{
    /* Pods of a StatefulSet start together: a peer's DNS name may not exist
     * yet when a node starts. The node must keep looking it up (callers ask
     * without refresh while they have no endpoint) rather than give up.
     * .invalid never resolves (RFC 6761). */
    resolver *r = resolver_new(200);
    const char *addr = "zraft-1.zraft.no-such-namespace.invalid:7001";
    cr_assert_eq(s_until_answered(r, addr), ZRAFT_ENOTFOUND);
    cr_assert_eq(resolver_lookups(r), 1);
    /* Asked again, never with refresh: a new lookup once 200 ms passed. */
    struct timespec pause = {0, 1000000};
    bool retried = false;
    for (int i = 0; i < 30000 && !retried; i++) {
        int rv = resolver_endpoint(r, addr, false, out, sizeof out);
        cr_assert(rv == ZRAFT_ENOTFOUND || rv == ZRAFT_EAGAIN, "answer %d", rv);
        retried = resolver_lookups(r) >= 2;
        nanosleep(&pause, NULL);
    }
    cr_assert(retried, "the name was not looked up again");
    resolver_destroy(&r);
}
