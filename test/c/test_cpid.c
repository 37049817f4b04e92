/* Compact pids and references.
 *
 * References: a round trip through ei's erlang_ref, and a match that tells
 * the same reference from one of another node, length, creation or number.
 *
 * Both, for node names of every length class (1 byte; 255 bytes, the most a
 * SMALL_ATOM_UTF8_EXT holds; 255 characters of 4-byte UTF-8, 1,020 bytes,
 * only in ATOM_UTF8_EXT) and V4 numbers (OTP 24+ nodes with DFLAG_V4_NC:
 * a pid's ID and Serial and every word of a reference use all 32 bits, a
 * reference has 1 to 5 words): what is read from PID_EXT (8-bit creation)
 * or NEW_PID_EXT, with any of the atom encodings, is written back as
 * NEW_PID_EXT byte for byte as ei encodes the same pid; every truncation
 * is refused without interning. A pid of a restarted node (same name,
 * another creation) is another compact pid that keeps its own creation;
 * rc_cpid_read_of refuses pids of other nodes without interning them. */
#include "proc/cpid.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static erlang_ref ref_of(const char *node, int len, unsigned creation, unsigned first)
{
    erlang_ref r;
    memset(&r, 0, sizeof r);
    strcpy(r.node, node);
    r.len = len;
    r.creation = creation;
    for (int i = 0; i < len; i++)
        r.n[i] = first + (unsigned)i;
    return r;
}

static void test_cref_round_trip_and_match(void **state)
{
    (void)state;
    rc_nodetab *t = rc_nodetab_new();
    assert_non_null(t);
    erlang_ref r = ref_of("c@h", 3, 77, 1000);
    rc_cref c;
    assert_int_equal(rc_cref_from_ei(t, &r, &c), 0);
    assert_true(sizeof c <= 32);
    erlang_ref back;
    assert_int_equal(rc_cref_to_ei(t, &c, &back), 0);
    assert_string_equal(back.node, "c@h");
    assert_int_equal(back.len, 3);
    assert_int_equal(back.creation, 77);
    assert_memory_equal(back.n, r.n, 3 * sizeof r.n[0]);
    assert_true(rc_cref_matches(t, &c, &r));
    erlang_ref other = ref_of("d@h", 3, 77, 1000);
    assert_false(rc_cref_matches(t, &c, &other)); /* another node, never interned */
    other = ref_of("c@h", 2, 77, 1000);
    assert_false(rc_cref_matches(t, &c, &other));
    other = ref_of("c@h", 3, 78, 1000);
    assert_false(rc_cref_matches(t, &c, &other));
    other = ref_of("c@h", 3, 77, 1001);
    assert_false(rc_cref_matches(t, &c, &other));
    erlang_ref bad = ref_of("c@h", 0, 77, 1);
    assert_int_equal(rc_cref_from_ei(t, &bad, &c), -1);
    rc_nodetab_free(t);
}

/* ---- node names of every length class ---- */

enum { NAME_CAP = 255 * 4 + 1 };

typedef struct name_class {
    const char *what;
    char name[NAME_CAP];
    size_t len;
    int ascii; /* also encodable with the latin-1 atom tags */
} name_class;

/* "a"; 253 x 'n' + "@h" (255 bytes); 255 x U+1F600 (1,020 bytes). */
static void name_classes(name_class out[3])
{
    memset(out, 0, 3 * sizeof out[0]);
    out[0].what = "1 byte";
    strcpy(out[0].name, "a");
    out[1].what = "255 bytes";
    memset(out[1].name, 'n', 253);
    memcpy(out[1].name + 253, "@h", 2);
    out[2].what = "255 4-byte characters";
    for (int i = 0; i < 255; i++)
        memcpy(out[2].name + 4 * i, "\xF0\x9F\x98\x80", 4);
    for (int k = 0; k < 3; k++)
        out[k].len = strlen(out[k].name);
    out[0].ascii = out[1].ascii = 1;
    assert_int_equal(out[0].len, 1);
    assert_int_equal(out[1].len, 255);
    assert_int_equal(out[2].len, 1020);
}

static size_t put32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
    return 4;
}

/* The atom `name` with tag atag (SMALL_ or not: 1- or 2-byte length). */
static size_t put_atom(uint8_t *b, uint8_t atag, const char *name, size_t len)
{
    size_t i = 0;
    b[i++] = atag;
    if (atag == ERL_SMALL_ATOM_EXT || atag == ERL_SMALL_ATOM_UTF8_EXT) {
        assert_true(len <= 255);
        b[i++] = (uint8_t)len;
    } else {
        b[i++] = (uint8_t)(len >> 8);
        b[i++] = (uint8_t)len;
    }
    memcpy(b + i, name, len);
    return i + len;
}

