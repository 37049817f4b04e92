/* libFuzzer target: the decoders a peer's bytes meet, each run twice on
 * the same bytes: once ending at an unreadable page and once starting right
 * after one (guard.h), so that libei, instrumented or not, crashes when it
 * reads past either end. The decoders: the bounded term
 * walker (and, where it accepts a term, libei's own skip, which must agree
 * on where the term ends), a gen_server call's shape, the control message
 * decoder, term normalisation, and distribution header decoding. */
#include "codec/ctrl.h"
#include "codec/term_norm.h"
#include "codec/term_read.h"
#include "proc/gen_server.h"
#include "transport/dist_hdr.h"
#include "guard.h"

#include <ei.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

static guard_arena g_in;

static void decode_all(const char *p, int len)
{
    /* One term, after a version byte when there is one; libei is let
     * loose on it only once the walker has accepted it, as the node does. */
    int start = len > 0 && (uint8_t)p[0] == 131 ? 1 : 0;
    int end = start;
    if (term_skip(p, len, &end) == 0) {
        int ei_end = start;
        if (ei_skip_term(p, &ei_end) == 0 && ei_end != end)
            abort(); /* the walker and libei disagree on where a term ends */
        if (start == 1 && end == len) {
            rc_gen_from from;
            int req = 0;
            const rc_signal sig = {.kind = RC_SIG_MSG, .buf = p, .len = len};
            if (rc_gen_classify(&sig, &from, &req) != RC_GEN_INFO && (req < 1 || req > len))
                abort();
        }
    }
    ctrl_msg m;
    (void)ctrl_decode(p, (size_t)len, &m);
    ei_x_buff x;
    if (ei_x_new(&x) == 0) {
        (void)term_norm_term(p, len, &x);
        ei_x_free(&x);
    }
    dist_hdr_in *in = dist_hdr_in_new();
    bytebuf out;
    bytebuf_init(&out, 1u << 20);
    const char *why = NULL;
    if (in != NULL)
        (void)dist_hdr_decode(in, (const uint8_t *)p, (size_t)len, &out, &why);
    bytebuf_free(&out);
    dist_hdr_in_free(in);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    guard_init(&g_in, 1u << 20);
    guard_self_check(&g_in);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > g_in.cap)
        return 0;
    decode_all((const char *)guard_at_end(&g_in, data, size), (int)size);
    decode_all((const char *)guard_at_start(&g_in, data, size), (int)size);
    return 0;
}
