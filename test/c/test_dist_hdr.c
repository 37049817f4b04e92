/* Distribution header with atom cache: frames encoded by one side decode on
 * the other into exactly the pass-through frame they stand for; atoms sent
 * again go as one-byte references; and hostile headers (truncated, bad
 * indexes, references to entries never defined, atoms too long, growth past
 * the output limit) are refused without reading outside the frame. */
#include "codec/term_atoms.h"
#include "codec/term_read.h"
#include "transport/dist_hdr.h"

#include <ei.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static erlang_pid some_pid(const char *node)
{
    erlang_pid p;
    memset(&p, 0, sizeof p);
    strcpy(p.node, node);
    p.num = 42;
    p.serial = 1;
    p.creation = 7;
    return p;
}

/* {2, '', To}, as the process layer sends. */
static void ctrl_send_to(ei_x_buff *x, const erlang_pid *to)
{
    ei_x_new_with_version(x);
    ei_x_encode_tuple_header(x, 3);
    ei_x_encode_long(x, 2);
    ei_x_encode_atom(x, "");
    ei_x_encode_pid(x, to);
}

static void ctrl_send(ei_x_buff *x, const char *node)
{
    erlang_pid p = some_pid(node);
    ctrl_send_to(x, &p);
}

/* {events, [{event, <<"e">>, ok, Pid}]} */
static void msg_events(ei_x_buff *x)
{
    erlang_pid p = some_pid("emitter@host");
    ei_x_new_with_version(x);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, "events");
    ei_x_encode_list_header(x, 1);
    ei_x_encode_tuple_header(x, 4);
    ei_x_encode_atom(x, "event");
    ei_x_encode_binary(x, "e", 1);
    ei_x_encode_atom(x, "ok");
    ei_x_encode_pid(x, &p);
    ei_x_encode_empty_list(x);
}

/* The pass-through frame body: 112, ctrl, msg. */
static size_t pass_through(const ei_x_buff *c, const ei_x_buff *m, uint8_t *out)
{
    out[0] = 112;
    memcpy(out + 1, c->buff, (size_t)c->index);
    size_t n = 1 + (size_t)c->index;
    if (m != NULL) {
        memcpy(out + n, m->buff, (size_t)m->index);
        n += (size_t)m->index;
    }
    return n;
}

/* enc holds one whole frame of `added` bytes: its length, then the rest. */
static void check_frame(const bytebuf *enc, size_t added)
{
    assert_int_equal(added, bytebuf_pending(enc));
    uint32_t n = ((uint32_t)enc->data[0] << 24) | ((uint32_t)enc->data[1] << 16) |
                 ((uint32_t)enc->data[2] << 8) | enc->data[3];
    assert_int_equal(n + 4, added);
}

/* Encodes one frame into out (which then holds length + payload). */
static void encode(dist_hdr_out *h, dist_hdr_scratch *s, bytebuf *out, const ei_x_buff *c,
                   const ei_x_buff *m)
{
    struct iovec parts[2] = {{.iov_base = c->buff, .iov_len = (size_t)c->index},
                             {.iov_base = m ? m->buff : NULL, .iov_len = m ? (size_t)m->index : 0}};
    size_t added = 0;
    out->off = out->len = 0;
    assert_int_equal(dist_hdr_encode(h, s, out, parts, m ? 2 : 1, &added), RC_OK);
    check_frame(out, added);
    assert_int_equal(out->data[4], 131);
    assert_int_equal(out->data[5], 68);
}

/* Decodes the frame body f (no length) and checks it equals want. */
static void decode_raw_expect(dist_hdr_in *in, const uint8_t *f, size_t n, const uint8_t *want,
                              size_t wlen)
{
    bytebuf plain;
    bytebuf_init(&plain, 1 << 20);
    const char *why = NULL;
    int rc = dist_hdr_decode(in, f, n, &plain, &why);
    if (rc != 0)
        fail_msg("decode: %s", why);
    assert_int_equal(bytebuf_pending(&plain), wlen);
    assert_memory_equal(plain.data, want, wlen);
    bytebuf_free(&plain);
}

/* Decodes the frame in enc (with its length) and checks it equals want. */
static void decode_expect(dist_hdr_in *in, const bytebuf *enc, const uint8_t *want, size_t wlen)
{
    decode_raw_expect(in, enc->data + 4, bytebuf_pending(enc) - 4, want, wlen);
}

/* The first n atom cache references of the frame in enc: each one's
 * new-entry bit (8) is `bit`. */
