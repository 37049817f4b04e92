/* reckon_cnode.h — embedding API of the reckon_cnode C node.
 *
 * A node joins a BEAM cluster over the Erlang distribution protocol as a
 * hidden node and serves reckon-db emitter-group requests. Create it with a
 * config, then rc_node_run() drives it on the calling thread until
 * rc_node_stop() (callable from any thread or a signal-safe context via the
 * node's own SIGTERM/SIGINT handling) ends it.
 *
 * Results, as in ei.h: a function returns 0 (RC_OK), or a count where it
 * says so, on success, and on failure -1 (RC_EFAIL: the cause was logged)
 * or, where a caller can act on the cause, one of the negative RC_E* codes
 * below. The same codes are used inside the library; rc_strerror names
 * them. The naming functions are pure and thread-safe and fail as
 * reckon-db's reckon_db_emitter_group does: RC_EBADARG (badarg),
 * RC_ESYSTEM_LIMIT (system_limit), or RC_ENOSPACE (the caller's buffer is
 * too small).
 */
#ifndef RECKON_CNODE_H
#define RECKON_CNODE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    RC_OK = 0,
    RC_EFAIL = -1,         /* failed; the cause was logged */
    RC_EBADARG = -2,       /* an argument Erlang would refuse with badarg */
    RC_ESYSTEM_LIMIT = -3, /* past a limit (atom length, a table's cap): system_limit */
    RC_ENOSPACE = -4,      /* the caller's buffer is too small */
    RC_ENOMEM = -5,        /* out of memory */
    RC_ENO_EMITTERS = -6,  /* the group has no members: {error, no_emitters} */
    RC_ESTOPPED = -7,      /* the node is stopping */
    RC_EEXISTS = -8,       /* already there (a pool, a registered name) */
    RC_ENOT_FOUND = -9,    /* not there (a pool to stop) */
    RC_ESTORAGE = -10,     /* the data directory could not be written */
    RC_ETIMEOUT = -11,     /* the wait ended before the answer */
    RC_EFULL = -12         /* a bounded queue is full */
};
/* A short description of a result code ("bad argument", ...); never NULL. */
const char *rc_strerror(int code);

typedef struct rc_node rc_node;

typedef struct rc_node_config {
    const char *sname;          /* short name (host part added), default "reckon_cnode" */
    const char *name;           /* full name alive@host; overrides sname */
    const char *cookie;         /* required */
    const char *const *seeds;   /* nodes to connect to at start */
    size_t nseeds;
    const char *const *scopes;  /* pg scopes to serve; none = {"reckon_db_pg"} */
    size_t nscopes;
    const char *data_dir;       /* durable emitter-name table (LMDB) when set */
    size_t max_message_bytes;   /* frames above this close the connection; default 64 MiB */
    size_t max_output_bytes;    /* per-connection send backlog limit; default 1 GiB */
    unsigned net_ticktime_s;    /* default 60, as erl */
    int log_level;              /* 0 error, 1 warning, 2 info (default), 3 debug */
    int exit_on_stdin_close;    /* stop when stdin reaches EOF (port programs) */
    int handle_signals;         /* stop cleanly on SIGTERM/SIGINT (default 1) */
    int no_epmd;                /* skip epmd registration (tests, isolated use) */
    const char *listen_addr;    /* accept only on this local address; NULL = all */
    unsigned port_min, port_max; /* listen port range; 0, 0 = any free port */
    /* TLS distribution, as a BEAM's -proto_dist inet_tls: on when
     * tls_certfile is set; every connection both ways is then TLS. The
     * program must ignore SIGPIPE (OpenSSL writes with write(), so a peer
     * that resets its socket would otherwise end the process); the
     * reckon_cnode executable does. */
    const char *tls_certfile;   /* PEM certificate (chain) of this node */
    const char *tls_keyfile;    /* PEM key; NULL: in tls_certfile */
    const char *tls_cacertfile; /* PEM CA bundle peers' certificates must chain to */
    int tls_verify_none;        /* 1: accept any peer certificate (default 0: verify) */
    const char *tls_server_name; /* a name servers' certificates must carry; NULL: none */
    int tls_min_version;        /* 12 or 13 (TLS 1.2 / 1.3); 0: 12 */
} rc_node_config;

void rc_node_config_init(rc_node_config *cfg);
/* Registers with epmd and starts listening; the node is reachable when this
 * returns 0. On failure returns -1 with a reason in err. */
int rc_node_create(rc_node **out, const rc_node_config *cfg, char *err, size_t errlen);
const char *rc_node_name(const rc_node *n);
/* Runs the event loop on the calling thread until the node is stopped. */
int rc_node_run(rc_node *n);
/* Asks the node to stop: C processes end, connections close. Thread-safe. */
void rc_node_stop(rc_node *n);
void rc_node_destroy(rc_node *n);

