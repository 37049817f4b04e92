#include "server/net_kernel.h"

#include "proc/gen_server.h"

#include <string.h>

/* net_kernel: net_adm:ping/1 calls {is_auth, Node}; the connection being up
 * already proves the cookie, so the answer is always yes. */
static void net_kernel_signal(rc_procs *ps, rc_proc *self, const rc_signal *sig)
{
    if (sig->kind != RC_SIG_MSG)
        return;
    rc_gen_from from;
    int req = 0;
    if (rc_gen_classify(sig, &from, &req) != RC_GEN_CALL)
        return;
    int arity = 0;
    char op[MAXATOMLEN];
    if (ei_decode_tuple_header(sig->buf, &req, &arity) != 0 || arity != 2 ||
        ei_decode_atom(sig->buf, &req, op) != 0 || strcmp(op, "is_auth") != 0)
        return;
    ei_x_buff x;
    if (ei_x_new(&x) != 0)
        return;
    if (rc_gen_reply_begin(&x, &from) == 0 && ei_x_encode_atom(&x, "yes") == 0)
        (void)rc_gen_reply_send(ps, self, &from, &x);
    ei_x_free(&x);
}

int rc_net_kernel_start(rc_procs *ps)
{
    return rc_proc_spawn_registered(ps, net_kernel_signal, NULL, NULL, "net_kernel") ? 0 : -1;
}
