/* term_walk: the reader of the external term format's grammar (term_walk.h
 * says why it is a cursor, and what its two sets of rules are), and the
 * walk over it that validates (term_skip) and copies with atoms handed to
 * a visitor (term_copy_atoms). */
#include "codec/term_walk.h"

#include "codec/term_norm.h"
#include "codec/term_read.h"
#include "util/be.h"

#include <ei.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* What is rare out of line, so that the common path stays short and the
 * recursion's frames small. */
#define NOINLINE __attribute__((noinline))
/* The reader in the walk below and its small parts: a call each would
 * cost the walks more than the reading does. */
#define INLINE static inline __attribute__((always_inline))

/* next() asks a depth past TERM_MAX_DEPTH for the rules it holds under. */
_Static_assert(TERM_MAX_DEPTH < TERM_NORM_MAX_DEPTH, "ei's nesting limit is the lower");

/* Erlang refuses references with more ID words than this (OTP 24+). */
#define MAX_REF_WORDS 5

INLINE int fits(size_t end, size_t at, size_t n) { return at <= end && n <= end - at; }

/* ---- the grammar ------------------------------------------------------ */

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

/* erts: at most 255 characters of strict UTF-8. */
static NOINLINE int utf8_atom_ok(const uint8_t *s, size_t n)
{
    size_t chars = 0;
    return utf8_chars(s, n, &chars) == 0 && chars <= 255;
}

/* The atom whose tag is at b[at], its text len bytes after a header of
 * hdr: bounds, erts's rules on the text (at most 255 characters, latin-1
 * one a byte), then the cursor's hook. */
INLINE int atom_text(const term_cursor *c, size_t end, size_t at, size_t hdr, size_t len,
                     term_atom *a)
{
    const uint8_t *b = c->b;
    if (len > end - at - hdr)
        return -1;
    a->tag = b[at];
    a->len = len;
    a->text = b + at + hdr;
    a->raw = b + at;
    a->raw_len = hdr + len;
    if ((c->rules & TERM_RULES_ERTS) != 0 &&
        (a->tag == ERL_ATOM_EXT || a->tag == ERL_SMALL_ATOM_EXT ? len > 255
                                                                : !utf8_atom_ok(a->text, len)))
        return -1;
    return c->atom != NULL ? c->atom(c->ctx, a) : 0;
}

/* An atom where the grammar wants one: *i on its tag, then after it. */
INLINE int read_atom(const term_cursor *c, size_t end, size_t *i, term_atom *a)
{
    const uint8_t *b = c->b;
    size_t at = *i, hdr, len;
    if (at >= end)
        return -1;
    size_t left = end - at;
    a->cache_ref = 0;
    switch (b[at]) {
    case ERL_SMALL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_EXT:
        if (left < 2)
            return -1;
        len = b[at + 1];
        hdr = 2;
        break;
    case ERL_ATOM_UTF8_EXT:
    case ERL_ATOM_EXT:
        if (left < 3)
            return -1;
        len = rc_get16(b + at + 1);
        hdr = 3;
        break;
    case TERM_ATOM_CACHE_REF:
        if ((c->rules & TERM_RULES_CACHE_REFS) == 0 || left < 2)
            return -1;
        a->cache_ref = b[at + 1];
        len = 0;
        hdr = 2;
        break;
    default:
        return -1;
    }
    if (atom_text(c, end, at, hdr, len, a) != 0)
        return -1;
    *i = at + hdr + len;
    return 0;
}

INLINE int read_int(const uint8_t *b, size_t end, size_t *i, term_int *v)
{
    if (!fits(end, *i, 1))
        return -1;
    size_t at = *i + 1, n, hdr;
    v->neg = 0;
    v->mag = 0;
    v->digits = NULL;
    v->n = 0;
    switch (b[*i]) {
    case ERL_SMALL_INTEGER_EXT:
        if (!fits(end, at, 1))
            return -1;
        v->mag = b[at];
        *i = at + 1;
        return 0;
    case ERL_INTEGER_EXT: {
        if (!fits(end, at, 4))
            return -1;
        uint32_t u = rc_get32(b + at);
        v->neg = (int)(u >> 31);
        v->mag = v->neg ? 0u - u : u;
        *i = at + 4;
        return 0;
    }
    case ERL_SMALL_BIG_EXT:
        if (!fits(end, at, 2))
            return -1;
        n = b[at];
        hdr = 1;
        break;
    case ERL_LARGE_BIG_EXT:
        if (!fits(end, at, 5))
            return -1;
        n = rc_get32(b + at);
        hdr = 4;
        break;
    default:
        return -1;
    }
    if (!fits(end, at + hdr + 1, n))
        return -1;
    v->neg = b[at + hdr] != 0;
    v->digits = b + at + hdr + 1;
    v->n = n;
    *i = at + hdr + 1 + n;
    return 0;
}

