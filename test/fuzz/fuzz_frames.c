/* libFuzzer target: arbitrary bytes as an inbound distribution stream from
 * a connected peer. The stream is split into frames exactly as a connection
 * would; a frame that starts with a distribution header (131 68) is decoded
 * as a connection with headers does, its atom cache kept from frame to
 * frame; and every frame goes through control-message decoding and dispatch
 * to real C processes: the request server (request parsing, broadcast and
 * pool requests), a pg scope that has seen the peer come up, and a running
 * C emitter pool (registered as fz_sub_emitter and fz_sub_emitter_2), with
 * loop turns in between so due timers run. A tick frame moves time on by a
 * second and does the timers' work at once (the pg scope's discovery). The same bytes also go out as a
 * message, through the header encoder both ways, and must decode back.
 * Each frame is decoded from a copy that ends at an unreadable page, so
 * that libei reading past it crashes even where it is not instrumented.
 * Crashes, sanitizer reports and leaks are findings. */
#include "emitter/broadcast.h"
#include "emitter/emitter_pool.h"
#include "naming/names_table.h"
#include "transport/dist_hdr.h"
#include "transport/frame.h"
#include "pg/pg_scope.h"
#include "proc/procs.h"
#include "server/request_server.h"
#include "guard.h"

#include <ei.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

/* Every byte the decode path hands to libei is read from a guarded copy
 * (guard.h): the frame as received, and what its header decoding made of
 * it. Neither is copied again before it is decoded (a message to a C
 * process is handled from the frame itself), so a read by libei past a
 * frame's end faults, whether libei is instrumented or not. */
static guard_arena g_frame, g_plain;

/* As the transport hands a frame up: decoded first when it has a header. */
static void frame_up(rc_procs *ps, uint32_t peer, dist_hdr_in *hin, bytebuf *plain,
                     const uint8_t *raw, size_t n)
{
    const uint8_t *p = guard_at_end(&g_frame, raw, n);
    if (n >= 2 && p[0] == 131 && p[1] == 68) {
        const char *why = NULL;
        plain->off = plain->len = 0;
        if (dist_hdr_decode(hin, p, n, plain, &why) == 0)
            rc_procs_on_frame(ps, peer,
                              (const char *)guard_at_end(&g_plain, plain->data + plain->off,
                                                         bytebuf_pending(plain)),
                              bytebuf_pending(plain));
        return;
    }
    rc_procs_on_frame(ps, peer, (const char *)p, n);
}

static int drop_send(void *ctx, uint32_t node, const struct iovec *parts, int nparts)
{
    (void)ctx;
    (void)node;
    (void)parts;
    (void)nparts;
    return 0;
}

/* Without a persist queue the pool starts before rc_emitters_start_pool returns. */
static void pool_started(void *ctx, int rc, const char *cause, const erlang_pid *pids,
                         const rc_cpid *cpids, size_t n)
{
    (void)ctx;
    (void)rc;
    (void)cause;
    (void)pids;
    (void)cpids;
    (void)n;
}

/* The same bytes as a message this node sends (131, then the input), on a
 * connection with headers: once through the generic encoder, once as a
 * prepared message (whole, and cut in two at a byte the input picks), to
 * two pids. Every frame must decode, and its control term must come back
 * as the pass-through one; a message the walk cannot read goes as given. */
static void fail(const char *what)
{
    (void)what;
    abort();
}

static void decode_check(dist_hdr_in *in, const bytebuf *enc, const uint8_t *ctrl, size_t clen)
{
    bytebuf plain;
    bytebuf_init(&plain, 0);
    const char *why = NULL;
    if (bytebuf_pending(enc) < 4 ||
        dist_hdr_decode(in, enc->data + enc->off + 4, bytebuf_pending(enc) - 4, &plain, &why) != 0)
        fail(why);
    if (bytebuf_pending(&plain) < 1 + clen || plain.data[plain.off] != 112 ||
        memcmp(plain.data + plain.off + 1, ctrl, clen) != 0)
        fail("control term changed");
    bytebuf_free(&plain);
}

