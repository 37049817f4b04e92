#!/bin/sh
# Runs the Erlang common_test suites (test/erl) against the real C node with
# a private epmd, so the tests never touch a developer's own nodes:
#   - picks a free TCP port and starts `epmd -port P -daemon` on it,
#   - exports ERL_EPMD_PORT=P (inherited by rebar3, the peers and the C nodes),
#   - runs `rebar3 ct --sname ct_<unique> --setcookie <random>` plus any
#     arguments given to this script (e.g. --suite, --case, --group),
#   - always kills that epmd at the end and exits with rebar3's status
#     (or 1 if a node was still registered with epmd after the run: a leak).
#
# Usage (from anywhere): test/erl/run_ct.sh [extra rebar3 ct args]
set -u

cd "$(dirname "$0")/../.." || exit 2

. test/private_epmd.sh

EPMD_PORT=""
start_private_epmd
if [ -z "$EPMD_PORT" ]; then
    echo "run_ct.sh: could not start epmd on a free port" >&2
    exit 2
fi

cleanup() {
    epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ERL_EPMD_PORT=$EPMD_PORT
export ERL_EPMD_PORT
# the C node under test is built already: rebar3 must not rebuild it
RECKON_CNODE_NO_HOOK=1
export RECKON_CNODE_NO_HOOK
# the suites start the test build of the node (make test-node)
RECKON_CNODE_TEST_NODE=${RECKON_CNODE_TEST_NODE:-$(pwd -P)/build/test-node/reckon_cnode}
export RECKON_CNODE_TEST_NODE
COOKIE="ct_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
SNAME="ct_$$_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"

echo "run_ct.sh: epmd on port $EPMD_PORT, node $SNAME"
rebar3 ct --sname "$SNAME" --setcookie "$COOKIE" "$@"
STATUS=$?

# Leak check: once rebar3 has exited nothing of ours may stay registered.
i=0
LEFT=""
while [ $i -lt 50 ]; do
    LEFT=$(epmd -port "$EPMD_PORT" -names 2>/dev/null | grep '^name ' || true)
    [ -z "$LEFT" ] && break
    sleep 0.1
    i=$((i + 1))
done
if [ -n "$LEFT" ]; then
    echo "run_ct.sh: nodes still registered with epmd after the run:" >&2
    echo "$LEFT" >&2
    [ "$STATUS" -eq 0 ] && STATUS=1
fi
exit "$STATUS"
