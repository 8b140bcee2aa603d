#!/usr/bin/env bash
# `make test`: every test suite, in order; stops at the first failing suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/build/gen/python${PYTHONPATH:+:$PYTHONPATH}"
# Each suite's heading carries the seconds since the start, so a slow suite shows in the log.
start=$SECONDS
stage() { echo "== [$((SECONDS - start)) s] $*"; }

stage "unit tests (Criterion)"
for t in build/tests/test_*; do
  [ -x "$t" ] || continue
  "$t" --jobs 2
done

stage "fuzz harnesses, a few seconds each (make fuzz runs them longer)"
make --no-print-directory fuzz-build
FUZZ_SECONDS=${FUZZ_SECONDS:-3} FUZZ_MERGE=0 bash scripts/fuzz.sh \
  $(ls tests/fuzz/fuzz_*.c | sed 's|tests/fuzz/fuzz_\(.*\)\.c|\1|')

stage "protocol conformance (pytest)"
/usr/bin/python3 -m pytest -q tests/protocol

stage "end-to-end (pytest against build/duckstore)"
/usr/bin/python3 -m pytest -q tests/e2e

stage "driver protocol over gRPC and the HTTP bridge (pytest)"
/usr/bin/python3 -m pytest -q tests/grpc

stage "PHP driver client and backend registry for Keboola Connection (PHPUnit against build/duckstore)"
make --no-print-directory test-php

stage "backend conformance (pytest: duckdb and postgres)"
/usr/bin/python3 -m pytest -q tests/conformance

stage "benchmark at QUICK sizes (checks that it builds and runs; asserts no speed)"
QUICK=1 bash scripts/bench.sh > build/bench-quick.log 2>&1 || { tail -50 build/bench-quick.log; exit 1; }
tail -3 build/bench-quick.log

stage "sanitizers: ASan + UBSan build, end-to-end and protocol suites"
make --no-print-directory asan
stage "all suites passed"