static void check_new_entries(const bytebuf *enc, int n, int bit)
{
    for (int i = 0; i < n; i++)
        assert_int_equal((enc->data[7 + i / 2] >> ((i & 1) * 4)) & 8, bit);
}

/* One connection as a test drives it: the sending side's cache and
 * scratch, the buffer frames are encoded into (bounded by `limit`, 0 for
 * none), the receiving side's cache; and what is sent: the control term
 * {2, '', Pid} to receiver@host and a message the test builds in m. */
typedef struct conn {
    dist_hdr_out *o;
    dist_hdr_in *in;
    dist_hdr_scratch s;
    bytebuf enc;
    ei_x_buff c, m;
} conn;

static void conn_open(conn *k, size_t limit)
{
    memset(k, 0, sizeof *k);
    k->o = dist_hdr_out_new();
    k->in = dist_hdr_in_new();
    dist_hdr_scratch_init(&k->s);
    bytebuf_init(&k->enc, limit);
    ctrl_send(&k->c, "receiver@host");
}

static void conn_close(conn *k)
{
    ei_x_free(&k->c);
    ei_x_free(&k->m);
    bytebuf_free(&k->enc);
    dist_hdr_scratch_free(&k->s);
    dist_hdr_out_free(k->o);
    dist_hdr_in_free(k->in);
}

/* Sends k's control term and message m (NULL: none) and checks that the
 * frame decodes into want. */
static void round_trip(conn *k, const ei_x_buff *m, const uint8_t *want, size_t wlen)
{
    encode(k->o, &k->s, &k->enc, &k->c, m);
    decode_expect(k->in, &k->enc, want, wlen);
}

/* Encodes the prepared message pm sent to `to` as the only frame in
 * k's buffer, and checks the frame's length. */
static void encode_send(conn *k, const erlang_pid *to, rc_pmsg *pm)
{
    size_t added = 0;
    k->enc.off = k->enc.len = 0;
    assert_int_equal(dist_hdr_encode_send(k->o, &k->s, &k->enc, to, pm, &added), RC_OK);
    check_frame(&k->enc, added);
}

static void test_round_trip_and_cache_hits(void **state)
{
    (void)state;
    conn k;
    conn_open(&k, 0);
    msg_events(&k.m);
    uint8_t want[512];
    size_t wlen = pass_through(&k.c, &k.m, want);

    round_trip(&k, &k.m, want, wlen);
    /* '', receiver@host, events, event, ok, emitter@host: six new entries */
    assert_int_equal(k.enc.data[6], 6);
    size_t first = bytebuf_pending(&k.enc);

    /* Again: the same six atoms, now one byte each in the header, and the
     * frame shorter than a pass-through one. */
    round_trip(&k, &k.m, want, wlen);
    assert_int_equal(k.enc.data[6], 6);
    check_new_entries(&k.enc, 6, 0);
    size_t again = bytebuf_pending(&k.enc);
    assert_true(again < first);
    assert_true(again - 4 < wlen);

    /* A control without message */
    round_trip(&k, NULL, want, 1 + (size_t)k.c.index);
    conn_close(&k);
}

/* A message in several parts (as the emitter sends it) encodes as if whole. */
static void test_message_in_parts(void **state)
{
    (void)state;
    conn k;
    conn_open(&k, 0);
    msg_events(&k.m);
    uint8_t want[512];
    size_t wlen = pass_through(&k.c, &k.m, want);
    struct iovec parts[4] = {{.iov_base = k.c.buff, .iov_len = (size_t)k.c.index},
                             {.iov_base = k.m.buff, .iov_len = 5},
                             {.iov_base = k.m.buff + 5, .iov_len = 9},
                             {.iov_base = k.m.buff + 14, .iov_len = (size_t)k.m.index - 14}};
    size_t added = 0;
    assert_int_equal(dist_hdr_encode(k.o, &k.s, &k.enc, parts, 4, &added), RC_OK);
    decode_expect(k.in, &k.enc, want, wlen);
    conn_close(&k);
}

/* Every kind of term that holds atoms: a fun (whose size field changes as
 * its module atom becomes a reference), an export, a reference, a port,
 * a map and an improper list. */