/* v's value when it is 0..255 (zero of either sign), else -1. */
static int int_byte(const term_int *v)
{
    if (v->digits == NULL)
        return v->mag == 0 || (!v->neg && v->mag <= 255) ? (int)v->mag : -1;
    size_t n = v->n;
    while (n > 0 && v->digits[n - 1] == 0)
        n--;
    return n == 0 ? 0 : n == 1 && !v->neg ? v->digits[0] : -1;
}

/* A fun's OldIndex and OldUniq: what every encoder writes, for ei. */
static int read_fun_int(const term_cursor *r, size_t end, size_t *i, term_int *v)
{
    if ((r->rules & TERM_RULES_ERTS) == 0 && fits(end, *i, 1) &&
        r->b[*i] != ERL_SMALL_INTEGER_EXT && r->b[*i] != ERL_INTEGER_EXT)
        return -1;
    return read_int(r->b, end, i, v);
}

/* FLOAT_EXT's 31 bytes of text: every encoder writes "%.20e" padded with
 * NULs. ei reads them with sscanf, which runs on to the text's NUL (past
 * the 31 bytes, and the buffer, when there is none) and, when the text is
 * no number, fails without moving on (ei's skip of a tuple or list then
 * goes on from the wrong place): both are refused. erts wants nothing but
 * NULs after the number. */
static int read_float_text(const uint8_t *p, unsigned rules, double *d)
{
    char txt[32];
    memcpy(txt, p, 31);
    txt[31] = '\0';
    char *stop;
    *d = strtod(txt, &stop);
    if (stop == txt)
        return -1;
    if ((rules & TERM_RULES_ERTS) == 0)
        return memchr(p, 0, 31) != NULL ? 0 : -1;
    for (const char *q = stop; q < txt + 31; q++)
        if (*q != '\0')
            return -1;
    return 0;
}

static int read_pid(const term_cursor *r, size_t end, size_t *i, term_node_id *p)
{
    const uint8_t *b = r->b;
    if (!fits(end, *i, 1) || (b[*i] != ERL_PID_EXT && b[*i] != ERL_NEW_PID_EXT))
        return -1;
    size_t cre = b[*i] == ERL_PID_EXT ? 1 : 4, j = *i + 1;
    if (read_atom(r, end, &j, &p->node) != 0 || !fits(end, j, 8 + cre))
        return -1;
    p->id = rc_get32(b + j);
    p->serial = rc_get32(b + j + 4);
    p->creation = cre == 1 ? b[j + 8] : rc_get32(b + j + 8);
    p->words = NULL;
    p->nwords = 0;
    *i = j + 8 + cre;
    return 0;
}

static int read_port(const term_cursor *r, size_t end, size_t *i, uint8_t tag, term_node_id *p)
{
    const uint8_t *b = r->b;
    size_t idw = tag == ERL_V4_PORT_EXT ? 8 : 4, cre = tag == ERL_PORT_EXT ? 1 : 4;
    if (read_atom(r, end, i, &p->node) != 0 || !fits(end, *i, idw + cre))
        return -1;
    const uint8_t *q = b + *i;
    p->id = idw == 8 ? (uint64_t)rc_get32(q) << 32 | rc_get32(q + 4) : rc_get32(q);
    p->serial = 0;
    p->creation = cre == 1 ? q[idw] : rc_get32(q + idw);
    p->words = NULL;
    p->nwords = 0;
    *i += idw + cre;
    return 0;
}

static int read_ref(const term_cursor *r, size_t end, size_t *i, uint8_t tag, term_node_id *p)
{
    const uint8_t *b = r->b;
    p->id = 0;
    p->serial = 0;
    if (tag == ERL_REFERENCE_EXT) { /* the ID word before a 1-byte creation */
        if (read_atom(r, end, i, &p->node) != 0 || !fits(end, *i, 5))
            return -1;
        p->words = b + *i;
        p->nwords = 1;
        p->creation = b[*i + 4];
        *i += 5;
        return 0;
    }
    if (!fits(end, *i, 2))
        return -1;
    p->nwords = rc_get16(b + *i);
    if (p->nwords > MAX_REF_WORDS || (p->nwords == 0 && (r->rules & TERM_RULES_ERTS) != 0))
        return -1;
    *i += 2;
    size_t cre = tag == ERL_NEW_REFERENCE_EXT ? 1 : 4;
    if (read_atom(r, end, i, &p->node) != 0 || !fits(end, *i, cre + 4u * p->nwords))
        return -1;
    p->creation = cre == 1 ? b[*i] : rc_get32(b + *i);
    p->words = b + *i + cre;
    *i += cre + 4u * p->nwords;
    return 0;
}

