/* A small producer on the embedding API: joins the cluster through a seed
 * node, waits for an emitter of {orders, <<"created">>, emitters}, and
 * publishes a few events from a producer thread (rc_broadcast is thread-safe).
 *
 *   examples/producer SEED_NODE COOKIE [COUNT]
 *
 * Build: make examples/producer. Try it with a BEAM node that joined an
 * emitter to the group, or with a C emitter pool started from Erlang:
 *   reckon_cnode:start_emitter_pool(orders, <<"created">>, 2, self()). */
#include "reckon_cnode.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *run_loop(void *node)
{
    rc_node_run(node);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s SEED_NODE COOKIE [COUNT]\n", argv[0]);
        return 2;
    }
    const char *seed = argv[1];
    long count = argc > 3 ? atol(argv[3]) : 10;

    rc_node_config cfg;
    rc_node_config_init(&cfg);
    cfg.sname = "example_producer";
    cfg.cookie = argv[2];
    cfg.seeds = &seed;
    cfg.nseeds = 1;
    rc_node *node;
    char err[256];
    if (rc_node_create(&node, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "cannot start: %s\n", err);
        return 1;
    }
    printf("running as %s\n", rc_node_name(node));
    pthread_t loop;
    if (pthread_create(&loop, NULL, run_loop, node) != 0) {
        fprintf(stderr, "cannot start the loop thread\n");
        rc_node_destroy(node);
        return 1;
    }

    const uint8_t store[] = "orders", sub[] = "created";
    char group[128];
    size_t glen = 0;
    rc_group_key_term(store, 6, sub, 7, group, sizeof group, &glen);
    /* the node connects and syncs after start: up to 10 s for an emitter */
    long emitters = rc_await_members(node, NULL, group, glen, 1, 10000);
    /* Every failure is said on stderr and ends in exit status 1: a run that
     * delivered nothing must never look like one that did. */
    int failed = 1;
    rc_target *target = NULL;
    if (emitters < 1) {
        fprintf(stderr, "no emitter joined {orders, <<\"created\">>, emitters} within 10 s "
                        "(is %s up, with that cookie and an emitter?)\n", seed);
    } else if ((target = rc_target_new(store, 6, sub, 7)) == NULL) {
        fprintf(stderr, "rc_target_new: out of memory\n");
    } else {
        int rc = RC_OK;
        long sent = 0;
        for (long i = 0; i < count && rc == RC_OK; i++) {
            char id[32], data[64];
            snprintf(id, sizeof id, "event-%ld", i);
            int dlen = snprintf(data, sizeof data, "{\"order\": %ld}", i);
            const char *mkeys[] = {"source"};
            const uint8_t *mvals[] = {(const uint8_t *)"examples/producer"};
            size_t mlens[] = {17};
            uint8_t *meta, *event;
            size_t meta_len, len;
            rc = rc_encode_binary_map(mkeys, mvals, mlens, 1, &meta, &meta_len);
            if (rc != RC_OK) {
                fprintf(stderr, "rc_encode_binary_map: %s\n", rc_strerror(rc));
                break;
            }
            rc_event_fields f;
            memset(&f, 0, sizeof f);
            f.event_id = (const uint8_t *)id;
            f.event_id_len = strlen(id);
            f.event_type = (const uint8_t *)"order_created";
            f.event_type_len = 13;
            f.stream_id = (const uint8_t *)"orders";
            f.stream_id_len = 6;
            f.version = (uint64_t)i;
            f.data = (const uint8_t *)data;
            f.data_len = (size_t)dlen;
            f.metadata = meta;
            f.metadata_len = meta_len;
            f.tags_undefined = 1;
            f.timestamp = (int64_t)time(NULL) * 1000;
            f.epoch_us = f.timestamp * 1000;
            f.data_content_type = (const uint8_t *)"application/json";
            f.data_content_type_len = 16;
            f.metadata_content_type = (const uint8_t *)"application/erlang-term";
            f.metadata_content_type_len = 23;
            rc = rc_event_build(&f, &event, &len);
            free(meta);
            if (rc != RC_OK) {
                fprintf(stderr, "rc_event_build: %s\n", rc_strerror(rc));
                break;
            }
            rc = rc_broadcast(node, target, event, len);
            free(event);
            if (rc != RC_OK)
                fprintf(stderr, "rc_broadcast of event-%ld: %s\n", i, rc_strerror(rc));
            else
                sent++;
        }
        if (rc == RC_OK && (rc = rc_broadcast_flush(node, 5000)) != RC_OK)
            fprintf(stderr, "rc_broadcast_flush: %s (events still queued)\n", rc_strerror(rc));
        if (rc == RC_OK) {
            printf("published %ld events to %ld emitter(s)\n", sent, emitters);
            failed = 0;
        }
        rc_target_free(target);
    }
    rc_node_stop(node);
    pthread_join(loop, NULL);
    rc_node_destroy(node);
    return failed;
}
