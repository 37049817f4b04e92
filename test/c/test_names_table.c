/* Unit tests for names_table (persist/retrieve of pre-encoded emitter-name
 * lists) and names_store (LMDB durability). Encodings are checked byte for
 * byte and by decoding them with ei. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <unistd.h>

#include <ei.h>

#include "naming/names_store.h"
#include "naming/names_table.h"
#include "store_dir.h"

#define U8(s) ((const uint8_t *)(s))
#define STR(s) U8(s), strlen(s)

/* Decodes a list of atoms and compares with the expected UTF-8 names. */
static void expect_names(const uint8_t *enc, size_t len, const char *const *names, size_t n)
{
    int idx = 0, arity = -1;
    const char *buf = (const char *)enc;
    assert_int_equal(ei_decode_list_header(buf, &idx, &arity), 0);
    assert_int_equal(arity, (int)n);
    for (size_t i = 0; i < n; i++) {
        char atom[MAXATOMLEN_UTF8];
        erlang_char_encoding got_enc;
        assert_int_equal(
            ei_decode_atom_as(buf, &idx, atom, sizeof atom, ERLANG_UTF8, &got_enc, NULL), 0);
        assert_string_equal(atom, names[i]);
    }
    if (n > 0) {
        assert_int_equal(ei_decode_list_header(buf, &idx, &arity), 0);
        assert_int_equal(arity, 0);
    }
    assert_int_equal(idx, (int)len);
}

static void test_persist_retrieve(void **st)
{
    (void)st;
    names_table *t = names_table_new();
    assert_non_null(t);
    const uint8_t *enc, *got;
    size_t len, glen;
    assert_int_equal(names_table_persist(t, STR("store"), STR("sub"), 3, &enc, &len), RC_OK);
    const char *names[] = {"store_sub_emitter", "store_sub_emitter_2", "store_sub_emitter_3"};
    expect_names(enc, len, names, 3);
    names_table_retrieve(t, STR("store"), STR("sub"), &got, &glen);
    assert_ptr_equal(got, enc);
    assert_int_equal(glen, len);
    assert_int_equal(names_table_count(t), 1);

    /* exact bytes for p = 2 */
    const uint8_t exp[] = {108, 0,   0,   0,   2,   119, 17,  's', 't', 'o', 'r', 'e', '_',
                           's', 'u', 'b', '_', 'e', 'm', 'i', 't', 't', 'e', 'r', 119, 19,
                           's', 't', 'o', 'r', 'e', '_', 's', 'u', 'b', '_', 'e', 'm', 'i',
                           't', 't', 'e', 'r', '_', '2', 106};
    assert_int_equal(names_table_persist(t, STR("store"), STR("sub"), 2, &enc, &len), RC_OK);
    assert_int_equal(len, sizeof exp);
    assert_memory_equal(enc, exp, sizeof exp);
    names_table_retrieve(t, STR("store"), STR("sub"), &got, &glen);
    assert_int_equal(glen, sizeof exp);
    assert_memory_equal(got, exp, sizeof exp);
    assert_int_equal(names_table_count(t), 1);
    names_table_free(t);
}

static void test_missing_and_p1(void **st)
{
    (void)st;
    names_table *t = names_table_new();
    const uint8_t *enc;
    size_t len;
    names_table_retrieve(t, STR("store"), STR("sub"), &enc, &len);
    assert_int_equal(len, 1);
    assert_int_equal(enc[0], 106);
    assert_int_equal(names_table_persist(t, STR("store"), STR("sub"), 1, &enc, &len), RC_OK);
    const uint8_t exp[] = {108, 0,   0,   0,   1,   119, 17,  's', 't', 'o', 'r', 'e', '_',
                           's', 'u', 'b', '_', 'e', 'm', 'i', 't', 't', 'e', 'r', 106};
    assert_int_equal(len, sizeof exp);
    assert_memory_equal(enc, exp, sizeof exp);
    /* other keys are still missing; NULL table too */
    names_table_retrieve(t, STR("store"), STR("su"), &enc, &len);
    assert_int_equal(len, 1);
    assert_int_equal(enc[0], 106);
    names_table_retrieve(t, STR("stor"), STR("esub"), &enc, &len);
    assert_int_equal(len, 1);
    names_table_retrieve(NULL, STR("store"), STR("sub"), &enc, &len);
    assert_int_equal(len, 1);
    assert_int_equal(names_table_count(NULL), 0);
    names_table_free(t);
    names_table_free(NULL);
}

