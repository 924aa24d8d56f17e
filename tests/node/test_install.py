"""kube-elector installed as users install it: `kubectl apply -k` of manifests/, only the images swapped.

The webhook runs as the shipped Deployment on the node, becomes Ready through its probes, makes
its own certificate in the cluster, and the API server calls it through its Service.
"""

from __future__ import annotations

import base64
import json
import subprocess

import yaml

from localplane import cluster
from localplane.node import images, network
from localplane.process import binaries

REPO = binaries.ROOT
WEBHOOK = "kube-elector-webhook"


def _render(path) -> list[dict]:
    kubectl = binaries.find().kubectl
    out = subprocess.run([str(kubectl), "kustomize", str(path)], capture_output=True, text=True, check=True).stdout
    return list(yaml.safe_load_all(out))


def _without_images(doc: dict, swapped: set[str]) -> dict:
    """The document with every value that is one of the swapped image references blanked."""
    def blank(value):
        if isinstance(value, dict):
            return {k: blank(v) for k, v in value.items()}
        if isinstance(value, list):
            return [blank(v) for v in value]
        return "<image>" if isinstance(value, str) and value in swapped else value

    return blank(doc)


def test_the_local_overlay_swaps_the_images_and_nothing_else(control_plane):
    shipped = _render(REPO / "manifests")
    local = _render(cluster.OVERLAYS / "kube-elector")
    names = images.names()
    originals = {"ghcr.io/kube-elector/webhook:0.2.0", "ghcr.io/kube-elector/elector:0.2.0"}
    assert [_without_images(d, originals) for d in shipped] == \
        [_without_images(d, {names.webhook, names.elector}) for d in local]
    text = json.dumps(local)
    assert names.webhook in text and names.elector in text and "ghcr.io" not in text


def test_the_shipped_webhook_runs_on_the_node_and_the_api_server_calls_it_through_its_service(
        node_cluster, node_api, node_namespace):
    ns = cluster.NAMESPACE
    pods = node_api.get(f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": f"app.kubernetes.io/name={WEBHOOK}"}
                        ).json()["items"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["spec"]["nodeName"] == "kube-elector-node"
        assert pod["status"]["podIP"].startswith(network.POD_CIDR.rsplit(".", 2)[0])
        (container,) = pod["spec"]["containers"]
        assert container["image"] == images.names().webhook
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        (status,) = pod["status"]["containerStatuses"]
        assert status["ready"] and "running" in status["state"], status

    # Its own certificate, made in the cluster: the shared Secret, and the caBundle it patched in.
    secret = node_api.get(f"/api/v1/namespaces/{ns}/secrets/{WEBHOOK}-tls").json()
    ca = base64.b64decode(secret["data"]["ca.crt"])
    config = node_api.get("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/kube-elector").json()
    for hook in config["webhooks"]:
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == ca
        service = hook["clientConfig"]["service"]
        assert (service["name"], service["namespace"], service["port"]) == (WEBHOOK, ns, 443)

    # The Service's endpoints are the two pods; a pod created now is injected through them.
    slices = node_api.get(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
                          params={"labelSelector": f"kubernetes.io/service-name={WEBHOOK}"}).json()["items"]
    addresses = {a for s in slices for e in s["endpoints"] if e["conditions"].get("ready") for a in e["addresses"]}
    assert addresses == {p["status"]["podIP"] for p in pods}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "via-service", "annotations": {"elector.dev/inject": "true"}},
           "spec": {"schedulingGates": [{"name": "kube-elector.test/never"}],
                    "containers": [{"name": "app", "image": images.names().python}]}}
    created = node_api.post(f"/api/v1/namespaces/{node_namespace}/pods", json=pod)
    assert created.status_code == 201, created.text
    assert [c["name"] for c in created.json()["spec"]["initContainers"]] == ["elector"]
    logs = "".join(node_cluster.kubectl("logs", "-n", ns, p["metadata"]["name"]).stdout for p in pods)
    calls = [json.loads(line) for line in logs.splitlines() if '"admission"' in line]
    assert any(c.get("pod") == "via-service" and c.get("namespace") == node_namespace for c in calls), logs[-2000:]
