"""Optional features through the real API server: the leader label (moved by the kube-elector controller),
--release-timeout, --app-health-url, in-cluster config."""
from __future__ import annotations

import http.server
import signal
import threading
import time
import urllib.request
from typing import Any, Iterator

import pytest

from localplane.kube_elector.electors import Checker, free_port, leaders, wait_for

pytestmark = pytest.mark.controlplane
LABEL = "elector.dev/leader"


def _labels(api: Any, namespace: str, pod: str) -> dict[str, str]:
    return api.get(f"/api/v1/namespaces/{namespace}/pods/{pod}").json()["metadata"].get("labels") or {}


def test_leader_label_follows_the_leader(controller: Any, pods: Any, electors: Any, api: Any, namespace: str) -> None:
    """The controller moves `elector.dev/leader=true` to the Lease holder's pod (pods annotated
    `elector.dev/leader-label: "true"`) and removes it from the others."""
    pods("app-a", "app-b", labels={"app": "demo", LABEL: "true"},  # a stale label to clean up
         annotations={"elector.dev/leader-label": "true"})
    procs = [electors(pod) for pod in ("app-a", "app-b")]
    first = wait_for(lambda: leaders(procs), 10)[0]
    other = next(p for p in procs if p is not first)
    assert wait_for(lambda: _labels(api, namespace, first.pod).get(LABEL) == "true"
                    and LABEL not in _labels(api, namespace, other.pod), 5), controller.logs()[-3000:]
    first.signal(signal.SIGTERM)
    assert first.proc.wait(10) == 0
    assert wait_for(other.is_leader, 5), other.logs()
    assert wait_for(lambda: _labels(api, namespace, other.pod).get(LABEL) == "true", 5), controller.logs()[-3000:]
    assert wait_for(lambda: LABEL not in _labels(api, namespace, first.pod), 5), controller.logs()[-3000:]
    assert _labels(api, namespace, first.pod).get("app") == "demo"  # the other labels stay


def test_release_timeout_waits_for_the_app_then_hands_over(electors: Any) -> None:
    procs = [electors(f"app-{n}", extra=["--release-timeout=20s"]) for n in "ab"]
    leader = wait_for(lambda: leaders(procs), 10)[0]
    other = next(p for p in procs if p is not leader)
    checker = Checker(procs)
    checker.start()
    leader.signal(signal.SIGTERM)
    assert wait_for(lambda: leader.status() and leader.status()["is_leader"] is False, 2)
    time.sleep(2)  # the Lease stays renewed: nobody takes over while the app finishes
    assert not other.is_leader() and leader.proc.poll() is None
    sent = time.monotonic()
    urllib.request.urlopen(urllib.request.Request(leader.url + "release", method="POST", headers={"Elector-Release": "true"}), timeout=2)
    assert wait_for(lambda: other.is_leader() and time.monotonic() - sent, 1.0, interval=0.01)
    assert leader.proc.wait(10) == 0
    checker.stop()
    assert checker.overlaps == []


class _Health(http.server.BaseHTTPRequestHandler):
    healthy = True

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200 if type(self).healthy else 500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_servers() -> Iterator[list[Any]]:
    servers = []
    for _ in range(2):
        handler = type("Health", (_Health,), {"healthy": True})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield servers
    for server in servers:
        server.shutdown()


def test_unhealthy_app_gives_the_role_away(electors: Any, health_servers: list[Any]) -> None:
    procs = [electors(f"app-{n}", extra=[f"--app-health-url=http://127.0.0.1:{s.server_address[1]}/healthz"])
             for n, s in zip("ab", health_servers)]
    leader = wait_for(lambda: leaders(procs), 10)[0]
    index = procs.index(leader)
    health_servers[index].RequestHandlerClass.healthy = False
    other = procs[1 - index]
    assert wait_for(other.is_leader, 6), leader.logs()
    assert not leader.is_leader()


def test_in_cluster_config_from_the_service_account_directory(
        electors: Any, control_plane: Any, namespace: str, sa_kubeconfig: Any, tmp_path: Any) -> None:
    """The injected container has no kubeconfig: KUBERNETES_SERVICE_* and the mounted token + ca.crt."""
    sa_kubeconfig(grant=["app"])  # the ServiceAccount, the election's Role, RoleBinding and Lease
    sa_dir = tmp_path / "serviceaccount"
    sa_dir.mkdir()
    (sa_dir / "token").write_text(control_plane.token(namespace, "app", seconds=600))
    (sa_dir / "ca.crt").write_bytes(control_plane.ca_pem)
    (sa_dir / "namespace").write_text(namespace)
    host, port = control_plane.server.removeprefix("https://").rsplit(":", 1)
    env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port, "ELECTOR_SERVICE_ACCOUNT_DIR": str(sa_dir)}
    proc = electors("app-incluster", kubeconfig=None, env=env)
    assert wait_for(proc.is_leader, 10), proc.logs()
    assert proc.status()["name"] == "app-incluster"
