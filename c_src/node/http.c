/* http: the management endpoint; see http.h. */
#include "node/http.h"

#include "node/node.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MOD "http"

/* As many as the stats table holds (NODE_STATS_MAX), so none is cut off. */
enum { HTTP_STATS_CAP = 64 };

/* One open HTTP connection, as the server thread tracks it to hold each
 * to its deadline and to the budget. */
typedef struct http_conn {
    struct MHD_Connection *c; /* NULL: the slot is free */
    int fd;
    uint64_t since_ms; /* accepted, or (answered) its answer queued */
    uint64_t born_ms;  /* accepted */
    int reserved;      /* accepted and handed over; libmicrohttpd has yet to
                        * take it up (on_connection) */
    int answered;      /* its request came in whole and has its answer */
    int cut;           /* shut down by us; libmicrohttpd has yet to close it */
    struct sockaddr_storage peer;
} http_conn;

struct rc_http {
    rc_node *node;
    struct MHD_Daemon *daemon;
    rc_logger lg;
    rc_ratelimit log_budget; /* every line from the server thread */
    int need_peer;
    unsigned call_timeout_ms;
    unsigned request_timeout_ms;
    unsigned budget; /* connections held before the oldest unanswered is cut */
    unsigned port;
    /* Server thread only (and rc_http_stop once it is joined). */
    http_conn *conns;
    size_t nconns; /* slots: libmicrohttpd's own connection limit */
    pthread_t thread;
    int listen_fd;
    uint64_t accept_pause_until; /* accept failed (no descriptors?) */
    int epoll_fd; /* libmicrohttpd's; readable when it has work */
    int wake_fd;  /* eventfd: rc_http_stop wakes the thread */
    atomic_int stop;
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
    /* One request per connection: a kept-alive connection would be one a
     * client could hold idle between requests, out of the deadline's
     * reach, and probes and scrapers open a new one each time anyway. */
    if (ok == MHD_YES)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
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
    char *counters = rc_http_metrics_text(r->st, r->n, &len);
    free(r);
    char *text = NULL;
    /* Which build answers: a series of labels, always 1, as exporters do. */
    int w = counters == NULL ? -1
                             : asprintf(&text,
                                        "# HELP reckon_cnode_build_info The node's version and the "
                                        "Erlang/OTP it was built against.\n"
                                        "# TYPE reckon_cnode_build_info gauge\n"
                                        "reckon_cnode_build_info{version=\"%s\",otp_release=\"%s\","
                                        "erl_interface=\"%s\"} 1\n%s",
                                        RC_VERSION, RC_BUILD_OTP, RC_BUILD_EI, counters);
    free(counters);
    if (w < 0) {
        LOG_E(&h->lg, MOD, "cannot build the metrics page");
        return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    len = (size_t)w;
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

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static enum MHD_Result route(rc_http *h, struct MHD_Connection *c, const char *url,
                             const char *method)
{
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(h, c);
    if (strcmp(url, "/health") == 0)
        return serve_health(h, c);
    return reply_text(c, MHD_HTTP_NOT_FOUND, "not found: /metrics or /health\n");
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
    enum MHD_Result ok = route(h, c, url, method);
    /* The request is in and answered: from now on the connection is not
     * one a slow client holds, and it gets a deadline of its own to take
     * the answer (counted from here, as the loop may have kept the
     * answer waiting for call_timeout_ms). */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    http_conn *hc = ci != NULL ? ci->socket_context : NULL;
    if (hc != NULL) {
        hc->answered = 1;
        hc->since_ms = now_ms();
    }
    return ok;
}

/* A line from the server thread, at most 20 per 10 s: clients can cause
 * them at will. 0 if this one is to be left out. */
static int log_allowed(rc_http *h)
{
    if (!RC_LOG_ENABLED(&h->lg, RC_LOG_WARNING))
        return 0;
    unsigned left_out = 0;
    int allow = rc_ratelimit_allow(&h->log_budget, now_ms(), 10000, 20, &left_out);
    if (left_out > 0)
        LOG_W(&h->lg, MOD, "%u more HTTP server messages left out", left_out);
    return allow;
}

/* libmicrohttpd's own complaints (a bad request, a failed read) go to the
 * node's log, as warnings. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    rc_http *h = cls;
    if (!log_allowed(h))
        return;
    char line[512];
    if (vsnprintf(line, sizeof line, fmt, ap) < 0)
        return;
    line[strcspn(line, "\r\n")] = '\0';
    LOG_W(&h->lg, MOD, "%s", line);
}

/* ------------------------------------------------- slow clients

   libmicrohttpd's own timeout counts idleness, so a client that sends a
   byte now and then keeps its connection for ever, and its connection
   limit then turns away everybody else: a handful of such clients would
   silence /health. So every connection is held to a deadline, whatever it
   sends (request_timeout_ms to send its request, as long again to take its
   answer), and past the budget of open connections one that has not sent
   its request yet is cut off: the oldest of the address that holds most of
   them, so a prober that sends its request at once gets in and is
   answered behind any number of slow ones.

   The server thread accepts connections itself and hands them to
   libmicrohttpd, which would otherwise accept past its limit only to
   close at once: here a connection beyond every slot waits in the listen
   queue instead, with its request ready to be read when it is taken in.
   Room is made after libmicrohttpd's turn, not as a connection comes in,
   and a connection younger than GRACE_MS is never the one cut: its client
   may not have been scheduled to write its request yet, and an attacker
   who opens connections without pause would otherwise make every honest
   one the oldest in turn. */

enum { GRACE_MS = 250, ACCEPT_PAUSE_MS = 100 };

static uint64_t grace_ms(const rc_http *h)
{
    return h->request_timeout_ms / 2 < GRACE_MS ? h->request_timeout_ms / 2 : GRACE_MS;
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, sizeof(struct in_addr)) == 0;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return 1;
}

/* Still waiting for its request: what a slow client holds. */
static int pending(const http_conn *hc) { return hc->c != NULL && !hc->cut && !hc->answered; }

/* Shuts the socket down; libmicrohttpd, which owns it, sees the end of the
 * stream on its next turn and closes it. The descriptor stays open (and so
 * cannot be another's) until libmicrohttpd says the connection is closed. */
static void cut(rc_http *h, http_conn *hc, const char *why)
{
    hc->cut = 1;
    (void)shutdown(hc->fd, SHUT_RDWR);
    if (log_allowed(h))
        LOG_W(&h->lg, MOD, "cut off an HTTP client: %s", why);
}

static void make_room(rc_http *h, uint64_t now)
{
    size_t held = 0;
    for (size_t i = 0; i < h->nconns; i++)
        held += h->conns[i].c != NULL && !h->conns[i].cut;
    for (; held > h->budget; held--) {
        http_conn *victim = NULL;
        size_t victim_count = 0;
        for (size_t i = 0; i < h->nconns; i++) {
            http_conn *hc = &h->conns[i];
            if (!pending(hc) || now - hc->born_ms < grace_ms(h))
                continue;
            size_t count = 0;
            for (size_t j = 0; j < h->nconns; j++)
                count += pending(&h->conns[j]) && same_addr(&h->conns[j].peer, &hc->peer);
            if (victim == NULL || count > victim_count ||
                (count == victim_count && hc->born_ms < victim->born_ms)) {
                victim = hc;
                victim_count = count;
            }
        }
        if (victim == NULL)
            return; /* all answered or new: they end, or age (wait_ms) */
        cut(h, victim, "too many connections, and it had not sent its request");
    }
}

static void cut_overdue(rc_http *h, uint64_t now)
{
    for (size_t i = 0; i < h->nconns; i++) {
        http_conn *hc = &h->conns[i];
        if (hc->c != NULL && !hc->cut && now - hc->since_ms >= h->request_timeout_ms)
            cut(h, hc, hc->answered ? "it did not take its answer in time"
                                    : "it did not send its request in time");
    }
}

static http_conn *free_slot(rc_http *h)
{
    for (size_t i = 0; i < h->nconns; i++)
        if (h->conns[i].c == NULL && !h->conns[i].reserved)
            return &h->conns[i];
    return NULL;
}

/* libmicrohttpd tells of each connection it takes (from accept_ready) and
 * of each it has closed. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    rc_http *h = cls;
    http_conn *hc = *socket_context;
    /* The slot accept_ready reserved for this socket, found by its
     * descriptor: libmicrohttpd gives the connection no other tie to the
     * accept. */
    const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (hc == NULL)
        for (size_t i = 0; fd != NULL && i < h->nconns && hc == NULL; i++)
            if (h->conns[i].reserved && h->conns[i].fd == fd->connect_fd)
                hc = &h->conns[i];
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        /* Also for one it gave up on before it was taken up. */
        if (hc != NULL)
            memset(hc, 0, sizeof *hc);
        *socket_context = NULL;
        return;
    }
    if (hc == NULL) {
        /* Not one of ours (cannot happen): refused rather than held out of
         * sight of the deadline. */
        if (fd != NULL)
            (void)shutdown(fd->connect_fd, SHUT_RDWR);
        *socket_context = NULL;
        return;
    }
    hc->reserved = 0;
    hc->c = c;
    *socket_context = hc;
}