static void test_atoms_everywhere(void **state)
{
    (void)state;
    conn k;
    conn_open(&k, 0);
    ei_x_buff *m = &k.m;
    ei_x_new_with_version(m);
    ei_x_encode_tuple_header(m, 6);
    erlang_fun f;
    memset(&f, 0, sizeof f);
    f.type = EI_FUN_CLOSURE;
    f.arity = 1;
    strcpy(f.module, "some_module");
    f.u.closure.index = 3;
    f.u.closure.old_index = 3;
    f.u.closure.uniq = 99;
    memset(f.u.closure.md5, 5, sizeof f.u.closure.md5);
    f.u.closure.pid = some_pid("funs@host");
    f.u.closure.n_free_vars = 0;
    f.u.closure.free_vars = NULL;
    f.u.closure.free_var_len = 0;
    assert_int_equal(ei_x_encode_fun(m, &f), 0);
    erlang_fun e;
    memset(&e, 0, sizeof e);
    e.type = EI_FUN_EXPORT;
    e.arity = 2;
    strcpy(e.module, "lists");
    e.u.exprt.func = "map";
    e.u.exprt.func_allocated = 0;
    assert_int_equal(ei_x_encode_fun(m, &e), 0);
    erlang_ref r;
    memset(&r, 0, sizeof r);
    strcpy(r.node, "refs@host");
    r.len = 3;
    r.n[0] = 1;
    r.creation = 2;
    ei_x_encode_ref(m, &r);
    erlang_port pt;
    memset(&pt, 0, sizeof pt);
    strcpy(pt.node, "ports@host");
    pt.id = 5;
    pt.creation = 3;
    ei_x_encode_port(m, &pt);
    ei_x_encode_map_header(m, 1);
    ei_x_encode_atom(m, "key");
    ei_x_encode_atom(m, "value");
    ei_x_encode_list_header(m, 1);
    ei_x_encode_atom(m, "head");
    ei_x_encode_atom(m, "tail");
    uint8_t want[1024];
    size_t wlen = pass_through(&k.c, m, want);
    for (int round = 0; round < 3; round++)
        round_trip(&k, m, want, wlen);
    conn_close(&k);
}

/* More than 255 atoms in one message: the first 255 become references, the
 * rest go in full; and long atoms (over 255 bytes) always go in full. */
static void test_many_and_long_atoms(void **state)
{
    (void)state;
    conn k;
    conn_open(&k, 0);
    ei_x_buff *m = &k.m;
    ei_x_new_with_version(m);
    ei_x_encode_list_header(m, 301);
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "atom_%d", i);
        ei_x_encode_atom(m, name);
    }
    /* 100 characters of 3 UTF-8 bytes each */
    char big[301];
    for (int i = 0; i < 100; i++)
        memcpy(big + 3 * i, "\xe2\x82\xac", 3);
    big[300] = '\0';
    ei_x_encode_atom_as(m, big, ERLANG_UTF8, ERLANG_UTF8);
    ei_x_encode_empty_list(m);
    uint8_t *want = malloc(8192);
    assert_non_null(want);
    size_t wlen = pass_through(&k.c, m, want);
    for (int round = 0; round < 2; round++) {
        round_trip(&k, m, want, wlen);
        assert_true(k.enc.data[6] <= 255);
    }
    free(want);
    conn_close(&k);
}

static void test_encode_bad_args_and_full(void **state)
{
    (void)state;
    conn k;
    conn_open(&k, 16); /* too small for any frame */
    msg_events(&k.m);
    size_t added = 99;
    struct iovec bad[1] = {{.iov_base = k.c.buff + 1, .iov_len = (size_t)k.c.index - 1}};
    assert_int_equal(dist_hdr_encode(k.o, &k.s, &k.enc, bad, 1, &added), RC_EBADARG);
    assert_int_equal(added, 0);
    struct iovec bad_msg[2] = {{.iov_base = k.c.buff, .iov_len = (size_t)k.c.index},
                               {.iov_base = k.m.buff + 1, .iov_len = (size_t)k.m.index - 1}};
    assert_int_equal(dist_hdr_encode(k.o, &k.s, &k.enc, bad_msg, 2, &added), RC_EBADARG);
    struct iovec ok[2] = {{.iov_base = k.c.buff, .iov_len = (size_t)k.c.index},
                          {.iov_base = k.m.buff, .iov_len = (size_t)k.m.index}};
    assert_int_equal(dist_hdr_encode(k.o, &k.s, &k.enc, ok, 2, &added), RC_EFULL);
    assert_int_equal(bytebuf_pending(&k.enc), 0);
    conn_close(&k);
}

/* A message the walk cannot read (an unknown tag) goes out as given. */
static void test_unreadable_message_passed_as_is(void **state)
{
    (void)state;
    conn k;
    conn_open(&k, 0);
    ei_x_new(&k.m);
    const char odd[] = {(char)131, 104, 2, 119, 2, 'o', 'k', (char)200, 1};
    ei_x_append_buf(&k.m, odd, sizeof odd);
    uint8_t want[256];
    size_t wlen = pass_through(&k.c, &k.m, want);
    round_trip(&k, &k.m, want, wlen);
    conn_close(&k);
}