static void test_errors_leave_table_unchanged(void **st)
{
    (void)st;
    names_table *t = names_table_new();
    const uint8_t *enc, *got;
    size_t len, glen;
    assert_int_equal(names_table_persist(t, STR("s"), STR("x"), 2, &enc, &len), RC_OK);
    const int64_t bad_p[] = {0, -1, INT64_MIN};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(names_table_persist(t, STR("s"), STR("x"), bad_p[i], &enc, &len),
                         RC_EBADARG);
    assert_int_equal(names_table_persist(t, STR("s"), STR("x"), NAMES_TABLE_MAX_POOL + 1, &enc,
                                         &len),
                     RC_ESYSTEM_LIMIT);
    assert_int_equal(names_table_persist(t, STR("s"), STR("x"), INT64_MAX, &enc, &len),
                     RC_ESYSTEM_LIMIT);
    /* store with a character > 255 */
    const uint8_t wide[] = {'s', 0xC4, 0x85};
    assert_int_equal(names_table_persist(t, wide, 3, STR("x"), 1, &enc, &len), RC_EBADARG);
    /* badarg for p < 1 is checked before the names */
    assert_int_equal(names_table_persist(t, wide, 3, STR("x"), 0, &enc, &len), RC_EBADARG);
    uint8_t sub[250];
    memset(sub, 'q', sizeof sub);
    assert_int_equal(names_table_persist(t, STR("s"), sub, 250, 1, &enc, &len),
                     RC_ESYSTEM_LIMIT);
    /* base name fits (255 chars) but "_2" does not */
    assert_int_equal(names_table_persist(t, STR("s"), sub, 245, 1, &enc, &len), RC_OK);
    assert_int_equal(names_table_persist(t, STR("s"), sub, 245, 2, &enc, &len),
                     RC_ESYSTEM_LIMIT);
    /* 243 bytes: "_emitter_9" reaches exactly 255 chars, "_emitter_10" does not fit */
    assert_int_equal(names_table_persist(t, STR("s"), sub, 243, 9, &enc, &len), RC_OK);
    assert_int_equal(names_table_persist(t, STR("s"), sub, 243, 10, &enc, &len),
                     RC_ESYSTEM_LIMIT);
    assert_int_equal(names_table_count(t), 3);
    names_table_retrieve(t, STR("s"), STR("x"), &got, &glen);
    const char *names[] = {"s_x_emitter", "s_x_emitter_2"};
    expect_names(got, glen, names, 2);
    names_table_retrieve(t, STR("s"), sub, 243, &got, &glen);
    int idx = 0, arity = 0;
    assert_int_equal(ei_decode_list_header((const char *)got, &idx, &arity), 0);
    assert_int_equal(arity, 9);
    names_table_free(t);
}

static void test_max_pool(void **st)
{
    (void)st;
    names_table *t = names_table_new();
    const uint8_t *enc;
    size_t len;
    assert_int_equal(names_table_persist(t, STR("st"), STR("su"), NAMES_TABLE_MAX_POOL, &enc,
                                         &len),
                     RC_OK);
    int idx = 0, arity = 0;
    const char *buf = (const char *)enc;
    assert_int_equal(ei_decode_list_header(buf, &idx, &arity), 0);
    assert_int_equal(arity, NAMES_TABLE_MAX_POOL);
    char atom[MAXATOMLEN_UTF8], exp[64];
    for (int i = 1; i <= arity; i++) {
        assert_int_equal(ei_decode_atom_as(buf, &idx, atom, sizeof atom, ERLANG_UTF8, NULL, NULL),
                         0);
        if (i == 1)
            snprintf(exp, sizeof exp, "st_su_emitter");
        else
            snprintf(exp, sizeof exp, "st_su_emitter_%d", i);
        assert_string_equal(atom, exp);
    }
    assert_int_equal(ei_decode_list_header(buf, &idx, &arity), 0);
    assert_int_equal(arity, 0);
    assert_int_equal(idx, (int)len);
    names_table_free(t);
}

