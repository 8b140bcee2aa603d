#!/usr/bin/env bash
# `make bench`: builds the benchmark driver (mk/bench.mk) and runs it against
# build/duckstore on loopback; prints the tables and writes
# bench/results/latest.json. With QUICK=1 (`make bench QUICK=1`, part of
# `make test`) the same code runs on tiny sizes in seconds and writes
# bench/results/quick.json. Extra driver flags: BENCH_ARGS="--rows 500000 --keep".
# See docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s --no-print-directory -f Makefile -f mk/bench.mk build/duckstore build/duckstore_bench build/test-plugins/tiny.so
args=()
if [ -n "${QUICK:-}" ] && [ "${QUICK}" != 0 ]; then
  args+=(--quick)
fi
# shellcheck disable=SC2206 # BENCH_ARGS is split on purpose
args+=(${BENCH_ARGS:-})
exec build/duckstore_bench ${args[@]+"${args[@]}"}
