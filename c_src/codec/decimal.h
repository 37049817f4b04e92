/* decimal: Erlang integers written in decimal, the form emitter names carry
 * them in (emitter_name(S, Sub, N) is "..._emitter_" ++ decimal(N)). Pure,
 * no allocation, bounded by the caller's buffer. */
#ifndef RC_DECIMAL_H
#define RC_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

/* Enough for any int64 plus the NUL. */
#define DECIMAL_INT64_CAP 21

/* Writes v in decimal plus a NUL. Returns the length (without NUL), or -1 if
 * cap is too small (DECIMAL_INT64_CAP always suffices). */
int decimal_from_int64(int64_t v, char *out, size_t cap);

/* Writes a big integer in decimal plus a NUL: sign (non-zero = negative) and
 * magnitude in n little-endian base-256 digits, as SMALL_BIG_EXT /
 * LARGE_BIG_EXT / ei_decode_big carry it. Leading zero digit bytes are
 * allowed; a zero magnitude gives "0" whatever the sign. The caller's buffer
 * is the working space, so cost is O(n * digits) and bounded by cap. Returns
 * the length, or -1 if it does not fit in cap (or n is absurd). */
int decimal_from_bigint(int negative, const uint8_t *le_bytes, size_t n, char *out,
                             size_t cap);

#endif
