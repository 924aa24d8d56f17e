"""The chart's tests: rendering (helm only), and a release on a real node (tests/helm/test_release.py).

`node_cluster` here is this package's own cluster with a node, started WITHOUT kube-elector (the
chart installs it). It is package-scoped, so it stops before tests/node/ starts its own: one node
per machine at a time. The name makes tests/conftest.py mark its users `node`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from localplane import cluster
from localplane.process import binaries
from tests.helm import charts
from tests.node import machine


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> charts.Helm:
    """The built helm. Before `make binaries` built it, the render-only tests skip (saying so) in
    `make test-unit` on a developer's machine; in CI (`CI` set) they fail instead."""
    try:
        binary = binaries.find().helm
    except binaries.BinariesMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(f"helm is not built: {exc}")
        pytest.skip(f"helm is not built yet: {exc}")
    return charts.Helm(binary, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="package")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.Cluster]:
    workdir = tmp_path_factory.mktemp("helm-cluster")
    with machine.left_as_found(workdir) as running_now, cluster.Cluster.start(workdir) as running:
        running_now()
        yield running


@pytest.fixture
def app_namespace(node_cluster: cluster.Cluster) -> Iterator[str]:
    """A fresh namespace for opted-in pods (its `default` ServiceAccount ready); deleted afterwards."""
    name = f"h-{uuid.uuid4().hex[:8]}"
    node_cluster.kubectl("create", "namespace", name)
    node_cluster.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=30s", timeout=40)
    yield name
    node_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
