#!/bin/sh
# The shipped unit (deploy/reckon_cnode.service) under a real systemd: a
# Debian trixie root (test/systemd/mkroot.sh, cached) is booted with
# `systemd-nspawn -b` as a container with its own network namespace (only
# its own loopback: its epmd on 4369 and the /health port are apart from
# the host's), on a throw-away overlay so the cached root stays as made.
# `make install DESTDIR=` puts the build into it, the README's Deployment
# steps are run inside, then:
#
#   the container boots (systemctl is-system-running: running)
#   systemd-analyze verify finds nothing to say about the unit
#   systemctl enable --now epmd.socket reckon_cnode (the README's line)
#   the service is active and stays so (no restart)
#   its process runs as reckon_cnode, no capabilities, no_new_privs, seccomp
#   it is registered in the container's epmd
#   a BEAM node (-sname) pings it: pong
#   with --http and --seed (a drop-in, as the unit's comment says) /health
#     answers 200 "ok" once it is connected to the seed, /metrics serves
#   killed with SIGKILL, it is restarted (Restart=on-failure)
#   with a fully qualified host name, a BEAM node run with -name pings it
#   systemctl stop: exit status 0, Result=success, gone from epmd
#   nothing of the unit was killed by the syscall filter (status=31/SYS)
#   the container powers off cleanly
#
# Closing line: "systemd: N passed, M failed". Not root, or no root could be
# made: "systemd: SKIPPED (reason)", a failure under CI (CI=true).
set -u
cd "$(dirname "$0")/../.." || exit 2

PASSED=0
FAILED=0
START=$(date +%s)

skip() {
    echo "systemd: SKIPPED ($*)"
    if [ "${CI:-}" = true ]; then
        echo "systemd: 0 passed, 1 failed"
        exit 1
    fi
    exit 0
}
ok() { echo "  ok    $*"; PASSED=$((PASSED + 1)); }
bad() { echo "  FAIL  $*"; FAILED=$((FAILED + 1)); }
check() { # check DESCRIPTION COMMAND...
    d=$1
    shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}

[ "$(id -u)" = 0 ] || skip "not root: booting a container needs root"
command -v systemd-nspawn >/dev/null 2>&1 || skip "systemd-nspawn not installed (Debian package systemd-container)"
command -v nsenter >/dev/null 2>&1 || skip "nsenter not installed (util-linux)"

ROOT=$(sh test/systemd/mkroot.sh)
rc=$?
[ $rc -eq 0 ] || skip "no root with systemd: see above"

STAGE=$(mktemp -d /var/tmp/reckon_cnode-systemd.XXXXXX) || exit 2
M=$STAGE/root
MACHINE=rcsd$$
NSPAWN_PID=
LEADER=
CGROUPS=

