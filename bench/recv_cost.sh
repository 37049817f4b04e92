#!/usr/bin/env bash
# What one delivered message costs the receiving BEAM node, C emitter vs
# BEAM emitter, side by side in one run (bench/recv_cost.erl says how).
#
#   bench/recv_cost.sh                  the side-by-side figures
#   CNODE_BEFORE=path bench/recv_cost.sh  a second C node (another build,
#                                       e.g. of an earlier commit) as side
#                                       c_before, in the same rounds
#   PERF=1 bench/recv_cost.sh           then each side alone under
#                                       `perf record -g` of the receiver:
#                                       bench/out/recv_perf_SIDE.txt
# Knobs: K (subscribers, 1000), BURST (events sent at once, 300), PACED
# (events one at a time, 100), ROUNDS (per side and shape, 4).
# Needs: make priv/reckon_cnode. Uses its own epmd port and node names and
# stops only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out
mkdir -p "$OUT"
K=${K:-1000}
BURST=${BURST:-300}
PACED=${PACED:-100}
ROUNDS=${ROUNDS:-4}
PORT=${BENCH_EPMD_PORT:-$((45000 + RANDOM % 1000))}
export ERL_EPMD_PORT=$PORT
COOKIE=rc_$$_$RANDOM
TAG=r$$
HOST=$(hostname -s)
CNODE=${CNODE:-priv/reckon_cnode}
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  epmd -port "$PORT" -kill >/dev/null 2>&1 || true
}
trap cleanup EXIT

erlc -o "$OUT" bench/recv_cost.erl
epmd -port "$PORT" -daemon
for _ in $(seq 50); do epmd -port "$PORT" -names >/dev/null 2>&1 && break; sleep 0.1; done

cnodes=()
start_cnode() { # SIDE BINARY
  "$2" --sname "$1_$TAG" --cookie "$COOKIE" --log-level warning > "$OUT/recv_$1.out" 2>&1 &
  pids+=($!)
  cnodes+=("$1=$1_$TAG@$HOST=$!")
}
start_cnode c "$CNODE"
[ -n "${CNODE_BEFORE:-}" ] && start_cnode c_before "$CNODE_BEFORE"
# +JPperf: the receiver's JIT code has names in perf's reports
erl -sname "sub_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" +JPperf true \
    -eval "recv_cost:serve_sub($K)." &
SUB_PID=$!
pids+=("$SUB_PID")
erl -sname "emi_$TAG" -setcookie "$COOKIE" -noshell -pa "$OUT" -eval 'recv_cost:serve_emi().' &
pids+=($!)
for _ in $(seq 100); do
  names=$(epmd -port "$PORT" -names 2>/dev/null || true)
  n=$(grep -c "_$TAG " <<<"$names" || true)
  [ "$n" -ge $((2 + ${#cnodes[@]})) ] && break
  sleep 0.1
done

drive() { # SIDES BURST PACED ROUNDS
  local args="\"emi_$TAG@$HOST\", \"sub_$TAG@$HOST\", \"$SUB_PID\", \"$K\", \"$2\", \"$3\", \"$4\", \"$1\""
  for c in "${cnodes[@]}"; do args="$args, \"$c\""; done
  erl -sname "drv_$TAG" -setcookie "$COOKIE" -hidden -noshell -pa "$OUT" \
      -eval "try recv_cost:run([$args]) of
               _ -> halt(0)
             catch C:R:S -> io:format(standard_error, \"recv_cost: ~p:~p~n~p~n\", [C, R, S]), halt(1)
             end."
}

echo "== OTP $(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().'), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
drive all "$BURST" "$PACED" "$ROUNDS" > "$OUT/recv_cost.txt"
echo "== receiver CPU per delivered message (µs), mean of $ROUNDS rounds; full figures: $OUT/recv_cost.txt"
grep -E '_receiver_us_per_msg |_receiver_ratio|_emitter_us_per_msg ' "$OUT/recv_cost.txt"
echo "== load after: $(cut -d' ' -f1 /proc/loadavg)"

if [ -n "${PERF:-}" ]; then
  for side in c ${CNODE_BEFORE:+c_before} beam; do
    perf record -q -g -p "$SUB_PID" -o "$OUT/recv_perf_$side.data" 2>/dev/null &
    PERF_PID=$!
    sleep 0.5
    drive "$side" "$BURST" 0 2 > "$OUT/recv_perf_$side.kv"
    kill -INT "$PERF_PID"; wait "$PERF_PID" || true
    perf report -i "$OUT/recv_perf_$side.data" --no-children -g none --sort dso,symbol \
      2>/dev/null > "$OUT/recv_perf_$side.txt" || true
    echo "== perf, $side sender ($(grep -m1 receiver_us_per_msg "$OUT/recv_perf_$side.kv")): $OUT/recv_perf_$side.txt"
    { grep '%' "$OUT/recv_perf_$side.txt" | grep -v '^#' || true; } | sed -n 1,30p
  done
fi
