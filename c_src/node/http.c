/* http: the management endpoint; see http.h. */
#include "node/http.h"

#include "node/node.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MOD "http"

/* As many as the stats table holds (NODE_STATS_MAX), so none is cut off. */
enum { HTTP_STATS_CAP = 64 };

struct rc_http {
    rc_node *node;
    struct MHD_Daemon *daemon;
    rc_logger lg;
    rc_ratelimit log_budget; /* libmicrohttpd logs from its one thread */
    int need_peer;
    unsigned call_timeout_ms;
    unsigned port;
};

/* ------------------------------------------------------------ addresses */

static int parse_port(const char *s, unsigned *out)
{
    if (*s == '\0' || strlen(s) > 5)
        return -1;
    unsigned v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > 65535)
        return -1;
    *out = v;
    return 0;
}

int rc_http_parse_addr(const char *s, struct sockaddr_storage *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_s;
    size_t hlen;
    int v6 = s[0] == '[';
    if (v6) {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        hlen = (size_t)(close - s - 1);
        port_s = close + 2;
        s++;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - s);
        port_s = colon + 1;
    }
    unsigned port;
    if (hlen == 0 || hlen >= sizeof host || parse_port(port_s, &port) != 0)
        return -1;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    memset(out, 0, sizeof *out);
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

/* ------------------------------------------------------------- /metrics */

typedef struct text_buf {
    char *p;
    size_t len, cap;
    int overflow;
} text_buf;

static void put(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text_buf *b, const char *fmt, ...)
{
    if (b->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= b->cap - b->len) {
        b->overflow = 1;
        return;
    }
    b->len += (size_t)w;
}

/* The exposition format's metric names: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static int valid_name(const char *s)
{
    if (*s == '\0')
        return 0;
    for (const char *p = s; *p != '\0'; p++) {
        int alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':';
        if (!alpha && (p == s || *p < '0' || *p > '9'))
            return 0;
    }
    return 1;
}

/* HELP text escapes backslash and newline, and nothing else. */
static void put_help(text_buf *b, const char *help)
{
    for (const char *p = help; *p != '\0' && !b->overflow; p++) {
        if (*p == '\\')
            put(b, "\\\\");
        else if (*p == '\n')
            put(b, "\\n");
        else
            put(b, "%c", *p);
    }
}

char *rc_http_metrics_text(const rc_stat *st, size_t n, size_t *len)
{
    /* Each entry: its name three times (with prefix and suffix), its help
     * escaped (at most doubled) and the fixed words and number. */
    size_t cap = 1;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(st[i].name), hl = st[i].help ? strlen(st[i].help) : 0;
        cap += 3 * (nl + 40) + 2 * hl + 64;
    }
    text_buf b = {.p = malloc(cap), .cap = cap};
    if (b.p == NULL)
        return NULL;
    b.p[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!valid_name(st[i].name))
            continue;
        int counter = st[i].kind == RC_STAT_COUNTER;
        /* Counters end in _total, as the format's convention asks; the
         * error counters keep the `errors` grouping of stats/0. */
        char full[160];
        int w = snprintf(full, sizeof full, "reckon_cnode_%s%s%s", st[i].error ? "errors_" : "",
                         st[i].name, counter ? "_total" : "");
        if (w < 0 || (size_t)w >= sizeof full)
            continue;
        put(&b, "# HELP %s ", full);
        put_help(&b, st[i].help ? st[i].help : st[i].name);
        put(&b, "\n# TYPE %s %s\n%s %llu\n", full, counter ? "counter" : "gauge", full,
            (unsigned long long)st[i].value);
    }
    if (b.overflow) { /* the bound above is wrong: a bug, not a condition */
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* -------------------------------------------------------------- serving */

typedef struct stats_read {
    rc_stat st[HTTP_STATS_CAP];
    size_t n;
} stats_read;

/* On the loop thread: a copy of the counters for the server thread. */
static void read_stats(rc_node *n, void *ctx)
{
    stats_read *r = ctx;
    size_t total = rc_node_stats(n, r->st, HTTP_STATS_CAP);
    r->n = total < HTTP_STATS_CAP ? total : HTTP_STATS_CAP;
}

static uint64_t stat_value(const stats_read *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->st[i].name, name) == 0)
            return r->st[i].value;
    return 0;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO; /* libmicrohttpd closes the connection */
    }
    enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (ok == MHD_YES && status == MHD_HTTP_METHOD_NOT_ALLOWED)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (ok == MHD_YES)
        ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    return reply(c, status, "text/plain; charset=utf-8", (char *)text, strlen(text),
                 MHD_RESPMEM_PERSISTENT);
}

/* The counters, read on the loop; NULL with *why set to the status line's
 * body when they cannot be had. A loop that does not answer in time leaves
 * the copy to the loop, which frees it once it gets there. */
