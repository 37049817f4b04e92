%%% @doc The public API of the `reckon_cnode' application: the C node's
%%% name and state, its counters, its C-hosted emitter pools and broadcasts
%%% through it; plus the few functions {@link reckon_cnode_emitter_group}
%%% and {@link reckon_cnode_app} use to reach it.
%%%
%%% No process of this module is on the request path. The connection
%%% watcher {@link reckon_cnode_conn} (the process registered as
%%% `reckon_cnode') writes `{CNode, CallTimeout, Scope}' once into
%%% `persistent_term' at start; {@link reckon_cnode_emitter_group} and the
%%% functions of this module that talk to the C node read it there and call
%%% the C node's registered request server
%%% (`gen_server:call({reckon_cnode, CNode}, Request, CallTimeout)') from the
%%% caller's own process. The watcher only manages the C node's life cycle:
%%%
%%% <ul>
%%% <li><b>attach mode</b> (application env `cnode', default
%%%   `reckon_cnode@<this host>'): connects to a running C node;</li>
%%% <li><b>spawn mode</b> (env `spawn' = `true'): starts `priv/reckon_cnode'
%%%   as a port program named `<spawn_name>@<this host>' (default
%%%   `<this node's alive part>_cnode'), giving it this node's cookie through
%%%   the environment variable `RECKON_CNODE_COOKIE' (never on the command
%%%   line), waits for the name line it prints, restarts it if it exits and
%%%   stops it with the application (stdin closed; SIGTERM after 2 s). See
%%%   {@link reckon_cnode_port} and, for the env `tls', {@link
%%%   reckon_cnode_tls}.</li>
%%% </ul>
%%%
%%% In both modes the watcher monitors the C node (`erlang:monitor_node/2')
%%% and reconnects with capped exponential backoff (100 ms doubling to 5 s)
%%% when the connection is lost. {@link status/0} reports the current state.
%%%
%%% While connected, the watcher also keeps this node's copy of the C node's
%%% emitter-name table in the ETS table `reckon_cnode_names' ({@link
%%% reckon_cnode_names}: it subscribes to `reckon_cnode_names' on the C
%%% node, which sends the whole table and then every change as it happens),
%%% so `retrieve_emitters/2' for a persisted subscription is a local read.
%%% The copy is emptied when the connection goes and filled again when it
%%% comes back, and likewise when the C node stops sending changes to a
%%% connection that was busy. Only messages carrying the token of the
%%% current subscription change it.
%%%
%%% Errors raised by the functions that call the C node:
%%% <ul>
%%% <li>`error({reckon_cnode_unavailable, CNode})' when the C node cannot be
%%%   reached or does not answer within `call_timeout';</li>
%%% <li>`error(reckon_cnode_not_started)' when the application is not
%%%   running.</li>
%%% </ul>
%%% @end
-module(reckon_cnode).

-compile({no_auto_import, [node/0]}).

-include_lib("kernel/include/logger.hrl").

%% Public API
-export([start_link/0,
         node/0,
         status/0,
         stats/0,
         start_emitter_pool/4,
         start_emitter_pools/1,
         stop_emitter_pool/2,
         emitter_pool_info/2,
         broadcast_via_cnode/3]).

%% Used by reckon_cnode_emitter_group and reckon_cnode_app
-export([scope/0, request/1, unpublish/0, cached_emitters/2, names_applied/0]).

-export_type([status/0, mode/0]).

%% Registered name of the request server on the C node.
-define(CNODE_SERVER, reckon_cnode).
%% start_emitter_pools/1: starts per request, and requests in flight (each
%% request and its reply are buffered whole on both sides: small ones keep
%% that memory small).
-define(STARTS_PER_REQUEST, 250).
-define(STARTS_IN_FLIGHT, 4).

-type mode() :: attach | spawn.

-type status() :: #{node := node(),
                    connected := boolean(),
                    mode := mode(),
                    since := integer(),
                    scope := atom(),
                    call_timeout := timeout(),
                    os_pid := non_neg_integer() | undefined,
                    connects := non_neg_integer(),
                    disconnects := non_neg_integer(),
                    restarts := non_neg_integer(),
                    last_error := term()}.
%% `since' is the `erlang:system_time(millisecond)' of the last change of
%% `connected' (or of the shim's start). `os_pid' is the port program's OS
%% pid in spawn mode.

%%%===================================================================
%%% API
%%%===================================================================

