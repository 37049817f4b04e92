#!/bin/sh
# The README's "Quick start: Erlang" as a new user does it: the sidecar
# started with `make run` (default name, ~/.erlang.cookie), then the erl
# session typed as written (test/readme/session.escript). Own epmd port and
# HOME (with its own cookie), unique shell node name; stops what it starts.
set -u
cd "$(dirname "$0")/../.." || exit 2
. test/private_epmd.sh
TMP=$(mktemp -d) || exit 2
EPMD_PORT=""
RUN_PID=""
cleanup() {
    [ -n "$RUN_PID" ] && kill -TERM "-$RUN_PID" 2>/dev/null
    i=0
    while [ -n "$RUN_PID" ] && kill -0 "$RUN_PID" 2>/dev/null && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    [ -n "$RUN_PID" ] && kill -KILL "-$RUN_PID" 2>/dev/null
    [ -n "$EPMD_PORT" ] && epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start_private_epmd
[ -n "$EPMD_PORT" ] || { echo "readme: could not start epmd"; exit 2; }
ERL_EPMD_PORT=$EPMD_PORT
export ERL_EPMD_PORT
# A home of its own: the cookie make run and erl both read.
HOME=$TMP
export HOME
od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$HOME/.erlang.cookie"
chmod 400 "$HOME/.erlang.cookie"
setsid make run >"$TMP/run.out" 2>"$TMP/run.log" </dev/null &
RUN_PID=$!
HOST=$(hostname -s)
i=0
until grep -qx "reckon_cnode@$HOST" "$TMP/run.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 "$RUN_PID" 2>/dev/null; then
        echo "readme: make run did not print reckon_cnode@$HOST; its output:"
        tail -20 "$TMP/run.out" "$TMP/run.log"
        echo "readme: 0 passed, 1 failed"
        exit 1
    fi
    sleep 0.1
done
escript test/readme/session.escript README.md "me_$$" "## Quick start: Erlang"
