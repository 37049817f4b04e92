%% Benchmarks run on BEAM nodes by bench/run.sh, side by side with the C node.
%%  - echo server: a plain gen_server on a BEAM node answering {topic, S, Sub}
%%    with the same computation done in Erlang (the BEAM remote-call anchor);
%%  - roundtrip: p50/p99 of the shim's topic/2 through the C node against a
%%    remote gen_server:call to the echo server, in runs of N calls a side
%%    taken in turn (bench_runs), then retrieve_emitters/2 through the shim
%%    against the seed's persistent_term:get, in alternating runs;
%%  - client: the same calls interleaved one by one in a single run, one
%%    figure each (bench/tls.sh);
%%  - naming: ns/op of io_lib:format + list_to_atom and persistent_term:get,
%%    one run (run.sh alternates these runs with bench_naming's).
-module(bench_beam).
-behaviour(gen_server).
-export([start_echo/0, client/1, roundtrip/1, naming/1]).
-export([init/1, handle_call/3, handle_cast/2]).

-define(RETRIEVES, 1000000).

start_echo() ->
    {ok, _} = gen_server:start({local, bench_echo}, ?MODULE, [], []),
    receive stop -> ok end.

init([]) -> {ok, #{}}.
handle_call({topic, S, Sub}, _From, St) ->
    {reply, {ok, iolist_to_binary([atom_to_binary(S, latin1), $:, Sub])}, St}.
handle_cast(_, St) -> {noreply, St}.

client([CNodeA, EchoNodeA, NA]) ->
    N = list_to_integer(str(NA)),
    {Topic, Echo} = calls(atom(CNodeA), atom(EchoNodeA)),
    {TC, TE} = lists:unzip([{time_us(Topic), time_us(Echo)} || _ <- lists:seq(1, N)]),
    {C50, C99} = pct(TC), {E50, E99} = pct(TE),
    io:format("roundtrip_shim_topic_p50_us ~.1f~nroundtrip_shim_topic_p99_us ~.1f~n", [C50, C99]),
    io:format("roundtrip_beam_call_p50_us ~.1f~nroundtrip_beam_call_p99_us ~.1f~n", [E50, E99]),
    io:format("roundtrip_ratio_p50 ~.2f~nroundtrip_ratio_p99 ~.2f~n", [C50 / E50, C99 / E99]),
    {Shim, Pt} = retrieves(),
    {SN, PN} = {ns_per_op(Shim, ?RETRIEVES), ns_per_op(Pt, ?RETRIEVES)},
    io:format("shim_retrieve_emitters_ns ~.1f~nseed_retrieve_emitters_ns ~.1f~n", [SN, PN]),
    ok.

%% R runs of N calls a side (c: the shim's topic/2 through the C node;
%% beam: gen_server:call to the echo server), the two kinds of call taken
%% in turn within a run; each run's p50 and p99 of each side.
roundtrip([CNodeA, EchoNodeA, NA]) ->
    N = list_to_integer(str(NA)),
    {Topic, Echo} = calls(atom(CNodeA), atom(EchoNodeA)),
    R = bench_runs:runs(),
    bench_runs:kv("roundtrip_calls_per_run", N),
    [begin
         {TC, TE} = bench_runs:interleaved(N, fun() -> time_us(Topic) end,
                                           fun() -> time_us(Echo) end),
         [begin
              {P50, P99} = pct(T),
              bench_runs:put("roundtrip_p50_us", S, I, P50),
              bench_runs:put("roundtrip_p99_us", S, I, P99)
          end || {S, T} <- [{c, TC}, {beam, TE}]]
     end || I <- lists:seq(1, R)],
    {Shim, Pt} = retrieves(),
    bench_runs:kv("retrieve_emitters_erl_ops_per_run", ?RETRIEVES),
    [bench_runs:put("retrieve_emitters_erl_ns", S, I, V)
     || {S, I, V} <- bench_runs:alternate(R, fun(c, _) -> ns_per_op(Shim, ?RETRIEVES);
                                               (beam, _) -> ns_per_op(Pt, ?RETRIEVES)
                                            end)],
    ok.

%% The two calls, each path warmed up.
calls(CNode, EchoNode) ->
    ok = application:load(reckon_cnode),
    ok = application:set_env(reckon_cnode, cnode, CNode),
    {ok, _} = application:ensure_all_started(reckon_cnode),
    pong = net_adm:ping(EchoNode),
    Topic = fun() -> reckon_cnode_emitter_group:topic(bench_store, <<"orders">>) end,
    Echo = fun() -> {ok, _} = gen_server:call({bench_echo, EchoNode}, {topic, bench_store, <<"orders">>}) end,
    _ = [{Topic(), Echo()} || _ <- lists:seq(1, 2000)],
    {Topic, Echo}.

%% retrieve_emitters/2 through the shim (this node's copy of the C node's
%% table) vs the seed's persistent_term read, same keys, same loop.
retrieves() ->
    Subs = list_to_tuple([integer_to_binary(K) || K <- lists:seq(1, 1000)]),
    _ = [reckon_cnode_emitter_group:persist_emitters(bench_store, Sub, 4)
         || Sub <- tuple_to_list(Subs)],
    Keys = list_to_tuple([{reckon_db_emitter_group, {bench_store, Sub, emitters}}
                          || Sub <- tuple_to_list(Subs)]),
    _ = [persistent_term:put(K, [a, b, c, d]) || K <- tuple_to_list(Keys)],
    Shim = fun(I) -> reckon_cnode_emitter_group:retrieve_emitters(bench_store,
                                                               element(I rem 1000 + 1, Subs)) end,
    Pt = fun(I) -> persistent_term:get(element(I rem 1000 + 1, Keys)) end,
    [_, _, _, _] = Shim(1),
    {Shim, Pt}.

ns_per_op(F, M) ->
    T0 = erlang:monotonic_time(nanosecond),
    loop(F, M),
    (erlang:monotonic_time(nanosecond) - T0) / M.

%% One run of the BEAM side, numbered Run: "Figure beam Run ns/op" lines.
naming([RunA]) ->
    Run = list_to_integer(str(RunA)),
    N = 200000,
    F = fun(I) -> list_to_atom(lists:flatten(io_lib:format("~s_~s_emitter_~p",
                                                          [reckon_store, <<"orders.created.v1">>, I rem 1000 + 1])))
        end,
    _ = [F(I) || I <- lists:seq(1, 2000)],
    T0 = erlang:monotonic_time(nanosecond),
    loop(F, N),
    T1 = erlang:monotonic_time(nanosecond),
    bench_runs:put("emitter_name_3_ns", beam, Run, (T1 - T0) / N),
    Keys = [{reckon_db_emitter_group, {reckon_store, integer_to_binary(K), emitters}} || K <- lists:seq(1, 1000)],
    _ = [persistent_term:put(K, [a, b, c, d]) || K <- Keys],
    KT = list_to_tuple(Keys),
    M = 2000000,
    G = fun(I) -> persistent_term:get(element(I rem 1000 + 1, KT)) end,
    T2 = erlang:monotonic_time(nanosecond),
    loop(G, M),
    T3 = erlang:monotonic_time(nanosecond),
    bench_runs:put("retrieve_emitters_ns", beam, Run, (T3 - T2) / M),
    ok.

loop(_F, 0) -> ok;
loop(F, I) -> _ = F(I), loop(F, I - 1).

time_us(F) ->
    T0 = erlang:monotonic_time(nanosecond),
    _ = F(),
    (erlang:monotonic_time(nanosecond) - T0) / 1000.

pct(L) ->
    S = lists:sort(L), Len = length(S),
    {lists:nth(max(1, round(Len * 0.50)), S), lists:nth(max(1, round(Len * 0.99)), S)}.

atom(A) when is_atom(A) -> A;
atom(S) -> list_to_atom(S).
str(A) when is_atom(A) -> atom_to_list(A);
str(S) -> S.
