/* term_walk: the one walker of the external term format's grammar, bounded
 * against hostile input, with two uses: validating (term_skip, term_read.h)
 * and copying with every atom handed to a visitor (term_copy_atoms,
 * term_atoms.h). A rule about what a term may hold (a fun's fields, a
 * float's text, a bitstring's last byte) is written here once and holds for
 * both. */
#include "codec/term_atoms.h"
#include "codec/term_read.h"

#include "util/be.h"

#include <ei.h>
#include <stdlib.h>
#include <string.h>

typedef struct walk {
    const uint8_t *b;
    /* Copying: out receives the term, atoms through fn. Validating: out
     * and fn are NULL, and atom cache references are refused (they never
     * reach the layers above the transport). */
    bytebuf *out;
    term_atom_fn fn;
    void *ctx;
    size_t copied; /* input before this offset is already in out */
    int full;      /* out could not grow */
} walk;

static int fits(size_t end, size_t at, size_t n) { return at <= end && n <= end - at; }

/* Bytes between atoms go out in one piece: binaries are not looked into. */
static int flush(walk *w, size_t upto)
{
    if (w->out == NULL)
        return 0;
    if (upto > w->copied && bytebuf_append(w->out, w->b + w->copied, upto - w->copied) != 0) {
        w->full = 1;
        return -1;
    }
    w->copied = upto;
    return 0;
}

static int atom_at(walk *w, size_t end, size_t *i)
{
    if (!fits(end, *i, 1))
        return -1;
    const uint8_t *b = w->b;
    term_atom a = {.tag = b[*i]};
    size_t hdr;
    switch (a.tag) {
    case TERM_ATOM_CACHE_REF:
        if (w->fn == NULL || !fits(end, *i, 2))
            return -1;
        a.cache_ref = b[*i + 1];
        hdr = 2;
        a.len = 0;
        break;
    case ERL_SMALL_ATOM_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        if (!fits(end, *i, 2))
            return -1;
        a.len = b[*i + 1];
        hdr = 2;
        break;
    case ERL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
        if (!fits(end, *i, 3))
            return -1;
        a.len = ((size_t)b[*i + 1] << 8) | b[*i + 2];
        hdr = 3;
        break;
    default:
        return -1;
    }
    if (!fits(end, *i + hdr, a.len))
        return -1;
    a.text = b + *i + hdr;
    a.raw = b + *i;
    a.raw_len = hdr + a.len;
    if (w->fn == NULL) {
        *i += a.raw_len;
        return 0;
    }
    if (flush(w, *i) != 0 || w->fn(w->ctx, &a, w->out) != 0)
        return -1;
    *i += a.raw_len;
    w->copied = *i;
    return 0;
}

static int walk_rec(walk *w, size_t end, size_t *i, int depth);

/* The whole size of a term at `at` that holds no atom and that walk_rec
 * would step over in one go (binaries, numbers, []), or 0 for anything
 * else, a header cut short included: walk_rec then decides. */
static size_t plain_leaf(const uint8_t *b, size_t end, size_t at)
{
    switch (b[at]) {
    case ERL_SMALL_INTEGER_EXT: return 2;
    case ERL_INTEGER_EXT: return 5;
    case NEW_FLOAT_EXT: return 9;
    case ERL_NIL_EXT: return 1;
    case ERL_SMALL_BIG_EXT: return fits(end, at, 3) ? 3 + (size_t)b[at + 1] : 0;
    case ERL_BINARY_EXT: {
        if (!fits(end, at, 5))
            return 0;
        size_t n = rc_get32(b + at + 1);
        return n <= SIZE_MAX - 5 ? 5 + n : 0;
    }
    default: return 0;
    }
}

/* Each term is at least one byte: a huge count on a short input fails at
 * once instead of looping. */
static int walk_n(walk *w, size_t end, size_t *i, uint64_t count, int depth)
{
    if (*i > end || count > end - *i || (count > 0 && depth > TERM_MAX_DEPTH))
        return -1;
    const uint8_t *b = w->b;
    for (uint64_t k = 0; k < count; k++) {
        /* Binaries and numbers, most of an event's fields, are stepped
         * over here rather than through a call each. */
        size_t at = *i;
        if (at >= end)
            return -1;
        size_t n = plain_leaf(b, end, at);
        if (n != 0) {
            if (!fits(end, at, n))
                return -1;
            *i = at + n;
            continue;
        }
        if (walk_rec(w, end, i, depth) != 0)
            return -1;
    }
    return 0;
}

