%% Emitter-group benchmarks run by bench/run.sh, each side by side with the
%% BEAM doing the same work in the same run:
%%
%%  1. C producer (bench/cnode_producer, its own C node) vs the seed's
%%     broadcast algorithm in one BEAM process, to 4 counting emitters on
%%     node `emi', N events of the same size; measured at the receivers
%%     (producer start -> last event received, wall clock) and producer-side;
%%  2. an Erlang caller broadcasting through the shim
%%     (reckon_cnode_emitter_group:broadcast/3) vs the seed's algorithm in the
%%     same process on the same node, to the same emitters, at the receivers;
%%  3. one event fanned out to 1,000 subscribers (on node `sub'): a C emitter
%%     on the bench C node vs a BEAM emitter with the same behaviour (on
%%     node `emi'); deliveries/s at the subscribers;
%%  4. a pool of 4 C emitters (subscriber: a counting sink on node `sub')
%%     receiving the seed's broadcast from one BEAM process at its maximum
%%     rate for a few seconds: the C node's CPU use over that window.
%%
%% Counting processes keep their last-message time (os:system_time, the
%% same CLOCK_REALTIME as cnode_producer's start_us) and add to a shared
%% counter; a control process per node polls the counter and collects the
%% latest time once everything has arrived. Every wait is bounded.
-module(bench_emitters).
-export([serve_emi/0, serve_sub/0, run/1, relay_holder/0]).

-define(SCOPE, reckon_db_pg).
-define(WAIT_MS, 60000).

%%%===================================================================
%%% Receiver nodes
%%%===================================================================

%% Node emi: 4 counting emitters in {bench, <<"sub">>, emitters} and the
%% BEAM fan-out emitter registered as bench_fan_emitter.
serve_emi() ->
    {ok, _} = pg:start(?SCOPE),
    start_counting(bench_emi, 4, [{bench, <<"sub">>, emitters}]),
    register(bench_fan_emitter, spawn(fun() -> fan_emitter(fan) end)),
    receive stop -> ok end.

%% Node sub: 1,000 counting subscribers in {fan, <<"fan:out">>, subscribers}
%% and one counting sink (the C emitter pool's subscriber in run 4). This
%% process owns the relay's table of handled counts, as the application's
%% supervisor does, so that the counts outlive the relay: when the relayed
%% runs end and the relay stops, the C node learns that it handled every
%% event (relay_lost 0), not that its node cannot say (relay_unaccounted).
serve_sub() ->
    {ok, _} = pg:start(?SCOPE),
    ok = reckon_cnode_relay:new_table(),
    start_counting(bench_subs, 1000, [{fan, <<"fan:out">>, subscribers}]),
    start_counting(bench_sink, 1, []),
    receive stop -> ok end.

%% On node sub: runs the reckon_cnode application's fan-out relay until told
%% to stop (the relayed fan-out run).
relay_holder() ->
    spawn(fun() ->
                  process_flag(trap_exit, true),
                  {ok, R} = reckon_cnode_relay:start_link(?SCOPE),
                  receive stop -> exit(R, shutdown), receive {'EXIT', R, _} -> ok end end
          end).

%% reckon-db's emitter without a subscriber: every {broadcast, Topic, Event}
%% goes as {events, [Event]} to each member of {Store, Topic, subscribers}.
fan_emitter(Store) ->
    receive
        {broadcast, Topic, Event} ->
            [P ! {events, [Event]} || P <- pg:get_members(?SCOPE, {Store, Topic, subscribers})];
        {forward_to_local, Topic, Event} ->
            [P ! {events, [Event]} || P <- pg:get_members(?SCOPE, {Store, Topic, subscribers})];
        _ ->
            ok
    end,
    fan_emitter(Store).

start_counting(Name, N, Groups) ->
    Self = self(),
    Ctl = spawn(fun() ->
                        Cnt = counters:new(1, [write_concurrency]),
                        Procs = [spawn(fun() -> counter_loop(Cnt, 0) end) || _ <- lists:seq(1, N)],
                        [ok = pg:join(?SCOPE, G, Procs) || G <- Groups],
                        register(Name, self()),
                        Self ! {Name, ready},
                        ctl_loop(Cnt, Procs)
                end),
    receive {Name, ready} -> Ctl end.

counter_loop(Cnt, Last) ->
    receive
        {broadcast, _, _} -> counters:add(Cnt, 1, 1), counter_loop(Cnt, os:system_time(microsecond));
        {forward_to_local, _, _} -> counters:add(Cnt, 1, 1), counter_loop(Cnt, os:system_time(microsecond));
        {events, _} -> counters:add(Cnt, 1, 1), counter_loop(Cnt, os:system_time(microsecond));
        {last, From, Ref} -> From ! {Ref, Last}, counter_loop(Cnt, Last);
        {reset, From, Ref} -> From ! {Ref, ok}, counter_loop(Cnt, 0);
        _ -> counter_loop(Cnt, Last)
    end.

ctl_loop(Cnt, Procs) ->
    receive
        {pids, From} ->
            From ! {pids, Procs};
        {reset, From} ->
            %% every process acknowledges, so nothing of an earlier run is
            %% still queued when the next one starts
            Refs = [begin R = make_ref(), P ! {reset, self(), R}, R end || P <- Procs],
            [receive {R, ok} -> ok end || R <- Refs],
            counters:put(Cnt, 1, 0),
            From ! {reset, ok};
        {wait, From, N, TimeoutMs} ->
            Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
            Got = poll(Cnt, N, Deadline),
            Refs = [begin R = make_ref(), P ! {last, self(), R}, R end || P <- Procs],
            Last = lists:max([receive {R, L} -> L end || R <- Refs]),
            %% anything beyond N (duplicates) shows after a short grace time
            timer:sleep(100),
            From ! {wait, {Got, counters:get(Cnt, 1), Last}};
        {count, From} ->
            From ! {count, counters:get(Cnt, 1)}
    end,
    ctl_loop(Cnt, Procs).

poll(Cnt, N, Deadline) ->
    case counters:get(Cnt, 1) of
        C when C >= N -> C;
        C ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> C;
                false -> timer:sleep(2), poll(Cnt, N, Deadline)
            end
    end.

ctl(Ctl, Msg) ->
    Ctl ! Msg,
    Tag = element(1, Msg),
    receive {Tag, Reply} -> Reply
    after ?WAIT_MS + 10000 -> error({no_reply, Ctl, Tag})
    end.

reset(Ctl) -> ok = ctl(Ctl, {reset, self()}).

%% {Received when done or timed out, received after a grace time, last time}
wait_for(Ctl, N) -> ctl(Ctl, {wait, self(), N, ?WAIT_MS}).

%%%===================================================================
%%% Driver (runs on a node with the reckon_cnode application attached to
%%% the bench C node; the BEAM producers run here)
%%%===================================================================

run([CNodeA, EmiA, SubA, ProducerA, CookieA, ProdNameA, CNodeOsPidA, ClkTckA]) ->
    CNode = atom(CNodeA), Emi = atom(EmiA), Sub = atom(SubA),
    Producer = str(ProducerA), Cookie = str(CookieA), ProdName = str(ProdNameA),
    CNodeOsPid = str(CNodeOsPidA), ClkTck = list_to_integer(str(ClkTckA)),
    ok = application:load(reckon_cnode),
    ok = application:set_env(reckon_cnode, cnode, CNode),
    {ok, _} = application:ensure_all_started(reckon_cnode),
    pong = net_adm:ping(Emi),
    pong = net_adm:ping(Sub),
    %% receiver nodes talk to the C node directly (C emitters -> sub)
    pong = rpc:call(Emi, net_adm, ping, [CNode]),
    pong = rpc:call(Sub, net_adm, ping, [CNode]),
    EmiCtl = {bench_emi, Emi}, SubsCtl = {bench_subs, Sub}, SinkCtl = {bench_sink, Sub},
    wait_members(fun() -> length(pg:get_members(?SCOPE, {bench, <<"sub">>, emitters})) end, 4),

    %% 1. C producer vs the seed's algorithm on a BEAM node; two rounds each
    %%    (C, BEAM, BEAM, C): rates are the best of each kind (this VM is
    %%    noisy), CPU figures the mean
    N1 = 300000,
    EmiOs = rpc:call(Emi, os, getpid, []), SubOs = rpc:call(Sub, os, getpid, []),
    DrvOs = os:getpid(),
    CRun = fun(I) ->
                   reset(EmiCtl),
                   M0 = cpu_mark([EmiOs], ClkTck),
                   C = cnode_producer(Producer, ["--seed", atom_to_list(Emi), "--cookie", Cookie,
                                                 "--store", "bench", "--sub", "sub",
                                                 "--count", integer_to_list(N1), "--bytes", "283",
                                                 "--sname", ProdName ++ "_" ++ integer_to_list(I)]),
                   {Got, Final, Last} = wait_for(EmiCtl, N1),
                   {W0, [EmiCpu]} = cpu_since(M0, [EmiOs], ClkTck),
                   Start = num(maps:get("start_us", C)), End = num(maps:get("end_us", C)),
                   #{e2e => rate(Got, Last - Start), prod => num(maps:get("events_per_sec", C)),
                     cpu => num(maps:get("cpu_us_per_event", C)), final => Final,
                     drain_ms => (Last - End) / 1000,
                     no_emitters => list_to_integer(maps:get("no_emitters", C)),
                     bytes => list_to_integer(maps:get("event_bytes", C)),
                     rcpu_pct => 100 * EmiCpu / win(W0, Last), rcpu => EmiCpu / N1}
           end,
    BRun = fun(Event) ->
                   reset(EmiCtl),
                   M0 = cpu_mark([EmiOs, DrvOs], ClkTck),
                   #{t0 := T0, t1 := T1} = in_process(fun() -> seed_run(bench, <<"sub">>, Event, N1) end),
                   {Got, Final, Last} = wait_for(EmiCtl, N1),
                   {W0, [EmiCpu, DrvCpu]} = cpu_since(M0, [EmiOs, DrvOs], ClkTck),
                   #{e2e => rate(Got, Last - T0), prod => rate(N1, T1 - T0), cpu => DrvCpu / N1,
                     final => Final, drain_ms => (Last - T1) / 1000,
                     rcpu_pct => 100 * EmiCpu / win(W0, Last), rcpu => EmiCpu / N1}
           end,
    C1 = CRun(1),
    EvBytes = maps:get(bytes, C1),
    Event = event(EvBytes),
    B1 = BRun(Event), B2 = BRun(Event),
    C2 = CRun(2),
    Max = fun(K, Rs) -> lists:max([maps:get(K, R) || R <- Rs]) end,
    Min = fun(K, Rs) -> lists:min([maps:get(K, R) || R <- Rs]) end,
    Mean = fun(K, Rs) -> lists:sum([maps:get(K, R) || R <- Rs]) / length(Rs) end,
    kv("emit_event_bytes", EvBytes),
    kv("emit_events", N1),
    [begin
         kv("emit_" ++ P ++ "_e2e_events_per_sec", Max(e2e, Rs)),
         kv("emit_" ++ P ++ "_producer_events_per_sec", Max(prod, Rs)),
         kv("emit_" ++ P ++ "_producer_cpu_us_per_event", Mean(cpu, Rs)),
         kv("emit_" ++ P ++ "_min_received", Min(final, Rs)),
         kv("emit_" ++ P ++ "_max_received", Max(final, Rs)),
         kv("emit_" ++ P ++ "_drain_ms", Min(drain_ms, Rs)),
         kv("emit_" ++ P ++ "_receiver_cpu_pct", Mean(rcpu_pct, Rs)),
         kv("emit_" ++ P ++ "_receiver_cpu_us_per_event", Mean(rcpu, Rs))
     end || {P, Rs} <- [{"c", [C1, C2]}, {"beam", [B1, B2]}]],
    kv("emit_c_producer_no_emitters", Max(no_emitters, [C1, C2])),
    kv("emit_ratio_e2e", Max(e2e, [C1, C2]) / Max(e2e, [B1, B2])),
    kv("emit_ratio_producer", Max(prod, [C1, C2]) / Max(prod, [B1, B2])),

    %% 2. shim broadcast/3 vs the seed's algorithm, same process, same node;
    %%    two rounds each (shim, seed, seed, shim), best rate, mean CPU
    N2 = 200000,
    Rounds = in_process(
               fun() ->
                       [{K, begin
                                reset(EmiCtl),
                                M = cpu_mark([DrvOs], ClkTck),
                                R = case K of
                                        shim -> shim_run(bench, <<"sub">>, Event, N2);
                                        seed -> seed_run(bench, <<"sub">>, Event, N2)
                                    end,
                                {Got, Final, Last} = wait_for(EmiCtl, N2),
                                {_, [Cpu]} = cpu_since(M, [DrvOs], ClkTck),
                                R#{got => Got, final => Final, last => Last, cpu => Cpu / N2}
                            end} || K <- [shim, seed, seed, shim]]
               end),
    Best = fun(K) ->
                   Rs = [{rate(maps:get(got, R), maps:get(last, R) - maps:get(t0, R)),
                          rate(N2, maps:get(t1, R) - maps:get(t0, R)), maps:get(final, R),
                          maps:get(cpu, R)}
                         || {K1, R} <- Rounds, K1 =:= K],
                   {lists:max([E || {E, _, _, _} <- Rs]), lists:max([P || {_, P, _, _} <- Rs]),
                    lists:min([F || {_, _, F, _} <- Rs]), lists:sum([U || {_, _, _, U} <- Rs]) / length(Rs)}
           end,
    {ShE, ShP, ShF, ShU} = Best(shim), {SeE, SeP, SeF, SeU} = Best(seed),
    kv("shim_caller_node_cpu_us_per_event", ShU), kv("shim_seed_caller_node_cpu_us_per_event", SeU),
    kv("shim_events", N2),
    kv("shim_e2e_events_per_sec", ShE), kv("shim_producer_events_per_sec", ShP),
    kv("shim_min_received", ShF),
    kv("shim_seed_e2e_events_per_sec", SeE), kv("shim_seed_producer_events_per_sec", SeP),
    kv("shim_seed_min_received", SeF),
    kv("shim_ratio_e2e", ShE / SeE), kv("shim_ratio_producer", ShP / SeP),

    %% 3. fan-out of one event to 1,000 subscribers: C emitter vs BEAM emitter
    {ok, Stats0} = gen_server:call({reckon_cnode, CNode}, stats),
    kv("before_fan_cnode_peak_rss_kb", proc_status_kb(CNodeOsPid, "VmHWM")),
    E3 = 300, Subs = 1000, FanGroup = {fan, <<"fan:out">>, subscribers},
    {ok, [FanPid]} = gen_server:call({reckon_cnode, CNode},
                                     {start_emitter_pool, fan, <<"out">>, 1, undefined}),
    wait_members(fun() ->
                         {ok, L} = gen_server:call({reckon_cnode, CNode}, {pg_members, ?SCOPE, FanGroup}),
                         length(L)
                 end, Subs),
    wait_members(fun() -> length(rpc:call(Emi, pg, get_members, [?SCOPE, FanGroup])) end, Subs),
    CFan = {fan_out_emitter, CNode}, BFan = {bench_fan_emitter, Emi},
    true = is_pid(FanPid),
    FanRun = fun(Target, EmitterOs, E) ->
                     reset(SubsCtl),
                     M0 = cpu_mark([EmitterOs, SubOs], ClkTck),
                     T0 = os:system_time(microsecond),
                     [Target ! {broadcast, <<"fan:out">>, Event} || _ <- lists:seq(1, E)],
                     {Got, Final, Last} = wait_for(SubsCtl, E * Subs),
                     {Win, [EmCpu, SubCpu]} = cpu_since(M0, [EmitterOs, SubOs], ClkTck),
                     {rate(Got, Last - T0), Final, EmCpu / (E * Subs),
                      {100 * SubCpu / win(Win, Last), SubCpu / (E * Subs)}}
             end,
    _ = FanRun(CFan, CNodeOsPid, 5), _ = FanRun(BFan, EmiOs, 5),   % warm up both paths
    {FC1, FCF1, FCU1, FCS1} = FanRun(CFan, CNodeOsPid, E3),
    {FB1, FBF1, FBU1, FBS1} = FanRun(BFan, EmiOs, E3),
    {FB2, FBF2, FBU2, FBS2} = FanRun(BFan, EmiOs, E3),
    {FC2, FCF2, FCU2, FCS2} = FanRun(CFan, CNodeOsPid, E3),
    %% rates: the best of two rounds; CPU figures: their mean
    kv("fan_c_emitter_cpu_us_per_delivery", (FCU1 + FCU2) / 2),
    kv("fan_beam_emitter_cpu_us_per_delivery", (FBU1 + FBU2) / 2),
    kv("fan_c_subscriber_node_cpu_pct", (element(1, FCS1) + element(1, FCS2)) / 2),
    kv("fan_beam_subscriber_node_cpu_pct", (element(1, FBS1) + element(1, FBS2)) / 2),
    kv("fan_c_subscriber_node_cpu_us_per_delivery", (element(2, FCS1) + element(2, FCS2)) / 2),
    kv("fan_beam_subscriber_node_cpu_us_per_delivery", (element(2, FBS1) + element(2, FBS2)) / 2),
    kv("fan_subscribers", Subs), kv("fan_events", E3),
    kv("fan_c_deliveries_per_sec", max(FC1, FC2)), kv("fan_c_min_delivered", min(FCF1, FCF2)),
    kv("fan_beam_deliveries_per_sec", max(FB1, FB2)), kv("fan_beam_min_delivered", min(FBF1, FBF2)),
    kv("fan_ratio", max(FC1, FC2) / max(FB1, FB2)),
    %% the same with the application's relay on the subscriber node: the C
    %% emitter sends it one message per event
    Holder = rpc:call(Sub, ?MODULE, relay_holder, []),
    RelayGroup = {'$reckon_cnode', relays},
    wait_members(fun() ->
                         {ok, L} = gen_server:call({reckon_cnode, CNode}, {pg_members, ?SCOPE, RelayGroup}),
                         length(L)
                 end, 1),
    _ = FanRun(CFan, CNodeOsPid, 5),
    {FR1, FRF1, FRU1, FRS1} = FanRun(CFan, CNodeOsPid, E3),
    {FR2, FRF2, FRU2, FRS2} = FanRun(CFan, CNodeOsPid, E3),
    Holder ! stop,
    kv("fan_relay_emitter_cpu_us_per_delivery", (FRU1 + FRU2) / 2),
    kv("fan_relay_subscriber_node_cpu_pct", (element(1, FRS1) + element(1, FRS2)) / 2),
    kv("fan_relay_subscriber_node_cpu_us_per_delivery", (element(2, FRS1) + element(2, FRS2)) / 2),
    kv("fan_relay_deliveries_per_sec", max(FR1, FR2)), kv("fan_relay_min_delivered", min(FRF1, FRF2)),
    kv("fan_relay_ratio", max(FR1, FR2) / max(FB1, FB2)),
    {ok, ok} = gen_server:call({reckon_cnode, CNode}, {stop_emitter_pool, fan, <<"out">>}),
    kv("fan_cnode_peak_rss_kb", proc_status_kb(CNodeOsPid, "VmHWM")),

    %% 4. C emitters (subscriber set) receiving one BEAM process's broadcast
    %%    at its maximum rate for 5 s: the C node's CPU over that window
    [SinkPid] = ctl(SinkCtl, {pids, self()}),
    {ok, CPool} = gen_server:call({reckon_cnode, CNode},
                                  {start_emitter_pool, cbench, <<"sub">>, 4, SinkPid}),
    4 = length(CPool),
    wait_members(fun() -> length(pg:get_members(?SCOPE, {cbench, <<"sub">>, emitters})) end, 4),
    reset(SinkCtl),
    _ = in_process(fun() -> seed_run(cbench, <<"sub">>, Event, 20000) end),  % warm up
    {_, _, _} = wait_for(SinkCtl, 20000),
    reset(SinkCtl),
    Cpu0 = proc_cpu_us(CNodeOsPid, ClkTck),
    M4 = cpu_mark([SubOs, DrvOs], ClkTck),
    R4 = in_process(fun() -> seed_for(cbench, <<"sub">>, Event, 5000) end),
    {Got4, Final4, Last4} = wait_for(SinkCtl, maps:get(n, R4)),
    Cpu1 = proc_cpu_us(CNodeOsPid, ClkTck),
    {Win4, [SubCpu4, DrvCpu4]} = cpu_since(M4, [SubOs, DrvOs], ClkTck),
    kv("crecv_sink_node_cpu_pct", 100 * SubCpu4 / win(Win4, Last4)),
    kv("crecv_producer_node_cpu_pct", 100 * DrvCpu4 / win(Win4, Last4)),
    N4 = maps:get(n, R4), T04 = maps:get(t0, R4), T14 = maps:get(t1, R4),
    kv("crecv_events", N4),
    kv("crecv_producer_events_per_sec", rate(N4, T14 - T04)),
    kv("crecv_sink_received", Final4),
    kv("crecv_sink_e2e_events_per_sec", rate(Got4, Last4 - T04)),
    kv("crecv_sink_lag_ms", (Last4 - T14) / 1000),
    kv("crecv_window_ms", (Last4 - T04) / 1000),
    kv("crecv_cnode_cpu_ms", (Cpu1 - Cpu0) / 1000),
    kv("crecv_cnode_cpu_pct", 100 * (Cpu1 - Cpu0) / max(1, Last4 - T04)),
    %% all of it charged to the producer's seconds: an upper bound
    kv("crecv_cnode_cpu_pct_of_producer_window", 100 * (Cpu1 - Cpu0) / max(1, T14 - T04)),
    kv("crecv_cnode_cpu_us_per_event", (Cpu1 - Cpu0) / max(1, N4)),
    {ok, ok} = gen_server:call({reckon_cnode, CNode}, {stop_emitter_pool, cbench, <<"sub">>}),
    %% the C node's own counters over runs 3 and 4: every event in, every
    %% {events, [E]} out, no error
    {ok, Stats1} = gen_server:call({reckon_cnode, CNode}, stats),
    In = 2 * (5 + 2 * E3) + 20000 + N4,
    kv("cnode_events_in", maps:get(events_in, Stats1) - maps:get(events_in, Stats0)),
    kv("cnode_events_in_expected", In),
    kv("cnode_events_out", maps:get(events_out, Stats1) - maps:get(events_out, Stats0)),
    kv("cnode_events_out_expected", 2 * (5 + 2 * E3) * Subs + 20000 + N4),
    %% `handshake' also counts the C node's reconnect attempts to nodes that
    %% have gone (the cnode_producer runs, earlier bench nodes): reported
    %% apart from the other error counters
    Errs = [{K, V - maps:get(K, maps:get(errors, Stats0))}
            || {K, V} <- maps:to_list(maps:get(errors, Stats1)), K =/= ticks_in],
    kv("cnode_errors", lists:sum([V || {K, V} <- Errs, K =/= handshake])),
    kv("cnode_handshake_errors", proplists:get_value(handshake, Errs, 0)),
    [io:format(standard_error, "C node error counter ~p grew by ~p~n", [K, V])
     || {K, V} <- Errs, V =/= 0, K =/= handshake],
    kv("cnode_peak_rss_kb", proc_status_kb(CNodeOsPid, "VmHWM")),
    ok.

%% The seed's broadcast/3, in full per event.
seed_broadcast(StoreId, SubscriptionId, Event) ->
    Topic = iolist_to_binary(io_lib:format("~s:~s", [StoreId, SubscriptionId])),
    case pg:get_members(?SCOPE, {StoreId, SubscriptionId, emitters}) of
        [] ->
            {error, no_emitters};
        Members ->
            Pid = lists:nth(rand:uniform(length(Members)), Members),
            case node(Pid) =:= node() of
                true -> Pid ! {forward_to_local, Topic, Event};
                false -> Pid ! {broadcast, Topic, Event}
            end,
            ok
    end.

seed_run(S, Sub, Event, N) ->
    T0 = os:system_time(microsecond),
    seed_loop(S, Sub, Event, N),
    #{t0 => T0, t1 => os:system_time(microsecond)}.

seed_loop(_S, _Sub, _Event, 0) -> ok;
seed_loop(S, Sub, Event, I) -> ok = seed_broadcast(S, Sub, Event), seed_loop(S, Sub, Event, I - 1).

shim_run(S, Sub, Event, N) ->
    T0 = os:system_time(microsecond),
    shim_loop(S, Sub, Event, N),
    #{t0 => T0, t1 => os:system_time(microsecond)}.

shim_loop(_S, _Sub, _Event, 0) -> ok;
shim_loop(S, Sub, Event, I) ->
    ok = reckon_cnode_emitter_group:broadcast(S, Sub, Event),
    shim_loop(S, Sub, Event, I - 1).

%% As many seed broadcasts as one process can do in Ms milliseconds.
seed_for(S, Sub, Event, Ms) ->
    T0 = os:system_time(microsecond),
    End = T0 + Ms * 1000,
    N = seed_for_loop(S, Sub, Event, End, 0),
    #{t0 => T0, t1 => os:system_time(microsecond), n => N}.

seed_for_loop(S, Sub, Event, End, N) ->
    seed_loop(S, Sub, Event, 1000),
    case os:system_time(microsecond) >= End of
        true -> N + 1000;
        false -> seed_for_loop(S, Sub, Event, End, N + 1000)
    end.

%% A reckon-db #event{} of the C producer's encoded size (without the
%% version byte), same field values as cnode_producer's.
event(Bytes) ->
    Mk = fun(D) ->
                 {event, <<"0f8fad5b-d9cb-469f-a165-70867728950e">>, <<"order_created">>,
                  <<"order-42">>, 1, binary:copy(<<"x">>, D), #{}, [], 1700000000000,
                  1700000000000000, <<"application/octet-stream">>, <<"application/json">>}
         end,
    Size = fun(D) -> byte_size(term_to_binary(Mk(D))) - 1 end,
    D = max(1, 123 + Bytes - Size(123)),
    Bytes = Size(D),
    Mk(D).

%% Runs F in a fresh process on this node and returns its result.
in_process(F) ->
    {Pid, Ref} = spawn_monitor(fun() -> exit({done, F()}) end),
    receive
        {'DOWN', Ref, process, Pid, {done, R}} -> R;
        {'DOWN', Ref, process, Pid, Other} -> error({run_failed, Other})
    after 120000 -> exit(Pid, kill), error(run_timeout)
    end.

cnode_producer(Path, Args) ->
    Port = open_port({spawn_executable, Path}, [{args, Args}, {line, 1024}, exit_status,
                                               stderr_to_stdout]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    read_producer(Port, OsPid, #{}, erlang:monotonic_time(millisecond) + 120000).

read_producer(Port, OsPid, Acc, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, {eol, Line}}} ->
            case string:split(Line, " ") of
                [K, V] -> read_producer(Port, OsPid, Acc#{K => V}, Deadline);
                _ -> io:format(standard_error, "cnode_producer: ~s~n", [Line]),
                     read_producer(Port, OsPid, Acc, Deadline)
            end;
        {Port, {data, {noeol, _}}} -> read_producer(Port, OsPid, Acc, Deadline);
        {Port, {exit_status, 0}} -> Acc;
        {Port, {exit_status, S}} -> error({cnode_producer_exit, S, Acc})
    after Left ->
            _ = os:cmd("kill " ++ integer_to_list(OsPid)),
            error({cnode_producer_timeout, Acc})
    end.

%% utime + stime of an OS process, in µs.
proc_cpu_us(OsPid, ClkTck) ->
    {ok, Bin} = file:read_file("/proc/" ++ OsPid ++ "/stat"),
    [_, After] = string:split(Bin, ")", trailing),
    Fields = string:lexemes(After, " "),
    %% fields after the comm: 3 state ... 14 utime 15 stime
    UTime = binary_to_integer(lists:nth(14 - 2, Fields)),
    STime = binary_to_integer(lists:nth(15 - 2, Fields)),
    (UTime + STime) * 1000000 div ClkTck.

%% CPU (µs) used by several OS processes since a mark (and the mark's time).
cpu_mark(OsPids, ClkTck) ->
    {os:system_time(microsecond), [proc_cpu_us(P, ClkTck) || P <- OsPids]}.
cpu_since({T0, Cpu0}, OsPids, ClkTck) ->
    Cpu1 = [proc_cpu_us(P, ClkTck) || P <- OsPids],
    {T0, [B - A || {A, B} <- lists:zip(Cpu0, Cpu1)]}.

%% The window of a run: from the mark until the last receipt.
win(T0, Last) -> max(1, Last - T0).

proc_status_kb(OsPid, Key) ->
    {ok, Bin} = file:read_file("/proc/" ++ OsPid ++ "/status"),
    [V] = [binary_to_integer(hd(string:lexemes(Rest, " \tkB")))
           || Line <- string:split(Bin, "\n", all),
              [K, Rest] <- [string:split(Line, ":")], K =:= list_to_binary(Key)],
    V.

wait_members(F, N) -> wait_members(F, N, 300).
wait_members(F, N, 0) -> error({members_not_seen, N, F()});
wait_members(F, N, K) ->
    case F() of
        N -> ok;
        _ -> timer:sleep(50), wait_members(F, N, K - 1)
    end.

rate(N, Us) when Us > 0 -> N * 1000000 / Us;
rate(_, _) -> 0.0.

kv(K, V) when is_integer(V) -> io:format("~s ~p~n", [K, V]);
kv(K, V) when is_float(V) -> io:format("~s ~.3f~n", [K, V]).

num(S) ->
    try list_to_integer(S) catch error:badarg -> list_to_float(S) end.

atom(A) when is_atom(A) -> A;
atom(S) -> list_to_atom(S).
str(A) when is_atom(A) -> atom_to_list(A);
str(S) -> S.
