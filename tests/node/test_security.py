"""The injected sidecar under the strictest settings a platform uses: PSA `restricted`, no automounted token."""

from __future__ import annotations

from pathlib import Path

from demo import observe
from localplane.node import pods
from tests.node import apps


def _uid_and_read_only_root(pid: int) -> tuple[int, bool]:
    uid = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("Uid:"))
    root = next(line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
                if line.split()[4] == "/")
    return uid, "ro" in root[5].split(",")


def _capabilities(pid: int) -> int:
    return next(int(line.split()[1], 16) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("CapEff:"))


def _seccomp_mode(pid: int) -> int:
    return next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("Seccomp:"))


def test_the_sample_app_runs_in_a_psa_restricted_namespace(node_cluster, node_api, restricted_namespace):
    apps.deploy_sample_app(node_cluster, restricted_namespace, replicas=2)
    leader = apps.wait_agreed_leader(node_api, restricted_namespace, count=2)
    for seen in observe.observe(node_api, restricted_namespace, selector=apps.APP_SELECTOR):
        for name, pids in pods.container_pids(seen.pod).items():
            # As the kubelet started them: non-root, read-only root, no capabilities, seccomp filter on.
            assert _uid_and_read_only_root(pids[0]) == (65532, True), name
            assert _capabilities(pids[0]) == 0, name
            assert _seccomp_mode(pids[0]) == 2, name  # SECCOMP_MODE_FILTER: RuntimeDefault
    events = node_api.get(f"/api/v1/namespaces/{restricted_namespace}/events").json()["items"]
    assert not [e for e in events if "violates PodSecurity" in e.get("message", "")]
    assert leader


def test_automount_false_the_elector_still_gets_its_own_projected_token(node_cluster, node_api, node_namespace):
    pod = apps.bare_pod("no-token", command=apps.SLEEP,
                        automountServiceAccountToken=False)
    node_api.post(f"/api/v1/namespaces/{node_namespace}/pods", json=pod).raise_for_status()
    apps.wait_pod_ready(node_api, node_namespace, "no-token")
    assert apps.wait_agreed_leader(node_api, node_namespace, count=1, selector="app=no-token") == "no-token"

    # The app container has no token; the elector has a projected one (as the kubelet mounted them).
    probe = "import os; print(os.path.exists('/var/run/secrets/kubernetes.io/serviceaccount/token'))"
    app_sees = node_cluster.kubectl("exec", "-n", node_namespace, "no-token", "-c", "app", "--",
                                    "python3", "-c", probe).stdout.strip()
    assert app_sees == "False"
    stored = apps.get_pod(node_api, node_namespace, "no-token")
    mounts = {m["mountPath"] for m in stored["spec"]["initContainers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in stored["spec"]["volumes"]}
    projected = [v for v in volumes.values() if "projected" in v]
    assert projected and any("serviceAccountToken" in s for s in projected[0]["projected"]["sources"])
    assert "/var/run/secrets/kubernetes.io/serviceaccount" in mounts
