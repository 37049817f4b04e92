%% pg benchmarks run by bench/run.sh, each side by side with the BEAM doing
%% the same work in the same run, in alternating runs (bench_runs):
%%  - join visibility: time from asking a member's node to join until the
%%    observer's pg (pg:monitor/2) reports it; C node vs a BEAM node, one
%%    of each in turn; each run's p50 and p99 of N joins a side;
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

%% On the observer: runs of N C joins and N BEAM joins, one of each in
%% turn, each join timed until the observer's own pg reports it.
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
    bench_runs:kv("pg_joins_per_run", N),
    [begin
         {TC, TB} = bench_runs:interleaved(N, C, B),
         [begin
              {P50, P99} = pct(T),
              bench_runs:put("pg_join_p50_us", S, I, P50),
              bench_runs:put("pg_join_p99_us", S, I, P99)
          end || {S, T} <- [{c, TC}, {beam, TB}]]
     end || I <- lists:seq(1, bench_runs:runs())],
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
%% receiver's work. Memory: the receiver's growth per membership. Before
%% each run an empty sync from the same peer takes the last run's
%% memberships away (untimed), so every run starts from none.
absorb(CNode, BeamNode) ->
    Procs = list_to_tuple([spawn(timer, sleep, [infinity]) || _ <- lists:seq(1, 1000)]),
    Groups = [{{absorb, integer_to_binary(G), emitters},
               [element((G * 10 + I) rem 1000 + 1, Procs) || I <- lists:seq(1, 10)]}
              || G <- lists:seq(1, 10000)],
    Members = 100000,
    Sync = {'$gen_cast', {sync, self(), Groups}},
    Clear = {'$gen_cast', {sync, self(), []}},
    Last = {absorb, <<"10000">>, emitters},
    W = rpc:call(BeamNode, erlang, system_info, [wordsize]),
    Run = fun(c, _) ->
                  {?SCOPE, CNode} ! Clear,
                  {ok, pong} = gen_server:call({reckon_cnode, CNode}, ping, 60000),
                  {ok, []} = gen_server:call({reckon_cnode, CNode}, {pg_members, ?SCOPE, Last}),
                  {ok, #{heap_bytes := H0}} = gen_server:call({reckon_cnode, CNode}, stats),
                  T0 = erlang:monotonic_time(microsecond),
                  {?SCOPE, CNode} ! Sync,
                  {ok, pong} = gen_server:call({reckon_cnode, CNode}, ping, 60000),
                  T1 = erlang:monotonic_time(microsecond),
                  {ok, #{heap_bytes := H1}} = gen_server:call({reckon_cnode, CNode}, stats),
                  {ok, CView} = gen_server:call({reckon_cnode, CNode}, {pg_members, ?SCOPE, Last}),
                  10 = length(CView),
                  {T1 - T0, (H1 - H0) / Members};
             (beam, _) ->
                  {?SCOPE, BeamNode} ! Clear,
                  _ = sys:get_state({?SCOPE, BeamNode}, 60000),
                  [] = rpc:call(BeamNode, pg, get_members, [?SCOPE, Last]),
                  E0 = rpc:call(BeamNode, ets, info, [?SCOPE, memory]),
                  T0 = erlang:monotonic_time(microsecond),
                  {?SCOPE, BeamNode} ! Sync,
                  _ = sys:get_state({?SCOPE, BeamNode}, 60000),
                  T1 = erlang:monotonic_time(microsecond),
                  E1 = rpc:call(BeamNode, ets, info, [?SCOPE, memory]),
                  10 = length(rpc:call(BeamNode, pg, get_members, [?SCOPE, Last])),
                  {T1 - T0, (E1 - E0) * W / Members}
          end,
    bench_runs:kv("pg_sync_memberships", Members),
    [begin
         bench_runs:put("pg_sync_ms", S, I, Us / 1000),
         bench_runs:put("pg_sync_bytes_per_membership", S, I, float(Bytes))
     end || {S, I, {Us, Bytes}} <- bench_runs:alternate(bench_runs:runs(), Run)],
    ok.

pct(L) ->
    S = lists:sort(L), Len = length(S),
    {lists:nth(max(1, round(Len * 0.50)), S), lists:nth(max(1, round(Len * 0.99)), S)}.
