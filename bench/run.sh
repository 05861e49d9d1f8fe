#!/usr/bin/env bash
# Compare starting a container and running `true` in it:
#   mini run --rm --network none IMAGE true, and with --memory 64m --cpus 1
#     --pids-limit 100
#   runc run / crun run of a ready bundle of the same rootfs (crun also with
#     the same limits)
#   podman run --rm --network none IMAGE true (if podman is installed)
# in one hyperfine run, alternating contenders. Needs root, hyperfine, runc,
# crun, jq and the fixture registry on 127.0.0.1:5000 (fixtures/up.sh).
#
# Host quirks handled here (see HOST-NOTES): cgroups are a v1/v2 hybrid, so
# crun (and podman, which uses it) only run inside a private mount namespace
# where /sys/fs/cgroup/unified is unmounted; the whole comparison runs there
# so every contender sees the same mounts. runc gets a relative cgroupsPath
# (its cgroups then go beneath ours). podman gets a config within this
# host's rlimits and a short runroot.
#
# usage: bench/run.sh [RUNS]   (hyperfine's table and a summary on stdout)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${1:-100}
IMAGE=${IMAGE:-127.0.0.1:5000/test/busybox:oci}
WORK=${WORK:-/var/tmp/mini-bench-run}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

cargo build --release -q
MINI=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/mini
rm -rf "$WORK"
mkdir -p "$WORK"
export MINI_ROOT=$WORK/store

# The image, and a bundle of exactly the same rootfs (exported by mini).
$MINI pull -q "$IMAGE" >/dev/null
$MINI create --name bench-src "$IMAGE" true >/dev/null
mkdir -p "$WORK/bundle/rootfs"
$MINI export bench-src | tar -x -C "$WORK/bundle/rootfs"
$MINI rm bench-src >/dev/null
(cd "$WORK/bundle" && runc spec)
jq '.process.args = ["true"] | .process.terminal = false
    | .linux.cgroupsPath = "mini-bench"
    | .linux.namespaces += [{"type": "cgroup"}]' \
  "$WORK/bundle/config.json" >"$WORK/bundle/config.json.new"
mv "$WORK/bundle/config.json.new" "$WORK/bundle/config.json"
# The same bundle with the limits mini's second row sets (Docker's swap
# default: twice the memory).
mkdir -p "$WORK/bundle-limits"
jq --arg root "$WORK/bundle/rootfs" '.root.path = $root | .linux.cgroupsPath = "mini-bench-limits"
    | .linux.resources.memory = {"limit": 67108864, "swap": 134217728}
    | .linux.resources.cpu = {"quota": 100000, "period": 100000}
    | .linux.resources.pids = {"limit": 100}' \
  "$WORK/bundle/config.json" >"$WORK/bundle-limits/config.json"

contenders=(
  "$MINI run --rm --network none $IMAGE true"
  "$MINI run --rm --network none --memory 64m --cpus 1 --pids-limit 100 $IMAGE true"
  "runc --root $WORK/runc run --bundle $WORK/bundle bench-runc"
  "crun --root $WORK/crun run --bundle $WORK/bundle bench-crun"
  "crun --root $WORK/crun run --bundle $WORK/bundle-limits bench-crun-limits"
)
names=(mini mini-limits runc crun crun-limits)

if command -v podman >/dev/null; then
  mkdir -p "$WORK/podman"
  cat >"$WORK/podman/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "crun"
CONF
  cat >"$WORK/podman/registries.conf" <<CONF
[[registry]]
location = "127.0.0.1:5000"
insecure = true
CONF
  export CONTAINERS_CONF=$WORK/podman/containers.conf
  export CONTAINERS_REGISTRIES_CONF=$WORK/podman/registries.conf
  P="podman --root $WORK/podman/root --runroot /run/mb-pod --storage-driver overlay"
  # podman needs the same private-namespace trick as crun, even to pull.
  unshare --mount --propagation private sh -c "umount /sys/fs/cgroup/unified 2>/dev/null; $P pull -q $IMAGE" >/dev/null
  contenders+=("$P run --rm --network none $IMAGE true")
  names+=(podman)
fi

args=()
for i in "${!contenders[@]}"; do
  args+=(-n "${names[$i]}" "${contenders[$i]}")
done
unshare --mount --propagation private bash -c '
  umount /sys/fs/cgroup/unified 2>/dev/null || true
  exec hyperfine -N --warmup 5 --runs "$0" --export-markdown "$1" --export-json "$2" "${@:3}"
' "$RUNS" "$WORK/results.md" "$WORK/results.json" "${args[@]}"

# Leave nothing behind: podman's storage, runc's cgroup, the work dir.
if command -v podman >/dev/null; then
  unshare --mount --propagation private sh -c "umount /sys/fs/cgroup/unified 2>/dev/null; $P system reset -f" >/dev/null 2>&1 || true
  rm -rf /run/mb-pod
fi
for h in /sys/fs/cgroup/*/; do
  self=$(awk -F: -v c="$(basename "$h")" '$2 ~ c {print $3}' /proc/self/cgroup | head -1)
  for d in mini-bench mini-bench-limits; do
    [[ -n $self && -d $h$self/$d ]] && rmdir "$h$self/$d" 2>/dev/null || true
  done
done
cat "$WORK/results.md"
jq -r '.results[] | "\(.command)\tmean \(.mean * 10000 | round / 10) ms\tmedian \(.median * 10000 | round / 10) ms\tmin \(.min * 10000 | round / 10) ms"' "$WORK/results.json"
rm -rf "$WORK"
