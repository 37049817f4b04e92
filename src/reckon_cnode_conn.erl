%%% @doc The connection watcher: the process registered as `reckon_cnode',
%%% which finds or starts the C node, stays connected to it and publishes
%%% its name.
%%%
%%% It is <em>not</em> on the request path: at start it writes
%%% `{CNode, CallTimeout, Scope}' once into `persistent_term' ({@link
%%% published/0}), and callers of {@link reckon_cnode} and {@link
%%% reckon_cnode_emitter_group} call the C node from their own processes.
%%%
%%% <ul>
%%% <li><b>attach mode</b> (application env `cnode', default
%%%   `reckon_cnode@<this host>'): connects to a running C node;</li>
%%% <li><b>spawn mode</b> (env `spawn' = `true'): starts the C node as a
%%%   port program ({@link reckon_cnode_port}; this process owns the port),
%%%   waits for its name, starts it again if it exits and stops it when this
%%%   process terminates.</li>
%%% </ul>
%%%
%%% In both modes it monitors the C node (`erlang:monitor_node/2') and
%%% reconnects with capped exponential backoff (100 ms doubling to 5 s) when
%%% the connection is lost. A connection attempt runs in a short-lived
%%% helper process, so that a slow set-up never blocks {@link status/0} or
%%% the port's messages. While connected, this process also owns this node's
%%% copy of the C node's emitter-name table ({@link reckon_cnode_names}).
%%% @end
-module(reckon_cnode_conn).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

-export([start_link/0, status/0, names_applied/0, published/0, unpublish/0]).

%% gen_server callbacks
-export([init/1, handle_continue/2, handle_call/3, handle_cast/2,
         handle_info/2, terminate/2]).

-define(SERVER, reckon_cnode).
%% Registered name of the request server on the C node.
-define(CNODE_SERVER, reckon_cnode).
-define(PT_KEY, {reckon_cnode, target}).
-define(MIN_BACKOFF, 100).
-define(MAX_BACKOFF, 5000).

-type timer_kind() :: connect | restart | start_timeout.

-record(state, {
          mode :: reckon_cnode:mode(),
          cnode :: node(),
          scope :: atom(),
          call_timeout :: timeout(),
          connected = false :: boolean(),
          since :: integer(),
          backoff = ?MIN_BACKOFF :: pos_integer(),
          timer :: undefined | {reference(), timer_kind()},
          connector :: undefined | {pid(), reference()},
          %% spawn mode only: the port program
          prog :: undefined | reckon_cnode_port:prog(),
          %% counters for status/0
          connects = 0 :: non_neg_integer(),
          disconnects = 0 :: non_neg_integer(),
          restarts = 0 :: non_neg_integer(),
          last_error :: term(),
          %% this node's copy of the C node's name table
          names :: reckon_cnode_names:feed()
         }).

%%%===================================================================
%%% API
%%%===================================================================

%% @doc Starts the watcher, registered locally as `reckon_cnode' (through
%% {@link reckon_cnode:start_link/0}, which the supervisor calls).
%% Configuration comes from the application environment of `reckon_cnode'.
%% Once it has started, a reachable C node is connected.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?SERVER}, ?MODULE, [], []).

%% @doc The watcher's view of the C node (see {@link reckon_cnode:status/0}):
%% a call to the watcher.
-spec status() -> reckon_cnode:status().
status() ->
    gen_server:call(?SERVER, status).

%% @doc Returns once the watcher has handled every message it received
%% before this call, among them the name-table changes the C node sent
%% before its last answer to the caller. `ok' also when the watcher does
%% not run or does not answer within 5 s.
-spec names_applied() -> ok.
names_applied() ->
    try gen_server:call(?SERVER, names_applied, 5000) of
        ok -> ok
    catch
        exit:_ -> ok
    end.

%% @doc `{CNode, CallTimeout, Scope}' as published in `persistent_term' at
%% start, or `undefined' when the application is not running.
-spec published() -> {node(), timeout(), atom()} | undefined.
published() ->
    persistent_term:get(?PT_KEY, undefined).

%% @doc Removes what the watcher published (application stop).
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
            Names = reckon_cnode_names:new(),
            Base = #state{scope = Scope, call_timeout = Timeout,
                          since = wall_ms(), cnode = nonode@nohost,
                          mode = attach, names = Names},
            init_mode(env(spawn, false), Base)
    end.

init_mode(true, State0) ->
    case reckon_cnode_port:config(State0#state.scope) of
        {ok, Cfg} ->
            case reckon_cnode_port:start(Cfg) of
                {ok, CNode, Prog} ->
                    publish(CNode, State0#state.call_timeout, State0#state.scope),
                    State = State0#state{mode = spawn, cnode = CNode, prog = Prog},
                    after_first_connect(first_connect(State),
                                        fun() -> reckon_cnode_port:stop(Prog) end);
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

%% The watcher starts unless the first connect refused the C node; then
%% nothing it published or started is left behind.
after_first_connect({stop, Reason}, Undo) ->
    _ = Undo(),
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
handle_info(Msg, #state{names = Names0, cnode = CNode} = State) ->
    case reckon_cnode_names:handle_info(Msg, CNode, Names0) of
        {ok, Names} -> {noreply, State#state{names = Names}};
        not_names -> handle_other_info(Msg, State)
    end.

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
    Names = reckon_cnode_names:forget(State#state.names),
    {noreply, next_step(State#state{names = Names,
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
            Prog = reckon_cnode_port:stop(State#state.prog),
            {noreply, next_step(State#state{prog = Prog,
                                            last_error = cnode_start_timeout})}
    end;
handle_other_info({timeout, _StaleRef, _Kind}, State) ->
    {noreply, State};
handle_other_info(Msg, #state{prog = Prog0} = State) when Prog0 =/= undefined ->
    case reckon_cnode_port:handle_info(Msg, Prog0) of
        {ok, Prog} ->
            {noreply, State#state{prog = Prog}};
        {named, CNode, Prog} ->
            {noreply, named(CNode, State#state{prog = Prog})};
        {exited, Status, OsPid, Prog} ->
            {noreply, port_exited(Status, OsPid, State#state{prog = Prog})};
        not_port ->
            stray_info(Msg, State)
    end;
handle_other_info(Msg, State) ->
    stray_info(Msg, State).

stray_info({'EXIT', _PortOrPid, _Reason}, State) ->
    %% Port closed after exit_status, or a stray link: nothing to do.
    {noreply, State};
stray_info(_Info, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{prog = Prog} = State) ->
    _ = stop_connector(State),
    case Prog of
        undefined -> ok;
        _ -> _ = reckon_cnode_port:stop(Prog), ok
    end.

%%%===================================================================
%%% The port program's life (spawn mode)
%%%===================================================================

%% Asynchronous restart after an unexpected exit: the name line arrives as
%% a port message; a start_timeout timer bounds the wait.
restart_port(#state{prog = Prog0} = State) ->
    case reckon_cnode_port:restart(Prog0) of
        {ok, StartTimeout, Prog} ->
            Ref = erlang:start_timer(StartTimeout, self(), start_timeout),
            State#state{prog = Prog, timer = {Ref, start_timeout},
                        restarts = State#state.restarts + 1};
        {error, Reason} ->
            next_step(State#state{last_error = Reason})
    end.

%% The restarted port program printed its name: publish it and connect.
named(CNode, #state{cnode = Old} = State0) ->
    State = cancel_timer(State0),
    CNode =:= Old orelse
        ?LOG_WARNING("reckon_cnode: C node now named ~s (was ~s)", [CNode, Old]),
    publish(CNode, State#state.call_timeout, State#state.scope),
    start_connect(State#state{cnode = CNode}).

port_exited(Status, OsPid, State0) ->
    ?LOG_WARNING("reckon_cnode: C node ~s (os pid ~p) exited with status ~p",
                 [State0#state.cnode, OsPid, Status]),
    State1 = stop_connector(cancel_timer(State0)),
    Names = reckon_cnode_names:forget(State1#state.names),
    State2 = case State1#state.connected of
                 true -> State1#state{connected = false, since = wall_ms(),
                                      disconnects = State1#state.disconnects + 1};
                 false -> State1
             end,
    next_step(State2#state{names = Names, last_error = {cnode_exited, Status}}).

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
next_step(#state{mode = spawn, prog = Prog} = State) ->
    case reckon_cnode_port:phase(Prog) of
        down -> schedule(restart, State);
        starting -> State;
        running -> schedule(connect, State)
    end;
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
    Names = reckon_cnode_names:subscribe(CNode, State#state.names),
    State#state{connected = true, since = wall_ms(), backoff = ?MIN_BACKOFF,
                connects = State#state.connects + 1, names = Names}.

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
%%% Helpers
%%%===================================================================

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

status_map(#state{prog = Prog} = S) ->
    #{node => S#state.cnode,
      connected => S#state.connected,
      mode => S#state.mode,
      since => S#state.since,
      scope => S#state.scope,
      call_timeout => S#state.call_timeout,
      os_pid => case Prog of
                    undefined -> undefined;
                    _ -> reckon_cnode_port:os_pid(Prog)
                end,
      connects => S#state.connects,
      disconnects => S#state.disconnects,
      restarts => S#state.restarts,
      last_error => S#state.last_error}.

env(Key, Default) ->
    application:get_env(reckon_cnode, Key, Default).

wall_ms() ->
    erlang:system_time(millisecond).
