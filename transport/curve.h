/* curve.h - CurveZMQ between the nodes of a cluster: long-term keys, the
 * ZAP handler that admits only the public keys of the current
 * configuration, and the options that make a ROUTER a CURVE server and a
 * DEALER a CURVE client.
 *
 * Who is admitted: the members of the effective and of the committed
 * configuration (both while a change is uncommitted, so the joint phase and
 * a member being removed are covered until C_new commits), each with the key
 * its membership entry carries, or else the key the node was configured
 * with for that id (`known`). A node that holds no configuration yet (it
 * waits to be added) admits the `known` keys. Anyone else is refused at the
 * handshake: no frame of theirs reaches the decoder. Each refused key is
 * logged once (on stderr, with the peer's address) and every refusal is
 * counted (curve_auth_refused()).
 *
 * A connection that was admitted carries its key as ZeroMQ's "User-Id"; the
 * receiver checks every frame's sender id against it (curve_auth_check()),
 * so a member cannot speak for another one, and a member removed from the
 * configuration is refused from the moment the change is applied here,
 * even on a connection it opened before.
 *
 * Threads: one ZAP thread per curve_auth (its own REP socket); the table is
 * guarded by a mutex, updated by the node's core thread and read by the ZAP
 * thread and by any thread that opens a connection. */
#ifndef ZRAFT_TRANSPORT_CURVE_H
#define ZRAFT_TRANSPORT_CURVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zraft_types.h"

typedef struct curve_auth curve_auth;

/* True if `z85` is a key: ZRAFT_KEY_LEN characters of Z85 that decode. */
bool curve_key_valid(const char *z85);
/* A new keypair (Z85 text). 0, or ZRAFT_EINVAL when libzmq has no CURVE. */
int curve_keypair(char pub[ZRAFT_KEY_MAX], char sec[ZRAFT_KEY_MAX]);
/* The public key of secret key `sec`. 0 or ZRAFT_EINVAL. */
int curve_public_of(const char *sec, char pub[ZRAFT_KEY_MAX]);
/* True when this libzmq supports CURVE. */
bool curve_available(void);

/* Starts the ZAP handler of context `zctx` (there is one per context: the
 * context must not be shared with another node that authenticates) for node
 * `self` with secret key `sec` (Z85). `known` (n of them, copied) are the
 * ids and keys given by configuration: admitted while the node holds no
 * configuration, and the key of a member whose entry carries none. Must be
 * called before any CURVE server socket of `zctx` binds. Caller owns the
 * return value; NULL with a static reason in *why. */
curve_auth *curve_auth_new(void *zctx, uint64_t self, const char *sec,
                           const zraft_member *known, size_t n,
                           const char **why);
/* Stops the ZAP thread and frees everything; NULL-safe, idempotent. Call
 * after every socket of the context that used it is closed. */
void curve_auth_destroy(curve_auth **a);

/* Replaces the admitted set by the members of `effective` and `committed`
 * (either may be NULL; when both are empty the `known` keys are admitted). */
void curve_auth_update(curve_auth *a, const zraft_membership *effective,
                       const zraft_membership *committed);
/* True if a frame claiming sender `from` may come from a connection that
 * authenticated with `user_id` (its "User-Id": the Z85 key). */
bool curve_auth_check(curve_auth *a, uint64_t from, const char *user_id);
/* Handshakes refused so far. */
uint64_t curve_auth_refused(curve_auth *a);

/* Makes `sock` (not bound yet) a CURVE server authenticated by `a`. */
int curve_server_setup(curve_auth *a, void *sock);
/* Makes `sock` (not connected yet) a CURVE client of member `peer`, whose
 * key must be known: ZRAFT_ENOTFOUND when it is not (yet). */
int curve_client_setup(curve_auth *a, void *sock, uint64_t peer);

#endif
