/* naming: the seed's pure naming functions, bit-exact with reckon_db on OTP 25
 * (topic/2, emitter_name/2,3 and their errors, as the README lists them).
 *
 * Inputs: a store atom as the UTF-8 bytes of its characters (as carried by
 * ATOM_UTF8_EXT) and a subscription id as raw binary bytes. Outputs go into
 * caller-provided buffers; nothing allocates, nothing keeps state, every
 * function is safe to call from any thread.
 *
 *  - topic(S, Sub): the characters of S as one latin-1 byte each, ':', the
 *    bytes of Sub. A character of S above 255 (or invalid UTF-8) -> BADARG.
 *  - emitter_name(S, Sub[, N]): an atom of the characters of S, '_', each
 *    byte of Sub as one latin-1 character, "_emitter" (or "_emitter_" and N
 *    in decimal). Returned as the atom's UTF-8 bytes (at most
 *    NAMING_MAX_ATOM_UTF8). BADARG is checked before SYSTEM_LIMIT (more than
 *    255 characters).
 *  - Results are RC_* codes (util/err.h). RC_ENOSPACE only ever means "the
 *    caller's buffer is too small"; it is reported after BADARG and
 *    SYSTEM_LIMIT. */
#ifndef RC_NAMING_H
#define RC_NAMING_H

#include "util/err.h"

#include <stddef.h>
#include <stdint.h>


/* Erlang's atom limit is in characters, not bytes. */
#define NAMING_MAX_ATOM_CHARS 255
/* Names only contain characters <= 255, so each is at most 2 UTF-8 bytes. */
#define NAMING_MAX_ATOM_UTF8 (NAMING_MAX_ATOM_CHARS * 2)
/* "-9223372036854775808" plus the terminating NUL. */


/* Validates a store atom (UTF-8, every character <= 255) and counts its
 * characters. RC_OK or RC_EBADARG. */
int naming_store_chars(const uint8_t *store_utf8, size_t store_len, size_t *chars);

/* Exact byte length of topic(S, Sub). RC_OK, RC_EBADARG, or
 * RC_ESYSTEM_LIMIT if the length does not fit in size_t. */
int naming_topic_len(const uint8_t *store_utf8, size_t store_len, size_t sub_len,
                               size_t *out_len);

/* Writes topic(S, Sub) to out (no NUL). On any status other than RC_OK
 * *out_len is left unchanged and out may hold partial data. */
int naming_topic(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub,
                           size_t sub_len, uint8_t *out, size_t out_cap, size_t *out_len);

/* Writes the UTF-8 bytes of emitter_name(S, Sub) when n_decimal is NULL, or of
 * emitter_name(S, Sub, N) where n_decimal is N in canonical decimal form
 * (NUL-terminated, optional '-', no leading zeros, not "-0"; any other form
 * is RC_EBADARG). Single pass, no allocation. An out_cap of
 * NAMING_MAX_ATOM_UTF8 is always enough. */
int naming_emitter_name(const uint8_t *store_utf8, size_t store_len,
                                  const uint8_t *sub, size_t sub_len, const char *n_decimal,
                                  uint8_t *out, size_t out_cap, size_t *out_len);

#endif
