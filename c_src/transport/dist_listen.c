/* dist_listen: the listening socket (address, port range) and accepting,
 * with a rest when descriptors run out. */
#include "transport/dist_internal.h"

static void on_accept_timer(uv_timer_t *t)
{
    rc_dist *d = t->data;
    if (d->stopping || !d->accept_paused)
        return;
    d->accept_paused = 0;
    uv_poll_start(&d->listen_poll, UV_READABLE, dist_on_listen);
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

void dist_on_listen(uv_poll_t *h, int status, int events)
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
        dist_list_append(&d->inbound, j);
        if (d->inbound.n > d->cfg.max_handshakes)
            dist_evict_oldest(d);
        dist_start_inbound(d);
    }
}

/* A listening socket on cfg->listen_addr (any address when NULL: dual-stack
 * where IPv6 exists, since peers may resolve our host to ::1 or 127.0.1.1)
 * and the first free port of [port_min, port_max] (an ephemeral one when
 * both are 0). The descriptor, or -1 with a reason in err. */
int dist_open_listener(const rc_dist_config *cfg, char *err, int errlen, uint16_t *port_out)
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
