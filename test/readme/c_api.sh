#!/bin/sh
# The README's "Quick start: C" as written: its first sh block (make install
# into $HOME/.local, then cc with pkg-config) builds the README's C program
# (its c block, saved as ingest.c); its second starts the one-line BEAM node
# `app` that hosts an emitter and runs ./ingest against it. The test asserts
# ingest's exit status 0, that both print the lines the README shows, and
# that ingest exits 1 with its reason on stderr when no emitter appears.
# Then "The C API"'s commands: `make examples/producer` and the producer it
# makes (exit 1 and a reason without an emitter), and the
# bench/cnode_producer line (100000 events, all counted), against a BEAM
# node of the test's that counts what it gets.
# Substituted, and only these: the node names app, app@myhost and ingest by
# unique ones. HOME is a temporary directory (so $HOME/.local is one). Own
# epmd port; stops what it starts.
set -u
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
. test/private_epmd.sh
. test/readme/lib.sh
readme_env
APP=app_$$
SECTION="## Quick start: C"

# The build, in a scratch directory that holds ingest.c; `make` there is
# the repository's make (the README runs it from the clone).
T0=$(date +%s)
mkdir "$TMP/work"
readme_block "$SECTION" sh 1 >"$TMP/build.sh"
readme_block "$SECTION" c 1 | sed 's|cfg.sname = "ingest"|cfg.sname = "ingest_'$$'"|' >"$TMP/work/ingest.c"
named() { grep -q "\"ingest_$$\"" "$TMP/work/ingest.c"; }
check "the README's C program names its node ingest" named
build() {
    (cd "$TMP/work" && ROOT=$ROOT bash -e -c \
        'make() { command make --no-print-directory -C "$ROOT" "$@"; }; . ../build.sh') \
        >"$TMP/build.log" 2>&1 && [ -x "$TMP/work/ingest" ] ||
        { tail -30 "$TMP/build.log"; return 1; }
}
check "make install PREFIX=\$HOME/.local, then cc with pkg-config builds ingest" build
# The project's rule for C, on the program it shows its users.
warnings() {
    FLAGS=$(PKG_CONFIG_PATH=$HOME/.local/lib/pkgconfig pkg-config --cflags --libs reckon_cnode) &&
        for cc in gcc clang; do
            # shellcheck disable=SC2086
            $cc -std=c11 -Wall -Wextra -Werror -o "$TMP/ingest_$cc" "$TMP/work/ingest.c" $FLAGS ||
                return 1
        done
}
check "ingest.c builds with -std=c11 -Wall -Wextra -Werror under gcc and clang" warnings

# The second block: the emitter node (its erl line, run in the background)
# and the ingest command, with the node names made unique.
readme_block "$SECTION" sh 2 | sed -e "s|-sname app |-sname $APP |" -e "s|\"app@|\"$APP@|" >"$TMP/run.sh"
ERL_LINE=$(grep '^erl ' "$TMP/run.sh" | sed 's/ &$//')
INGEST_LINE=$(grep '^\./ingest ' "$TMP/run.sh")
readme_block "$SECTION" "" 1 >"$TMP/want"
quick_start() {
    case "$ERL_LINE" in *"-sname $APP "*) ;; *) echo "no erl line: $ERL_LINE"; return 1 ;; esac
    case "$INGEST_LINE" in *"\"$APP@"*) ;; *) echo "no ingest line: $INGEST_LINE"; return 1 ;; esac
    setsid sh -c "cd '$TMP/work' && $ERL_LINE" >"$TMP/app.out" 2>&1 </dev/null &
    APP_PID=$!
    PIDS="$PIDS $APP_PID"
    (cd "$TMP/work" && timeout 60 sh -c "$INGEST_LINE") >"$TMP/ingest.out" 2>"$TMP/ingest.err"
    rc=$?
    [ "$rc" -eq 0 ] || { echo "ingest exited $rc"; cat "$TMP/ingest.out" "$TMP/ingest.err" "$TMP/app.out"; return 1; }
    # each line the README shows comes from one of the two
    while IFS= read -r line; do
        grep -qxF "$line" "$TMP/ingest.out" || await "$TMP/app.out" "^$line\$" 10 ||
            { echo "nobody printed: $line"; cat "$TMP/ingest.out" "$TMP/app.out"; return 1; }
    done <"$TMP/want"
    [ -s "$TMP/want" ]
}
check "the emitter node and ./ingest: exit 0, both print what the README shows" quick_start
echo "quick start C: $(($(date +%s) - T0)) s (make install, two builds of ingest.c, the run)"