static int small_int_at(const uint8_t *b, size_t end, size_t *i)
{
    if (!fits(end, *i, 1))
        return -1;
    size_t n = b[*i] == ERL_SMALL_INTEGER_EXT ? 1 : b[*i] == ERL_INTEGER_EXT ? 4 : 0;
    if (n == 0 || !fits(end, *i + 1, n))
        return -1;
    *i += 1 + n;
    return 0;
}

/* NEW_FUN_EXT: Size(4, counting itself) Arity Uniq(16) Index(4) NumFree(4)
 * Module OldIndex OldUniq Pid FreeVars. Every field is checked and must lie
 * within Size, and Size must end exactly after the last free variable: ei's
 * own skip trusts each of them. Its atoms may change length when copied,
 * so Size is then written anew. */
static int walk_fun(walk *w, size_t end, size_t *i, int depth)
{
    const uint8_t *b = w->b;
    size_t at = *i + 1;
    if (!fits(end, at, 4))
        return -1;
    uint32_t size = rc_get32(b + at);
    if (size < 4 + 1 + 16 + 4 + 4 || !fits(end, at, size))
        return -1;
    size_t fun_end = at + size;
    if (flush(w, at + 4) != 0)
        return -1;
    size_t size_pos = w->out != NULL ? bytebuf_pending(w->out) - 4 : 0;
    uint32_t nfree = rc_get32(b + at + 4 + 1 + 16 + 4);
    size_t j = at + 4 + 1 + 16 + 4 + 4;
    if (atom_at(w, fun_end, &j) != 0 || small_int_at(b, fun_end, &j) != 0 ||
        small_int_at(b, fun_end, &j) != 0)
        return -1;
    if (!fits(fun_end, j, 1) || (b[j] != ERL_PID_EXT && b[j] != ERL_NEW_PID_EXT) ||
        walk_rec(w, fun_end, &j, depth + 1) != 0)
        return -1;
    if (walk_n(w, fun_end, &j, nfree, depth + 1) != 0 || j != fun_end || flush(w, fun_end) != 0)
        return -1;
    if (w->out == NULL) {
        *i = fun_end;
        return 0;
    }
    size_t new_size = bytebuf_pending(w->out) - size_pos;
    if (new_size > UINT32_MAX)
        return -1;
    uint8_t *p = w->out->data + w->out->off + size_pos;
    rc_put32(p, (uint32_t)new_size);
    *i = fun_end;
    return 0;
}

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

/* Skips n bytes of fixed data after position at. */
static int fixed(size_t end, size_t at, size_t n, size_t *i)
{
    if (!fits(end, at, n))
        return -1;
    *i = at + n;
    return 0;
}

