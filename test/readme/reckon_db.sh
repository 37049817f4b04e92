#!/bin/sh
# The README's "Using it with reckon-db" session as written, in a project
# that depends on reckon-db (here the stand-in test/reckon_db) and
# reckon_cnode, compiled: its `$ erl ...` line run from that project, with
# only the node name made unique. Spawn mode: the session's node starts its
# own C node. Own epmd port and HOME (with its own cookie); stops what it
# starts.
set -u
cd "$(dirname "$0")/../.." || exit 2
SRC=$(pwd -P)
. test/private_epmd.sh
TMP=$(mktemp -d) || exit 2
EPMD_PORT=""
trap '[ -n "$EPMD_PORT" ] && epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
PROJ=$TMP/proj
mkdir -p "$PROJ/_checkouts/reckon_cnode/priv" "$PROJ/_checkouts/reckon_db" "$PROJ/src"
cp -r rebar.config src include "$PROJ/_checkouts/reckon_cnode/" &&
    cp priv/reckon_cnode "$PROJ/_checkouts/reckon_cnode/priv/" &&
    cp -r test/reckon_db/rebar.config test/reckon_db/src "$PROJ/_checkouts/reckon_db/" ||
    { echo "readme: cannot copy the trees"; echo "readme: 0 passed, 1 failed"; exit 1; }
echo '{deps, [reckon_db, reckon_cnode]}.' >"$PROJ/rebar.config"
echo '{application, myapp, [{vsn, "0.1.0"}, {applications, [kernel, stdlib, reckon_db, reckon_cnode]}]}.' \
    >"$PROJ/src/myapp.app.src"
unset REBAR_BASE_DIR
if ! (cd "$PROJ" && RECKON_CNODE_NO_HOOK=1 rebar3 compile) >"$TMP/compile.log" 2>&1; then
    tail -20 "$TMP/compile.log"
    echo "readme: 0 passed, 1 failed"
    exit 1
fi
# rebar3 builds _checkouts apart from fetched dependencies; a project that
# fetches reckon_db and reckon_cnode has them all under _build/default/lib
for d in "$PROJ"/_build/default/checkouts/*; do
    [ -d "$d" ] && ln -s "$d" "$PROJ/_build/default/lib/$(basename "$d")"
done
start_private_epmd
[ -n "$EPMD_PORT" ] || { echo "readme: could not start epmd"; exit 2; }
ERL_EPMD_PORT=$EPMD_PORT
export ERL_EPMD_PORT
HOME=$TMP
export HOME
od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$HOME/.erlang.cookie"
chmod 400 "$HOME/.erlang.cookie"
cd "$PROJ" && escript "$SRC/test/readme/session.escript" "$SRC/README.md" "me_$$" \
    "## Using it with reckon-db"
