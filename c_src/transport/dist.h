/* dist: the distribution transport. Owns the listen socket, the epmd
 * registration and every connection once its handshake is done. One libuv
 * loop drives all connections: non-blocking reads into a per-connection
 * buffer, 4-byte framing, ticks sent when idle and peers silent for
 * net_ticktime dropped, and output appended to a per-connection buffer that
 * is flushed with one writev per loop turn. Handshakes and outbound connects
 * (DNS, epmd lookup) each run on a thread of their own, at most
 * max_handshakes and max_dials of them at once. The layer above sees frames
 * and connection up/down through callbacks only. */
#ifndef RC_DIST_H
#define RC_DIST_H

#include "util/nodetab.h"
#include "transport/tls.h"
#include "util/log.h"

#include <ei.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct rc_dist rc_dist;
typedef struct rc_conn rc_conn;

typedef struct rc_dist_callbacks {
    void *ctx;
    void (*on_up)(void *ctx, rc_conn *c);
    /* Called once when a connection goes away, before it is freed. */
    void (*on_down)(void *ctx, rc_conn *c, const char *why);
    /* One data frame (payload starts with the pass-through tag 112; a frame
     * that came with a distribution header is handed on in that form). */
    void (*on_frame)(void *ctx, rc_conn *c, const char *payload, size_t len);
    /* An outbound connect to `node` failed (after logging). */
    void (*on_connect_failed)(void *ctx, const char *node, const char *why);
    /* Frames sent to `node` while its connection was being made were
     * dropped: it could not be reached (monitors of it are now void). */
    void (*on_unreachable)(void *ctx, const char *node);
} rc_dist_callbacks;

/* Back-pressure, every setting in one place. A connection is busy (its
 * senders wait, as on the BEAM's busy_dist_port, but its own peer is read
 * on) once more than busy_above bytes are unwritten, until it drains below
 * busy_below, and is dropped as too slow past max_output_bytes. Frames for a node whose connection a send
 * is making wait up to wait_max_bytes per node, for at most wait_max_nodes
 * nodes. Producer threads (rc_broadcast) wait once producer_queue_bytes are
 * queued for the loop. */
typedef struct rc_backpressure {
    size_t busy_above, busy_below, max_output_bytes;
    size_t wait_max_bytes, wait_max_nodes;
    size_t producer_queue_bytes;
} rc_backpressure;
void rc_backpressure_defaults(rc_backpressure *bp);

typedef struct rc_dist_config {
    rc_nodetab *nodes;      /* the node's table: connections are kept by index */
    const char *alive;      /* name part */
    const char *node_name;  /* alive@host */
    const char *cookie;
    size_t max_message_bytes;
    rc_backpressure bp;
    unsigned net_ticktime_s;
    unsigned handshake_timeout_ms;
    int no_epmd; /* do not register: reachable only by peers told our port */
    const char *listen_addr; /* NULL: every interface */
    unsigned port_min, port_max; /* 0, 0: an ephemeral port */
    /* Inbound handshakes running at once, and so their threads (one cut
     * off counts until its thread has ended); 0: 128. */
    size_t max_handshakes;
    /* Outbound connects running at once (their threads); 0: 16. Four times
     * as many more may wait; beyond that rc_dist_connect refuses. */
    size_t max_dials;
    /* NULL: plain TCP. Else every connection, both ways, is TLS from its
     * first byte, as with a BEAM's -proto_dist inet_tls; epmd stays plain. */
    const rc_tls_config *tls;
} rc_dist_config;

typedef struct rc_dist_stats {
    uint64_t frames_in, frames_out, bytes_in, bytes_out, ticks_in, ticks_out;
    uint64_t conns_accepted, conns_connected, conns_closed;
    uint64_t err_handshake, err_frame_too_big, err_output_overflow, err_tick_timeout, err_io;
    uint64_t err_dist_header; /* a frame whose distribution header could not be decoded */
    uint64_t read_pauses;       /* a connection not read while its sends wait on a busy one */
    /* a connection's turn ended early: it was handed its whole share of
     * decoded bytes (frames left wait for the next turn) */
    uint64_t dispatch_budget_spent;
    uint64_t busy_destinations; /* times a connection's output passed the busy mark */
    uint64_t connect_failed; /* outbound attempts (e.g. to departed nodes) */
    uint64_t handshakes_evicted; /* strangers cut off to make room */
    uint64_t threads_unavailable; /* a handshake thread the system refused */
    uint64_t dials_refused;       /* connects refused: too many running and waiting */
    uint64_t accepts_shed;       /* refused at the descriptor limit */
    uint64_t send_connects;      /* connections started by a send */
    uint64_t dropped_unreachable; /* frames for a node that could not be reached */
    uint64_t dropped_queue_full;  /* frames refused while waiting for a connection */
} rc_dist_stats;