cleanup() {
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill -TERM "$NSPAWN_PID" 2>/dev/null
        i=0
        while kill -0 "$NSPAWN_PID" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.2; i=$((i + 1)); done
        kill -KILL "$NSPAWN_PID" 2>/dev/null
    fi
    # The container's PID 1 (and with it its whole PID namespace) if
    # nspawn did not take it down.
    [ -n "$LEADER" ] && kill -KILL "$LEADER" 2>/dev/null
    [ -n "$NSPAWN_PID" ] && wait "$NSPAWN_PID" 2>/dev/null
    if mountpoint -q "$M" 2>/dev/null; then
        umount -R "$M" 2>/dev/null || umount -R -l "$M"
    fi
    rm -rf "$STAGE"
    for cg in $CGROUPS; do
        [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    rm -rf "/run/systemd/nspawn/propagate/$MACHINE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The cached root stays as it was made: the run writes to an overlay.
mkdir -p "$STAGE/upper" "$STAGE/work" "$M"
mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$STAGE/upper,workdir=$STAGE/work" "$M" ||
    skip "cannot mount an overlay over $ROOT"

echo "== systemd: booting the unit in a trixie container (log: build/systemd/)"
mkdir -p build/systemd
LOG=$(pwd)/build/systemd
if ! make --no-print-directory install DESTDIR="$M" PREFIX=/usr/local >"$LOG/install.log" 2>&1; then
    tail -20 "$LOG/install.log"
    bad "make install DESTDIR=<root> PREFIX=/usr/local"
    echo "systemd: $PASSED passed, $FAILED failed"
    exit 1
fi
ok "make install DESTDIR=<root> PREFIX=/usr/local"

# The host: a short name that resolves, as Debian's installer writes it.
echo rcsd >"$M/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\trcsd\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$M/etc/hosts"
COOKIE=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
# The README's Deployment steps (the cookie from a file of root's).
printf '%s' "$COOKIE" >"$M/root/cookie"
chmod 400 "$M/root/cookie"
if chroot "$M" /bin/sh -ec '
    useradd --system reckon_cnode
    install -d -m 700 -o reckon_cnode /etc/reckon_cnode
    install -m 400 -o reckon_cnode /root/cookie /etc/reckon_cnode/cookie
    rm /root/cookie
    # Boot with nothing of the test enabled: the README line enables them.
    systemctl disable --quiet epmd.socket epmd.service' >"$LOG/setup.log" 2>&1; then
    ok "README deployment steps (useradd, /etc/reckon_cnode/cookie mode 400)"
else
    cat "$LOG/setup.log"
    bad "README deployment steps (useradd, /etc/reckon_cnode/cookie mode 400)"
fi

# With no systemd as the host's PID 1, nspawn makes its cgroups under the
# one it runs in: give it cgroups of its own (removed at the end) rather
# than the roots of the host's hierarchies.
if [ ! -d /run/systemd/system ]; then
    for h in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd /sys/fs/cgroup; do
        case $(stat -f -c %T "$h" 2>/dev/null) in
            cgroup2fs|cgroupfs) ;;
            *) continue ;;
        esac
        [ "$h" = /sys/fs/cgroup ] && [ -n "$CGROUPS" ] && continue
        mkdir -p "$h/reckon_cnode-systemd.$$" && CGROUPS="$CGROUPS $h/reckon_cnode-systemd.$$"
    done
fi

# The unified (cgroup v2) hierarchy in the container, as on a Debian 13
# host, even where the host mounts it beside v1 controllers.
# shellcheck disable=SC2016
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 sh -c '
    for cg in $1; do echo $$ >"$cg/cgroup.procs" || exit 1; done
    shift
    exec systemd-nspawn "$@"' sh "$CGROUPS" \
    -q -D "$M" -b --private-network --register=no --keep-unit \
    --machine="$MACHINE" --console=passive >"$LOG/nspawn.log" 2>&1 &
NSPAWN_PID=$!

in_c() { nsenter -t "$LEADER" -a /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

# The container's PID 1 is nspawn's child once it has exec'd systemd; its
# manager answers once it is up.
state=
i=0
while [ $i -lt 300 ] && kill -0 "$NSPAWN_PID" 2>/dev/null; do
    LEADER=$(pgrep -P "$NSPAWN_PID" | head -1)
    if [ -n "$LEADER" ] && [ "$(cat "/proc/$LEADER/comm" 2>/dev/null)" = systemd ]; then
        state=$(in_c timeout 60 systemctl is-system-running --wait 2>&1)
        case $state in
            *"Failed to connect"*) ;;
            *) break ;;
        esac
    fi
    sleep 0.2
    i=$((i + 1))
done
if [ "$state" = running ]; then
    ok "the container boots with systemd as PID 1 (is-system-running: running)"
else
    bad "the container boots with systemd as PID 1 (is-system-running: ${state:-no container})"
    cat "$LOG/nspawn.log"
    [ -n "$LEADER" ] && in_c systemctl --failed --no-pager
    echo "systemd: $PASSED passed, $FAILED failed"
    exit 1
fi

UNIT=/usr/local/lib/systemd/system/reckon_cnode.service
out=$(in_c systemd-analyze verify "$UNIT" 2>&1)
vrc=$?
[ -n "$out" ] && printf '%s\n' "$out"
check "systemd-analyze verify: no complaint about the unit" test $vrc -eq 0 -a -z "$out"

