#!/bin/sh
# reckon_cnode as a rebar3 dependency, as a user's project takes it: a fresh
# copy of this working tree (its source files, no build output) under
# _checkouts of a new
# project, whose plain `rebar3 compile` must build the C node too
# (rebar.config's pre_hook) and leave a working priv/reckon_cnode next to
# the application; the same for a mix project with a path dependency.
# Prints "dependency: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 2
TMP=$(mktemp -d) || exit 2
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/app/src" "$TMP/app/_checkouts"
# The files git knows of (tracked, or new and not ignored), as they are now.
copy_tree() {
    mkdir -p "$1" &&
        git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$1"
}
copy_tree "$TMP/app/_checkouts/reckon_cnode" || { echo "dependency: cannot copy the tree"; exit 1; }
cat >"$TMP/app/rebar.config" <<'CFG'
{deps, [reckon_cnode]}.
CFG
cat >"$TMP/app/src/user_app.app.src" <<'APP'
{application, user_app, [{vsn, "0.1.0"}, {applications, [kernel, stdlib, reckon_cnode]}]}.
APP
unset RECKON_CNODE_NO_HOOK
if ! (cd "$TMP/app" && rebar3 compile) >"$TMP/build.log" 2>&1; then
    tail -20 "$TMP/build.log"
    echo "dependency: 0 passed, 2 failed"
    exit 1
fi
PASSED=0
FAILED=0
BIN=$TMP/app/_build/default/checkouts/reckon_cnode/priv/reckon_cnode
[ -x "$BIN" ] || BIN=$TMP/app/_build/default/lib/reckon_cnode/priv/reckon_cnode
if [ -x "$BIN" ] && "$BIN" --version | grep -q '^reckon_cnode '; then
    echo "dependency: rebar3 compile of a project using reckon_cnode built $("$BIN" --version)"
    PASSED=$((PASSED + 1))
else
    echo "dependency: no working priv/reckon_cnode after rebar3 compile"
    FAILED=$((FAILED + 1))
fi

# The release carries the C node: `rebar3 release` of the same project,
# booted with the application in spawn mode (own epmd, own cookie), must
# start the C node from the release's own priv/ and connect to it; the
# project's application writes what reckon_cnode:status/0 says, then stops
# the node.
. test/private_epmd.sh
mkdir -p "$TMP/app/config"
cat >"$TMP/app/src/user_app.app.src" <<'APP'
{application, user_app, [{vsn, "0.1.0"}, {mod, {user_app, []}},
                         {applications, [kernel, stdlib, reckon_cnode]}]}.
APP
cat >"$TMP/app/src/user_app.erl" <<'ERL'
-module(user_app).
-behaviour(application).
-behaviour(supervisor).
-export([start/2, stop/1, init/1]).
start(_Type, _Args) ->
    _ = spawn(fun() -> report(200) end),
    supervisor:start_link(?MODULE, []).
