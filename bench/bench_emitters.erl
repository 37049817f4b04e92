%% Emitter-group benchmarks run by bench/run.sh, each side by side with the
%% BEAM doing the same work in the same run, in R runs a side with the two
%% sides alternating (bench_runs: C, BEAM, BEAM, C, ...), after a warm-up
%% of each side; every run's figures are printed as they are, for the
%% summary's medians and spreads:
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
%%     node `emi'); deliveries/s at the subscribers; then the same with the
%%     application's relay running on node `sub' (the BEAM emitter's runs
%%     are repeated beside the relayed ones);
%%  4. a pool of 4 emitters (subscriber: a counting sink on node `sub')
%%     receiving the seed's broadcast from one BEAM process at its maximum
%%     rate for a few seconds: a C pool on the C node vs a BEAM pool of the
%%     same behaviour on node `emi', the emitter node's CPU over that window.
%%
%% Counting processes keep their last-message time (os:system_time, the
%% same CLOCK_REALTIME as cnode_producer's start_us) and add to a shared
%% counter; a control process per node polls the counter and collects the
%% latest time once everything has arrived. Every wait is bounded.
-module(bench_emitters).
-export([serve_emi/0, serve_sub/0, run/1, relay_holder/0, start_beam_pool/4, stop_beam_pool/2, seed_broadcast/3]).

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
%% and one counting sink (the emitter pools' subscriber in run 4). This
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
%% to stop (the relayed fan-out run). {Holder, Relay}: send Holder stop.
relay_holder() ->
    Self = self(),
    Holder = spawn(fun() ->
                           process_flag(trap_exit, true),
                           {ok, R} = reckon_cnode_relay:start_link(?SCOPE),
                           Self ! {relay, self(), R},
                           receive stop -> exit(R, shutdown), receive {'EXIT', R, _} -> ok end end
                   end),
    receive {relay, Holder, Relay} -> {Holder, Relay}
    after 10000 -> error(relay_not_started)
    end.

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
    R = bench_runs:runs(),
    EmiOs = rpc:call(Emi, os, getpid, []), SubOs = rpc:call(Sub, os, getpid, []),
    DrvOs = os:getpid(),

    %% 1. C producer vs the seed's algorithm on a BEAM node, R runs a side
    %%    alternating, after a short warm-up run of each (whose C run gives
    %%    the event's size)
    N1 = 300000,
    CRun = fun(Tag, N) ->
                   reset(EmiCtl),
                   M0 = cpu_mark([EmiOs], ClkTck),
                   C = cnode_producer(Producer, ["--seed", atom_to_list(Emi), "--cookie", Cookie,
                                                 "--store", "bench", "--sub", "sub",
                                                 "--count", integer_to_list(N), "--bytes", "283",
                                                 "--sname", ProdName ++ "_" ++ Tag]),
                   {Got, Final, Last} = wait_for(EmiCtl, N),
                   {W0, [EmiCpu]} = cpu_since(M0, [EmiOs], ClkTck),
                   Start = num(maps:get("start_us", C)), End = num(maps:get("end_us", C)),
                   Cpu = num(maps:get("cpu_us_per_event", C)),
                   #{e2e => rate(Got, Last - Start), prod => num(maps:get("events_per_sec", C)),
                     cpu => Cpu, final => Final,
                     drain_ms => (Last - End) / 1000,
                     no_emitters => list_to_integer(maps:get("no_emitters", C)),
                     bytes => list_to_integer(maps:get("event_bytes", C)),
                     rcpu_pct => 100 * EmiCpu / win(W0, Last), rcpu => EmiCpu / N,
                     cluster => Cpu + EmiCpu / N}
           end,
    BRun = fun(Event, N) ->
                   reset(EmiCtl),
                   M0 = cpu_mark([EmiOs, DrvOs], ClkTck),
                   #{t0 := T0, t1 := T1} = in_process(fun() -> seed_run(bench, <<"sub">>, Event, N) end),
                   {Got, Final, Last} = wait_for(EmiCtl, N),
                   {W0, [EmiCpu, DrvCpu]} = cpu_since(M0, [EmiOs, DrvOs], ClkTck),
                   #{e2e => rate(Got, Last - T0), prod => rate(N, T1 - T0), cpu => DrvCpu / N,
                     final => Final, drain_ms => (Last - T1) / 1000,
                     rcpu_pct => 100 * EmiCpu / win(W0, Last), rcpu => EmiCpu / N,
                     cluster => (DrvCpu + EmiCpu) / N}
           end,
    W1 = CRun("w", 20000),
    EvBytes = maps:get(bytes, W1),
    Event = event(EvBytes),
    _ = BRun(Event, 20000),
    P1 = bench_runs:alternate(R, fun(c, I) -> CRun(integer_to_list(I), N1);
                                    (beam, _) -> BRun(Event, N1)
                                 end),
    kv("emit_event_bytes", EvBytes),
    kv("emit_events", N1),
    kv("emit_c_producer_no_emitters", lists:max([maps:get(no_emitters, M) || {c, _, M} <- P1])),
    put_runs("emit_", P1, [{e2e, "e2e_ev_s"}, {prod, "producer_ev_s"}, {cpu, "producer_cpu_us"},
                           {rcpu, "receiver_cpu_us"}, {cluster, "cluster_cpu_us"},
                           {rcpu_pct, "receiver_cpu_pct"}, {drain_ms, "drain_ms"},
                           {final, "received"}]),

    %% 2. shim broadcast/3 (c) vs the seed's algorithm (beam), same process,
    %%    same node, R runs a side alternating after a warm-up of each
    N2 = 200000,
    ShimRun = fun(Side, N) ->
                      reset(EmiCtl),
                      M = cpu_mark([DrvOs], ClkTck),
                      #{t0 := T0, t1 := T1} = case Side of
                                                  c -> shim_run(bench, <<"sub">>, Event, N);
                                                  beam -> seed_run(bench, <<"sub">>, Event, N)
                                              end,
                      {Got, Final, Last} = wait_for(EmiCtl, N),
                      {_, [Cpu]} = cpu_since(M, [DrvOs], ClkTck),
                      #{e2e => rate(Got, Last - T0), caller => rate(N, T1 - T0), cpu => Cpu / N,
                        final => Final}
              end,
    P2 = in_process(fun() ->
                            _ = ShimRun(c, 20000), _ = ShimRun(beam, 20000),
                            bench_runs:alternate(R, fun(Side, _) -> ShimRun(Side, N2) end)
                    end),
    kv("shim_events", N2),
    put_runs("shim_", P2, [{e2e, "e2e_ev_s"}, {caller, "caller_ev_s"}, {cpu, "caller_cpu_us"},
                           {final, "received"}]),

    %% 3. fan-out of one event to 1,000 subscribers: C emitter vs BEAM
    %%    emitter, R runs a side alternating; then the same with the
    %%    application's relay on the subscriber node (the C emitter sends it
    %%    one message per event), again alternating with the BEAM emitter
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
                     #{rate => rate(Got, Last - T0), final => Final, emcpu => EmCpu / (E * Subs),
                       subpct => 100 * SubCpu / win(Win, Last), subcpu => SubCpu / (E * Subs)}
             end,
    Fan = fun(c, _) -> FanRun(CFan, CNodeOsPid, E3);
             (beam, _) -> FanRun(BFan, EmiOs, E3)
          end,
    FanKeys = [{rate, "ev_s"}, {emcpu, "emitter_cpu_us"}, {subpct, "sub_cpu_pct"},
               {subcpu, "sub_cpu_us"}, {final, "delivered"}],
    _ = FanRun(CFan, CNodeOsPid, 5), _ = FanRun(BFan, EmiOs, 5),   % warm up both paths
    P3 = bench_runs:alternate(R, Fan),
    kv("fan_subscribers", Subs), kv("fan_events", E3),
    put_runs("fan_", P3, FanKeys),
    %% the C node sees that relay in the group it takes relays from (the
    %% driver node runs one too, as the application does everywhere: it
    %% serves no subscriber)
    {Holder, Relay} = rpc:call(Sub, ?MODULE, relay_holder, []),
    RelayGroup = {'$reckon_cnode', relays, 2},
    wait_members(fun() ->
                         {ok, L} = gen_server:call({reckon_cnode, CNode}, {pg_members, ?SCOPE, RelayGroup}),
                         length([P || P <- L, P =:= Relay])
                 end, 1),
    _ = FanRun(CFan, CNodeOsPid, 5),
    P3R = bench_runs:alternate(R, Fan),
    Holder ! stop,
    put_runs("fanr_", P3R, FanKeys),
    {ok, ok} = gen_server:call({reckon_cnode, CNode}, {stop_emitter_pool, fan, <<"out">>}),
    kv("fan_cnode_peak_rss_kb", proc_status_kb(CNodeOsPid, "VmHWM")),
    CFanEvents = 2 * (5 + R * E3),

    %% 4. a pool of 4 emitters whose subscriber is a sink on node sub,
    %%    receiving one BEAM process's seed broadcasts at its maximum rate
    %%    for LoadMs: the C pool on the C node (c) vs a BEAM pool of the
    %%    same behaviour on node emi (beam), R runs a side alternating; the
    %%    emitter node's CPU over each run
    LoadMs = 5000,
    [SinkPid] = ctl(SinkCtl, {pids, self()}),
    {ok, CPool} = gen_server:call({reckon_cnode, CNode},
                                  {start_emitter_pool, cbench, <<"sub">>, 4, SinkPid}),
    4 = length(CPool),
    ok = rpc:call(Emi, ?MODULE, start_beam_pool, [bbench, <<"sub">>, 4, SinkPid]),
    wait_members(fun() -> length(pg:get_members(?SCOPE, {cbench, <<"sub">>, emitters})) end, 4),
    wait_members(fun() -> length(pg:get_members(?SCOPE, {bbench, <<"sub">>, emitters})) end, 4),
    Warm = fun(Store) ->
                   reset(SinkCtl),
                   _ = in_process(fun() -> seed_run(Store, <<"sub">>, Event, 20000) end),
                   {_, _, _} = wait_for(SinkCtl, 20000)
           end,
    Warm(cbench), Warm(bbench),
    LoadRun = fun(Store, EmOs) ->
                      reset(SinkCtl),
                      M = cpu_mark([EmOs, SubOs, DrvOs], ClkTck),
                      #{n := N, t0 := T0, t1 := T1} =
                          in_process(fun() -> seed_for(Store, <<"sub">>, Event, LoadMs) end),
                      {_Got, Final, Last} = wait_for(SinkCtl, N),
                      {Win, [EmCpu, SubCpu, DrvCpu]} = cpu_since(M, [EmOs, SubOs, DrvOs], ClkTck),
                      #{producer => rate(N, T1 - T0), events => N, received => Final,
                        lag_ms => (Last - T1) / 1000,
                        cpu_pct => 100 * EmCpu / max(1, Last - T0),
                        %% all of it charged to the producer's seconds: an upper bound
                        cpu_pct_pw => 100 * EmCpu / max(1, T1 - T0),
                        cpu_us => EmCpu / max(1, N),
                        prod_pct => 100 * DrvCpu / win(Win, Last),
                        sink_pct => 100 * SubCpu / win(Win, Last)}
              end,
    P4 = bench_runs:alternate(R, fun(c, _) -> LoadRun(cbench, CNodeOsPid);
                                    (beam, _) -> LoadRun(bbench, EmiOs)
                                 end),
    kv("load_window_ms", LoadMs),
    put_runs("load_", P4, [{producer, "producer_ev_s"}, {cpu_us, "emitter_cpu_us"},
                           {cpu_pct, "emitter_cpu_pct"},
                           {cpu_pct_pw, "emitter_cpu_pct_producer_window"},
                           {lag_ms, "lag_ms"}, {prod_pct, "producer_cpu_pct"},
                           {sink_pct, "sink_cpu_pct"}, {events, "events"},
                           {received, "received"}]),
    {ok, ok} = gen_server:call({reckon_cnode, CNode}, {stop_emitter_pool, cbench, <<"sub">>}),
    ok = rpc:call(Emi, ?MODULE, stop_beam_pool, [bbench, <<"sub">>]),
    CLoadEvents = 20000 + lists:sum([maps:get(events, M) || {c, _, M} <- P4]),

    %% the C node's own counters over runs 3 and 4: every event in, every
    %% {events, [E]} out, no error
    {ok, Stats1} = gen_server:call({reckon_cnode, CNode}, stats),
    kv("cnode_events_in", maps:get(events_in, Stats1) - maps:get(events_in, Stats0)),
    kv("cnode_events_in_expected", CFanEvents + CLoadEvents),
    kv("cnode_events_out", maps:get(events_out, Stats1) - maps:get(events_out, Stats0)),
    kv("cnode_events_out_expected", CFanEvents * Subs + CLoadEvents),
    %% `handshake' also counts the C node's reconnect attempts to nodes that
    %% have gone (the cnode_producer runs, earlier bench nodes), and
    %% `cluster_lists_refused' a node list that came after the C node had
    %% asked that node again (the driver node, busy producing at its maximum
    %% rate, can answer late): neither is about events, so both are reported
    %% apart from the other error counters
    Apart = [handshake, cluster_lists_refused],
    Errs = [{K, V - maps:get(K, maps:get(errors, Stats0))}
            || {K, V} <- maps:to_list(maps:get(errors, Stats1)), K =/= ticks_in],
    kv("cnode_errors", lists:sum([V || {K, V} <- Errs, not lists:member(K, Apart)])),
    kv("cnode_handshake_errors", proplists:get_value(handshake, Errs, 0)),
    kv("cnode_cluster_lists_refused", proplists:get_value(cluster_lists_refused, Errs, 0)),
    [io:format(standard_error, "C node error counter ~p grew by ~p~n", [K, V])
     || {K, V} <- Errs, V =/= 0],
    kv("cnode_peak_rss_kb", proc_status_kb(CNodeOsPid, "VmHWM")),
    ok.

