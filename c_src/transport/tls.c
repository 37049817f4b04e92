#include "transport/tls.h"

#include "transport/sockio.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The first byte of every TLS handshake record. A distribution handshake
 * message starts with the high byte of a 2-byte length, and none is
 * anywhere near 0x1600 bytes long, so this one byte tells the two apart. */
#define TLS_HANDSHAKE_RECORD 0x16

struct rc_tls_ctx {
    SSL_CTX *ssl_ctx;
    char server_name[256]; /* empty: the dialled node's host is checked */
};

struct rc_tls {
    SSL *ssl;
    int fd;
    /* Why the last handshake-thread call failed, for the caller's log line:
     * a distribution handshake that fails over TLS reports this instead of
     * a bare errno (e.g. a TLS 1.3 server refusing our certificate only
     * says so once we read). */
    char err[320];
    /* The first certificate of the peer's chain that failed verification,
     * and why: set by verify_cb, which OpenSSL calls before the session
     * knows the peer's certificate. */
    char refused[256];
};

static void openssl_reason(char *out, size_t len)
{
    unsigned long code = 0, last;
    while ((last = ERR_get_error()) != 0)
        code = last; /* the innermost reason is the last one queued */
    const char *r = code != 0 ? ERR_reason_error_string(code) : NULL;
    snprintf(out, len, "%s", r != NULL ? r : "unknown TLS error");
}

/* OpenSSL reports a file it could not use as "system lib" or "PEM lib",
 * which tells an operator neither what is wrong nor what to fix: name the
 * cause in the file's own terms (missing, unreadable, not PEM, encrypted,
 * another certificate's key). WHAT is what the file should hold; CERTFILE
 * is the certificate a key must belong to. */
static void file_reason(const char *file, const char *what, const char *certfile, char *out,
                        size_t len)
{
    struct stat st;
    FILE *f = NULL;
    if (stat(file, &st) != 0 || (!S_ISDIR(st.st_mode) && (f = fopen(file, "r")) == NULL)) {
        snprintf(out, len, "%s", strerror(errno));
        ERR_clear_error();
        return;
    }
    if (f != NULL)
        fclose(f);
    if (S_ISDIR(st.st_mode)) {
        snprintf(out, len, "is a directory, not a PEM file");
        ERR_clear_error();
        return;
    }
    unsigned long code;
    int none = 0, encrypted = 0, mismatch = 0;
    while ((code = ERR_get_error()) != 0) {
        int lib = ERR_GET_LIB(code), r = ERR_GET_REASON(code);
        if ((lib == ERR_LIB_PEM && r == PEM_R_NO_START_LINE) ||
            (lib == ERR_LIB_X509 && r == X509_R_NO_CERTIFICATE_OR_CRL_FOUND) ||
            (lib == ERR_LIB_OSSL_DECODER && r == ERR_R_UNSUPPORTED))
            none = 1;
        else if (lib == ERR_LIB_PEM && (r == PEM_R_BAD_DECRYPT || r == PEM_R_BAD_PASSWORD_READ ||
                                        r == PEM_R_PROBLEMS_GETTING_PASSWORD))
            encrypted = 1;
        else if (lib == ERR_LIB_X509 && r == X509_R_KEY_VALUES_MISMATCH)
            mismatch = 1;
    }
    if (encrypted)
        snprintf(out, len, "an encrypted private key (not supported: give it without a passphrase)");
    else if (mismatch)
        snprintf(out, len, "not the key of the certificate in %s", certfile);
    else if (none && file == certfile && strcmp(what, "private key") == 0)
        snprintf(out, len, "holds no PEM private key (give the key with --tls-key)");
    else if (none)
        snprintf(out, len, "holds no PEM %s", what);
    else
        snprintf(out, len, "not a usable PEM %s", what);
}

