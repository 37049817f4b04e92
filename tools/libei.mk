# libei built from the installed release's own C sources (Debian package
# erlang-src, $(EI_DIR)/src), with the flags of the build that links it, so
# that the sanitizers (and the fuzzer's coverage) see inside ei_*:
#
#   make -f tools/libei.mk OUT=DIR LIBEI_CC=CC LIBEI_CFLAGS='...' [EI_DIR=...]
#
# makes DIR/libei.a. Without the sources it falls back to a copy of the
# installed, uninstrumented libei.a and says so in one line; under CI
# (CI=true) that fallback is a failure instead.

SHELL := /bin/bash
OUT ?= build/libei
LIBEI_CC ?= cc
LIBEI_CFLAGS ?= -O1 -g
EI_DIR ?= $(shell erl -noshell -eval 'io:format("~s",[code:lib_dir(erl_interface)])' -s init stop 2>/dev/null)

override OUT := $(patsubst %/,%,$(OUT))
EI_SRC := $(EI_DIR)/src
# prog/ holds two programs (erl_call and a compile test), not library code;
# the other 71 files are the 71 members of the installed libei.a.
SRCS := $(sort $(filter-out $(EI_SRC)/prog/%,$(wildcard $(EI_SRC)/*/*.c)))
OBJS := $(patsubst $(EI_SRC)/%.c,$(OUT)/obj/%.o,$(SRCS))

# What OTP's configure would put in config.h and on the command line:
# tools/libei/config.h, the thread defines of the threaded libei (as in
# $(EI_SRC)/eidefs.mk), the sources' own header directories.
EI_CPPFLAGS := -Itools/libei -I$(EI_DIR)/include $(addprefix -I,$(sort $(dir $(SRCS)))) \
  -D_THREAD_SAFE -D_REENTRANT -DPOSIX_THREADS -D_POSIX_THREAD_SAFE_FUNCTIONS

.PHONY: all FORCE
all: $(OUT)/libei.a
	@:

ifeq ($(SRCS),)

$(OUT)/libei.a: FORCE
	@if [ "$(CI)" = true ]; then \
	  echo "libei: no sources in $(EI_SRC) (Debian package erlang-src); under CI the uninstrumented fallback is a failure"; exit 1; fi
	@echo "libei: no sources in $(EI_SRC) (Debian package erlang-src): $@ is the installed, uninstrumented libei"
	@mkdir -p $(OUT)
	@touch $(OUT)/fallback
	@cmp -s $(EI_DIR)/lib/libei.a $@ || cp $(EI_DIR)/lib/libei.a $@

else

# Rebuilt when the sources (a new release or package) or the flags change.
ID := $(OUT)/build.id
ID_TEXT := $(LIBEI_CC) $(LIBEI_CFLAGS) $(EI_CPPFLAGS) $(shell \
  find $(EI_SRC) tools/libei tools/libei.mk -type f -printf '%p %s %T@\n' 2>/dev/null | sort | md5sum)
$(shell mkdir -p $(OUT); [ "$$(cat $(ID) 2>/dev/null)" = '$(ID_TEXT)' ] || echo '$(ID_TEXT)' > $(ID))

# (Made again, whatever its age, when the last one was the fallback.)
$(OUT)/libei.a: $(OBJS) $(if $(wildcard $(OUT)/fallback),FORCE)
	@rm -f $@ $(OUT)/fallback
	@ar rcs $@ $(OBJS)
	@echo "libei: $(words $(OBJS)) files of $(EI_SRC) built into $@ ($(LIBEI_CC) $(LIBEI_CFLAGS))"

# Warnings are the sources' own business, not this project's. Three of
# UBSan's checks are off for libei's code alone, for idioms it uses and
# means: get32be() shifts a byte >= 128 into an int's sign bit (shift-base:
# every pid, port or reference with a high ID byte), the encoders' size-only
# mode does arithmetic on a NULL buffer (pointer-overflow: every
# ei_encode_*(NULL, ...)), and memcpy() is given a NULL source with length 0
# (nonnull-attribute: a fun with no free variables, ei_encode_fun). Every
# other check, and all of AddressSanitizer, stays.
LIBEI_QUIRKS := -fno-sanitize=shift-base,pointer-overflow,nonnull-attribute
$(OUT)/obj/%.o: $(EI_SRC)/%.c $(ID)
	@mkdir -p $(dir $@)
	@$(LIBEI_CC) $(LIBEI_CFLAGS) $(if $(findstring undefined,$(LIBEI_CFLAGS)),$(LIBEI_QUIRKS)) -w $(EI_CPPFLAGS) -c $< -o $@

endif
