/* term_norm: see term_norm.h for the contract and the canonical form. */
#include "codec/term_norm.h"

#include "util/be.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Keeps each handler's locals out of the recursive dispatcher's frame, so
 * the stack cost per nesting level stays small (see TERM_NORM_MAX_DEPTH). */
#define NOINLINE __attribute__((noinline))

/* Tags ei.h does not name (it has the rest as ERL_*_EXT). */
#define TN_NEW_FLOAT_EXT 'F'
#define TN_NEWER_REFERENCE_EXT 'Z'
#define TN_NEW_PID_EXT 'X'
#define TN_NEW_PORT_EXT 'Y'
#define TN_V4_PORT_EXT 'x'
#define TN_VERSION_MAGIC 131

/* Erlang refuses references with more id words than this (OTP 24+). */
#define TN_MAX_REF_WORDS 5

/* ---- bounded input ---------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t len;
    size_t pos; /* invariant: pos <= len */
} rd;

static int has(const rd *r, size_t n) { return r->len - r->pos >= n; }
static size_t left(const rd *r) { return r->len - r->pos; }

static int get_u8(rd *r, uint8_t *v)
{
    if (!has(r, 1))
        return -1;
    *v = r->p[r->pos++];
    return 0;
}

static int get_u16(rd *r, uint16_t *v)
{
    if (!has(r, 2))
        return -1;
    const uint8_t *q = r->p + r->pos;
    *v = rc_get16(q);
    r->pos += 2;
    return 0;
}

static int get_u32(rd *r, uint32_t *v)
{
    if (!has(r, 4))
        return -1;
    const uint8_t *q = r->p + r->pos;
    *v = rc_get32(q);
    r->pos += 4;
    return 0;
}

static int get_u64(rd *r, uint64_t *v)
{
    uint32_t hi, lo;
    if (get_u32(r, &hi) || get_u32(r, &lo))
        return -1;
    *v = ((uint64_t)hi << 32) | lo;
    return 0;
}

/* ---- growable output -------------------------------------------------- */

/* ei_x_append_buf grows by a constant, which is quadratic for big terms, so
 * the buffer is grown geometrically here (ei_x_* use malloc/realloc/free). */
static int reserve(ei_x_buff *x, size_t n)
{
    if (x->index < 0 || x->buffsz < x->index || (x->buff == NULL && x->buffsz != 0))
        return -1;
    if ((size_t)(INT_MAX - x->index) < n)
        return -1;
    size_t need = (size_t)x->index + n;
    if (need <= (size_t)x->buffsz)
        return 0;
    size_t cap = x->buffsz > 0 ? (size_t)x->buffsz : 64;
    while (cap < need)
        cap = cap > (size_t)INT_MAX / 2 ? (size_t)INT_MAX : cap * 2;
    char *nb = realloc(x->buff, cap);
    if (nb == NULL)
        return -1;
    x->buff = nb;
    x->buffsz = (int)cap;
    return 0;
}

static int put(ei_x_buff *x, const void *p, size_t n)
{
    if (reserve(x, n))
        return -1;
    if (n > 0)
        memcpy(x->buff + x->index, p, n);
    x->index += (int)n;
    return 0;
}

static int put_u8(ei_x_buff *x, uint8_t v) { return put(x, &v, 1); }

static int put_u16(ei_x_buff *x, uint16_t v)
{
    uint8_t q[2];
    rc_put16(q, v);
    return put(x, q, 2);
}

static int put_u32(ei_x_buff *x, uint32_t v)
{
    uint8_t q[4];
    rc_put32(q, v);
    return put(x, q, 4);
}

static int put_u64(ei_x_buff *x, uint64_t v)
{
    return put_u32(x, (uint32_t)(v >> 32)) || put_u32(x, (uint32_t)v) ? -1 : 0;
}

/* ---- atoms ------------------------------------------------------------ */

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF), as
 * erts requires for ATOM_UTF8_EXT. Counts characters. */
