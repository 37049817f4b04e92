#include "codec/ctrl.h"

#include "codec/term_read.h"

#include <string.h>

static int decode_proc(const char *buf, int *idx, ctrl_msg *m)
{
    int type = 0, size = 0;
    if (ei_get_type(buf, idx, &type, &size) != 0)
        return -1;
    if (type == ERL_ATOM_EXT || type == ERL_SMALL_ATOM_EXT || type == ERL_ATOM_UTF8_EXT ||
        type == ERL_SMALL_ATOM_UTF8_EXT) {
        m->to_is_name = 1;
        return ei_decode_atom_as(buf, idx, m->to_name, sizeof m->to_name, ERLANG_UTF8, NULL,
                                 NULL) == 0 ? 0 : -1;
    }
    m->to_is_name = 0;
    return ei_decode_pid(buf, idx, &m->to);
}

int ctrl_decode(const char *payload, size_t len, ctrl_msg *m)
{
    if (len < 2 || len > (size_t)INT32_MAX || (unsigned char)payload[0] != CTRL_PASS_THROUGH)
        return -1;
    memset(m, 0, offsetof(ctrl_msg, to_name) + 1);
    m->has_ref = 0;
    m->reason = NULL;
    m->reason_len = 0;
    m->msg = NULL;
    m->msg_len = 0;
    m->msg_invalid = 0;
    const char *buf = payload + 1;
    int end = (int)len - 1;
    /* Validate the control term and the optional message with a bounded
     * skip first: ei's decoders trust the lengths they read. */
    if ((unsigned char)buf[0] != 131)
        return -1;
    int tuple_end = 1;
    if (term_skip(buf, end, &tuple_end) != 0)
        return -1;
    int idx = 0, version = 0, arity = 0;
    if (ei_decode_version(buf, &idx, &version) != 0 || ei_decode_tuple_header(buf, &idx, &arity) != 0 ||
        arity < 1)
        return -1;
    int body_invalid = 0;
    if (tuple_end < end) {
        int probe = tuple_end + 1;
        if ((unsigned char)buf[tuple_end] != 131 || term_skip(buf, end, &probe) != 0 || probe != end)
            body_invalid = 1;
    }
    long op = 0;
    if (ei_decode_long(buf, &idx, &op) != 0)
        return -1;
    m->op = (int)op;
    int ok = -1;
    switch (op) {
    case CTRL_LINK:
    case CTRL_UNLINK:
        if (arity == 3 && ei_decode_pid(buf, &idx, &m->from) == 0 &&
            ei_decode_pid(buf, &idx, &m->to) == 0)
            ok = 0;
        m->has_from = 1;
        break;
    case CTRL_SEND:
    case CTRL_SEND_TT:
        if ((arity == 3 || arity == 4) && ei_skip_term(buf, &idx) == 0 &&
            decode_proc(buf, &idx, m) == 0 && !m->to_is_name)
            ok = 0;
        break;
    case CTRL_SEND_SENDER:
    case CTRL_SEND_SENDER_TT:
        if ((arity == 3 || arity == 4) && ei_decode_pid(buf, &idx, &m->from) == 0 &&
            decode_proc(buf, &idx, m) == 0 && !m->to_is_name)
            ok = 0;
        m->has_from = 1;
        break;
    case CTRL_REG_SEND:
    case CTRL_REG_SEND_TT:
        if ((arity == 4 || arity == 5) && ei_decode_pid(buf, &idx, &m->from) == 0 &&
            ei_skip_term(buf, &idx) == 0 && decode_proc(buf, &idx, m) == 0 && m->to_is_name)
            ok = 0;
        m->has_from = 1;
        break;
    case CTRL_EXIT:
    case CTRL_EXIT2:
    case CTRL_EXIT_TT:
    case CTRL_EXIT2_TT: {
        int want = (op == CTRL_EXIT || op == CTRL_EXIT2) ? 4 : 5;
        if (arity == want && ei_decode_pid(buf, &idx, &m->from) == 0 &&
            ei_decode_pid(buf, &idx, &m->to) == 0 && (want == 4 || ei_skip_term(buf, &idx) == 0)) {
            int start = idx;
            if (ei_skip_term(buf, &idx) == 0 && idx <= tuple_end) {
                m->reason = buf + start;
                m->reason_len = idx - start;
                ok = 0;
            }
        }
        m->has_from = 1;
        break;
    }
    case CTRL_MONITOR_P:
    case CTRL_DEMONITOR_P:
        if (arity == 4 && ei_decode_pid(buf, &idx, &m->from) == 0 &&
            decode_proc(buf, &idx, m) == 0 && ei_decode_ref(buf, &idx, &m->ref) == 0) {
            m->has_ref = 1;
            ok = 0;
        }
        m->has_from = 1;
        break;
    case CTRL_MONITOR_P_EXIT: {
        /* {21, FromProc, ToPid, Ref, Reason}: FromProc is the monitored process
         * (pid or name); `to` is our local watcher. */
        char name[MAXATOMLEN_UTF8];
        int type = 0, size = 0;
        if (arity != 5 || ei_get_type(buf, &idx, &type, &size) != 0)
            break;
        if (type == ERL_PID_EXT || type == ERL_NEW_PID_EXT) {
            if (ei_decode_pid(buf, &idx, &m->from) != 0)
                break;
            m->has_from = 1;
        } else if (ei_decode_atom_as(buf, &idx, name, sizeof name, ERLANG_UTF8, NULL, NULL) != 0) {
            break;
        }
        if (ei_decode_pid(buf, &idx, &m->to) != 0 || ei_decode_ref(buf, &idx, &m->ref) != 0)
            break;
        m->has_ref = 1;
        int start = idx;
        if (ei_skip_term(buf, &idx) == 0 && idx <= tuple_end) {
            m->reason = buf + start;
            m->reason_len = idx - start;
            ok = 0;
        }
        break;
    }
    case CTRL_UNLINK_ID:
    case CTRL_UNLINK_ID_ACK: {
        unsigned long long id = 0;
        if (arity == 4 && ei_decode_ulonglong(buf, &idx, &id) == 0 &&
            ei_decode_pid(buf, &idx, &m->from) == 0 && ei_decode_pid(buf, &idx, &m->to) == 0) {
            m->unlink_id = id;
            ok = 0;
        }
        m->has_from = 1;
        break;
    }
    default:
        /* Unknown or unsupported op: decoded enough for the caller to log it. */
        ok = 0;
        break;
    }
    if (ok != 0 || idx > tuple_end)
        return -1;
    idx = tuple_end;
    if (idx < end) {
        /* The message body: one whole checked term, unless body_invalid. */
        m->msg = buf + idx;
        m->msg_len = end - idx;
        m->msg_invalid = body_invalid;
    }
    if (ctrl_is_send(m->op))
        return m->msg != NULL ? 0 : -1; /* a send without a message is malformed */
    /* only sends carry a body that a caller may look into */
    return body_invalid ? -1 : 0;
}

