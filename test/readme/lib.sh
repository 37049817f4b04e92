# Sourced by the README tests (POSIX sh): reading code blocks out of
# README.md, waiting for output, counting checks, stopping what was started.

# readme_block HEADING LANG N: the Nth ```LANG block (LANG empty: a bare
# ```) of the README section whose heading line is HEADING, without its
# indentation. Prints nothing if there is no such block.
readme_block() {
    awk -v h="$1" -v lang="$2" -v n="$3" '
        $0 == h { after = 1; next }
        !after { next }
        state == 0 && /^## / { exit }
        state == 0 && /^ *```/ {
            match($0, /^ */); ind = RLENGTH; tag = substr($0, ind + 4)
            if (tag == lang) k++
            state = (tag == lang && k == n) ? 2 : 1
            next
        }
        state != 0 && /^ *```$/ { if (state == 2) exit; state = 0; next }
        state == 2 { print substr($0, ind + 1) }
    ' README.md
}

# await FILE EXTENDED-REGEX SECONDS: 0 once a line of FILE matches.
await() {
    _i=0
    while [ "$_i" -lt $(($3 * 10)) ]; do
        grep -Eq -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
        _i=$((_i + 1))
    done
    return 1
}

# Checks: `check NAME COMMAND...` runs the command and counts the result.
PASSED=0
FAILED=0
check() {
    _name=$1
    shift
    if "$@"; then
        echo "ok   $_name"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL $_name"
        FAILED=$((FAILED + 1))
    fi
}
summary() {
    echo "readme: $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

# stop_group PID: TERM the process group PID leads (started with setsid),
# wait up to 5 s, then KILL it.
stop_group() {
    [ -n "$1" ] || return 0
    kill -TERM "-$1" 2>/dev/null
    _i=0
    while kill -0 "-$1" 2>/dev/null && [ "$_i" -lt 50 ]; do
        sleep 0.1
        _i=$((_i + 1))
    done
    kill -KILL "-$1" 2>/dev/null
    return 0
}

# One part's surroundings: a temp dir as HOME, a private epmd, and at exit
# every process group in $PIDS stopped (the last started first), after the
# part's own readme_on_exit if it defines one. Sets TMP, HOME, HOST and
# ERL_EPMD_PORT.
PIDS=""
readme_cleanup() {
    command -v readme_on_exit >/dev/null 2>&1 && readme_on_exit
    _rev=""
    for _p in $PIDS; do _rev="$_p $_rev"; done
    for _p in $_rev; do stop_group "$_p"; done
    [ -n "$EPMD_PORT" ] && epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1
    rm -rf "$TMP"
}
readme_env() {
    TMP=$(mktemp -d) || exit 2
    EPMD_PORT=""
    trap readme_cleanup EXIT
    trap 'exit 130' INT TERM
    start_private_epmd
    [ -n "$EPMD_PORT" ] || { echo "readme: could not start epmd"; exit 2; }
    ERL_EPMD_PORT=$EPMD_PORT
    HOME=$TMP
    export ERL_EPMD_PORT HOME
    HOST=$(hostname -s)
}
