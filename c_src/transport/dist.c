/* dist: the transport's life cycle (see dist.h, and dist_internal.h for
 * how its files share the work). */
#include "transport/dist_internal.h"

/* ------------------------------------------------------------------ lifecycle */

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
    d->listen_fd = dist_open_listener(cfg, err, errlen, &d->listen_port);
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
    uv_async_init(loop, &d->done_async, dist_on_done_async);
    d->done_async.data = d;
    uv_timer_init(loop, &d->accept_timer);
    d->accept_timer.data = d;
    uv_poll_init(loop, &d->listen_poll, fd);
    d->listen_poll.data = d;
    uv_poll_start(&d->listen_poll, UV_READABLE, dist_on_listen);
    uv_idle_init(loop, &d->spin);
    d->spin.data = d;
    uv_check_init(loop, &d->flush_check);
    d->flush_check.data = d;
    uv_check_start(&d->flush_check, dist_on_flush_check);
    uv_timer_init(loop, &d->tick_timer);
    d->tick_timer.data = d;
    uint64_t tick_ms = (uint64_t)d->cfg.net_ticktime_s * 1000u / 4u;
    uv_timer_start(&d->tick_timer, dist_on_tick_timer, tick_ms, tick_ms);
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
    dist_on_flush_check(&d->flush_check);
    d->stopping = 1;
    while (d->conns != NULL)
        rc_dist_close(d, d->conns, "node stopping");
    char w[RC_WAITQ_NODE_MAX];
    while (rc_waitq_oldest(d->waitq, UINT64_MAX, w))
        dist_drop_waiting(d, w, "the node is stopping");
    /* Inbound handshakes end at once; outbound connects by their deadline;
     * jobs that never had a thread go now. */
    for (hs_job *j = d->inbound.head, *next; j != NULL; j = next) {
        next = j->in_next;
        if (j->started) {
            shutdown(j->fd, SHUT_RDWR);
            continue;
        }
        dist_list_unlink(&d->inbound, j);
        close(j->fd);
        free(j);
    }
    for (hs_job *j; (j = d->dials.head) != NULL;) {
        dist_list_unlink(&d->dials, j);
        HASH_DEL(d->connecting, j);
        free(j);
    }
    dist_close_done_async_if_idle(d);
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
