/* test_security.c - the pieces of docs/security.md that need no process:
 * public keys in membership entries (encoding version 2 only when a member
 * has one, canonical, every malformed form refused), a learner's key in the
 * engine's proposal, the CURVE admission table (who is admitted, and that a
 * removal revokes), bearer tokens (comparison, header parsing, loading) and
 * the configuration syntax for keys. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "auth.h"
#include "config.h"
#include "engine_fixture.h"
#include "transport/curve.h"

/* Two well-formed Z85 public keys (libzmq's test vectors' shape). */
static char K1[ZRAFT_KEY_MAX], K2[ZRAFT_KEY_MAX], K3[ZRAFT_KEY_MAX];

static void keys(void)
{
    char sec[ZRAFT_KEY_MAX];
    cr_assert_eq(zmq_curve_keypair(K1, sec), 0);
    cr_assert_eq(zmq_curve_keypair(K2, sec), 0);
    cr_assert_eq(zmq_curve_keypair(K3, sec), 0);
}

static void members(zraft_membership *m, const char *k1, const char *k2)
{
    memset(m, 0, sizeof(*m));
    m->n = 2;
    m->members[0] = (zraft_member){1, ZRAFT_ROLE_VOTER, "a:1", ""};
    m->members[1] = (zraft_member){2, ZRAFT_ROLE_LEARNER, "b:2", ""};
    snprintf(m->members[0].key, ZRAFT_KEY_MAX, "%s", k1);
    snprintf(m->members[1].key, ZRAFT_KEY_MAX, "%s", k2);
}

/* ----------------------------------------------------------- membership */

Test(membership_keys, without_keys_the_version_1_bytes_are_written)
{
    zraft_membership m, back;
    members(&m, "", "");
    unsigned char buf[512];
    size_t len = zraft_membership_encoded_len(&m);
    zraft_membership_encode(&m, buf);
    cr_assert_eq(buf[0], 1);
    cr_assert_eq(len, 4 + (10 + 3) * 2); /* as version 1 nodes write it */
    cr_assert_eq(zraft_membership_decode(buf, len, &back), 0);
    cr_assert_str_eq(back.members[0].key, "");
}

Test(membership_keys, keys_round_trip_in_version_2)
{
    keys();
    zraft_membership m, back;
    members(&m, K1, ""); /* one member without a key */
    unsigned char buf[512], again[512];
    size_t len = zraft_membership_encoded_len(&m);
    zraft_membership_encode(&m, buf);
    cr_assert_eq(buf[0], 2);
    cr_assert_eq(len, 4 + (10 + 3 + 1) * 2 + ZRAFT_KEY_LEN);
    cr_assert_eq(zraft_membership_decode(buf, len, &back), 0);
    cr_assert_str_eq(back.members[0].key, K1);
    cr_assert_str_eq(back.members[1].key, "");
    zraft_membership_encode(&back, again);
    cr_assert_eq(memcmp(buf, again, len), 0, "canonical");
}

Test(membership_keys, malformed_keys_are_refused)
{
    keys();
    zraft_membership m, back;
    members(&m, K1, K2);
    unsigned char buf[512], bad[512];
    size_t len = zraft_membership_encoded_len(&m);
    zraft_membership_encode(&m, buf);
    /* Every truncation. */
    for (size_t n = 0; n < len; n++) {
        cr_assert_eq(zraft_membership_decode(buf, n, &back), ZRAFT_EMALFORMED,
                     "truncated to %zu", n);
    }
    /* Member 0's key length byte is at 4 + 10 + 3. */
    size_t at = 4 + 10 + 3;
    memcpy(bad, buf, len);
    bad[at] = ZRAFT_KEY_LEN - 1;
    cr_assert_eq(zraft_membership_decode(bad, len, &back), ZRAFT_EMALFORMED);
    memcpy(bad, buf, len);
    bad[at + 5] = '\0'; /* NUL inside the key */
    cr_assert_eq(zraft_membership_decode(bad, len, &back), ZRAFT_EMALFORMED);
    /* Version 2 where no member has a key: not canonical. */
    zraft_membership none;
    members(&none, "", "");
    unsigned char v2[64];
    size_t n1 = zraft_membership_encoded_len(&none), o = 0, i = 4;
    zraft_membership_encode(&none, bad);
    v2[o++] = 2;
    memcpy(v2 + o, bad + 1, 3);
    o += 3;
    for (int k = 0; k < 2; k++) {
        memcpy(v2 + o, bad + i, 13);
        o += 13;
        i += 13;
        v2[o++] = 0;
    }
    cr_assert_eq(i, n1);
    cr_assert_eq(zraft_membership_decode(v2, o, &back), ZRAFT_EMALFORMED);
}

