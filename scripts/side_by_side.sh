# Sourced by scripts/test.sh and scripts/asan.sh.
# side_by_side NAME_A CMD_A NAME_B CMD_B: runs the two commands at once (a test suite mostly waits
# for the servers it starts, so two lanes use the machine's two cores better than one); A prints as
# it goes, B's output is printed once both ended. Fails, naming them, when either failed. An
# interrupt stops B too.
side_by_side() {
  local name_a=$1 cmd_a=$2 name_b=$3 cmd_b=$4 rc_a=0 rc_b=0
  SBS_LOG=$(mktemp)
  bash -c "$cmd_b" > "$SBS_LOG" 2>&1 &
  SBS_PID=$!
  trap 'kill "$SBS_PID" 2>/dev/null; rm -f "$SBS_LOG"; exit 130' INT TERM
  bash -c "$cmd_a" || rc_a=$?
  wait "$SBS_PID" || rc_b=$?
  trap - INT TERM
  echo "== $name_b (ran beside $name_a):"
  cat "$SBS_LOG"
  rm -f "$SBS_LOG"
  if [ "$rc_a" != 0 ] || [ "$rc_b" != 0 ]; then
    echo "failed: $name_a exit $rc_a, $name_b exit $rc_b"
    return 1
  fi
}