static int read_export(const term_cursor *r, size_t end, size_t *i, term_elem *e)
{
    const uint8_t *b = r->b;
    if (read_atom(r, end, i, &e->u.export.module) != 0 ||
        read_atom(r, end, i, &e->u.export.name) != 0)
        return -1;
    if ((r->rules & TERM_RULES_ERTS) == 0) {
        if (!fits(end, *i, 2) || b[*i] != ERL_SMALL_INTEGER_EXT)
            return -1;
        e->u.export.arity = b[*i + 1];
        *i += 2;
        return 0;
    }
    term_int a;
    int v;
    if (read_int(b, end, i, &a) != 0 || (v = int_byte(&a)) < 0)
        return -1;
    e->u.export.arity = (uint8_t)v;
    return 0;
}

/* NEW_FUN_EXT: Size(4, counting itself) Arity Uniq(16) Index(4) NumFree(4)
 * Module OldIndex OldUniq Pid FreeVars. Every field must lie within Size,
 * and Size must end exactly after the last free variable (the caller's to
 * check, e->end): ei's own skip trusts each of them. */
static int read_fun(const term_cursor *r, size_t end, size_t *i, int depth, term_elem *e)
{
    const uint8_t *b = r->b;
    if (!fits(end, *i, 4))
        return -1;
    uint32_t size = rc_get32(b + *i);
    if (size < 4 + 1 + 16 + 4 + 4 || !fits(end, *i, size))
        return -1;
    e->end = *i + size;
    const uint8_t *q = b + *i + 4;
    e->u.fun.arity = q[0];
    e->u.fun.uniq = q + 1;
    e->u.fun.index = rc_get32(q + 17);
    e->u.fun.nfree = rc_get32(q + 21);
    e->count = e->u.fun.nfree;
    *i += 4 + 1 + 16 + 4 + 4;
    if (read_atom(r, e->end, i, &e->u.fun.module) != 0 ||
        read_fun_int(r, e->end, i, &e->u.fun.old_index) != 0 ||
        read_fun_int(r, e->end, i, &e->u.fun.old_uniq) != 0)
        return -1;
    if ((r->rules & TERM_RULES_ERTS) == 0 && depth >= TERM_MAX_DEPTH)
        return -1;
    return read_pid(r, e->end, i, &e->u.fun.pid);
}

/* The heads with atoms in them, or with checks beyond a length: out of
 * line, so that the common ones below stay a few instructions. i is after
 * the tag. */
static NOINLINE int next_rare(term_cursor *c, int depth, term_elem *e, size_t i)
{
    const uint8_t *b = c->b;
    size_t end = c->end;
    uint8_t tag = e->tag;
    e->end = end;
    switch (tag) {
    case ERL_LARGE_BIG_EXT:
        i--;
        if (read_int(b, end, &i, &e->u.integer) != 0)
            return -1;
        break;
    case ERL_FLOAT_EXT:
        if (!fits(end, i, 31) || read_float_text(b + i, c->rules, &e->u.f) != 0)
            return -1;
        i += 31;
        if ((c->rules & TERM_RULES_ERTS) != 0 && !isfinite(e->u.f))
            return -1;
        break;
    case ERL_ATOM_EXT:
    case ERL_SMALL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
    case TERM_ATOM_CACHE_REF:
        i--;
        if (read_atom(c, end, &i, &e->u.atom) != 0)
            return -1;
        break;
    case ERL_BIT_BINARY_EXT: {
        if (!fits(end, i, 5))
            return -1;
        uint32_t n = rc_get32(b + i);
        uint8_t bits = b[i + 4];
        /* the bits used in the last byte: 1 to 8, or 0 with no bytes, as
         * erts has them (ei's skip stops without moving on at any other) */
        if (bits > 8 || (bits == 0) != (n == 0) || !fits(end, i + 5, n))
            return -1;
        e->u.bytes.p = b + i + 5;
        e->u.bytes.n = n;
        e->u.bytes.bits = bits;
        i += 5 + n;
        break;
    }
    case ERL_LARGE_TUPLE_EXT:
        if (!fits(end, i, 4))
            return -1;
        e->count = rc_get32(b + i);
        i += 4;
        break;
    case ERL_PID_EXT:
        i--;
        if (read_pid(c, end, &i, &e->u.id) != 0)
            return -1;
        break;
    case ERL_PORT_EXT:
    case ERL_NEW_PORT_EXT:
    case ERL_V4_PORT_EXT:
        if (read_port(c, end, &i, tag, &e->u.id) != 0)
            return -1;
        break;
    case ERL_REFERENCE_EXT:
    case ERL_NEW_REFERENCE_EXT:
    case ERL_NEWER_REFERENCE_EXT:
        if (read_ref(c, end, &i, tag, &e->u.id) != 0)
            return -1;
        break;
    case ERL_NEW_FUN_EXT:
        if (read_fun(c, end, &i, depth, e) != 0)
            return -1;
        break;
    case ERL_EXPORT_EXT:
        if (read_export(c, end, &i, e) != 0)
            return -1;
        break;
    default: /* atom cache refs outside a header's scope, FUN_EXT, ... */
        return -1;
    }
    /* Each nested term is at least one byte: a huge count on a short input
     * fails at once instead of looping. */
    if (e->count > e->end - i)
        return -1;
    c->pos = i;
    return 0;
}