/* Takes in what the listen queue holds, as long as there is a slot. */
static void accept_ready(rc_http *h, uint64_t now)
{
    http_conn *hc;
    while ((hc = free_slot(h)) != NULL) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(h->listen_fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                /* Out of descriptors, most likely: the queue is left alone
                 * for a while rather than polled in a busy loop. */
                if (log_allowed(h))
                    LOG_W(&h->lg, MOD, "cannot accept an HTTP connection: %s", strerror(errno));
                h->accept_pause_until = now + ACCEPT_PAUSE_MS;
            }
            return;
        }
        memset(hc, 0, sizeof *hc);
        hc->reserved = 1;
        hc->fd = fd;
        hc->since_ms = hc->born_ms = now;
        if (plen <= sizeof hc->peer)
            memcpy(&hc->peer, &peer, plen);
        /* libmicrohttpd may take the connection up at once or on its next
         * turn (on_connection); it closes the socket itself when it cannot
         * take it. */
        if (MHD_add_connection(h->daemon, fd, (struct sockaddr *)&peer, plen) != MHD_YES) {
            memset(hc, 0, sizeof *hc);
            if (log_allowed(h))
                LOG_W(&h->lg, MOD, "libmicrohttpd did not take an HTTP connection");
        }
    }
}

/* How long the thread may sleep: until libmicrohttpd has work, the next
 * deadline or newcomer's grace ends, or accepting resumes; -1 for as long
 * as it likes. */
