/* http_admin.h - the bodies of zraftd's admin calls (POST /cluster/...):
 * parsed from the request's bytes into what the admin thread needs. Pure
 * (no I/O, no globals), so that the fuzz target (test/fuzz/fuzz_admin.c)
 * can drive it with any bytes. Internal to server/. */
#ifndef ZRAFT_SERVER_HTTP_ADMIN_H
#define ZRAFT_SERVER_HTTP_ADMIN_H
#include <stddef.h>
#include <stdint.h>

#include "zraft.h"

/* Admin calls (run on the admin thread). */
enum { A_LEARNER = 1, A_MEMBERSHIP, A_TRANSFER, A_SNAPSHOT };

typedef struct {
    int admin;    /* A_*: which call */
    uint64_t id;  /* learners: the new member; transfer-leader: target */
    size_t n_ids; /* membership: the voters, 1..ZRAFT_MAX_MEMBERS */
    uint64_t ids[ZRAFT_MAX_MEMBERS];
    char *raft_addr; /* learners: owned, never NULL on success */
    char *http_addr; /* learners: owned, "" when the body had none */
    char *pubkey;    /* learners: owned, NULL when the body had none */
} http_admin;

/* Parses the body of POST /cluster/<what> (len bytes, not NUL-terminated)
 * into *out (zeroed first). Returns NULL, or the message of a refusal with
 * its status in *status (400: the body; 404: no such call; 500: out of
 * memory), *out then holding nothing. Ids are 1..9e15 (exact in a JSON
 * number). The caller frees a success with http_admin_free. */
const char *http_admin_parse(const char *what, const char *body, size_t len,
                             http_admin *out, unsigned *status);
void http_admin_free(http_admin *a);
#endif
