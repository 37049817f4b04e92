/* Unit tests for term_norm: equal terms in different encodings give the same
 * canonical bytes, different terms differ, canonical output is valid for ei
 * and a fixed point, and malformed input (every truncation, mutations, huge
 * lengths, deep nesting) is rejected without reading out of bounds. Inputs are
 * written as raw bytes; the fixtures marked OTP 25 are term_to_binary output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/term_norm.h"

#define B(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

typedef struct {
    uint8_t *p;
    size_t n;
} bytes;

static void bytes_free(bytes *b)
{
    free(b->p);
    b->p = NULL;
}

/* The input is copied into an exactly sized heap block so that ASan flags
 * any read past its end. */
static int run(const uint8_t *in, size_t n, ei_x_buff *x)
{
    char *c = malloc(n ? n : 1);
    assert_non_null(c);
    if (n)
        memcpy(c, in, n);
    int rc = term_norm_term(c, (int)n, x);
    free(c);
    return rc;
}

static bytes canon(const uint8_t *in, size_t n)
{
    ei_x_buff x, y;
    assert_int_equal(ei_x_new(&x), 0);
    assert_int_equal(run(in, n, &x), 0);
    /* ei must be able to walk the result exactly */
    int idx = 0;
    assert_int_equal(ei_skip_term(x.buff, &idx), 0);
    assert_int_equal(idx, x.index);
    /* canonical form is a fixed point */
    assert_int_equal(ei_x_new(&y), 0);
    assert_int_equal(run((const uint8_t *)x.buff, (size_t)x.index, &y), 0);
    assert_int_equal(y.index, x.index);
    assert_memory_equal(y.buff, x.buff, (size_t)x.index);
    bytes b = {malloc((size_t)x.index + 1), (size_t)x.index};
    assert_non_null(b.p);
    memcpy(b.p, x.buff, (size_t)x.index);
    ei_x_free(&x);
    ei_x_free(&y);
    return b;
}

static int fails(const uint8_t *in, size_t n)
{
    ei_x_buff x;
    assert_int_equal(ei_x_new(&x), 0);
    int rc = run(in, n, &x);
    int idx_ok = x.index == 0;
    ei_x_free(&x);
    return rc == -1 && idx_ok;
}

static void expect_canon(const uint8_t *in, size_t n, const uint8_t *exp, size_t en)
{
    bytes b = canon(in, n);
    assert_int_equal(b.n, en);
    assert_memory_equal(b.p, exp, en);
    bytes_free(&b);
}

static void expect_same(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    bytes x = canon(a, an), y = canon(b, bn);
    assert_int_equal(x.n, y.n);
    assert_memory_equal(x.p, y.p, x.n);
    bytes_free(&x);
    bytes_free(&y);
}

static void expect_differ(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    bytes x = canon(a, an), y = canon(b, bn);
    assert_false(x.n == y.n && memcmp(x.p, y.p, x.n) == 0);
    bytes_free(&x);
    bytes_free(&y);
}

/* Variadic so that B(...) and FIX(...) can supply (pointer, length) pairs. */
#define EXPECT_CANON(...) expect_canon(__VA_ARGS__)
#define EXPECT_SAME(...) expect_same(__VA_ARGS__)
#define EXPECT_DIFFER(...) expect_differ(__VA_ARGS__)
#define EXPECT_FAIL(...) assert_true(fails(__VA_ARGS__))

/* ---- OTP 25 fixtures --------------------------------------------------- */

/* term_to_binary({store, <<"sub">>, emitters}) (ATOM_EXT atoms) */
static const uint8_t GK_DEFAULT[] = {131, 104, 3,   100, 0,   5,   115, 116, 111, 114,
                                     101, 109, 0,   0,   0,   3,   115, 117, 98,  100,
                                     0,   8,   101, 109, 105, 116, 116, 101, 114, 115};
/* same with [{minor_version, 2}] (UTF-8 atoms) */
static const uint8_t GK_UTF8[] = {131, 104, 3,   119, 5,   115, 116, 111, 114, 101,
                                  109, 0,   0,   0,   3,   115, 117, 98,  119, 8,
                                  101, 109, 105, 116, 116, 101, 114, 115};
/* [1, 300, -5, 1 bsl 40, -(1 bsl 70), 1.5, "abc", <<"bin">>, <<1:3>>, {}, [], #{}] */
static const uint8_t MIXED[] = {131, 108, 0,   0,   0,   12,  97,  1,   98,  0,  0,  1,  44, 98,
                                255, 255, 255, 251, 110, 6,   0,   0,   0,   0,  0,  0,  1,  110,
                                9,   1,   0,   0,   0,   0,   0,   0,   0,   0,  64, 70, 63, 248,
                                0,   0,   0,   0,   0,   0,   107, 0,   3,   97, 98, 99, 109, 0,
                                0,   0,   3,   98,  105, 110, 77,  0,   0,   0,  1,  3,  32, 104,
                                0,   106, 116, 0,   0,   0,   0,   106};
/* fun() -> 7 end, module chk2 (NEW_FUN_EXT, no free variables) */
static const uint8_t FUN1[] = {131, 112, 0,   0,   0,   70,  0,   38,  165, 148, 167, 179, 172,
                               112, 12,  195, 43,  42,  194, 15,  185, 254, 246, 0,   0,   0,
                               0,   0,   0,   0,   0,   119, 4,   99,  104, 107, 50,  97,  0,
                               98,  1,   53,  44,  165, 88,  119, 13,  110, 111, 110, 111, 100,
                               101, 64,  110, 111, 104, 111, 115, 116, 0,   0,   0,   9,   0,
                               0,   0,   0,   0,   0,   0,   0};
/* the same fun with the module as ATOM_EXT and the pid as PID_EXT (Size
 * adjusted by hand): a different encoding of an equal term */
