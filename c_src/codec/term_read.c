#include "codec/term_read.h"

#include "codec/decimal.h"
#include "util/be.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

int term_read_atom(const char *buf, int len, int *idx, const uint8_t **utf8, size_t *n,
                   uint8_t *scratch, size_t scratch_cap)
{
    const uint8_t *b = (const uint8_t *)buf;
    int i = *idx;
    if (i < 0 || i >= len)
        return -1;
    uint8_t tag = b[i];
    size_t alen, hdr;
    if (tag == ERL_SMALL_ATOM_UTF8_EXT || tag == ERL_SMALL_ATOM_EXT) {
        if (i + 2 > len)
            return -1;
        alen = b[i + 1];
        hdr = 2;
    } else if (tag == ERL_ATOM_UTF8_EXT || tag == ERL_ATOM_EXT) {
        if (i + 3 > len)
            return -1;
        alen = ((size_t)b[i + 1] << 8) | b[i + 2];
        hdr = 3;
    } else {
        return -1;
    }
    if ((size_t)i + hdr + alen > (size_t)len)
        return -1;
    const uint8_t *src = b + i + hdr;
    if (tag == ERL_SMALL_ATOM_UTF8_EXT || tag == ERL_ATOM_UTF8_EXT) {
        *utf8 = src;
        *n = alen;
    } else {
        if (alen > 255 || alen * 2 > scratch_cap)
            return -1;
        size_t o = 0;
        for (size_t k = 0; k < alen; k++) {
            if (src[k] < 0x80) {
                scratch[o++] = src[k];
            } else {
                scratch[o++] = (uint8_t)(0xC0 | (src[k] >> 6));
                scratch[o++] = (uint8_t)(0x80 | (src[k] & 0x3F));
            }
        }
        *utf8 = scratch;
        *n = o;
    }
    *idx = i + (int)hdr + (int)alen;
    return 0;
}

int term_read_binary(const char *buf, int len, int *idx, const uint8_t **data, size_t *n)
{
    const uint8_t *b = (const uint8_t *)buf;
    int i = *idx;
    if (i < 0 || i + 5 > len || b[i] != ERL_BINARY_EXT)
        return -1;
    uint32_t blen = rc_get32(b + i + 1);
    if ((uint64_t)i + 5u + blen > (uint64_t)len)
        return -1;
    *data = b + i + 5;
    *n = blen;
    *idx = i + 5 + (int)blen;
    return 0;
}

int term_read_integer(const char *buf, int len, int *idx, int64_t *v, int *fits64, char *dec,
                      size_t dec_cap)
{
    const uint8_t *b = (const uint8_t *)buf;
    int i = *idx;
    if (i < 0 || i >= len)
        return -1;
    switch (b[i]) {
    case ERL_SMALL_INTEGER_EXT:
        if (i + 2 > len)
            return -1;
        *v = b[i + 1];
        *fits64 = 1;
        *idx = i + 2;
        return 0;
    case ERL_INTEGER_EXT:
        if (i + 5 > len)
            return -1;
        *v = (int32_t)rc_get32(b + i + 1);
        *fits64 = 1;
        *idx = i + 5;
        return 0;
    case ERL_SMALL_BIG_EXT:
    case ERL_LARGE_BIG_EXT: {
        size_t nd, hdr;
        if (b[i] == ERL_SMALL_BIG_EXT) {
            if (i + 3 > len)
                return -1;
            nd = b[i + 1];
            hdr = 2;
        } else {
            if (i + 6 > len)
                return -1;
            nd = rc_get32(b + i + 1);
            hdr = 5;
        }
        if ((uint64_t)i + hdr + 1u + nd > (uint64_t)len)
            return -1;
        int negative = b[i + hdr] != 0;
        const uint8_t *digits = b + i + hdr + 1;
        size_t sig = nd;
        while (sig > 0 && digits[sig - 1] == 0)
            sig--;
        if (sig <= 8) {
            uint64_t mag = 0;
            for (size_t k = sig; k > 0; k--)
                mag = (mag << 8) | digits[k - 1];
            if (!negative && mag <= (uint64_t)INT64_MAX) {
                *v = (int64_t)mag;
                *fits64 = 1;
                *idx = i + (int)(hdr + 1 + nd);
                return 0;
            }
            if (negative && mag <= (uint64_t)INT64_MAX + 1u) {
                *v = mag == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)mag;
                *fits64 = 1;
                *idx = i + (int)(hdr + 1 + nd);
                return 0;
            }
        }
        if (decimal_from_bigint(negative, digits, nd, dec, dec_cap) < 0)
            return -1;
        *fits64 = 0;
        *idx = i + (int)(hdr + 1 + nd);
        return 0;
    }
    default:
        return -1;
    }
}

int term_x_reserve(ei_x_buff *x, size_t more)
{
    if (x->index < 0 || x->buffsz < x->index || more > (size_t)INT_MAX / 2 - (size_t)x->index)
        return -1;
    /* libei's own encoders grow the buffer unless ~100 bytes more than
     * they write are free: keep that much on top */
    size_t need = (size_t)x->index + more + 256;
    if (need <= (size_t)x->buffsz)
        return 0;
    size_t cap = 2 * (size_t)x->buffsz;
    if (cap < need)
        cap = need;
    if (cap > (size_t)INT_MAX)
        cap = (size_t)INT_MAX;
    char *b = realloc(x->buff, cap);
    if (b == NULL)
        return -1;
    x->buff = b;
    x->buffsz = (int)cap;
    return 0;
}

int term_write_atom_utf8(ei_x_buff *x, const uint8_t *utf8, size_t n)
{
    uint8_t hdr[3];
    int hl;
    if (n <= 255) {
        hdr[0] = ERL_SMALL_ATOM_UTF8_EXT;
        hdr[1] = (uint8_t)n;
        hl = 2;
    } else if (n <= 0xffff) {
        hdr[0] = ERL_ATOM_UTF8_EXT;
        hdr[1] = (uint8_t)(n >> 8);
        hdr[2] = (uint8_t)n;
        hl = 3;
    } else {
        return -1;
    }
    if (ei_x_append_buf(x, (const char *)hdr, hl) != 0)
        return -1;
    return ei_x_append_buf(x, (const char *)utf8, (int)n);
}
