/* main: the reckon_cnode executable. Parses the command line,
 * reads the cookie, creates the node, prints its name once reachable and
 * runs it until SIGTERM/SIGINT (exit 0) or a fatal start-up error (exit 1). */
#include "reckon_cnode.h"
#include "node/http.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SEEDS 64

static void usage(FILE *f)
{
    fputs("usage: reckon_cnode [OPTION]...\n"
          "A C node that joins an Erlang cluster and serves reckon-db's emitter groups.\n"
          "\n"
          "Node and cluster:\n"
          "  --sname NAME          short node name NAME@<this host> (default: reckon_cnode)\n"
          "  --name NAME@HOST      long node name (instead of --sname)\n"
          "  --cookie C            the cluster's cookie (default: $RECKON_CNODE_COOKIE,\n"
          "                        then the first line of $HOME/.erlang.cookie)\n"
          "  --cookie-file F       read the cookie from the first line of F\n"
          "  --seed NODE           a node to connect to and learn the cluster from;\n"
          "                        repeatable (default: none, wait to be connected to)\n"
          "  --scope SCOPE         a pg scope to serve; repeatable, the first is the\n"
          "                        emitter groups' (default: reckon_db_pg)\n"
          "  --data-dir DIR        keep the emitter-name table durable in DIR (LMDB)\n"
          "                        (default: in memory only)\n"
          "\n"
          "Network:\n"
          "  --listen ADDR         the one local address to accept on (default: all)\n"
          "  --dist-port N|MIN-MAX the port, or the range to take the first free port\n"
          "                        of, as inet_dist_listen_min/max (default: any)\n"
          "  --net-ticktime SECS   drop a peer silent this long, as net_ticktime\n"
          "                        (default: 60)\n"
          "  --max-message-bytes N close a connection that sends a larger frame\n"
          "                        (default: 67108864, 64 MiB)\n"
          "  --http ADDR:PORT      serve GET /metrics (Prometheus text) and GET /health,\n"
          "                        e.g. 127.0.0.1:9464 or [::1]:9464, port 0: any free\n"
          "                        one; no authentication: keep it on loopback or a\n"
          "                        management network (default: off)\n"
          "\n"
          "TLS distribution (for clusters that run -proto_dist inet_tls; default: off):\n"
          "  --tls-cert F          this node's PEM certificate (chain); turns TLS on\n"
          "  --tls-key F           its key, if not in the certificate file\n"
          "  --tls-cacert F        the CA bundle peers' certificates must chain to\n"
          "  --tls-verify peer|none  refuse peers without a valid certificate\n"
          "                        (default: peer)\n"
          "  --tls-server-name NAME  the name a dialled node's certificate must carry\n"
          "                        (default: the host part of that node's name)\n"
          "  --tls-min-version 1.2|1.3  (default: 1.2)\n"
          "\n"
          "Other:\n"
          "  --log-level error|warning|info|debug  on stderr (default: info)\n"
          "  --exit-on-stdin-close stop when standard input closes (for a port owner)\n"
          "  --version             print the version and exit\n"
          "  --help                print this and exit\n",
          f);
}

/* Reads the first line of a cookie file, without the newline. */
static int read_cookie_file(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] != '\0' ? 0 : -1;
}

/* As erl does: with no cookie file, create one with a random cookie so the
 * first `make run` on a new machine works and later `erl` nodes share it. */
static int create_cookie_file(const char *path, char *out, size_t cap)
{
    uint8_t rnd[20];
    if (cap < sizeof rnd + 1 || getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return -1;
    for (size_t i = 0; i < sizeof rnd; i++)
        out[i] = (char)('A' + rnd[i] % 26);
    out[sizeof rnd] = '\0';
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0400);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, out, sizeof rnd);
    close(fd);
    return w == (ssize_t)sizeof rnd ? 0 : -1;
}

static int parse_size(const char *s, size_t *out)
{
    char *end = NULL;
    if (s[0] < '0' || s[0] > '9') /* strtoull would take "-5" as a huge number */
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || v == 0 || errno != 0 || v > SIZE_MAX)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* "N" or "MIN-MAX", each 1..65535. */
static int parse_port_range(const char *s, unsigned *lo, unsigned *hi)
{
    char buf[32];
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    char *dash = strchr(buf, '-');
    if (dash != NULL)
        *dash = '\0';
    size_t a = 0, b = 0;
    if (parse_size(buf, &a) != 0 || a > 65535)
        return -1;
    if (dash != NULL && (parse_size(dash + 1, &b) != 0 || b > 65535 || b < a))
        return -1;
    *lo = (unsigned)a;
    *hi = dash != NULL ? (unsigned)b : (unsigned)a;
    return 0;
}

