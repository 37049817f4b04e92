/* cnode_producer: a C program on the embedding API that joins a cluster as
 * its own C node and broadcasts N events of about B bytes to the group
 * {Store, Sub, emitters}, then prints events/s and CPU µs per event, so the
 * C path can be measured against anyone's own BEAM emitters.
 *
 *   cnode_producer --seed NODE --cookie C --store S --sub SUB --count N --bytes B
 *                  [--sname NAME] [--threads T] [--wait-ms MS]
 *                  [--tls-cert F --tls-key F --tls-cacert F]
 *
 * Output lines (key value): events, events_per_sec, cpu_us_per_event,
 * start_us / end_us (wall clock, µs; end = everything written to sockets),
 * no_emitters. Exit status 1 if no member appeared within --wait-ms. */
#include "reckon_cnode.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

typedef struct job {
    rc_node *node;
    rc_target *target;
    const uint8_t *event;
    size_t len;
    long count;
    int failed;
} job;

static double wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void *run_loop(void *arg)
{
    rc_node_run(arg);
    return NULL;
}

static void *produce(void *arg)
{
    job *j = arg;
    for (long i = 0; i < j->count; i++)
        if (rc_broadcast(j->node, j->target, j->event, j->len) != RC_OK) {
            j->failed = 1;
            break;
        }
    return NULL;
}

typedef struct probe {
    const char *group;
    size_t glen;
    size_t members;
    size_t pending;
} probe;

static void output_pending(rc_node *n, void *ctx)
{
    ((probe *)ctx)->pending = rc_node_output_pending(n);
}

static void read_no_emitters(rc_node *n, void *ctx)
{
    rc_stat st[32];
    size_t k = rc_node_stats(n, st, 32);
    for (size_t i = 0; i < k && i < 32; i++)
        if (strcmp(st[i].name, "no_emitters") == 0)
            *(uint64_t *)ctx = st[i].value;
}

