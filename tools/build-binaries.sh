#!/usr/bin/env bash
# Builds the local cluster's Go binaries from the Go module proxy, pinned by the
# wrapper modules tools/*-bin/go.{mod,sum}:
#   control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#   node:          kubelet, kube-proxy, containerd, containerd-shim-runc-v2, ctr
#   chart:         helm (charts/kube-elector, tests/helm/)
#   cluster DNS:   coredns (the kube-dns Service of the local cluster)
# Output: .cache/bin/{k8s,etcd,containerd,helm}-<version>/ (ignored by git). A binary
# already built is never rebuilt. A cold build takes many minutes on 2 cores.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
K8S_VERSION=$(awk '$1=="k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$ROOT/tools/k8s-bin/go.mod")
ETCD_VERSION=$(awk '$1=="go.etcd.io/etcd/server/v3" && $2 ~ /^v/ {print $2; exit}' "$ROOT/tools/etcd-bin/go.mod")
CTRD_VERSION=$(awk '$1=="github.com/containerd/containerd/v2" && $2 ~ /^v/ {print $2; exit}' "$ROOT/tools/containerd-bin/go.mod")
CACHE=${KUBE_ELECTOR_CACHE:-$ROOT/.cache/bin}
K8S_OUT=$CACHE/k8s-$K8S_VERSION
ETCD_OUT=$CACHE/etcd-$ETCD_VERSION
CTRD_OUT=$CACHE/containerd-$CTRD_VERSION
HELM_VERSION=$(awk '$1=="helm.sh/helm/v4" && $2 ~ /^v/ {print $2; exit}' "$ROOT/tools/helm-bin/go.mod")
HELM_OUT=$CACHE/helm-$HELM_VERSION
COREDNS_VERSION=$(awk '$1=="github.com/coredns/coredns" && $2 ~ /^v/ {print $2; exit}' "$ROOT/tools/coredns-bin/go.mod")
COREDNS_OUT=$CACHE/coredns-$COREDNS_VERSION
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly

log() { printf '[build-binaries %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ ${1:-} == --print-dirs ]]; then echo "$K8S_OUT $ETCD_OUT $CTRD_OUT $HELM_OUT $COREDNS_OUT"; exit 0; fi

command -v go >/dev/null || { log "Go is not installed: install Go >= 1.26 (the go directive in tools/k8s-bin/go.mod)"; exit 1; }

# build MODULE_DIR OUT_DIR NAME PACKAGE LDFLAGS: one binary, into OUT_DIR, unless it is there.
build() {
  local dir=$1 out=$2 name=$3 pkg=$4 ldflags=$5 start=$SECONDS
  if [[ -x $out/$name ]]; then log "$name: cached at $out"; return; fi
  log "$name: building from $pkg (minutes when Go's build cache is cold)..."
  mkdir -p "$out"
  (cd "$ROOT/tools/$dir" && go build -trimpath -ldflags "$ldflags" -o "$out/$name.tmp" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
  log "$name: built in $((SECONDS-start)) s"
}

build etcd-bin "$ETCD_OUT" etcd go.etcd.io/etcd/server/v3 "-s -w"

MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
K8S_LDF="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$MINOR \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION \
 -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$MINOR"
for cmd in kube-apiserver kube-controller-manager kubectl kube-scheduler kubelet kube-proxy; do
  build k8s-bin "$K8S_OUT" "$cmd" "k8s.io/kubernetes/cmd/$cmd" "$K8S_LDF"
done

CTRD_LDF="-s -w -X github.com/containerd/containerd/v2/version.Version=$CTRD_VERSION"
for cmd in containerd containerd-shim-runc-v2 ctr; do
  build containerd-bin "$CTRD_OUT" "$cmd" "github.com/containerd/containerd/v2/cmd/$cmd" "$CTRD_LDF"
done
# helm: for the chart (charts/kube-elector) and its tests (tests/helm/).
build helm-bin "$HELM_OUT" helm helm.sh/helm/v4/cmd/helm \
  "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
# coredns: the cluster DNS (localplane/controlplane/coredns.py).
build coredns-bin "$COREDNS_OUT" coredns github.com/coredns/coredns \
  "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
log "binaries ready: $K8S_OUT $ETCD_OUT $CTRD_OUT $HELM_OUT $COREDNS_OUT"