int main(int argc, char **argv)
{
    /* Large blocks (connection buffers after a burst, the monitor table at
     * its peak) straight from mmap, so that freeing them returns them to the
     * system: glibc's dynamic threshold would otherwise keep them on the
     * heap, resident, after a peer's burst is over. */
    (void)mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    /* A write to a socket the peer has reset must fail with EPIPE, not end
     * the node: OpenSSL writes to TLS sockets with write(), which cannot
     * ask for MSG_NOSIGNAL, and so does the plain path's writev. */
    (void)signal(SIGPIPE, SIG_IGN);
    rc_node_config cfg;
    rc_node_config_init(&cfg);
    const char *seeds[MAX_SEEDS];
    size_t nseeds = 0;
    const char *scopes[MAX_SEEDS];
    size_t nscopes = 0;
    const char *cookie = NULL, *cookie_file = NULL, *http_addr = NULL;
    static char cookie_buf[1024];
    enum { O_SNAME = 1, O_NAME, O_COOKIE, O_COOKIE_FILE, O_SCOPE, O_SEED, O_DATA_DIR, O_MAX_MSG,
           O_LOG_LEVEL, O_TICKTIME, O_STDIN, O_HELP, O_LISTEN, O_DIST_PORT, O_VERSION, O_HTTP,
           O_TLS_CERT, O_TLS_KEY, O_TLS_CACERT, O_TLS_VERIFY, O_TLS_SERVER_NAME, O_TLS_MIN };
    static const struct option opts[] = {
        {"sname", required_argument, NULL, O_SNAME},
        {"name", required_argument, NULL, O_NAME},
        {"cookie", required_argument, NULL, O_COOKIE},
        {"cookie-file", required_argument, NULL, O_COOKIE_FILE},
        {"scope", required_argument, NULL, O_SCOPE},
        {"seed", required_argument, NULL, O_SEED},
        {"data-dir", required_argument, NULL, O_DATA_DIR},
        {"max-message-bytes", required_argument, NULL, O_MAX_MSG},
        {"log-level", required_argument, NULL, O_LOG_LEVEL},
        {"net-ticktime", required_argument, NULL, O_TICKTIME},
        {"exit-on-stdin-close", no_argument, NULL, O_STDIN},
        {"help", no_argument, NULL, O_HELP},
        {"listen", required_argument, NULL, O_LISTEN},
        {"dist-port", required_argument, NULL, O_DIST_PORT},
        {"version", no_argument, NULL, O_VERSION},
        {"http", required_argument, NULL, O_HTTP},
        {"tls-cert", required_argument, NULL, O_TLS_CERT},
        {"tls-key", required_argument, NULL, O_TLS_KEY},
        {"tls-cacert", required_argument, NULL, O_TLS_CACERT},
        {"tls-verify", required_argument, NULL, O_TLS_VERIFY},
        {"tls-server-name", required_argument, NULL, O_TLS_SERVER_NAME},
        {"tls-min-version", required_argument, NULL, O_TLS_MIN},
        {NULL, 0, NULL, 0}};
    int c;
    size_t sz = 0;
    rc_log_level lvl;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_SNAME: cfg.sname = optarg; break;
        case O_NAME: cfg.name = optarg; break;
        case O_COOKIE: cookie = optarg; break;
        case O_COOKIE_FILE: cookie_file = optarg; break;
        case O_SCOPE:
            if (nscopes == MAX_SEEDS) {
                fprintf(stderr, "reckon_cnode: at most %d --scope\n", MAX_SEEDS);
                return 2;
            }
            scopes[nscopes++] = optarg;
            break;
        case O_SEED:
            if (nseeds == MAX_SEEDS) {
                fprintf(stderr, "reckon_cnode: at most %d --seed\n", MAX_SEEDS);
                return 2;
            }
            seeds[nseeds++] = optarg;
            break;
        case O_DATA_DIR: cfg.data_dir = optarg; break;
        case O_MAX_MSG:
            if (parse_size(optarg, &sz) != 0) {
                fprintf(stderr, "reckon_cnode: bad --max-message-bytes\n");
                return 2;
            }
            cfg.max_message_bytes = sz;
            break;
        case O_LOG_LEVEL:
            if (rc_log_level_parse(optarg, &lvl) != 0) {
                fprintf(stderr, "reckon_cnode: bad --log-level\n");
                return 2;
            }
            cfg.log_level = (int)lvl;
            break;
        case O_TICKTIME:
            if (parse_size(optarg, &sz) != 0 || sz > 3600) {
                fprintf(stderr, "reckon_cnode: bad --net-ticktime\n");
                return 2;
            }
            cfg.net_ticktime_s = (unsigned)sz;
            break;
        case O_STDIN: cfg.exit_on_stdin_close = 1; break;
        case O_LISTEN: cfg.listen_addr = optarg; break;
        case O_DIST_PORT:
            if (parse_port_range(optarg, &cfg.port_min, &cfg.port_max) != 0) {
                fprintf(stderr, "reckon_cnode: bad --dist-port (N or MIN-MAX, 1..65535)\n");
                return 2;
            }
            break;
        case O_HTTP: {
            struct sockaddr_storage sa;
            if (rc_http_parse_addr(optarg, &sa) != 0) {
                fprintf(stderr, "reckon_cnode: bad --http (IPv4:PORT or [IPv6]:PORT)\n");
                return 2;
            }
            http_addr = optarg;
            break;
        }
        case O_TLS_CERT: cfg.tls_certfile = optarg; break;
        case O_TLS_KEY: cfg.tls_keyfile = optarg; break;
        case O_TLS_CACERT: cfg.tls_cacertfile = optarg; break;
        case O_TLS_SERVER_NAME: cfg.tls_server_name = optarg; break;
        case O_TLS_VERIFY:
            if (strcmp(optarg, "peer") != 0 && strcmp(optarg, "none") != 0) {
                fprintf(stderr, "reckon_cnode: bad --tls-verify (peer or none)\n");
                return 2;
            }
            cfg.tls_verify_none = strcmp(optarg, "none") == 0;
            break;
        case O_TLS_MIN:
            if (strcmp(optarg, "1.2") != 0 && strcmp(optarg, "1.3") != 0) {
                fprintf(stderr, "reckon_cnode: bad --tls-min-version (1.2 or 1.3)\n");
                return 2;
            }
            cfg.tls_min_version = strcmp(optarg, "1.3") == 0 ? 13 : 12;
            break;
        case O_VERSION: printf("reckon_cnode %s\n", RC_VERSION); return 0;
        case 'h':
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (cfg.tls_certfile == NULL &&
        (cfg.tls_keyfile || cfg.tls_cacertfile || cfg.tls_server_name || cfg.tls_min_version)) {
        fprintf(stderr, "reckon_cnode: --tls-* options need --tls-cert\n");
        return 2;
    }
    if (cookie == NULL && cookie_file != NULL) {
        if (read_cookie_file(cookie_file, cookie_buf, sizeof cookie_buf) != 0) {
            fprintf(stderr, "reckon_cnode: cannot read cookie file %s\n", cookie_file);
            return 1;
        }
        cookie = cookie_buf;
    }
    if (cookie == NULL)
        cookie = getenv("RECKON_CNODE_COOKIE");
    if (cookie == NULL || cookie[0] == '\0') {
        const char *home = getenv("HOME");
        char path[4096];
        if (home == NULL || snprintf(path, sizeof path, "%s/.erlang.cookie", home) >= (int)sizeof path ||
            (read_cookie_file(path, cookie_buf, sizeof cookie_buf) != 0 &&
             (access(path, F_OK) == 0 || create_cookie_file(path, cookie_buf, sizeof cookie_buf) != 0))) {
            fprintf(stderr, "reckon_cnode: no cookie: give --cookie, --cookie-file, "
                            "RECKON_CNODE_COOKIE or $HOME/.erlang.cookie\n");
            return 1;
        }
        cookie = cookie_buf;
    }
    cfg.cookie = cookie;
    cfg.seeds = seeds;
    cfg.nseeds = nseeds;
    cfg.scopes = scopes;
    cfg.nscopes = nscopes;

    rc_node *node = NULL;
    char err[512];
    if (rc_node_create(&node, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "reckon_cnode: cannot start: %s\n", err);
        return 1;
    }
    rc_http *http = NULL;
    if (http_addr != NULL) {
        /* A node with seeds is healthy only once it reached a node. */
        rc_http_config hc = {.addr = http_addr, .need_peer = nseeds > 0, .log_level = cfg.log_level};
        http = rc_http_start(node, &hc, err, sizeof err);
        if (http == NULL) {
            fprintf(stderr, "reckon_cnode: cannot start: %s\n", err);
            rc_node_stop(node);
            rc_node_run(node);
            rc_node_destroy(node);
            return 1;
        }
    }
    /* The one line on stdout: owners (the shim, scripts) wait for it. */
    printf("%s\n", rc_node_name(node));
    fflush(stdout);
    rc_node_run(node);
    /* The loop is done, so a request still in flight is refused at once
     * (rc_node_call) and the server thread can be joined. */
    rc_http_stop(http);
    rc_node_destroy(node);
    return 0;
}
