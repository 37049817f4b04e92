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
 *  - NAMING_NOSPACE only ever means "the caller's buffer is too small"; it is
 *    reported after BADARG and SYSTEM_LIMIT. */
#ifndef RC_NAMING_H
#define RC_NAMING_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    NAMING_OK = 0,
    NAMING_BADARG,       /* Erlang error: badarg */
    NAMING_SYSTEM_LIMIT, /* Erlang error: system_limit */
    NAMING_NOSPACE,      /* output buffer too small (not an Erlang error) */
    NAMING_NOMEM         /* allocation failed (used by names_table) */
} naming_status;

/* Erlang's atom limit is in characters, not bytes. */
#define NAMING_MAX_ATOM_CHARS 255
/* Names only contain characters <= 255, so each is at most 2 UTF-8 bytes. */
#define NAMING_MAX_ATOM_UTF8 (NAMING_MAX_ATOM_CHARS * 2)
/* "-9223372036854775808" plus the terminating NUL. */

/* The Erlang error atom name for a status ("badarg", "system_limit"), or
 * NULL for NAMING_OK. NOSPACE/NOMEM map to "system_limit". */
const char *naming_status_atom(naming_status st);

/* Validates a store atom (UTF-8, every character <= 255) and counts its
 * characters. NAMING_OK or NAMING_BADARG. */
naming_status naming_store_chars(const uint8_t *store_utf8, size_t store_len, size_t *chars);

/* Exact byte length of topic(S, Sub). NAMING_OK, NAMING_BADARG, or
 * NAMING_SYSTEM_LIMIT if the length does not fit in size_t. */
naming_status naming_topic_len(const uint8_t *store_utf8, size_t store_len, size_t sub_len,
                               size_t *out_len);

/* Writes topic(S, Sub) to out (no NUL). On any status other than NAMING_OK
 * *out_len is left unchanged and out may hold partial data. */
naming_status naming_topic(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub,
                           size_t sub_len, uint8_t *out, size_t out_cap, size_t *out_len);

/* Writes the UTF-8 bytes of emitter_name(S, Sub) when n_decimal is NULL, or of
 * emitter_name(S, Sub, N) where n_decimal is N in canonical decimal form
 * (NUL-terminated, optional '-', no leading zeros, not "-0"; any other form
 * is NAMING_BADARG). Single pass, no allocation. An out_cap of
 * NAMING_MAX_ATOM_UTF8 is always enough. */
naming_status naming_emitter_name(const uint8_t *store_utf8, size_t store_len,
                                  const uint8_t *sub, size_t sub_len, const char *n_decimal,
                                  uint8_t *out, size_t out_cap, size_t *out_len);

#endif