%% @doc Starts the shim's process, the connection watcher {@link
%% reckon_cnode_conn}, registered locally as `reckon_cnode'. Called by
%% {@link reckon_cnode_sup}. Configuration comes from the application
%% environment of `reckon_cnode'.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    reckon_cnode_conn:start_link().

%% @doc The C node's name, read from `persistent_term' (no call).
%% Raises `error(reckon_cnode_not_started)' if the application is not running.
-spec node() -> node().
node() ->
    {CNode, _Timeout} = target(),
    CNode.

%% @doc The shim's view of the C node: mode, name, whether it is connected
%% and since when, plus counters. This is a call to the local shim process
%% (the connection watcher).
-spec status() -> status().
status() ->
    reckon_cnode_conn:status().

%% @doc Counters kept by the C node (connections, peers, groups, members,
%% messages and bytes in/out, errors by kind). Calls the C node directly.
-spec stats() -> map().
stats() ->
    case request(stats) of
        {ok, Stats} when is_map(Stats) -> Stats;
        Other -> erlang:error({reckon_cnode_bad_reply, Other})
    end.

%% @doc Starts `PoolSize' C-hosted emitters for subscription `Sub' of store
%% `S': C processes registered on the C node under the names of
%% `persist_emitters(S, Sub, PoolSize)' and joined to `group_key(S, Sub)'
%% in the C node's default `pg' scope (so every BEAM scope the C node peers
%% with lists them). Returns their pids, in the order of the names.
%%
%% Each behaves as reckon-db's emitter: `{broadcast, Topic, Event}' and
%% `{forward_to_local, Topic, Event}' make it send `{events, [Event]}' to
%% its subscriber, or, while it has none, to every member of group
%% `{S, Topic, subscribers}'; `{events, Events}' is passed to the
%% subscriber as is; a cast `{update_subscriber, Pid}' (e.g.
%% `gen_server:cast({Name, CNode}, {update_subscriber, Pid})') replaces the
%% subscriber. The emitter monitors its subscriber.
%%
%% When the subscriber exits (or its node goes), the pool stops taking
%% events: each emitter leaves `{S, Sub, emitters}', so no node's
%% `broadcast/3' picks it any more, and the C node logs once, naming the
%% store and the subscription. An event that still reaches it (sent before
%% the leave reached the sender's `pg' view) is dropped and counted: under
%% `no_subscriber' in {@link stats/0} and in {@link emitter_pool_info/2},
%% with a log line at the 1st, 2nd, 4th, ... drop. A pool started with
%% `undefined' has no subscriber to lose: it sends to the members of
%% `{S, Topic, subscribers}', and counts an event that finds none the
%% same way.
%%
%% With `--data-dir' the names are synced to disk, in order with
%% `persist_emitters/3' writes, before any emitter starts, so a C node
%% restarted on the same directory (even after `kill -9') still returns
%% them from `retrieve_emitters/2'. If that write fails, no emitter starts
%% and the result is `{error, {storage, Reason}}', `Reason' the store's
%% description of the failure (a string).
%%
%% Returns `{error, already_started}' if the C node already runs (or is
%% starting) a pool for `S'/`Sub' that is in its group; a pool whose
%% subscriber is gone is replaced, so a subscription that reckon-db
%% restarted with a new subscriber gets its C pool back with one call.
%% Raises `badarg' for arguments of the wrong type (non-atom `S',
%% non-binary `Sub', `PoolSize' not a positive integer, `Subscriber' neither
%% a pid nor `undefined') or a store id with a character above 255, and `system_limit' for emitter names over 255
%% characters, as the naming functions do.
-spec start_emitter_pool(reckon_cnode_emitter_group:store_id(),
                         reckon_cnode_emitter_group:subscription_id(),
                         pos_integer(), pid() | undefined) ->
          {ok, [pid()]} | {error, already_started | {storage, string()}}.
start_emitter_pool(S, Sub, PoolSize, Subscriber) ->
    Args = [S, Sub, PoolSize, Subscriber],
    case request({start_emitter_pool, S, Sub, PoolSize, Subscriber}) of
        {ok, Pids} when is_list(Pids) ->
            await_visible({S, Sub, emitters}, Pids),
            ok = names_applied(),
            {ok, Pids};
        {error, already_started} -> {error, already_started};
        {error, {storage, Reason}} = Error when is_list(Reason) -> Error;
        Reply -> raise_reply(Reply, Args)
    end.