/* PID_EXT (1-byte creation) or NEW_PID_EXT (4-byte creation). */
static size_t put_pid(uint8_t *b, uint8_t ptag, uint8_t atag, const name_class *n, uint32_t num,
                      uint32_t serial, uint32_t creation)
{
    size_t i = 0;
    b[i++] = ptag;
    i += put_atom(b + i, atag, n->name, n->len);
    i += put32(b + i, num);
    i += put32(b + i, serial);
    if (ptag == ERL_PID_EXT)
        b[i++] = (uint8_t)creation;
    else
        i += put32(b + i, creation);
    return i;
}

/* The tag the writer (and ei) use for a name of len bytes. */
static uint8_t canonical_atag(size_t len)
{
    return len <= 255 ? ERL_SMALL_ATOM_UTF8_EXT : ERL_ATOM_UTF8_EXT;
}

/* 1 if the table holds exactly `count` names. */
static int table_size_is(const rc_nodetab *t, uint32_t count)
{
    return (count == 0 || rc_nodetab_name(t, count - 1) != NULL) &&
           rc_nodetab_name(t, count) == NULL;
}

/* One pid read from `in` (n bytes): every shorter prefix is refused with
 * *idx unchanged and nothing interned; the whole is read into a node of
 * the given name and written back as `want` (NEW_PID_EXT), the bytes ei
 * writes for the same pid; to and from ei's erlang_pid it is unchanged. */
static rc_cpid read_write_pid(rc_nodetab *t, const name_class *nc, const uint8_t *in, size_t n,
                              const uint8_t *want, size_t want_len, uint32_t num, uint32_t serial,
                              uint32_t creation)
{
    uint32_t before = rc_nodetab_find(t, nc->name, nc->len) == RC_NODE_NONE ? 0 : 1;
    rc_cpid c;
    for (size_t cut = 0; cut < n; cut++) {
        int idx = 0;
        assert_int_equal(rc_cpid_read(t, (const char *)in, (int)cut, &idx, &c), -1);
        assert_int_equal(idx, 0);
    }
    if (before == 0)
        assert_int_equal(rc_nodetab_find(t, nc->name, nc->len), RC_NODE_NONE);
    int idx = 0;
    assert_int_equal(rc_cpid_read(t, (const char *)in, (int)n, &idx, &c), 0);
    assert_int_equal(idx, (int)n);
    assert_int_equal(rc_nodetab_name_len(t, c.node), nc->len);
    assert_memory_equal(rc_nodetab_name(t, c.node), nc->name, nc->len);
    assert_int_equal(c.num, num);
    assert_int_equal(c.serial, serial);
    assert_int_equal(c.creation, creation);
    /* written back: NEW_PID_EXT, as ei writes it */
    ei_x_buff x;
    assert_int_equal(ei_x_new(&x), 0);
    assert_int_equal(rc_cpid_write(t, &x, &c), 0);
    assert_int_equal(x.index, (int)want_len);
    assert_memory_equal(x.buff, want, want_len);
    erlang_pid e;
    assert_int_equal(rc_cpid_to_ei(t, &c, &e), 0);
    assert_string_equal(e.node, nc->name);
    assert_int_equal(e.num, num);
    assert_int_equal(e.serial, serial);
    assert_int_equal(e.creation, creation);
    ei_x_buff y;
    assert_int_equal(ei_x_new(&y), 0);
    assert_int_equal(ei_x_encode_pid(&y, &e), 0);
    assert_int_equal(y.index, (int)want_len);
    assert_memory_equal(y.buff, want, want_len);
    /* ei reads what the writer wrote as the same pid */
    erlang_pid d;
    int di = 0;
    assert_int_equal(ei_decode_pid(x.buff, &di, &d), 0);
    assert_int_equal(di, x.index);
    assert_string_equal(d.node, nc->name);
    assert_int_equal(d.num, num);
    assert_int_equal(d.serial, serial);
    assert_int_equal(d.creation, creation);
    rc_cpid back;
    assert_int_equal(rc_cpid_from_ei(t, &e, &back), 0);
    assert_true(rc_cpid_eq(&back, &c));
    ei_x_free(&x);
    ei_x_free(&y);
    return c;
}