static int utf8_chars(const uint8_t *s, size_t n, size_t *chars)
{
    size_t c = 0;
    for (size_t i = 0; i < n; c++) {
        uint8_t b = s[i];
        size_t k;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b < 0x80) {
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            k = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            k = 2;
            if (b == 0xE0)
                lo = 0xA0;
            else if (b == 0xED)
                hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            k = 3;
            if (b == 0xF0)
                lo = 0x90;
            else if (b == 0xF4)
                hi = 0x8F;
        } else {
            return -1;
        }
        if (n - i - 1 < k)
            return -1;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return -1;
        for (size_t j = 2; j <= k; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return -1;
        i += k + 1;
    }
    *chars = c;
    return 0;
}

static int put_atom_header(ei_x_buff *x, size_t utf8_len)
{
    if (utf8_len <= 255) {
        uint8_t h[2] = {ERL_SMALL_ATOM_UTF8_EXT, (uint8_t)utf8_len};
        return put(x, h, 2);
    }
    uint8_t h[3] = {ERL_ATOM_UTF8_EXT, 0, 0};
    rc_put16(h + 1, (uint16_t)utf8_len);
    return put(x, h, 3);
}

static NOINLINE int norm_atom(rd *r, ei_x_buff *x)
{
    uint8_t tag;
    size_t n;
    if (get_u8(r, &tag))
        return -1;
    if (tag == ERL_ATOM_EXT || tag == ERL_ATOM_UTF8_EXT) {
        uint16_t v;
        if (get_u16(r, &v))
            return -1;
        n = v;
    } else if (tag == ERL_SMALL_ATOM_EXT || tag == ERL_SMALL_ATOM_UTF8_EXT) {
        uint8_t v;
        if (get_u8(r, &v))
            return -1;
        n = v;
    } else {
        return -1;
    }
    if (!has(r, n))
        return -1;
    const uint8_t *s = r->p + r->pos;
    r->pos += n;

    if (tag == ERL_ATOM_EXT || tag == ERL_SMALL_ATOM_EXT) {
        /* latin-1: one character per byte, bytes >= 0x80 become 2 bytes */
        if (n > 255)
            return -1;
        size_t hi = 0;
        for (size_t i = 0; i < n; i++)
            hi += s[i] >> 7;
        if (put_atom_header(x, n + hi) || reserve(x, n + hi))
            return -1;
        uint8_t *o = (uint8_t *)x->buff + x->index;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < 0x80) {
                *o++ = s[i];
            } else {
                *o++ = (uint8_t)(0xC0 | (s[i] >> 6));
                *o++ = (uint8_t)(0x80 | (s[i] & 0x3F));
            }
        }
        x->index += (int)(n + hi);
        return 0;
    }
    size_t chars;
    if (utf8_chars(s, n, &chars) || chars > 255)
        return -1;
    return put_atom_header(x, n) || put(x, s, n) ? -1 : 0;
}

/* ---- integers --------------------------------------------------------- */

/* mag: little-endian magnitude without leading (high) zero bytes. */
static int put_integer(ei_x_buff *x, int neg, const uint8_t *mag, size_t n)
{
    if (n <= 4) {
        uint64_t m = 0;
        for (size_t i = 0; i < n; i++)
            m |= (uint64_t)mag[i] << (8 * i);
        if (m == 0 || (!neg && m <= 255)) {
            uint8_t h[2] = {ERL_SMALL_INTEGER_EXT, (uint8_t)m};
            return put(x, h, 2);
        }
        if ((!neg && m <= INT32_MAX) || (neg && m <= (uint64_t)INT32_MAX + 1)) {
            uint32_t v = neg ? (uint32_t)(0u - (uint32_t)m) : (uint32_t)m;
            uint8_t h[5] = {ERL_INTEGER_EXT};
            rc_put32(h + 1, v);
            return put(x, h, 5);
        }
    }
    if (n <= 255) {
        uint8_t h[3] = {ERL_SMALL_BIG_EXT, (uint8_t)n, (uint8_t)(neg ? 1 : 0)};
        if (put(x, h, 3))
            return -1;
    } else {
        if (n > UINT32_MAX)
            return -1;
        uint8_t h[6] = {ERL_LARGE_BIG_EXT};
        rc_put32(h + 1, (uint32_t)n);
        h[5] = (uint8_t)(neg ? 1 : 0);
        if (put(x, h, 6))
            return -1;
    }
    return put(x, mag, n);
}

