#!/usr/bin/env bash
# Compare OCI runtimes under containerd: `ctr run --rm IMAGE ID true` of
# the same image, through containerd's runc v2 shim, with runc, crun and
# mini-runc (the mini binary through a link named mini-runc) as its
# `--runc-binary`, all three driven by one containerd in one run.
# Needs root, containerd (with ctr and containerd-shim-runc-v2), runc,
# crun, python3 and the fixture registry on 127.0.0.1:5000
# (fixtures/up.sh).
#
# usage: [FS=tmpfs|ext4|xfs] [MINI=PATH] bench/ctr.sh [ROUNDS]
#   ROUNDS (default 20): rounds of one timed `ctr run --rm` per contender,
#   after WARMUP (default 2) untimed runs each; the table goes to stdout,
#   each run's time to stderr, RESULTS=DIR keeps every time there (JSON).
#   MINI: a mini binary to use; without it mini is built (cargo build
#   --release, CARGO_TARGET_DIR honoured) as bench/run.sh does.
#   Exits 1 when mini-runc's mean is over 0.8× crun's (issue 12's target).
#
# Like for like: every contender gets the same containerd, image,
# snapshotter (overlayfs), shim, spec (ctr's default: new pid, ipc, uts,
# mount and network namespaces, the latter with loopback only; no
# --net-host, no CNI), the same cgroup parent and the same command; only
# the binary the shim calls for create, start, state, kill and delete
# differs. What is timed is ctr's whole `run --rm`: container and snapshot
# made, shim started, task created and started, `true` waited for, task
# and container deleted. Rounds alternate the contenders, and each round
# starts with the next one in turn, so none always follows the same
# neighbour's teardown (containerd removes snapshots and the kernel frees
# namespaces after a run returns).
#
# Host quirks (HOST-NOTES): cgroups are a v1/v2 hybrid here, and crun
# refuses to run while /sys/fs/cgroup/unified is mounted. So the whole
# script re-runs itself inside `unshare --mount --propagation private`
# with the unified mount gone, and containerd, its shims, ctr and all
# three runtimes live there: every contender sees the same mounts (as in
# bench/run.sh), and the host's mount table is untouched. runc and mini
# have nothing in the unified tree on this host anyway (only hugetlb, no
# subtree_control). In that namespace /run/containerd, where the shim keeps
# its sockets (s/), the runtimes' state (runc/NS) and ctr its fifos, is a
# bind of a directory in the work dir, so nothing lands in the host's.
#
# The work dir (containerd's root with its snapshots, its state with the
# bundles, /run/containerd) is a fresh file system (FS, as bench/run.sh:
# tmpfs by default, or a fresh journaled ext4 / XFS on a loop device, see
# bench/common.sh), unmounted at the end. Containers' cgroups go beneath
# the script's own cgroup in every hierarchy: ctr gets the absolute
# `--cgroup OURS/minibench-PID/ID`, OURS being the deepest of our cgroup
# paths (see below), the same for every contender.
# Cleanup (trap): shims and containerd killed by pid, processes left in our
# cgroups killed by pid, the cgroup dirs removed, the file system unmounted.
set -euo pipefail
SELF=$(realpath "${BASH_SOURCE[0]}")
cd "$(dirname "$SELF")/.."

if [[ -z ${MINI_BENCH_CTR_NS:-} ]]; then
  [[ $(id -u) == 0 ]] || { echo "bench: bench/ctr.sh needs root" >&2; exit 1; }
  for t in containerd ctr containerd-shim-runc-v2 runc crun python3; do
    command -v "$t" >/dev/null || { echo "bench: $t is not installed" >&2; exit 1; }
  done
  if [[ -z ${MINI:-} ]]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
    cargo build --release -q
    MINI=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/mini
  fi
  MINI=$(realpath "$MINI")
  export MINI MINI_BENCH_CTR_NS=1
  exec unshare --mount --propagation private bash "$SELF" "$@"
fi

# From here on: in the private mount namespace.
ROUNDS=${1:-20}
WARMUP=${WARMUP:-2}
IMAGE=${IMAGE:-127.0.0.1:5000/test/busybox:oci}
source bench/common.sh
umount /sys/fs/cgroup/unified 2>/dev/null || true

