%%% @doc Helpers shared by the common_test suites of test/erl: the real
%%% `priv/reckon_cnode' C node (started as a port program owned by a holder
%%% process, stderr to a log file in the CT priv dir), `peer' BEAM nodes, the
%%% `reckon_cnode' shim, a resource tracker that stops everything a suite,
%%% group or test case started, and bounded waits.
%%%
%%% Every C node is started with `--exit-on-stdin-close', so it goes away
%%% even if the test node dies; {@link cleanup/1} stops peers, then C nodes,
%%% then kills (by OS pid, SIGKILL) any tracked C node process still alive.
%%% @end
-module(rc_test_lib).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

%% C nodes
-export([cnode_bin/0, priv_bin/0, start_cnode/2, start_cnode/3, start_cnode_args/2, start_cnode_args/3,
         stop_cnode/1, wait_cnode_exit/2, holder_call/2,
         os_kill/2, os_pid_alive/1]).
%% resource tracking
-export([start_tracker/0, stop_tracker/1, track/2, cleanup/1, suite_init/1, suite_end/2]).
%% peers and the shim
-export([start_peer/2, start_peer/3, stop_peer/1, pcall/4, pcall/5,
         start_meshed_peers/3, start_pg_scope/2,
         start_shim_on/2, start_local_shim/1, start_local_shim_remote/1,
         stop_local_shim/0, wait_connected/1, start_attached/4]).
%% calls to a C node's request server, views and events
-export([node_of/1, ccall/2, ccall/3, ccall_retry/2, cnode_stats/1, cnode_stats/2,
         idle/1, store_sub/1, scope_pids/2, assert_scope_pids/3,
         assert_exactly_once/2, event_ids/1, count_by/2]).
%% strangers without the cookie, and what they cost the node's process
-export([dist_port/1, open_silent/2, close_silent/1, os_threads/1,
         start_thread_sampler/1, stop_thread_sampler/1]).
%% helpers
-export([run_calls/2, wait_until/3, await_value/4, await_value/5,
         unique_name/1, host/0, now_ms/0]).

-type cnode() :: #{node := node(), os_pid := non_neg_integer(),
                   holder := pid(), name := string(), log := file:filename()}.
-type peer() :: #{node := node(), pid := pid(),
                  connection := dist | standard_io}.
-type scope() :: suite | group | testcase.
-export_type([cnode/0, peer/0, scope/0]).

%%%===================================================================
%%% C node processes
%%%===================================================================

%% The C node the suites start: the test build (with the test hooks) named
%% by RECKON_CNODE_TEST_NODE (test/erl/run_ct.sh sets it), else the shipped
%% priv/reckon_cnode.
-spec cnode_bin() -> {ok, file:filename()} | {error, string()}.
cnode_bin() ->
    case os:getenv("RECKON_CNODE_TEST_NODE") of
        Test when is_list(Test), Test =/= "" ->
            case filelib:is_regular(Test) of
                true -> {ok, Test};
                false -> {error, Test ++ " does not exist: make test-node"}
            end;
        _ ->
            priv_bin()
    end.

%% The shipped executable, as the shim finds it.
-spec priv_bin() -> {ok, file:filename()} | {error, string()}.
priv_bin() ->
    case code:priv_dir(reckon_cnode) of
        {error, _} ->
            {error, "code:priv_dir(reckon_cnode) failed"};
        Priv ->
            Bin = filename:join(Priv, "reckon_cnode"),
            case filelib:is_regular(Bin) of
                true -> {ok, Bin};
                false -> {error, lists:flatten(
                                   io_lib:format("~s does not exist: build the "
                                                 "C node first (make)", [Bin]))}
            end
    end.

-spec start_cnode(string(), scope()) -> cnode().
start_cnode(Name, Scope) ->
    start_cnode(Name, [], Scope).

