#!/usr/bin/env bash
# save/load benchmark: `mini save` and `mini load` of the ~150 MB, 6-layer
# fixture image against `podman save` and `podman load` of the same image
# (podman 4.3, overlay storage), rounds interleaved; every load goes into a
# fresh, empty store. Peak RSS from /usr/bin/time. podman runs in a private
# mount namespace, as HOST-NOTES says it must on this host.
#
#   bench/save.sh [ROUNDS]         needs root, fixtures/up.sh --big, podman
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=${1:-3}
IMAGE=127.0.0.1:5000/test/big:latest
WORK=${BENCH_DIR:-/dev/shm}/mini-bench-save-$$
curl -sf "http://127.0.0.1:5000/v2/test/big/tags/list" >/dev/null || fixtures/up.sh --big >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -q
MINI=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/mini
mkdir -p "$WORK/podman"
trap 'rm -rf "$WORK" /run/mb-save-*' EXIT
cat >"$WORK/podman/registries.conf" <<CONF
[[registry]]
location = "127.0.0.1:5000"
insecure = true
CONF
export CONTAINERS_REGISTRIES_CONF=$WORK/podman/registries.conf
# podman ROOT ARGS..., as a script so /usr/bin/time can run it.
cat >"$WORK/podman-in" <<'SCRIPT'
#!/bin/sh
root=$1; shift
exec unshare --mount --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh \
  podman --root "$root" --runroot "/run/mb-save-$(basename "$root")" --storage-driver overlay "$@"
SCRIPT
chmod +x "$WORK/podman-in"
podman_in() { "$WORK/podman-in" "$@"; }
MINI_ROOT=$WORK/mini-src $MINI pull -q "$IMAGE" >/dev/null
podman_in "$WORK/podman-src" pull -q "$IMAGE" >/dev/null

source bench/common.sh
declare -A total rss
for i in $(seq 1 "$ROUNDS"); do
  echo "round $i"
  timed "mini save" env MINI_ROOT="$WORK/mini-src" "$MINI" save -o "$WORK/m-$i.tar" "$IMAGE"
  timed "podman save" "$WORK/podman-in" "$WORK/podman-src" save -q -o "$WORK/p-$i.tar" "$IMAGE"
  timed "mini load" env MINI_ROOT="$WORK/mini-$i" "$MINI" load -i "$WORK/m-$i.tar"
  timed "podman load" "$WORK/podman-in" "$WORK/podman-$i" load -q -i "$WORK/p-$i.tar"
  rm -rf "$WORK/m-$i.tar" "$WORK/p-$i.tar" "$WORK/mini-$i"
  podman_in "$WORK/podman-$i" system reset -f >/dev/null 2>&1 || true
  rm -rf "$WORK/podman-$i"
done
podman_in "$WORK/podman-src" system reset -f >/dev/null 2>&1 || true
echo
echo "| contender | mean of $ROUNDS | peak RSS | mini / podman |"
echo "|---|---|---|---|"
for verb in save load; do
  for who in mini podman; do
    name="$who $verb"
    ratio=$(echo "${total["mini $verb"]} / ${total["podman $verb"]}" | bc -l | cut -c1-4)
    printf '| %s | %.2f s | %d MiB | %s |\n' "$name" "$(echo "${total[$name]} / $ROUNDS" | bc -l)" "$((rss[$name] / 1024))" \
      "$([[ $who == mini ]] && echo "${ratio}x" || echo "")"
  done
done
