#!/bin/sh
# The Elixir check: an Elixir node uses :reckon_cnode_emitter_group and
# :reckon_cnode against the real C node.
#   - builds the shim (rebar3 compile) if its ebin is missing; needs
#     build/test-node/reckon_cnode (make test-node), the node with test hooks,
#   - starts a private epmd on a free port (ERL_EPMD_PORT), so it never
#     touches a developer's own nodes,
#   - starts that node under a unique name with a random cookie,
#   - runs test/elixir/check.exs on an Elixir node with the same cookie,
#   - always stops the C node and that epmd, and exits with the check's
#     status (non-zero on any failure).
#
# Usage (from anywhere): test/elixir/run.sh
set -u

cd "$(dirname "$0")/../.." || exit 2

EBIN=${REBAR_BASE_DIR:-_build}/default/lib/reckon_cnode/ebin
# the C node under test is built already: rebar3 must not rebuild it
RECKON_CNODE_NO_HOOK=1
export RECKON_CNODE_NO_HOOK
if [ ! -x build/test-node/reckon_cnode ]; then
    echo "elixir check: build/test-node/reckon_cnode missing: run make test-node" >&2
    exit 2
fi
if [ ! -f "$EBIN/reckon_cnode.app" ]; then
    rebar3 compile >/dev/null || exit 2
fi
command -v elixir >/dev/null 2>&1 || { echo "elixir check: elixir not installed" >&2; exit 2; }

. test/private_epmd.sh

TMP=$(mktemp -d) || exit 2
EPMD_PORT=""
CPID=""

cleanup() {
    if [ -n "$CPID" ] && kill -0 "$CPID" 2>/dev/null; then
        kill -TERM "$CPID" 2>/dev/null
        i=0
        while kill -0 "$CPID" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "$CPID" 2>/dev/null || true
        wait "$CPID" 2>/dev/null || true
    fi
    [ -n "$EPMD_PORT" ] && epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_private_epmd
[ -n "$EPMD_PORT" ] || { echo "elixir check: could not start epmd" >&2; exit 2; }
ERL_EPMD_PORT=$EPMD_PORT
export ERL_EPMD_PORT

RND=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
COOKIE="ex_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
CNAME="rcn_exc_$$_$RND"
ENAME="rcn_ex_$$_$RND"

# the test build of the node: the check uses its test hooks
RECKON_CNODE_COOKIE=$COOKIE build/test-node/reckon_cnode --sname "$CNAME" \
    >"$TMP/cnode.out" 2>"$TMP/cnode.log" </dev/null &
CPID=$!

CNODE=""
i=0
while [ $i -lt 100 ]; do
    CNODE=$(head -n 1 "$TMP/cnode.out" 2>/dev/null)
    [ -n "$CNODE" ] && break
    kill -0 "$CPID" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
done
if [ -z "$CNODE" ]; then
    echo "elixir check: the C node did not start; its log:" >&2
    cat "$TMP/cnode.log" >&2
    exit 1
fi
echo "elixir check: C node $CNODE, epmd port $EPMD_PORT"

timeout 120 elixir --sname "$ENAME" --cookie "$COOKIE" -pa "$EBIN" \
    test/elixir/check.exs "$CNODE"
STATUS=$?
if [ "$STATUS" -ne 0 ]; then
    echo "elixir check: exit status $STATUS; C node log:" >&2
    tail -n 50 "$TMP/cnode.log" >&2
fi
exit "$STATUS"
