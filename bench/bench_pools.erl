%% reckon-db's load shape, run by bench/pools.sh (make bench-pools): many
%% subscriptions, each its own emitter pool of one emitter with one
%% subscriber process, few events. Each figure side by side with BEAM
%% emitters doing the same work, in one run, the sides alternating
%% (B, C, C, B, B, C, ...):
%%
%%  1. starting N pools from one caller process: BEAM = N emitter processes
%%     started in a loop on one BEAM node, each as reckon-db does it per
%%     subscription (the seed's persist_emitters into persistent_term, a
%%     registered name, pg:join of {Store, Sub, emitters} in reckon_db_pg,
%%     a monitor on its subscriber); C = N reckon_cnode:start_emitter_pool
%%     (Store, Sub, 1, Subscriber) calls from one process of the driver
%%     node, which attaches the shim to the C node (and, when the shim
%%     exports it, one reckon_cnode:start_emitter_pools/1 call; and the same
%%     loop against a C node started with --data-dir);
%%  2. memory per pool: growth of the C node's VmRSS over the N starts,
%%     against the growth of the BEAM emitter node (erlang:memory(total)
%%     and VmRSS). Subscribers live on their own node and count for no side;
%%  3. latency at ~500 events/s to random subscriptions: the driver runs the
%%     seed's broadcast/3 algorithm (its pg view holds both kinds of
%%     emitter), the event carries os:system_time(nanosecond) taken just
%%     before the broadcast, the subscriber takes it again on receipt of
%%     {events, [Event]} (CLOCK_REALTIME: one clock for every OS process of
%%     the host, which erlang:monotonic_time is not: each VM has its own
%%     offset);
%%  4. at 100,000 pools: start time, memory per pool, what a new BEAM node
%%     absorbs when it connects to the node hosting the pools (time until
%%     its reckon_db_pg holds every group, pg table growth, memory growth,
%%     bytes received on the distribution connection) and latency.
%%
%% Correctness is checked, never timings: every start returns one emitter
%% pid, every group is visible with exactly that member, every event
%% reaches its own subscription's subscriber exactly once (and the C node
%% counts exactly that many events in and out). Anything else fails the run.
%%
%% The driver starts every node itself (C nodes with --exit-on-stdin-close,
%% BEAM nodes watching their stdin), so each ends when the driver does;
%% their OS pids go to a file for pools.sh's clean-up. A fresh emitter node
%% (BEAM or C) serves each run.
-module(bench_pools).
-behaviour(gen_server).

