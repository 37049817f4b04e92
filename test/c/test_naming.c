/* Unit tests for naming: the seed's examples, limits, every byte value,
 * and decimal conversion. Expected values are built independently from
 * code-point arrays and a generic UTF-8 encoder, not from naming's code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "codec/decimal.h"
#include "naming/group_key.h"
#include "naming/naming.h"

/* ---- independent expectation helpers ---------------------------------- */

typedef struct {
    uint32_t cp[1024];
    size_t n;
} chars_t;

static void ch_add(chars_t *c, uint32_t cp)
{
    assert_true(c->n < 1024);
    c->cp[c->n++] = cp;
}

static void ch_str(chars_t *c, const char *s)
{
    while (*s)
        ch_add(c, (uint8_t)*s++);
}

/* Generic UTF-8 encoder (any code point) to build expected bytes and store
 * atoms with wide characters. */
static size_t utf8_encode(const chars_t *c, uint8_t *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < c->n; i++) {
        uint32_t cp = c->cp[i];
        assert_true(o + 4 <= cap);
        if (cp < 0x80) {
            out[o++] = (uint8_t)cp;
        } else if (cp < 0x800) {
            out[o++] = (uint8_t)(0xC0 | (cp >> 6));
            out[o++] = (uint8_t)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out[o++] = (uint8_t)(0xE0 | (cp >> 12));
            out[o++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (uint8_t)(0x80 | (cp & 0x3F));
        } else {
            out[o++] = (uint8_t)(0xF0 | (cp >> 18));
            out[o++] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
            out[o++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (uint8_t)(0x80 | (cp & 0x3F));
        }
    }
    return o;
}

/* Expected emitter_name: code points of S, '_', bytes of Sub, suffix. */
static size_t expected_name(const chars_t *store, const uint8_t *sub, size_t sub_len,
                            const char *n, uint8_t *out, size_t cap)
{
    chars_t c = *store;
    ch_add(&c, '_');
    for (size_t i = 0; i < sub_len; i++)
        ch_add(&c, sub[i]);
    ch_str(&c, "_emitter");
    if (n) {
        ch_add(&c, '_');
        ch_str(&c, n);
    }
    assert_true(c.n <= 255);
    return utf8_encode(&c, out, cap);
}

static void check_name(const chars_t *store, const uint8_t *sub, size_t sub_len, const char *n)
{
    uint8_t s8[2048], exp[2048], got[NAMING_MAX_ATOM_UTF8];
    size_t sl = utf8_encode(store, s8, sizeof s8);
    size_t el = expected_name(store, sub, sub_len, n, exp, sizeof exp);
    size_t gl = 0;
    assert_int_equal(naming_emitter_name(s8, sl, sub, sub_len, n, got, sizeof got, &gl),
                     RC_OK);
    assert_int_equal(gl, el);
    assert_memory_equal(got, exp, el);
}

static chars_t chars_of(const char *ascii)
{
    chars_t c = {.n = 0};
    ch_str(&c, ascii);
    return c;
}

#define U8(s) ((const uint8_t *)(s))

/* ---- topic ------------------------------------------------------------- */

static void test_topic_cafe(void **st)
{
    (void)st;
    const uint8_t cafe[] = {'c', 'a', 'f', 0xC3, 0xA9};
    const uint8_t exp[] = {99, 97, 102, 233, 58, 115, 117, 98};
    uint8_t out[64];
    size_t n = 0, len = 0;
    assert_int_equal(naming_topic(cafe, sizeof cafe, U8("sub"), 3, out, sizeof out, &n),
                     RC_OK);
    assert_int_equal(n, sizeof exp);
    assert_memory_equal(out, exp, sizeof exp);
    assert_int_equal(naming_topic_len(cafe, sizeof cafe, 3, &len), RC_OK);
    assert_int_equal(len, sizeof exp);
}

static void test_topic_all_and_empty(void **st)
{
    (void)st;
    uint8_t out[64];
    size_t n = 0;
    assert_int_equal(naming_topic(U8("store"), 5, U8("$all"), 4, out, sizeof out, &n),
                     RC_OK);
    assert_int_equal(n, 10);
    assert_memory_equal(out, "store:$all", 10);
    assert_int_equal(naming_topic(U8(""), 0, U8(""), 0, out, sizeof out, &n), RC_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], ':');
}