static int decode_raw(dist_hdr_in *in, const uint8_t *p, size_t n, size_t limit, const char **why)
{
    bytebuf plain;
    bytebuf_init(&plain, limit);
    int rc = dist_hdr_decode(in, p, n, &plain, why);
    bytebuf_free(&plain);
    return rc;
}

/* Every prefix of a valid frame, each to a decoder that already knows the
 * frame's atoms and to a fresh one: never a read past the end (the
 * sanitizers and valgrind watch), and a cut inside the header or the
 * control term is always refused. */
static void test_truncated_everywhere(void **state)
{
    (void)state;
    conn k;
    conn_open(&k, 0);
    msg_events(&k.m);
    encode(k.o, &k.s, &k.enc, &k.c, &k.m);
    size_t n = bytebuf_pending(&k.enc) - 4;
    uint8_t *copy = malloc(n);
    assert_non_null(copy);
    size_t hdr_and_ctrl = 0;
    {
        /* where the message starts: after the header and the control */
        dist_hdr_in *in = dist_hdr_in_new();
        for (size_t cut = 1; cut <= n; cut++) {
            memcpy(copy, k.enc.data + 4, cut);
            const char *why = NULL;
            if (decode_raw(in, copy, cut, 1 << 20, &why) == 0) {
                hdr_and_ctrl = cut;
                break;
            }
        }
        dist_hdr_in_free(in);
    }
    assert_true(hdr_and_ctrl > 20);
    for (size_t cut = 0; cut < n; cut++) {
        dist_hdr_in *in = dist_hdr_in_new();
        memcpy(copy, k.enc.data + 4, cut); /* exactly cut bytes: ASan sees overreads */
        uint8_t *exact = malloc(cut ? cut : 1);
        assert_non_null(exact);
        memcpy(exact, copy, cut);
        const char *why = NULL;
        int rc = decode_raw(in, exact, cut, 1 << 20, &why);
        if (cut < hdr_and_ctrl)
            assert_int_equal(rc, -1);
        free(exact);
        dist_hdr_in_free(in);
    }
    free(copy);
    conn_close(&k);
}

/* {2, '', '' } style control terms written by hand: 104 3, 97 2, ... */
static void test_hostile_headers(void **state)
{
    (void)state;
    const char *why = NULL;
    dist_hdr_in *in = dist_hdr_in_new();
    /* a cached reference to slot 5, never defined */
    const uint8_t undefined_ref[] = {131, 68, 1, 0x00, 5, 104, 1, 82, 0};
    assert_int_equal(decode_raw(in, undefined_ref, sizeof undefined_ref, 1 << 20, &why), -1);
    assert_non_null(strstr(why, "never defined"));
    /* a term referring to index 1 of a header with one reference */
    const uint8_t bad_index[] = {131, 68, 1, 0x08, 5, 1, 'a', 104, 1, 82, 1};
    assert_int_equal(decode_raw(in, bad_index, sizeof bad_index, 1 << 20, &why), -1);
    /* slot 5 is defined now (the header was read before the term failed):
     * a cached reference to it decodes */
    const uint8_t cached[] = {131, 68, 1, 0x00, 5, 104, 1, 82, 0};
    const uint8_t want[] = {112, 131, 104, 1, 119, 1, 'a'};
    decode_raw_expect(in, cached, sizeof cached, want, sizeof want);
    /* no header at all, a pass-through frame, a fragment */
    const uint8_t pt[] = {112, 131, 104, 1, 106};
    assert_int_equal(decode_raw(in, pt, sizeof pt, 1 << 20, &why), -1);
    const uint8_t frag[] = {131, 69, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 104, 0};
    assert_int_equal(decode_raw(in, frag, sizeof frag, 1 << 20, &why), -1);
    assert_int_equal(decode_raw(in, (const uint8_t *)"", 0, 1 << 20, &why), -1);
    /* a header and nothing after it */
    const uint8_t no_ctrl[] = {131, 68, 0};
    assert_int_equal(decode_raw(in, no_ctrl, sizeof no_ctrl, 1 << 20, &why), -1);
    /* LongAtoms (the half byte after the one reference: high half of byte 0)
     * with an atom of 1021 bytes: longer than any atom */
    uint8_t *longa = calloc(1, 7 + 1021 + 3);
    assert_non_null(longa);
    longa[0] = 131;
    longa[1] = 68;
    longa[2] = 1;
    longa[3] = 0x08 | 0x10;
    longa[4] = 9;
    longa[5] = 1021 >> 8;
    longa[6] = 1021 & 0xff;
    memset(longa + 7, 'x', 1021);
    longa[7 + 1021] = 104;
    longa[8 + 1021] = 0;
    assert_int_equal(decode_raw(in, longa, 7 + 1021 + 2, 1 << 20, &why), -1);
    /* 300 bytes with LongAtoms: allowed, and written out with a 2-byte length */
    longa[5] = 300 >> 8;
    longa[6] = 300 & 0xff;
    longa[7 + 300] = 104;
    longa[8 + 300] = 1;
    longa[9 + 300] = 82;
    longa[10 + 300] = 0;
    bytebuf plain;
    bytebuf_init(&plain, 1 << 20);
    assert_int_equal(dist_hdr_decode(in, longa, 11 + 300, &plain, &why), 0);
    assert_int_equal(bytebuf_pending(&plain), 2 + 2 + 3 + 300);
    assert_int_equal(plain.data[4], 118);
    assert_int_equal(plain.data[5], 300 >> 8);
    assert_int_equal(plain.data[6], 300 & 0xff);
    bytebuf_free(&plain);
    free(longa);
    dist_hdr_in_free(in);
}