check "systemctl enable --now epmd.socket reckon_cnode" \
    in_c systemctl enable --now --quiet epmd.socket reckon_cnode

show() { in_c systemctl show -P "$1" reckon_cnode; }
wait_active() {
    j=0
    while [ $j -lt 50 ]; do
        [ "$(in_c systemctl is-active reckon_cnode)" = active ] && return 0
        sleep 0.1
        j=$((j + 1))
    done
    return 1
}
wait_active
sleep 2
if [ "$(in_c systemctl is-active reckon_cnode)" = active ] && [ "$(show NRestarts)" = 0 ]; then
    ok "reckon_cnode.service is active, and still so 2 s later (no restart)"
else
    bad "reckon_cnode.service is active, and still so 2 s later (no restart)"
    in_c systemctl status --no-pager reckon_cnode
fi

PID=$(show MainPID)
st=$(in_c cat "/proc/$PID/status" 2>/dev/null)
field() { printf '%s\n' "$st" | sed -n "s/^$1:[[:space:]]*//p"; }
uid=$(field Uid | awk '{print $2}')
want_uid=$(in_c id -u reckon_cnode)
if [ "$uid" = "$want_uid" ] && [ "$(field CapEff)" = 0000000000000000 ] &&
   [ "$(field CapBnd)" = 0000000000000000 ] && [ "$(field NoNewPrivs)" = 1 ] &&
   [ "$(field Seccomp)" = 2 ]; then
    ok "its process: user reckon_cnode, no capabilities, no_new_privs, seccomp filter"
else
    bad "its process: user reckon_cnode, no capabilities, no_new_privs, seccomp filter"
    printf '%s\n' "$st" | grep -E '^(Uid|Cap|NoNewPrivs|Seccomp)'
fi

registered() {
    j=0
    while [ $j -lt 50 ]; do
        in_c epmd -names 2>/dev/null | grep -q '^name reckon_cnode ' && return 0
        sleep 0.1
        j=$((j + 1))
    done
    return 1
}
check "registered in the container's epmd (epmd.socket)" registered

ping_node() { # ping_node -sname|-name PROBE NODE
    # shellcheck disable=SC2016
    in_c sh -c 'cd /tmp && timeout 30 erl -noshell "$1" "$2" -setcookie "$3" -eval "$4" 2>&1' \
        sh "$1" "$2" "$COOKIE" "io:format(\"~s~n\", [net_adm:ping('$3')]), halt()."
}
out=$(ping_node -sname probe reckon_cnode@rcsd)
check "a BEAM node (-sname) pings reckon_cnode@rcsd: pong" [ "$out" = pong ]
[ "$out" = pong ] || printf '%s\n' "$out"

# --http and --seed, by a drop-in as an operator would add them; the seed
# is a BEAM node run by the container's systemd.
in_c systemd-run --quiet --unit=rc-seed --setenv=HOME=/tmp \
    erl -noshell -sname seed -setcookie "$COOKIE" >/dev/null 2>&1
in_c sh -c 'mkdir -p /etc/systemd/system/reckon_cnode.service.d && cat >/etc/systemd/system/reckon_cnode.service.d/http.conf' <<'EOF'
[Service]
ExecStart=
ExecStart=/usr/local/bin/reckon_cnode --name reckon_cnode@%H \
    --cookie-file /etc/reckon_cnode/cookie \
    --data-dir /var/lib/reckon_cnode \
    --log-level warning \
    --http 127.0.0.1:9464 --seed seed@%H
