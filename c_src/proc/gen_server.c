#include "proc/gen_server.h"

#include <string.h>

rc_gen_kind rc_gen_classify(const rc_signal *sig, rc_gen_from *from, int *req_index)
{
    const char *buf = sig->buf;
    int len = sig->len, idx = 0, v = 0, arity = 0;
    char atom[MAXATOMLEN];
    /* arity first: the atom of an empty tuple would be read past it */
    if (ei_decode_version(buf, &idx, &v) != 0 || ei_decode_tuple_header(buf, &idx, &arity) != 0 ||
        arity < 2)
        return RC_GEN_INFO;
    if (ei_decode_atom(buf, &idx, atom) != 0)
        return RC_GEN_INFO;
    if (arity == 2 && strcmp(atom, "$gen_cast") == 0) {
        *req_index = idx;
        return RC_GEN_CAST;
    }
    if (arity != 3 || strcmp(atom, "$gen_call") != 0)
        return RC_GEN_INFO;
    int from_arity = 0;
    if (ei_decode_tuple_header(buf, &idx, &from_arity) != 0 || from_arity != 2 ||
        ei_decode_pid(buf, &idx, &from->pid) != 0)
        return RC_GEN_INFO;
    int tag_start = idx;
    if (ei_skip_term(buf, &idx) != 0 || idx > len)
        return RC_GEN_INFO;
    from->tag = buf + tag_start;
    from->tag_len = idx - tag_start;
    from->node = sig->peer != NULL && strcmp(from->pid.node, sig->peer) == 0 ? sig->peer_node
                                                                             : RC_NODE_NONE;
    *req_index = idx;
    return RC_GEN_CALL;
}

int rc_gen_reply_begin(ei_x_buff *x, const rc_gen_from *from)
{
    if (ei_x_encode_version(x) != 0 || ei_x_encode_tuple_header(x, 2) != 0)
        return -1;
    return ei_x_append_buf(x, from->tag, from->tag_len);
}

int rc_gen_reply_send(rc_procs *ps, rc_proc *self, const rc_gen_from *from, const ei_x_buff *x)
{
    if (from->node != RC_NODE_NONE)
        return rc_proc_send_node(ps, self, from->node, &from->pid, x->buff, x->index);
    return rc_proc_send(ps, self, &from->pid, x->buff, x->index);
}

int rc_gen_call_begin(ei_x_buff *x, const erlang_pid *self, const erlang_ref *ref)
{
    if (ei_x_encode_version(x) != 0 || ei_x_encode_tuple_header(x, 3) != 0 ||
        ei_x_encode_atom(x, "$gen_call") != 0 || ei_x_encode_tuple_header(x, 2) != 0 ||
        ei_x_encode_pid(x, self) != 0)
        return -1;
    return ei_x_encode_ref(x, ref);
}