static const uint8_t FUN1_OLD[] = {
    131, 112, 0,   0,   0,   69,  0,   38,  165, 148, 167, 179, 172, 112, 12,  195,
    43,  42,  194, 15,  185, 254, 246, 0,   0,   0,   0,   0,   0,   0,   0,   100,
    0,   4,   99,  104, 107, 50,  97,  0,   98,  1,   53,  44,  165, 103, 100, 0,
    13,  110, 111, 110, 111, 100, 101, 64,  110, 111, 104, 111, 115, 116, 0,   0,
    0,   9,   0,   0,   0,   0,   0};
/* [1, 2 | 3] */
static const uint8_t IMPROPER[] = {131, 108, 0, 0, 0, 2, 97, 1, 97, 2, 97, 3};
/* term_to_binary(self()), make_ref(), a port: node nonode@nohost as ATOM_EXT */
static const uint8_t PID1[] = {131, 88,  100, 0,   13,  110, 111, 110, 111, 100,
                               101, 64,  110, 111, 104, 111, 115, 116, 0,   0,
                               0,   9,   0,   0,   0,   0,   0,   0,   0,   0};
static const uint8_t REF1[] = {131, 90,  0,   3,   100, 0,   13, 110, 111, 110, 111, 100,
                               101, 64,  110, 111, 104, 111, 115, 116, 0,  0,   0,   0,
                               0,   2,   145, 42,  12,  60,  0,  2,   58, 166, 43,  123};
static const uint8_t PORT1[] = {131, 89,  100, 0,   13,  110, 111, 110, 111, 100,
                                101, 64,  110, 111, 104, 111, 115, 116, 0,   0,
                                0,   0,   0,   0,   0,   0};

#define FIX(a) a, sizeof a

/* ---- equal terms, different encodings ---------------------------------- */

static void test_atoms(void **st)
{
    (void)st;
    EXPECT_CANON(B(100, 0, 3, 'a', 'b', 'c'), B(119, 3, 'a', 'b', 'c'));
    EXPECT_CANON(B(115, 3, 'a', 'b', 'c'), B(119, 3, 'a', 'b', 'c'));
    EXPECT_CANON(B(118, 0, 3, 'a', 'b', 'c'), B(119, 3, 'a', 'b', 'c'));
    EXPECT_CANON(B(119, 3, 'a', 'b', 'c'), B(119, 3, 'a', 'b', 'c'));
    EXPECT_CANON(B(131, 100, 0, 0), B(119, 0));
    /* latin-1 'café' becomes UTF-8 */
    EXPECT_CANON(B(100, 0, 4, 'c', 'a', 'f', 233), B(119, 5, 'c', 'a', 'f', 0xC3, 0xA9));
    EXPECT_SAME(B(115, 4, 'c', 'a', 'f', 233), B(118, 0, 5, 'c', 'a', 'f', 0xC3, 0xA9));
    EXPECT_SAME(FIX(GK_DEFAULT), FIX(GK_UTF8));
    EXPECT_CANON(FIX(GK_UTF8), GK_UTF8 + 1, sizeof GK_UTF8 - 1);
}

static void test_long_atoms(void **st)
{
    (void)st;
    /* 200 latin-1 chars of 233: 400 UTF-8 bytes need ATOM_UTF8_EXT */
    uint8_t lat[3 + 200], exp[3 + 400];
    lat[0] = 100;
    lat[1] = 0;
    lat[2] = 200;
    memset(lat + 3, 233, 200);
    exp[0] = 118;
    exp[1] = 400 >> 8;
    exp[2] = 400 & 0xFF;
    for (int i = 0; i < 200; i++) {
        exp[3 + 2 * i] = 0xC3;
        exp[4 + 2 * i] = 0xA9;
    }
    EXPECT_CANON(lat, sizeof lat, exp, sizeof exp);
    EXPECT_CANON(exp, sizeof exp, exp, sizeof exp);
    /* 255 bytes is the last SMALL_ATOM_UTF8_EXT, 256 needs ATOM_UTF8_EXT */
    uint8_t a255[3 + 255], e255[2 + 255];
    a255[0] = 100;
    a255[1] = 0;
    a255[2] = 255;
    memset(a255 + 3, 'a', 255);
    e255[0] = 119;
    e255[1] = 255;
    memset(e255 + 2, 'a', 255);
    EXPECT_CANON(a255, sizeof a255, e255, sizeof e255);
    uint8_t a256[2 + 256], e256[3 + 256];
    a256[0] = 115;
    a256[1] = 128;
    memset(a256 + 2, 0xE9, 128);
    e256[0] = 118;
    e256[1] = 1;
    e256[2] = 0;
    for (int i = 0; i < 128; i++) {
        e256[3 + 2 * i] = 0xC3;
        e256[4 + 2 * i] = 0xA9;
    }
    EXPECT_CANON(a256, 2 + 128, e256, sizeof e256);
    /* 255 characters are fine, 256 are not */
    uint8_t u[3 + 512];
    u[0] = 118;
    u[1] = 510 >> 8;
    u[2] = 510 & 0xFF;
    for (int i = 0; i < 256; i++) {
        u[3 + 2 * i] = 0xC4;
        u[4 + 2 * i] = 0x85;
    }
    bytes b = canon(u, 3 + 510);
    bytes_free(&b);
    u[1] = 512 >> 8;
    u[2] = 512 & 0xFF;
    EXPECT_FAIL(u, 3 + 512);
    uint8_t l[3 + 256];
    l[0] = 100;
    l[1] = 1;
    l[2] = 0;
    memset(l + 3, 'a', 256);
    EXPECT_FAIL(l, sizeof l);
}

