/* fuzz_admin.c - libFuzzer target for the bodies of zraftd's admin calls
 * (server/http_admin.c: POST /cluster/learners, /membership,
 * /transfer-leader, /snapshot), which any HTTP client with the admin token
 * (or any client, with none configured) sends.
 *
 * The first byte of the input picks the call (one of the four or an
 * unknown one); the rest is the body. For every input:
 *  - nothing crashes, leaks or reads out of bounds (ASan, UBSan; the body
 *    is copied to a buffer of exactly its size, not NUL-terminated);
 *  - a refusal has a message and a status of 400, 404 (only for the
 *    unknown call) or 500, and leaves nothing allocated in the result;
 *  - an accepted body gives what the admin thread relies on: the call
 *    asked for; ids in 1..9e15; 1..ZRAFT_MAX_MEMBERS voters; a learner
 *    with a raft address, an HTTP address ("" when absent) and a key or
 *    none; the same result when parsed again (deterministic).
 * Any violated property aborts, which libFuzzer reports as a crash.
 * Run it with scripts/fuzz.sh. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_admin: property violated: %s\n", what);
        abort();
    }
}

static const char *const CALLS[] = {"learners", "membership", "transfer-leader",
                                    "snapshot", "nodes"};
static const int WANT[] = {A_LEARNER, A_MEMBERSHIP, A_TRANSFER, A_SNAPSHOT, 0};

static bool s_id_ok(uint64_t id)
{
    return id >= 1 && id <= 9000000000000000ull;
}

static bool s_same(const http_admin *a, const http_admin *b)
{
    bool s = a->admin == b->admin && a->id == b->id && a->n_ids == b->n_ids &&
             memcmp(a->ids, b->ids, a->n_ids * sizeof(a->ids[0])) == 0;
    s = s && (a->raft_addr == NULL) == (b->raft_addr == NULL) &&
        (a->raft_addr == NULL || !strcmp(a->raft_addr, b->raft_addr));
    s = s && (a->http_addr == NULL) == (b->http_addr == NULL) &&
        (a->http_addr == NULL || !strcmp(a->http_addr, b->http_addr));
    s = s && (a->pubkey == NULL) == (b->pubkey == NULL) &&
        (a->pubkey == NULL || !strcmp(a->pubkey, b->pubkey));
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 65536) {
        return 0;
    }
    size_t k = data[0] % (sizeof CALLS / sizeof CALLS[0]);
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    check(body != NULL, "malloc");
    memcpy(body, data + 1, len);
    http_admin a;
    unsigned status = 0;
    const char *bad = http_admin_parse(CALLS[k], body, len, &a, &status);
    if (bad != NULL) {
        check(bad[0] != '\0', "a refusal says why");
        check(status == 400 || status == 404 || status == 500,
              "a refusal's status");
        check((status == 404) == (WANT[k] == 0), "404 only for no call");
        check(a.raft_addr == NULL && a.http_addr == NULL && a.pubkey == NULL,
              "a refusal keeps nothing");
        free(body);
        return 0;
    }
    check(WANT[k] != 0 && a.admin == WANT[k], "the call asked for");
    switch (a.admin) {
    case A_LEARNER:
        check(s_id_ok(a.id), "a learner's id");
        check(a.raft_addr != NULL && a.http_addr != NULL,
              "a learner's addresses");
        break;
    case A_MEMBERSHIP:
        check(a.n_ids >= 1 && a.n_ids <= ZRAFT_MAX_MEMBERS, "1..64 voters");
        for (size_t i = 0; i < a.n_ids; i++) {
            check(s_id_ok(a.ids[i]), "a voter's id");
        }
        break;
    case A_TRANSFER:
        check(s_id_ok(a.id), "the transfer's target");
        break;
    default:
        break;
    }
    http_admin b;
    check(http_admin_parse(CALLS[k], body, len, &b, &status) == NULL &&
              s_same(&a, &b),
          "parsing again gives the same");
    http_admin_free(&a);
    http_admin_free(&b);
    free(body);
    return 0;
}
