%% Repeated runs and their summary, for make bench (bench/run.sh).
%%
%% Every side-by-side figure is measured in R runs a side (BENCH_RUNS,
%% default 5), the two sides alternating within one run of the script:
%% C, BEAM, BEAM, C, C, BEAM, ... so that a change in the machine's load
%% falls on both sides alike. Run I of one side and run I of the other are a
%% pair (next to each other in time). Latencies of short operations (the
%% call round trip, pg join visibility) alternate operation by operation
%% within each run instead (interleaved/3).
%%
%% Each measurement is one line "Figure Side Run Value" (Side: c or beam)
%% in bench/out/*.txt, where a reader can check it; constants and counters
%% are "Key Value" lines. summary/1 reads those files and prints, for each
%% figure, the median [min-max] of each side's runs and the median
%% [min-max] of the per-pair ratios. Timings never fail the run; a missing
%% figure prints as n/a.
-module(bench_runs).
-export([runs/0, alternate/2, interleaved/3, put/4, kv/2, summary/1]).

%% How many runs a side.
runs() ->
    case os:getenv("BENCH_RUNS") of
        false -> 5;
        "" -> 5;
        S -> max(1, list_to_integer(S))
    end.

%% F(Side, I) for I in 1..R, C first in odd runs and BEAM first in even
%% ones; [{Side, I, Result}] in the order run.
alternate(R, F) ->
    [{Side, I, F(Side, I)} || I <- lists:seq(1, R), Side <- order(I)].

order(I) when I rem 2 =:= 1 -> [c, beam];
order(_) -> [beam, c].

%% For figures made of many short operations (a call, a join): one run
%% times N operations of each side, one of each in turn (C,B, B,C, ...), so
%% that both sides of a run see the same moments of the machine and each
%% operation follows one of the other side, as when they were timed
%% interleaved in a single run. {C times, BEAM times}.
interleaved(N, FC, FB) ->
    lists:unzip([case order(K) of
                     [c, beam] -> TC = FC(), {TC, FB()};
                     [beam, c] -> TB = FB(), {FC(), TB}
                 end || K <- lists:seq(1, N)]).

put(Fig, Side, I, V) when is_integer(V) -> io:format("~s ~s ~b ~b~n", [Fig, Side, I, V]);
put(Fig, Side, I, V) when is_float(V) -> io:format("~s ~s ~b ~.4f~n", [Fig, Side, I, V]).

kv(K, V) when is_integer(V) -> io:format("~s ~b~n", [K, V]);
kv(K, V) when is_float(V) -> io:format("~s ~.4f~n", [K, V]).

%%%===================================================================
%%% Summary
%%%===================================================================

summary(Files) ->
    {Runs, Consts} = lists:foldl(fun read/2, {#{}, #{}}, [str(F) || F <- Files]),
    D = {Runs, Consts},
    R = runs(),
    io:format("each figure: median [min-max] of ~b runs a side, the sides alternating "
              "(C,BEAM, BEAM,C, ...); the ratio: median [min-max] of the ~b per-pair ratios~n",
              [R, R]),
    CB = {"C", "BEAM"},
    %% naming and the C-only micro-benchmarks
    pair(D, "emitter_name/3, ns (BEAM: io_lib:format + list_to_atom)", "emitter_name_3_ns", CB,
         1, faster, "target C <= 300 ns"),
    pair(D, "retrieve_emitters/2, ns (BEAM: persistent_term:get)", "retrieve_emitters_ns", CB,
         1, faster, "target C <= 50 ns"),
    pair(D, "retrieve_emitters/2 from Erlang, ns: shim (local copy of the C node's table) vs seed persistent_term",
         "retrieve_emitters_erl_ns", {"shim", "seed"}, 1, ratio, "target shim <= 1 us"),
    one(D, "pg members look-up, C API, canonical key, ns", "pg_members_ns", 1, "target <= 50 ns"),
    one(D, "pg members look-up, C API, from a raw group term, ns", "pg_members_from_term_ns", 1, ""),
    membership(Consts),
    %% calls and pg
    pair(D, "round trip p50, us: shim topic/2 via the C node vs BEAM remote gen_server:call",
         "roundtrip_p50_us", CB, 1, ratio, "target <= 1.0"),
    pair(D, "round trip p99, us", "roundtrip_p99_us", CB, 1, ratio, ""),
    pair(D, "pg join visible in BEAM pg p50, us: C join vs BEAM join", "pg_join_p50_us", CB, 1,
         ratio, "target <= 1.0"),
    pair(D, "pg join visible in BEAM pg p99, us", "pg_join_p99_us", CB, 1, ratio, ""),
    pair(D, "pg 100k-membership sync absorbed, ms", "pg_sync_ms", CB, 1, ratio, "target <= 0.5"),
    pair(D, "pg bytes per membership (C heap growth vs BEAM pg ETS growth)",
         "pg_sync_bytes_per_membership", CB, 1, ratio, "target C <= 40"),
    %% 1. producers
    io:format("C producer vs BEAM seed algorithm -> 4 BEAM emitters on one node, ~s events of ~s B each run:~n",
              [c(Consts, "emit_events"), c(Consts, "emit_event_bytes")]),
    pair(D, "  at the receivers, ev/s", "emit_e2e_ev_s", CB, 0, times, "target >= 3x"),
    pair(D, "  producer side, ev/s", "emit_producer_ev_s", CB, 0, times, ""),
    pair(D, "  producer CPU, us/event (C: cnode_producer; BEAM: the producer node)",
         "emit_producer_cpu_us", CB, 3, less, "target C <= 1 us"),
    pair(D, "  receiving node CPU, us/event", "emit_receiver_cpu_us", CB, 2, ratio, "target <= 1.0"),
    pair(D, "  cluster CPU (producer + receivers), us/event", "emit_cluster_cpu_us", CB, 2, ratio, ""),
    pair(D, "  receiving node CPU, % of one core", "emit_receiver_cpu_pct", CB, 0, none, ""),
    %% 2. shim
    io:format("Erlang caller, shim broadcast/3 vs the seed's algorithm, same process, ~s events each run:~n",
              [c(Consts, "shim_events")]),
    pair(D, "  at the receivers, ev/s", "shim_e2e_ev_s", {"shim", "seed"}, 0, times, "target >= 1x"),
    pair(D, "  caller side, ev/s", "shim_caller_ev_s", {"shim", "seed"}, 0, times, ""),
    pair(D, "  caller node CPU, us/event", "shim_caller_cpu_us", {"shim", "seed"}, 2, ratio, ""),
    %% 3. fan-out
    io:format("fan-out of one event to ~s subscribers on one BEAM node, ~s events each run:~n",
              [c(Consts, "fan_subscribers"), c(Consts, "fan_events")]),
    pair(D, "  direct sends, deliveries/s: C emitter vs BEAM emitter", "fan_ev_s", CB, 0, times,
         "target >= 2x"),
    pair(D, "  direct, emitter CPU, us/delivery", "fan_emitter_cpu_us", CB, 2, less, ""),
    pair(D, "  direct, subscriber node CPU, us/delivery", "fan_sub_cpu_us", CB, 2, ratio, ""),
    pair(D, "  direct, subscriber node CPU, % of one core", "fan_sub_cpu_pct", CB, 0, none, ""),
    pair(D, "  through the subscriber node's relay, deliveries/s: C emitter vs BEAM emitter",
         "fanr_ev_s", CB, 0, times, ""),
    %% CPU is read in 10 ms ticks: a relayed run of the C emitter (one
    %% message per event) uses about one or none, so no ratio
    Tick = case {maps:find("fan_events", Consts), maps:find("fan_subscribers", Consts)} of
               {{ok, FE}, {ok, FS}} when FE * FS > 0 -> f(10000 / (FE * FS), 3);
               _ -> "n/a"
           end,
    pair(D, "  relayed, emitter CPU, us/delivery (10 ms ticks: " ++ Tick ++ " is one tick a run)",
         "fanr_emitter_cpu_us", CB, 3, none, ""),
    pair(D, "  relayed, subscriber node CPU, us/delivery", "fanr_sub_cpu_us", CB, 2, ratio, ""),
    pair(D, "  relayed, subscriber node CPU, % of one core", "fanr_sub_cpu_pct", CB, 0, none, ""),
    %% 4. emitter pools under load
    io:format("a pool of 4 emitters (subscriber: a sink on a BEAM node) under one BEAM seed producer "
              "at its maximum rate for ~s ms: C pool on the C node vs BEAM pool on a BEAM node:~n",
              [c(Consts, "load_window_ms")]),
    pair(D, "  producer, ev/s", "load_producer_ev_s", CB, 0, times, ""),
    pair(D, "  emitter node CPU, us/event", "load_emitter_cpu_us", CB, 2, ratio,
         "C not the bottleneck"),
    pair(D, "  emitter node CPU, % of one core until the last receipt", "load_emitter_cpu_pct", CB,
         1, none, ""),
    pair(D, "  the same, all charged to the producer's window", "load_emitter_cpu_pct_producer_window",
         CB, 1, none, ""),
    pair(D, "  sink's lag after the producer's end, ms", "load_lag_ms", CB, 1, none, ""),
    pair(D, "  producer node CPU, %", "load_producer_cpu_pct", CB, 0, none, ""),
    pair(D, "  sink node CPU, %", "load_sink_cpu_pct", CB, 0, none, ""),
    counters(Consts),
    Bad = checks(D, R),
    io:format("every event delivered exactly once in every run (counted 100 ms after the last): ~s~n",
              [case Bad of [] -> "yes"; _ -> "NO: " ++ lists:join(" ", Bad) end]),
    io:format("machine load (1 min): ~s at the start, ~s before the emitter runs, ~s after; ~s cores~n",
              [c(Consts, "loadavg_1m_start"), c(Consts, "loadavg_1m_before_emitters"),
               c(Consts, "loadavg_1m_after_emitters"), c(Consts, "cores")]),
    ok.

membership(K) ->
    C1 = fun(Key) -> c(K, Key, 1) end,
    io:format("pg: a peer leaving a 1M-membership table (C only), median [min-max] of ~s builds: "
              "10 memberships ~s [~s-~s] us, 100k memberships ~s [~s-~s] us; "
              "one join ~s ns; ~s heap bytes/membership~n",
              [c(K, "pgm_reps"),
               C1("pgm_remove_node_10_memberships_us"), C1("pgm_remove_node_10_memberships_us_min"),
               C1("pgm_remove_node_10_memberships_us_max"),
               C1("pgm_remove_node_100k_memberships_us"), C1("pgm_remove_node_100k_memberships_us_min"),
               C1("pgm_remove_node_100k_memberships_us_max"),
               C1("pgm_add_one_ns"), C1("pgm_heap_bytes_per_membership")]).

counters(K) ->
    io:format("C node counters over the fan-out and load runs: events in ~s (expected ~s), out ~s "
              "(expected ~s), errors ~s (+ ~s failed reconnects to departed nodes, ~s late node "
              "lists refused); C node peak RSS ~s MiB before fan-out, ~s after, ~s after the load "
              "runs~n",
              [c(K, "cnode_events_in"), c(K, "cnode_events_in_expected"), c(K, "cnode_events_out"),
               c(K, "cnode_events_out_expected"), c(K, "cnode_errors"), c(K, "cnode_handshake_errors"),
               c(K, "cnode_cluster_lists_refused"),
               mib(K, "before_fan_cnode_peak_rss_kb"), mib(K, "fan_cnode_peak_rss_kb"),
               mib(K, "cnode_peak_rss_kb")]).

%% Every run of every delivery figure received what was sent, and each side
%% has its R runs; the C node's counters match.
checks({Runs, K}, R) ->
    Fan = case {maps:find("fan_events", K), maps:find("fan_subscribers", K)} of
              {{ok, E}, {ok, S}} -> E * S;
              _ -> undefined
          end,
    Exact = fun(Name, Fig, Side, Expected) ->
                    Vs = maps:get({Fig, Side}, Runs, []),
                    Ok = length(Vs) =:= R andalso
                        lists:all(fun({I, V}) -> V =:= Expected(I) end, Vs),
                    [Name || not Ok]
            end,
    Const = fun(Key) -> V = maps:get(Key, K, undefined), fun(_) -> V end end,
    PerRun = fun(Fig, Side) -> Vs = maps:get({Fig, Side}, Runs, []),
                               fun(I) -> proplists:get_value(I, Vs) end end,
    Bad = lists:append(
            [Exact("C-producer", "emit_received", c, Const("emit_events")),
             Exact("BEAM-producer", "emit_received", beam, Const("emit_events")),
             Exact("shim", "shim_received", c, Const("shim_events")),
             Exact("seed", "shim_received", beam, Const("shim_events")),
             Exact("fan-out-C", "fan_delivered", c, fun(_) -> Fan end),
             Exact("fan-out-BEAM", "fan_delivered", beam, fun(_) -> Fan end),
             Exact("relayed-fan-out", "fanr_delivered", c, fun(_) -> Fan end),
             Exact("fan-out-BEAM-beside-relay", "fanr_delivered", beam, fun(_) -> Fan end),
             Exact("C-emitters-to-sink", "load_received", c, PerRun("load_events", c)),
             Exact("BEAM-emitters-to-sink", "load_received", beam, PerRun("load_events", beam))]),
    Counters = maps:get("cnode_events_in", K, a) =:= maps:get("cnode_events_in_expected", K, b)
        andalso maps:get("cnode_events_out", K, a) =:= maps:get("cnode_events_out_expected", K, b)
        andalso maps:get("cnode_errors", K, a) =:= 0,
    Bad ++ ["C-node-counters" || not Counters].

%% One figure of both sides and the ratio of each pair (C over BEAM, or
%% BEAM over C for `faster' and `less').
pair({Runs, _}, Label, Fig, {NC, NB}, Dec, Kind, Target) ->
    C = maps:get({Fig, c}, Runs, []), B = maps:get({Fig, beam}, Runs, []),
    Pairs = [{VC, VB} || {I, VC} <- C, {J, VB} <- B, I =:= J],
    Ratios = [Q || {VC, VB} <- Pairs, (Q = ratio(Kind, VC, VB)) =/= nan],
    %% a pair whose divisor read 0 has no ratio: said, not hidden
    Short = case length(Ratios) < length(Pairs) of
                true -> io_lib:format(" (~b of ~b pairs: the others' divisor read 0)",
                                      [length(Ratios), length(Pairs)]);
                false -> ""
            end,
    RatioText = case Kind of
                    none -> "";
                    _ -> " -> " ++ ratio_text(Kind, NC, NB, stats(Ratios)) ++ Short
                end,
    io:format("~s: ~s ~s vs ~s ~s~s~s~n",
              [Label, NC, spread(stats([V || {_, V} <- C]), Dec), NB,
               spread(stats([V || {_, V} <- B]), Dec), RatioText, target(Target)]).

one({Runs, _}, Label, Fig, Dec, Target) ->
    C = maps:get({Fig, c}, Runs, []),
    io:format("~s: ~s~s~n", [Label, spread(stats([V || {_, V} <- C]), Dec), target(Target)]).

target("") -> "";
target(T) -> " (" ++ T ++ ")".

ratio(Kind, VC, VB) when Kind =:= faster; Kind =:= less ->
    if VC > 0 -> VB / VC; true -> nan end;
ratio(_, VC, VB) ->
    if VB > 0 -> VC / VB; true -> nan end.

ratio_text(_, _, _, none) -> "ratio n/a";
ratio_text(ratio, NC, NB, S) -> NC ++ "/" ++ NB ++ " " ++ spread(S, 2);
ratio_text(times, NC, NB, S) -> NC ++ "/" ++ NB ++ " " ++ spread_x(S, 2, "x");
ratio_text(faster, NC, _, S) -> NC ++ " " ++ spread_x(S, 1, "x faster");
ratio_text(less, NC, _, S) -> NC ++ " uses " ++ spread_x(S, 1, "x less").

stats([]) -> none;
stats(Vs) ->
    S = lists:sort(Vs), N = length(S),
    Med = case N rem 2 of
              1 -> lists:nth(N div 2 + 1, S);
              0 -> (lists:nth(N div 2, S) + lists:nth(N div 2 + 1, S)) / 2
          end,
    {Med, hd(S), lists:last(S)}.

spread(none, _) -> "n/a";
spread({Med, Min, Max}, Dec) -> io_lib:format("~s [~s-~s]", [f(Med, Dec), f(Min, Dec), f(Max, Dec)]).

spread_x(none, _, _) -> "n/a";
spread_x({Med, Min, Max}, Dec, Unit) ->
    io_lib:format("~s~s [~s-~s]", [f(Med, Dec), Unit, f(Min, Dec), f(Max, Dec)]).

f(V, Dec) -> float_to_list(float(V), [{decimals, Dec}]).

%% A constant (a float with Dec decimals), or n/a.
c(K, Key) -> c(K, Key, 2).
c(K, Key, Dec) ->
    case maps:find(Key, K) of
        {ok, V} when is_integer(V) -> integer_to_list(V);
        {ok, V} -> f(V, Dec);
        error -> "n/a"
    end.

mib(K, Key) ->
    case maps:find(Key, K) of
        {ok, V} -> f(V / 1024, 1);
        error -> "n/a"
    end.

read(File, Acc) ->
    case file:read_file(File) of
        {ok, Bin} -> lists:foldl(fun line/2, Acc, string:split(Bin, "\n", all));
        {error, _} -> Acc
    end.

line(Line, {Runs, Consts} = Acc) ->
    try string:lexemes(binary_to_list(Line), " \t\r") of
        [Fig, Side, I, V] when Side =:= "c"; Side =:= "beam" ->
            Key = {Fig, list_to_atom(Side)},
            {Runs#{Key => maps:get(Key, Runs, []) ++ [{list_to_integer(I), num(V)}]}, Consts};
        [K, V] ->
            {Runs, Consts#{K => num(V)}};
        _ ->
            Acc
    catch
        error:_ -> Acc
    end.

num(S) ->
    try list_to_integer(S) catch error:badarg -> list_to_float(S) end.

str(A) when is_atom(A) -> atom_to_list(A);
str(S) -> S.
