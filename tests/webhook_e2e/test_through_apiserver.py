"""Acceptance of the injection webhook: a real kube-apiserver calls it, real controllers make the pods."""

from __future__ import annotations

import json
import re
import ssl
import time

import httpx
import pytest
import yaml

from localplane.kube_elector import webhook as webhook_install

RESTRICTED_APP = {
    "name": "app",
    "image": "registry.example/app:1",
    "env": [{"name": "MODE", "value": "prod"}],
    "securityContext": {
        "runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
    },
}


def pod_manifest(name, annotations=None, **spec):
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, **({"annotations": annotations} if annotations is not None else {})},
        "spec": {"containers": [RESTRICTED_APP], **spec},
    }


def admissions(hook) -> dict[str, float]:
    """The webhook's own request counters, read from its /metrics over TLS."""
    text = httpx.get(f"{hook.url}/metrics", verify=False).text
    return {m.group(1): float(m.group(2)) for m in re.finditer(r'kube_elector_admissions_total\{result="(\w+)"\} ([\d.]+)', text)}


def wait_for(fetch, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fetch()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def by_name(containers):
    return {c["name"]: c for c in containers or []}


def test_deployment_pods_get_the_sidecar_in_a_restricted_namespace(webhook, api, namespace):
    api.patch(f"/api/v1/namespaces/{namespace}", json={"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "restricted"}}},
        headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {
                "metadata": {"labels": {"app": "shop"}, "annotations": {"elector.dev/inject": "true"}},
                "spec": {"containers": [RESTRICTED_APP]},
            },
        },
    }
    api.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", json=deployment).raise_for_status()
    pods = wait_for(lambda: [p for p in api.get(f"/api/v1/namespaces/{namespace}/pods").json()["items"]] if len(
        api.get(f"/api/v1/namespaces/{namespace}/pods").json()["items"]) == 2 else None, "2 pods from the ReplicaSet")
    for pod in pods:
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
        elector = by_name(pod["spec"]["initContainers"])["elector"]
        assert elector["restartPolicy"] == "Always"
        assert elector["securityContext"]["readOnlyRootFilesystem"] is True
        assert elector["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert "--election=shop" in elector["args"]
        env = {e["name"]: e.get("value") for e in by_name(pod["spec"]["containers"])["app"]["env"]}
        assert env["ELECTOR_PATH"] == "localhost:4040"
        assert env["ELECTOR_GET_URL"] == "http://localhost:4040/"
        assert env["ELECTOR_SSE_URL"] == "http://localhost:4040/sse"
        assert env["MODE"] == "prod"
        assert pod["metadata"]["labels"]["elector.dev/election"] == "shop"


def test_pod_that_does_not_opt_in_never_reaches_the_webhook(webhook, api, namespace):
    before = admissions(webhook)
    sent = pod_manifest("plain", annotations={"team": "x"})
    stored = api.post(f"/api/v1/namespaces/{namespace}/pods", json=sent).raise_for_status().json()
    assert admissions(webhook) == before  # matchConditions kept it on the API server side
    assert "initContainers" not in stored["spec"]
    assert stored["metadata"]["annotations"] == {"team": "x"}
    assert by_name(stored["spec"]["containers"])["app"]["env"] == RESTRICTED_APP["env"]


def test_invalid_annotation_is_denied_and_kubectl_shows_why(webhook, control_plane, namespace):
    bad = pod_manifest("bad", annotations={"elector.dev/inject": "true", "elector.dev/port": "80"})
    done = control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(bad), check=False)
    assert done.returncode != 0
    assert "elector.dev/port" in done.stderr and "1024 to 65535" in done.stderr, done.stderr


def test_automount_false_still_gives_the_elector_its_token(webhook, api, namespace):
    sent = pod_manifest("noauto", annotations={"elector.dev/inject": "true"}, automountServiceAccountToken=False)
    stored = api.post(f"/api/v1/namespaces/{namespace}/pods", json=sent).raise_for_status().json()
    elector = by_name(stored["spec"]["initContainers"])["elector"]
    mounts = {m["mountPath"]: m["name"] for m in elector["volumeMounts"]}
    volume = mounts["/var/run/secrets/kubernetes.io/serviceaccount"]
    projected = {v["name"]: v for v in stored["spec"]["volumes"]}[volume]["projected"]
    assert any("serviceAccountToken" in s for s in projected["sources"])
    assert "volumeMounts" not in by_name(stored["spec"]["containers"])["app"]


def test_injecting_twice_changes_nothing(webhook, api, namespace):
    first = api.post(f"/api/v1/namespaces/{namespace}/pods", params={"dryRun": "All"},
                     json=pod_manifest("twice", annotations={"elector.dev/inject": "true"})).raise_for_status().json()
    again = {"apiVersion": "v1", "kind": "Pod", "metadata": {k: first["metadata"][k] for k in ("name", "annotations", "labels")},
             "spec": first["spec"]}
    second = api.post(f"/api/v1/namespaces/{namespace}/pods", params={"dryRun": "All"}, json=again).raise_for_status().json()
    assert second["spec"]["initContainers"] == first["spec"]["initContainers"]
    assert second["spec"]["containers"] == first["spec"]["containers"]
    assert second["spec"]["volumes"] == first["spec"]["volumes"]


def test_an_injected_pod_makes_the_webhook_write_nothing(webhook, api, namespace):
    """Real pods (not dry run) with every controller feature: the webhook answers with a patch and creates
    no RoleBinding, Role, Lease or EndpointSlice; the controller (not running here) does that work."""
    api.post(f"/api/v1/namespaces/{namespace}/serviceaccounts", json={"metadata": {"name": "robot"}}).raise_for_status()
    notes = {"elector.dev/inject": "true", "elector.dev/leader-label": "true",
             "elector.dev/leader-service": "robot-leader", "elector.dev/rollout-aware": "false"}
    before = admissions(webhook).get("injected", 0)
    for name, extra in (("robot", {}), ("robot-defaults", {"elector.dev/rollout-aware": "true"})):
        sent = pod_manifest(name, annotations={**notes, **extra}, serviceAccountName="robot")
        stored = api.post(f"/api/v1/namespaces/{namespace}/pods", json=sent).raise_for_status().json()
        elector = by_name(stored["spec"]["initContainers"])["elector"]
        assert not [a for a in elector["args"] if a.startswith(("--leader-", "--rollout-aware"))], elector["args"]
        assert "POD_IP" not in {e["name"] for e in elector["env"]}
        assert stored["metadata"]["annotations"]["elector.dev/leader-service"] == "robot-leader"  # for the controller
    assert admissions(webhook)["injected"] == before + 2
    time.sleep(1.0)  # 0.1 wrote its RoleBindings after the answer: they would be there by now
    for path in ("/apis/rbac.authorization.k8s.io/v1/namespaces/{}/rolebindings",
                 "/apis/rbac.authorization.k8s.io/v1/namespaces/{}/roles",
                 "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
                 "/apis/discovery.k8s.io/v1/namespaces/{}/endpointslices"):
        items = api.get(path.format(namespace)).raise_for_status().json()["items"]
        assert items == [], (path, [i["metadata"]["name"] for i in items])


def test_namespace_label_opts_pods_in_and_the_annotation_opts_out(webhook, api, namespace):
    api.patch(f"/api/v1/namespaces/{namespace}", json={"metadata": {"labels": {"elector.dev/inject": "enabled"}}},
              headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()

    def create(name, annotations):
        return api.post(f"/api/v1/namespaces/{namespace}/pods", params={"dryRun": "All"},
                        json=pod_manifest(name, annotations=annotations)).raise_for_status().json()

    in_ns = wait_for(lambda: create("in", None) if "initContainers" in create("in", None)["spec"] else None,
                     "namespace opt-in (informer delay)")
    assert by_name(in_ns["spec"]["initContainers"])["elector"]
    out = create("out", {"elector.dev/inject": "false"})
    assert "initContainers" not in out["spec"]


def test_manifests_pass_server_side_validation(webhook, control_plane):
    """Everything `kubectl apply -k manifests/` sends, validated by the API server (dry run).

    The live MutatingWebhookConfiguration now points at a URL, so validate ours under another name.
    """
    rendered = list(yaml.safe_load_all(control_plane.kubectl("kustomize", str(webhook_install.MANIFESTS)).stdout))
    for doc in rendered:
        if doc["kind"] == "MutatingWebhookConfiguration":
            doc["metadata"]["name"] = "kube-elector-validation-copy"
    done = control_plane.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(rendered))
    kinds = {doc["kind"] for doc in rendered}
    assert {"Deployment", "Service", "ClusterRole", "MutatingWebhookConfiguration", "PodDisruptionBudget"} <= kinds
    assert done.stdout.count("(server dry run)") == len(rendered)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_the_webhook_speaks_tls_1_2_and_up_only(webhook):
    host, port = "127.0.0.1", webhook.port
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    import socket
    with socket.create_connection((host, port)) as raw, pytest.raises(ssl.SSLError):
        with old.wrap_socket(raw):
            pass
    ok = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ok.check_hostname, ok.verify_mode = False, ssl.CERT_NONE
    ok.minimum_version = ok.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection((host, port)) as raw, ok.wrap_socket(raw) as tls:
        assert tls.version() == "TLSv1.2"
