"""The probe port of a real elector on the real node, attacked from the node's address (as any pod
could): slow heads, huge headers, many connections. Its pod stays Ready, its elector is never
restarted, its probes keep answering and its memory stays near what it was."""

from __future__ import annotations

import socket
import time

from localplane.node import pods
from tests.node import apps

PROBE_PORT = 4041


def elector_rss(pod) -> int:
    pid = pods.container_pids(pod)["elector"][0]
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def healthz(ip: str) -> bytes:
    with socket.create_connection((ip, PROBE_PORT), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        return sock.recv(100)


def test_hostile_connections_leave_the_probes_answering(node_api, node_namespace):
    node_api.post(f"/api/v1/namespaces/{node_namespace}/pods",
                  json=apps.bare_pod("target", command=["sleep", "3600"])).raise_for_status()
    pod = apps.wait_pod_ready(node_api, node_namespace, "target")
    ip = pod["status"]["podIP"]
    before = elector_rss(pod)
    hostile = []
    for i in range(150):
        sock = socket.create_connection((ip, PROBE_PORT), timeout=5)
        # slow heads, and a few that send headers far past the cap
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + (b"X-%d: %s\r\n" % (i, b"a" * 30000) if i % 20 == 0 else b""))
        hostile.append(sock)
    answered = [healthz(ip).startswith(b"HTTP/1.1 200") for _ in range(10)]
    during = elector_rss(pod)
    time.sleep(12)  # past the head deadline: the slow ones are closed
    for sock in hostile:
        sock.close()
    pod = apps.get_pod(node_api, node_namespace, "target")
    restarts = {s["name"]: s["restartCount"] for s in pod["status"].get("initContainerStatuses", [])}
    print(f"elector RSS {before / 2**20:.1f} MiB before, {during / 2**20:.1f} MiB with 150 hostile connections; "
          f"probes answered {sum(answered)}/10")
    assert all(answered)
    assert restarts["elector"] == 0
    assert during - before < 4 * 2**20
    assert healthz(ip).startswith(b"HTTP/1.1 200")
