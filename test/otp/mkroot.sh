#!/bin/sh
# Makes (once; test/lib/mkroot_common.sh) a Debian root holding another Erlang/OTP release, for the OTP
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
# older (a Debian 13 host testing OTP 25 in a Debian 12 root). cmocka, so
# that the C unit tests build and run there too (test/c/in_root.sh).
set -u

# shellcheck source=test/lib/mkroot_common.sh
. "$(dirname "$0")/../lib/mkroot_common.sh"

SUITE=${1:?usage: mkroot.sh SUITE}
mkroot "$SUITE" "$SUITE" "the BEAM" \
    "erlang-nox erlang-common-test erlang-proper erlang-proper-dev erlang-eunit erlang-dev \
rebar3 elixir libuv1-dev liblmdb-dev libmd-dev libmicrohttpd-dev uthash-dev libssl-dev openssl gcc libc6-dev make procps libcmocka-dev"