static void test_wide_names(void **st)
{
    (void)st;
    /* a store with latin-1 characters and a sub of high bytes: names over
     * 255 UTF-8 bytes are encoded as ATOM_UTF8_EXT */
    names_table *t = names_table_new();
    const uint8_t store[] = {'c', 'a', 'f', 0xC3, 0xA9};
    uint8_t sub[200];
    memset(sub, 0xFC, sizeof sub);
    const uint8_t *enc;
    size_t len;
    assert_int_equal(names_table_persist(t, store, sizeof store, sub, sizeof sub, 2, &enc, &len),
                     RC_OK);
    char n1[600], n2[610];
    size_t o = 0;
    memcpy(n1, store, sizeof store);
    o = sizeof store;
    n1[o++] = '_';
    for (int i = 0; i < 200; i++) {
        n1[o++] = (char)0xC3;
        n1[o++] = (char)0xBC;
    }
    memcpy(n1 + o, "_emitter", 9);
    snprintf(n2, sizeof n2, "%s_2", n1);
    const char *names[] = {n1, n2};
    expect_names(enc, len, names, 2);
    assert_int_equal(enc[5], 118); /* ATOM_UTF8_EXT */
    size_t l1 = strlen(n1);
    assert_int_equal(enc[6], l1 >> 8);
    assert_int_equal(enc[7], l1 & 0xFF);
    names_table_free(t);
}

static void test_atom_tag_boundary(void **st)
{
    (void)st;
    names_table *t = names_table_new();
    uint8_t sub[245];
    memset(sub, 'q', sizeof sub);
    const uint8_t *enc;
    size_t len;
    /* "s_" + 245 + "_emitter": 255 characters, 255 bytes: SMALL_ATOM_UTF8_EXT */
    assert_int_equal(names_table_persist(t, STR("s"), sub, 245, 1, &enc, &len), RC_OK);
    assert_int_equal(len, 5 + 2 + 255 + 1);
    assert_int_equal(enc[5], 119);
    assert_int_equal(enc[6], 255);
    assert_int_equal(enc[len - 1], 106);
    /* one high byte: still 255 characters but 256 bytes: ATOM_UTF8_EXT */
    sub[0] = 0xE9;
    assert_int_equal(names_table_persist(t, STR("s"), sub, 245, 1, &enc, &len), RC_OK);
    assert_int_equal(len, 5 + 3 + 256 + 1);
    assert_int_equal(enc[5], 118);
    assert_int_equal(enc[6], 1);
    assert_int_equal(enc[7], 0);
    assert_int_equal(enc[len - 1], 106);
    /* crossing the boundary within one list: the base name is 253 characters
     * in 254 bytes (SMALL), "_2" and "_3" make 256 bytes (ATOM_UTF8) */
    assert_int_equal(names_table_persist(t, STR("s"), sub, 243, 3, &enc, &len), RC_OK);
    assert_int_equal(enc[5], 119);
    assert_int_equal(enc[6], 254);
    assert_int_equal(enc[7 + 254], 118);
    assert_int_equal(len, 5 + (2 + 254) + 2 * (3 + 256) + 1);
    int idx = 0, arity = 0;
    char atom[MAXATOMLEN_UTF8];
    assert_int_equal(ei_decode_list_header((const char *)enc, &idx, &arity), 0);
    assert_int_equal(arity, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ei_decode_atom_as((const char *)enc, &idx, atom, sizeof atom,
                                           ERLANG_UTF8, NULL, NULL),
                         0);
    assert_int_equal(ei_decode_list_header((const char *)enc, &idx, &arity), 0);
    assert_int_equal(idx, (int)len);
    /* the loader accepts what persist wrote, and refuses 118 for a short atom */
    assert_int_equal(names_table_insert_encoded(t, STR("x"), STR("y"), enc, len), RC_OK);
    uint8_t b255[5 + 3 + 255 + 1];
    b255[0] = 108;
    b255[1] = b255[2] = b255[3] = 0;
    b255[4] = 1;
    b255[5] = 118;
    b255[6] = 0;
    b255[7] = 255;
    memset(b255 + 8, 'a', 255);
    b255[8 + 255] = 106;
    assert_int_equal(names_table_insert_encoded(t, STR("x"), STR("y"), b255, sizeof b255),
                     RC_EBADARG);
    names_table_free(t);
}

/* Enough keys of one length that some share a 32-bit hash: every lookup
 * must still return its own entry, which exercises the key comparison. */
