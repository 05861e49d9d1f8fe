#!/usr/bin/env bash
# Compare starting a container and running `true` in it:
#   mini run --rm --network none IMAGE true, and with --memory 64m --cpus 1
#     --pids-limit 100
#   runc run / crun run of a ready bundle of the same rootfs (crun also with
#     the same limits)
#   mini run --rm --network bridge IMAGE true, and the same with -p 18080:80
#   podman run --rm --network none IMAGE true and podman run --rm IMAGE true
#     (its default bridge network, netavark) (if podman is installed)
# Needs root, hyperfine, runc, crun, jq and the fixture registry on
# 127.0.0.1:5000 (fixtures/up.sh).
#
# Like for like: the bundle asks runc and crun for what mini does for every
# container, not just `runc spec`'s defaults: the same namespaces (uts, pid,
# mount, network, ipc, cgroup), Docker's 14 capabilities, the same seccomp
# profile (Docker's default allow-list, which mini's default resolves to for
# those capabilities: src/container/seccomp.rs), /etc/hostname, /etc/hosts and /etc/resolv.conf bound in,
# and runc spec's masked and read-only paths, which are Docker's and mini's.
# What stays different is inherent: mini assembles an overlay root per
# container (the bundle is a plain directory) and records the container in
# its store.
#
# The machine drifts (page cache, ext4's free-inode scan, other load), so
# hyperfine runs ROUNDS rounds of RUNS/ROUNDS runs per contender, each
# round going through every contender, and the statistics are over all
# rounds together. podman is measured after the others, in its own rounds:
# each `podman run --rm` leaves a `podman container cleanup` process working
# in the background for ~100 ms after it returns, which would load the
# machine while the next contender runs.
#
# Host quirks handled here (see HOST-NOTES): cgroups are a v1/v2 hybrid, so
# crun (and podman, which uses it) only run inside a private mount namespace
# where /sys/fs/cgroup/unified is unmounted; the whole comparison runs there
# so every contender sees the same mounts. Every contender also runs in a
# network namespace the script makes (nsenter --net, which keeps the mount
# namespace and its cgroupfs as they are; `ip netns exec` would remount
# /sys): mini0, podman0, their veths and NAT rules stay there, and go with
# it. podman gets a namespace of its own, its default subnet being mini's. runc gets a relative cgroupsPath
# (its cgroups then go beneath ours). podman gets a config within this
# host's rlimits and a short runroot.
#
# usage: [FS=tmpfs|ext4|xfs] [ROOTLESS=1] bench/run.sh [RUNS]   (a table on stdout;
#        RESULTS=DIR keeps hyperfine's JSON of every round there; FS=xfs
#        needs mkfs.xfs from xfsprogs)
#
# FS chooses the disk under the store, the bundles and the state dirs:
# tmpfs (default), a fresh journaled ext4 or a fresh XFS on a loop device
# (bench/common.sh). Every round gets a fresh file system of that kind,
# made ready (image pulled, bundles exported) before any contender is
# timed on it, so all contenders of a round share one disk and none
# inherits an earlier round's deleted inodes (on ext4 a run that creates
# and frees inodes slows down as they pile up: see HOST-NOTES).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${1:-100}
ROUNDS=${ROUNDS:-5}
IMAGE=${IMAGE:-127.0.0.1:5000/test/busybox:oci}
source bench/common.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -q
MINI=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/mini
# Results and hyperfine's stderr on tmpfs; each round's disk under it.
CTRL=$(mktemp -d /dev/shm/mini-bench-run.XXXXXX)
NETNS=(mini-bench-$$ mini-bench-pod-$$)
for ns in "${NETNS[@]}"; do ip netns add "$ns" && ip -n "$ns" link set lo up; done
cleanup() {
  for ns in "${NETNS[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9
    ip netns del "$ns" 2>/dev/null || true
  done
  fs_cleanup
  rm -rf "$CTRL" /run/mb-pod-*
}
trap cleanup EXIT

# One round's disk, ready: WORK with a store holding the image, the
# bundles, the /etc files, and podman's storage with the image.
prepare() {
  export MINI_ROOT=$WORK/store
  $MINI pull -q "$IMAGE" >/dev/null
  # A bundle of exactly the image's rootfs (exported by mini).
  $MINI create --name bench-src "$IMAGE" true >/dev/null
  mkdir -p "$WORK/bundle/rootfs" "$WORK/etc"
  $MINI export bench-src | tar -x -C "$WORK/bundle/rootfs"
  $MINI rm bench-src >/dev/null
  echo bench >"$WORK/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\tbench\n' >"$WORK/etc/hosts"
  cp /etc/resolv.conf "$WORK/etc/resolv.conf"
  (cd "$WORK/bundle" && runc spec)
  # Docker's default seccomp profile (an allow-list), as mini loads it for
  # Docker's default capabilities.
  jq --arg etc "$WORK/etc" --slurpfile seccomp src/runtime/seccomp/testdata/docker-default-seccomp.json '
    def caps: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
               "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
               "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"];
    def bind($f): {destination: ("/etc/" + $f), type: "bind", source: ($etc + "/" + $f), options: ["rbind", "rprivate"]};
    .process.args = ["true"] | .process.terminal = false | .hostname = "bench"
    | .process.capabilities = {bounding: caps, effective: caps, permitted: caps}
    | .mounts += [bind("hostname"), bind("hosts"), bind("resolv.conf")]
    | .linux.cgroupsPath = "mini-bench"
    | .linux.namespaces += [{"type": "cgroup"}]
    | .linux.seccomp = $seccomp[0]' \
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

  later=()
  contenders=(
    "$MINI run --rm --network none $IMAGE true"
    "$MINI run --rm --network none --memory 64m --cpus 1 --pids-limit 100 $IMAGE true"
    "$MINI run --rm --network bridge $IMAGE true"
    "$MINI run --rm --network bridge -p 18080:80 $IMAGE true"
    "runc --root $WORK/runc run --bundle $WORK/bundle bench-runc"
    "crun --root $WORK/crun run --bundle $WORK/bundle bench-crun"
    "crun --root $WORK/crun run --bundle $WORK/bundle-limits bench-crun-limits"
  )
  names=(mini mini-limits mini-bridge mini-bridge-p runc crun crun-limits)

  if command -v podman >/dev/null; then
    podman_conf "$WORK/podman"
    export CONTAINERS_CONF=$WORK/podman/containers.conf
    export CONTAINERS_REGISTRIES_CONF=$WORK/podman/registries.conf
    P="podman --root $WORK/podman/root --runroot /run/mb-pod-$round --storage-driver overlay"
    # podman needs the same private-namespace trick as crun, even to pull.
    unshare --mount --propagation private sh -c "umount /sys/fs/cgroup/unified 2>/dev/null; $P pull -q $IMAGE" >/dev/null
    later=(-n podman "$P run --rm --network none $IMAGE true" -n podman-bridge "$P run --rm $IMAGE true")
  fi

}

