/* The frame validator (term_skip) against terms whose size fields lie:
 * every nested field of a fun is checked, so a NEW_FUN_EXT whose Size or
 * module atom length runs past the buffer, or whose fields do not end where
 * its Size says, is rejected before ei's decoders (which trust those fields)
 * see it; nor is a FLOAT_EXT whose text ei would read past its 31 bytes or
 * fail to read. Buffers are malloc'd to their exact length, so ASan and valgrind
 * report any read past them. */
#include "codec/term_read.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

typedef struct fun_spec {
    uint32_t nfree;      /* NumFree field */
    int free_vars;       /* how many free variables are really there */
    int size_delta;      /* added to the true Size */
    int module_len_lie;  /* added to the module atom's length byte */
    uint8_t pid_tag;     /* 88 (NEW_PID_EXT) unless testing another */
} fun_spec;

static size_t put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return 4;
}

/* NEW_FUN_EXT laid out as OTP 25-29 encode a local fun, with lies added. */
static uint8_t *make_fun(const fun_spec *f, int *len)
{
    uint8_t *b = calloc(1, 512);
    size_t n = 0;
    b[n++] = 112; /* NEW_FUN_EXT */
    size_t size_at = n;
    n += 4;
    b[n++] = 1;      /* Arity */
    n += 16;         /* Uniq */
    n += put32(b + n, 0); /* Index */
    n += put32(b + n, f->nfree);
    b[n++] = 119; /* module: SMALL_ATOM_UTF8_EXT "erl_eval" */
    b[n++] = (uint8_t)(8 + f->module_len_lie);
    memcpy(b + n, "erl_eval", 8);
    n += 8;
    b[n++] = 97; /* OldIndex */
    b[n++] = 42;
    b[n++] = 98; /* OldUniq */
    n += put32(b + n, 123456);
    b[n++] = f->pid_tag ? f->pid_tag : 88;
    b[n++] = 119;
    b[n++] = 3;
    memcpy(b + n, "a@h", 3);
    n += 3;
    n += put32(b + n, 1);
    n += put32(b + n, 0);
    n += put32(b + n, 7);
    for (int k = 0; k < f->free_vars; k++) {
        b[n++] = 97;
        b[n++] = (uint8_t)k;
    }
    put32(b + size_at, (uint32_t)((int)(n - size_at) + f->size_delta));
    /* exact-size copy: a read past the end is a sanitizer/valgrind error */
    uint8_t *exact = malloc(n);
    memcpy(exact, b, n);
    free(b);
    *len = (int)n;
    return exact;
}

static int walk(const fun_spec *f)
{
    int len = 0, idx = 0;
    uint8_t *b = make_fun(f, &len);
    int rc = term_skip((const char *)b, len, &idx);
    if (rc == 0)
        assert_int_equal(idx, len);
    free(b);
    return rc;
}

static void test_honest_fun_accepted(void **st)
{
    (void)st;
    assert_int_equal(walk(&(fun_spec){.nfree = 0, .free_vars = 0}), 0);
    assert_int_equal(walk(&(fun_spec){.nfree = 3, .free_vars = 3}), 0);
}

static void test_lying_fun_rejected(void **st)
{
    (void)st;
    /* Size says more or less than the fields hold */
    assert_int_equal(walk(&(fun_spec){.nfree = 1, .free_vars = 1, .size_delta = -2}), -1);
    assert_int_equal(walk(&(fun_spec){.nfree = 1, .free_vars = 1, .size_delta = 200}), -1);
    /* the module atom's length runs past Size and past the buffer */
    assert_int_equal(walk(&(fun_spec){.nfree = 0, .module_len_lie = 200}), -1);
    /* more free variables claimed than present; a huge count */
    assert_int_equal(walk(&(fun_spec){.nfree = 2, .free_vars = 1}), -1);
    assert_int_equal(walk(&(fun_spec){.nfree = 0xFFFFFFFFu, .free_vars = 1}), -1);
    /* the creator must be a pid */
    assert_int_equal(walk(&(fun_spec){.pid_tag = 100}), -1);
    /* Size below the fixed header */
    uint8_t tiny[] = {112, 0, 0, 0, 3};
    int idx = 0;
    assert_int_equal(term_skip((const char *)tiny, (int)sizeof tiny, &idx), -1);
}

