/* dist_send: sends to a connection (busy marks and the back-pressure that
 * pauses the sender's own connection), and to a node without one, whose
 * frames wait (bounded) while a connect is made. */
#include "transport/dist_internal.h"

void dist_mark_dirty(rc_dist *d, rc_conn *c)
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
    dist_mark_dirty(d, c);
    if (!c->busy && bytebuf_pending(&c->out) > d->cfg.bp.busy_above) {
        c->busy = 1;
        d->stats.busy_destinations++;
    }
    if (c->busy) {
        rc_conn *src = d->dispatching;
        if (src == NULL) {
            d->busy_hit = c->node;
        } else if (src == c) {
            /* Its own output is busy: it is read on. A peer that paused the
             * same way (another C node) would wait on us while we wait on
             * it, and a BEAM peer's pg scope and net_kernel would suspend on
             * their busy port to us. What it makes us answer is bounded by
             * max_output_bytes, past which it is dropped as too slow. */
        } else if (src->blocked_on == NULL && !src->closing) {
            src->blocked_on = c;
            d->stats.read_pauses++;
            dist_update_poll(d, src);
        }
    }
    return 0;
}

/* A connection without headers, or none yet (the frame waits as a
 * pass-through one): the message goes in its parts. */
static int send_msg_parts(rc_dist *d, uint32_t node, rc_conn *c, const erlang_pid *to,
                          const rc_pmsg *m)
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

int rc_dist_send_msg_node(rc_dist *d, uint32_t node, const erlang_pid *to, rc_pmsg *m)
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

int rc_dist_sendm_cb(void *dist, uint32_t node, const erlang_pid *to, rc_pmsg *m)
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
void dist_drop_waiting(rc_dist *d, const char *node, const char *why)
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
void dist_unblock_waiters(rc_dist *d, rc_conn *dest)
{
    uint64_t now = uv_now(d->loop);
    for (rc_conn *c = d->conns; c != NULL; c = c->next) {
        if (c->blocked_on != dest)
            continue;
        c->blocked_on = NULL;
        c->last_read_ms = now; /* our own pause is not the peer's silence */
        c->resume = 1;
        d->any_resume = 1;
        dist_update_poll(d, c);
    }
}
