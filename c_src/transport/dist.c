#include "transport/dist.h"

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
 * send hit a busy destination stops being read (its peer is the sender)
 * until that destination drains; every other connection keeps flowing. */
/* Buffer capacity a connection keeps when empty at a tick. */
#define TRIM_KEEP ((size_t)256 << 10)
/* How long the listener rests when descriptors run out. */
#define ACCEPT_PAUSE_MS 250u
#define DROP_WINDOW_MS 10000u
#define DROP_LINES 10u

struct rc_conn {
    rc_dist *dist;
    int fd;
    /* NULL on plain TCP. A TLS session can need the socket the other way
     * round: a read that must first write, a write that must first read. */
    rc_tls *tls;
    int tls_read_wants_write;
    int tls_write_wants_read;
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
    uv_loop_t *loop;
    const rc_logger *lg;
    rc_dist_config cfg;
    char alive[256];
    char node_name[HS_MAX_NODE];
    char cookie[1024];
    rc_dist_callbacks cb;
    uint32_t creation;
    int listen_fd;
    uint16_t listen_port;
    int epmd_fd;
    uv_poll_t listen_poll;
    uv_check_t flush_check;
    uv_timer_t tick_timer;
    /* Connections by the peer's node index (cfg.nodes): a send indexes an
     * array. The list holds the same connections for the walks. */
    rc_conn **by_node;
    uint32_t by_node_cap;
    rc_conn *conns;
    size_t nconns;
    rc_conn *dirty_head; /* connections with output to flush this turn */
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
    /* Finished jobs, handed from their threads to the loop. */
    uv_async_t done_async;
    pthread_mutex_t done_mu;
    hs_job *done;
    /* At the descriptor limit: a spare descriptor to accept-and-close with,
     * the listener paused for a while, and a log line per period at most. */
    int reserve_fd;
    uv_timer_t accept_timer;
    int accept_paused;
    uint64_t shed_since_log, last_shed_log_ms;
    /* Lines that strangers can cause (failed handshakes): a budget per
     * window, then one line saying how many were left out. */
    rc_ratelimit stranger_log;
    rc_tls_ctx *tls_ctx; /* NULL: plain TCP */
    /* Keeps the loop from sleeping while a connection has input it did not
     * get to in its turn: frames past its dispatch budget, or decrypted
     * bytes a TLS session holds. Stopped by the first check that finds
     * nothing left to come back for. */
    uv_idle_t spin;
    uint64_t turn; /* loop turns, counted at each check */
    int stopping;
    rc_dist_stats stats;
    size_t out_pending; /* sum of every connection's unwritten output */
    rc_conn *dispatching; /* whose frame is being handled right now */
    /* Busy destination hit by a send outside dispatch (a node index). */
    uint32_t busy_hit;
    rc_waitq *waitq;       /* frames for nodes a send is connecting to */
    dist_hdr_scratch hdr_scratch;
    rc_ratelimit drop_log; /* lines about frames dropped for unreachable nodes */
    int any_resume;
    /* Outbound connects in flight, by node name, readable from the
     * handshake threads (the `connecting` hash belongs to the loop). */
    pthread_mutex_t pending_mu;
    name_set pending;
    /* Connected peers, for the same readers (an acceptor answers alive). */
    name_set up;
    /* Peers whose inbound handshake we said ok to and that are not up yet:
     * we do not dial them meanwhile (net_kernel makes the same decisions in
     * one process; here they are made under pending_mu). */
    name_set accepting;
};

static void conn_on_poll(uv_poll_t *h, int status, int events);
static void mark_dirty(rc_dist *d, rc_conn *c);
static void update_poll(rc_dist *d, rc_conn *c);
static void conn_flush(rc_dist *d, rc_conn *c);
static void conn_read(rc_dist *d, rc_conn *c);
static void unblock_waiters(rc_dist *d, rc_conn *dest);
static void after_failed_handshake(rc_dist *d, const hs_job *j);
static void drop_waiting(rc_dist *d, const char *node, const char *why);
static void start_inbound(rc_dist *d);
static void start_dials(rc_dist *d);

static int set_index(const name_set *s, const char *node)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], node) == 0)
            return (int)i;
    return -1;
}

/* With pending_mu held. */
static void set_put_locked(name_set *s, const char *node, int on)
{
    int i = set_index(s, node);
    if (on && i < 0) {
        if (s->n == s->cap) {
            size_t ncap = s->cap ? s->cap * 2 : 8;
            char (*np)[HS_MAX_NODE] = realloc(s->v, ncap * sizeof *np);
            if (np != NULL) {
                s->v = np;
                s->cap = ncap;
            }
        }
        if (s->n < s->cap)
            strcpy(s->v[s->n++], node);
    } else if (!on && i >= 0) {
        memcpy(s->v[i], s->v[--s->n], HS_MAX_NODE);
    }
}

static void set_put(rc_dist *d, name_set *s, const char *node, int on)
{
    pthread_mutex_lock(&d->pending_mu);
    set_put_locked(s, node, on);
    pthread_mutex_unlock(&d->pending_mu);
}

static void pending_set(rc_dist *d, const char *node, int on) { set_put(d, &d->pending, node, on); }

static hs_status status_for(void *ctx, const char *peer)
{
    rc_dist *d = ctx;
    hs_status st;
    pthread_mutex_lock(&d->pending_mu);
    if (set_index(&d->up, peer) >= 0)
        st = HS_STATUS_ALIVE;
    else if (set_index(&d->pending, peer) < 0)
        st = HS_STATUS_OK;
    else
        st = strcmp(d->node_name, peer) > 0 ? HS_STATUS_NOK : HS_STATUS_OK_SIMULTANEOUS;
    if (st == HS_STATUS_OK || st == HS_STATUS_OK_SIMULTANEOUS)
        set_put_locked(&d->accepting, peer, 1);
    pthread_mutex_unlock(&d->pending_mu);
    return st;
}

static int has_connection(void *ctx, const char *peer)
{
    rc_dist *d = ctx;
    pthread_mutex_lock(&d->pending_mu);
    int has = set_index(&d->up, peer) >= 0 || set_index(&d->accepting, peer) >= 0;
    pthread_mutex_unlock(&d->pending_mu);
    return has;
}

static hs_config make_hs_config(rc_dist *d)
{
    hs_config hc = {.this_node = d->node_name, .creation = d->creation, .cookie = d->cookie,
                    .flags = RC_DIST_FLAGS, .status_for = status_for,
                    .has_connection = has_connection, .status_ctx = d};
    return hc;
}

/* ---------------------------------------------------------------- handshakes */

static int fd_write_all(void *ctx, const void *buf, size_t n, uint64_t dl)
{
    return sockio_write_all(*(const int *)ctx, buf, n, dl);
}

static int fd_read_exact(void *ctx, void *buf, size_t n, uint64_t dl)
{
    return sockio_read_exact(*(const int *)ctx, buf, n, dl);
}

static int tls_write_all(void *ctx, const void *buf, size_t n, uint64_t dl)
{
    return rc_tls_write_all(ctx, buf, n, dl);
}

static int tls_read_exact(void *ctx, void *buf, size_t n, uint64_t dl)
{
    return rc_tls_read_exact(ctx, buf, n, dl);
}

