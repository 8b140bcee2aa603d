# duckstore build. `make` builds build/duckstore; `make run` sets up and serves ./var;
# `make test` sets up, builds and runs every test; `make bench` runs the benchmark.

CC      ?= cc
DUCKDB  := third_party/duckdb
BUILD   := build
WERROR  ?= -Werror
CFLAGS  ?= -O2 -g
# SAN: sanitizer flags for a checked build (`make asan`); empty for the normal build.
SAN     ?=
MAKEFLAGS += --no-print-directory
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra $(WERROR) -Wno-unused-parameter -fPIC -pthread \
           -Isrc -Iinclude -I$(DUCKDB)/include -I$(BUILD)/gen $(SAN)
PKGS    := libmicrohttpd jansson libsodium libcrypto zlib grpc libprotobuf-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  += $(PKG_CFLAGS)
# The binary finds libduckdb.so through its rpath, relative to itself, so it runs from anywhere.
LDFLAGS += $(SAN) -pthread -L$(DUCKDB)/lib -Wl,-rpath,'$$ORIGIN/../$(DUCKDB)/lib' -Wl,-rpath,'$(abspath $(DUCKDB)/lib)'
LDLIBS  += -lduckdb $(PKG_LIBS) -ldl -lm

include mk/proto.mk
include mk/plugins.mk
CORE_SRC   := $(sort $(wildcard src/core/*.c src/catalog/*.c src/backend/*.c src/cmd/*.c src/rest/*.c \
                     src/grpc/*.c src/ws/*.c backends/duckdb/*.c))
CORE_OBJ   := $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC)) $(PROTO_C_OBJ)
MAIN_OBJ   := $(BUILD)/obj/src/main.o
UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
include mk/fuzz.mk
include mk/bench.mk
include clients/php/php.mk

.DEFAULT_GOAL := all
.PHONY: all setup run test unit e2e bench asan asan-all clean format fuzz
# On a fresh machine the variables above were computed before the packages existed (pkg-config
# flags, the well-known .proto files): set up first, then build in a new make that sees them.
ifeq ($(DS_SET_UP)$(and $(PKG_LIBS),$(wildcard $(DUCKDB)/.version),$(wildcard $(PROTO_WKT_DIR)/google/protobuf/any.proto)),)
all: setup
	@$(MAKE) --no-print-directory DS_SET_UP=1 all
else
# The benchmark driver links the same objects: building it here keeps it from timing stale code.
all: $(BUILD)/duckstore $(BENCH_BIN) $(PLUGIN_SO) $(TEST_PLUGIN_SO)
endif

setup:
	@bash scripts/setup.sh

$(DUCKDB)/.version:
	@bash scripts/setup.sh

$(BUILD)/obj/%.o: %.c $(DUCKDB)/.version $(PROTO_C_HDR)
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/duckstore: $(CORE_OBJ) $(MAIN_OBJ)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@.tmp $^ $(LDLIBS) && mv -f $@.tmp $@

$(BUILD)/tests/%: tests/unit/%.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

run: setup
	@$(MAKE) --no-print-directory all
	@bash scripts/run.sh

unit: setup $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t --jobs 1; done

e2e: setup
	@$(MAKE) --no-print-directory all $(PROTO_PY_STAMP)
	PYTHONPATH=$(PROTO_PY_DIR) /usr/bin/python3 -m pytest -q tests/e2e

# Builds run one compile per core (the link of each unit test alone takes seconds).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
test: setup
	@$(MAKE) --no-print-directory -j$(JOBS) all $(UNIT_BIN) $(PROTO_PY_STAMP)
	@bash scripts/test.sh

bench: setup
	@$(MAKE) --no-print-directory all
	@bash scripts/bench.sh

# The checked build: ASan + UBSan, in build-asan/, with the end-to-end and protocol suites run against it.
ASAN_SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan: setup
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=build-asan SAN="$(ASAN_SAN)" build-asan/duckstore build-asan/tests/test_duckdb_projects
	@bash scripts/asan.sh

asan-all: setup
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=build-asan SAN="$(ASAN_SAN)" build-asan/duckstore build-asan/tests/test_duckdb_projects
	@ASAN_ALL=1 bash scripts/asan.sh

format:
	clang-format -i $(CORE_SRC) src/main.c include/duckstore/*.h src/*/*.h

clean:
	rm -rf $(BUILD) build-asan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