EOF
in_c systemctl daemon-reload
in_c systemctl restart reckon_cnode
health() {
    j=0
    while [ $j -lt 100 ]; do
        [ "$(in_c curl -sS --max-time 2 --fail-with-body http://127.0.0.1:9464/health 2>/dev/null)" = ok ] && return 0
        sleep 0.1
        j=$((j + 1))
    done
    in_c curl -sS --max-time 2 --fail-with-body http://127.0.0.1:9464/health
    return 1
}
check "with --http and --seed: /health answers 200 \"ok\" (connected to the seed)" health
metrics() {
    in_c curl -sS --max-time 2 http://127.0.0.1:9464/metrics |
        awk '$1 == "reckon_cnode_connections" && $2 >= 1 { found = 1 } END { exit !found }'
}
check "/metrics serves reckon_cnode_connections >= 1" metrics

PID=$(show MainPID)
# Never kill 0 (this script's process group) or the container's PID 1.
case $PID in
    ''|*[!0-9]*|0|1) PID= ;;
    *) in_c kill -KILL "$PID" ;;
esac
restarted() {
    [ -n "$PID" ] || return 1
    j=0
    while [ $j -lt 100 ]; do
        if [ "$(show NRestarts)" = 1 ] && [ "$(in_c systemctl is-active reckon_cnode)" = active ]; then
            p=$(show MainPID)
            [ "$p" != 0 ] && [ "$p" != "$PID" ] && return 0
        fi
        sleep 0.1
        j=$((j + 1))
    done
    return 1
}
check "killed with SIGKILL, it is restarted (Restart=on-failure, RestartSec=2)" restarted

# Long names: with a fully qualified host name the unit's
# reckon_cnode@%H serves a cluster run with -name.
in_c rm -f /etc/systemd/system/reckon_cnode.service.d/http.conf
in_c sh -c 'echo "127.0.1.2 rcsd.reckon.test" >>/etc/hosts && hostname rcsd.reckon.test'
in_c systemctl daemon-reload
in_c systemctl restart reckon_cnode
wait_active
registered
out=$(ping_node -name probe@rcsd.reckon.test reckon_cnode@rcsd.reckon.test)
check "host name rcsd.reckon.test: a BEAM node (-name) pings reckon_cnode@rcsd.reckon.test: pong" [ "$out" = pong ]
[ "$out" = pong ] || printf '%s\n' "$out"

INV=$(show InvocationID)
if in_c systemctl stop reckon_cnode && [ "$(show Result)" = success ] &&
   [ "$(show ExecMainCode)" = 1 ] && [ "$(show ExecMainStatus)" = 0 ] &&
   [ "$(in_c systemctl is-active reckon_cnode)" = inactive ] &&
   ! in_c epmd -names 2>/dev/null | grep -q '^name reckon_cnode ' &&
   in_c journalctl --sync && in_c journalctl --no-pager -o cat INVOCATION_ID="$INV" | grep -q 'Deactivated successfully'; then
    ok "systemctl stop: exit status 0, Result=success, gone from epmd, \"Deactivated successfully\""
else
    bad "systemctl stop: exit status 0, Result=success, gone from epmd, \"Deactivated successfully\""
    in_c systemctl status --no-pager reckon_cnode
fi

in_c journalctl --no-pager -b -u reckon_cnode >"$LOG/journal.log" 2>&1
if grep -q 'status=31/SYS' "$LOG/journal.log"; then
    bad "no process of the unit killed by its syscall filter (status=31/SYS): see $LOG/journal.log"
    grep 'status=31/SYS' "$LOG/journal.log"
else
    ok "no process of the unit killed by its syscall filter (status=31/SYS)"
fi

kill -TERM "$NSPAWN_PID"
i=0
while kill -0 "$NSPAWN_PID" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.2; i=$((i + 1)); done
wait "$NSPAWN_PID" 2>/dev/null
nrc=$?
if ! kill -0 "$NSPAWN_PID" 2>/dev/null && [ $nrc -eq 0 ]; then
    ok "the container powers off cleanly"
    NSPAWN_PID=
    LEADER=
else
    bad "the container powers off cleanly (systemd-nspawn: $nrc)"
    tail -20 "$LOG/nspawn.log"
fi

echo "  ($(($(date +%s) - START)) s)"
echo "systemd: $PASSED passed, $FAILED failed"
[ $FAILED -eq 0 ]