/* ------------------------------------------------------------------ pg
 * Process groups of the node's pg scopes (OTP 25 pg protocol): C processes
 * join groups alongside BEAM processes, and the node sees every BEAM member
 * of every node it is connected to. Groups are Erlang terms in external
 * format without the version byte (any valid encoding; compared as terms).
 * These calls run on the loop thread: from callbacks (process handlers,
 * notifications) or before rc_node_run(). */

typedef struct rc_pid {
    uint32_t node; /* node index: rc_pid_node_name() gives its name */
    uint32_t num, serial, creation;
} rc_pid;

/* A message to a C process: the encoded term, version byte included. */
typedef void (*rc_process_fn)(void *ctx, const rc_pid *self, const char *msg, size_t len);

/* Starts a C process on the node (it ends with rc_process_exit or the node). */
int rc_process_spawn(rc_node *n, rc_process_fn fn, void *ctx, rc_pid *out);
int rc_process_exit(rc_node *n, const rc_pid *pid, const char *reason_atom);
const char *rc_pid_node_name(const rc_node *n, const rc_pid *pid);

/* Encodes the emitter group {Store, Sub, emitters} (no version byte). */
int rc_group_key_term(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub,
                      size_t sub_len, char *out, size_t cap, size_t *len);

/* scope NULL = the default scope (the first configured). 0 or -1. */
int rc_pg_join_local(rc_node *n, const char *scope, const char *group, size_t glen,
                     const rc_pid *pids, size_t npids);
int rc_pg_leave_local(rc_node *n, const char *scope, const char *group, size_t glen,
                      const rc_pid *pids, size_t npids);
/* Every member (all nodes, duplicates kept). The array belongs to the node
 * and is valid until the group next changes. */
int rc_pg_get_members(rc_node *n, const char *scope, const char *group, size_t glen,
                      const rc_pid **members, size_t *count);
/* Members that are C processes of this node, copied into out (cap entries);
 * returns how many there are in all, or -1. */
long rc_pg_get_local_members(rc_node *n, const char *scope, const char *group, size_t glen,
                             rc_pid *out, size_t cap);
/* Calls fn once per group (canonical encoding). */
int rc_pg_which_groups(rc_node *n, const char *scope,
                       void (*fn)(void *ctx, const char *group, size_t glen), void *ctx);

/* Group changes, like pg:monitor_scope/1: joined = 1 for joins, 0 for leaves. */
typedef void (*rc_pg_monitor_fn)(void *ctx, int joined, const char *group, size_t glen,
                                 const rc_pid *pids, size_t npids);
int rc_pg_monitor_scope(rc_node *n, const char *scope, rc_pg_monitor_fn fn, void *ctx);

/* ---------------------------------------------------------------- events
 * reckon-db's #event{} record built from C fields, encoded in the external
 * term format without the version byte (what rc_broadcast takes). */

typedef struct rc_event_fields {
    const uint8_t *event_id;   size_t event_id_len;
    const uint8_t *event_type; size_t event_type_len;
    const uint8_t *stream_id;  size_t stream_id_len;
    uint64_t version;
    const uint8_t *data;       size_t data_len;
    int data_is_term;          /* data is a pre-encoded term, else a binary */
    const uint8_t *metadata;   size_t metadata_len; /* pre-encoded map; NULL = #{} */
    const uint8_t *const *tags; const size_t *tag_lens; size_t ntags;
    int tags_undefined;        /* tags = undefined instead of a list */
    int64_t timestamp;
    int64_t epoch_us;
    const uint8_t *data_content_type;     size_t data_content_type_len;
    const uint8_t *metadata_content_type; size_t metadata_content_type_len;
    int legacy_11;             /* the 11-tuple of older reckon-gater (no tags) */
} rc_event_fields;

/* *out is malloc'd (free with free()). 0, or -1 on a bad pre-encoded term. */
int rc_event_build(const rc_event_fields *f, uint8_t **out, size_t *len);
/* #{Key => Value} with binary keys and values, e.g. for metadata. */
int rc_encode_binary_map(const char *const *keys, const uint8_t *const *vals,
                         const size_t *val_lens, size_t n, uint8_t **out, size_t *len);

/* ------------------------------------------------------------- broadcast
 * A target is a (Store, Sub) resolved once (topic, group, message heads).
 * rc_broadcast is callable from ANY thread: the event is copied into a queue
 * and the loop sends it to a uniformly random member of {Store, Sub,
 * emitters}: {forward_to_local, Topic, Event} if the member is a C process of
 * this node, else {broadcast, Topic, Event}. A full queue makes the producer
 * wait (nothing is dropped). Events for a group without members are counted
 * (stats `no_emitters`) and dropped, as the seed's broadcast returns
 * {error, no_emitters}; rc_broadcast_now gives that answer synchronously on
 * the loop thread. */

typedef struct rc_target rc_target;

/* NULL if the store has a character > 255 (badarg, as topic/2). Thread-safe. */
rc_target *rc_target_new(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub,
                         size_t sub_len);
void rc_target_free(rc_target *t); /* only once nothing queued uses it */