static stats_read *fetch_stats(rc_http *h, const char **why, unsigned *status)
{
    stats_read *r = malloc(sizeof *r);
    *status = MHD_HTTP_SERVICE_UNAVAILABLE;
    if (r == NULL) {
        *why = "out of memory\n";
        *status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        return NULL;
    }
    switch (node_call_timed(h->node, read_stats, r, h->call_timeout_ms)) {
    case RC_OK: return r;
    case RC_ETIMEOUT:
        LOG_W(&h->lg, MOD, "the node did not answer within %u ms", h->call_timeout_ms);
        *why = "node not answering\n";
        return NULL; /* r is the loop's now */
    case RC_ESTOPPED: *why = "stopping\n"; break;
    default:
        *why = "out of memory\n";
        *status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        break;
    }
    free(r);
    return NULL;
}

static enum MHD_Result serve_metrics(rc_http *h, struct MHD_Connection *c)
{
    const char *why = NULL;
    unsigned status = 0;
    stats_read *r = fetch_stats(h, &why, &status);
    if (r == NULL)
        return reply_text(c, status, why);
    size_t len = 0;
    char *text = rc_http_metrics_text(r->st, r->n, &len);
    free(r);
    if (text == NULL) {
        LOG_E(&h->lg, MOD, "cannot build the metrics page");
        return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len,
                 MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result serve_health(rc_http *h, struct MHD_Connection *c)
{
    const char *why = NULL;
    unsigned status = 0;
    stats_read *r = fetch_stats(h, &why, &status);
    if (r == NULL)
        return reply_text(c, status, why);
    uint64_t conns = stat_value(r, "connections");
    free(r);
    if (h->need_peer && conns == 0)
        return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no connection to any node\n");
    return reply_text(c, MHD_HTTP_OK, "ok\n");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    rc_http *h = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(h, c);
    if (strcmp(url, "/health") == 0)
        return serve_health(h, c);
    return reply_text(c, MHD_HTTP_NOT_FOUND, "not found: /metrics or /health\n");
}

/* libmicrohttpd's own complaints (a failed accept, a bad request) go to the
 * node's log, as warnings; a client can cause them at will, so at most 20
 * per 10 s. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    rc_http *h = cls;
    if (!RC_LOG_ENABLED(&h->lg, RC_LOG_WARNING))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned left_out = 0;
    int allow = rc_ratelimit_allow(&h->log_budget, (uint64_t)ts.tv_sec * 1000u +
                                                       (uint64_t)ts.tv_nsec / 1000000u,
                                   10000, 20, &left_out);
    if (left_out > 0)
        LOG_W(&h->lg, MOD, "%u more HTTP server messages left out", left_out);
    if (!allow)
        return;
    char line[512];
    if (vsnprintf(line, sizeof line, fmt, ap) < 0)
        return;
    line[strcspn(line, "\r\n")] = '\0';
    LOG_W(&h->lg, MOD, "%s", line);
}

rc_http *rc_http_start(rc_node *n, const rc_http_config *cfg, char *err, size_t errlen)
{
    struct sockaddr_storage sa;
    if (cfg->addr == NULL || rc_http_parse_addr(cfg->addr, &sa) != 0) {
        snprintf(err, errlen, "bad --http address '%s' (IPv4:PORT or [IPv6]:PORT)",
                 cfg->addr ? cfg->addr : "");
        return NULL;
    }
    rc_http *h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->node = n;
    h->need_peer = cfg->need_peer;
    h->call_timeout_ms = cfg->call_timeout_ms ? cfg->call_timeout_ms : 2000;
    rc_logger_init(&h->lg, (rc_log_level)cfg->log_level);
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* One server thread: a request waits for the loop (rc_node_call) for
     * microseconds, and a client that sends nothing costs a slot until the
     * timeout, never the loop's time. */
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(cfg->max_connections ? cfg->max_connections : 16), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(cfg->timeout_s ? cfg->timeout_s : 10), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)16384, MHD_OPTION_END);
    if (h->daemon == NULL) {
        snprintf(err, errlen, "cannot serve HTTP on %s (address in use or not local?)", cfg->addr);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info != NULL ? info->port : 0;
    /* Said with the port actually bound, so that a caller who asked for port
     * 0 (tests) can find it in the log. */
    char host[INET6_ADDRSTRLEN] = "?";
    const void *ip = sa.ss_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&sa)->sin6_addr
                                              : (const void *)&((struct sockaddr_in *)&sa)->sin_addr;
    (void)inet_ntop(sa.ss_family, ip, host, sizeof host);
    LOG_I(&h->lg, MOD, "serving /metrics and /health on %s%s%s:%u",
          sa.ss_family == AF_INET6 ? "[" : "", host, sa.ss_family == AF_INET6 ? "]" : "", h->port);
    return h;
}

unsigned rc_http_port(const rc_http *h) { return h->port; }

void rc_http_stop(rc_http *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
