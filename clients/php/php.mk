# clients/php/php.mk - the PHP package for Keboola Connection (clients/php/).
#
# Included from the top-level Makefile (BUILD, PROTOC, PROTO_FILES and PROTO_WKT_DIR come from
# there and mk/proto.mk). It generates the protobuf message classes with `protoc --php_out` into
# $(BUILD)/gen/php (never committed), writes Composer's autoloader into $(BUILD)/php/vendor
# (`composer dump-autoload`: no network, no remote packages) and runs the PHPUnit suite against
# $(BUILD)/duckstore. The PHP runtime comes from Debian packages (scripts/setup.sh).
# Targets: php-client (generate + autoload), test-php (PHPUnit), bench-php (overhead benchmark).

_php_saved_default_goal := $(.DEFAULT_GOAL)

PHP_DIR      := clients/php
PHP_GEN_DIR  := $(BUILD)/gen/php
PHP_GEN_STAMP := $(PHP_GEN_DIR)/.proto-stamp
PHP_AUTOLOAD := $(BUILD)/php/vendor/autoload.php

$(PHP_GEN_STAMP): $(PROTO_FILES)
	@rm -rf $(PHP_GEN_DIR) && mkdir -p $(PHP_GEN_DIR)
	$(PROTOC) --proto_path=. --proto_path=$(PROTO_WKT_DIR) --php_out=$(PHP_GEN_DIR) $(PROTO_FILES)
	@touch $@

$(PHP_AUTOLOAD): $(PHP_DIR)/composer.json
	@mkdir -p $(BUILD)/php
	@COMPOSER_HOME=$(abspath $(BUILD)/php/composer-home) COMPOSER_DISABLE_NETWORK=1 \
	    composer --no-interaction --quiet --working-dir=$(PHP_DIR) dump-autoload --dev

.PHONY: php-client test-php bench-php
php-client: $(PHP_GEN_STAMP) $(PHP_AUTOLOAD)

test-php: $(BUILD)/duckstore $(BUILD)/test-plugins/tiny.so php-client
	phpunit --configuration $(PHP_DIR)/phpunit.xml

# BENCH_PHP_FLAGS: php options for the benchmark, e.g. opcache with its JIT as under PHP-FPM.
BENCH_PHP_FLAGS ?=
bench-php: $(BUILD)/duckstore php-client
	php $(BENCH_PHP_FLAGS) $(PHP_DIR)/bench/overhead.php

.DEFAULT_GOAL := $(_php_saved_default_goal)
