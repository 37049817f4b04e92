#!/bin/sh
# reckon_cnode in the same release as reckon-db, as a reckon-db team ships
# it: a rebar3 release and a mix release, each holding the reckon_db
# stand-in (test/reckon_db: app reckon_db, module reckon_db_emitter_group,
# scope reckon_db_pg owned by its supervisor) and reckon_cnode in spawn mode,
# with no exclusions. Each must build without a warning and boot, and then
# test/release/rdb_scenario.erl runs inside it: reckon-db's own broadcast
# reaches the C pool and the reckon_db emitter of one subscription, each
# event exactly once; a pool whose subscriber dies leaves the group, is
# logged and counted. Runs on the OTP it is started on (the matrix runs it
# on each); own epmd port, random cookies; stops what it starts.
# Prints "release: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 2
SRC=$(pwd -P)
[ -x priv/reckon_cnode ] || { echo "release: priv/reckon_cnode missing: run make first"; exit 2; }
. test/private_epmd.sh
TMP=$(mktemp -d) || exit 2
EPMD_PORT=""
trap '[ -n "$EPMD_PORT" ] && epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
PASSED=0
FAILED=0
pass() { echo "release: $1"; PASSED=$((PASSED + 1)); }
fail() { echo "release: FAILED: $1"; FAILED=$((FAILED + 1)); }
strip() { sed 's/\x1b\[[0-9;]*m//g' "$@"; }
# Warning lines of a build log that name either application, or a clash.
our_warnings() { strip "$1" | grep -i 'warn\|duplicated' | grep -i 'reckon\|duplicated'; }
rnd() { od -An -N8 -tx1 /dev/urandom | tr -d ' \n'; }

# The C node is the one already built (the dependency test proves that a
# project's own build makes it): the copy carries it and skips the hook.
RECKON_CNODE_NO_HOOK=1
export RECKON_CNODE_NO_HOOK
# the projects below build in their own _build (the matrix sets this one)
unset REBAR_BASE_DIR
# (What the application needs, without git: the OTP roots have none.)
copy_cnode() {
    mkdir -p "$1/priv" && cp -r rebar.config src include LICENSE "$1/" &&
        cp priv/reckon_cnode "$1/priv/reckon_cnode"
}
copy_standin() {
    mkdir -p "$1" && cp -r test/reckon_db/rebar.config test/reckon_db/src "$1/"
}
report_of() {
    if [ -f "$1" ] && grep -q '^{ok,' "$1"; then
        tr -s ' \n' ' ' <"$1" | sed 's/^{ok, *//; s/}\. *$//'
        return 0
    fi
    return 1
}
# check_release KIND: build_KIND builds the release (its output in
# $TMP/KIND.log), which must print no warning about either application;
# boot_KIND boots it and the scenario inside writes $TMP/KIND.report.
check_release() {
    if "build_$1" >"$TMP/$1.log" 2>&1; then
        # systools warns of every OTP application whose sources the host
        # lacks (Debian's erlang-src) and of sasl; nothing may concern these two
        if our_warnings "$TMP/$1.log" >"$TMP/$1.warn"; then
            cat "$TMP/$1.warn"
            fail "$1 release of reckon_db + reckon_cnode printed warnings"
        else
            pass "$1 release of reckon_db + reckon_cnode built, no exclusions, no warnings"
        fi
        if "boot_$1" >>"$TMP/$1.log" 2>&1 && FIG=$(report_of "$TMP/$1.report"); then
            pass "$1 release booted; reckon-db's broadcast reached both kinds of emitter: $FIG"
        else
            strip "$TMP/$1.log" | tail -30
            cat "$TMP/$1.report" 2>/dev/null
            fail "$1 release: the integration failed"
        fi
    else
        strip "$TMP/$1.log" | tail -30
        fail "$1 release of reckon_db + reckon_cnode did not build"
    fi
}
start_private_epmd
[ -n "$EPMD_PORT" ] || { echo "release: could not start epmd"; echo "release: 0 passed, 1 failed"; exit 1; }

