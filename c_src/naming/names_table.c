/* names_table: see names_table.h for the contract. */
#include "naming/names_table.h"

#include "codec/decimal.h"
#include "util/be.h"
#include "util/hash.h"
#include "util/ptrtab.h"

#include <stdlib.h>
#include <string.h>

/* A key is a view of two byte strings, so a lookup uses the caller's bytes
 * directly instead of first concatenating store and sub. */
typedef struct {
    const uint8_t *store;
    size_t store_len;
    const uint8_t *sub;
    size_t sub_len;
} nt_key;

static int bytes_eq(const uint8_t *a, const uint8_t *b, size_t n)
{
    return n == 0 || memcmp(a, b, n) == 0;
}


#define TAG_NIL 106
#define TAG_LIST 108
#define TAG_ATOM_UTF8 118
#define TAG_SMALL_ATOM_UTF8 119

/* One allocation an entry (one per subscription), in a ptrtab: lengths,
 * then store bytes, sub bytes and the encoding. */
typedef struct nt_entry {
    uint32_t store_len, sub_len, enc_len;
    uint8_t data[];
} nt_entry;

static nt_key entry_key(const nt_entry *e)
{
    return (nt_key){e->data, e->store_len, e->data + e->store_len, e->sub_len};
}

static const uint8_t *entry_enc(const nt_entry *e) { return e->data + e->store_len + e->sub_len; }

static int entry_has_key(const void *entry, const void *key)
{
    const nt_entry *e = entry;
    const nt_key *k = key;
    return e->store_len == k->store_len && e->sub_len == k->sub_len &&
           bytes_eq(e->data, k->store, k->store_len) &&
           bytes_eq(e->data + e->store_len, k->sub, k->sub_len);
}

struct names_table {
    rc_ptrtab entries;
    names_table_listener listener;
    void *listener_ctx;
};

static const uint8_t NIL_ENCODING[1] = {TAG_NIL};

/* The store length is mixed in between the two parts, so ("ab","c") and
 * ("a","bc") land in different places. */
static unsigned key_hash(const nt_key *k)
{
    uint64_t h = rc_hash_bytes(RC_HASH_SEED, k->store, k->store_len);
    h = rc_hash_mix(h, (uint64_t)k->store_len);
    return rc_hash_fold(rc_hash_bytes(h, k->sub, k->sub_len));
}


names_table *names_table_new(void)
{
    return calloc(1, sizeof(names_table));
}

void names_table_free(names_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < rc_ptrtab_slots(&t->entries); i++)
        free(rc_ptrtab_at(&t->entries, i));
    rc_ptrtab_free(&t->entries);
    free(t);
}

size_t names_table_count(const names_table *t)
{
    return t == NULL ? 0 : rc_ptrtab_count(&t->entries);
}

void names_table_retrieve(const names_table *t, const uint8_t *store, size_t store_len,
                          const uint8_t *sub, size_t sub_len, const uint8_t **enc,
                          size_t *enc_len)
{
    nt_key k = {store, store_len, sub, sub_len};
    const nt_entry *e = t != NULL ? rc_ptrtab_find(&t->entries, key_hash(&k), entry_has_key, &k)
                                  : NULL;
    if (e != NULL) {
        *enc = entry_enc(e);
        *enc_len = e->enc_len;
    } else {
        *enc = NIL_ENCODING;
        *enc_len = sizeof NIL_ENCODING;
    }
}

/* One allocation per entry holds the key bytes and the encoding. */
static nt_entry *entry_alloc(const uint8_t *store, size_t store_len, const uint8_t *sub,
                             size_t sub_len, size_t enc_len)
{
    if (store_len > UINT32_MAX / 4 || sub_len > UINT32_MAX / 4 || enc_len > UINT32_MAX / 4)
        return NULL;
    nt_entry *e = malloc(sizeof *e + store_len + sub_len + enc_len);
    if (e == NULL)
        return NULL;
    uint8_t *p = e->data;
    if (store_len > 0)
        memcpy(p, store, store_len);
    if (sub_len > 0)
        memcpy(p + store_len, sub, sub_len);
    e->store_len = (uint32_t)store_len;
    e->sub_len = (uint32_t)sub_len;
    e->enc_len = (uint32_t)enc_len;
    return e;
}

