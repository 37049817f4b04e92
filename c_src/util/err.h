/* err: the one result convention of the library, as in ei.h. A function
 * returns 0 (RC_OK), or a count where its header says so, on success; on
 * failure -1 (RC_EFAIL, the cause already logged) or, where the caller acts
 * on the cause, a negative RC_E* code. The codes are defined once, in the
 * public header; this module names them. */
#ifndef RC_ERR_H
#define RC_ERR_H

#include "reckon_cnode.h"

/* The Erlang error a code stands for in a reply ("badarg", "system_limit"),
 * or NULL for RC_OK. Codes without an Erlang counterpart are system_limit
 * when they mean a limit or memory, else badarg. */
const char *rc_err_atom(int code);

#endif