# ingest without an emitter (the node app has halted after its event):
# exit 1 and the reason on stderr. examples/producer likewise, at once.
# (it halts once it has printed its event, or after 60 s without one)
gone() { wait "$APP_PID"; }
make --no-print-directory examples/producer >"$TMP/make.log" 2>&1
no_emitter() {
    gone || { echo "the node app did not halt"; return 1; }
    timeout 60 examples/producer "$APP@$HOST" secret 1 >"$TMP/np.out" 2>"$TMP/np.err" &
    np=$!
    (cd "$TMP/work" && timeout 60 sh -c "$INGEST_LINE") >"$TMP/ni.out" 2>"$TMP/ni.err"
    rc=$?
    wait "$np"
    prc=$?
    [ "$rc" -eq 1 ] && grep -q '^ingest: no emitter of {orders, <<"created">>, emitters} within 10 s' "$TMP/ni.err" &&
        [ "$prc" -eq 1 ] && grep -q '^no emitter joined {orders, <<"created">>, emitters} within 10 s' "$TMP/np.err" ||
        { echo "ingest exited $rc, producer $prc"; cat "$TMP/ni.out" "$TMP/ni.err" "$TMP/np.out" "$TMP/np.err"; return 1; }
}
check "no emitter: ingest and examples/producer exit 1 and say why on stderr" no_emitter

# The C API's commands, against a BEAM node `app` of the test's: pg scope
# reckon_db_pg, a process in the group that prints every {broadcast, Topic,
# Event} it gets, except cnode_producer's (one event id), which it counts,
# printing the count every 100000.
APP=app2_$$
setsid erl -noshell -sname "$APP" -setcookie secret -eval '
    {ok, _} = pg:start(reckon_db_pg),
    ok = pg:join(reckon_db_pg, {orders, <<"created">>, emitters}, self()),
    io:format("ready~n"),
    Loop = fun L(N) ->
                   receive
                       {broadcast, _, {event, <<"0f8fad5b-d9cb-469f-a165-70867728950e">>, _, _, _,
                                       _, _, _, _, _, _, _}} ->
                           (N + 1) rem 100000 =:= 0 andalso
                               io:format("cnode_producer events: ~b~n", [N + 1]),
                           L(N + 1);
                       {broadcast, Topic, E} ->
                           io:format("~s ~s ~s ~s~n",
                                     [Topic, element(2, E), element(3, E), element(6, E)]),
                           L(N)
                   after 120000 -> halt()
                   end
           end,
    Loop(0).' >"$TMP/app2.out" 2>&1 </dev/null &
PIDS="$PIDS $!"
await "$TMP/app2.out" '^ready$' 30 || { echo "readme: the BEAM node did not start:"; cat "$TMP/app2.out"; }

# "`make examples/producer`, then `examples/producer app@myhost secret 10`",
# from the repository's top.
made_producer() {
    make --no-print-directory examples/producer >"$TMP/make.log" 2>&1 &&
        timeout 60 examples/producer "$APP@$HOST" secret 10 >"$TMP/producer.out" 2>&1 &&
        await "$TMP/app2.out" '^orders:created event-9 order_created' 10 &&
        [ "$(grep -Ec '^orders:created event-[0-9] order_created \{"order": [0-9]\}$' "$TMP/app2.out")" -eq 10 ] ||
        { cat "$TMP/make.log" "$TMP/producer.out" "$TMP/app2.out"; return 1; }
}
check "make examples/producer, then examples/producer $APP@$HOST secret 10" made_producer

# The cnode_producer line of "The C API", as written but for the seed.
BENCH=$(sed -n "/^## The C API\$/,/^## /p" README.md | tr '\n' ' ' |
    grep -o '`bench/cnode_producer --seed [^`]*`' | tr -d '`' | sed "s|app@myhost|$APP@$HOST|")
bench_producer() {
    case "$BENCH" in *"--count 100000 "*) ;; *) echo "no cnode_producer line: $BENCH"; return 1 ;; esac
    make --no-print-directory bench/cnode_producer >"$TMP/make.log" 2>&1 &&
        timeout 120 sh -c "$BENCH" >"$TMP/bench.out" 2>&1 &&
        grep -q '^events 100000$' "$TMP/bench.out" &&
        await "$TMP/app2.out" '^cnode_producer events: 100000$' 60 ||
        { cat "$TMP/make.log" "$TMP/bench.out"; tail -5 "$TMP/app2.out"; return 1; }
}
check "$BENCH: 100000 events reach the emitter on app" bench_producer
summary
