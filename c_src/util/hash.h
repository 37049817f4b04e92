/* hash: a fast non-cryptographic hash for short keys (group terms, store and
 * subscription bytes): eight bytes per multiply-xorshift step, tail bytes
 * gathered with a loop (a variable-length memcpy would become a libc call).
 * Used by the hot look-up tables; not for anything an attacker must not be
 * able to collide (tables stay correct under collisions, only slower). */
#ifndef RC_HASH_H
#define RC_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t rc_hash_mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static inline uint64_t rc_hash_bytes(uint64_t h, const void *key, size_t n)
{
    const uint8_t *p = key;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = rc_hash_mix(h, v);
    }
    if (n > 0) {
        uint64_t v = (uint64_t)n << 56;
        for (size_t i = 0; i < n; i++)
            v ^= (uint64_t)p[i] << (8 * i);
        h = rc_hash_mix(h, v);
    }
    return h;
}

/* Folds to the 32 bits uthash uses, mixing the high half in. */
static inline unsigned rc_hash_fold(uint64_t h)
{
    h *= 0xff51afd7ed558ccdull;
    return (unsigned)(h ^ (h >> 32));
}

#define RC_HASH_SEED 0xcbf29ce484222325ull

#endif