/* A message too deep to walk: its start is decoded (so the layer above can
 * still read its first fields) and the rest passed on as it came. */
static void test_deep_message_keeps_its_start(void **state)
{
    (void)state;
    size_t depth = TERM_MAX_DEPTH + 20;
    size_t n = 13 + 4 + 2 * depth + 1;
    uint8_t *f = malloc(n);
    assert_non_null(f);
    size_t i = 0;
    const uint8_t head[] = {131, 68, 1, 0x08, 3, 5, 'f', 'i', 'r', 's', 't', 104, 0};
    memcpy(f, head, sizeof head); /* control: {} */
    i = sizeof head;
    f[i++] = 104; /* message: {first, {{{...}}}} */
    f[i++] = 2;
    f[i++] = 82;
    f[i++] = 0;
    size_t deep_at = i;
    for (size_t k = 0; k < depth; k++) {
        f[i++] = 104;
        f[i++] = 1;
    }
    f[i++] = 106;
    dist_hdr_in *in = dist_hdr_in_new();
    bytebuf plain;
    bytebuf_init(&plain, 1 << 20);
    const char *why = NULL;
    assert_int_equal(dist_hdr_decode(in, f, i, &plain, &why), 0);
    const uint8_t want_start[] = {112, 131, 104, 0, 131, 104, 2, 119, 5, 'f', 'i', 'r', 's', 't'};
    assert_true(bytebuf_pending(&plain) == sizeof want_start + (i - deep_at));
    assert_memory_equal(plain.data, want_start, sizeof want_start);
    assert_memory_equal(plain.data + sizeof want_start, f + deep_at, i - deep_at);
    bytebuf_free(&plain);
    dist_hdr_in_free(in);
    free(f);
}

/* One slot defined twice within a frame: each reference keeps its own atom
 * (the first text must not be used after the second replaced it). */
static void test_slot_redefined_in_one_frame(void **state)
{
    (void)state;
    dist_hdr_in *in = dist_hdr_in_new();
    const uint8_t f[] = {131, 68, 3, 0x88, 0x00, 7, 2, 'a', 'a', 7, 1, 'b', 7,
                         104, 3, 82, 0, 82, 1, 82, 2};
    const uint8_t want[] = {112, 131, 104, 3, 119, 2, 'a', 'a', 119, 1, 'b', 119, 1, 'b'};
    decode_raw_expect(in, f, sizeof f, want, sizeof want);
    dist_hdr_in_free(in);
}

/* Thousands of references to one long atom: the decoded frame would be
 * huge, and the output limit stops it. */
static void test_growth_is_bounded(void **state)
{
    (void)state;
    const char *why = NULL;
    size_t refs = 5000;
    size_t n = 5 + 255 + 2 + 5 + 2 * refs + 1;
    uint8_t *f = malloc(n);
    assert_non_null(f);
    size_t i = 0;
    f[i++] = 131;
    f[i++] = 68;
    f[i++] = 1;
    f[i++] = 0x08;
    f[i++] = 1;
    f[i++] = 255;
    memset(f + i, 'z', 255);
    i += 255;
    f[i++] = 108; /* a list of `refs` references */
    f[i++] = (uint8_t)(refs >> 24);
    f[i++] = (uint8_t)(refs >> 16);
    f[i++] = (uint8_t)(refs >> 8);
    f[i++] = (uint8_t)refs;
    for (size_t k = 0; k < refs; k++) {
        f[i++] = 82;
        f[i++] = 0;
    }
    f[i++] = 106;
    dist_hdr_in *in = dist_hdr_in_new();
    assert_int_equal(decode_raw(in, f, i, 64 << 10, &why), RC_EFULL);
    assert_non_null(strstr(why, "too big"));
    free(f);
    dist_hdr_in_free(in);
}