static void hs_work(hs_job *j)
{
    rc_dist *d = j->dist;
    uint64_t deadline = sockio_now_ms() + d->cfg.handshake_timeout_ms;
    hs_config hc = make_hs_config(d);
    if (j->outbound) {
        char alive[HS_MAX_NODE];
        const char *at = strchr(j->node, '@');
        if (at == NULL || at == j->node || at[1] == '\0') {
            snprintf(j->err, sizeof j->err, "bad node name");
            return;
        }
        size_t alen = (size_t)(at - j->node);
        memcpy(alive, j->node, alen);
        alive[alen] = '\0';
        uint16_t port = 0, highest = 0;
        if (epmd_lookup(at + 1, alive, &port, &highest, deadline) != 0) {
            snprintf(j->err, sizeof j->err, "epmd on %.100s does not know %.100s", at + 1, alive);
            return;
        }
        if (highest < 6) {
            snprintf(j->err, sizeof j->err, "node speaks distribution version %u < 6", highest);
            return;
        }
        j->fd = sockio_connect(at + 1, port, deadline);
        if (j->fd < 0) {
            snprintf(j->err, sizeof j->err, "connect: %s", strerror(errno));
            return;
        }
    }
    hs_io io = {.write_all = fd_write_all, .read_exact = fd_read_exact, .ctx = &j->fd};
    if (d->tls_ctx != NULL) {
        const char *at = j->outbound ? strchr(j->node, '@') : NULL;
        j->tls = rc_tls_handshake(d->tls_ctx, j->fd, !j->outbound, at != NULL ? at + 1 : NULL,
                                  deadline, j->err, (int)sizeof j->err);
        if (j->tls == NULL) {
            j->tls_failed = 1;
            return;
        }
        io = (hs_io){.len_bytes = 4, .write_all = tls_write_all, .read_exact = tls_read_exact,
                     .ctx = j->tls};
    } else if (!j->outbound) {
        /* A TLS node's client hello would be read as a 5 kB handshake
         * message and waited for until the deadline; say what it is. */
        uint8_t first = 0;
        if (sockio_peek(j->fd, &first, 1, deadline) == 1 && first == 0x16) {
            snprintf(j->err, sizeof j->err,
                     "the peer speaks TLS (-proto_dist inet_tls?) and this node does not: "
                     "start it with --tls-cert");
            return;
        }
    }
    if (j->outbound)
        j->ok = handshake_connect_io(&io, &hc, j->node, &j->result, deadline, j->err,
                                     (int)sizeof j->err) == 0;
    else
        j->ok = handshake_accept_io(&io, &hc, &j->result, deadline, j->err,
                                    (int)sizeof j->err) == 0;
    if (!j->ok && j->tls != NULL && rc_tls_last_error(j->tls)[0] != '\0') {
        /* The TLS layer knows better than the errno the handshake saw,
         * e.g. a TLS 1.3 server refusing our certificate after its hello. */
        char step[64];
        snprintf(step, sizeof step, "%.*s", (int)strcspn(j->err, ":"), j->err);
        snprintf(j->err, sizeof j->err, "%s: %s", step, rc_tls_last_error(j->tls));
    }
}

static int grow_by_node(rc_dist *d, uint32_t node)
{
    if (node < d->by_node_cap)
        return 0;
    uint32_t cap = d->by_node_cap ? d->by_node_cap : 16;
    while (cap <= node)
        cap *= 2;
    rc_conn **v = realloc(d->by_node, (size_t)cap * sizeof *v);
    if (v == NULL)
        return -1;
    memset(v + d->by_node_cap, 0, (size_t)(cap - d->by_node_cap) * sizeof *v);
    d->by_node = v;
    d->by_node_cap = cap;
    return 0;
}

static rc_conn *conn_new(rc_dist *d, int fd, rc_tls *tls, const hs_result *r)
{
    rc_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->dist = d;
    c->fd = fd;
    c->tls = tls;
    memcpy(c->peer, r->peer_node, sizeof c->peer);
    c->peer_creation = r->peer_creation;
    c->peer_flags = r->peer_flags;
    bytebuf_init(&c->in, d->cfg.max_message_bytes + 4 + READ_CHUNK);
    bytebuf_init(&c->out, d->cfg.bp.max_output_bytes);
    /* A decoded frame may not grow past what a pass-through one may be. */
    bytebuf_init(&c->plain, d->cfg.max_message_bytes + 2);
    c->last_read_ms = c->last_write_ms = uv_now(d->loop);
    if (r->peer_flags & RC_DIST_FLAGS & DFLAG_DIST_HDR_ATOM_CACHE) {
        c->hdr_out = dist_hdr_out_new();
        c->hdr_in = dist_hdr_in_new();
    }
    c->node = rc_nodetab_intern(d->cfg.nodes, c->peer, strlen(c->peer));
    if ((r->peer_flags & RC_DIST_FLAGS & DFLAG_DIST_HDR_ATOM_CACHE &&
         (c->hdr_out == NULL || c->hdr_in == NULL)) ||
        c->node == RC_NODE_NONE || grow_by_node(d, c->node) != 0 ||
        uv_poll_init(d->loop, &c->poll, fd) != 0) {
        dist_hdr_out_free(c->hdr_out);
        dist_hdr_in_free(c->hdr_in);
        free(c);
        return NULL;
    }
    c->poll.data = c;
    c->poll_events = -1;
    update_poll(d, c);
    d->by_node[c->node] = c;
    c->next = d->conns;
    if (d->conns != NULL)
        d->conns->prev = c;
    d->conns = c;
    d->nconns++;
    set_put(d, &d->up, c->peer, 1);
    return c;
}

#define STRANGER_WINDOW_MS 10000u
#define STRANGER_LINES 20u

/* 1 if a line a stranger caused may be logged now. */
static int stranger_may_log(rc_dist *d)
{
    unsigned left_out = 0;
    int ok = rc_ratelimit_allow(&d->stranger_log, uv_now(d->loop), STRANGER_WINDOW_MS,
                                STRANGER_LINES, &left_out);
    if (left_out > 0)
        LOG_W(d->lg, MOD, "%u more failed handshakes not logged in the last %u s", left_out,
              STRANGER_WINDOW_MS / 1000u);
    return ok;
}

static void list_append(job_list *l, hs_job *j)
{
    j->in_prev = l->tail;
    j->in_next = NULL;
    if (l->tail)
        l->tail->in_next = j;
    else
        l->head = j;
    l->tail = j;
    l->n++;
    j->listed = 1;
}

static void list_unlink(job_list *l, hs_job *j)
{
    if (j->in_prev)
        j->in_prev->in_next = j->in_next;
    else
        l->head = j->in_next;
    if (j->in_next)
        j->in_next->in_prev = j->in_prev;
    else
        l->tail = j->in_prev;
    j->in_prev = j->in_next = NULL;
    l->n--;
    j->listed = 0;
}

/* A dial still waiting for a thread, made moot by a connection to its node. */
static void forget_waiting_dial(rc_dist *d, const char *node)
{
    hs_job *j = NULL;
    HASH_FIND_STR(d->connecting, node, j);
    if (j == NULL || j->started)
        return;
    list_unlink(&d->dials, j);
    HASH_DEL(d->connecting, j);
    free(j);
}

/* Frames wait as pass-through frames (the connection's flags were not
 * known yet); on a connection with headers each is encoded anew. The
 * number of frames now in c's output. */
static uint64_t take_waiting(rc_dist *d, rc_conn *c)
{
    if (c->hdr_out == NULL)
        return rc_waitq_take(d->waitq, c->peer, &c->out);
    bytebuf w;
    bytebuf_init(&w, 0);
    uint64_t frames = rc_waitq_take(d->waitq, c->peer, &w), sent = 0;
    const uint8_t *p = w.data + w.off, *end = w.data + w.len;
    while (frames > 0 && end - p >= 5) {
        uint32_t n = rc_get32(p);
        const char *body = (const char *)p + 5; /* after the tag 112 */
        int ctrl_end = 1;
        if (n < 2 || (size_t)(end - p - 4) < n || p[4] != 112 ||
            term_skip(body, (int)n - 1, &ctrl_end) != 0) {
            LOG_E(d->lg, MOD, "a frame waiting for %s is malformed: dropped with the rest", c->peer);
            break;
        }
        struct iovec parts[2] = {{.iov_base = (void *)body, .iov_len = (size_t)ctrl_end},
                                 {.iov_base = (void *)(body + ctrl_end),
                                  .iov_len = n - 1 - (size_t)ctrl_end}};
        size_t added = 0;
        if (dist_hdr_encode(c->hdr_out, &d->hdr_scratch, &c->out, parts,
                            parts[1].iov_len > 0 ? 2 : 1, &added) != RC_OK) {
            LOG_E(d->lg, MOD, "frames waiting for %s do not fit its output: dropped", c->peer);
            break;
        }
        sent++;
        p += 4 + (size_t)n;
    }
    bytebuf_free(&w);
    return sent;
}

