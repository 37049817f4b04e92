# reckon_cnode — build, run, test, bench.
#   make run    build and start the sidecar C node (prints its node name)
#   make check  the fast subset between commits (C units, dialyzer, xref,
#               the Erlang suites on the host's OTP)
#   make test   every test: C units (plain, ASan/UBSan, TSan, valgrind), clang
#               build, the C units again on Debian 13 (in a trixie root),
#               libFuzzer, the dependency and README checks, the systemd
#               unit booted under systemd (a container), dialyzer and xref,
#               then the Erlang suites, the releases with reckon-db and the
#               Elixir check on OTP 25, 27 and 29 (the OTP matrix)
# Missing Debian packages are installed when run as root; otherwise the exact
# apt-get line is printed (tools/deps.sh). `make run` needs only what building
# and running need.

SHELL := /bin/bash
.DEFAULT_GOAL := all

CC      ?= gcc
BUILD   := build
SAN_BUILD := build/san
# The one version number is the OTP application's (src/reckon_cnode.app.src).
RC_VERSION := $(shell sed -n 's/.*{vsn, *"\([^"]*\)"}.*/\1/p' src/reckon_cnode.app.src)
CSTD    := -std=c11 -D_GNU_SOURCE -DRC_VERSION='"$(RC_VERSION)"'
WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
OPT     ?= -O2 -g
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# erl_interface is located by asking erl, never by a fixed path; asked once,
# on first use (after the packages are installed), not once per compile.
EI_DIR = $(eval EI_DIR := $(shell erl -noshell -eval 'io:format("~s",[code:lib_dir(erl_interface)])' -s init stop 2>/dev/null))$(EI_DIR)
# The OTP release built against, for /metrics' build information.
OTP_RELEASE = $(eval OTP_RELEASE := $(shell erl -noshell -eval 'io:format("~s",[erlang:system_info(otp_release)])' -s init stop 2>/dev/null))$(OTP_RELEASE)
INCLUDES = -Ic_src -Iinclude -I$(EI_DIR)/include \
           -DRC_BUILD_EI='"$(notdir $(EI_DIR))"' -DRC_BUILD_OTP='"$(OTP_RELEASE)"'
EI_LIBS  = -L$(EI_DIR)/lib -lei
# The installation's root: its usr/lib holds the same libei under a path
# that survives an upgrade of erl_interface, so the installed .pc names it.
ERL_ROOT = $(eval ERL_ROOT := $(shell erl -noshell -eval 'io:format("~s",[code:root_dir()])' -s init stop 2>/dev/null))$(ERL_ROOT)
SYS_LIBS := -luv -llmdb -lmd -lmicrohttpd -lssl -lcrypto -lpthread
LIBS     = $(EI_LIBS) $(SYS_LIBS)

# libei built from the installed release's sources (erlang-src) with the
# sanitizers, for the builds that look for memory errors, so a read past a
# buffer inside ei_* is reported where it happens (tools/libei.mk). Without
# the sources each falls back to the installed libei and says so (an error
# under CI). Plain builds link the installed libei.
LIBEI_SAN  := build/libei/san/libei.a
LIBEI_FUZZ := build/libei/fuzz/libei.a

