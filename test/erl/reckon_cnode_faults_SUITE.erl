%%% @doc common_test suite: faults at the distribution layer, with
%%% real `peer' nodes and the real `priv/reckon_cnode': a frame above
%%% `--max-message-bytes' closes that connection only; a hung peer is
%%% dropped after `--net-ticktime'; a wrong cookie is rejected. Every wait is
%%% bounded; nothing sleeps where an event can be awaited.
%%% @end
-module(reckon_cnode_faults_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(rc_test_lib, [start_cnode/3, start_peer/2, pcall/4, cleanup/1,
                      wait_until/3, os_kill/2]).

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([oversized_frame_closes_only_that_connection/1,
         hung_peer_dropped_after_ticktime/1,
         wrong_cookie_rejected/1]).
%% run on peers
-export([send_and_await_nodedown/3]).

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [oversized_frame_closes_only_that_connection,
     hung_peer_dropped_after_ticktime,
     wrong_cookie_rejected].

init_per_suite(Config) ->
    rc_test_lib:suite_init(Config).

end_per_suite(Config) ->
    rc_test_lib:suite_end(Config, [testcase, suite]).

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    cleanup([testcase]),
    ok.

stats(CNode) ->
    {ok, Stats} = gen_server:call({reckon_cnode, CNode}, stats, 5000),
    Stats.

%% On a peer: connect, watch the connection, send Bytes to the request
%% server and wait for the C node to drop us.
-spec send_and_await_nodedown(node(), pos_integer(), timeout()) -> nodedown | still_up.
send_and_await_nodedown(CNode, Bytes, Timeout) ->
    pong = net_adm:ping(CNode),
    true = erlang:monitor_node(CNode, true),
    {reckon_cnode, CNode} ! {garbage, binary:copy(<<7>>, Bytes)},
    receive
        {nodedown, CNode} -> nodedown
    after Timeout -> still_up
    end.

%% A frame above --max-message-bytes closes that connection (logged and
%% counted); another peer's connection and calls are unaffected.
oversized_frame_closes_only_that_connection(_Config) ->
    #{node := CNode} = start_cnode("rcn_big", ["--max-message-bytes", "4096"], testcase),
    Big = start_peer("rcn_bigsender", testcase),
    Small = start_peer("rcn_bystander", testcase),
    ?assertEqual(pong, pcall(Small, net_adm, ping, [CNode])),
    ?assertEqual(nodedown, pcall(Big, ?MODULE, send_and_await_nodedown, [CNode, 10000, 5000])),
    %% the bystander still gets answers over its own connection
    ?assertEqual({ok, pong}, pcall(Small, gen_server, call, [{reckon_cnode, CNode}, ping, 5000])),
    #{errors := #{frame_too_big := TooBig}} = stats(CNode),
    ?assertEqual(1, TooBig),
    %% a message within the limit is fine (the C node reconnects to P1 itself)
    ?assertEqual(still_up, pcall(Big, ?MODULE, send_and_await_nodedown, [CNode, 1000, 500])),
    ok.

%% A peer that stops answering (SIGSTOP) is dropped after --net-ticktime.
hung_peer_dropped_after_ticktime(_Config) ->
    #{node := CNode} = start_cnode("rcn_tick", ["--net-ticktime", "4"], testcase),
    Peer = start_peer("rcn_hung", testcase),
    ?assertEqual(pong, pcall(Peer, net_adm, ping, [CNode])),
    OsPid = list_to_integer(pcall(Peer, os, getpid, [])),
    %% this node and the peer
    wait_until(fun() -> maps:get(connections, stats(CNode)) >= 2 end, 5000, peer_connected),
    os_kill("STOP", OsPid),
    try
        T0 = erlang:monotonic_time(millisecond),
        %% 4 s of silence, checked every tick (1 s): gone within ~6 s
        wait_until(fun() -> maps:get(tick_timeout, maps:get(errors, stats(CNode))) >= 1 end,
                   10000, hung_peer_dropped),
        ct:log("hung peer dropped after ~p ms",
               [erlang:monotonic_time(millisecond) - T0])
    after
        os_kill("CONT", OsPid)
    end,
    ok.

%% A node with the wrong cookie cannot connect; the handshake error is
%% counted (the cookie itself is never logged).
wrong_cookie_rejected(_Config) ->
    #{node := CNode} = start_cnode("rcn_cookie", [], testcase),
    Peer = start_peer("rcn_wrongcookie", testcase),
    true = pcall(Peer, erlang, set_cookie, [CNode, not_the_cookie]),
    ?assertEqual(pang, pcall(Peer, net_adm, ping, [CNode])),
    wait_until(fun() -> maps:get(handshake, maps:get(errors, stats(CNode))) >= 1 end,
               5000, handshake_error_counted),
    ok.