/* The sidecar runs unattended: an encrypted key must fail at start with a
 * reason, not stop to ask for a passphrase on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static const char *verify_hint(long v);

static int verify_cb(int ok, X509_STORE_CTX *store)
{
    if (ok)
        return 1;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    rc_tls *t = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    if (t != NULL && t->refused[0] == '\0') {
        char subject[96] = "?";
        X509 *cert = X509_STORE_CTX_get_current_cert(store);
        if (cert != NULL)
            X509_NAME_oneline(X509_get_subject_name(cert), subject, (int)sizeof subject);
        int v = X509_STORE_CTX_get_error(store);
        snprintf(t->refused, sizeof t->refused, "peer certificate %s refused: %s (%s)", subject,
                 verify_hint(v), X509_verify_cert_error_string(v));
    }
    return 0;
}

int rc_tls_ctx_new(rc_tls_ctx **out, const rc_tls_config *cfg, char *err, int errlen)
{
    size_t el = (size_t)errlen;
    char why[PATH_MAX + 96]; /* may name the certificate file */
    if (cfg->certfile == NULL || cfg->certfile[0] == '\0') {
        snprintf(err, el, "TLS needs --tls-cert");
        return -1;
    }
    if (cfg->verify_peer && (cfg->cacertfile == NULL || cfg->cacertfile[0] == '\0')) {
        snprintf(err, el, "TLS with peer verification needs --tls-cacert (or --tls-verify none)");
        return -1;
    }
    if (cfg->server_name != NULL && strlen(cfg->server_name) >= 256) {
        snprintf(err, el, "--tls-server-name too long");
        return -1;
    }
    rc_tls_ctx *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, el, "out of memory");
        return -1;
    }
    if (cfg->server_name != NULL)
        strcpy(c->server_name, cfg->server_name);
    ERR_clear_error();
    c->ssl_ctx = SSL_CTX_new(TLS_method());
    if (c->ssl_ctx == NULL) {
        openssl_reason(why, sizeof why);
        snprintf(err, el, "TLS context: %s", why);
        free(c);
        return -1;
    }
    SSL_CTX *s = c->ssl_ctx;
    SSL_CTX_set_default_passwd_cb(s, no_passphrase);
    const char *keyfile = cfg->keyfile ? cfg->keyfile : cfg->certfile;
    const char *bad = NULL, *file = NULL, *holds = NULL;
    if (SSL_CTX_set_min_proto_version(s, cfg->min_version == 13 ? TLS1_3_VERSION
                                                                  : TLS1_2_VERSION) != 1)
        bad = "minimum version";
    else if (SSL_CTX_use_certificate_chain_file(s, cfg->certfile) != 1)
        bad = "certificate file", file = cfg->certfile, holds = "certificate";
    else if (SSL_CTX_use_PrivateKey_file(s, keyfile, SSL_FILETYPE_PEM) != 1)
        bad = "private key file", file = keyfile, holds = "private key";
    else if (SSL_CTX_check_private_key(s) != 1) {
        ERR_clear_error();
        snprintf(err, el, "TLS private key file %s: not the key of the certificate in %s",
                 keyfile, cfg->certfile);
        SSL_CTX_free(s);
        free(c);
        return -1;
    } else if (cfg->cacertfile != NULL && cfg->cacertfile[0] != '\0' &&
               SSL_CTX_load_verify_locations(s, cfg->cacertfile, NULL) != 1)
        bad = "CA file", file = cfg->cacertfile, holds = "CA certificate";
    if (bad != NULL) {
        if (file != NULL) {
            file_reason(file, holds, cfg->certfile, why, sizeof why);
            snprintf(err, el, "TLS %s %s: %s", bad, file, why);
        } else {
            openssl_reason(why, sizeof why);
            snprintf(err, el, "TLS %s: %s", bad, why);
        }
        SSL_CTX_free(s);
        free(c);
        return -1;
    }
    /* Both roles: a BEAM with verify_peer and fail_if_no_peer_cert (what an
     * ssl_dist_optfile usually says) asks for our certificate too. */
    SSL_CTX_set_verify(s, cfg->verify_peer ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                           : SSL_VERIFY_NONE,
                       verify_cb);
    /* The loop writes from a buffer that may move between retries and takes
     * partial writes; a peer that closes without close_notify is an EOF like
     * any other, since our framing already detects truncation. */
    SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(s, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    /* Sessions are never resumed (each connection lives long): no tickets,
     * so nothing is written after the handshake that nobody asked for. */
    SSL_CTX_set_num_tickets(s, 0);
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
    *out = c;
    return 0;
}