static void test_bad_utf8_atoms(void **st)
{
    (void)st;
    EXPECT_FAIL(B(119, 1, 0xC3));                    /* truncated */
    EXPECT_FAIL(B(119, 2, 0xC0, 0x80));              /* overlong */
    EXPECT_FAIL(B(119, 3, 0xED, 0xA0, 0x80));        /* surrogate */
    EXPECT_FAIL(B(119, 4, 0xF4, 0x90, 0x80, 0x80));  /* > U+10FFFF */
    EXPECT_FAIL(B(119, 3, 0xE0, 0x80, 0x80));        /* overlong */
    EXPECT_FAIL(B(119, 1, 0xFF));
    EXPECT_CANON(B(119, 4, 0xF0, 0x9F, 0x98, 0x80), B(119, 4, 0xF0, 0x9F, 0x98, 0x80));
}

static void test_integers(void **st)
{
    (void)st;
    /* 5 */
    EXPECT_CANON(B(97, 5), B(97, 5));
    EXPECT_CANON(B(98, 0, 0, 0, 5), B(97, 5));
    EXPECT_CANON(B(110, 1, 0, 5), B(97, 5));
    EXPECT_CANON(B(110, 4, 0, 5, 0, 0, 0), B(97, 5));
    EXPECT_CANON(B(111, 0, 0, 0, 2, 0, 5, 0), B(97, 5));
    /* 0, including a "negative" zero big */
    EXPECT_CANON(B(98, 0, 0, 0, 0), B(97, 0));
    EXPECT_CANON(B(110, 0, 1), B(97, 0));
    EXPECT_CANON(B(110, 3, 1, 0, 0, 0), B(97, 0));
    /* 255 / 256 boundary */
    EXPECT_CANON(B(110, 1, 0, 255), B(97, 255));
    EXPECT_CANON(B(110, 2, 0, 0, 1), B(98, 0, 0, 1, 0));
    /* 300, -1, -5 */
    EXPECT_CANON(B(110, 2, 0, 44, 1), B(98, 0, 0, 1, 44));
    EXPECT_CANON(B(110, 1, 1, 1), B(98, 255, 255, 255, 255));
    EXPECT_CANON(B(110, 1, 7, 5), B(98, 255, 255, 255, 251)); /* any non-zero sign */
    /* int32 limits */
    EXPECT_CANON(B(110, 4, 0, 255, 255, 255, 127), B(98, 127, 255, 255, 255));
    EXPECT_CANON(B(110, 4, 1, 0, 0, 0, 128), B(98, 128, 0, 0, 0));
    EXPECT_CANON(B(98, 128, 0, 0, 0), B(98, 128, 0, 0, 0));
    /* just outside int32 */
    EXPECT_CANON(B(110, 8, 0, 0, 0, 0, 128, 0, 0, 0, 0), B(110, 4, 0, 0, 0, 0, 128));
    EXPECT_CANON(B(110, 4, 1, 1, 0, 0, 128), B(110, 4, 1, 1, 0, 0, 128));
    /* 2^40 with leading zero digit bytes, SMALL and LARGE */
    EXPECT_CANON(B(110, 9, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0), B(110, 6, 0, 0, 0, 0, 0, 0, 1));
    EXPECT_CANON(B(111, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 1), B(110, 6, 0, 0, 0, 0, 0, 0, 1));
    /* a big of 300 digit bytes stays LARGE_BIG; 10 zero pad bytes go */
    uint8_t big[6 + 310];
    memset(big, 0, sizeof big);
    big[0] = 111;
    big[3] = 310 >> 8; /* length, u32 big-endian in bytes 1..4 */
    big[4] = 310 & 0xFF;
    big[5] = 1;
    big[6 + 299] = 9; /* highest non-zero digit byte */
    uint8_t exp[6 + 300];
    memset(exp, 0, sizeof exp);
    exp[0] = 111;
    exp[3] = 300 >> 8;
    exp[4] = 300 & 0xFF;
    exp[5] = 1;
    exp[6 + 299] = 9;
    EXPECT_CANON(big, sizeof big, exp, sizeof exp);
}

static void test_floats(void **st)
{
    (void)st;
    const uint8_t one_half[] = {70, 63, 248, 0, 0, 0, 0, 0, 0};
    uint8_t fl[32] = {99};
    memcpy(fl + 1, "1.50000000000000000000e+00", 26);
    EXPECT_CANON(fl, sizeof fl, FIX(one_half));
    EXPECT_CANON(FIX(one_half), FIX(one_half));
    /* 0.0 =/= -0.0 since OTP 27: the sign of zero is kept */
    EXPECT_CANON(B(70, 128, 0, 0, 0, 0, 0, 0, 0), B(70, 128, 0, 0, 0, 0, 0, 0, 0));
    EXPECT_DIFFER(B(70, 128, 0, 0, 0, 0, 0, 0, 0), B(70, 0, 0, 0, 0, 0, 0, 0, 0));
    EXPECT_FAIL(B(70, 127, 248, 0, 0, 0, 0, 0, 1)); /* NaN */
    EXPECT_FAIL(B(70, 127, 240, 0, 0, 0, 0, 0, 0)); /* +inf */
    uint8_t junk[32] = {99};
    memcpy(junk + 1, "1.5x", 4);
    EXPECT_FAIL(junk, sizeof junk);
    uint8_t empty[32] = {99};
    EXPECT_FAIL(empty, sizeof empty);
    EXPECT_DIFFER(B(97, 1), B(70, 63, 240, 0, 0, 0, 0, 0, 0)); /* 1 vs 1.0 */
}

