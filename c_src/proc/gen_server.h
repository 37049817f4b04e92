/* gen_server: the wire shapes of gen_server calls and casts, so C processes
 * can serve `gen_server:call/cast` from BEAM code. A call is
 * {'$gen_call', {Pid, Tag}, Request}; the reply is {Tag, Reply} sent to Pid.
 * The Tag is kept as raw bytes, so plain refs and OTP 24+ alias tags
 * ([alias|Ref]) are both answered correctly. */
#ifndef RC_GEN_SERVER_H
#define RC_GEN_SERVER_H

#include "proc/procs.h"

#include <ei.h>

typedef enum { RC_GEN_INFO = 0, RC_GEN_CALL, RC_GEN_CAST } rc_gen_kind;

typedef struct rc_gen_from {
    erlang_pid pid;
    /* The caller's node index when the call came on that node's own
     * connection (the reply then needs no look-up), else RC_NODE_NONE. */
    uint32_t node;
    const char *tag; /* encoded term, no version byte */
    int tag_len;
} rc_gen_from;

/* Classifies a message signal (its buf includes the version byte). For
 * CALL/CAST, *req_index is where the request term starts in buf; for CALL,
 * *from is filled. Returns the kind; malformed '$gen_call' shapes are
 * RC_GEN_INFO. */
rc_gen_kind rc_gen_classify(const rc_signal *sig, rc_gen_from *from, int *req_index);

/* Starts a reply in x: version, {Tag, ...; append exactly one term next. */
int rc_gen_reply_begin(ei_x_buff *x, const rc_gen_from *from);
/* Sends the reply built in x to the caller. */
int rc_gen_reply_send(rc_procs *ps, rc_proc *self, const rc_gen_from *from, const ei_x_buff *x);

/* Builds `{'$gen_call', {SelfPid, Ref}, <request>}` header in x: version,
 * tuple, atom, {pid, ref}; append the request term next. */
int rc_gen_call_begin(ei_x_buff *x, const erlang_pid *self, const erlang_ref *ref);

#endif
