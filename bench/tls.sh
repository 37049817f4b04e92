#!/usr/bin/env bash
# make bench-tls: TLS distribution against plain TCP, in one run, with a
# BEAM node over TLS as the anchor:
#   - call round trip: the shim's topic/2 through the C node vs a remote
#     gen_server:call to a BEAM echo server (bench_beam:client), over TCP and
#     over TLS;
#   - C producer throughput: bench/cnode_producer broadcasting N events to a
#     sink node's four group members, at the producer and at the receivers,
#     over TCP and over TLS, and a BEAM producer doing the same over TLS.
# Certificates are made here with openssl (as the README's example does).
# Uses its own epmd port and node names and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
RECKON_CNODE_NO_HOOK=1
export RECKON_CNODE_NO_HOOK
OUT=bench/out/tls
rm -rf "$OUT"
mkdir -p "$OUT"
PORT=${BENCH_EPMD_PORT:-$((45000 + RANDOM % 1000))}
export ERL_EPMD_PORT=$PORT
COOKIE=bench_$$
TAG=t$$
HOST=$(hostname -s)
N_RT=${N_RT:-20000}
N_EV=${N_EV:-200000}
BYTES=${BYTES:-283}
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  epmd -port "$PORT" -kill >/dev/null 2>&1 || true
}
trap cleanup EXIT

erlc -o "$OUT" bench/bench_beam.erl bench/bench_tls.erl
rebar3 compile >/dev/null
EBIN=${REBAR_BASE_DIR:-_build}/default/lib/reckon_cnode/ebin
epmd -port "$PORT" -daemon
for _ in $(seq 50); do epmd -port "$PORT" -names >/dev/null 2>&1 && break; sleep 0.1; done

# one CA, one certificate for this host, the BEAM's optfile
PKI=$PWD/$OUT/pki
mkdir -p "$PKI"
(
  cd "$PKI"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca -keyout ca.key -out ca.pem
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$HOST" -keyout node.key -out node.csr
  printf 'subjectAltName=DNS:%s,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' "$HOST" > node.ext
  openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile node.ext -out node.pem
) >/dev/null 2>&1
OPTS="{certfile, \"$PKI/node.pem\"}, {keyfile, \"$PKI/node.key\"}, {cacertfile, \"$PKI/ca.pem\"}, {verify, verify_peer}"
printf '[{server, [%s, {fail_if_no_peer_cert, true}]}, {client, [%s]}].\n' "$OPTS" "$OPTS" > "$PKI/ssl_dist.conf"
TLS_C=(--tls-cert "$PKI/node.pem" --tls-key "$PKI/node.key" --tls-cacert "$PKI/ca.pem")
TLS_E=(-proto_dist inet_tls -ssl_dist_optfile "$PKI/ssl_dist.conf")

wait_names() {
  for _ in $(seq 200); do
    names=$(epmd -port "$PORT" -names 2>/dev/null || true)
    ok=1
    for n in "$@"; do grep -q "name $n " <<<"$names" || ok=0; done
    [ $ok = 1 ] && return 0
    sleep 0.1
  done
  echo "tls.sh: $* did not register" >&2
  return 1
}