/* RC_OK (queued), RC_ESTOPPED once the node is stopping, RC_ESYSTEM_LIMIT
 * for an event larger than the queue, or RC_ENOMEM. */
int rc_broadcast(rc_node *n, const rc_target *t, const uint8_t *event, size_t len);
/* Waits until all events queued so far are handed to the connections:
 * RC_OK, RC_ETIMEOUT, or RC_ESTOPPED. */
int rc_broadcast_flush(rc_node *n, unsigned timeout_ms);
/* Loop thread: RC_OK, RC_ENO_EMITTERS, or RC_EFAIL. */
int rc_broadcast_now(rc_node *n, const rc_target *t, const uint8_t *event, size_t len);

/* ------------------------------------------------------- emitter pools
 * PoolSize C emitters with reckon-db's emitter behaviour, registered under
 * persist_emitters(Store, Sub, PoolSize) and joined to the group. Loop
 * thread. subscriber may be NULL (then fan-out goes to the members of
 * {Store, Topic, subscribers}).
 *
 * The pool's names are stored first, as persist_emitters stores them; with a
 * data_dir they are synced to disk before any emitter starts (the write runs
 * off the loop, in order with persist_emitters' writes), so a restarted node
 * on the same data_dir still returns them from retrieve_emitters. done
 * (required) reports the outcome once, on the loop thread: RC_OK with the
 * emitters' pids (npids = pool_size, in the order of the names; the array
 * is valid during the call only), or an error and no emitter started:
 * RC_EEXISTS (a name taken), RC_EBADARG / RC_ESYSTEM_LIMIT (a name not
 * registrable), RC_ENOMEM, RC_ESTORAGE (the write failed; logged with its
 * cause) or RC_ESTOPPED. Without a data_dir done is called before
 * rc_emitter_pool_start returns; with one, later. Returns RC_OK when done
 * will report, or an error if the start is refused at once (RC_EBADARG,
 * RC_EEXISTS: the pool already running or starting, RC_ENOMEM,
 * RC_ESTOPPED): done is then not called. rc_emitter_pool_stop: RC_OK,
 * RC_ENOT_FOUND or RC_EBADARG. */
typedef void (*rc_pool_started_fn)(void *ctx, int rc, const rc_pid *pids, size_t npids);
int rc_emitter_pool_start(rc_node *n, const uint8_t *store_utf8, size_t store_len,
                          const uint8_t *sub, size_t sub_len, unsigned pool_size,
                          const rc_pid *subscriber, rc_pool_started_fn done, void *ctx);
int rc_emitter_pool_stop(rc_node *n, const uint8_t *store_utf8, size_t store_len,
                         const uint8_t *sub, size_t sub_len);

/* --------------------------------------------------------- threading
 * Runs fn(n, ctx) on the loop thread and waits for it: the way for other
 * threads to use the loop-thread calls above. Must not be called from the
 * loop thread. RC_OK, or RC_ESTOPPED if the node is stopping. */
int rc_node_call(rc_node *n, void (*fn)(rc_node *n, void *ctx), void *ctx);
/* Waits until the node's view of `group` (scope NULL: the default one) has
 * at least `min` members, or timeout_ms passes: the node connects to its
 * seeds and syncs with their scopes after rc_node_create, so a program that
 * broadcasts at once should wait here first. Returns the member count seen
 * last (below min on timeout), or -1 if the node is stopping. Any thread but
 * the loop's. */
long rc_await_members(rc_node *n, const char *scope, const char *group, size_t glen, size_t min,
                      unsigned timeout_ms);
/* Loop thread: bytes queued for peers and not yet written to their sockets. */
size_t rc_node_output_pending(rc_node *n);
/* Counters: fills up to cap entries; returns how many exist. A gauge is a
 * level (connections, heap bytes), a counter only grows; error counters are
 * the ones reckon_cnode:stats/0 lists under `errors`. name and help are
 * static strings, valid on any thread for the life of the program. */
enum { RC_STAT_GAUGE = 0, RC_STAT_COUNTER = 1 };
typedef struct rc_stat {
    const char *name;
    uint64_t value;
    int kind;  /* RC_STAT_GAUGE or RC_STAT_COUNTER */
    int error; /* an error counter */
    const char *help;
} rc_stat;
size_t rc_node_stats(rc_node *n, rc_stat *out, size_t cap); /* loop thread */

/* ---------------------------------------------------------------- naming */

/* topic(S, Sub): store given as the UTF-8 bytes of the atom. */
int rc_topic(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub, size_t sub_len,
             uint8_t *out, size_t out_cap, size_t *out_len);
/* emitter_name(S, Sub) when n_decimal is NULL, else emitter_name(S, Sub, N)
 * with N written in decimal. The result is the atom's UTF-8 bytes. */
int rc_emitter_name(const uint8_t *store_utf8, size_t store_len, const uint8_t *sub,
                    size_t sub_len, const char *n_decimal, uint8_t *out, size_t out_cap,
                    size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
