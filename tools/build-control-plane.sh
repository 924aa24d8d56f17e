#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and kubectl from the Go
# module proxy, pinned by tools/k8s-bin/go.{mod,sum} and tools/etcd-bin/go.{mod,sum}.
# Output: .cache/bin/k8s-<version>/ and .cache/bin/etcd-<version>/ (ignored by git).
# A cold build takes many minutes on 2 cores; a finished build is never redone.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
K8S_VERSION=$(awk '$1=="k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$ROOT/tools/k8s-bin/go.mod")
ETCD_VERSION=$(awk '$1=="go.etcd.io/etcd/server/v3" && $2 ~ /^v/ {print $2; exit}' "$ROOT/tools/etcd-bin/go.mod")
CACHE=${KUBE_ELECTOR_CACHE:-$ROOT/.cache/bin}
K8S_OUT=$CACHE/k8s-$K8S_VERSION
ETCD_OUT=$CACHE/etcd-$ETCD_VERSION
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly

log() { printf '[build-control-plane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ ${1:-} == --print-dirs ]]; then echo "$K8S_OUT $ETCD_OUT"; exit 0; fi

command -v go >/dev/null || { log "Go is not installed: install Go >= 1.26 (the go directive in tools/k8s-bin/go.mod)"; exit 1; }

if [[ -x $ETCD_OUT/etcd ]]; then
  log "etcd $ETCD_VERSION: cached at $ETCD_OUT"
else
  log "etcd $ETCD_VERSION: building (about 1-3 min cold)..."
  start=$SECONDS
  mkdir -p "$ETCD_OUT.tmp"
  (cd "$ROOT/tools/etcd-bin" && go build -trimpath -ldflags "-s -w" -o "$ETCD_OUT.tmp/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$ETCD_OUT"; mv "$ETCD_OUT.tmp" "$ETCD_OUT"
  log "etcd $ETCD_VERSION: built in $((SECONDS-start)) s"
fi

if [[ -x $K8S_OUT/kube-apiserver && -x $K8S_OUT/kube-controller-manager && -x $K8S_OUT/kubectl ]]; then
  log "kubernetes $K8S_VERSION: cached at $K8S_OUT"
else
  MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
  LDF="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$MINOR \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION \
 -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$MINOR"
  mkdir -p "$K8S_OUT.tmp"
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    if [[ -x $K8S_OUT.tmp/$cmd ]]; then continue; fi
    log "kubernetes $K8S_VERSION: building $cmd (a cold build takes 10-30 min on 2 cores; later ones reuse the Go cache)..."
    start=$SECONDS
    (cd "$ROOT/tools/k8s-bin" && go build -trimpath -ldflags "$LDF" -o "$K8S_OUT.tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd")
    log "kubernetes $K8S_VERSION: $cmd built in $((SECONDS-start)) s"
  done
  rm -rf "$K8S_OUT"; mv "$K8S_OUT.tmp" "$K8S_OUT"
fi
log "binaries ready: $K8S_OUT $ETCD_OUT"
