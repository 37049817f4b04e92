#!/usr/bin/env bash
# make bench: every figure side by side with the BEAM doing the same work, in
# one run, printed as ratios. Uses its own epmd port and node names and stops
# everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
# the C node under test is built already: rebar3 must not rebuild it
RECKON_CNODE_NO_HOOK=1
export RECKON_CNODE_NO_HOOK
OUT=bench/out
mkdir -p "$OUT"
PORT=${BENCH_EPMD_PORT:-$((44000 + RANDOM % 1000))}
export ERL_EPMD_PORT=$PORT
COOKIE=bench_$$
TAG=b$$
HOST=$(hostname -s)
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  epmd -port "$PORT" -kill >/dev/null 2>&1 || true
}
trap cleanup EXIT

erlc -o "$OUT" bench/bench_beam.erl bench/bench_pg.erl bench/bench_emitters.erl
rebar3 compile >/dev/null
EBIN=${REBAR_BASE_DIR:-_build}/default/lib/reckon_cnode/ebin
epmd -port "$PORT" -daemon
for _ in $(seq 50); do epmd -port "$PORT" -names >/dev/null 2>&1 && break; sleep 0.1; done

echo "== on OTP $(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().'), $(uname -m), $(nproc) cores"
echo "== naming: C ns/op vs BEAM ns/op"
./build/bench/bench_naming 5000000 2>/dev/null | tee "$OUT/naming_c.txt"
erl -noshell -pa "$OUT" -eval 'bench_beam:naming(), halt().' | tee "$OUT/naming_beam.txt"
echo "== pg: a peer leaving a 1M-membership table, C only (pgm_remove_node)"
./build/bench/bench_membership 5 | tee "$OUT/pg_remove_node.txt"

./build/test-node/reckon_cnode --sname "cnode_$TAG" --cookie "$COOKIE" --log-level warning > "$OUT/cnode.out" &
CNODE_PID=$!
pids+=($CNODE_PID)
erl -sname "echo_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" -eval 'bench_beam:start_echo().' &
pids+=($!)
for _ in $(seq 100); do
  names=$(epmd -port "$PORT" -names 2>/dev/null || true)
  grep -q "cnode_$TAG" <<<"$names" && grep -q "echo_$TAG" <<<"$names" && break
  sleep 0.1
done
echo "== round trip: shim topic/2 via the C node vs BEAM remote gen_server:call"
erl -sname "cli_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" -pa "$EBIN" \
    -eval "bench_beam:client(['cnode_$TAG@$HOST', 'echo_$TAG@$HOST', \"20000\"]), halt()." \
  | tee "$OUT/roundtrip.txt"

echo "== pg: C join visible in BEAM pg vs BEAM join visible in BEAM pg"
erl -sname "mem_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" -eval 'bench_pg:serve().' &
pids+=($!)
for _ in $(seq 100); do epmd -port "$PORT" -names 2>/dev/null | grep -q "mem_$TAG" && break; sleep 0.1; done
erl -sname "obs_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" \
    -eval "bench_pg:join_visibility('cnode_$TAG@$HOST', 'mem_$TAG@$HOST', 3000), halt()." \
  | tee "$OUT/pg_join.txt"

echo "== pg: absorbing a 100k-membership sync (10k groups), C node vs BEAM node"
erl -sname "syn_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" \
    -eval "bench_pg:absorb('cnode_$TAG@$HOST', 'mem_$TAG@$HOST'), halt()." \
  | tee "$OUT/pg_sync.txt"

echo "== emitters: C producer, shim broadcast, fan-out, C emitters under load (vs BEAM)"
# other load on the machine skews these figures most: record it
echo "loadavg_1m_before_emitters $(cut -d' ' -f1 /proc/loadavg)" > "$OUT/load.txt"
erl -sname "emi_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" -eval 'bench_emitters:serve_emi().' &
pids+=($!)
erl -sname "sub_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" -pa "$EBIN" -eval 'bench_emitters:serve_sub().' &
pids+=($!)
for _ in $(seq 100); do
  names=$(epmd -port "$PORT" -names 2>/dev/null || true)
  grep -q "emi_$TAG" <<<"$names" && grep -q "sub_$TAG" <<<"$names" && break
  sleep 0.1
