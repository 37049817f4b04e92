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
%%% OS process that is still alive.
%%% @end
-module(reckon_cnode_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, suite/0,
         init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2,
         init_per_testcase/2, end_per_testcase/2]).

%% test cases
-export([model_examples/1,
         not_started_errors/1,
         join_leave_function_clause/1,
         ping_pong/1,
         hidden_node/1,
         request_server_protocol/1,
         noproc_fast/1,
         naming_from_three_peers/1,
         names_table_shared_across_nodes/1,
         shim_attach_mode/1,
         stats/1,
         group_ops_not_implemented/1,
         properties/1,
         sname_prints_full_name/1,
         monitor_noconnection_on_kill/1,
         sigterm_exit_zero/1,
         stdin_close_exit/1,
         unavailable_and_reconnect/1,
         unavailable_on_hung_cnode/1,
         spawn_mode/1,
         start_errors/1]).

%% run on peers through erpc
-export([run_calls/2, start_local_shim_remote/1]).

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
     join_leave_function_clause,
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
       shim_attach_mode,
       stats,
       group_ops_not_implemented,
       properties]},
     {faults, [],
      [sname_prints_full_name,
       monitor_noconnection_on_kill,
       sigterm_exit_zero,
       stdin_close_exit,
       unavailable_and_reconnect,
       unavailable_on_hung_cnode]},
     {spawn, [], [spawn_mode, start_errors]}].

%%%===================================================================
%%% Set-up and clean-up
%%%===================================================================

init_per_suite(Config) ->
    case {os:getenv("ERL_EPMD_PORT"), erlang:is_alive()} of
        {false, _} ->
            {fail, "ERL_EPMD_PORT is not set: run the suite with "
                   "test/erl/run_ct.sh (or make test), which starts a private "
                   "epmd and exports its port"};
        {_, false} ->
            {fail, "this node is not distributed: run rebar3 ct with "
                   "--sname and --setcookie (test/erl/run_ct.sh does)"};
        {EpmdPort, true} ->
            ct:log("ERL_EPMD_PORT=~s node=~p", [EpmdPort, node()]),
            Tracker = start_tracker(),
            %% C node logs (stderr) go to files here, linked from the CT log
            track(suite, {log_dir, ?config(priv_dir, Config)}),
            [{epmd_port, EpmdPort}, {tracker, Tracker} | Config]
    end.

end_per_suite(Config) ->
    cleanup([testcase, group, suite]),
    stop_tracker(?config(tracker, Config)),
    ok.

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

%% The model (prop_naming) reproduces the figures measured on OTP 25 in
%% SPEC section 3.
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
                 reckon_db_emitter_group:topic(store, <<"sub">>)),
    ?assertError(reckon_cnode_not_started, reckon_cnode:node()),
    ?assertError(reckon_cnode_not_started, reckon_cnode:stats()),
    ok.

%% As the seed: a non-atom store id is a function_clause.
join_leave_function_clause(_Config) ->
    ?assertError(function_clause,
                 reckon_db_emitter_group:join(<<"store">>, <<"sub">>, self())),
    ?assertError(function_clause,
                 reckon_db_emitter_group:leave("store", <<"sub">>, [self()])),
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
    Reqs = [{P, erpc:send_request(P, ?MODULE, run_calls, [Calls, 4])}
            || P <- Peers],
    [begin
         Results = erpc:receive_response(Req, 60000),
         ?assertEqual(4, length(Results)),
         [compare(P, Calls, Expected, R) || R <- Results]
     end || {P, Req} <- Reqs],
    ok.