static void encode_round_trip(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 4096)
        return;
    uint8_t *msg = malloc(size + 1);
    if (msg == NULL)
        return;
    msg[0] = 131;
    memcpy(msg + 1, data, size);
    dist_hdr_out *out = dist_hdr_out_new();
    dist_hdr_in *in = dist_hdr_in_new();
    dist_hdr_scratch s;
    dist_hdr_scratch_init(&s);
    bytebuf enc;
    bytebuf_init(&enc, 0);
    size_t cut = 1 + data[0] % size;
    /* joined then walked; one part said to be a whole term; two parts said
     * to be terms (a cut inside a term: the generic way) */
    struct iovec two[2] = {{.iov_base = msg, .iov_len = cut},
                           {.iov_base = msg + cut, .iov_len = size + 1 - cut}};
    struct iovec one = {.iov_base = msg, .iov_len = size + 1};
    static const uint8_t kinds[2] = {PMSG_PART_TERM, PMSG_PART_TERM};
    rc_pmsg pm;
    pmsg_init(&pm);
    for (int round = 0; round < 5 && out != NULL && in != NULL; round++) {
        /* the first part fixed from round 1 on: rounds 2 and 4 find the
         * encoding rounds 1 and 3 kept (when it was kept) */
        if (round == 0)
            pmsg_set(&pm, two, NULL, 2);
        else if (round <= 2)
            pmsg_set(&pm, &one, kinds, 1);
        else
            pmsg_set(&pm, two, kinds, 2);
        pm.fixed = round > 0;
        for (unsigned k = 0; k < 2; k++) {
            erlang_pid to;
            memset(&to, 0, sizeof to);
            strcpy(to.node, k ? "peer@host" : "fuzz_other@host");
            to.num = 7 + k;
            to.creation = 3;
            char ctrl[MAXATOMLEN_UTF8 + 64];
            int clen = 0;
            if (ei_encode_version(ctrl, &clen) || ei_encode_tuple_header(ctrl, &clen, 3) ||
                ei_encode_long(ctrl, &clen, 2) || ei_encode_atom(ctrl, &clen, "") ||
                ei_encode_pid(ctrl, &clen, &to))
                fail("ei");
            size_t added = 0;
            enc.off = enc.len = 0;
            struct iovec whole[2] = {{.iov_base = ctrl, .iov_len = (size_t)clen}, one};
            if (dist_hdr_encode(out, &s, &enc, whole, 2, &added) != RC_OK)
                fail("generic encode");
            decode_check(in, &enc, (const uint8_t *)ctrl, (size_t)clen);
            enc.off = enc.len = 0;
            if (dist_hdr_encode_send(out, &s, &enc, &to, &pm, &added) != RC_OK)
                fail("prepared encode");
            decode_check(in, &enc, (const uint8_t *)ctrl, (size_t)clen);
        }
    }
    pmsg_free(&pm);
    bytebuf_free(&enc);
    dist_hdr_scratch_free(&s);
    dist_hdr_out_free(out);
    dist_hdr_in_free(in);
    free(msg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* a frame is at most 1 MiB; its decoded form, with atoms from the
     * cache spelt out, at most about a thousand times its input */
    guard_init(&g_frame, (1u << 20) + 4096);
    guard_init(&g_plain, 8u << 20);
    guard_self_check(&g_frame);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rc_nodetab *nodes = rc_nodetab_new();
    rc_nodetab_intern(nodes, "fuzz@host", 9);
    uint32_t peer = rc_nodetab_intern(nodes, "peer@host", 9);
    rc_procs_transport tr = {.ctx = NULL, .sendv = drop_send};
    rc_procs *ps = rc_procs_new(NULL, &tr, nodes, "fuzz@host", 1);
    names_table *names = names_table_new();
    uv_loop_t loop;
    uv_loop_init(&loop);
    rc_request_server *rs = rc_request_server_start(ps, names, NULL, NULL, NULL);
    /* A pg scope too, so pg protocol messages are fuzzed along. */
    rc_pg_scope *scope = rc_pg_scope_start(&loop, NULL, ps, nodes, "reckon_db_pg");
    rc_pg_scope *const scopes[1] = {scope};
    rc_request_server_set_scopes(rs, scopes, 1, nodes);
    rc_bcast *bcast = rc_bcast_new(ps, scope, nodes);
    rc_emitters *emitters = rc_emitters_new(ps, scope, nodes, names, NULL);
    rc_request_server_set_emitters(rs, emitters, bcast);
    (void)rc_emitters_start_pool(emitters, (const uint8_t *)"fz", 2, (const uint8_t *)"sub", 3, 2,
                                 NULL, pool_started, NULL);
    /* the peer is connected: the scope discovers it */
    rc_pg_scope_nodeup(scope, peer);
    dist_hdr_in *hin = dist_hdr_in_new();
    bytebuf plain;
    bytebuf_init(&plain, (1u << 20) + 2);
    size_t off = 0;
    uint64_t now = uv_now(&loop);
    for (;;) {
        frame_view fv;
        frame_result r = frame_next(data + off, size - off, 1u << 20, &fv);
        if (r == FRAME_NEED_MORE || r == FRAME_TOO_BIG)
            break;
        if (r == FRAME_DATA) {
            frame_up(ps, peer, hin, &plain, data + off + fv.payload_off, fv.payload_len);
            uv_run(&loop, UV_RUN_NOWAIT);
        } else if (r == FRAME_TICK) {
            /* A tick stands for time passing: the timers' work is done as
             * of a second later than the last, whether or not a loop turn
             * would have found them due. */
            now += 1000;
            rc_pg_scope_tick(scope, now);
        }
        off += fv.consumed;
    }
    /* A raw frame body without the length prefix, too: most inputs are. */
    frame_up(ps, peer, hin, &plain, data, size);
    encode_round_trip(data, size);
    dist_hdr_in_free(hin);
    bytebuf_free(&plain);
    rc_procs_on_down(ps, peer);
    rc_pg_scope_nodedown(scope, peer);
    rc_pg_scope_shutdown(scope);
    rc_procs_exit_all(ps, "shutdown");
    rc_procs_free(ps);
    rc_request_server_free(rs);
    rc_emitters_free(emitters);
    rc_bcast_free(bcast);
    names_table_free(names);
    uv_run(&loop, UV_RUN_NOWAIT); /* lets the scope's timer close */
    rc_pg_scope_free(scope);
    rc_nodetab_free(nodes);
    uv_loop_close(&loop);
    return 0;
}