# Containers' cgroups: one absolute path beneath our own cgroup in every
# hierarchy (the deepest of our paths; on this host the memory one, the
# others being ancestors of it, "/" here). crun resolves a relative
# cgroupsPath from the hierarchy's root, runc and mini-runc from their
# own cgroup, so a relative one would put crun's elsewhere; an absolute one
# is the same place for all three. Where our cgroup is shallower than that
# path the runtimes make the missing directories on the way (named after
# our cgroup, beneath it); MADE lists them, removed at the end.
own=$(cut -d: -f3 /proc/self/cgroup)
deep=$(echo "$own" | awk '{print length, $0}' | sort -n | tail -1 | cut -d' ' -f2)
for p in $own; do
  [[ $p == / || $deep == "$p" || $deep == "$p"/* ]] ||
    { echo "bench: no cgroup path is beneath all of ours: $own" >&2; exit 1; }
done
CG=${deep%/}/minibench-$$
CG_MOUNTS=$(awk '$0 ~ / - cgroup / {print $5}' /proc/self/mountinfo)
MADE=()
for m in $CG_MOUNTS; do
  d=$(dirname "$CG")
  while [[ $d != / && ! -d $m$d ]]; do MADE+=("$m$d"); d=$(dirname "$d"); done
done

# Short: containerd's socket paths must fit in sun_path.
WORK=$(mktemp -d /tmp/ctrb.XXXXXX)
NS=minibench-$$
SOCK=$WORK/sock
DAEMON= DRIVER=

# Our cgroup parent in every hierarchy, where it exists.
cg_dirs() {
  local m
  for m in $CG_MOUNTS; do [[ -d $m$CG ]] && echo "$m$CG"; done
  return 0
}

# Pids whose command line names our containerd's socket: its shims.
shim_pids() {
  local d
  for d in /proc/[0-9]*; do
    [[ ${d#/proc/} != "${DAEMON:-x}" ]] || continue
    tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -qF -- "$SOCK" && echo "${d#/proc/}"
  done
  return 0
}

cleanup() {
  local pid dir
  set +e
  [[ -z $DRIVER ]] || { kill "$DRIVER" 2>/dev/null; wait "$DRIVER" 2>/dev/null; }
  for pid in $(shim_pids); do kill -9 "$pid" 2>/dev/null; done
  if [[ -n $DAEMON ]]; then
    kill "$DAEMON" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$DAEMON" 2>/dev/null
    wait "$DAEMON" 2>/dev/null
  fi
  # Anything still in our containers' cgroups, then the cgroups, deepest first.
  for dir in $(cg_dirs); do
    for pid in $(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  done
  sleep 0.1
  for dir in $(cg_dirs); do
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  for dir in "${MADE[@]}"; do rmdir "$dir" 2>/dev/null; done
  # Mounts under the work dir (snapshots, rootfs, the /run/containerd
  # bind), deepest first, then its file system.
  if [[ -n ${WORK:-} ]]; then
    awk -v w="$WORK" '$5 == w || index($5, w "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
      while read -r m; do [[ $m == "$WORK" ]] || umount -l "$m" 2>/dev/null; done
    mountpoint -q /run/containerd && umount -l /run/containerd
    fs_cleanup
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fresh_fs "$WORK"
mkdir -p "$WORK/run" "$WORK/bin" /run/containerd
mount --bind "$WORK/run" /run/containerd
ln -s "$MINI" "$WORK/bin/mini-runc"
cat >"$WORK/config.toml" <<CONF
version = 2
root = "$WORK/root"
state = "$WORK/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
CONF
containerd --config "$WORK/config.toml" </dev/null >"$WORK/containerd.log" 2>&1 &
DAEMON=$!
CTR=(ctr --address "$SOCK" --namespace "$NS")
for _ in $(seq 200); do
  "${CTR[@]}" version >/dev/null 2>&1 && break
  kill -0 "$DAEMON" 2>/dev/null || { cat "$WORK/containerd.log" >&2; echo "bench: containerd died" >&2; exit 1; }
  sleep 0.1
done
"${CTR[@]}" images pull --plain-http "$IMAGE" >/dev/null ||
  { echo "bench: ctr images pull $IMAGE failed (fixtures/up.sh?)" >&2; exit 1; }

# Each contender once, untimed, also checking what the container gets:
# its own network namespace with only loopback, cgroups beneath ours.
for bin in "$(command -v runc)" "$(command -v crun)" "$WORK/bin/mini-runc"; do
  name=$(basename "$bin")
  out=$("${CTR[@]}" run --rm --runc-binary "$bin" --cgroup "$CG/check-$name" "$IMAGE" "check-$name" \
    sh -c 'echo net: $(ls /sys/class/net); grep -E ":memory:|:pids:" /proc/self/cgroup' </dev/null 2>&1) ||
    { echo "$out" >&2; echo "bench: ctr run with $name failed" >&2; exit 1; }
  [[ $(echo "$out" | head -1) == "net: lo" ]] ||
    { echo "$out" >&2; echo "bench: $name: the container sees more than loopback" >&2; exit 1; }
  echo "$out" | awk -F: -v w="$CG/check-$name" 'NR > 1 && $3 != w {bad = 1} END {exit bad}' ||
    { echo "$out" >&2; echo "bench: $name: cgroups not beneath ours" >&2; exit 1; }
done

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "containerd $(containerd --version | awk '{print $3}'), FS=$FS, $ROUNDS rounds (+$WARMUP warm-up) per contender, load average $load" >&2
# In the background, waited for: a signal to this script then ends the
# run at once (bash runs traps only between commands), python3 included.
/usr/bin/python3 - "$ROUNDS" "$WARMUP" "$IMAGE" "$CG" "${RESULTS:-}" "$(command -v runc)" "$(command -v crun)" \
  "$WORK/bin/mini-runc" -- "${CTR[@]}" <<'PY' &
import json, os, statistics, subprocess, sys, time

rounds, warmup, image, cg, results = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
sep = sys.argv.index("--")
bins = sys.argv[6:sep]
ctr = sys.argv[sep + 1:]
names = [os.path.basename(b) for b in bins]
times = {n: [] for n in names}

def run(name, binary, cid):
    argv = ctr + ["run", "--rm", "--runc-binary", binary, "--cgroup", f"{cg}/{cid}", image, cid, "true"]
    t0 = time.perf_counter_ns()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t1 = time.perf_counter_ns()
    if p.returncode != 0:
        sys.stderr.write(p.stderr.decode(errors="replace"))
        sys.exit(f"bench: ctr run with {name} failed ({p.returncode})")
    return (t1 - t0) / 1e6

for w in range(warmup):
    for n, b in zip(names, bins):
        run(n, b, f"warm-{n}-{w}")
for r in range(rounds):
    line = []
    for k in range(len(bins)):
        i = (r + k) % len(bins)
        ms = run(names[i], bins[i], f"{names[i]}-{r}")
        times[names[i]].append(ms)
        line.append(f"{names[i]} {ms:6.1f}")
    print(f"  round {r + 1:3}: " + "  ".join(line) + " ms", file=sys.stderr)

if results:
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "ctr.json"), "w") as f:
        json.dump(times, f)

def row(n):
    t = times[n]
    return {"n": len(t), "mean": statistics.fmean(t), "sd": statistics.pstdev(t),
            "median": statistics.median(t), "min": min(t)}
rows = {n: row(n) for n in names}
crun = rows["crun"]["mean"]
print("| `ctr run --rm … true`, runtime | runs | mean | median | min | mean / crun |")
print("|---|---|---|---|---|---|")
for n in sorted(names, key=lambda n: rows[n]["mean"]):
    s = rows[n]
    print(f"| {n} | {s['n']} | {s['mean']:.1f} ms (σ {s['sd']:.1f}) | {s['median']:.1f} ms | {s['min']:.1f} ms | {s['mean'] / crun:.2f}× |")
ratio = rows["mini-runc"]["mean"] / crun
print(f"\nmini-runc / crun, mean: {ratio:.3f}× (target ≤ 0.8×); median: {rows['mini-runc']['median'] / rows['crun']['median']:.3f}×")
sys.exit(1 if ratio > 0.8 else 0)
PY
DRIVER=$!
rc=0
wait "$DRIVER" || rc=$?
DRIVER=
exit "$rc"