int main(int argc, char **argv)
{
    const char *seed = NULL, *cookie = NULL, *store = "bench", *sub = "sub", *sname = NULL;
    const char *tls_cert = NULL, *tls_key = NULL, *tls_ca = NULL;
    long count = 100000, bytes = 283, threads = 1, wait_ms = 10000;
    static const struct option opts[] = {
        {"seed", required_argument, NULL, 's'},   {"cookie", required_argument, NULL, 'c'},
        {"store", required_argument, NULL, 'S'},  {"sub", required_argument, NULL, 'u'},
        {"count", required_argument, NULL, 'n'},  {"bytes", required_argument, NULL, 'b'},
        {"sname", required_argument, NULL, 'N'},  {"threads", required_argument, NULL, 't'},
        {"wait-ms", required_argument, NULL, 'w'}, {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'K'}, {"tls-cacert", required_argument, NULL, 'A'},
        {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 's': seed = optarg; break;
        case 'c': cookie = optarg; break;
        case 'S': store = optarg; break;
        case 'u': sub = optarg; break;
        case 'n': count = atol(optarg); break;
        case 'b': bytes = atol(optarg); break;
        case 'N': sname = optarg; break;
        case 't': threads = atol(optarg); break;
        case 'w': wait_ms = atol(optarg); break;
        case 'C': tls_cert = optarg; break;
        case 'K': tls_key = optarg; break;
        case 'A': tls_ca = optarg; break;
        default:
            fprintf(stderr, "usage: cnode_producer --seed NODE --cookie C --store S --sub SUB "
                            "--count N --bytes B [--sname NAME] [--threads T] [--wait-ms MS]\n"
                            "       [--tls-cert F --tls-key F --tls-cacert F]\n");
            return 2;
        }
    }
    if (seed == NULL || cookie == NULL || count <= 0 || bytes < 64 || threads < 1 || threads > 64) {
        fprintf(stderr, "cnode_producer: --seed, --cookie, --count >= 1, --bytes >= 64 needed\n");
        return 2;
    }
    char namebuf[64];
    if (sname == NULL) {
        snprintf(namebuf, sizeof namebuf, "cnode_producer_%d", (int)getpid());
        sname = namebuf;
    }
    rc_node_config cfg;
    rc_node_config_init(&cfg);
    cfg.sname = sname;
    cfg.cookie = cookie;
    cfg.seeds = &seed;
    cfg.nseeds = 1;
    cfg.log_level = 1;
    cfg.handle_signals = 0;
    cfg.tls_certfile = tls_cert;
    cfg.tls_keyfile = tls_key;
    cfg.tls_cacertfile = tls_ca;
    if (tls_cert != NULL)
        signal(SIGPIPE, SIG_IGN); /* as the TLS API asks */
    rc_node *node;
    char err[256];
    if (rc_node_create(&node, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "cnode_producer: %s\n", err);
        return 1;
    }
    pthread_t loop;
    pthread_create(&loop, NULL, run_loop, node);

    /* An event of about `bytes` bytes: fixed fields plus a data binary. */
    size_t data_len = (size_t)bytes > 160 ? (size_t)bytes - 160 : 1;
    uint8_t *data = malloc(data_len);
    memset(data, 'x', data_len);
    rc_event_fields f;
    memset(&f, 0, sizeof f);
    f.event_id = (const uint8_t *)"0f8fad5b-d9cb-469f-a165-70867728950e";
    f.event_id_len = 36;
    f.event_type = (const uint8_t *)"order_created";
    f.event_type_len = 13;
    f.stream_id = (const uint8_t *)"order-42";
    f.stream_id_len = 8;
    f.version = 1;
    f.data = data;
    f.data_len = data_len;
    f.timestamp = 1700000000000;
    f.epoch_us = 1700000000000000;
    f.data_content_type = (const uint8_t *)"application/octet-stream";
    f.data_content_type_len = 24;
    f.metadata_content_type = (const uint8_t *)"application/json";
    f.metadata_content_type_len = 16;
    uint8_t *event;
    size_t len;
    if (rc_event_build(&f, &event, &len) != 0)
        return 1;

    char group[600];
    probe pr = {.group = group};
    rc_group_key_term((const uint8_t *)store, strlen(store), (const uint8_t *)sub, strlen(sub), group,
                      sizeof group, &pr.glen);
    long seen = rc_await_members(node, NULL, group, pr.glen, 1, (unsigned)wait_ms);
    pr.members = seen > 0 ? (size_t)seen : 0;
    if (pr.members == 0) {
        fprintf(stderr, "cnode_producer: no member of {%s, <<\"%s\">>, emitters} after %ld ms\n",
                store, sub, wait_ms);
        rc_node_stop(node);
        pthread_join(loop, NULL);
        rc_node_destroy(node);
        return 1;
    }
    rc_target *target = rc_target_new((const uint8_t *)store, strlen(store), (const uint8_t *)sub,
                                      strlen(sub));
    job jobs[64];
    pthread_t th[64];
    double t0 = wall_us(), c0 = cpu_us();
    for (long i = 0; i < threads; i++) {
        jobs[i] = (job){.node = node, .target = target, .event = event, .len = len,
                        .count = count / threads + (i < count % threads ? 1 : 0)};
        pthread_create(&th[i], NULL, produce, &jobs[i]);
    }
    int failed = 0;
    for (long i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        failed |= jobs[i].failed;
    }
    rc_broadcast_flush(node, 600000);
    for (;;) { /* until every byte is on the sockets */
        rc_node_call(node, output_pending, &pr);
        if (pr.pending == 0)
            break;
        usleep(200);
    }
    double t1 = wall_us(), c1 = cpu_us();
    uint64_t no_emitters = 0;
    rc_node_call(node, read_no_emitters, &no_emitters);
    printf("events %ld\nevent_bytes %zu\nmembers %zu\n", count, len, pr.members);
    printf("events_per_sec %.0f\ncpu_us_per_event %.3f\n", (double)count / ((t1 - t0) / 1e6),
           (c1 - c0) / (double)count);
    printf("start_us %.0f\nend_us %.0f\nno_emitters %llu\n", t0, t1, (unsigned long long)no_emitters);
    fflush(stdout);
    rc_node_stop(node);
    pthread_join(loop, NULL);
    rc_target_free(target);
    rc_node_destroy(node);
    free(event);
    free(data);
    return failed ? 1 : 0;
}
