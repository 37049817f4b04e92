/* Guarded buffers for the fuzz targets. The fuzz targets link a libei
 * built with the sanitizers from the release's sources (tools/libei.mk),
 * but where those sources are missing they link the installed archive,
 * which the sanitizers do not see into; and either way AddressSanitizer has
 * no redzone at the edge of a copy it did not allocate. Bytes copied here
 * end exactly where a PROT_NONE page begins (or start exactly where one
 * ends), so a read past them faults, instrumented or not, and the fault is
 * a finding like any sanitizer report.
 *
 *   [PROT_NONE page][cap bytes, readable and writable][PROT_NONE page]
 *
 * One arena holds one buffer at a time: placing another reuses it. */
#ifndef RC_FUZZ_GUARD_H
#define RC_FUZZ_GUARD_H

#include <ei.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct guard_arena {
    uint8_t *base; /* first usable byte, right after the front guard page */
    size_t cap;    /* usable bytes, a whole number of pages */
} guard_arena;

/* Maps the arena (at least min_cap usable bytes); aborts if it cannot. */
static inline void guard_init(guard_arena *g, size_t min_cap)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t cap = (min_cap + page - 1) / page * page;
    uint8_t *m = mmap(NULL, cap + 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    if (m == MAP_FAILED || mprotect(m, page, PROT_NONE) != 0 ||
        mprotect(m + page + cap, page, PROT_NONE) != 0)
        abort();
    g->base = m + page;
    g->cap = cap;
}

/* A copy of p[0, n) whose last byte is the last one before the back guard
 * page: reading p[n] faults. More than the arena holds is left where it is
 * (p itself, unguarded): inputs are kept far smaller. */
static inline const uint8_t *guard_at_end(guard_arena *g, const void *p, size_t n)
{
    if (n > g->cap)
        return p;
    uint8_t *d = g->base + g->cap - n;
    if (n > 0)
        memmove(d, p, n);
    return d;
}

/* A copy of p[0, n) that starts right after the front guard page: reading
 * p[-1] faults. */
static inline const uint8_t *guard_at_start(guard_arena *g, const void *p, size_t n)
{
    if (n > g->cap)
        return p;
    if (n > 0)
        memmove(g->base, p, n);
    return g->base;
}

static void guard_self_check_segv(int sig)
{
    (void)sig;
    _exit(77);
}

/* The scheme is shown to work before it is relied on: in a child process,
 * libei is given an atom that claims 16 bytes where 2 are left before the
 * guard page; the child must die of that read. Aborts otherwise. */
static inline void guard_self_check(guard_arena *g)
{
    static const char lying_atom[] = {ERL_ATOM_EXT, 0, 16, 'a', 'b'};
    pid_t child = fork();
    if (child == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = guard_self_check_segv;
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        const char *p = (const char *)guard_at_end(g, lying_atom, sizeof lying_atom);
        char atom[MAXATOMLEN_UTF8];
        int idx = 0;
        (void)ei_decode_atom(p, &idx, atom);
        _exit(0);
    }
    int st = 0;
    if (child < 0 || waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 77) {
        fprintf(stderr, "guard pages do not catch libei reading past a buffer\n");
        abort();
    }
}

#endif
