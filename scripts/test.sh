#!/usr/bin/env bash
# `make test`: every test suite, in order; stops at the first failing suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/build/gen/python${PYTHONPATH:+:$PYTHONPATH}"
# Each suite's heading carries the seconds since the start, so a slow suite shows in the log.
start=$SECONDS
stage() { echo "== [$((SECONDS - start)) s] $*"; }
# shellcheck source=scripts/side_by_side.sh
. scripts/side_by_side.sh

stage "unit tests (Criterion)"
for t in build/tests/test_*; do
  [ -x "$t" ] || continue
  "$t" --jobs 2
done

stage "fuzz harnesses, a few seconds each (make fuzz runs them longer)"
make --no-print-directory fuzz-build
FUZZ_SECONDS=${FUZZ_SECONDS:-3} FUZZ_MERGE=0 bash scripts/fuzz.sh \
  $(ls tests/fuzz/fuzz_*.c | sed 's|tests/fuzz/fuzz_\(.*\)\.c|\1|')
# The script's leak canary must stop it when leak reports are off (malloc_context_size=1 hides every leak).
guard_log=build-fuzz/logs/canary_guard.log
if ASAN_OPTIONS=malloc_context_size=1 FUZZ_SECONDS=1 FUZZ_MERGE=0 bash scripts/fuzz.sh numlit > "$guard_log" 2>&1 ||
    ! grep -q "did not report the canary" "$guard_log"; then
  echo "scripts/fuzz.sh did not refuse to fuzz with leak reports off; its log:" >&2
  cat "$guard_log" >&2
  exit 1
fi

stage "protocol conformance (pytest)"
/usr/bin/python3 -m pytest -q tests/protocol

# The end-to-end and driver suites run side by side, except the files that time latencies or
# measure memory against a bound (TIMED): those run alone afterwards, on a machine nothing else loads.
TIMED_E2E="test_serving test_concurrency test_data_misc test_parking test_files"
TIMED_GRPC="test_grpc_pool test_driver_concurrency test_grpc_calls"
pick() { # pick DIR "NAMES" in|out: the test files of DIR that are (in) or are not (out) among NAMES
  local f base
  for f in "$1"/test_*.py; do
    base=$(basename "$f" .py)
    case " $2 " in *" $base "*) [ "$3" = in ] && echo "$f" ;; *) [ "$3" = out ] && echo "$f" ;; esac
  done
  return 0
}
PYTEST="/usr/bin/python3 -m pytest -q -p no:cacheprovider"
stage "end-to-end (against build/duckstore) beside the driver protocol over gRPC and the HTTP bridge (pytest)"
side_by_side "end-to-end" "$PYTEST $(pick tests/e2e "$TIMED_E2E" out | tr '\n' ' ')" \
  "driver protocol" "$PYTEST $(pick tests/grpc "$TIMED_GRPC" out | tr '\n' ' ')"

stage "end-to-end and driver files that time latencies or bound memory, alone (pytest)"
$PYTEST $(pick tests/e2e "$TIMED_E2E" in) $(pick tests/grpc "$TIMED_GRPC" in)

stage "PHP driver client and backend registry for Keboola Connection (PHPUnit against build/duckstore)"
make --no-print-directory test-php

stage "backend conformance (pytest: duckdb and postgres)"
$PYTEST tests/conformance

stage "benchmark at QUICK sizes (checks that it builds and runs; asserts no speed)"
QUICK=1 bash scripts/bench.sh > build/bench-quick.log 2>&1 || { tail -50 build/bench-quick.log; exit 1; }
tail -3 build/bench-quick.log

stage "sanitizers: ASan + UBSan build, end-to-end and protocol suites"
make --no-print-directory asan
stage "all suites passed"