%% The names table lives in the C node: what one node persists, the others
%% retrieve; a new persist replaces it.
names_table_shared_across_nodes(Config) ->
    [P1, P2, P3] = [P || #{node := P} <- ?config(peers, Config)],
    Sub = list_to_binary("shared_" ++ unique_name("s")),
    Store = table_store,
    Names3 = [list_to_atom("table_store_" ++ binary_to_list(Sub) ++ Suffix)
              || Suffix <- ["_emitter", "_emitter_2", "_emitter_3"]],
    ?assertEqual([], erpc:call(P1, reckon_db_emitter_group, retrieve_emitters,
                               [Store, Sub])),
    ?assertEqual(Names3, erpc:call(P1, reckon_db_emitter_group, persist_emitters,
                                   [Store, Sub, 3])),
    ?assertEqual(Names3, erpc:call(P2, reckon_db_emitter_group, retrieve_emitters,
                                   [Store, Sub])),
    ?assertEqual(lists:sublist(Names3, 2),
                 erpc:call(P3, reckon_db_emitter_group, persist_emitters,
                           [Store, Sub, 2])),
    ?assertEqual(lists:sublist(Names3, 2),
                 erpc:call(P1, reckon_db_emitter_group, retrieve_emitters,
                           [Store, Sub])),
    ok.

shim_attach_mode(Config) ->
    #{node := Node} = ?config(cnode, Config),
    [begin
         Status = erpc:call(P, reckon_cnode, status, []),
         ct:log("~p: ~p", [P, Status]),
         ?assertMatch(#{mode := attach, connected := true, node := Node,
                        call_timeout := ?CALL_TIMEOUT, scope := reckon_db_pg},
                      Status),
         ?assertEqual(Node, erpc:call(P, reckon_cnode, node, [])),
         ?assertEqual(<<"s:x">>, erpc:call(P, reckon_db_emitter_group, topic,
                                           [s, <<"x">>])),
         %% the shim process is not on the request path: with it suspended
         %% the naming calls still work
         Shim = erpc:call(P, erlang, whereis, [reckon_cnode]),
         ok = erpc:call(P, sys, suspend, [Shim]),
         try
             ?assertEqual(<<"s:y">>, erpc:call(P, reckon_db_emitter_group,
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

%% join/leave/members/broadcast are answered with {error, not_implemented}
%% by the C node for now; the shim raises not_implemented. (Replace this
%% case when the group operations land.)
group_ops_not_implemented(Config) ->
    #{node := Node} = ?config(cnode, Config),
    [#{node := P} | _] = ?config(peers, Config),
    Raw = fun(Req) -> gen_server:call({reckon_cnode, Node}, Req, 5000) end,
    ?assertEqual({error, not_implemented}, Raw({join, s, <<"b">>, self()})),
    ?assertEqual({error, not_implemented}, Raw({leave, s, <<"b">>, [self()]})),
    ?assertEqual({error, not_implemented}, Raw({members, s, <<"b">>})),
    ?assertEqual({error, not_implemented}, Raw({broadcast, s, <<"b">>, ev})),
    Calls = [{join, [s, <<"b">>, self]}, {leave, [s, <<"b">>, self]},
             {members, [s, <<"b">>]}, {broadcast, [s, <<"b">>, ev]}],
    [[?assertEqual({raised, error, not_implemented}, R) || R <- Results]
     || Results <- erpc:call(P, ?MODULE, run_calls, [Calls, 1])],
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
    ?assertEqual(<<"s:x">>, reckon_db_emitter_group:topic(s, <<"x">>)),
    os_kill("TERM", OsPid),
    ?assertEqual({exited, 0}, wait_cnode_exit(C, 5000)),
    T0 = now_ms(),
    ?assertError({reckon_cnode_unavailable, Node},
                 reckon_db_emitter_group:topic(s, <<"x">>)),
    ?assertError({reckon_cnode_unavailable, Node}, reckon_cnode:stats()),
    Elapsed = now_ms() - T0,
    ct:log("unavailable after ~p ms", [Elapsed]),
    ?assert(Elapsed < 2 * ?CALL_TIMEOUT + 500),
    wait_until(fun() -> not maps:get(connected, reckon_cnode:status()) end,
               5000, shim_sees_disconnect),
    %% the C node comes back under the same name
    C2 = start_cnode_args(["--name", Name ++ "@" ++ host(),
                           "--exit-on-stdin-close"], testcase),
    ?assertEqual(Node, maps:get(node, C2)),
    wait_connected(node()),
    ?assertEqual(<<"s:x">>, reckon_db_emitter_group:topic(s, <<"x">>)),
    Status = reckon_cnode:status(),
    ct:log("status after reconnect: ~p", [Status]),
    ?assertMatch(#{connected := true, connects := 2, disconnects := 1}, Status),
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
                     reckon_db_emitter_group:emitter_name(s, <<"x">>)),
        Elapsed = now_ms() - T0,
        ct:log("timed out after ~p ms", [Elapsed]),
        ?assert(Elapsed >= Timeout - 10),
        ?assert(Elapsed < Timeout + 1000)
    after
        os_kill("CONT", OsPid)
    end,
    ?assertEqual(s_x_emitter, reckon_db_emitter_group:emitter_name(s, <<"x">>)),
    ok.

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
    ?assertEqual(<<"s:x">>, erpc:call(P, reckon_db_emitter_group, topic,
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
    ?assertEqual(<<"s:y">>, erpc:call(P, reckon_db_emitter_group, topic,
                                      [s, <<"y">>])),
    %% stopping the application stops the C node
    ok = erpc:call(P, application, stop, [reckon_cnode]),
    wait_until(fun() -> not os_pid_alive(OsPid2) end, 3000, cnode_stopped_with_app),
    ?assertEqual(pang, net_adm:ping(Expected)),
    ?assertMatch({raised, error, reckon_cnode_not_started},
                 hd(hd(erpc:call(P, ?MODULE, run_calls,
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
    ?assert(contains(Start(#{spawn => maybe}), {bad_env, spawn, maybe})),
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

%% Runs Calls in Workers concurrent processes on this node; returns the
%% outcome lists. The atom 'self' in join/leave arguments is the worker.
-spec run_calls([{atom(), list()}], pos_integer()) -> [[term()]].
run_calls(Calls, Workers) ->
    Parent = self(),
    Pids = [spawn_link(fun() -> Parent ! {self(), [run_call(C) || C <- Calls]} end)
            || _ <- lists:seq(1, Workers)],
    [receive {Pid, Results} -> Results end || Pid <- Pids].

run_call({F, Args0}) ->
    Args = [case A of self -> self(); _ -> A end || A <- Args0],
    try {ok, apply(reckon_db_emitter_group, F, Args)}
    catch Class:Reason -> {raised, Class, Reason}
    end.

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
%%% C node processes
%%%===================================================================

cnode_bin() ->
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

start_cnode(Name, Scope) ->
    start_cnode_args(["--name", Name ++ "@" ++ host(), "--exit-on-stdin-close"],
                     Scope).

%% The holder owns the port for the C node's lifetime and reports the first
%% stdout line (the node name).
start_cnode_args(Args, Scope) ->
    {ok, Bin} = cnode_bin(),
    Cookie = atom_to_list(erlang:get_cookie()),
    Parent = self(),
    Tag = make_ref(),
    Holder = spawn(fun() -> holder_init(Parent, Tag, Bin, Args, Cookie) end),
    MRef = erlang:monitor(process, Holder),
    receive
        {Tag, {ok, Node, OsPid}} ->
            erlang:demonitor(MRef, [flush]),
            [Alive, _] = string:split(atom_to_list(Node), "@"),
            C = #{node => Node, os_pid => OsPid, holder => Holder, name => Alive},
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
holder_init(Parent, Tag, Bin, Args, Cookie) ->
    Log = cnode_log_file(),
    ct:log("C node log: <a href=\"file://~s\">~s</a>", [Log, Log]),
    Port = open_port({spawn_executable, "/bin/sh"},
                     [{args, ["-c", "exec \"$0\" \"$@\" 2>>\"$RCN_LOG\"", Bin | Args]},
                      {env, [{"RECKON_CNODE_COOKIE", Cookie}, {"RCN_LOG", Log}]},
                      {line, 1024}, exit_status, use_stdio]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    receive
        {Port, {data, {eol, Line}}} ->
            Parent ! {Tag, {ok, list_to_atom(string:trim(Line)), OsPid}},
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
            catch port_close(Port),
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

wait_cnode_exit(C, Timeout) ->
    holder_call(maps:get(holder, C), wait_exit, Timeout).

stop_cnode(#{holder := Holder}) ->
    case is_process_alive(Holder) of
        true -> _ = holder_call(Holder, stop, 15000), ok;
        false -> ok
    end.

os_kill(Signal, OsPid) ->
    _ = os:cmd("kill -" ++ Signal ++ " " ++ integer_to_list(OsPid) ++ " 2>/dev/null"),
    ok.

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
start_tracker() ->
    Parent = self(),
    Pid = spawn(fun() ->
                        _ = ets:new(rcn_resources, [named_table, public, set]),
                        Parent ! {self(), ready},
                        receive stop -> ok end
                end),
    receive {Pid, ready} -> Pid end.

stop_tracker(Pid) ->
    Pid ! stop,
    ok.

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

start_peer(Prefix, Scope) ->
    Name = unique_name(Prefix),
    Cookie = atom_to_list(erlang:get_cookie()),
    Ebin = filename:dirname(code:which(reckon_cnode)),
    TestDir = filename:dirname(code:which(?MODULE)),
    ct:log("peer code path: ~s ~s", [Ebin, TestDir]),
    {ok, Pid, Node} =
        peer:start(#{name => Name,
                     args => ["-setcookie", Cookie,
                              "-pa", Ebin, "-pa", TestDir,
                              "-kernel", "logger_level", "info"],
                     env => [{"ERL_EPMD_PORT", os:getenv("ERL_EPMD_PORT")}],
                     wait_boot => 30000}),
    ct:log("started peer ~p", [Node]),
    Peer = #{node => Node, pid => Pid},
    track(Scope, {peer, Peer}),
    Peer.

stop_peer(#{pid := Pid}) ->
    catch peer:stop(Pid),
    ok.

start_shim_on(Node, Env) ->
    ok = erpc:call(Node, ?MODULE, start_local_shim_remote, [Env]).

%% Application env for the shim, then start it.
start_local_shim(Env) ->
    ok = start_local_shim_remote(Env).

-spec start_local_shim_remote(map()) -> ok.
start_local_shim_remote(Env) ->
    case application:load(reckon_cnode) of
        ok -> ok;
        {error, {already_loaded, reckon_cnode}} -> ok
    end,
    Defaults = #{cnode => undefined, spawn => false, call_timeout => 5000,
                 spawn_name => undefined},
    [ok = application:set_env(reckon_cnode, K, V)
     || {K, V} <- maps:to_list(maps:merge(Defaults, Env))],
    {ok, _} = application:ensure_all_started(reckon_cnode),
    ok.

stop_local_shim() ->
    _ = application:stop(reckon_cnode),
    ok.

wait_connected(Node) ->
    wait_until(fun() ->
                       try erpc:call(Node, reckon_cnode, status, []) of
                           #{connected := Connected} -> Connected
                       catch _:_ -> false
                       end
               end, 15000, {shim_connected, Node}).

%%%===================================================================
%%% Helpers
%%%===================================================================

%% Bounded wait for a condition (polls every 20 ms; used for conditions
%% that have no event to wait for).
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

unique_name(Prefix) ->
    Prefix ++ "_" ++ os:getpid() ++ "_"
        ++ integer_to_list(erlang:unique_integer([positive])).

host() ->
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Host.

now_ms() ->
    erlang:monotonic_time(millisecond).
