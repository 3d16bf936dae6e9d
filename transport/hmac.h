/* hmac.h - HMAC-SHA256 (RFC 2104 over FIPS 180-4 SHA-256), the optional
 * per-frame authentication tag of the wire codec.
 *
 * The key is processed once (hmac_key_init) into the hash states after the
 * inner and outer pads, so a tag costs two SHA-256 finishes plus the message,
 * not four extra blocks. */
#ifndef ZRAFT_TRANSPORT_HMAC_H
#define ZRAFT_TRANSPORT_HMAC_H

#include <stdbool.h>
#include <stddef.h>

#include "transport/sha256.h"

#define HMAC_TAG_LEN SHA256_DIGEST_LEN

/* A prepared key: plain data, may be copied; holds no pointer to the key. */
typedef struct {
    sha256_ctx inner; /* state after absorbing K ^ ipad */
    sha256_ctx outer; /* state after absorbing K ^ opad */
} hmac_key;

/* An in-progress tag over a message given in pieces. */
typedef struct {
    sha256_ctx inner;
    sha256_ctx outer;
} hmac_ctx;

/* Prepares `len` bytes of `key` (any length; keys longer than the block are
 * hashed first, RFC 2104 §2). The key bytes are not retained. */
void hmac_key_init(hmac_key *k, const void *key, size_t len);
/* Wipes a prepared key. */
void hmac_key_wipe(hmac_key *k);

void hmac_init(hmac_ctx *h, const hmac_key *k);
void hmac_update(hmac_ctx *h, const void *data, size_t len);
void hmac_final(hmac_ctx *h, unsigned char tag[HMAC_TAG_LEN]);
/* One-shot tag of `len` bytes. */
void hmac_sha256(const hmac_key *k, const void *data, size_t len,
                 unsigned char tag[HMAC_TAG_LEN]);

/* Compares `len` bytes in time that depends on `len` only (not on where the
 * first difference is). */
bool hmac_equal(const unsigned char *a, const unsigned char *b, size_t len);

#endif /* ZRAFT_TRANSPORT_HMAC_H */
