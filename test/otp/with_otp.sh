#!/bin/sh
# Runs a command of this clone on a given OTP release:
#
#   test/otp/with_otp.sh RELEASE COMMAND [ARG]...     RELEASE: 25, 27 or 29
#
# On the host when the host's OTP is that release; otherwise inside a Debian
# root that has it (made once by test/otp/mkroot.sh, cached outside the
# clone). There the clone is bind-mounted at its own path, in a private mount
# namespace that vanishes with the command; loopback and epmd are the host's.
# The host's priv/reckon_cnode runs there unchanged when the root's C library
# is at least as new as the host's; otherwise (a newer host than the root)
# the same sources are built inside the root, into build/root-SUITE (and the
# test build into build/root-SUITE-test), and those executables are
# bind-mounted over priv/reckon_cnode and build/test-node/reckon_cnode. The
# command runs in the clone's top directory with
# REBAR_BASE_DIR=_build/otpRELEASE, so each release compiles the shim for
# itself.
# Exit status: the command's; 3 with the reason on stderr when the release
# cannot be had here (no root, no debootstrap, no registry, no mounts).
set -u

REL=${1:?usage: with_otp.sh RELEASE COMMAND [ARG]...}
shift
[ $# -gt 0 ] || { echo "usage: with_otp.sh RELEASE COMMAND [ARG]..." >&2; exit 2; }
cd "$(dirname "$0")/../.." || exit 2
SRC=$(pwd -P)

case "$REL" in
    25) SUITE=bookworm ;;
    27) SUITE=trixie ;;
    29) SUITE=forky ;;
    *) echo "no Debian release known for OTP $REL" >&2; exit 2 ;;
esac

export REBAR_BASE_DIR="$SRC/_build/otp$REL"
host_rel=$(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().' 2>/dev/null)
if [ "$host_rel" = "$REL" ]; then
    exec "$@"
fi

mkdir -p build/otp
ROOT=$(sh test/otp/mkroot.sh "$SUITE" 2>"build/otp/mkroot-$SUITE.err")
if [ $? -ne 0 ] || [ -z "$ROOT" ]; then
    tail -n 1 "build/otp/mkroot-$SUITE.err" >&2
    exit 3
fi
command -v unshare >/dev/null 2>&1 || { echo "unshare not installed" >&2; exit 3; }
cp /etc/hosts "$ROOT/etc/hosts"
mkdir -p "$ROOT$SRC"
# glibc versions as "2.36": a root older than the host cannot run what the
# host linked (symbol versions), so it gets its own build.
libc_of() { "$@" getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}'; }
older() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$1" ]; }
OWN_BUILD=""
# RECKON_CNODE_BUILD_IN_ROOT=1 forces the own build (to test this path).
if [ -n "${RECKON_CNODE_BUILD_IN_ROOT:-}" ] || older "$(libc_of chroot "$ROOT")" "$(libc_of env)"; then
    OWN_BUILD="build/root-$SUITE"
fi
export ROOT SRC OWN_BUILD
# shellcheck disable=SC2016
exec unshare --mount --propagation private sh -c '
    mount -t proc proc "$ROOT/proc" &&
    mount --bind /dev "$ROOT/dev" &&
    mount --bind /dev/pts "$ROOT/dev/pts" &&
    mount -t sysfs sys "$ROOT/sys" &&
    mount --bind "$SRC" "$ROOT$SRC" || { echo "cannot mount into $ROOT" >&2; exit 3; }
    if [ -n "$OWN_BUILD" ]; then
        in_root() {
            chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/bin:/bin:/usr/sbin:/sbin "$@"
        }
        in_root make -s -C "$SRC" BUILD="$OWN_BUILD" "$OWN_BUILD/reckon_cnode" >&2 &&
            in_root make -s -C "$SRC" BUILD="$OWN_BUILD-test" EXTRA_CFLAGS=-DRC_TEST_HOOKS \
                "$OWN_BUILD-test/reckon_cnode" >&2 ||
            { echo "building the C node inside $ROOT failed" >&2; exit 1; }
        mount --bind "$SRC/$OWN_BUILD/reckon_cnode" "$ROOT$SRC/priv/reckon_cnode" &&
            mount --bind "$SRC/$OWN_BUILD-test/reckon_cnode" \
                "$ROOT$SRC/build/test-node/reckon_cnode" || exit 3
    fi
    cd "$ROOT$SRC" || exit 3
    exec chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
        PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
        REBAR_BASE_DIR="$REBAR_BASE_DIR" CI="${CI:-}" \
        sh -c "cd \"\$1\" && shift && exec \"\$@\"" sh "$SRC" "$@"
' sh "$@"
