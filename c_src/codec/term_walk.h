/* term_walk: the one reader of the external term format's grammar, behind
 * validating (term_skip, term_read.h), copying with atoms re-encoded
 * (term_copy_atoms, term_atoms.h) and canonical re-encoding (term_norm.h).
 * A rule about what a term may hold (its tags, lengths and bounds, the
 * depth limit, a fun's fields, a float's text, a bitstring's last byte, an
 * atom's UTF-8) is written once, in term_next, and holds for all three.
 *
 * A cursor, not one walk with visitors: term_next reads one term's head
 * (its tag, its fields, how many nested terms follow it) and each user
 * recurses on its own. Validating and copying would fit a visitor (the
 * copy's atoms do go to one, the cursor's hook), normalising does not: it
 * sorts a map's pairs by the canonical bytes of their keys, so each key and
 * value is written to a buffer of its own first, and it knows a list's
 * header (STRING_EXT or LIST_EXT) only after the last tail. Under someone
 * else's recursion that would be a stack of output buffers kept by hand; in
 * its own it is the C stack. The users share every check; where nested
 * terms go stays theirs.
 *
 * Two sets of rules, because the users guard different things: the
 * validating ones ei's decoders, which trust what they read; the
 * normalising one a contract of accepting what binary_to_term accepts.
 *
 *                       TERM_RULES_EI           TERM_RULES_ERTS
 *   nesting             TERM_MAX_DEPTH          TERM_NORM_MAX_DEPTH
 *   atom text           any bytes               latin-1 <= 255, strict
 *                                               UTF-8 <= 255 characters
 *   FLOAT_EXT text      a number, a NUL within  a number, then only NULs;
 *                       the 31 bytes (sscanf)   finite
 *   NEW_FLOAT_EXT       any bits                finite
 *   reference words     0..5                    1..5
 *   export arity        SMALL_INTEGER_EXT       any integer 0..255
 *   fun OldIndex,       SMALL_INTEGER_EXT or    any integer
 *     OldUniq           INTEGER_EXT
 *   fun creator pid     a level deeper (ei      part of the fun's head
 *                       decodes it as a term)
 *
 * Atom cache references (tag 82) stand for atoms only with
 * TERM_RULES_CACHE_REFS (copying inside a distribution header's scope).
 * Depth is the caller's to count: each nested term is one level deeper,
 * except that normalising walks a list's tails as part of the list. */
#ifndef RC_TERM_WALK_H
#define RC_TERM_WALK_H

#include "codec/term_atoms.h"

#include <stddef.h>
#include <stdint.h>

#define TERM_RULES_EI 0u
#define TERM_RULES_CACHE_REFS 1u
#define TERM_RULES_ERTS 2u

/* An integer of any of the four encodings. */
typedef struct term_int {
    int neg;               /* bigs: any non-zero sign byte, as erts has it */
    uint32_t mag;          /* SMALL_INTEGER_EXT, INTEGER_EXT: the magnitude */
    const uint8_t *digits; /* bigs: the magnitude, low byte first; else NULL */
    size_t n;              /* bigs: how many digit bytes, zeros included */
} term_int;

/* A pid, a port or a reference. */
typedef struct term_node_id {
    term_atom node;
    uint64_t id;          /* pids and ports (32 bits but for V4_PORT_EXT) */
    uint32_t serial;      /* pids */
    uint32_t creation;    /* as wide as the encoding has it */
    const uint8_t *words; /* references: the ID words as written */
    uint16_t nwords;
} term_node_id;

typedef struct term_elem {
    uint8_t tag;
    uint64_t count; /* nested terms after the head: a tuple's elements, a
                     * map's keys and values, a list's elements and then its
                     * tail, a fun's free variables */
    size_t end;     /* funs: where the free variables must end */
    union {
        term_atom atom;
        term_int integer;
        double f;
        struct {
            const uint8_t *p;
            size_t n;
            uint8_t bits; /* used in the last byte: 1..8, 0 with no bytes */
        } bytes;          /* binaries, bitstrings, STRING_EXT */
        term_node_id id;
        struct {
            term_atom module, name;
            uint8_t arity;
        } export;
        struct {
            uint8_t arity;
            const uint8_t *uniq; /* 16 bytes */
            uint32_t index, nfree;
            term_atom module;
            term_int old_index, old_uniq;
            term_node_id pid;
        } fun;
    } u;
} term_elem;

typedef struct term_cursor {
    const uint8_t *b;
    size_t pos; /* the next term */
    size_t end; /* nothing from here on is read */
    unsigned rules;
    /* When set, every atom in a head (plain, a node's, a fun's module, an
     * export's) as soon as it is read, before the rest of the head is
     * checked: a copy then stops where the input stopped making sense.
     * 0, or -1 to stop. */
    int (*atom)(void *ctx, const term_atom *a);
    void *ctx;
} term_cursor;

/* Reads the head of the term at c->pos, nested `depth` levels deep, into
 * *e and moves c->pos past it: to its first nested term, if it has any.
 * 0, or -1 with c->pos where it was. */
int term_next(term_cursor *c, int depth, term_elem *e);

#endif