/* Every proper prefix of an honest fun is rejected without a read past it. */
static void test_fun_prefixes(void **st)
{
    (void)st;
    int len = 0;
    uint8_t *b = make_fun(&(fun_spec){.nfree = 2, .free_vars = 2}, &len);
    for (int cut = 0; cut < len; cut++) {
        uint8_t *p = malloc(cut ? (size_t)cut : 1);
        memcpy(p, b, (size_t)cut);
        int idx = 0;
        assert_int_equal(term_skip((const char *)p, cut, &idx), -1);
        free(p);
    }
    free(b);
}

static void test_export_arity_is_small_int(void **st)
{
    (void)st;
    const uint8_t ok[] = {113, 119, 1, 'm', 119, 1, 'f', 97, 2};
    const uint8_t bad[] = {113, 119, 1, 'm', 119, 1, 'f', 106};
    int idx = 0;
    assert_int_equal(term_skip((const char *)ok, (int)sizeof ok, &idx), 0);
    idx = 0;
    assert_int_equal(term_skip((const char *)bad, (int)sizeof bad, &idx), -1);
}

/* FLOAT_EXT text: ei parses it with sscanf, which reads to a NUL and does
 * not move on from a text that is no number; the walker lets through only
 * what ei reads within the 31 bytes and skips as the walker does. */
static int skip_float(const char *text, size_t text_len)
{
    uint8_t *b = malloc(32);
    b[0] = 99; /* FLOAT_EXT */
    memset(b + 1, 0, 31);
    memcpy(b + 1, text, text_len);
    int idx = 0;
    int rc = term_skip((const char *)b, 32, &idx);
    assert_true(rc != 0 || idx == 32);
    free(b);
    return rc;
}

static void test_float_text(void **st)
{
    (void)st;
    assert_int_equal(skip_float("1.50000000000000000000e+00", 26), 0);
    assert_int_equal(skip_float("-2.5e-3", 7), 0);
    assert_int_equal(skip_float("1111111111111111111111111111111", 31), -1); /* no NUL */
    assert_int_equal(skip_float("x1.5", 4), -1);
    assert_int_equal(skip_float("", 0), -1);
}

/* BIT_BINARY_EXT: Len, the bits used in the last byte, the bytes. ei
 * skips only 1 to 8 bits with bytes, or 0 bits with none. */
static int skip_bits(uint8_t nbytes, uint8_t bits)
{
    uint8_t *b = malloc(6u + nbytes);
    b[0] = 77; /* BIT_BINARY_EXT */
    b[1] = b[2] = b[3] = 0;
    b[4] = nbytes;
    b[5] = bits;
    memset(b + 6, 0xff, nbytes);
    int idx = 0;
    int rc = term_skip((const char *)b, 6 + nbytes, &idx);
    assert_true(rc != 0 || idx == 6 + nbytes);
    free(b);
    return rc;
}

static void test_bitstring_bits(void **st)
{
    (void)st;
    assert_int_equal(skip_bits(1, 1), 0);
    assert_int_equal(skip_bits(2, 8), 0);
    assert_int_equal(skip_bits(0, 0), 0);
    assert_int_equal(skip_bits(1, 0), -1);
    assert_int_equal(skip_bits(1, 9), -1);
    assert_int_equal(skip_bits(0, 3), -1);
}

/* term_x_reserve grows a buffer geometrically (a message built from many
 * appends is not copied over and over), keeps its bytes and index, and
 * refuses sizes an int cannot hold. */
static void test_x_reserve(void **st)
{
    (void)st;
    ei_x_buff x;
    assert_int_equal(ei_x_new(&x), 0);
    int grows = 0, last = x.buffsz;
    for (int i = 0; i < 100000; i++) {
        assert_int_equal(term_x_reserve(&x, 16), 0);
        assert_true(x.buffsz - x.index >= 16);
        assert_int_equal(ei_x_encode_long(&x, i), 0);
        if (x.buffsz != last) {
            grows++;
            last = x.buffsz;
        }
    }
    assert_true(grows < 30); /* doubling, not ~200 bytes at a time */
    int idx = 0;
    for (long i = 0; i < 100000; i++) {
        long v = -1;
        assert_int_equal(ei_decode_long(x.buff, &idx, &v), 0);
        assert_int_equal(v, i);
    }
    int at = x.index;
    assert_int_equal(term_x_reserve(&x, (size_t)1 << 40), -1);
    assert_int_equal(x.index, at);
    ei_x_free(&x);
}