Test(membership_keys, a_learner_key_goes_into_the_proposal)
{
    keys();
    fx f;
    fx_boot(&f, 1, 3);
    fx_lead(&f);
    uint64_t idx = 0;
    cr_assert_eq(engine_add_learner_key(f.e, 4, "n4", "short", &idx),
                 ZRAFT_EINVAL);
    cr_assert_eq(engine_add_learner_key(f.e, 4, "n4", K1, &idx), 0);
    cr_assert_gt(idx, 0);
    const zraft_member *mb = zraft_membership_find(engine_membership(f.e), 4);
    cr_assert_not_null(mb);
    cr_assert_str_eq(mb->key, K1);
    fx_close(&f);
}

/* --------------------------------------------------------- admission */

Test(curve, admits_the_configuration_and_revokes_on_removal)
{
    keys();
    void *zctx = zmq_ctx_new();
    char sec[ZRAFT_KEY_MAX], pub[ZRAFT_KEY_MAX];
    cr_assert_eq(curve_keypair(pub, sec), 0);
    /* Known by configuration: 2 with K2 (and a learner-to-be 3 with K3). */
    zraft_member known[2] = {{2, 0, "", ""}, {3, 0, "", ""}};
    memcpy(known[0].key, K2, ZRAFT_KEY_MAX);
    memcpy(known[1].key, K3, ZRAFT_KEY_MAX);
    const char *why = NULL;
    curve_auth *a = curve_auth_new(zctx, 1, sec, known, 2, &why);
    cr_assert_not_null(a, "%s", why ? why : "");
    /* No configuration yet: the known keys. */
    cr_assert(curve_auth_check(a, 2, K2));
    cr_assert(curve_auth_check(a, 3, K3));
    cr_assert_not(curve_auth_check(a, 2, K3), "id and key go together");
    cr_assert_not(curve_auth_check(a, 2, NULL));
    /* A configuration {1: K1, 2: no key (configured K2)}: 3 is out. */
    zraft_membership m;
    members(&m, K1, "");
    curve_auth_update(a, &m, &m);
    cr_assert(curve_auth_check(a, 1, K1));
    cr_assert(curve_auth_check(a, 2, K2));
    cr_assert_not(curve_auth_check(a, 3, K3));
    /* Removing 2: while uncommitted both configurations count... */
    zraft_membership next = m;
    next.n = 1;
    curve_auth_update(a, &next, &m);
    cr_assert(curve_auth_check(a, 2, K2));
    /* ... once committed, 2 is refused. */
    curve_auth_update(a, &next, &next);
    cr_assert_not(curve_auth_check(a, 2, K2));
    cr_assert(curve_auth_check(a, 1, K1));
    /* A client socket needs the peer's key. */
    void *s = zmq_socket(zctx, ZMQ_DEALER);
    cr_assert_eq(curve_client_setup(a, s, 1), 0);
    cr_assert_eq(curve_client_setup(a, s, 9), ZRAFT_ENOTFOUND);
    zmq_close(s);
    cr_assert_eq(curve_auth_refused(a), 0);
    curve_auth_destroy(&a);
    cr_assert_null(a);
    curve_auth_destroy(&a); /* idempotent */
    zmq_ctx_term(zctx);
}

Test(curve, keys_are_checked)
{
    keys();
    char pub[ZRAFT_KEY_MAX];
    cr_assert(curve_key_valid(K1));
    cr_assert_not(curve_key_valid("short"));
    cr_assert_not(curve_key_valid(NULL));
    cr_assert_eq(curve_public_of("not a key", pub), ZRAFT_EINVAL);
    const char *why = NULL;
    void *zctx = zmq_ctx_new();
    cr_assert_null(curve_auth_new(zctx, 1, "bad", NULL, 0, &why));
    cr_assert_not_null(why);
    zmq_ctx_term(zctx);
}

/* ------------------------------------------------------------- tokens */

Test(tokens, compare_and_bearer_header)
{
    auth_token t = {strdup("s3cret-token"), 12};
    cr_assert(auth_token_equal(&t, "s3cret-token", 12));
    cr_assert_not(auth_token_equal(&t, "s3cret-tokeN", 12));
    cr_assert_not(auth_token_equal(&t, "s3cret-token!", 13));
    cr_assert_not(auth_token_equal(&t, "s3cret", 6));
    cr_assert_not(auth_token_equal(&t, "", 0));
    cr_assert(auth_bearer_ok(&t, "Bearer s3cret-token"));
    cr_assert(auth_bearer_ok(&t, "bearer  s3cret-token "));
    cr_assert_not(auth_bearer_ok(&t, "Basic s3cret-token"));
    cr_assert_not(auth_bearer_ok(&t, "Bearer"));
    cr_assert_not(auth_bearer_ok(&t, NULL));
    auth_token none = {NULL, 0};
    cr_assert_not(auth_token_equal(&none, "", 0), "no token matches nothing");
    auth_token_free(&t);
    cr_assert_null(t.token);
}

