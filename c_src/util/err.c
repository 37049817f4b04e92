#include "util/err.h"

#include <stddef.h>

const char *rc_strerror(int code)
{
    switch (code) {
    case RC_OK:
        return "ok";
    case RC_EFAIL:
        return "failed (see the log)";
    case RC_EBADARG:
        return "bad argument";
    case RC_ESYSTEM_LIMIT:
        return "system limit reached";
    case RC_ENOSPACE:
        return "buffer too small";
    case RC_ENOMEM:
        return "out of memory";
    case RC_ENO_EMITTERS:
        return "no emitters";
    case RC_ESTOPPED:
        return "node stopping";
    case RC_EEXISTS:
        return "already exists";
    case RC_ENOT_FOUND:
        return "not found";
    case RC_ESTORAGE:
        return "storage failed";
    case RC_ETIMEOUT:
        return "timed out";
    case RC_EFULL:
        return "queue full";
    default:
        return "unknown result code";
    }
}

const char *rc_err_atom(int code)
{
    switch (code) {
    case RC_OK:
        return NULL;
    case RC_ESYSTEM_LIMIT:
    case RC_ENOSPACE:
    case RC_ENOMEM:
    case RC_EFULL:
        return "system_limit";
    default:
        return "badarg";
    }
}