static NOINLINE int norm_integer(rd *r, ei_x_buff *x)
{
    uint8_t tag;
    if (get_u8(r, &tag))
        return -1;
    switch (tag) {
    case ERL_SMALL_INTEGER_EXT: {
        uint8_t v;
        if (get_u8(r, &v))
            return -1;
        return put_integer(x, 0, &v, v ? 1 : 0);
    }
    case ERL_INTEGER_EXT: {
        uint32_t u;
        if (get_u32(r, &u))
            return -1;
        int neg = (u & 0x80000000u) != 0;
        uint32_t m = neg ? 0u - u : u;
        uint8_t mag[4] = {(uint8_t)m, (uint8_t)(m >> 8), (uint8_t)(m >> 16), (uint8_t)(m >> 24)};
        size_t n = 4;
        while (n > 0 && mag[n - 1] == 0)
            n--;
        return put_integer(x, neg, mag, n);
    }
    case ERL_SMALL_BIG_EXT:
    case ERL_LARGE_BIG_EXT: {
        size_t n;
        uint8_t sign;
        if (tag == ERL_SMALL_BIG_EXT) {
            uint8_t v;
            if (get_u8(r, &v))
                return -1;
            n = v;
        } else {
            uint32_t v;
            if (get_u32(r, &v))
                return -1;
            n = v;
        }
        if (get_u8(r, &sign) || !has(r, n))
            return -1;
        const uint8_t *mag = r->p + r->pos;
        r->pos += n;
        while (n > 0 && mag[n - 1] == 0)
            n--;
        /* erts treats any non-zero sign byte as negative */
        return put_integer(x, sign != 0, mag, n);
    }
    default:
        return -1;
    }
}

/* ---- floats ----------------------------------------------------------- */

static int put_double(ei_x_buff *x, double d)
{
    if (!isfinite(d))
        return -1;
    /* -0.0 keeps its sign: since OTP 27, 0.0 =:= -0.0 is false, and a group
     * term must reach every peer as the term its member joined. */
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return put_u8(x, TN_NEW_FLOAT_EXT) || put_u64(x, bits) ? -1 : 0;
}

static NOINLINE int norm_float(rd *r, ei_x_buff *x, uint8_t tag)
{
    if (tag == TN_NEW_FLOAT_EXT) {
        uint64_t bits;
        double d;
        if (get_u64(r, &bits))
            return -1;
        memcpy(&d, &bits, sizeof d);
        return put_double(x, d);
    }
    /* FLOAT_EXT: 31 bytes of "%.20e" text, NUL padded */
    char txt[32];
    if (!has(r, 31))
        return -1;
    memcpy(txt, r->p + r->pos, 31);
    txt[31] = '\0';
    r->pos += 31;
    char *end;
    double d = strtod(txt, &end);
    if (end == txt)
        return -1;
    for (const char *q = end; q < txt + 31; q++)
        if (*q != '\0')
            return -1;
    return put_double(x, d);
}

/* ---- pids, ports, references ----------------------------------------- */

static NOINLINE int norm_pid(rd *r, ei_x_buff *x)
{
    uint8_t tag;
    uint32_t id, serial, cre;
    if (get_u8(r, &tag) || (tag != ERL_PID_EXT && tag != TN_NEW_PID_EXT))
        return -1;
    if (put_u8(x, TN_NEW_PID_EXT) || norm_atom(r, x))
        return -1;
    if (get_u32(r, &id) || get_u32(r, &serial))
        return -1;
    if (tag == ERL_PID_EXT) {
        uint8_t c;
        if (get_u8(r, &c))
            return -1;
        cre = c;
    } else if (get_u32(r, &cre)) {
        return -1;
    }
    return put_u32(x, id) || put_u32(x, serial) || put_u32(x, cre) ? -1 : 0;
}

