#!/bin/sh
# The README's `--http` examples as written: the sh block of "Metrics and
# health" (its two curl commands must print what the README shows after it,
# `...` standing for any lines) and the health probe of
# "Deployment" (exit 0 printing ok on a healthy node; 22 printing the reason
# on one whose seed is unreachable). The one substitution: port 9464 becomes
# a free port, so that the test never meets a sidecar already serving 9464.
# Own epmd port, HOME and cookie; stops what it starts.
set -u
cd "$(dirname "$0")/../.." || exit 2
. test/private_epmd.sh
. test/readme/lib.sh
readme_env
od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$HOME/.erlang.cookie"
chmod 400 "$HOME/.erlang.cookie"

# in_order WANT GOT: every line of WANT is a line of GOT, in that order
# (carriage returns ignored); a WANT line `...` stands for any lines.
in_order() {
    awk 'BEGIN { n = 0; i = 0 }
         NR == FNR { sub(/\r$/, ""); if ($0 != "...") want[n++] = $0; next }
         { sub(/\r$/, ""); if (i < n && $0 == want[i]) i++ }
         END { exit !(i == n) }' "$1" "$2"
}

# 1. The --http walk-through, run by bash from the repository's top.
PORT=$(free_port)
readme_block "## Metrics and health" sh 1 | sed "s/9464/$PORT/g" >"$TMP/http.sh"
readme_block "## Metrics and health" "" 1 >"$TMP/want"
walkthrough() {
    grep -q "127.0.0.1:$PORT/health" "$TMP/http.sh" || { echo "no curl block found"; return 1; }
    setsid bash "$TMP/http.sh" >"$TMP/http.out" 2>"$TMP/http.err" </dev/null &
    pid=$!
    PIDS="$PIDS $pid"
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    in_order "$TMP/want" "$TMP/http.out" ||
        { echo "README shows:"; cat "$TMP/want"; echo "the commands printed:";
          cat "$TMP/http.out" "$TMP/http.err"; return 1; }
}
check "--http: curl /metrics and /health print what the README shows" walkthrough

# 2. Deployment's probe, against a sidecar with --http on a free port.
PROBE=$(readme_block "## Deployment" sh 2 | grep -m1 '^curl .*/health')
# start_sidecar NAME ARGS...: starts it with --http on a free port, sets HPORT
start_sidecar() {
    n=$1
    shift
    setsid priv/reckon_cnode --sname "$n" "$@" --http 127.0.0.1:0 >"$TMP/$n.out" 2>"$TMP/$n.log" </dev/null &
    PIDS="$PIDS $!"
    await "$TMP/$n.log" 'serving /metrics and /health on 127\.0\.0\.1:[0-9]+' 30 ||
        { cat "$TMP/$n.log"; return 1; }
    HPORT=$(sed -n 's|.*serving /metrics and /health on 127\.0\.0\.1:\([0-9]*\).*|\1|p' "$TMP/$n.log" | head -1)
}
probe() {
    want_rc=$1
    want_out=$2
    # stdout: the body; curl -S adds its own error line on stderr
    out=$(sh -c "$(echo "$PROBE" | sed "s/9464/$HPORT/g")" 2>"$TMP/probe.err")
    rc=$?
    [ "$rc" -eq "$want_rc" ] && [ "$out" = "$want_out" ] ||
        { echo "probe: exit $rc, printed: $out"; cat "$TMP/probe.err"; return 1; }
}
healthy() {
    [ -n "$PROBE" ] || { echo "no probe in Deployment"; return 1; }
    start_sidecar "rc_healthy_$$" && await "$TMP/rc_healthy_$$.out" "^rc_healthy_$$@$HOST\$" 30 &&
        probe 0 ok
}
check "Deployment's probe: exit 0 and ok on a running node" healthy
unhealthy() {
    start_sidecar "rc_unhealthy_$$" --seed "nobody_$$@$HOST" &&
        await "$TMP/rc_unhealthy_$$.out" "^rc_unhealthy_$$@$HOST\$" 30 &&
        probe 22 "no connection to any node"
}
check "Deployment's probe: exit 22 and the reason when no seed is reachable" unhealthy
metrics() {
    curl -s "http://127.0.0.1:$HPORT/metrics" >"$TMP/metrics" &&
        grep -qx '# TYPE reckon_cnode_connections gauge' "$TMP/metrics" &&
        grep -Eq '^# TYPE reckon_cnode_[a-z_]+_total counter$' "$TMP/metrics" &&
        grep -Eq '^# TYPE reckon_cnode_errors_[a-z_]+_total counter$' "$TMP/metrics" &&
        grep -Eq '^reckon_cnode_build_info\{version="[^"]+",otp_release="[0-9]+",erl_interface="erl_interface-[0-9.]+"\} 1$' "$TMP/metrics" &&
        grep -Eq '^reckon_cnode_start_time_seconds [0-9]{10}$' "$TMP/metrics" &&
        ! grep -q 'errors_ticks_in' "$TMP/metrics" ||
        { cat "$TMP/metrics"; return 1; }
}
check "/metrics: gauges, counters and error counters named as the README says" metrics
summary
