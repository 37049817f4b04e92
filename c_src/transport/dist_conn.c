/* dist_conn: one connection on the loop thread: polling, reads within a
 * budget, frames handed up within a budget of decoded bytes, writes
 * batched per loop turn, ticks, close. */
#include "transport/dist_internal.h"

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
    conn_io_free(c->io);
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
    dist_set_put(d, &d->up, c->peer, 0);
    /* Best effort: push what is queued (e.g. leave messages on shutdown). */
    if (bytebuf_pending(&c->out) > 0)
        dist_conn_flush(d, c);
    conn_io_shutdown(c->io);
    d->out_pending -= bytebuf_pending(&c->out); /* what never left is gone */
    if (d->dispatching == c)
        d->dispatching = NULL;
    c->blocked_on = NULL;
    dist_unblock_waiters(d, c);
    LOG_I(d->lg, MOD, "connection to %s closed: %s", c->peer, why);
    if (d->cb.on_down)
        d->cb.on_down(d->cb.ctx, c, why);
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, conn_on_closed);
}

/* Poll for reading unless reads are paused, and for writing while output
 * is pending. */
void dist_update_poll(rc_dist *d, rc_conn *c)
{
    (void)d;
    /* Output of a connection marked dirty is written at this turn's check:
     * asking for writability first would cost two epoll_ctl a turn. */
    int events =
        (c->blocked_on != NULL && !conn_io_write_wants_read(c->io) ? 0 : UV_READABLE) |
        ((bytebuf_pending(&c->out) > 0 && !c->dirty) || conn_io_read_wants_write(c->io)
             ? UV_WRITABLE
             : 0);
    if (c->poll_events == events || c->closing)
        return;
    c->poll_events = events;
    if (events == 0)
        uv_poll_stop(&c->poll);
    else
        uv_poll_start(&c->poll, events, dist_conn_on_poll);
}

void dist_conn_flush(rc_dist *d, rc_conn *c)
{
    size_t pending = bytebuf_pending(&c->out);
    if (pending == 0)
        return;
    char why[192];
    ssize_t w = conn_io_write(c->io, c->out.data + c->out.off, pending, why, (int)sizeof why);
    if (w == CONN_IO_AGAIN) {
        dist_update_poll(d, c);
        return;
    }
    if (w < 0) {
        d->stats.err_io++;
        if (!c->closing)
            rc_dist_close(d, c, why);
        return;
    }
    d->stats.bytes_out += (uint64_t)w;
    c->last_write_ms = uv_now(d->loop);
    bytebuf_consume(&c->out, (size_t)w);
    d->out_pending -= (size_t)w;
    if (c->busy && bytebuf_pending(&c->out) < d->cfg.bp.busy_below) {
        c->busy = 0;
        dist_unblock_waiters(d, c);
    }
    /* A partial write means the socket is full: wait for writability instead
     * of spinning, and never block the loop on a slow peer. */
    dist_update_poll(d, c);
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

void dist_on_flush_check(uv_check_t *h)
{
    rc_dist *d = h->data;
    while (d->dirty_head != NULL) {
        rc_conn *c = d->dirty_head;
        d->dirty_head = c->next_dirty;
        c->dirty = 0;
        c->next_dirty = NULL;
        if (!c->closing)
            dist_conn_flush(d, c);
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
            if (!c->closing && c->blocked_on == NULL && conn_io_has_pending(c->io))
                dist_conn_read(d, c);
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


void dist_conn_read(rc_dist *d, rc_conn *c)
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
        char why[192];
        ssize_t r = conn_io_read(c->io, c->in.data + c->in.len, room, why, (int)sizeof why);
        if (r == CONN_IO_AGAIN) {
            dist_update_poll(d, c);
            break;
        }
        if (r == CONN_IO_EOF) {
            rc_dist_close(d, c, "peer closed");
            return;
        }
        if (r < 0) {
            d->stats.err_io++;
            rc_dist_close(d, c, why);
            return;
        }
        c->in.len += (size_t)r;
        d->stats.bytes_in += (uint64_t)r;
        budget = (size_t)r >= budget ? 0 : budget - (size_t)r;
        c->last_read_ms = uv_now(d->loop);
        if (dispatch_frames(d, c) != 0)
            return;
        if (conn_io_read_drained(c->io))
            break; /* the poll says when more comes: no read just for EAGAIN */
    }
    if (!c->closing && conn_io_has_pending(c->io))
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

void dist_conn_on_poll(uv_poll_t *h, int status, int events)
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
    if ((events & UV_WRITABLE) && conn_io_read_wants_write(c->io))
        dist_conn_read(d, c);
    if ((events & UV_WRITABLE) && !c->closing)
        dist_conn_flush(d, c);
    if ((events & UV_READABLE) && !c->closing && conn_io_write_wants_read(c->io))
        dist_conn_flush(d, c);
    if ((events & (UV_READABLE | UV_DISCONNECT)) && !c->closing)
        dist_conn_read(d, c);
}

void dist_on_tick_timer(uv_timer_t *t)
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
        dist_drop_waiting(d, w, "no connection within the handshake time");
    }
    bytebuf_trim(&d->hdr_scratch.flat, TRIM_KEEP);
    bytebuf_trim(&d->hdr_scratch.body, TRIM_KEEP);
    for (rc_conn *c = d->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->closing)
            continue;
        if (c->blocked_on != NULL) {
            /* Not reading is our doing: a peer with unread input is alive. */
            if (conn_io_has_input(c->io))
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
                dist_mark_dirty(d, c);
            }
        }
    }
}
