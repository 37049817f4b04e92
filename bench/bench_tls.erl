%% TLS benchmark helpers, run by bench/tls.sh on BEAM nodes of both
%% transports (plain TCP and -proto_dist inet_tls):
%%  - sink: a node whose four processes are the members of
%%    {bench_tls, <<"sub">>, emitters} in pg scope reckon_db_pg; each counts
%%    what it gets and when the first and the last message came;
%%  - await/1: from another node, waits until the sink's members got N
%%    messages in all and prints the rate at the receivers (N over the time
%%    from the first to the last receipt), then resets them;
%%  - beam_produce/1: a BEAM producer doing what the C producer does (pick a
%%    uniformly random member per event, send it an event of about the same
%%    size), for the BEAM-over-TLS anchor.
-module(bench_tls).
-export([serve_sink/0, await/1, beam_produce/1]).

-define(GROUP, {bench_tls, <<"sub">>, emitters}).

serve_sink() ->
    {ok, _} = pg:start(reckon_db_pg),
    Members = [spawn(fun() -> member(0, undefined, undefined) end) || _ <- lists:seq(1, 4)],
    ok = pg:join(reckon_db_pg, ?GROUP, Members),
    register(bench_tls_sink, self()),
    sink_loop(Members).

sink_loop(Members) ->
    receive
        {members, From} -> From ! {bench_tls_members, Members}, sink_loop(Members);
        stop -> ok
    end.

member(N, First, Last) ->
    receive
        {'$count', From} -> From ! {self(), N, First, Last}, member(N, First, Last);
        '$reset' -> member(0, undefined, undefined);
        _ ->
            T = erlang:monotonic_time(microsecond),
            member(N + 1, case First of undefined -> T; _ -> First end, T)
    end.

%% [SinkNode, Count, Label]
await([SinkA, CountA, Label]) ->
    Sink = list_to_atom(str(SinkA)), Count = list_to_integer(str(CountA)),
    {bench_tls_sink, Sink} ! {members, self()},
    Members = receive {bench_tls_members, Ms} -> Ms after 10000 -> exit(no_sink) end,
    Deadline = erlang:monotonic_time(millisecond) + 300000,
    Stats = wait_count(Members, Count, Deadline),
    N = lists:sum([C || {C, _, _} <- Stats]),
    First = lists:min([F || {_, F, _} <- Stats, F =/= undefined]),
    Last = lists:max([L || {_, _, L} <- Stats, L =/= undefined]),
    Rate = N / max(1, Last - First) * 1.0e6,
    io:format("~s_received ~p~n~s_receiver_events_per_sec ~p~n", [str(Label), N, str(Label), round(Rate)]),
    [M ! '$reset' || M <- Members],
    %% a round trip after the reset: the node may halt right after this,
    %% and a halt can drop messages still on their way
    _ = wait_count(Members, 0, Deadline),
    ok.

wait_count(Members, Count, Deadline) ->
    Stats = [begin
                 M ! {'$count', self()},
                 receive {M, N, F, L} -> {N, F, L} end
             end || M <- Members],
    case lists:sum([N || {N, _, _} <- Stats]) >= Count
        orelse erlang:monotonic_time(millisecond) > Deadline of
        true -> Stats;
        false -> receive after 20 -> ok end, wait_count(Members, Count, Deadline)
    end.

%% [SinkNode, Count, Bytes, Label]: events sent from this node, one random
%% member each, as a BEAM emitter group's broadcast does.
beam_produce([SinkA, CountA, BytesA, Label]) ->
    Sink = list_to_atom(str(SinkA)), Count = list_to_integer(str(CountA)),
    Bytes = list_to_integer(str(BytesA)),
    {ok, _} = pg:start(reckon_db_pg),
    pong = net_adm:ping(Sink),
    Members = wait_members(50),
    Tuple = list_to_tuple(Members),
    Event = {event, <<"0f8fad5b-d9cb-469f-a165-70867728950e">>, <<"order_created">>,
             <<"order-42">>, 1, binary:copy(<<"x">>, max(1, Bytes - 160)), 1700000000000,
             1700000000000000, <<"application/octet-stream">>, <<"application/json">>},
    Msg = {broadcast, <<"bench_tls:sub">>, Event},
    {CpuUs0, _} = statistics(runtime),
    T0 = erlang:monotonic_time(microsecond),
    send_loop(Tuple, tuple_size(Tuple), Msg, Count),
    T1 = erlang:monotonic_time(microsecond),
    {CpuUs1, _} = statistics(runtime),
    io:format("~s_producer_events_per_sec ~p~n~s_producer_cpu_us_per_event ~.3f~n",
              [str(Label), round(Count / max(1, T1 - T0) * 1.0e6),
               str(Label), (CpuUs1 - CpuUs0) * 1000 / Count]),
    ok.

wait_members(0) -> exit(no_members);
wait_members(K) ->
    case pg:get_members(reckon_db_pg, ?GROUP) of
        [] -> receive after 100 -> ok end, wait_members(K - 1);
        Ms -> Ms
    end.

send_loop(_, _, _, 0) -> ok;
send_loop(T, N, Msg, I) ->
    element(rand:uniform(N), T) ! Msg,
    send_loop(T, N, Msg, I - 1).

str(A) when is_atom(A) -> atom_to_list(A);
str(S) -> S.
