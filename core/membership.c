/* membership.c - cluster configurations: lookup and the binary form stored in
 * MEMBERSHIP log entries and snapshots.
 *
 * Encoded form (little-endian):
 *   u8 version (1 or 2) | u8 flags (bit0: joint) | u16 n |
 *   n x { u64 id | u8 roles | u8 addr_len | addr bytes
 *         [version 2: u8 key_len (0 or ZRAFT_KEY_LEN) | key bytes] }
 * Version 2 carries each member's public key (CurveZMQ). It is written only
 * when some member has a key, so a cluster without keys writes exactly
 * what version 1 nodes read; a version 2 configuration in which no member
 * has a key is not canonical and is refused.
 * The decoder checks every length against the input and every role mask
 * against the rules of a configuration: ids are non-zero and unique, roles
 * are a valid combination (VOTER_OLD only in a joint config, a learner votes
 * in neither), a joint config has at least one old voter and at least one
 * new voter (a uniform one, at least one voter). */
#include <string.h>

#include "zraft_types.h"

#define MEMBERSHIP_VERSION      1
#define MEMBERSHIP_VERSION_KEYS 2

const zraft_member *zraft_membership_find(const zraft_membership *m,
                                          zraft_id id)
{
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->members[i].id == id) {
            return &m->members[i];
        }
    }
    return NULL;
}

bool zraft_membership_is_voter(const zraft_membership *m, zraft_id id)
{
    const zraft_member *p = zraft_membership_find(m, id);
    return p != NULL &&
           (p->roles & (ZRAFT_ROLE_VOTER | ZRAFT_ROLE_VOTER_OLD)) != 0;
}

static size_t addr_len(const zraft_member *p)
{
    size_t n = strnlen(p->addr, ZRAFT_ADDR_MAX);
    return n >= ZRAFT_ADDR_MAX ? ZRAFT_ADDR_MAX - 1 : n;
}

/* The key's length as encoded: ZRAFT_KEY_LEN or 0 (none, or not a key). */
static size_t key_len(const zraft_member *p)
{
    size_t n = strnlen(p->key, ZRAFT_KEY_MAX);
    return n == ZRAFT_KEY_LEN ? n : 0;
}

static bool has_keys(const zraft_membership *m)
{
    for (uint32_t i = 0; i < m->n && i < ZRAFT_MAX_MEMBERS; i++) {
        if (key_len(&m->members[i]) != 0) {
            return true;
        }
    }
    return false;
}

size_t zraft_membership_encoded_len(const zraft_membership *m)
{
    size_t len = 4;
    bool keys = has_keys(m);
    for (uint32_t i = 0; i < m->n && i < ZRAFT_MAX_MEMBERS; i++) {
        len += 10 + addr_len(&m->members[i]);
        if (keys) {
            len += 1 + key_len(&m->members[i]);
        }
    }
    return len;
}

void zraft_membership_encode(const zraft_membership *m, unsigned char *out)
{
    uint32_t n = m->n > ZRAFT_MAX_MEMBERS ? ZRAFT_MAX_MEMBERS : m->n;
    bool keys = has_keys(m);
    *out++ = keys ? MEMBERSHIP_VERSION_KEYS : MEMBERSHIP_VERSION;
    *out++ = m->joint ? 1 : 0;
    *out++ = (unsigned char)(n & 0xff);
    *out++ = (unsigned char)(n >> 8);
    for (uint32_t i = 0; i < n; i++) {
        const zraft_member *p = &m->members[i];
        for (int b = 0; b < 8; b++) {
            *out++ = (unsigned char)(p->id >> (8 * b));
        }
        *out++ = p->roles;
        size_t al = addr_len(p);
        *out++ = (unsigned char)al;
        memcpy(out, p->addr, al);
        out += al;
        if (keys) {
            size_t kl = key_len(p);
            *out++ = (unsigned char)kl;
            memcpy(out, p->key, kl);
            out += kl;
        }
    }
}

int zraft_membership_decode(const unsigned char *in, size_t len,
                            zraft_membership *out)
{
    if (len < 4 ||
        (in[0] != MEMBERSHIP_VERSION && in[0] != MEMBERSHIP_VERSION_KEYS) ||
        (in[1] & ~1u) != 0) {
        return ZRAFT_EMALFORMED;
    }
    bool keys = in[0] == MEMBERSHIP_VERSION_KEYS;
    uint32_t n_keys = 0;
    bool joint = in[1] & 1;
    uint32_t n = (uint32_t)in[2] | ((uint32_t)in[3] << 8);
    if (n == 0 || n > ZRAFT_MAX_MEMBERS) {
        return ZRAFT_EMALFORMED;
    }
    size_t off = 4;
    uint32_t voters = 0, old_voters = 0;
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < n; i++) {
        if (len - off < 10) {
            return ZRAFT_EMALFORMED;
        }
        zraft_member *p = &out->members[i];
        p->id = 0;
        for (int b = 0; b < 8; b++) {
            p->id |= (uint64_t)in[off + b] << (8 * b);
        }
        p->roles = in[off + 8];
        size_t al = in[off + 9];
        off += 10;
        if (al >= ZRAFT_ADDR_MAX || len - off < al ||
            memchr(in + off, '\0', al) != NULL) {
            return ZRAFT_EMALFORMED;
        }
        memcpy(p->addr, in + off, al);
        p->addr[al] = '\0';
        off += al;
        if (keys) {
            if (len - off < 1) {
                return ZRAFT_EMALFORMED;
            }
            size_t kl = in[off++];
            if ((kl != 0 && kl != ZRAFT_KEY_LEN) || len - off < kl ||
                memchr(in + off, '\0', kl) != NULL) {
                return ZRAFT_EMALFORMED;
            }
            memcpy(p->key, in + off, kl);
            p->key[kl] = '\0';
            off += kl;
            n_keys += kl != 0;
        }
        uint8_t r = p->roles;
        if (p->id == 0 || r == 0 ||
            (r & ~(ZRAFT_ROLE_VOTER | ZRAFT_ROLE_VOTER_OLD |
                   ZRAFT_ROLE_LEARNER)) != 0 ||
            ((r & ZRAFT_ROLE_LEARNER) &&
             (r & (ZRAFT_ROLE_VOTER | ZRAFT_ROLE_VOTER_OLD))) ||
            (!joint && (r & ZRAFT_ROLE_VOTER_OLD))) {
            return ZRAFT_EMALFORMED;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (out->members[j].id == p->id) {
                return ZRAFT_EMALFORMED;
            }
        }
        voters += (r & ZRAFT_ROLE_VOTER) != 0;
        old_voters += (r & ZRAFT_ROLE_VOTER_OLD) != 0;
    }
    if (off != len || voters == 0 || (joint && old_voters == 0) ||
        (keys && n_keys == 0)) {
        return ZRAFT_EMALFORMED;
    }
    out->n = n;
    out->joint = joint;
    return 0;
}
