# Sourced by the test runners (POSIX sh): start_private_epmd picks a free
# loopback port, starts `epmd -port P -daemon` on it and sets EPMD_PORT, so
# tests never touch a developer's own nodes. The caller kills that epmd
# (`epmd -port "$EPMD_PORT" -kill`) when it is done. Returns 1 on failure.

free_port() {
    erl -noshell -eval '{ok, S} = gen_tcp:listen(0, [{ip, {127,0,0,1}}]),
                        {ok, P} = inet:port(S), io:format("~b", [P]),
                        halt().'
}

start_private_epmd() {
    EPMD_PORT=""
    for _attempt in 1 2 3 4 5; do
        P=$(free_port) || return 1
        # -relaxed_command_check: `epmd -kill` works even if a node is registered
        epmd -port "$P" -daemon -relaxed_command_check
        i=0
        while [ $i -lt 50 ]; do
            if epmd -port "$P" -names >/dev/null 2>&1; then EPMD_PORT=$P; return 0; fi
            sleep 0.1
            i=$((i + 1))
        done
    done
    return 1
}