static NOINLINE int norm_port(rd *r, ei_x_buff *x, uint8_t tag)
{
    uint64_t id;
    uint32_t cre;
    size_t at = (size_t)x->index;
    /* the tag depends on the id, which follows the node atom: patch it */
    if (put_u8(x, 0) || norm_atom(r, x))
        return -1;
    if (tag == TN_V4_PORT_EXT) {
        if (get_u64(r, &id))
            return -1;
    } else {
        uint32_t v;
        if (get_u32(r, &v))
            return -1;
        id = v;
    }
    if (tag == ERL_PORT_EXT) {
        uint8_t c;
        if (get_u8(r, &c))
            return -1;
        cre = c;
    } else if (get_u32(r, &cre)) {
        return -1;
    }
    if (id <= UINT32_MAX) {
        x->buff[at] = (char)TN_NEW_PORT_EXT;
        if (put_u32(x, (uint32_t)id))
            return -1;
    } else {
        x->buff[at] = (char)TN_V4_PORT_EXT;
        if (put_u64(x, id))
            return -1;
    }
    return put_u32(x, cre);
}

static NOINLINE int norm_ref(rd *r, ei_x_buff *x, uint8_t tag)
{
    uint16_t words = 1;
    uint32_t cre;
    if (tag != ERL_REFERENCE_EXT) {
        if (get_u16(r, &words))
            return -1;
        if (words == 0 || words > TN_MAX_REF_WORDS)
            return -1;
    }
    if (put_u8(x, TN_NEWER_REFERENCE_EXT) || put_u16(x, words) || norm_atom(r, x))
        return -1;
    if (tag == ERL_REFERENCE_EXT) {
        /* old format: the id word precedes the 1-byte creation */
        uint32_t id;
        uint8_t c;
        if (get_u32(r, &id) || get_u8(r, &c))
            return -1;
        return put_u32(x, c) || put_u32(x, id) ? -1 : 0;
    }
    if (tag == ERL_NEW_REFERENCE_EXT) {
        uint8_t c;
        if (get_u8(r, &c))
            return -1;
        cre = c;
    } else if (get_u32(r, &cre)) {
        return -1;
    }
    if (!has(r, (size_t)words * 4))
        return -1;
    if (put_u32(x, cre) || put(x, r->p + r->pos, (size_t)words * 4))
        return -1;
    r->pos += (size_t)words * 4;
    return 0;
}

/* ---- containers ------------------------------------------------------- */

static int norm(rd *r, ei_x_buff *x, unsigned depth);

static NOINLINE int norm_tuple(rd *r, ei_x_buff *x, uint8_t tag, unsigned depth)
{
    uint32_t arity;
    if (tag == ERL_SMALL_TUPLE_EXT) {
        uint8_t v;
        if (get_u8(r, &v))
            return -1;
        arity = v;
    } else if (get_u32(r, &arity)) {
        return -1;
    }
    if (arity > left(r)) /* every element takes at least one byte */
        return -1;
    if (arity <= 255) {
        uint8_t h[2] = {ERL_SMALL_TUPLE_EXT, (uint8_t)arity};
        if (put(x, h, 2))
            return -1;
    } else if (put_u8(x, ERL_LARGE_TUPLE_EXT) || put_u32(x, arity)) {
        return -1;
    }
    for (uint32_t i = 0; i < arity; i++)
        if (norm(r, x, depth + 1))
            return -1;
    return 0;
}

/* The list is flattened across tails, so [1|[2]] and [1,2] coincide. Its
 * shape (STRING_EXT or LIST_EXT) is only known at the end, so elements are
 * written after a 5-byte gap that is then turned into the right header. */
