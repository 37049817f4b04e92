#!/bin/sh
# Installs the Debian packages a make target needs, or prints the exact
# apt-get line when not run as root.
#
#   tools/deps.sh run     building and running the sidecar and the shim
#   tools/deps.sh test    everything make test and make bench use
#
# erlang-src carries libei's C sources for the installed release: the
# sanitizer and fuzzer builds compile libei from them (tools/libei.mk).
#
# The lists hold for Debian 12 and 13. Where clang ships its fuzzer and
# sanitizer runtimes apart (libclang-rt-N-dev, from Debian 13 on), the one
# matching the installed clang is added.
set -u

RUN="gcc make erlang-nox erlang-dev rebar3 libuv1-dev uthash-dev liblmdb-dev libmd-dev libmicrohttpd-dev libssl-dev"
TEST="$RUN clang erlang-common-test erlang-dialyzer erlang-proper erlang-proper-dev erlang-eunit \
elixir libcmocka-dev valgrind debootstrap util-linux systemd-container pkgconf openssl curl \
erlang-src"

case "${1:-}" in
    run) WANT=$RUN ;;
    test) WANT=$TEST ;;
    *) echo "usage: deps.sh run|test" >&2; exit 2 ;;
esac

missing() {
    m=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || m="$m $p"
    done
    echo "$m"
}

install() {
    if [ "$(id -u)" = 0 ]; then
        echo "installing:$*"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" ||
            { echo "deps.sh: apt-get install failed" >&2; exit 1; }
    else
        echo "missing Debian packages; run:"
        echo "  sudo apt-get install -y $*"
        exit 1
    fi
}

# shellcheck disable=SC2086
M=$(missing $WANT)
# shellcheck disable=SC2086
[ -n "$M" ] && install $M

if [ "$1" = test ]; then
    # libFuzzer's runtime: part of clang's own packages on Debian 12, a
    # package of its own (libclang-rt-N-dev) on Debian 13 and later.
    probe='int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }'
    if ! echo "$probe" | clang -fsanitize=fuzzer,address,undefined -x c - -o /dev/null 2>/dev/null; then
        major=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
        [ -n "$major" ] || { echo "deps.sh: cannot tell clang's version" >&2; exit 1; }
        M=$(missing "libclang-rt-$major-dev")
        [ -n "$M" ] && install $M
    fi
fi
exit 0
