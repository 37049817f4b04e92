#!/bin/sh
# Makes (once) a Debian root holding another Erlang/OTP release, for the OTP
# matrix of `make test`.  Roots are cached outside the clone, in
# $RECKON_CNODE_ROOTS (default /var/cache/reckon_cnode/roots), so a second run
# reuses them.
#
#   test/otp/mkroot.sh SUITE      e.g. trixie (OTP 27) or forky (OTP 29)
#
# Prints the root's path on success.  Exits 3, with the reason on stderr, when
# a root cannot be made here (not root, no debootstrap, registry unreachable);
# the caller reports that OTP as SKIPPED with that reason.
#
# What goes in: a minbase system, the BEAM (erlang-nox, common_test, PropEr,
# eunit), rebar3 and elixir, the libraries of priv/reckon_cnode, and gcc and
# make: the host's executable runs inside the root unchanged where the root's
# C library is as new as the host's, and is built inside the root where it is
# older (a Debian 13 host testing OTP 25 in a Debian 12 root).
set -u

SUITE=${1:?usage: mkroot.sh SUITE}
ROOTS=${RECKON_CNODE_ROOTS:-/var/cache/reckon_cnode/roots}
ROOT=$ROOTS/$SUITE
MIRROR=${RECKON_CNODE_MIRROR:-http://deb.debian.org/debian}
PKGS="erlang-nox erlang-common-test erlang-proper erlang-proper-dev erlang-eunit erlang-dev \
rebar3 elixir libuv1-dev liblmdb-dev libmd-dev libmicrohttpd-dev uthash-dev libssl-dev openssl gcc libc6-dev make procps"

skip() { echo "$*" >&2; exit 3; }

# .ready holds the package list the root was made with.
ready() { [ -f "$ROOT/.ready" ] && [ "$(cat "$ROOT/.ready")" = "$PKGS" ]; }
in_root() {
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"
}
install_pkgs() {
    in_root sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $PKGS" \
        >>"$LOG" 2>&1 || { tail -5 "$LOG" >&2; skip "installing the BEAM into the $SUITE root failed, see $LOG"; }
    in_root apt-get clean >/dev/null 2>&1
    echo "$PKGS" >"$ROOT/.ready"
}

ready && { echo "$ROOT"; exit 0; }
[ "$(id -u)" = 0 ] || skip "not root (debootstrap and chroot need root)"
command -v debootstrap >/dev/null 2>&1 || skip "debootstrap not installed"

mkdir -p "$ROOTS" || skip "cannot create $ROOTS"
# One builder per root; a second caller waits for the first.
exec 9>"$ROOTS/.$SUITE.lock"
flock 9
ready && { echo "$ROOT"; exit 0; }

LOG=$ROOTS/$SUITE.log
if [ -f "$ROOT/.ready" ]; then
    # Made earlier with another package list: bring it up to date.
    echo "mkroot: updating the packages of the $SUITE root (log: $LOG)" >&2
    install_pkgs
    echo "$ROOT"
    exit 0
fi
echo "mkroot: making the $SUITE root in $ROOT (once; log: $LOG)" >&2
rm -rf "$ROOT"
# An older debootstrap has no script for a newer suite; every Debian suite
# since bullseye is made the same way as sid.
SCRIPT=
[ -e "/usr/share/debootstrap/scripts/$SUITE" ] || SCRIPT=/usr/share/debootstrap/scripts/sid
if ! debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" $SCRIPT >"$LOG" 2>&1; then
    rm -rf "$ROOT"
    skip "debootstrap $SUITE failed: $(grep -E '^E:' "$LOG" | tail -1) (log: $LOG)"
fi
# A suite's Release file in a registry snapshot may be past its Valid-Until.
echo 'Acquire::Check-Valid-Until "false";' >"$ROOT/etc/apt/apt.conf.d/99no-valid-until"
echo "deb $MIRROR $SUITE main" >"$ROOT/etc/apt/sources.list"
install_pkgs
echo "$ROOT"
