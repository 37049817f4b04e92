#!/usr/bin/env bash
# make bench: every figure side by side with the BEAM doing the same work, in
# one run, printed as ratios. Uses its own epmd port and node names and stops
# everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
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

erlc -o "$OUT" bench/bench_beam.erl bench/bench_pg.erl
rebar3 compile >/dev/null
EBIN=_build/default/lib/reckon_cnode/ebin
epmd -port "$PORT" -daemon
for _ in $(seq 50); do epmd -port "$PORT" -names >/dev/null 2>&1 && break; sleep 0.1; done

echo "== naming: C ns/op vs BEAM ns/op"
./build/bench/bench_naming 5000000 2>/dev/null | tee "$OUT/naming_c.txt"
erl -noshell -pa "$OUT" -eval 'bench_beam:naming(), halt().' | tee "$OUT/naming_beam.txt"

./priv/reckon_cnode --sname "cnode_$TAG" --cookie "$COOKIE" --log-level warning > "$OUT/cnode.out" &
pids+=($!)
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

echo "== summary"
awk '
  { v[$1] = $2 }
  END {
    printf "emitter_name/3: C %.1f ns vs BEAM %.1f ns -> %.1fx faster (target <= 300 ns)\n", v["c_emitter_name_3_ns"], v["beam_emitter_name_3_ns"], v["beam_emitter_name_3_ns"] / v["c_emitter_name_3_ns"]
    printf "retrieve_emitters/2: C %.1f ns vs BEAM persistent_term %.1f ns -> %.1fx (target <= 50 ns)\n", v["c_retrieve_emitters_ns"], v["beam_retrieve_emitters_ns"], v["beam_retrieve_emitters_ns"] / v["c_retrieve_emitters_ns"]
    printf "round trip p50: shim %.1f us vs BEAM %.1f us -> ratio %.2f (target <= 1.0)\n", v["roundtrip_shim_topic_p50_us"], v["roundtrip_beam_call_p50_us"], v["roundtrip_ratio_p50"]
    printf "round trip p99: shim %.1f us vs BEAM %.1f us -> ratio %.2f\n", v["roundtrip_shim_topic_p99_us"], v["roundtrip_beam_call_p99_us"], v["roundtrip_ratio_p99"]
    printf "pg members look-up (C API, canonical key): %.1f ns (target <= 50 ns); from a raw group term: %.1f ns\n", v["c_pg_members_ns"], v["c_pg_members_from_term_ns"]
    printf "pg join visible in BEAM pg p50: C %.1f us vs BEAM %.1f us -> ratio %.2f (target <= 1.0); p99 C %.1f us vs BEAM %.1f us\n", v["pg_join_visible_c_p50_us"], v["pg_join_visible_beam_p50_us"], v["pg_join_visible_ratio_p50"], v["pg_join_visible_c_p99_us"], v["pg_join_visible_beam_p99_us"]
    printf "pg 100k sync absorbed: C %.1f ms vs BEAM %.1f ms -> ratio %.2f (target <= 0.5)\n", v["c_sync_us"] / 1000, v["beam_sync_us"] / 1000, v["c_sync_us"] / v["beam_sync_us"]
    printf "pg bytes/membership: C %.1f (heap growth) vs BEAM %.1f (pg ETS table growth) (target <= 40)\n", v["c_sync_bytes"] / 100000, v["beam_sync_ets_bytes"] / v["beam_sync_members"]
  }' "$OUT/naming_c.txt" "$OUT/naming_beam.txt" "$OUT/roundtrip.txt" "$OUT/pg_join.txt" "$OUT/pg_sync.txt" | tee "$OUT/summary.txt"