static void hs_after(hs_job *j, int status)
{
    rc_dist *d = j->dist;
    d->jobs_in_flight--;
    if (!j->outbound) {
        d->in_threads--;
        if (j->listed)
            list_unlink(&d->inbound, j);
        if (j->result.peer_node[0] != '\0')
            set_put(d, &d->accepting, j->result.peer_node, 0);
    }
    if (j->outbound) {
        d->dials_running--;
        HASH_DEL(d->connecting, j);
        pending_set(d, j->node, 0);
    }
    int ok = status == 0 && j->ok && !d->stopping;
    rc_conn *old = ok && j->result.replaces_existing ? rc_dist_find(d, j->result.peer_node) : NULL;
    if (old != NULL) /* the peer says this one is dead on its side */
        rc_dist_close(d, old, "replaced: the peer reconnected");
    if (ok && rc_dist_find(d, j->result.peer_node) != NULL) {
        /* A simultaneous connect in the other direction won; keep that one. */
        LOG_D(d->lg, MOD, "duplicate connection to %s dropped", j->result.peer_node);
        ok = 0;
        j->err[0] = '\0';
    } else if (!ok && j->err[0] != '\0' && !d->stopping) {
        if (j->outbound)
            d->stats.connect_failed++;
        else
            d->stats.err_handshake++;
        if (j->no_thread)
            ; /* logged, at a bounded rate, when the thread was refused */
        else if (j->outbound && j->result.missing_flags != 0)
            LOG_W(d->lg, MOD, "%s", j->err); /* a version mismatch: the user must act */
        else if (j->outbound && j->tls_failed)
            LOG_W(d->lg, MOD, "connect to %s failed: %s", j->node, j->err);
        else if (j->outbound)
            LOG_I(d->lg, MOD, "connect to %s failed: %s", j->node, j->err);
        else if (stranger_may_log(d))
            LOG_W(d->lg, MOD, "inbound handshake failed: %s", j->err);
    }
    rc_conn *c = NULL;
    if (ok) {
        int fl = fcntl(j->fd, F_GETFL);
        if (fl < 0 || fcntl(j->fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
            (c = conn_new(d, j->fd, j->tls, &j->result)) == NULL) {
            LOG_E(d->lg, MOD, "cannot set up connection to %s", j->result.peer_node);
            ok = 0;
        }
    }
    if (!ok) {
        rc_tls_free(j->tls);
        if (j->fd >= 0)
            close(j->fd);
        if (j->outbound && !d->stopping && d->cb.on_connect_failed)
            d->cb.on_connect_failed(d->cb.ctx, j->node, j->err);
        after_failed_handshake(d, j);
        free(j);
        return;
    }
    if (j->outbound)
        d->stats.conns_connected++;
    else
        d->stats.conns_accepted++;
    if (c->tls != NULL) {
        char desc[96];
        LOG_I(d->lg, MOD, "connected to %s (%s, %s)", c->peer, j->outbound ? "outbound" : "inbound",
              rc_tls_describe(c->tls, desc, sizeof desc));
    } else {
        LOG_I(d->lg, MOD, "connected to %s (%s)", c->peer, j->outbound ? "outbound" : "inbound");
    }
    forget_waiting_dial(d, c->peer);
    /* What sends queued while it was being made goes first, in order. */
    uint64_t waited = take_waiting(d, c);
    if (waited > 0) {
        d->out_pending += bytebuf_pending(&c->out);
        d->stats.frames_out += waited;
        c->busy = bytebuf_pending(&c->out) > d->cfg.bp.busy_below;
        mark_dirty(d, c);
    }
    free(j);
    if (d->cb.on_up)
        d->cb.on_up(d->cb.ctx, c);
}

/* Frames waiting for the node of a failed handshake: an inbound one that
 * failed leaves them to a connect of our own; when ours failed and the node
 * is not connecting to us either, they cannot be delivered. */
static void after_failed_handshake(rc_dist *d, const hs_job *j)
{
    const char *node = j->outbound ? j->node : j->result.peer_node;
    if (node[0] == '\0' || rc_waitq_bytes(d->waitq, node) == 0 || rc_dist_find(d, node) != NULL)
        return;
    if (!j->outbound) {
        rc_dist_connect(d, node);
        if (!rc_dist_is_connecting(d, node))
            drop_waiting(d, node, "no connection could be started");
        return;
    }
    pthread_mutex_lock(&d->pending_mu);
    int accepting = set_index(&d->accepting, node) >= 0;
    pthread_mutex_unlock(&d->pending_mu);
    if (!accepting)
        drop_waiting(d, node, j->err[0] != '\0' ? j->err : "the connection was not made");
}

static void *hs_thread(void *arg)
{
    hs_job *j = arg;
    rc_dist *d = j->dist;
    /* A peer that resets the socket mid-handshake must cost an EPIPE, not
     * the process, whatever the embedding program does with SIGPIPE. */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    (void)pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    hs_work(j);
    /* Signalled under the lock: the loop cannot take this job (and so
     * cannot close the async handle or free d) before the send is done. */
    pthread_mutex_lock(&d->done_mu);
    j->next = d->done;
    d->done = j;
    uv_async_send(&d->done_async);
    pthread_mutex_unlock(&d->done_mu);
    return NULL;
}

static void close_done_async_if_idle(rc_dist *d)
{
    if (d->stopping && d->jobs_in_flight == 0 && !uv_is_closing((uv_handle_t *)&d->done_async))
        uv_close((uv_handle_t *)&d->done_async, NULL);
}

static void on_done_async(uv_async_t *a)
{
    rc_dist *d = a->data;
    pthread_mutex_lock(&d->done_mu);
    hs_job *list = d->done;
    d->done = NULL;
    pthread_mutex_unlock(&d->done_mu);
    while (list != NULL) {
        hs_job *j = list;
        list = j->next;
        /* The thread is past its last use of the job: joining it (a few
         * instructions from its end) before its slot is given to another
         * keeps the threads alive, not only the jobs, within the caps. */
        if (j->joinable)
            (void)pthread_join(j->thread, NULL);
        j->joinable = 0;
        hs_after(j, 0);
    }
    if (!d->stopping) {
        /* The threads that ended make room for jobs that wait. */
        start_inbound(d);
        start_dials(d);
    }
    close_done_async_if_idle(d);
}

/* 0, or the error of pthread_create. */
static int start_thread(rc_dist *d, hs_job *j)
{
    pthread_attr_t attr;
    pthread_t t;
    int rc = pthread_attr_init(&attr);
    if (rc != 0)
        return rc;
    (void)pthread_attr_setstacksize(&attr, 512u << 10); /* getaddrinfo included */
    rc = pthread_create(&t, &attr, hs_thread, j);
    pthread_attr_destroy(&attr);
    if (rc == 0) {
        j->thread = t;
        j->joinable = 1;
        d->jobs_in_flight++;
    }
    return rc;
}

#define THREAD_LOG_WINDOW_MS 10000u
#define THREAD_LOG_LINES 5u

/* A task limit (TasksMax, a container's pids limit) or memory refused a
 * thread: counted, and said at a bounded rate, since every stranger's
 * connect can cause it. */
static void thread_refused(rc_dist *d, int err)
{
    d->stats.threads_unavailable++;
    unsigned left_out = 0;
    int ok = rc_ratelimit_allow(&d->thread_log, uv_now(d->loop), THREAD_LOG_WINDOW_MS,
                                THREAD_LOG_LINES, &left_out);
    if (left_out > 0)
        LOG_W(d->lg, MOD, "%u more lines about handshake threads left out in the last %u s",
              left_out, THREAD_LOG_WINDOW_MS / 1000u);
    if (ok)
        LOG_W(d->lg, MOD,
              "cannot start a handshake thread: %s (%zu inbound, %zu outbound running); "
              "connections wait for a running one to end (raise the task limit?)",
              strerror(err), d->in_threads, d->dials_running);
}

/* No thread of ours is running to make room for j later: j fails on its
 * own, through the done list as if its thread had ended, so the loop's one
 * path for a failed handshake (and nothing reentrant) deals with it. */
static void fail_without_thread(rc_dist *d, hs_job *j, int err)
{
    j->no_thread = 1;
    snprintf(j->err, sizeof j->err, "cannot start a handshake thread: %s", strerror(err));
    d->jobs_in_flight++;
    pthread_mutex_lock(&d->done_mu);
    j->next = d->done;
    d->done = j;
    pthread_mutex_unlock(&d->done_mu);
    uv_async_send(&d->done_async);
}

/* Threads for the oldest inbound handshakes waiting, while fewer than the
 * cap run (cut-off ones until they end included). */
static void start_inbound(rc_dist *d)
{
    for (hs_job *j = d->inbound.head; j != NULL && d->in_threads < d->cfg.max_handshakes;
         j = j->in_next) {
        if (j->started)
            continue;
        int rc = start_thread(d, j);
        if (rc != 0) {
            thread_refused(d, rc);
            if (d->in_threads > 0)
                return; /* tried again when one of them ends */
            fail_without_thread(d, j, rc);
        }
        j->started = 1;
        d->in_threads++;
    }
}

/* The oldest stranger is cut off: a running one sees its socket end (its
 * thread is reaped as usual), one still waiting just goes. */
static void evict_oldest(rc_dist *d)
{
    hs_job *j = d->inbound.head;
    list_unlink(&d->inbound, j);
    d->stats.handshakes_evicted++;
    if (j->started) {
        shutdown(j->fd, SHUT_RDWR);
        return;
    }
    close(j->fd);
    free(j);
}

/* Dials waiting, oldest first, while fewer than cfg.max_dials run. */
static void start_dials(rc_dist *d)
{
    hs_job *j;
    while ((j = d->dials.head) != NULL && d->dials_running < d->cfg.max_dials) {
        /* Acceptors must see the dial before it runs; and no dialling a
         * peer that is up or whose own connection to us we are accepting
         * right now (either may have happened while it waited). */
        pthread_mutex_lock(&d->pending_mu);
        int busy = set_index(&d->accepting, j->node) >= 0 || set_index(&d->up, j->node) >= 0;
        if (!busy)
            set_put_locked(&d->pending, j->node, 1);
        pthread_mutex_unlock(&d->pending_mu);
        if (busy) {
            list_unlink(&d->dials, j);
            HASH_DEL(d->connecting, j);
            free(j);
            continue;
        }
        int rc = start_thread(d, j);
        if (rc != 0) {
            thread_refused(d, rc);
            if (d->dials_running > 0) {
                pending_set(d, j->node, 0);
                return; /* tried again when one of them ends */
            }
            fail_without_thread(d, j, rc);
        }
        list_unlink(&d->dials, j);
        j->started = 1;
        d->dials_running++;
        LOG_D(d->lg, MOD, "connecting to %s", j->node);
    }
}

/* Dials that may wait for a thread, as a multiple of cfg.max_dials. */
#define DIAL_QUEUE_FACTOR 4u

int rc_dist_connect(rc_dist *d, const char *node)
{
    if (d->stopping)
        return RC_ESTOPPED;
    if (strlen(node) >= HS_MAX_NODE || strcmp(node, d->node_name) == 0)
        return RC_EBADARG;
    if (rc_dist_find(d, node) != NULL || rc_dist_is_connecting(d, node))
        return RC_OK;
    if (d->dials_running >= d->cfg.max_dials &&
        d->dials.n >= DIAL_QUEUE_FACTOR * d->cfg.max_dials) {
        /* A peer listing thousands of names must not make us dial them
         * all at once; the caller tries again later. */
        d->stats.dials_refused++;
        LOG_D(d->lg, MOD, "not connecting to %s now: %zu connects running, %zu waiting", node,
              d->dials_running, d->dials.n);
        return RC_EFULL;
    }
    pthread_mutex_lock(&d->pending_mu);
    int busy = set_index(&d->accepting, node) >= 0 || set_index(&d->up, node) >= 0;
    pthread_mutex_unlock(&d->pending_mu);
    if (busy)
        return RC_OK; /* its own connection to us is being made */
    hs_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        LOG_E(d->lg, MOD, "out of memory connecting to %s", node);
        return RC_ENOMEM;
    }
    j->dist = d;
    j->outbound = 1;
    j->fd = -1;
    strcpy(j->node, node);
    HASH_ADD_STR(d->connecting, node, j);
    list_append(&d->dials, j);
    start_dials(d);
    return RC_OK;
}

