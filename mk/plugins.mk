# mk/plugins.mk — backend plugins and test plugins, as shared objects.
#
# Include it from the top-level Makefile after BUILD, CC and WERROR are set:
#
#     include mk/plugins.mk
#     all: $(BUILD)/duckstore $(PLUGIN_SO) $(TEST_PLUGIN_SO)
#
# It builds:
#   * $(BUILD)/plugins/libds_<name>.so from backends/<name>/*.c, for every
#     backends/<name>/ except duckdb (which is linked into the binary);
#   * $(BUILD)/test-plugins/<file>.so from each tests/plugins/<file>.c (one
#     file, one plugin: the load-failure cases of the conformance suite).
#
# Plugins compile with -fPIC -shared -fvisibility=hidden and see only
# include/duckstore/*.h: everything they need from the host comes through the
# host API table, so they never link against the host binary. -Wl,-z,defs
# makes the link fail if a plugin uses any symbol it does not link itself.
# Per-plugin compiler flags and libraries: PLUGIN_CFLAGS_<name>, PLUGIN_LIBS_<name>.
#
# Variables for the includer: PLUGIN_SO, TEST_PLUGIN_SO. Convenience target: plugins.
# Safe to name twice (make -f Makefile -f mk/plugins.mk): the second time is a no-op.

ifndef DS_PLUGINS_MK
DS_PLUGINS_MK := 1

_plugins_saved_default_goal := $(.DEFAULT_GOAL)

PLUGIN_NAMES   := $(filter-out duckdb,$(notdir $(patsubst %/,%,$(sort $(dir $(wildcard backends/*/*.c))))))
PLUGIN_SO      := $(patsubst %,$(or $(BUILD),build)/plugins/libds_%.so,$(PLUGIN_NAMES))
TEST_PLUGIN_SO := $(patsubst tests/plugins/%.c,$(or $(BUILD),build)/test-plugins/%.so,$(sort $(wildcard tests/plugins/*.c)))

PLUGIN_CFLAGS  ?= -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra $(WERROR) -fPIC -pthread -fvisibility=hidden -Iinclude
PLUGIN_LDFLAGS ?= -shared -pthread -Wl,-z,defs

# PostgreSQL: libpq (Debian libpq-dev) and zlib (gzip CSV in and out; libpq-dev's own dependency chain has it).
PLUGIN_CFLAGS_postgres := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
PLUGIN_LIBS_postgres   := $(shell pkg-config --libs libpq 2>/dev/null || echo -lpq) -lz

PLUGIN_HDRS := $(wildcard include/duckstore/*.h)

define _ds_plugin_rule
$(or $(BUILD),build)/plugins/libds_$(1).so: $(wildcard backends/$(1)/*.c backends/$(1)/*.h) $(PLUGIN_HDRS)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(PLUGIN_CFLAGS) $$(PLUGIN_CFLAGS_$(1)) -o $$@ $(wildcard backends/$(1)/*.c) $$(PLUGIN_LDFLAGS) $$(PLUGIN_LIBS_$(1))
endef
$(foreach p,$(PLUGIN_NAMES),$(eval $(call _ds_plugin_rule,$(p))))

$(or $(BUILD),build)/test-plugins/%.so: tests/plugins/%.c $(PLUGIN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(PLUGIN_CFLAGS) -o $@ $< $(PLUGIN_LDFLAGS)

.PHONY: plugins
plugins: $(PLUGIN_SO) $(TEST_PLUGIN_SO)

.DEFAULT_GOAL := $(_plugins_saved_default_goal)
endif
