#!/usr/bin/env bash
# Rootless starts and pulls, as the unprivileged user `minitest`
# (.ci/rootless-users: a subordinate id range), all in one run:
#   mini run --rm --network none IMAGE true           (rootless mini)
#   crun run of a bundle of the same rootfs, rootless (a user namespace
#     mapping the user alone, as `crun spec --rootless` writes it)
#   podman run --rm --network none IMAGE true        (rootless podman)
# and then `mini pull` beside `podman pull` of the same image, as that user,
# each into a fresh store per round.
# Needs root (to become the user and to make the private mount namespace
# crun and podman need on this hybrid-cgroup host, see HOST-NOTES),
# hyperfine, crun, podman, jq, and the fixture registry (fixtures/up.sh).
#
# Like for like as far as rootless allows: no cgroups for anyone (this host
# delegates none to users), the same namespaces (mini and podman keep one
# user namespace per user, crun makes one per run: that is how each works
# rootless), the bundle is mini's export of the image.
#
# usage: bench/rootless.sh [RUNS]   (RESULTS=DIR keeps hyperfine's JSON)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/common.sh
RUNS=${1:-60}
ROUNDS=${ROUNDS:-3}
PULLS=${PULLS:-5}
IMAGE=${IMAGE:-127.0.0.1:5000/test/busybox:oci}
U=minitest
id "$U" >/dev/null || { echo "bench: user $U missing: bash .ci/rootless-users" >&2; exit 1; }
uid=$(id -u "$U") gid=$(id -g "$U")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -q
WORK=$(mktemp -d /dev/shm/mini-bench-rootless.XXXXXX)
chmod 755 "$WORK"
NS=mini-bench-rl-$$
ip netns add "$NS" && ip -n "$NS" link set lo up
cleanup() {
  for f in "$WORK"/run/mini/pause.pid "$WORK"/run/libpod/tmp/pause.pid; do [[ -s $f ]] && kill -9 "$(cat "$f")" 2>/dev/null || true; done
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -9
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK" "/dev/shm/libpod_rootless_lock_$uid"
}
trap cleanup EXIT
cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/mini" "$WORK/mini"
mkdir -p "$WORK/home" "$WORK/run" "$WORK/crun"
chown "$uid:$gid" "$WORK/home" "$WORK/run" "$WORK/crun"
chmod 700 "$WORK/run"
# As the user, in a mount namespace without the cgroup2 mount crun
# refuses (made as root first): `as_user` in the bench's own network
# namespace, `as_user_here` in the host's (pulls from the registry on
# 127.0.0.1). podman's first command makes its user namespace holder in
# such a mount namespace, and every later podman joins it.
user_sh() { # NSENTER-PREFIX... -- COMMAND...
  local pre=()
  while [[ $1 != -- ]]; do pre+=("$1"); shift; done
  shift
  "${pre[@]}" unshare --mount --propagation private sh -c '
    umount /sys/fs/cgroup/unified 2>/dev/null || true
    exec setpriv --reuid '"$uid"' --regid '"$gid"' --init-groups env -i HOME='"$WORK/home"' \
      XDG_RUNTIME_DIR='"$WORK/run"' PATH=/usr/bin:/bin:/usr/sbin:/sbin "$@"' sh "$@"
}
as_user() { user_sh nsenter --net=/run/netns/"$NS" -- "$@"; }
as_user_here() { user_sh env -- "$@"; }
M="$WORK/mini"
podman_conf "$WORK/home/.config/containers"
chown -R "$uid:$gid" "$WORK/home/.config"
# The image for every contender (network: the registry is on the host's
# loopback, so these pulls run outside the bench namespace).
setpriv --reuid "$uid" --regid "$gid" --init-groups env -i HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/run" \
  PATH=/usr/bin:/bin "$M" pull -q "$IMAGE" >/dev/null
setpriv --reuid "$uid" --regid "$gid" --init-groups env -i HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/run" \
  PATH=/usr/bin:/bin "$M" create --network none --name src "$IMAGE" true >/dev/null
mkdir -p "$WORK/bundle/rootfs"
setpriv --reuid "$uid" --regid "$gid" --init-groups env -i HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/run" \
  PATH=/usr/bin:/bin "$M" export src | tar -x -C "$WORK/bundle/rootfs"