static void test_topic_every_byte_and_latin1_store(void **st)
{
    (void)st;
    /* store = characters 128..255 (UTF-8 2 bytes each), sub = bytes 0..255:
     * the topic is the store's latin-1 bytes, ':', the sub unchanged. */
    chars_t s = {.n = 0};
    for (uint32_t c = 128; c <= 255; c++)
        ch_add(&s, c);
    uint8_t s8[512], sub[256], out[1024], exp[1024];
    size_t sl = utf8_encode(&s, s8, sizeof s8);
    assert_int_equal(sl, 256);
    for (int i = 0; i < 256; i++)
        sub[i] = (uint8_t)i;
    size_t e = 0;
    for (uint32_t c = 128; c <= 255; c++)
        exp[e++] = (uint8_t)c;
    exp[e++] = ':';
    memcpy(exp + e, sub, 256);
    e += 256;
    size_t n = 0;
    assert_int_equal(naming_topic(s8, sl, sub, 256, out, sizeof out, &n), RC_OK);
    assert_int_equal(n, e);
    assert_memory_equal(out, exp, e);
}

static void test_topic_badarg(void **st)
{
    (void)st;
    uint8_t out[64];
    size_t n = 77;
    const uint8_t wide[] = {'a', 0xC4, 0x85};         /* U+0105 > 255 */
    const uint8_t emoji[] = {0xF0, 0x9F, 0x98, 0x80}; /* U+1F600 */
    const uint8_t lone[] = {'a', 0xC3};               /* truncated */
    const uint8_t bad_cont[] = {0xC3, 0x41};
    const uint8_t overlong[] = {0xC1, 0xBF}; /* overlong '\x7f' */
    const uint8_t ff[] = {0xFF};
    const uint8_t cont[] = {0x80};
    const uint8_t *cases[] = {wide, emoji, lone, bad_cont, overlong, ff, cont};
    const size_t lens[] = {sizeof wide, sizeof emoji, sizeof lone, sizeof bad_cont,
                           sizeof overlong, sizeof ff, sizeof cont};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t len;
        assert_int_equal(naming_topic(cases[i], lens[i], U8("x"), 1, out, sizeof out, &n),
                         RC_EBADARG);
        assert_int_equal(naming_topic_len(cases[i], lens[i], 1, &len), RC_EBADARG);
    }
    assert_int_equal(n, 77); /* untouched on error */
}

static void test_topic_nospace(void **st)
{
    (void)st;
    uint8_t out[10];
    size_t n = 0;
    assert_int_equal(naming_topic(U8("store"), 5, U8("abcd"), 4, out, 9, &n), RC_ENOSPACE);
    assert_int_equal(naming_topic(U8("store"), 5, U8("abcd"), 4, out, 10, &n), RC_OK);
    assert_int_equal(n, 10);
}

/* ---- emitter_name ------------------------------------------------------ */

