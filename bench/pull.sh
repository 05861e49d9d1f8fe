#!/usr/bin/env bash
# Pull benchmark: `mini pull` of the ~150 MB, 6-layer fixture image from the
# local registry into a fresh store, against `podman pull` of the same image
# (podman 4.3, overlay storage: fetch, verify, unpack every layer, as mini)
# and `skopeo copy` into an OCI layout (fetch and verify only, no unpack);
# with UMOCI=1 also `skopeo copy` + `umoci unpack` (slow: ~6 s on tmpfs).
#
# FS chooses the disk: tmpfs (default), ext4 (journaled) or xfs. Every
# contender gets a fresh file system of that kind for every round (on a
# loop device for ext4 and xfs, see bench/common.sh), so none inherits
# another's deleted inodes or dirty pages; rounds alternate the order of
# the contenders. Wall time and peak RSS (/usr/bin/time) per run; the
# unmount after each run (which writes back whatever the contender left
# dirty) is not timed, so a tool that syncs pays for it and one that does
# not does not: mini's pull is durable when it returns, podman's is not.
#
#   FS=tmpfs|ext4|xfs bench/pull.sh [ROUNDS]   needs root, fixtures/up.sh --big,
#                                               podman, skopeo (umoci with UMOCI=1),
#                                               mkfs.xfs (xfsprogs) for FS=xfs
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=${1:-3}
IMAGE=127.0.0.1:5000/test/big:latest
curl -sf "http://127.0.0.1:5000/v2/test/big/tags/list" >/dev/null || fixtures/up.sh --big >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -q
MINI=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/mini
source bench/common.sh
# Control files (time's output, configs) on tmpfs; the disks under it.
WORK=$(mktemp -d /dev/shm/mini-bench-pull.XXXXXX)
trap 'fs_cleanup; rm -rf "$WORK" /run/mb-pull-*' EXIT

cat >"$WORK/registries.conf" <<CONF
[[registry]]
location = "127.0.0.1:5000"
insecure = true
CONF
cat >"$WORK/containers.conf" <<CONF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
# podman ROOT ARGS..., as a script so /usr/bin/time can run it; podman
# needs a private mount namespace without the cgroup2 mount on this host
# (HOST-NOTES), even to pull. Its blob temp files (TMPDIR, else /var/tmp)
# go to the disk under test too.
cat >"$WORK/podman-in" <<'SCRIPT'
#!/bin/sh
root=$1; shift
export TMPDIR="$root.tmp"
mkdir -p "$TMPDIR"
exec unshare --mount --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh \
  podman --root "$root" --runroot "/run/mb-pull-$(basename "$(dirname "$root")")" --storage-driver overlay "$@"
SCRIPT
chmod +x "$WORK/podman-in"
export CONTAINERS_REGISTRIES_CONF=$WORK/registries.conf CONTAINERS_CONF=$WORK/containers.conf

names=("mini pull" "podman pull" "skopeo copy")
[[ -z ${UMOCI:-} ]] || names+=("skopeo+umoci")
declare -A total rss
pull() { # NAME DIR
  case $1 in
    "mini pull") timed "$1" "$MINI" --root "$2/store" pull -q "$IMAGE" ;;
    "podman pull") timed "$1" "$WORK/podman-in" "$2/podman" pull -q "$IMAGE" ;;
    "skopeo copy") timed "$1" skopeo copy -q --src-tls-verify=false "docker://$IMAGE" "oci:$2/oci:big" ;;
    "skopeo+umoci") timed "$1" sh -c "skopeo copy -q --src-tls-verify=false docker://$IMAGE oci:$2/oci:big && umoci unpack --image $2/oci:big $2/bundle" ;;
  esac
}
echo "FS=$FS, $ROUNDS rounds"
for ((i = 0; i < ROUNDS; i++)); do
  echo "round $((i + 1))"
  for ((k = 0; k < ${#names[@]}; k++)); do
    name=${names[$(((i + k) % ${#names[@]}))]}
    dir=$WORK/disk-$i-$k
    fresh_fs "$dir"
    pull "$name" "$dir"
    drop_fs "$dir"
  done
done
echo
echo "mean over $ROUNDS rounds on $FS, peak RSS:"
for name in "${names[@]}"; do
  printf '  %-14s %6.2fs  %6d KiB\n' "$name" "$(echo "${total[$name]} / $ROUNDS" | bc -l)" "${rss[$name]}"
done
printf '  mini / podman  %6.2fx\n' "$(echo "${total["mini pull"]} / ${total["podman pull"]}" | bc -l)"
