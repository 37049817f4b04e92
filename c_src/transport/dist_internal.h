/* dist_internal: what the files of the transport share. Not for use
 * outside c_src/transport.
 *   dist.c         lifecycle: start, stop, free
 *   dist_jobs.c    handshake jobs and their threads, dialling, peer sets
 *   dist_listen.c  the listening socket and accepting
 *   dist_conn.c    one connection: read, frames, flush, close, ticks
 *   dist_send.c    sends, busy marks, frames waiting for a connection
 *   conn_io.c      (conn_io.h) a connection's byte stream, plain or TLS
 * Threads: a handshake thread owns its hs_job until it puts the job on the
 * done list (done_mu); the sets `pending`, `up` and `accepting` are shared
 * under pending_mu; struct rc_dist groups its fields so. */
#ifndef RC_DIST_INTERNAL_H
#define RC_DIST_INTERNAL_H

#include "transport/dist.h"

#include "transport/conn_io.h"
#include "codec/ctrl.h"
#include "codec/term_read.h"
#include "transport/dist_hdr.h"
#include "transport/epmd.h"
#include "transport/frame.h"
#include "transport/handshake.h"
#include "transport/sockio.h"
#include "transport/waitq.h"
#include "util/be.h"
#include "util/bytebuf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uthash.h>

#define MOD "dist"
/* A name that may wait for its connection fits the waiting queue. */
_Static_assert(HS_MAX_NODE <= RC_WAITQ_NODE_MAX, "node names longer than the waiting queue's");
/* Read at most this much per connection per loop turn so one busy peer
 * cannot starve the others. */
#define READ_BUDGET_PER_TURN (4u << 20)
/* And hand up at most this much per connection per loop turn, counted in
 * what the layers above are given: with the atom cache a 2-byte reference
 * stands for up to 1,023 bytes of atom, so a budget of wire bytes alone let
 * one peer hold the loop for seconds with frames that expand a thousandfold.
 * A frame is never split, so one turn can go over by one frame, itself
 * bounded by max_message_bytes. */
#define DISPATCH_BUDGET_PER_TURN (4u << 20)
#define READ_CHUNK (64u << 10)
/* Back-pressure per destination, as the BEAM's busy_dist_port (the marks
 * are in cfg.bp): the connection whose frame was being dispatched when a
 * send hit another busy destination stops being read (its peer is the
 * sender) until that destination drains; every other connection keeps
 * flowing. A connection is never paused on its own busy output. */
/* Buffer capacity a connection keeps when empty at a tick. */
#define TRIM_KEEP ((size_t)256 << 10)
/* How long the listener rests when descriptors run out. */
#define ACCEPT_PAUSE_MS 250u
#define DROP_WINDOW_MS 10000u
#define DROP_LINES 10u

struct rc_conn {
    rc_dist *dist;
    int fd;      /* the socket, for the poll handle; io owns it */
    conn_io *io; /* its byte stream: plain TCP or TLS */
    uv_poll_t poll;
    int poll_events;
    char peer[HS_MAX_NODE];
    uint32_t peer_creation;
    uint64_t peer_flags;
    bytebuf in;
    bytebuf out;
    /* Set when the peer took DIST_HDR_ATOM_CACHE: every frame then has a
     * distribution header, each direction its own atom cache. */
    dist_hdr_out *hdr_out;
    dist_hdr_in *hdr_in;
    bytebuf plain; /* an incoming frame decoded to its pass-through form */
    uint64_t last_read_ms;
    uint64_t last_write_ms;
    int dirty;
    int closing;
    int busy;             /* output above bp.busy_above, until below bp.busy_below */
    rc_conn *blocked_on;  /* not read until this busy connection drains */
    int resume;           /* unblocked: dispatch what is buffered at the next check */
    uint64_t budget_turn; /* the loop turn `spent` counts for */
    size_t spent;         /* handed up in that turn (DISPATCH_BUDGET_PER_TURN) */
    rc_conn *next_dirty;
    uint32_t node;           /* the peer's index in the node table */
    rc_conn *prev, *next;    /* every connection, for the walks */
};

/* A set of node names the handshake threads read (under pending_mu). */
typedef struct name_set {
    char (*v)[HS_MAX_NODE];
    size_t n, cap;
} name_set;

/* An outbound connect or inbound handshake, each on a thread of its own:
 * nothing one peer does (a silent socket, a slow epmd) holds a resource
 * another peer's handshake needs. Threads are bounded by what is in flight:
 * a job waits in its list until a thread is free for it. The job goes back
 * to the loop through the done list; only the loop frees it. */
typedef struct hs_job {
    rc_dist *dist;
    int outbound;
    int started;   /* has its thread (or its failure to get one is on the done list) */
    int listed;    /* in its job_list */
    int no_thread; /* no thread could be made for it: err says why */
    int joinable;  /* its thread is joined when the job comes back */
    pthread_t thread;
    int fd;
    rc_tls *tls; /* the session once TLS is up, handed to the connection */
    int tls_failed; /* the TLS handshake itself failed: a certificate or
                     * configuration matter the operator must act on */
    char node[HS_MAX_NODE]; /* outbound target */
    hs_result result;
    int ok;
    char err[256];
    struct hs_job *next;              /* done list */
    struct hs_job *in_prev, *in_next; /* its job_list, oldest first */
    UT_hash_handle hh; /* outbound jobs by node, to avoid duplicate connects */
} hs_job;