static void test_pid_every_name_length(void **state)
{
    (void)state;
    name_class nc[3];
    name_classes(nc);
    rc_nodetab *t = rc_nodetab_new();
    assert_non_null(t);
    static uint8_t in[1 + 3 + NAME_CAP + 12], want[1 + 3 + NAME_CAP + 12];
    /* V4: ID and Serial with bit 31 set, a 32-bit creation */
    const uint32_t num = 0xDEADBEEFu, serial = 0xFEEDF00Du, creation = 0xF1020304u;
    /* PID_EXT as pre-OTP-23 nodes send it: 15-bit ID, 13-bit Serial, a
     * creation of 2 significant bits in its one byte */
    const uint32_t onum = 0x7FFFu, oserial = 0x1FFFu, ocreation = 3;
    for (int k = 0; k < 3; k++) {
        uint8_t atags[4];
        size_t na = 0;
        if (nc[k].ascii) {
            if (nc[k].len <= 255) {
                atags[na++] = ERL_SMALL_ATOM_EXT;
                atags[na++] = ERL_SMALL_ATOM_UTF8_EXT;
            }
            atags[na++] = ERL_ATOM_EXT;
        }
        atags[na++] = ERL_ATOM_UTF8_EXT;
        rc_cpid first = {0};
        for (size_t a = 0; a < na; a++) {
            print_message("%s, atom tag %u\n", nc[k].what, atags[a]);
            size_t wl = put_pid(want, ERL_NEW_PID_EXT, canonical_atag(nc[k].len), &nc[k], num,
                                serial, creation);
            size_t n = put_pid(in, ERL_NEW_PID_EXT, atags[a], &nc[k], num, serial, creation);
            rc_cpid c = read_write_pid(t, &nc[k], in, n, want, wl, num, serial, creation);
            wl = put_pid(want, ERL_NEW_PID_EXT, canonical_atag(nc[k].len), &nc[k], onum, oserial,
                         ocreation);
            n = put_pid(in, ERL_PID_EXT, atags[a], &nc[k], onum, oserial, ocreation);
            rc_cpid o = read_write_pid(t, &nc[k], in, n, want, wl, onum, oserial, ocreation);
            /* every encoding of the name is the same node */
            assert_int_equal(o.node, c.node);
            if (a == 0)
                first = c;
            assert_true(rc_cpid_eq(&c, &first));
        }
        assert_true(table_size_is(t, (uint32_t)k + 1));
    }
    rc_nodetab_free(t);
}

/* NEWER_REFERENCE_EXT with `len` words. */
static size_t put_ref(uint8_t *b, const name_class *n, int len, uint32_t creation,
                      const uint32_t *w)
{
    size_t i = 0;
    b[i++] = ERL_NEWER_REFERENCE_EXT;
    b[i++] = 0;
    b[i++] = (uint8_t)len;
    i += put_atom(b + i, canonical_atag(n->len), n->name, n->len);
    i += put32(b + i, creation);
    for (int k = 0; k < len; k++)
        i += put32(b + i, w[k]);
    return i;
}

static void test_ref_every_name_length_and_word_count(void **state)
{
    (void)state;
    name_class nc[3];
    name_classes(nc);
    rc_nodetab *t = rc_nodetab_new();
    assert_non_null(t);
    /* every word with bit 31 set, and a 32-bit creation */
    const uint32_t w[5] = {0xFFFFFFFFu, 0x80000001u, 0xDEADBEEFu, 0xC0FFEE00u, 0x8BADF00Du};
    const uint32_t creation = 0xFFFFFFFEu;
    static uint8_t in[1 + 2 + 3 + NAME_CAP + 4 + 20];
    for (int k = 0; k < 3; k++) {
        for (int len = 1; len <= 5; len++) {
            print_message("%s, %d word(s)\n", nc[k].what, len);
            size_t n = put_ref(in, &nc[k], len, creation, w);
            erlang_ref r;
            int idx = 0;
            assert_int_equal(ei_decode_ref((const char *)in, &idx, &r), 0);
            assert_int_equal(idx, (int)n);
            rc_cref c;
            assert_int_equal(rc_cref_from_ei(t, &r, &c), 0);
            assert_int_equal(c.len, len);
            assert_int_equal(c.creation, creation);
            assert_memory_equal(c.n, w, (size_t)len * sizeof w[0]);
            assert_int_equal(rc_nodetab_name_len(t, c.node), nc[k].len);
            assert_true(rc_cref_matches(t, &c, &r));
            erlang_ref back;
            assert_int_equal(rc_cref_to_ei(t, &c, &back), 0);
            assert_string_equal(back.node, nc[k].name);
            assert_int_equal(back.len, len);
            assert_int_equal(back.creation, creation);
            for (int i = 0; i < len; i++)
                assert_int_equal(back.n[i], w[i]);
            /* encoded again by ei: the bytes it was read from */
            ei_x_buff x;
            assert_int_equal(ei_x_new(&x), 0);
            assert_int_equal(ei_x_encode_ref(&x, &back), 0);
            assert_int_equal(x.index, (int)n);
            assert_memory_equal(x.buff, in, n);
            ei_x_free(&x);
            /* each bit 31 counts, and so do the words past the first */
            for (int i = 0; i < len; i++) {
                erlang_ref other = r;
                other.n[i] ^= 0x80000000u;
                assert_false(rc_cref_matches(t, &c, &other));
            }
            if (len > 1) {
                erlang_ref shorter = r;
                shorter.len = len - 1;
                assert_false(rc_cref_matches(t, &c, &shorter));
            }
        }
        assert_true(table_size_is(t, (uint32_t)k + 1));
    }
    erlang_ref six;
    memset(&six, 0, sizeof six);
    strcpy(six.node, "a");
    six.len = 6;
    rc_cref c;
    assert_int_equal(rc_cref_from_ei(t, &six, &c), -1);
    rc_nodetab_free(t);
}

