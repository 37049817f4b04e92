#include "transport/handshake.h"

#include "transport/sockio.h"
#include "util/be.h"

#include <errno.h>
#include <md5.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

enum { HS_MAX_MSG = 2 + 1 + 8 + 4 + 4 + 2 + HS_MAX_NODE + 64 };

static void put64(uint8_t *p, uint64_t v)
{
    rc_put32(p, (uint32_t)(v >> 32));
    rc_put32(p + 4, (uint32_t)v);
}
static uint64_t get64(const uint8_t *p) { return ((uint64_t)rc_get32(p) << 32) | rc_get32(p + 4); }

void handshake_digest(const char *cookie, uint32_t challenge, uint8_t digest[16])
{
    char num[16];
    int n = snprintf(num, sizeof num, "%u", challenge);
    MD5_CTX ctx;
    MD5Init(&ctx);
    MD5Update(&ctx, (const uint8_t *)cookie, strlen(cookie));
    MD5Update(&ctx, (const uint8_t *)num, (size_t)n);
    MD5Final(digest, &ctx);
}

static int digest_equal(const uint8_t a[16], const uint8_t b[16])
{
    uint8_t diff = 0;
    for (int i = 0; i < 16; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

static uint32_t new_challenge(void)
{
    uint32_t c = 0;
    if (getrandom(&c, sizeof c, 0) != (ssize_t)sizeof c) {
        /* getrandom on Linux >= 3.17 does not fail for 4 bytes; keep a fallback anyway. */
        c = (uint32_t)sockio_now_ms() * 2654435761u;
    }
    return c;
}

/* Handshake messages are framed with a 2-byte length. */
static int send_msg(const hs_io *io, const uint8_t *body, size_t n, uint64_t dl)
{
    uint8_t hdr[4];
    size_t hl = io->len_bytes == 4 ? 4 : 2;
    if (hl == 4)
        rc_put32(hdr, (uint32_t)n);
    else
        rc_put16(hdr, (uint16_t)n);
    if (io->write_all(io->ctx, hdr, hl, dl) != 0)
        return -1;
    return io->write_all(io->ctx, body, n, dl);
}

static int recv_msg(const hs_io *io, uint8_t *body, size_t cap, size_t *n, uint64_t dl)
{
    uint8_t hdr[4];
    size_t hl = io->len_bytes == 4 ? 4 : 2;
    if (io->read_exact(io->ctx, hdr, hl, dl) != 0)
        return -1;
    size_t len = hl == 4 ? rc_get32(hdr) : rc_get16(hdr);
    if (len == 0 || len > cap) {
        errno = EPROTO;
        return -1;
    }
    if (io->read_exact(io->ctx, body, len, dl) != 0)
        return -1;
    *n = len;
    return 0;
}

/* 'N' Flags(8) [Challenge(4)] Creation(4) NLen(2) Name */
static size_t build_name_msg(uint8_t *b, const hs_config *cfg, int with_challenge,
                             uint32_t challenge)
{
    size_t nlen = strlen(cfg->this_node);
    size_t n = 0;
    b[n++] = 'N';
    put64(b + n, cfg->flags);
    n += 8;
    if (with_challenge) {
        rc_put32(b + n, challenge);
        n += 4;
    }
    rc_put32(b + n, cfg->creation);
    n += 4;
    rc_put16(b + n, (uint16_t)nlen);
    n += 2;
    memcpy(b + n, cfg->this_node, nlen);
    return n + nlen;
}

static int parse_name_msg(const uint8_t *b, size_t n, int with_challenge, uint32_t *challenge,
                          hs_result *out)
{
    size_t need = 1 + 8 + (with_challenge ? 4 : 0) + 4 + 2;
    if (n < need || b[0] != 'N')
        return -1;
    size_t i = 1;
    out->peer_flags = get64(b + i);
    i += 8;
    if (with_challenge) {
        *challenge = rc_get32(b + i);
        i += 4;
    }
    out->peer_creation = rc_get32(b + i);
    i += 4;
    size_t nlen = rc_get16(b + i);
    i += 2;
    if (nlen == 0 || nlen >= HS_MAX_NODE || i + nlen != n)
        return -1;
    memcpy(out->peer_node, b + i, nlen);
    out->peer_node[nlen] = '\0';
    if (memchr(out->peer_node, '@', nlen) == NULL)
        return -1;
    return 0;
}

void handshake_flag_names(uint64_t flags, char *out, int outlen)
{
    static const struct {
        uint64_t flag;
        const char *name;
    } names[] = {
        {DFLAG_EXTENDED_REFERENCES, "EXTENDED_REFERENCES"},
        {DFLAG_DIST_MONITOR, "DIST_MONITOR"},
        {DFLAG_FUN_TAGS, "FUN_TAGS"},
        {DFLAG_DIST_MONITOR_NAME, "DIST_MONITOR_NAME"},
        {DFLAG_NEW_FUN_TAGS, "NEW_FUN_TAGS"},
        {DFLAG_EXTENDED_PIDS_PORTS, "EXTENDED_PIDS_PORTS"},
        {DFLAG_EXPORT_PTR_TAG, "EXPORT_PTR_TAG"},
        {DFLAG_BIT_BINARIES, "BIT_BINARIES"},
        {DFLAG_NEW_FLOATS, "NEW_FLOATS"},
        {DFLAG_DIST_HDR_ATOM_CACHE, "DIST_HDR_ATOM_CACHE"},
        {DFLAG_SMALL_ATOM_TAGS, "SMALL_ATOM_TAGS"},
        {DFLAG_UTF8_ATOMS, "UTF8_ATOMS"},
        {DFLAG_MAP_TAG, "MAP_TAG"},
        {DFLAG_BIG_CREATION, "BIG_CREATION"},
        {DFLAG_HANDSHAKE_23, "HANDSHAKE_23"},
        {DFLAG_UNLINK_ID, "UNLINK_ID"},
        {DFLAG_V4_NC, "V4_NC"},
    };
    int used = 0;
    out[0] = '\0';
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (!(flags & names[k].flag))
            continue;
        flags &= ~names[k].flag;
        int n = snprintf(out + used, (size_t)(outlen - used), "%s%s", used ? ", " : "",
                         names[k].name);
        if (n < 0 || n >= outlen - used)
            return;
        used += n;
    }
    if (flags != 0 && used < outlen)
        snprintf(out + used, (size_t)(outlen - used), "%s0x%llx", used ? ", " : "",
                 (unsigned long long)flags);
}

/* As OTP does, a peer may offer MANDATORY_25_DIGEST in place of the flags it
 * stands for. */
static uint64_t expand_digest(uint64_t flags)
{
    return (flags & DFLAG_MANDATORY_25_DIGEST) ? flags | HS_MANDATORY_25 : flags;
}

static int check_peer_flags(hs_result *out, const char *dir, char *err, int errlen)
{
    out->peer_flags = expand_digest(out->peer_flags);
    uint64_t missing = HS_MANDATORY & ~out->peer_flags;
    if (missing == 0)
        return 0;
    char names[256];
    handshake_flag_names(missing, names, (int)sizeof names);
    out->missing_flags = missing;
    snprintf(err, (size_t)errlen,
             "connection %s %s refused: it cannot handle [%s] (OTP 25 or newer needed)", dir,
             out->peer_node, names);
    return -1;
}

int handshake_connect_io(const hs_io *io, const hs_config *cfg, const char *expected_peer,
                         hs_result *out, uint64_t dl, char *err, int errlen)
{
    uint8_t b[HS_MAX_MSG];
    size_t n = build_name_msg(b, cfg, 0, 0);
    if (send_msg(io, b, n, dl) != 0) {
        snprintf(err, (size_t)errlen, "send_name: %s", strerror(errno));
        return -1;
    }
    if (recv_msg(io, b, sizeof b - 1, &n, dl) != 0 || b[0] != 's') {
        snprintf(err, (size_t)errlen, "recv_status: %s", strerror(errno));
        return -1;
    }
    b[n] = '\0';
    const char *status = (const char *)b + 1;
    if (strcmp(status, "alive") == 0) {
        /* The peer has a connection with this node name. If it is one we
         * know of (up, or accepted while this dial was under way), keep it
         * (false); otherwise it is dead on our side: say so (true), as
         * net_kernel does, and go on. */
        int keep = cfg->has_connection != NULL && expected_peer != NULL &&
                   cfg->has_connection(cfg->status_ctx, expected_peer);
        static const uint8_t t[] = {'s', 't', 'r', 'u', 'e'};
        static const uint8_t f[] = {'s', 'f', 'a', 'l', 's', 'e'};
        if (send_msg(io, keep ? f : t, keep ? sizeof f : sizeof t, dl) != 0) {
            snprintf(err, (size_t)errlen, "send_status_reply: %s", strerror(errno));
            return -1;
        }
        if (keep) {
            snprintf(err, (size_t)errlen, "already connected to %s (it connected to us)",
                     expected_peer);
            return -1;
        }
    } else if (strcmp(status, "ok") != 0 && strcmp(status, "ok_simultaneous") != 0) {
        if (strcmp(status, "not_allowed") == 0) {
            /* An OTP node answers so when we lack a flag it requires; its own
             * log names the flags. */
            out->missing_flags = HS_REFUSED_BY_PEER;
            snprintf(err, (size_t)errlen,
                     "peer refused us (not_allowed): it requires distribution flags we do "
                     "not offer (offered: 0x%llx); its log names them",
                     (unsigned long long)cfg->flags);
        } else {
            snprintf(err, (size_t)errlen, "peer refused connection: status %.32s", status);
        }
        return -1;
    }
    uint32_t their_challenge = 0;
    if (recv_msg(io, b, sizeof b, &n, dl) != 0 ||
        parse_name_msg(b, n, 1, &their_challenge, out) != 0) {
        snprintf(err, (size_t)errlen, "bad challenge message (peer too old or not a node?)");
        return -1;
    }
    if (expected_peer != NULL && strcmp(out->peer_node, expected_peer) != 0) {
        snprintf(err, (size_t)errlen, "connected to %s, expected %s", out->peer_node,
                 expected_peer);
        return -1;
    }
    if (check_peer_flags(out, "to", err, errlen) != 0)
        return -1;
    uint32_t our_challenge = new_challenge();
    b[0] = 'r';
    rc_put32(b + 1, our_challenge);
    handshake_digest(cfg->cookie, their_challenge, b + 5);
    if (send_msg(io, b, 21, dl) != 0) {
        snprintf(err, (size_t)errlen, "send_challenge_reply: %s", strerror(errno));
        return -1;
    }
    if (recv_msg(io, b, sizeof b, &n, dl) != 0 || n != 17 || b[0] != 'a') {
        snprintf(err, (size_t)errlen, "no challenge ack from %s (wrong cookie?)", out->peer_node);
        return -1;
    }
    uint8_t expect[16];
    handshake_digest(cfg->cookie, our_challenge, expect);
    if (!digest_equal(expect, b + 1)) {
        snprintf(err, (size_t)errlen, "bad digest from %s (wrong cookie)", out->peer_node);
        return -1;
    }
    return 0;
}

int handshake_accept_io(const hs_io *io, const hs_config *cfg, hs_result *out, uint64_t dl,
                        char *err, int errlen)
{
    uint8_t b[HS_MAX_MSG];
    size_t n = 0;
    if (recv_msg(io, b, sizeof b, &n, dl) != 0) {
        snprintf(err, (size_t)errlen, "recv_name: %s", strerror(errno));
        return -1;
    }
    if (n > 0 && b[0] == 'n') {
        snprintf(err, (size_t)errlen, "peer uses handshake version 5; OTP 23+ required");
        return -1;
    }
    if (parse_name_msg(b, n, 0, NULL, out) != 0) {
        if (n >= 9 && b[0] == 'N' && (expand_digest(get64(b + 1)) & DFLAG_NAME_ME))
            snprintf(err, (size_t)errlen,
                     "peer asks for a dynamic node name (NAME_ME), which this node does not "
                     "assign");
        else
            snprintf(err, (size_t)errlen, "malformed send_name");
        return -1;
    }
    if (check_peer_flags(out, "from", err, errlen) != 0) {
        static const uint8_t nok[] = {'s', 'n', 'o', 't', '_', 'a', 'l', 'l', 'o', 'w', 'e', 'd'};
        (void)send_msg(io, nok, sizeof nok, dl);
        return -1;
    }
    hs_status st = cfg->status_for ? cfg->status_for(cfg->status_ctx, out->peer_node)
                                   : HS_STATUS_OK;
    if (st == HS_STATUS_NOK) {
        static const uint8_t nok[] = {'s', 'n', 'o', 'k'};
        (void)send_msg(io, nok, sizeof nok, dl);
        snprintf(err, (size_t)errlen, "simultaneous connect with %s: keeping ours",
                 out->peer_node);
        return -1;
    }
    static const uint8_t ok[] = {'s', 'o', 'k'};
    static const uint8_t ok_sim[] = {'s', 'o', 'k', '_', 's', 'i', 'm', 'u', 'l', 't', 'a', 'n',
                                     'e', 'o', 'u', 's'};
    static const uint8_t alive[] = {'s', 'a', 'l', 'i', 'v', 'e'};
    if (st == HS_STATUS_ALIVE) {
        /* As net_kernel does: we are connected to this node already; it
         * answers true if that connection is dead on its side (it had not
         * seen ours when it dialled), false to give up this attempt. */
        if (send_msg(io, alive, sizeof alive, dl) != 0 ||
            recv_msg(io, b, sizeof b - 1, &n, dl) != 0 || n < 2 || b[0] != 's') {
            snprintf(err, (size_t)errlen, "no answer from %s to status alive", out->peer_node);
            return -1;
        }
        b[n] = '\0';
        if (strcmp((const char *)b + 1, "true") != 0) {
            snprintf(err, (size_t)errlen, "%s keeps its existing connection", out->peer_node);
            return -1;
        }
        out->replaces_existing = 1;
    } else if ((st == HS_STATUS_OK_SIMULTANEOUS ? send_msg(io, ok_sim, sizeof ok_sim, dl)
                                                : send_msg(io, ok, sizeof ok, dl)) != 0) {
        snprintf(err, (size_t)errlen, "send_status: %s", strerror(errno));
        return -1;
    }
    uint32_t our_challenge = new_challenge();
    n = build_name_msg(b, cfg, 1, our_challenge);
    if (send_msg(io, b, n, dl) != 0) {
        snprintf(err, (size_t)errlen, "send_challenge: %s", strerror(errno));
        return -1;
    }
    if (recv_msg(io, b, sizeof b, &n, dl) != 0 || n != 21 || b[0] != 'r') {
        snprintf(err, (size_t)errlen, "no challenge reply from %s", out->peer_node);
        return -1;
    }
    uint8_t expect[16];
    handshake_digest(cfg->cookie, our_challenge, expect);
    if (!digest_equal(expect, b + 5)) {
        snprintf(err, (size_t)errlen, "connection from %s rejected: wrong cookie", out->peer_node);
        return -1;
    }
    uint32_t their_challenge = rc_get32(b + 1);
    b[0] = 'a';
    handshake_digest(cfg->cookie, their_challenge, b + 1);
    if (send_msg(io, b, 17, dl) != 0) {
        snprintf(err, (size_t)errlen, "send_challenge_ack: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int fd_write_all(void *ctx, const void *buf, size_t n, uint64_t dl)
{
    return sockio_write_all(*(const int *)ctx, buf, n, dl);
}

static int fd_read_exact(void *ctx, void *buf, size_t n, uint64_t dl)
{
    return sockio_read_exact(*(const int *)ctx, buf, n, dl);
}

int handshake_connect(int fd, const hs_config *cfg, const char *expected_peer, hs_result *out,
                      uint64_t deadline_ms, char *err, int errlen)
{
    hs_io io = {.write_all = fd_write_all, .read_exact = fd_read_exact, .ctx = &fd};
    return handshake_connect_io(&io, cfg, expected_peer, out, deadline_ms, err, errlen);
}

int handshake_accept(int fd, const hs_config *cfg, hs_result *out, uint64_t deadline_ms,
                     char *err, int errlen)
{
    hs_io io = {.write_all = fd_write_all, .read_exact = fd_read_exact, .ctx = &fd};
    return handshake_accept_io(&io, cfg, out, deadline_ms, err, errlen);
}
