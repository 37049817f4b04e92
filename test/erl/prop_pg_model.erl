%%% @doc A stateful PropEr property of the pg scope peer protocol: the C
%%% node and two BEAM nodes (`peer' nodes, each running the `pg' scope
%%% `reckon_db_pg') against a model of the true membership.
%%%
%%% The model holds the live processes of each node slot (`b1', `b2': the
%%% BEAM nodes; `c': the C node) and, for each of a few groups, the list of
%%% its members with duplicates. Commands, chosen at random:
%%% <ul>
%%% <li>`spawn_proc(Slot)': a new idle process on that node;</li>
%%% <li>`join(Slot, G, PidOrPids, W)' / `leave(Slot, G, PidOrPids, W)': through
%%%   `pg' on a BEAM node, through the C node's request server for C
%%%   processes; a pid may join many times, a list may name a pid twice;</li>
%%% <li>`kill_proc(Slot, Pid, W)': a BEAM process killed, or a C process
%%%   ended;</li>
%%% <li>`restart_node(Slot, stop | kill, W)': a BEAM node stopped (`peer:stop')
%%%   or its OS process killed, then a new node under a new name, connected
%%%   to the other BEAM node and to the C node, with a new scope;</li>
%%% <li>`reconnect(Slot, W)': `erlang:disconnect_node/1' from a BEAM node to
%%%   the C node, then the C node reconnects by itself;</li>
%%% <li>`restart_scope(Slot, W)': the scope process of a BEAM node killed and
%%%   started again (its local members are gone with it).</li>
%%% </ul>
%%% After each command (but those whose `W' is `nowait': then the next
%%% command follows at once and meets the change still on its way), every
%%% view (each BEAM node's `pg:get_members/2' and the C node's `pg_members')
%%% must equal the model for every group, as sorted lists, within a bounded
%%% time (polled); and the scope process of each BEAM node must be the one
%%% the run started or restarted: OTP 25's `pg' crashes on a message it does
%%% not expect. At the end of a run the views settle, then each node joins
%%% a fresh process to a barrier group; once every view has all three,
%%% every message sent before them has been applied, and the views must
%%% equal the model at once.
%%%
%%% The property runs in the calling process, which holds the cluster of
%%% the current run in its process dictionary; everything it starts is
%%% tracked (rc_test_lib, scope `testcase') and stopped after each run.
%%% @end
-module(prop_pg_model).

-include_lib("proper/include/proper.hrl").

%% the property and explicit command lists
-export([prop_pg_model/1, check/2, run_case/1]).
%% proper_statem callbacks
-export([initial_state/0, command/1, precondition/2, postcondition/3, next_state/3]).
%% commands
-export([spawn_proc/1, join/4, leave/4, kill_proc/3, restart_node/3, reconnect/2,
         restart_scope/2]).
%% run on the BEAM nodes
-export([remote_views/2, remote_disconnect/1, remote_restart_scope/1]).

-define(SCOPE, reckon_db_pg).
-define(GROUPS, [g1, g2, g3]).
-define(BEAMS, [b1, b2]).
-define(SLOTS, [b1, b2, c]).
%% live processes per slot
-define(MAX_PROCS, 3).
%% bound for every view to equal the model after a command
-define(SETTLE_MS, 5000).
%% bound for the C node to reconnect after a disconnect
-define(RECONNECT_MS, 10000).
-define(ENV, {?MODULE, env}).

-type slot() :: b1 | b2 | c.
-type state() :: #{procs := [{slot(), term()}], members := #{atom() => [term()]}}.

%%%===================================================================
%%% The property
%%%===================================================================

%% @doc Random command lists (of the size PropEr is at, up to MaxCommands
%% commands), each run on a fresh cluster.
-spec prop_pg_model(pos_integer()) -> proper:outer_test().
prop_pg_model(MaxCommands) ->
    ?FORALL(Cmds, ?LET(Cmds, commands(?MODULE), lists:sublist(Cmds, MaxCommands)),
            begin
                %% what the run does must not move the generator
                Gen = rand:export_seed(),
                {History, State, Result} = run_case(Cmds),
                _ = Gen =:= undefined orelse rand:seed(Gen),
                ?WHENFAIL(ct:log("failed: ~p~ncommands:~n~p~nlast state: ~p~nhistory: ~p",
                                 [Result, Cmds, State, History]),
                          aggregate(command_names(Cmds), Result =:= ok))
            end).

%% @doc Runs the property NumTests times from a fixed seed; true, or the
%% (shrunk) counterexample.
-spec check(pos_integer(), #{max_commands := pos_integer(),
                             seed := {integer(), integer(), integer()}}) -> true | term().
check(NumTests, #{max_commands := Max, seed := Seed}) ->
    %% PropEr keeps a generator state it finds in the process dictionary.
    _ = rand:seed(exsplus, Seed),
    try proper:quickcheck(prop_pg_model(Max),
                          [{numtests, NumTests}, {start_size, Max}, {max_size, Max},
                           {max_shrinks, 30}, long_result,
                           {to_file, user}]) of
        true -> true;
        Counterexample -> Counterexample
    after
        erase(rand_seed)
    end.

%% @doc Runs one command list on a fresh cluster, stopped afterwards:
%% `{History, State, ok | Reason}' as proper_statem:run_commands/2, the
%% final barrier check folded into the result.
-spec run_case(list()) -> {list(), term(), term()}.
run_case(Cmds) ->
    try
        start_cluster(),
        {History, State, Result} = proper_statem:run_commands(?MODULE, Cmds),
        Final = case Result of
                    ok -> final_check(State);
                    _ -> Result
                end,
        {History, State, Final}
    after
        stop_cluster()
    end.

%%%===================================================================
%%% Model
%%%===================================================================

-spec initial_state() -> state().
initial_state() ->
    #{procs => [], members => #{}}.

-spec command(state()) -> proper_types:type().
command(#{procs := Procs} = S) ->
    Slots = [Slot || Slot <- ?SLOTS, procs_of(Slot, Procs) =/= []],
    Memberships = memberships(S),
    frequency(
      [{2, {call, ?MODULE, spawn_proc, [elements(?SLOTS)]}}] ++
      [{6, ?LET(Slot, elements(Slots),
                {call, ?MODULE, join, [Slot, elements(?GROUPS), pids(procs_of(Slot, Procs)),
                                       wait()]})}
       || Slots =/= []] ++
      [{4, ?LET({Slot, G, Pid}, elements(Memberships),
                {call, ?MODULE, leave, [Slot, G, oneof([Pid, [Pid], [Pid, Pid]]), wait()]})}
       || Memberships =/= []] ++
      [{1, ?LET(Slot, elements(Slots),
                {call, ?MODULE, leave, [Slot, elements(?GROUPS), pids(procs_of(Slot, Procs)),
                                        wait()]})}
       || Slots =/= []] ++
      [{2, ?LET(Slot, elements(Slots),
                {call, ?MODULE, kill_proc, [Slot, elements(procs_of(Slot, Procs)), wait()]})}
       || Slots =/= []] ++
      [{1, {call, ?MODULE, restart_node, [beam(Memberships), elements([stop, kill]), wait()]}},
       {1, {call, ?MODULE, reconnect, [beam(Memberships), wait()]}},
       {1, {call, ?MODULE, restart_scope, [beam(Memberships), wait()]}}]).

%% A BEAM node for a node or scope event, mostly one with members: what it
%% loses must disappear everywhere.
beam(Memberships) ->
    case lists:usort([Slot || {Slot, _, _} <- Memberships, Slot =/= c]) of
        [] -> elements(?BEAMS);
        WithMembers -> frequency([{3, elements(WithMembers)}, {1, elements(?BEAMS)}])
    end.

%% Mostly the views are checked after the command; sometimes the next
%% command follows at once, so it meets a change still on its way.
wait() ->
    frequency([{3, wait}, {1, nowait}]).

%% A pid, a list of one, or a list of two (perhaps the same twice).
pids(Ps) ->
    oneof([elements(Ps), [elements(Ps)], [elements(Ps), elements(Ps)]]).

-spec precondition(state(), term()) -> boolean().
precondition(#{procs := Procs}, {call, _, spawn_proc, [Slot]}) ->
    length(procs_of(Slot, Procs)) < ?MAX_PROCS;
precondition(#{procs := Procs}, {call, _, F, [Slot, _G, PidOrPids, _Wait]})
  when F =:= join; F =:= leave ->
    lists:all(fun(P) -> lists:member({Slot, P}, Procs) end, as_list(PidOrPids));
precondition(#{procs := Procs}, {call, _, kill_proc, [Slot, Pid, _Wait]}) ->
    lists:member({Slot, Pid}, Procs);
precondition(_S, {call, _, _, _}) ->
    true.

-spec next_state(state(), term(), term()) -> state().
next_state(#{procs := Procs} = S, Pid, {call, _, spawn_proc, [Slot]}) ->
    S#{procs := Procs ++ [{Slot, Pid}]};
next_state(#{members := M} = S, _Res, {call, _, join, [_Slot, G, PidOrPids, _Wait]}) ->
    S#{members := M#{G => maps:get(G, M, []) ++ as_list(PidOrPids)}};
next_state(#{members := M} = S, _Res, {call, _, leave, [_Slot, G, PidOrPids, _Wait]}) ->
    S#{members := M#{G => maps:get(G, M, []) -- as_list(PidOrPids)}};
next_state(#{procs := Procs} = S, _Res, {call, _, kill_proc, [Slot, Pid, _Wait]}) ->
    drop_members([Pid], S#{procs := Procs -- [{Slot, Pid}]});
next_state(#{procs := Procs} = S, _Res, {call, _, restart_node, [Slot, _How, _Wait]}) ->
    Gone = procs_of(Slot, Procs),
    drop_members(Gone, S#{procs := [E || {Sl, _} = E <- Procs, Sl =/= Slot]});
next_state(S, _Res, {call, _, reconnect, [_Slot, _Wait]}) ->
    S;
next_state(#{procs := Procs} = S, _Res, {call, _, restart_scope, [Slot, _Wait]}) ->
    drop_members(procs_of(Slot, Procs), S).

%% The command's own result is as expected, then (unless the command says
%% nowait) every view settles on the model of the state after it.
-spec postcondition(state(), term(), term()) -> boolean().
postcondition(S, {call, _, _, Args} = Call, Res) ->
    case {result_ok(S, Call, Res), lists:last([wait | Args])} of
        {true, nowait} ->
            true;
        {true, _} ->
            settled(next_state(S, Res, Call), Call);
        {false, _} ->
            ct:log("~p returned ~p", [Call, Res]),
            false
    end.

result_ok(_S, {call, _, spawn_proc, _}, Res) ->
    is_pid(Res);
result_ok(_S, {call, _, F, [c | _]}, Res) when F =:= join; F =:= leave; F =:= kill_proc ->
    Res =:= {ok, ok};
result_ok(#{members := M}, {call, _, leave, [_Slot, G, PidOrPids, _Wait]}, Res) ->
    Was = maps:get(G, M, []),
    case [P || P <- as_list(PidOrPids), lists:member(P, Was)] of
        [] -> Res =:= not_joined;
        _ -> Res =:= ok
    end;
result_ok(_S, {call, _, _, _}, Res) ->
    Res =:= ok.

procs_of(Slot, Procs) ->
    [P || {Sl, P} <- Procs, Sl =:= Slot].

%% {Slot, Group, Pid} of every membership.
memberships(#{procs := Procs, members := M}) ->
    [{Slot, G, P} || {G, Ps} <- maps:to_list(M), P <- lists:usort(Ps),
                     {Slot, P1} <- Procs, P1 =:= P].

%% Every membership of the pids goes.
drop_members(Pids, #{members := M} = S) ->
    S#{members := maps:map(fun(_G, Ps) -> [P || P <- Ps, not lists:member(P, Pids)] end, M)}.

as_list(L) when is_list(L) -> L;
as_list(P) -> [P].

%%%===================================================================
%%% Commands
%%%===================================================================

-spec spawn_proc(slot()) -> pid().
spawn_proc(c) ->
    {ok, [Pid]} = rc_test_lib:ccall(cnode(), {spawn_idle, 1}),
    Pid;
spawn_proc(Slot) ->
    rc_test_lib:idle(peer(Slot)).

-spec join(slot(), atom(), pid() | [pid()], wait | nowait) -> term().
join(c, G, PidOrPids, _Wait) ->
    rc_test_lib:ccall(cnode(), {pg_join, ?SCOPE, group(G), PidOrPids});
join(Slot, G, PidOrPids, _Wait) ->
    pcall(peer(Slot), pg, join, [?SCOPE, group(G), PidOrPids]).

-spec leave(slot(), atom(), pid() | [pid()], wait | nowait) -> term().
leave(c, G, PidOrPids, _Wait) ->
    rc_test_lib:ccall(cnode(), {pg_leave, ?SCOPE, group(G), PidOrPids});
leave(Slot, G, PidOrPids, _Wait) ->
    pcall(peer(Slot), pg, leave, [?SCOPE, group(G), PidOrPids]).

-spec kill_proc(slot(), pid(), wait | nowait) -> term().
kill_proc(c, Pid, _Wait) ->
    rc_test_lib:ccall(cnode(), {exit_process, Pid, shutdown});
kill_proc(_Slot, Pid, _Wait) ->
    true = exit(Pid, kill),
    ok.

%% The node goes (stopped, or its OS process killed), and a new one under a
%% new name takes its slot: connected to the other BEAM node and to the C
%% node, with a new scope.
-spec restart_node(b1 | b2, stop | kill, wait | nowait) -> ok.
restart_node(Slot, How, _Wait) ->
    Old = peer(Slot),
    OldNode = rc_test_lib:node_of(Old),
    true = erlang:monitor_node(OldNode, true),
    case How of
        stop ->
            rc_test_lib:stop_peer(Old);
        kill ->
            OsPid = list_to_integer(pcall(Old, os, getpid, [])),
            rc_test_lib:os_kill("KILL", OsPid)
    end,
    receive {nodedown, OldNode} -> ok
    after 10000 -> exit({still_up, OldNode})
    end,
    New = start_beam(),
    [Other] = [peer(Sl) || Sl <- ?BEAMS, Sl =/= Slot],
    true = pcall(New, net_kernel, connect_node, [rc_test_lib:node_of(Other)]),
    true = pcall(New, net_kernel, connect_node, [rc_test_lib:node_of(cnode())]),
    #{peers := Peers, scopes := Scopes} = Env = env(),
    put(?ENV, Env#{peers := Peers#{Slot := New},
                   scopes := Scopes#{Slot := pcall(New, erlang, whereis, [?SCOPE])}}),
    ok.

%% The BEAM node drops its connection to the C node; the C node connects
%% again by itself (awaited unless nowait).
-spec reconnect(b1 | b2, wait | nowait) -> ok.
reconnect(Slot, Wait) ->
    P = peer(Slot),
    CNode = rc_test_lib:node_of(cnode()),
    ok = pcall(P, ?MODULE, remote_disconnect, [CNode]),
    Wait =:= nowait orelse
        rc_test_lib:wait_until(
          fun() -> lists:member(CNode, pcall(P, erlang, nodes, [hidden])) end,
          ?RECONNECT_MS, {reconnected, Slot}),
    ok.

%% The scope process is killed and a new one started.
-spec restart_scope(b1 | b2, wait | nowait) -> ok.
restart_scope(Slot, _Wait) ->
    P = peer(Slot),
    {ok, New} = pcall(P, ?MODULE, remote_restart_scope, [?SCOPE]),
    #{scopes := Scopes} = Env = env(),
    put(?ENV, Env#{scopes := Scopes#{Slot := New}}),
    ok.

%%%===================================================================
%%% Run on the BEAM nodes
%%%===================================================================

%% @doc `[{Group, SortedMembers}]', or `no_scope'.
-spec remote_views(atom(), [term()]) -> [{term(), [pid()]}] | no_scope.
remote_views(Scope, Groups) ->
    try [{G, lists:sort(pg:get_members(Scope, G))} || G <- Groups]
    catch error:badarg -> no_scope
    end.

%% @doc Disconnects from Node, if connected, and returns once the node is
%% down here (the scope's monitors of that node have fired by then).
-spec remote_disconnect(node()) -> ok.
remote_disconnect(Node) ->
    case lists:member(Node, nodes(hidden)) of
        true ->
            true = erlang:monitor_node(Node, true),
            true = erlang:disconnect_node(Node),
            receive {nodedown, Node} -> ok
            after 5000 -> exit({no_nodedown, Node})
            end;
        false ->
            ok
    end.

%% @doc Kills the scope process, waits for it to be gone, starts a new one
%% (not linked to the caller).
-spec remote_restart_scope(atom()) -> {ok, pid()}.
remote_restart_scope(Scope) ->
    Old = whereis(Scope),
    MRef = erlang:monitor(process, Old),
    true = exit(Old, kill),
    receive {'DOWN', MRef, process, Old, _} -> ok
    after 5000 -> exit({scope_still_alive, Old})
    end,
    pg:start(Scope).

%%%===================================================================
%%% The cluster of a run
%%%===================================================================

start_cluster() ->
    Peers = #{b1 => start_beam(), b2 => start_beam()},
    #{b1 := B1, b2 := B2} = Peers,
    true = pcall(B1, net_kernel, connect_node, [rc_test_lib:node_of(B2)]),
    Seeds = lists:append([["--seed", atom_to_list(rc_test_lib:node_of(P))] || P <- [B1, B2]]),
    C = rc_test_lib:start_cnode(rc_test_lib:unique_name("rcn_pgmc"), Seeds, testcase),
    {ok, CScope} = rc_test_lib:ccall_retry(C, {scope_pid, ?SCOPE}),
    Scopes = maps:map(fun(_, P) -> pcall(P, erlang, whereis, [?SCOPE]) end, Peers),
    put(?ENV, #{cnode => C, cscope => CScope, peers => Peers, scopes => Scopes}),
    %% both BEAM scopes found by the C node
    rc_test_lib:await_value(fun() -> maps:get(peers, rc_test_lib:cnode_stats(C), none) end,
                            2, ?SETTLE_MS, c_found_scopes).

stop_cluster() ->
    erase(?ENV),
    rc_test_lib:cleanup([testcase]).

start_beam() ->
    P = rc_test_lib:start_peer("rcn_pgm", #{args => ["-connect_all", "false"]}, testcase),
    _ = rc_test_lib:start_pg_scope(P, ?SCOPE),
    P.

env() -> get(?ENV).
cnode() -> maps:get(cnode, env()).
peer(Slot) -> maps:get(Slot, maps:get(peers, env())).

group(G) -> {rcn_pgm, atom_to_binary(G, utf8), emitters}.

pcall(P, M, F, A) ->
    rc_test_lib:pcall(P, M, F, A, 10000).

%%%===================================================================
%%% Views
%%%===================================================================

%% Every view of every group equals the model within SETTLE_MS, and every
%% scope process is the expected one.
settled(S, Call) ->
    Expected = expected(S, ?GROUPS),
    T0 = rc_test_lib:now_ms(),
    case await_views(Expected, ?GROUPS, T0 + ?SETTLE_MS) of
        ok ->
            true;
        {differ, Views} ->
            ct:log("after ~p: views differ from the model after ~p ms~n"
                   "expected (every view): ~p~nviews: ~p",
                   [Call, rc_test_lib:now_ms() - T0, Expected, Views]),
            false
    end.

expected(#{members := M}, Groups) ->
    [{group(G), lists:sort(maps:get(G, M, []))} || G <- Groups].

await_views(Expected, Groups, Deadline) ->
    Views = views(Groups),
    Want = [{Slot, Expected} || Slot <- ?SLOTS] ++ scopes_expected(),
    case Views =:= Want of
        true ->
            ok;
        false ->
            case rc_test_lib:now_ms() >= Deadline of
                true -> {differ, Views};
                false ->
                    receive after 20 -> ok end,
                    await_views(Expected, Groups, Deadline)
            end
    end.

%% [{Slot, [{Group, SortedMembers}]}] for b1, b2, c, then each node's
%% scope process.
views(Groups) ->
    #{cnode := C, peers := Peers} = env(),
    Gs = [group(G) || G <- Groups],
    [{Slot, pcall(maps:get(Slot, Peers), ?MODULE, remote_views, [?SCOPE, Gs])}
     || Slot <- ?BEAMS] ++
        [{c, [{G, c_members(C, G)} || G <- Gs]}] ++
        [{{scope, Slot}, pcall(maps:get(Slot, Peers), erlang, whereis, [?SCOPE])}
         || Slot <- ?BEAMS] ++
        [{{scope, c}, rc_test_lib:ccall(C, {scope_pid, ?SCOPE})}].

scopes_expected() ->
    #{scopes := Scopes, cscope := CScope} = env(),
    [{{scope, Slot}, maps:get(Slot, Scopes)} || Slot <- ?BEAMS] ++
        [{{scope, c}, {ok, CScope}}].

c_members(C, G) ->
    case rc_test_lib:ccall(C, {pg_members, ?SCOPE, G}) of
        {ok, Pids} -> lists:sort(Pids);
        Other -> Other
    end.

%% Once the views have settled (the last commands may not have waited),
%% each node joins a fresh process to a barrier group; once every view has
%% all three, what each node sent before is applied everywhere: the views
%% must equal the model at once.
final_check(S) ->
    case settled(S, final) of
        true -> barrier_check(S);
        false -> {views_differ, expected(S, ?GROUPS)}
    end.

barrier_check(S) ->
    Barrier = [spawn_proc(Slot) || Slot <- ?SLOTS],
    [ok, ok, {ok, ok}] = [join(Slot, barrier, Pid, wait)
                          || {Slot, Pid} <- lists:zip(?SLOTS, Barrier)],
    Deadline = rc_test_lib:now_ms() + ?SETTLE_MS,
    case await_views([{group(barrier), lists:sort(Barrier)}], [barrier], Deadline) of
        ok ->
            Expected = expected(S, ?GROUPS),
            case await_views(Expected, ?GROUPS, rc_test_lib:now_ms()) of
                ok -> ok;
                {differ, Views} -> {final_views_differ, {expected, Expected}, {views, Views}}
            end;
        {differ, Views} ->
            {barrier_not_seen, Views}
    end.