static void test_strings_and_lists(void **st)
{
    (void)st;
    const uint8_t abc[] = {107, 0, 3, 'a', 'b', 'c'};
    EXPECT_CANON(FIX(abc), FIX(abc));
    EXPECT_CANON(B(108, 0, 0, 0, 3, 97, 'a', 97, 'b', 97, 'c', 106), FIX(abc));
    EXPECT_CANON(B(108, 0, 0, 0, 3, 98, 0, 0, 0, 'a', 110, 1, 0, 'b', 97, 'c', 106), FIX(abc));
    /* [$a | [$b | "c"]] with nested tails */
    EXPECT_CANON(B(108, 0, 0, 0, 1, 97, 'a', 108, 0, 0, 0, 1, 97, 'b', 107, 0, 1, 'c'),
                 FIX(abc));
    /* [$a | "bc"] */
    EXPECT_CANON(B(108, 0, 0, 0, 1, 97, 'a', 107, 0, 2, 'b', 'c'), FIX(abc));
    /* empty lists */
    EXPECT_CANON(B(106), B(106));
    EXPECT_CANON(B(107, 0, 0), B(106));
    EXPECT_CANON(B(108, 0, 0, 0, 0, 106), B(106));
    EXPECT_CANON(B(108, 0, 0, 0, 0, 107, 0, 0), B(106));
    /* a LIST_EXT with no elements is its tail */
    EXPECT_CANON(B(108, 0, 0, 0, 0, 100, 0, 1, 'x'), B(119, 1, 'x'));
    /* not a string: an element > 255 */
    EXPECT_CANON(B(108, 0, 0, 0, 2, 97, 1, 98, 0, 0, 1, 44, 106),
                 B(108, 0, 0, 0, 2, 97, 1, 98, 0, 0, 1, 44, 106));
    /* a nested list element */
    EXPECT_CANON(B(108, 0, 0, 0, 2, 97, 1, 107, 0, 1, 2, 106),
                 B(108, 0, 0, 0, 2, 97, 1, 107, 0, 1, 2, 106));
    EXPECT_DIFFER(FIX(abc), B(109, 0, 0, 0, 3, 'a', 'b', 'c'));
    EXPECT_DIFFER(B(107, 0, 1, 1), B(108, 0, 0, 0, 1, 97, 1, 97, 1)); /* [1] vs [1|1] */
}

static void test_improper(void **st)
{
    (void)st;
    EXPECT_CANON(FIX(IMPROPER), IMPROPER + 1, sizeof IMPROPER - 1);
    /* [1 | [2 | 3]] */
    EXPECT_SAME(FIX(IMPROPER), B(108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 98, 0, 0, 0, 2, 110,
                                 1, 0, 3));
    EXPECT_DIFFER(FIX(IMPROPER), B(107, 0, 3, 1, 2, 3));
}

static bytes make_small_list(size_t n, int as_string_tail)
{
    /* [1,1,...] as LIST_EXT of n elements, or [1 | STRING_EXT(n-1)] */
    size_t cap = 5 + 2 * n + 1 + 3;
    bytes b = {malloc(cap), 0};
    assert_non_null(b.p);
    uint8_t *o = b.p;
    size_t k = as_string_tail ? 1 : n;
    *o++ = 108;
    *o++ = (uint8_t)(k >> 24);
    *o++ = (uint8_t)(k >> 16);
    *o++ = (uint8_t)(k >> 8);
    *o++ = (uint8_t)k;
    for (size_t i = 0; i < k; i++) {
        *o++ = 97;
        *o++ = 1;
    }
    if (as_string_tail) {
        *o++ = 107;
        *o++ = (uint8_t)((n - 1) >> 8);
        *o++ = (uint8_t)(n - 1);
        memset(o, 1, n - 1);
        o += n - 1;
    } else {
        *o++ = 106;
    }
    b.n = (size_t)(o - b.p);
    return b;
}

static void test_string_length_limit(void **st)
{
    (void)st;
    for (int tail = 0; tail < 2; tail++) {
        bytes in = make_small_list(65535, tail);
        bytes out = canon(in.p, in.n);
        assert_int_equal(out.n, 3 + 65535);
        assert_int_equal(out.p[0], 107);
        assert_int_equal(out.p[1], 0xFF);
        assert_int_equal(out.p[2], 0xFF);
        bytes_free(&in);
        bytes_free(&out);
        in = make_small_list(65536, tail);
        out = canon(in.p, in.n);
        assert_int_equal(out.n, 5 + 2 * 65536 + 1);
        assert_int_equal(out.p[0], 108);
        assert_int_equal(out.p[out.n - 1], 106);
        bytes_free(&in);
        bytes_free(&out);
    }
}

static void test_maps(void **st)
{
    (void)st;
    const uint8_t exp[] = {116, 0, 0, 0, 2, 119, 1, 'a', 97, 1, 119, 1, 'b', 97, 2};
    EXPECT_CANON(B(116, 0, 0, 0, 2, 119, 1, 'a', 97, 1, 119, 1, 'b', 97, 2), FIX(exp));
    EXPECT_CANON(B(116, 0, 0, 0, 2, 100, 0, 1, 'b', 98, 0, 0, 0, 2, 115, 1, 'a', 97, 1),
                 FIX(exp));
    /* shorter key first, nested map values canonicalised too */
    EXPECT_SAME(B(116, 0, 0, 0, 2, 119, 2, 'a', 'a', 97, 1, 119, 1, 'a', 116, 0, 0, 0, 2, 119, 1,
                  'y', 106, 119, 1, 'x', 106),
                B(116, 0, 0, 0, 2, 119, 1, 'a', 116, 0, 0, 0, 2, 100, 0, 1, 'x', 107, 0, 0, 119,
                  1, 'y', 106, 119, 2, 'a', 'a', 97, 1));
    EXPECT_CANON(B(116, 0, 0, 0, 0), B(116, 0, 0, 0, 0));
    /* equal keys after normalisation: rejected, as erts does */
    EXPECT_FAIL(B(116, 0, 0, 0, 2, 119, 1, 'a', 97, 1, 100, 0, 1, 'a', 97, 2));
    /* #{0.0 => 1, -0.0 => 2} has two keys since OTP 27 */
    EXPECT_CANON(B(116, 0, 0, 0, 2, 70, 128, 0, 0, 0, 0, 0, 0, 0, 97, 2, 70, 0, 0, 0, 0, 0, 0, 0,
                   0, 97, 1),
                 B(116, 0, 0, 0, 2, 70, 0, 0, 0, 0, 0, 0, 0, 0, 97, 1, 70, 128, 0, 0, 0, 0, 0, 0,
                   0, 97, 2));
    EXPECT_DIFFER(B(116, 0, 0, 0, 1, 119, 1, 'a', 97, 1), B(116, 0, 0, 0, 1, 119, 1, 'a', 97, 2));
}

