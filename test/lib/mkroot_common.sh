# Sourced by test/otp/mkroot.sh and test/systemd/mkroot.sh: makes (once) a
# minbase Debian root with a package list, cached in $RECKON_CNODE_ROOTS
# (default /var/cache/reckon_cnode/roots), and remade or brought up to date
# when the package list changes (.ready holds the list it was made with).
#
#   mkroot NAME SUITE WHAT PKGS
#
# makes $ROOTS/NAME from the Debian SUITE with PKGS installed (WHAT names
# them in the failure message), with the lock $ROOTS/.NAME.lock and the log
# $ROOTS/NAME.log. Prints the root's path and exits 0 on success; exits 3,
# with the reason on stderr, when a root cannot be made here (not root, no
# debootstrap, registry unreachable).

skip() { echo "$*" >&2; exit 3; }

mkroot() {
    NAME=$1 SUITE=$2 WHAT=$3 PKGS=$4
    ROOTS=${RECKON_CNODE_ROOTS:-/var/cache/reckon_cnode/roots}
    ROOT=$ROOTS/$NAME
    MIRROR=${RECKON_CNODE_MIRROR:-http://deb.debian.org/debian}

    mkroot_ready && { echo "$ROOT"; exit 0; }
    [ "$(id -u)" = 0 ] || skip "not root (debootstrap and chroot need root)"
    command -v debootstrap >/dev/null 2>&1 || skip "debootstrap not installed"

    mkdir -p "$ROOTS" || skip "cannot create $ROOTS"
    # One builder per root; a second caller waits for the first.
    exec 9>"$ROOTS/.$NAME.lock"
    flock 9
    mkroot_ready && { echo "$ROOT"; exit 0; }

    LOG=$ROOTS/$NAME.log
    if [ -f "$ROOT/.ready" ]; then
        # Made earlier with another package list: bring it up to date.
        echo "mkroot: updating the packages of the $NAME root (log: $LOG)" >&2
        mkroot_install
        echo "$ROOT"
        exit 0
    fi
    echo "mkroot: making the $NAME root in $ROOT (once; log: $LOG)" >&2
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
    mkroot_install
    echo "$ROOT"
    exit 0
}

mkroot_ready() { [ -f "$ROOT/.ready" ] && [ "$(cat "$ROOT/.ready")" = "$PKGS" ]; }

mkroot_in_root() {
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"
}

mkroot_install() {
    mkroot_in_root sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $PKGS" \
        >>"$LOG" 2>&1 || { tail -5 "$LOG" >&2; skip "installing $WHAT into the $SUITE root failed, see $LOG"; }
    mkroot_in_root apt-get clean >/dev/null 2>&1
    echo "$PKGS" >"$ROOT/.ready"
}