static void test_emitter_spec_examples(void **st)
{
    (void)st;
    uint8_t out[NAMING_MAX_ATOM_UTF8];
    size_t n = 0;
    /* emitter_name(store, <<255,0,10>>): chars "store_", 255, 0, 10, "_emitter" */
    const uint8_t sub[] = {255, 0, 10};
    const uint8_t exp[] = {'s', 't', 'o', 'r', 'e', '_', 0xC3, 0xBF, 0, 10,
                           '_', 'e', 'm', 'i', 't', 't', 'e', 'r'};
    assert_int_equal(naming_emitter_name(U8("store"), 5, sub, 3, NULL, out, sizeof out, &n),
                     RC_OK);
    assert_int_equal(n, sizeof exp);
    assert_memory_equal(out, exp, sizeof exp);

    /* emitter_name('', <<>>) = '__emitter' */
    assert_int_equal(naming_emitter_name(U8(""), 0, U8(""), 0, NULL, out, sizeof out, &n),
                     RC_OK);
    assert_int_equal(n, 9);
    assert_memory_equal(out, "__emitter", 9);

    /* <<"ü"/utf8>> = 195,188 gives two characters 195 and 188 */
    const uint8_t ue[] = {195, 188};
    const uint8_t exp2[] = {'x', '_', 0xC3, 0x83, 0xC2, 0xBC, '_', 'e', 'm', 'i', 't',
                            't', 'e', 'r'};
    assert_int_equal(naming_emitter_name(U8("x"), 1, ue, 2, NULL, out, sizeof out, &n),
                     RC_OK);
    assert_int_equal(n, sizeof exp2);
    assert_memory_equal(out, exp2, sizeof exp2);

    /* a 250-byte Sub gives system_limit */
    uint8_t big[250];
    memset(big, 'a', sizeof big);
    assert_int_equal(naming_emitter_name(U8("s"), 1, big, 250, NULL, out, sizeof out, &n),
                     RC_ESYSTEM_LIMIT);

}

static void test_emitter_numbered_exact(void **st)
{
    (void)st;
    uint8_t out[NAMING_MAX_ATOM_UTF8];
    size_t n = 0;
    assert_int_equal(
        naming_emitter_name(U8("store"), 5, U8("sub"), 3, "3", out, sizeof out, &n), RC_OK);
    assert_int_equal(n, strlen("store_sub_emitter_3"));
    assert_memory_equal(out, "store_sub_emitter_3", n);
}

static void test_emitter_255_vs_256(void **st)
{
    (void)st;
    uint8_t sub[300], out[NAMING_MAX_ATOM_UTF8];
    size_t n = 0;
    memset(sub, 'z', sizeof sub);
    chars_t s = chars_of("s");
    /* 1 + 1 + 245 + 8 = 255 characters */
    check_name(&s, sub, 245, NULL);
    assert_int_equal(naming_emitter_name(U8("s"), 1, sub, 246, NULL, out, sizeof out, &n),
                     RC_ESYSTEM_LIMIT);
    /* numbered "_emitter_7" is 10 characters */
    check_name(&s, sub, 243, "7");
    assert_int_equal(naming_emitter_name(U8("s"), 1, sub, 244, "7", out, sizeof out, &n),
                     RC_ESYSTEM_LIMIT);
    /* characters, not bytes: 245 bytes >= 128 make 255 characters / 500 bytes */
    memset(sub, 0xE9, sizeof sub);
    check_name(&s, sub, 245, NULL);
    assert_int_equal(naming_emitter_name(U8("s"), 1, sub, 245, NULL, out, sizeof out, &n),
                     RC_OK);
    assert_int_equal(n, 1 + 1 + 490 + 8);
    assert_int_equal(naming_emitter_name(U8("s"), 1, sub, 246, NULL, out, sizeof out, &n),
                     RC_ESYSTEM_LIMIT);
    /* store of 246 characters 128..255 (492 bytes) + "_" + "_emitter" = 255 */
    chars_t wide = {.n = 0};
    for (int i = 0; i < 246; i++)
        ch_add(&wide, 128 + (uint32_t)(i % 128));
    check_name(&wide, sub, 0, NULL);
    uint8_t s8[600];
    size_t sl = utf8_encode(&wide, s8, sizeof s8);
    assert_int_equal(naming_emitter_name(s8, sl, sub, 0, NULL, out, sizeof out, &n), RC_OK);
    assert_int_equal(n, 492 + 9);
    assert_int_equal(naming_emitter_name(s8, sl, sub, 1, NULL, out, sizeof out, &n),
                     RC_ESYSTEM_LIMIT);
}