-export([run/1, node_main/1, observer_main/1]).
-export([subscribers/1, lat_count/1, lat_results/1, beam_start/4]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(SCOPE, reckon_db_pg).
-define(LAT, bench_pools_lat).

%%%===================================================================
%%% The BEAM emitter: reckon-db's emitter behaviour with a subscriber
%%%===================================================================

init({Store, Sub, Subscriber}) ->
    ok = pg:join(?SCOPE, {Store, Sub, emitters}, self()),
    MRef = erlang:monitor(process, Subscriber),
    {ok, {Store, Sub, Subscriber, MRef}}.

handle_call(_Req, _From, St) -> {reply, {error, unknown_request}, St}.

handle_cast({update_subscriber, New}, {Store, Sub, _Old, MRef}) ->
    erlang:demonitor(MRef, [flush]),
    {noreply, {Store, Sub, New, erlang:monitor(process, New)}};
handle_cast(_Msg, St) -> {noreply, St}.

handle_info({Kind, _Topic, Event}, {_, _, Subscriber, _} = St)
  when Kind =:= broadcast; Kind =:= forward_to_local ->
    Subscriber ! {events, [Event]},
    {noreply, St};
handle_info({events, Events}, {_, _, Subscriber, _} = St) ->
    Subscriber ! {events, Events},
    {noreply, St};
handle_info({'DOWN', MRef, process, _, _}, {Store, Sub, _, MRef} = St) ->
    _ = pg:leave(?SCOPE, {Store, Sub, emitters}, self()),
    {stop, normal, St};
handle_info(_Info, St) -> {noreply, St}.

%% The seed's emitter_name/2 and persist_emitters/3 for a pool of one.
seed_persist_emitters(Store, Sub) ->
    Names = [list_to_atom(lists:flatten(io_lib:format("~s_~s_emitter", [Store, Sub])))],
    persistent_term:put({reckon_db_emitter_group, {Store, Sub, emitters}}, Names),
    Names.

%% On a BEAM emitter node: N pools started from one fresh process, after
%% one pool started and stopped (as the C side's warm-up). Returns the
%% time and the node's growth (erlang:memory(total) and VmRSS).
beam_start(Store, N, SubNode, Probe) ->
    Subs = erpc:call(SubNode, ?MODULE, subscribers, [N]),
    [PName] = seed_persist_emitters(bench_probe, <<"probe">>),
    {ok, PPid} = gen_server:start({local, PName}, ?MODULE, {bench_probe, <<"probe">>, Probe}, []),
    ok = gen_server:stop(PPid),
    timer:sleep(100),
    OsPid = os:getpid(),
    M0 = erlang:memory(total), R0 = proc_status_kb(OsPid, "VmRSS"),
    Us = in_process(fun() ->
                            T0 = erlang:monotonic_time(microsecond),
                            ok = beam_loop(Store, Subs, 1, N),
                            erlang:monotonic_time(microsecond) - T0
                    end),
    timer:sleep(100),
    M1 = erlang:memory(total), R1 = proc_status_kb(OsPid, "VmRSS"),
    %% the pids, for the driver's checks, once the node has been read
    Pids = [whereis(hd(persistent_term:get({reckon_db_emitter_group, {Store, sub_id(I), emitters}})))
            || I <- lists:seq(1, N)],
    true = lists:all(fun is_pid/1, Pids),
    #{us => Us, mem => M1 - M0, rss => (R1 - R0) * 1024, pids => Pids}.

beam_loop(_Store, _Subs, I, N) when I > N -> ok;
beam_loop(Store, Subs, I, N) ->
    Sub = sub_id(I),
    [Name] = seed_persist_emitters(Store, Sub),
    {ok, _} = gen_server:start({local, Name}, ?MODULE, {Store, Sub, element(I, Subs)}, []),
    beam_loop(Store, Subs, I + 1, N).

sub_id(I) -> <<"sub-", (integer_to_binary(I))/binary>>.

%%%===================================================================
%%% Nodes the driver starts
%%%===================================================================

%% -run bench_pools node_main emi|sub: ends when stdin does (the driver's
%% port closed or the driver gone).
node_main([Role]) ->
    Main = self(),
    spawn(fun() -> stdin_watch(Main) end),
    case Role of
        "emi" -> {ok, _} = pg:start(?SCOPE);
        "sub" -> ?LAT = ets:new(?LAT, [public, named_table, set, {write_concurrency, true}])
    end,
    register(bench_pools_node, self()),
    receive stop -> halt(0) end.

stdin_watch(Main) ->
    case io:get_line('') of
        eof -> Main ! stop, halt(0);
        {error, _} -> halt(0);
        _ -> stdin_watch(Main)
    end.

%% On the subscriber node: the first N subscribers (made once, kept).
subscribers(N) ->
    Have = persistent_term:get(bench_pools_subs, {}),
    case tuple_size(Have) >= N of
        true ->
            list_to_tuple(lists:sublist(tuple_to_list(Have), N));
        false ->
            New = [spawn(fun() -> sub_loop(I) end) || I <- lists:seq(tuple_size(Have) + 1, N)],
            All = list_to_tuple(tuple_to_list(Have) ++ New),
            persistent_term:put(bench_pools_subs, All),
            All
    end.

sub_loop(I) ->
    receive
        {events, Events} ->
            Now = os:system_time(nanosecond),
            [sub_record(I, Now, E) || E <- Events],
            sub_loop(I);
        _ ->
            sub_loop(I)
    end.

%% {Run, Seq} -> {Key, Count, LatencyNs of the first receipt}.
sub_record(I, Now, {event, _, _, _, Seq, _, #{run := Run, sub := J}, _, T0, _, _, _}) ->
    case J of
        I -> ets:update_counter(?LAT, {Run, Seq}, {2, 1}, {{Run, Seq}, 0, Now - T0});
        _ -> ets:update_counter(?LAT, {Run, wrong}, {2, 1}, {{Run, wrong}, 0, 0})
    end;
sub_record(_I, _Now, _Other) ->
    ets:update_counter(?LAT, stray, {2, 1}, {stray, 0, 0}).

lat_count(Run) ->
    ets:select_count(?LAT, [{{{Run, '$1'}, '_', '_'}, [{is_integer, '$1'}], [true]}]).

%% {[{Seq, Count, LatNs}], WrongSubscriber, Stray}; the run's rows go.
lat_results(Run) ->
    Rows = ets:select(?LAT, [{{{Run, '$1'}, '$2', '$3'}, [{is_integer, '$1'}], [{{'$1', '$2', '$3'}}]}]),
    Wrong = case ets:lookup(?LAT, {Run, wrong}) of [{_, W, _}] -> W; [] -> 0 end,
    Stray = case ets:lookup(?LAT, stray) of [{_, S, _}] -> S; [] -> 0 end,
    ets:match_delete(?LAT, {{Run, '_'}, '_', '_'}),
    {Rows, Wrong, Stray}.

%% -run bench_pools observer_main Target N: a fresh BEAM node with the
%% reckon_db_pg scope connects to Target, which hosts N pools, and prints
%% (as "kv Key Value" lines) how long until its scope holds all N groups
%% and what it took in.
observer_main([TargetS, NS]) ->
    Target = list_to_atom(TargetS), N = list_to_integer(NS),
    Main = self(),
    spawn(fun() -> stdin_watch(Main) end),
    {ok, _} = pg:start(?SCOPE),
    W = erlang:system_info(wordsize),
    false = lists:member(Target, nodes(connected)),
    0 = ets:info(?SCOPE, size),
    timer:sleep(200),
    gc_all(),
    M0 = erlang:memory(total), E0 = ets:info(?SCOPE, memory),
    T0 = erlang:monotonic_time(microsecond),
    true = net_kernel:connect_node(Target),
    Deadline = T0 + 120000000,
    Got = poll_size(N, Deadline),
    T1 = erlang:monotonic_time(microsecond),
    timer:sleep(200),
    gc_all(),
    M1 = erlang:memory(total), E1 = ets:info(?SCOPE, memory),
    Wire = case [C || {Nd, C} <- erlang:system_info(dist_ctrl), Nd =:= Target] of
               [Ctrl] when is_port(Ctrl) ->
                   {ok, [{recv_oct, B}]} = inet:getstat(Ctrl, [recv_oct]), B;
               _ -> -1
           end,
    Groups = length(pg:which_groups(?SCOPE)),
    Members = lists:sum([length(pg:get_members(?SCOPE, G)) || G <- pg:which_groups(?SCOPE)]),
    io:format("kv groups ~p~nkv members ~p~nkv polled ~p~nkv us ~p~nkv mem ~p~nkv ets ~p~n"
              "kv wire ~p~nkv nodes ~p~n",
              [Groups, Members, Got, T1 - T0, M1 - M0, (E1 - E0) * W, Wire,
               length(nodes(connected))]),
    halt(0).

poll_size(N, Deadline) ->
    case ets:info(?SCOPE, size) of
        S when S >= N -> S;
        S ->
            case erlang:monotonic_time(microsecond) > Deadline of
                true -> S;
                false -> timer:sleep(1), poll_size(N, Deadline)
            end
    end.

%%%===================================================================
%%% Driver
%%%===================================================================

run([CNodeBin, Cookie, Tag, Out, Ebin, DataBase, PidFile | Counts]) ->
    [N, Big, Reps, BigReps, Events, Rate] = [list_to_integer(C) || C <- Counts],
    Host = lists:last(string:split(atom_to_list(node()), "@")),
    Ctx0 = #{cnode_bin => CNodeBin, cookie => Cookie, tag => Tag, out => Out, ebin => Ebin,
             data => DataBase, pidfile => PidFile, host => Host, seq => counters:new(1, []),
             events => Events, rate => Rate},
    {ok, _} = pg:start(?SCOPE),
    ok = application:load(reckon_cnode),
    ok = application:set_env(reckon_cnode, call_timeout, 120000),
    {module, reckon_cnode} = code:ensure_loaded(reckon_cnode),
    Batch = erlang:function_exported(reckon_cnode, start_emitter_pools, 1),
    kv("batch_exported", if Batch -> 1; true -> 0 end),
    kv("pools", N), kv("big_pools", Big), kv("reps", Reps), kv("big_reps", BigReps),
    kv("lat_events", Events), kv("lat_rate", Rate),
    {_, Sub} = SubChild = start_beam(Ctx0, "sub"),
    Ctx = Ctx0#{sub => Sub, subs => erpc:call(Sub, ?MODULE, subscribers, [Big], infinity),
                probe => erpc:call(Sub, erlang, spawn, [timer, sleep, [infinity]])},
    %% 1-3 at N pools: each round B, C, [C batch,] C --data-dir, [C batch
    %% --data-dir,] then the
    %% same backwards
    Kinds = [b, c] ++ [x || Batch] ++ [d] ++ [y || Batch],
    Order = lists:append([case R rem 2 of 1 -> Kinds; 0 -> lists:reverse(Kinds) end
                          || R <- lists:seq(1, Reps)]),
    Small = [{K, rep(Ctx, K, N, K =:= b orelse K =:= c, false)} || K <- Order],
    %% 4 at Big pools: B, C, C, B, B, C
    BigKind = case Batch of true -> x; false -> c end,
    BigOrder = lists:append([case R rem 2 of 1 -> [b, BigKind]; 0 -> [BigKind, b] end
                             || R <- lists:seq(1, BigReps)]),
    Large = [{K, rep(Ctx, K, Big, true, true)} || K <- BigOrder],
    report("s", Small, N),
    report("l", Large, Big),
    kv("starts_ok", lists:sum([maps:get(n, R) || {_, R} <- Small ++ Large])),
    kv("events_once", lists:sum([maps:get(events, R, 0) || {_, R} <- Small ++ Large])),
    kv("lat_runs", length([R || {_, R} <- Small ++ Large, maps:is_key(p50, R)])),
    kv("cnode_errors", lists:sum([maps:get(cerrors, R, 0) || {_, R} <- Small ++ Large])),
    ok = stop_node(SubChild),
    ok.

%% One run of one kind: a fresh emitter node, N pools started and
%% measured, then (Lat) a latency run and (Obs) a new node absorbing them.
rep(Ctx, b, N, Lat, Obs) ->
    #{sub := Sub, probe := Probe} = Ctx,
    {_, Emi} = EmiChild = start_beam(Ctx, "emi"),
    pong = erpc:call(Emi, net_adm, ping, [Sub]),
    gc_all(),
    D0 = erlang:memory(total),
    R = erpc:call(Emi, ?MODULE, beam_start, [pools_b, N, Sub, Probe], infinity),
    Pids = maps:get(pids, R),
    ok = check_visible(pools_b, Pids),
    gc_all(),
    D1 = erlang:memory(total),
    Res = maps:remove(pids, R#{n => N, drv => D1 - D0 - words(Pids)}),
    Res1 = observe(Ctx, Obs, atom_to_list(Emi), N, Res),
    Res2 = latency(Ctx, Lat, pools_b, N, Res1),
    ok = stop_node(EmiChild),
    ok = wait_gone(pools_b),
    progress(b, N, Res2),
    Res2;
rep(Ctx, Kind, N, Lat, Obs) ->
    #{sub := Sub, subs := Subs, probe := Probe} = Ctx,
    Store = case Kind of c -> pools_c; x -> pools_x; d -> pools_d; y -> pools_y end,
    Extra = case Kind of
                _ when Kind =:= d; Kind =:= y -> Dir = filename:join(maps:get(data, Ctx), "d" ++ integer_to_list(next(Ctx))),
                     ok = file:make_dir(Dir),
                     ["--data-dir", Dir];
                _ -> []
            end,
    {_, CNode} = C = start_cnode(Ctx, Extra),
    COs = os_pid(C),
    pong = erpc:call(Sub, net_adm, ping, [CNode]),
    ok = application:set_env(reckon_cnode, cnode, CNode),
    {ok, _} = application:ensure_all_started(reckon_cnode),
    %% warm-up, as on the BEAM side: one pool started and stopped, which
    %% also proves the scopes have met
    {ok, [_]} = reckon_cnode:start_emitter_pool(bench_probe, <<"probe">>, 1, Probe),
    ok = reckon_cnode:stop_emitter_pool(bench_probe, <<"probe">>),
    ok = wait_gone(bench_probe),
    timer:sleep(100),
    gc_all(),
    R0 = proc_status_kb(COs, "VmRSS"), D0 = erlang:memory(total),
    {Us, Pids} = in_process(
                   fun() ->
                           T0 = erlang:monotonic_time(microsecond),
                           Ps = c_start(Kind, Store, Subs, N),
                           {erlang:monotonic_time(microsecond) - T0, Ps}
                   end),
    timer:sleep(100),
    R1 = proc_status_kb(COs, "VmRSS"),
    [CNode] = lists:usort([node(P) || P <- Pids]),
    ok = check_visible(Store, Pids),
    gc_all(),
    D1 = erlang:memory(total),
    Res = #{us => Us, rss => (R1 - R0) * 1024, n => N, drv => D1 - D0 - words(Pids)},
    Res1 = observe(Ctx, Obs, atom_to_list(CNode), N, Res),
    {ok, S0} = gen_server:call({reckon_cnode, CNode}, stats),
    Res2 = latency(Ctx, Lat, Store, N, Res1),
    {ok, S1} = gen_server:call({reckon_cnode, CNode}, stats),
    Sent = maps:get(events, Res2, 0) - maps:get(events, Res1, 0),
    check(maps:get(events_in, S1) - maps:get(events_in, S0) =:= Sent, {cnode_events_in, S0, S1, Sent}),
    check(maps:get(events_out, S1) - maps:get(events_out, S0) =:= Sent, {cnode_events_out, S0, S1, Sent}),
    Errs = [{K, V - maps:get(K, maps:get(errors, S0))}
            || {K, V} <- maps:to_list(maps:get(errors, S1)), K =/= handshake],
    [io:format(standard_error, "C node error counter ~p grew by ~p~n", [K, V]) || {K, V} <- Errs, V =/= 0],
    ok = application:stop(reckon_cnode),
    ok = stop_node(C),
    ok = wait_gone(Store),
    Res3 = Res2#{cerrors => lists:sum([V || {_, V} <- Errs])},
    progress(Kind, N, Res3),
    Res3.

c_start(y, Store, Subs, N) ->
    c_start(x, Store, Subs, N);
c_start(x, Store, Subs, N) ->
    Reqs = [{Store, sub_id(I), 1, element(I, Subs)} || I <- lists:seq(1, N)],
    Results = case reckon_cnode:start_emitter_pools(Reqs) of
                  {ok, L} when is_list(L) -> L;
                  L when is_list(L) -> L;
                  Other -> error({start_emitter_pools, Other})
              end,
    N = length(Results),
    [case Res of
         {ok, [P]} when is_pid(P) -> P;
         _ -> error({start_emitter_pools, I, Res})
     end || {I, Res} <- lists:zip(lists:seq(1, N), Results)];
c_start(_, Store, Subs, N) ->
    c_loop(Store, Subs, 1, N, []).

c_loop(_Store, _Subs, I, N, Acc) when I > N -> lists:reverse(Acc);
c_loop(Store, Subs, I, N, Acc) ->
    case reckon_cnode:start_emitter_pool(Store, sub_id(I), 1, element(I, Subs)) of
        {ok, [P]} when is_pid(P) -> c_loop(Store, Subs, I + 1, N, [P | Acc]);
        Other -> error({start_emitter_pool, I, Other})
    end.

%% Every pool's group, in the driver's pg view, holds exactly its emitter.
check_visible(Store, Pids) ->
    Deadline = erlang:monotonic_time(millisecond) + 120000,
    check_visible(Store, list_to_tuple(Pids), Deadline).

check_visible(Store, Pids, Deadline) ->
    Bad = [I || I <- lists:seq(1, tuple_size(Pids)),
                pg:get_members(?SCOPE, {Store, sub_id(I), emitters}) =/= [element(I, Pids)]],
    case Bad of
        [] -> ok;
        [I | _] ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> error({not_visible, Store, length(Bad), I,
                               pg:get_members(?SCOPE, {Store, sub_id(I), emitters})});
                false -> timer:sleep(100), check_visible(Store, Pids, Deadline)
            end
    end.

%% Until the driver's pg view has no group of Store left.
wait_gone(Store) ->
    wait_until(fun() -> [] =:= [G || {S, _, emitters} = G <- pg:which_groups(?SCOPE), S =:= Store] end,
               120000, {groups_left, Store}).

observe(_Ctx, false, _Target, _N, Res) -> Res;
observe(Ctx, true, Target, N, Res) ->
    O = start_os(Ctx, "obs", os:find_executable("erl"),
                 beam_args(Ctx, "obs") ++ ["-connect_all", "false",
                                           "-run", ?MODULE_STRING, "observer_main", Target,
                                           integer_to_list(N)]),
    KV = os_wait(O, 180000),
    Get = fun(K) -> list_to_integer(maps:get(K, KV)) end,
    check(Get("groups") =:= N andalso Get("members") =:= N, {observer_view, KV}),
    Res#{obs_us => Get("us"), obs_mem => Get("mem"), obs_ets => Get("ets"),
         obs_wire => Get("wire"), obs_nodes => Get("nodes")}.

%% Events/s at ~Rate to random subscriptions, through the seed's
%% broadcast algorithm on this node; latency from just before the
%% broadcast to the subscriber's receipt.
latency(_Ctx, false, _Store, _N, Res) -> Res;
latency(Ctx, true, Store, N, Res) ->
    #{sub := Sub, events := E, rate := Rate} = Ctx,
    Run = next(Ctx),
    Iv = 1000000 div Rate,
    {SendUs, Fails} = in_process(fun() ->
                                         T0 = erlang:monotonic_time(microsecond),
                                         F = produce(Store, N, Run, E, Iv, T0, 1, 0),
                                         {erlang:monotonic_time(microsecond) - T0, F}
                                 end),
    check(Fails =:= 0, {no_emitters, Store, Fails}),
    wait_until(fun() -> erpc:call(Sub, ?MODULE, lat_count, [Run]) >= E end, 60000,
               {events_not_delivered, Store, E}),
    timer:sleep(200),
    {Rows, Wrong, Stray} = erpc:call(Sub, ?MODULE, lat_results, [Run], 60000),
    Once = [S || {S, 1, _} <- Rows],
    check(Wrong =:= 0 andalso Stray =:= 0 andalso length(Rows) =:= E andalso
              lists:sort(Once) =:= lists:seq(1, E),
          {delivery, Store, #{rows => length(Rows), once => length(Once), wrong => Wrong,
                              stray => Stray}}),
    Lats = lists:sort([L / 1000 || {_, _, L} <- Rows]),
    check(hd(Lats) > 0, {negative_latency, hd(Lats)}),
    Res#{p50 => pct(Lats, 0.50), p99 => pct(Lats, 0.99), events => E,
         rate => E * 1000000 / SendUs}.