void rc_tls_ctx_free(rc_tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

/* Why a peer's certificate was refused, in the words an operator acts on. */
static const char *verify_hint(long v)
{
    switch (v) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
        return "unknown CA: not issued by a CA in --tls-cacert";
    case X509_V_ERR_CERT_HAS_EXPIRED: return "expired";
    case X509_V_ERR_CERT_NOT_YET_VALID: return "not yet valid";
    case X509_V_ERR_HOSTNAME_MISMATCH:
        return "name mismatch: not issued for the host of the node dialled (or --tls-server-name)";
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return "IP address mismatch: not issued for the address of the node dialled";
    default: return "bad certificate";
    }
}

/* The reason a handshake-thread call failed, into t->err; errno set for
 * callers that only look at it. */
static void record_failure(rc_tls *t, int ssl_err, int sys_errno)
{
    char why[160];
    if (ssl_err == SSL_ERROR_SSL && t->refused[0] != '\0') {
        snprintf(t->err, sizeof t->err, "TLS: %s", t->refused);
        ERR_clear_error();
        errno = EACCES;
        return;
    }
    if (ssl_err == SSL_ERROR_SSL) {
        openssl_reason(why, sizeof why);
        const char *hint = "";
        if (strstr(why, "alert") != NULL)
            hint = " (the peer refused the session: our certificate, CA or TLS version)";
        else if (strstr(why, "wrong version number") != NULL ||
                 strstr(why, "packet length too long") != NULL ||
                 strstr(why, "record layer failure") != NULL)
            hint = " (the peer does not speak TLS: a plain distribution port?)";
        snprintf(t->err, sizeof t->err, "TLS: %s%s", why, hint);
        errno = EPROTO;
        return;
    }
    if (ssl_err == SSL_ERROR_ZERO_RETURN || (ssl_err == SSL_ERROR_SYSCALL && sys_errno == 0)) {
        snprintf(t->err, sizeof t->err,
                 "TLS: the peer closed the connection (it may have refused our certificate, "
                 "or not speak TLS)");
        ERR_clear_error();
        errno = ECONNRESET;
        return;
    }
    snprintf(t->err, sizeof t->err, "TLS: %s", strerror(sys_errno ? sys_errno : EIO));
    ERR_clear_error();
    errno = sys_errno ? sys_errno : EIO;
}

/* After an SSL call on a handshake thread returned rc <= 0: waits for what
 * the session needs and returns 0 (call again), or -1 (t->err says why). */
static int wait_for_session(rc_tls *t, int rc, uint64_t deadline_ms, const char *what)
{
    int sys_errno = errno;
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (sockio_wait(t->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline_ms) == 0)
            return 0;
        int saved = errno;
        if (saved == ETIMEDOUT)
            snprintf(t->err, sizeof t->err,
                     "TLS: no answer %s before the deadline (a peer without TLS "
                     "distribution waits for more plaintext)",
                     what);
        else
            snprintf(t->err, sizeof t->err, "TLS: %s", strerror(saved));
        errno = saved;
        return -1;
    }
    record_failure(t, e, sys_errno);
    return -1;
}

/* The name a client expects on the server's certificate: an IP address
 * is matched against the certificate's IP entries, a DNS name against its
 * DNS entries (and sent as SNI). 1 on success. */
