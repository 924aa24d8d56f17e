"""An earlier release of kube-elector on the local node, from this repository's own history: its images
(tools/build-release-images.sh) imported into the node's containerd, and an overlay of its manifests/
with them. For the upgrade test (tests/node/test_upgrade.py) and the side-by-side bench (bench/designs.py).
"""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

from localplane.node import images
from localplane.process import binaries
from localplane import cluster as cluster_

__all__ = ["RELEASE_0_1", "TAG_0_1", "overlay"]

RELEASE_0_1 = "48a1cd3"  # the last commit of 0.1: webhook-made RoleBindings, electors watching pods
TAG_0_1 = "v0.1"


def overlay(running: cluster_.Cluster, work: Path, *, rev: str = RELEASE_0_1, tag: str = TAG_0_1) -> Path:
    """Build (once) and import the release's images; write an overlay of its manifests/; its directory."""
    subprocess.run([str(binaries.ROOT / "tools" / "build-release-images.sh"), rev, tag], check=True,
                   capture_output=True, text=True, timeout=1200)
    assert running.node is not None, "a release runs on the node"
    work.mkdir(parents=True, exist_ok=True)
    images.load_into(running.node.ctr, work, (f"localhost/kube-elector-webhook:{tag}", f"localhost/kube-elector:{tag}"))
    archive = subprocess.run(["git", "-C", str(binaries.ROOT), "archive", rev, "manifests"],
                             check=True, capture_output=True, timeout=60).stdout
    (work / "manifests.tar").write_bytes(archive)
    with tarfile.open(work / "manifests.tar") as tar:
        tar.extractall(work, filter="data")
    (work / "overlay").mkdir(exist_ok=True)
    (work / "overlay" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../manifests]\nimages:\n"
        f"  - {{name: ghcr.io/kube-elector/webhook, newName: localhost/kube-elector-webhook, newTag: {tag}}}\n"
        f"  - {{name: ghcr.io/kube-elector/elector, newName: localhost/kube-elector, newTag: {tag}}}\n")
    return work / "overlay"