/* The walker alone: a fun whose size field lies is refused, and depth is
 * bounded. */
static int copy_atom(void *ctx, const term_atom *a, bytebuf *out)
{
    (void)ctx;
    return bytebuf_append(out, a->raw, a->raw_len);
}

static void test_walker_bounds(void **state)
{
    (void)state;
    bytebuf out;
    bytebuf_init(&out, 0);
    /* nested one-element tuples, deeper than TERM_MAX_DEPTH */
    size_t depth = TERM_MAX_DEPTH + 10;
    uint8_t *deep = malloc(2 * depth + 1);
    assert_non_null(deep);
    for (size_t k = 0; k < depth; k++) {
        deep[2 * k] = 104;
        deep[2 * k + 1] = 1;
    }
    deep[2 * depth] = 106;
    size_t idx = 0;
    assert_int_equal(term_copy_atoms(deep, 2 * depth + 1, &idx, &out, copy_atom, NULL), -1);
    free(deep);
    /* a list claiming 4 billion elements */
    const uint8_t biglist[] = {108, 0xff, 0xff, 0xff, 0xff, 106};
    idx = 0;
    assert_int_equal(term_copy_atoms(biglist, sizeof biglist, &idx, &out, copy_atom, NULL), -1);
    /* a fun whose size runs past the end */
    uint8_t fun[40] = {112, 0, 0, 1, 0};
    idx = 0;
    assert_int_equal(term_copy_atoms(fun, sizeof fun, &idx, &out, copy_atom, NULL), -1);
    /* an identity copy of a valid term is the term */
    ei_x_buff m;
    msg_events(&m);
    out.off = out.len = 0;
    idx = 1;
    assert_int_equal(term_copy_atoms((const uint8_t *)m.buff, (size_t)m.index, &idx, &out,
                                     copy_atom, NULL), 0);
    assert_int_equal(idx, (size_t)m.index);
    assert_memory_equal(out.data, m.buff + 1, (size_t)m.index - 1);
    ei_x_free(&m);
    bytebuf_free(&out);
}

/* {events, [{event, <<"e">>, ok, Pid}]} cut as the emitter cuts it: version
 * and tuple head, the atom, the list head, the event, the tail. */
static const uint8_t PREP_KINDS[5] = {PMSG_PART_PLAIN, PMSG_PART_TERM, PMSG_PART_PLAIN,
                                      PMSG_PART_TERM, PMSG_PART_PLAIN};

static void cut_events(const ei_x_buff *m, struct iovec parts[5])
{
    /* 131 104 2 | 119 6 events | 108 0 0 0 1 | event | 106 */
    const uint8_t *b = (const uint8_t *)m->buff;
    parts[0] = (struct iovec){.iov_base = (void *)b, .iov_len = 3};
    parts[1] = (struct iovec){.iov_base = (void *)(b + 3), .iov_len = 8};
    parts[2] = (struct iovec){.iov_base = (void *)(b + 11), .iov_len = 5};
    parts[3] = (struct iovec){.iov_base = (void *)(b + 16), .iov_len = (size_t)m->index - 17};
    parts[4] = (struct iovec){.iov_base = (void *)(b + m->index - 1), .iov_len = 1};
}

/* One prepared message sent to pids on two connections, several times:
 * each frame decodes into the pass-through frame ei would have made (the
 * control term written by the header encoder included), and once each
 * connection knows the atoms no reference defines its slot again. The
 * message is encoded once for all of them. */