typedef struct job_list {
    hs_job *head, *tail;
    size_t n;
} job_list;

struct rc_dist {
    /* ---- Set by rc_dist_start, read-only after: the handshake threads
     * read them too. */
    uv_loop_t *loop;
    const rc_logger *lg;
    rc_dist_config cfg;
    char alive[256];
    char node_name[HS_MAX_NODE];
    char cookie[1024];
    rc_dist_callbacks cb;
    uint32_t creation;
    rc_tls_ctx *tls_ctx; /* NULL: plain TCP */

    /* ---- Shared with the handshake threads, under done_mu. */
    /* Finished jobs, handed from their threads to the loop. */
    uv_async_t done_async;
    pthread_mutex_t done_mu;
    hs_job *done;

    /* ---- Shared with the handshake threads, under pending_mu. */
    pthread_mutex_t pending_mu;
    /* Outbound connects in flight, by node name (the `connecting` hash
     * below belongs to the loop). */
    name_set pending;
    /* Connected peers, for the same readers (an acceptor answers alive). */
    name_set up;
    /* Peers whose inbound handshake we said ok to and that are not up yet:
     * we do not dial them meanwhile (net_kernel makes the same decisions in
     * one process; here they are made under pending_mu). */
    name_set accepting;

    /* ---- The loop thread's alone. */
    /* The listener (dist_listen.c). At the descriptor limit: a spare
     * descriptor to accept-and-close with, the listener paused for a
     * while, and a log line per period at most. */
    int listen_fd;
    uint16_t listen_port;
    int epmd_fd;
    uv_poll_t listen_poll;
    int reserve_fd;
    uv_timer_t accept_timer;
    int accept_paused;
    uint64_t shed_since_log, last_shed_log_ms;
    /* Connections (dist_conn.c), by the peer's node index (cfg.nodes): a
     * send indexes an array. The list holds the same connections for the
     * walks. */
    rc_conn **by_node;
    uint32_t by_node_cap;
    rc_conn *conns;
    size_t nconns;
    uv_check_t flush_check;
    uv_timer_t tick_timer;
    rc_conn *dirty_head; /* connections with output to flush this turn */
    /* Keeps the loop from sleeping while a connection has input it did not
     * get to in its turn: frames past its dispatch budget, or decrypted
     * bytes a TLS session holds. Stopped by the first check that finds
     * nothing left to come back for. */
    uv_idle_t spin;
    int any_resume;
    uint64_t turn; /* loop turns, counted at each check */
    rc_conn *dispatching; /* whose frame is being handled right now */
    /* Sends (dist_send.c). */
    size_t out_pending; /* sum of every connection's unwritten output */
    /* Busy destination hit by a send outside dispatch (a node index). */
    uint32_t busy_hit;
    rc_waitq *waitq;       /* frames for nodes a send is connecting to */
    dist_hdr_scratch hdr_scratch;
    rc_ratelimit drop_log; /* lines about frames dropped for unreachable nodes */
    /* Handshake jobs (dist_jobs.c). */
    hs_job *connecting;  /* outbound jobs by node, waiting or dialling */
    size_t jobs_in_flight; /* threads not yet reaped by the loop */
    /* Inbound handshakes, running or waiting for a thread, oldest first.
     * Beyond the cap the oldest is cut off (its socket shut down, or closed
     * if it never had a thread) and leaves the list at once, so strangers
     * cannot pile up; its thread still counts in in_threads until the loop
     * reaps it, and no new one starts while in_threads is at the cap. */
    job_list inbound;
    size_t in_threads;
    /* Outbound connects waiting for one of cfg.max_dials threads; beyond
     * DIAL_QUEUE_FACTOR times that many waiting, a connect is refused. */
    job_list dials;
    size_t dials_running;
    rc_ratelimit thread_log; /* lines about threads that could not be made */
    /* Lines that strangers can cause (failed handshakes): a budget per
     * window, then one line saying how many were left out. */
    rc_ratelimit stranger_log;
    int stopping;
    rc_dist_stats stats;
};

/* dist_conn.c */
void dist_conn_on_poll(uv_poll_t *h, int status, int events);
void dist_update_poll(rc_dist *d, rc_conn *c);
void dist_conn_flush(rc_dist *d, rc_conn *c);
void dist_conn_read(rc_dist *d, rc_conn *c);
void dist_on_flush_check(uv_check_t *h);
void dist_on_tick_timer(uv_timer_t *t);
/* dist_send.c */
void dist_mark_dirty(rc_dist *d, rc_conn *c);
void dist_unblock_waiters(rc_dist *d, rc_conn *dest);
void dist_drop_waiting(rc_dist *d, const char *node, const char *why);
/* dist_jobs.c */
void dist_after_failed_handshake(rc_dist *d, const hs_job *j);
void dist_start_inbound(rc_dist *d);
void dist_start_dials(rc_dist *d);
void dist_evict_oldest(rc_dist *d);
void dist_close_done_async_if_idle(rc_dist *d);
void dist_on_done_async(uv_async_t *a);
void dist_list_append(job_list *l, hs_job *j);
void dist_list_unlink(job_list *l, hs_job *j);
void dist_set_put(rc_dist *d, name_set *s, const char *node, int on);
/* dist_listen.c */
int dist_open_listener(const rc_dist_config *cfg, char *err, int errlen, uint16_t *port_out);
void dist_on_listen(uv_poll_t *h, int status, int events);

#endif
