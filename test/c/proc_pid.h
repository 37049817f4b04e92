/* proc_pid: a C process's pid as libei's, for tests that encode control
 * messages to it (the process layer keeps pids compact). Each call fills the
 * next of 16 slots, so a few may be used in one expression. */
#ifndef RC_TEST_PROC_PID_H
#define RC_TEST_PROC_PID_H

#include "proc/procs.h"

static inline const erlang_pid *test_pid(rc_procs *ps, const rc_proc *p)
{
    static erlang_pid ring[16];
    static unsigned at;
    erlang_pid *b = &ring[at++ % 16];
    rc_proc_get_pid(ps, p, b);
    return b;
}

#endif
