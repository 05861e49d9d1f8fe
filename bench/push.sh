#!/usr/bin/env bash
# Push benchmark: `mini push` of the ~150 MB, 6-layer fixture image from a
# store to the local registry, against `skopeo copy` of the same image from
# an OCI layout (no unpacking on either side: read blobs, upload, put the
# manifest). Every round pushes to fresh repositories of the basic-auth
# registry (:5001), which holds no link to these blobs for them, so both
# upload every byte; skopeo gets a private, empty blob-info cache each time
# (it would otherwise mount from where it remembers pushing before). Peak
# RSS from /usr/bin/time.
#
#   bench/push.sh [ROUNDS]         needs root, fixtures/up.sh --big, skopeo
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=${1:-3}
IMAGE=127.0.0.1:5000/test/big:latest
DEST=127.0.0.1:5001/bench
WORK=${BENCH_DIR:-/dev/shm}/mini-bench-push-$$
curl -sf "http://127.0.0.1:5000/v2/test/big/tags/list" >/dev/null || fixtures/up.sh --big >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -q
MINI=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/mini
mkdir -p "$WORK/docker" /var/lib/containers/cache
trap 'rm -rf "$WORK"' EXIT
export MINI_ROOT=$WORK/store DOCKER_CONFIG=$WORK/docker
printf '{"auths":{"127.0.0.1:5001":{"auth":"%s"}}}' "$(printf mini:minipass | base64)" >"$DOCKER_CONFIG/config.json"
$MINI pull -q "$IMAGE" >/dev/null
skopeo copy -q --src-tls-verify=false "docker://$IMAGE" "oci:$WORK/oci:big"

source bench/common.sh
declare -A total rss
for i in $(seq 1 "$ROUNDS"); do
  echo "round $i"
  tag=$DEST/mini-$$-$i:latest
  $MINI tag "$IMAGE" "$tag"
  timed "mini push" "$MINI" push -q "$tag"
  $MINI rmi "$tag" >/dev/null
  timed "skopeo copy" unshare -m --propagation private sh -c \
    'mount -t tmpfs -o size=64m bench-skopeo-cache /var/lib/containers/cache && exec skopeo "$@"' sh \
    copy -q --dest-tls-verify=false --dest-creds mini:minipass "oci:$WORK/oci:big" "docker://$DEST/skopeo-$$-$i:latest"
done
echo
echo "| contender | mean of $ROUNDS | peak RSS |"
echo "|---|---|---|"
for name in "mini push" "skopeo copy"; do
  printf '| %s | %.2f s | %d MiB |\n' "$name" "$(echo "${total[$name]} / $ROUNDS" | bc -l)" "$((rss[$name] / 1024))"
done
echo "mini / skopeo: $(echo "${total["mini push"]} / ${total["skopeo copy"]}" | bc -l | cut -c1-4)x (target <= 0.5x)"
