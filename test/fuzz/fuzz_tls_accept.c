/* libFuzzer target: arbitrary bytes as what a stranger sends to a TLS
 * distribution port before any handshake is done. They reach the acceptor
 * exactly as a connection's would (through a socket, then the peer's end
 * closed): the plaintext check, OpenSSL's server handshake, and, for the
 * rare input that gets that far, the distribution handshake over the
 * session. The same bytes also go to a plain acceptor's distribution
 * handshake. Every call must end (EOF or deadline) without a crash, a
 * sanitizer report or a leak. The server's key and certificate are made
 * once, in memory, and written to a temporary directory. */
#include "transport/handshake.h"
#include "transport/sockio.h"
#include "transport/tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static rc_tls_ctx *ctx;

/* A self-signed certificate for the server side (it is never verified:
 * the fuzzer plays a client that sends no certificate). */
static int write_pki(const char *cert, const char *key)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int ok = pk != NULL && x != NULL;
    if (ok) {
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        X509_NAME *n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1,
                                   0);
        X509_set_issuer_name(x, n);
        X509_set_pubkey(x, pk);
        ok = X509_sign(x, pk, EVP_sha256()) > 0;
    }
    FILE *fc = ok ? fopen(cert, "w") : NULL;
    FILE *fk = ok ? fopen(key, "w") : NULL;
    ok = fc != NULL && fk != NULL && PEM_write_X509(fc, x) == 1 &&
         PEM_write_PrivateKey(fk, pk, NULL, NULL, 0, NULL, NULL) == 1;
    if (fc)
        fclose(fc);
    if (fk)
        fclose(fk);
    X509_free(x);
    EVP_PKEY_free(pk);
    return ok ? 0 : -1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/rc_fuzz_tls_XXXXXX";
    if (mkdtemp(dir) == NULL)
        abort();
    char cert[64], key[64], err[256];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    if (write_pki(cert, key) != 0)
        abort();
    rc_tls_config cfg = {.certfile = cert, .keyfile = key, .cacertfile = cert, .verify_peer = 1};
    if (rc_tls_ctx_new(&ctx, &cfg, err, (int)sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    unlink(cert);
    unlink(key);
    rmdir(dir);
    return 0;
}

static hs_status always_ok(void *c, const char *peer)
{
    (void)c;
    (void)peer;
    return HS_STATUS_OK;
}

static int io_write(void *c, const void *buf, size_t n, uint64_t dl)
{
    return rc_tls_write_all(c, buf, n, dl);
}

static int io_read(void *c, void *buf, size_t n, uint64_t dl)
{
    return rc_tls_read_exact(c, buf, n, dl);
}

/* A socket whose peer sent `data` and closed; -1 if it does not fit. */
static int stranger(const uint8_t *data, size_t size)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    if (size > 0 && write(sv[1], data, size) != (ssize_t)size) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    close(sv[1]);
    return sv[0];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    hs_config hc = {.this_node = "fuzz@host", .creation = 1, .cookie = "c",
                    .flags = RC_DIST_FLAGS, .status_for = always_ok};
    hs_result res;
    char err[256];
    int fd = stranger(data, size);
    if (fd >= 0) {
        uint64_t dl = sockio_now_ms() + 1000;
        rc_tls *t = rc_tls_handshake(ctx, fd, 1, NULL, dl, err, (int)sizeof err);
        if (t != NULL) {
            hs_io io = {.len_bytes = 4, .write_all = io_write, .read_exact = io_read, .ctx = t};
            (void)handshake_accept_io(&io, &hc, &res, dl, err, (int)sizeof err);
            rc_tls_free(t);
        }
        close(fd);
    }
    fd = stranger(data, size);
    if (fd >= 0) {
        (void)handshake_accept(fd, &hc, &res, sockio_now_ms() + 1000, err, (int)sizeof err);
        close(fd);
    }
    return 0;
}