static void test_pids_ports_refs(void **st)
{
    (void)st;
    /* PID_EXT with 1-byte creation and a SMALL_ATOM_UTF8 node */
    EXPECT_SAME(FIX(PID1), B(103, 119, 13, 'n', 'o', 'n', 'o', 'd', 'e', '@', 'n', 'o', 'h', 'o',
                             's', 't', 0, 0, 0, 9, 0, 0, 0, 0, 0));
    EXPECT_CANON(B(103, 119, 1, 'n', 0, 0, 0, 9, 0, 0, 0, 1, 3),
                 B(88, 119, 1, 'n', 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 3));
    EXPECT_DIFFER(B(88, 119, 1, 'n', 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 3),
                  B(88, 119, 1, 'n', 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 4));
    /* ports: PORT_EXT, NEW_PORT_EXT and V4_PORT_EXT of one port */
    EXPECT_SAME(FIX(PORT1), B(102, 119, 13, 'n', 'o', 'n', 'o', 'd', 'e', '@', 'n', 'o', 'h',
                              'o', 's', 't', 0, 0, 0, 0, 0));
    EXPECT_CANON(B(120, 119, 1, 'n', 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2),
                 B(89, 119, 1, 'n', 0, 0, 0, 7, 0, 0, 0, 2));
    EXPECT_CANON(B(120, 119, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 2),
                 B(120, 119, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 2));
    /* references */
    EXPECT_SAME(FIX(REF1),
                B(114, 0, 3, 119, 13, 'n', 'o', 'n', 'o', 'd', 'e', '@', 'n', 'o', 'h', 'o', 's',
                  't', 0, 0, 2, 145, 42, 12, 60, 0, 2, 58, 166, 43, 123));
    EXPECT_CANON(B(101, 119, 1, 'n', 0, 0, 0, 42, 3),
                 B(90, 0, 1, 119, 1, 'n', 0, 0, 0, 3, 0, 0, 0, 42));
    EXPECT_SAME(B(101, 119, 1, 'n', 0, 0, 0, 42, 3), B(114, 0, 1, 100, 0, 1, 'n', 3, 0, 0, 0, 42));
    EXPECT_FAIL(B(90, 0, 0, 119, 1, 'n', 0, 0, 0, 3));
    EXPECT_FAIL(B(90, 0, 6, 119, 1, 'n', 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0,
                  1, 0, 0, 0, 1, 0, 0, 0, 1));
    /* the node must be an atom */
    EXPECT_FAIL(B(88, 97, 1, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 3));
}

static void test_binaries_and_tuples(void **st)
{
    (void)st;
    EXPECT_CANON(B(77, 0, 0, 0, 2, 8, 1, 2), B(109, 0, 0, 0, 2, 1, 2));
    EXPECT_CANON(B(77, 0, 0, 0, 0, 0), B(109, 0, 0, 0, 0));
    /* unused bits of the last byte are ignored */
    EXPECT_CANON(B(77, 0, 0, 0, 1, 3, 0x3F), B(77, 0, 0, 0, 1, 3, 0x20));
    EXPECT_SAME(B(77, 0, 0, 0, 2, 1, 7, 0xFF), B(77, 0, 0, 0, 2, 1, 7, 0x80));
    EXPECT_DIFFER(B(77, 0, 0, 0, 1, 3, 0x20), B(77, 0, 0, 0, 1, 4, 0x20));
    EXPECT_FAIL(B(77, 0, 0, 0, 0, 8));
    EXPECT_FAIL(B(77, 0, 0, 0, 1, 0, 1));
    EXPECT_FAIL(B(77, 0, 0, 0, 1, 9, 1));
    /* tuples */
    EXPECT_CANON(B(105, 0, 0, 0, 2, 97, 1, 100, 0, 1, 'a'), B(104, 2, 97, 1, 119, 1, 'a'));
    EXPECT_CANON(B(104, 0), B(104, 0));
    EXPECT_DIFFER(B(104, 1, 119, 1, 'a'), B(107, 0, 1, 'a'));
    uint8_t big[5 + 256 * 2], exp[5 + 256 * 2];
    big[0] = 105;
    big[1] = 0;
    big[2] = 0;
    big[3] = 1;
    big[4] = 0;
    for (int i = 0; i < 256; i++) {
        big[5 + 2 * i] = 97;
        big[6 + 2 * i] = (uint8_t)i;
    }
    memcpy(exp, big, sizeof big);
    EXPECT_CANON(big, sizeof big, exp, sizeof exp);
}

static void test_mixed_fixture(void **st)
{
    (void)st;
    /* OTP 25 term_to_binary output with UTF-8 atoms is already canonical */
    EXPECT_CANON(FIX(MIXED), MIXED + 1, sizeof MIXED - 1);
    EXPECT_CANON(FIX(PID1), B(88, 119, 13, 'n', 'o', 'n', 'o', 'd', 'e', '@', 'n', 'o', 'h',
                               'o', 's', 't', 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0));
}