setpriv --reuid "$uid" --regid "$gid" --init-groups env -i HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/run" \
  PATH=/usr/bin:/bin "$M" rm src >/dev/null
(cd "$WORK/bundle" && crun spec --rootless)
jq --argjson uid "$uid" --argjson gid "$gid" '.process.args = ["true"] | .process.terminal = false
  | .linux.uidMappings = [{containerID: 0, hostID: $uid, size: 1}]
  | .linux.gidMappings = [{containerID: 0, hostID: $gid, size: 1}]' \
  "$WORK/bundle/config.json" >"$WORK/bundle/c.json" && mv "$WORK/bundle/c.json" "$WORK/bundle/config.json"
chown -R "$uid:$gid" "$WORK/bundle"
podman_user="podman --root $WORK/home/pod --runroot $WORK/run/pod --storage-driver overlay"
as_user_here $podman_user pull -q "$IMAGE" >/dev/null

hf() { # TAG CONTENDER-ARGS...
  local tag=$1
  shift
  for ((r = 1; r <= ROUNDS; r++)); do
    as_user hyperfine -N --warmup 5 --runs $((RUNS / ROUNDS)) --export-json "$WORK/run/round-$tag-$r.json" "$@" \
      >/dev/null 2>"$WORK/hf.err" || { cat "$WORK/hf.err" >&2; exit 1; }
  done
}
# Each contender once, showing its errors, before timing.
as_user $M run --rm --network none "$IMAGE" true
as_user crun --root "$WORK/crun" run --bundle "$WORK/bundle" bench-crun
as_user $podman_user run --rm --network none "$IMAGE" true
hf engines -n mini-rootless "$M run --rm --network none $IMAGE true" \
  -n crun-rootless "crun --root $WORK/crun run --bundle $WORK/bundle bench-crun"
hf podman -n podman-rootless "$podman_user run --rm --network none $IMAGE true"

# Pulls: a fresh store per round for each, rounds interleaved.
declare -A total rss
for ((i = 1; i <= PULLS; i++)); do
  as_user_here /usr/bin/time -f '%e %M' -o "$WORK/run/t" env XDG_DATA_HOME="$WORK/home/pull-$i" "$M" pull -q "$IMAGE" >/dev/null
  read -r t kb <"$WORK/run/t"; total[mini]=$(echo "${total[mini]:-0} + $t" | bc -l); rss[mini]=$kb
  as_user_here /usr/bin/time -f '%e %M' -o "$WORK/run/t" podman --root "$WORK/home/ppull-$i" --runroot "$WORK/run/ppull-$i" \
    --storage-driver overlay pull -q "$IMAGE" >/dev/null
  read -r t kb <"$WORK/run/t"; total[podman]=$(echo "${total[podman]:-0} + $t" | bc -l); rss[podman]=$kb
done

jq -rs '
  def r1: . * 10 | round / 10;
  [.[].results[]] | group_by(.command)
  | map({name: .[0].command, t: (map(.times) | add | map(. * 1000))})
  | map(.mean = (.t | add / length) | .median = (.t | sort | .[length / 2 | floor]) | .n = (.t | length))
  | (map({key: .name, value: .}) | from_entries) as $by
  | "| contender (rootless) | runs | mean | median |", "|---|---|---|---|",
    (sort_by(.mean)[] | "| `\(.name)` | \(.n) | \(.mean | r1) ms | \(.median | r1) ms |"),
    "",
    "mini / crun: \($by["mini-rootless"].mean / $by["crun-rootless"].mean * 100 | round / 100)× (target ≤ 0.8×); mini / podman: \($by["mini-rootless"].mean / $by["podman-rootless"].mean * 1000 | round / 1000)× (target ≤ 0.1×)"
' "$WORK"/run/round-*.json
printf '\n| rootless pull of %s | mean | peak RSS |\n|---|---|---|\n' "$IMAGE"
for k in mini podman; do
  printf '| %s | %.3f s | %d KiB |\n' "$k" "$(echo "${total[$k]} / $PULLS" | bc -l)" "${rss[$k]}"
done
printf 'mini / podman pull: %.2f×\n' "$(echo "${total[mini]} / ${total[podman]}" | bc -l)"
[[ -z ${RESULTS:-} ]] || { mkdir -p "$RESULTS" && cp "$WORK"/run/round-*.json "$RESULTS"/; }
