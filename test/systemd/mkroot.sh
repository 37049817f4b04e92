#!/bin/sh
# Makes (once) the Debian root that test/systemd/run.sh boots with systemd as
# its PID 1. Cached beside the OTP matrix's roots, in $RECKON_CNODE_ROOTS
# (default /var/cache/reckon_cnode/roots), under its own name; remade or
# brought up to date when the package list below changes (.ready holds the
# list it was made with).
#
# Prints the root's path on success. Exits 3, with the reason on stderr, when
# a root cannot be made here (not root, no debootstrap, registry unreachable).
#
# What goes in: a minbase trixie, systemd, epmd and erl (erlang-base: the
# unit wants epmd.socket, and a BEAM node pings the C node), curl for the
# /health probe, and the run-time libraries of priv/reckon_cnode, which is
# built on the host and installed into the root by `make install DESTDIR=`.
set -u

SUITE=trixie
ROOTS=${RECKON_CNODE_ROOTS:-/var/cache/reckon_cnode/roots}
ROOT=$ROOTS/systemd-$SUITE
MIRROR=${RECKON_CNODE_MIRROR:-http://deb.debian.org/debian}
PKGS="systemd erlang-base curl procps libuv1t64 liblmdb0 libmd0 libmicrohttpd12t64 libssl3t64"

skip() { echo "$*" >&2; exit 3; }

ready() { [ -f "$ROOT/.ready" ] && [ "$(cat "$ROOT/.ready")" = "$PKGS" ]; }
in_root() {
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"
}
install_pkgs() {
    in_root sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $PKGS" \
        >>"$LOG" 2>&1 || { tail -5 "$LOG" >&2; skip "installing systemd into the $SUITE root failed, see $LOG"; }
    in_root apt-get clean >/dev/null 2>&1
    echo "$PKGS" >"$ROOT/.ready"
}

ready && { echo "$ROOT"; exit 0; }
[ "$(id -u)" = 0 ] || skip "not root (debootstrap and chroot need root)"
command -v debootstrap >/dev/null 2>&1 || skip "debootstrap not installed"

mkdir -p "$ROOTS" || skip "cannot create $ROOTS"
exec 9>"$ROOTS/.systemd-$SUITE.lock"
flock 9
ready && { echo "$ROOT"; exit 0; }

LOG=$ROOTS/systemd-$SUITE.log
if [ -f "$ROOT/.ready" ]; then
    echo "mkroot: updating the packages of the systemd-$SUITE root (log: $LOG)" >&2
    install_pkgs
    echo "$ROOT"
    exit 0
fi
echo "mkroot: making the systemd-$SUITE root in $ROOT (once; log: $LOG)" >&2
rm -rf "$ROOT"
SCRIPT=
[ -e "/usr/share/debootstrap/scripts/$SUITE" ] || SCRIPT=/usr/share/debootstrap/scripts/sid
if ! debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" $SCRIPT >"$LOG" 2>&1; then
    rm -rf "$ROOT"
    skip "debootstrap $SUITE failed: $(grep -E '^E:' "$LOG" | tail -1) (log: $LOG)"
fi
echo 'Acquire::Check-Valid-Until "false";' >"$ROOT/etc/apt/apt.conf.d/99no-valid-until"
echo "deb $MIRROR $SUITE main" >"$ROOT/etc/apt/sources.list"
install_pkgs
echo "$ROOT"