static NOINLINE int norm_list(rd *r, ei_x_buff *x, unsigned depth)
{
    size_t hdr = (size_t)x->index;
    uint8_t gap[5] = {0};
    size_t count = 0;
    int small = 1, proper = 0;
    size_t tail_at = 0;
    if (put(x, gap, sizeof gap))
        return -1;
    for (;;) {
        uint8_t tag;
        if (get_u8(r, &tag))
            return -1;
        if (tag == ERL_NIL_EXT) {
            proper = 1;
            break;
        }
        if (tag == ERL_STRING_EXT) {
            uint16_t n;
            if (get_u16(r, &n) || !has(r, n) || reserve(x, (size_t)n * 2))
                return -1;
            uint8_t *o = (uint8_t *)x->buff + x->index;
            for (size_t i = 0; i < n; i++) {
                *o++ = ERL_SMALL_INTEGER_EXT;
                *o++ = r->p[r->pos + i];
            }
            x->index += 2 * (int)n;
            r->pos += n;
            count += n;
            proper = 1;
            break;
        }
        if (tag == ERL_LIST_EXT) {
            uint32_t n;
            if (get_u32(r, &n) || n > left(r))
                return -1;
            for (uint32_t i = 0; i < n; i++) {
                size_t before = (size_t)x->index;
                if (norm(r, x, depth + 1))
                    return -1;
                if ((size_t)x->index - before != 2 ||
                    (uint8_t)x->buff[before] != ERL_SMALL_INTEGER_EXT)
                    small = 0;
            }
            count += n;
            continue;
        }
        /* improper tail: any other term */
        r->pos--;
        tail_at = (size_t)x->index;
        if (norm(r, x, depth + 1))
            return -1;
        break;
    }
    uint8_t *b = (uint8_t *)x->buff;
    if (count == 0) {
        if (proper) {
            b[hdr] = ERL_NIL_EXT;
            x->index = (int)hdr + 1;
        } else {
            size_t tl = (size_t)x->index - tail_at;
            memmove(b + hdr, b + tail_at, tl);
            x->index = (int)(hdr + tl);
        }
        return 0;
    }
    if (proper && small && count <= 0xFFFF) {
        b[hdr] = ERL_STRING_EXT;
        rc_put16(b + hdr + 1, (uint16_t)count);
        /* compact (97, byte) pairs to bytes; reads stay ahead of writes */
        for (size_t i = 0; i < count; i++)
            b[hdr + 3 + i] = b[hdr + 5 + 2 * i + 1];
        x->index = (int)(hdr + 3 + count);
        return 0;
    }
    if (count > UINT32_MAX)
        return -1;
    b[hdr] = ERL_LIST_EXT;
    rc_put32(b + hdr + 1, (uint32_t)count);
    return proper ? put_u8(x, ERL_NIL_EXT) : 0;
}

typedef struct {
    const uint8_t *k;
    size_t koff, klen;
    size_t voff, vlen;
} map_pair;

static int cmp_pair(const void *a, const void *b)
{
    const map_pair *p = a, *q = b;
    size_t n = p->klen < q->klen ? p->klen : q->klen;
    int c = memcmp(p->k, q->k, n);
    if (c != 0)
        return c;
    return (p->klen > q->klen) - (p->klen < q->klen);
}

