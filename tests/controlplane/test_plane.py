"""The local control plane is the real thing: each test fails against a fake or a half-configured server."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from localplane.controlplane import plane

LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"


def _eventually(check: Callable[[], Any], *, timeout: float = 30.0, what: str) -> Any:
    """Poll check() until it returns something truthy; fail the test with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
    return result


def _lease(name: str, holder: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, **spec},
    }


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "app", "image": "registry.invalid/app:1", **spec.pop("container", {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container], **spec},
    }


def _token_client(cluster: plane.ControlPlane, token: str) -> httpx.Client:
    verify = ssl.create_default_context(cadata=cluster.ca_pem.decode())
    return httpx.Client(
        base_url=cluster.server, verify=verify, trust_env=False, headers={"Authorization": f"Bearer {token}"}
    )


def test_server_is_kubernetes_1_36(control_plane):
    version = json.loads(control_plane.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"].startswith("v1.36.")
    assert version["clientVersion"]["gitVersion"].startswith("v1.36.")


def test_stale_resource_version_conflicts(api, namespace):
    path = LEASES.format(ns=namespace)
    created = api.post(path, json=_lease("lock", "a"))
    assert created.status_code == 201, created.text
    original = created.json()

    renewed = api.put(f"{path}/lock", json={**original, "spec": {**original["spec"], "holderIdentity": "b"}})
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["metadata"]["resourceVersion"] != original["metadata"]["resourceVersion"]

    stale = api.put(f"{path}/lock", json={**original, "spec": {**original["spec"], "holderIdentity": "c"}})
    assert stale.status_code == 409, stale.text
    assert stale.json()["reason"] == "Conflict"
    assert api.get(f"{path}/lock").json()["spec"]["holderIdentity"] == "b"


def test_pod_security_restricted_rejects_privileged_pod(api, namespace):
    labelled = api.patch(
        f"/api/v1/namespaces/{namespace}",
        json={"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert labelled.status_code == 200, labelled.text
    privileged = _pod("privileged", container={"securityContext": {"privileged": True}})
    pods = f"/api/v1/namespaces/{namespace}/pods"

    # PodSecurity reads namespaces from an informer: poll with dry runs until the label is seen.
    rejected = _eventually(
        lambda: (r := api.post(pods, params={"dryRun": "All"}, json=privileged)).status_code == 403 and r,
        timeout=10,
        what="PodSecurity to reject a privileged pod",
    )
    assert "violates PodSecurity" in rejected.json()["message"]
    assert "privileged" in rejected.json()["message"]
    assert api.post(pods, json=privileged).status_code == 403

    restricted = _pod(
        "restricted",
        securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        container={"securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}},
    )
    accepted = api.post(pods, json=restricted)
    assert accepted.status_code == 201, accepted.text


def test_rbac_denies_lease_update_until_a_role_is_bound(control_plane, api, namespace):
    assert (
        api.post(
            f"/api/v1/namespaces/{namespace}/serviceaccounts", json={"metadata": {"name": "elector"}}
        ).status_code
        == 201
    )
    path = LEASES.format(ns=namespace)
    lease = api.post(path, json=_lease("lock", "a")).json()
    user = f"system:serviceaccount:{namespace}:elector"
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "namespace": namespace,
                "verb": "update",
                "group": "coordination.k8s.io",
                "resource": "leases",
                "name": "lock",
            },
        },
    }

    def allowed() -> bool:
        answer = api.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review)
        assert answer.status_code == 201, answer.text
        return bool(answer.json()["status"]["allowed"])

    token = control_plane.token(namespace, "elector", seconds=600)
    with _token_client(control_plane, token) as as_sa:
        assert not allowed()
        denied = as_sa.put(f"{path}/lock", json=lease)
        assert denied.status_code == 403, denied.text

        rules = [
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": ["get", "create", "update"],
            }
        ]
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
        assert (
            api.post(f"{rbac}/roles", json={"metadata": {"name": "elector"}, "rules": rules}).status_code
            == 201
        )
        binding = {
            "metadata": {"name": "elector"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "elector"},
            "subjects": [{"kind": "ServiceAccount", "name": "elector", "namespace": namespace}],
        }
        assert api.post(f"{rbac}/rolebindings", json=binding).status_code == 201

        _eventually(allowed, timeout=10, what="RBAC to allow the bound ServiceAccount")
        updated = as_sa.put(f"{path}/lock", json={**lease, "spec": {**lease["spec"], "holderIdentity": "sa"}})
        assert updated.status_code == 200, updated.text


