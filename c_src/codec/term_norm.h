/* term_norm: canonical re-encoding of Erlang external-format terms.
 *
 * Contract: for two encodings of terms that are equal under =:= (as OTP 27
 * and newer define it), term_norm produces identical bytes; for terms that
 * are not =:=, different bytes. OTP 25 and 26 differ in one point: there
 * 0.0 =:= -0.0; here they stay two terms, as in a mixed cluster the newer
 * nodes keep them apart. So canonical bytes can be compared with memcmp and hashed, e.g. to
 * key pg group terms arriving from different encoders.
 *
 * Canonical form (no version byte 131 is ever written):
 *  - atoms: SMALL_ATOM_UTF8_EXT, or ATOM_UTF8_EXT when over 255 bytes;
 *  - integers: SMALL_INTEGER_EXT (0..255), else INTEGER_EXT (int32), else
 *    SMALL_BIG_EXT / LARGE_BIG_EXT (over 255 digit bytes) without leading
 *    zero digit bytes, sign byte 0 or 1;
 *  - floats: NEW_FLOAT_EXT, the sign of zero kept;
 *  - lists are flattened across LIST_EXT/STRING_EXT tails; a proper list of
 *    integers 0..255 with 1..65535 elements is STRING_EXT, otherwise LIST_EXT
 *    with its tail (NIL_EXT when proper); a LIST_EXT with no elements is its
 *    tail; the empty list is NIL_EXT;
 *  - tuples: SMALL_TUPLE_EXT up to arity 255, else LARGE_TUPLE_EXT;
 *  - maps: MAP_EXT with pairs sorted by the canonical bytes of their keys
 *    (memcmp order, shorter prefix first); duplicate keys are rejected;
 *  - binaries: BINARY_EXT; bitstrings: BIT_BINARY_EXT with unused trailing
 *    bits zeroed (a bitstring of whole bytes becomes BINARY_EXT);
 *  - pids: NEW_PID_EXT; ports: NEW_PORT_EXT if the id fits 32 bits, else
 *    V4_PORT_EXT; references: NEWER_REFERENCE_EXT (1..5 id words);
 *  - funs: EXPORT_EXT and NEW_FUN_EXT re-encoded with canonical parts (the
 *    Size field of NEW_FUN_EXT recomputed).
 * Rejected (return -1): malformed or truncated input, ATOM_CACHE_REF (needs
 * the distribution header), COMPRESSED, FUN_EXT (removed in OTP 23),
 * LOCAL_EXT, NaN/infinite floats, invalid UTF-8 or atoms over 255
 * characters, nesting deeper than TERM_NORM_MAX_DEPTH. Every read is checked
 * against the given length; no input makes it read out of bounds.
 *
 * Thread-safety: no shared state; FLOAT_EXT (legacy text floats) is parsed
 * with strtod and so assumes the C numeric locale. */
#ifndef RC_TERM_NORM_H
#define RC_TERM_NORM_H

#include <stddef.h>
#include <stdint.h>

#include <ei.h>

/* Nesting limit (tuples, list elements, maps, fun environments); deeper
 * input is rejected. Nesting recurses on the C stack at about 150 bytes per
 * level optimised and about 450 with ASan, so this bounds the stack to
 * roughly 150 KB / 450 KB on any thread. List tails are walked iteratively
 * and cost no depth, so long lists are fine. Group terms, the intended
 * input, are a few levels deep; 1000 leaves a wide margin. */
#define TERM_NORM_MAX_DEPTH 1000

/* Reads one term from buf[*index .. len) and appends its canonical encoding
 * to out (out must be initialised, e.g. ei_x_new). On success returns 0 and
 * advances *index past the term. On error returns -1, leaves *index
 * unchanged and restores out->index to its value on entry.
 * The length argument is needed because ei's own decoders trust the buffer;
 * this function never does. out->buff may be reallocated (with realloc, as
 * ei_x_* do) to grow geometrically. */
int term_norm_encode(const char *buf, int len, int *index, ei_x_buff *out);

/* A whole buffer holding exactly one term, with or without a leading version
 * byte 131; trailing bytes are an error. Appends the canonical encoding
 * (without version byte) to out. 0 or -1, as term_norm_encode. */
int term_norm_term(const char *buf, int len, ei_x_buff *out);

/* 64-bit FNV-1a over canonical bytes, for hash tables of group terms. */
uint64_t term_norm_hash(const void *bytes, size_t n);

#endif