echo "== on OTP $(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().'), $(uname -m), $(nproc) cores, $(openssl version | cut -d' ' -f1-2)"
RES=$OUT/results.txt
: > "$RES"
for T in tcp tls; do
  if [ $T = tls ]; then EF=("${TLS_E[@]}"); CF=("${TLS_C[@]}"); else EF=(); CF=(); fi
  C=cnode_${T}_$TAG E=echo_${T}_$TAG S=sink_${T}_$TAG
  ./priv/reckon_cnode --sname "$C" --cookie "$COOKIE" --log-level warning "${CF[@]}" \
      > "$OUT/cnode_$T.out" 2> "$OUT/cnode_$T.log" &
  pids+=($!)
  erl -sname "$E" -setcookie "$COOKIE" -noshell "${EF[@]}" -pa "$OUT" -eval 'bench_beam:start_echo().' &
  pids+=($!)
  erl -sname "$S" -setcookie "$COOKIE" -noshell "${EF[@]}" -pa "$OUT" -eval 'bench_tls:serve_sink().' &
  pids+=($!)
  wait_names "$C" "$E" "$S"
  echo "== $T: call round trip, shim topic/2 via the C node vs BEAM gen_server:call ($N_RT calls)"
  erl -sname "cli_${T}_$TAG" -setcookie "$COOKIE" -noshell "${EF[@]}" -pa "$OUT" -pa "$EBIN" \
      -eval "bench_beam:client(['$C@$HOST', '$E@$HOST', \"$N_RT\"]), halt()." \
    | grep '^roundtrip_' | sed "s/^/${T}_/" | tee -a "$RES"
  echo "== $T: C producer, $N_EV events of ~$BYTES B to 4 members on one BEAM node"
  ./bench/cnode_producer --seed "$S@$HOST" --cookie "$COOKIE" --store bench_tls --sub sub \
      --count "$N_EV" --bytes "$BYTES" --sname "prod_${T}_$TAG" "${CF[@]}" \
    | grep -E '^(events_per_sec|cpu_us_per_event)' | sed "s/^/${T}_c_producer_/" | tee -a "$RES"
  erl -sname "drv_${T}_$TAG" -setcookie "$COOKIE" -noshell "${EF[@]}" -pa "$OUT" \
      -eval "bench_tls:await(['$S@$HOST', \"$N_EV\", \"${T}_c\"]), halt()." | tee -a "$RES"
  if [ $T = tls ]; then
    echo "== $T: BEAM producer, the same events to the same members"
    erl -sname "bprod_${T}_$TAG" -setcookie "$COOKIE" -noshell "${EF[@]}" -pa "$OUT" \
        -eval "bench_tls:beam_produce(['$S@$HOST', \"$N_EV\", \"$BYTES\", \"${T}_beam\"]), halt()." \
      | tee -a "$RES"
    erl -sname "drv2_${T}_$TAG" -setcookie "$COOKIE" -noshell "${EF[@]}" -pa "$OUT" \
        -eval "bench_tls:await(['$S@$HOST', \"$N_EV\", \"${T}_beam\"]), halt()." | tee -a "$RES"
  fi
  grep -q "TLSv1" "$OUT/cnode_$T.log" 2>/dev/null && echo "(C node log: $(grep -o 'TLSv1[^)]*' "$OUT/cnode_$T.log" | head -1))"
done

echo "== summary"
awk '{v[$1] = $2}
  END {
    printf "call round trip p50/p99 us: C node TCP %.1f/%.1f, C node TLS %.1f/%.1f, BEAM TCP %.1f/%.1f, BEAM TLS %.1f/%.1f\n",
      v["tcp_roundtrip_shim_topic_p50_us"], v["tcp_roundtrip_shim_topic_p99_us"],
      v["tls_roundtrip_shim_topic_p50_us"], v["tls_roundtrip_shim_topic_p99_us"],
      v["tcp_roundtrip_beam_call_p50_us"], v["tcp_roundtrip_beam_call_p99_us"],
      v["tls_roundtrip_beam_call_p50_us"], v["tls_roundtrip_beam_call_p99_us"]
    printf "C producer ev/s at the producer: TCP %.0f, TLS %.0f (%.2fx); CPU us/event TCP %.3f, TLS %.3f\n",
      v["tcp_c_producer_events_per_sec"], v["tls_c_producer_events_per_sec"],
      v["tls_c_producer_events_per_sec"] / v["tcp_c_producer_events_per_sec"],
      v["tcp_c_producer_cpu_us_per_event"], v["tls_c_producer_cpu_us_per_event"]
    printf "ev/s at the receivers: C over TCP %.0f, C over TLS %.0f, BEAM over TLS %.0f (C/BEAM over TLS %.2fx)\n",
      v["tcp_c_receiver_events_per_sec"], v["tls_c_receiver_events_per_sec"],
      v["tls_beam_receiver_events_per_sec"],
      v["tls_c_receiver_events_per_sec"] / v["tls_beam_receiver_events_per_sec"]
    printf "BEAM producer over TLS: %.0f ev/s at the producer, CPU %.3f us/event\n",
      v["tls_beam_producer_events_per_sec"], v["tls_beam_producer_cpu_us_per_event"]
  }' "$RES" | tee "$OUT/summary.txt"