static int walk_rec(walk *w, size_t end, size_t *i, int depth)
{
    const uint8_t *b = w->b;
    if (depth > TERM_MAX_DEPTH || !fits(end, *i, 1))
        return -1;
    uint8_t tag = b[*i];
    size_t at = *i + 1;
    switch (tag) {
    case ERL_SMALL_INTEGER_EXT: return fixed(end, at, 1, i);
    case ERL_INTEGER_EXT: return fixed(end, at, 4, i);
    case ERL_FLOAT_EXT:
        return fits(end, at, 31) && float_text_ok(b + at) ? fixed(end, at, 31, i) : -1;
    case NEW_FLOAT_EXT: return fixed(end, at, 8, i);
    case ERL_ATOM_EXT:
    case ERL_SMALL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
    case TERM_ATOM_CACHE_REF: return atom_at(w, end, i);
    case ERL_NIL_EXT: *i = at; return 0;
    case ERL_STRING_EXT:
        if (!fits(end, at, 2))
            return -1;
        return fixed(end, at + 2, ((size_t)b[at] << 8) | b[at + 1], i);
    case ERL_BINARY_EXT:
        if (!fits(end, at, 4))
            return -1;
        return fixed(end, at + 4, rc_get32(b + at), i);
    case ERL_BIT_BINARY_EXT: {
        if (!fits(end, at, 5))
            return -1;
        uint32_t n = rc_get32(b + at);
        /* the bits used in the last byte: 1 to 8, or 0 with no bytes, as
         * ei has them (ei's skip stops without moving on at any other) */
        if (b[at + 4] > 8 || (b[at + 4] == 0) != (n == 0))
            return -1;
        return fixed(end, at + 5, n, i);
    }
    case ERL_SMALL_BIG_EXT:
        if (!fits(end, at, 2))
            return -1;
        return fixed(end, at + 2, b[at], i);
    case ERL_LARGE_BIG_EXT:
        if (!fits(end, at, 5))
            return -1;
        return fixed(end, at + 5, rc_get32(b + at), i);
    case ERL_SMALL_TUPLE_EXT:
        if (!fits(end, at, 1))
            return -1;
        *i = at + 1;
        return walk_n(w, end, i, b[at], depth + 1);
    case ERL_LARGE_TUPLE_EXT:
        if (!fits(end, at, 4))
            return -1;
        *i = at + 4;
        return walk_n(w, end, i, rc_get32(b + at), depth + 1);
    case ERL_MAP_EXT:
        if (!fits(end, at, 4))
            return -1;
        *i = at + 4;
        return walk_n(w, end, i, 2ull * rc_get32(b + at), depth + 1);
    case ERL_LIST_EXT:
        if (!fits(end, at, 4))
            return -1;
        *i = at + 4;
        /* the elements, then the tail */
        return walk_n(w, end, i, (uint64_t)rc_get32(b + at) + 1u, depth + 1);
    case ERL_PID_EXT:
    case ERL_NEW_PID_EXT:
        *i = at;
        if (atom_at(w, end, i) != 0)
            return -1;
        return fixed(end, *i, tag == ERL_PID_EXT ? 9 : 12, i);
    case ERL_PORT_EXT:
    case ERL_NEW_PORT_EXT:
    case ERL_V4_PORT_EXT:
        *i = at;
        if (atom_at(w, end, i) != 0)
            return -1;
        return fixed(end, *i, tag == ERL_PORT_EXT ? 5 : tag == ERL_NEW_PORT_EXT ? 8 : 12, i);
    case ERL_REFERENCE_EXT:
        *i = at;
        if (atom_at(w, end, i) != 0)
            return -1;
        return fixed(end, *i, 5, i);
    case ERL_NEW_REFERENCE_EXT:
    case ERL_NEWER_REFERENCE_EXT: {
        if (!fits(end, at, 2))
            return -1;
        size_t words = ((size_t)b[at] << 8) | b[at + 1];
        if (words > 5)
            return -1;
        *i = at + 2;
        if (atom_at(w, end, i) != 0)
            return -1;
        return fixed(end, *i, (tag == ERL_NEW_REFERENCE_EXT ? 1u : 4u) + 4u * words, i);
    }
    case ERL_NEW_FUN_EXT:
        return walk_fun(w, end, i, depth);
    case ERL_EXPORT_EXT:
        *i = at;
        if (atom_at(w, end, i) != 0 || atom_at(w, end, i) != 0)
            return -1;
        /* the arity is a small integer, nothing else */
        if (!fits(end, *i, 2) || b[*i] != ERL_SMALL_INTEGER_EXT)
            return -1;
        *i += 2;
        return 0;
    default:
        return -1;
    }
}

int term_skip(const char *buf, int len, int *idx)
{
    if (*idx < 0 || len < 0 || *idx > len)
        return -1;
    walk w = {.b = (const uint8_t *)buf};
    size_t i = (size_t)*idx;
    if (walk_rec(&w, (size_t)len, &i, 0) != 0)
        return -1;
    *idx = (int)i;
    return 0;
}

int term_copy_atoms(const uint8_t *buf, size_t len, size_t *idx, bytebuf *out, term_atom_fn fn,
                    void *ctx)
{
    if (*idx > len)
        return -1;
    walk w = {.b = buf, .copied = *idx, .out = out, .fn = fn, .ctx = ctx};
    size_t i = *idx;
    if (walk_rec(&w, len, &i, 0) != 0 || flush(&w, i) != 0) {
        *idx = w.copied;
        return w.full ? RC_EFULL : -1;
    }
    *idx = i;
    return 0;
}