%% @doc Starts many C-hosted emitter pools at once: for each `{S, Sub,
%% PoolSize, Subscriber}' of `Starts', in order, what {@link
%% start_emitter_pool/4} would return, except that where it would raise
%% `badarg' or `system_limit' for that start (e.g. emitter names over 255
%% characters) the element is `{error, badarg}' or `{error, system_limit}',
%% so one refused start does not hide the others' outcomes. A start of a
%% pool already started earlier in the list is `{error, already_started}'.
%%
%% The starts go to the C node in requests of up to 250, several in
%% flight at once, so a caller that sets up thousands of subscriptions does
%% not wait a round trip for each; with `--data-dir' the names of the starts
%% that arrive together are written in one transaction. Like
%% `start_emitter_pool/4' it returns once every new emitter is in this
%% node's `pg' view.
%%
%% Raises `badarg', before anything starts, if `Starts' is not a proper list
%% of 4-tuples whose elements have the types `start_emitter_pool/4' takes.
-spec start_emitter_pools([{reckon_cnode_emitter_group:store_id(),
                            reckon_cnode_emitter_group:subscription_id(),
                            pos_integer(), pid() | undefined}]) ->
          [{ok, [pid()]} |
           {error, already_started | {storage, string()} | badarg | system_limit}].
start_emitter_pools(Starts) ->
    _ = valid_starts(Starts) orelse erlang:error(badarg, [Starts]),
    {CNode, Timeout} = target(),
    Results = pipeline(chunks(Starts, ?STARTS_PER_REQUEST), CNode, Timeout, [], 0, []),
    _ = [await_visible({S, Sub, emitters}, Pids)
         || {{S, Sub, _, _}, {ok, Pids}} <- lists:zip(Starts, Results)],
    ok = names_applied(),
    Results.

%% @doc Stops the C-hosted emitter pool of `S'/`Sub': its emitters leave the
%% group (every BEAM scope the C node peers with drops them) and end, so
%% their registered names are free again. Returns `{error, not_found}' if
%% there is no such pool; raises `badarg' for arguments of the wrong type.
-spec stop_emitter_pool(reckon_cnode_emitter_group:store_id(),
                        reckon_cnode_emitter_group:subscription_id()) ->
          ok | {error, not_found}.
stop_emitter_pool(S, Sub) ->
    case request({stop_emitter_pool, S, Sub}) of
        {ok, ok} -> ok;
        {error, not_found} -> {error, not_found};
        Reply -> raise_reply(Reply, [S, Sub])
    end.

%% @doc The account of the C-hosted emitter pool of `S'/`Sub': `size'
%% (emitters), `joined' (emitters in `{S, Sub, emitters}'; 0 once the
%% subscriber is gone), `events_in' (events its emitters received, i.e.
%% the share of the subscription's broadcasts it took), `delivered'
%% (deliveries, one per subscriber), `no_subscriber' (events dropped for
%% want of a subscriber) and `subscriber_node_gone' (events dropped because
%% the subscriber went with its node). Returns `{error, not_found}' if there is no
%% such pool; raises `badarg' for arguments of the wrong type.
-spec emitter_pool_info(reckon_cnode_emitter_group:store_id(),
                        reckon_cnode_emitter_group:subscription_id()) ->
          {ok, #{size := non_neg_integer(), joined := non_neg_integer(),
                 events_in := non_neg_integer(), delivered := non_neg_integer(),
                 no_subscriber := non_neg_integer(),
                 subscriber_node_gone := non_neg_integer()}} | {error, not_found}.
emitter_pool_info(S, Sub) ->
    case request({emitter_pool_info, S, Sub}) of
        {ok, Info} when is_map(Info) -> {ok, Info};
        {error, not_found} -> {error, not_found};
        Reply -> raise_reply(Reply, [S, Sub])
    end.

