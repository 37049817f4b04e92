#!/bin/sh
# The README's "Quick start: Elixir" as written, in a new mix project beside
# a fresh copy of this tree named reckon_cnode: its first sh block (mix
# local.rebar with Debian's rebar3, mix new myapp), the deps/0 it shows put
# in place of the generated one, config/config.exs as shown, then
# `iex --sname me -S mix` fed the elixir block (the shell must print what
# the README shows), then the release block: mix release, daemon, the rpc
# (it must print what the README shows), stop. No per-command environment:
# the commands run as written in one shell whose HOME is a temporary
# directory (so ~/.mix is new).
# Substituted, and only these: the shell's node name me by a unique one, and
# the release's node name by RELEASE_NODE in the environment. The copy
# carries this tree's built priv/reckon_cnode and RECKON_CNODE_NO_HOOK=1 is
# set, so the dependency is not built from scratch again (test/dep/run.sh
# does that). Own epmd port; stops what it starts.
set -u
cd "$(dirname "$0")/../.." || exit 2
. test/private_epmd.sh
. test/readme/lib.sh
readme_on_exit() {
    # a release left running by a failed check: stop it by its OS pid
    [ -z "${REL_PID:-}" ] && [ -x "${P:-}/${BIN:-none}" ] &&
        REL_PID=$(cd "$P" && timeout 10 "$BIN" pid 2>/dev/null)
    if [ -n "${REL_PID:-}" ] && kill -0 "$REL_PID" 2>/dev/null; then
        kill -TERM "$REL_PID" 2>/dev/null
        i=0
        while kill -0 "$REL_PID" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "$REL_PID" 2>/dev/null
    fi
}
readme_env
SECTION="## Quick start: Elixir"
ME=me_$$
RECKON_CNODE_NO_HOOK=1
RELEASE_NODE=myapp_$$
export RECKON_CNODE_NO_HOOK RELEASE_NODE
# a new user's shell: mix's state lives under this HOME, nothing of the
# caller's mix or rebar3 settings applies
unset MIX_REBAR3 MIX_HOME MIX_ARCHIVES MIX_ENV MIX_BUILD_PATH MIX_DEPS_PATH MIX_TARGET \
    HEX_HOME REBAR_BASE_DIR
T0=$(date +%s)

# the clone, as a fresh copy of the files git knows of, and its C node
mkdir -p "$TMP/reckon_cnode/priv" &&
    git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$TMP/reckon_cnode" &&
    cp priv/reckon_cnode "$TMP/reckon_cnode/priv/" ||
    { echo "readme: cannot copy the tree"; echo "readme: 0 passed, 1 failed"; exit 1; }

readme_block "$SECTION" sh 1 >"$TMP/new.sh"
project() {
    grep -q '^mix new myapp' "$TMP/new.sh" || { cat "$TMP/new.sh"; return 1; }
    (cd "$TMP" && bash -e new.sh) >"$TMP/new.log" 2>&1 && [ -f "$TMP/myapp/mix.exs" ] ||
        { cat "$TMP/new.log"; return 1; }
}
check "mix local.rebar with Debian's rebar3, mix new myapp" project
P=$TMP/myapp

# deps/0 as the README shows it, in place of the generated one
readme_block "$SECTION" elixir 1 >"$TMP/deps.exs"
deps() {
    grep -q '^  defp deps do$' "$TMP/deps.exs" || { cat "$TMP/deps.exs"; return 1; }
    awk -v f="$TMP/deps.exs" '
        /^  defp deps do$/ { while ((getline l < f) > 0) print l; skip = 1; next }
        skip && /^  end$/ { skip = 0; next }
        !skip' "$P/mix.exs" >"$TMP/mix.exs" && mv "$TMP/mix.exs" "$P/mix.exs" &&
        grep -q 'path: "../reckon_cnode"' "$P/mix.exs" &&
        mkdir -p "$P/config" && readme_block "$SECTION" elixir 2 >"$P/config/config.exs" &&
        grep -q '^config :reckon_cnode, spawn: true' "$P/config/config.exs" ||
        { cat "$P/mix.exs" "$P/config/config.exs"; return 1; }
}
check "mix.exs gets the README's deps/0, config/config.exs as shown" deps

