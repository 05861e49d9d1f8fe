#!/usr/bin/env bash
# Throughput of a container's network: SIZE bytes (default 1 GiB) from a
# server in a container to a client in the host's namespace, through a
# published port (-p: DNAT to the bridge) and straight to the container's
# address over the bridge, ROUNDS times each, interleaved. Everything runs
# in a network namespace this script makes (nsenter --net) and deletes.
# Needs root, busybox-static and the fixture registry (fixtures/up.sh).
#
# usage: bench/net.sh   (SIZE=bytes ROUNDS=n)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SIZE=${SIZE:-1073741824}
ROUNDS=${ROUNDS:-3}
IMAGE=${IMAGE:-127.0.0.1:5000/test/busybox:oci}
source bench/common.sh
bench_setup net "${BENCH_DIR:-/dev/shm}"
NS=mini-bench-net-$$
ip netns add "$NS"
ip -n "$NS" link set lo up
trap 'rm -rf "$WORK"; ip netns pids "$NS" | xargs -r kill -9; ip netns del "$NS"' EXIT
inns() { nsenter --net=/run/netns/"$NS" "$@"; }

# The server sends SIZE zero bytes to each client, then closes.
id=$(inns "$MINI" run -d -p 18090:9000 "$IMAGE" \
  nc -ll -p 9000 -e sh -c "head -c $SIZE /dev/zero")
ip=$(inns "$MINI" inspect "$id" | jq -r '.[0].NetworkSettings.IPAddress')
sleep 0.5

# One transfer: seconds, and the bytes received (checked).
transfer() { # HOST PORT
  local t0 t1 got
  t0=$(date +%s.%N)
  got=$(inns busybox nc "$1" "$2" </dev/null | wc -c)
  t1=$(date +%s.%N)
  [[ $got -eq $SIZE ]] || { echo "net.sh: got $got of $SIZE bytes from $1:$2" >&2; exit 1; }
  echo "$t1 - $t0" | bc -l
}

declare -A total=()
paths=("published 127.0.0.1:18090" "bridge $ip:9000")
for ((r = 1; r <= ROUNDS; r++)); do
  for p in "${paths[@]}"; do
    name=${p%% *} addr=${p#* }
    s=$(transfer "${addr%:*}" "${addr##*:}")
    total[$name]=$(echo "${total[$name]:-0} + $s" | bc -l)
  done
done
inns "$MINI" rm -f "$id" >/dev/null
echo "| path | $((SIZE / 1048576)) MiB, mean of $ROUNDS | throughput |"
echo "|---|---|---|"
for p in "${paths[@]}"; do
  name=${p%% *}
  mean=$(echo "${total[$name]} / $ROUNDS" | bc -l)
  printf '| %s | %.2f s | %.0f MiB/s |\n' "$name" "$mean" "$(echo "$SIZE / 1048576 / $mean" | bc -l)"
done