%% @doc Broadcast through the C node: the C node picks a uniformly random
%% member of `{S, Sub, emitters}' in its own view (every node it is
%% connected to, plus its C emitters) and sends it
%% `{forward_to_local, Topic, Event}' if it lives on the calling process's
%% node, else `{broadcast, Topic, Event}', with `Topic = topic(S, Sub)'.
%%
%% One call to the C node per event; meant for callers that have no local
%% `pg' view of the group (e.g. a node connected only to the C node).
%% {@link reckon_cnode_emitter_group:broadcast/3} picks from the local view
%% instead and does not wait for the C node. Same results: `ok' or
%% `{error, no_emitters}' (the C node's view decides); a non-atom `S'
%% raises `function_clause' (as the seed's broadcast), a non-binary `Sub'
%% or a store id with a character above 255 raises `badarg'.
-spec broadcast_via_cnode(reckon_cnode_emitter_group:store_id(),
                          reckon_cnode_emitter_group:subscription_id(),
                          reckon_cnode_emitter_group:event()) ->
          ok | {error, no_emitters}.
broadcast_via_cnode(S, Sub, Event) when is_atom(S) ->
    case request({broadcast, S, Sub, Event}) of
        {ok, ok} -> ok;
        {error, no_emitters} -> {error, no_emitters};
        Reply -> raise_reply(Reply, [S, Sub, Event])
    end.

%% @doc This node's copy of the names `persist_emitters/3' stored for
%% `{S, Sub}' on the C node, or `error' when the copy has none (nothing
%% persisted for it, or the C node not connected): then ask the C node.
-spec cached_emitters(term(), term()) -> {ok, [atom()]} | error.
cached_emitters(S, Sub) ->
    reckon_cnode_names:lookup(S, Sub).

%% @doc Returns once the shim (the connection watcher, which owns the copy)
%% has applied every name-table change the C node sent before its last
%% answer to the caller: after a `persist_emitters/3' or a pool start,
%% {@link cached_emitters/2} then sees the new names.
-spec names_applied() -> ok.
names_applied() ->
    reckon_cnode_conn:names_applied().

%% `{CNode, CallTimeout}' as published in `persistent_term'.
%% Raises `error(reckon_cnode_not_started)' when the application is not
%% running.
-spec target() -> {node(), timeout()}.
target() ->
    case reckon_cnode_conn:published() of
        {CNode, Timeout, _Scope} -> {CNode, Timeout};
        undefined -> erlang:error(reckon_cnode_not_started)
    end.

%% @doc The local `pg' scope of the emitter groups (application env
%% `scope', default `reckon_db_pg'), as published in `persistent_term'.
%% Raises `error(reckon_cnode_not_started)' when the application is not
%% running.
-spec scope() -> atom().
scope() ->
    case reckon_cnode_conn:published() of
        {_CNode, _Timeout, Scope} -> Scope;
        undefined -> erlang:error(reckon_cnode_not_started)
    end.

%% @doc Sends `Request' to the C node's request server from the calling
%% process and returns the raw reply. Raises
%% `error({reckon_cnode_unavailable, CNode})' if the C node is not connected,
%% has no request server, or does not answer within `call_timeout'.
-spec request(term()) -> term().
request(Request) ->
    {CNode, Timeout} = target(),
    try
        gen_server:call({?CNODE_SERVER, CNode}, Request, Timeout)
    catch
        exit:{Reason, {gen_server, call, _}} when Reason =:= noproc;
                                                  Reason =:= noconnection;
                                                  Reason =:= timeout;
                                                  element(1, Reason) =:= nodedown ->
            erlang:error({reckon_cnode_unavailable, CNode})
    end.

%% Types as start_emitter_pool/4 takes them (the C node checks the rest).
-spec valid_starts(term()) -> boolean().
valid_starts(L) when is_list(L) ->
    try lists:all(fun({S, Sub, N, P}) ->
                          is_atom(S) andalso is_binary(Sub) andalso is_integer(N) andalso
                              N > 0 andalso (is_pid(P) orelse P =:= undefined);
                     (_) -> false
                  end, L)
    catch error:function_clause -> false % an improper list
    end;
valid_starts(_) ->
    false.

chunks([], _N) -> [];
chunks(L, N) when length(L) =< N -> [L];
chunks(L, N) ->
    {H, T} = lists:split(N, L),
    [H | chunks(T, N)].

%% Requests to the C node with up to ?STARTS_IN_FLIGHT of them awaiting
%% their replies; the replies' lists concatenated in order. On a failure the
%% requests still in flight are awaited (each until its own timeout) and
%% dropped, so no late reply is left in the caller's mailbox.
pipeline([], _CNode, _Timeout, [], _N, Acc) ->
    lists:append(lists:reverse(Acc));
pipeline([C | Cs], CNode, Timeout, Flight, N, Acc) when N < ?STARTS_IN_FLIGHT ->
    Req = gen_server:send_request({?CNODE_SERVER, CNode}, {start_emitter_pools, C}),
    Sent = erlang:monotonic_time(millisecond),
    pipeline(Cs, CNode, Timeout, Flight ++ [{Req, Sent, C}], N + 1, Acc);
