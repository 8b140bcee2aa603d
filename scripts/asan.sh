#!/usr/bin/env bash
# `make asan`: runs the DuckDB backend's project-handle unit test, and the
# end-to-end and driver-protocol suites against the ASan + UBSan build
# (build-asan/duckstore). Any memory error or undefined
# behaviour aborts the server, which fails the test that caused it.
set -euo pipefail
cd "$(dirname "$0")/.."
export DUCKSTORE_TEST_BINARY="$PWD/build-asan/duckstore"
# Leaks are not checked: DuckDB and gRPC keep process-lifetime allocations.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1"
export PYTHONPATH="$PWD/build/gen/python${PYTHONPATH:+:$PYTHONPATH}"
echo "== project handles (attach/detach/drop races) under ASan + UBSan"
build-asan/tests/test_duckdb_projects --jobs 1
echo "== end-to-end under ASan + UBSan"
/usr/bin/python3 -m pytest -q tests/e2e
echo "== driver protocol under ASan + UBSan"
/usr/bin/python3 -m pytest -q tests/grpc