int ctrl_is_send(int op)
{
    switch (op) {
    case CTRL_SEND:
    case CTRL_SEND_TT:
    case CTRL_SEND_SENDER:
    case CTRL_SEND_SENDER_TT:
    case CTRL_REG_SEND:
    case CTRL_REG_SEND_TT:
        return 1;
    default:
        return 0;
    }
}

static int begin(ei_x_buff *x, int arity, long op)
{
    if (ei_x_encode_version(x) != 0 || ei_x_encode_tuple_header(x, arity) != 0)
        return -1;
    return ei_x_encode_long(x, op);
}

int ctrl_encode_send(ei_x_buff *x, const erlang_pid *to)
{
    if (begin(x, 3, CTRL_SEND) != 0 || ei_x_encode_atom(x, "") != 0)
        return -1;
    return ei_x_encode_pid(x, to);
}

static int encode_send_into(char *buf, const erlang_pid *to)
{
    int i = 0;
    if (ei_encode_version(buf, &i) || ei_encode_tuple_header(buf, &i, 3) ||
        ei_encode_long(buf, &i, CTRL_SEND) || ei_encode_atom(buf, &i, "") ||
        ei_encode_pid(buf, &i, to))
        return -1;
    return i;
}

int ctrl_encode_send_fixed(char *buf, int cap, const erlang_pid *to)
{
    int need = encode_send_into(NULL, to);
    if (need < 0 || need > cap)
        return -1;
    return encode_send_into(buf, to);
}

int ctrl_encode_reg_send(ei_x_buff *x, const erlang_pid *from, const char *to_name)
{
    if (begin(x, 4, CTRL_REG_SEND) != 0 || ei_x_encode_pid(x, from) != 0 ||
        ei_x_encode_atom(x, "") != 0)
        return -1;
    return ei_x_encode_atom_as(x, to_name, ERLANG_UTF8, ERLANG_UTF8);
}

int ctrl_encode_link(ei_x_buff *x, int op, const erlang_pid *from, const erlang_pid *to)
{
    if (begin(x, 3, op) != 0 || ei_x_encode_pid(x, from) != 0)
        return -1;
    return ei_x_encode_pid(x, to);
}

int ctrl_encode_exit(ei_x_buff *x, int op, const erlang_pid *from, const erlang_pid *to,
                     const char *reason_atom)
{
    if (begin(x, 4, op) != 0 || ei_x_encode_pid(x, from) != 0 || ei_x_encode_pid(x, to) != 0)
        return -1;
    return ei_x_encode_atom(x, reason_atom);
}

int ctrl_encode_monitor(ei_x_buff *x, int op, const erlang_pid *from, const erlang_pid *to_pid,
                        const char *to_name, const erlang_ref *ref)
{
    if (begin(x, 4, op) != 0 || ei_x_encode_pid(x, from) != 0)
        return -1;
    int r = to_name ? ei_x_encode_atom_as(x, to_name, ERLANG_UTF8, ERLANG_UTF8)
                    : ei_x_encode_pid(x, to_pid);
    if (r != 0)
        return -1;
    return ei_x_encode_ref(x, ref);
}

int ctrl_encode_monitor_exit(ei_x_buff *x, const erlang_pid *from_pid, const char *from_name,
                             const erlang_pid *to, const erlang_ref *ref, const char *reason_atom)
{
    if (begin(x, 5, CTRL_MONITOR_P_EXIT) != 0)
        return -1;
    int r = from_name ? ei_x_encode_atom_as(x, from_name, ERLANG_UTF8, ERLANG_UTF8)
                      : ei_x_encode_pid(x, from_pid);
    if (r != 0 || ei_x_encode_pid(x, to) != 0 || ei_x_encode_ref(x, ref) != 0)
        return -1;
    return ei_x_encode_atom(x, reason_atom);
}

int ctrl_encode_unlink_id(ei_x_buff *x, int op, uint64_t id, const erlang_pid *from,
                          const erlang_pid *to)
{
    if (begin(x, 4, op) != 0 || ei_x_encode_ulonglong(x, id) != 0 ||
        ei_x_encode_pid(x, from) != 0)
        return -1;
    return ei_x_encode_pid(x, to);
}