LIB_SRCS  := $(filter-out c_src/main.c,$(shell find c_src -name '*.c' | sort))
TEST_SRCS := $(sort $(wildcard test/c/test_*.c))
TEST_HDRS := $(wildcard test/c/*.h)
TESTS     := $(patsubst test/c/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
SAN_TESTS := $(patsubst test/c/%.c,$(SAN_BUILD)/tests/%,$(TEST_SRCS))

LIB_OBJS     = $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
SAN_LIB_OBJS = $(patsubst %.c,$(SAN_BUILD)/obj/%.o,$(LIB_SRCS))

.PHONY: FORCE all build deps deps-test run test check test-all test-erl-static c-tests test-c test-c-trixie test-san test-tsan test-elixir \
        test-valgrind test-clang test-erl test-otp test-dep test-readme test-node test-systemd install asan-node test-asan-node bench bench-all bench-pools bench-tls clean dialyzer fuzz erl

# The entry points install packages first, then build in a second make, so
# that everything asked of the tool chain (EI_DIR) is asked after the install.
all: deps
	@$(MAKE) --no-print-directory build bench/cnode_producer examples/producer

build: priv/reckon_cnode erl

deps:
	@sh tools/deps.sh run

deps-test:
	@sh tools/deps.sh test

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(OPT) $(EXTRA_CFLAGS) $(INCLUDES) -MMD -MP -c $< -o $@

$(SAN_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O1 -g $(SANFLAGS) $(INCLUDES) -MMD -MP -c $< -o $@

$(BUILD)/libreckon_cnode.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(SAN_BUILD)/libreckon_cnode.a: $(SAN_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# The executable; another path (with another BUILD) builds it for an OTP
# root whose C library is older than the host's (test/otp/with_otp.sh).
# (EI_LIB_DEP: the instrumented libei an ASan build links instead, asan-node.)
$(BUILD)/reckon_cnode: $(BUILD)/obj/c_src/main.o $(BUILD)/libreckon_cnode.a $(EI_LIB_DEP)
	$(CC) $(OPT) -o $@ $(filter-out $(EI_LIB_DEP),$^) $(LIBS)

priv/reckon_cnode: $(BUILD)/obj/c_src/main.o $(BUILD)/libreckon_cnode.a
	@mkdir -p priv
	$(CC) $(OPT) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: test/c/%.c $(TEST_HDRS) $(BUILD)/libreckon_cnode.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(OPT) $(INCLUDES) -o $@ $< $(BUILD)/libreckon_cnode.a $(LIBS) -lcmocka

$(SAN_BUILD)/tests/%: test/c/%.c $(TEST_HDRS) $(SAN_BUILD)/libreckon_cnode.a $(LIBEI_SAN)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O1 -g $(SANFLAGS) $(INCLUDES) -o $@ $< $(SAN_BUILD)/libreckon_cnode.a $(LIBEI_SAN) $(SYS_LIBS) -lcmocka

# The two instrumented libei builds: with the flags of the ASan builds (the
# compiler is theirs too: one sanitizer runtime per program), and with the
# fuzzer's coverage for the fuzz targets.
$(LIBEI_SAN): FORCE
	@$(MAKE) --no-print-directory -f tools/libei.mk OUT=$(@D) EI_DIR=$(EI_DIR) \
	  LIBEI_CC='$(CC)' LIBEI_CFLAGS='-O1 -g $(SANFLAGS)'

$(LIBEI_FUZZ): FORCE
	@$(MAKE) --no-print-directory -f tools/libei.mk OUT=$(@D) EI_DIR=$(EI_DIR) \
	  LIBEI_CC=clang LIBEI_CFLAGS='$(FUZZ_LIBEI_FLAGS)'

# libFuzzer over inbound frames and message dispatch, over the decoders on
# their own (with libei's reads also bounded by unreadable pages,
# test/fuzz/guard.h), and over what a stranger sends before the handshakes
# are done (clang only), linked with the instrumented libei.
FUZZ_SECONDS ?= 20
FUZZ_FLAGS := -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer -g -O1
FUZZ_LIBEI_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -g -O1
build/fuzz/fuzz_frames: test/fuzz/fuzz_frames.c test/fuzz/guard.h $(LIB_SRCS) $(LIBEI_FUZZ)
	@mkdir -p $(dir $@)
	clang $(CSTD) $(WARN) $(FUZZ_FLAGS) $(INCLUDES) -o $@ $< $(LIB_SRCS) $(LIBEI_FUZZ) $(SYS_LIBS)

build/fuzz/fuzz_decode: test/fuzz/fuzz_decode.c test/fuzz/guard.h $(LIB_SRCS) $(LIBEI_FUZZ)
	@mkdir -p $(dir $@)
	clang $(CSTD) $(WARN) $(FUZZ_FLAGS) $(INCLUDES) -o $@ $< $(LIB_SRCS) $(LIBEI_FUZZ) $(SYS_LIBS)

build/fuzz/fuzz_tls_accept: test/fuzz/fuzz_tls_accept.c $(LIB_SRCS) $(LIBEI_FUZZ)
	@mkdir -p $(dir $@)
	clang $(CSTD) $(WARN) $(FUZZ_FLAGS) $(INCLUDES) -o $@ $< $(LIB_SRCS) $(LIBEI_FUZZ) $(SYS_LIBS)

# The fuzzer's progress lines go to a log; its verdict (and any finding)
# is printed.
fuzz: build/fuzz/fuzz_frames build/fuzz/fuzz_decode build/fuzz/fuzz_tls_accept
	@mkdir -p build/fuzz/corpus
	@echo "== libFuzzer: $(FUZZ_SECONDS) s over inbound frames (log: build/fuzz/fuzz.log)"
	@build/fuzz/fuzz_frames -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -rss_limit_mb=1024 \
	  build/fuzz/corpus test/fuzz/seeds > build/fuzz/fuzz.log 2>&1 || { tail -60 build/fuzz/fuzz.log; exit 1; }
	@tail -1 build/fuzz/fuzz.log
	@mkdir -p build/fuzz/corpus_decode
	@echo "== libFuzzer: $(FUZZ_SECONDS) s over the decoders, libei's reads bounded by unreadable pages (log: build/fuzz/fuzz_decode.log)"
	@build/fuzz/fuzz_decode -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -rss_limit_mb=1024 \
	  build/fuzz/corpus_decode test/fuzz/seeds_decode > build/fuzz/fuzz_decode.log 2>&1 || { tail -60 build/fuzz/fuzz_decode.log; exit 1; }
	@tail -1 build/fuzz/fuzz_decode.log
	@mkdir -p build/fuzz/corpus_tls
	@echo "== libFuzzer: $(FUZZ_SECONDS) s over a stranger's bytes before the TLS and distribution handshakes (log: build/fuzz/fuzz_tls.log)"
	@build/fuzz/fuzz_tls_accept -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -rss_limit_mb=1024 \
	  build/fuzz/corpus_tls test/fuzz/seeds_tls > build/fuzz/fuzz_tls.log 2>&1 || { tail -60 build/fuzz/fuzz_tls.log; exit 1; }
	@tail -1 build/fuzz/fuzz_tls.log

# Plain text: rebar3's colours would be escape sequences among make's lines.
erl:
	RECKON_CNODE_NO_HOOK=1 REBAR_COLOR=none rebar3 compile

run: deps
	@$(MAKE) --no-print-directory build
	@epmd -daemon
	./priv/reckon_cnode $(RUN_ARGS)

test: deps-test
	@$(MAKE) --no-print-directory test-all

# The fast subset to run between commits: the C units (plain build),
# dialyzer and xref, and the Erlang suites on the host's OTP. make test
# runs all of it and much more before anything lands.
check: deps-test
	@$(MAKE) --no-print-directory priv/reckon_cnode test-node test-c test-erl-static
	@sh test/erl/run_ct.sh

# The C stages share nothing but their inputs: they run two at a time,
# each stage's lines printed whole when it ends. The stages with real BEAM
# nodes (timing-bound waits, epmd, peers) run one after another.
C_STAGES := test-c test-san test-tsan test-valgrind test-clang test-c-trixie fuzz
test-all: priv/reckon_cnode test-node $(BUILD)/bench/bench_naming $(BUILD)/bench/bench_membership bench/cnode_producer examples/producer
	@$(MAKE) --no-print-directory -j2 --output-sync=target $(C_STAGES)
	@$(MAKE) --no-print-directory test-dep test-readme test-systemd test-asan-node test-erl-static test-otp

# The README's commands as written (test/readme/run.sh): the three quick
# starts (Erlang, Elixir with a new mix project and its release, C against
# the one-line emitter node), the reckon-db session, the --http curl
# examples, the TLS walk-through.
test-readme: priv/reckon_cnode
	@sh test/readme/run.sh
# deploy/reckon_cnode.service under a real systemd: a trixie container booted
# with systemd-nspawn, the unit installed by make install DESTDIR= and
# started, probed, restarted and stopped (test/systemd/run.sh; root only).
test-systemd: priv/reckon_cnode
	@sh test/systemd/run.sh
# reckon_cnode as a rebar3 and a mix dependency of a new project.
test-dep:
	@sh test/dep/run.sh

# The test build of the node: the same sources with the test hooks
# (spawn_idle, exit_process) that the interop suites use; priv/reckon_cnode
# never has them.
TEST_NODE := build/test-node/reckon_cnode
test-node:
	@$(MAKE) --no-print-directory BUILD=build/test-node EXTRA_CFLAGS=-DRC_TEST_HOOKS $(TEST_NODE)

# The interop suites once more against the test build under AddressSanitizer
# and UndefinedBehaviorSanitizer (leak check at exit included), on the host's
# OTP: an invalid read or a use-after-free anywhere on the node's paths ends
# it and fails the case (libei's reads included: it links the instrumented
# libei). The pg scale suite (a timing-bound 100k sync) and the memory-figure
# case are left to the plain build.
asan-node: $(LIBEI_SAN)
	@$(MAKE) --no-print-directory BUILD=build/asan-node OPT="-O1 -g $(SANFLAGS)" \
	  EXTRA_CFLAGS=-DRC_TEST_HOOKS EI_LIBS=$(LIBEI_SAN) EI_LIB_DEP=$(LIBEI_SAN) \
	  build/asan-node/reckon_cnode

test-asan-node: priv/reckon_cnode asan-node
	@echo "== interop suites against the ASan+UBSan build of the node"
	@RECKON_CNODE_TEST_NODE=$(CURDIR)/build/asan-node/reckon_cnode RECKON_CNODE_SANITIZED=1 \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  sh test/erl/run_ct.sh --suite test/erl/reckon_cnode_SUITE,test/erl/reckon_cnode_pg_SUITE,test/erl/reckon_cnode_emitter_SUITE,test/erl/reckon_cnode_faults_SUITE,test/erl/reckon_cnode_http_SUITE,test/erl/reckon_cnode_tls_SUITE,test/erl/reckon_cnode_pools_SUITE \
	  > build/asan-node/ct.log 2>&1; \
	  status=$$?; sed 's/\x1b\[[0-9;]*m//g' build/asan-node/ct.log | grep -E "FAILED|SKIPPED|tests passed|Passed [0-9]+ tests" ; \
	  [ $$status -eq 0 ] || { tail -40 build/asan-node/ct.log; exit 1; }

# The Erlang suites and the Elixir check on OTP 25, 27 and 29.
test-otp: priv/reckon_cnode test-node
	@sh test/otp/matrix.sh

c-tests: $(TESTS)

test-c: $(TESTS)
	@set -e; for t in $(TESTS); do echo "== $$t"; $$t; done

# The same C units built and run inside the Debian 13 root that the OTP
# matrix makes (test/c/in_root.sh): its gcc, libmicrohttpd and libuv are
# newer than Debian 12's. One summary line; SKIPPED (exit 3) when the root
# cannot be made here, which fails the run only under CI=true.
test-c-trixie:
	@sh test/c/in_root.sh trixie; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 3 ]

test-san: $(SAN_TESTS)
	@set -e; for t in $(SAN_TESTS); do echo "== $$t (asan+ubsan)"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $$t; done

# ThreadSanitizer for the tests that run producer threads against the loop,
# and handshake threads against it.
TSAN_TESTS := test_broadcast_threads test_http test_dist_waiting
TSAN_BUILD := build/tsan
$(TSAN_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O1 -g -fsanitize=thread $(INCLUDES) -MMD -MP -c $< -o $@

$(TSAN_BUILD)/libreckon_cnode.a: $(patsubst %.c,$(TSAN_BUILD)/obj/%.o,$(LIB_SRCS))
	@rm -f $@
	ar rcs $@ $^

$(TSAN_BUILD)/tests/%: test/c/%.c $(TEST_HDRS) $(TSAN_BUILD)/libreckon_cnode.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O1 -g -fsanitize=thread $(INCLUDES) -o $@ $< $(TSAN_BUILD)/libreckon_cnode.a $(LIBS) -lcmocka

test-tsan: $(patsubst %,$(TSAN_BUILD)/tests/%,$(TSAN_TESTS))
	@set -e; for t in $^; do echo "== $$t (tsan)"; TSAN_OPTIONS=halt_on_error=1 $$t; done

# valgrind also sees reads inside libei, which the sanitizers do not instrument.
test-valgrind: $(TESTS)
	@set -e; for t in $(TESTS); do echo "== $$t (valgrind)"; \
	  RC_TEST_UNDER_VALGRIND=1 valgrind -q --error-exitcode=9 --leak-check=full \
	  --errors-for-leak-kinds=definite $$t; done

# The same sources must build warning-free under clang too.
test-clang:
	@$(MAKE) --no-print-directory CC=clang BUILD=build/clang build/clang/libreckon_cnode.a

# On the host's OTP only (the matrix runs them on every release).
test-erl: priv/reckon_cnode test-node
	bash test/erl/run_ct.sh

test-elixir: priv/reckon_cnode test-node
	bash test/elixir/run.sh

dialyzer:
	RECKON_CNODE_NO_HOOK=1 REBAR_COLOR=none rebar3 dialyzer

# The shim's static checks: dialyzer (its PLT is built once, under _build)
# and xref.
test-erl-static: dialyzer
	RECKON_CNODE_NO_HOOK=1 REBAR_COLOR=none rebar3 xref

$(BUILD)/bench/bench_naming: bench/bench_naming.c $(BUILD)/libreckon_cnode.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O2 -g $(INCLUDES) -o $@ $< $(BUILD)/libreckon_cnode.a $(LIBS)

$(BUILD)/bench/bench_membership: bench/bench_membership.c $(BUILD)/libreckon_cnode.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O2 -g $(INCLUDES) -o $@ $< $(BUILD)/libreckon_cnode.a $(LIBS)

$(BUILD)/bench/cnode_producer: bench/cnode_producer.c $(BUILD)/libreckon_cnode.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O2 -g $(INCLUDES) -o $@ $< $(BUILD)/libreckon_cnode.a $(LIBS)

examples/producer: examples/producer.c $(BUILD)/libreckon_cnode.a
	$(CC) $(CSTD) $(WARN) -O2 -g $(INCLUDES) -o $@ $< $(BUILD)/libreckon_cnode.a $(LIBS)

bench/cnode_producer: $(BUILD)/bench/cnode_producer
	cp $< $@

# OTP=27 (or 25, 29) runs the BEAM side on that release (test/otp/with_otp.sh);
# the default is the host's. BENCH_RUNS=N (default 5): how many runs a side
# each side-by-side figure gets, the two sides alternating; the summary gives
# medians and spreads, bench/out/ every run's figures.
bench: deps-test
	@$(MAKE) --no-print-directory bench-all

# make bench: every figure of bench/run.sh, then reckon-db's load shape
# (bench/pools.sh, below), one summary each.
bench-all: priv/reckon_cnode test-node $(BUILD)/bench/bench_naming $(BUILD)/bench/bench_membership bench/cnode_producer
	$(if $(OTP),sh test/otp/with_otp.sh $(OTP) )bash bench/run.sh
	$(if $(OTP),sh test/otp/with_otp.sh $(OTP) )bash bench/pools.sh

# reckon-db's load shape: 5,000 and 100,000 subscriptions, each its own C
# emitter pool of one emitter with one subscriber, against BEAM emitters in
# the same run: start time, memory per pool, latency at 500 events/s, what
# a new node absorbs (bench/pools.sh; about 10 minutes).
bench-pools: priv/reckon_cnode test-node
	$(if $(OTP),sh test/otp/with_otp.sh $(OTP) )bash bench/pools.sh

# TLS distribution vs plain TCP vs a BEAM node over TLS: call round trip
# and C producer throughput, in one run (bench/tls.sh).
bench-tls: priv/reckon_cnode bench/cnode_producer
	$(if $(OTP),sh test/otp/with_otp.sh $(OTP) )bash bench/tls.sh

# make install [PREFIX=/usr/local] [DESTDIR=]: the executable, the C
# library, its header and pkg-config file, the systemd unit, the README and
# the docs/ it links to.
PREFIX ?= /usr/local
install: all
	install -D -m 755 priv/reckon_cnode $(DESTDIR)$(PREFIX)/bin/reckon_cnode
	install -D -m 644 $(BUILD)/libreckon_cnode.a $(DESTDIR)$(PREFIX)/lib/libreckon_cnode.a
	install -D -m 644 include/reckon_cnode.h $(DESTDIR)$(PREFIX)/include/reckon_cnode.h
	@mkdir -p $(BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(RC_VERSION)|' -e 's|@SYS_LIBS@|$(SYS_LIBS)|' \
	  -e 's|@ERL_ROOT@|$(ERL_ROOT)|' deploy/reckon_cnode.pc.in > $(BUILD)/reckon_cnode.pc
	install -D -m 644 $(BUILD)/reckon_cnode.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/reckon_cnode.pc
	sed -e 's|/usr/local/|$(PREFIX)/|g' deploy/reckon_cnode.service > $(BUILD)/reckon_cnode.service
	install -D -m 644 $(BUILD)/reckon_cnode.service $(DESTDIR)$(PREFIX)/lib/systemd/system/reckon_cnode.service
	install -D -m 644 README.md $(DESTDIR)$(PREFIX)/share/doc/reckon_cnode/README.md
	for f in docs/*.md; do install -D -m 644 $$f $(DESTDIR)$(PREFIX)/share/doc/reckon_cnode/$$f || exit 1; done

clean:
	rm -rf build _build priv/reckon_cnode bench/cnode_producer examples/producer

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
