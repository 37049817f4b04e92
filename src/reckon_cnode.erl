%%% @doc The `reckon_cnode' shim: finds or starts the C node, watches it and
%%% publishes its name (and the local `pg' scope of the emitter groups).
%%%
%%% This gen_server is <em>not</em> on the request path. At start it writes
%%% `{CNode, CallTimeout, Scope}' once into `persistent_term'; {@link
%%% reckon_cnode_emitter_group} and the functions of this module that talk to the
%%% C node read it there and call the C node's registered request server
%%% (`gen_server:call({reckon_cnode, CNode}, Request, CallTimeout)') from the
%%% caller's own process. The shim only manages the C node's life cycle:
%%%
%%% <ul>
%%% <li><b>attach mode</b> (application env `cnode', default
%%%   `reckon_cnode@<this host>'): connects to a running C node;</li>
%%% <li><b>spawn mode</b> (env `spawn' = `true'): starts `priv/reckon_cnode'
%%%   as a port program named `<spawn_name>@<this host>' (default
%%%   `<this node's alive part>_cnode'), giving it this node's cookie through
%%%   the environment variable `RECKON_CNODE_COOKIE' (never on the command
%%%   line), waits for the name line it prints, restarts it if it exits and
%%%   stops it with the application (stdin closed; SIGTERM after 2 s).</li>
%%% </ul>
%%%
%%% In both modes the shim monitors the C node (`erlang:monitor_node/2') and
%%% reconnects with capped exponential backoff (100 ms doubling to 5 s) when
%%% the connection is lost. {@link status/0} reports the current state.
%%%
%%% While connected, the shim also keeps this node's copy of the C node's
%%% emitter-name table in the ETS table `reckon_cnode_names' (it subscribes
%%% to `reckon_cnode_names' on the C node, which sends the whole table and
%%% then every change as it happens), so `retrieve_emitters/2' for a
%%% persisted subscription is a local read. The copy is emptied when the
%%% connection goes and filled again when it comes back, and likewise when
%%% the C node stops sending changes to a connection that was busy. Only
%%% messages carrying the token of the current subscription change it.
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
-behaviour(gen_server).

-compile({no_auto_import, [node/0]}).

-include_lib("kernel/include/logger.hrl").

%% Public API
-export([start_link/0,
         node/0,
         status/0,
         stats/0,
         start_emitter_pool/4,
         stop_emitter_pool/2,
         emitter_pool_info/2,
         broadcast_via_cnode/3]).

%% Used by reckon_cnode_emitter_group and reckon_cnode_app
-export([scope/0, request/1, unpublish/0, cached_emitters/2, names_applied/0]).

%% gen_server callbacks
-export([init/1, handle_continue/2, handle_call/3, handle_cast/2,
         handle_info/2, terminate/2]).

-export_type([status/0, mode/0]).

-define(SERVER, ?MODULE).
%% Registered name of the request server on the C node.
-define(CNODE_SERVER, reckon_cnode).
-define(PT_KEY, {?MODULE, target}).
-define(NAMES, reckon_cnode_names).
-define(MIN_BACKOFF, 100).
-define(MAX_BACKOFF, 5000).
%% How long terminate/2 waits for the port program after closing its stdin,
%% and then after SIGTERM.
-define(STOP_WAIT, 2000).
-define(KILL_WAIT, 1000).

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

-type timer_kind() :: connect | restart | start_timeout.

-record(state, {
          mode :: mode(),
          cnode :: node(),
          scope :: atom(),
          call_timeout :: timeout(),
          connected = false :: boolean(),
          since :: integer(),
          backoff = ?MIN_BACKOFF :: pos_integer(),
          timer :: undefined | {reference(), timer_kind()},
          connector :: undefined | {pid(), reference()},
          %% spawn mode only
          spawn_cfg :: undefined | spawn_cfg(),
          port :: undefined | port(),
          os_pid :: undefined | non_neg_integer(),
          %% starting: waiting for the name line; running: name known
          phase :: undefined | starting | running,
          line_acc = [] :: string(),
          %% counters for status/0
          connects = 0 :: non_neg_integer(),
          disconnects = 0 :: non_neg_integer(),
          restarts = 0 :: non_neg_integer(),
          last_error :: term(),
          %% the pending subscription to the C node's name table, and the
          %% token its pushes carry (anything else is not from the C node)
          names_req :: undefined | gen_server:request_id(),
          names_token :: undefined | reference()
         }).

-type spawn_cfg() :: #{exe := file:filename(),
                       args := [string()],
                       cookie := string(),
                       start_timeout := pos_integer()}.

