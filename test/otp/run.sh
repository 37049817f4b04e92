#!/bin/sh
# Runs the Erlang suites (common_test, PropEr), the Elixir check and the
# releases with reckon-db (test/release) against real BEAM nodes of one OTP
# release, with the same priv/reckon_cnode
# (through test/otp/with_otp.sh), and prints one summary line:
#
#   OTP 27: 63 passed, 0 failed
#   OTP 27: SKIPPED (why)
#
#   test/otp/run.sh RELEASE       RELEASE: 25, 27 or 29
#
# The full output goes to build/otp/otpRELEASE.log; on failure its last lines
# are printed too. Exit status: 0 passed, 1 failed, 3 skipped.
set -u

REL=${1:?usage: run.sh RELEASE}
cd "$(dirname "$0")/../.." || exit 2
LOG=build/otp/otp$REL.log
mkdir -p build/otp

# shellcheck disable=SC2016
sh test/otp/with_otp.sh "$REL" sh -c '
    echo "== OTP $(erl -noshell -eval "io:format(\"~s\", [erlang:system_info(otp_release)]), halt().") ($(elixir --version 2>/dev/null | tail -n 1))"
    sh test/erl/run_ct.sh; CT=$?
    sh test/elixir/run.sh; EX=$?
    sh test/release/run.sh; REL=$?
    [ $CT -eq 0 ] && [ $EX -eq 0 ] && [ $REL -eq 0 ]
' >"$LOG" 2>&1 </dev/null
STATUS=$?
if [ $STATUS -eq 3 ]; then
    echo "OTP $REL: SKIPPED ($(tail -n 1 "$LOG"))"
    exit 3
fi

# One line for this release: common_test's and the Elixir check's counts.
strip() { sed 's/\x1b\[[0-9;]*m//g' "$LOG"; }
ct_pass=$(strip | sed -n 's/^All \([0-9]*\) tests passed\..*/\1/p; s/.*Passed \([0-9]*\) tests\..*/\1/p' | tail -n 1)
ct_fail=$(strip | sed -n 's/^Failed \([0-9]*\) tests\..*/\1/p' | tail -n 1)
ex_pass=$(strip | sed -n 's/^elixir: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' | tail -n 1)
ex_fail=$(strip | sed -n 's/^elixir: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' | tail -n 1)
rel_pass=$(strip | sed -n 's/^release: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' | tail -n 1)
rel_fail=$(strip | sed -n 's/^release: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' | tail -n 1)
PASSED=$(( ${ct_pass:-0} + ${ex_pass:-0} + ${rel_pass:-0} ))
FAILED=$(( ${ct_fail:-0} + ${ex_fail:-0} + ${rel_fail:-0} ))
# A run that died before counting is a failure too.
if [ $STATUS -ne 0 ] && [ $FAILED -eq 0 ]; then FAILED=1; fi
if [ $STATUS -ne 0 ]; then
    echo "---- OTP $REL failed; last lines of $LOG:"
    strip | tail -n 60
fi
echo "OTP $REL: $PASSED passed, $FAILED failed"
[ $STATUS -eq 0 ]
