#!/usr/bin/env bash
# `mini ps -a` with many stopped containers (default 1,000): made with
# `mini create` (4 at a time), then marked exited in their state.json the
# way a monitor leaves them (status, exit code, finish time), so `ps` reads
# exactly what it reads after real runs. Timed with hyperfine; `ps` without
# -a (nothing running) is timed too, as it still reads every state.
#
# usage: bench/ps.sh [COUNT] [RUNS]   Needs root, hyperfine, jq and the
# fixture registry on 127.0.0.1:5000 (fixtures/up.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
COUNT=${1:-1000}
RUNS=${2:-50}
IMAGE=${IMAGE:-127.0.0.1:5000/test/busybox:oci}
source bench/common.sh
bench_setup ps /var/tmp

start=$(date +%s.%N)
seq -w 1 "$COUNT" | xargs -P 4 -I{} "$MINI" create --name "c{}" "$IMAGE" sh -c 'exit 3' >/dev/null
now=$(date +%s)
for s in "$MINI_ROOT"/containers/*/state.json; do
  jq -c --argjson t "$now" '.status = "exited" | .exit_code = 3 | .started_at = $t | .finished_at = $t' "$s" >"$s.new"
  mv "$s.new" "$s"
done
echo "made $COUNT stopped containers in $(echo "$(date +%s.%N) - $start" | bc) s"
[ "$($MINI ps -aq | wc -l)" -eq "$COUNT" ]

hyperfine -N --warmup 3 --runs "$RUNS" \
  "$MINI ps -a" \
  "$MINI ps" \
  "$MINI ps -a --format json"