def test_deployment_creates_replicaset_and_pods_and_gc_removes_them(api, namespace):
    labels = {"app": "demo"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "demo"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": _pod("unused")["spec"]},
        },
    }
    apps = f"/apis/apps/v1/namespaces/{namespace}"
    pods = f"/api/v1/namespaces/{namespace}/pods"
    created = api.post(f"{apps}/deployments", json=deployment)
    assert created.status_code == 201, created.text

    def items(path: str) -> list[dict[str, Any]]:
        return api.get(path, params={"labelSelector": "app=demo"}).json()["items"]

    (replicaset,) = _eventually(
        lambda: items(f"{apps}/replicasets"), what="the deployment-controller's ReplicaSet"
    )
    assert replicaset["metadata"]["ownerReferences"][0]["uid"] == created.json()["metadata"]["uid"]
    made = _eventually(lambda: len(p := items(pods)) == 2 and p, what="the replicaset-controller's two Pods")
    for pod in made:
        assert pod["metadata"]["ownerReferences"][0]["uid"] == replicaset["metadata"]["uid"]
        assert pod["status"]["phase"] == "Pending"  # no scheduler, no kubelet

    deleted = api.request("DELETE", f"{apps}/deployments/demo", json={"propagationPolicy": "Background"})
    assert deleted.status_code == 200, deleted.text
    _eventually(
        lambda: not items(f"{apps}/replicasets") and not items(pods),
        what="the garbage collector to delete the ReplicaSet and its Pods",
    )


@pytest.mark.parametrize(
    ("renew_time", "stored"),
    [
        ("2026-01-02T03:04:05.123456Z", "2026-01-02T03:04:05.123456Z"),  # MicroTime's wire format
        ("2026-01-02T05:04:05.123456+02:00", "2026-01-02T03:04:05.123456Z"),  # any offset, stored as UTC
        ("2026-01-02T03:04:05.123Z", None),  # Go parses with the fixed layout ".000000": exactly 6 digits
        ("2026-01-02T03:04:05Z", None),
        ("2026-01-02T03:04:05.123456789Z", None),
    ],
)
def test_lease_renew_time_needs_six_fractional_digits(api, namespace, renew_time, stored):
    answer = api.post(LEASES.format(ns=namespace), json=_lease("lock", "a", renewTime=renew_time))
    if stored:
        assert answer.status_code == 201, answer.text
        assert answer.json()["spec"]["renewTime"] == stored
    else:
        assert answer.status_code == 400, answer.text
        assert f'parsing time "{renew_time}"' in answer.json()["message"]


def test_token_kubeconfig_authenticates_as_the_service_account(control_plane, namespace, tmp_path):
    token = control_plane.token(namespace, "default", seconds=600)
    kubeconfig = control_plane.write_kubeconfig(tmp_path / "sa.kubeconfig", token=token)
    whoami = control_plane.kubectl("--kubeconfig", str(kubeconfig), "auth", "whoami", "-o", "json")
    assert (
        json.loads(whoami.stdout)["status"]["userInfo"]["username"]
        == f"system:serviceaccount:{namespace}:default"
    )
    with pytest.raises(plane.KubectlError, match="Forbidden"):
        control_plane.kubectl("--kubeconfig", str(kubeconfig), "get", "secrets", "-n", namespace)


def test_restarted_apiserver_and_crashed_etcd_keep_data(control_plane, namespace):
    with control_plane.client() as api:
        assert api.post(LEASES.format(ns=namespace), json=_lease("survivor", "a")).status_code == 201
    apiserver, etcd = control_plane.components["kube-apiserver"], control_plane.components["etcd"]
    old_pids = apiserver.pid, etcd.pid
    apiserver.stop()
    assert not apiserver.running
    apiserver.start()
    etcd.kill()
    etcd.start()
    assert (apiserver.pid, etcd.pid) != old_pids
    apiserver.wait_ready(timeout=60)
    with control_plane.client() as api:
        lease = _eventually(
            lambda: (r := api.get(f"{LEASES.format(ns=namespace)}/survivor")).status_code == 200 and r.json(),
            what="the Lease after the restarts",
        )
    assert lease["spec"]["holderIdentity"] == "a"


def test_paused_apiserver_stops_answering_until_resumed(control_plane):
    part = control_plane.components["kube-apiserver"]
    part.pause()
    try:
        with control_plane.client(timeout=1.0) as api, pytest.raises(httpx.TimeoutException):
            api.get("/readyz")
    finally:
        part.resume()
    with control_plane.client() as api:
        assert api.get("/readyz").status_code == 200
