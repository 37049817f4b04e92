/* ptrtab: an open-addressing set of pointers to entries that carry their own
 * keys, for tables with an entry per subscription (C processes by pid and
 * by name, emitter pools). A slot costs 12 bytes and the table stays at most
 * 3/4 full, where a uthash handle costs 56 bytes in every entry. The caller
 * gives each entry's hash and, to find one, an equality test; the table
 * keeps the hashes, so growing never calls back. Linear probing; removal
 * shifts the run back, leaving no tombstones.
 *
 * Adding may move every entry: a walk over the slots that can lead to an
 * add (a handler that spawns) must collect the entries first. Errors are
 * RC_* codes. Not thread-safe. */
#ifndef RC_PTRTAB_H
#define RC_PTRTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct rc_ptrtab {
    void **e;     /* entries; NULL marks a free slot */
    uint32_t *h;  /* their hashes */
    uint32_t mask; /* slots - 1 when e != NULL */
    uint32_t n;
} rc_ptrtab;

typedef int (*rc_ptrtab_eq)(const void *entry, const void *key);

void rc_ptrtab_free(rc_ptrtab *t);
/* The entry with that hash for which eq(entry, key) holds, or NULL. */
void *rc_ptrtab_find(const rc_ptrtab *t, uint32_t hash, rc_ptrtab_eq eq, const void *key);
/* Adds an entry not in the table yet: RC_OK or RC_ENOMEM (table unchanged). */
int rc_ptrtab_add(rc_ptrtab *t, uint32_t hash, void *entry);
/* Removes that very entry (by address): 1, or 0 if it is not there. */
int rc_ptrtab_remove(rc_ptrtab *t, uint32_t hash, const void *entry);

static inline size_t rc_ptrtab_count(const rc_ptrtab *t) { return t->n; }
/* Slots, for a walk: rc_ptrtab_at(t, i) for i < rc_ptrtab_slots(t) is an
 * entry or NULL. */
static inline size_t rc_ptrtab_slots(const rc_ptrtab *t)
{
    return t->e != NULL ? (size_t)t->mask + 1 : 0;
}
static inline void *rc_ptrtab_at(const rc_ptrtab *t, size_t i) { return t->e[i]; }

#endif