int rc_dist_is_connecting(const rc_dist *d, const char *node)
{
    hs_job *j = NULL;
    HASH_FIND_STR(d->connecting, node, j);
    return j != NULL;
}

static void on_listen(uv_poll_t *h, int status, int events);

static void on_accept_timer(uv_timer_t *t)
{
    rc_dist *d = t->data;
    if (d->stopping || !d->accept_paused)
        return;
    d->accept_paused = 0;
    uv_poll_start(&d->listen_poll, UV_READABLE, on_listen);
}

/* Out of descriptors (or kernel memory): shed the connection waiting in the
 * backlog with the spare descriptor, so it is refused rather than left
 * hanging, and stop accepting for a while instead of spinning on a listener
 * that stays readable. One log line per period at most. */
static void accept_back_off(rc_dist *d, int err)
{
    if (d->reserve_fd >= 0) {
        close(d->reserve_fd);
        int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            close(fd);
        d->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    d->stats.accepts_shed++;
    d->shed_since_log++;
    uint64_t now = uv_now(d->loop);
    if (d->last_shed_log_ms == 0 || now - d->last_shed_log_ms >= 10000) {
        LOG_W(d->lg, MOD,
              "accept: %s: refusing connections for %u ms (%llu refused since the last "
              "such line); raise the descriptor limit (ulimit -n) if peers are legitimate",
              strerror(err), ACCEPT_PAUSE_MS, (unsigned long long)d->shed_since_log);
        d->shed_since_log = 0;
        d->last_shed_log_ms = now;
    }
    if (!d->accept_paused) {
        d->accept_paused = 1;
        uv_poll_stop(&d->listen_poll);
        uv_timer_start(&d->accept_timer, on_accept_timer, ACCEPT_PAUSE_MS, 0);
    }
}

static void on_listen(uv_poll_t *h, int status, int events)
{
    rc_dist *d = h->data;
    (void)events;
    if (status < 0 || d->stopping)
        return;
    for (;;) {
        int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_back_off(d, errno);
            else if (errno == ECONNABORTED || errno == EPROTO)
                continue; /* that peer gave up; the next may be waiting */
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                LOG_W(d->lg, MOD, "accept: %s", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        hs_job *j = calloc(1, sizeof *j);
        if (j == NULL) {
            close(fd);
            continue;
        }
        j->dist = d;
        j->fd = fd;
        list_append(&d->inbound, j);
        if (d->inbound.n > d->cfg.max_handshakes)
            evict_oldest(d);
        start_inbound(d);
    }
}

/* --------------------------------------------------------------- connections */

rc_conn *rc_dist_conn(const rc_dist *d, uint32_t node)
{
    return node < d->by_node_cap ? d->by_node[node] : NULL;
}

rc_conn *rc_dist_find(rc_dist *d, const char *node)
{
    return rc_dist_conn(d, rc_nodetab_find(d->cfg.nodes, node, strlen(node)));
}

size_t rc_dist_connection_count(const rc_dist *d) { return d->nconns; }

void rc_dist_foreach(rc_dist *d, void (*fn)(rc_conn *c, void *arg), void *arg)
{
    for (rc_conn *c = d->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (!c->closing)
            fn(c, arg);
    }
}

/* Kept as a running total: back-pressure asks for it per frame and per
 * queued event, so it must not walk the connections. */
size_t rc_dist_output_pending(const rc_dist *d) { return d->out_pending; }

void rc_backpressure_defaults(rc_backpressure *bp)
{
    *bp = (rc_backpressure){.busy_above = 4u << 20,
                            .busy_below = 1u << 20,
                            .max_output_bytes = (size_t)1 << 30,
                            /* twice the busy mark: a producer pauses at the mark,
                             * so only sends made while handling a peer's frame
                             * come this far */
                            .wait_max_bytes = 8u << 20,
                            .wait_max_nodes = 64,
                            .producer_queue_bytes = 4u << 20};
}

const char *rc_conn_peer(const rc_conn *c) { return c->peer; }
uint32_t rc_conn_node(const rc_conn *c) { return c->node; }
uint32_t rc_conn_peer_creation(const rc_conn *c) { return c->peer_creation; }
const rc_dist_stats *rc_dist_get_stats(const rc_dist *d) { return &d->stats; }
uint32_t rc_dist_creation(const rc_dist *d) { return d->creation; }
const char *rc_dist_node_name(const rc_dist *d) { return d->node_name; }

static void conn_on_closed(uv_handle_t *h)
{
    rc_conn *c = h->data;
    rc_tls_free(c->tls);
    close(c->fd);
    bytebuf_free(&c->in);
    bytebuf_free(&c->out);
    bytebuf_free(&c->plain);
    dist_hdr_out_free(c->hdr_out);
    dist_hdr_in_free(c->hdr_in);
    free(c);
}

void rc_dist_close(rc_dist *d, rc_conn *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = 1;
    d->stats.conns_closed++;
    d->by_node[c->node] = NULL;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    d->nconns--;
    set_put(d, &d->up, c->peer, 0);
    /* Best effort: push what is queued (e.g. leave messages on shutdown). */
    if (bytebuf_pending(&c->out) > 0)
        conn_flush(d, c);
    if (c->tls != NULL)
        rc_tls_shutdown(c->tls);
    d->out_pending -= bytebuf_pending(&c->out); /* what never left is gone */
    if (d->dispatching == c)
        d->dispatching = NULL;
    c->blocked_on = NULL;
    unblock_waiters(d, c);
    LOG_I(d->lg, MOD, "connection to %s closed: %s", c->peer, why);
    if (d->cb.on_down)
        d->cb.on_down(d->cb.ctx, c, why);
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, conn_on_closed);
}

static void mark_dirty(rc_dist *d, rc_conn *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        c->next_dirty = d->dirty_head;
        d->dirty_head = c;
    }
}

