#!/bin/sh
# The README's "Using it from C" as written: its sh block (make install, then
# cc with pkg-config) builds examples/producer.c and the README's C program
# (its c block, saved as ingest.c), and both run against a BEAM node `app`
# (cookie secret) whose process is an emitter of {orders, <<"created">>,
# emitters}: the test asserts their events reach that process. Then the
# section's other commands: `make examples/producer` and the producer it
# makes, and the bench/cnode_producer line (100000 events, all counted).
# Substituted, and only these: PREFIX /opt/reckon_cnode by a temporary one,
# the node names app@myhost and ingest by unique ones. Own epmd port; stops
# what it starts.
set -u
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
. test/private_epmd.sh
. test/readme/lib.sh
readme_env
APP=app_$$
SECTION="## Using it from C"

# The build, in a scratch directory holding ingest.c and the repository's
# examples/; `make` there is the repository's make.
mkdir "$TMP/work"
ln -s "$ROOT/examples" "$TMP/work/examples"
readme_block "$SECTION" sh 1 | sed "s|/opt/reckon_cnode|$TMP/opt|g" >"$TMP/build.sh"
readme_block "$SECTION" c 1 |
    sed -e "s|\"app@myhost\"|\"$APP@$HOST\"|" -e "s|cfg.sname = \"ingest\"|cfg.sname = \"ingest_$$\"|" \
        >"$TMP/work/ingest.c"
snippet_named() { grep -q "\"$APP@$HOST\"" "$TMP/work/ingest.c" && grep -q "\"ingest_$$\"" "$TMP/work/ingest.c"; }
check "the README's C program names the seed app@myhost and the node ingest" snippet_named
build() {
    (cd "$TMP/work" && ROOT=$ROOT bash -e -c \
        'make() { command make --no-print-directory -C "$ROOT" "$@"; }; . ../build.sh') \
        >"$TMP/build.log" 2>&1 && [ -x "$TMP/work/producer" ] && [ -x "$TMP/work/ingest" ] ||
        { tail -30 "$TMP/build.log"; return 1; }
}
check "make install, then cc with pkg-config builds producer and ingest" build

# The BEAM node app: pg scope reckon_db_pg, a process in the group that
# prints every {broadcast, Topic, Event} it gets, except cnode_producer's
# (one event id), which it counts, printing the count every 100000.
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
    Loop(0).' >"$TMP/app.out" 2>&1 </dev/null &
PIDS="$PIDS $!"
await "$TMP/app.out" '^ready$' 30 || { echo "readme: the BEAM node did not start:"; cat "$TMP/app.out"; }

ingest() {
    timeout 60 "$TMP/work/ingest" >"$TMP/ingest.out" 2>&1 &&
        await "$TMP/app.out" '^orders:created e-1 order_created \{"id": 1\}$' 10 ||
        { cat "$TMP/ingest.out" "$TMP/app.out"; return 1; }
}
check "the README's C program: its event reaches the emitter on app" ingest

# "examples/producer app@myhost secret 10", with the producer cc built.
producer() {
    timeout 60 "$TMP/work/producer" "$APP@$HOST" secret 10 >"$TMP/producer.out" 2>&1 &&
        await "$TMP/app.out" '^orders:created event-9 order_created' 10 &&
        [ "$(grep -Ec '^orders:created event-[0-9] order_created \{"order": [0-9]\}$' "$TMP/app.out")" -eq 10 ] ||
        { cat "$TMP/producer.out" "$TMP/app.out"; return 1; }
}
check "producer $APP@$HOST secret 10: ten events reach the emitter on app" producer

# "`make examples/producer`, then `examples/producer app@myhost secret 10`",
# from the repository's top.
made_producer() {
    make --no-print-directory examples/producer >"$TMP/make.log" 2>&1 &&
        timeout 60 examples/producer "$APP@$HOST" secret 10 >"$TMP/producer.out" 2>&1 &&
        await "$TMP/app.out" '^orders:created event-9 order_created' 10 &&
        i=0 && while [ "$(grep -Ec '^orders:created event-[0-9] order_created' "$TMP/app.out")" -lt 20 ] &&
                  [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done &&
        [ "$(grep -Ec '^orders:created event-[0-9] order_created \{"order": [0-9]\}$' "$TMP/app.out")" -eq 20 ] ||
        { cat "$TMP/make.log" "$TMP/producer.out" "$TMP/app.out"; return 1; }
}
check "make examples/producer, then examples/producer $APP@$HOST secret 10" made_producer

# The cnode_producer line of the section, as written but for the seed.
BENCH=$(sed -n "/^$SECTION\$/,/^## /p" README.md | tr '\n' ' ' |
    grep -o '`bench/cnode_producer --seed [^`]*`' | tr -d '`' | sed "s|app@myhost|$APP@$HOST|")
bench_producer() {
    case "$BENCH" in *"--count 100000 "*) ;; *) echo "no cnode_producer line: $BENCH"; return 1 ;; esac
    make --no-print-directory bench/cnode_producer >"$TMP/make.log" 2>&1 &&
        timeout 120 sh -c "$BENCH" >"$TMP/bench.out" 2>&1 &&
        grep -q '^events 100000$' "$TMP/bench.out" &&
        await "$TMP/app.out" '^cnode_producer events: 100000$' 60 ||
        { cat "$TMP/make.log" "$TMP/bench.out"; tail -5 "$TMP/app.out"; return 1; }
}
check "$BENCH: 100000 events reach the emitter on app" bench_producer
summary