/* ---- a restarted peer: same name, another creation ---- */

static void test_same_name_other_creation(void **state)
{
    (void)state;
    rc_nodetab *t = rc_nodetab_new();
    assert_non_null(t);
    name_class nc;
    memset(&nc, 0, sizeof nc);
    strcpy(nc.name, "peer@h");
    nc.len = strlen(nc.name);
    uint8_t b1[64], b2[64];
    size_t n1 = put_pid(b1, ERL_NEW_PID_EXT, ERL_SMALL_ATOM_UTF8_EXT, &nc, 0x80000123u, 7,
                        0x64a0c001u);
    size_t n2 = put_pid(b2, ERL_NEW_PID_EXT, ERL_SMALL_ATOM_UTF8_EXT, &nc, 0x80000123u, 7,
                        0x64a0c002u);
    rc_cpid p1, p2;
    int i1 = 0, i2 = 0;
    assert_int_equal(rc_cpid_read(t, (const char *)b1, (int)n1, &i1, &p1), 0);
    assert_int_equal(rc_cpid_read(t, (const char *)b2, (int)n2, &i2, &p2), 0);
    assert_int_equal(p1.node, p2.node); /* one node name in the table */
    assert_true(table_size_is(t, 1));
    assert_false(rc_cpid_eq(&p1, &p2));
    ei_x_buff x;
    assert_int_equal(ei_x_new(&x), 0);
    assert_int_equal(rc_cpid_write(t, &x, &p1), 0);
    assert_int_equal(x.index, (int)n1);
    assert_memory_equal(x.buff, b1, n1);
    x.index = 0;
    assert_int_equal(rc_cpid_write(t, &x, &p2), 0);
    assert_int_equal(x.index, (int)n2);
    assert_memory_equal(x.buff, b2, n2);
    ei_x_free(&x);
    erlang_pid e;
    assert_int_equal(rc_cpid_to_ei(t, &p2, &e), 0);
    assert_int_equal(e.creation, 0x64a0c002u);
    /* rc_cpid_read_of takes either: it checks the name only */
    rc_cpid q;
    i2 = 0;
    assert_int_equal(rc_cpid_read_of(t, p1.node, (const char *)b2, (int)n2, &i2, &q), 0);
    assert_true(rc_cpid_eq(&q, &p2));
    /* references likewise */
    erlang_ref r1 = ref_of("peer@h", 3, 0x64a0c001u, 0x80000000u);
    erlang_ref r2 = ref_of("peer@h", 3, 0x64a0c002u, 0x80000000u);
    rc_cref c1, c2;
    assert_int_equal(rc_cref_from_ei(t, &r1, &c1), 0);
    assert_int_equal(rc_cref_from_ei(t, &r2, &c2), 0);
    assert_int_equal(c1.node, c2.node);
    assert_true(table_size_is(t, 1));
    assert_true(rc_cref_matches(t, &c1, &r1));
    assert_false(rc_cref_matches(t, &c1, &r2));
    assert_true(rc_cref_matches(t, &c2, &r2));
    assert_false(rc_cref_matches(t, &c2, &r1));
    erlang_ref back;
    assert_int_equal(rc_cref_to_ei(t, &c1, &back), 0);
    assert_int_equal(back.creation, 0x64a0c001u);
    assert_int_equal(rc_cref_to_ei(t, &c2, &back), 0);
    assert_int_equal(back.creation, 0x64a0c002u);
    rc_nodetab_free(t);
}