int rc_dist_send(rc_dist *d, rc_conn *c, const char *ctrl, size_t ctrl_len, const char *msg,
                 size_t msg_len)
{
    struct iovec parts[2] = {{.iov_base = (void *)ctrl, .iov_len = ctrl_len},
                             {.iov_base = (void *)msg, .iov_len = msg ? msg_len : 0}};
    return rc_dist_sendv(d, c, parts, msg ? 2 : 1);
}

static int output_overflow(rc_dist *d, rc_conn *c)
{
    d->stats.err_output_overflow++;
    LOG_E(d->lg, MOD, "output to %s exceeds %zu bytes: peer too slow, dropping connection",
          c->peer, d->cfg.bp.max_output_bytes);
    rc_dist_close(d, c, "output buffer limit");
    return -1;
}

static int sent(rc_dist *d, rc_conn *c, size_t added);

static int encoded(rc_dist *d, rc_conn *c, int rc, size_t added)
{
    if (rc == RC_EBADARG) {
        LOG_E(d->lg, MOD, "a frame for %s without version bytes: not sent", c->peer);
        return -1;
    }
    if (rc != RC_OK)
        return output_overflow(d, c);
    return sent(d, c, added);
}

/* The 4-byte length and the tag 112 of a pass-through frame whose body is
 * parts: the payload's length (tag included), or 0 if it cannot be framed. */
static size_t passthrough_head(uint8_t hdr[5], const struct iovec *parts, int nparts)
{
    size_t payload = 1;
    for (int i = 0; i < nparts; i++)
        payload += parts[i].iov_len;
    if (payload > UINT32_MAX)
        return 0;
    frame_put_header(hdr, (uint32_t)payload);
    hdr[4] = 112;
    return payload;
}

int rc_dist_sendv(rc_dist *d, rc_conn *c, const struct iovec *parts, int nparts)
{
    if (c->closing)
        return -1;
    size_t added = 0;
    if (c->hdr_out != NULL) {
        int rc = dist_hdr_encode(c->hdr_out, &d->hdr_scratch, &c->out, parts, nparts, &added);
        return encoded(d, c, rc, added);
    } else {
        uint8_t hdr[5];
        size_t payload = passthrough_head(hdr, parts, nparts);
        if (payload == 0 || bytebuf_reserve(&c->out, 4 + payload) != 0)
            return output_overflow(d, c);
        bytebuf_append(&c->out, hdr, 5);
        for (int i = 0; i < nparts; i++)
            bytebuf_append(&c->out, parts[i].iov_base, parts[i].iov_len);
        added = 4 + payload;
    }
    return sent(d, c, added);
}

static int sent(rc_dist *d, rc_conn *c, size_t added)
{
    d->out_pending += added;
    d->stats.frames_out++;
    mark_dirty(d, c);
    if (!c->busy && bytebuf_pending(&c->out) > d->cfg.bp.busy_above) {
        c->busy = 1;
        d->stats.busy_destinations++;
    }
    if (c->busy) {
        rc_conn *src = d->dispatching;
        if (src == NULL) {
            d->busy_hit = c->node;
        } else if (src->blocked_on == NULL && !src->closing) {
            src->blocked_on = c;
            d->stats.read_pauses++;
            update_poll(d, src);
        }
    }
    return 0;
}

/* A connection without headers, or none yet (the frame waits as a
 * pass-through one): the message goes in its parts. */
static int send_msg_parts(rc_dist *d, uint32_t node, rc_conn *c, const erlang_pid *to,
                          const dist_hdr_msg *m)
{
    char ctrl[MAXATOMLEN_UTF8 + 64];
    struct iovec v[16];
    int clen = ctrl_encode_send_fixed(ctrl, (int)sizeof ctrl, to);
    if (clen < 0 || m->nparts < 0 || m->nparts > 15)
        return -1;
    v[0].iov_base = ctrl;
    v[0].iov_len = (size_t)clen;
    for (int i = 0; i < m->nparts; i++)
        v[i + 1] = m->parts[i];
    return c != NULL ? rc_dist_sendv(d, c, v, m->nparts + 1)
                     : rc_dist_send_node(d, node, v, m->nparts + 1);
}

int rc_dist_send_msg_node(rc_dist *d, uint32_t node, const erlang_pid *to, dist_hdr_msg *m)
{
    rc_conn *c = rc_dist_conn(d, node);
    if (c == NULL || c->hdr_out == NULL)
        return send_msg_parts(d, node, c, to, m);
    if (c->closing)
        return -1;
    size_t added = 0;
    int rc = dist_hdr_encode_send(c->hdr_out, &d->hdr_scratch, &c->out, to, m, &added);
    return encoded(d, c, rc, added);
}

int rc_dist_sendv_cb(void *dist, uint32_t node, const struct iovec *parts, int nparts)
{
    return rc_dist_send_node(dist, node, parts, nparts);
}

int rc_dist_sendm_cb(void *dist, uint32_t node, const erlang_pid *to, dist_hdr_msg *m)
{
    return rc_dist_send_msg_node(dist, node, to, m);
}

uint32_t rc_dist_take_busy_hit(rc_dist *d)
{
    uint32_t node = d->busy_hit;
    d->busy_hit = RC_NODE_NONE;
    return node != RC_NODE_NONE && rc_dist_is_busy(d, node) ? node : RC_NODE_NONE;
}

int rc_dist_would_wait(rc_dist *d, uint32_t node, size_t bytes)
{
    rc_conn *c = rc_dist_conn(d, node);
    if (c != NULL)
        return c->busy || bytebuf_pending(&c->out) + bytes > d->cfg.bp.busy_above;
    const char *name = rc_nodetab_name(d->cfg.nodes, node);
    return name != NULL && rc_waitq_bytes(d->waitq, name) + bytes > d->cfg.bp.busy_above;
}

int rc_dist_is_busy(rc_dist *d, uint32_t node)
{
    rc_conn *c = rc_dist_conn(d, node);
    if (c != NULL)
        return c->busy;
    const char *name = rc_nodetab_name(d->cfg.nodes, node);
    return name != NULL && rc_waitq_bytes(d->waitq, name) > d->cfg.bp.busy_below;
}

/* ------------------------------------------------------- sends that connect */

static int node_name_ok(const rc_dist *d, const char *node)
{
    const char *at = strchr(node, '@');
    return at != NULL && at != node && at[1] != '\0' && strlen(node) < HS_MAX_NODE &&
           strcmp(node, d->node_name) != 0;
}

static void log_dropped(rc_dist *d, const char *node, uint64_t frames, const char *why)
{
    unsigned left_out = 0;
    int ok = rc_ratelimit_allow(&d->drop_log, uv_now(d->loop), DROP_WINDOW_MS, DROP_LINES,
                                &left_out);
    if (left_out > 0)
        LOG_W(d->lg, MOD, "%u more lines about dropped messages left out in the last %u s",
              left_out, DROP_WINDOW_MS / 1000u);
    if (ok)
        LOG_W(d->lg, MOD, "%llu message(s) to %s dropped: %s", (unsigned long long)frames, node,
              why);
}

/* The frames waiting for `node` cannot be delivered: dropped, counted,
 * logged, and the layer above told (its monitors of that node get DOWN). */
static void drop_waiting(rc_dist *d, const char *node, const char *why)
{
    uint64_t frames = rc_waitq_drop(d->waitq, node);
    if (frames == 0)
        return;
    d->stats.dropped_unreachable += frames;
    log_dropped(d, node, frames, why);
    if (d->cb.on_unreachable && !d->stopping)
        d->cb.on_unreachable(d->cb.ctx, node);
}

