# mk/proto.mk — code generation for duckstore's protocol files (proto/**/*.proto).
#
# Include it from the top-level Makefile, which must be run from the repo root
# and must define BUILD (default "build") before the include:
#
#     include mk/proto.mk
#
# It generates, into $(PROTO_GEN_DIR) (= $(BUILD)/gen):
#   * C sources with protoc-c for every proto/**/*.proto, and for the Google
#     well-known types they need (google/protobuf/any.proto, struct.proto, ...),
#     because libprotobuf-c-dev does not ship google/protobuf/*.pb-c.h;
#   * objects next to the sources (same directory, .pb-c.o);
#   * Python modules with protoc --python_out into $(PROTO_GEN_DIR)/python
#     (the well-known types come from the installed python3-protobuf package,
#     so they are not generated for Python);
#   * C sources for the gRPC health and reflection protocols from Debian's
#     grpc-proto package ($(GRPC_PROTO_DIR)), served next to Execute;
#   * the descriptor set of everything the gRPC server serves (our files, the
#     health and reflection files, with every import) as a C array
#     (ds_descriptor_set in $(PROTO_DESC_C)): server reflection answers from it,
#     so it always matches the .proto files the binary was built from.
#
# Variables for the includer:
#   PROTO_C_OBJ     objects to link
#   PROTO_C_HDR     generated headers (make C objects that include them depend on these)
#   PROTO_C_SRC     generated C sources
#   PROTO_PY_STAMP  stamp file: depend on it to get build/gen/python/proto/*_pb2.py
#   PROTO_PY_DIR    directory to put on PYTHONPATH
#   PROTO_FILES     our .proto files;  PROTO_WKT  well-known types compiled to C
#   PROTO_DESC_SET  the serialized FileDescriptorSet (protoc --include_imports)
# Knobs: PROTOC, PROTOC_C, PROTO_WKT_DIR, PROTO_WKT_EXTRA, GRPC_PROTO_DIR, PROTO_CFLAGS.
# Convenience targets: proto (everything), proto-c, proto-py.

# This fragment must not change the includer's default goal.
_proto_saved_default_goal := $(.DEFAULT_GOAL)

PROTOC          ?= protoc
PROTOC_C        ?= protoc-c
PROTO_GEN_DIR   ?= $(or $(BUILD),build)/gen
PROTO_PY_DIR    ?= $(PROTO_GEN_DIR)/python
# Where the well-known .proto files live (libprotobuf-dev / protobuf-compiler).
PROTO_WKT_DIR   ?= /usr/include
# Well-known types compiled to C even if no proto/ file imports them:
# wrappers carries google.protobuf.StringValue, the payload of LogMessage.context.
# descriptor parses the embedded descriptor set for server reflection.
PROTO_WKT_EXTRA ?= wrappers descriptor
# The gRPC health and reflection protocols (Debian package grpc-proto).
GRPC_PROTO_DIR  ?= /usr/share/grpc-proto
GRPC_PROTO_FILES := grpc/health/v1/health.proto grpc/reflection/v1/reflection.proto
# Served (and so described by reflection) but decoded with the v1 code: the messages are wire-identical.
GRPC_PROTO_DESC_ONLY := grpc/reflection/v1alpha/reflection.proto

PROTO_FILES := $(sort $(shell find proto -name '*.proto' 2>/dev/null))

# Names (e.g. "any") of google/protobuf/*.proto imported by the given files.
_proto_wkt_imports = $(shell sed -n 's|^[[:space:]]*import[[:space:]]*\(public[[:space:]]*\)\{0,1\}"google/protobuf/\([A-Za-z_]*\)\.proto".*|\2|p' $(1) /dev/null)
_proto_wkt_path    = $(patsubst %,$(PROTO_WKT_DIR)/google/protobuf/%.proto,$(1))
# Direct imports, then two levels of imports among the well-known types themselves
# (the deepest chain there is api -> type -> any).
_proto_wkt_1 := $(sort $(call _proto_wkt_imports,$(PROTO_FILES)) $(PROTO_WKT_EXTRA))
_proto_wkt_2 := $(sort $(_proto_wkt_1) $(call _proto_wkt_imports,$(call _proto_wkt_path,$(_proto_wkt_1))))
PROTO_WKT    := $(sort $(_proto_wkt_2) $(call _proto_wkt_imports,$(call _proto_wkt_path,$(_proto_wkt_2))))

PROTO_C_SRC := $(patsubst %.proto,$(PROTO_GEN_DIR)/%.pb-c.c,$(PROTO_FILES)) \
               $(patsubst %,$(PROTO_GEN_DIR)/google/protobuf/%.pb-c.c,$(PROTO_WKT)) \
               $(patsubst %.proto,$(PROTO_GEN_DIR)/%.pb-c.c,$(GRPC_PROTO_FILES))