static void test_funs(void **st)
{
    (void)st;
    EXPECT_CANON(FIX(FUN1), FUN1 + 1, sizeof FUN1 - 1);
    EXPECT_SAME(FIX(FUN1), FIX(FUN1_OLD));
    /* a wrong Size field is malformed */
    uint8_t bad[sizeof FUN1];
    memcpy(bad, FUN1, sizeof FUN1);
    bad[5] = 71;
    EXPECT_FAIL(bad, sizeof bad);
    bad[5] = 69;
    EXPECT_FAIL(bad, sizeof bad);
    /* export funs: lists:map/2 */
    const uint8_t exp[] = {113, 119, 5,   'l', 'i', 's', 't', 's', 119, 3, 'm', 'a', 'p', 97, 2};
    EXPECT_CANON(B(113, 100, 0, 5, 'l', 'i', 's', 't', 's', 100, 0, 3, 'm', 'a', 'p', 97, 2),
                 FIX(exp));
    EXPECT_CANON(B(113, 100, 0, 5, 'l', 'i', 's', 't', 's', 100, 0, 3, 'm', 'a', 'p', 98, 0, 0, 0,
                   2),
                 FIX(exp));
    EXPECT_FAIL(B(113, 119, 1, 'l', 119, 1, 'm', 98, 0, 0, 1, 44));
    EXPECT_FAIL(B(113, 119, 1, 'l', 119, 1, 'm', 106));
}

