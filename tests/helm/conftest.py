"""The chart's tests: rendering (helm only), and a release on a real node (tests/helm/test_release.py).

`node_cluster` here is this package's own cluster with a node, started WITHOUT kube-elector (the
chart installs it). It is package-scoped, so it stops before tests/node/ starts its own: one node
per machine at a time. The name makes tests/conftest.py mark its users `node`.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from localplane import binaries, cluster
from tests.helm import charts


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> charts.Helm:
    """The built helm; the render-only tests skip (saying so) before `make binaries` built it."""
    try:
        binary = binaries.find().helm
    except binaries.BinariesMissing as exc:
        pytest.skip(f"helm is not built yet: {exc}")
    return charts.Helm(binary, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="package")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.Cluster]:
    with cluster.Cluster.start(tmp_path_factory.mktemp("helm-cluster")) as running:
        yield running


@pytest.fixture
def node_api(node_cluster: cluster.Cluster) -> Iterator[httpx.Client]:
    with node_cluster.plane.client() as client:
        yield client


@pytest.fixture
def app_namespace(node_api: httpx.Client) -> Iterator[str]:
    """A fresh namespace for opted-in pods (its `default` ServiceAccount ready); deleted afterwards."""
    name = f"h-{uuid.uuid4().hex[:8]}"
    created = node_api.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + 30
    while node_api.get(f"/api/v1/namespaces/{name}/serviceaccounts/default").status_code != 200:
        assert time.monotonic() < deadline, f"no default ServiceAccount in {name}"
        time.sleep(0.1)
    yield name
    with contextlib.suppress(httpx.HTTPError):
        node_api.delete(f"/api/v1/namespaces/{name}")
