# Sourced by scripts/test.sh and scripts/asan.sh.
# side_by_side NAME_A CMD_A NAME_B CMD_B: runs the two commands at once (a test suite mostly waits
# for the servers it starts, so two lanes use the machine's two cores better than one); A prints as
# it goes, B's output is printed once both ended. Fails, naming them, when either failed.
side_by_side() {
  local name_a=$1 cmd_a=$2 name_b=$3 cmd_b=$4 log rc_a=0 rc_b=0 pid
  log=$(mktemp)
  bash -c "$cmd_b" > "$log" 2>&1 &
  pid=$!
  bash -c "$cmd_a" || rc_a=$?
  wait "$pid" || rc_b=$?
  echo "== $name_b (ran beside $name_a):"
  cat "$log"
  rm -f "$log"
  if [ "$rc_a" != 0 ] || [ "$rc_b" != 0 ]; then
    echo "failed: $name_a exit $rc_a, $name_b exit $rc_b"
    return 1
  fi
}
