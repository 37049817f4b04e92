#include "codec/term_read.h"

#include "codec/decimal.h"
#include "util/be.h"

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

static int need(int len, size_t at, size_t n) { return at + n <= (size_t)len; }

static int skip_atom(const uint8_t *b, int len, size_t *i)
{
    if (!need(len, *i, 1))
        return -1;
    size_t n, h;
    switch (b[*i]) {
    case ERL_SMALL_ATOM_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        if (!need(len, *i, 2))
            return -1;
        n = b[*i + 1];
        h = 2;
        break;
    case ERL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
        if (!need(len, *i, 3))
            return -1;
        n = ((size_t)b[*i + 1] << 8) | b[*i + 2];
        h = 3;
        break;
    default:
        return -1;
    }
    if (!need(len, *i, h + n))
        return -1;
    *i += h + n;
    return 0;
}

static int skip_rec(const uint8_t *b, int len, size_t *i, int depth);

/* FLOAT_EXT's 31 bytes of text. ei reads them with sscanf, which runs on to
 * the text's NUL (past the 31 bytes, and the buffer, when there is none)
 * and, when the text is no number, fails without moving on (ei's skip of a
 * tuple or list then goes on from the wrong place). Both are refused: every
 * encoder writes "%.20e" padded with NULs. */
static int float_text_ok(const uint8_t *p)
{
    char txt[31];
    if (memchr(p, 0, sizeof txt) == NULL)
        return 0;
    memcpy(txt, p, sizeof txt);
    char *end;
    (void)strtod(txt, &end);
    return end != txt;
}

/* Skips `count` consecutive terms; each is at least one byte, so a huge
 * count on a short buffer fails fast instead of looping. */
static int skip_n(const uint8_t *b, int len, size_t *i, uint64_t count, int depth)
{
    if (count > (uint64_t)len)
        return -1;
    for (uint64_t k = 0; k < count; k++)
        if (skip_rec(b, len, i, depth) != 0)
            return -1;
    return 0;
}

/* An integer field of a fun (OldIndex, OldUniq). */
static int skip_small_int(const uint8_t *b, int len, size_t *i)
{
    if (!need(len, *i, 1))
        return -1;
    size_t n = b[*i] == ERL_SMALL_INTEGER_EXT ? 1 : b[*i] == ERL_INTEGER_EXT ? 4 : 0;
    if (n == 0 || !need(len, *i + 1, n))
        return -1;
    *i += 1 + n;
    return 0;
}

/* NEW_FUN_EXT: Size(4, counting itself) Arity(1) Uniq(16) Index(4)
 * NumFree(4) Module OldIndex OldUniq Pid FreeVars... Every field is checked
 * and must lie within Size, and Size must end exactly after the last free
 * variable: ei's own skip trusts each of them. */
static int skip_fun(const uint8_t *b, int len, size_t *i, int depth)
{
    size_t at = *i + 1;
    if (!need(len, at, 4))
        return -1;
    uint32_t size = rc_get32(b + at);
    if (size < 4 + 1 + 16 + 4 + 4 || !need(len, at, size))
        return -1;
    int end = (int)(at + size); /* fits: at + size <= len */
    size_t j = at + 4 + 1 + 16 + 4;
    uint32_t nfree = rc_get32(b + j);
    j += 4;
    if (skip_atom(b, end, &j) != 0 || skip_small_int(b, end, &j) != 0 ||
        skip_small_int(b, end, &j) != 0)
        return -1;
    if (!need(end, j, 1) || (b[j] != ERL_PID_EXT && b[j] != ERL_NEW_PID_EXT) ||
        skip_rec(b, end, &j, depth + 1) != 0)
        return -1;
    if (skip_n(b, end, &j, nfree, depth + 1) != 0 || j != (size_t)end)
        return -1;
    *i = j;
    return 0;
}