# --- rebar3 ---------------------------------------------------------------
APP=$TMP/app
mkdir -p "$APP/src" "$APP/config" "$APP/_checkouts"
copy_cnode "$APP/_checkouts/reckon_cnode" && copy_standin "$APP/_checkouts/reckon_db" &&
    cp test/release/rdb_scenario.erl "$APP/src/" || { echo "release: cannot copy the trees"; exit 2; }
cat >"$APP/rebar.config" <<'CFG'
{deps, [reckon_db, reckon_cnode]}.
{relx, [{release, {myapp, "0.1.0"}, [myapp, reckon_db, reckon_cnode]},
        {dev_mode, false}, {include_erts, false},
        {sys_config, "config/sys.config"}, {vm_args, "config/vm.args"}]}.
CFG
# myapp uses reckon_cnode: without its optional dependency on reckon_db,
# the boot script would start reckon_cnode (and its pg scope) first.
cat >"$APP/src/myapp.app.src" <<'APPSRC'
{application, myapp, [{vsn, "0.1.0"}, {mod, {myapp, []}},
                      {applications, [kernel, stdlib, reckon_cnode]}]}.
APPSRC
cat >"$APP/src/myapp.erl" <<'ERL'
-module(myapp).
-behaviour(application).
-behaviour(supervisor).
-export([start/2, stop/1, init/1]).
start(_Type, _Args) ->
    _ = spawn(fun() -> rdb_scenario:run(os:getenv("RDB_REPORT")) end),
    supervisor:start_link(?MODULE, []).
stop(_State) -> ok.
init([]) -> {ok, {#{}, []}}.
ERL
echo '[{reckon_cnode, [{spawn, true}]}].' >"$APP/config/sys.config"
printf -- '-sname myapp_%s\n-setcookie rel_%s\n' "$$" "$(rnd)" >"$APP/config/vm.args"
build_rebar3() { (cd "$APP" && rebar3 release); }
boot_rebar3() {
    ERL_EPMD_PORT=$EPMD_PORT RDB_REPORT="$TMP/rebar3.report" \
        timeout 120 "$APP/_build/default/rel/myapp/bin/myapp" foreground
}
check_release rebar3

# --- mix ------------------------------------------------------------------
if command -v mix >/dev/null 2>&1; then
    MIXAPP=$TMP/mixapp
    mkdir -p "$MIXAPP/lib" "$MIXAPP/src" "$MIXAPP/config"
    copy_cnode "$MIXAPP/reckon_cnode" && copy_standin "$MIXAPP/reckon_db" &&
        cp test/release/rdb_scenario.erl "$MIXAPP/src/" || { echo "release: cannot copy"; exit 2; }
    # reckon_cnode listed first: the boot order must still put reckon_db first
    cat >"$MIXAPP/mix.exs" <<'MIX'
defmodule MyApp.MixProject do
  use Mix.Project
  def project do
    [app: :myapp, version: "0.1.0",
     deps: [{:reckon_cnode, path: "reckon_cnode"}, {:reckon_db, path: "reckon_db"}],
     releases: [myapp: [include_erts: false]]]
  end
  def application, do: [mod: {MyApp, []}, extra_applications: [:logger]]
end
MIX
    cat >"$MIXAPP/lib/my_app.ex" <<'EX'
defmodule MyApp do
  use Application
  def start(_type, _args) do
    spawn(fn -> :rdb_scenario.run(System.get_env("RDB_REPORT")) end)
    Supervisor.start_link([], strategy: :one_for_one)
  end
end
EX
    printf 'import Config\nconfig :reckon_cnode, spawn: true\n' >"$MIXAPP/config/config.exs"
    build_mix() {
        (cd "$MIXAPP" && MIX_ENV=prod MIX_REBAR3=$(command -v rebar3) HEX_OFFLINE=1 \
            mix do deps.compile, release --overwrite)
    }
    boot_mix() {
        ERL_EPMD_PORT=$EPMD_PORT RELEASE_DISTRIBUTION=sname RELEASE_NODE="mymix_$$" \
            RELEASE_COOKIE="rel_$(rnd)" RDB_REPORT="$TMP/mix.report" \
            timeout 120 "$MIXAPP/_build/prod/rel/myapp/bin/myapp" start
    }
    check_release mix
else
    fail "mix not installed"
fi
echo "release: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