static void test_hash_collisions(void **st)
{
    (void)st;
    names_table *t = names_table_new();
    const int n = 200000;
    char sub[16], exp[64];
    for (int i = 0; i < n; i++) {
        snprintf(sub, sizeof sub, "%07d", i);
        assert_int_equal(names_table_persist(t, STR("s"), STR(sub), 1, NULL, NULL), RC_OK);
    }
    for (int i = 0; i < n; i++) {
        const uint8_t *enc;
        size_t len;
        snprintf(sub, sizeof sub, "%07d", i);
        snprintf(exp, sizeof exp, "s_%s_emitter", sub);
        names_table_retrieve(t, STR("s"), STR(sub), &enc, &len);
        assert_int_equal(len, 5 + 2 + strlen(exp) + 1);
        assert_memory_equal(enc + 7, exp, strlen(exp));
    }
    names_table_free(t);
}

static void test_many_keys(void **st)
{
    (void)st;
    names_table *t = names_table_new();
    char sub[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(sub, sizeof sub, "sub%d", i);
        assert_int_equal(names_table_persist(t, STR("s"), STR(sub), 1 + i % 4, NULL, NULL),
                         RC_OK);
    }
    /* keys that concatenate equally stay distinct */
    assert_int_equal(names_table_persist(t, STR("ab"), STR("c"), 1, NULL, NULL), RC_OK);
    assert_int_equal(names_table_persist(t, STR("a"), STR("bc"), 2, NULL, NULL), RC_OK);
    assert_int_equal(names_table_persist(t, STR(""), STR(""), 1, NULL, NULL), RC_OK);
    assert_int_equal(names_table_count(t), 10003);
    for (int i = 0; i < 10000; i++) {
        const uint8_t *enc;
        size_t len;
        snprintf(sub, sizeof sub, "sub%d", i);
        names_table_retrieve(t, STR("s"), STR(sub), &enc, &len);
        assert_int_equal(enc[0], 108);
        assert_int_equal(enc[4], 1 + i % 4);
    }
    const uint8_t *enc;
    size_t len;
    names_table_retrieve(t, STR("a"), STR("bc"), &enc, &len);
    const char *abc[] = {"a_bc_emitter", "a_bc_emitter_2"};
    expect_names(enc, len, abc, 2);
    names_table_retrieve(t, STR(""), STR(""), &enc, &len);
    const char *empty[] = {"__emitter"};
    expect_names(enc, len, empty, 1);
    names_table_free(t);
}

static void test_build_and_insert_encoded(void **st)
{
    (void)st;
    names_table *t = names_table_new();
    uint8_t *built;
    size_t blen;
    const uint8_t *enc;
    size_t len;
    assert_int_equal(names_table_build(STR("s"), STR("b"), 4, &built, &blen), RC_OK);
    assert_int_equal(names_table_persist(t, STR("s"), STR("b"), 4, &enc, &len), RC_OK);
    assert_int_equal(blen, len);
    assert_memory_equal(built, enc, len);
    assert_int_equal(names_table_insert_encoded(t, STR("k"), STR("v"), built, blen), RC_OK);
    names_table_retrieve(t, STR("k"), STR("v"), &enc, &len);
    assert_int_equal(len, blen);
    assert_memory_equal(enc, built, blen);
    assert_int_equal(names_table_insert_encoded(t, STR("k"), STR("nil"), U8("\x6a"), 1),
                     RC_OK);

    /* malformed encodings are refused and change nothing */
    uint8_t bad[256];
    memcpy(bad, built, blen);
    for (size_t k = 0; k < blen; k++) /* every truncation */
        assert_int_equal(names_table_insert_encoded(t, STR("k"), STR("v"), built, k),
                         RC_EBADARG);
    bad[4] = 5; /* count says 5, four atoms follow */
    assert_int_equal(names_table_insert_encoded(t, STR("k"), STR("v"), bad, blen),
                     RC_EBADARG);
    memcpy(bad, built, blen);
    bad[4] = 3; /* count says 3: the fourth atom is junk before NIL */
    assert_int_equal(names_table_insert_encoded(t, STR("k"), STR("v"), bad, blen),
                     RC_EBADARG);
    memcpy(bad, built, blen);
    bad[5] = 100; /* ATOM_EXT is not the stored form */
    assert_int_equal(names_table_insert_encoded(t, STR("k"), STR("v"), bad, blen),
                     RC_EBADARG);
    const uint8_t wide_atom[] = {108, 0, 0, 0, 1, 119, 2, 0xC4, 0x85, 106};
    assert_int_equal(
        names_table_insert_encoded(t, STR("k"), STR("v"), wide_atom, sizeof wide_atom),
        RC_EBADARG);
    const uint8_t long_tag_short[] = {108, 0, 0, 0, 1, 118, 0, 1, 'a', 106};
    assert_int_equal(names_table_insert_encoded(t, STR("k"), STR("v"), long_tag_short,
                                                sizeof long_tag_short),
                     RC_EBADARG);
    const uint8_t zero[] = {108, 0, 0, 0, 0, 106};
    assert_int_equal(names_table_insert_encoded(t, STR("k"), STR("v"), zero, sizeof zero),
                     RC_EBADARG);
    const uint8_t wide_store[] = {0xE2, 0x82, 0xAC};
    assert_int_equal(names_table_insert_encoded(t, wide_store, 3, STR("v"), built, blen),
                     RC_EBADARG);
    names_table_retrieve(t, STR("k"), STR("v"), &enc, &len);
    assert_int_equal(len, blen);
    assert_memory_equal(enc, built, blen);
    assert_int_equal(names_table_count(t), 3);
    free(built);
    names_table_free(t);
}

