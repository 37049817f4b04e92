#!/bin/sh
# Makes (once; test/lib/mkroot_common.sh) the Debian root that test/systemd/run.sh boots with systemd as
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

# shellcheck source=test/lib/mkroot_common.sh
. "$(dirname "$0")/../lib/mkroot_common.sh"

mkroot systemd-trixie trixie systemd \
    "systemd erlang-base curl procps libuv1t64 liblmdb0 libmd0 libmicrohttpd12t64 libssl3t64"
