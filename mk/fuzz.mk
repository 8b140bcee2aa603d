# mk/fuzz.mk - libFuzzer harnesses (tests/fuzz/fuzz_*.c) for every parser of network input.
#
# `make fuzz` builds the core with clang, ASan, UBSan and libFuzzer's coverage into build-fuzz/
# and runs each harness for FUZZ_SECONDS (default 300), or FUZZ_RUNS executions when that is set,
# one at a time, starting from the corpus
# kept in tests/fuzz/corpus/<harness>/; inputs that add coverage are merged back into it with
# -merge=1 (FUZZ_MERGE=0 leaves the corpus as it is, which is how `make test` runs them for a few
# seconds). LeakSanitizer is on. A crash, leak or UB report stops the run and leaves the input in
# build-fuzz/findings/<harness>/. scripts/fuzz.sh does the running; before the harnesses it runs
# canary_leak, a target that leaks on purpose, and stops unless LeakSanitizer reports that leak.
#
# Every harness links the whole core. The REST harness drives the real server (src/rest/server.c)
# started without a listening socket and fed through socket pairs (no network), see
# tests/fuzz/fuzz_rest.c.

FUZZ_BUILD   := build-fuzz
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_BIN     := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_NAMES)) $(BUILD)/fuzz/canary_leak
FUZZ_SECONDS ?= 300
FUZZ_MERGE   ?= 1
FUZZ_RUNS    ?=

.PHONY: fuzz fuzz-build

fuzz-build: setup
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) \
	    SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" fuzz-bins

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_MERGE=$(FUZZ_MERGE) bash scripts/fuzz.sh $(FUZZ_NAMES)

.PHONY: fuzz-bins
fuzz-bins: $(FUZZ_BIN)

FUZZ_LINK = @mkdir -p $(dir $@) && echo "  FUZZ  $@" && \
	$(CC) $(CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

# The canary compiles nothing of the core (it links the same libraries as the harnesses).
$(BUILD)/fuzz/canary_leak: tests/fuzz/canary_leak.c
	$(FUZZ_LINK)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(CORE_OBJ)
	$(FUZZ_LINK)
