%%% @doc common_test suite: the real `priv/reckon_cnode' C node, real BEAM
%%% peers and the `reckon_cnode' shim, over loopback with a private epmd.
%%%
%%% Run it with `test/erl/run_ct.sh' (starts epmd on a free port, exports
%%% ERL_EPMD_PORT, runs `rebar3 ct' with a unique node name and cookie,
%%% kills that epmd). ERL_EPMD_PORT must be set: it is inherited by the
%%% peers and by the C nodes the suite starts.
%%%
%%% Every C node is started as a port program owned by a small holder
%%% process and with `--exit-on-stdin-close', so it goes away even if this
%%% node dies; end_per_* stop what was started and kill any tracked C node
%%% OS process that is still alive (helpers in {@link rc_test_lib}).
%%% @end
-module(reckon_cnode_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(rc_test_lib,
        [cnode_bin/0, start_cnode/2, start_cnode/3, start_cnode_args/2, wait_cnode_exit/2,
         holder_call/2, os_kill/2, os_pid_alive/1,
         track/2, cleanup/1,
         start_peer/2, start_shim_on/2, start_local_shim/1, stop_local_shim/0,
         wait_connected/1, wait_until/3, unique_name/1, host/0, now_ms/0]).

%% logger handler used by connect_errors_explained
-export([log/2]).
%% run on peers
-export([persist_then_read/2, persist_many/3]).
-export([all/0, groups/0, suite/0,
         init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2,
         init_per_testcase/2, end_per_testcase/2]).

%% test cases
-export([model_examples/1,
         not_started_errors/1,
         connect_errors_explained/1,
         spawned_cnode_logs_through_logger/1,
         shipped_node_has_no_test_hooks/1,
         join_leave_function_clause/1,
         app_pg_scope/1,
         names_feed_busy_copy_dropped/1,
         names_feed_forgeries_ignored/1,
         ping_pong/1,
         hidden_node/1,
         request_server_protocol/1,
         noproc_fast/1,
         naming_from_three_peers/1,
         names_table_shared_across_nodes/1,
         names_copy_read_locally/1,
         shim_attach_mode/1,
         stats/1,
         group_ops/1,
         properties/1,
         sname_prints_full_name/1,
         monitor_noconnection_on_kill/1,
         sigterm_exit_zero/1,
         stdin_close_exit/1,
         unavailable_and_reconnect/1,
         unavailable_on_hung_cnode/1,
         data_dir_pool_names_survive_kill/1,
         spawn_mode/1,
         start_errors/1]).


-define(CALL_TIMEOUT, 1000).
-define(NUMTESTS, 1000).

%%%===================================================================
%%% Structure
%%%===================================================================

suite() ->
    [{timetrap, {minutes, 10}}].

all() ->
    [model_examples,
     not_started_errors,
     connect_errors_explained,
     spawned_cnode_logs_through_logger,
     shipped_node_has_no_test_hooks,
     join_leave_function_clause,
     app_pg_scope,
     names_feed_busy_copy_dropped,
     names_feed_forgeries_ignored,
     {group, cnode},
     {group, faults},
     {group, spawn}].

groups() ->
    [{cnode, [],
      [ping_pong,
       hidden_node,
       request_server_protocol,
       noproc_fast,
       naming_from_three_peers,
       names_table_shared_across_nodes,
       names_copy_read_locally,
       shim_attach_mode,
       stats,
       group_ops,
       properties]},
     {faults, [],
      [sname_prints_full_name,
       monitor_noconnection_on_kill,
       sigterm_exit_zero,
       stdin_close_exit,
       unavailable_and_reconnect,
       unavailable_on_hung_cnode,
       data_dir_pool_names_survive_kill]},
     {spawn, [], [spawn_mode, start_errors]}].

%%%===================================================================
%%% Set-up and clean-up
%%%===================================================================

init_per_suite(Config) ->
    rc_test_lib:suite_init(Config).

end_per_suite(Config) ->
    rc_test_lib:suite_end(Config, [testcase, group, suite]).

init_per_group(cnode, Config) ->
    case cnode_bin() of
        {ok, _} ->
            %% end_per_group is not run when init_per_group fails
            try
                CNode = start_cnode(unique_name("rcn_g"), group),
                Peers = [start_peer("rcn_peer", group) || _ <- lists:seq(1, 3)],
                Node = maps:get(node, CNode),
                [start_shim_on(P, #{cnode => Node, call_timeout => ?CALL_TIMEOUT})
                 || #{node := P} <- Peers],
                [wait_connected(P) || #{node := P} <- Peers],
                [{cnode, CNode}, {peers, Peers} | Config]
            catch
                Class:Reason:Stack ->
                    cleanup([group]),
                    erlang:raise(Class, Reason, Stack)
            end;
        {error, Why} ->
            {fail, Why}
    end;
init_per_group(_Group, Config) ->
    case cnode_bin() of
        {ok, _} -> Config;
        {error, Why} -> {fail, Why}
    end.

end_per_group(_Group, _Config) ->
    cleanup([testcase, group]),
    ok.

init_per_testcase(properties, Config) ->
    #{node := Node} = ?config(cnode, Config),
    start_local_shim(#{cnode => Node, call_timeout => 5000}),
    wait_connected(node()),
    Config;
init_per_testcase(Case, Config) when Case =:= monitor_noconnection_on_kill;
                                     Case =:= sigterm_exit_zero;
                                     Case =:= stdin_close_exit;
                                     Case =:= unavailable_and_reconnect;
                                     Case =:= unavailable_on_hung_cnode ->
    [{cnode, start_cnode(unique_name("rcn_t"), testcase)} | Config];
init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    stop_local_shim(),
    cleanup([testcase]),
    ok.

%%%===================================================================
%%% Cases without a C node
%%%===================================================================

%% The model (prop_naming) reproduces the figures measured on OTP 25 with
%% reckon-db's own naming functions.
model_examples(_Config) ->
    {ok, <<99, 97, 102, 233, 58, 115, 117, 98>>} =
        prop_naming:model_topic(list_to_atom([$c, $a, $f, 233]), <<"sub">>),
    {ok, <<"store:$all">>} = prop_naming:model_topic(store, <<"$all">>),
    {ok, Name} = prop_naming:model_emitter_name(store, <<255, 0, 10>>),
    "store_" ++ [255, 0, 10] ++ "_emitter" = atom_to_list(Name),
    {ok, Ue} = prop_naming:model_emitter_name(s, <<"ü"/utf8>>),
    "s_" ++ [195, 188] ++ "_emitter" = atom_to_list(Ue),
    {raised, error, badarg} =
        prop_naming:model_topic(list_to_atom([16#3b1]), <<"sub">>),
    {raised, error, badarg} =
        prop_naming:model_emitter_name(list_to_atom([16#3b1]), <<"sub">>),
    {raised, error, system_limit} =
        prop_naming:model_emitter_name(store, binary:copy(<<"a">>, 250)),
    {ok, '__emitter'} = prop_naming:model_emitter_name('', <<>>),
    {ok, 's_b_emitter_-7'} = prop_naming:model_emitter_name(s, <<"b">>, -7),
    {ok, [s_b_emitter, s_b_emitter_2, s_b_emitter_3]} =
        prop_naming:model_persist(s, <<"b">>, 3),
    {ok, [s_b_emitter]} = prop_naming:model_persist(s, <<"b">>, 1),
    {raised, error, badarg} = prop_naming:model_persist(s, <<"b">>, 0),
    ok.

%% Without the application there is no C node name to call.
not_started_errors(_Config) ->
    ?assertEqual(undefined, whereis(reckon_cnode)),
    ?assertError(reckon_cnode_not_started,
                 reckon_cnode_emitter_group:topic(store, <<"sub">>)),
    ?assertError(reckon_cnode_not_started, reckon_cnode:node()),
    ?assertError(reckon_cnode_not_started, reckon_cnode:stats()),
    ok.

%% As the seed: a non-atom store id is a function_clause.
join_leave_function_clause(_Config) ->
    ?assertError(function_clause,
                 reckon_cnode_emitter_group:join(<<"store">>, <<"sub">>, self())),
    ?assertError(function_clause,
                 reckon_cnode_emitter_group:leave("store", <<"sub">>, [self()])),
    ok.

%% The application starts the local pg scope (env `scope') under its
%% supervisor when none is running, stops it with itself, and leaves a scope
%% that already runs alone. Local pids join through it even while the C
%% node is unreachable; members/2 (answered by the C node) then fails.
app_pg_scope(_Config) ->
    #{node := P} = start_peer("rcn_scope", testcase),
    CNode = list_to_atom(unique_name("rcn_nosuch") ++ "@" ++ host()),
    Env = #{cnode => CNode, call_timeout => 300},
    Whereis = fun(Name) -> erpc:call(P, erlang, whereis, [Name]) end,
    ?assertEqual(undefined, Whereis(reckon_db_pg)),
    %% no scope: the application starts one
    start_shim_on(P, Env),
    Scope1 = Whereis(reckon_db_pg),
    ?assert(is_pid(Scope1)),
    ?assertMatch([{pg_scope, Scope1, worker, _}],
                 [C || {pg_scope, _, _, _} = C
                           <- erpc:call(P, supervisor, which_children,
                                        [reckon_cnode_sup])]),
    L = idle_on(P),
    S = app_scope,
    Sub = <<"sub">>,
    ?assertEqual({ok, ok}, on(P, join, [S, Sub, [L, L]])),
    ?assertEqual([L, L], erpc:call(P, pg, get_local_members,
                                   [reckon_db_pg, {S, Sub, emitters}])),
    ?assertEqual({ok, ok}, on(P, leave, [S, Sub, L])),
    ?assertEqual({ok, ok}, on(P, leave, [S, Sub, [L, L]])),
    ?assertEqual([], erpc:call(P, pg, get_local_members,
                               [reckon_db_pg, {S, Sub, emitters}])),
    ?assertEqual({raised, error, {reckon_cnode_unavailable, CNode}},
                 on(P, members, [S, Sub])),
    ok = erpc:call(P, application, stop, [reckon_cnode]),
    ?assertEqual(undefined, Whereis(reckon_db_pg)),
    %% a running scope is left alone, also when the application stops
    {ok, Scope2} = erpc:call(P, pg, start, [reckon_db_pg]),
    start_shim_on(P, Env),
    ?assertEqual(Scope2, Whereis(reckon_db_pg)),
    ?assertMatch([{pg_scope, undefined, worker, _}],
                 [C || {pg_scope, _, _, _} = C
                           <- erpc:call(P, supervisor, which_children,
                                        [reckon_cnode_sup])]),
    ?assertEqual({ok, ok}, on(P, join, [S, Sub, L])),
    ?assertEqual([L], erpc:call(P, pg, get_local_members,
                                [reckon_db_pg, {S, Sub, emitters}])),
    ok = erpc:call(P, application, stop, [reckon_cnode]),
    ?assertEqual(Scope2, Whereis(reckon_db_pg)),
    %% another scope name: joins go there
    start_shim_on(P, Env#{scope => rcn_other_scope}),
    ?assert(is_pid(Whereis(rcn_other_scope))),
    ?assertMatch(#{scope := rcn_other_scope}, erpc:call(P, reckon_cnode, status, [])),
    ?assertEqual({ok, ok}, on(P, join, [S, Sub, L])),
    ?assertEqual([L], erpc:call(P, pg, get_local_members,
                                [rcn_other_scope, {S, Sub, emitters}])),
    ok = erpc:call(P, application, stop, [reckon_cnode]),
    ?assertEqual(undefined, Whereis(rcn_other_scope)),
    ?assertEqual(Scope2, Whereis(reckon_db_pg)),
    ok.

%%%===================================================================
%%% Group cnode: one C node, three peers with the shim attached
%%%===================================================================

ping_pong(Config) ->
    #{node := Node} = ?config(cnode, Config),
    ?assertEqual(pong, net_adm:ping(Node)),
    [?assertEqual(pong, erpc:call(P, net_adm, ping, [Node]))
     || #{node := P} <- ?config(peers, Config)],
    ok.

hidden_node(Config) ->
    #{node := Node} = ?config(cnode, Config),
    pong = net_adm:ping(Node),
    ?assert(lists:member(Node, nodes(hidden))),
    ?assertNot(lists:member(Node, nodes())),
    ok.

%% The request server's raw protocol, as the shim relies on it.
request_server_protocol(Config) ->
    #{node := Node} = ?config(cnode, Config),
    Call = fun(Req) -> gen_server:call({reckon_cnode, Node}, Req, 5000) end,
    ?assertEqual({ok, pong}, Call(ping)),
    ?assertEqual({ok, {s, <<"b">>, emitters}}, Call({group_key, s, <<"b">>})),
    ?assertEqual({ok, <<"s:b">>}, Call({topic, s, <<"b">>})),
    ?assertEqual({ok, s_b_emitter}, Call({emitter_name, s, <<"b">>})),
    ?assertEqual({ok, s_b_emitter_5}, Call({emitter_name, s, <<"b">>, 5})),
    ?assertEqual({error, badarg}, Call({topic, <<"s">>, <<"b">>})),
    ?assertEqual({error, badarg}, Call({topic, list_to_atom([16#3b1]), <<"b">>})),
    ?assertEqual({error, system_limit},
                 Call({emitter_name, s, binary:copy(<<"a">>, 250)})),
    ?assertEqual({error, badarg}, Call(no_such_request)),
    ?assertEqual({error, badarg}, Call({topic, s})),
    ?assertEqual({error, badarg}, Call({persist_emitters, s, <<"b">>, 0})),
    %% A request nested deeper than the node validates is answered badarg,
    %% not left to time out (it used to get no reply at all).
    Deep = lists:foldl(fun(_, Acc) -> {Acc} end, x, lists:seq(1, 2000)),
    ?assertEqual({error, badarg}, Call({topic, Deep, <<"b">>})),
    DeepList = lists:foldl(fun(_, Acc) -> [Acc] end, x, lists:seq(1, 2000)),
    ?assertEqual({error, badarg}, Call({group_key, s, DeepList})),
    %% The node's own processes cannot be ended by a request (killing the
    %% pg scope this way used to leave its timer reading freed memory).
    {ok, ScopePid} = Call({scope_pid, reckon_db_pg}),
    ?assertEqual({error, noproc}, Call({exit_process, ScopePid, kill})),
    ?assertEqual({ok, ScopePid}, Call({scope_pid, reckon_db_pg})),
    {ok, [Idle]} = Call({spawn_idle, 1}),
    ?assertEqual({ok, ok}, Call({exit_process, Idle, normal})),
    %% still alive and answering after the bad requests
    ?assertEqual({ok, pong}, Call(ping)),
    ok.

%% A call to a name that does not exist on the C node fails at once with
%% noproc instead of timing out (liveness bound, not a performance figure).
noproc_fast(Config) ->
    #{node := Node} = ?config(cnode, Config),
    pong = net_adm:ping(Node),
    T0 = now_ms(),
    Result = try gen_server:call({nosuch, Node}, x, 5000)
             catch exit:Reason -> {exit, Reason}
             end,
    Elapsed = now_ms() - T0,
    ct:log("result ~p after ~p ms", [Result, Elapsed]),
    ?assertMatch({exit, {noproc, {gen_server, call, _}}}, Result),
    ?assert(Elapsed < 1000),
    %% a monitor on an unknown registered name is answered with noproc too
    Ref = erlang:monitor(process, {nosuch, Node}),
    receive
        {'DOWN', Ref, process, _, Why} -> ?assertEqual(noproc, Why)
    after 1000 -> ct:fail(no_down_for_unknown_name)
    end,
    ok.

%% Naming calls from three BEAM nodes at once (4 processes each, repeated),
%% compared with the model.
naming_from_three_peers(Config) ->
    Peers = [P || #{node := P} <- ?config(peers, Config)],
    Calls = naming_calls(),
    Expected = [expected(C) || C <- Calls],
    Reqs = [{P, erpc:send_request(P, rc_test_lib, run_calls, [Calls, 4])}
            || P <- Peers],
    [begin
         Results = erpc:receive_response(Req, 60000),
         ?assertEqual(4, length(Results)),
         [compare(P, Calls, Expected, R) || R <- Results]
     end || {P, Req} <- Reqs],
    ok.

%% The names table lives in the C node: what one node persists, the others
%% retrieve; a new persist replaces it. The persisting node reads its own
%% write at once; another node reads it once the C node's change has reached
%% its copy (the push goes out before the persist's answer, but on another
%% connection), so the cross-node reads wait for it.
names_table_shared_across_nodes(Config) ->
    [P1, P2, P3] = [P || #{node := P} <- ?config(peers, Config)],
    Sub = list_to_binary("shared_" ++ unique_name("s")),
    Store = table_store,
    Names3 = [list_to_atom("table_store_" ++ binary_to_list(Sub) ++ Suffix)
              || Suffix <- ["_emitter", "_emitter_2", "_emitter_3"]],
    ?assertEqual([], erpc:call(P1, reckon_cnode_emitter_group, retrieve_emitters,
                               [Store, Sub])),
    ?assertEqual(Names3, erpc:call(P1, reckon_cnode_emitter_group, persist_emitters,
                                   [Store, Sub, 3])),
    Retrieve = fun(P) -> erpc:call(P, reckon_cnode_emitter_group, retrieve_emitters,
                                   [Store, Sub]) end,
    wait_until(fun() -> Retrieve(P2) =:= Names3 end, 5000, {names_on, P2}),
    Names2 = lists:sublist(Names3, 2),
    ?assertEqual(Names2, erpc:call(P3, reckon_cnode_emitter_group, persist_emitters,
                                   [Store, Sub, 2])),
    ?assertEqual(Names2, Retrieve(P3)),
    wait_until(fun() -> Retrieve(P1) =:= Names2 end, 5000, {new_names_on, P1}),
    wait_until(fun() -> Retrieve(P2) =:= Names2 end, 5000, {new_names_on, P2}),
    ok.

%% Every attached node keeps a copy of the C node's name table (ETS
%% `reckon_cnode_names', kept current by the C node): retrieve_emitters/2
%% is a local read on every node, and on the node that persisted, the copy
%% has the new names by the time persist_emitters/3 returns.
names_copy_read_locally(Config) ->
    [P1, P2, P3] = [P || #{node := P} <- ?config(peers, Config)],
    #{node := CNode} = ?config(cnode, Config),
    Store = copy_store,
    Subs = [list_to_binary("copy_" ++ unique_name("s") ++ integer_to_list(I))
            || I <- lists:seq(1, 50)],
    %% persist then read at once, on the persisting node: the copy has them
    ?assertEqual(ok, erpc:call(P1, ?MODULE, persist_then_read, [Store, Subs])),
    %% the other nodes' copies follow
    [wait_until(fun() ->
                        lists:all(fun(Sub) ->
                                          case erpc:call(P, reckon_cnode, cached_emitters,
                                                         [Store, Sub]) of
                                              {ok, [_, _]} -> true;
                                              _ -> false
                                          end
                                  end, Subs)
                end, 5000, {copy_complete, P})
     || P <- [P2, P3]],
    %% a change made from another node reaches every copy
    [Sub1 | _] = Subs,
    Names3 = erpc:call(P3, reckon_cnode_emitter_group, persist_emitters, [Store, Sub1, 3]),
    ?assertEqual({ok, Names3}, erpc:call(P3, reckon_cnode, cached_emitters, [Store, Sub1])),
    [wait_until(fun() -> erpc:call(P, reckon_cnode, cached_emitters, [Store, Sub1]) =:=
                             {ok, Names3} end, 5000, {copy_updated, P})
     || P <- [P1, P2]],
    ?assertEqual(Names3, erpc:call(P1, reckon_cnode_emitter_group, retrieve_emitters,
                                   [Store, Sub1])),
    %% nothing persisted: not in the copy, and the C node says []
    ?assertEqual(error, erpc:call(P1, reckon_cnode, cached_emitters, [Store, <<"none">>])),
    ?assertEqual([], erpc:call(P1, reckon_cnode_emitter_group, retrieve_emitters,
                               [Store, <<"none">>])),
    {ok, #{names_subscribers := Subscribers}} =
        gen_server:call({reckon_cnode, CNode}, stats, 5000),
    ?assertEqual(3, Subscribers),
    ok.

%% A node whose connection is busy (SIGSTOPped) holds a copy of the names
%% table. Persists from another node never wait on it (before: one persist
%% waited 24.6 s behind the stalled node's connection, and every change
%% queued for it): its copy is dropped from the feed instead (counted,
%% logged), and once it runs again it is told, empties its copy and
%% refills it from a fresh one, which then has every name.
names_feed_busy_copy_dropped(_Config) ->
    C = #{node := CNode} = rc_test_lib:start_cnode(unique_name("rcn_feed"), testcase),
    %% -connect_all false: global on the writer must not disconnect nodes
    %% while the stalled one does not answer
    Isolated = #{args => ["-connect_all", "false"]},
    Writer = rc_test_lib:start_peer("rcn_feedw", Isolated, testcase),
    Stalled = rc_test_lib:start_peer("rcn_feeds", Isolated, testcase),
    [begin
         rc_test_lib:start_shim_on(P, #{cnode => CNode, call_timeout => 10000}),
         wait_connected(P)
     end || P <- [Writer, Stalled]],
    wait_until(fun() -> maps:get(names_subscribers, rc_test_lib:cnode_stats(C)) =:= 2 end,
               5000, two_copies),
    OsPid = rc_test_lib:pcall(Stalled, os, getpid, []),
    Store = feed_store,
    %% 40 persists of ~30,000 names (~1 MB each): far past the busy mark
    %% (4 MB) and the socket buffers of a stalled reader (one subscription,
    %% its size changing, so the writer's atom table does not fill up)
    Last = <<"feed">>,
    Sizes = [30000 - I rem 2 || I <- lists:seq(1, 40)],
    os_kill("STOP", list_to_integer(OsPid)),
    Result = try rc_test_lib:pcall(Writer, ?MODULE, persist_many, [Store, Last, Sizes], 60000)
             after os_kill("CONT", list_to_integer(OsPid))
             end,
    ?assertEqual(ok, Result),
    Stats = rc_test_lib:cnode_stats(C),
    ct:log("stats after the persists: ~p", [Stats]),
    ?assert(maps:get(names_subscribers_dropped, Stats) >= 1),
    %% the stalled node's copy refills and has the last names
    wait_until(fun() ->
                       case rc_test_lib:pcall(Stalled, reckon_cnode, cached_emitters,
                                              [Store, Last]) of
                           {ok, Names} -> length(Names) =:= 30000;
                           _ -> false
                       end
               end, 30000, copy_refilled),
    wait_until(fun() -> maps:get(names_subscribers, rc_test_lib:cnode_stats(C)) =:= 2 end,
               10000, both_copies_fed_again),
    %% and it is kept current again
    Names2 = rc_test_lib:pcall(Writer, reckon_cnode_emitter_group, persist_emitters,
                               [Store, Last, 2]),
    wait_until(fun() -> rc_test_lib:pcall(Stalled, reckon_cnode, cached_emitters,
                                          [Store, Last]) =:= {ok, Names2} end,
               5000, copy_current),
    {ok, Log} = file:read_file(maps:get(log, C)),
    ?assertNotEqual(nomatch, binary:match(Log, <<"its connection is busy">>)),
    ok.

%% On a peer: persists, each answered (a persist that waited on another
%% node's busy connection would fail the call after call_timeout).
-spec persist_many(atom(), binary(), [pos_integer()]) -> ok.
persist_many(Store, Sub, Sizes) ->
    lists:foreach(fun(Size) ->
                          [_ | _] = reckon_cnode_emitter_group:persist_emitters(Store, Sub, Size)
                  end, Sizes).

%% The names copy takes changes only from the C node's feed, under the
%% token of its subscription: a forged push sent to the shim from another
%% node changes nothing, and the feed refuses a subscription for a process
%% of another node than the caller's connection.
names_feed_forgeries_ignored(_Config) ->
    C = #{node := CNode} = rc_test_lib:start_cnode(unique_name("rcn_forge"), testcase),
    Victim = rc_test_lib:start_peer("rcn_forgev", testcase),
    Evil = rc_test_lib:start_peer("rcn_forgee", testcase),
    rc_test_lib:start_shim_on(Victim, #{cnode => CNode}),
    wait_connected(Victim),
    Names = rc_test_lib:pcall(Victim, reckon_cnode_emitter_group, persist_emitters,
                              [forge, <<"s">>, 2]),
    Key = {forge, <<"s">>, emitters},
    Shim = rc_test_lib:pcall(Victim, erlang, whereis, [reckon_cnode]),
    Forged = [{'$reckon_names', Key, [evil]},
              {'$reckon_names', make_ref(), Key, [evil]},
              {'$reckon_names_dropped', make_ref()}]
        ++ [{'$reckon_names', make_ref(), {forge, integer_to_binary(I), emitters}, [evil]}
            || I <- lists:seq(1, 1000)],
    %% then a call from the same process: once the shim answers it, the
    %% forgeries before it have been handled
    #{connected := true} =
        rc_test_lib:pcall(Evil, erlang, apply,
                          [fun() ->
                                   lists:foreach(fun(M) -> Shim ! M end, Forged),
                                   gen_server:call(Shim, status)
                           end, []]),
    ?assertEqual({ok, Names}, rc_test_lib:pcall(Victim, reckon_cnode, cached_emitters,
                                                [forge, <<"s">>])),
    ?assertEqual(error, rc_test_lib:pcall(Victim, reckon_cnode, cached_emitters,
                                          [forge, <<"1">>])),
    %% a subscription for another node's process is refused
    VictimPid = rc_test_lib:pcall(Victim, erlang, whereis, [init]),
    ?assertEqual({error, system_limit},
                 rc_test_lib:pcall(Evil, gen_server, call,
                                   [{reckon_cnode_names, CNode},
                                    {subscribe, VictimPid, make_ref()}, 5000])),
    ?assertEqual(1, maps:get(names_subscribers, rc_test_lib:cnode_stats(C))),
    ok.

%% On a peer: each persist_emitters/3 is followed at once by a read of this
%% node's copy, which must have the names already.
-spec persist_then_read(atom(), [binary()]) -> ok | {stale, binary(), term()}.
persist_then_read(Store, Subs) ->
    lists:foldl(fun(Sub, ok) ->
                        Names = reckon_cnode_emitter_group:persist_emitters(Store, Sub, 2),
                        case reckon_cnode:cached_emitters(Store, Sub) of
                            {ok, Names} -> ok;
                            Other -> {stale, Sub, Other}
                        end;
                   (_Sub, Err) ->
                        Err
                end, ok, Subs).

shim_attach_mode(Config) ->
    #{node := Node} = ?config(cnode, Config),
    [begin
         Status = erpc:call(P, reckon_cnode, status, []),
         ct:log("~p: ~p", [P, Status]),
         ?assertMatch(#{mode := attach, connected := true, node := Node,
                        call_timeout := ?CALL_TIMEOUT, scope := reckon_db_pg},
                      Status),
         ?assertEqual(Node, erpc:call(P, reckon_cnode, node, [])),
         ?assertEqual(<<"s:x">>, erpc:call(P, reckon_cnode_emitter_group, topic,
                                           [s, <<"x">>])),
         %% the shim process is not on the request path: with it suspended
         %% the naming calls still work
         Shim = erpc:call(P, erlang, whereis, [reckon_cnode]),
         ok = erpc:call(P, sys, suspend, [Shim]),
         try
             ?assertEqual(<<"s:y">>, erpc:call(P, reckon_cnode_emitter_group,
                                               topic, [s, <<"y">>]))
         after
             ok = erpc:call(P, sys, resume, [Shim])
         end
     end || #{node := P} <- ?config(peers, Config)],
    ok.

stats(Config) ->
    [#{node := P} | _] = ?config(peers, Config),
    Stats = erpc:call(P, reckon_cnode, stats, []),
    ct:log("stats: ~p", [Stats]),
    ?assert(is_map(Stats)),
    ok.

%% join/3, leave/3, members/2 through the shim on three peers (each runs
%% the reckon_db_pg scope started by the application): local pids through
%% local pg, C-node pids through the C node, other pids {nolocal, Pid}
%% before anything is joined, multiplicity kept, the same members seen
%% from every node (members/2 and pg:get_members/2). broadcast/3 on the
%% emptied group: no_emitters (broadcast itself: reckon_cnode_emitter_SUITE).
group_ops(Config) ->
    #{node := CNode} = ?config(cnode, Config),
    Peers = [P1, P2, P3] = [P || #{node := P} <- ?config(peers, Config)],
    Scopes = scope_pids(Peers),
    Raw = fun(Req) -> gen_server:call({reckon_cnode, CNode}, Req, 5000) end,
    S = group_ops,
    Sub = list_to_binary(unique_name("sub")),
    G = {S, Sub, emitters},
    [L1, L1b] = [idle_on(P1) || _ <- [1, 2]],
    L2 = idle_on(P2),
    L3 = idle_on(P3),
    {ok, [C1, C2]} = Raw({spawn_idle, 2}),
    ?assertEqual(CNode, node(C1)),
    %% errors, before anything is joined
    ?assertEqual({raised, error, function_clause},
                 on(P1, join, [<<"s">>, Sub, L1])),
    ?assertEqual({raised, error, function_clause},
                 on(P1, leave, ["s", Sub, [L1]])),
    ?assertEqual({raised, error, function_clause}, on(P1, join, [S, Sub, foo])),
    ?assertEqual({raised, error, {nolocal, L2}}, on(P1, join, [S, Sub, L2])),
    ?assertEqual({raised, error, {nolocal, L2}}, on(P1, leave, [S, Sub, [L1, L2]])),
    ?assertEqual({raised, error, {nolocal, foo}},
                 on(P1, join, [S, Sub, [L1, C1, foo, L2]])),
    ?assertEqual({raised, error, {nolocal, self()}},
                 on(P2, join, [S, Sub, [C2, self()]])),
    ?assertEqual({ok, []}, on(P1, members, [S, Sub])),
    ?assertEqual([], erpc:call(P1, pg, get_local_members, [reckon_db_pg, G])),
    ?assertEqual({ok, []}, Raw({members, S, Sub})),
    %% joins: a mixed list with a duplicate, a single C pid, single locals
    ?assertEqual({ok, ok}, on(P1, join, [S, Sub, [L1, C1, L1]])),
    ?assertEqual({ok, ok}, on(P2, join, [S, Sub, C2])),
    ?assertEqual({ok, ok}, on(P2, join, [S, Sub, L2])),
    ?assertEqual({ok, ok}, on(P3, join, [S, Sub, [L3]])),
    ?assertEqual({ok, ok}, on(P3, join, [S, Sub, []])),
    All = [L1, L1, C1, C2, L2, L3],
    await_group_everywhere(Peers, S, Sub, All),
    ?assertEqual(lists:sort([L1, L1]),
                 lists:sort(erpc:call(P1, pg, get_local_members, [reckon_db_pg, G]))),
    ?assertEqual({ok, lists:sort([C1, C2])},
                 sorted(Raw({pg_local_members, reckon_db_pg, G}))),
    %% leave once of a pid joined twice: still a member; leaving a
    %% non-member (L1b, or C1 a second time) is ok
    ?assertEqual({ok, ok}, on(P1, leave, [S, Sub, [L1, C1]])),
    ?assertEqual({ok, ok}, on(P1, leave, [S, Sub, [L1b]])),
    ?assertEqual({ok, ok}, on(P3, leave, [S, Sub, C1])),
    %% barrier: L1b joins last, so once it is seen the leaves before it
    %% have been applied everywhere
    ?assertEqual({ok, ok}, on(P1, join, [S, Sub, L1b])),
    await_group_everywhere(Peers, S, Sub, [L1, L1b, C2, L2, L3]),
    ?assertEqual({ok, ok}, on(P1, leave, [S, Sub, [L1, L1b]])),
    ?assertEqual({ok, ok}, on(P2, leave, [S, Sub, [C2, L2]])),
    ?assertEqual({ok, ok}, on(P3, leave, [S, Sub, L3])),
    await_group_everywhere(Peers, S, Sub, []),
    ?assertEqual({ok, {error, no_emitters}}, on(P1, broadcast, [S, Sub, ev])),
    [exit(P, kill) || P <- [L1, L1b, L2, L3]],
    [?assertEqual({ok, ok}, Raw({exit_process, C, normal})) || C <- [C1, C2]],
    ?assertEqual(Scopes, scope_pids(Peers)),
    ok.

%% PropEr: the shim's naming results equal the model (>= 1000 cases each).
properties(_Config) ->
    Results = prop_naming:quickcheck_all(?NUMTESTS),
    ct:log("PropEr results: ~p", [Results]),
    [?assertEqual({P, true}, {P, R}) || {P, R} <- Results],
    ok.

%%%===================================================================
%%% Group faults: one C node per test case
%%%===================================================================

%% Default --sname: the printed name is NAME@<short host>, and reachable.
sname_prints_full_name(_Config) ->
    Name = unique_name("rcn_sn"),
    C = start_cnode_args(["--sname", Name, "--exit-on-stdin-close"], testcase),
    #{node := Node} = C,
    [Alive, _Host] = string:split(atom_to_list(Node), "@"),
    ?assertEqual(Name, Alive),
    ?assertEqual(pong, net_adm:ping(Node)),
    ok.

monitor_noconnection_on_kill(Config) ->
    #{node := Node, os_pid := OsPid} = C = ?config(cnode, Config),
    pong = net_adm:ping(Node),
    Ref = erlang:monitor(process, {reckon_cnode, Node}),
    os_kill("KILL", OsPid),
    receive
        {'DOWN', Ref, process, {reckon_cnode, Node}, Reason} ->
            ?assertEqual(noconnection, Reason)
    after 5000 ->
            ct:fail(no_down_after_kill)
    end,
    Exit = wait_cnode_exit(C, 5000),
    ct:log("exit after SIGKILL: ~p", [Exit]),
    ?assertMatch({exited, S} when S =/= 0, Exit),
    ok.

sigterm_exit_zero(Config) ->
    #{node := Node, os_pid := OsPid} = C = ?config(cnode, Config),
    pong = net_adm:ping(Node),
    os_kill("TERM", OsPid),
    ?assertEqual({exited, 0}, wait_cnode_exit(C, 5000)),
    ?assertEqual(pang, net_adm:ping(Node)),
    ok.

%% --exit-on-stdin-close: closing the port ends the OS process.
stdin_close_exit(Config) ->
    #{os_pid := OsPid} = C = ?config(cnode, Config),
    ok = holder_call(C, close_stdin),
    wait_until(fun() -> not os_pid_alive(OsPid) end, 5000, cnode_exit_on_eof),
    ok.

%% A stopped C node gives {reckon_cnode_unavailable, Node} within
%% call_timeout; when it comes back the shim reconnects.
unavailable_and_reconnect(Config) ->
    #{node := Node, name := Name, os_pid := OsPid} = C = ?config(cnode, Config),
    start_local_shim(#{cnode => Node, call_timeout => ?CALL_TIMEOUT}),
    wait_connected(node()),
    ?assertEqual(<<"s:x">>, reckon_cnode_emitter_group:topic(s, <<"x">>)),
    %% this node's copy of the names table has what was persisted ...
    Gone = list_to_binary(unique_name("gone")),
    [_] = reckon_cnode_emitter_group:persist_emitters(s, Gone, 1),
    ?assertMatch({ok, [_]}, reckon_cnode:cached_emitters(s, Gone)),
    os_kill("TERM", OsPid),
    ?assertEqual({exited, 0}, wait_cnode_exit(C, 5000)),
    T0 = now_ms(),
    ?assertError({reckon_cnode_unavailable, Node},
                 reckon_cnode_emitter_group:topic(s, <<"x">>)),
    ?assertError({reckon_cnode_unavailable, Node}, reckon_cnode:stats()),
    Elapsed = now_ms() - T0,
    ct:log("unavailable after ~p ms", [Elapsed]),
    ?assert(Elapsed < 2 * ?CALL_TIMEOUT + 500),
    wait_until(fun() -> not maps:get(connected, reckon_cnode:status()) end,
               5000, shim_sees_disconnect),
    %% ... and is emptied with the connection: no stale names are served
    ?assertEqual(error, reckon_cnode:cached_emitters(s, Gone)),
    %% the C node comes back under the same name
    C2 = start_cnode_args(["--name", Name ++ "@" ++ host(),
                           "--exit-on-stdin-close"], testcase),
    ?assertEqual(Node, maps:get(node, C2)),
    wait_connected(node()),
    ?assertEqual(<<"s:x">>, reckon_cnode_emitter_group:topic(s, <<"x">>)),
    Status = reckon_cnode:status(),
    ct:log("status after reconnect: ~p", [Status]),
    ?assertMatch(#{connected := true, connects := 2, disconnects := 1}, Status),
    %% the new C node (no --data-dir) has no names for it
    ?assertEqual([], reckon_cnode_emitter_group:retrieve_emitters(s, Gone)),
    ok.

%% A C node that stops answering (SIGSTOP) makes calls fail after
%% call_timeout, never hang.
unavailable_on_hung_cnode(Config) ->
    #{node := Node, os_pid := OsPid} = ?config(cnode, Config),
    Timeout = 500,
    start_local_shim(#{cnode => Node, call_timeout => Timeout}),
    wait_connected(node()),
    os_kill("STOP", OsPid),
    try
        T0 = now_ms(),
        ?assertError({reckon_cnode_unavailable, Node},
                     reckon_cnode_emitter_group:emitter_name(s, <<"x">>)),
        Elapsed = now_ms() - T0,
        ct:log("timed out after ~p ms", [Elapsed]),
        ?assert(Elapsed >= Timeout - 10),
        ?assert(Elapsed < Timeout + 1000)
    after
        os_kill("CONT", OsPid)
    end,
    ?assertEqual(s_x_emitter, reckon_cnode_emitter_group:emitter_name(s, <<"x">>)),
    ok.

%% --data-dir: the names of an emitter pool (start_emitter_pool) are on disk
%% when the start is answered, as persist_emitters' are: after kill -9 the C
%% node restarted on the same directory serves both from retrieve_emitters.
data_dir_pool_names_survive_kill(Config) ->
    Dir = filename:join(?config(priv_dir, Config), unique_name("rcn_dd")),
    Name = unique_name("rcn_dd"),
    Args = ["--data-dir", Dir],
    #{node := Node, os_pid := OsPid} = C1 = start_cnode(Name, Args, testcase),
    start_local_shim(#{cnode => Node, call_timeout => 5000}),
    wait_connected(node()),
    S = rcn_dd_store,
    PoolSub = list_to_binary(unique_name("pool")),
    PersistSub = list_to_binary(unique_name("persist")),
    {ok, PoolNames} = prop_naming:model_persist(S, PoolSub, 3),
    {ok, PersistNames} = prop_naming:model_persist(S, PersistSub, 2),
    {ok, Pids} = reckon_cnode:start_emitter_pool(S, PoolSub, 3, undefined),
    ?assertEqual(3, length(Pids)),
    ?assertEqual(PersistNames,
                 reckon_cnode_emitter_group:persist_emitters(S, PersistSub, 2)),
    ?assertEqual(PoolNames, reckon_cnode_emitter_group:retrieve_emitters(S, PoolSub)),
    os_kill("KILL", OsPid),
    ?assertMatch({exited, St} when St =/= 0, wait_cnode_exit(C1, 5000)),
    %% the same name again once epmd has dropped the killed node
    wait_until(fun() -> not lists:keymember(Name, 1, epmd_names()) end,
               5000, epmd_forgot_killed_cnode),
    wait_until(fun() -> not maps:get(connected, reckon_cnode:status()) end,
               5000, shim_sees_disconnect),
    %% ... and is emptied with the connection: no stale names are served
    ?assertEqual(error, reckon_cnode:cached_emitters(S, PoolSub)),
    #{node := Node} = start_cnode(Name, Args, testcase),
    wait_connected(node()),
    ?assertEqual(PersistNames, reckon_cnode_emitter_group:retrieve_emitters(S, PersistSub)),
    ?assertEqual(PoolNames, reckon_cnode_emitter_group:retrieve_emitters(S, PoolSub)),
    ok.

epmd_names() ->
    case net_adm:names() of
        {ok, Names} -> Names;
        {error, _} -> []
    end.

%%%===================================================================
%%% Group spawn: the shim starts the C node itself (on a peer)
%%%===================================================================

spawn_mode(_Config) ->
    #{node := P} = start_peer("rcn_sp", testcase),
    SpawnName = unique_name("rcn_spawned"),
    start_shim_on(P, #{spawn => true, spawn_name => SpawnName,
                       call_timeout => ?CALL_TIMEOUT}),
    wait_connected(P),
    Expected = list_to_atom(SpawnName ++ "@" ++ host()),
    #{os_pid := OsPid1, mode := spawn, node := Expected} =
        erpc:call(P, reckon_cnode, status, []),
    track(testcase, {os_pid, OsPid1}),
    ?assertEqual(Expected, erpc:call(P, reckon_cnode, node, [])),
    ?assertEqual(pong, net_adm:ping(Expected)),
    ?assertEqual(<<"s:x">>, erpc:call(P, reckon_cnode_emitter_group, topic,
                                      [s, <<"x">>])),
    %% the cookie is passed in the environment, not on the command line
    {ok, CmdLine} = file:read_file("/proc/" ++ integer_to_list(OsPid1) ++ "/cmdline"),
    Cookie = atom_to_binary(erlang:get_cookie()),
    ?assertEqual(nomatch, binary:match(CmdLine, Cookie)),
    %% killed: the shim restarts it and reconnects
    os_kill("KILL", OsPid1),
    wait_until(fun() ->
                       case erpc:call(P, reckon_cnode, status, []) of
                           #{connected := true, os_pid := New, restarts := R}
                             when New =/= OsPid1, R >= 1 ->
                               true;
                           _ ->
                               false
                       end
               end, 20000, shim_restarted_cnode),
    #{os_pid := OsPid2} = erpc:call(P, reckon_cnode, status, []),
    track(testcase, {os_pid, OsPid2}),
    ?assertEqual(<<"s:y">>, erpc:call(P, reckon_cnode_emitter_group, topic,
                                      [s, <<"y">>])),
    %% stopping the application stops the C node
    ok = erpc:call(P, application, stop, [reckon_cnode]),
    wait_until(fun() -> not os_pid_alive(OsPid2) end, 3000, cnode_stopped_with_app),
    ?assertEqual(pang, net_adm:ping(Expected)),
    ?assertMatch({raised, error, reckon_cnode_not_started},
                 hd(hd(erpc:call(P, rc_test_lib, run_calls,
                                 [[{topic, [s, <<"x">>]}], 1])))),
    ok.

%% Configuration errors and a C node that cannot start make the application
%% start fail with a clear reason, and leave nothing running.
start_errors(_Config) ->
    Start = fun(Env) ->
                    %% unload resets the env to the .app defaults
                    _ = application:stop(reckon_cnode),
                    _ = application:unload(reckon_cnode),
                    ok = application:load(reckon_cnode),
                    [ok = application:set_env(reckon_cnode, K, V)
                     || {K, V} <- maps:to_list(Env)],
                    R = application:ensure_all_started(reckon_cnode),
                    ct:log("~p -> ~p", [Env, R]),
                    R
            end,
    ?assert(contains(Start(#{cnode => 'no_at_sign'}), {bad_env, cnode, 'no_at_sign'})),
    ?assert(contains(Start(#{spawn => 'maybe'}), {bad_env, spawn, 'maybe'})),
    ?assert(contains(Start(#{call_timeout => 0}), {bad_env, call_timeout, 0})),
    %% the C node rejects an unknown option: it exits before printing its name
    Name = unique_name("rcn_bad"),
    R = Start(#{spawn => true, spawn_name => Name,
                spawn_args => ["--no-such-option"]}),
    ?assert(contains(R, cnode_start_failed)),
    ?assertError(reckon_cnode_not_started, reckon_cnode:node()),
    ?assertEqual(undefined, whereis(reckon_cnode)),
    ?assertEqual(pang, net_adm:ping(list_to_atom(Name ++ "@" ++ host()))),
    ok = application:unload(reckon_cnode),
    ok.

contains(Term, Term) -> true;
contains(Tuple, Term) when is_tuple(Tuple) -> contains(tuple_to_list(Tuple), Term);
contains([H | T], Term) -> contains(H, Term) orelse contains(T, Term);
contains(_, _) -> false.

%%%===================================================================
%%% Naming calls run on peers
%%%===================================================================

naming_calls() ->
    Wide = list_to_atom([16#3b1, 16#3b2]),
    Cafe = list_to_atom([$c, $a, $f, 233]),
    Long = binary:copy(<<"a">>, 250),
    Edge = binary:copy(<<"b">>, 255 - length("st__emitter")),
    [{group_key, [store, <<"sub">>]},
     {group_key, [Wide, <<1, 2, 3>>]},
     {topic, [Cafe, <<"sub">>]},
     {topic, [store, <<"$all">>]},
     {topic, [Wide, <<"sub">>]},
     {topic, ['', <<>>]},
     {emitter_name, [store, <<255, 0, 10>>]},
     {emitter_name, ['', <<>>]},
     {emitter_name, [store, <<"ü"/utf8>>]},
     {emitter_name, [store, Long]},
     {emitter_name, [Wide, <<"x">>]},
     {emitter_name, [st, Edge]},
     {emitter_name, [st, <<Edge/binary, "c">>]},
     {emitter_name, [store, <<"sub">>, 1]},
     {emitter_name, [store, <<"sub">>, -12]},
     {emitter_name, [store, <<"sub">>, 1 bsl 64]},
     {emitter_name, [store, <<"sub">>, -(1 bsl 200)]},
     {emitter_name, [store, <<"sub">>, 1 bsl 900]},
     {emitter_name, [Cafe, <<"sub">>, 7]}]
        ++ [{topic, [list_to_atom("s" ++ integer_to_list(I)), <<I:32>>]}
            || I <- lists:seq(1, 20)].

expected({group_key, [S, Sub]}) -> {ok, {S, Sub, emitters}};
expected({topic, [S, Sub]}) -> prop_naming:model_topic(S, Sub);
expected({emitter_name, [S, Sub]}) -> prop_naming:model_emitter_name(S, Sub);
expected({emitter_name, [S, Sub, N]}) -> prop_naming:model_emitter_name(S, Sub, N).

compare(Peer, Calls, Expected, Results) ->
    Bad = [{C, E, R} || {C, E, R} <- lists:zip3(Calls, Expected, Results), E =/= R],
    case Bad of
        [] -> ok;
        _ -> ct:fail({naming_mismatch, Peer, Bad})
    end.

%%%===================================================================
%%% Group helpers
%%%===================================================================

%% One reckon_cnode_emitter_group call on a peer, in a fresh process there:
%% {ok, Result} | {raised, Class, Reason}.
on(Node, F, Args) ->
    [[Result]] = erpc:call(Node, rc_test_lib, run_calls, [[{F, Args}], 1]),
    Result.

%% An idle process on Node (ends with the node or when killed).
idle_on(Node) ->
    erpc:call(Node, erlang, spawn, [timer, sleep, [infinity]]).

scope_pids(Nodes) ->
    [{N, erpc:call(N, erlang, whereis, [reckon_db_pg])} || N <- Nodes].

sorted({ok, L}) when is_list(L) -> {ok, lists:sort(L)};
sorted(Other) -> Other.

%% Until members/2 (the C node's view) from every peer and
%% pg:get_members/2 on every peer equal Expected as multisets.
await_group_everywhere(Peers, S, Sub, Expected0) ->
    Expected = lists:sort(Expected0),
    G = {S, Sub, emitters},
    Views = fun() ->
                    [{P, sorted(on(P, members, [S, Sub])),
                      lists:sort(erpc:call(P, pg, get_members, [reckon_db_pg, G]))}
                     || P <- Peers]
            end,
    Ok = fun() ->
                 lists:all(fun({_, {ok, M}, Pg}) -> M =:= Expected andalso
                                                        Pg =:= Expected;
                              (_) -> false
                           end, Views())
         end,
    try wait_until(Ok, 5000, {group_views, G})
    catch Class:Reason:Stack ->
            ct:log("expected ~p~\nviews ~p", [Expected, Views()]),
            erlang:raise(Class, Reason, Stack)
    end.

%% A logger handler that passes warnings to a test process.
-spec log(logger:log_event(), logger:handler_config()) -> ok.
log(#{level := Level, msg := Msg}, #{config := #{pid := Pid}})
  when Level =:= warning; Level =:= error ->
    Text = case Msg of
               {report, R} -> io_lib:format("~p", [R]);
               {string, S} -> S;
               {F, A} -> io_lib:format(F, A)
           end,
    Pid ! {rcn_warning, lists:flatten(io_lib:format("~ts", [Text]))},
    ok;
log(_, _) ->
    ok.

%% Warnings seen so far (this test process's mailbox).
warnings() ->
    receive {rcn_warning, W} -> [W | warnings()] after 0 -> [] end.

await_warning(Pattern) ->
    wait_until(fun() ->
                       Ws = [W || W <- warnings(), string:find(W, Pattern) =/= nomatch],
                       Ws =/= [] andalso (ct:log("warning: ~ts", [hd(Ws)]) =:= ok)
               end, 10000, {warning, Pattern}).

%% Why the shim cannot use a C node is logged once, at warning level, with
%% what to do: a C node that is not there, one with another cookie; and one
%% that serves another pg scope is refused at start with the reason (it used
%% to be silent: every broadcast found no emitters).
connect_errors_explained(_Config) ->
    ok = logger:add_handler(rcn_capture, ?MODULE, #{level => warning, config => #{pid => self()}}),
    try
        Missing = list_to_atom(unique_name("rcn_missing") ++ "@" ++ host()),
        start_local_shim(#{cnode => Missing, call_timeout => 1000}),
        await_warning("not registered in epmd"),
        stop_local_shim(),
        #{node := Other} = start_cnode_args(["--name", unique_name("rcn_othercookie") ++ "@" ++ host(),
                                             "--cookie", "not_our_cookie",
                                             "--exit-on-stdin-close"], testcase),
        start_local_shim(#{cnode => Other, call_timeout => 1000}),
        await_warning("usually a different cookie"),
        stop_local_shim(),
        #{node := Scoped} = rc_test_lib:start_cnode(unique_name("rcn_otherscope"),
                                                    ["--scope", "rcn_not_this_scope"], testcase),
        %% refused at start, with the reason (it used to start and find
        %% no emitters, in silence)
        ok = application:set_env(reckon_cnode, cnode, Scoped),
        ok = application:set_env(reckon_cnode, call_timeout, 5000),
        {error, Failed} = application:ensure_all_started(reckon_cnode),
        ?assertNotEqual(nomatch, string:find(io_lib:format("~p", [Failed]), "scope_not_served")),
        ?assertEqual(undefined, whereis(reckon_cnode)),
        ?assertEqual(undefined, persistent_term:get({reckon_cnode, target}, undefined)),
        await_warning("does not serve pg scope")
    after
        _ = logger:remove_handler(rcn_capture),
        stop_local_shim()
    end,
    ok.

%% In spawn mode the C node's log lines go through logger at their level
%% (they used to be written raw to the terminal of rebar3 shell or iex).
spawned_cnode_logs_through_logger(_Config) ->
    ok = logger:add_handler(rcn_capture, ?MODULE, #{level => warning, config => #{pid => self()}}),
    try
        start_local_shim(#{spawn => true, spawn_name => unique_name("rcn_logs"),
                           spawn_args => ["--seed", "not_a_node_name"]}),
        %% a warning the C node writes at start
        await_warning("reckon_cnode C node [node] ignoring bad seed node name")
    after
        _ = logger:remove_handler(rcn_capture),
        stop_local_shim()
    end,
    ok.

%% The suites start the test build of the node; the executable the shim
%% ships (priv/reckon_cnode) has no test hook.
shipped_node_has_no_test_hooks(_Config) ->
    #{node := Node} = rc_test_lib:start_cnode_args(
                        ["--name", unique_name("rcn_shipped") ++ "@" ++ host(),
                         "--exit-on-stdin-close"], #{shipped => true}, testcase),
    Call = fun(Req) -> gen_server:call({reckon_cnode, Node}, Req, 5000) end,
    ?assertEqual({ok, pong}, Call(ping)),
    ?assertEqual({error, badarg}, Call({spawn_idle, 1})),
    ?assertEqual({error, badarg}, Call({exit_process, self(), kill})),
    ok.

