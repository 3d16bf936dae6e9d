/* sha256.h - SHA-256 (FIPS 180-4), the hash under the wire codec's HMAC.
 *
 * A straightforward, portable implementation: no table-driven tricks, no
 * CPU extensions. It hashes a frame header and a few kilobytes of payload per
 * RPC when the cluster secret is configured, which is far below the cost of
 * the socket send. */
#ifndef ZRAFT_TRANSPORT_SHA256_H
#define ZRAFT_TRANSPORT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_BLOCK_LEN  64
#define SHA256_DIGEST_LEN 32

/* An in-progress hash. Plain data: it may be copied to fork a computation
 * (HMAC keeps precomputed inner and outer states this way). */
typedef struct {
    uint32_t h[8];                       /* chaining value */
    uint64_t bytes;                      /* message bytes absorbed so far */
    unsigned char buf[SHA256_BLOCK_LEN]; /* partial block */
    size_t buf_len;                      /* bytes in buf, < SHA256_BLOCK_LEN */
} sha256_ctx;

/* Starts a new hash (the initial value H(0) of FIPS 180-4 §5.3.3). */
void sha256_init(sha256_ctx *s);
/* Absorbs `len` bytes of `data` (NULL allowed when len is 0). */
void sha256_update(sha256_ctx *s, const void *data, size_t len);
/* Pads, finishes and writes the 32-byte digest to `out`. `s` must be
 * re-initialised before it is used again. */
void sha256_final(sha256_ctx *s, unsigned char out[SHA256_DIGEST_LEN]);
/* One-shot digest of `len` bytes. */
void sha256(const void *data, size_t len, unsigned char out[SHA256_DIGEST_LEN]);

#endif /* ZRAFT_TRANSPORT_SHA256_H */