static void test_prepared_message_to_many(void **state)
{
    (void)state;
    const char *nodes[2] = {"receiver@host", "other@host"};
    dist_hdr_out *o[2] = {dist_hdr_out_new(), dist_hdr_out_new()};
    dist_hdr_in *in[2] = {dist_hdr_in_new(), dist_hdr_in_new()};
    dist_hdr_scratch s;
    dist_hdr_scratch_init(&s);
    bytebuf enc;
    bytebuf_init(&enc, 0);
    ei_x_buff m;
    msg_events(&m);
    struct iovec parts[5];
    cut_events(&m, parts);
    for (int kinds = 0; kinds < 2; kinds++) {
        rc_pmsg pm;
        pmsg_init(&pm);
        pmsg_set(&pm, kinds ? parts : &parts[0], kinds ? PREP_KINDS : NULL, 5);
        const uint8_t *body = NULL;
        for (int round = 0; round < 3; round++)
            for (int k = 0; k < 2; k++) {
                erlang_pid to = some_pid(nodes[k]);
                to.num = 100u + (unsigned)round;
                ei_x_buff c;
                ctrl_send_to(&c, &to);
                uint8_t want[512];
                size_t wlen = pass_through(&c, &m, want);
                size_t added = 0;
                enc.off = enc.len = 0;
                if (round == 2) /* the control term given as bytes */
                    assert_int_equal(dist_hdr_encode_msg(o[k], &s, &enc, (uint8_t *)c.buff,
                                                         (size_t)c.index, &pm, &added),
                                     RC_OK);
                else
                    assert_int_equal(dist_hdr_encode_send(o[k], &s, &enc, &to, &pm, &added),
                                     RC_OK);
                check_frame(&enc, added);
                assert_int_equal(pm.state, 1);
                if (body == NULL)
                    body = pm.body.data;
                assert_ptr_equal(pm.body.data, body); /* not encoded again */
                int nrefs = enc.data[6];
                /* events, event, ok, emitter@host, then '' and the node */
                assert_int_equal(nrefs, 6);
                check_new_entries(&enc, nrefs, round == 0 ? 8 : 0);
                decode_expect(in[k], &enc, want, wlen);
                ei_x_free(&c);
            }
        pmsg_free(&pm);
        /* the next pass starts from caches that know every atom: forget them */
        for (int k = 0; k < 2; k++) {
            dist_hdr_out_free(o[k]);
            dist_hdr_in_free(in[k]);
            o[k] = dist_hdr_out_new();
            in[k] = dist_hdr_in_new();
        }
    }
    ei_x_free(&m);
    bytebuf_free(&enc);
    dist_hdr_scratch_free(&s);
    for (int k = 0; k < 2; k++) {
        dist_hdr_out_free(o[k]);
        dist_hdr_in_free(in[k]);
    }
}

/* An atom of the message that the control term has too (the receiver's
 * node in a pid of the message) takes one reference, not two. */
static void test_prepared_message_shares_atoms_with_control(void **state)
{
    (void)state;
    conn k;
    conn_open(&k, 0);
    erlang_pid to = some_pid("receiver@host");
    ei_x_new_with_version(&k.m);
    ei_x_encode_tuple_header(&k.m, 2);
    ei_x_encode_atom(&k.m, "");
    ei_x_encode_pid(&k.m, &to);
    struct iovec part = {.iov_base = k.m.buff, .iov_len = (size_t)k.m.index};
    static const uint8_t kind = PMSG_PART_TERM;
    rc_pmsg pm;
    pmsg_init(&pm);
    pmsg_set(&pm, &part, &kind, 1);
    uint8_t want[512];
    size_t wlen = pass_through(&k.c, &k.m, want);
    encode_send(&k, &to, &pm);
    assert_int_equal(k.enc.data[6], 2);
    decode_expect(k.in, &k.enc, want, wlen);
    pmsg_free(&pm);
    conn_close(&k);
}

/* A part said to be a term that is not one: the message goes out as given
 * (as an unreadable message does), and the frame still decodes. */
static void test_prepared_message_unreadable(void **state)
{
    (void)state;
    conn k;
    conn_open(&k, 0);
    erlang_pid to = some_pid("receiver@host");
    static const uint8_t bad[] = {131, 104, 2, 119, 2, 'o', 'k', 250, 1, 2};
    static const uint8_t kinds[3] = {PMSG_PART_PLAIN, PMSG_PART_TERM, PMSG_PART_TERM};
    struct iovec parts[3] = {{.iov_base = (void *)bad, .iov_len = 3},
                             {.iov_base = (void *)(bad + 3), .iov_len = 4},
                             {.iov_base = (void *)(bad + 7), .iov_len = 3}};
    rc_pmsg pm;
    pmsg_init(&pm);
    pmsg_set(&pm, parts, kinds, 3);
    uint8_t want[512];
    want[0] = 112;
    memcpy(want + 1, k.c.buff, (size_t)k.c.index);
    memcpy(want + 1 + k.c.index, bad, sizeof bad);
    encode_send(&k, &to, &pm);
    assert_int_equal(pm.state, -1);
    decode_expect(k.in, &k.enc, want, 1 + (size_t)k.c.index + sizeof bad);
    pmsg_free(&pm);
    conn_close(&k);
}

