/* term_norm: see term_norm.h for the contract and the canonical form. The
 * input is read by term_walk's reader under the erts rules (term_walk.h),
 * which refuses everything the contract refuses but maps with equal keys;
 * what is here is the canonical output. */
#include "codec/term_norm.h"

#include "codec/term_walk.h"
#include "util/be.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Each kind of container is a frame of its own, entered by a tail call
 * (put_term), so a level of nesting costs the stack one such frame (see
 * TERM_NORM_MAX_DEPTH). */
#define NOINLINE __attribute__((noinline))

#define TN_VERSION_MAGIC 131

/* ---- growable output -------------------------------------------------- */

/* ei_x_append_buf grows by a constant, which is quadratic for big terms, so
 * the buffer is grown geometrically here (ei_x_* use malloc/realloc/free). */
static NOINLINE int grow(ei_x_buff *x, size_t n)
{
    if ((size_t)(INT_MAX - x->index) < n)
        return -1;
    size_t need = (size_t)x->index + n;
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

/* Room for n more bytes. Every term written asks several times, so the
 * answer when there is room is inline; x was found sound on entry
 * (term_norm_encode), and index <= buffsz holds from there on. */
static inline int reserve(ei_x_buff *x, size_t n)
{
    return (size_t)(x->buffsz - x->index) >= n ? 0 : grow(x, n);
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

static int put_atom(ei_x_buff *x, const term_atom *a)
{
    const uint8_t *s = a->text;
    size_t n = a->len;
    if (a->tag == ERL_ATOM_UTF8_EXT || a->tag == ERL_SMALL_ATOM_UTF8_EXT)
        return put_atom_header(x, n) || put(x, s, n) ? -1 : 0;
    /* latin-1: one character per byte, bytes >= 0x80 become 2 bytes */
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

/* ---- numbers ---------------------------------------------------------- */

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

static int put_int(ei_x_buff *x, const term_int *v)
{
    uint8_t small[4] = {(uint8_t)v->mag, (uint8_t)(v->mag >> 8), (uint8_t)(v->mag >> 16),
                        (uint8_t)(v->mag >> 24)};
    const uint8_t *mag = v->digits != NULL ? v->digits : small;
    size_t n = v->digits != NULL ? v->n : sizeof small;
    while (n > 0 && mag[n - 1] == 0)
        n--;
    return put_integer(x, v->neg, mag, n);
}

/* The reader refuses NaN and the infinities. -0.0 keeps its sign: since
 * OTP 27, 0.0 =:= -0.0 is false, and a group term must reach every peer as
 * the term its member joined. */
static int put_double(ei_x_buff *x, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return put_u8(x, NEW_FLOAT_EXT) || put_u64(x, bits) ? -1 : 0;
}

/* ---- binaries, pids, ports, references, funs -------------------------- */

static int put_bits(ei_x_buff *x, const uint8_t *d, uint32_t n, uint8_t bits)
{
    if (bits == 8 || n == 0)
        return put_u8(x, ERL_BINARY_EXT) || put_u32(x, n) || put(x, d, n) ? -1 : 0;
    /* erts ignores the unused low bits of the last byte, so must we */
    if (put_u8(x, ERL_BIT_BINARY_EXT) || put_u32(x, n) || put_u8(x, bits) || put(x, d, n - 1))
        return -1;
    return put_u8(x, (uint8_t)(d[n - 1] & (0xFF << (8 - bits))));
}

static int put_pid(ei_x_buff *x, const term_node_id *p)
{
    return put_u8(x, ERL_NEW_PID_EXT) || put_atom(x, &p->node) || put_u32(x, (uint32_t)p->id) ||
                   put_u32(x, p->serial) || put_u32(x, p->creation)
               ? -1
               : 0;
}

static int put_port(ei_x_buff *x, const term_node_id *p)
{
    int v4 = p->id > UINT32_MAX;
    if (put_u8(x, v4 ? ERL_V4_PORT_EXT : ERL_NEW_PORT_EXT) || put_atom(x, &p->node))
        return -1;
    if (v4 ? put_u64(x, p->id) : put_u32(x, (uint32_t)p->id))
        return -1;
    return put_u32(x, p->creation);
}

static int put_ref(ei_x_buff *x, const term_node_id *p)
{
    return put_u8(x, ERL_NEWER_REFERENCE_EXT) || put_u16(x, p->nwords) ||
                   put_atom(x, &p->node) || put_u32(x, p->creation) ||
                   put(x, p->words, 4u * p->nwords)
               ? -1
               : 0;
}

static int put_export(ei_x_buff *x, const term_elem *e)
{
    return put_u8(x, ERL_EXPORT_EXT) || put_atom(x, &e->u.export.module) ||
                   put_atom(x, &e->u.export.name) || put_u8(x, ERL_SMALL_INTEGER_EXT) ||
                   put_u8(x, e->u.export.arity)
               ? -1
               : 0;
}

/* Everything before the free variables; Size is written once they are. */
static int put_fun_head(ei_x_buff *x, const term_elem *e)
{
    if (put_u8(x, ERL_NEW_FUN_EXT) || put_u32(x, 0) || put_u8(x, e->u.fun.arity) ||
        put(x, e->u.fun.uniq, 16) || put_u32(x, e->u.fun.index) || put_u32(x, e->u.fun.nfree))
        return -1;
    return put_atom(x, &e->u.fun.module) || put_int(x, &e->u.fun.old_index) ||
                   put_int(x, &e->u.fun.old_uniq) || put_pid(x, &e->u.fun.pid)
               ? -1
               : 0;
}

/* ---- terms ------------------------------------------------------------ */

/* Where normalising reads: the cursor, and the head it read last. Nesting
 * needs one head at a time (what a level keeps of it is its count), so
 * there is one, not one per level on the stack. */
typedef struct norm_in {
    term_cursor c;
    term_elem e;
} norm_in;

static int put_term(norm_in *r, ei_x_buff *x, unsigned depth);

/* The next term, nested depth levels deep. Inline in each container's
 * loop, which keeps r, x and depth at hand anyway. */
static inline int norm(norm_in *r, ei_x_buff *x, unsigned depth)
{
    return term_next(&r->c, (int)depth, &r->e) != 0 ? -1 : put_term(r, x, depth);
}

/* Whether the next term is a list, one of whose segments a tail of a list
 * may be. */
static int at_list(const term_cursor *c)
{
    uint8_t t = c->pos < c->end ? c->b[c->pos] : 0;
    return t == ERL_LIST_EXT || t == ERL_STRING_EXT || t == ERL_NIL_EXT;
}

/* The list whose first segment was just read. It is flattened across
 * tails, so [1|[2]] and [1,2] coincide. Its shape (STRING_EXT or LIST_EXT)
 * is only known at the end, so elements are written after a 5-byte gap
 * that is then turned into the right header. */
static NOINLINE int norm_list(norm_in *r, ei_x_buff *x, unsigned depth)
{
    size_t hdr = (size_t)x->index;
    size_t count = 0;
    int small = 1, proper = 0;
    size_t tail_at = 0;
    if (put_u8(x, 0) || put_u32(x, 0))
        return -1;
    for (;;) {
        if (r->e.tag == ERL_NIL_EXT) {
            proper = 1;
            break;
        }
        if (r->e.tag == ERL_STRING_EXT) {
            const uint8_t *s = r->e.u.bytes.p;
            size_t n = r->e.u.bytes.n;
            if (reserve(x, n * 2))
                return -1;
            uint8_t *o = (uint8_t *)x->buff + x->index;
            for (size_t i = 0; i < n; i++) {
                *o++ = ERL_SMALL_INTEGER_EXT;
                *o++ = s[i];
            }
            x->index += 2 * (int)n;
            count += n;
            proper = 1;
            break;
        }
        /* LIST_EXT: its elements, then its tail */
        uint64_t n = r->e.count - 1;
        for (uint64_t i = 0; i < n; i++) {
            size_t before = (size_t)x->index;
            if (norm(r, x, depth + 1))
                return -1;
            if ((size_t)x->index - before != 2 ||
                (uint8_t)x->buff[before] != ERL_SMALL_INTEGER_EXT)
                small = 0;
        }
        count += n;
        /* A tail that is a list goes on in this one, at no cost in depth:
         * long chains of tails are walked, not recursed. */
        if (at_list(&r->c)) {
            if (term_next(&r->c, (int)depth, &r->e) != 0)
                return -1;
            continue;
        }
        /* improper tail: any other term */
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

static NOINLINE int norm_map(norm_in *r, ei_x_buff *x, uint32_t n, unsigned depth)
{
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

/* The fun just read, its free variables (which must end where its Size
 * says), then Size, for the canonical parts. */
static NOINLINE int norm_fun(norm_in *r, ei_x_buff *x, unsigned depth)
{
    size_t out_at = (size_t)x->index, fun_end = r->e.end, outer = r->c.end;
    uint64_t nfree = r->e.count;
    if (put_fun_head(x, &r->e))
        return -1;
    r->c.end = fun_end;
    for (uint64_t i = 0; i < nfree; i++)
        if (norm(r, x, depth + 1))
            return -1;
    r->c.end = outer;
    if (r->c.pos != fun_end)
        return -1;
    size_t out_size = (size_t)x->index - out_at - 1;
    if (out_size > UINT32_MAX)
        return -1;
    rc_put32((uint8_t *)x->buff + out_at + 1, (uint32_t)out_size);
    return 0;
}

/* A tuple's elements, after its header. */
static NOINLINE int norm_tuple(norm_in *r, ei_x_buff *x, uint32_t arity, unsigned depth)
{
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

/* Writes the term whose head was just read, by a call that is the last
 * thing done here, so this frame is gone before anything nested in it is
 * walked: a level of nesting costs the stack one container's frame. */
static int put_term(norm_in *r, ei_x_buff *x, unsigned depth)
{
    const term_elem *e = &r->e;
    switch (e->tag) {
    case ERL_ATOM_EXT:
    case ERL_SMALL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        return put_atom(x, &e->u.atom);
    case ERL_SMALL_INTEGER_EXT:
    case ERL_INTEGER_EXT:
    case ERL_SMALL_BIG_EXT:
    case ERL_LARGE_BIG_EXT:
        return put_int(x, &e->u.integer);
    case ERL_FLOAT_EXT:
    case NEW_FLOAT_EXT:
        return put_double(x, e->u.f);
    case ERL_BINARY_EXT:
    case ERL_BIT_BINARY_EXT:
        return put_bits(x, e->u.bytes.p, (uint32_t)e->u.bytes.n, e->u.bytes.bits);
    case ERL_PID_EXT:
    case ERL_NEW_PID_EXT:
        return put_pid(x, &e->u.id);
    case ERL_PORT_EXT:
    case ERL_NEW_PORT_EXT:
    case ERL_V4_PORT_EXT:
        return put_port(x, &e->u.id);
    case ERL_REFERENCE_EXT:
    case ERL_NEW_REFERENCE_EXT:
    case ERL_NEWER_REFERENCE_EXT:
        return put_ref(x, &e->u.id);
    case ERL_EXPORT_EXT:
        return put_export(x, e);
    case ERL_NEW_FUN_EXT:
        return norm_fun(r, x, depth);
    case ERL_SMALL_TUPLE_EXT:
    case ERL_LARGE_TUPLE_EXT:
        return norm_tuple(r, x, (uint32_t)e->count, depth);
    case ERL_MAP_EXT:
        return norm_map(r, x, (uint32_t)(e->count / 2), depth);
    case ERL_NIL_EXT:
    case ERL_STRING_EXT:
    case ERL_LIST_EXT:
        return norm_list(r, x, depth);
    default:
        return -1;
    }
}

int term_norm_encode(const char *buf, int len, int *index, ei_x_buff *out)
{
    if (buf == NULL || index == NULL || out == NULL || len < 0 || *index < 0 || *index > len)
        return -1;
    if (out->index < 0 || out->buffsz < out->index || (out->buff == NULL && out->buffsz != 0))
        return -1;
    norm_in r; /* r.e is written before it is read */
    r.c = (term_cursor){.b = (const uint8_t *)buf,
                        .pos = (size_t)*index,
                        .end = (size_t)len,
                        .rules = TERM_RULES_ERTS};
    int saved = out->index;
    if (norm(&r, out, 0) != 0) {
        out->index = saved;
        return -1;
    }
    *index = (int)r.c.pos;
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