measure() { # NETNS ROUND TAG CONTENDER-ARGS...: one round of RUNS/ROUNDS runs each
  local ns=$1
  shift
  nsenter --net=/run/netns/"$ns" unshare --mount --propagation private bash -c '
    umount /sys/fs/cgroup/unified 2>/dev/null || true
    runs=$(($0 / $1)) ctrl=$2 round=$3 tag=$4
    shift 4
    hyperfine -N --warmup 5 --runs "$runs" --export-json "$ctrl/round-$tag-$round.json" "$@" \
      >/dev/null 2>"$ctrl/hyperfine.err" || { cat "$ctrl/hyperfine.err" >&2; exit 1; }
  ' "$RUNS" "$ROUNDS" "$CTRL" "$@"
}
echo "FS=$FS, $ROUNDS rounds of $((RUNS / ROUNDS)) runs per contender" >&2
for ((round = 1; round <= ROUNDS; round++)); do
  WORK=$CTRL/disk-$round
  fresh_fs "$WORK"
  prepare
  args=()
  for i in "${!contenders[@]}"; do
    args+=(-n "${names[$i]}" "${contenders[$i]}")
  done
  measure "${NETNS[0]}" "$round" engines "${args[@]}"
  [[ ${#later[@]} -eq 0 ]] || measure "${NETNS[1]}" "$round" podman "${later[@]}"
  if command -v podman >/dev/null; then
    nsenter --net=/run/netns/"${NETNS[1]}" unshare --mount --propagation private sh -c "umount /sys/fs/cgroup/unified 2>/dev/null; $P system reset -f" >/dev/null 2>&1 || true
    rm -rf "/run/mb-pod-$round"
  fi
  drop_fs "$WORK"
done

# Leave nothing behind: runc's and crun's cgroups (the disks go in cleanup).
for h in /sys/fs/cgroup/*/; do
  self=$(awk -F: -v c="$(basename "$h")" '$2 ~ c {print $3}' /proc/self/cgroup | head -1)
  for d in mini-bench mini-bench-limits; do
    [[ -n $self && -d $h$self/$d ]] && rmdir "$h$self/$d" 2>/dev/null || true
  done
done
# One table over all rounds: mean (σ), median and min per contender, and
# each one's ratio to crun's mean.
jq -rs '
  def r1: . * 10 | round / 10;
  def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  [.[].results[]] | group_by(.command)
  | map({name: .[0].command, t: (map(.times) | add | map(. * 1000))})
  | map(.mean = (.t | add / length) | .sd = ((.t | map(. * .) | add / length) - .mean * .mean | sqrt)
        | .median = (.t | median) | .min = (.t | min) | .n = (.t | length))
  | (map(select(.name == "crun")) | .[0].mean) as $crun
  | (map({key: .name, value: .}) | from_entries) as $by
  | "| contender | runs | mean | median | min | mean / crun |", "|---|---|---|---|---|---|",
    (sort_by(.mean)[] | "| `\(.name)` | \(.n) | \(.mean | r1) ms (σ \(.sd | r1)) | \(.median | r1) ms | \(.min | r1) ms | \(.mean / $crun * 100 | round / 100)× |"),
    "",
    "bridge over none, median: \(($by["mini-bridge"].median - $by["mini"].median) | r1) ms (target ≤ 2 ms); with -p: \(($by["mini-bridge-p"].median - $by["mini"].median) | r1) ms",
    (if $by["podman-bridge"] then "mini bridge / podman bridge, mean: \($by["mini-bridge"].mean / $by["podman-bridge"].mean * 1000 | round / 1000)× (target ≤ 0.1×)" else empty end)
' "$CTRL"/round-*.json
[[ -z ${RESULTS:-} ]] || { mkdir -p "$RESULTS" && cp "$CTRL"/round-*.json "$RESULTS"/; }
# Rootless contenders (mini, crun and podman as an ordinary user, and their
# pulls) need a user and per-user set-up of their own: bench/rootless.sh,
# run here with ROOTLESS=1 (same RUNS) so one command gives both tables.
if [[ ${ROOTLESS:-0} == 1 ]]; then
  echo
  bash bench/rootless.sh "$RUNS"
fi