# iex --sname me -S mix, fed the session; what the README shows after it
# must be printed
IEX=$(readme_block "$SECTION" sh 2 | grep '^iex ' | sed "s/--sname me /--sname $ME /")
readme_block "$SECTION" elixir 3 >"$TMP/session.exs"
readme_block "$SECTION" "" 1 >"$TMP/want_iex"
iex_session() {
    case "$IEX" in "iex --sname $ME -S mix") ;; *) echo "no iex line: $IEX"; return 1 ;; esac
    grep -q 'after' "$TMP/session.exs" || { echo "the receive has no after"; return 1; }
    # the shell reads the session from a pipe and ends with it
    { cat "$TMP/session.exs"; echo 'System.halt()'; } |
        (cd "$P" && timeout 600 sh -c "$IEX") >"$TMP/iex.out" 2>&1
    while IFS= read -r line; do
        grep -qF -- "$line" "$TMP/iex.out" || { echo "not printed: $line"; cat "$TMP/iex.out"; return 1; }
    done <"$TMP/want_iex"
    [ -s "$TMP/want_iex" ]
}
check "iex --sname me -S mix: the C emitter delivers the event to the shell" iex_session
T1=$(date +%s)

# the release: as written, one command at a time; the rpc once the release
# has booted (the README says to wait for it), printing what the README shows
readme_block "$SECTION" sh 3 >"$TMP/release.sh"
readme_block "$SECTION" "" 2 >"$TMP/want_rpc"
BIN=_build/prod/rel/myapp/bin/myapp
booted() {
    i=0
    while [ $i -lt 300 ]; do
        [ "$(cd "$P" && $BIN rpc 'IO.puts(:init.get_status() == {:started, :started})' 2>/dev/null)" = true ] &&
            return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
release() {
    build=$(grep '^MIX_ENV=prod mix release$' "$TMP/release.sh") &&
        daemon=$(grep "^$BIN daemon\$" "$TMP/release.sh") &&
        rpc=$(grep "^$BIN rpc " "$TMP/release.sh") &&
        stop=$(grep "^$BIN stop\$" "$TMP/release.sh") ||
        { echo "release block:"; cat "$TMP/release.sh"; return 1; }
    (cd "$P" && sh -c "$build") >"$TMP/release.log" 2>&1 || { tail -20 "$TMP/release.log"; return 1; }
    (cd "$P" && sh -c "$daemon") >>"$TMP/release.log" 2>&1 || { tail -20 "$TMP/release.log"; return 1; }
    booted || { echo "the release did not boot"; tail -20 "$TMP/release.log"; return 1; }
    REL_PID=$(cd "$P" && $BIN pid 2>/dev/null)
    (cd "$P" && sh -c "$rpc") >"$TMP/rpc.out" 2>&1
    rc=$?
    (cd "$P" && sh -c "$stop") >>"$TMP/release.log" 2>&1
    src=$?
    # stop returns at once: the node (and its sidecar) end after it
    i=0
    while [ -n "$REL_PID" ] && kill -0 "$REL_PID" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    [ "$rc" -eq 0 ] && [ "$src" -eq 0 ] && [ -n "$REL_PID" ] && ! kill -0 "$REL_PID" 2>/dev/null &&
        [ -s "$TMP/want_rpc" ] && diff "$TMP/want_rpc" "$TMP/rpc.out" >/dev/null ||
        { echo "rpc exited $rc, stop $src; README shows:"; cat "$TMP/want_rpc";
          echo "rpc printed:"; cat "$TMP/rpc.out"; tail -20 "$TMP/release.log"; return 1; }
}
check "mix release, daemon, rpc prints what the README shows, stop" release
T2=$(date +%s)
echo "quick start Elixir: $((T1 - T0)) s to the delivered event, $((T2 - T1)) s more for the release"
summary