done
timeout 600 erl -sname "drv_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" -pa "$EBIN" \
    -eval "try bench_emitters:run(['cnode_$TAG@$HOST', 'emi_$TAG@$HOST', 'sub_$TAG@$HOST',
                                   \"$PWD/bench/cnode_producer\", \"$COOKIE\", \"prod_$TAG\",
                                   \"$CNODE_PID\", \"$(getconf CLK_TCK)\"]) of
             _ -> halt(0)
           catch C:R:S -> io:format(standard_error, \"bench_emitters: ~p:~p~n~p~n\", [C, R, S]), halt(1)
           end." \
  | tee "$OUT/emitters.txt"
echo "loadavg_1m_after_emitters $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT/load.txt"
cat "$OUT/load.txt"

echo "== summary"
awk '
  { v[$1] = $2 }
  END {
    printf "emitter_name/3: C %.1f ns vs BEAM %.1f ns -> %.1fx faster (target <= 300 ns)\n", v["c_emitter_name_3_ns"], v["beam_emitter_name_3_ns"], v["beam_emitter_name_3_ns"] / v["c_emitter_name_3_ns"]
    printf "retrieve_emitters/2: C %.1f ns vs BEAM persistent_term %.1f ns -> %.1fx (target <= 50 ns)\n", v["c_retrieve_emitters_ns"], v["beam_retrieve_emitters_ns"], v["beam_retrieve_emitters_ns"] / v["c_retrieve_emitters_ns"]
    printf "retrieve_emitters/2 from Erlang: shim (local copy of the C node'"'"'s table) %.1f ns vs seed persistent_term %.1f ns -> ratio %.2f\n", v["shim_retrieve_emitters_ns"], v["seed_retrieve_emitters_ns"], v["shim_retrieve_emitters_ns"] / v["seed_retrieve_emitters_ns"]
    printf "round trip p50: shim %.1f us vs BEAM %.1f us -> ratio %.2f (target <= 1.0)\n", v["roundtrip_shim_topic_p50_us"], v["roundtrip_beam_call_p50_us"], v["roundtrip_ratio_p50"]
    printf "round trip p99: shim %.1f us vs BEAM %.1f us -> ratio %.2f\n", v["roundtrip_shim_topic_p99_us"], v["roundtrip_beam_call_p99_us"], v["roundtrip_ratio_p99"]
    printf "pg members look-up (C API, canonical key): %.1f ns (target <= 50 ns); from a raw group term: %.1f ns\n", v["c_pg_members_ns"], v["c_pg_members_from_term_ns"]
    printf "pg join visible in BEAM pg p50: C %.1f us vs BEAM %.1f us -> ratio %.2f (target <= 1.0); p99 C %.1f us vs BEAM %.1f us\n", v["pg_join_visible_c_p50_us"], v["pg_join_visible_beam_p50_us"], v["pg_join_visible_ratio_p50"], v["pg_join_visible_c_p99_us"], v["pg_join_visible_beam_p99_us"]
    printf "pg 100k sync absorbed: C %.1f ms vs BEAM %.1f ms -> ratio %.2f (target <= 0.5)\n", v["c_sync_us"] / 1000, v["beam_sync_us"] / 1000, v["c_sync_us"] / v["beam_sync_us"]
    printf "pg bytes/membership: C %.1f (heap growth) vs BEAM %.1f (pg ETS table growth) (target <= 40)\n", v["c_sync_bytes"] / 100000, v["beam_sync_ets_bytes"] / v["beam_sync_members"]
    printf "C producer -> 4 BEAM emitters (%d x %d B), at the receivers: C %.0f ev/s vs BEAM seed %.0f ev/s -> %.2fx (target >= 3x); received min C %d, BEAM %d; receiver node CPU %.0f%% / %.0f%% of one core, %.2f / %.2f us/event\n", v["emit_events"], v["emit_event_bytes"], v["emit_c_e2e_events_per_sec"], v["emit_beam_e2e_events_per_sec"], v["emit_ratio_e2e"], v["emit_c_min_received"], v["emit_beam_min_received"], v["emit_c_receiver_cpu_pct"], v["emit_beam_receiver_cpu_pct"], v["emit_c_receiver_cpu_us_per_event"], v["emit_beam_receiver_cpu_us_per_event"]
    printf "C producer, producer side: C %.0f ev/s vs BEAM seed %.0f ev/s -> %.2fx; C CPU %.3f us/event (target <= 1) vs BEAM producer node %.3f us/event -> C uses %.1fx less\n", v["emit_c_producer_events_per_sec"], v["emit_beam_producer_events_per_sec"], v["emit_ratio_producer"], v["emit_c_producer_cpu_us_per_event"], v["emit_beam_producer_cpu_us_per_event"], v["emit_beam_producer_cpu_us_per_event"] / v["emit_c_producer_cpu_us_per_event"]
    printf "shim broadcast/3 vs seed algorithm, same process (%d), at the receivers: shim %.0f ev/s vs seed %.0f ev/s -> %.2fx (target >= 1x); caller side %.0f vs %.0f -> %.2fx; caller node CPU %.2f vs %.2f us/event\n", v["shim_events"], v["shim_e2e_events_per_sec"], v["shim_seed_e2e_events_per_sec"], v["shim_ratio_e2e"], v["shim_producer_events_per_sec"], v["shim_seed_producer_events_per_sec"], v["shim_ratio_producer"], v["shim_caller_node_cpu_us_per_event"], v["shim_seed_caller_node_cpu_us_per_event"]
    printf "fan-out to %d subscribers (%d events): C emitter %.0f vs BEAM emitter %.0f deliveries/s -> %.2fx (target >= 2x); delivered min C %d, BEAM %d of %d; emitter CPU C %.2f vs BEAM %.2f us/delivery -> C uses %.1fx less; subscriber node CPU %.0f%% / %.0f%%, %.2f / %.2f us/delivery\n", v["fan_subscribers"], v["fan_events"], v["fan_c_deliveries_per_sec"], v["fan_beam_deliveries_per_sec"], v["fan_ratio"], v["fan_c_min_delivered"], v["fan_beam_min_delivered"], v["fan_subscribers"] * v["fan_events"], v["fan_c_emitter_cpu_us_per_delivery"], v["fan_beam_emitter_cpu_us_per_delivery"], v["fan_beam_emitter_cpu_us_per_delivery"] / v["fan_c_emitter_cpu_us_per_delivery"], v["fan_c_subscriber_node_cpu_pct"], v["fan_beam_subscriber_node_cpu_pct"], v["fan_c_subscriber_node_cpu_us_per_delivery"], v["fan_beam_subscriber_node_cpu_us_per_delivery"]
    printf "fan-out through the subscriber node'"'"'s relay: C emitter %.0f deliveries/s -> %.2fx the BEAM emitter; delivered min %d of %d; emitter CPU %.3f us/delivery; subscriber node CPU %.0f%%, %.2f us/delivery (BEAM emitter: %.2f) -> the subscriber node spends %.2fx\n", v["fan_relay_deliveries_per_sec"], v["fan_relay_ratio"], v["fan_relay_min_delivered"], v["fan_subscribers"] * v["fan_events"], v["fan_relay_emitter_cpu_us_per_delivery"], v["fan_relay_subscriber_node_cpu_pct"], v["fan_relay_subscriber_node_cpu_us_per_delivery"], v["fan_beam_subscriber_node_cpu_us_per_delivery"], v["fan_relay_subscriber_node_cpu_us_per_delivery"] / v["fan_beam_subscriber_node_cpu_us_per_delivery"]
    printf "C emitters (pool 4 -> sink) under one BEAM seed producer at max rate: producer %.0f ev/s, sink got %d of %d, lag %.1f ms; C node CPU %.1f%% of one core until the last receipt (%.1f%% if all charged to the producer window), %.2f us/event; producer node %.0f%%, sink node %.0f%%\n", v["crecv_producer_events_per_sec"], v["crecv_sink_received"], v["crecv_events"], v["crecv_sink_lag_ms"], v["crecv_cnode_cpu_pct"], v["crecv_cnode_cpu_pct_of_producer_window"], v["crecv_cnode_cpu_us_per_event"], v["crecv_producer_node_cpu_pct"], v["crecv_sink_node_cpu_pct"]
    bad = ""
    if (v["emit_c_min_received"] != v["emit_events"] || v["emit_c_max_received"] != v["emit_events"]) bad = bad " C-producer"
    if (v["emit_beam_min_received"] != v["emit_events"] || v["emit_beam_max_received"] != v["emit_events"]) bad = bad " BEAM-producer"
    if (v["shim_min_received"] != v["shim_events"] || v["shim_seed_min_received"] != v["shim_events"]) bad = bad " shim/seed"
    if (v["fan_c_min_delivered"] != v["fan_events"] * v["fan_subscribers"] || v["fan_beam_min_delivered"] != v["fan_events"] * v["fan_subscribers"]) bad = bad " fan-out"
    if (v["fan_relay_min_delivered"] != v["fan_events"] * v["fan_subscribers"]) bad = bad " relayed-fan-out"
    if (v["crecv_sink_received"] != v["crecv_events"]) bad = bad " C-emitters-to-sink"
    if (v["cnode_events_in"] != v["cnode_events_in_expected"] || v["cnode_events_out"] != v["cnode_events_out_expected"] || v["cnode_errors"] != 0) bad = bad " C-node-counters"
    printf "C node counters over fan-out + load runs: events in %d (expected %d), out %d (expected %d), errors %d (+ %d failed reconnects to departed nodes); C node peak RSS %.1f MiB before fan-out, %.1f after, %.1f after load run\n", v["cnode_events_in"], v["cnode_events_in_expected"], v["cnode_events_out"], v["cnode_events_out_expected"], v["cnode_errors"], v["cnode_handshake_errors"], v["before_fan_cnode_peak_rss_kb"] / 1024, v["fan_cnode_peak_rss_kb"] / 1024, v["cnode_peak_rss_kb"] / 1024
    printf "every event delivered exactly once (counted 100 ms after the last): %s\n", bad == "" ? "yes" : "NO:" bad
    printf "machine load (1 min) before/after the emitter runs: %.2f / %.2f on 2 vCPU\n", v["loadavg_1m_before_emitters"], v["loadavg_1m_after_emitters"]
  }' "$OUT/naming_c.txt" "$OUT/naming_beam.txt" "$OUT/roundtrip.txt" "$OUT/pg_join.txt" "$OUT/pg_sync.txt" "$OUT/emitters.txt" "$OUT/load.txt" | tee "$OUT/summary.txt"