static int wait_ms(rc_http *h, uint64_t now)
{
    MHD_UNSIGNED_LONG_LONG mt = 0;
    uint64_t wait = UINT64_MAX;
    if (MHD_get_timeout(h->daemon, &mt) == MHD_YES)
        wait = (uint64_t)mt;
    if (h->accept_pause_until > now && h->accept_pause_until - now < wait)
        wait = h->accept_pause_until - now;
    for (size_t i = 0; i < h->nconns; i++) {
        const http_conn *hc = &h->conns[i];
        if (hc->c == NULL || hc->cut)
            continue;
        uint64_t end = hc->since_ms + h->request_timeout_ms;
        if (pending(hc) && hc->born_ms + grace_ms(h) > now)
            end = hc->born_ms + grace_ms(h);
        uint64_t left = end > now ? end - now : 0;
        if (left < wait)
            wait = left;
    }
    if (wait == UINT64_MAX)
        return -1;
    return wait > (uint64_t)INT_MAX ? INT_MAX : (int)wait;
}

static void *serve(void *arg)
{
    rc_http *h = arg;
    while (!atomic_load(&h->stop)) {
        uint64_t now = now_ms();
        struct pollfd pf[3] = {{.fd = h->epoll_fd, .events = POLLIN},
                               {.fd = h->wake_fd, .events = POLLIN},
                               {.fd = h->listen_fd, .events = POLLIN}};
        /* With every slot taken, or accept failing, the listen queue is
         * where newcomers wait. */
        nfds_t nfds = free_slot(h) != NULL && now >= h->accept_pause_until ? 3 : 2;
        if (poll(pf, nfds, wait_ms(h, now)) < 0 && errno != EINTR && log_allowed(h))
            LOG_W(&h->lg, MOD, "poll: %s", strerror(errno));
        now = now_ms();
        if (now >= h->accept_pause_until)
            accept_ready(h, now);
        (void)MHD_run(h->daemon);
        now = now_ms();
        make_room(h, now);
        cut_overdue(h, now);
    }
    return NULL;
}

