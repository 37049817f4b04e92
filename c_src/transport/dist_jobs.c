/* dist_jobs: handshakes run on threads of their own, bounded by what is in
 * flight; outbound connects share one budget; the peer sets shared with
 * those threads. */
#include "transport/dist_internal.h"

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

void dist_set_put(rc_dist *d, name_set *s, const char *node, int on)
{
    pthread_mutex_lock(&d->pending_mu);
    set_put_locked(s, node, on);
    pthread_mutex_unlock(&d->pending_mu);
}

static void pending_set(rc_dist *d, const char *node, int on) { dist_set_put(d, &d->pending, node, on); }

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

/* Takes fd and tls once it returns a connection. */
static rc_conn *conn_new(rc_dist *d, int fd, rc_tls *tls, const hs_result *r)
{
    rc_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->dist = d;
    c->fd = fd;
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
        (c->io = conn_io_new(fd, tls)) == NULL || uv_poll_init(d->loop, &c->poll, fd) != 0) {
        conn_io_forget(c->io); /* the socket and the session stay the caller's */
        dist_hdr_out_free(c->hdr_out);
        dist_hdr_in_free(c->hdr_in);
        free(c);
        return NULL;
    }
    c->poll.data = c;
    c->poll_events = -1;
    dist_update_poll(d, c);
    d->by_node[c->node] = c;
    c->next = d->conns;
    if (d->conns != NULL)
        d->conns->prev = c;
    d->conns = c;
    d->nconns++;
    dist_set_put(d, &d->up, c->peer, 1);
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

void dist_list_append(job_list *l, hs_job *j)
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

void dist_list_unlink(job_list *l, hs_job *j)
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
    dist_list_unlink(&d->dials, j);
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
            dist_list_unlink(&d->inbound, j);
        if (j->result.peer_node[0] != '\0')
            dist_set_put(d, &d->accepting, j->result.peer_node, 0);
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
        dist_after_failed_handshake(d, j);
        free(j);
        return;
    }
    if (j->outbound)
        d->stats.conns_connected++;
    else
        d->stats.conns_accepted++;
    char desc[96];
    const char *tls = conn_io_describe(c->io, desc, sizeof desc);
    LOG_I(d->lg, MOD, "connected to %s (%s%s%s)", c->peer, j->outbound ? "outbound" : "inbound",
          tls != NULL ? ", " : "", tls != NULL ? tls : "");
    forget_waiting_dial(d, c->peer);
    /* What sends queued while it was being made goes first, in order. */
    uint64_t waited = take_waiting(d, c);
    if (waited > 0) {
        d->out_pending += bytebuf_pending(&c->out);
        d->stats.frames_out += waited;
        c->busy = bytebuf_pending(&c->out) > d->cfg.bp.busy_below;
        dist_mark_dirty(d, c);
    }
    free(j);
    if (d->cb.on_up)
        d->cb.on_up(d->cb.ctx, c);
}

/* Frames waiting for the node of a failed handshake: an inbound one that
 * failed leaves them to a connect of our own; when ours failed and the node
 * is not connecting to us either, they cannot be delivered. */
void dist_after_failed_handshake(rc_dist *d, const hs_job *j)
{
    const char *node = j->outbound ? j->node : j->result.peer_node;
    if (node[0] == '\0' || rc_waitq_bytes(d->waitq, node) == 0 || rc_dist_find(d, node) != NULL)
        return;
    if (!j->outbound) {
        rc_dist_connect(d, node);
        if (!rc_dist_is_connecting(d, node))
            dist_drop_waiting(d, node, "no connection could be started");
        return;
    }
    pthread_mutex_lock(&d->pending_mu);
    int accepting = set_index(&d->accepting, node) >= 0;
    pthread_mutex_unlock(&d->pending_mu);
    if (!accepting)
        dist_drop_waiting(d, node, j->err[0] != '\0' ? j->err : "the connection was not made");
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

void dist_close_done_async_if_idle(rc_dist *d)
{
    if (d->stopping && d->jobs_in_flight == 0 && !uv_is_closing((uv_handle_t *)&d->done_async))
        uv_close((uv_handle_t *)&d->done_async, NULL);
}

void dist_on_done_async(uv_async_t *a)
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
        dist_start_inbound(d);
        dist_start_dials(d);
    }
    dist_close_done_async_if_idle(d);
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
void dist_start_inbound(rc_dist *d)
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
void dist_evict_oldest(rc_dist *d)
{
    hs_job *j = d->inbound.head;
    dist_list_unlink(&d->inbound, j);
    d->stats.handshakes_evicted++;
    if (j->started) {
        shutdown(j->fd, SHUT_RDWR);
        return;
    }
    close(j->fd);
    free(j);
}

/* Dials waiting, oldest first, while fewer than cfg.max_dials run. */
void dist_start_dials(rc_dist *d)
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
            dist_list_unlink(&d->dials, j);
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
        dist_list_unlink(&d->dials, j);
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
    dist_list_append(&d->dials, j);
    dist_start_dials(d);
    return RC_OK;
}

int rc_dist_is_connecting(const rc_dist *d, const char *node)
{
    hs_job *j = NULL;
    HASH_FIND_STR(d->connecting, node, j);
    return j != NULL;
}
