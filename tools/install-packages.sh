#!/usr/bin/env bash
# Installs the Debian packages the local cluster and the image builds need, only those missing:
#   podman, buildah  build the images (tools/build-images.sh); debootstrap makes the local Python base
#   runc             the node's OCI runtime (containerd runs it; podman too, see tools/containers.conf)
#   containernetworking-plugins  the node's CNI bridge and host-local IPAM (/usr/lib/cni)
#   iproute2, util-linux         bridges (ip), nsenter; curl for examples/clients/curl.sh in the tests
#   nftables                     nft: kube-proxy (nftables mode) programs its rules with it
set -euo pipefail
declare -A wanted=(
  [podman]=podman [buildah]=buildah [debootstrap]=debootstrap [runc]=runc
  [/usr/lib/cni/bridge]=containernetworking-plugins [ip]=iproute2 [nsenter]=util-linux [curl]=curl
  [nft]=nftables
)
missing=()
for probe in "${!wanted[@]}"; do
  if [[ $probe == /* ]]; then [[ -e $probe ]] || missing+=("${wanted[$probe]}")
  else command -v "$probe" >/dev/null || [[ -x /usr/sbin/$probe ]] || missing+=("${wanted[$probe]}"); fi
done
if ((${#missing[@]} == 0)); then exit 0; fi
if ((EUID != 0)); then echo "install-packages: missing ${missing[*]}; run as root (apt-get install)" >&2; exit 1; fi
echo "install-packages: apt-get install ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
