# Sourced by the bench scripts (from the repo root): a fresh
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

# One timed run of a contender: wall time and peak RSS (/usr/bin/time)
# added to the caller's `declare -A total rss` (rss keeps the maximum), one
# line printed; a failure shows the contender's stderr and ends the bench.
#   timed NAME COMMAND...      needs $WORK
timed() {
  local name=$1; shift
  local t0 t1 kb
  t0=$(date +%s.%N)
  /usr/bin/time -f %M -o "$WORK/rss" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; echo "bench: $name failed" >&2; exit 1; }
  t1=$(date +%s.%N)
  kb=$(tail -1 "$WORK/rss")
  total[$name]=$(echo "${total[$name]:-0} + $t1 - $t0" | bc -l)
  ((kb > ${rss[$name]:-0})) && rss[$name]=$kb
  printf '  %-12s %6.2fs  %6d KiB\n' "$name" "$(echo "$t1 - $t0" | bc -l)" "$kb"
}

# Fresh file systems for the benches (FS=tmpfs|ext4|xfs): on a real disk
# durability costs show up that tmpfs hides, and a fresh file system per
# round gives every contender the same disk, free of the root fs's deleted-
# inode history (HOST-NOTES). ext4 is journaled (mkfs.ext4's default,
# data=ordered), mounted with noinit_itable so no lazy inode-table zeroing
# runs in the background while a contender is timed; both disk kinds live
# on a sparse 6 GiB image under /var/tmp attached to a loop device that
# does direct I/O (4 KiB sectors), so what the file system writes reaches
# the machine's disk when it is written, as on a disk of its own (a
# buffered loop device would park it in the root fs's page cache and write
# it all at the next flush, hiding any overlap of writeback). Every
# mount and loop device made is recorded and undone by fs_cleanup, which
# the caller's EXIT trap must run (also on failure).
#   fresh_fs DIR        mount a new $FS at DIR (made if missing)
#   drop_fs DIR         unmount it, detach its loop device, delete its image
#   fs_cleanup          drop every one still made
FS=${FS:-tmpfs}
declare -A FS_LOOP FS_IMAGE
fresh_fs() {
  local dir=$1 img dev
  mkdir -p "$dir"
  case $FS in
    tmpfs) mount -t tmpfs -o size=8g,mode=0755 mini-bench "$dir" ;;
    ext4 | xfs)
      command -v "mkfs.$FS" >/dev/null || { echo "bench: FS=$FS needs mkfs.$FS (xfsprogs for xfs)" >&2; return 1; }
      img=$(mktemp /var/tmp/mini-bench-fs.XXXXXX)
      FS_IMAGE[$dir]=$img
      truncate -s 6G "$img"
      dev=$(losetup --find --show --direct-io=on --sector-size 4096 "$img")
      FS_LOOP[$dir]=$dev
      if [[ $FS == ext4 ]]; then
        mkfs.ext4 -q -F "$dev"
        mount -o noinit_itable "$dev" "$dir"
      else
        mkfs.xfs -q -f "$dev"
        mount "$dev" "$dir"
      fi
      ;;
    *) echo "bench: FS=$FS: choose tmpfs, ext4 or xfs" >&2; return 1 ;;
  esac
  FS_IMAGE[$dir]=${FS_IMAGE[$dir]:-none}
}
drop_fs() {
  local dir=$1
  [[ -n ${FS_IMAGE[$dir]:-} ]] || return 0
  mountpoint -q "$dir" && { umount "$dir" 2>/dev/null || umount -l "$dir"; }
  [[ -n ${FS_LOOP[$dir]:-} ]] && losetup -d "${FS_LOOP[$dir]}" 2>/dev/null
  [[ ${FS_IMAGE[$dir]} != none ]] && rm -f "${FS_IMAGE[$dir]}"
  unset "FS_IMAGE[$dir]" "FS_LOOP[$dir]"
  rmdir "$dir" 2>/dev/null || true
}
fs_cleanup() {
  local dir
  for dir in "${!FS_IMAGE[@]}"; do drop_fs "$dir"; done
}

# podman's config for this host (HOST-NOTES): cgroupfs, file events, crun,
# ulimits within the hard limits, and the fixture registry over plain
# http. Writes DIR/containers.conf and DIR/registries.conf.
#   podman_conf DIR
podman_conf() {
  mkdir -p "$1"
  cat >"$1/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "crun"
CONF
  cat >"$1/registries.conf" <<CONF
[[registry]]
location = "127.0.0.1:5000"
insecure = true
CONF
}
