#!/usr/bin/env bash
# make bench-pools: reckon-db's load shape (many subscriptions, each its own
# emitter pool of one emitter with one subscriber, few events), C emitter
# pools side by side with BEAM emitters, in one run, the two sides
# alternating; figures as median [min-max] and the ratio C/BEAM
# (bench/bench_pools.erl says how each is measured).
#
# Sizes: 5,000 pools (POOLS_REPS runs of each kind, default 5) and 100,000
# pools (POOLS_BIG_REPS runs of each side, default 3); latency runs send
# POOLS_EVENTS events (default 5,000) at POOLS_RATE events/s (default 500).
# Uses its own epmd port and node names, and ends every OS process it
# started, by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
# the C node under test is built already: rebar3 must not rebuild it
RECKON_CNODE_NO_HOOK=1
export RECKON_CNODE_NO_HOOK
OUT=bench/out/pools
mkdir -p "$OUT"
rm -f "$OUT"/*.log
# an epmd port of its own: one where no epmd answers yet
PORT=${BENCH_EPMD_PORT:-}
if [ -z "$PORT" ]; then
  for _ in $(seq 20); do
    PORT=$((45000 + RANDOM % 1000))
    epmd -port "$PORT" -names >/dev/null 2>&1 || break
  done
fi
if epmd -port "$PORT" -names >/dev/null 2>&1; then
  echo "pools.sh: an epmd already answers on port $PORT; set BENCH_EPMD_PORT to a free one" >&2
  exit 1
fi
export ERL_EPMD_PORT=$PORT
COOKIE=pools_$$
TAG=p$$
HOST=$(hostname -s)
N=${POOLS_N:-5000}
BIG=${POOLS_BIG:-100000}
REPS=${POOLS_REPS:-5}
BIG_REPS=${POOLS_BIG_REPS:-3}
EVENTS=${POOLS_EVENTS:-5000}
RATE=${POOLS_RATE:-500}
DATA=$(mktemp -d "${TMPDIR:-/tmp}/bench_pools.XXXXXX")
# the driver adds the pid of every node it starts to this file
PIDFILE=$OUT/pids
: > "$PIDFILE"
pids=()
epmd_started=""
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  # the driver's nodes end with its pipes; any still there (and still ours:
  # its command line carries this run's tag) is ended by its pid
  while read -r p; do
    [ -n "$p" ] && [ -r "/proc/$p/cmdline" ] && tr '\0' ' ' < "/proc/$p/cmdline" | grep -q "_$TAG" &&
      kill "$p" 2>/dev/null || true
  done < "$PIDFILE"
  wait 2>/dev/null || true
  [ -n "$epmd_started" ] && { epmd -port "$PORT" -kill >/dev/null 2>&1 || true; }
  rm -rf "$DATA"
}
trap cleanup EXIT

erlc -o "$OUT" bench/bench_pools.erl bench/bench_emitters.erl bench/bench_runs.erl
rebar3 compile >/dev/null
EBIN=${REBAR_BASE_DIR:-_build}/default/lib/reckon_cnode/ebin
epmd -port "$PORT" -daemon
epmd_started=1
for _ in $(seq 50); do epmd -port "$PORT" -names >/dev/null 2>&1 && break; sleep 0.1; done

OTP_REL=$(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().')
echo "== on OTP $OTP_REL, $(uname -m), $(nproc) cores; $N pools x $REPS runs of each kind, $BIG pools x $BIG_REPS runs of each side"
START=$SECONDS
echo "loadavg_1m_before $(cut -d' ' -f1 /proc/loadavg)" > "$OUT/load.txt"
erl -sname "drv_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" -pa "$EBIN" \
    -eval "try bench_pools:run([\"$PWD/build/test-node/reckon_cnode\", \"$COOKIE\", \"$TAG\",
                                \"$PWD/$OUT\", \"$PWD/$EBIN\", \"$DATA\", \"$PWD/$PIDFILE\",
                                \"$N\", \"$BIG\", \"$REPS\", \"$BIG_REPS\", \"$EVENTS\", \"$RATE\"]) of
             _ -> halt(0)
           catch C:R:S -> io:format(standard_error, \"bench_pools: ~p:~p~n~p~n\", [C, R, S]), halt(1)
           end." > "$OUT/pools.txt" &
pids+=($!)
wait "${pids[0]}"
pids=()
echo "loadavg_1m_after $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT/load.txt"
echo "otp $OTP_REL" >> "$OUT/load.txt"
echo "wall_s $((SECONDS - START))" >> "$OUT/load.txt"

echo "== summary"
awk '
  function f(k, u, d) {
    return sprintf("%." d "f%s [%." d "f-%." d "f]", v[k], u, v[k "_min"], v[k "_max"])
  }
  function r(a, b) { return v[b] == 0 ? 0 : v[a] / v[b] }
  { v[$1] = $2 }
  END {
    n = v["pools"]; big = v["big_pools"]
    printf "OTP %s; %d pools: %d runs of each kind, %d pools: %d runs of each side, alternating; median [min-max]\n", v["otp"], n, v["reps"], big, v["big_reps"]
    printf "start %d pools, one caller: C start_emitter_pool loop %s vs BEAM %s -> ratio %.2f (target <= 1.0)\n", n, f("s_c_ms", " ms", 1), f("s_b_ms", " ms", 1), r("s_c_ms", "s_b_ms")
    if (v["batch_exported"]) printf "start %d pools, one caller: C start_emitter_pools/1 %s vs BEAM %s -> ratio %.2f (target <= 1.0)\n", n, f("s_x_ms", " ms", 1), f("s_b_ms", " ms", 1), r("s_x_ms", "s_b_ms")
    else printf "start %d pools, one caller: C start_emitter_pools/1 not exported by this shim (skipped)\n", n
    printf "start %d pools, one caller: C --data-dir loop %s vs BEAM %s -> ratio %.2f (target <= 1.0)\n", n, f("s_d_ms", " ms", 1), f("s_b_ms", " ms", 1), r("s_d_ms", "s_b_ms")
    if (v["batch_exported"]) printf "start %d pools, one caller: C --data-dir start_emitter_pools/1 %s vs BEAM %s -> ratio %.2f (target <= 1.0)\n", n, f("s_y_ms", " ms", 1), f("s_b_ms", " ms", 1), r("s_y_ms", "s_b_ms")
    printf "memory per pool (%d): C node VmRSS %s vs BEAM node erlang:memory %s, VmRSS %s -> ratio %.2f / %.2f (target <= 1000 B and <= 0.25)\n", n, f("s_c_rss_per_pool", " B", 0), f("s_b_mem_per_pool", " B", 0), f("s_b_rss_per_pool", " B", 0), r("s_c_rss_per_pool", "s_b_mem_per_pool"), r("s_c_rss_per_pool", "s_b_rss_per_pool")
    if (v["batch_exported"]) printf "memory per pool (%d), start_emitter_pools/1: C node VmRSS %s -> ratio %.2f / %.2f\n", n, f("s_x_rss_per_pool", " B", 0), r("s_x_rss_per_pool", "s_b_mem_per_pool"), r("s_x_rss_per_pool", "s_b_rss_per_pool")
    printf "memory per pool (%d), --data-dir: C node VmRSS %s -> ratio %.2f / %.2f\n", n, f("s_d_rss_per_pool", " B", 0), r("s_d_rss_per_pool", "s_b_mem_per_pool"), r("s_d_rss_per_pool", "s_b_rss_per_pool")
    printf "  also, per pool, on the driver node (pg peer of both; the caller with the shim for C): C %s vs BEAM %s (erlang:memory)\n", f("s_c_drv_per_pool", " B", 0), f("s_b_drv_per_pool", " B", 0)
    printf "latency p50, %d ev/s over %d subscriptions (%d events a run): C %s vs BEAM %s -> ratio %.2f (target <= 1.0)\n", v["lat_rate"], n, v["lat_events"], f("s_c_p50_us", " us", 1), f("s_b_p50_us", " us", 1), r("s_c_p50_us", "s_b_p50_us")
    printf "latency p99, %d ev/s over %d subscriptions: C %s vs BEAM %s -> ratio %.2f (target <= 1.5)\n", v["lat_rate"], n, f("s_c_p99_us", " us", 1), f("s_b_p99_us", " us", 1), r("s_c_p99_us", "s_b_p99_us")
    big_c = v["batch_exported"] ? "l_x" : "l_c"; how = v["batch_exported"] ? "start_emitter_pools/1" : "start_emitter_pool loop"
    printf "start %d pools, one caller: C %s %s vs BEAM %s -> ratio %.2f (target <= 1.0)\n", big, how, f(big_c "_ms", " ms", 0), f("l_b_ms", " ms", 0), r(big_c "_ms", "l_b_ms")
    printf "memory per pool (%d): C node VmRSS %s vs BEAM node erlang:memory %s, VmRSS %s -> ratio %.2f / %.2f (target <= 1000 B and <= 0.25)\n", big, f(big_c "_rss_per_pool", " B", 0), f("l_b_mem_per_pool", " B", 0), f("l_b_rss_per_pool", " B", 0), r(big_c "_rss_per_pool", "l_b_mem_per_pool"), r(big_c "_rss_per_pool", "l_b_rss_per_pool")
    printf "new BEAM node connecting to %d pools, until its pg holds every group: C node %s vs BEAM node %s -> ratio %.2f\n", big, f(big_c "_obs_ms", " ms", 1), f("l_b_obs_ms", " ms", 1), r(big_c "_obs_ms", "l_b_obs_ms")
    printf "  what it absorbs per group: received on the wire C %s vs BEAM %s; pg table C %s vs BEAM %s; erlang:memory C %s vs BEAM %s\n", f(big_c "_obs_wire_per_group", " B", 1), f("l_b_obs_wire_per_group", " B", 1), f(big_c "_obs_ets_per_group", " B", 1), f("l_b_obs_ets_per_group", " B", 1), f(big_c "_obs_mem_per_group", " B", 1), f("l_b_obs_mem_per_group", " B", 1)
    printf "latency p50, %d ev/s over %d subscriptions: C %s vs BEAM %s -> ratio %.2f (target <= 1.0)\n", v["lat_rate"], big, f(big_c "_p50_us", " us", 1), f("l_b_p50_us", " us", 1), r(big_c "_p50_us", "l_b_p50_us")
    printf "latency p99, %d ev/s over %d subscriptions: C %s vs BEAM %s -> ratio %.2f (target <= 1.5)\n", v["lat_rate"], big, f(big_c "_p99_us", " us", 1), f("l_b_p99_us", " us", 1), r(big_c "_p99_us", "l_b_p99_us")
    printf "every start ok (%d pools started) and every event delivered exactly once to its own subscriber (%d events in %d runs; C node counts matched); C node error counters: %d\n", v["starts_ok"], v["events_once"], v["lat_runs"], v["cnode_errors"]
    printf "machine load (1 min) before/after: %.2f / %.2f on %d vCPU; %d s\n", v["loadavg_1m_before"], v["loadavg_1m_after"], v["cpus"], v["wall_s"]
  }' "$OUT/pools.txt" "$OUT/load.txt" <(echo "cpus $(nproc)") | tee "$OUT/summary.txt"
