# Sourced by bench/run.sh and bench/ps.sh (from the repo root): a fresh
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