INLINE int next(term_cursor *c, int depth, term_elem *e)
{
    const uint8_t *b = c->b;
    size_t end = c->end, i = c->pos;
    unsigned rules = c->rules;
    if (i >= end || (depth > TERM_MAX_DEPTH && (depth > TERM_NORM_MAX_DEPTH ||
                                                 (rules & TERM_RULES_ERTS) == 0)))
        return -1;
    uint8_t tag = b[i++];
    size_t left = end - i, n;
    e->tag = tag;
    e->count = 0;
    switch (tag) {
    case ERL_SMALL_INTEGER_EXT:
        if (left < 1)
            return -1;
        e->u.integer = (term_int){.mag = b[i]};
        c->pos = i + 1;
        return 0;
    case ERL_INTEGER_EXT: {
        if (left < 4)
            return -1;
        uint32_t u = rc_get32(b + i);
        e->u.integer = (term_int){.neg = (int)(u >> 31), .mag = u >> 31 ? 0u - u : u};
        c->pos = i + 4;
        return 0;
    }
    case NEW_FLOAT_EXT: {
        if (left < 8)
            return -1;
        uint64_t bits = (uint64_t)rc_get32(b + i) << 32 | rc_get32(b + i + 4);
        memcpy(&e->u.f, &bits, sizeof bits);
        if ((rules & TERM_RULES_ERTS) != 0 && !isfinite(e->u.f))
            return -1;
        c->pos = i + 8;
        return 0;
    }
    case ERL_BINARY_EXT:
        if (left < 4 || (n = rc_get32(b + i)) > left - 4)
            return -1;
        e->u.bytes.p = b + i + 4;
        e->u.bytes.n = n;
        e->u.bytes.bits = 8;
        c->pos = i + 4 + n;
        return 0;
    case ERL_SMALL_ATOM_UTF8_EXT: /* the atoms of OTP 26 on, and of OTP 25 */
        e->u.atom.cache_ref = 0;
        if (left < 1 || atom_text(c, end, i - 1, 2, b[i], &e->u.atom) != 0)
            return -1;
        c->pos = i + 1 + b[i];
        return 0;
    case ERL_ATOM_EXT:
        e->u.atom.cache_ref = 0;
        if (left < 2 || atom_text(c, end, i - 1, 3, n = rc_get16(b + i), &e->u.atom) != 0)
            return -1;
        c->pos = i + 2 + n;
        return 0;
    case ERL_NEW_PID_EXT:
        i--;
        if (read_pid(c, end, &i, &e->u.id) != 0)
            return -1;
        c->pos = i;
        return 0;
    case ERL_SMALL_BIG_EXT:
        i--;
        if (read_int(b, end, &i, &e->u.integer) != 0)
            return -1;
        c->pos = i;
        return 0;
    case ERL_STRING_EXT:
        if (left < 2 || (n = rc_get16(b + i)) > left - 2)
            return -1;
        e->u.bytes.p = b + i + 2;
        e->u.bytes.n = n;
        e->u.bytes.bits = 8;
        c->pos = i + 2 + n;
        return 0;
    case ERL_NIL_EXT:
        c->pos = i;
        return 0;
    /* Each nested term is at least one byte: a huge count on a short input
     * fails at once instead of looping. */
    case ERL_SMALL_TUPLE_EXT:
        if (left < 1 || (e->count = b[i]) > left - 1)
            return -1;
        c->pos = i + 1;
        return 0;
    case ERL_MAP_EXT:
        if (left < 4 || (e->count = 2ull * rc_get32(b + i)) > left - 4)
            return -1;
        c->pos = i + 4;
        return 0;
    case ERL_LIST_EXT: /* the elements, then the tail */
        if (left < 4 || (e->count = rc_get32(b + i) + 1ull) > left - 4)
            return -1;
        c->pos = i + 4;
        return 0;
    default:
        return next_rare(c, depth, e, i);
    }
}