static int expect_name(SSL *ssl, const char *name)
{
    unsigned char ip[16];
    if (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
    return SSL_set_tlsext_host_name(ssl, name) == 1 && SSL_set1_host(ssl, name) == 1;
}

rc_tls *rc_tls_handshake(rc_tls_ctx *ctx, int fd, int server, const char *peer_host,
                         uint64_t deadline_ms, char *err, int errlen)
{
    size_t el = (size_t)errlen;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        snprintf(err, el, "TLS: fcntl: %s", strerror(errno));
        return NULL;
    }
    if (server) {
        /* A plaintext peer would otherwise show up as an obscure record
         * layer error, or as a wait for bytes that never come. */
        uint8_t first = 0;
        int r = sockio_peek(fd, &first, 1, deadline_ms);
        if (r == 0) {
            snprintf(err, el, "TLS: the peer closed before sending anything");
            return NULL;
        }
        if (r < 0) {
            snprintf(err, el, "TLS: waiting for the client hello: %s", strerror(errno));
            return NULL;
        }
        if (first != TLS_HANDSHAKE_RECORD) {
            snprintf(err, el,
                     "TLS: the peer sent plaintext (first byte 0x%02x) on a TLS port: a node "
                     "without TLS distribution?",
                     first);
            return NULL;
        }
    }
    rc_tls *t = calloc(1, sizeof *t);
    if (t == NULL) {
        snprintf(err, el, "out of memory");
        return NULL;
    }
    t->fd = fd;
    ERR_clear_error();
    t->ssl = SSL_new(ctx->ssl_ctx);
    const char *expect = server                        ? NULL
                         : ctx->server_name[0] != '\0' ? ctx->server_name
                                                       : peer_host;
    if (t->ssl == NULL || SSL_set_app_data(t->ssl, t) != 1 || SSL_set_fd(t->ssl, fd) != 1 ||
        (expect != NULL && !expect_name(t->ssl, expect))) {
        char why[160];
        openssl_reason(why, sizeof why);
        snprintf(err, el, "TLS session: %s", why);
        rc_tls_free(t);
        return NULL;
    }
    if (server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    for (;;) {
        ERR_clear_error();
        int rc = SSL_do_handshake(t->ssl);
        if (rc == 1)
            break;
        if (wait_for_session(t, rc, deadline_ms,
                             server ? "to our server hello" : "to our client hello") != 0) {
            snprintf(err, el, "%s", t->err);
            rc_tls_free(t);
            return NULL;
        }
    }
    return t;
}

int rc_tls_write_all(rc_tls *t, const void *buf, size_t n, uint64_t deadline_ms)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ERR_clear_error();
        size_t w = 0;
        int rc = SSL_write_ex(t->ssl, p, n, &w);
        if (rc == 1) {
            p += w;
            n -= w;
        } else if (wait_for_session(t, rc, deadline_ms, "while writing") != 0) {
            return -1;
        }
    }
    return 0;
}

int rc_tls_read_exact(rc_tls *t, void *buf, size_t n, uint64_t deadline_ms)
{
    uint8_t *p = buf;
    while (n > 0) {
        ERR_clear_error();
        size_t r = 0;
        int rc = SSL_read_ex(t->ssl, p, n, &r);
        if (rc == 1) {
            p += r;
            n -= r;
        } else if (wait_for_session(t, rc, deadline_ms, "in the distribution handshake") != 0) {
            return -1;
        }
    }
    return 0;
}

/* The loop's side: one call, no waiting. */
static ssize_t loop_result(rc_tls *t, int rc, size_t done, char *why, int whylen)
{
    if (rc == 1)
        return (ssize_t)done;
    int sys_errno = errno;
    int e = SSL_get_error(t->ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ: return RC_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return RC_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: ERR_clear_error(); return RC_TLS_EOF;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (sys_errno == 0)
            return RC_TLS_EOF;
        snprintf(why, (size_t)whylen, "TLS: %s", strerror(sys_errno));
        return RC_TLS_ERROR;
    default: {
        char r[160];
        openssl_reason(r, sizeof r);
        snprintf(why, (size_t)whylen, "TLS: %s", r);
        return RC_TLS_ERROR;
    }
    }
}

ssize_t rc_tls_read(rc_tls *t, void *buf, size_t n, char *why, int whylen)
{
    ERR_clear_error();
    errno = 0;
    size_t r = 0;
    int rc = SSL_read_ex(t->ssl, buf, n, &r);
    return loop_result(t, rc, r, why, whylen);
}

ssize_t rc_tls_write(rc_tls *t, const void *buf, size_t n, char *why, int whylen)
{
    ERR_clear_error();
    errno = 0;
    size_t w = 0;
    int rc = SSL_write_ex(t->ssl, buf, n, &w);
    return loop_result(t, rc, w, why, whylen);
}

/* Decrypted bytes only. SSL_has_pending also counts a record received in
 * part: the rest comes through the socket, which will signal it, and
 * counting it kept the loop spinning until it came (each piece of a 16 KiB
 * record on a slow link). Reads are not read-ahead, so no whole record
 * waits unprocessed behind the one being read. */
int rc_tls_has_pending(const rc_tls *t) { return SSL_pending(t->ssl) > 0; }

void rc_tls_shutdown(rc_tls *t)
{
    if (t == NULL)
        return;
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

void rc_tls_free(rc_tls *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);
    free(t);
}

const char *rc_tls_describe(const rc_tls *t, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
    return buf;
}

const char *rc_tls_last_error(const rc_tls *t) { return t->err; }