/* Listens (on listen_addr and a port of the range, or anywhere on an
 * ephemeral port) and registers with epmd. The node name is only
 * reachable after this returns 0. */
int rc_dist_start(rc_dist **out, uv_loop_t *loop, const rc_logger *lg, const rc_dist_config *cfg,
                  const rc_dist_callbacks *cb, char *err, int errlen);
uint32_t rc_dist_creation(const rc_dist *d);
const char *rc_dist_node_name(const rc_dist *d);

/* Starts connecting to `node` unless connected or already connecting; the
 * connect may wait for one of the cfg.max_dials threads (it counts as
 * connecting meanwhile). RC_OK; RC_EFULL if too many connects run and wait
 * already (try later); RC_EBADARG for this node or a name too long;
 * RC_ESTOPPED; RC_ENOMEM. */
int rc_dist_connect(rc_dist *d, const char *node);
int rc_dist_is_connecting(const rc_dist *d, const char *node);
/* The connection to a node, by its index in the node table, or NULL. */
rc_conn *rc_dist_conn(const rc_dist *d, uint32_t node);
rc_conn *rc_dist_find(rc_dist *d, const char *node);
size_t rc_dist_connection_count(const rc_dist *d);
/* Visits every live connection. */
void rc_dist_foreach(rc_dist *d, void (*fn)(rc_conn *c, void *arg), void *arg);

/* Queues one frame: 112, ctrl (with version byte), then msg if not NULL
 * (or, on a connection with distribution headers, the same terms behind a
 * header, atoms cached).
 * Returns 0, or -1 if the connection was dropped (output limit reached). */
int rc_dist_send(rc_dist *d, rc_conn *c, const char *ctrl, size_t ctrl_len, const char *msg,
                 size_t msg_len);
/* The same with the frame body given in parts (parts[0] is the control
 * term): event bytes are copied once, straight into the output buffer. */
struct iovec;
int rc_dist_sendv(rc_dist *d, rc_conn *c, const struct iovec *parts, int nparts);
/* Sends to a node (its index in the node table), as a BEAM sender does: on
 * its connection, or, if there is none, a connection is started (through
 * epmd) and the frame waits in order, bounded per node, until it is up. 0
 * if sent or waiting; -1 if dropped (counted, and logged at a limited
 * rate). Waiting frames that can never go are dropped and reported through
 * on_unreachable. */
int rc_dist_send_node(rc_dist *d, uint32_t node, const struct iovec *parts, int nparts);
/* A send to the pid `to` on `node` (its node; rc_dist_send_node with the
 * control term {2, '', To}) of a message prepared for sending to many (one
 * event fanned out): on connections with distribution headers its encoding
 * is made once and spliced into each frame. */
struct rc_pmsg;
int rc_dist_send_msg_node(rc_dist *d, uint32_t node, const erlang_pid *to,
                          struct rc_pmsg *m);
/* The two sends above shaped as the process layer's transport callbacks
 * (dist: the rc_dist), so that layer reaches the connections directly. */
int rc_dist_sendv_cb(void *dist, uint32_t node, const struct iovec *parts, int nparts);
int rc_dist_sendm_cb(void *dist, uint32_t node, const erlang_pid *to, struct rc_pmsg *m);
void rc_dist_close(rc_dist *d, rc_conn *c, const char *why);

/* Bytes queued on all connections and not yet written to their sockets. */
size_t rc_dist_output_pending(const rc_dist *d);
/* The busy destination (output past the busy mark; a node index) that a
 * send made outside frame dispatch hit since the last call, or
 * RC_NODE_NONE; clears it. A producer then waits for that destination alone
 * (rc_dist_is_busy), as a BEAM process waits on a busy distribution port. */
uint32_t rc_dist_take_busy_hit(rc_dist *d);
int rc_dist_is_busy(rc_dist *d, uint32_t node);
/* 1 if sending `bytes` more to node now would make the sender wait: its
 * connection (or what waits for one) is busy or would pass the busy mark. */
int rc_dist_would_wait(rc_dist *d, uint32_t node, size_t bytes);
const char *rc_conn_peer(const rc_conn *c);
uint32_t rc_conn_node(const rc_conn *c);
uint32_t rc_conn_peer_creation(const rc_conn *c);
const rc_dist_stats *rc_dist_get_stats(const rc_dist *d);

/* Stops accepting, closes every connection and the epmd registration. The
 * loop then ends once in-flight handshakes return (bounded by their timeout). */
void rc_dist_stop(rc_dist *d);
/* Frees what is left; call after the loop has ended. */
void rc_dist_free(rc_dist *d);

#endif