%%%===================================================================
%%% API
%%%===================================================================

%% @doc Starts the shim, registered locally as `reckon_cnode'. Called by
%% {@link reckon_cnode_sup}. Configuration comes from the application
%% environment of `reckon_cnode'.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?SERVER}, ?MODULE, [], []).

%% @doc The C node's name, read from `persistent_term' (no call).
%% Raises `error(reckon_cnode_not_started)' if the application is not running.
-spec node() -> node().
node() ->
    {CNode, _Timeout} = target(),
    CNode.

%% @doc The shim's view of the C node: mode, name, whether it is connected
%% and since when, plus counters. This is a call to the local shim process.
-spec status() -> status().
status() ->
    gen_server:call(?SERVER, status).

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
    try ets:lookup(?NAMES, {S, Sub, emitters}) of
        [{_, Names}] -> {ok, Names};
        [] -> error
    catch
        error:badarg -> error
    end.

%% @doc Returns once the shim has applied every name-table change the C node
%% sent before its last answer to the caller: after a `persist_emitters/3'
%% or a pool start, {@link cached_emitters/2} then sees the new names.
-spec names_applied() -> ok.
names_applied() ->
    try gen_server:call(?SERVER, names_applied, 5000) of
        ok -> ok
    catch
        exit:_ -> ok
    end.