int rc_dist_send_node(rc_dist *d, uint32_t to, const struct iovec *parts, int nparts)
{
    rc_conn *c = rc_dist_conn(d, to);
    if (c != NULL)
        return rc_dist_sendv(d, c, parts, nparts);
    /* The slow path: no connection yet, the frame waits under the name. */
    const char *node = rc_nodetab_name(d->cfg.nodes, to);
    if (d->stopping || node == NULL || !node_name_ok(d, node)) {
        d->stats.dropped_unreachable++;
        return -1;
    }
    uint8_t hdr[5];
    if (passthrough_head(hdr, parts, nparts) == 0) {
        d->stats.dropped_queue_full++;
        return -1;
    }
    int rc = rc_waitq_put(d->waitq, node, uv_now(d->loop), hdr, sizeof hdr, parts, nparts);
    if (rc < 0) {
        d->stats.dropped_queue_full++;
        log_dropped(d, node, 1,
                    rc == RC_EFULL       ? "too much already waiting for its connection"
                    : rc == RC_ESYSTEM_LIMIT ? "too many nodes already waiting for a connection"
                                           : "out of memory");
        return -1;
    }
    if (rc == WAITQ_FIRST) {
        LOG_D(d->lg, MOD, "sends to %s wait while a connection is made", node);
        d->stats.send_connects++;
        rc_dist_connect(d, node);
    }
    if (d->dispatching == NULL && rc_waitq_bytes(d->waitq, node) > d->cfg.bp.busy_above)
        d->busy_hit = to;
    return 0;
}

/* dest drained (or went): the connections waiting on it are read again,
 * their buffered frames dispatched at the next check. */
static void unblock_waiters(rc_dist *d, rc_conn *dest)
{
    uint64_t now = uv_now(d->loop);
    for (rc_conn *c = d->conns; c != NULL; c = c->next) {
        if (c->blocked_on != dest)
            continue;
        c->blocked_on = NULL;
        c->last_read_ms = now; /* our own pause is not the peer's silence */
        c->resume = 1;
        d->any_resume = 1;
        update_poll(d, c);
    }
}

/* Poll for reading unless reads are paused, and for writing while output
 * is pending. */
static void update_poll(rc_dist *d, rc_conn *c)
{
    (void)d;
    int events = (c->blocked_on != NULL && !c->tls_write_wants_read ? 0 : UV_READABLE) |
                 (bytebuf_pending(&c->out) > 0 || c->tls_read_wants_write ? UV_WRITABLE : 0);
    if (c->poll_events == events || c->closing)
        return;
    c->poll_events = events;
    if (events == 0)
        uv_poll_stop(&c->poll);
    else
        uv_poll_start(&c->poll, events, conn_on_poll);
}

/* Writes what the session takes of c's output: bytes written (maybe 0 when
 * the session must wait), or -1 if the connection was closed. */
static ssize_t tls_flush(rc_dist *d, rc_conn *c, size_t pending)
{
    size_t done = 0;
    c->tls_write_wants_read = 0;
    while (done < pending) {
        char why[192];
        ssize_t w = rc_tls_write(c->tls, c->out.data + c->out.off + done, pending - done, why,
                                 (int)sizeof why);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w == RC_TLS_WANT_READ) {
            c->tls_write_wants_read = 1;
        } else if (w != RC_TLS_WANT_WRITE) {
            d->stats.err_io++;
            if (!c->closing)
                rc_dist_close(d, c, w == RC_TLS_EOF ? "peer closed" : why);
            return -1;
        }
        break;
    }
    return (ssize_t)done;
}

static void conn_flush(rc_dist *d, rc_conn *c)
{
    size_t pending = bytebuf_pending(&c->out);
    if (pending == 0)
        return;
    ssize_t w;
    if (c->tls != NULL) {
        w = tls_flush(d, c, pending);
        if (w < 0)
            return;
    } else {
        struct iovec iov = {.iov_base = c->out.data + c->out.off, .iov_len = pending};
        do {
            w = writev(c->fd, &iov, 1);
        } while (w < 0 && errno == EINTR);
    }
    if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            update_poll(d, c);
            return;
        }
        d->stats.err_io++;
        if (!c->closing) {
            char why[128];
            snprintf(why, sizeof why, "write: %s", strerror(errno));
            rc_dist_close(d, c, why);
        }
        return;
    }
    d->stats.bytes_out += (uint64_t)w;
    c->last_write_ms = uv_now(d->loop);
    bytebuf_consume(&c->out, (size_t)w);
    d->out_pending -= (size_t)w;
    if (c->busy && bytebuf_pending(&c->out) < d->cfg.bp.busy_below) {
        c->busy = 0;
        unblock_waiters(d, c);
    }
    /* A partial write means the socket is full: wait for writability instead
     * of spinning, and never block the loop on a slow peer. */
    update_poll(d, c);
}

static int dispatch_frames(rc_dist *d, rc_conn *c);

static void on_spin(uv_idle_t *h) { (void)h; }

/* Input the socket will not signal again (frames already buffered, bytes
 * already decrypted): handled at a check, and the loop kept from sleeping
 * until then. */
static void come_back(rc_dist *d, rc_conn *c)
{
    c->resume = 1;
    d->any_resume = 1;
    uv_idle_start(&d->spin, on_spin);
}

/* What c may still have handed up in this loop turn. */
static size_t dispatch_left(rc_dist *d, rc_conn *c)
{
    if (c->budget_turn != d->turn) {
        c->budget_turn = d->turn;
        c->spent = 0;
    }
    return c->spent >= DISPATCH_BUDGET_PER_TURN ? 0 : DISPATCH_BUDGET_PER_TURN - c->spent;
}

static void on_flush_check(uv_check_t *h)
{
    rc_dist *d = h->data;
    while (d->dirty_head != NULL) {
        rc_conn *c = d->dirty_head;
        d->dirty_head = c->next_dirty;
        c->dirty = 0;
        c->next_dirty = NULL;
        if (!c->closing)
            conn_flush(d, c);
    }
    if (d->any_resume) {
        d->any_resume = 0;
        for (rc_conn *c = d->conns, *next; c != NULL; c = next) {
            next = c->next;
            if (!c->resume)
                continue;
            c->resume = 0;
            if (!c->closing && c->blocked_on == NULL && bytebuf_pending(&c->in) > 0 &&
                dispatch_frames(d, c) != 0)
                continue;
            if (c->tls != NULL && !c->closing && c->blocked_on == NULL &&
                rc_tls_has_pending(c->tls))
                conn_read(d, c);
        }
    }
    if (!d->any_resume)
        uv_idle_stop(&d->spin);
    /* The turn ends here: what a connection was given to handle in it is
     * counted afresh from the next poll on, so a connection that came
     * back above has let every other connection be read first. */
    d->turn++;
}

/* Dispatches every whole frame buffered for c; a partial one stays. Stops
 * early (frames stay buffered) once a frame's handling sent to a busy
 * connection, so one burst of input cannot turn into unbounded output
 * towards a slow peer (e.g. a fan-out per frame). 0, or -1 if the
 * connection was closed. */
static int dispatch_frames(rc_dist *d, rc_conn *c)
{
    for (;;) {
        if (c->blocked_on != NULL)
            return 0;
        if (dispatch_left(d, c) == 0) {
            come_back(d, c);
            return 0;
        }
        frame_view fv;
        frame_result fr = frame_next(c->in.data + c->in.off, bytebuf_pending(&c->in),
                                     d->cfg.max_message_bytes, &fv);
        if (fr == FRAME_NEED_MORE)
            return 0;
        if (fr == FRAME_TOO_BIG) {
            d->stats.err_frame_too_big++;
            LOG_E(d->lg, MOD, "frame from %s exceeds --max-message-bytes %zu", c->peer,
                  d->cfg.max_message_bytes);
            rc_dist_close(d, c, "frame too big");
            return -1;
        }
        const char *payload = (const char *)c->in.data + c->in.off + fv.payload_off;
        size_t plen = fv.payload_len;
        if (fr == FRAME_DATA && c->hdr_in != NULL) {
            const char *why = NULL;
            c->plain.off = c->plain.len = 0;
            int rc = dist_hdr_decode(c->hdr_in, (const uint8_t *)payload, plen, &c->plain, &why);
            if (rc == RC_EFULL) {
                /* the same limit as on the wire: a frame is as big as what
                 * it hands up, however few bytes its atoms took to send */
                d->stats.err_frame_too_big++;
                LOG_E(d->lg, MOD, "frame from %s exceeds --max-message-bytes %zu with its "
                      "cached atoms written out", c->peer, d->cfg.max_message_bytes);
                rc_dist_close(d, c, "frame too big");
                return -1;
            }
            if (rc != RC_OK) {
                d->stats.err_dist_header++;
                LOG_E(d->lg, MOD, "frame from %s: %s", c->peer, why);
                rc_dist_close(d, c, why);
                return -1;
            }
            payload = (const char *)c->plain.data + c->plain.off;
            plen = bytebuf_pending(&c->plain);
        }
        size_t cost = plen > fv.consumed ? plen : fv.consumed;
        if (cost >= dispatch_left(d, c))
            d->stats.dispatch_budget_spent++;
        c->spent += cost;
        if (fr == FRAME_TICK) {
            d->stats.ticks_in++;
        } else {
            d->stats.frames_in++;
            rc_conn *outer = d->dispatching;
            d->dispatching = c;
            if (d->cb.on_frame)
                d->cb.on_frame(d->cb.ctx, c, payload, plen);
            d->dispatching = outer;
            if (c->closing)
                return -1;
        }
        bytebuf_consume(&c->in, fv.consumed);
    }
}