produce(_Store, _N, _Run, E, _Iv, _T0, K, F) when K > E -> F;
produce(Store, N, Run, E, Iv, T0, K, F) ->
    Wait = (T0 + K * Iv - erlang:monotonic_time(microsecond)) div 1000,
    if Wait > 0 -> receive after Wait -> ok end; true -> ok end,
    I = rand:uniform(N),
    Sub = sub_id(I),
    Now = os:system_time(nanosecond),
    Ev = {event, <<"bench-event">>, <<"order_created">>, Sub, K, binary:copy(<<"x">>, 128),
          #{run => Run, sub => I}, [], Now, Now div 1000, <<"application/octet-stream">>,
          <<"application/json">>},
    F1 = case bench_emitters:seed_broadcast(Store, Sub, Ev) of
             ok -> F;
             {error, no_emitters} -> F + 1
         end,
    produce(Store, N, Run, E, Iv, T0, K + 1, F1).


%%%===================================================================
%%% Results
%%%===================================================================

progress(Kind, N, R) ->
    io:format(standard_error, "run ~s ~p: ~s~n",
              [Kind, N, lists:join(" ", [io_lib:format("~s=~p", [K, V])
                                        || {K, V} <- lists:sort(maps:to_list(R))])]).

%% Per kind: every run's figures ("run" lines), then median, min, max.
report(P, Runs, N) ->
    [begin
         Rs = [R || {K1, R} <- Runs, K1 =:= K],
         [io:format("run ~s_~s ~s~n", [P, K, lists:join(" ", [io_lib:format("~s=~p", [F, V])
                                                             || {F, V} <- lists:sort(maps:to_list(R))])])
          || R <- Rs],
         Stat = fun(Name, F) ->
                        case [F(R) || R <- Rs, F(R) =/= undefined] of
                            [] -> ok;
                            Vs -> stats(P ++ "_" ++ atom_to_list(K) ++ "_" ++ Name, Vs)
                        end
                end,
         Stat("ms", fun(R) -> maps:get(us, R) / 1000 end),
         Stat("rss_per_pool", fun(R) -> maps:get(rss, R) / N end),
         Stat("mem_per_pool", fun(R) -> div_or(maps:get(mem, R, undefined), N) end),
         Stat("drv_per_pool", fun(R) -> maps:get(drv, R) / N end),
         Stat("p50_us", fun(R) -> maps:get(p50, R, undefined) end),
         Stat("p99_us", fun(R) -> maps:get(p99, R, undefined) end),
         Stat("rate", fun(R) -> maps:get(rate, R, undefined) end),
         Stat("obs_ms", fun(R) -> div_or(maps:get(obs_us, R, undefined), 1000) end),
         Stat("obs_mem_per_group", fun(R) -> div_or(maps:get(obs_mem, R, undefined), N) end),
         Stat("obs_ets_per_group", fun(R) -> div_or(maps:get(obs_ets, R, undefined), N) end),
         Stat("obs_wire_per_group", fun(R) -> div_or(maps:get(obs_wire, R, undefined), N) end),
         Stat("obs_nodes", fun(R) -> maps:get(obs_nodes, R, undefined) end),
         kv(P ++ "_" ++ atom_to_list(K) ++ "_runs", length(Rs))
     end || K <- lists:usort([K || {K, _} <- Runs])],
    ok.

