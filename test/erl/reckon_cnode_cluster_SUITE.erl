%%% @doc common_test suite: the cluster layer with several sidecars.
%%%
%%% Every case builds its own cluster: three `peer' BEAM nodes meshed with
%%% each other (and connected to this node; `-connect_all false', so their
%%% connections are exactly the ones made here and by the C nodes), each
%%% running the `pg' scope `reckon_db_pg' (`pg:start/1'), and three test
%%% builds of the C node ("sidecars"), seeded sparsely: sidecar I gets BEAM
%%% node I, and only it, as `--seed'. Everything else (the other BEAM
%%% nodes, the other sidecars, this node) each sidecar has to find through
%%% discovery (`erlang:nodes(connected)' asked of every connected node).
%%% Where a case needs the product's Erlang API on a BEAM node, the
%%% `reckon_cnode' application runs there attached to "its" sidecar (BEAM
%%% node I to sidecar I); the scope it would start is already running.
%%%
%%% Views are compared as sorted lists: each sidecar's `members/2' (the
%%% request server's `{members, S, Sub}'), each BEAM node's
%%% `pg:get_members/2'. Membership changes are awaited by bounded polling,
%%% deliveries as events (a recorder that answers "N messages arrived"),
%%% with bounds; times are logged, never asserted. At its end every case
%%% checks that each BEAM node's scope process is still the one it started
%%% with (OTP 25's `pg' crashes on a message shape it does not expect).
%%%
%%% `subscriber_on_unconnected_node' and `subscriber_on_hidden_node' put the
%%% subscriber of C emitters on a BEAM node that no node of the cluster is
%%% connected to (a `peer' controlled over its standard_io, `-connect_all
%%% false', never connected to anything); they fail while the C node drops
%%% messages to nodes it has no connection to instead of connecting (README,
%%% Known gaps).
%%% @end
-module(reckon_cnode_cluster_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(rc_test_lib,
        [start_cnode/3, wait_cnode_exit/2, os_kill/2, cleanup/1,
         start_peer/3, pcall/4, pcall/5, start_shim_on/2, wait_connected/1,
         wait_until/3, unique_name/1, now_ms/0,
         node_of/1, ccall_retry/2, idle/1, assert_exactly_once/2, count_by/2]).

-export([all/0, suite/0,
         init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([views_converge/1,
         broadcast_everywhere/1,
         kill9_sidecar/1,
         subscriber_on_unconnected_node/1,
         subscriber_on_hidden_node/1,
         joining_node_seen_at_once/1]).

%% run on peers
-export([await_count/3]).

-define(SCOPE, reckon_db_pg).
-define(N_SIDECARS, 3).
%% bound for a cluster of sidecars seeded sparsely to converge (discovery
%% asks every connected node for nodes(connected) on connect and every 5 s)
-define(CONVERGE, 30000).
%% bound for the members of a killed sidecar to disappear everywhere (its
%% connections close at once)
-define(GONE, 10000).
%% bound for events to reach their subscriber
-define(DELIVER, 20000).
%% broadcasts per source in broadcast_everywhere
-define(PER_SOURCE, 200).
%% events per sidecar in the subscriber cases
-define(N_EVENTS, 800).

%%%===================================================================
%%% Structure
%%%===================================================================

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [views_converge,
     broadcast_everywhere,
     kill9_sidecar,
     subscriber_on_unconnected_node,
     subscriber_on_hidden_node,
     joining_node_seen_at_once].

init_per_suite(Config) ->
    rc_test_lib:suite_init(Config).

end_per_suite(Config) ->
    rc_test_lib:suite_end(Config, [testcase, suite]).

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    cleanup([testcase]),
    ok.

%%%===================================================================
%%% Cases
%%%===================================================================

%% Each BEAM node joins a member of its own to a group, then the sidecars
%% start one after the other, each starting an emitter pool of two in that
%% group as soon as it is up: every sidecar's members/2 and every BEAM
%% node's pg view become the same complete list. The time from the last
%% sidecar's start is logged.
views_converge(_Config) ->
    {S, Sub} = store_sub(),
    G = {S, Sub, emitters},
    JoinBeams = fun(Peers) ->
                        [begin
                             B = idle(P),
                             ok = pcall(P, pg, join, [?SCOPE, G, B]),
                             B
                         end || P <- Peers]
                end,
    StartPool = fun(C) ->
                        {ok, Pids} = ccall(C, {start_emitter_pool, S, Sub, 2, undefined}),
                        ?assertEqual([node_of(C)], lists:usort([node(X) || X <- Pids])),
                        Pids
                end,
    #{cnodes := Cs, t_started := T0, on_beams := Bs, on_sidecar := Xss} = Cl =
        cluster(#{on_beams => JoinBeams, on_sidecar => StartPool}),
    Expected = lists:append(Xss) ++ Bs,
    {Done, PerView} = await_views(Cl, S, Sub, Expected, ?CONVERGE),
    ct:pal("views_converge: ~b views identical and complete (~b members) ~b ms after "
           "the last sidecar started; each view first complete at (ms): ~s",
           [length(PerView), length(Expected), Done - T0, since(T0, PerView)]),
    log_stats(Cs),
    assert_scopes(Cl).

%% C emitter pools on every sidecar (two emitters each) and a BEAM emitter
%% on every BEAM node in one group; every emitter has its own subscriber (a
%% collector on BEAM node 1 that tags what it gets) and they all report to
%% one recorder. Broadcasts from each sidecar (reckon_cnode:broadcast_via_cnode
%% on BEAM node I, whose shim is attached to sidecar I: that sidecar picks
%% from its view) and from each BEAM node (reckon_cnode_emitter_group:broadcast,
%% the local pg view): every event reaches the recorder exactly once, and
%% every emitter of the cluster is picked at least once.
broadcast_everywhere(_Config) ->
    #{peers := Peers = [P1 | _], cnodes := Cs} = Cl = cluster(#{shims => true}),
    {S, Sub} = store_sub(),
    Rec = pcall(P1, rc_test_emitter, start_recorder, []),
    Indexed = lists:zip(lists:seq(1, ?N_SIDECARS), lists:zip(Peers, Cs)),
    %% C emitters: pools started through each BEAM node's shim (so on its
    %% sidecar), then each emitter gets its own collector
    CEmitters =
        lists:append(
          [begin
               {ok, Pids} = pcall(P, reckon_cnode, start_emitter_pool, [S, Sub, 2, undefined]),
               ?assertEqual([node_of(C)], lists:usort([node(X) || X <- Pids])),
               [{{c, I, K}, X} || {K, X} <- lists:zip(lists:seq(1, length(Pids)), Pids)]
           end || {I, {P, C}} <- Indexed]),
    [begin
         [Col] = pcall(P1, rc_test_emitter, start_collectors, [Rec, [Tag]]),
         ok = pcall(P1, rc_test_emitter, cast_then_probe, [X, Col, {probe, Tag}]),
         ok = await_recorder(P1, Rec, 1),
         ?assertEqual([{Tag, {events, [{probe, Tag}]}}],
                      pcall(P1, rc_test_emitter, recorder_take, [Rec]))
     end || {Tag, X} <- CEmitters],
    %% BEAM emitters (reckon-db's emitter behaviour), one per BEAM node
    BEmitters = [begin
                     Tag = {beam, I},
                     [Col] = pcall(P1, rc_test_emitter, start_collectors, [Rec, [Tag]]),
                     {Tag, pcall(P, rc_test_emitter, start, [S, Sub, Col])}
                 end || {I, {P, _C}} <- Indexed],
    Emitters = CEmitters ++ BEmitters,
    T0 = now_ms(),
    {Done, _} = await_views(Cl, S, Sub, [E || {_, E} <- Emitters], ?CONVERGE),
    ct:log("~b emitters in every view after ~b ms", [length(Emitters), Done - T0]),
    %% broadcasts from each sidecar and from each BEAM node, all at once
    Sources = [{sidecar, I, P, cnode} || {I, {P, _}} <- Indexed] ++
              [{beam, I, P, shim} || {I, {P, _}} <- Indexed],
    Runs = [begin
                Evs = [{event, {Kind, I, N}, <<"payload">>} || N <- lists:seq(1, ?PER_SOURCE)],
                Req = erpc:send_request(node_of(P), rc_test_emitter, broadcast_many,
                                        [Mode, S, Sub, Evs, false]),
                {{Kind, I}, Evs, Req}
            end || {Kind, I, P, Mode} <- Sources],
    Sent = lists:append(
             [begin
                  {Res, []} = erpc:receive_response(Req, 60000),
                  ?assertEqual({Src, [ok]}, {Src, lists:usort(Res)}),
                  Evs
              end || {Src, Evs, Req} <- Runs]),
    Total = length(Sent),
    case await_recorder(P1, Rec, Total) of
        ok -> ok;
        {timeout, Count} ->
            log_stats(Cs),
            ct:fail({events_lost, {received, Count, 'of', Total}})
    end,
    Got = pcall(P1, rc_test_emitter, recorder_take, [Rec]),
    assert_exactly_once(Sent, Got),
    Counts = count_by(fun({Tag, _}) -> Tag end, Got),
    ct:pal("broadcast_everywhere: ~b events, each delivered once; per emitter: ~s",
           [Total, string:join([io_lib:format("~w ~b", [Tag, N])
                                || {Tag, N} <- lists:sort(maps:to_list(Counts))], ", ")]),
    Unpicked = [Tag || {Tag, _} <- Emitters, not maps:is_key(Tag, Counts)],
    ?assertEqual([], Unpicked),
    %% nothing more arrives: the recorder's own probe is the only message
    Rec ! {events, ['$last']},
    ok = await_recorder(P1, Rec, 1),
    ?assertEqual([{direct, {events, ['$last']}}],
                 pcall(P1, rc_test_emitter, recorder_take, [Rec])),
    log_stats(Cs),
    assert_scopes(Cl).

%% kill -9 of sidecar 2: its emitters disappear from the other sidecars'
%% and every BEAM node's view; restarted with the same name and seed (and
%% its pool started again), its new emitters are in every view.
kill9_sidecar(_Config) ->
    #{peers := Peers, cnodes := [C1, C2, C3]} = Cl = cluster(),
    {S, Sub} = store_sub(),
    G = {S, Sub, emitters},
    [X1, X2, X3] = [begin
                        {ok, Pids} = ccall(C, {start_emitter_pool, S, Sub, 2, undefined}),
                        Pids
                    end || C <- [C1, C2, C3]],
    Bs = [begin
              B = idle(P),
              ok = pcall(P, pg, join, [?SCOPE, G, B]),
              B
          end || P <- Peers],
    #{t_started := TS} = Cl,
    {Up, _} = await_views(Cl, S, Sub, X1 ++ X2 ++ X3 ++ Bs, ?CONVERGE),
    ct:log("initial views complete ~b ms after the last sidecar started", [Up - TS]),
    #{os_pid := OsPid, name := Name2} = C2,
    [_, P2, _] = Peers,
    T0 = now_ms(),
    os_kill("KILL", OsPid),
    Rest = Cl#{cnodes := [C1, C3]},
    {Gone, GonePer} = await_views(Rest, S, Sub, X1 ++ X3 ++ Bs, ?GONE),
    ct:pal("kill9_sidecar: the killed sidecar's members gone from every view ~b ms "
           "after kill -9 (each view first without them at, ms: ~s)",
           [Gone - T0, since(T0, GonePer)]),
    ?assertMatch({exited, _}, wait_cnode_exit(C2, 5000)),
    %% epmd drops the old registration when its socket closes
    wait_until(fun() -> not registered(Name2) end, 5000, {epmd_unregistered, Name2}),
    C2b = start_cnode(Name2, ["--seed", atom_to_list(node_of(P2))], testcase),
    T1 = now_ms(),
    ?assertEqual(node_of(C2), node_of(C2b)),
    {ok, X2b} = ccall(C2b, {start_emitter_pool, S, Sub, 2, undefined}),
    ?assertEqual([node_of(C2b)], lists:usort([node(X) || X <- X2b])),
    Back = Cl#{cnodes := [C1, C2b, C3]},
    {Done, BackPer} = await_views(Back, S, Sub, X1 ++ X2b ++ X3 ++ Bs, ?CONVERGE),
    ct:pal("kill9_sidecar: the restarted sidecar's members in every view ~b ms after "
           "it started (each view first complete at, ms: ~s)",
           [Done - T1, since(T1, BackPer)]),
    ?assertEqual([], [X || X <- X2, lists:member(X, X2b)]),
    log_stats([C1, C2b, C3]),
    assert_scopes(Cl).

%% Each sidecar hosts a pool of one C emitter whose subscriber lives on a
%% BEAM node that no node of the cluster is connected to (a peer
%% controlled over standard_io, -connect_all false); N events broadcast to
%% each pool (from BEAM node I, through its shim): every one reaches the
%% subscriber, in order.
%% A BEAM node that joins the cluster after the C node, connected to one
%% existing node only (as a new reckon-db node joins): the relay of that
%% existing node tells the C node of the nodeup, and the C node asks it for
%% its nodes at once, connects to the new node and syncs with its scope. So
%% the C node sees the new node's members well before its periodic
%% discovery (every 5 s) would have found the node, as an existing BEAM
%% node's pg sees them; both times are logged.
joining_node_seen_at_once(_Config) ->
    Alone = #{connection => standard_io, args => ["-connect_all", "false"]},
    Old = start_peer("rcn_old", Alone, testcase),
    OldNode = node_of(Old),
    C = start_cnode(unique_name("rcn_join"), ["--seed", atom_to_list(OldNode)], testcase),
    CNode = node_of(C),
    start_shim_on(Old, #{cnode => CNode}),
    wait_connected(Old),
    New = start_peer("rcn_new", Alone, testcase),
    _ = rc_test_lib:start_pg_scope(New, ?SCOPE),
    Group = {rcn_join_store, <<"joined">>, emitters},
    Member = pcall(New, rc_test_emitter, start_recorder, []),
    ok = pcall(New, pg, join, [?SCOPE, Group, Member]),
    Nodeups0 = maps:get(cluster_nodeups, rc_test_lib:cnode_stats(C)),
    T0 = now_ms(),
    true = pcall(New, net_kernel, connect_node, [OldNode]),
    SeenBy = fun(See) -> await_member(See, Member, T0) end,
    BeamMs = SeenBy(fun() -> pcall(Old, pg, get_members, [?SCOPE, Group]) end),
    CMs = SeenBy(fun() ->
                         case rc_test_lib:ccall(C, {pg_members, ?SCOPE, Group}) of
                             {ok, Pids} -> Pids;
                             _ -> []
                         end
                 end),
    ct:pal("a joining node's member seen by an existing BEAM node's pg after ~b ms, "
           "by the C node after ~b ms (periodic discovery: every 5,000 ms)", [BeamMs, CMs]),
    ?assert(maps:get(cluster_nodeups, rc_test_lib:cnode_stats(C)) > Nodeups0),
    ?assert(lists:member(CNode, pcall(New, erlang, nodes, [hidden]))),
    %% told, not found by the periodic round
    ?assert(CMs < 2500),
    ok.

%% ms after T0 when See() first lists Member (fails after 10 s).
await_member(See, Member, T0) ->
    wait_until(fun() -> lists:member(Member, See()) end, 10000, {member_seen, Member}),
    now_ms() - T0.

subscriber_on_unconnected_node(_Config) ->
    subscriber_elsewhere(["-connect_all", "false"]).

%% The same with the subscriber on a hidden BEAM node.
subscriber_on_hidden_node(_Config) ->
    subscriber_elsewhere(["-hidden", "-connect_all", "false"]).

subscriber_elsewhere(Args) ->
    #{peers := Peers, cnodes := Cs} = Cl = cluster(#{shims => true}),
    U = start_peer("rcn_clu", #{connection => standard_io, args => Args}, testcase),
    UNode = node_of(U),
    Rec = pcall(U, rc_test_emitter, start_recorder, []),
    Tags = [{c, I} || I <- lists:seq(1, ?N_SIDECARS)],
    Cols = pcall(U, rc_test_emitter, start_collectors, [Rec, Tags]),
    %% the guarantee: nothing is connected to U before the pools start
    ?assertEqual([], pcall(U, erlang, nodes, [connected])),
    ?assertNot(lists:member(UNode, nodes(connected))),
    S = rcn_cl_store,
    Plan = [begin
                Sub = list_to_binary(unique_name("far")),
                {ok, [X]} = pcall(P, reckon_cnode, start_emitter_pool, [S, Sub, 1, Col]),
                ?assertEqual(node_of(C), node(X)),
                {Tag, P, Sub, X}
            end || {{Tag, Col}, {P, C}} <- lists:zip(lists:zip(Tags, Cols),
                                                     lists:zip(Peers, Cs))],
    ct:log("connections of ~p once the pools run: ~p",
           [UNode, pcall(U, erlang, nodes, [connected])]),
    Sent = [begin
                Evs = [{event, {Tag, N}} || N <- lists:seq(1, ?N_EVENTS)],
                {Res, []} = pcall(P, rc_test_emitter, broadcast_many,
                                  [shim, S, Sub, Evs, false], 60000),
                ?assertEqual({Tag, [ok]}, {Tag, lists:usort(Res)}),
                {Tag, Evs}
            end || {Tag, P, Sub, _X} <- Plan],
    Total = ?N_EVENTS * length(Plan),
    T0 = now_ms(),
    Outcome = await_recorder(U, Rec, Total),
    Waited = now_ms() - T0,
    Got = pcall(U, rc_test_emitter, recorder_take, [Rec]),
    ct:log("connections of ~p after the broadcasts: ~p",
           [UNode, pcall(U, erlang, nodes, [connected])]),
    Dropped = log_stats(Cs),
    PerTag = [{Tag, [E || {T, {events, [E]}} <- Got, T =:= Tag]} || {Tag, _} <- Sent],
    Report = [{Tag, {received, length(Mine), 'of', length(Evs)},
               {missing, length(Evs -- Mine)}, {in_order, in_order(Mine, Evs)}}
              || {{Tag, Evs}, {Tag, Mine}} <- lists:zip(Sent, PerTag)],
    ct:pal("~p: ~p after waiting ~b ms; dropped by the sidecars: ~p",
           [UNode, Report, Waited, Dropped]),
    case Outcome of
        ok -> ok;
        {timeout, Count} ->
            ct:fail({events_lost, {subscriber_node, UNode},
                     {received, Count, 'of', Total, within_ms, ?DELIVER},
                     {per_sidecar, Report}, {dropped_by_sidecars, Dropped}})
    end,
    ?assertEqual(Total, length(Got)),
    [?assertEqual({Tag, Evs}, {Tag, Mine})
     || {{Tag, Evs}, {Tag, Mine}} <- lists:zip(Sent, PerTag)],
    assert_scopes(Cl).

%%%===================================================================
%%% Run on peers
%%%===================================================================

%% Waits until the recorder holds N messages: ok, or {timeout, Count}.
-spec await_count(pid(), non_neg_integer(), timeout()) -> ok | {timeout, non_neg_integer()}.
await_count(Rec, N, Timeout) ->
    try rc_test_emitter:recorder_await(Rec, N, Timeout)
    catch exit:{recorder_await_timeout, N, {got, Count}} -> {timeout, Count}
    end.

%%%===================================================================
%%% Helpers
%%%===================================================================

cluster() ->
    cluster(#{}).

%% Three meshed BEAM nodes with the scope, then three sidecars, one after
%% the other (sidecar I seeded with BEAM node I only); with #{shims => true}
%% the application on BEAM node I, attached to sidecar I. Hooks:
%% on_beams(Peers) once the BEAM nodes run, on_sidecar(C) right after each
%% sidecar started (their results are returned under the same keys).
%% t_started: when the last sidecar had printed its name.
cluster(Opts) ->
    Peers = rc_test_lib:start_meshed_peers("rcn_cl", ?N_SIDECARS, testcase),
    [rc_test_lib:start_pg_scope(P, ?SCOPE) || P <- Peers],
    Snap = rc_test_lib:scope_pids(Peers, ?SCOPE),
    OnBeams = (maps:get(on_beams, Opts, fun(_) -> ok end))(Peers),
    OnSidecar = maps:get(on_sidecar, Opts, fun(_) -> ok end),
    Started = [begin
                   C = start_cnode(unique_name("rcn_clc"),
                                   ["--seed", atom_to_list(node_of(P))], testcase),
                   T0 = now_ms(),
                   {C, T0, OnSidecar(C)}
               end || P <- Peers],
    Cs = [C || {C, _, _} <- Started],
    {_, T, _} = lists:last(Started),
    case maps:get(shims, Opts, false) of
        true ->
            [start_shim_on(P, #{cnode => node_of(C), call_timeout => 10000})
             || {P, C} <- lists:zip(Peers, Cs)],
            [wait_connected(P) || P <- Peers];
        false ->
            ok
    end,
    #{peers => Peers, cnodes => Cs, scopes => Snap, t_started => T,
      on_beams => OnBeams, on_sidecar => [R || {_, _, R} <- Started]}.

store_sub() ->
    rc_test_lib:store_sub(rcn_cl_store).

%% A request to a sidecar's request server, from this node, retried once
%% when the connection went down under the call (the simultaneous-connect
%% drop the pg suite retries too; rc_test_lib:ccall_retry/2).
ccall(C, Req) ->
    ccall_retry(C, Req).

%% Logs each sidecar's stats; returns the `dropped' counter of each.
log_stats(Cs) ->
    [begin
         {ok, St} = ccall(C, stats),
         ct:log("stats of ~p: ~p", [node_of(C), St]),
         {node_of(C), maps:get(dropped, maps:get(errors, St, #{}), undefined)}
     end || C <- Cs].

%% Every view of the group: each sidecar's members/2, each BEAM node's pg.
views(#{peers := Peers, cnodes := Cs}, S, Sub) ->
    [{{sidecar, node_of(C)}, c_view(C, S, Sub)} || C <- Cs] ++
        [{{beam, node_of(P)}, lists:sort(pcall(P, pg, get_members, [?SCOPE, {S, Sub, emitters}]))}
         || P <- Peers].

c_view(C, S, Sub) ->
    case ccall(C, {members, S, Sub}) of
        {ok, Pids} -> lists:sort(Pids);
        Other -> Other
    end.

%% Polls every view until all equal Expected (sorted); returns when (now_ms/0)
%% they all did and, per view, when it was first seen complete. Fails with
%% the views that are not.
await_views(Cl, S, Sub, Expected, Timeout) ->
    await_views(Cl, S, Sub, lists:sort(Expected), now_ms() + Timeout, #{}).

await_views(Cl, S, Sub, Want, Deadline, Seen0) ->
    Views = views(Cl, S, Sub),
    Now = now_ms(),
    Seen = lists:foldl(fun({Who, V}, Acc) when V =:= Want ->
                               maps:merge(#{Who => Now}, Acc);
                          (_, Acc) -> Acc
                       end, Seen0, Views),
    case [{Who, V} || {Who, V} <- Views, V =/= Want] of
        [] ->
            {Now, lists:sort(maps:to_list(Seen))};
        Wrong when Now >= Deadline ->
            ct:fail({views_not_converged, {expected, Want},
                     {wrong, [{Who, {missing, Want -- V}, {extra, V -- Want}}
                              || {Who, V} <- Wrong, is_list(V)] ++
                          [{Who, V} || {Who, V} <- Wrong, not is_list(V)]}});
        _ ->
            receive after 20 -> ok end,
            await_views(Cl, S, Sub, Want, Deadline, Seen)
    end.

%% "Who At, ..." with At relative to T0.
since(T0, PerView) ->
    string:join([io_lib:format("~s ~s ~b", [Kind, Node, At - T0])
                 || {{Kind, Node}, At} <- PerView], ", ").

%% Whether Got lists events of Sent once each, in the order of Sent.
in_order(Got, Sent) ->
    Pos = maps:from_list(lists:zip(Sent, lists:seq(1, length(Sent)))),
    Ps = [maps:get(E, Pos, 0) || E <- Got],
    not lists:member(0, Ps) andalso Ps =:= lists:usort(Ps).

%% Waits (bounded) until the recorder on peer P holds N messages.
await_recorder(P, Rec, N) ->
    pcall(P, ?MODULE, await_count, [Rec, N, ?DELIVER], ?DELIVER + 10000).

%% Whether a node name (alive part) is registered with this run's epmd.
registered(Name) ->
    case net_adm:names() of
        {ok, Names} -> lists:keymember(Name, 1, Names);
        _ -> true
    end.

%% Each BEAM node's scope process is still the one it started with.
assert_scopes(#{peers := Peers, scopes := Snap}) ->
    rc_test_lib:assert_scope_pids(Peers, ?SCOPE, Snap).
