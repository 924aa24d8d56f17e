"""The node tests: one local cluster with a real node for the session, kube-elector installed on it
from manifests/ (localplane/overlays/kube-elector), and a fresh namespace per test.

Tests that use `node_cluster` are marked `node` (tests/conftest.py); run them alone with
`make test-node`. They need the images (`make images`) and fail, not skip, without them.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from localplane import cluster

REPO = Path(__file__).resolve().parents[2]
APP = cluster.OVERLAYS / "leader-app"


@pytest.fixture(scope="session")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.Cluster]:
    with cluster.Cluster.start(tmp_path_factory.mktemp("node-cluster")) as running:
        running.install_kube_elector()
        yield running


@pytest.fixture
def node_api(node_cluster: cluster.Cluster) -> Iterator[httpx.Client]:
    with node_cluster.plane.client() as client:
        yield client


@pytest.fixture
def node_namespace(node_api: httpx.Client) -> Iterator[str]:
    """A fresh namespace (its `default` ServiceAccount ready); deleted afterwards, with its pods."""
    name = f"n-{uuid.uuid4().hex[:8]}"
    yield from _namespace(node_api, name, {})


@pytest.fixture
def restricted_namespace(node_api: httpx.Client) -> Iterator[str]:
    """A fresh namespace where Pod Security Admission enforces the `restricted` profile."""
    name = f"r-{uuid.uuid4().hex[:8]}"
    yield from _namespace(node_api, name, {"pod-security.kubernetes.io/enforce": "restricted"})


def _namespace(api: httpx.Client, name: str, labels: dict[str, str]) -> Iterator[str]:
    created = api.post("/api/v1/namespaces", json={"metadata": {"name": name, "labels": labels}})
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + 30
    while api.get(f"/api/v1/namespaces/{name}/serviceaccounts/default").status_code != 200:
        assert time.monotonic() < deadline, f"no default ServiceAccount in {name}"
        time.sleep(0.1)
    yield name
    with contextlib.suppress(httpx.HTTPError):
        api.delete(f"/api/v1/namespaces/{name}")
