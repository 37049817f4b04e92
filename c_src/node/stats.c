/* stats: one table of the node's counters, read by reckon_cnode:stats/0
 * (through the request server, as a map with the error counters under
 * `errors`), rc_node_stats (flat, same names) and the HTTP /metrics page
 * (which takes its kinds and help texts from here too). A counter added here
 * shows in all three. */
#include "node/node.h"

#include <malloc.h>

typedef struct node_stat {
    const char *name;
    uint64_t value;
    int error; /* listed under `errors` in the Erlang map */
    int kind;  /* RC_STAT_GAUGE or RC_STAT_COUNTER */
    const char *help;
} node_stat;

#define G RC_STAT_GAUGE
#define C RC_STAT_COUNTER

enum { NODE_STATS_MAX = 64 };

static size_t collect(rc_node *n, node_stat *out)
{
    const rc_dist_stats *ds = rc_dist_get_stats(n->dist);
    const rc_procs_stats *ps = rc_procs_get_stats(n->procs);
    const rc_bcast_stats *bs = rc_bcast_get_stats(n->bcast);
    const rc_emitters_stats *es = rc_emitters_get_stats(n->emitters);
    const rc_relays_stats *rs = rc_emitters_relay_stats(n->emitters);
    uint64_t peers = 0, groups = 0, members = 0, malformed = 0, foreign_scope = 0;
    for (size_t i = 0; i < n->nscopes; i++) {
        peers += rc_pg_peer_count(n->scopes[i]);
        groups += pgm_group_count(rc_pg_table(n->scopes[i]));
        members += pgm_member_count(rc_pg_table(n->scopes[i]));
        malformed += rc_pg_get_stats(n->scopes[i])->malformed;
        foreign_scope += rc_pg_get_stats(n->scopes[i])->foreign_scope;
    }
    /* Bytes in use on the C heap: lets tests and benchmarks see the cost of
     * tables (e.g. per pg membership) from outside. */
    struct mallinfo2 mi = mallinfo2();
    const node_stat all[] = {
        {"connections", rc_dist_connection_count(n->dist), 0, G,
         "Open distribution connections."},
        {"known_nodes", rc_cluster_known_count(n->cluster), 0, G,
         "Nodes the cluster layer knows of (seeds and discovered)."},
        {"cluster_dials", rc_cluster_get_stats(n->cluster)->dials, 0, C,
         "Connects the cluster layer started (seeds, discovered nodes, reconnects)."},
        {"cluster_nodeups", rc_cluster_get_stats(n->cluster)->nodeups, 0, C,
         "Nodeups peers told of (each makes the C node ask that peer for its nodes)."},
        {"cluster_set_aside", rc_cluster_get_stats(n->cluster)->set_aside, 0, C,
         "Discovered nodes set aside for a while after failing to connect repeatedly."},
        {"cluster_lists_refused", rc_cluster_get_stats(n->cluster)->answers_refused, 1, C,
         "Node lists refused: not the answer to this node's own question on that connection."},
        {"peers", peers, 0, G,
         "pg peers, summed over the served scopes."},
        {"groups", groups, 0, G,
         "pg groups with members, summed over the served scopes."},
        {"members", members, 0, G,
         "pg group members, summed over the served scopes."},
        {"processes", rc_procs_count(n->procs), 0, G,
         "C processes on this node."},
        {"remote_monitors", rc_procs_remote_monitors(n->procs), 0, G,
         "Monitors that remote processes hold on this node's processes."},
        {"emitter_name_tables", names_table_count(n->names), 0, G,
         "Emitter groups (store, subscription) in the emitter-name table."},
        {"emitter_pools", rc_emitters_pool_count(n->emitters), 0, G,
         "Emitter pools running."},
        {"emitter_pools_detached", rc_emitters_detached_count(n->emitters), 0, G,
         "Emitter pools whose subscriber is gone: out of their group, taking no events."},
        {"names_subscribers", rc_names_feed_subscribers(n->feed), 0, G,
         "Attached BEAM nodes holding a copy of the emitter-name table."},
        {"names_subscribers_dropped", rc_names_feed_dropped(n->feed), 0, C,
         "Copies of the emitter-name table dropped for a busy connection (they refill)."},
        {"messages_in", ps->msgs_in, 0, C,
         "Messages received by C processes."},
        {"messages_out", ps->msgs_out, 0, C,
         "Messages sent by C processes."},
        {"bytes_in", ds->bytes_in, 0, C,
         "Bytes read from distribution connections."},
        {"bytes_out", ds->bytes_out, 0, C,
         "Bytes written to distribution connections."},
        {"read_pauses", ds->read_pauses, 0, C,
         "Times a connection was not read while its sends waited on another, busy one."},
        {"dispatch_budget_spent", ds->dispatch_budget_spent, 0, C,
         "Times a connection's turn ended with its share of decoded bytes handed up; "
         "its further frames waited for the next turn."},
        {"busy_destinations", ds->busy_destinations, 0, C,
         "Times a connection's output passed the busy mark."},
        {"connect_failed", ds->connect_failed, 0, C,
         "Outbound connection attempts that failed."},
        {"send_connects", ds->send_connects, 0, C,
         "Connections started by a send."},
        {"broadcasts", bs->broadcasts, 0, C,
         "Broadcasts made."},
        {"no_emitters", bs->no_emitters, 0, C,
         "Broadcasts dropped because the group had no emitters."},
        {"broadcast_send_failed", bs->send_failed, 0, C,
         "Broadcast sends that failed."},
        {"events_in", es->events_in, 0, C,
         "Events received by C emitters."},
        {"events_out", es->events_out, 0, C,
         "Event deliveries by C emitters, relayed ones included."},
        {"relay_sends", es->relay_sends, 0, C,
         "Messages to relays, each for all of a node's subscribers."},
        {"pools_detached", es->pools_detached, 0, C,
         "Times an emitter pool lost its subscriber and left its group."},
        {"heap_bytes", (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd, 0, G,
         "Bytes in use on the C heap."},
        {"start_time_seconds", n->started_unix_s, 0, G,
         "When the node started, in seconds since the Unix epoch."},
        {"pg_malformed", malformed, 1, C,
         "Malformed pg messages ignored."},
        {"handshake", ds->err_handshake, 1, C,
         "Failed distribution handshakes."},
        {"handshakes_evicted", ds->handshakes_evicted, 1, C,
         "Unauthenticated connections cut off to make room."},
        {"handshake_threads_refused", ds->threads_unavailable, 1, C,
         "Handshake threads the system refused (a task limit); the connection waited or failed."},
        {"dials_refused", ds->dials_refused, 1, C,
         "Connects refused while too many were running and waiting."},
        {"accepts_shed", ds->accepts_shed, 1, C,
         "Connections refused at the descriptor limit."},
        {"frame_too_big", ds->err_frame_too_big, 1, C,
         "Connections closed for a frame above --max-message-bytes."},
        {"output_overflow", ds->err_output_overflow, 1, C,
         "Connections closed for a send backlog above the limit."},
        {"tick_timeout", ds->err_tick_timeout, 1, C,
         "Connections closed for a peer silent past the net tick time."},
        {"io", ds->err_io, 1, C,
         "Connections closed on a socket error."},
        {"dist_header", ds->err_dist_header, 1, C,
         "Frames whose distribution header could not be decoded."},
        {"malformed", ps->err_malformed, 1, C,
         "Malformed messages to C processes."},
        {"unknown_op", ps->err_unknown_op, 1, C,
         "Control messages of an unknown operation."},
        {"unknown_target", ps->err_unknown_target, 1, C,
         "Messages to C processes that do not exist."},
        {"monitor_limit", ps->err_monitor_limit, 1, C,
         "Monitors refused with system_limit."},
        {"link_limit", ps->err_link_limit, 1, C,
         "Links refused with system_limit."},
        {"pg_foreign_scope", foreign_scope, 1, C,
         "pg messages for another node's scope than their connection's (ignored)."},
        {"foreign_from", ps->err_foreign_from, 1, C,
         "Links, monitors and exits naming another node than their connection's "
         "(refused, connection closed)."},
        {"dropped", ps->msgs_dropped, 1, C,
         "Messages from C processes dropped."},
        {"no_subscriber", es->no_subscriber, 1, C,
         "Events C emitters dropped for want of a subscriber."},
        {"subscriber_node_gone", es->subscriber_node_gone, 1, C,
         "Events C emitters dropped because their subscriber went with its node."},
        {"relay_lost", rs->lost, 1, C,
         "Events sent to a BEAM node's relay that died before handling them."},
        {"relay_unaccounted", rs->unaccounted, 1, C,
         "Events sent to a relay that died on a node that could not say how many it handled."},
        {"dropped_unreachable", ds->dropped_unreachable, 1, C,
         "Frames dropped for a node that could not be reached."},
        {"dropped_queue_full", ds->dropped_queue_full, 1, C,
         "Frames refused while waiting for a connection."},
        {"ticks_in", ds->ticks_in, 0, C,
         "Ticks received from peers."},
    };
    _Static_assert(sizeof all / sizeof all[0] <= NODE_STATS_MAX, "raise NODE_STATS_MAX");
    size_t total = sizeof all / sizeof all[0];
    for (size_t i = 0; i < total; i++)
        out[i] = all[i];
    return total;
}

#undef G
#undef C

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
        out[i].kind = s[i].kind;
        out[i].error = s[i].error;
        out[i].help = s[i].help;
    }
    return total;
}
