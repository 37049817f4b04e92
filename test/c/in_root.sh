#!/bin/sh
# The C unit tests (test/c, cmocka) built and run inside another Debian
# release's root, so that a newer compiler or library (Debian 13: gcc 14,
# libmicrohttpd 1.0, libuv 1.50) shows its differences before a user does.
# The root is the OTP matrix's (test/otp/mkroot.sh, made once and cached
# outside the clone); the clone is bind-mounted into it at its own path, in
# a private mount namespace that vanishes with the run, and built there into
# build/root-SUITE-c. Prints one line:
#
#   C units on Debian 13 (trixie): N passed, 0 failed (M programs)
#   C units on Debian 13 (trixie): SKIPPED (why)
#
#   test/c/in_root.sh [SUITE]       SUITE: trixie (default), forky, bookworm
#
# The full output goes to build/root-SUITE-c/c.log; on failure the last
# lines of each failing program are printed too. Exit status: 0 passed, 1 failed, 3 skipped; under CI
# (CI=true) a skip is a failure, as CI must prove every release.
set -u

# Inside the root (run by the part below): build the library and every
# test program, then run each (5 minutes at most: a hung test fails instead
# of hanging make test), with its own output in OUT/NAME.out and a line per
# program in the log.
if [ "${1:-}" = --inside ]; then
    OUT=$2
    echo "== $(gcc --version | head -n 1); libmicrohttpd $(dpkg-query -W -f '${Version}' libmicrohttpd-dev); libuv $(dpkg-query -W -f '${Version}' libuv1-dev)"
    make -s -j2 BUILD="$OUT" c-tests || { echo "BUILD FAILED"; exit 1; }
    for src in test/c/test_*.c; do
        name=$(basename "$src" .c)
        timeout 300 "$OUT/tests/$name" >"$OUT/$name.out" 2>&1
        echo "== $name: exit $?"
        cat "$OUT/$name.out"
    done
    exit 0
fi

SUITE=${1:-trixie}
case "$SUITE" in
    bookworm) LABEL="Debian 12 (bookworm)" ;;
    trixie) LABEL="Debian 13 (trixie)" ;;
    forky) LABEL="Debian 14 (forky)" ;;
    *) echo "no Debian release known as $SUITE" >&2; exit 2 ;;
esac
skip() {
    if [ "${CI:-}" = true ]; then
        echo "C units on $LABEL: SKIPPED under CI ($1)"
        exit 1
    fi
    echo "C units on $LABEL: SKIPPED ($1)"
    exit 3
}

cd "$(dirname "$0")/../.." || exit 2
SRC=$(pwd -P)
OUT=build/root-$SUITE-c
LOG=$OUT/c.log
[ "$(id -u)" = 0 ] || skip "not root: mounts and chroot need root"
mkdir -p "$OUT"
rm -f "$OUT"/test_*.out

if ! ROOT=$(sh test/otp/mkroot.sh "$SUITE" 2>"$OUT/mkroot.err") || [ -z "$ROOT" ]; then
    skip "$(tail -n 1 "$OUT/mkroot.err")"
fi
command -v unshare >/dev/null 2>&1 || skip "unshare not installed"
mkdir -p "$ROOT$SRC"
cp /etc/hosts "$ROOT/etc/hosts"

export ROOT SRC OUT
# shellcheck disable=SC2016
unshare --mount --propagation private sh -c '
    mount -t proc proc "$ROOT/proc" &&
    mount --bind /dev "$ROOT/dev" &&
    mount --bind /dev/pts "$ROOT/dev/pts" &&
    mount -t sysfs sys "$ROOT/sys" &&
    mount --bind "$SRC" "$ROOT$SRC" || { echo "cannot mount into $ROOT"; exit 3; }
    exec chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
        PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
        sh -c "cd \"\$1\" && exec sh test/c/in_root.sh --inside \"\$2\"" sh "$SRC" "$OUT"
' >"$LOG" 2>&1 </dev/null
STATUS=$?
[ $STATUS -eq 3 ] && skip "$(tail -n 1 "$LOG")"

# cmocka's own counts, program by program; a program that ended without
# them (a crash, the timeout) counts as one failure.
PASSED=0
FAILED=0
PROGRAMS=0
BROKEN=""
for out in "$OUT"/test_*.out; do
    [ -e "$out" ] || continue
    name=$(basename "$out" .out)
    PROGRAMS=$((PROGRAMS + 1))
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\..*/\1/p' "$out" | tail -n 1)
    # cmocka 1.1.7 names the group on this line ("[  FAILED  ] http: 1
    # test(s), listed below:"), 1.1.5 does not.
    f=$(sed -n 's/^\[  FAILED  \] \([^ ]*: \)\{0,1\}\([0-9]*\) test(s), listed below:.*/\2/p' "$out" | tail -n 1)
    rc=$(sed -n "s/^== $name: exit \([0-9]*\)$/\1/p" "$LOG" | tail -n 1)
    PASSED=$((PASSED + ${p:-0}))
    FAILED=$((FAILED + ${f:-0}))
    if [ "${rc:-1}" != 0 ] && [ "${f:-0}" -eq 0 ]; then FAILED=$((FAILED + 1)); fi
    [ "${rc:-1}" = 0 ] || BROKEN="$BROKEN $name"
done
if [ $STATUS -ne 0 ] || [ $FAILED -ne 0 ] || [ $PROGRAMS -eq 0 ]; then
    [ $FAILED -eq 0 ] && FAILED=1
    if [ -n "$BROKEN" ]; then
        for name in $BROKEN; do
            echo "---- $name failed on $LABEL; last lines of $OUT/$name.out:"
            tail -n 40 "$OUT/$name.out"
        done
    else
        echo "---- C units on $LABEL failed; last lines of $LOG:"
        tail -n 40 "$LOG"
    fi
    echo "C units on $LABEL: $PASSED passed, $FAILED failed ($PROGRAMS programs)"
    exit 1
fi
echo "C units on $LABEL: $PASSED passed, $FAILED failed ($PROGRAMS programs)"