div_or(undefined, _) -> undefined;
div_or(V, D) -> V / D.

stats(Key, Vs) ->
    S = lists:sort(Vs), L = length(S),
    Med = case L rem 2 of
              1 -> lists:nth(L div 2 + 1, S);
              0 -> (lists:nth(L div 2, S) + lists:nth(L div 2 + 1, S)) / 2
          end,
    kv(Key, Med), kv(Key ++ "_min", hd(S)), kv(Key ++ "_max", lists:last(S)).

pct(Sorted, P) ->
    lists:nth(max(1, round(length(Sorted) * P)), Sorted).

kv(K, V) when is_integer(V) -> io:format("~s ~p~n", [K, V]);
kv(K, V) when is_float(V) -> io:format("~s ~.3f~n", [K, V]).

check(true, _) -> ok;
check(false, What) -> error({check_failed, What}).

%%%===================================================================
%%% OS processes of this run
%%%===================================================================

next(#{seq := Seq}) -> counters:add(Seq, 1, 1), counters:get(Seq, 1).

beam_args(#{cookie := Cookie, out := Out, ebin := Ebin, tag := Tag} = Ctx, Role) ->
    Name = Role ++ integer_to_list(next(Ctx)) ++ "_" ++ Tag,
    ["-sname", Name, "-setcookie", Cookie, "-noshell", "-pa", Out, "-pa", Ebin].

%% A BEAM node running node_main(Role); returns {OsChild, Node} once it
%% answers.
start_beam(Ctx, Role) ->
    Args = beam_args(Ctx, Role),
    Node = list_to_atom(lists:nth(2, Args) ++ "@" ++ maps:get(host, Ctx)),
    O = start_os(Ctx, Role, os:find_executable("erl"),
                 Args ++ ["-run", ?MODULE_STRING, "node_main", Role]),
    wait_until(fun() ->
                       net_adm:ping(Node) =:= pong andalso
                           is_pid(erpc:call(Node, erlang, whereis, [bench_pools_node]))
               end, 60000, {node_not_up, Node}),
    {O, Node}.

start_cnode(#{cnode_bin := Bin, cookie := Cookie, tag := Tag, host := Host} = Ctx, Extra) ->
    Name = "cn" ++ integer_to_list(next(Ctx)) ++ "_" ++ Tag,
    O = start_os(Ctx, "cnode", Bin, ["--sname", Name, "--cookie", Cookie, "--log-level", "warning",
                                     "--exit-on-stdin-close" | Extra]),
    Node = list_to_atom(Name ++ "@" ++ Host),
    %% the C node prints its name once it is reachable
    wait_until(fun() -> lists:member(atom_to_list(Node), os_lines(O)) end, 30000,
               {cnode_not_up, Node}),
    {O, Node}.

os_pid({O, _Node}) -> os_pid(O);
os_pid(O) -> O ! {os_pid, self()}, receive {O, os_pid, P} -> P after 10000 -> error(no_os_pid) end.

os_lines(O) -> O ! {lines, self()}, receive {O, lines, L} -> L after 10000 -> error(no_lines) end.

%% Stops a node the driver started: stdin closed, then its exit awaited
%% (by pid, which stays ours until its parent reaps it).
stop_node({O, _Node}) ->
    OsPid = os_pid(O),
    O ! {stop, self()},
    receive {O, stopped} -> ok after 60000 -> error({no_stop, OsPid}) end,
    case wait_exit(OsPid, 30000) of
        ok -> ok;
        timeout ->
            io:format(standard_error, "OS process ~s still there 30 s after its stdin closed: "
                      "SIGKILL~n", [OsPid]),
            _ = os:cmd("kill -KILL " ++ OsPid),
            ok = wait_exit(OsPid, 10000)
    end.

wait_exit(OsPid, Ms) when Ms =< 0 ->
    case alive(OsPid) of true -> timeout; false -> ok end;
wait_exit(OsPid, Ms) ->
    case alive(OsPid) of
        true -> timer:sleep(20), wait_exit(OsPid, Ms - 20);
        false -> ok
    end.

alive(OsPid) ->
    case file:read_file("/proc/" ++ OsPid ++ "/stat") of
        {ok, Bin} ->
            [_, After] = string:split(Bin, ")", trailing),
            %% a zombie has ended
            hd(string:lexemes(After, " ")) =/= <<"Z">>;
        {error, _} -> false
    end.

%% An OS process whose stdout and stderr go to Out/<Role>-<pid>.log; its
%% pid is added to the pid file pools.sh cleans up with.
start_os(#{out := Out, pidfile := PidFile}, Role, Exe, Args) ->
    Self = self(),
    O = spawn_link(fun() -> os_owner(Self, Out, Role, PidFile, Exe, Args) end),
    receive {O, started} -> O after 30000 -> error({not_started, Exe}) end.

os_owner(Parent, Out, Role, PidFile, Exe, Args) ->
    Port = open_port({spawn_executable, Exe},
                     [{args, Args}, {line, 16384}, exit_status, use_stdio, stderr_to_stdout]),
    {os_pid, OsPidI} = erlang:port_info(Port, os_pid),
    OsPid = integer_to_list(OsPidI),
    ok = file:write_file(PidFile, [OsPid, "\n"], [append]),
    {ok, Log} = file:open(filename:join(Out, Role ++ "-" ++ OsPid ++ ".log"), [write, raw]),
    Parent ! {self(), started},
    os_loop(Port, OsPid, Log, [], undefined, undefined).

os_loop(Port, OsPid, Log, Lines, Exit, Waiter) ->
    receive
        {Port, {data, {eol, L}}} ->
            ok = file:write(Log, [L, "\n"]),
            os_loop(Port, OsPid, Log, [L | Lines], Exit, Waiter);
        {Port, {data, {noeol, L}}} ->
            ok = file:write(Log, L),
            os_loop(Port, OsPid, Log, Lines, Exit, Waiter);
        {Port, {exit_status, S}} ->
            os_exited(OsPid, Log, Lines, S, Waiter),
            os_loop(Port, OsPid, Log, Lines, S, Waiter);
        {os_pid, From} ->
            From ! {self(), os_pid, OsPid},
            os_loop(Port, OsPid, Log, Lines, Exit, Waiter);
        {lines, From} ->
            From ! {self(), lines, lists:reverse(Lines)},
            os_loop(Port, OsPid, Log, Lines, Exit, Waiter);
        {wait, From} ->
            os_exited(OsPid, Log, Lines, Exit, From),
            os_loop(Port, OsPid, Log, Lines, Exit, From);
        {stop, From} ->
            catch port_close(Port),
            ok = file:close(Log),
            From ! {self(), stopped}
    end.

os_exited(_OsPid, _Log, _Lines, undefined, _Waiter) -> ok;
os_exited(_OsPid, _Log, _Lines, _Exit, undefined) -> ok;
os_exited(_OsPid, Log, Lines, Exit, Waiter) ->
    _ = file:close(Log),
    Waiter ! {self(), exited, Exit, lists:reverse(Lines)},
    exit(normal).

%% Waits for a child that ends by itself; its "kv Key Value" lines.
os_wait(O, Ms) ->
    O ! {wait, self()},
    receive
        {O, exited, 0, Lines} ->
            maps:from_list([{K, V} || L <- Lines, ["kv", K, V] <- [string:lexemes(L, " ")]]);
        {O, exited, S, Lines} ->
            error({child_failed, S, Lines})
    after Ms ->
            error({child_timeout, os_pid(O)})
    end.

%%%===================================================================
%%% Helpers
%%%===================================================================

%% Bytes of a term on this node's heap: the driver's own list of the
%% pids it checks is no part of what a pool costs it.
words(T) -> erts_debug:flat_size(T) * erlang:system_info(wordsize).

%% Garbage of this node's processes out of a memory reading (the driver's
%% and the observer's; never the emitter node's, whose emitters are read
%% as they are).
gc_all() ->
    _ = [erlang:garbage_collect(P) || P <- processes()],
    ok.

in_process(F) ->
    {Pid, Ref} = spawn_monitor(fun() -> exit({done, F()}) end),
    receive
        {'DOWN', Ref, process, Pid, {done, R}} -> R;
        {'DOWN', Ref, process, Pid, Other} -> error({run_failed, Other})
    end.

wait_until(F, Ms, What) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    wait_until_(F, Deadline, What).

wait_until_(F, Deadline, What) ->
    case (try F() catch _:_ -> false end) of
        true -> ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> error({timeout, What});
                false -> timer:sleep(50), wait_until_(F, Deadline, What)
            end
    end.

proc_status_kb(OsPid, Key) ->
    {ok, Bin} = file:read_file("/proc/" ++ OsPid ++ "/status"),
    [V] = [binary_to_integer(hd(string:lexemes(Rest, " \tkB")))
           || Line <- string:split(Bin, "\n", all),
              [K, Rest] <- [string:split(Line, ":")], K =:= list_to_binary(Key)],
    V.
