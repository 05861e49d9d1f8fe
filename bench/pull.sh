#!/usr/bin/env bash
# Pull benchmark: `mini pull` of the ~150 MB, 6-layer fixture image from the
# local registry into a fresh store, against `skopeo copy` + `umoci unpack` of
# the same image (the pair that does the same work: fetch, verify, unpack),
# and against `skopeo copy` alone. Rounds alternate the contenders and use
# fresh, uniquely named directories.
#
# The default BENCH_DIR is on tmpfs (/dev/shm): on this host's ext4, creating
# files within seconds of mass deletes spends most of its time in the
# kernel's ext4 `recently_deleted` inode probe (seen with perf), which slows
# every contender 5-20x and measures the disk's history, not the tools. Set
# BENCH_DIR=/var/tmp/... to measure on ext4 anyway.
#
#   bench/pull.sh [ROUNDS]         needs root, fixtures/up.sh --big, a release build
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=${1:-5}
IMAGE=127.0.0.1:5000/test/big:latest
MINI=${MINI:-target/x86_64-unknown-linux-gnu/release/mini}
WORK=${BENCH_DIR:-/dev/shm/mini-bench}/pull-$$
[[ -x $MINI ]] || cargo build --release
curl -sf "http://127.0.0.1:5000/v2/test/big/tags/list" >/dev/null || fixtures/up.sh --big >/dev/null
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
declare -A total
run() { # name command...
  local name=$1; shift
  local t0 t1; t0=$(now); "$@" >/dev/null 2>&1 || { echo "bench: $name failed" >&2; exit 1; }; t1=$(now)
  total[$name]=$(echo "${total[$name]:-0} + $t1 - $t0" | bc -l)
  printf '  %-22s %6.2fs\n' "$name" "$(echo "$t1 - $t0" | bc -l)"
}

for i in $(seq 1 "$ROUNDS"); do
  echo "round $i"
  run "mini pull" "$MINI" --root "$WORK/mini-$i" pull -q "$IMAGE"
  run "skopeo copy" skopeo copy --src-tls-verify=false "docker://$IMAGE" "oci:$WORK/skopeo-$i:big"
  run "skopeo+umoci unpack" bash -c "skopeo copy --src-tls-verify=false docker://$IMAGE oci:$WORK/su-$i:big && umoci unpack --image $WORK/su-$i:big $WORK/su-$i-bundle"
  rm -rf "$WORK"/*-"$i"*
done
echo
echo "mean over $ROUNDS rounds (fetch + verify + unpack unless noted):"
for name in "mini pull" "skopeo+umoci unpack" "skopeo copy"; do
  printf '  %-22s %6.2fs\n' "$name" "$(echo "${total[$name]} / $ROUNDS" | bc -l)"
done
