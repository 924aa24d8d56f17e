"""The pod network stays on this machine: a pod reaches the host and the API server, and nothing else; it
finds Services by name through the cluster DNS.

A stand-in for "elsewhere" is a network namespace of the test's own (held by a sleeping process,
localplane.node.isolation.hold, as a node's are: `ip netns add` would leave /run/netns mounted on the
machine), behind a veth with addresses from a documentation range that this machine does not use: the
host reaches it, a pod must not (the fence drops what the host would forward off the pod bridge). The
host routes that range to the veth, so no packet can leave the machine either way.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import time

from localplane.node import isolation, network
from tests.node import apps

HOST_SIDE, OUTSIDE_SIDE = "keout0", "keout1"
# TEST-NET-2 and -3 (RFC 5737); the machine's own network may be TEST-NET-1.
CANDIDATES = ("198.51.100.0/30", "203.0.113.0/30")
CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
    print("connected")
except OSError as exc:
    print("blocked:", exc)
"""
RESOLVE = """
import socket, sys
for name in sys.argv[1:]:
    try:
        print(socket.gethostbyname(name))
    except OSError:
        print("unresolved")
"""


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def test_a_pod_reaches_the_api_server_but_nothing_beyond_the_bridge(node_cluster, node_api, node_namespace):
    node_api.post(f"/api/v1/namespaces/{node_namespace}/pods",
                  json=apps.bare_pod("net", command=apps.SLEEP)).raise_for_status()
    apps.wait_pod_ready(node_api, node_namespace, "net")
    subnet = next(c for c in CANDIDATES if not network.overlaps(c)), "no free documentation range here"
    host_ip, outside_ip = (str(a) for a in list(ipaddress.ip_network(subnet[0]).hosts())[:2])
    holder = isolation.hold()
    outside = ("nsenter", f"--net=/proc/{holder.pid}/ns/net")
    listener = None
    try:
        _run("ip", "link", "add", HOST_SIDE, "type", "veth", "peer", "name", OUTSIDE_SIDE, "netns", str(holder.pid))
        _run("ip", "addr", "add", f"{host_ip}/30", "dev", HOST_SIDE)
        _run("ip", "link", "set", HOST_SIDE, "up")
        _run(*outside, "ip", "addr", "add", f"{outside_ip}/30", "dev", OUTSIDE_SIDE)
        _run(*outside, "ip", "link", "set", OUTSIDE_SIDE, "up")
        _run(*outside, "ip", "route", "add", network.POD_CIDR, "via", host_ip)
        listener = subprocess.Popen([*outside, sys.executable, "-c",
                                     "import socket, time; s = socket.create_server(('0.0.0.0', 8080)); "
                                     "[s.accept() for _ in iter(int, 1)]"])

        def from_host() -> str:
            return subprocess.run([sys.executable, "-c", CONNECT, outside_ip, "8080"], capture_output=True,
                                  text=True).stdout.strip()

        deadline = time.monotonic() + 10
        while from_host() != "connected" and time.monotonic() < deadline:  # the listener starting
            time.sleep(0.2)

        def from_pod(host: str, port: str) -> str:
            return node_cluster.kubectl("exec", "-n", node_namespace, "net", "-c", "app", "--", "python3", "-c",
                                        CONNECT, host, port).stdout.strip()

        assert from_host() == "connected"  # the stand-in for elsewhere is there
        assert from_pod(outside_ip, "8080").startswith("blocked"), "a pod reached beyond the pod bridge"
        assert from_pod("10.0.0.1", "443") == "connected"  # the kubernetes Service, through kube-proxy
        # Cluster DNS (CoreDNS as kube-dns): the API server by its Service name, as client libraries find it.
        assert from_pod("kubernetes.default.svc", "443") == "connected"
        resolved = node_cluster.kubectl("exec", "-n", node_namespace, "net", "-c", "app", "--", "python3", "-c",
                                        RESOLVE, "kubernetes.default", "kube-dns.kube-system.svc.cluster.local",
                                        "no-such-service").stdout.split()
        assert resolved == ["10.0.0.1", "10.0.0.10", "unresolved"], resolved
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        subprocess.run(["ip", "link", "delete", HOST_SIDE], capture_output=True)
        holder.kill()  # its namespace, and the veth's other end in it, go with it
        holder.wait()
