#!/usr/bin/env bash
# make images: the local Python base, the wheels, then the elector, webhook and pause images (podman).
#   tools/build-images.sh [STEP...]   only these steps after base, target and wheels (default: pause elector
#                                     webhook smoke); elector_baseline builds the previous elector image
#                                     (venv on the whole base) as $ELECTOR_BASELINE_IMAGE, for the benchmark.
# Idempotent: a step whose result is there and up to date is skipped or cached. Nothing is pulled:
# the base is built from Debian packages (debootstrap), the wheels are downloaded on the host, and
# every `podman build` runs with --network=none. Image names: tools/images.env. Needs root.
# BASE_IMAGE=python:3.12-slim tools/build-images.sh builds on the public base instead (it is pulled).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/images.env
source tools/images.env
export CONTAINERS_CONF=$PWD/tools/containers.conf   # runc, no default ulimits; /etc is left alone
PY=${PY:-.venv/bin/python}
BASE=${BASE_IMAGE:-$BASE_IMAGE_LOCAL}   # BASE_IMAGE=python:3.12-slim where it can be pulled
ELECTOR_BASELINE_IMAGE=${ELECTOR_BASELINE_IMAGE:-localhost/kube-elector:venv-baseline}
cache=$PWD/.cache
mkdir -p "$cache"

log() { printf '[build-images %s] %s\n' "$(date +%T)" "$*"; }
step() { local t=$SECONDS; "$@"; log "$1: $((SECONDS - t)) s"; }
quietly() {  # run a command into .cache/build-images.log; show its tail if it fails
  "$@" >"$cache/build-images.log" 2>&1 || { tail -n 40 "$cache/build-images.log" >&2; log "failed: $*"; exit 1; }
}

base() {  # a stand-in for python:3.12-slim: Debian's python3 + venv, built only when missing
  if [[ $BASE != "$BASE_IMAGE_LOCAL" ]] || podman image exists "$BASE"; then return; fi
  local rootfs=$cache/base-rootfs mirror=${DEBIAN_MIRROR:-}
  [[ -n $mirror ]] || mirror=$(awk -v RS= '/Suites:[^\n]*bookworm( |\n|$)/ {
      match($0, /URIs:[ \t]*[^ \t\n]+/); s = substr($0, RSTART + 5, RLENGTH - 5); gsub(/[ \t]/, "", s); print s; exit
    }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [[ -n $mirror ]] || { log "no bookworm mirror in /etc/apt/sources.list.d/*.sources: set DEBIAN_MIRROR"; exit 1; }
  rm -rf "$rootfs"
  quietly debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" "$mirror"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE_IMAGE_LOCAL" >/dev/null
  rm -rf "$rootfs"
  podman run --rm --network=none "$BASE_IMAGE_LOCAL" python3 -m venv /tmp/venv   # venv + ensurepip work
}

target() {  # the base's Python X.Y, glibc minor version and machine, for the wheel tags
  read -r pyver glibc arch < <(podman run --rm --network=none "$BASE" python3 -c \
    'import platform, sys; print("%d.%d" % sys.version_info[:2], platform.libc_ver()[1], platform.machine())')
  [[ -n ${arch:-} ]] || { log "cannot run python3 in $BASE"; exit 1; }
  log "$BASE: Python $pyver, glibc $glibc, $arch"
}

wheels() {  # the pinned deps of the elector and webhook extras + the build backend, for the base
  wheels=.cache/wheels/py$pyver
  local reqs stamp plats=()
  reqs=$("$PY" -c 'import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))
extras = p["project"]["optional-dependencies"]
print(" ".join(sorted({*p["build-system"]["requires"], *p["project"]["dependencies"], *extras["elector"], *extras["webhook"]})))')
  stamp="$glibc $arch $reqs"
  [[ -f $wheels/.stamp && $(<"$wheels/.stamp") == "$stamp" ]] && return
  for ((m = 5; m <= ${glibc#*.}; m++)); do plats+=(--platform "manylinux_2_${m}_$arch"); done
  plats+=(--platform "manylinux2014_$arch" --platform "manylinux2010_$arch" --platform "manylinux1_$arch")
  rm -rf "$wheels"
  # shellcheck disable=SC2086  # $reqs: one requirement a word
  quietly "$PY" -m pip download --disable-pip-version-check --only-binary=:all: -d "$wheels" \
    --python-version "$pyver" --implementation cp "${plats[@]}" $reqs
  echo "$stamp" >"$wheels/.stamp"
}

build() {  # build IMAGE DOCKERFILE [ARG...]: offline, from the local base and the host's wheels
  local context=.
  if [[ -L .cache ]]; then  # a git worktree sharing the main tree's .cache: podman would not follow it
    context=$cache/build-context-$$
    rm -rf "$context" && mkdir -p "$context/.cache/wheels" "$context/tools"
    cp -r pyproject.toml README.md .dockerignore elector webhook controller certs "$context/"
    cp -r tools/elector-image "$context/tools/" && cp -rL "$wheels" "$context/.cache/wheels/"
  fi
  quietly podman build --network=none --build-arg BASE_IMAGE="$BASE" \
    --build-arg WHEELS="$wheels" -t "$1" -f "$2" "${@:3}" "$context"
  [[ $context == . ]] || rm -rf "$context"
}
elector() {  # FROM scratch: what the elector runs with, traced in the build (tools/elector-image/rootfs.py)
  build "$ELECTOR_IMAGE" elector/Dockerfile
}
elector_baseline() { build "$ELECTOR_BASELINE_IMAGE" elector/Dockerfile --target venv; }
webhook() { build "$WEBHOOK_IMAGE" webhook/Dockerfile; }

pause() {  # a static Go binary in a FROM scratch image
  command -v go >/dev/null || { log "pause: needs Go (go.dev/dl, or apt-get install golang)"; exit 1; }
  mkdir -p "$cache/pause"
  (cd tools/pause && CGO_ENABLED=0 GOTOOLCHAIN=local \
    go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$cache/pause/pause" .)
  quietly podman build --network=none -t "$PAUSE_IMAGE" -f tools/pause/Containerfile "$cache/pause"
}

smoke() {  # each Python image starts read-only, unprivileged, offline
  local img
  for img in "$ELECTOR_IMAGE" "$WEBHOOK_IMAGE"; do
    quietly podman run --rm --network=none --read-only --tmpfs /tmp --user 65532 --cap-drop=ALL "$img" --help
  done
}

steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(pause elector webhook smoke)
for name in "${steps[@]}"; do
  case $name in
    pause | elector | elector_baseline | webhook | smoke) ;;
    *) log "unknown step $name (pause, elector, elector_baseline, webhook, smoke)"; exit 1 ;;
  esac
done
step base
step target
step wheels
for name in "${steps[@]}"; do step "$name"; done
images=("$BASE")
[[ " ${steps[*]} " == *" pause "* ]] && images+=("$PAUSE_IMAGE")
[[ " ${steps[*]} " == *" elector "* ]] && images+=("$ELECTOR_IMAGE")
[[ " ${steps[*]} " == *" elector_baseline "* ]] && images+=("$ELECTOR_BASELINE_IMAGE")
[[ " ${steps[*]} " == *" webhook "* ]] && images+=("$WEBHOOK_IMAGE")
for img in "${images[@]}"; do
  podman images --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' "$img"
done | column -t -s $'\t' -N IMAGE,SIZE
