"""The NAIS client snippets in examples/clients/ against an injected elector on the node.

The Python ones run with `kubectl exec` in the app container (the stock Python image). curl.sh and
LeaderClient.java need curl and a JDK, which that image lacks: they run with the host's tools inside
the pod's network namespace (`nsenter --net`), with the env the webhook gave the app container.
"""

from __future__ import annotations

import json
import shutil
import subprocess

from localplane.node import pods
from localplane.process import binaries
from tests.node import apps

CLIENTS = binaries.ROOT / "examples" / "clients"


def test_client_snippets_work_against_the_injected_elector(node_cluster, node_api, node_namespace):
    node_cluster.kubectl("create", "configmap", "clients", "-n", node_namespace, f"--from-file={CLIENTS}")
    pod = apps.bare_pod("clients", command=apps.SLEEP,
                        volumes=[{"name": "clients", "configMap": {"name": "clients"}}])
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "clients", "mountPath": "/opt/clients"}]
    node_api.post(f"/api/v1/namespaces/{node_namespace}/pods", json=pod).raise_for_status()
    apps.wait_pod_ready(node_api, node_namespace, "clients")
    assert apps.wait_agreed_leader(node_api, node_namespace, count=1, selector="app=clients") == "clients"

    def exec_in_app(*argv: str) -> str:
        return node_cluster.kubectl("exec", "-n", node_namespace, "clients", "-c", "app", "--", *argv).stdout

    assert exec_in_app("python3", "/opt/clients/poll.py", "--once").strip() == "clients: leader"
    assert exec_in_app("python3", "/opt/clients/sse.py", "--events", "1").startswith("leader: leader=clients")

    stored = apps.get_pod(node_api, node_namespace, "clients")
    env = {e["name"]: e["value"] for e in stored["spec"]["containers"][0]["env"] if "value" in e}
    assert env["ELECTOR_PATH"] == "localhost:4040"
    env.update({"PATH": "/usr/bin:/bin", "HOSTNAME": "clients", "FOLLOW_SECONDS": "1"})
    netns = f"/proc/{pods.pod_pids(stored)[0]}/ns/net"

    def in_pod_netns(*argv: str) -> str:
        done = subprocess.run(["nsenter", f"--net={netns}", *argv], env=env, capture_output=True, text=True,
                              timeout=120, cwd=CLIENTS)
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = in_pod_netns("sh", "curl.sh")
    assert json.loads(out.splitlines()[0])["name"] == "clients"
    assert "I am the leader" in out
    assert json.loads(out.splitlines()[-1])["is_leader"] is True  # the SSE event
    assert shutil.which("java"), "LeaderClient.java needs a JDK (java) on this machine"
    out = in_pod_netns("java", "LeaderClient.java", "get")
    assert "I am the leader" in out and "clients" in out
    assert '"name":"clients"' in in_pod_netns("java", "LeaderClient.java", "sse", "1")
