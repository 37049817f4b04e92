#include "util/ptrtab.h"

#include "util/err.h"

#include <stdlib.h>

#define MIN_SLOTS 16u

void rc_ptrtab_free(rc_ptrtab *t)
{
    free(t->e);
    free(t->h);
    *t = (rc_ptrtab){0};
}

void *rc_ptrtab_find(const rc_ptrtab *t, uint32_t hash, rc_ptrtab_eq eq, const void *key)
{
    if (t->e == NULL)
        return NULL;
    for (uint32_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        if (t->e[i] == NULL)
            return NULL;
        if (t->h[i] == hash && eq(t->e[i], key))
            return t->e[i];
    }
}

static void put(void **e, uint32_t *h, uint32_t mask, uint32_t hash, void *entry)
{
    uint32_t i = hash & mask;
    while (e[i] != NULL)
        i = (i + 1) & mask;
    e[i] = entry;
    h[i] = hash;
}

static int resize(rc_ptrtab *t, size_t slots)
{
    if (slots > ((size_t)UINT32_MAX >> 1) + 1)
        return RC_ENOMEM;
    void **e = calloc(slots, sizeof *e);
    uint32_t *h = malloc(slots * sizeof *h);
    if (e == NULL || h == NULL) {
        free(e);
        free(h);
        return RC_ENOMEM;
    }
    for (size_t i = 0; i < rc_ptrtab_slots(t); i++)
        if (t->e[i] != NULL)
            put(e, h, (uint32_t)(slots - 1), t->h[i], t->e[i]);
    free(t->e);
    free(t->h);
    t->e = e;
    t->h = h;
    t->mask = (uint32_t)(slots - 1);
    return RC_OK;
}

int rc_ptrtab_add(rc_ptrtab *t, uint32_t hash, void *entry)
{
    size_t slots = rc_ptrtab_slots(t);
    if (((size_t)t->n + 1) * 4 > slots * 3) {
        int rc = resize(t, slots ? slots * 2 : MIN_SLOTS);
        if (rc != RC_OK)
            return rc;
    }
    put(t->e, t->h, t->mask, hash, entry);
    t->n++;
    return RC_OK;
}

int rc_ptrtab_remove(rc_ptrtab *t, uint32_t hash, const void *entry)
{
    if (t->e == NULL)
        return 0;
    uint32_t i = hash & t->mask;
    while (t->e[i] != entry) {
        if (t->e[i] == NULL)
            return 0;
        i = (i + 1) & t->mask;
    }
    /* Backward shift: move later entries of the run into the hole when
     * their home slot does not lie cyclically in (hole, j]. */
    for (uint32_t j = (i + 1) & t->mask; t->e[j] != NULL; j = (j + 1) & t->mask) {
        uint32_t home = t->h[j] & t->mask;
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            t->e[i] = t->e[j];
            t->h[i] = t->h[j];
            i = j;
        }
    }
    t->e[i] = NULL;
    t->n--;
    /* Give memory back once mostly empty (a node whose pools went). */
    size_t slots = rc_ptrtab_slots(t);
    if (slots > MIN_SLOTS && (size_t)t->n * 8 < slots)
        (void)resize(t, slots / 2); /* if that fails the table stays as it is */
    return 1;
}
