/* Control messages: every encoder round-trips through ctrl_decode, message
 * bodies are referenced not copied, and truncated or corrupted frames are
 * rejected without reading out of bounds (run under ASan). */
#include "codec/term_read.h"
#include "codec/ctrl.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static erlang_pid mkpid(const char *node, unsigned num)
{
    erlang_pid p;
    memset(&p, 0, sizeof p);
    strcpy(p.node, node);
    p.num = num;
    p.serial = 3;
    p.creation = 0x12345678u;
    return p;
}

static erlang_ref mkref(void)
{
    erlang_ref r;
    memset(&r, 0, sizeof r);
    strcpy(r.node, "a@h");
    r.len = 3;
    r.n[0] = 1;
    r.n[1] = 2;
    r.n[2] = 3;
    r.creation = 7;
    return r;
}

/* Wraps ctrl (+ msg) in a pass-through payload in malloc'd memory of the
 * exact size, so ASan catches any read past it. */
static char *payload_of(const ei_x_buff *ctrl, const ei_x_buff *msg, size_t *len)
{
    *len = 1 + (size_t)ctrl->index + (msg ? (size_t)msg->index : 0);
    char *p = malloc(*len);
    assert_non_null(p);
    p[0] = (char)CTRL_PASS_THROUGH;
    memcpy(p + 1, ctrl->buff, (size_t)ctrl->index);
    if (msg)
        memcpy(p + 1 + ctrl->index, msg->buff, (size_t)msg->index);
    return p;
}

static void test_send_with_message(void **state)
{
    (void)state;
    erlang_pid to = mkpid("c@h", 42);
    ei_x_buff c, m;
    ei_x_new(&c);
    ei_x_new_with_version(&m);
    assert_int_equal(ctrl_encode_send(&c, &to), 0);
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_atom(&m, "hello");
    ei_x_encode_binary(&m, "xyz", 3);
    size_t len;
    char *p = payload_of(&c, &m, &len);
    ctrl_msg out;
    assert_int_equal(ctrl_decode(p, len, &out), 0);
    assert_int_equal(out.op, CTRL_SEND);
    assert_false(out.to_is_name);
    assert_int_equal(out.to.num, 42);
    assert_string_equal(out.to.node, "c@h");
    assert_non_null(out.msg);
    assert_int_equal(out.msg_len, m.index);
    assert_memory_equal(out.msg, m.buff, (size_t)m.index);
    /* zero copy: the body points into the payload */
    assert_ptr_equal(out.msg, p + 1 + c.index);
    free(p);
    ei_x_free(&c);
    ei_x_free(&m);
}

static void test_reg_send(void **state)
{
    (void)state;
    erlang_pid from = mkpid("b@h", 9);
    ei_x_buff c, m;
    ei_x_new(&c);
    ei_x_new_with_version(&m);
    assert_int_equal(ctrl_encode_reg_send(&c, &from, "reckon_cnode"), 0);
    ei_x_encode_atom(&m, "ping");
    size_t len;
    char *p = payload_of(&c, &m, &len);
    ctrl_msg out;
    assert_int_equal(ctrl_decode(p, len, &out), 0);
    assert_int_equal(out.op, CTRL_REG_SEND);
    assert_true(out.to_is_name);
    assert_string_equal(out.to_name, "reckon_cnode");
    assert_int_equal(out.from.num, 9);
    free(p);
    ei_x_free(&c);
    ei_x_free(&m);
}

/* The decoded message points into the payload (zero copy), so the payload
 * lives until the next round trip. */
static char *last_payload;

static void roundtrip_no_msg(ei_x_buff *c, ctrl_msg *out)
{
    size_t len;
    free(last_payload);
    last_payload = payload_of(c, NULL, &len);
    assert_int_equal(ctrl_decode(last_payload, len, out), 0);
    assert_null(out->msg);
}

static void test_links_exits_unlink_id(void **state)
{
    (void)state;
    erlang_pid a = mkpid("a@h", 1), b = mkpid("b@h", 2);
    ctrl_msg out;
    ei_x_buff c;
    ei_x_new(&c);
    assert_int_equal(ctrl_encode_link(&c, CTRL_LINK, &a, &b), 0);
    roundtrip_no_msg(&c, &out);
    assert_int_equal(out.op, CTRL_LINK);
    assert_int_equal(out.from.num, 1);
    assert_int_equal(out.to.num, 2);

    c.index = 0;
    assert_int_equal(ctrl_encode_exit(&c, CTRL_EXIT, &a, &b, "noconnection"), 0);
    roundtrip_no_msg(&c, &out);
    assert_int_equal(out.op, CTRL_EXIT);
    char atom[MAXATOMLEN];
    int i = 0;
    assert_int_equal(ei_decode_atom(out.reason, &i, atom), 0);
    assert_string_equal(atom, "noconnection");
    assert_int_equal(i, out.reason_len);

    c.index = 0;
    assert_int_equal(ctrl_encode_exit(&c, CTRL_EXIT2, &a, &b, "kill"), 0);
    roundtrip_no_msg(&c, &out);
    assert_int_equal(out.op, CTRL_EXIT2);

    c.index = 0;
    assert_int_equal(ctrl_encode_unlink_id(&c, CTRL_UNLINK_ID, 0x1234567890ull, &a, &b), 0);
    roundtrip_no_msg(&c, &out);
    assert_int_equal(out.op, CTRL_UNLINK_ID);
    assert_true(out.unlink_id == 0x1234567890ull);
    ei_x_free(&c);
}

