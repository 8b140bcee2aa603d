#!/usr/bin/env bash
# `make test`: every test suite, in order; stops at the first failing suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/build/gen/python${PYTHONPATH:+:$PYTHONPATH}"

echo "== unit tests (Criterion)"
for t in build/tests/test_*; do
  [ -x "$t" ] || continue
  "$t" --jobs 2
done

echo "== protocol conformance (pytest)"
/usr/bin/python3 -m pytest -q tests/protocol

echo "== end-to-end (pytest against build/duckstore)"
/usr/bin/python3 -m pytest -q tests/e2e

echo "== driver protocol over gRPC and the HTTP bridge (pytest)"
/usr/bin/python3 -m pytest -q tests/grpc

echo "== backend conformance (pytest: duckdb and postgres)"
/usr/bin/python3 -m pytest -q tests/conformance

echo "== benchmark at QUICK sizes (checks that it builds and runs; asserts no speed)"
QUICK=1 bash scripts/bench.sh > build/bench-quick.log 2>&1 || { tail -50 build/bench-quick.log; exit 1; }
tail -3 build/bench-quick.log

echo "== sanitizers: ASan + UBSan build, end-to-end and protocol suites"
make --no-print-directory asan