static int skip_bytes(const uint8_t *in, size_t n)
{
    uint8_t *b = malloc(n);
    memcpy(b, in, n);
    int idx = 0;
    int rc = term_skip((const char *)b, (int)n, &idx);
    assert_true(rc != 0 || idx == (int)n);
    free(b);
    return rc;
}

/* Where the validator's rules (for ei) differ from term_norm's (for
 * binary_to_term), term_walk.h's table: each is pinned here and in
 * test_term_norm. */
static void test_rules_for_ei(void **st)
{
    (void)st;
    /* an export's arity is SMALL_INTEGER_EXT, not any integer */
    const uint8_t exp_int[] = {113, 119, 1, 'm', 119, 1, 'f', 98, 0, 0, 0, 2};
    assert_int_equal(skip_bytes(exp_int, sizeof exp_int), -1);
    /* a fun's OldIndex is no big */
    int len = 0;
    uint8_t *fun = make_fun(&(fun_spec){.nfree = 0}, &len);
    uint8_t big[512];
    size_t at = 1 + 4 + 1 + 16 + 4 + 4 + 2 + 8; /* OldIndex: 97, 42 */
    memcpy(big, fun, at);
    const uint8_t old_index[] = {110, 1, 0, 42};
    memcpy(big + at, old_index, sizeof old_index);
    memcpy(big + at + sizeof old_index, fun + at + 2, (size_t)len - at - 2);
    put32(big + 1, (uint32_t)len + 2 - 1);
    assert_int_equal(skip_bytes(big, (size_t)len + 2), -1);
    free(fun);
    /* what erts refuses and ei reads: references of no words, atoms that
     * are no UTF-8, NaN, a float's text with more after its number */
    const uint8_t ref0[] = {90, 0, 0, 119, 1, 'n', 0, 0, 0, 3};
    const uint8_t not_utf8[] = {119, 1, 0xFF};
    const uint8_t nan[] = {70, 127, 248, 0, 0, 0, 0, 0, 1};
    assert_int_equal(skip_bytes(ref0, sizeof ref0), 0);
    assert_int_equal(skip_bytes(not_utf8, sizeof not_utf8), 0);
    assert_int_equal(skip_bytes(nan, sizeof nan), 0);
    assert_int_equal(skip_float("1.5\0x", 5), 0);
}

/* {{...{Term}...}}, depth tuples deep. */
static uint8_t *nest(int depth, const uint8_t *t, size_t tn, size_t *n)
{
    *n = 2 * (size_t)depth + tn;
    uint8_t *b = malloc(*n);
    for (int i = 0; i < depth; i++) {
        b[2 * i] = 104;
        b[2 * i + 1] = 1;
    }
    memcpy(b + 2 * (size_t)depth, t, tn);
    return b;
}

static void test_depth(void **st)
{
    (void)st;
    const uint8_t nil[] = {106};
    size_t n;
    uint8_t *b = nest(TERM_MAX_DEPTH, nil, 1, &n);
    assert_int_equal(skip_bytes(b, n), 0);
    free(b);
    b = nest(TERM_MAX_DEPTH + 1, nil, 1, &n);
    assert_int_equal(skip_bytes(b, n), -1);
    free(b);
    /* a fun's creator pid is a level deeper than the fun, as ei reads it */
    int len = 0;
    uint8_t *fun = make_fun(&(fun_spec){.nfree = 0}, &len);
    b = nest(TERM_MAX_DEPTH - 1, fun, (size_t)len, &n);
    assert_int_equal(skip_bytes(b, n), 0);
    free(b);
    b = nest(TERM_MAX_DEPTH, fun, (size_t)len, &n);
    assert_int_equal(skip_bytes(b, n), -1);
    free(b);
    free(fun);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_x_reserve),
        cmocka_unit_test(test_honest_fun_accepted),
        cmocka_unit_test(test_lying_fun_rejected),
        cmocka_unit_test(test_fun_prefixes),
        cmocka_unit_test(test_export_arity_is_small_int),
        cmocka_unit_test(test_float_text),
        cmocka_unit_test(test_bitstring_bits),
        cmocka_unit_test(test_rules_for_ei),
        cmocka_unit_test(test_depth),
    };
    return cmocka_run_group_tests_name("term walk", tests, NULL, NULL);
}
