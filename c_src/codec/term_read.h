/* term_read: bounded, zero-copy readers for the few external-format terms
 * the request server needs exactly (atoms with any characters including NUL,
 * binaries, integers of any size), and writers for atoms given as UTF-8
 * bytes. ei's own atom decoder stops at NUL and its decoders do not know the
 * buffer end, which is not good enough for bit-exact names. */
#ifndef RC_TERM_READ_H
#define RC_TERM_READ_H

#include <ei.h>
#include <stddef.h>
#include <stdint.h>

/* Atom as UTF-8 bytes: latin-1 encodings are converted into `scratch`
 * (capacity >= 2*255), UTF-8 ones point into buf. 0 or -1 (not an atom). */
int term_read_atom(const char *buf, int len, int *idx, const uint8_t **utf8, size_t *n,
                   uint8_t *scratch, size_t scratch_cap);
/* Binary (not bitstring): pointer into buf. 0 or -1. */
int term_read_binary(const char *buf, int len, int *idx, const uint8_t **data, size_t *n);

/* Integer of any size. fits64 = 1 and *v set when it fits int64; otherwise
 * the decimal text is written to dec (NUL-terminated). 0, or -1 if not an
 * integer or the decimal does not fit dec_cap. */
int term_read_integer(const char *buf, int len, int *idx, int64_t *v, int *fits64, char *dec,
                      size_t dec_cap);

/* Room for `more` bytes after x's end, grown to at least twice its size:
 * libei grows a buffer by ~200 bytes a step, so a message built from many
 * appends (a pg sync, the names table's snapshot) would be copied over and
 * over as it grows. 0 or -1. */
int term_x_reserve(ei_x_buff *x, size_t more);

/* Appends an atom given as UTF-8 bytes (<= 255 characters). */
int term_write_atom_utf8(ei_x_buff *x, const uint8_t *utf8, size_t n);

/* Bounded skip over one term at *idx within buf[0, len): -1 if the term is
 * malformed, truncated, nested deeper than TERM_MAX_DEPTH or of a kind that
 * never crosses a pass-through connection (atom cache refs, compressed).
 * Every frame is validated with this before ei's decoders, which trust the
 * lengths they read, are let loose on it. */
#define TERM_MAX_DEPTH 512
/* (codec/term_walk.c: the same walker as term_copy_atoms.) */
int term_skip(const char *buf, int len, int *idx);

#endif
