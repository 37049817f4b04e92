/* term_atoms: copies one external-format term (without version byte) into
 * a buffer, handing every atom on the way to a callback that writes it out
 * in its own encoding. Atoms are met wherever the format has them: plain
 * atoms, the node of pids, ports and references, the module of funs, the
 * module and function of exports, and atom cache references (tag 82). The
 * size field of a fun is rewritten to match what the callback wrote.
 *
 * Used in both directions of the distribution header: outgoing terms get
 * their atoms turned into cache references, incoming ones get cache
 * references turned back into atoms. Bounded like term_skip: any term that
 * is malformed, truncated, nested deeper than TERM_MAX_DEPTH or of a kind
 * the distribution never carries is refused with -1, whatever its bytes say.
 * Pure: no I/O; the output buffer's limit bounds what a term can grow to.
 * (codec/term_walk.c: one walker with term_skip, so both accept exactly
 * the same terms, cache references aside.) */
#ifndef RC_TERM_ATOMS_H
#define RC_TERM_ATOMS_H

#include "util/bytebuf.h"
#include "util/err.h"

#include <stddef.h>
#include <stdint.h>

#define TERM_ATOM_CACHE_REF 82

typedef struct term_atom {
    uint8_t tag;         /* 100, 115, 118, 119, or TERM_ATOM_CACHE_REF */
    uint8_t cache_ref;   /* the index, for TERM_ATOM_CACHE_REF */
    const uint8_t *text; /* the atom's bytes (latin-1 or UTF-8 as tag says) */
    size_t len;
    const uint8_t *raw;  /* the whole encoding as read, to copy unchanged */
    size_t raw_len;
} term_atom;

/* Writes `a` to out, re-encoded or as raw. 0, or -1 to stop the walk. */
typedef int (*term_atom_fn)(void *ctx, const term_atom *a, bytebuf *out);

/* Copies the term at buf[*idx] (len bytes in all) to out, atoms through fn;
 * *idx ends after it. 0; or -1 (the term or fn stopped it) or
 * RC_EFULL (out reached its limit between atoms): out then holds the
 * copy of the input up to the new *idx (the walk's progress, atoms
 * re-encoded), so a caller can pass the rest on as it is. */
int term_copy_atoms(const uint8_t *buf, size_t len, size_t *idx, bytebuf *out, term_atom_fn fn,
                    void *ctx);

#endif