/* Adds e before removing the old entry, so a failed add leaves the table
 * exactly as it was. Takes ownership of e. */
static int entry_put(names_table *t, nt_entry *e)
{
    const nt_key k = entry_key(e);
    uint32_t hv = (uint32_t)key_hash(&k);
    nt_entry *old = rc_ptrtab_find(&t->entries, hv, entry_has_key, &k);
    if (rc_ptrtab_add(&t->entries, hv, e) != RC_OK) {
        free(e);
        return RC_ENOMEM;
    }
    if (old != NULL) {
        rc_ptrtab_remove(&t->entries, hv, old);
        free(old);
    }
    if (t->listener != NULL)
        t->listener(t->listener_ctx, k.store, k.store_len, k.sub, k.sub_len, entry_enc(e),
                    e->enc_len);
    return RC_OK;
}

void names_table_set_listener(names_table *t, names_table_listener fn, void *ctx)
{
    t->listener = fn;
    t->listener_ctx = ctx;
}

void names_table_foreach(const names_table *t, names_table_listener fn, void *ctx)
{
    for (size_t i = 0; i < rc_ptrtab_slots(&t->entries); i++) {
        const nt_entry *e = rc_ptrtab_at(&t->entries, i);
        if (e != NULL)
            fn(ctx, e->data, e->store_len, e->data + e->store_len, e->sub_len, entry_enc(e),
               e->enc_len);
    }
}

static size_t atom_enc_size(size_t utf8_len) { return (utf8_len <= 255 ? 2 : 3) + utf8_len; }

static uint8_t *put_atom_header(uint8_t *o, size_t utf8_len)
{
    if (utf8_len <= 255) {
        *o++ = TAG_SMALL_ATOM_UTF8;
        *o++ = (uint8_t)utf8_len;
    } else {
        *o++ = TAG_ATOM_UTF8;
        *o++ = (uint8_t)(utf8_len >> 8);
        *o++ = (uint8_t)utf8_len;
    }
    return o;
}

typedef struct {
    uint8_t base[NAMING_MAX_ATOM_UTF8];
    size_t base_len;
    size_t enc_len;
} list_plan;

/* Validates the request and computes the exact encoded size. Numbered
 * names are the base name plus '_' and N, so only the longest (N = p) needs
 * checking against the atom limit. */
static int plan_list(const uint8_t *store, size_t store_len, const uint8_t *sub,
                               size_t sub_len, int64_t p, list_plan *pl)
{
    if (p < 1)
        return RC_EBADARG;
    int st = naming_emitter_name(store, store_len, sub, sub_len, NULL, pl->base,
                                           sizeof pl->base, &pl->base_len);
    if (st != RC_OK)
        return st;
    if (p >= 2) {
        char dec[DECIMAL_INT64_CAP];
        uint8_t longest[NAMING_MAX_ATOM_UTF8];
        size_t longest_len;
        if (decimal_from_int64(p, dec, sizeof dec) < 0)
            return RC_ESYSTEM_LIMIT;
        st = naming_emitter_name(store, store_len, sub, sub_len, dec, longest, sizeof longest,
                                 &longest_len);
        if (st != RC_OK)
            return st;
    }
    if (p > NAMES_TABLE_MAX_POOL)
        return RC_ESYSTEM_LIMIT;
    size_t total = 5 + atom_enc_size(pl->base_len) + 1;
    size_t digits = 1;
    int64_t next_pow = 10;
    for (int64_t n = 2; n <= p; n++) {
        if (n == next_pow) {
            digits++;
            next_pow *= 10;
        }
        total += atom_enc_size(pl->base_len + 1 + digits);
    }
    pl->enc_len = total;
    return RC_OK;
}

