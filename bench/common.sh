# Sourced by the bench scripts (from the repo root): a fresh
# work dir, removed on exit, never an emptied and refilled one (on this
# host's ext4 that takes a slow path, see HOST-NOTES); a release build of
# mini; and a store in the work dir holding $IMAGE.
#
#   bench_setup NAME PARENT   sets WORK and MINI, exports MINI_ROOT
bench_setup() {
  WORK=$(mktemp -d "$2/mini-bench-$1.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
  cargo build --release -q
  MINI=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/mini
  export MINI_ROOT=$WORK/store
  $MINI pull -q "$IMAGE" >/dev/null
}

# One timed run of a contender: wall time and peak RSS (/usr/bin/time)
# added to the caller's `declare -A total rss` (rss keeps the maximum), one
# line printed; a failure shows the contender's stderr and ends the bench.
#   timed NAME COMMAND...      needs $WORK
timed() {
  local name=$1; shift
  local t0 t1 kb
  t0=$(date +%s.%N)
  /usr/bin/time -f %M -o "$WORK/rss" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; echo "bench: $name failed" >&2; exit 1; }
  t1=$(date +%s.%N)
  kb=$(tail -1 "$WORK/rss")
  total[$name]=$(echo "${total[$name]:-0} + $t1 - $t0" | bc -l)
  ((kb > ${rss[$name]:-0})) && rss[$name]=$kb
  printf '  %-12s %6.2fs  %6d KiB\n' "$name" "$(echo "$t1 - $t0" | bc -l)" "$kb"
}