static void test_monitors(void **state)
{
    (void)state;
    erlang_pid a = mkpid("a@h", 1), b = mkpid("b@h", 2);
    erlang_ref r = mkref();
    ctrl_msg out;
    ei_x_buff c;
    ei_x_new(&c);
    assert_int_equal(ctrl_encode_monitor(&c, CTRL_MONITOR_P, &a, NULL, "some_name", &r), 0);
    roundtrip_no_msg(&c, &out);
    assert_int_equal(out.op, CTRL_MONITOR_P);
    assert_true(out.to_is_name);
    assert_string_equal(out.to_name, "some_name");
    assert_int_equal(out.ref.n[2], 3);

    c.index = 0;
    assert_int_equal(ctrl_encode_monitor(&c, CTRL_DEMONITOR_P, &a, &b, NULL, &r), 0);
    roundtrip_no_msg(&c, &out);
    assert_int_equal(out.op, CTRL_DEMONITOR_P);
    assert_false(out.to_is_name);
    assert_int_equal(out.to.num, 2);

    c.index = 0;
    assert_int_equal(ctrl_encode_monitor_exit(&c, NULL, "some_name", &a, &r, "noproc"), 0);
    roundtrip_no_msg(&c, &out);
    assert_int_equal(out.op, CTRL_MONITOR_P_EXIT);
    assert_int_equal(out.to.num, 1);
    assert_true(out.has_ref);

    c.index = 0;
    assert_int_equal(ctrl_encode_monitor_exit(&c, &b, NULL, &a, &r, "normal"), 0);
    roundtrip_no_msg(&c, &out);
    assert_true(out.has_from);
    assert_int_equal(out.from.num, 2);
    ei_x_free(&c);
}

/* Every prefix of a valid frame, and every single-byte corruption of it,
 * must be rejected or decoded without touching memory past the frame. */
static void test_truncated_and_corrupted(void **state)
{
    (void)state;
    erlang_pid from = mkpid("b@h", 9);
    ei_x_buff c, m;
    ei_x_new(&c);
    ei_x_new_with_version(&m);
    ctrl_encode_reg_send(&c, &from, "target");
    ei_x_encode_tuple_header(&m, 3);
    ei_x_encode_atom(&m, "$gen_call");
    ei_x_encode_list_header(&m, 2);
    ei_x_encode_long(&m, 1);
    ei_x_encode_binary(&m, "abc", 3);
    ei_x_encode_empty_list(&m);
    ei_x_encode_map_header(&m, 1);
    ei_x_encode_atom(&m, "k");
    ei_x_encode_double(&m, 1.5);
    size_t len;
    char *full = payload_of(&c, &m, &len);
    ctrl_msg out;
    for (size_t cut = 0; cut < len; cut++) {
        char *p = malloc(cut ? cut : 1);
        memcpy(p, full, cut);
        /* a cut control term is rejected; a cut body leaves a valid control
         * term with the body marked invalid (so a caller can be answered) */
        int rc = ctrl_decode(p, cut, &out);
        if (rc == 0) {
            assert_true(out.msg_invalid);
            assert_true(out.msg >= p + 1 && out.msg + out.msg_len == p + cut);
        }
        free(p);
    }
    int accepted = 0;
    for (size_t at = 0; at < len; at++) {
        for (int v = 0; v < 256; v += 17) {
            char *p = malloc(len);
            memcpy(p, full, len);
            p[at] = (char)v;
            if (ctrl_decode(p, len, &out) == 0)
                accepted++;
            free(p);
        }
    }
    assert_true(accepted > 0); /* some corruptions are still valid frames */
    free(full);
    ei_x_free(&c);
    ei_x_free(&m);
}

static void test_unknown_op_decodes(void **state)
{
    (void)state;
    ei_x_buff c;
    ei_x_new_with_version(&c);
    ei_x_encode_tuple_header(&c, 2);
    ei_x_encode_long(&c, 99);
    ei_x_encode_atom(&c, "x");
    size_t len;
    char *p = payload_of(&c, NULL, &len);
    ctrl_msg out;
    assert_int_equal(ctrl_decode(p, len, &out), 0);
    assert_int_equal(out.op, 99);
    free(p);
    ei_x_free(&c);
}

static void test_term_skip_depth_limit(void **state)
{
    (void)state;
    /* [[[[...]]]] nested far deeper than the limit. */
    int depth = TERM_MAX_DEPTH + 10;
    size_t len = 1 + (size_t)depth * 5 + 1 + (size_t)depth;
    char *b = malloc(len);
    size_t i = 0;
    b[i++] = (char)131;
    for (int d = 0; d < depth; d++) {
        b[i++] = ERL_LIST_EXT;
        b[i++] = 0;
        b[i++] = 0;
        b[i++] = 0;
        b[i++] = 1;
    }
    b[i++] = ERL_NIL_EXT;
    for (int d = 0; d < depth; d++)
        b[i++] = ERL_NIL_EXT;
    int idx = 1;
    assert_int_equal(term_skip(b, (int)i, &idx), -1);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_with_message),
        cmocka_unit_test(test_reg_send),
        cmocka_unit_test(test_links_exits_unlink_id),
        cmocka_unit_test(test_monitors),
        cmocka_unit_test(test_truncated_and_corrupted),
        cmocka_unit_test(test_unknown_op_decodes),
        cmocka_unit_test(test_term_skip_depth_limit),
    };
    int failed = cmocka_run_group_tests_name("ctrl", tests, NULL, NULL);
    free(last_payload);
    return failed;
}
