#!/usr/bin/env bash
# tools/build-release-images.sh REV TAG: the elector and webhook images of an earlier release, from this
# repository's own history (git archive REV), tagged localhost/kube-elector:TAG and
# localhost/kube-elector-webhook:TAG. For the upgrade test (tests/node/test_upgrade.py). Offline like
# `make images`: the same base image and the wheels already in .cache/wheels. Idempotent: an image that
# exists is kept. Needs root (podman).
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: $0 REV TAG} tag=${2:?usage: $0 REV TAG}
export CONTAINERS_CONF=$PWD/tools/containers.conf
if podman image exists "localhost/kube-elector:$tag" && podman image exists "localhost/kube-elector-webhook:$tag"; then
  exit 0
fi
git cat-file -e "$rev^{commit}" 2>/dev/null || { echo "$0: commit $rev is not in this clone (a shallow clone?)" >&2; exit 1; }
tree=$PWD/.cache/release-$tag
rm -rf "$tree" && mkdir -p "$tree/.cache"
git archive "$rev" | tar -x -C "$tree"
cp -al .cache/wheels "$tree/.cache/wheels"
sed -i -e "s#^WEBHOOK_IMAGE=.*#WEBHOOK_IMAGE=localhost/kube-elector-webhook:$tag#" \
       -e "s#^ELECTOR_IMAGE=.*#ELECTOR_IMAGE=localhost/kube-elector:$tag#" "$tree/tools/images.env"
(cd "$tree" && PY="$OLDPWD/.venv/bin/python" tools/build-images.sh elector webhook)
rm -rf "$tree"
