%% What one delivered message costs the receiving BEAM node, when a C
%% emitter sends it and when a BEAM emitter does: run by bench/recv_cost.sh.
%%
%% Nodes: `sub' (the receiver: K counting processes in the pg group
%% {fan, <<"fan:out">>, subscribers}); `emi' (a BEAM emitter that sends
%% {events, [Event]} to every member, as reckon-db's does); the C node (a C
%% emitter pool of one, fan_out_emitter, doing the same); `drv' (this
%% module's run/1: sends {broadcast, Topic, Event} to one emitter or the
%% other, waits until the receiver counted every delivery, and reads the
%% receiver's CPU from /proc/PID/stat and its scheduler time split from
%% msacc).
%%
%% Two shapes of run, each in rounds alternating C and BEAM (ABBA):
%%   burst: E events sent at once (E x K deliveries queued as fast as the
%%          emitters go);
%%   paced: one event at a time, the next once all K deliveries arrived, so
%%          both senders hand the receiver the same shape of traffic.
%% Output: one "key value" line per figure.
-module(recv_cost).
-export([serve_sub/1, serve_emi/0, run/1]).

-define(SCOPE, reckon_db_pg).
-define(GROUP, {fan, <<"fan:out">>, subscribers}).
-define(WAIT_MS, 60000).

%%%===================================================================
%%% Receiver and BEAM emitter nodes
%%%===================================================================

serve_sub(K) ->
    {ok, _} = pg:start(?SCOPE),
    Cnt = counters:new(1, [write_concurrency]),
    Procs = [spawn(fun() -> counter_loop(Cnt) end) || _ <- lists:seq(1, K)],
    ok = pg:join(?SCOPE, ?GROUP, Procs),
    register(recv_ctl, spawn(fun() -> ctl_loop(Cnt, Procs) end)),
    receive stop -> ok end.

counter_loop(Cnt) ->
    receive
        {events, _} -> counters:add(Cnt, 1, 1);
        {sync, From, Ref} -> From ! {Ref, ok};
        _ -> ok
    end,
    counter_loop(Cnt).

ctl_loop(Cnt, Procs) ->
    receive
        {reset, From} ->
            %% every process answers, so nothing of a run is still queued
            Refs = [begin R = make_ref(), P ! {sync, self(), R}, R end || P <- Procs],
            [receive {R, ok} -> ok end || R <- Refs],
            counters:put(Cnt, 1, 0),
            From ! {reset, ok};
        {wait, From, N} ->
            Deadline = erlang:monotonic_time(millisecond) + ?WAIT_MS,
            From ! {wait, poll(Cnt, N, Deadline)}
    end,
    ctl_loop(Cnt, Procs).

poll(Cnt, N, Deadline) ->
    case counters:get(Cnt, 1) of
        C when C >= N -> C;
        C ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> C;
                false -> timer:sleep(1), poll(Cnt, N, Deadline)
            end
    end.

serve_emi() ->
    {ok, _} = pg:start(?SCOPE),
    register(recv_fan_emitter, spawn(fun emitter/0)),
    receive stop -> ok end.

%% reckon-db's emitter without a subscriber.
emitter() ->
    receive
        {broadcast, _Topic, Event} ->
            [P ! {events, [Event]} || P <- pg:get_members(?SCOPE, ?GROUP)];
        _ ->
            ok
    end,
    emitter().

%%%===================================================================
%%% Driver
%%%===================================================================

%% Args: the emitter node, the receiver node and its OS pid, K,
%% events per burst round, events per paced round, rounds per side, which
%% sides (all, or one side's name: to profile it alone), then one
%% "Name=Node=OsPid" per C node under test.
run([EmiA, SubA, SubOsA, KA, BurstA, PacedA, RoundsA, OnlyA | CNodesA]) ->
    Emi = list_to_atom(EmiA), Sub = list_to_atom(SubA),
    K = list_to_integer(KA),
    Burst = list_to_integer(BurstA), Paced = list_to_integer(PacedA),
    Rounds = list_to_integer(RoundsA),
    CNodes = [begin [N, Nd, Os] = string:split(C, "=", all), {list_to_atom(N), list_to_atom(Nd), Os} end
              || C <- CNodesA],
    pong = net_adm:ping(Emi),
    pong = net_adm:ping(Sub),
    pong = rpc:call(Emi, net_adm, ping, [Sub]),
    [begin
         pong = net_adm:ping(CNode),
         pong = rpc:call(Sub, net_adm, ping, [CNode]),
         {ok, _} = gen_server:call({reckon_cnode, CNode}, {start_emitter_pool, fan, <<"out">>, 1, undefined}),
         wait_members(fun() ->
                              {ok, L} = gen_server:call({reckon_cnode, CNode}, {pg_members, ?SCOPE, ?GROUP}),
                              length(L)
                      end, K)
     end || {_, CNode, _} <- CNodes],
    wait_members(fun() -> length(rpc:call(Emi, pg, get_members, [?SCOPE, ?GROUP])) end, K),
    Event = event(),
    Ctl = {recv_ctl, Sub},
    All = [{Name, {fan_out_emitter, CNode}, Os} || {Name, CNode, Os} <- CNodes] ++
          [{beam, {recv_fan_emitter, Emi}, rpc:call(Emi, os, getpid, [])}],
    Sides = case OnlyA of
                "all" -> All;
                _ -> [S || {Name, _, _} = S <- All, atom_to_list(Name) =:= OnlyA]
            end,
    %% warm-up: connections, atom caches, heaps
    [one_run(S, Ctl, SubOsA, Sub, K, burst, 20, Event) || S <- Sides],
    Shapes = [{burst, Burst} || Burst > 0] ++ [{paced, Paced} || Paced > 0],
    kv("subscribers", K),
    kv("event_bytes", byte_size(term_to_binary(Event))),
    [begin
         Order = rotations(Sides, Rounds),
         Rs = [{Side, one_run(S, Ctl, SubOsA, Sub, K, Shape, E, Event)}
               || {Side, _, _} = S <- Order],
         report(Shape, E, K, Rs, [Side || {Side, _, _} <- Sides])
     end || {Shape, E} <- Shapes],
    [{ok, ok} = gen_server:call({reckon_cnode, CNode}, {stop_emitter_pool, fan, <<"out">>})
     || {_, CNode, _} <- CNodes],
    ok.

%% Every side once per round, each round starting one further along (A B C,
%% B C A, ...): slow drifts of the machine's load fall on every side alike.
rotations(Sides, Rounds) ->
    N = length(Sides),
    lists:append([begin {A, B} = lists:split(R rem N, Sides), B ++ A end
                  || R <- lists:seq(0, Rounds - 1)]).

one_run({_Side, Target, EmOs}, Ctl, SubOs, Sub, K, Shape, E, Event) ->
    ok = ctl(Ctl, {reset, self()}),
    _ = rpc:call(Sub, msacc, start, []),
    Cpu0 = [proc_cpu_us(SubOs), proc_cpu_us(EmOs)],
    T0 = erlang:monotonic_time(microsecond),
    Got = case Shape of
              burst ->
                  [Target ! {broadcast, <<"fan:out">>, Event} || _ <- lists:seq(1, E)],
                  wait(Ctl, E * K);
              paced ->
                  lists:foldl(fun(I, _) ->
                                      Target ! {broadcast, <<"fan:out">>, Event},
                                      wait(Ctl, I * K)
                              end, 0, lists:seq(1, E))
          end,
    T1 = erlang:monotonic_time(microsecond),
    Cpu1 = [proc_cpu_us(SubOs), proc_cpu_us(EmOs)],
    _ = rpc:call(Sub, msacc, stop, []),
    Acc = msacc_split(rpc:call(Sub, msacc, stats, [])),
    [SubCpu, EmCpu] = [B - A || {A, B} <- lists:zip(Cpu0, Cpu1)],
    N = E * K,
    Got =:= N orelse error({lost, Got, N}),
    Busy = lists:sum([V || {St, V} <- maps:to_list(Acc), St =/= sleep]),
    #{sub => SubCpu / N, em => EmCpu / N, wall => (T1 - T0) / N,
      acc => maps:map(fun(_, V) -> 100 * V / max(1, Busy) end, Acc)}.

wait(Ctl, N) -> ctl(Ctl, {wait, self(), N}).

ctl(Ctl, Msg) ->
    Ctl ! Msg,
    Tag = element(1, Msg),
    receive {Tag, Reply} -> Reply
    after ?WAIT_MS + 10000 -> error({no_reply, Ctl, Tag})
    end.

%% Scheduler threads' time per msacc state, summed over threads.
msacc_split(Stats) when is_list(Stats) ->
    lists:foldl(fun(#{type := scheduler, counters := C}, Acc) ->
                        maps:fold(fun(St, V, A) -> maps:update_with(St, fun(X) -> X + V end, V, A) end,
                                  Acc, C);
                   (_, Acc) -> Acc
                end, #{}, Stats);
msacc_split(_) -> #{}.

report(Shape, E, K, Rs, Sides) ->
    P = atom_to_list(Shape),
    kv(P ++ "_events", E),
    kv(P ++ "_deliveries_per_round", E * K),
    Mean = fun(Side, F) ->
                   Vs = [F(R) || {S, R} <- Rs, S =:= Side],
                   lists:sum(Vs) / length(Vs)
           end,
    [begin
         S = atom_to_list(Side),
         kv(P ++ "_" ++ S ++ "_receiver_us_per_msg", Mean(Side, fun(R) -> maps:get(sub, R) end)),
         [kv(P ++ "_" ++ S ++ "_receiver_us_per_msg_round" ++ integer_to_list(I), maps:get(sub, R))
          || {I, R} <- lists:zip(lists:seq(1, length([x || {S1, _} <- Rs, S1 =:= Side])),
                                 [R || {S1, R} <- Rs, S1 =:= Side])],
         kv(P ++ "_" ++ S ++ "_emitter_us_per_msg", Mean(Side, fun(R) -> maps:get(em, R) end)),
         kv(P ++ "_" ++ S ++ "_wall_us_per_msg", Mean(Side, fun(R) -> maps:get(wall, R) end)),
         %% where the receiver's schedulers spent their busy time
         [kv(P ++ "_" ++ S ++ "_msacc_" ++ atom_to_list(St) ++ "_pct",
             Mean(Side, fun(R) -> maps:get(St, maps:get(acc, R), 0) end))
          || St <- [emulator, port, gc, check_io, aux, other]]
     end || Side <- Sides],
    case lists:member(beam, Sides) of
        true ->
            [kv(P ++ "_receiver_ratio_" ++ atom_to_list(A) ++ "_over_beam",
                Mean(A, fun(R) -> maps:get(sub, R) end) / Mean(beam, fun(R) -> maps:get(sub, R) end))
             || A <- Sides, A =/= beam];
        false -> ok
    end.

%% The same 12-field #event{} as bench_emitters sends (286 bytes encoded).
event() ->
    {event, <<"0f8fad5b-d9cb-469f-a165-70867728950e">>, <<"order_created">>,
     <<"order-42">>, 1, binary:copy(<<"x">>, 123), #{}, [], 1700000000000,
     1700000000000000, <<"application/octet-stream">>, <<"application/json">>}.

%% CPU time of every thread of an OS process, in µs, from the scheduler's
%% own nanosecond account (/proc/PID/stat counts in 10 ms ticks).
proc_cpu_us(OsPid) ->
    Dir = "/proc/" ++ OsPid ++ "/task",
    {ok, Tids} = file:list_dir(Dir),
    lists:sum([case file:read_file(Dir ++ "/" ++ T ++ "/schedstat") of
                   {ok, B} -> binary_to_integer(hd(binary:split(B, <<" ">>)));
                   _ -> 0 % the thread ended meanwhile
               end || T <- Tids]) / 1000.

wait_members(F, N) -> wait_members(F, N, 300).
wait_members(F, N, 0) -> error({members_not_seen, N, F()});
wait_members(F, N, I) ->
    case F() of
        N -> ok;
        _ -> timer:sleep(50), wait_members(F, N, I - 1)
    end.

kv(K, V) when is_integer(V) -> io:format("~s ~p~n", [K, V]);
kv(K, V) when is_float(V) -> io:format("~s ~.3f~n", [K, V]).