/* ---- rc_cpid_read_of ---- */

static void test_read_of_refuses_other_nodes(void **state)
{
    (void)state;
    name_class nc[3];
    name_classes(nc);
    rc_nodetab *t = rc_nodetab_new();
    assert_non_null(t);
    uint32_t idx_of[3];
    for (int k = 0; k < 3; k++)
        idx_of[k] = rc_nodetab_intern(t, nc[k].name, nc[k].len);
    static uint8_t b[1 + 3 + NAME_CAP + 12];
    for (int k = 0; k < 3; k++) {
        /* its own pids, from NEW_PID_EXT and PID_EXT */
        const uint8_t ptags[2] = {ERL_NEW_PID_EXT, ERL_PID_EXT};
        for (int p = 0; p < 2; p++) {
            size_t n = put_pid(b, ptags[p], ERL_ATOM_UTF8_EXT, &nc[k], 0x80000001u, 0x80000002u, 3);
            rc_cpid c;
            int i = 0;
            assert_int_equal(rc_cpid_read_of(t, idx_of[k], (const char *)b, (int)n, &i, &c), 0);
            assert_int_equal(i, (int)n);
            assert_int_equal(c.node, idx_of[k]);
            assert_int_equal(c.num, 0x80000001u);
            assert_int_equal(c.serial, 0x80000002u);
            assert_int_equal(c.creation, 3);
            /* truncated: malformed, *idx kept */
            for (size_t cut = 0; cut < n; cut++) {
                i = 0;
                assert_int_equal(
                    rc_cpid_read_of(t, idx_of[k], (const char *)b, (int)cut, &i, &c), -1);
                assert_int_equal(i, 0);
            }
        }
        /* the pids of the other two nodes: 1, *idx past the pid */
        for (int o = 0; o < 3; o++) {
            if (o == k)
                continue;
            size_t n = put_pid(b, ERL_NEW_PID_EXT, canonical_atag(nc[o].len), &nc[o], 1, 2, 3);
            rc_cpid c = {.node = 77};
            int i = 0;
            assert_int_equal(rc_cpid_read_of(t, idx_of[k], (const char *)b, (int)n, &i, &c), 1);
            assert_int_equal(i, (int)n);
            assert_int_equal(c.node, 77); /* *out untouched */
        }
    }
    /* names never interned: a prefix, an extension, another byte at the
     * end, a wholly other name (long and short); none joins the table */
    name_class strangers[5];
    memset(strangers, 0, sizeof strangers);
    memcpy(strangers[0].name, nc[1].name, 254); /* a prefix of the 255-byte name */
    memcpy(strangers[1].name, nc[0].name, 1);   /* "a" extended */
    strangers[1].name[1] = 'b';
    memcpy(strangers[2].name, nc[2].name, 1020); /* its last byte changed */
    strangers[2].name[1019] = (char)0x81;
    memcpy(strangers[3].name, nc[2].name, 1016); /* 254 of its characters */
    strcpy(strangers[4].name, "stranger@h");
    for (int s = 0; s < 5; s++) {
        strangers[s].len = strlen(strangers[s].name);
        for (int k = 0; k < 3; k++) {
            size_t n = put_pid(b, ERL_NEW_PID_EXT, canonical_atag(strangers[s].len), &strangers[s],
                               1, 2, 3);
            rc_cpid c;
            int i = 0;
            assert_int_equal(rc_cpid_read_of(t, idx_of[k], (const char *)b, (int)n, &i, &c), 1);
            assert_int_equal(i, (int)n);
        }
        assert_int_equal(rc_nodetab_find(t, strangers[s].name, strangers[s].len), RC_NODE_NONE);
    }
    assert_true(table_size_is(t, 3));
    /* a node index the table does not have: -1 */
    size_t n = put_pid(b, ERL_NEW_PID_EXT, ERL_SMALL_ATOM_UTF8_EXT, &nc[0], 1, 2, 3);
    rc_cpid c;
    int i = 0;
    assert_int_equal(rc_cpid_read_of(t, 3, (const char *)b, (int)n, &i, &c), -1);
    assert_int_equal(i, 0);
    rc_nodetab_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cref_round_trip_and_match),
        cmocka_unit_test(test_pid_every_name_length),
        cmocka_unit_test(test_ref_every_name_length_and_word_count),
        cmocka_unit_test(test_same_name_other_creation),
        cmocka_unit_test(test_read_of_refuses_other_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