%% On node emi: a pool of N BEAM emitters in {Store, Sub, emitters} with the
%% subscriber Sink, as reckon-db's emitter with a subscriber behaves: every
%% {broadcast | forward_to_local, Topic, Event} goes as {events, [Event]}
%% to the subscriber. The BEAM side of run 4.
start_beam_pool(Store, Sub, N, Sink) ->
    Pids = [spawn(fun() -> pool_emitter(Sink) end) || _ <- lists:seq(1, N)],
    ok = pg:join(?SCOPE, {Store, Sub, emitters}, Pids).

stop_beam_pool(Store, Sub) ->
    Pids = pg:get_local_members(?SCOPE, {Store, Sub, emitters}),
    ok = pg:leave(?SCOPE, {Store, Sub, emitters}, Pids),
    [P ! stop || P <- Pids],
    ok.

pool_emitter(Sink) ->
    receive
        {broadcast, _, Event} -> Sink ! {events, [Event]}, pool_emitter(Sink);
        {forward_to_local, _, Event} -> Sink ! {events, [Event]}, pool_emitter(Sink);
        stop -> ok;
        _ -> pool_emitter(Sink)
    end.

%% Each run's figures: Prefix ++ Name, one line per side and run.
put_runs(Prefix, Runs, Keys) ->
    [bench_runs:put(Prefix ++ Name, Side, I, maps:get(K, M))
     || {Side, I, M} <- Runs, {K, Name} <- Keys],
    ok.

%% The seed's broadcast/3, in full per event (bench_pools uses it too).
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

kv(K, V) -> bench_runs:kv(K, V).

num(S) ->
    try list_to_integer(S) catch error:badarg -> list_to_float(S) end.

atom(A) when is_atom(A) -> A;
atom(S) -> list_to_atom(S).
str(A) when is_atom(A) -> atom_to_list(A);
str(S) -> S.
