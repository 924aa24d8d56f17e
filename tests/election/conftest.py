"""Fixtures for elector processes against the real control plane, with the shipped RBAC only."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from tests.election.electors import Elector

ROOT = Path(__file__).resolve().parents[2]
RBAC = ROOT / "manifests" / "rbac-election.yaml"
SERVICE_ACCOUNT = "app"


@pytest.fixture(scope="session")
def election_rbac(control_plane: Any) -> list[dict[str, Any]]:
    """The ClusterRoles exactly as shipped in manifests/ (applied once per session)."""
    control_plane.kubectl("apply", "-f", str(RBAC))
    return [doc for doc in yaml.safe_load_all(RBAC.read_text()) if doc]


@pytest.fixture
def sa_kubeconfig(control_plane: Any, api: Any, namespace: str, election_rbac: Any, tmp_path: Path
                  ) -> Callable[..., Path]:
    """A kubeconfig with a real token of ServiceAccount `app`, bound (RoleBinding) to the election role
    (and, with label=True, to the leader-label role; with rollout=True, to the rollout role): what the
    webhook's injected container gets."""

    def make(*, label: bool = False, rollout: bool = False) -> Path:
        created = api.post(f"/api/v1/namespaces/{namespace}/serviceaccounts",
                           json={"metadata": {"name": SERVICE_ACCOUNT}})
        assert created.status_code in (201, 409), created.text
        roles = (["kube-elector-election"] + (["kube-elector-leader-label"] if label else [])
                 + (["kube-elector-rollout"] if rollout else []))
        for role in roles:
            binding = {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": role, "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
            }
            made = api.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", json=binding)
            assert made.status_code in (201, 409), made.text
        token = control_plane.token(namespace, SERVICE_ACCOUNT, seconds=3600)
        return control_plane.write_kubeconfig(tmp_path / f"sa-{uuid.uuid4().hex[:6]}.kubeconfig", token=token)

    return make


@pytest.fixture
def electors(namespace: str, sa_kubeconfig: Callable[..., Path], tmp_path: Path
             ) -> Iterator[Callable[..., Elector]]:
    """Factory: `electors("pod-a", election="e1")` starts one process; all are killed at the end."""
    started: list[Elector] = []
    kubeconfig = sa_kubeconfig()

    def start(pod: str, *, election: str = "app", extra: list[str] = (), **kw: Any) -> Elector:
        proc = Elector(pod=pod, namespace=namespace, election=election, kubeconfig=kw.pop("kubeconfig", kubeconfig),
                       log_dir=tmp_path, extra=list(extra), **kw).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
