/* hmac.c - HMAC-SHA256 as defined by RFC 2104:
 *   H(K ^ opad, H(K ^ ipad, text)), ipad = 0x36.., opad = 0x5c..,
 * where K is the key zero-padded to the block size (or its digest when it is
 * longer than a block). Checked against the RFC 4231 vectors in
 * test/unit/test_codec.c. */
#include <string.h>

#include "transport/hmac.h"

void hmac_key_init(hmac_key *k, const void *key, size_t len)
{
    unsigned char kb[SHA256_BLOCK_LEN];
    unsigned char pad[SHA256_BLOCK_LEN];
    memset(kb, 0, sizeof(kb));
    if (len > SHA256_BLOCK_LEN) {
        sha256(key, len, kb);
    } else if (len > 0) {
        memcpy(kb, key, len);
    }
    for (size_t i = 0; i < SHA256_BLOCK_LEN; i++) {
        pad[i] = kb[i] ^ 0x36;
    }
    sha256_init(&k->inner);
    sha256_update(&k->inner, pad, sizeof(pad));
    for (size_t i = 0; i < SHA256_BLOCK_LEN; i++) {
        pad[i] = kb[i] ^ 0x5c;
    }
    sha256_init(&k->outer);
    sha256_update(&k->outer, pad, sizeof(pad));
    /* Key material should not linger on the stack. volatile keeps the
     * compiler from dropping the stores as dead. */
    volatile unsigned char *v = kb;
    for (size_t i = 0; i < sizeof(kb); i++) {
        v[i] = 0;
    }
    v = pad;
    for (size_t i = 0; i < sizeof(pad); i++) {
        v[i] = 0;
    }
}

void hmac_key_wipe(hmac_key *k)
{
    volatile unsigned char *v = (volatile unsigned char *)k;
    for (size_t i = 0; i < sizeof(*k); i++) {
        v[i] = 0;
    }
}

void hmac_init(hmac_ctx *h, const hmac_key *k)
{
    h->inner = k->inner;
    h->outer = k->outer;
}

void hmac_update(hmac_ctx *h, const void *data, size_t len)
{
    sha256_update(&h->inner, data, len);
}

void hmac_final(hmac_ctx *h, unsigned char tag[HMAC_TAG_LEN])
{
    unsigned char ih[SHA256_DIGEST_LEN];
    sha256_final(&h->inner, ih);
    sha256_update(&h->outer, ih, sizeof(ih));
    sha256_final(&h->outer, tag);
}

void hmac_sha256(const hmac_key *k, const void *data, size_t len,
                 unsigned char tag[HMAC_TAG_LEN])
{
    hmac_ctx h;
    hmac_init(&h, k);
    hmac_update(&h, data, len);
    hmac_final(&h, tag);
}

bool hmac_equal(const unsigned char *a, const unsigned char *b, size_t len)
{
    /* Accumulate every difference; no early exit. volatile keeps the
     * compiler from turning the loop back into a short-circuit compare. */
    volatile unsigned char diff = 0;
    for (size_t i = 0; i < len; i++) {
        diff |= a[i] ^ b[i];
    }
    return diff == 0;
}