%% `{CNode, CallTimeout}' as published in `persistent_term'.
%% Raises `error(reckon_cnode_not_started)' when the application is not
%% running.
-spec target() -> {node(), timeout()}.
target() ->
    case persistent_term:get(?PT_KEY, undefined) of
        {CNode, Timeout, _Scope} -> {CNode, Timeout};
        undefined -> erlang:error(reckon_cnode_not_started)
    end.

%% @doc The local `pg' scope of the emitter groups (application env
%% `scope', default `reckon_db_pg'), as published in `persistent_term'.
%% Raises `error(reckon_cnode_not_started)' when the application is not
%% running.
-spec scope() -> atom().
scope() ->
    case persistent_term:get(?PT_KEY, undefined) of
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

%% The C node sends its scope's join before its reply, on the same
%% connection, but this node's pg scope may not have applied the join yet
%% when the reply arrives: wait (up to call_timeout) until the local view
%% holds every new emitter, so that a broadcast/3 right after finds them.
-spec await_visible(tuple(), [pid()]) -> ok.
await_visible(Group, Pids) ->
    {_CNode, Timeout} = target(),
    Scope = scope(),
    {Ref, Members} = pg:monitor(Scope, Group),
    Deadline = erlang:monotonic_time(millisecond) + timeout_ms(Timeout),
    try
        await_joined(Ref, Group, Pids -- Members, Deadline)
    after
        _ = pg:demonitor(Scope, Ref),
        flush_notifications(Ref)
    end.

await_joined(_Ref, _Group, [], _Deadline) ->
    ok;
await_joined(Ref, Group, Missing, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Ref, join, Group, Joined} ->
            await_joined(Ref, Group, Missing -- Joined, Deadline);
        {Ref, leave, Group, _} ->
            await_joined(Ref, Group, Missing, Deadline)
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
        {Ref, _, _, _} -> flush_notifications(Ref)
    after 0 ->
            ok
    end.

timeout_ms(infinity) -> 60000;
timeout_ms(T) -> T.

%% @private Removes the published target (application stop).
-spec unpublish() -> ok.
unpublish() ->
    _ = persistent_term:erase(?PT_KEY),
    ok.

%%%===================================================================
%%% gen_server callbacks
%%%===================================================================

%% @private
-spec init([]) -> {ok, #state{}, {continue, connect}} | {stop, term()}.
init([]) ->
    process_flag(trap_exit, true),
    Scope = env(scope, reckon_db_pg),
    Timeout = env(call_timeout, 5000),
    case {erlang:is_alive(), is_atom(Scope), valid_timeout(Timeout)} of
        {false, _, _} ->
            {stop, {not_distributed,
                    "reckon_cnode needs a distributed node "
                    "(start erl with -sname or -name)"}};
        {true, false, _} ->
            {stop, {bad_env, scope, Scope}};
        {true, true, false} ->
            {stop, {bad_env, call_timeout, Timeout}};
        {true, true, true} ->
            ?NAMES = ets:new(?NAMES, [named_table, protected, set, {read_concurrency, true}]),
            Base = #state{scope = Scope, call_timeout = Timeout,
                          since = wall_ms(), cnode = nonode@nohost,
                          mode = attach},
            init_mode(env(spawn, false), Base)
    end.

init_mode(true, State0) ->
    case spawn_config(State0#state.scope) of
        {ok, Cfg} ->
            State = State0#state{mode = spawn, spawn_cfg = Cfg},
            case open_cnode(Cfg) of
                {ok, Port, OsPid} ->
                    Deadline = now_ms() + maps:get(start_timeout, Cfg),
                    case await_name(Port, Deadline, []) of
                        {ok, CNode} ->
                            ?LOG_INFO("reckon_cnode: started C node ~s (os pid ~p)",
                                      [CNode, OsPid]),
                            publish(CNode, State#state.call_timeout, State#state.scope),
                            after_first_connect(
                              first_connect(State#state{cnode = CNode, port = Port,
                                                        os_pid = OsPid, phase = running}),
                              fun() -> stop_port(Port, OsPid) end);
                        {error, Reason} ->
                            stop_port(Port, OsPid),
                            {stop, {cnode_start_failed, Reason}}
                    end;
                {error, Reason} ->
                    {stop, {cnode_start_failed, Reason}}
            end;
        {error, Reason} ->
            {stop, Reason}
    end;
init_mode(false, State) ->
    case cnode_name(env(cnode, undefined)) of
        {ok, CNode} ->
            publish(CNode, State#state.call_timeout, State#state.scope),
            after_first_connect(first_connect(State#state{mode = attach, cnode = CNode}),
                                fun() -> ok end);
        {error, Reason} ->
            {stop, Reason}
    end;
init_mode(Other, _State) ->
    {stop, {bad_env, spawn, Other}}.

%% The shim starts unless the first connect refused the C node; then
%% nothing it published or started is left behind.
after_first_connect({stop, Reason}, Undo) ->
    Undo(),
    _ = unpublish(),
    {stop, Reason};
after_first_connect(#state{} = State, _Undo) ->
    {ok, State, {continue, connect}}.

%% @private
-spec handle_continue(connect, #state{}) -> {noreply, #state{}}.
handle_continue(connect, #state{connected = true} = State) ->
    {noreply, State};
handle_continue(connect, State) ->
    {noreply, start_connect(State)}.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) ->
          {reply, term(), #state{}}.
handle_call(status, _From, State) ->
    {reply, status_map(State), State};
handle_call(names_applied, _From, State) ->
    {reply, ok, State};
handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
%% The C node's name table: its changes, and the answer to our subscription.
%% Only what carries the token of our current subscription is the C node's
%% feed: anything else could come from any process of the cluster.
handle_info({'$reckon_names', Token, Key, Names},
            #state{names_token = Token, connected = true} = State)
  when is_reference(Token), is_list(Names) ->
    true = ets:insert(?NAMES, {Key, Names}),
    {noreply, State};
handle_info({'$reckon_names_dropped', Token},
            #state{names_token = Token, connected = true} = State)
  when is_reference(Token) ->
    %% the C node stopped sending us changes (our connection was busy): the
    %% copy is stale, so empty it and ask for a fresh one
    ?LOG_WARNING("reckon_cnode: the copy of the C node's name table fell behind "
                 "(the connection was busy); refilling it", []),
    true = ets:delete_all_objects(?NAMES),
    {noreply, subscribe_names(State)};
handle_info({'$reckon_names', _, _, _}, State) ->
    {noreply, State};
handle_info({'$reckon_names_dropped', _}, State) ->
    {noreply, State};
handle_info(Msg, #state{names_req = Req} = State) when Req =/= undefined ->
    case gen_server:check_response(Msg, Req) of
        no_reply -> handle_other_info(Msg, State);
        {reply, {ok, Table}} ->
            true = ets:delete_all_objects(?NAMES),
            true = ets:insert(?NAMES, Table),
            {noreply, State#state{names_req = undefined}};
        Failed ->
            ?LOG_WARNING("reckon_cnode: no copy of the C node's name table (~0p): "
                         "retrieve_emitters/2 asks the C node each time", [Failed]),
            {noreply, State#state{names_req = undefined}}
    end;
handle_info(Msg, State) ->
    handle_other_info(Msg, State).

%% Result of a connection attempt.
handle_other_info({connect_result, Pid, Result},
            #state{connector = {Pid, Ref}} = State0) ->
    true = erlang:demonitor(Ref, [flush]),
    State = State0#state{connector = undefined},
    case Result of
        ok ->
            {noreply, mark_connected(State)};
        {error, Reason} ->
            {noreply, next_step(connect_error(State, Reason))}
    end;
handle_other_info({'DOWN', Ref, process, Pid, Crash},
            #state{connector = {Pid, Ref}} = State) ->
    {noreply, next_step(State#state{connector = undefined,
                                    last_error = {connector, Crash}})};
handle_other_info({nodedown, CNode}, #state{cnode = CNode, connected = true} = State) ->
    ?LOG_WARNING("reckon_cnode: lost connection to C node ~s", [CNode]),
    true = ets:delete_all_objects(?NAMES),
    {noreply, next_step(State#state{names_req = undefined, names_token = undefined,
                                    connected = false, since = wall_ms(),
                                    disconnects = State#state.disconnects + 1,
                                    last_error = nodedown})};
handle_other_info({nodedown, _}, State) ->
    {noreply, State};
%% Timers: reconnect, restart of the port program, start timeout.
handle_other_info({timeout, Ref, Kind}, #state{timer = {Ref, Kind}} = State0) ->
    State = State0#state{timer = undefined},
    case Kind of
        connect ->
            {noreply, start_connect(State)};
        restart ->
            {noreply, restart_port(State)};
        start_timeout ->
            ?LOG_WARNING("reckon_cnode: C node did not print its name in time; "
                         "killing it"),
            stop_port(State#state.port, State#state.os_pid),
            {noreply, next_step(State#state{port = undefined, os_pid = undefined,
                                            phase = undefined, line_acc = [],
                                            last_error = cnode_start_timeout})}
    end;
handle_other_info({timeout, _StaleRef, _Kind}, State) ->
    {noreply, State};
%% Port program output: the first line is the node name.
handle_other_info({Port, {data, {Eol, Part}}}, #state{port = Port} = State) ->
    {noreply, port_output(Eol, Part, State)};
handle_other_info({Port, {exit_status, Status}}, #state{port = Port} = State0) ->
    ?LOG_WARNING("reckon_cnode: C node ~s (os pid ~p) exited with status ~p",
                 [State0#state.cnode, State0#state.os_pid, Status]),
    State1 = stop_connector(cancel_timer(State0#state{names_req = undefined,
                                                      names_token = undefined})),
    true = ets:delete_all_objects(?NAMES),
    State2 = case State1#state.connected of
                 true -> State1#state{connected = false, since = wall_ms(),
                                      disconnects = State1#state.disconnects + 1};
                 false -> State1
             end,
    {noreply, next_step(State2#state{port = undefined, os_pid = undefined,
                                     phase = undefined, line_acc = [],
                                     last_error = {cnode_exited, Status}})};
handle_other_info({'EXIT', _PortOrPid, _Reason}, State) ->
    %% Port closed after exit_status, or a stray link: nothing to do.
    {noreply, State};
handle_other_info(_Info, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{port = Port, os_pid = OsPid} = State) ->
    _ = stop_connector(State),
    case Port of
        undefined -> ok;
        _ -> stop_port(Port, OsPid)
    end.

%%%===================================================================
%%% Connection management
%%%===================================================================

%% Decide what to do after a failure: in spawn mode without a running port
%% program, restart it; while it starts, wait; otherwise retry the
%% connection. Nothing is scheduled while a timer or a connector is pending.
next_step(#state{timer = T, connector = C} = State)
  when T =/= undefined; C =/= undefined ->
    State;
next_step(#state{connected = true} = State) ->
    State;
next_step(#state{mode = spawn, port = undefined} = State) ->
    schedule(restart, State);
next_step(#state{mode = spawn, phase = starting} = State) ->
    State;
next_step(State) ->
    schedule(connect, State).

schedule(Kind, #state{backoff = Backoff} = State) ->
    Ref = erlang:start_timer(Backoff, self(), Kind),
    State#state{timer = {Ref, Kind},
                backoff = min(Backoff * 2, ?MAX_BACKOFF)}.

cancel_timer(#state{timer = undefined} = State) ->
    State;
cancel_timer(#state{timer = {Ref, _}} = State) ->
    _ = erlang:cancel_timer(Ref, [{async, false}, {info, false}]),
    State#state{timer = undefined}.

%% Connection attempts run in a helper process so that a slow connection
%% set-up never blocks status/0 or the handling of port messages. The
%% attempt succeeds when the request server on the C node answers ping.
start_connect(#state{connector = undefined, cnode = CNode, scope = Scope,
                     call_timeout = Timeout} = State) ->
    Shim = self(),
    Probe = fun() -> Shim ! {connect_result, self(), probe(CNode, Scope, Timeout)} end,
    State#state{connector = spawn_monitor(Probe)};
start_connect(State) ->
    State.

%% The first attempt runs inside init, so that once the application has
%% started, a reachable C node is connected and both pg scopes know each
%% other: a join made right after start is then seen by the C node. If the C
%% node is not there, the usual background retries take over.
%% A C node that does not serve this node's scope is refused here, at start,
%% with the reason (later, when the C node was not there at start, it is
%% logged and retried like any other cause).
first_connect(#state{cnode = CNode, scope = Scope, call_timeout = Timeout} = State) ->
    case probe(CNode, Scope, min(Timeout, 2000)) of
        ok ->
            mark_connected(State);
        {error, {scope_not_served, _} = Reason} ->
            ?LOG_ERROR("reckon_cnode: ~ts", [explain(CNode, Reason)]),
            {stop, {scope_not_served, CNode, Scope}};
        {error, Reason} ->
            connect_error(State, Reason)
    end.

%% A failed connect is logged once per change of its cause, at warning
%% level, with what the user can do about it.
connect_error(#state{last_error = Reason} = State, Reason) ->
    State;
connect_error(#state{cnode = CNode} = State, Reason) ->
    ?LOG_WARNING("reckon_cnode: cannot reach C node ~s: ~ts", [CNode, explain(CNode, Reason)]),
    State#state{last_error = Reason}.

explain(CNode, connect_failed) ->
    [Name, Host] = string:split(atom_to_list(CNode), "@"),
    case erl_epmd:port_please(Name, Host, 1000) of
        {port, _, _} ->
            "it is registered in epmd but refused the handshake: usually a different "
            "cookie (its log then says \"wrong cookie\"; the shim's spawn mode passes this "
            "node's cookie)";
        _ ->
            io_lib:format("it is not registered in epmd on ~s (not running, or started "
                          "with another ERL_EPMD_PORT)", [Host])
    end;
explain(CNode, {scope_not_served, Scope}) ->
    io_lib:format("C node ~s does not serve pg scope ~s: its emitters would not be seen "
                  "here and join/members through it would use another scope (start it "
                  "with --scope ~s, or set this application's scope to one it serves)",
                  [CNode, Scope, Scope]);
explain(_CNode, noproc) ->
    "the node is up but has no request server (is it a reckon_cnode?)";
explain(_CNode, timeout) ->
    "it did not answer within call_timeout";
explain(_CNode, Reason) ->
    io_lib:format("~0p", [Reason]).

mark_connected(#state{cnode = CNode} = State) ->
    true = erlang:monitor_node(CNode, true),
    ?LOG_INFO("reckon_cnode: connected to C node ~s", [CNode]),
    subscribe_names(State#state{connected = true, since = wall_ms(), backoff = ?MIN_BACKOFF,
                                connects = State#state.connects + 1}).

%% Asks the C node's feed for its table and its changes, under a new token.
subscribe_names(#state{cnode = CNode} = State) ->
    Token = make_ref(),
    Req = gen_server:send_request({?NAMES, CNode}, {subscribe, self(), Token}),
    State#state{names_req = Req, names_token = Token}.

probe(CNode, Scope, Timeout) ->
    case net_kernel:connect_node(CNode) of
        true ->
            try gen_server:call({?CNODE_SERVER, CNode}, ping, Timeout) of
                {ok, pong} -> introduce_scopes(CNode, Scope, Timeout);
                Other -> {error, {unexpected_ping_reply, Other}}
            catch
                exit:{Reason, _} -> {error, Reason}
            end;
        false ->
            {error, connect_failed};
        ignored ->
            {error, not_distributed}
    end.

%% The C node is hidden, so the local pg scope never discovers it by itself;
%% the C node discovers the local scope, but asynchronously. Telling the local
%% scope about the C node's scope here (the same {discover, Pid} message pg
%% scopes send each other), and waiting until it has handled it, makes the two
%% views consistent before the shim reports the C node as connected: the
%% scope's sync to the C node is then queued on the connection ahead of any
%% later request.
introduce_scopes(CNode, Scope, Timeout) ->
    case whereis(Scope) of
        undefined ->
            ok;
        Local ->
            try gen_server:call({?CNODE_SERVER, CNode}, {scope_pid, Scope}, Timeout) of
                {ok, Remote} when is_pid(Remote) ->
                    Local ! {discover, Remote},
                    _ = sys:get_state(Local, Timeout),
                    ok;
                {error, _} ->
                    %% every broadcast would find no emitters of the C node,
                    %% in silence: refuse instead
                    {error, {scope_not_served, Scope}}
            catch
                exit:{Reason, _} -> {error, Reason}
            end
    end.

stop_connector(#state{connector = undefined} = State) ->
    State;
stop_connector(#state{connector = {Pid, Ref}} = State) ->
    true = erlang:demonitor(Ref, [flush]),
    true = exit(Pid, kill),
    State#state{connector = undefined}.

%%%===================================================================
%%% Port program (spawn mode)
%%%===================================================================

spawn_config(Scope) ->
    case code:priv_dir(reckon_cnode) of
        {error, bad_name} ->
            {error, {cnode_executable_missing, no_priv_dir}};
        Priv ->
            Exe = filename:join(Priv, "reckon_cnode"),
            case filelib:is_regular(Exe) of
                false ->
                    {error, {cnode_executable_missing, Exe}};
                true ->
                    spawn_config(Exe, Scope)
            end
    end.

spawn_config(Exe, Scope) ->
    [Alive, Host] = string:split(atom_to_list(erlang:node()), "@"),
    Name = case env(spawn_name, undefined) of
               undefined -> Alive ++ "_cnode";
               N when is_atom(N) -> atom_to_list(N);
               N when is_list(N) -> N
           end,
    Extra = env(spawn_args, []),
    StartTimeout = env(spawn_timeout, 10000),
    case reckon_cnode_tls:args(env(tls, undefined)) of
        {ok, TlsArgs} ->
            Args = ["--name", Name ++ "@" ++ Host,
                    "--scope", atom_to_list(Scope)]
                ++ ticktime_args()
                ++ TlsArgs
                ++ ["--exit-on-stdin-close" | Extra],
            {ok, #{exe => Exe,
                   args => Args,
                   cookie => atom_to_list(erlang:get_cookie()),
                   start_timeout => StartTimeout}};
        {error, _} = Error ->
            Error
    end.

ticktime_args() ->
    case net_kernel:get_net_ticktime() of
        T when is_integer(T) -> ["--net-ticktime", integer_to_list(T)];
        _ -> []
    end.

open_cnode(#{exe := Exe, args := Args, cookie := Cookie}) ->
    try open_port({spawn_executable, Exe},
                  [{args, Args},
                   {env, [{"RECKON_CNODE_COOKIE", Cookie}]},
                   %% its log lines come here too, and go to logger
                   {line, 1024}, exit_status, use_stdio, stderr_to_stdout]) of
        Port ->
            case erlang:port_info(Port, os_pid) of
                {os_pid, OsPid} -> {ok, Port, OsPid};
                undefined -> {error, port_closed}
            end
    catch
        error:Reason -> {error, {open_port, Reason}}
    end.

%% Synchronous wait for the name line, used by init/1.
await_name(Port, Deadline, Acc) ->
    receive
        {Port, {data, {noeol, Part}}} ->
            await_name(Port, Deadline, Acc ++ Part);
        {Port, {data, {eol, Part}}} ->
            case cnode_log(Acc ++ Part) of
                logged ->
                    await_name(Port, Deadline, []);
                {not_a_log_line, Line} ->
                    case parse_name(Line) of
                        {ok, _} = Named -> Named;
                        {error, _} -> await_exit(Port, Deadline, [Line])
                    end
            end;
        {Port, {exit_status, Status}} ->
            {error, {cnode_exited, Status}}
    after max(0, Deadline - now_ms()) ->
            {error, cnode_start_timeout}
    end.

%% The C node said something other than its name (e.g. a usage error on
%% stderr): collect it until it exits, for the error reason.
await_exit(Port, Deadline, Said) ->
    receive
        {Port, {data, {_, Part}}} ->
            await_exit(Port, Deadline, [Part | Said]);
        {Port, {exit_status, Status}} ->
            {error, {cnode_exited, Status, lists:flatten(lists:join("\n", lists:reverse(Said)))}}
    after max(0, Deadline - now_ms()) ->
            {error, {cnode_start_timeout, lists:reverse(Said)}}
    end.

%% The one line a starting C node prints: alive@host, nothing else.
parse_name(Line) ->
    Name = string:trim(Line),
    case re:run(Name, "^[^@\\s]+@[^@\\s]+$", [unicode]) of
        {match, _} -> {ok, list_to_atom(Name)};
        nomatch -> {error, {bad_name_line, Line}}
    end.

%% Asynchronous restart after an unexpected exit: the name line arrives as
%% a port message; a start_timeout timer bounds the wait.
restart_port(#state{spawn_cfg = Cfg} = State) ->
    case open_cnode(Cfg) of
        {ok, Port, OsPid} ->
            ?LOG_INFO("reckon_cnode: restarted C node (os pid ~p)", [OsPid]),
            Ref = erlang:start_timer(maps:get(start_timeout, Cfg), self(),
                                     start_timeout),
            State#state{port = Port, os_pid = OsPid, line_acc = [],
                        phase = starting, timer = {Ref, start_timeout},
                        restarts = State#state.restarts + 1};
        {error, Reason} ->
            ?LOG_WARNING("reckon_cnode: cannot restart C node: ~p", [Reason]),
            next_step(State#state{last_error = Reason})
    end.

%% The spawned C node's output: its log lines (to logger), and while it
%% starts, the line with its name. line_acc holds a partial line.
port_output(noeol, Part, #state{line_acc = Acc} = State) ->
    State#state{line_acc = Acc ++ Part};
port_output(eol, Part, #state{line_acc = Acc} = State) ->
    case cnode_log(Acc ++ Part) of
        logged -> State#state{line_acc = []};
        {not_a_log_line, Line} -> name_line(Line, State#state{line_acc = []})
    end.

name_line(_Line, #state{phase = running} = State) ->
    State;
name_line(Line, State0) ->
    case parse_name(Line) of
        {ok, _} -> named(Line, State0);
        {error, _} ->
            %% not its name: what it says before exiting (the exit is handled
            %% with its status)
            ?LOG_WARNING("reckon_cnode: C node says: ~ts", [Line]),
            State0
    end.

named(Line, #state{cnode = Old} = State0) ->
    State = cancel_timer(State0),
    case parse_name(Line) of
        {ok, CNode} ->
            CNode =:= Old orelse
                ?LOG_WARNING("reckon_cnode: C node now named ~s (was ~s)",
                             [CNode, Old]),
            publish(CNode, State#state.call_timeout, State#state.scope),
            start_connect(State#state{cnode = CNode, line_acc = [],
                                      phase = running});
        {error, Reason} ->
            stop_port(State#state.port, State#state.os_pid),
            next_step(State#state{port = undefined, os_pid = undefined,
                                  phase = undefined, line_acc = [],
                                  last_error = Reason})
    end.

%% A log line of the spawned C node ("<time> <level> [<module>] <text>")
%% goes to logger at its level, so it does not garble a shell's terminal.
cnode_log(Line) ->
    case re:run(Line, "^\\S+Z (error|warning|info|debug) \\[([^]]*)\\] (.*)$",
                [{capture, all_but_first, list}, unicode]) of
        {match, [Level, Module, Text]} ->
            logger:log(list_to_existing_atom(Level), "reckon_cnode C node [~ts] ~ts",
                       [Module, Text], #{domain => [reckon_cnode]}),
            logged;
        nomatch ->
            {not_a_log_line, Line}
    end.

%% Close the port (the C node runs with --exit-on-stdin-close), wait up to
%% STOP_WAIT ms for the OS process to go, then SIGTERM, then SIGKILL.
stop_port(Port, OsPid) ->
    %% the port may already be closed (the C node exited first)
    try erlang:port_close(Port) catch error:badarg -> ok end,
    case OsPid of
        undefined ->
            ok;
        _ ->
            case wait_os_exit(OsPid, now_ms() + ?STOP_WAIT) of
                ok ->
                    ok;
                timeout ->
                    ?LOG_WARNING("reckon_cnode: C node (os pid ~p) still running "
                                 "~p ms after stdin closed; sending SIGTERM",
                                 [OsPid, ?STOP_WAIT]),
                    os_kill("TERM", OsPid),
                    case wait_os_exit(OsPid, now_ms() + ?KILL_WAIT) of
                        ok -> ok;
                        timeout -> os_kill("KILL", OsPid)
                    end
            end
    end.

%% The port is closed, so its exit_status is not delivered any more: poll
%% the OS process instead.
wait_os_exit(OsPid, Deadline) ->
    case os_pid_alive(OsPid) of
        false ->
            ok;
        true ->
            case now_ms() >= Deadline of
                true ->
                    timeout;
                false ->
                    receive after 20 -> ok end,
                    wait_os_exit(OsPid, Deadline)
            end
    end.

os_pid_alive(OsPid) ->
    case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat") of
        {ok, Stat} ->
            %% "pid (comm) S ...": the state follows the last ')'.
            case string:split(Stat, ")", trailing) of
                [_, <<" Z", _/binary>>] -> false;
                [_, <<" X", _/binary>>] -> false;
                _ -> true
            end;
        {error, enoent} ->
            false;
        {error, _} ->
            %% No procfs: ask kill(1).
            os:cmd("kill -0 " ++ integer_to_list(OsPid)
                   ++ " 2>/dev/null && echo alive") =:= "alive\n"
    end.

os_kill(Signal, OsPid) ->
    _ = os:cmd("kill -" ++ Signal ++ " " ++ integer_to_list(OsPid)
               ++ " 2>/dev/null"),
    ok.

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

publish(CNode, Timeout, Scope) ->
    Target = {CNode, Timeout, Scope},
    case persistent_term:get(?PT_KEY, undefined) of
        Target -> ok;
        _ -> persistent_term:put(?PT_KEY, Target)
    end.

cnode_name(undefined) ->
    [_Alive, Host] = string:split(atom_to_list(erlang:node()), "@"),
    {ok, list_to_atom("reckon_cnode@" ++ Host)};
cnode_name(Name) when is_list(Name) ->
    cnode_name(list_to_atom(Name));
cnode_name(Name) when is_atom(Name) ->
    case string:split(atom_to_list(Name), "@") of
        [Alive, Host] when Alive =/= [], Host =/= [] -> {ok, Name};
        _ -> {error, {bad_env, cnode, Name}}
    end;
cnode_name(Other) ->
    {error, {bad_env, cnode, Other}}.

valid_timeout(infinity) -> true;
valid_timeout(T) -> is_integer(T) andalso T > 0.

status_map(#state{} = S) ->
    #{node => S#state.cnode,
      connected => S#state.connected,
      mode => S#state.mode,
      since => S#state.since,
      scope => S#state.scope,
      call_timeout => S#state.call_timeout,
      os_pid => S#state.os_pid,
      connects => S#state.connects,
      disconnects => S#state.disconnects,
      restarts => S#state.restarts,
      last_error => S#state.last_error}.

env(Key, Default) ->
    application:get_env(reckon_cnode, Key, Default).

now_ms() ->
    erlang:monotonic_time(millisecond).

wall_ms() ->
    erlang:system_time(millisecond).
