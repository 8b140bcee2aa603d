#!/usr/bin/env bash
# Runs the libFuzzer harnesses built by `make fuzz-build` (mk/fuzz.mk) one after another, each for
# FUZZ_SECONDS, with ASan, UBSan and LeakSanitizer. Usage: scripts/fuzz.sh HARNESS...
#   FUZZ_SECONDS  seconds per harness (default 300)
#   FUZZ_RUNS     if set, executions per harness instead of a time (10000000 is the goal per harness)
#   FUZZ_TMPDIR   where the harnesses' temporary data directories go (default /dev/shm, else $TMPDIR or /tmp)
#   FUZZ_MERGE    1: merge the inputs that add coverage into tests/fuzz/corpus/<harness>/ (-merge=1,
#                 so the committed corpus stays minimal); 0: leave the corpus alone (`make test`)
# New inputs of a run go to build-fuzz/new/<harness>/; a crash, leak, UB report or timeout stops
# the script with the harness's log and leaves the input in build-fuzz/findings/<harness>/.
# One fuzzer process at a time: the machine's cores are shared.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-300}
RUNS=${FUZZ_RUNS:-}
MERGE=${FUZZ_MERGE:-1}
BIN=build-fuzz/fuzz
# The harnesses that start the service core keep its data directory under $TMPDIR (tests/fuzz/fuzz_util.h):
# /dev/shm when it can be written, so the engine's fsyncs and the catalog's mkdirs cost no disk time (a
# REST run went from 230 to 333 executions/s). FUZZ_TMPDIR chooses another place.
if [ -n "${FUZZ_TMPDIR:-}" ]; then
  export TMPDIR=$FUZZ_TMPDIR
elif [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export TMPDIR=/dev/shm
fi
# malloc_context_size=2 (malloc and its caller): deeper stacks past DuckDB's frames (no frame pointers) are
# garbage that fills ASan's stack depot for good and slowed `rest` from 140 to 95 executions/s; 0 or 1 make
# LeakSanitizer report nothing, which the canary below catches. docs/operations.md ("Fuzzing") has the numbers.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:malloc_context_size=2:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

[ $# -gt 0 ] || { echo "usage: $0 HARNESS..." >&2; exit 2; }
# First, prove that leaks are reported with these options: tests/fuzz/canary_leak.c leaks on purpose, and
# LeakSanitizer must name its caller. Options that switch the reports off would otherwise let every run pass.
mkdir -p build-fuzz/logs
canary_dir=$(mktemp -d)
if "$BIN/canary_leak" -runs=1 -artifact_prefix="$canary_dir/" > build-fuzz/logs/canary_leak.log 2>&1 ||
    ! grep -q 'ERROR: LeakSanitizer: detected memory leaks' build-fuzz/logs/canary_leak.log ||
    ! grep -q 'in canary_lose_block' build-fuzz/logs/canary_leak.log; then
  rm -rf "$canary_dir"
  echo "fuzz: LeakSanitizer did not report the canary's planned leak with ASAN_OPTIONS=$ASAN_OPTIONS" >&2
  echo "fuzz: (log: build-fuzz/logs/canary_leak.log); leaks would go unreported, so no harness runs" >&2
  exit 1
fi
rm -rf "$canary_dir"
printf '%-8s %12s %8s %9s %10s\n' harness executions seconds corpus bytes
for h in "$@"; do
  corpus=tests/fuzz/corpus/$h
  work=build-fuzz/new/$h
  findings=build-fuzz/findings/$h
  log=build-fuzz/logs/$h.log
  mkdir -p "$corpus" "$work" "$findings" "$(dirname "$log")"
  # Whole requests are bigger than single values.
  case $h in
    rest|driver) max_len=16384 ;;
    *) max_len=4096 ;;
  esac
  dict=()
  [ -f "tests/fuzz/dict/$h.dict" ] && dict=("-dict=tests/fuzz/dict/$h.dict")
  limit=(-max_total_time="$SECONDS_EACH")
  [ -n "$RUNS" ] && limit=(-runs="$RUNS")
  start=$(date +%s)
  if ! "$BIN/fuzz_$h" "${limit[@]}" -max_len="$max_len" -timeout=60 -rss_limit_mb=4096 \
      -print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]+"${dict[@]}"}" "$work" "$corpus" \
      > "$log" 2>&1; then
    echo "fuzz: harness $h failed; its log ($log) ends:" >&2
    grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$log" | tail -60 >&2
    echo "fuzz: the input is in $findings/" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  secs=$(( $(date +%s) - start ))
  if [ "$MERGE" = 1 ]; then
    "$BIN/fuzz_$h" -merge=1 -max_len="$max_len" -timeout=60 -rss_limit_mb=4096 "$corpus" "$work" \
      > "build-fuzz/logs/$h.merge.log" 2>&1 || { tail -30 "build-fuzz/logs/$h.merge.log" >&2; exit 1; }
  fi
  printf '%-8s %12s %8s %9s %10s\n' "$h" "${execs:-?}" "$secs" "$(find "$corpus" -type f | wc -l)" \
    "$(du -sb "$corpus" | cut -f1)"
done
