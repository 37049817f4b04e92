#!/bin/sh
# Every command the README shows a user, run as written:
#   reckon_db.sh "Using it with reckon-db": the erl session in a project
#              that depends on reckon-db (the stand-in) and reckon_cnode
#   erlang.sh  "Using it from Erlang": make run, then the erl session
#   c_api.sh   "Using it from C": make install, cc with pkg-config, the C
#              program, examples/producer and bench/cnode_producer
#              against a BEAM node
#   http.sh    --http: the curl examples for /metrics and /health
#   tls.sh     "TLS distribution": the openssl walk-through, a TLS BEAM node
#              and the TLS sidecar
# Each prints its checks and a count; this adds the counts up in one line,
# "readme: N passed, M failed".
set -u
cd "$(dirname "$0")/../.." || exit 2
passed=0
failed=0
OUT=$(mktemp) || exit 2
trap 'rm -f "$OUT"' EXIT
for t in reckon_db erlang c_api http tls; do
    echo "== README: test/readme/$t.sh"
    sh "test/readme/$t.sh" >"$OUT" 2>&1
    rc=$?
    grep -v '^readme: [0-9]* passed, [0-9]* failed$' "$OUT"
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