Test(tokens, loaded_from_a_file_or_the_environment)
{
    char path[] = "/tmp/zraft-token-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "from-file\nignored\n", 18), 18);
    close(fd);
    auth_token t;
    char why[256];
    setenv("ZRAFT_TEST_TOKEN", "from-env", 1);
    cr_assert_eq(auth_token_load(&t, path, "ZRAFT_TEST_TOKEN", why, sizeof why),
                 0, "%s", why);
    cr_assert_str_eq(t.token, "from-file");
    auth_token_free(&t);
    cr_assert_eq(auth_token_load(&t, "", "ZRAFT_TEST_TOKEN", why, sizeof why),
                 0);
    cr_assert_str_eq(t.token, "from-env");
    auth_token_free(&t);
    unsetenv("ZRAFT_TEST_TOKEN");
    cr_assert_eq(auth_token_load(&t, NULL, "ZRAFT_TEST_TOKEN", why, sizeof why),
                 0);
    cr_assert_null(t.token);
    /* Bad files: an empty one, one with a space; the message never holds
     * the token. */
    fd = open(path, O_WRONLY | O_TRUNC);
    cr_assert_eq(write(fd, "two words\n", 10), 10);
    close(fd);
    cr_assert_eq(auth_token_load(&t, path, NULL, why, sizeof why), -1);
    cr_assert_null(strstr(why, "two words"), "%s", why);
    fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    cr_assert_eq(auth_token_load(&t, path, NULL, why, sizeof why), -1);
    cr_assert(strstr(why, "empty") != NULL, "%s", why);
    unlink(path);
    cr_assert_eq(auth_token_load(&t, path, NULL, why, sizeof why), -1);
}

/* ------------------------------------------------------------- config */

static int s_validate(config *c, const char *ic, const char *pk,
                      const char *security, char *why, size_t n)
{
    config_defaults(c);
    c->id = 1;
    snprintf(c->initial_cluster, sizeof c->initial_cluster, "%s", ic);
    snprintf(c->peer_keys, sizeof c->peer_keys, "%s", pk);
    snprintf(c->security, sizeof c->security, "%s", security);
    return config_validate(c, why, n);
}

Test(config_keys, initial_cluster_and_peer_keys_carry_keys)
{
    keys();
    config *c = malloc(sizeof(*c));
    char ic[512], pk[256], why[512];
    snprintf(ic, sizeof ic, "1=%s@10.0.0.1:7001,2=host2:7002", K1);
    snprintf(pk, sizeof pk, "2=%s,3=%s", K2, K3);
    cr_assert_eq(s_validate(c, ic, pk, "curve", why, sizeof why), 0, "%s", why);
    cr_assert_eq(c->n_peers, 2);
    cr_assert_str_eq(c->peers[0].key, K1);
    cr_assert_str_eq(c->peers[0].raft_addr, "10.0.0.1:7001");
    cr_assert_str_eq(c->peers[1].key, "");
    cr_assert_eq(c->n_known, 2);
    cr_assert_str_eq(config_known_key(c, 3), K3);
    cr_assert_null(config_known_key(c, 4));
    /* Curve, and member 2 has no key anywhere. */
    cr_assert_eq(s_validate(c, ic, "", "curve", why, sizeof why), -1);
    cr_assert(strstr(why, "member 2 has no key") != NULL, "%s", why);
    /* Keys without curve. */
    cr_assert_eq(s_validate(c, ic, pk, "none", why, sizeof why), -1);
    cr_assert(strstr(why, "security") != NULL, "%s", why);
    cr_assert_eq(s_validate(c, "1=a:1", "2=short", "curve", why, sizeof why),
                 -1);
    cr_assert(strstr(why, "40 Z85") != NULL, "%s", why);
    cr_assert_eq(s_validate(c, "1=a:1", "", "tls", why, sizeof why), -1);
    cr_assert(strstr(why, "security must be") != NULL, "%s", why);
    free(c);
}

/* One member, two keys: which one CURVE would admit depended on the path
 * (bootstrap admitted both; a node waiting to be added, only one). */
Test(config_keys, one_member_with_two_keys_is_refused)
{
    keys();
    config *c = malloc(sizeof(*c));
    char ic[512], pk[256], why[512];
    snprintf(ic, sizeof ic, "1=%s@10.0.0.1:7001,2=%s@host2:7002", K1, K2);
    snprintf(pk, sizeof pk, "2=%s", K3);
    cr_assert_eq(s_validate(c, ic, pk, "curve", why, sizeof why), -1);
    cr_assert(strstr(why, "member 2 has one key") != NULL, "%s", why);
    /* The same key in both places is fine. */
    snprintf(pk, sizeof pk, "2=%s", K2);
    cr_assert_eq(s_validate(c, ic, pk, "curve", why, sizeof why), 0, "%s", why);
    /* A node that waits to be added keeps initial_cluster's keys. */
    c->join = true;
    cr_assert_eq(config_validate(c, why, sizeof why), 0, "%s", why);
    cr_assert_eq(c->n_peers, 0);
    cr_assert_str_eq(config_known_key(c, 1), K1);
    cr_assert_str_eq(config_known_key(c, 2), K2);
    free(c);
}