static void conn_read(rc_dist *d, rc_conn *c)
{
    /* Frames left from an earlier turn go first: reading behind them would
     * only grow the buffer. */
    if (!c->closing && c->blocked_on == NULL && bytebuf_pending(&c->in) > 0 &&
        dispatch_frames(d, c) != 0)
        return;
    size_t budget = READ_BUDGET_PER_TURN;
    while (budget > 0 && !c->closing && c->blocked_on == NULL && dispatch_left(d, c) > 0) {
        if (bytebuf_reserve(&c->in, READ_CHUNK) != 0) {
            rc_dist_close(d, c, "out of memory for input");
            return;
        }
        size_t room = c->in.cap - c->in.len;
        ssize_t r;
        if (c->tls != NULL) {
            char why[192];
            c->tls_read_wants_write = 0;
            r = rc_tls_read(c->tls, c->in.data + c->in.len, room, why, (int)sizeof why);
            if (r == RC_TLS_WANT_READ || r == RC_TLS_WANT_WRITE) {
                c->tls_read_wants_write = r == RC_TLS_WANT_WRITE;
                update_poll(d, c);
                break;
            }
            if (r == RC_TLS_ERROR) {
                d->stats.err_io++;
                rc_dist_close(d, c, why);
                return;
            }
        } else {
            r = read(c->fd, c->in.data + c->in.len, room);
        }
        if (r == 0) {
            rc_dist_close(d, c, "peer closed");
            return;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            d->stats.err_io++;
            char why[128];
            snprintf(why, sizeof why, "read: %s", strerror(errno));
            rc_dist_close(d, c, why);
            return;
        }
        c->in.len += (size_t)r;
        d->stats.bytes_in += (uint64_t)r;
        budget = (size_t)r >= budget ? 0 : budget - (size_t)r;
        c->last_read_ms = uv_now(d->loop);
        if (dispatch_frames(d, c) != 0)
            return;
    }
    if (c->tls != NULL && !c->closing && rc_tls_has_pending(c->tls))
        come_back(d, c);
    /* A big frame's buffers go as soon as nothing more is buffered, not at
     * the next tick (a pg sync's size would sit on the heap twice); a
     * steady stream keeps them. The decoded one was given back after every
     * big frame: growing it afresh for each of a burst (a page fault every
     * few kilobytes) cost ten times the decoding itself. */
    if (!c->closing && bytebuf_pending(&c->in) == 0) {
        if (c->in.cap > 4 * TRIM_KEEP)
            bytebuf_trim(&c->in, TRIM_KEEP);
        if (c->plain.cap > TRIM_KEEP) {
            c->plain.off = c->plain.len = 0;
            bytebuf_trim(&c->plain, TRIM_KEEP);
        }
    }
}

static void conn_on_poll(uv_poll_t *h, int status, int events)
{
    rc_conn *c = h->data;
    rc_dist *d = c->dist;
    if (c->closing)
        return;
    if (status < 0) {
        /* libuv reports a socket error (POLLERR) as UV_EBADF: name the
         * socket's own error instead, e.g. a reset from a peer that died. */
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        const char *why = uv_strerror(status);
        if (status == UV_EBADF && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
            soerr != 0)
            why = strerror(soerr);
        d->stats.err_io++;
        rc_dist_close(d, c, why);
        return;
    }
    if ((events & UV_WRITABLE) && c->tls_read_wants_write)
        conn_read(d, c);
    if ((events & UV_WRITABLE) && !c->closing)
        conn_flush(d, c);
    if ((events & UV_READABLE) && c->tls_write_wants_read && !c->closing)
        conn_flush(d, c);
    if ((events & (UV_READABLE | UV_DISCONNECT)) && !c->closing)
        conn_read(d, c);
}

static void on_tick_timer(uv_timer_t *t)
{
    rc_dist *d = t->data;
    uint64_t now = uv_now(d->loop);
    uint64_t tick_ms = (uint64_t)d->cfg.net_ticktime_s * 1000u / 4u;
    uint64_t dead_ms = (uint64_t)d->cfg.net_ticktime_s * 1000u;
    /* A connect ends by its deadline and its frames go with it; this catches
     * a queue whose connect could not even start. */
    uint64_t wait_ms = 2u * (uint64_t)d->cfg.handshake_timeout_ms + 1000u;
    char w[RC_WAITQ_NODE_MAX];
    while (now > wait_ms && rc_waitq_oldest(d->waitq, now - wait_ms, w)) {
        if (rc_dist_is_connecting(d, w))
            break;
        drop_waiting(d, w, "no connection within the handshake time");
    }
    bytebuf_trim(&d->hdr_scratch.flat, TRIM_KEEP);
    bytebuf_trim(&d->hdr_scratch.body, TRIM_KEEP);
    for (rc_conn *c = d->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->closing)
            continue;
        if (c->blocked_on != NULL) {
            /* Not reading is our doing: a peer with unread input is alive. */
            int avail = 0;
            if ((ioctl(c->fd, FIONREAD, &avail) == 0 && avail > 0) ||
                (c->tls != NULL && rc_tls_has_pending(c->tls)))
                c->last_read_ms = now;
        }
        if (now - c->last_read_ms > dead_ms) {
            d->stats.err_tick_timeout++;
            LOG_W(d->lg, MOD, "%s silent for %us (net_ticktime): dropping", c->peer,
                  d->cfg.net_ticktime_s);
            rc_dist_close(d, c, "net_tick_timeout");
            continue;
        }
        /* A burst's buffers are given back once the connection is quiet. */
        bytebuf_trim(&c->in, TRIM_KEEP);
        bytebuf_trim(&c->out, TRIM_KEEP);
        c->plain.off = c->plain.len = 0; /* the frame it held is long handled */
        bytebuf_trim(&c->plain, TRIM_KEEP);
        if (now - c->last_write_ms >= tick_ms && bytebuf_pending(&c->out) == 0) {
            static const uint8_t tick[4] = {0, 0, 0, 0};
            if (bytebuf_append(&c->out, tick, 4) == 0) {
                d->out_pending += 4;
                d->stats.ticks_out++;
                mark_dirty(d, c);
            }
        }
    }
}

/* ------------------------------------------------------------------ lifecycle */

/* A listening socket on cfg->listen_addr (any address when NULL: dual-stack
 * where IPv6 exists, since peers may resolve our host to ::1 or 127.0.1.1)
 * and the first free port of [port_min, port_max] (an ephemeral one when
 * both are 0). The descriptor, or -1 with a reason in err. */