/* The listening socket, bound and listening; -1 with errno set. */
static int listen_on(const struct sockaddr_storage *sa)
{
    int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    socklen_t len = sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    /* SO_REUSEADDR: a restarted node takes its port back at once, past its
     * predecessor's connections in TIME_WAIT. IPV6_V6ONLY: [::]:PORT means
     * IPv6, as it says. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (sa->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
        bind(fd, (const struct sockaddr *)sa, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
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
    h->request_timeout_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : 5000;
    h->budget = cfg->max_connections ? cfg->max_connections : 16;
    /* Room is made by scanning every slot: a management endpoint needs no
     * more than this. */
    if (h->budget > 256)
        h->budget = 256;
    /* Slots beyond the budget, so that a newcomer is taken in (and room is
     * made for it) rather than left in the listen queue behind the slow
     * ones; twice the budget leaves room for those cut off and not yet
     * closed. */
    h->nconns = 2 * (size_t)h->budget;
    h->epoll_fd = -1;
    atomic_init(&h->stop, 0);
    rc_logger_init(&h->lg, (rc_log_level)cfg->log_level);
    h->conns = calloc(h->nconns, sizeof *h->conns);
    h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    h->listen_fd = listen_on(&sa);
    if (h->listen_fd < 0) {
        snprintf(err, errlen, "cannot serve HTTP on %s: %s", cfg->addr, strerror(errno));
        goto fail;
    }
    if (h->conns == NULL || h->wake_fd < 0) {
        snprintf(err, errlen, "cannot start the HTTP server: %s",
                 h->conns == NULL ? "out of memory" : strerror(errno));
        goto fail;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(h->listen_fd, (struct sockaddr *)&bound, &blen) != 0) {
        snprintf(err, errlen, "cannot serve HTTP on %s: %s", cfg->addr, strerror(errno));
        goto fail;
    }
    h->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    /* The server's thread is ours, not libmicrohttpd's, so that it can hold
     * connections to their deadlines between libmicrohttpd's turns; epoll,
     * since the node's descriptors may be numbered past select's limit. */
    unsigned flags = MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG;
    /* libmicrohttpd's idle timeout stays as a backstop, a little past the
     * deadline, in case a connection were ever out of the table. */
    unsigned idle_s = h->request_timeout_ms / 1000u + 2u;
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)h->nconns, MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384, MHD_OPTION_END);
    if (h->daemon == NULL) {
        snprintf(err, errlen, "cannot serve HTTP on %s: libmicrohttpd does not start", cfg->addr);
        goto fail;
    }
    const union MHD_DaemonInfo *ep = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (ep == NULL || ep->epoll_fd < 0) {
        snprintf(err, errlen, "cannot serve HTTP on %s: libmicrohttpd has no epoll", cfg->addr);
        goto fail;
    }
    h->epoll_fd = ep->epoll_fd;
    int e = pthread_create(&h->thread, NULL, serve, h);
    if (e != 0) {
        snprintf(err, errlen, "cannot start the HTTP server's thread: %s", strerror(e));
        goto fail;
    }
    /* Said with the port actually bound, so that a caller who asked for port
     * 0 (tests) can find it in the log. */
    char host[INET6_ADDRSTRLEN] = "?";
    const void *ip = sa.ss_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&sa)->sin6_addr
                                              : (const void *)&((struct sockaddr_in *)&sa)->sin_addr;
    (void)inet_ntop(sa.ss_family, ip, host, sizeof host);
    LOG_I(&h->lg, MOD, "serving /metrics and /health on %s%s%s:%u",
          sa.ss_family == AF_INET6 ? "[" : "", host, sa.ss_family == AF_INET6 ? "]" : "", h->port);
    return h;
fail:
    if (h->daemon != NULL)
        MHD_stop_daemon(h->daemon);
    if (h->listen_fd >= 0)
        close(h->listen_fd);
    if (h->wake_fd >= 0)
        close(h->wake_fd);
    free(h->conns);
    free(h);
    return NULL;
}

unsigned rc_http_port(const rc_http *h) { return h->port; }

void rc_http_stop(rc_http *h)
{
    if (h == NULL)
        return;
    atomic_store(&h->stop, 1);
    uint64_t one = 1;
    /* Cannot fail short of a full counter, which a second write would not
     * make any fuller: the thread is woken either way. */
    ssize_t w = write(h->wake_fd, &one, sizeof one);
    (void)w;
    pthread_join(h->thread, NULL);
    /* The thread is gone, so the connection table is this thread's while
     * libmicrohttpd closes what is left (and says so, on_connection). */
    MHD_stop_daemon(h->daemon);
    close(h->listen_fd);
    close(h->wake_fd);
    free(h->conns);
    free(h);
}
