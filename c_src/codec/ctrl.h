/* ctrl: distribution control messages (pass-through frames, tag 112).
 * Decodes one frame payload into a ctrl_msg whose pointers reference the
 * payload (zero copy: a message body is never decoded here), and encodes
 * outgoing control tuples. Pure: no I/O; malformed input returns -1. */
#ifndef RC_CTRL_H
#define RC_CTRL_H

#include <ei.h>
#include <stddef.h>
#include <stdint.h>

enum ctrl_op {
    CTRL_LINK = 1,
    CTRL_SEND = 2,
    CTRL_EXIT = 3,
    CTRL_UNLINK = 4,
    CTRL_REG_SEND = 6,
    CTRL_GROUP_LEADER = 7,
    CTRL_EXIT2 = 8,
    CTRL_SEND_TT = 12,
    CTRL_EXIT_TT = 13,
    CTRL_REG_SEND_TT = 16,
    CTRL_EXIT2_TT = 18,
    CTRL_MONITOR_P = 19,
    CTRL_DEMONITOR_P = 20,
    CTRL_MONITOR_P_EXIT = 21,
    CTRL_SEND_SENDER = 22,
    CTRL_SEND_SENDER_TT = 23,
    CTRL_UNLINK_ID = 35,
    CTRL_UNLINK_ID_ACK = 36
};

#define CTRL_PASS_THROUGH 112

typedef struct ctrl_msg {
    int op;
    int has_from;
    erlang_pid from;
    int to_is_name;        /* REG_SEND and MONITOR_P/DEMONITOR_P by name */
    erlang_pid to;         /* when !to_is_name */
    char to_name[MAXATOMLEN_UTF8];
    int has_ref;
    erlang_ref ref;        /* MONITOR_P, DEMONITOR_P, MONITOR_P_EXIT */
    uint64_t unlink_id;    /* UNLINK_ID(_ACK) */
    /* Exit reason: an encoded term without version byte, [reason, reason_end). */
    const char *reason;
    int reason_len;
    /* Message body including its version byte, for SEND-like ops; NULL if none. */
    const char *msg;
    int msg_len;
    /* The control term is valid but the body is not (too deep, lying sizes):
     * msg points at it for a bounded look at its first fields only (e.g. to
     * answer a gen_server call with {error, badarg}); never decode it. */
    int msg_invalid;
} ctrl_msg;

/* 1 for the operations that carry a message body (SEND, REG_SEND,
 * SEND_SENDER and their _TT forms). */
int ctrl_is_send(int op);

/* payload = whole frame body (starting with 112). 0, or -1 if the control
 * term is malformed; a valid control term with an invalid body is 0 with
 * msg_invalid set. */
int ctrl_decode(const char *payload, size_t len, ctrl_msg *out);

/* Encoders append one control tuple (with version byte) to x. 0 or -1. */
int ctrl_encode_send(ei_x_buff *x, const erlang_pid *to);
/* SEND into a caller's buffer (no allocation, for the hot path): the
 * length, or -1 if cap is too small. */
int ctrl_encode_send_fixed(char *buf, int cap, const erlang_pid *to);
int ctrl_encode_reg_send(ei_x_buff *x, const erlang_pid *from, const char *to_name);
int ctrl_encode_link(ei_x_buff *x, int op, const erlang_pid *from, const erlang_pid *to);
/* EXIT / EXIT2 with an atom reason, or with an encoded reason term. */
int ctrl_encode_exit(ei_x_buff *x, int op, const erlang_pid *from, const erlang_pid *to,
                     const char *reason_atom);
int ctrl_encode_monitor(ei_x_buff *x, int op, const erlang_pid *from, const erlang_pid *to_pid,
                        const char *to_name, const erlang_ref *ref);
/* MONITOR_P_EXIT {21, FromProc, ToPid, Ref, Reason}: from_name != NULL when
 * the monitor was by name. */
int ctrl_encode_monitor_exit(ei_x_buff *x, const erlang_pid *from_pid, const char *from_name,
                             const erlang_pid *to, const erlang_ref *ref, const char *reason_atom);
int ctrl_encode_unlink_id(ei_x_buff *x, int op, uint64_t id, const erlang_pid *from,
                          const erlang_pid *to);

#endif
