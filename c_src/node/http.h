/* http: the optional management endpoint (`--http ADDR:PORT`), served by
 * libmicrohttpd on a thread of its own:
 *   GET /metrics  the node's counters (rc_node_stats) in the Prometheus text
 *                 exposition format 0.0.4;
 *   GET /health   200 "ok" while the node runs and, when need_peer is set
 *                 (the node was given seeds), has at least one connection;
 *                 503 with the reason otherwise.
 * The server thread reads the node only through node_call_timed, so the
 * loop's state is touched on the loop thread alone, and a loop that does not
 * answer within call_timeout_ms gets 503 "node not answering" rather than a
 * hung server. Slow clients cannot keep it from answering: each
 * connection has a deadline, and one that has not sent its request makes
 * room for a newcomer (see request_timeout_ms and max_connections). It has
 * no authentication: bind it to loopback or a management network.
 *
 * Threading: rc_http_start and rc_http_stop are called from the thread that
 * owns the node, outside the loop (before rc_node_run, after it returned);
 * rc_http_stop must come before rc_node_destroy. */
#ifndef RC_HTTP_H
#define RC_HTTP_H

#include "reckon_cnode.h"

#include <stddef.h>

typedef struct rc_http rc_http;

typedef struct rc_http_config {
    const char *addr;         /* "IPv4:PORT" or "[IPv6]:PORT"; port 0 = any free */
    int need_peer;            /* /health is 503 while the node has no connection */
    /* Connections held at once; past it a new one cuts off the oldest that
     * has not sent its request yet (of the address holding most); 0: 16,
     * at most 256. */
    unsigned max_connections;
    /* A connection has this long to send its whole request, however it
     * trickles, and as long again to take its answer; 0: 5000. */
    unsigned request_timeout_ms;
    unsigned call_timeout_ms; /* how long a request waits for the loop; 0: 2000 */
    int log_level;            /* as rc_node_config.log_level */
} rc_http_config;

/* Parses "ADDR:PORT" into a socket address; 0, or -1 if it is not one. */
struct sockaddr_storage;
int rc_http_parse_addr(const char *s, struct sockaddr_storage *out);

/* Listens and starts the server thread; NULL with the reason in err. */
rc_http *rc_http_start(rc_node *n, const rc_http_config *cfg, char *err, size_t errlen);
/* The port it listens on (the one chosen when asked for port 0). */
unsigned rc_http_port(const rc_http *h);
/* Closes the listener and every connection, and joins the thread. */
void rc_http_stop(rc_http *h);

/* The /metrics page for these counters; a malloc'd string (the caller frees
 * it), NULL when out of memory. *len gets its length. Any thread. */
char *rc_http_metrics_text(const rc_stat *st, size_t n, size_t *len);

#endif
