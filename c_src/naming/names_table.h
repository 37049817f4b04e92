/* names_table: the in-memory persisted emitter-name table (persist_emitters /
 * retrieve_emitters of reckon-db).
 *
 * Keyed by group key {S, Sub, emitters}, i.e. by (store atom UTF-8 bytes,
 * subscription bytes). The value is kept PRE-ENCODED as the external format
 * of the list of emitter-name atoms (no version byte 131): LIST_EXT of
 * SMALL_ATOM_UTF8_EXT / ATOM_UTF8_EXT elements ending in NIL_EXT, exactly
 * what term_to_binary would give for the list minus the atom tag choice. A
 * retrieve is a hash lookup returning a pointer the caller copies into its
 * reply; a missing key yields the encoding of [] (a single NIL_EXT byte).
 *
 * Pool sizes: 1 <= p <= NAMES_TABLE_MAX_POOL. p < 1 is RC_EBADARG (the
 * seed fails on lists:seq(2, P) for P < 1). p above NAMES_TABLE_MAX_POOL is
 * RC_ESYSTEM_LIMIT: the seed would try to build the list, but a C node
 * must not be made to allocate gigabytes by one request. Name errors follow
 * naming.h: BADARG for a store character > 255, SYSTEM_LIMIT if the longest
 * name (emitter_name(S, Sub, p), or the base name when p = 1) exceeds 255
 * characters. Checks run in that order: p < 1, names, p > max.
 *
 * Not thread-safe: one owner thread (the event loop). Pointers returned by
 * persist/retrieve stay valid until the same key is replaced or the table is
 * freed; copy them before handing them to another thread. */
#ifndef RC_NAMES_TABLE_H
#define RC_NAMES_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "naming/naming.h"

#define NAMES_TABLE_MAX_POOL 65535

typedef struct names_table names_table;

/* NULL if out of memory. */
names_table *names_table_new(void);
void names_table_free(names_table *t); /* NULL is fine */

/* Builds [emitter_name(S,Sub) | [emitter_name(S,Sub,N) || N <- 2..p]],
 * stores its encoding under (S, Sub) replacing any previous entry, and
 * returns the stored encoding (enc/enc_len may be NULL if not wanted). On
 * error the table is unchanged.
 * Returns RC_OK, RC_EBADARG, RC_ESYSTEM_LIMIT or RC_ENOMEM. */
int names_table_persist(names_table *t, const uint8_t *store, size_t store_len,
                                  const uint8_t *sub, size_t sub_len, int64_t pool_size,
                                  const uint8_t **enc, size_t *enc_len);

/* The same list encoding, into a new malloc'd buffer the caller frees,
 * without touching any table (e.g. to write it to disk first). */
int names_table_build(const uint8_t *store, size_t store_len, const uint8_t *sub,
                                size_t sub_len, int64_t pool_size, uint8_t **enc,
                                size_t *enc_len);

/* Stores a ready encoding under (S, Sub), replacing any previous entry; used
 * when loading from disk. The encoding is checked to be a proper list of
 * atoms in the canonical form above (or NIL_EXT); anything else is
 * RC_EBADARG and the table is unchanged. The store name must be a valid
 * store atom (characters <= 255). Copies enc. */
int names_table_insert_encoded(names_table *t, const uint8_t *store,
                                         size_t store_len, const uint8_t *sub, size_t sub_len,
                                         const uint8_t *enc, size_t enc_len);

/* Never fails: a missing key gives the 1-byte encoding of []. */
void names_table_retrieve(const names_table *t, const uint8_t *store, size_t store_len,
                          const uint8_t *sub, size_t sub_len, const uint8_t **enc,
                          size_t *enc_len);

size_t names_table_count(const names_table *t);

/* An entry (S bytes, Sub bytes, its list encoding). */
typedef void (*names_table_listener)(void *ctx, const uint8_t *store, size_t store_len,
                                     const uint8_t *sub, size_t sub_len, const uint8_t *enc,
                                     size_t enc_len);
/* fn is told of every entry stored from now on (after the table holds it),
 * so replicas elsewhere can follow; one listener, NULL to stop. */
void names_table_set_listener(names_table *t, names_table_listener fn, void *ctx);
/* Visits every entry; fn must not change the table. */
void names_table_foreach(const names_table *t, names_table_listener fn, void *ctx);

#endif
