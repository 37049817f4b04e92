#!/bin/sh
# The README's "TLS distribution" worked example as written: its first sh
# block (a CA, this host's certificate, the ssl_dist optfile) run by bash,
# then its second: the BEAM node `app` (erl with -proto_dist inet_tls, its
# shell fed through a pipe) and the sidecar with --tls-* seeded with it. The
# test asserts the sidecar's log line the README names and that
# net_adm:ping of the sidecar on app answers pong.
# Substituted, and only these: /etc/reckon_cnode/tls by a temporary
# directory, the node names app and reckon_cnode by unique ones;
# `reckon_cnode` is this tree's priv/reckon_cnode (on PATH). Own epmd port,
# HOME and cookie; stops what it starts.
set -u
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
. test/private_epmd.sh
. test/readme/lib.sh
readme_on_exit() { exec 3>&- 2>/dev/null; }
readme_env
PATH=$ROOT/priv:$PATH
export PATH
od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$HOME/.erlang.cookie"
chmod 400 "$HOME/.erlang.cookie"
APP=app_$$
RC=rc_tls_$$
SECTION="## TLS distribution"
DIR=$TMP/tls

readme_block "$SECTION" sh 1 | sed "s|/etc/reckon_cnode/tls|$DIR|g" >"$TMP/certs.sh"
readme_block "$SECTION" sh 2 |
    sed -e "s|/etc/reckon_cnode/tls|$DIR|g" -e "s|-sname app |-sname $APP |" \
        -e "s|\"app@|\"$APP@|" -e "s|--sname reckon_cnode |--sname $RC |" >"$TMP/nodes.sh"
# the second block: its erl line, and the sidecar's command (the rest)
grep '^erl ' "$TMP/nodes.sh" >"$TMP/app.sh"
grep -v -e '^#' -e '^erl ' "$TMP/nodes.sh" >"$TMP/sidecar.sh"

certs() {
    (cd "$TMP" && bash -e certs.sh) >"$TMP/certs.log" 2>&1 &&
        [ -s "$DIR/ca.pem" ] && [ -s "$DIR/node.pem" ] && [ -s "$DIR/node.key" ] &&
        erl -noshell -eval "{ok, [_]} = file:consult(\"$DIR/ssl_dist.conf\"), halt()." ||
        { cat "$TMP/certs.log"; return 1; }
}
check "openssl makes the CA and the certificate; the optfile reads" certs

app() {
    grep -q -- "-sname $APP -proto_dist inet_tls" "$TMP/app.sh" || { cat "$TMP/app.sh"; return 1; }
    mkfifo "$TMP/app.in"
    setsid bash "$TMP/app.sh" <"$TMP/app.in" >"$TMP/app.out" 2>&1 &
    PIDS="$PIDS $!"
    exec 3>"$TMP/app.in"
    await "$TMP/app.out" '^\(.*\)1> ' 30 || { cat "$TMP/app.out"; return 1; }
}
check "erl -sname app -proto_dist inet_tls starts its shell" app

sidecar() {
    grep -q -- "--sname $RC --seed \"$APP@" "$TMP/sidecar.sh" || { cat "$TMP/sidecar.sh"; return 1; }
    setsid bash "$TMP/sidecar.sh" >"$TMP/rc.out" 2>"$TMP/rc.log" </dev/null &
    PIDS="$PIDS $!"
    await "$TMP/rc.log" "connected to $APP@$HOST \\(outbound, TLSv1\\.2" 30 ||
        { cat "$TMP/rc.out" "$TMP/rc.log"; return 1; }
}
check "the sidecar logs connected to app@HOST (outbound, TLSv1.2 ...)" sidecar

ping() {
    echo "net_adm:ping('$RC@$HOST')." >&3
    await "$TMP/app.out" '(^|> )pong$' 30 || { cat "$TMP/app.out" "$TMP/rc.log"; return 1; }
}
check "net_adm:ping('reckon_cnode@HOST') on app answers pong" ping
echo "halt()." >&3 2>/dev/null
summary