static int open_listener(const rc_dist_config *cfg, char *err, int errlen, uint16_t *port_out)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    int family;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (cfg->listen_addr != NULL && cfg->listen_addr[0] != '\0') {
        if (inet_pton(AF_INET, cfg->listen_addr, &a4->sin_addr) == 1) {
            family = AF_INET;
        } else if (inet_pton(AF_INET6, cfg->listen_addr, &a6->sin6_addr) == 1) {
            family = AF_INET6;
        } else {
            snprintf(err, (size_t)errlen, "--listen %s: not an IPv4 or IPv6 address",
                     cfg->listen_addr);
            return -1;
        }
    } else {
        int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        family = probe >= 0 ? AF_INET6 : AF_INET;
        if (probe >= 0)
            close(probe);
        if (family == AF_INET6)
            a6->sin6_addr = in6addr_any;
        else
            a4->sin_addr.s_addr = htonl(INADDR_ANY);
    }
    ss.ss_family = (sa_family_t)family;
    sl = family == AF_INET6 ? sizeof *a6 : sizeof *a4;
    unsigned lo = cfg->port_min, hi = cfg->port_max ? cfg->port_max : cfg->port_min;
    if (hi < lo || hi > 65535) {
        snprintf(err, (size_t)errlen, "--dist-port: bad range %u-%u", lo, hi);
        return -1;
    }
    int last_errno = 0;
    for (unsigned port = lo;; port++) {
        int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(err, (size_t)errlen, "socket: %s", strerror(errno));
            return -1;
        }
        int one = 1, zero = 0;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (family == AF_INET6 && (cfg->listen_addr == NULL || cfg->listen_addr[0] == '\0'))
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (family == AF_INET6)
            a6->sin6_port = htons((uint16_t)port);
        else
            a4->sin_port = htons((uint16_t)port);
        if (bind(fd, (struct sockaddr *)&ss, sl) == 0 && listen(fd, 128) == 0 &&
            getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
            *port_out = ntohs(family == AF_INET6 ? a6->sin6_port : a4->sin_port);
            return fd;
        }
        last_errno = errno;
        close(fd);
        if (port >= hi || last_errno != EADDRINUSE)
            break;
    }
    if (lo == 0)
        snprintf(err, (size_t)errlen, "listen: %s", strerror(last_errno));
    else
        snprintf(err, (size_t)errlen, "listen on %s port %u-%u: %s",
                 cfg->listen_addr ? cfg->listen_addr : "any address", lo, hi,
                 strerror(last_errno));
    return -1;
}

/* What rc_dist_start made before a failure (each part may be missing). */
static int start_failed(rc_dist *d)
{
    if (d->epmd_fd >= 0)
        close(d->epmd_fd);
    if (d->listen_fd >= 0)
        close(d->listen_fd);
    rc_waitq_free(d->waitq);
    rc_tls_ctx_free(d->tls_ctx);
    pthread_mutex_destroy(&d->pending_mu);
    pthread_mutex_destroy(&d->done_mu);
    free(d);
    return -1;
}

int rc_dist_start(rc_dist **out, uv_loop_t *loop, const rc_logger *lg, const rc_dist_config *cfg,
                  const rc_dist_callbacks *cb, char *err, int errlen)
{
    rc_dist *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, (size_t)errlen, "out of memory");
        return -1;
    }
    d->loop = loop;
    d->lg = lg;
    d->cfg = *cfg;
    d->cb = *cb;
    d->busy_hit = RC_NODE_NONE;
    d->listen_fd = d->epmd_fd = -1;
    if (d->cfg.max_handshakes == 0)
        d->cfg.max_handshakes = 128;
    if (d->cfg.max_dials == 0)
        d->cfg.max_dials = 16;
    pthread_mutex_init(&d->pending_mu, NULL);
    pthread_mutex_init(&d->done_mu, NULL);
    if (strlen(cfg->alive) >= sizeof d->alive || strlen(cfg->node_name) >= sizeof d->node_name ||
        strlen(cfg->cookie) >= sizeof d->cookie) {
        snprintf(err, (size_t)errlen, "node name or cookie too long");
        return start_failed(d);
    }
    strcpy(d->alive, cfg->alive);
    strcpy(d->node_name, cfg->node_name);
    strcpy(d->cookie, cfg->cookie);
    d->cfg.alive = d->alive;
    d->cfg.node_name = d->node_name;
    d->cfg.cookie = d->cookie;
    d->cfg.tls = NULL; /* read by rc_tls_ctx_new below, not kept */
    if (d->cfg.net_ticktime_s < 4)
        d->cfg.net_ticktime_s = 4;

    d->waitq = rc_waitq_new(d->cfg.bp.wait_max_nodes, d->cfg.bp.wait_max_bytes);
    if (d->waitq == NULL) {
        snprintf(err, (size_t)errlen, "out of memory");
        return start_failed(d);
    }
    if (cfg->tls != NULL && rc_tls_ctx_new(&d->tls_ctx, cfg->tls, err, errlen) != 0)
        return start_failed(d);
    d->listen_fd = open_listener(cfg, err, errlen, &d->listen_port);
    if (d->listen_fd < 0)
        return start_failed(d);
    if (cfg->no_epmd) {
        d->creation = 1;
    } else {
        d->epmd_fd = epmd_register(d->alive, d->listen_port, &d->creation,
                                   sockio_now_ms() + 5000, err, errlen);
        if (d->epmd_fd < 0)
            return start_failed(d);
    }
    int fd = d->listen_fd;
    dist_hdr_scratch_init(&d->hdr_scratch);
    d->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    uv_async_init(loop, &d->done_async, on_done_async);
    d->done_async.data = d;
    uv_timer_init(loop, &d->accept_timer);
    d->accept_timer.data = d;
    uv_poll_init(loop, &d->listen_poll, fd);
    d->listen_poll.data = d;
    uv_poll_start(&d->listen_poll, UV_READABLE, on_listen);
    uv_idle_init(loop, &d->spin);
    d->spin.data = d;
    uv_check_init(loop, &d->flush_check);
    d->flush_check.data = d;
    uv_check_start(&d->flush_check, on_flush_check);
    uv_timer_init(loop, &d->tick_timer);
    d->tick_timer.data = d;
    uint64_t tick_ms = (uint64_t)d->cfg.net_ticktime_s * 1000u / 4u;
    uv_timer_start(&d->tick_timer, on_tick_timer, tick_ms, tick_ms);
    LOG_I(lg, MOD, "listening on port %u%s, registered with epmd (port %u) as %s, creation %u",
          d->listen_port, d->tls_ctx != NULL ? " (TLS)" : "", epmd_port(), d->node_name,
          d->creation);
    *out = d;
    return 0;
}

void rc_dist_stop(rc_dist *d)
{
    if (d->stopping)
        return;
    /* Flush first so goodbyes queued by upper layers reach the peers. */
    on_flush_check(&d->flush_check);
    d->stopping = 1;
    while (d->conns != NULL)
        rc_dist_close(d, d->conns, "node stopping");
    char w[RC_WAITQ_NODE_MAX];
    while (rc_waitq_oldest(d->waitq, UINT64_MAX, w))
        drop_waiting(d, w, "the node is stopping");
    /* Inbound handshakes end at once; outbound connects by their deadline;
     * jobs that never had a thread go now. */
    for (hs_job *j = d->inbound.head, *next; j != NULL; j = next) {
        next = j->in_next;
        if (j->started) {
            shutdown(j->fd, SHUT_RDWR);
            continue;
        }
        list_unlink(&d->inbound, j);
        close(j->fd);
        free(j);
    }
    for (hs_job *j; (j = d->dials.head) != NULL;) {
        list_unlink(&d->dials, j);
        HASH_DEL(d->connecting, j);
        free(j);
    }
    close_done_async_if_idle(d);
    uv_poll_stop(&d->listen_poll);
    uv_close((uv_handle_t *)&d->listen_poll, NULL);
    uv_timer_stop(&d->accept_timer);
    uv_close((uv_handle_t *)&d->accept_timer, NULL);
    uv_close((uv_handle_t *)&d->flush_check, NULL);
    uv_idle_stop(&d->spin);
    uv_close((uv_handle_t *)&d->spin, NULL);
    uv_timer_stop(&d->tick_timer);
    uv_close((uv_handle_t *)&d->tick_timer, NULL);
    if (d->epmd_fd >= 0) {
        close(d->epmd_fd);
        d->epmd_fd = -1;
    }
}

void rc_dist_free(rc_dist *d)
{
    if (d == NULL)
        return;
    if (d->listen_fd >= 0)
        close(d->listen_fd);
    if (d->epmd_fd >= 0)
        close(d->epmd_fd);
    if (d->reserve_fd >= 0)
        close(d->reserve_fd);
    pthread_mutex_destroy(&d->pending_mu);
    pthread_mutex_destroy(&d->done_mu);
    free(d->by_node);
    free(d->pending.v);
    free(d->up.v);
    free(d->accepting.v);
    rc_waitq_free(d->waitq);
    dist_hdr_scratch_free(&d->hdr_scratch);
    rc_tls_ctx_free(d->tls_ctx);
    free(d);
}
