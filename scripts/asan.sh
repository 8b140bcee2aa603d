#!/usr/bin/env bash
# `make asan`: runs the DuckDB backend's project-handle unit test, and the
# end-to-end and driver-protocol suites against the ASan + UBSan build
# (build-asan/duckstore). Any memory error or undefined
# behaviour aborts the server, which fails the test that caused it; a leak makes the server exit
# non-zero when the test stops it, which fails the test too.
set -euo pipefail
cd "$(dirname "$0")/.."
export DUCKSTORE_TEST_BINARY="$PWD/build-asan/duckstore"
# Leaks are checked (LeakSanitizer, when a server exits at the end of a test), except allocations
# made inside DuckDB, gRPC, protobuf and Abseil: scripts/lsan.supp says why.
# malloc_context_size=10 (ASan's default keeps 30 frames per allocation): a server starts 0.13 s sooner,
# which is a minute over the ~430 server starts of `make test`; reports still show 10 frames, and
# ASAN_OPTIONS set by the caller wins.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:malloc_context_size=10}"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1"
export PYTHONPATH="$PWD/build/gen/python${PYTHONPATH:+:$PYTHONPATH}"
echo "== project handles (attach/detach/drop races) under ASan + UBSan"
build-asan/tests/test_duckdb_projects --jobs 1
# `make test` runs the suites that drive the most C code per second (parsers, every data path, the
# sandbox, idempotency, the transports; branches through the driver's branch commands); the drills
# that mostly wait (crash, restart, load, pools, write-queue waits, open-file caps, key rotation
# grace periods) and the REST branch file (two minutes, mostly its kill drills) run here only with
# ASAN_ALL=1 (`make asan-all`), which runs both suites whole.
if [ "${ASAN_ALL:-0}" = 1 ]; then
  E2E=(tests/e2e)
  GRPC=(tests/grpc)
else
  E2E=()
  for t in bad_input http data_import buckets names files upload_stream \
           idempotency engine_failure parking sharing aliases preview_cache; do
    if [ -f "tests/e2e/test_$t.py" ]; then E2E+=("tests/e2e/test_$t.py"); fi
  done
  # The driver lane also takes the workspace files of the end-to-end suite: the two lanes then take
  # about as long as each other (the end-to-end lane alone took twice the driver lane's time).
  GRPC=()
  for t in branch_workspaces workspaces workspace_attacks workspace_storage_names; do
    if [ -f "tests/e2e/test_$t.py" ]; then GRPC+=("tests/e2e/test_$t.py"); fi
  done
  for t in driver_malformed driver_data driver_flow driver_errors workspaces_driver branches_driver \
           sharing_driver views_driver time_travel_driver snapshots_driver; do
    if [ -f "tests/grpc/test_$t.py" ]; then GRPC+=("tests/grpc/test_$t.py"); fi
  done
fi
# The two suites run side by side: each test mostly waits for its server (an ASan server takes about
# 0.5 s to start), so two lanes use the machine's two cores better than one.
# shellcheck source=scripts/side_by_side.sh
. scripts/side_by_side.sh
echo "== end-to-end (${#E2E[@]} files) and driver protocol (${#GRPC[@]} files) under ASan + UBSan, side by side"
side_by_side "end-to-end under ASan + UBSan" "/usr/bin/python3 -m pytest -q -p no:cacheprovider ${E2E[*]}" \
  "driver protocol under ASan + UBSan" "/usr/bin/python3 -m pytest -q -p no:cacheprovider ${GRPC[*]}"