static void test_emitter_every_sub_byte(void **st)
{
    (void)st;
    chars_t s = chars_of("store");
    for (int b = 0; b < 256; b++) {
        uint8_t one = (uint8_t)b;
        check_name(&s, &one, 1, NULL);
        check_name(&s, &one, 1, "12");
    }
    /* all 256 byte values in chunks that fit the 255-character limit */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    chars_t e = {.n = 0};
    check_name(&e, all, 246, NULL);
    check_name(&e, all + 128, 128, NULL);
    check_name(&e, all + 246, 10, "-5");
}

static void test_emitter_latin1_store_chars(void **st)
{
    (void)st;
    /* every character 128..255 in the store, alone and with high sub bytes */
    for (uint32_t c = 128; c <= 255; c++) {
        chars_t s = {.n = 0};
        ch_add(&s, 'a');
        ch_add(&s, c);
        uint8_t sub[2] = {(uint8_t)c, 'q'};
        check_name(&s, sub, 2, NULL);
        check_name(&s, sub, 2, "99");
    }
    chars_t s = {.n = 0};
    for (uint32_t c = 128; c < 128 + 100; c++)
        ch_add(&s, c);
    check_name(&s, U8("sub"), 3, "1000");
}

static void test_emitter_badarg_store(void **st)
{
    (void)st;
    uint8_t out[NAMING_MAX_ATOM_UTF8], sub[300];
    size_t n = 0;
    memset(sub, 'a', sizeof sub);
    const uint8_t wide[] = {'s', 0xC4, 0x80}; /* U+0100 */
    assert_int_equal(naming_emitter_name(wide, sizeof wide, U8("x"), 1, NULL, out, sizeof out,
                                         &n),
                     RC_EBADARG);
    assert_int_equal(
        naming_emitter_name(wide, sizeof wide, U8("x"), 1, "2", out, sizeof out, &n),
        RC_EBADARG);
    /* badarg wins even when the name would also be too long */
    assert_int_equal(naming_emitter_name(wide, sizeof wide, sub, 300, NULL, out, sizeof out,
                                         &n),
                     RC_EBADARG);
    chars_t longwide = {.n = 0};
    for (int i = 0; i < 300; i++)
        ch_add(&longwide, 0x3B1); /* greek alpha */
    uint8_t s8[1024];
    size_t sl = utf8_encode(&longwide, s8, sizeof s8);
    assert_int_equal(naming_emitter_name(s8, sl, U8(""), 0, NULL, out, sizeof out, &n),
                     RC_EBADARG);
    /* a wide character after many valid ones */
    uint8_t tail[260];
    memset(tail, 'a', 258);
    tail[258] = 0xE2;
    tail[259] = 0x82;
    assert_int_equal(naming_emitter_name(tail, 260, U8(""), 0, NULL, out, sizeof out, &n),
                     RC_EBADARG);
    /* invalid UTF-8 */
    const uint8_t bad[] = {0xC3};
    assert_int_equal(naming_emitter_name(bad, 1, U8(""), 0, NULL, out, sizeof out, &n),
                     RC_EBADARG);
}