/* A frame that does not fit defines no slot: the atoms it would have
 * defined go out as new entries in the next frame that carries them. */
static void test_frame_given_up_defines_nothing(void **state)
{
    (void)state;
    conn k;
    conn_open(&k, 0);
    bytebuf small;
    bytebuf_init(&small, 16);
    erlang_pid to = some_pid("receiver@host");
    msg_events(&k.m);
    struct iovec parts[5];
    cut_events(&k.m, parts);
    rc_pmsg pm;
    pmsg_init(&pm);
    pmsg_set(&pm, parts, PREP_KINDS, 5);
    size_t added = 0;
    assert_int_equal(dist_hdr_encode_send(k.o, &k.s, &small, &to, &pm, &added), RC_EFULL);
    struct iovec whole[2] = {{.iov_base = k.c.buff, .iov_len = (size_t)k.c.index},
                             {.iov_base = k.m.buff, .iov_len = (size_t)k.m.index}};
    assert_int_equal(dist_hdr_encode(k.o, &k.s, &small, whole, 2, &added), RC_EFULL);
    assert_int_equal(bytebuf_pending(&small), 0);
    uint8_t want[512];
    size_t wlen = pass_through(&k.c, &k.m, want);
    assert_int_equal(dist_hdr_encode_send(k.o, &k.s, &k.enc, &to, &pm, &added), RC_OK);
    check_new_entries(&k.enc, k.enc.data[6], 8);
    decode_expect(k.in, &k.enc, want, wlen);
    pmsg_free(&pm);
    bytebuf_free(&small);
    conn_close(&k);
}

/* {Tag, <<"t">>, Event} with Tag and Event changing from message to
 * message: the kept encoding of the fixed head is used only when its bytes
 * are the same, and every frame decodes into its pass-through form. */
static void test_prepared_message_fixed_head(void **state)
{
    (void)state;
    conn k;
    conn_open(&k, 0);
    erlang_pid to = some_pid("receiver@host");
    static const uint8_t kinds[4] = {PMSG_PART_PLAIN, PMSG_PART_TERM, PMSG_PART_PLAIN,
                                     PMSG_PART_TERM};
    const char *tags[5] = {"broadcast", "broadcast", "forward_to_local", "broadcast", "ok"};
    const char *inner[5] = {"event", "other", "event", "ok", "broadcast"};
    rc_pmsg pm;
    pmsg_init(&pm);
    for (int i = 0; i < 5; i++) {
        ei_x_buff m;
        ei_x_new_with_version(&m);
        ei_x_encode_tuple_header(&m, 3);
        ei_x_encode_atom(&m, tags[i]);
        int atom_end = m.index;
        ei_x_encode_binary(&m, "t", 1);
        int bin_end = m.index;
        ei_x_encode_tuple_header(&m, 2);
        ei_x_encode_atom(&m, inner[i]);
        ei_x_encode_atom(&m, i % 2 ? "receiver@host" : "x");
        struct iovec parts[4] = {
            {.iov_base = m.buff, .iov_len = 3},
            {.iov_base = m.buff + 3, .iov_len = (size_t)atom_end - 3},
            {.iov_base = m.buff + atom_end, .iov_len = (size_t)(bin_end - atom_end)},
            {.iov_base = m.buff + bin_end, .iov_len = (size_t)(m.index - bin_end)}};
        pmsg_set(&pm, parts, kinds, 4);
        pm.fixed = 2;
        uint8_t want[512];
        size_t wlen = pass_through(&k.c, &m, want);
        encode_send(&k, &to, &pm);
        assert_int_equal(pm.state, 1);
        decode_expect(k.in, &k.enc, want, wlen);
        ei_x_free(&m);
    }
    pmsg_free(&pm);
    conn_close(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_cache_hits),
        cmocka_unit_test(test_message_in_parts),
        cmocka_unit_test(test_atoms_everywhere),
        cmocka_unit_test(test_many_and_long_atoms),
        cmocka_unit_test(test_encode_bad_args_and_full),
        cmocka_unit_test(test_unreadable_message_passed_as_is),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_deep_message_keeps_its_start),
        cmocka_unit_test(test_slot_redefined_in_one_frame),
        cmocka_unit_test(test_growth_is_bounded),
        cmocka_unit_test(test_walker_bounds),
        cmocka_unit_test(test_prepared_message_to_many),
        cmocka_unit_test(test_prepared_message_shares_atoms_with_control),
        cmocka_unit_test(test_prepared_message_unreadable),
        cmocka_unit_test(test_frame_given_up_defines_nothing),
        cmocka_unit_test(test_prepared_message_fixed_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
