"""Fixtures for elector processes against the real control plane, with least privilege only.

The electors run with a real token of ServiceAccount `app` in the test's namespace, which has no rights
of its own. Its rights are what the kube-elector controller makes per election (docs/security.md): Role
and RoleBinding `kube-elector-lease-<election>` (get, update, watch of the one Lease `<election>`) and the
Lease itself. Two ways to get them:

- the `controller` fixture runs the controller (localplane/kube_elector/controller.py: a process with the
  controller ServiceAccount's real token, the shipped ClusterRole and the admission policies); a test
  then creates the election's candidate Pods (`pods`, bare objects running as `app`) and the controller
  makes the rights. No kubelet runs: pass each Pod's uid as POD_UID (`electors` does so by itself for
  the pods made by `pods`).
- without the `controller` fixture, `electors` makes the same objects (controller/rbac.py's bodies) with
  the admin client before an election's first elector starts: what the controller makes, for tests that
  are not about the controller.
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

import pytest

from localplane.kube_elector import controller as controller_process
from localplane.kube_elector import election_objects as operations
from localplane.kube_elector.electors import Elector

SERVICE_ACCOUNT = operations.SERVICE_ACCOUNT


class Controller:
    """The kube-elector controller of one test: one replica at a time; `stop()` and `start()` again."""

    def __init__(self, plane: Any, workdir: Path) -> None:
        self.plane = plane
        self.workdir = workdir
        self.process: Optional[controller_process.ControllerProcess] = None
        self.runs: list[controller_process.ControllerProcess] = []

    def start(self, identity: Optional[str] = None) -> float:
        """Start a replica (`ctl-<n>`, its own log) and wait until it is ready and leads; the seconds that took."""
        assert self.process is None or not self.process.running(), "already running"
        identity = identity or f"ctl-{len(self.runs)}"
        self.process = controller_process.start_controller(self.plane, self.workdir, identity=identity, wait=False)
        self.runs.append(self.process)
        return self.process.wait_ready()

    def stop(self) -> None:
        if self.process is not None:
            assert self.process.stop() == 0, self.process.log_tail()

    def logs(self) -> str:
        return "".join(run.logs() for run in self.runs)


@pytest.fixture
def controller(control_plane: Any, tmp_path: Path) -> Iterator[Controller]:
    """The controller, running with exactly the shipped rights; stopped after the test."""
    ctl = Controller(control_plane, tmp_path / "controller")
    ctl.start()
    yield ctl
    for run in ctl.runs:
        run.stop()


@pytest.fixture
def sa_kubeconfig(control_plane: Any, api: Any, namespace: str, tmp_path: Path) -> Callable[..., Path]:
    """A kubeconfig with a real token of ServiceAccount `app` (created if missing), which holds no rights
    but those made for its elections: by the controller once the election's pods exist, or, for the
    elections named in `grant`, made here at once as the controller makes them (operations.grant)."""

    def make(*, grant: Iterable[str] = ()) -> Path:
        operations.ensure_service_account(api, namespace, SERVICE_ACCOUNT)
        for election in grant:
            operations.grant(api, namespace, election)
        token = control_plane.token(namespace, SERVICE_ACCOUNT, seconds=3600)
        return control_plane.write_kubeconfig(tmp_path / f"sa-{uuid.uuid4().hex[:6]}.kubeconfig", token=token)

    return make


@pytest.fixture
def pod_uids() -> dict[str, str]:
    """{pod name: uid} of the candidate pods this test made (`pods`): the POD_UID of their electors."""
    return {}


@pytest.fixture
def pods(api: Any, namespace: str, pod_uids: dict[str, str]) -> Iterator[Callable[..., dict[str, str]]]:
    """Factory: `pods("app-a", "app-b", election="app", ready=True)` creates candidate Pods running as `app`
    (operations.make_pods: labels, annotations, hold, owner, service_account); {name: uid}. Held pods
    lose their finalizer at the end, so that the namespace can go."""
    held: list[str] = []

    def make(*names: str, ready: bool = True, **kw: Any) -> dict[str, str]:
        uids = operations.make_pods(api, namespace, names, ready=ready, **kw)
        pod_uids.update(uids)
        if kw.get("hold"):
            held.extend(names)
        return uids

    yield make
    for name in held:
        operations.release_hold(api, namespace, name)


@pytest.fixture
def electors(request: pytest.FixtureRequest, api: Any, namespace: str, sa_kubeconfig: Callable[..., Path],
             pod_uids: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Elector]]:
    """Factory: `electors("pod-a", election="e1")` starts one process as ServiceAccount `app`; all are
    killed at the end. POD_UID is the uid of the pod of that name made by `pods` (else `uid-<pod>`).

    Without the `controller` fixture, an election's rights are made (operations.grant) before its first
    elector starts; with it they come from the controller, once the test made the election's pods."""
    started: list[Elector] = []
    kubeconfig = sa_kubeconfig()
    with_controller = "controller" in request.fixturenames
    granted: set[str] = set()

    def start(pod: str, *, election: str = "app", extra: Iterable[str] = (), **kw: Any) -> Elector:
        if not with_controller and election not in granted:
            operations.grant(api, namespace, election)
            granted.add(election)
        env = {"POD_UID": pod_uids[pod]} if pod in pod_uids else {}
        env.update(kw.pop("env", None) or {})
        proc = Elector(pod=pod, namespace=namespace, election=election, kubeconfig=kw.pop("kubeconfig", kubeconfig),
                       log_dir=tmp_path, extra=list(extra), env=env, **kw).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