static int skip_rec(const uint8_t *b, int len, size_t *i, int depth)
{
    if (depth > TERM_MAX_DEPTH || !need(len, *i, 1))
        return -1;
    uint8_t tag = b[*i];
    size_t at = *i + 1;
    uint32_t n;
    switch (tag) {
    case ERL_SMALL_INTEGER_EXT: return need(len, at, 1) ? (*i = at + 1, 0) : -1;
    case ERL_INTEGER_EXT: return need(len, at, 4) ? (*i = at + 4, 0) : -1;
    case ERL_FLOAT_EXT:
        return need(len, at, 31) && float_text_ok(b + at) ? (*i = at + 31, 0) : -1;
    case NEW_FLOAT_EXT: return need(len, at, 8) ? (*i = at + 8, 0) : -1;
    case ERL_ATOM_EXT:
    case ERL_SMALL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT: return skip_atom(b, len, i);
    case ERL_NIL_EXT: *i = at; return 0;
    case ERL_STRING_EXT:
        if (!need(len, at, 2))
            return -1;
        n = ((uint32_t)b[at] << 8) | b[at + 1];
        return need(len, at + 2, n) ? (*i = at + 2 + n, 0) : -1;
    case ERL_BINARY_EXT:
        if (!need(len, at, 4))
            return -1;
        n = rc_get32(b + at);
        return need(len, at + 4, n) ? (*i = at + 4 + n, 0) : -1;
    case ERL_BIT_BINARY_EXT:
        if (!need(len, at, 5))
            return -1;
        n = rc_get32(b + at);
        /* the bits used in the last byte: 1 to 8, or 0 with no bytes, as
         * ei has them (ei's skip stops without moving on at any other) */
        if (b[at + 4] > 8 || (b[at + 4] == 0) != (n == 0))
            return -1;
        return need(len, at + 5, n) ? (*i = at + 5 + n, 0) : -1;
    case ERL_SMALL_BIG_EXT:
        if (!need(len, at, 2))
            return -1;
        n = b[at];
        return need(len, at + 2, n) ? (*i = at + 2 + n, 0) : -1;
    case ERL_LARGE_BIG_EXT:
        if (!need(len, at, 5))
            return -1;
        n = rc_get32(b + at);
        return need(len, at + 5, n) ? (*i = at + 5 + n, 0) : -1;
    case ERL_SMALL_TUPLE_EXT:
        if (!need(len, at, 1))
            return -1;
        *i = at + 1;
        return skip_n(b, len, i, b[at], depth + 1);
    case ERL_LARGE_TUPLE_EXT:
        if (!need(len, at, 4))
            return -1;
        *i = at + 4;
        return skip_n(b, len, i, rc_get32(b + at), depth + 1);
    case ERL_MAP_EXT:
        if (!need(len, at, 4))
            return -1;
        *i = at + 4;
        return skip_n(b, len, i, 2ull * rc_get32(b + at), depth + 1);
    case ERL_LIST_EXT:
        if (!need(len, at, 4))
            return -1;
        *i = at + 4;
        /* elements, then the tail */
        return skip_n(b, len, i, (uint64_t)rc_get32(b + at) + 1u, depth + 1);
    case ERL_PID_EXT:
    case ERL_NEW_PID_EXT:
        *i = at;
        if (skip_atom(b, len, i) != 0)
            return -1;
        n = tag == ERL_PID_EXT ? 9 : 12;
        return need(len, *i, n) ? (*i += n, 0) : -1;
    case ERL_PORT_EXT:
    case ERL_NEW_PORT_EXT:
    case ERL_V4_PORT_EXT:
        *i = at;
        if (skip_atom(b, len, i) != 0)
            return -1;
        n = tag == ERL_PORT_EXT ? 5 : tag == ERL_NEW_PORT_EXT ? 8 : 12;
        return need(len, *i, n) ? (*i += n, 0) : -1;
    case ERL_REFERENCE_EXT:
        *i = at;
        if (skip_atom(b, len, i) != 0)
            return -1;
        return need(len, *i, 5) ? (*i += 5, 0) : -1;
    case ERL_NEW_REFERENCE_EXT:
    case ERL_NEWER_REFERENCE_EXT: {
        if (!need(len, at, 2))
            return -1;
        uint32_t words = ((uint32_t)b[at] << 8) | b[at + 1];
        if (words > 5)
            return -1;
        *i = at + 2;
        if (skip_atom(b, len, i) != 0)
            return -1;
        n = (tag == ERL_NEW_REFERENCE_EXT ? 1u : 4u) + 4u * words;
        return need(len, *i, n) ? (*i += n, 0) : -1;
    }
    case ERL_NEW_FUN_EXT:
        return skip_fun(b, len, i, depth);
    case ERL_EXPORT_EXT:
        *i = at;
        if (skip_atom(b, len, i) != 0 || skip_atom(b, len, i) != 0)
            return -1;
        /* the arity is a small integer, nothing else */
        return need(len, *i, 2) && b[*i] == ERL_SMALL_INTEGER_EXT ? (*i += 2, 0) : -1;
    default:
        return -1;
    }
}

int term_skip(const char *buf, int len, int *idx)
{
    if (*idx < 0 || len < 0)
        return -1;
    size_t i = (size_t)*idx;
    if (skip_rec((const uint8_t *)buf, len, &i, 0) != 0)
        return -1;
    *idx = (int)i;
    return 0;
}