static void test_distinct_terms_differ(void **st)
{
    (void)st;
    struct {
        const uint8_t *p;
        size_t n;
    } t[] = {
        {B(97, 1)},
        {B(97, 2)},
        {B(98, 255, 255, 255, 255)},
        {B(110, 1, 1, 2)},
        {B(110, 5, 0, 0, 0, 0, 0, 1)},
        {B(110, 5, 1, 0, 0, 0, 0, 1)},
        {B(70, 63, 240, 0, 0, 0, 0, 0, 0)},
        {B(119, 1, 'a')},
        {B(119, 1, 'b')},
        {B(119, 0)},
        {B(109, 0, 0, 0, 1, 'a')},
        {B(109, 0, 0, 0, 0)},
        {B(106)},
        {B(107, 0, 1, 'a')},
        {B(107, 0, 2, 'a', 'a')},
        {B(104, 0)},
        {B(104, 1, 119, 1, 'a')},
        {B(104, 2, 119, 1, 'a', 119, 1, 'a')},
        {B(108, 0, 0, 0, 1, 119, 1, 'a', 106)},
        {B(108, 0, 0, 0, 1, 119, 1, 'a', 119, 1, 'a')},
        {B(116, 0, 0, 0, 0)},
        {B(116, 0, 0, 0, 1, 119, 1, 'a', 119, 1, 'a')},
        {B(88, 119, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1)},
        {B(88, 119, 1, 'm', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1)},
        {B(89, 119, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 1)},
        {B(90, 0, 1, 119, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 1)},
        {B(90, 0, 2, 119, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0)},
        {B(77, 0, 0, 0, 1, 1, 0x80)},
        {B(77, 0, 0, 0, 1, 2, 0x80)},
    };
    size_t n = sizeof t / sizeof t[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            expect_differ(t[i].p, t[i].n, t[j].p, t[j].n);
}

/* ---- API behaviour ----------------------------------------------------- */

static void test_version_and_index(void **st)
{
    (void)st;
    EXPECT_SAME(B(131, 97, 5), B(97, 5));
    EXPECT_FAIL(B(131, 97, 5, 0)); /* trailing byte */
    EXPECT_FAIL(B(131));
    EXPECT_FAIL(B(97, 5, 97, 6));
    /* two terms in a row via term_norm_encode; the index advances */
    const char two[] = {98, 0, 0, 0, 7, 100, 0, 1, 'z'};
    ei_x_buff x;
    int idx = 0;
    assert_int_equal(ei_x_new(&x), 0);
    assert_int_equal(term_norm_encode(two, sizeof two, &idx, &x), 0);
    assert_int_equal(idx, 5);
    assert_int_equal(term_norm_encode(two, sizeof two, &idx, &x), 0);
    assert_int_equal(idx, (int)sizeof two);
    const uint8_t exp[] = {97, 7, 119, 1, 'z'};
    assert_int_equal(x.index, (int)sizeof exp);
    assert_memory_equal(x.buff, exp, sizeof exp);
    /* at the end: error, index and output unchanged */
    assert_int_equal(term_norm_encode(two, sizeof two, &idx, &x), -1);
    assert_int_equal(idx, (int)sizeof two);
    assert_int_equal(x.index, (int)sizeof exp);
    /* a failure deep inside a map restores the output */
    const char bad[] = {116, 0, 0, 0, 1, 97, 1, 104, 2, 97, 1};
    idx = 0;
    assert_int_equal(term_norm_encode(bad, sizeof bad, &idx, &x), -1);
    assert_int_equal(idx, 0);
    assert_int_equal(x.index, (int)sizeof exp);
    idx = -1;
    assert_int_equal(term_norm_encode(two, sizeof two, &idx, &x), -1);
    idx = 10;
    assert_int_equal(term_norm_encode(two, sizeof two, &idx, &x), -1);
    ei_x_free(&x);
}

static void test_rejected_tags(void **st)
{
    (void)st;
    EXPECT_FAIL(B(82, 0));                    /* ATOM_CACHE_REF */
    EXPECT_FAIL(B(131, 80, 0, 0, 0, 1, 120)); /* COMPRESSED */
    EXPECT_FAIL(B(117, 0, 0, 0, 0));          /* FUN_EXT */
    EXPECT_FAIL(B(121, 0));                   /* LOCAL_EXT */
    EXPECT_FAIL(B(0));
    EXPECT_FAIL(B(255));
}

static void test_huge_lengths(void **st)
{
    (void)st;
    EXPECT_FAIL(B(108, 255, 255, 255, 255, 97, 1, 106));
    EXPECT_FAIL(B(116, 255, 255, 255, 255, 97, 1, 97, 1));
    EXPECT_FAIL(B(105, 255, 255, 255, 255, 97, 1));
    EXPECT_FAIL(B(109, 255, 255, 255, 255, 1));
    EXPECT_FAIL(B(77, 255, 255, 255, 255, 1, 1));
    EXPECT_FAIL(B(111, 255, 255, 255, 255, 0, 1));
    EXPECT_FAIL(B(107, 255, 255, 1));
    EXPECT_FAIL(B(118, 255, 255, 'a'));
    EXPECT_FAIL(B(90, 255, 255, 119, 1, 'n', 0, 0, 0, 1));
}

/* Every strict prefix of a valid term is rejected, reading nothing beyond
 * the prefix (the copy is exactly sized, so ASan would catch it). */
static void check_prefixes(const uint8_t *in, size_t n)
{
    bytes ok = canon(in, n);
    bytes_free(&ok);
    for (size_t k = 0; k < n; k++)
        assert_true(fails(in, k));
}

static void test_truncation(void **st)
{
    (void)st;
    check_prefixes(FIX(GK_DEFAULT));
    check_prefixes(FIX(GK_UTF8));
    check_prefixes(FIX(MIXED));
    check_prefixes(FIX(FUN1));
    check_prefixes(FIX(FUN1_OLD));
    check_prefixes(FIX(IMPROPER));
    check_prefixes(FIX(PID1));
    check_prefixes(FIX(REF1));
    check_prefixes(FIX(PORT1));
    check_prefixes(B(116, 0, 0, 0, 2, 100, 0, 1, 'b', 98, 0, 0, 0, 2, 115, 1, 'a', 97, 1));
    check_prefixes(B(108, 0, 0, 0, 1, 97, 'a', 108, 0, 0, 0, 1, 97, 'b', 107, 0, 1, 'c'));
    check_prefixes(B(113, 100, 0, 5, 'l', 'i', 's', 't', 's', 100, 0, 3, 'm', 'a', 'p', 97, 2));
    check_prefixes(B(101, 119, 1, 'n', 0, 0, 0, 42, 3));
    check_prefixes(B(120, 119, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 2));
    check_prefixes(B(102, 119, 1, 'n', 0, 0, 0, 7, 2));
    check_prefixes(B(77, 0, 0, 0, 2, 1, 7, 0xFF));
    check_prefixes(B(111, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 1));
    uint8_t fl[32] = {99};
    memcpy(fl + 1, "1.50000000000000000000e+00", 26);
    check_prefixes(fl, sizeof fl);
}

/* Random mutations of valid terms: whatever the result, no crash, no ASan
 * report, and any accepted input yields valid, idempotent output (checked
 * inside canon). */
static void test_mutations(void **st)
{
    (void)st;
    const struct {
        const uint8_t *p;
        size_t n;
    } seeds[] = {{FIX(GK_DEFAULT)}, {FIX(MIXED)}, {FIX(FUN1_OLD)}, {FIX(REF1)},
                 {B(116, 0, 0, 0, 2, 100, 0, 1, 'b', 98, 0, 0, 0, 2, 115, 1, 'a', 97, 1)}};
    uint64_t r = 0x243F6A8885A308D3ull;
    uint8_t buf[256];
    size_t accepted = 0;
    for (int it = 0; it < 20000; it++) {
        size_t s = it % (sizeof seeds / sizeof seeds[0]);
        size_t n = seeds[s].n;
        memcpy(buf, seeds[s].p, n);
        int flips = 1 + it % 3;
        for (int f = 0; f < flips; f++) {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            buf[(r >> 8) % n] = (uint8_t)(r >> 40);
        }
        if ((r >> 20) % 4 == 0)
            n = (size_t)((r >> 24) % n) + 1;
        ei_x_buff x;
        assert_int_equal(ei_x_new(&x), 0);
        int rc = run(buf, n, &x);
        ei_x_free(&x);
        if (rc == 0) {
            bytes b = canon(buf, n);
            bytes_free(&b);
            accepted++;
        }
    }
    assert_true(accepted > 0);
}

static bytes nested_tuples(size_t depth)
{
    bytes b = {malloc(2 * depth + 2), 2 * depth + 2};
    assert_non_null(b.p);
    for (size_t i = 0; i < depth; i++) {
        b.p[2 * i] = 104;
        b.p[2 * i + 1] = 1;
    }
    b.p[2 * depth] = 97;
    b.p[2 * depth + 1] = 0;
    return b;
}

static void test_depth_limit(void **st)
{
    (void)st;
    bytes ok = nested_tuples(TERM_NORM_MAX_DEPTH);
    ei_x_buff x;
    assert_int_equal(ei_x_new(&x), 0);
    assert_int_equal(run(ok.p, ok.n, &x), 0);
    assert_int_equal(x.index, (int)ok.n);
    assert_memory_equal(x.buff, ok.p, ok.n);
    ei_x_free(&x);
    bytes_free(&ok);
    bytes deep = nested_tuples(TERM_NORM_MAX_DEPTH + 1);
    assert_true(fails(deep.p, deep.n));
    bytes_free(&deep);
    deep = nested_tuples(100000); /* rejected early, no stack exhaustion */
    assert_true(fails(deep.p, deep.n));
    bytes_free(&deep);
    /* [[[...[]...]]] and nested maps count depth too */
    for (int kind = 0; kind < 2; kind++) {
        size_t levels = TERM_NORM_MAX_DEPTH + 1;
        size_t cell = kind == 0 ? 5 : 7;
        bytes b = {malloc(levels * (cell + 1) + 1), 0};
        assert_non_null(b.p);
        uint8_t *o = b.p;
        for (size_t i = 0; i < levels; i++) {
            if (kind == 0) { /* LIST_EXT, 1 element */
                const uint8_t h[5] = {108, 0, 0, 0, 1};
                memcpy(o, h, 5);
            } else { /* MAP_EXT, 1 pair, key 0 */
                const uint8_t h[7] = {116, 0, 0, 0, 1, 97, 0};
                memcpy(o, h, 7);
            }
            o += cell;
        }
        *o++ = 106;
        for (size_t i = 0; kind == 0 && i < levels; i++)
            *o++ = 106; /* list tails */
        b.n = (size_t)(o - b.p);
        assert_true(fails(b.p, b.n));
        bytes_free(&b);
    }
}

/* Long chains of list tails are walked, not recursed: [1 | [1 | ...]] */
static void test_long_tail_chain(void **st)
{
    (void)st;
    const size_t n = 100000;
    bytes in = {malloc(n * 7 + 1), n * 7 + 1};
    assert_non_null(in.p);
    for (size_t i = 0; i < n; i++) {
        const uint8_t cell[7] = {108, 0, 0, 0, 1, 97, 1};
        memcpy(in.p + 7 * i, cell, 7);
    }
    in.p[n * 7] = 106;
    bytes out = canon(in.p, in.n);
    assert_int_equal(out.n, 5 + 2 * n + 1);
    assert_int_equal(out.p[0], 108);
    assert_int_equal(out.p[1] << 24 | out.p[2] << 16 | out.p[3] << 8 | out.p[4], (int)n);
    bytes_free(&in);
    bytes_free(&out);
}

/* Where term_norm's rules (binary_to_term's) differ from the validator's
 * (ei's), term_walk.h's table: each is pinned here and in test_term_walk. */
static void test_rules_for_erts(void **st)
{
    (void)st;
    /* a float's text may fill its 31 bytes; after the number only NULs */
    uint8_t fl[32] = {99};
    memset(fl + 1, '1', 31);
    bytes b = canon(fl, sizeof fl);
    assert_int_equal(b.n, 9);
    assert_int_equal(b.p[0], 70);
    bytes_free(&b);
    memset(fl + 1, 0, 31);
    memcpy(fl + 1, "1.5\0x", 5);
    EXPECT_FAIL(fl, sizeof fl);
    /* an export's arity and a fun's OldIndex may be any integer encoding */
    EXPECT_CANON(B(113, 119, 1, 'm', 119, 1, 'f', 110, 2, 0, 2, 0), B(113, 119, 1, 'm', 119, 1,
                                                                       'f', 97, 2));
    EXPECT_CANON(B(113, 119, 1, 'm', 119, 1, 'f', 110, 0, 1), B(113, 119, 1, 'm', 119, 1, 'f',
                                                                 97, 0));
    EXPECT_FAIL(B(113, 119, 1, 'm', 119, 1, 'f', 98, 255, 255, 255, 255));
    uint8_t fun[sizeof FUN1 + 2];
    size_t at = 1 + 1 + 4 + 1 + 16 + 4 + 4 + 6; /* FUN1's OldIndex: 97, 0 */
    memcpy(fun, FUN1, at);
    const uint8_t old_index[] = {110, 1, 0, 0};
    memcpy(fun + at, old_index, sizeof old_index);
    memcpy(fun + at + sizeof old_index, FUN1 + at + 2, sizeof FUN1 - at - 2);
    fun[5] = 72; /* Size */
    EXPECT_SAME(fun, sizeof fun, FIX(FUN1));
    /* the pid in a fun is part of its head, a list's tail part of the list:
     * neither costs a level */
    size_t fn = sizeof FUN1 - 1;
    bytes deep = nested_tuples(TERM_NORM_MAX_DEPTH);
    uint8_t *f = malloc(2 * TERM_NORM_MAX_DEPTH + fn);
    memcpy(f, deep.p, 2 * TERM_NORM_MAX_DEPTH);
    memcpy(f + 2 * TERM_NORM_MAX_DEPTH, FUN1 + 1, fn);
    b = canon(f, 2 * TERM_NORM_MAX_DEPTH + fn);
    bytes_free(&b);
    const uint8_t tail[] = {108, 0, 0, 0, 0, 106};
    memcpy(f + 2 * TERM_NORM_MAX_DEPTH, tail, sizeof tail);
    b = canon(f, 2 * TERM_NORM_MAX_DEPTH + sizeof tail);
    bytes_free(&b);
    const uint8_t improper[] = {108, 0, 0, 0, 0, 119, 1, 'a'};
    memcpy(f + 2 * TERM_NORM_MAX_DEPTH, improper, sizeof improper);
    assert_true(fails(f, 2 * TERM_NORM_MAX_DEPTH + sizeof improper));
    free(f);
    bytes_free(&deep);
}

static void test_hash(void **st)
{
    (void)st;
    /* FNV-1a 64 reference values */
    assert_true(term_norm_hash("", 0) == 0xcbf29ce484222325ull);
    assert_true(term_norm_hash("a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(term_norm_hash("foobar", 6) == 0x85944171f73967e8ull);
    bytes a = canon(FIX(GK_DEFAULT)), b = canon(FIX(GK_UTF8));
    assert_true(term_norm_hash(a.p, a.n) == term_norm_hash(b.p, b.n));
    bytes_free(&a);
    bytes_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_atoms),
        cmocka_unit_test(test_long_atoms),
        cmocka_unit_test(test_bad_utf8_atoms),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_strings_and_lists),
        cmocka_unit_test(test_improper),
        cmocka_unit_test(test_string_length_limit),
        cmocka_unit_test(test_maps),
        cmocka_unit_test(test_pids_ports_refs),
        cmocka_unit_test(test_binaries_and_tuples),
        cmocka_unit_test(test_mixed_fixture),
        cmocka_unit_test(test_funs),
        cmocka_unit_test(test_distinct_terms_differ),
        cmocka_unit_test(test_version_and_index),
        cmocka_unit_test(test_rejected_tags),
        cmocka_unit_test(test_huge_lengths),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_long_tail_chain),
        cmocka_unit_test(test_rules_for_erts),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
