"""Shared fixtures: one real control plane per test session, a fresh namespace per test.

Any test that uses `control_plane` (directly or through `namespace`/`api`) is
marked `controlplane`, so `pytest -m 'not controlplane'` never starts it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from localplane import cluster
from localplane.controlplane import plane
from localplane.process import binaries
from tests.node import machine

_PLANE_FIXTURE = "control_plane"
_NODE_FIXTURE = "node_cluster"  # tests/node/conftest.py: a cluster with a real node


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects, so the marker counts
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        if _PLANE_FIXTURE in names:
            item.add_marker(pytest.mark.controlplane)
        if _NODE_FIXTURE in names:
            item.add_marker(pytest.mark.node)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build missing binaries here, outside any test's timeout (a cold build takes many minutes)."""
    needs = {_PLANE_FIXTURE, _NODE_FIXTURE}
    if any(needs & set(getattr(item, "fixturenames", ())) for item in session.items):
        capture = session.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            binaries.ensure()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failed control-plane test, attach the tail of each component's log to the report."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    running = funcargs.get(_NODE_FIXTURE) or funcargs.get(_PLANE_FIXTURE)
    if report.failed and running is not None:
        report.sections.append(("cluster logs (tails)", running.dump_logs()))
    return report


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[plane.ControlPlane]:
    with plane.ControlPlane.start(tmp_path_factory.mktemp("controlplane"), bins=binaries.find()) as cluster:
        yield cluster


@pytest.fixture
def api(control_plane: plane.ControlPlane) -> Iterator[httpx.Client]:
    """An admin httpx client (system:masters); a new one per test, so a restarted apiserver is no surprise."""
    with control_plane.client() as client:
        yield client


@pytest.fixture
def namespace(api: httpx.Client) -> Iterator[str]:
    """A fresh namespace whose `default` ServiceAccount exists (Pods can be created); deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    created = api.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert created.status_code == 201, created.text
    # After the chaos and acceptance tests restart the apiserver and etcd many times, the KCM's
    # informers may sit in their watch backoff (up to 30 s, more than once) before the
    # serviceaccount-controller sees a new namespace. Past 20 s we make the same `default`
    # ServiceAccount it would: these tests are about the elector and the webhook, not that controller.
    deadline = time.monotonic() + 20
    path = f"/api/v1/namespaces/{name}/serviceaccounts"
    while api.get(f"{path}/default").status_code != 200:
        if time.monotonic() > deadline:
            made = api.post(path, json={"metadata": {"name": "default"}})
            assert made.status_code in (201, 409), made.text
            break
        time.sleep(0.1)
    yield name
    # The namespace-controller finishes the deletion in the background. Best effort: a chaos
    # test may leave the apiserver down, and the namespace dies with the plane anyway.
    with contextlib.suppress(httpx.HTTPError):
        api.delete(f"/api/v1/namespaces/{name}")


# The node fixtures: one local cluster with a real node for the session, kube-elector installed on it from
# manifests/ (localplane/overlays/kube-elector), a fresh namespace per test. Here, not in tests/node/, so
# that every package (tests/node, tests/security) shares the one session node.
@pytest.fixture(scope="session")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.Cluster]:
    """Stopped, it leaves the machine as it was (tests/node/machine.py; a second node comes and goes
    in between, tests/node/nodefaults.py): else the last test using it errors at its teardown."""
    workdir = tmp_path_factory.mktemp("node-cluster")
    with machine.left_as_found(workdir) as running_now, cluster.Cluster.start(workdir) as running:
        running.install_kube_elector()
        running_now()
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
