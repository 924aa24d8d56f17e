"""localplane.process.binaries: which binary is picked, and what a missing one says. Fake binaries, no build."""

from pathlib import Path

import pytest

from localplane.process import binaries

VERSIONS = {
    "etcd": "etcd Version: 3.6.99\nGit SHA: Not provided",
    "kube-apiserver": "Kubernetes v1.36.99",
    "kube-controller-manager": "Kubernetes v1.36.99",
    "kubectl": "Client Version: v1.36.99\nKustomize Version: v5",
    "kube-scheduler": "Kubernetes v1.36.99",
}
# The node's binaries come from the recipe's cache only (by path, not by version).
NODE_BINARIES = {"k8s": ["kubelet", "kube-proxy"], "containerd": ["containerd", "containerd-shim-runc-v2", "ctr"], "helm": ["helm"],
                 "coredns": ["coredns"]}


def _fake(directory: Path, name: str, says: str) -> Path:
    path = directory / name
    path.write_text(f"#!/bin/sh\ncat <<'END'\n{says}\nEND\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real binaries anywhere: an empty recipe cache, a PATH with only system tools."""
    monkeypatch.setenv("KUBE_ELECTOR_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    binaries._version.cache_clear()
    k8s_dir, _, containerd_dir, helm_dir, coredns_dir = binaries._cache_dirs()
    for directory, names in ((k8s_dir, NODE_BINARIES["k8s"]), (containerd_dir, NODE_BINARIES["containerd"]),
                             (helm_dir, NODE_BINARIES["helm"]), (coredns_dir, NODE_BINARIES["coredns"])):
        directory.mkdir(parents=True, exist_ok=True)
        for name in names:
            _fake(directory, name, "node binary")
    yield tmp_path
    binaries._version.cache_clear()


def test_kubebuilder_assets_with_matching_versions_are_used(isolated, monkeypatch):
    assets = isolated / "assets"
    assets.mkdir()
    paths = {name: _fake(assets, name, says) for name, says in VERSIONS.items()}
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    found = binaries.find()
    assert found.kube_apiserver == paths["kube-apiserver"]
    assert found.etcd == paths["etcd"]
    assert found.kubectl == paths["kubectl"]


def test_wrong_minor_version_is_ignored_and_reported(isolated, monkeypatch):
    assets = isolated / "assets"
    assets.mkdir()
    for name, says in VERSIONS.items():
        _fake(assets, name, says.replace("v1.36.", "v1.35.").replace("3.6.", "3.5."))
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    with pytest.raises(
        binaries.BinariesMissing, match=r"kube-apiserver v1\.36\.x.*etcd 3\.6\.x.*make binaries"
    ):
        binaries.find()


def test_a_missing_node_binary_is_named(isolated, monkeypatch):
    assets = isolated / "assets"
    assets.mkdir()
    for name, says in VERSIONS.items():
        _fake(assets, name, says)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    _, _, containerd_dir, _, _ = binaries._cache_dirs()
    (containerd_dir / "containerd-shim-runc-v2").unlink()
    with pytest.raises(binaries.BinariesMissing, match=r"containerd-shim-runc-v2.*make binaries"):
        binaries.find()