/* ---- durability ------------------------------------------------------- */

typedef struct {
    names_store *s;
    const uint8_t *enc;
    size_t len;
    int rc;
} put_job;

static void *put_thread(void *arg)
{
    put_job *j = arg;
    j->rc = names_store_put(j->s, STR("threaded"), STR("sub"), j->enc, j->len);
    return NULL;
}

static void test_store_round_trip(void **st)
{
    (void)st;
    char tmpl[] = "/tmp/names_store_test.XXXXXX";
    char *base = store_dir_make(tmpl);
    char dir[256];
    snprintf(dir, sizeof dir, "%s/data", base); /* created by open */

    names_store *s = store_open(dir);
    names_table *t = names_table_new();
    const uint8_t store_cafe[] = {'c', 'a', 'f', 0xC3, 0xA9};
    const uint8_t bin_sub[] = {0, 255, 10};
    struct {
        const uint8_t *s;
        size_t sl;
        const uint8_t *b;
        size_t bl;
        int64_t p;
    } keys[] = {{STR("store"), STR("sub"), 3},
                {STR("store"), STR("$all"), 1},
                {store_cafe, sizeof store_cafe, bin_sub, sizeof bin_sub, 7},
                {STR(""), STR(""), 2}};
    for (size_t i = 0; i < 4; i++) {
        const uint8_t *enc;
        size_t len;
        assert_int_equal(names_table_persist(t, keys[i].s, keys[i].sl, keys[i].b, keys[i].bl,
                                             keys[i].p, &enc, &len),
                         RC_OK);
        assert_int_equal(names_store_put(s, keys[i].s, keys[i].sl, keys[i].b, keys[i].bl, enc,
                                         len),
                         0);
    }
    /* replace one entry, and write one from another thread */
    const uint8_t *enc;
    size_t len;
    assert_int_equal(names_table_persist(t, STR("store"), STR("sub"), 5, &enc, &len), RC_OK);
    assert_int_equal(names_store_put(s, STR("store"), STR("sub"), enc, len), 0);
    put_job job = {s, NULL, 0, -1};
    assert_int_equal(names_table_persist(t, STR("threaded"), STR("sub"), 2, &job.enc, &job.len),
                     RC_OK);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, put_thread, &job), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(job.rc, 0);
    assert_int_equal(names_store_count(s), 5);
    names_store_close(s);

    /* reopen: the loaded table serves the same bytes */
    s = store_open(dir);
    names_table *t2 = names_table_new();
    size_t loaded = 0, skipped = 99;
    assert_int_equal(names_store_load(s, t2, &loaded, &skipped), 0);
    assert_int_equal(loaded, 5);
    assert_int_equal(skipped, 0);
    assert_int_equal(names_table_count(t2), 5);
    const uint8_t *a, *b;
    size_t al, bl;
    for (size_t i = 0; i < 4; i++) {
        names_table_retrieve(t, keys[i].s, keys[i].sl, keys[i].b, keys[i].bl, &a, &al);
        names_table_retrieve(t2, keys[i].s, keys[i].sl, keys[i].b, keys[i].bl, &b, &bl);
        assert_int_equal(al, bl);
        assert_memory_equal(a, b, al);
        assert_true(al > 1);
    }
    names_table_retrieve(t2, STR("store"), STR("sub"), &b, &bl);
    int idx = 0, arity = 0;
    assert_int_equal(ei_decode_list_header((const char *)b, &idx, &arity), 0);
    assert_int_equal(arity, 5);
    names_table_retrieve(t2, STR("threaded"), STR("sub"), &b, &bl);
    const char *th_names[] = {"threaded_sub_emitter", "threaded_sub_emitter_2"};
    expect_names(b, bl, th_names, 2);

    /* a damaged record is skipped, not fatal */
    assert_int_equal(names_store_put(s, STR("bad"), STR("rec"), U8("\x6c\x00"), 2), 0);
    names_table *t3 = names_table_new();
    assert_int_equal(names_store_load(s, t3, &loaded, &skipped), 0);
    assert_int_equal(loaded, 5);
    assert_int_equal(skipped, 1);
    assert_int_equal(names_table_count(t3), 5);

    /* keys LMDB cannot hold are refused with EINVAL */
    uint8_t huge[600];
    memset(huge, 'x', sizeof huge);
    assert_int_not_equal(names_store_put(s, STR("s"), huge, sizeof huge, U8("\x6a"), 1), 0);
    assert_int_not_equal(names_store_put(s, STR("s"), STR("x"), NULL, 0), 0);
    assert_non_null(names_store_strerror(0));

    names_store_close(s);
    names_table_free(t);
    names_table_free(t2);
    names_table_free(t3);
    store_dir_remove(dir);
    store_dir_remove(base);
}

