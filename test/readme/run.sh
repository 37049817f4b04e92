#!/bin/sh
# Every command the README shows a user, run as written:
#   erlang.sh  "Quick start: Erlang": make run, then the erl session
#   elixir.sh  "Quick start: Elixir": a new mix project (deps, config.exs),
#              iex --sname me -S mix and its session, mix release, the rpc
#   c_api.sh   "Quick start: C": make install, cc with pkg-config, the C
#              program against the one-line emitter node (exit status 0, and
#              1 with a reason when no emitter appears); "The C API":
#              examples/producer and bench/cnode_producer against a BEAM node
#   reckon_db.sh "Using it with reckon-db": the erl session in a project
#              that depends on reckon-db (the stand-in) and reckon_cnode
#   http.sh    "Metrics and health": the curl examples for /metrics and
#              /health, and Deployment's probe
#   tls.sh     "TLS distribution": the openssl walk-through, a TLS BEAM node
#              and the TLS sidecar
# Each prints its checks and a count, and this the seconds each took; then
# it adds the counts up in one line, "readme: N passed, M failed".
set -u
cd "$(dirname "$0")/../.." || exit 2
passed=0
failed=0
OUT=$(mktemp) || exit 2
trap 'rm -f "$OUT"' EXIT
for t in erlang elixir c_api reckon_db http tls; do
    echo "== README: test/readme/$t.sh"
    t0=$(date +%s)
    sh "test/readme/$t.sh" >"$OUT" 2>&1
    rc=$?
    grep -v '^readme: [0-9]* passed, [0-9]* failed$' "$OUT"
    echo "   ($(($(date +%s) - t0)) s)"
    line=$(grep '^readme: [0-9]* passed, [0-9]* failed$' "$OUT" | tail -1)
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed 's/^readme: \([0-9]*\) passed.*/\1/')
        f=$(echo "$line" | sed 's/.* passed, \([0-9]*\) failed$/\1/')
    else
        p=0
        f=1
    fi
    # a script that fails without counting a failure still fails the run
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    passed=$((passed + p))
    failed=$((failed + f))
done
echo "readme: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