int term_next(term_cursor *c, int depth, term_elem *e) { return next(c, depth, e); }

/* ---- validating and copying ------------------------------------------- */

typedef struct walk {
    term_cursor c;
    /* The head just read. A walk needs one at a time (what a level keeps
     * of it is its count), so there is one rather than one per level of
     * nesting on the stack. */
    term_elem *e;
    /* Copying: out receives the term, atoms through fn (the cursor's atom
     * hook is copy_atom). Validating: out and fn are NULL, and atom cache
     * references are refused (they never reach the layers above the
     * transport). */
    bytebuf *out;
    term_atom_fn fn;
    void *ctx;
    size_t copied; /* input before this offset is already in out */
    int full;      /* out could not grow */
} walk;

/* Bytes between atoms go out in one piece: binaries are not looked into. */
static int flush(walk *w, size_t upto)
{
    if (w->out == NULL)
        return 0;
    if (upto > w->copied && bytebuf_append(w->out, w->c.b + w->copied, upto - w->copied) != 0) {
        w->full = 1;
        return -1;
    }
    w->copied = upto;
    return 0;
}

static int copy_atom(void *ctx, const term_atom *a)
{
    walk *w = ctx;
    size_t at = (size_t)(a->raw - w->c.b);
    if (flush(w, at) != 0 || w->fn(w->ctx, a, w->out) != 0)
        return -1;
    w->copied = at + a->raw_len;
    return 0;
}

static int walk_n(walk *w, uint64_t count, int depth);

/* The free variables end where Size says; copied, the fun's atoms may
 * have changed length, so Size is written anew. */
static NOINLINE int walk_fun(walk *w, size_t size_pos, int depth)
{
    size_t outer = w->c.end, fun_end = w->e->end;
    w->c.end = fun_end;
    int rc = walk_n(w, w->e->count, depth + 1);
    w->c.end = outer;
    if (rc != 0 || w->c.pos != fun_end || flush(w, fun_end) != 0)
        return -1;
    if (w->out == NULL)
        return 0;
    size_t new_size = bytebuf_pending(w->out) - size_pos;
    if (new_size > UINT32_MAX)
        return -1;
    rc_put32(w->out->data + w->out->off + size_pos, (uint32_t)new_size);
    return 0;
}

static int walk_n(walk *w, uint64_t count, int depth)
{
    for (uint64_t k = 0; k < count; k++) {
        /* Every byte of a head before its first atom goes out unchanged,
         * so where a fun's Size lands in out is known before it is read. */
        size_t size_pos = w->out != NULL ? bytebuf_pending(w->out) + w->c.pos + 1 - w->copied : 0;
        if (next(&w->c, depth, w->e) != 0)
            return -1;
        uint64_t n = w->e->count;
        if (w->e->tag == ERL_NEW_FUN_EXT ? walk_fun(w, size_pos, depth) != 0
                                        : n > 0 && walk_n(w, n, depth + 1) != 0)
            return -1;
    }
    return 0;
}

int term_skip(const char *buf, int len, int *idx)
{
    if (*idx < 0 || len < 0 || *idx > len)
        return -1;
    term_elem e;
    walk w = {.c = {.b = (const uint8_t *)buf,
                    .pos = (size_t)*idx,
                    .end = (size_t)len,
                    .rules = TERM_RULES_EI},
              .e = &e};
    if (walk_n(&w, 1, 0) != 0)
        return -1;
    *idx = (int)w.c.pos;
    return 0;
}

int term_copy_atoms(const uint8_t *buf, size_t len, size_t *idx, bytebuf *out, term_atom_fn fn,
                    void *ctx)
{
    if (*idx > len)
        return -1;
    term_elem e;
    walk w = {.e = &e, .copied = *idx, .out = out, .fn = fn, .ctx = ctx};
    w.c = (term_cursor){.b = buf,
                        .pos = *idx,
                        .end = len,
                        .rules = fn != NULL ? TERM_RULES_CACHE_REFS : TERM_RULES_EI,
                        .atom = fn != NULL ? copy_atom : NULL,
                        .ctx = &w};
    if (walk_n(&w, 1, 0) != 0 || flush(&w, w.c.pos) != 0) {
        *idx = w.copied;
        return w.full ? RC_EFULL : -1;
    }
    *idx = w.c.pos;
    return 0;
}
