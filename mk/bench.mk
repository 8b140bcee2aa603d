# mk/bench.mk - the benchmark driver, build/duckstore_bench (bench/*.c).
#
# Include it from the top-level Makefile AFTER CORE_OBJ is defined (the
# driver links the project's objects to call the command layer in process):
#
#     include mk/bench.mk
#
# It compiles bench/*.c with the project's CFLAGS through the Makefile's own
# $(BUILD)/obj/%.o rule, and links them with $(CORE_OBJ) and $(LDLIBS).
# scripts/bench.sh builds $(BENCH_BIN) and runs it (`make bench`, or
# `make bench QUICK=1` for tiny sizes in seconds); see docs/performance.md.
# Targets: bench-bin (build only), bench-quick (build and run QUICK).
# Safe to name twice (make -f Makefile -f mk/bench.mk): the second time is a no-op.

ifndef DS_BENCH_MK
DS_BENCH_MK := 1

# This fragment must not change the includer's default goal.
_bench_saved_default_goal := $(.DEFAULT_GOAL)

BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(BENCH_SRC))
BENCH_BIN := $(BUILD)/duckstore_bench

$(BENCH_BIN): $(BENCH_OBJ) $(CORE_OBJ)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@.tmp $^ $(LDLIBS) && mv -f $@.tmp $@

.PHONY: bench-bin bench-quick
bench-bin: $(BENCH_BIN)

bench-quick: $(BUILD)/duckstore $(BENCH_BIN)
	@QUICK=1 bash scripts/bench.sh

.DEFAULT_GOAL := $(_bench_saved_default_goal)
endif