static void write_list(const list_plan *pl, int64_t p, uint8_t *o)
{
    *o++ = TAG_LIST;
    *o++ = (uint8_t)((uint64_t)p >> 24);
    *o++ = (uint8_t)((uint64_t)p >> 16);
    *o++ = (uint8_t)((uint64_t)p >> 8);
    *o++ = (uint8_t)p;
    o = put_atom_header(o, pl->base_len);
    memcpy(o, pl->base, pl->base_len);
    o += pl->base_len;
    for (int64_t n = 2; n <= p; n++) {
        char dec[DECIMAL_INT64_CAP];
        int dl = decimal_from_int64(n, dec, sizeof dec); /* cannot fail */
        size_t len = pl->base_len + 1 + (size_t)dl;
        o = put_atom_header(o, len);
        memcpy(o, pl->base, pl->base_len);
        o += pl->base_len;
        *o++ = '_';
        memcpy(o, dec, (size_t)dl);
        o += dl;
    }
    *o = TAG_NIL; /* plan_list sized the buffer to end exactly here */
}

int names_table_build(const uint8_t *store, size_t store_len, const uint8_t *sub,
                                size_t sub_len, int64_t pool_size, uint8_t **enc,
                                size_t *enc_len)
{
    list_plan pl;
    int st = plan_list(store, store_len, sub, sub_len, pool_size, &pl);
    if (st != RC_OK)
        return st;
    uint8_t *b = malloc(pl.enc_len);
    if (b == NULL)
        return RC_ENOMEM;
    write_list(&pl, pool_size, b);
    *enc = b;
    *enc_len = pl.enc_len;
    return RC_OK;
}

int names_table_persist(names_table *t, const uint8_t *store, size_t store_len,
                                  const uint8_t *sub, size_t sub_len, int64_t pool_size,
                                  const uint8_t **enc, size_t *enc_len)
{
    list_plan pl;
    if (t == NULL)
        return RC_EBADARG;
    int st = plan_list(store, store_len, sub, sub_len, pool_size, &pl);
    if (st != RC_OK)
        return st;
    nt_entry *e = entry_alloc(store, store_len, sub, sub_len, pl.enc_len);
    if (e == NULL)
        return RC_ENOMEM;
    write_list(&pl, pool_size, (uint8_t *)entry_enc(e));
    st = entry_put(t, e);
    if (st != RC_OK)
        return st;
    if (enc != NULL)
        *enc = entry_enc(e);
    if (enc_len != NULL)
        *enc_len = e->enc_len;
    return RC_OK;
}

/* Accepts only what write_list produces (or []), so data read back from
 * disk can never put a malformed term into a reply. */
static int valid_encoding(const uint8_t *enc, size_t len)
{
    if (len == 1 && enc[0] == TAG_NIL)
        return 1;
    if (len < 6 || enc[0] != TAG_LIST || enc[len - 1] != TAG_NIL)
        return 0;
    uint64_t count = rc_get32(enc + 1);
    if (count == 0)
        return 0;
    size_t i = 5, end = len - 1;
    for (uint64_t k = 0; k < count; k++) {
        size_t n, chars;
        if (i >= end)
            return 0;
        if (enc[i] == TAG_SMALL_ATOM_UTF8 && end - i >= 2) {
            n = enc[i + 1];
            i += 2;
        } else if (enc[i] == TAG_ATOM_UTF8 && end - i >= 3) {
            n = ((size_t)enc[i + 1] << 8) | enc[i + 2];
            if (n <= 255)
                return 0;
            i += 3;
        } else {
            return 0;
        }
        if (end - i < n)
            return 0;
        /* emitter names only have characters <= 255, like store atoms */
        if (naming_store_chars(enc + i, n, &chars) != RC_OK || chars > NAMING_MAX_ATOM_CHARS)
            return 0;
        i += n;
    }
    return i == end;
}

int names_table_insert_encoded(names_table *t, const uint8_t *store,
                                         size_t store_len, const uint8_t *sub, size_t sub_len,
                                         const uint8_t *enc, size_t enc_len)
{
    size_t chars;
    if (t == NULL || enc == NULL || (sub_len > 0 && sub == NULL))
        return RC_EBADARG;
    if (naming_store_chars(store, store_len, &chars) != RC_OK ||
        chars > NAMING_MAX_ATOM_CHARS || !valid_encoding(enc, enc_len))
        return RC_EBADARG;
    nt_entry *e = entry_alloc(store, store_len, sub, sub_len, enc_len);
    if (e == NULL)
        return RC_ENOMEM;
    memcpy((uint8_t *)entry_enc(e), enc, enc_len);
    return entry_put(t, e);
}