static NOINLINE int norm_map(rd *r, ei_x_buff *x, unsigned depth)
{
    uint32_t n;
    if (get_u32(r, &n) || n > left(r) / 2) /* each key and value >= 1 byte */
        return -1;
    if (put_u8(x, ERL_MAP_EXT) || put_u32(x, n))
        return -1;
    if (n == 0)
        return 0;
    map_pair *pairs = malloc((size_t)n * sizeof *pairs);
    ei_x_buff tmp = {NULL, 0, 0};
    int rc = -1;
    if (pairs == NULL)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        pairs[i].koff = (size_t)tmp.index;
        if (norm(r, &tmp, depth + 1))
            goto out;
        pairs[i].klen = (size_t)tmp.index - pairs[i].koff;
        pairs[i].voff = (size_t)tmp.index;
        if (norm(r, &tmp, depth + 1))
            goto out;
        pairs[i].vlen = (size_t)tmp.index - pairs[i].voff;
    }
    /* tmp no longer grows: offsets can become pointers */
    for (uint32_t i = 0; i < n; i++)
        pairs[i].k = (const uint8_t *)tmp.buff + pairs[i].koff;
    qsort(pairs, n, sizeof *pairs, cmp_pair);
    for (uint32_t i = 1; i < n; i++)
        if (cmp_pair(&pairs[i - 1], &pairs[i]) == 0)
            goto out; /* erts rejects maps with equal keys too */
    if (reserve(x, (size_t)tmp.index))
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        memcpy(x->buff + x->index, pairs[i].k, pairs[i].klen);
        x->index += (int)pairs[i].klen;
        memcpy(x->buff + x->index, tmp.buff + pairs[i].voff, pairs[i].vlen);
        x->index += (int)pairs[i].vlen;
    }
    rc = 0;
out:
    free(pairs);
    free(tmp.buff);
    return rc;
}

static NOINLINE int norm_binary(rd *r, ei_x_buff *x, uint8_t tag)
{
    uint32_t n;
    uint8_t bits = 8;
    if (get_u32(r, &n))
        return -1;
    if (tag == ERL_BIT_BINARY_EXT && get_u8(r, &bits))
        return -1;
    if (!has(r, n))
        return -1;
    const uint8_t *d = r->p + r->pos;
    r->pos += n;
    if (n == 0 && tag == ERL_BIT_BINARY_EXT) {
        if (bits != 0) /* erts: an empty bitstring has 0 bits in its last byte */
            return -1;
        bits = 8;
    } else if (bits < 1 || bits > 8) {
        return -1;
    }
    if (bits == 8)
        return put_u8(x, ERL_BINARY_EXT) || put_u32(x, n) || put(x, d, n) ? -1 : 0;
    /* erts ignores the unused low bits of the last byte, so must we */
    if (put_u8(x, ERL_BIT_BINARY_EXT) || put_u32(x, n) || put_u8(x, bits) ||
        put(x, d, n - 1))
        return -1;
    return put_u8(x, (uint8_t)(d[n - 1] & (0xFF << (8 - bits))));
}

static int is_integer_tag(uint8_t t)
{
    return t == ERL_SMALL_INTEGER_EXT || t == ERL_INTEGER_EXT || t == ERL_SMALL_BIG_EXT ||
           t == ERL_LARGE_BIG_EXT;
}

static NOINLINE int norm_export(rd *r, ei_x_buff *x)
{
    if (put_u8(x, ERL_EXPORT_EXT) || norm_atom(r, x) || norm_atom(r, x))
        return -1;
    size_t at = (size_t)x->index;
    if (!has(r, 1) || !is_integer_tag(r->p[r->pos]) || norm_integer(r, x))
        return -1;
    /* the arity must be a small integer (0..255) */
    if ((size_t)x->index - at != 2 || (uint8_t)x->buff[at] != ERL_SMALL_INTEGER_EXT)
        return -1;
    return 0;
}

