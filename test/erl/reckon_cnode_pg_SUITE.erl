%%% @doc common_test suite: the C node as a peer of OTP 25 `pg' scopes.
%%%
%%% Real `peer' BEAM nodes, each running the `pg' scope `reckon_db_pg'
%%% (started with `pg:start/1', so it is nobody's child and outlives the
%%% call that started it), and the real `priv/reckon_cnode', over loopback
%%% with the private epmd of `test/erl/run_ct.sh'. Every case starts its own
%%% peers and C node and stops them at its end.
%%%
%%% OTP 25's `pg' crashes on any message shape it does not expect, so every
%%% case checks at its end that the scope process of each BEAM node is the
%%% one it started with (the case that kills and restarts a scope checks the
%%% other nodes).
%%%
%%% Membership views are compared as multisets (sorted lists). Conditions
%%% are awaited by bounded polling (`rc_test_lib:wait_until/3'); where a
%%% state must be shown to <em>stay</em> (a member that must remain after
%%% one of its two leaves), a later "barrier" join from the same sender is
%%% awaited: `pg' messages between two scopes are ordered, so once the
%%% barrier is visible everything sent before it has been applied.
%%% @end
-module(reckon_cnode_pg_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(rc_test_lib,
        [start_cnode/3, wait_cnode_exit/2, os_kill/2,
         cleanup/1,
         start_peer/3, stop_peer/1, pcall/4,
         start_shim_on/2, wait_connected/1, wait_until/3, unique_name/1,
         now_ms/0, node_of/1, ccall_retry/2, idle/1, await_value/4]).

-export([all/0, suite/0,
         init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

%% test cases
-export([c_members_on_every_beam_node/1,
         beam_members_via_cnode/1,
         leave_and_multiplicity/1,
         cnode_before_scopes/1,
         scope_after_connection/1,
         group_terms_as_terms/1,
         second_scope/1,
         c_process_exit_leaves/1,
         kill9_cnode/1,
         stop_beam_node/1,
         restart_beam_scope/1,
         sigterm_cnode_leaves/1,
         seed_nodes_discovery/1,
         sidecars_see_each_other/1]).

%% run on peers
-export([trace_scope/1, trace_get/1]).

-define(SCOPE, reckon_db_pg).
%% bound for a membership change to be visible on another node
-define(PROPAGATE, 10000).
%% bound for the C node's members to disappear after SIGTERM (far below
%% net_ticktime, so only the graceful leave can make it)
-define(SIGTERM_GONE, 2000).

%%%===================================================================
%%% Structure
%%%===================================================================

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [c_members_on_every_beam_node,
     beam_members_via_cnode,
     leave_and_multiplicity,
     cnode_before_scopes,
     scope_after_connection,
     group_terms_as_terms,
     second_scope,
     c_process_exit_leaves,
     kill9_cnode,
     stop_beam_node,
     restart_beam_scope,
     sigterm_cnode_leaves,
     seed_nodes_discovery,
     sidecars_see_each_other].

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

%% C processes joined through the request server ({join, S, Sub, Pids},
%% single pid or list, duplicates) are members on every BEAM node.
c_members_on_every_beam_node(_Config) ->
    Peers = [P1 | _] = start_beams(3),
    Snap = snapshot(Peers),
    C = start_c([P1]),
    {S, Sub, G} = group(),
    {ok, [X, Y, Z]} = ccall(C, {spawn_idle, 3}),
    [?assertEqual(node_of(C), node(Pid)) || Pid <- [X, Y, Z]],
    ?assertEqual({ok, ok}, ccall(C, {join, S, Sub, [X, Y]})),
    ?assertEqual({ok, ok}, ccall(C, {join, S, Sub, X})),
    ?assertEqual({ok, ok}, ccall(C, {join, S, Sub, [Z]})),
    Expected = [X, X, Y, Z],
    await_beams(Peers, G, Expected),
    ?assertEqual(lists:sort(Expected), c_members(C, G)),
    ?assertEqual({ok, lists:sort(Expected)}, sorted(ccall(C, {members, S, Sub}))),
    ?assertEqual({ok, lists:sort(Expected)},
                 sorted(ccall(C, {pg_local_members, ?SCOPE, G}))),
    ?assert(lists:member(G, which_groups(C, ?SCOPE))),
    %% they are remote members for the BEAM nodes
    [?assertEqual([], pcall(P, pg, get_local_members, [?SCOPE, G])) || P <- Peers],
    %% request errors
    B = idle(P1),
    ?assertEqual({error, {nolocal, B}}, ccall(C, {join, S, Sub, [X, B]})),
    ?assertEqual({error, {nolocal, B}}, ccall(C, {join, S, Sub, B})),
    ?assertEqual({error, badarg}, ccall(C, {join, S, Sub, foo})),
    ?assertEqual({error, badarg}, ccall(C, {join, S, Sub, [X, foo]})),
    %% a C pid that does not exist (any more) is ignored
    {ok, [W]} = ccall(C, {spawn_idle, 1}),
    ?assertEqual({ok, ok}, ccall(C, {exit_process, W, normal})),
    ?assertEqual({ok, ok}, ccall(C, {join, S, Sub, W})),
    {ok, [Barrier]} = ccall(C, {spawn_idle, 1}),
    ?assertEqual({ok, ok}, ccall(C, {join, S, Sub, Barrier})),
    await_beams(Peers, G, [Barrier | Expected]),
    ?assertEqual(lists:sort([Barrier | Expected]), c_members(C, G)),
    %% three BEAM scopes discovered
    await_value(fun() -> maps:get(peers, stats(C), undefined) end, 3, ?PROPAGATE,
                stats_peers),
    ct:log("stats: ~p", [stats(C)]),
    assert_scopes(Snap).

%% BEAM members of three nodes, with duplicates, in the C node's view;
%% members/2 called on a node connected to the C node only (hidden, no
%% other pg peer) lists them too.
beam_members_via_cnode(_Config) ->
    Peers = [P1, P2, P3] = start_beams(3),
    Snap0 = snapshot(Peers),
    C = start_c([P1]),
    {S, Sub, G} = group(),
    [A1, A2] = [idle(P1) || _ <- [1, 2]],
    B1 = idle(P2),
    D1 = idle(P3),
    ok = bjoin(P1, G, [A1, A1, A2]),
    ok = bjoin(P2, G, B1),
    ok = bjoin(P2, G, [B1]),
    ok = bjoin(P3, G, D1),
    Beam = [A1, A1, A2, B1, B1, D1],
    await_c(C, G, Beam),
    ?assertEqual({ok, lists:sort(Beam)}, sorted(ccall(C, {members, S, Sub}))),
    ?assertEqual({ok, []}, ccall(C, {pg_local_members, ?SCOPE, G})),
    %% H: hidden, connected to this node and (through the shim) to the C
    %% node; its pg scope (started by the application) has no BEAM peer
    H = start_peer("rcn_pgh", #{args => ["-hidden"]}, testcase),
    start_shim_on(H, #{cnode => node_of(C), call_timeout => 5000}),
    wait_connected(H),
    ?assertEqual([], pcall(H, erlang, nodes, [])),
    Snap = snapshot([H]) ++ Snap0,
    ?assertEqual([], pcall(H, pg, get_members, [?SCOPE, G])),
    await_value(fun() -> sorted(shim(H, members, [S, Sub])) end, {ok, lists:sort(Beam)},
                ?PROPAGATE, members_from_hidden_node),
    %% from H: a C pid joins (seen everywhere) and an H pid joins (seen by
    %% the C node, which is H's only pg peer)
    {ok, [X]} = ccall(C, {spawn_idle, 1}),
    Hx = idle(H),
    ?assertEqual({ok, ok}, shim(H, join, [S, Sub, [X, Hx]])),
    await_beams(Peers, G, [X | Beam]),
    await_c(C, G, [X, Hx | Beam]),
    ?assertEqual({ok, lists:sort([X, Hx | Beam])}, sorted(shim(H, members, [S, Sub]))),
    await_beams([H], G, [X, Hx]),
    %% H cannot join another node's pid
    ?assertEqual({raised, error, {nolocal, A1}}, shim(H, join, [S, Sub, [Hx, A1]])),
    ?assertEqual({raised, error, {nolocal, A1}}, shim(H, leave, [S, Sub, A1])),
    ?assertEqual({ok, ok}, shim(H, leave, [S, Sub, [X, Hx]])),
    await_c(C, G, Beam),
    await_beams(Peers, G, Beam),
    assert_scopes(Snap).

%% Join twice, leave once: still a member, in both directions; leaving a
%% non-member is a no-op.
leave_and_multiplicity(_Config) ->
    Peers = [P1, P2, _] = start_beams(3),
    Snap = snapshot(Peers),
    C = start_c([P1]),
    {S, Sub, G} = group(),
    %% C -> BEAM
    {ok, [X, M1, M2]} = ccall(C, {spawn_idle, 3}),
    ?assertEqual({ok, ok}, ccall(C, {join, S, Sub, X})),
    ?assertEqual({ok, ok}, ccall(C, {pg_join, ?SCOPE, G, [X]})),
    await_beams(Peers, G, [X, X]),
    ?assertEqual({ok, ok}, ccall(C, {leave, S, Sub, X})),
    ?assertEqual({ok, ok}, ccall(C, {join, S, Sub, M1})),
    await_beams(Peers, G, [X, M1]),
    ?assertEqual({ok, ok}, ccall(C, {pg_leave, ?SCOPE, G, [X]})),
    ?assertEqual({ok, ok}, ccall(C, {leave, S, Sub, [X]})),
    ?assertEqual({ok, ok}, ccall(C, {pg_leave, ?SCOPE, {other, G}, X})),
    ?assertEqual({ok, ok}, ccall(C, {join, S, Sub, M2})),
    await_beams(Peers, G, [M1, M2]),
    ?assertEqual(lists:sort([M1, M2]), c_members(C, G)),
    ?assertEqual({ok, ok}, ccall(C, {leave, S, Sub, [M1, M2]})),
    await_beams(Peers, G, []),
    ?assertEqual([], c_members(C, G)),
    %% BEAM -> C
    [Y, N1, N2] = [idle(P2) || _ <- [1, 2, 3]],
    ok = bjoin(P2, G, Y),
    ok = bjoin(P2, G, [Y]),
    await_c(C, G, [Y, Y]),
    ok = bleave(P2, G, Y),
    ok = bjoin(P2, G, N1),
    await_c(C, G, [Y, N1]),
    ok = bleave(P2, G, [Y]),
    ok = bjoin(P2, G, N2),
    await_c(C, G, [N1, N2]),
    ok = bleave(P2, G, [N1, N2]),
    await_c(C, G, []),
    ?assertEqual({ok, []}, ccall(C, {members, S, Sub})),
    assert_scopes(Snap).

%% The C node starts and connects before any BEAM scope exists; the
%% scopes started afterwards are found (the C node re-sends discover).
cnode_before_scopes(_Config) ->
    Peers = [P1 | _] = start_peers(3),
    C = start_c([P1]),
    await_connected_to_c(Peers, C),
    {_S, _Sub, G} = group(),
    {ok, [X]} = ccall(C, {spawn_idle, 1}),
    ?assertEqual({ok, ok}, ccall(C, {pg_join, ?SCOPE, G, X})),
    [start_scope(P) || P <- Peers],
    Snap = snapshot(Peers),
    [P1, P2, P3] = Peers,
    B = idle(P2),
    ok = bjoin(P2, G, B),
    await_beams(Peers, G, [X, B]),
    await_c(C, G, [X, B]),
    D = idle(P3),
    ok = bjoin(P3, G, D),
    await_beams(Peers, G, [X, B, D]),
    await_c(C, G, [X, B, D]),
    assert_scopes(Snap).

%% One BEAM scope starts after the C node is already connected to its node
%% (and peered with the others).
scope_after_connection(_Config) ->
    [P1, P2, P3] = start_peers(3),
    start_scope(P1),
    start_scope(P2),
    C = start_c([P1]),
    {_S, _Sub, G} = group(),
    {ok, [X]} = ccall(C, {spawn_idle, 1}),
    ?assertEqual({ok, ok}, ccall(C, {pg_join, ?SCOPE, G, [X]})),
    await_beams([P1, P2], G, [X]),
    await_connected_to_c([P3], C),
    start_scope(P3),
    Snap = snapshot([P1, P2, P3]),
    Z = idle(P3),
    ok = bjoin(P3, G, Z),
    await_beams([P1, P2, P3], G, [X, Z]),
    await_c(C, G, [X, Z]),
    assert_scopes(Snap).

%% Group terms are compared as terms: a C member and a BEAM member of the
%% same group are in one group whatever the encoding of the term, and the
%% group the C node reports (and sends) is the same term.
group_terms_as_terms(_Config) ->
    Peers = [P1, _, _] = start_beams(3),
    Snap = snapshot(Peers),
    C = start_c([P1]),
    Ref = make_ref(),
    Groups = [{store, <<"sub">>, emitters},
              "abc",
              [1, 2, 300, -5],
              {255, 256, -1, 1 bsl 31, 1 bsl 70, -(1 bsl 70)},
              {1.5, -0.0, [a | b]},
              #{k => v, 1 => <<"x">>, "s" => [x]},
              maps:from_list([{I, I} || I <- lists:seq(1, 40)]),
              <<>>, [], {}, '',
              list_to_atom([$c, $a, $f, 233]),
              list_to_atom([16#3b1, 16#3b2]),
              {self(), Ref, node()},
              <<1, 2, 3:5>>,
              {tag, lists:seq(1, 300)}],
    Plan = [begin
                {ok, [X]} = ccall(C, {spawn_idle, 1}),
                B = idle(P1),
                ok = bjoin(P1, Grp, B),
                ?assertEqual({ok, ok}, ccall(C, {pg_join, ?SCOPE, Grp, X})),
                {Grp, [X, B]}
            end || Grp <- Groups],
    [begin
         await_c(C, Grp, Members),
         await_beams(Peers, Grp, Members)
     end || {Grp, Members} <- Plan],
    Which = which_groups(C, ?SCOPE),
    ct:log("which_groups: ~p", [Which]),
    [?assertEqual({Grp, 1}, {Grp, length([W || W <- Which, W =:= Grp])})
     || Grp <- Groups],
    assert_scopes(Snap).

%% Several scopes (--scope repeated): memberships stay in their scope; the
%% emitter-group requests use the first one; unknown scopes are errors.
second_scope(_Config) ->
    Other = list_to_atom(unique_name("rcn_scope")),
    Peers = [P1, P2] = start_beams(2),
    [start_scope(P, Other) || P <- Peers],
    Snap = snapshot(Peers) ++ snapshot(Peers, Other),
    C = start_c([P1], ["--scope", atom_to_list(?SCOPE), "--scope", atom_to_list(Other)]),
    {S, Sub, G} = group(),
    {ok, [X, Y]} = ccall(C, {spawn_idle, 2}),
    ?assertEqual({ok, ok}, ccall(C, {pg_join, Other, G, X})),
    ?assertEqual({ok, ok}, ccall(C, {join, S, Sub, Y})),
    B = idle(P2),
    ok = pcall(P2, pg, join, [Other, G, B]),
    await_beams(Peers, Other, G, [X, B]),
    await_beams(Peers, ?SCOPE, G, [Y]),
    await_c(C, Other, G, [X, B]),
    await_c(C, ?SCOPE, G, [Y]),
    ?assertEqual({ok, [X]}, ccall(C, {pg_local_members, Other, G})),
    ?assert(lists:member(G, which_groups(C, Other))),
    Bad = list_to_atom(unique_name("no_such_scope")),
    ?assertEqual({error, {no_scope, Bad}}, ccall(C, {pg_join, Bad, G, X})),
    ?assertEqual({error, {no_scope, Bad}}, ccall(C, {pg_leave, Bad, G, X})),
    ?assertEqual({error, {no_scope, Bad}}, ccall(C, {pg_members, Bad, G})),
    ?assertEqual({error, {no_scope, Bad}}, ccall(C, {pg_local_members, Bad, G})),
    ?assertEqual({error, {no_scope, Bad}}, ccall(C, {pg_which_groups, Bad})),
    ?assertEqual({ok, ok}, ccall(C, {pg_leave, Other, G, X})),
    await_beams(Peers, Other, G, [B]),
    await_beams(Peers, ?SCOPE, G, [Y]),
    assert_scopes(Snap).

%% A C process that ends leaves all its groups everywhere; its monitors
%% get DOWN with the exit reason.
c_process_exit_leaves(_Config) ->
    Peers = [P1 | _] = start_beams(3),
    Snap = snapshot(Peers),
    C = start_c([P1]),
    {_, _, G1} = group(),
    {_, _, G2} = group(),
    {ok, [X, Y]} = ccall(C, {spawn_idle, 2}),
    ?assertEqual({ok, ok}, ccall(C, {pg_join, ?SCOPE, G1, [X, Y, X]})),
    ?assertEqual({ok, ok}, ccall(C, {pg_join, ?SCOPE, G2, X})),
    await_beams(Peers, G1, [X, X, Y]),
    await_beams(Peers, G2, [X]),
    MRef = erlang:monitor(process, X),
    ?assertEqual({ok, ok}, ccall(C, {exit_process, X, shutdown})),
    receive
        {'DOWN', MRef, process, X, Reason} -> ?assertEqual(shutdown, Reason)
    after 5000 ->
            ct:fail(no_down_for_exited_c_process)
    end,
    await_beams(Peers, G1, [Y]),
    await_beams(Peers, G2, []),
    ?assertEqual([Y], c_members(C, G1)),
    ?assertEqual([], c_members(C, G2)),
    ?assertEqual({ok, [Y]}, ccall(C, {pg_local_members, ?SCOPE, G1})),
    assert_scopes(Snap).

%% kill -9 of the C node: its members disappear from every BEAM node
%% (connection closed); BEAM members stay.
kill9_cnode(_Config) ->
    Peers = [P1 | _] = start_beams(3),
    Snap = snapshot(Peers),
    #{os_pid := OsPid} = C = start_c([P1]),
    {_, _, G1} = group(),
    {_, _, G2} = group(),
    {ok, [X, Y]} = ccall(C, {spawn_idle, 2}),
    B = idle(P1),
    ok = bjoin(P1, G1, B),
    ?assertEqual({ok, ok}, ccall(C, {pg_join, ?SCOPE, G1, [X, Y]})),
    ?assertEqual({ok, ok}, ccall(C, {pg_join, ?SCOPE, G2, [X]})),
    await_beams(Peers, G1, [B, X, Y]),
    await_beams(Peers, G2, [X]),
    await_c(C, G1, [B, X, Y]),
    os_kill("KILL", OsPid),
    await_beams(Peers, G1, [B], 5000),
    await_beams(Peers, G2, [], 5000),
    ?assertMatch({exited, _}, wait_cnode_exit(C, 5000)),
    assert_scopes(Snap).

%% Two sidecars seeded with the same BEAM node find each other (discovery
%% asks for erlang:nodes(connected), hidden nodes included: it used to ask
%% for nodes() and each sidecar saw only its own members), are pg peers of
%% each other, and see every member; when one is killed, the other drops its
%% members at once.
sidecars_see_each_other(_Config) ->
    Peers = [P1 | _] = start_beams(2),
    Snap = snapshot(Peers),
    C1 = start_c([P1]),
    #{os_pid := OsPid2} = C2 = start_c([P1]),
    {_, _, G} = group(),
    {ok, [X1]} = ccall(C1, {spawn_idle, 1}),
    {ok, [X2]} = ccall(C2, {spawn_idle, 1}),
    B = idle(P1),
    ok = bjoin(P1, G, B),
    ?assertEqual({ok, ok}, ccall(C1, {pg_join, ?SCOPE, G, X1})),
    ?assertEqual({ok, ok}, ccall(C2, {pg_join, ?SCOPE, G, X2})),
    await_c(C1, G, [B, X1, X2]),
    await_c(C2, G, [B, X1, X2]),
    await_beams(Peers, G, [B, X1, X2]),
    os_kill("KILL", OsPid2),
    await_c(C1, G, [B, X1], 5000),
    await_beams(Peers, G, [B, X1], 5000),
    ?assertMatch({exited, _}, wait_cnode_exit(C2, 5000)),
    assert_scopes(Snap).

%% A BEAM node stops: its members disappear from the C node's view.
stop_beam_node(_Config) ->
    Peers = [P1, P2, P3] = start_beams(3),
    Snap = snapshot([P1, P2]),
    C = start_c([P1]),
    {_, _, G} = group(),
    B1 = idle(P1),
    B3 = idle(P3),
    ok = bjoin(P1, G, B1),
    ok = bjoin(P3, G, [B3, B3]),
    {ok, [X]} = ccall(C, {spawn_idle, 1}),
    ?assertEqual({ok, ok}, ccall(C, {pg_join, ?SCOPE, G, X})),
    await_c(C, G, [B1, B3, B3, X]),
    await_beams(Peers, G, [B1, B3, B3, X]),
    stop_peer(P3),
    await_c(C, G, [B1, X], 5000),
    await_beams([P1, P2], G, [B1, X]),
    await_value(fun() -> maps:get(peers, stats(C), undefined) end, 2, 5000, stats_peers),
    assert_scopes(Snap).

%% The scope process of one BEAM node is killed: the C node drops that
%% peer's members; a new scope on that node is discovered and re-synced in
%% both directions.
restart_beam_scope(_Config) ->
    Peers = [P1, P2, P3] = start_beams(3),
    Snap = snapshot([P1, P3]),
    [{_, Old}] = snapshot([P2]),
    C = start_c([P1]),
    {_, _, G} = group(),
    B1 = idle(P1),
    B2 = idle(P2),
    ok = bjoin(P1, G, B1),
    ok = bjoin(P2, G, B2),
    {ok, [X]} = ccall(C, {spawn_idle, 1}),
    ?assertEqual({ok, ok}, ccall(C, {pg_join, ?SCOPE, G, X})),
    await_c(C, G, [B1, B2, X]),
    await_beams(Peers, G, [B1, B2, X]),
    ?assertEqual(Old, pcall(P2, erlang, whereis, [?SCOPE])),
    true = pcall(P2, erlang, exit, [Old, kill]),
    await_c(C, G, [B1, X], 5000),
    await_beams([P1, P3], G, [B1, X]),
    New = start_scope(P2),
    ?assertNotEqual(Old, New),
    B2b = idle(P2),
    ok = bjoin(P2, G, B2b),
    await_beams(Peers, G, [B1, B2b, X]),
    await_c(C, G, [B1, B2b, X]),
    %% the new scope gets later C joins too
    {ok, [X2]} = ccall(C, {spawn_idle, 1}),
    ?assertEqual({ok, ok}, ccall(C, {pg_join, ?SCOPE, G, X2})),
    await_beams(Peers, G, [B1, B2b, X, X2]),
    assert_scopes(Snap ++ [{{node_of(P2), ?SCOPE}, New}]).

%% SIGTERM: the C node sends `leave' for its members before it closes, so
%% every BEAM node drops them at once (the scope receives the leave before
%% the DOWN of the C node's scope), and it exits 0.
sigterm_cnode_leaves(_Config) ->
    Peers = [P1 | _] = start_beams(3),
    Snap = snapshot(Peers),
    #{os_pid := OsPid} = C = start_c([P1]),
    {_, _, G1} = group(),
    {_, _, G2} = group(),
    {ok, [X, Y]} = ccall(C, {spawn_idle, 2}),
    B = idle(P1),
    ok = bjoin(P1, G1, B),
    ?assertEqual({ok, ok}, ccall(C, {pg_join, ?SCOPE, G1, [X, Y, X]})),
    ?assertEqual({ok, ok}, ccall(C, {pg_join, ?SCOPE, G2, Y})),
    await_beams(Peers, G1, [B, X, X, Y]),
    await_beams(Peers, G2, [Y]),
    Tracers = [{P, pcall(P, ?MODULE, trace_scope, [?SCOPE])} || P <- Peers],
    T0 = now_ms(),
    os_kill("TERM", OsPid),
    await_beams(Peers, G1, [B], ?SIGTERM_GONE),
    await_beams(Peers, G2, [], ?SIGTERM_GONE),
    ct:log("C members gone from every BEAM node after ~p ms", [now_ms() - T0]),
    ?assertEqual({exited, 0}, wait_cnode_exit(C, 5000)),
    %% Every scope got leave messages that remove all of the C node's
    %% memberships (applied as pg applies them) before the DOWN of the C
    %% node's scope, i.e. before the connection closed.
    CView = #{G1 => [X, X, Y], G2 => [Y]},
    [begin
         wait_until(fun() -> lists:keymember('DOWN', 1, trace_messages(P, Tracer)) end,
                    5000, {scope_down_seen, node_of(P)}),
         Msgs = trace_messages(P, Tracer),
         ct:log("~p: scope received ~p", [node_of(P), Msgs]),
         {Leaves, [First | _]} =
             lists:splitwith(fun(M) -> element(1, M) =:= leave end, Msgs),
         ?assertMatch({'DOWN', _, process, _, _}, First),
         ?assertEqual({node_of(P), #{}}, {node_of(P), apply_leaves(Leaves, CView)})
     end || {P, Tracer} <- Tracers],
    assert_scopes(Snap).

%% pg's handling of {leave, Peer, PidOrPids, Groups} on its record of the
%% peer's groups: each listed group loses one occurrence of each pid, and
%% an emptied group is dropped. A group the peer does not have makes
%% OTP 25 pg crash (maps:get/2): reported here as {unknown_group, G}.
apply_leaves([], View) ->
    View;
apply_leaves([{leave, _Peer, PidOrPids, Groups} | Rest], View0) ->
    View = lists:foldl(
             fun(G, Acc) ->
                     case maps:find(G, Acc) of
                         {ok, Pids} ->
                             case Pids -- as_list(PidOrPids) of
                                 [] -> maps:remove(G, Acc);
                                 Left -> Acc#{G := Left}
                             end;
                         error ->
                             ct:fail({unknown_group, G})
                     end
             end, View0, Groups),
    apply_leaves(Rest, View).

%% A node the C node is told of only through its seed's nodes(): C starts
%% with --seed A; B is connected to A only (not to this node, and not
%% meshed by global: -connect_all false, standard_io control connection).
seed_nodes_discovery(_Config) ->
    [A] = start_beams(1),
    Bn = start_peer("rcn_pgb", #{connection => standard_io,
                                 args => ["-connect_all", "false"]}, testcase),
    start_scope(Bn),
    BNode = node_of(Bn),
    true = pcall(Bn, net_kernel, connect_node, [node_of(A)]),
    ?assert(lists:member(BNode, pcall(A, erlang, nodes, []))),
    ?assertNot(lists:member(BNode, nodes(connected))),
    Snap = snapshot([A, Bn]),
    {_, _, G} = group(),
    Am = idle(A),
    Bm = idle(Bn),
    ok = bjoin(A, G, Am),
    ok = bjoin(Bn, G, Bm),
    await_beams([A, Bn], G, [Am, Bm]),
    C = start_c([A]),
    {ok, [X]} = ccall(C, {spawn_idle, 1}),
    ?assertEqual({ok, ok}, ccall(C, {pg_join, ?SCOPE, G, X})),
    await_c(C, G, [Am, Bm, X]),
    await_beams([A, Bn], G, [Am, Bm, X]),
    ?assert(lists:member(node_of(C), pcall(Bn, erlang, nodes, [hidden]))),
    %% B was never connected to this node, so the C node learnt of it from A
    ?assertNot(lists:member(BNode, nodes(connected))),
    assert_scopes(Snap).

%%%===================================================================
%%% Run on peers: trace the messages a scope process receives
%%%===================================================================

%% Starts a process on this node that traces the messages received by the
%% scope process and keeps the pg protocol ones (join/leave/DOWN; sync
%% reduced to its peer and group count).
-spec trace_scope(atom()) -> pid().
trace_scope(Scope) ->
    Parent = self(),
    Pid = spawn(fun() ->
                        ScopePid = whereis(Scope),
                        1 = erlang:trace(ScopePid, true, ['receive']),
                        Parent ! {self(), tracing},
                        trace_loop([])
                end),
    receive {Pid, tracing} -> Pid after 5000 -> exit(trace_scope_timeout) end.

trace_loop(Acc) ->
    receive
        {trace, _, 'receive', Msg} ->
            trace_loop(keep(Msg, Acc));
        {get, From} ->
            From ! {self(), lists:reverse(Acc)},
            trace_loop(Acc)
    end.

keep({join, _, _, _} = M, Acc) -> [M | Acc];
keep({leave, _, _, _} = M, Acc) -> [M | Acc];
keep({'DOWN', _, process, _, _} = M, Acc) -> [M | Acc];
%% OTP 29's scope (pg on data_publisher) monitors its peers with a tag
keep({{'DOWN', peer}, Ref, process, Pid, Info}, Acc) -> [{'DOWN', Ref, process, Pid, Info} | Acc];
keep({'$gen_cast', {sync, Peer, Groups}}, Acc) -> [{sync, Peer, length(Groups)} | Acc];
keep(_, Acc) -> Acc.

-spec trace_get(pid()) -> [tuple()].
trace_get(Tracer) ->
    Tracer ! {get, self()},
    receive {Tracer, Msgs} -> Msgs after 5000 -> exit(trace_get_timeout) end.

trace_messages(P, Tracer) ->
    pcall(P, ?MODULE, trace_get, [Tracer]).

as_list(L) when is_list(L) -> L;
as_list(P) -> [P].

%%%===================================================================
%%% Helpers
%%%===================================================================

%% N peers with a reckon_db_pg scope each.
start_beams(N) ->
    Peers = start_peers(N),
    [start_scope(P) || P <- Peers],
    Peers.

%% N peers connected to each other and to this node only
%% (rc_test_lib:start_meshed_peers/3).
start_peers(N) ->
    rc_test_lib:start_meshed_peers("rcn_pg", N, testcase).

start_scope(P) ->
    start_scope(P, ?SCOPE).

start_scope(P, Scope) ->
    rc_test_lib:start_pg_scope(P, Scope).

%% A C node with --seed for each of Seeds.
start_c(Seeds) ->
    start_c(Seeds, []).

start_c(Seeds, Extra) ->
    SeedArgs = lists:append([["--seed", atom_to_list(node_of(P))] || P <- Seeds]),
    start_cnode(unique_name("rcn_pgc"), SeedArgs ++ Extra, testcase).

%% With one retry when the connection to the C node went down under the
%% call: the simultaneous-connect race (rc_test_lib:ccall_retry/2).
ccall(C, Req) ->
    ccall_retry(C, Req).

stats(C) ->
    {ok, Stats} = ccall(C, stats),
    Stats.

which_groups(C, Scope) ->
    {ok, Groups} = ccall(C, {pg_which_groups, Scope}),
    Groups.

c_members(C, G) ->
    c_members(C, ?SCOPE, G).

c_members(C, Scope, G) ->
    {ok, Pids} = ccall(C, {pg_members, Scope, G}),
    lists:sort(Pids).

beam_members(P, Scope, G) ->
    lists:sort(pcall(P, pg, get_members, [Scope, G])).

sorted({ok, L}) when is_list(L) -> {ok, lists:sort(L)};
sorted(Other) -> Other.

%% A fresh emitter group {S, Sub, emitters}.
group() ->
    S = rcn_pg_store,
    Sub = list_to_binary(unique_name("sub")),
    {S, Sub, {S, Sub, emitters}}.

bjoin(P, G, PidOrPids) ->
    pcall(P, pg, join, [?SCOPE, G, PidOrPids]).

bleave(P, G, PidOrPids) ->
    pcall(P, pg, leave, [?SCOPE, G, PidOrPids]).

%% A reckon_cnode_emitter_group call on a peer: {ok, R} | {raised, Class, Reason}.
shim(P, F, Args) ->
    [[Result]] = pcall(P, rc_test_lib, run_calls, [[{F, Args}], 1]),
    Result.

snapshot(Peers) ->
    snapshot(Peers, ?SCOPE).

snapshot(Peers, Scope) ->
    [begin
         Pid = pcall(P, erlang, whereis, [Scope]),
         ?assert(is_pid(Pid)),
         {{node_of(P), Scope}, Pid}
     end || P <- Peers].

%% Each scope process is still the one recorded (OTP 25 pg crashes on an
%% unexpected message).
assert_scopes(Snap) ->
    Now = [{Key, scope_pid_now(Key)} || {Key, _} <- Snap],
    ?assertEqual(Snap, Now),
    ok.

scope_pid_now({Node, Scope}) ->
    [Peer | _] = [P || {_, _, {peer, #{node := N} = P}} <- ets:tab2list(rcn_resources),
                       N =:= Node],
    pcall(Peer, erlang, whereis, [Scope]).

%% Every peer connected to the C node.
await_connected_to_c(Peers, C) ->
    [wait_until(fun() -> lists:member(node_of(C), pcall(P, erlang, nodes, [hidden])) end,
                ?PROPAGATE, {connected_to_c, node_of(P)})
     || P <- Peers],
    ok.

await_beams(Peers, G, Expected) ->
    await_beams(Peers, ?SCOPE, G, Expected, ?PROPAGATE).

await_beams(Peers, G, Expected, Timeout) when is_integer(Timeout) ->
    await_beams(Peers, ?SCOPE, G, Expected, Timeout);
await_beams(Peers, Scope, G, Expected) ->
    await_beams(Peers, Scope, G, Expected, ?PROPAGATE).

await_beams(Peers, Scope, G, Expected, Timeout) ->
    [await_value(fun() -> beam_members(P, Scope, G) end, lists:sort(Expected), Timeout,
                 {beam_view, node_of(P), Scope, G})
     || P <- Peers],
    ok.

await_c(C, G, Expected) ->
    await_c(C, ?SCOPE, G, Expected, ?PROPAGATE).

await_c(C, G, Expected, Timeout) when is_integer(Timeout) ->
    await_c(C, ?SCOPE, G, Expected, Timeout);
await_c(C, Scope, G, Expected) ->
    await_c(C, Scope, G, Expected, ?PROPAGATE).

await_c(C, Scope, G, Expected, Timeout) ->
    await_value(fun() -> c_members(C, Scope, G) end, lists:sort(Expected), Timeout,
                {c_view, Scope, G}).
