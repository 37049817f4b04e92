%%% @doc common_test suite: the C node's `--http' endpoint, on the real
%%% node. `/metrics' is Prometheus text (HELP and TYPE before every sample,
%%% `name value' samples) whose metrics are exactly the counters of
%%% `stats/0', with equal values where they cannot move between the two
%%% reads; `/health' is 200 for a running node, and 503 for a node whose
%%% seeds cannot be reached until some node connects to it. Hostile
%%% clients (idle and half-sent requests) neither delay the node nor hold a
%%% connection past the server's timeout. The node is asked for port 0 and
%%% its log says which port it got.
%%% @end
-module(reckon_cnode_http_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(rc_test_lib, [start_cnode/3, cleanup/1, wait_until/3, host/0, unique_name/1]).

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([metrics_match_stats/1,
         health_waits_for_a_connection/1,
         hostile_clients_do_not_block_the_node/1]).

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [metrics_match_stats,
     health_waits_for_a_connection,
     hostile_clients_do_not_block_the_node].

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

stats(CNode) ->
    rc_test_lib:cnode_stats(CNode, 5000).

%% The port the node bound for `--http 127.0.0.1:0', from its log (written
%% before the node printed its name, so it is there once start_cnode returns).
http_port(#{log := Log}) ->
    {ok, Bin} = file:read_file(Log),
    {match, [Port]} = re:run(Bin, "serving /metrics and /health on 127\\.0\\.0\\.1:([0-9]+)",
                             [{capture, all_but_first, list}]),
    list_to_integer(Port).

%% A plain HTTP/1.0 GET over gen_tcp: {Status, Headers, Body}, header names
%% in lower case. (httpc would look for the OS's CA certificates even for
%% http URLs on OTP 27, and the OTP roots have none.)
http_get(Port, Path) ->
    {ok, S} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}], 5000),
    ok = gen_tcp:send(S, ["GET ", Path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"]),
    Reply = recv_all(S, []),
    ok = gen_tcp:close(S),
    [Head, Body] = string:split(binary_to_list(Reply), "\r\n\r\n"),
    ["HTTP/1." ++ [_, $\s | StatusLine] | HeaderLines] = string:split(Head, "\r\n", all),
    Status = list_to_integer(string:slice(StatusLine, 0, 3)),
    Headers = [begin
                   [K, V] = string:split(L, ":"),
                   {string:lowercase(K), string:trim(V)}
               end || L <- HeaderLines],
    {Status, Headers, Body}.

recv_all(S, Acc) ->
    case gen_tcp:recv(S, 0, 5000) of
        {ok, B} -> recv_all(S, [Acc, B]);
        {error, closed} -> iolist_to_binary(Acc)
    end.

%% The /health answer, or `unreachable' while the server cannot be reached.
health(Port) ->
    try status_body(http_get(Port, "/health"))
    catch
        _:_ -> unreachable
    end.

%% Parses the exposition text: #{Name => {Type, Value}}. Fails on any line
%% that is not a HELP, a TYPE or a `name value' sample (`name{labels} value'
%% for the build information), on a sample without HELP and TYPE before it,
%% and on a name given twice.
parse_metrics(Text) ->
    Lines = string:split(string:trim(Text, trailing, "\n"), "\n", all),
    parse_lines(Lines, #{}, #{}, #{}).

parse_lines([], _Help, _Type, Acc) ->
    Acc;
parse_lines(["# HELP " ++ Rest | Ls], Help, Type, Acc) ->
    [Name, _Text] = string:split(Rest, " "),
    parse_lines(Ls, Help#{Name => true}, Type, Acc);
parse_lines(["# TYPE " ++ Rest | Ls], Help, Type, Acc) ->
    [Name, T] = string:split(Rest, " "),
    ?assert(lists:member(T, ["counter", "gauge"])),
    parse_lines(Ls, Help, Type#{Name => T}, Acc);
parse_lines([Line | Ls], Help, Type, Acc) ->
    case re:run(Line, "^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\\{[a-z_]+=\"[^\"]*\"(?:,[a-z_]+=\"[^\"]*\")*\\})? ([0-9]+)$",
                [{capture, all_but_first, list}]) of
        {match, [Name, Value]} ->
            ?assert(maps:is_key(Name, Help), {no_help, Name}),
            ?assert(maps:is_key(Name, Type), {no_type, Name}),
            ?assertNot(maps:is_key(Name, Acc), {twice, Name}),
            parse_lines(Ls, Help, Type, Acc#{Name => {maps:get(Name, Type), list_to_integer(Value)}});
        nomatch ->
            ct:fail({not_a_sample, Line})
    end.

%% The metric a stats/0 key is published as.
metric_name(Key, Type, Error) ->
    lists:flatten(["reckon_cnode_", [ "errors_" || Error], atom_to_list(Key),
                   ["_total" || Type =:= "counter"]]).

%% Every stats/0 counter, and nothing else, is on /metrics; the gauges that
%% stay put between the two reads (connections: the test node only) are
%% equal, and counters never go back.
metrics_match_stats(_Config) ->
    #{node := CNode} = C = start_cnode("rcn_http", ["--http", "127.0.0.1:0"], testcase),
    Port = http_port(C),
    Stats = stats(CNode),
    {200, Headers, Body} = http_get(Port, "/metrics"),
    ?assertMatch("text/plain; version=0.0.4" ++ _, proplists:get_value("content-type", Headers)),
    Metrics0 = parse_metrics(Body),
    ct:log("/metrics:~n~s", [Body]),
    %% which build answers: the one series that is not a counter of stats/0
    {{"gauge", 1}, Metrics} = maps:take("reckon_cnode_build_info", Metrics0),
    ?assertMatch({match, _}, re:run(Body, "^reckon_cnode_build_info\\{version=\"[^\"]+\","
                                          "otp_release=\"[0-9]+\",erl_interface=\"erl_interface-"
                                          "[0-9.]+\"\\} 1$", [multiline])),
    {Errors, Plain} = maps:take(errors, Stats),
    Expected = [{K, V, false} || {K, V} <- maps:to_list(Plain)]
        ++ [{K, V, true} || {K, V} <- maps:to_list(Errors)],
    Names = lists:map(
              fun({K, V, Error}) ->
                      Gauge = metric_name(K, "gauge", Error),
                      Counter = metric_name(K, "counter", Error),
                      case {Metrics, Error} of
                          {#{Gauge := {"gauge", _}}, false} -> Gauge;
                          {#{Counter := {"counter", M}}, _} ->
                              ?assert(M >= V, {went_back, K}),
                              Counter;
                          _ -> ct:fail({not_on_metrics_page, K})
                      end
              end, Expected),
    ?assertEqual(lists:sort(Names), lists:sort(maps:keys(Metrics))),
    ?assertEqual({"gauge", maps:get(connections, Plain)},
                 maps:get("reckon_cnode_connections", Metrics)),
    ?assertEqual({"gauge", 1}, maps:get("reckon_cnode_connections", Metrics)),
    ?assertMatch({"counter", _}, maps:get("reckon_cnode_bytes_in_total", Metrics)),
    ?assertMatch({"counter", _}, maps:get("reckon_cnode_errors_handshake_total", Metrics)),
    %% (0 under AddressSanitizer, whose allocator mallinfo2 does not see)
    ?assertMatch({"gauge", _}, maps:get("reckon_cnode_heap_bytes", Metrics)),
    ?assertMatch({200, _, "ok\n"}, http_get(Port, "/health")),
    ?assertMatch({404, _, _}, http_get(Port, "/")),
    ok.

%% With a seed that does not exist, the node is not healthy: 503 with the
%% reason. Once a node connects to it (this one), it is.
health_waits_for_a_connection(_Config) ->
    Ghost = unique_name("rcn_ghost") ++ "@" ++ host(),
    #{node := CNode} = C = start_cnode("rcn_seeded", ["--http", "127.0.0.1:0", "--seed", Ghost],
                                       testcase),
    Port = http_port(C),
    ?assertEqual({503, "no connection to any node\n"}, status_body(http_get(Port, "/health"))),
    %% This node's first call connects it.
    ?assertMatch(#{connections := 1}, stats(CNode)),
    wait_until(fun() -> status_body(http_get(Port, "/health")) =:= {200, "ok\n"} end, 5000,
               health_not_ok_once_connected),
    ok.

status_body({Status, _, Body}) -> {Status, Body}.

%% 50 sockets that say nothing and 10 that send half a request line: the
%% node answers a call at once and, once they are gone, serves /health
%% again; a silent client is cut off (past the server's connection budget,
%% or at its 5 s request deadline).
hostile_clients_do_not_block_the_node(_Config) ->
    #{node := CNode} = C = start_cnode("rcn_hostile", ["--http", "127.0.0.1:0"], testcase),
    Port = http_port(C),
    {ok, pong} = gen_server:call({reckon_cnode, CNode}, ping, 5000),
    Idle = [S || _ <- lists:seq(1, 50),
                 {ok, S} <- [gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}], 2000)]],
    Half = [S || _ <- lists:seq(1, 10),
                 {ok, S} <- [gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}], 2000)],
                 ok =:= gen_tcp:send(S, <<"GET /metr">>)],
    ct:log("idle sockets: ~p, half requests: ~p", [length(Idle), length(Half)]),
    T0 = erlang:monotonic_time(millisecond),
    ?assertEqual({ok, pong}, gen_server:call({reckon_cnode, CNode}, ping, 5000)),
    _ = stats(CNode),
    Ms = erlang:monotonic_time(millisecond) - T0,
    ct:log("ping and stats behind 60 hostile HTTP clients: ~p ms", [Ms]),
    ?assert(Ms < 1000),
    %% The first socket the server took held a slot; it is cut off, not
    %% left open.
    [First | _] = Idle,
    T1 = erlang:monotonic_time(millisecond),
    ?assertMatch({error, _}, gen_tcp:recv(First, 0, 20000)),
    ct:log("idle HTTP client cut off after ~p ms",
           [erlang:monotonic_time(millisecond) - T1]),
    [gen_tcp:close(S) || S <- Idle ++ Half],
    wait_until(fun() -> health(Port) =:= {200, "ok\n"} end, 15000,
               health_not_served_after_hostile_clients),
    ok.