pipeline(Cs, CNode, Timeout, [{Req, Sent, C} | Flight], N, Acc) ->
    case gen_server:receive_response(Req, time_left(Timeout, Sent)) of
        {reply, {ok, Results}} when is_list(Results), length(Results) =:= length(C) ->
            pipeline(Cs, CNode, Timeout, Flight, N - 1, [Results | Acc]);
        {reply, Reply} ->
            drop_replies(Flight, Timeout),
            raise_reply(Reply, [C]);
        _ -> % timeout, or {error, {Reason, _}} for noproc, noconnection...
            drop_replies(Flight, Timeout),
            erlang:error({reckon_cnode_unavailable, CNode})
    end.

drop_replies(Flight, Timeout) ->
    _ = [gen_server:receive_response(R, time_left(Timeout, Sent)) || {R, Sent, _} <- Flight],
    ok.

time_left(infinity, _Sent) -> infinity;
time_left(Timeout, Sent) -> max(0, Sent + Timeout - erlang:monotonic_time(millisecond)).

%% The C node sends its scope's join before its reply, on the same
%% connection, but this node's pg scope may not have applied the join yet
%% when the reply arrives: wait (up to call_timeout) until the local view
%% holds every new emitter, so that a broadcast/3 right after finds them.
-spec await_visible(tuple(), [pid()]) -> ok.
await_visible(Group, Pids) ->
    Scope = scope(),
    %% Mostly applied by the time the reply is read: then no monitor.
    case Pids -- pg:get_members(Scope, Group) of
        [] -> ok;
        _ -> await_visible(Scope, Group, Pids)
    end.

await_visible(Scope, Group, Pids) ->
    {_CNode, Timeout} = target(),
    {Ref, Members} = pg:monitor(Scope, Group),
    Deadline = erlang:monotonic_time(millisecond) + timeout_ms(Timeout),
    %% An emitter that has ended (its pool stopped by another caller before
    %% this view saw it join) will never show up: stop waiting for it.
    %% Their DOWNs carry {Ref, down}: no other DOWN of the caller's is taken.
    Missing = [{P, erlang:monitor(process, P, [{tag, {Ref, down}}])} || P <- Pids -- Members],
    try
        await_joined(Ref, Group, Missing, Deadline)
    after
        _ = pg:demonitor(Scope, Ref),
        [erlang:demonitor(M) || {_, M} <- Missing],
        flush_notifications(Ref)
    end.

await_joined(_Ref, _Group, [], _Deadline) ->
    ok;
await_joined(Ref, Group, Missing, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Ref, join, Group, Joined} ->
            await_joined(Ref, Group, [PM || {P, _} = PM <- Missing,
                                            not lists:member(P, Joined)], Deadline);
        {Ref, leave, Group, _} ->
            await_joined(Ref, Group, Missing, Deadline);
        {{Ref, down}, M, process, _, _} ->
            await_joined(Ref, Group, lists:keydelete(M, 2, Missing), Deadline)
    after Left ->
            ?LOG_WARNING("emitter pool ~0p started, but ~b of its emitters are not in this "
                         "node's pg view within call_timeout (is this node a pg peer of the "
                         "C node?)", [Group, length(Missing)]),
            ok
    end.

%% After pg:demonitor returns no notification is sent any more; those sent
%% before are in the mailbox already.
flush_notifications(Ref) ->
    receive
        {Ref, _, _, _} -> flush_notifications(Ref);
        {{Ref, down}, _, process, _, _} -> flush_notifications(Ref)
    after 0 ->
            ok
    end.

timeout_ms(infinity) -> 60000;
timeout_ms(T) -> T.

%% @private Removes the published target (application stop).
-spec unpublish() -> ok.
unpublish() ->
    reckon_cnode_conn:unpublish().

%%%===================================================================
%%% Helpers
%%%===================================================================

%% An error reply of the C node, raised in the API function: the seed's
%% errors (badarg, system_limit) and not_implemented as they are, anything
%% else as {reckon_cnode_bad_reply, Reply}.
-spec raise_reply(term(), [term()]) -> no_return().
raise_reply({error, Reason}, Args) when Reason =:= badarg;
                                        Reason =:= system_limit;
                                        Reason =:= not_implemented ->
    erlang:error(Reason, Args);
raise_reply(Reply, Args) ->
    erlang:error({reckon_cnode_bad_reply, Reply}, Args).

