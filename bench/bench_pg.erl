%% pg benchmarks run by bench/run.sh, each side by side with the BEAM doing
%% the same work in the same run:
%%  - join visibility: time from asking a member's node to join until the
%%    observer's pg (pg:monitor/2) reports it; C node vs a BEAM node;
%%  - sync absorb: time for a scope to apply a 100k-membership sync (10k
%%    groups) and bytes per membership; C node vs BEAM node.
-module(bench_pg).
-export([serve/0, join_visibility/3, absorb/2]).

-define(SCOPE, reckon_db_pg).

%% On the BEAM member node: a pg scope and a process that joins on request.
serve() ->
    {ok, _} = pg:start(?SCOPE),
    register(bench_joiner, self()),
    serve_loop().

serve_loop() ->
    receive
        {join, From, Group, Pid} -> ok = pg:join(?SCOPE, Group, Pid), From ! joined;
        {leave, From, Group, Pid} -> ok = pg:leave(?SCOPE, Group, Pid), From ! left;
        stop -> exit(normal)
    end,
    serve_loop().

%% On the observer: interleaved C and BEAM joins, each timed until the
%% observer's own pg reports it.
join_visibility(CNode, BeamNode, N) ->
    {ok, _} = case whereis(?SCOPE) of undefined -> pg:start(?SCOPE); P -> {ok, P} end,
    GC = {bench, <<"c-join">>, emitters}, GB = {bench, <<"beam-join">>, emitters},
    {RefC, []} = pg:monitor(?SCOPE, GC),
    {RefB, []} = pg:monitor(?SCOPE, GB),
    {ok, [CPid]} = gen_server:call({reckon_cnode, CNode}, {spawn_idle, 1}),
    BPid = rpc:call(BeamNode, erlang, spawn, [timer, sleep, [infinity]]),
    Joiner = {bench_joiner, BeamNode},
    wait_peer(CNode, GC, CPid, RefC),
    C = fun() ->
                T0 = erlang:monotonic_time(nanosecond),
                {ok, ok} = gen_server:call({reckon_cnode, CNode}, {pg_join, ?SCOPE, GC, CPid}),
                receive {RefC, join, GC, _} -> ok end,
                T1 = erlang:monotonic_time(nanosecond),
                {ok, ok} = gen_server:call({reckon_cnode, CNode}, {pg_leave, ?SCOPE, GC, CPid}),
                receive {RefC, leave, GC, _} -> ok end,
                (T1 - T0) / 1000
        end,
    B = fun() ->
                T0 = erlang:monotonic_time(nanosecond),
                Joiner ! {join, self(), GB, BPid},
                receive {RefB, join, GB, _} -> ok end,
                T1 = erlang:monotonic_time(nanosecond),
                receive joined -> ok end,
                Joiner ! {leave, self(), GB, BPid},
                receive {RefB, leave, GB, _} -> ok end,
                receive left -> ok end,
                (T1 - T0) / 1000
        end,
    _ = [{C(), B()} || _ <- lists:seq(1, 200)],
    {TC, TB} = lists:unzip([{C(), B()} || _ <- lists:seq(1, N)]),
    {C50, C99} = pct(TC), {B50, B99} = pct(TB),
    io:format("pg_join_visible_c_p50_us ~.1f~npg_join_visible_c_p99_us ~.1f~n", [C50, C99]),
    io:format("pg_join_visible_beam_p50_us ~.1f~npg_join_visible_beam_p99_us ~.1f~n", [B50, B99]),
    io:format("pg_join_visible_ratio_p50 ~.2f~n", [C50 / B50]),
    ok.

%% The C node must have discovered the observer's scope before timing.
wait_peer(CNode, G, CPid, Ref) ->
    {ok, ok} = gen_server:call({reckon_cnode, CNode}, {pg_join, ?SCOPE, G, CPid}),
    receive {Ref, join, G, _} -> ok
    after 200 -> wait_peer(CNode, G, CPid, Ref)
    end,
    {ok, ok} = gen_server:call({reckon_cnode, CNode}, {pg_leave, ?SCOPE, G, CPid}),
    receive {Ref, leave, G, _} -> ok end,
    flush(Ref).

flush(Ref) -> receive {Ref, _, _, _} -> flush(Ref) after 50 -> ok end.

%% Absorbing a sync: this node sends the same {'$gen_cast', {sync, Peer,
%% Groups}} (10k groups x 10 members = 100k memberships, pids of this node)
%% to the C node's scope and to a BEAM node's scope, and times until each has
%% applied it (a request queued behind it on the same connection returns).
%% Both sides pay the same encoding and transfer; the difference is the
%% receiver's work. Memory: the receiver's growth per membership.
absorb(CNode, BeamNode) ->
    Procs = list_to_tuple([spawn(timer, sleep, [infinity]) || _ <- lists:seq(1, 1000)]),
    Groups = [{{absorb, integer_to_binary(G), emitters},
               [element((G * 10 + I) rem 1000 + 1, Procs) || I <- lists:seq(1, 10)]}
              || G <- lists:seq(1, 10000)],
    Sync = {'$gen_cast', {sync, self(), Groups}},
    {ok, #{heap_bytes := H0}} = gen_server:call({reckon_cnode, CNode}, stats),
    E0 = rpc:call(BeamNode, ets, info, [?SCOPE, memory]),
    W = rpc:call(BeamNode, erlang, system_info, [wordsize]),
    T0 = erlang:monotonic_time(microsecond),
    {?SCOPE, CNode} ! Sync,
    {ok, pong} = gen_server:call({reckon_cnode, CNode}, ping, 60000),
    T1 = erlang:monotonic_time(microsecond),
    {?SCOPE, BeamNode} ! Sync,
    _ = sys:get_state({?SCOPE, BeamNode}, 60000),
    T2 = erlang:monotonic_time(microsecond),
    {ok, #{heap_bytes := H1, members := CM}} = gen_server:call({reckon_cnode, CNode}, stats),
    E1 = rpc:call(BeamNode, ets, info, [?SCOPE, memory]),
    {ok, CView} = gen_server:call({reckon_cnode, CNode}, {pg_members, ?SCOPE, {absorb, <<"10000">>, emitters}}),
    10 = length(CView),
    10 = length(rpc:call(BeamNode, pg, get_members, [?SCOPE, {absorb, <<"10000">>, emitters}])),
    io:format("c_sync_us ~p~nbeam_sync_us ~p~n", [T1 - T0, T2 - T1]),
    io:format("c_sync_members ~p~nc_sync_bytes ~p~n", [CM, H1 - H0]),
    io:format("beam_sync_members ~p~nbeam_sync_ets_bytes ~p~n", [100000, (E1 - E0) * W]),
    ok.

pct(L) ->
    S = lists:sort(L), Len = length(S),
    {lists:nth(max(1, round(Len * 0.50)), S), lists:nth(max(1, round(Len * 0.99)), S)}.