PROTO_C_HDR := $(PROTO_C_SRC:.c=.h)
PROTO_DESC_SET := $(PROTO_GEN_DIR)/duckstore.desc
PROTO_DESC_C   := $(PROTO_GEN_DIR)/descriptor_set.c
PROTO_C_OBJ := $(PROTO_C_SRC:.c=.o) $(PROTO_DESC_C:.c=.o)
PROTO_PY_STAMP := $(PROTO_PY_DIR)/.proto-stamp

# Generated code is not ours to fix: warnings never fail the build.
PROTO_CFLAGS ?= $(or $(CFLAGS),-std=c11 -Wall -Wextra) -Wno-error \
                $(shell pkg-config --cflags libprotobuf-c 2>/dev/null) -I$(PROTO_GEN_DIR)

# One protoc-c run writes both .pb-c.c and .pb-c.h (grouped pattern targets).
# Every generated file depends on all proto files: a rename in an imported
# file changes the names referenced by its importers.
$(PROTO_GEN_DIR)/proto/%.pb-c.c $(PROTO_GEN_DIR)/proto/%.pb-c.h: proto/%.proto $(PROTO_FILES)
	@mkdir -p $(PROTO_GEN_DIR)
	$(PROTOC_C) --proto_path=. --proto_path=$(PROTO_WKT_DIR) --c_out=$(PROTO_GEN_DIR) $<

$(PROTO_GEN_DIR)/google/protobuf/%.pb-c.c $(PROTO_GEN_DIR)/google/protobuf/%.pb-c.h: $(PROTO_WKT_DIR)/google/protobuf/%.proto
	@mkdir -p $(PROTO_GEN_DIR)
	$(PROTOC_C) --proto_path=$(PROTO_WKT_DIR) --c_out=$(PROTO_GEN_DIR) google/protobuf/$*.proto

$(PROTO_GEN_DIR)/grpc/%.pb-c.c $(PROTO_GEN_DIR)/grpc/%.pb-c.h: $(GRPC_PROTO_DIR)/grpc/%.proto
	@mkdir -p $(PROTO_GEN_DIR)
	$(PROTOC_C) --proto_path=$(GRPC_PROTO_DIR) --c_out=$(PROTO_GEN_DIR) grpc/$*.proto

# Files given by their path inside a --proto_path, so descriptors name them as
# importers do ("proto/common.proto", "grpc/health/v1/health.proto").
$(PROTO_DESC_SET): $(PROTO_FILES) $(addprefix $(GRPC_PROTO_DIR)/,$(GRPC_PROTO_FILES) $(GRPC_PROTO_DESC_ONLY))
	@mkdir -p $(PROTO_GEN_DIR)
	$(PROTOC) --proto_path=. --proto_path=$(PROTO_WKT_DIR) --proto_path=$(GRPC_PROTO_DIR) --include_imports \
	    --descriptor_set_out=$@ $(PROTO_FILES) $(GRPC_PROTO_FILES) $(GRPC_PROTO_DESC_ONLY)

$(PROTO_DESC_C): $(PROTO_DESC_SET)
	@{ echo '/* Generated by mk/proto.mk from $(PROTO_DESC_SET); do not edit. */'; \
	   echo '#include <stddef.h>'; \
	   echo 'const unsigned char ds_descriptor_set[] = {'; \
	   od -An -v -tx1 $< | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	   echo '};'; \
	   echo 'const size_t ds_descriptor_set_len = sizeof(ds_descriptor_set);'; } > $@.tmp && mv -f $@.tmp $@

$(PROTO_C_OBJ): %.o: %.c $(PROTO_C_HDR)
	$(CC) $(PROTO_CFLAGS) -c $< -o $@

# Python: one protoc run for all files; empty __init__.py files make
# build/gen/python/proto a regular package (so no other "proto" package shadows it).
$(PROTO_PY_STAMP): $(PROTO_FILES)
	@mkdir -p $(PROTO_PY_DIR)
	$(PROTOC) --proto_path=. --proto_path=$(PROTO_WKT_DIR) --python_out=$(PROTO_PY_DIR) $(PROTO_FILES)
	@for d in $(sort $(patsubst %/,%,$(dir $(PROTO_FILES)))); do touch $(PROTO_PY_DIR)/$$d/__init__.py; done
	@touch $@

.PHONY: proto proto-c proto-py
proto: proto-c proto-py
proto-c: $(PROTO_C_OBJ)
proto-py: $(PROTO_PY_STAMP)

.DEFAULT_GOAL := $(_proto_saved_default_goal)
