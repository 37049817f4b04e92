#!/usr/bin/env bash
# make bench: every figure side by side with the BEAM doing the same work, in
# one run, printed as ratios. Each side-by-side figure is measured BENCH_RUNS
# times a side (default 5), the C and the BEAM side alternating (C,B, B,C,
# C,B, ...: bench/bench_runs.erl); the summary gives each side's median
# [min-max] and the median [min-max] of the per-pair ratios. Every run's
# figures are kept in bench/out/*.txt. Timings never fail the run. Uses its
# own epmd port and node names and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
# the C node under test is built already: rebar3 must not rebuild it
RECKON_CNODE_NO_HOOK=1
export RECKON_CNODE_NO_HOOK
OUT=bench/out
mkdir -p "$OUT"
RUNS=${BENCH_RUNS:-5}
export BENCH_RUNS=$RUNS
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
T_START=$(date +%s)

erlc -o "$OUT" bench/bench_runs.erl bench/bench_beam.erl bench/bench_pg.erl bench/bench_emitters.erl
rebar3 compile >/dev/null
EBIN=${REBAR_BASE_DIR:-_build}/default/lib/reckon_cnode/ebin
epmd -port "$PORT" -daemon
for _ in $(seq 50); do epmd -port "$PORT" -names >/dev/null 2>&1 && break; sleep 0.1; done
# other load on the machine skews these figures most: record it
{ echo "cores $(nproc)"; echo "loadavg_1m_start $(cut -d' ' -f1 /proc/loadavg)"; } > "$OUT/load.txt"

echo "== on OTP $(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().'), $(uname -m), $(nproc) cores"
echo "== naming: C ns/op vs BEAM ns/op, $RUNS runs a side alternating"
for i in $(seq "$RUNS"); do
  if [ $((i % 2)) = 1 ]; then order="c beam"; else order="beam c"; fi
  for side in $order; do
    if [ "$side" = c ]; then
      ./build/bench/bench_naming 5000000 2>/dev/null | awk -v r="$i" '{ sub(/^c_/, "", $1); print $1, "c", r, $2 }'
    else
      erl -noshell -pa "$OUT" -eval "bench_beam:naming([\"$i\"]), halt()."
    fi
  done
done | tee "$OUT/naming.txt"
echo "== pg: a peer leaving a 1M-membership table, C only (pgm_remove_node), median of 5 builds"
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
echo "== round trip: shim topic/2 via the C node vs BEAM remote gen_server:call, runs of 10,000 calls a side taken in turn"
erl -sname "cli_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" -pa "$EBIN" \
    -eval "bench_beam:roundtrip(['cnode_$TAG@$HOST', 'echo_$TAG@$HOST', \"10000\"]), halt()." \
  | tee "$OUT/roundtrip.txt"

echo "== pg: C join visible in BEAM pg vs BEAM join visible in BEAM pg, runs of 1,000 joins a side taken in turn"
erl -sname "mem_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" -eval 'bench_pg:serve().' &
pids+=($!)
for _ in $(seq 100); do epmd -port "$PORT" -names 2>/dev/null | grep -q "mem_$TAG" && break; sleep 0.1; done
erl -sname "obs_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" \
    -eval "bench_pg:join_visibility('cnode_$TAG@$HOST', 'mem_$TAG@$HOST', 1000), halt()." \
  | tee "$OUT/pg_join.txt"

echo "== pg: absorbing a 100k-membership sync (10k groups), C node vs BEAM node"
erl -sname "syn_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" \
    -eval "bench_pg:absorb('cnode_$TAG@$HOST', 'mem_$TAG@$HOST'), halt()." \
  | tee "$OUT/pg_sync.txt"

echo "== emitters: C producer, shim broadcast, fan-out, emitter pools under load (vs BEAM), $RUNS runs a side alternating"
echo "loadavg_1m_before_emitters $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT/load.txt"
erl -sname "emi_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" -eval 'bench_emitters:serve_emi().' &
pids+=($!)
erl -sname "sub_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" -pa "$EBIN" -eval 'bench_emitters:serve_sub().' &
pids+=($!)
for _ in $(seq 100); do
  names=$(epmd -port "$PORT" -names 2>/dev/null || true)
  grep -q "emi_$TAG" <<<"$names" && grep -q "sub_$TAG" <<<"$names" && break
  sleep 0.1
done
timeout 2400 erl -sname "drv_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" -pa "$EBIN" \
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
erl -noshell -pa "$OUT" -eval "bench_runs:summary([\"$OUT/naming.txt\", \"$OUT/pg_remove_node.txt\",
    \"$OUT/roundtrip.txt\", \"$OUT/pg_join.txt\", \"$OUT/pg_sync.txt\", \"$OUT/emitters.txt\",
    \"$OUT/load.txt\"]), halt()." | tee "$OUT/summary.txt"
echo "this run of bench/run.sh took $(( $(date +%s) - T_START )) s" | tee -a "$OUT/summary.txt"