static void test_emitter_n_values(void **st)
{
    (void)st;
    chars_t s = chars_of("store");
    char dec[64];
    check_name(&s, U8("sub"), 3, "-5");
    check_name(&s, U8("sub"), 3, "0");
    check_name(&s, U8("sub"), 3, "1");
    assert_int_equal(decimal_from_int64(INT64_MIN, dec, sizeof dec), 20);
    assert_string_equal(dec, "-9223372036854775808");
    check_name(&s, U8("sub"), 3, dec);
    assert_int_equal(decimal_from_int64(INT64_MAX, dec, sizeof dec), 19);
    assert_string_equal(dec, "9223372036854775807");
    check_name(&s, U8("sub"), 3, dec);
    /* 2^100 as a bignum */
    uint8_t le[13] = {0};
    le[12] = 0x10;
    assert_true(decimal_from_bigint(1, le, sizeof le, dec, sizeof dec) > 0);
    assert_string_equal(dec, "-1267650600228229401496703205376");
    check_name(&s, U8("sub"), 3, dec);

    /* a decimal N that pushes the name over 255 characters */
    char huge[260];
    memset(huge, '9', 240);
    huge[240] = '\0';
    uint8_t out[NAMING_MAX_ATOM_UTF8];
    size_t n = 0;
    assert_int_equal(naming_emitter_name(U8("store"), 5, U8("sub"), 3, huge, out, sizeof out,
                                         &n),
                     RC_ESYSTEM_LIMIT);
    huge[238] = '\0'; /* "store_sub_emitter_" is 18 chars: 18 + 238 = 256 */
    assert_int_equal(naming_emitter_name(U8("store"), 5, U8("sub"), 3, huge, out, sizeof out,
                                         &n),
                     RC_ESYSTEM_LIMIT);
    huge[237] = '\0'; /* exactly 255 characters */
    check_name(&s, U8("sub"), 3, huge);

    /* non-canonical decimals are rejected */
    const char *bad[] = {"", "-", "05", "-0", "1a", "+1", " 1", "1 ", "--1", "-05"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(naming_emitter_name(U8("store"), 5, U8("sub"), 3, bad[i], out,
                                             sizeof out, &n),
                         RC_EBADARG);
}

static void test_emitter_nospace(void **st)
{
    (void)st;
    uint8_t out[NAMING_MAX_ATOM_UTF8];
    size_t n = 0;
    const size_t full = strlen("store_sub_emitter_42");
    for (size_t cap = 0; cap < full; cap++)
        assert_int_equal(
            naming_emitter_name(U8("store"), 5, U8("sub"), 3, "42", out, cap, &n),
            RC_ENOSPACE);
    assert_int_equal(naming_emitter_name(U8("store"), 5, U8("sub"), 3, "42", out, full, &n),
                     RC_OK);
    assert_int_equal(n, full);
    const uint8_t hi[] = {0xFF};
    /* "s_" + 2 bytes + "_emitter" = 12 bytes; 11 is not enough */
    assert_int_equal(naming_emitter_name(U8("s"), 1, hi, 1, NULL, out, 3, &n), RC_ENOSPACE);
    assert_int_equal(naming_emitter_name(U8("s"), 1, hi, 1, NULL, out, 11, &n), RC_ENOSPACE);
    assert_int_equal(naming_emitter_name(U8("s"), 1, hi, 1, NULL, out, 12, &n), RC_OK);
}

/* ---- decimal helpers --------------------------------------------------- */

static void test_int64_decimal(void **st)
{
    (void)st;
    char b[DECIMAL_INT64_CAP];
    const struct {
        int64_t v;
        const char *s;
    } cases[] = {{0, "0"},
                 {1, "1"},
                 {-1, "-1"},
                 {-5, "-5"},
                 {10, "10"},
                 {65535, "65535"},
                 {INT64_MAX, "9223372036854775807"},
                 {INT64_MIN, "-9223372036854775808"},
                 {INT64_MIN + 1, "-9223372036854775807"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(decimal_from_int64(cases[i].v, b, sizeof b),
                         (int)strlen(cases[i].s));
        assert_string_equal(b, cases[i].s);
    }
    assert_int_equal(decimal_from_int64(12345, b, 5), -1);
    assert_int_equal(decimal_from_int64(12345, b, 6), 5);
    assert_string_equal(b, "12345");
    assert_int_equal(decimal_from_int64(-1, b, 2), -1);
}

static void test_bigint_decimal(void **st)
{
    (void)st;
    char b[128];
    assert_int_equal(decimal_from_bigint(0, NULL, 0, b, sizeof b), 1);
    assert_string_equal(b, "0");
    const uint8_t zeros[5] = {0};
    assert_int_equal(decimal_from_bigint(1, zeros, 5, b, sizeof b), 1);
    assert_string_equal(b, "0");
    /* 2^64 = 18446744073709551616 */
    const uint8_t p64[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_int_equal(decimal_from_bigint(0, p64, 9, b, sizeof b), 20);
    assert_string_equal(b, "18446744073709551616");
    assert_int_equal(decimal_from_bigint(1, p64, 9, b, sizeof b), 21);
    assert_string_equal(b, "-18446744073709551616");
    /* leading zero digit bytes are ignored */
    const uint8_t p64z[12] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    assert_int_equal(decimal_from_bigint(0, p64z, 12, b, sizeof b), 20);
    assert_string_equal(b, "18446744073709551616");
    /* 2^128 - 1 */
    uint8_t ff[16];
    memset(ff, 0xFF, sizeof ff);
    assert_true(decimal_from_bigint(0, ff, 16, b, sizeof b) > 0);
    assert_string_equal(b, "340282366920938463463374607431768211455");
    /* exact capacity and one short */
    assert_int_equal(decimal_from_bigint(1, p64, 9, b, 22), 21);
    assert_int_equal(decimal_from_bigint(1, p64, 9, b, 21), -1);
    assert_int_equal(decimal_from_bigint(0, p64, 9, b, 20), -1);
    /* agrees with the 64-bit path for many values */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 2000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t v = x >> (i % 64);
        uint8_t le[8];
        for (int k = 0; k < 8; k++)
            le[k] = (uint8_t)(v >> (8 * k));
        char exp[32];
        snprintf(exp, sizeof exp, "%llu", (unsigned long long)v);
        assert_true(decimal_from_bigint(0, le, 8, b, sizeof b) > 0);
        assert_string_equal(b, exp);
    }
}

static void test_status_atom(void **st)
{
    (void)st;
    assert_null(rc_err_atom(RC_OK));
    assert_string_equal(rc_err_atom(RC_EBADARG), "badarg");
    assert_string_equal(rc_err_atom(RC_ESYSTEM_LIMIT), "system_limit");
}

/* group_key(S, Sub) = {S, Sub, emitters}: from C fields and from encoded
 * terms, byte for byte what ei encodes for the same tuple. */
static void test_group_key(void **state)
{
    (void)state;
    ei_x_buff want, got, terms;
    ei_x_new(&want);
    ei_x_new(&got);
    ei_x_new(&terms);
    ei_x_encode_tuple_header(&want, 3);
    ei_x_encode_atom_len_as(&want, "caf\xc3\xa9", 5, ERLANG_UTF8, ERLANG_UTF8);
    ei_x_encode_binary(&want, "\0sub", 4);
    ei_x_encode_atom(&want, "emitters");
    assert_int_equal(group_key_encode(&got, (const uint8_t *)"caf\xc3\xa9", 5,
                                      (const uint8_t *)"\0sub", 4), 0);
    assert_int_equal(got.index, want.index);
    assert_memory_equal(got.buff, want.buff, (size_t)want.index);
    got.index = 0;
    ei_x_encode_atom_len_as(&terms, "caf\xc3\xa9", 5, ERLANG_UTF8, ERLANG_UTF8);
    ei_x_encode_binary(&terms, "\0sub", 4);
    assert_int_equal(group_key_encode_terms(&got, terms.buff, terms.index), 0);
    assert_int_equal(got.index, want.index);
    assert_memory_equal(got.buff, want.buff, (size_t)want.index);
    ei_x_free(&want);
    ei_x_free(&got);
    ei_x_free(&terms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_cafe),
        cmocka_unit_test(test_topic_all_and_empty),
        cmocka_unit_test(test_topic_every_byte_and_latin1_store),
        cmocka_unit_test(test_topic_badarg),
        cmocka_unit_test(test_topic_nospace),
        cmocka_unit_test(test_emitter_spec_examples),
        cmocka_unit_test(test_emitter_numbered_exact),
        cmocka_unit_test(test_emitter_255_vs_256),
        cmocka_unit_test(test_emitter_every_sub_byte),
        cmocka_unit_test(test_emitter_latin1_store_chars),
        cmocka_unit_test(test_emitter_badarg_store),
        cmocka_unit_test(test_emitter_n_values),
        cmocka_unit_test(test_emitter_nospace),
        cmocka_unit_test(test_int64_decimal),
        cmocka_unit_test(test_bigint_decimal),
        cmocka_unit_test(test_status_atom),
        cmocka_unit_test(test_group_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
