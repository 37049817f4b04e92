/* stats: one table of the node's counters, read by both reckon_cnode:stats/0
 * (through the request server, as a map with the error counters under
 * `errors`) and rc_node_stats (flat, same names). A counter added here shows
 * in both. */
#include "node/node.h"

#include <malloc.h>

typedef struct node_stat {
    const char *name;
    uint64_t value;
    int error; /* listed under `errors` in the Erlang map */
} node_stat;

enum { NODE_STATS_MAX = 48 };

static size_t collect(rc_node *n, node_stat *out)
{
    const rc_dist_stats *ds = rc_dist_get_stats(n->dist);
    const rc_procs_stats *ps = rc_procs_get_stats(n->procs);
    const rc_bcast_stats *bs = rc_bcast_get_stats(n->bcast);
    const rc_emitters_stats *es = rc_emitters_get_stats(n->emitters);
    uint64_t peers = 0, groups = 0, members = 0, malformed = 0;
    for (size_t i = 0; i < n->nscopes; i++) {
        peers += rc_pg_peer_count(n->scopes[i]);
        groups += pgm_group_count(rc_pg_table(n->scopes[i]));
        members += pgm_member_count(rc_pg_table(n->scopes[i]));
        malformed += rc_pg_get_stats(n->scopes[i])->malformed;
    }
    /* Bytes in use on the C heap: lets tests and benchmarks see the cost of
     * tables (e.g. per pg membership) from outside. */
    struct mallinfo2 mi = mallinfo2();
    const node_stat all[] = {
        {"connections", rc_dist_connection_count(n->dist), 0},
        {"known_nodes", rc_cluster_known_count(n->cluster), 0},
        {"peers", peers, 0},
        {"groups", groups, 0},
        {"members", members, 0},
        {"processes", rc_procs_count(n->procs), 0},
        {"remote_monitors", rc_procs_remote_monitors(n->procs), 0},
        {"emitter_name_tables", names_table_count(n->names), 0},
        {"emitter_pools", rc_emitters_pool_count(n->emitters), 0},
        {"names_subscribers", rc_names_feed_subscribers(n->feed), 0},
        {"messages_in", ps->msgs_in, 0},
        {"messages_out", ps->msgs_out, 0},
        {"bytes_in", ds->bytes_in, 0},
        {"bytes_out", ds->bytes_out, 0},
        {"read_pauses", ds->read_pauses, 0},
        {"busy_destinations", ds->busy_destinations, 0},
        {"connect_failed", ds->connect_failed, 0},
        {"send_connects", ds->send_connects, 0},
        {"broadcasts", bs->broadcasts, 0},
        {"no_emitters", bs->no_emitters, 0},
        {"broadcast_send_failed", bs->send_failed, 0},
        {"events_in", es->events_in, 0},
        {"events_out", es->events_out, 0},
        {"relay_sends", es->relay_sends, 0},
        {"heap_bytes", (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd, 0},
        {"pg_malformed", malformed, 1},
        {"handshake", ds->err_handshake, 1},
        {"handshakes_evicted", ds->handshakes_evicted, 1},
        {"accepts_shed", ds->accepts_shed, 1},
        {"frame_too_big", ds->err_frame_too_big, 1},
        {"output_overflow", ds->err_output_overflow, 1},
        {"tick_timeout", ds->err_tick_timeout, 1},
        {"io", ds->err_io, 1},
        {"dist_header", ds->err_dist_header, 1},
        {"malformed", ps->err_malformed, 1},
        {"unknown_op", ps->err_unknown_op, 1},
        {"unknown_target", ps->err_unknown_target, 1},
        {"monitor_limit", ps->err_monitor_limit, 1},
        {"link_limit", ps->err_link_limit, 1},
        {"dropped", ps->msgs_dropped, 1},
        {"dropped_unreachable", ds->dropped_unreachable, 1},
        {"dropped_queue_full", ds->dropped_queue_full, 1},
        {"ticks_in", ds->ticks_in, 1},
    };
    _Static_assert(sizeof all / sizeof all[0] <= NODE_STATS_MAX, "raise NODE_STATS_MAX");
    size_t total = sizeof all / sizeof all[0];
    for (size_t i = 0; i < total; i++)
        out[i] = all[i];
    return total;
}

static void encode_part(ei_x_buff *x, const node_stat *s, size_t n, int error)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i].error == error;
    ei_x_encode_map_header(x, (long)k + (error ? 0 : 1));
    for (size_t i = 0; i < n; i++) {
        if (s[i].error != error)
            continue;
        ei_x_encode_atom(x, s[i].name);
        ei_x_encode_ulonglong(x, s[i].value);
    }
}

void node_stats_map(void *ctx, ei_x_buff *x)
{
    node_stat s[NODE_STATS_MAX];
    size_t n = collect(ctx, s);
    encode_part(x, s, n, 0); /* its header counts `errors` too */
    ei_x_encode_atom(x, "errors");
    encode_part(x, s, n, 1);
}

size_t rc_node_stats(rc_node *n, rc_stat *out, size_t cap)
{
    node_stat s[NODE_STATS_MAX];
    size_t total = collect(n, s);
    for (size_t i = 0; i < total && i < cap; i++) {
        out[i].name = s[i].name;
        out[i].value = s[i].value;
    }
    return total;
}