stop(_State) -> ok.
init([]) -> {ok, {#{}, []}}.
report(0) ->
    write(reckon_cnode:status()), init:stop();
report(N) ->
    case reckon_cnode:status() of
        #{connected := true} = S -> write(S), init:stop();
        _ -> timer:sleep(100), report(N - 1)
    end.
write(Status) ->
    ok = file:write_file(os:getenv("USER_APP_REPORT"), io_lib:format("~p~n", [Status])).
ERL
cat >"$TMP/app/config/sys.config" <<'SYS'
[{reckon_cnode, [{spawn, true}]}].
SYS
printf -- '-sname user_app_%s\n-setcookie rel_%s\n' "$$" "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
    >"$TMP/app/config/vm.args"
cat >>"$TMP/app/rebar.config" <<'CFG'
{relx, [{release, {user_app, "0.1.0"}, [user_app]},
        {dev_mode, false}, {include_erts, false},
        {sys_config, "config/sys.config"}, {vm_args, "config/vm.args"}]}.
CFG
REL=$TMP/app/_build/default/rel/user_app
EPMD_PORT=""
if (cd "$TMP/app" && rebar3 release) >"$TMP/release.log" 2>&1 &&
        RELBIN=$(ls "$REL"/lib/reckon_cnode-*/priv/reckon_cnode 2>/dev/null) &&
        [ -f "$RELBIN" ] && [ ! -L "$RELBIN" ] && start_private_epmd &&
        ERL_EPMD_PORT=$EPMD_PORT USER_APP_REPORT="$TMP/report" \
            timeout 60 "$REL/bin/user_app" foreground >>"$TMP/release.log" 2>&1 &&
        grep -q 'connected => true' "$TMP/report" && grep -q 'mode => spawn' "$TMP/report"; then
    echo "dependency: rebar3 release carries the C node and the release starts it (spawn mode)"
    PASSED=$((PASSED + 1))
else
    tail -30 "$TMP/release.log"
    cat "$TMP/report" 2>/dev/null
    echo "dependency: the rebar3 release did not start its C node"
    FAILED=$((FAILED + 1))
fi
[ -n "$EPMD_PORT" ] && epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1

# The same from Elixir: a mix project with a path dependency. Mix builds
# rebar3 projects with the rebar3 it is told of (Debian's, not a download).
mkdir -p "$TMP/mixapp"
copy_tree "$TMP/mixapp/reckon_cnode"
cat >"$TMP/mixapp/mix.exs" <<'MIX'
defmodule UserApp.MixProject do
  use Mix.Project
  def project, do: [app: :user_app, version: "0.1.0", deps: [{:reckon_cnode, path: "reckon_cnode"}]]
end
MIX
if (cd "$TMP/mixapp" && MIX_REBAR3=$(command -v rebar3) HEX_OFFLINE=1 mix deps.compile) \
        >"$TMP/mix.log" 2>&1 &&
        "$TMP/mixapp/_build/dev/lib/reckon_cnode/priv/reckon_cnode" --version >/dev/null 2>&1; then
    echo "dependency: mix deps.compile of a project using reckon_cnode built the C node"
    PASSED=$((PASSED + 1))
else
    tail -20 "$TMP/mix.log"
    echo "dependency: mix deps.compile left no working priv/reckon_cnode"
    FAILED=$((FAILED + 1))
fi
# ... and `mix release` of it carries the C node and starts it in spawn
# mode, like the rebar3 release above.
mkdir -p "$TMP/mixapp/lib" "$TMP/mixapp/config"
cat >"$TMP/mixapp/mix.exs" <<'MIX'
defmodule UserApp.MixProject do
  use Mix.Project
  def project, do: [app: :user_app, version: "0.1.0", deps: [{:reckon_cnode, path: "reckon_cnode"}],
                    releases: [user_app: [include_erts: false]]]
  def application, do: [mod: {UserApp, []}, extra_applications: [:logger]]
end
MIX
cat >"$TMP/mixapp/lib/user_app.ex" <<'EX'
defmodule UserApp do
  use Application
  def start(_type, _args) do
    spawn(fn -> report(200) end)
    Supervisor.start_link([], strategy: :one_for_one)
  end
  defp report(0), do: write(:reckon_cnode.status()) && System.stop()
  defp report(n) do
    case :reckon_cnode.status() do
      %{connected: true} = s -> write(s); System.stop()
      _ -> Process.sleep(100); report(n - 1)
    end
  end
  defp write(s), do: File.write!(System.get_env("USER_APP_REPORT"), inspect(s))
end
EX
cat >"$TMP/mixapp/config/config.exs" <<'CFG'
import Config
config :reckon_cnode, spawn: true
CFG
MIXREL=$TMP/mixapp/_build/prod/rel/user_app
EPMD_PORT=""
if (cd "$TMP/mixapp" && MIX_ENV=prod MIX_REBAR3=$(command -v rebar3) HEX_OFFLINE=1 \
        mix do deps.compile, release --overwrite) >"$TMP/mixrel.log" 2>&1 &&
        MIXBIN=$(ls "$MIXREL"/lib/reckon_cnode-*/priv/reckon_cnode 2>/dev/null) &&
        [ -f "$MIXBIN" ] && [ ! -L "$MIXBIN" ] && start_private_epmd &&
        ERL_EPMD_PORT=$EPMD_PORT RELEASE_DISTRIBUTION=sname RELEASE_NODE="user_mix_$$" \
            RELEASE_COOKIE="rel_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
            USER_APP_REPORT="$TMP/mixreport" \
            timeout 60 "$MIXREL/bin/user_app" start >>"$TMP/mixrel.log" 2>&1 &&
        grep -q 'connected: true' "$TMP/mixreport" && grep -q 'mode: :spawn' "$TMP/mixreport"; then
    echo "dependency: mix release carries the C node and the release starts it (spawn mode)"
    PASSED=$((PASSED + 1))
else
    tail -30 "$TMP/mixrel.log"
    cat "$TMP/mixreport" 2>/dev/null
    echo "dependency: the mix release did not start its C node"
    FAILED=$((FAILED + 1))
fi
[ -n "$EPMD_PORT" ] && epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1
# make install into a staging root: every file in place, the binary runs.
if make -s install DESTDIR="$TMP/stage" PREFIX=/usr/local >"$TMP/install.log" 2>&1 &&
        "$TMP/stage/usr/local/bin/reckon_cnode" --version >/dev/null &&
        [ -f "$TMP/stage/usr/local/include/reckon_cnode.h" ] &&
        [ -f "$TMP/stage/usr/local/lib/libreckon_cnode.a" ] &&
        [ -f "$TMP/stage/usr/local/lib/pkgconfig/reckon_cnode.pc" ] &&
        [ -f "$TMP/stage/usr/local/lib/systemd/system/reckon_cnode.service" ]; then
    echo "dependency: make install staged the executable, library, header, pkg-config file and unit"
    PASSED=$((PASSED + 1))
else
    tail -20 "$TMP/install.log"
    echo "dependency: make install did not stage everything"
    FAILED=$((FAILED + 1))
fi
# make install PREFIX=... writes that prefix into the unit it installs.
if make -s install DESTDIR="$TMP/stage2" PREFIX=/opt/rcn >"$TMP/install2.log" 2>&1 &&
        grep -q '^ExecStart=/opt/rcn/bin/reckon_cnode ' \
            "$TMP/stage2/opt/rcn/lib/systemd/system/reckon_cnode.service" &&
        ! grep -q '/usr/local' "$TMP/stage2/opt/rcn/lib/systemd/system/reckon_cnode.service"; then
    echo "dependency: make install PREFIX=/opt/rcn writes that prefix into the systemd unit"
    PASSED=$((PASSED + 1))
else
    tail -20 "$TMP/install2.log"
    echo "dependency: the installed unit does not follow PREFIX"
    FAILED=$((FAILED + 1))
fi
# A program of the user's own, built against the staged header and library
# with nothing but what pkg-config says (--define-prefix: the staging root
# stands in for the prefix). It links the whole node and runs.
cat >"$TMP/user.c" <<'PROG'
#include <reckon_cnode.h>
#include <stdio.h>
int main(void)
{
    uint8_t topic[256];
    size_t len = 0;
    rc_node_config cfg;
    rc_node_config_init(&cfg); /* no cookie: rc_node_create must refuse */
    rc_node *n = NULL;
    char err[128];
    if (rc_topic((const uint8_t *)"store", 5, (const uint8_t *)"sub", 3, topic, sizeof topic,
                 &len) != RC_OK || rc_node_create(&n, &cfg, err, sizeof err) == 0)
        return 1;
    printf("%.*s|%s\n", (int)len, (const char *)topic, err);
    return 0;
}
PROG
PC="$TMP/stage/usr/local/lib/pkgconfig"
# shellcheck disable=SC2046
if [ -f "$PC/reckon_cnode.pc" ] &&
        FLAGS=$(PKG_CONFIG_PATH="$PC" pkg-config --define-prefix --cflags --libs reckon_cnode) &&
        cc -std=c11 -Wall -Wextra -Werror -o "$TMP/user" "$TMP/user.c" $FLAGS >"$TMP/user.log" 2>&1 &&
        "$TMP/user" >"$TMP/user.out" && grep -q '|no cookie$' "$TMP/user.out"; then
    echo "dependency: a program built with pkg-config --cflags --libs reckon_cnode links and runs"
    PASSED=$((PASSED + 1))
else
    cat "$TMP/user.log" "$TMP/user.out" 2>/dev/null | tail -20
    echo "dependency: no working program from the staged pkg-config file"
    FAILED=$((FAILED + 1))
fi
# The .pc names no erl_interface-<version> directory: an upgrade of
# Erlang/OTP must not break the flags it gives.
if [ -f "$PC/reckon_cnode.pc" ] && ! grep -q 'erl_interface-' "$PC/reckon_cnode.pc" &&
        PKG_CONFIG_PATH="$PC" pkg-config --libs reckon_cnode | grep -q -- ' -lei '; then
    echo "dependency: the pkg-config file finds libei without an erl_interface version in its path"
    PASSED=$((PASSED + 1))
else
    cat "$PC/reckon_cnode.pc" 2>/dev/null
    echo "dependency: the pkg-config file hard-codes the erl_interface version"
    FAILED=$((FAILED + 1))
fi
echo "dependency: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