%% @doc A C node `Name@<this host>' with extra command-line arguments.
-spec start_cnode(string(), [string()], scope()) -> cnode().
start_cnode(Name, Extra, Scope) ->
    start_cnode_args(["--name", Name ++ "@" ++ host(), "--exit-on-stdin-close"
                      | Extra], Scope).

%% The holder owns the port for the C node's lifetime and reports the first
%% stdout line (the node name).
-spec start_cnode_args([string()], scope()) -> cnode().
start_cnode_args(Args, Scope) ->
    start_cnode_args(Args, #{}, Scope).

%% Opts: #{nofile => N} starts it with a descriptor limit of N (ulimit -n);
%% #{shipped => true} starts priv/reckon_cnode instead of the test build.
-spec start_cnode_args([string()], #{nofile => pos_integer(), shipped => boolean()}, scope()) ->
          cnode().
start_cnode_args(Args, Opts, Scope) ->
    {ok, Bin} = case maps:get(shipped, Opts, false) of
                    true -> priv_bin();
                    false -> cnode_bin()
                end,
    Cookie = atom_to_list(erlang:get_cookie()),
    Parent = self(),
    Tag = make_ref(),
    Holder = spawn(fun() -> holder_init(Parent, Tag, Bin, Args, Cookie, Opts) end),
    MRef = erlang:monitor(process, Holder),
    receive
        {Tag, {ok, Node, OsPid, Log}} ->
            erlang:demonitor(MRef, [flush]),
            [Alive, _] = string:split(atom_to_list(Node), "@"),
            C = #{node => Node, os_pid => OsPid, holder => Holder, name => Alive,
                  log => Log},
            ct:log("started C node ~p (os pid ~p): ~s ~p", [Node, OsPid, Bin, Args]),
            track(Scope, {cnode, C}),
            track(Scope, {os_pid, OsPid}),
            C;
        {Tag, {error, Reason}} ->
            ct:fail({cnode_start_failed, Args, Reason});
        {'DOWN', MRef, process, Holder, Reason} ->
            ct:fail({cnode_holder_died, Reason})
    after 20000 ->
            exit(Holder, kill),
            ct:fail({cnode_start_timeout, Args})
    end.

%% The program runs through `sh -c 'exec ...'' only to send its stderr to a
%% log file; exec keeps the OS pid (and the command line) the C node's.
holder_init(Parent, Tag, Bin, Args, Cookie, Opts) ->
    Log = cnode_log_file(),
    ct:log("C node log: <a href=\"file://~s\">~s</a>", [Log, Log]),
    NoFile = integer_to_list(maps:get(nofile, Opts, 0)),
    Script = "[ \"$RCN_NOFILE\" = 0 ] || ulimit -n \"$RCN_NOFILE\" || exit 3; "
             "exec \"$0\" \"$@\" 2>>\"$RCN_LOG\"",
    Port = open_port({spawn_executable, "/bin/sh"},
                     [{args, ["-c", Script, Bin | Args]},
                      {env, [{"RECKON_CNODE_COOKIE", Cookie}, {"RCN_LOG", Log},
                             {"RCN_NOFILE", NoFile}]},
                      {line, 1024}, exit_status, use_stdio]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    receive
        {Port, {data, {eol, Line}}} ->
            Parent ! {Tag, {ok, list_to_atom(string:trim(Line)), OsPid, Log}},
            holder_loop(Port, OsPid, running, []);
        {Port, {exit_status, Status}} ->
            Parent ! {Tag, {error, {exited, Status}}}
    after 15000 ->
            os_kill("KILL", OsPid),
            Parent ! {Tag, {error, no_name_line}}
    end.

holder_loop(Port, OsPid, State, Waiters) ->
    receive
        {Port, {data, _}} ->
            holder_loop(Port, OsPid, State, Waiters);
        {Port, {exit_status, Status}} ->
            [reply(W, {exited, Status}) || W <- Waiters],
            holder_loop(Port, OsPid, {exited, Status}, []);
        {'EXIT', Port, _} ->
            holder_loop(Port, OsPid, State, Waiters);
        {From, wait_exit} when State =:= running ->
            holder_loop(Port, OsPid, State, [From | Waiters]);
        {From, wait_exit} ->
            reply(From, State),
            holder_loop(Port, OsPid, State, Waiters);
        {From, close_stdin} ->
            try port_close(Port) catch error:badarg -> ok end,
            reply(From, ok),
            holder_loop(Port, OsPid, stdin_closed, Waiters);
        {From, stop} ->
            holder_stop(Port, OsPid, State),
            reply(From, ok)
    end.

%% SIGTERM (plus SIGCONT in case it was stopped), wait for the exit, else
%% SIGKILL.
holder_stop(Port, OsPid, running) ->
    os_kill("TERM", OsPid),
    os_kill("CONT", OsPid),
    receive
        {Port, {exit_status, _}} -> ok
    after 5000 ->
            os_kill("KILL", OsPid),
            receive {Port, {exit_status, _}} -> ok after 2000 -> ok end
    end;
holder_stop(_Port, OsPid, _Exited) ->
    case os_pid_alive(OsPid) of
        true -> os_kill("KILL", OsPid);
        false -> ok
    end.

reply({Pid, Ref}, Msg) ->
    Pid ! {Ref, Msg}.

-spec holder_call(cnode(), term()) -> term().
holder_call(#{holder := Holder}, Req) ->
    holder_call(Holder, Req, 10000).

holder_call(Holder, Req, Timeout) ->
    MRef = erlang:monitor(process, Holder),
    Holder ! {{self(), MRef}, Req},
    receive
        {MRef, Reply} ->
            erlang:demonitor(MRef, [flush]),
            Reply;
        {'DOWN', MRef, process, Holder, Reason} ->
            {holder_down, Reason}
    after Timeout ->
            erlang:demonitor(MRef, [flush]),
            timeout
    end.

-spec wait_cnode_exit(cnode(), timeout()) -> term().
wait_cnode_exit(C, Timeout) ->
    holder_call(maps:get(holder, C), wait_exit, Timeout).

-spec stop_cnode(cnode()) -> ok.
stop_cnode(#{holder := Holder}) ->
    case is_process_alive(Holder) of
        true -> _ = holder_call(Holder, stop, 15000), ok;
        false -> ok
    end.

-spec os_kill(string(), non_neg_integer()) -> ok.
os_kill(Signal, OsPid) ->
    _ = os:cmd("kill -" ++ Signal ++ " " ++ integer_to_list(OsPid) ++ " 2>/dev/null"),
    ok.

-spec os_pid_alive(non_neg_integer()) -> boolean().
os_pid_alive(OsPid) ->
    case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat") of
        {ok, Stat} ->
            case string:split(Stat, ")", trailing) of
                [_, <<" Z", _/binary>>] -> false;
                [_, <<" X", _/binary>>] -> false;
                _ -> true
            end;
        {error, _} ->
            false
    end.

%% Everything started (C nodes, peers, C node OS pids) is recorded in a
%% public ETS table with its scope (group or testcase); cleanup/1 stops what
%% is recorded for the given scopes: peers first (they own spawn-mode C
%% nodes), then C nodes, then any recorded OS pid that is still a
%% reckon_cnode process.
%% @doc Common init_per_suite: checks the environment run_ct.sh sets up (own
%% epmd port, distributed node, built C node) and starts the tracker that
%% cleans up whatever the cases start; C node logs go to priv_dir.
-spec suite_init(list()) -> list() | {fail, string()}.
suite_init(Config) ->
    case {os:getenv("ERL_EPMD_PORT"), erlang:is_alive(), cnode_bin()} of
        {false, _, _} ->
            {fail, "ERL_EPMD_PORT is not set: run the suite with test/erl/run_ct.sh "
                   "(or make test), which starts a private epmd and exports its port"};
        {_, false, _} ->
            {fail, "this node is not distributed: run rebar3 ct with --sname and "
                   "--setcookie (test/erl/run_ct.sh does)"};
        {_, _, {error, Why}} ->
            {fail, Why};
        {EpmdPort, true, {ok, _}} ->
            ct:log("ERL_EPMD_PORT=~s node=~p", [EpmdPort, node()]),
            Tracker = start_tracker(),
            track(suite, {log_dir, proplists:get_value(priv_dir, Config)}),
            [{epmd_port, EpmdPort}, {tracker, Tracker} | Config]
    end.

%% @doc Common end_per_suite: cleans up the given scopes, stops the tracker.
-spec suite_end(list(), [atom()]) -> ok.
suite_end(Config, Scopes) ->
    cleanup(Scopes),
    stop_tracker(proplists:get_value(tracker, Config)),
    ok.

-spec start_tracker() -> pid().
start_tracker() ->
    Parent = self(),
    Pid = spawn(fun() ->
                        _ = ets:new(rcn_resources, [named_table, public, set]),
                        Parent ! {self(), ready},
                        receive stop -> ok end
                end),
    receive {Pid, ready} -> Pid end.

-spec stop_tracker(pid()) -> ok.
stop_tracker(Pid) ->
    Pid ! stop,
    ok.

-spec track(scope(), term()) -> ok.
track(Scope, Resource) ->
    true = ets:insert(rcn_resources, {make_ref(), Scope, Resource}),
    ok.

cnode_log_file() ->
    Dir = case ets:match(rcn_resources, {'_', suite, {log_dir, '$1'}}) of
              [[D] | _] -> D;
              [] -> "/tmp"
          end,
    filename:join(Dir, "cnode_" ++ integer_to_list(erlang:unique_integer([positive]))
                  ++ ".log").

-spec cleanup([scope()]) -> ok.
cleanup(Scopes) ->
    Entries = [E || {_, Scope, _} = E <- ets:tab2list(rcn_resources),
                    lists:member(Scope, Scopes)],
    Order = fun({peer, _}) -> 1; ({cnode, _}) -> 2; ({os_pid, _}) -> 3;
               (_) -> 4 end,
    Sorted = lists:sort(fun({_, _, A}, {_, _, B}) -> Order(A) =< Order(B) end,
                        Entries),
    [begin
         release(Resource),
         ets:delete(rcn_resources, Key)
     end || {Key, _, Resource} <- Sorted],
    ok.

release({peer, Peer}) ->
    stop_peer(Peer);
release({cnode, C}) ->
    stop_cnode(C);
release({log_dir, _}) ->
    ok;
release({os_pid, OsPid}) ->
    case is_cnode_process(OsPid) of
        true ->
            ct:log("killing leftover C node os pid ~p", [OsPid]),
            os_kill("KILL", OsPid);
        false ->
            ok
    end.

is_cnode_process(OsPid) ->
    os_pid_alive(OsPid) andalso
        case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/cmdline") of
            {ok, Cmd} -> binary:match(Cmd, <<"reckon_cnode">>) =/= nomatch;
            _ -> false
        end.

%%%===================================================================
%%% Peers and the shim
%%%===================================================================

-spec start_peer(string(), scope()) -> peer().
start_peer(Prefix, Scope) ->
    start_peer(Prefix, #{}, Scope).

%% @doc A `peer' node named `<Prefix>_<unique>' with this node's cookie,
%% the shim's ebin and this directory on its code path, and this node's
%% ERL_EPMD_PORT. Options: `args' (extra command-line arguments, e.g.
%% `["-hidden"]'), `connection' (`standard_io' for a peer that is not
%% connected to this node; default: distribution). Call it with {@link
%% pcall/4} in either case.
-spec start_peer(string(), map(), scope()) -> peer().
start_peer(Prefix, Opts, Scope) ->
    Name = unique_name(Prefix),
    Cookie = atom_to_list(erlang:get_cookie()),
    Ebin = filename:dirname(code:which(reckon_cnode)),
    TestDir = filename:dirname(code:which(?MODULE)),
    Connection = maps:get(connection, Opts, dist),
    Conn = case Connection of
               dist -> #{};
               standard_io -> #{connection => standard_io}
           end,
    {ok, Pid, Node} =
        peer:start(Conn#{name => Name,
                         args => ["-setcookie", Cookie,
                                  "-pa", Ebin, "-pa", TestDir,
                                  "-kernel", "logger_level", "info"
                                  | maps:get(args, Opts, [])],
                         env => [{"ERL_EPMD_PORT", os:getenv("ERL_EPMD_PORT")}],
                         wait_boot => 30000}),
    ct:log("started peer ~p (~p, ~p)", [Node, Connection, maps:get(args, Opts, [])]),
    Peer = #{node => Node, pid => Pid, connection => Connection},
    track(Scope, {peer, Peer}),
    Peer.

-spec stop_peer(peer()) -> ok.
stop_peer(#{pid := Pid}) ->
    try peer:stop(Pid) catch _:_ -> ok end,
    ok.

%% @doc N peers named `<Prefix>_<unique>', connected to each other and
%% to this node. They run with `-connect_all false', so `global' neither
%% meshes them with other nodes nor disconnects any of them "to prevent
%% overlapping partitions" when another test node stops: their connections
%% are exactly the ones made here (and by the C node).
-spec start_meshed_peers(string(), pos_integer(), scope()) -> [peer()].
start_meshed_peers(Prefix, N, Scope) ->
    Peers = [start_peer(Prefix, #{args => ["-connect_all", "false"]}, Scope)
             || _ <- lists:seq(1, N)],
    [true = pcall(P, net_kernel, connect_node, [Q])
     || #{node := P0} = P <- Peers, #{node := Q} <- Peers, P0 < Q],
    Peers.

%% @doc Starts `pg' scope `Scope' on a peer with `pg:start/1': not linked
%% to the short-lived rpc process that starts it, so it stays up.
-spec start_pg_scope(peer(), atom()) -> pid().
start_pg_scope(Peer, Scope) ->
    {ok, Pid} = pcall(Peer, pg, start, [Scope]),
    Pid.

%% @doc apply(M, F, A) on a peer, over distribution or its standard_io
%% control connection.
-spec pcall(peer(), module(), atom(), list()) -> term().
pcall(Peer, M, F, A) ->
    pcall(Peer, M, F, A, 30000).

-spec pcall(peer(), module(), atom(), list(), timeout()) -> term().
pcall(#{pid := Pid, connection := standard_io}, M, F, A, Timeout) ->
    peer:call(Pid, M, F, A, Timeout);
pcall(#{node := Node}, M, F, A, Timeout) ->
    erpc:call(Node, M, F, A, Timeout).

%% @doc Starts the shim on a node (a node name or a peer()).
-spec start_shim_on(node() | peer(), map()) -> ok.
start_shim_on(#{pid := _} = Peer, Env) ->
    ok = pcall(Peer, ?MODULE, start_local_shim_remote, [Env]);
start_shim_on(Node, Env) ->
    ok = erpc:call(Node, ?MODULE, start_local_shim_remote, [Env]).

%% Application env for the shim, then start it.
-spec start_local_shim(map()) -> ok.
start_local_shim(Env) ->
    ok = start_local_shim_remote(Env).

-spec start_local_shim_remote(map()) -> ok.
start_local_shim_remote(Env) ->
    case application:load(reckon_cnode) of
        ok -> ok;
        {error, {already_loaded, reckon_cnode}} -> ok
    end,
    Defaults = #{cnode => undefined, spawn => false, call_timeout => 5000,
                 spawn_name => undefined, scope => reckon_db_pg},
    [ok = application:set_env(reckon_cnode, K, V)
     || {K, V} <- maps:to_list(maps:merge(Defaults, Env))],
    {ok, _} = application:ensure_all_started(reckon_cnode),
    ok.

-spec stop_local_shim() -> ok.
stop_local_shim() ->
    _ = application:stop(reckon_cnode),
    ok.

%% @doc Waits (15 s at most) until the shim on a node (name or peer())
%% reports the C node connected.
-spec wait_connected(node() | peer()) -> ok.
wait_connected(#{node := Node} = Peer) ->
    wait_until(fun() ->
                       try pcall(Peer, reckon_cnode, status, []) of
                           #{connected := Connected} -> Connected
                       catch _:_ -> false
                       end
               end, 15000, {shim_connected, Node});
wait_connected(Node) ->
    wait_until(fun() ->
                       try erpc:call(Node, reckon_cnode, status, []) of
                           #{connected := Connected} -> Connected
                       catch _:_ -> false
                       end
               end, 15000, {shim_connected, Node}).

%%%===================================================================
%%% C node requests, views and events
%%%===================================================================

%% @doc The node of a C node or a peer.
-spec node_of(cnode() | peer()) -> node().
node_of(#{node := N}) -> N.

%% @doc A request to a C node's request server (a cnode() or its node name),
%% from this node; 10 s.
-spec ccall(cnode() | node(), term()) -> term().
ccall(C, Req) ->
    ccall(C, Req, 10000).

-spec ccall(cnode() | node(), term(), timeout()) -> term().
ccall(#{node := N}, Req, Timeout) ->
    ccall(N, Req, Timeout);
ccall(N, Req, Timeout) ->
    gen_server:call({reckon_cnode, N}, Req, Timeout).

%% @doc ccall/2 with one retry when the connection to the C node went down
%% under the call (logged): a C node seeded here dials this node while this
%% node dials it, and that simultaneous connect sometimes ends with the
%% first connection closed ("bad file descriptor" in the C node's log; an
%% open issue, see the notes of the hostile-network work). The retry keeps
%% that race from failing unrelated cases; a wrong answer still fails them.
-spec ccall_retry(cnode() | node(), term()) -> term().
ccall_retry(C, Req) ->
    N = case C of #{node := Node} -> Node; Node -> Node end,
    try
        ccall(N, Req)
    catch
        exit:{{nodedown, _}, _} ->
            ct:log("ccall ~p to ~p: nodedown, retrying once", [Req, N]),
            ccall(N, Req)
    end.

%% @doc The C node's stats map (its `stats' request).
-spec cnode_stats(cnode() | node()) -> map().
cnode_stats(C) ->
    cnode_stats(C, 10000).

-spec cnode_stats(cnode() | node(), timeout()) -> map().
cnode_stats(C, Timeout) ->
    {ok, Stats} = ccall(C, stats, Timeout),
    Stats.

%% @doc An idle process on a peer (ends with the peer).
-spec idle(peer()) -> pid().
idle(P) ->
    pcall(P, erlang, spawn, [timer, sleep, [infinity]]).

%% @doc A fresh {Store, Subscription} pair.
-spec store_sub(atom()) -> {atom(), binary()}.
store_sub(Store) ->
    {Store, list_to_binary(unique_name("sub"))}.

%% @doc `[{Node, ScopePid}]' of each peer (each must run the scope), for
%% assert_scope_pids/3 at the end of a case: OTP 25's `pg' crashes on a
%% message shape it does not expect.
%% A C node seeded with the first peer, the shim on every peer attached to
%% it (call_timeout 10 s) and connected; returns it with the peers'
%% reckon_db_pg scope pids, for the check at the end of a case.
-spec start_attached(string(), [peer(), ...], [string()], scope()) ->
          {cnode(), [{node(), pid()}]}.
start_attached(Prefix, [P1 | _] = Peers, Args, Scope) ->
    C = start_cnode(unique_name(Prefix), ["--seed", atom_to_list(node_of(P1)) | Args], Scope),
    [start_shim_on(P, #{cnode => node_of(C), call_timeout => 10000}) || P <- Peers],
    [wait_connected(P) || P <- Peers],
    {C, scope_pids(Peers, reckon_db_pg)}.

-spec scope_pids([peer()], atom()) -> [{node(), pid()}].
scope_pids(Peers, Scope) ->
    Snap = [{node_of(P), pcall(P, erlang, whereis, [Scope])} || P <- Peers],
    [?assert(is_pid(Pid)) || {_, Pid} <- Snap],
    Snap.

%% @doc Each peer's scope process is still the one scope_pids/2 recorded.
-spec assert_scope_pids([peer()], atom(), [{node(), pid()}]) -> ok.
assert_scope_pids(Peers, Scope, Snap) ->
    Now = [{node_of(P), pcall(P, erlang, whereis, [Scope])} || P <- Peers],
    ?assertEqual(Snap, Now),
    ok.

%% @doc Each event of Sent arrives exactly once, as {events, [Event]}: Got
%% is a recorder's `[{Tag, Message}]'.
-spec assert_exactly_once([tuple()], [{term(), term()}]) -> ok.
assert_exactly_once(Sent, Got) ->
    Events = [case Msg of
                  {events, [E]} -> E;
                  _ -> ct:fail({unexpected_message, Msg})
              end || {_Tag, Msg} <- Got],
    assert_same_events(Sent, Events).

assert_same_events(Sent, Events) ->
    SortedSent = lists:sort(Sent),
    SortedGot = lists:sort(Events),
    case SortedSent =:= SortedGot of
        true -> ok;
        false -> ct:fail({events_differ,
                          {missing, event_ids(SortedSent -- SortedGot)},
                          {extra, event_ids(SortedGot -- SortedSent)}})
    end.

%% @doc The ids (second fields) of events.
-spec event_ids([tuple()]) -> [term()].
event_ids(Events) -> [element(2, E) || E <- Events].

%% @doc `#{F(X) => how many X of L}'.
-spec count_by(fun((term()) -> term()), list()) -> #{term() => pos_integer()}.
count_by(F, L) ->
    lists:foldl(fun(X, Acc) -> maps:update_with(F(X), fun(N) -> N + 1 end, 1, Acc) end,
                #{}, L).

%%%===================================================================
%%% reckon_cnode_emitter_group calls (run on peers through erpc/peer:call)
%%%===================================================================

%% @doc Runs Calls in Workers concurrent processes on this node; returns the
%% outcome lists. The atom 'self' in join/leave arguments is the worker.
-spec run_calls([{atom(), list()}], pos_integer()) -> [[term()]].
run_calls(Calls, Workers) ->
    Parent = self(),
    Pids = [spawn_link(fun() -> Parent ! {self(), [run_call(C) || C <- Calls]} end)
            || _ <- lists:seq(1, Workers)],
    [receive {Pid, Results} -> Results end || Pid <- Pids].

run_call({F, Args0}) ->
    Args = [case A of self -> self(); _ -> A end || A <- Args0],
    try {ok, apply(reckon_cnode_emitter_group, F, Args)}
    catch Class:Reason -> {raised, Class, Reason}
    end.

%%%===================================================================
%%% Helpers
%%%===================================================================

%% Bounded wait for a condition (polls every 20 ms; used for conditions
%% that have no event to wait for).
-spec wait_until(fun(() -> boolean()), timeout(), term()) -> ok.
wait_until(Fun, Timeout, What) ->
    wait_until(Fun, now_ms() + Timeout, Timeout, What).

wait_until(Fun, Deadline, Timeout, What) ->
    case Fun() of
        true ->
            ok;
        false ->
            case now_ms() >= Deadline of
                true -> ct:fail({timeout, What, Timeout});
                false ->
                    receive after 20 -> ok end,
                    wait_until(Fun, Deadline, Timeout, What)
            end
    end.

%% @doc Polls Fun (every 20 ms) until it returns Expected; fails with the
%% last value after Timeout.
-spec await_value(fun(() -> term()), term(), timeout(), term()) -> ok.
await_value(Fun, Expected, Timeout, What) ->
    await_value(Fun, Expected, Timeout, What, 20).

-spec await_value(fun(() -> term()), term(), timeout(), term(), pos_integer()) -> ok.
await_value(Fun, Expected, Timeout, What, Interval) ->
    await_value_loop(Fun, Expected, now_ms() + Timeout, What, Interval).

await_value_loop(Fun, Expected, Deadline, What, Interval) ->
    case Fun() of
        Expected ->
            ok;
        Got ->
            case now_ms() >= Deadline of
                true ->
                    ct:fail({timeout, What, {expected, Expected}, {got, Got}});
                false ->
                    receive after Interval -> ok end,
                    await_value_loop(Fun, Expected, Deadline, What, Interval)
            end
    end.

-spec unique_name(string()) -> string().
unique_name(Prefix) ->
    Prefix ++ "_" ++ os:getpid() ++ "_"
        ++ integer_to_list(erlang:unique_integer([positive])).

-spec host() -> string().
host() ->
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Host.

-spec now_ms() -> integer().
now_ms() ->
    erlang:monotonic_time(millisecond).

%%%===================================================================
%%% Strangers without the cookie
%%%===================================================================

%% A C node's listening port, from epmd.
-spec dist_port(cnode()) -> inet:port_number().
dist_port(#{name := Name}) ->
    {port, Port, _} = erl_epmd:port_please(Name, host()),
    Port.

%% N TCP connections that never say a word; owned by a helper process so
%% they close when it is told to (or dies with the test case).
-spec open_silent(inet:port_number(), non_neg_integer()) -> {pid(), non_neg_integer()}.
open_silent(Port, N) ->
    Parent = self(),
    Pid = spawn(fun() ->
                        Socks = [S || _ <- lists:seq(1, N),
                                      {ok, S} <- [gen_tcp:connect({127, 0, 0, 1}, Port,
                                                                  [binary, {active, false}],
                                                                  2000)]],
                        Parent ! {self(), opened, length(Socks)},
                        receive close -> [gen_tcp:close(S) || S <- Socks] end,
                        Parent ! {self(), closed}
                end),
    receive {Pid, opened, Got} -> {Pid, Got} after 30000 -> ct:fail(silent_open_timeout) end.

-spec close_silent(pid()) -> ok.
close_silent(Pid) ->
    Pid ! close,
    receive {Pid, closed} -> ok after 10000 -> ct:fail(silent_close_timeout) end.

%% Threads of an OS process, from /proc.
-spec os_threads(non_neg_integer()) -> pos_integer().
os_threads(OsPid) ->
    {ok, Status} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/status"),
    {match, [N]} = re:run(Status, <<"\nThreads:\\s+(\\d+)">>,
                          [{capture, all_but_first, binary}]),
    binary_to_integer(N).

%% Samples an OS process's threads every 5 ms until stopped, which gives
%% the most seen.
-spec start_thread_sampler(non_neg_integer()) -> pid().
start_thread_sampler(OsPid) ->
    spawn_link(fun() -> sample_threads(OsPid, os_threads(OsPid)) end).

sample_threads(OsPid, Most) ->
    receive
        {stop, From} -> From ! {self(), threads, Most}
    after 5 ->
            sample_threads(OsPid, max(Most, os_threads(OsPid)))
    end.

-spec stop_thread_sampler(pid()) -> pos_integer().
stop_thread_sampler(Pid) ->
    Pid ! {stop, self()},
    receive {Pid, threads, N} -> N after 5000 -> ct:fail(thread_sampler_stuck) end.