/* Values far beyond the initial map size force MDB_MAP_FULL and a resize;
 * the data must still survive a reopen. */
static void test_store_grows(void **st)
{
    (void)st;
    char tmpl[] = "/tmp/names_store_grow.XXXXXX";
    char *dir = store_dir_make(tmpl);
    names_store *s = store_open(dir);
    names_table *t = names_table_new();
    uint8_t sub[200];
    memset(sub, 'g', sizeof sub);
    for (int i = 0; i < 6; i++) {
        const uint8_t *enc;
        size_t len;
        sub[0] = (uint8_t)('a' + i);
        assert_int_equal(names_table_persist(t, STR("st"), sub, sizeof sub, NAMES_TABLE_MAX_POOL,
                                             &enc, &len),
                         RC_OK);
        assert_true(len > ((size_t)12 << 20));
        assert_int_equal(names_store_put(s, STR("st"), sub, sizeof sub, enc, len), 0);
    }
    names_store_close(s);
    s = store_open(dir);
    names_table *t2 = names_table_new();
    size_t loaded = 0, skipped = 0;
    assert_int_equal(names_store_load(s, t2, &loaded, &skipped), 0);
    assert_int_equal(loaded, 6);
    for (int i = 0; i < 6; i++) {
        const uint8_t *a, *b;
        size_t al, bl;
        sub[0] = (uint8_t)('a' + i);
        names_table_retrieve(t, STR("st"), sub, sizeof sub, &a, &al);
        names_table_retrieve(t2, STR("st"), sub, sizeof sub, &b, &bl);
        assert_int_equal(al, bl);
        assert_memory_equal(a, b, al);
    }
    names_store_close(s);
    names_table_free(t);
    names_table_free(t2);
    store_dir_remove(dir);
}

static void test_store_open_errors(void **st)
{
    (void)st;
    names_store *s = (names_store *)0x1;
    assert_int_not_equal(names_store_open("/proc/definitely/not/here", &s), 0);
    assert_ptr_equal(s, (names_store *)0x1);
    assert_int_not_equal(names_store_open(NULL, &s), 0);
    names_store_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_persist_retrieve),
        cmocka_unit_test(test_missing_and_p1),
        cmocka_unit_test(test_errors_leave_table_unchanged),
        cmocka_unit_test(test_max_pool),
        cmocka_unit_test(test_wide_names),
        cmocka_unit_test(test_atom_tag_boundary),
        cmocka_unit_test(test_hash_collisions),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_build_and_insert_encoded),
        cmocka_unit_test(test_store_round_trip),
        cmocka_unit_test(test_store_grows),
        cmocka_unit_test(test_store_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