static NOINLINE int norm_new_fun(rd *r, ei_x_buff *x, unsigned depth)
{
    size_t start = r->pos; /* at the Size field */
    uint32_t size, index, nfree;
    uint8_t arity;
    if (get_u32(r, &size) || size > left(r) + 4 || get_u8(r, &arity) || !has(r, 16))
        return -1;
    size_t out_at = (size_t)x->index;
    if (put_u8(x, ERL_NEW_FUN_EXT) || put_u32(x, 0) || put_u8(x, arity) ||
        put(x, r->p + r->pos, 16))
        return -1;
    r->pos += 16;
    if (get_u32(r, &index) || get_u32(r, &nfree) || put_u32(x, index) || put_u32(x, nfree))
        return -1;
    if (norm_atom(r, x))
        return -1;
    for (int i = 0; i < 2; i++) /* OldIndex, OldUniq */
        if (!has(r, 1) || !is_integer_tag(r->p[r->pos]) || norm_integer(r, x))
            return -1;
    if (norm_pid(r, x))
        return -1;
    if (nfree > left(r))
        return -1;
    for (uint32_t i = 0; i < nfree; i++)
        if (norm(r, x, depth + 1))
            return -1;
    if (r->pos - start != size)
        return -1;
    size_t out_size = (size_t)x->index - out_at - 1;
    if (out_size > UINT32_MAX)
        return -1;
    rc_put32((uint8_t *)x->buff + out_at + 1, (uint32_t)out_size);
    return 0;
}

/* ---- dispatch --------------------------------------------------------- */

static int norm(rd *r, ei_x_buff *x, unsigned depth)
{
    if (depth > TERM_NORM_MAX_DEPTH || !has(r, 1))
        return -1;
    uint8_t tag = r->p[r->pos];
    switch (tag) {
    case ERL_ATOM_EXT:
    case ERL_SMALL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        return norm_atom(r, x);
    case ERL_SMALL_INTEGER_EXT:
    case ERL_INTEGER_EXT:
    case ERL_SMALL_BIG_EXT:
    case ERL_LARGE_BIG_EXT:
        return norm_integer(r, x);
    case ERL_PID_EXT:
    case TN_NEW_PID_EXT:
        return norm_pid(r, x);
    case ERL_NIL_EXT:
    case ERL_STRING_EXT:
    case ERL_LIST_EXT:
        return norm_list(r, x, depth);
    default:
        break;
    }
    r->pos++;
    switch (tag) {
    case ERL_FLOAT_EXT:
    case TN_NEW_FLOAT_EXT:
        return norm_float(r, x, tag);
    case ERL_PORT_EXT:
    case TN_NEW_PORT_EXT:
    case TN_V4_PORT_EXT:
        return norm_port(r, x, tag);
    case ERL_REFERENCE_EXT:
    case ERL_NEW_REFERENCE_EXT:
    case TN_NEWER_REFERENCE_EXT:
        return norm_ref(r, x, tag);
    case ERL_SMALL_TUPLE_EXT:
    case ERL_LARGE_TUPLE_EXT:
        return norm_tuple(r, x, tag, depth);
    case ERL_MAP_EXT:
        return norm_map(r, x, depth);
    case ERL_BINARY_EXT:
    case ERL_BIT_BINARY_EXT:
        return norm_binary(r, x, tag);
    case ERL_EXPORT_EXT:
        return norm_export(r, x);
    case ERL_NEW_FUN_EXT:
        return norm_new_fun(r, x, depth);
    default:
        return -1;
    }
}

int term_norm_encode(const char *buf, int len, int *index, ei_x_buff *out)
{
    if (buf == NULL || index == NULL || out == NULL || len < 0 || *index < 0 || *index > len)
        return -1;
    if (out->index < 0 || out->buffsz < out->index)
        return -1;
    rd r = {(const uint8_t *)buf, (size_t)len, (size_t)*index};
    int saved = out->index;
    if (norm(&r, out, 0) != 0) {
        out->index = saved;
        return -1;
    }
    *index = (int)r.pos;
    return 0;
}

int term_norm_term(const char *buf, int len, ei_x_buff *out)
{
    int index = 0;
    if (buf == NULL || len < 1)
        return -1;
    if ((uint8_t)buf[0] == TN_VERSION_MAGIC)
        index = 1;
    int saved = out ? out->index : 0;
    if (term_norm_encode(buf, len, &index, out) != 0)
        return -1;
    if (index != len) {
        out->index = saved;
        return -1;
    }
    return 0;
}

uint64_t term_norm_hash(const void *bytes, size_t n)
{
    const uint8_t *p = bytes;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
