"""The chart on a real node: `helm install`, `helm upgrade` under load, `helm uninstall`, in that
order (the module's tests share one release), and a server-side dry run of non-default values.

Pods created in a loop carry a scheduling gate: admitted (and injected) but never scheduled, so
the loop measures admission alone and leaves the node idle.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from localplane.node import images
from tests.helm import charts

WEBHOOK = "kube-elector-webhook"
CONTROLLER = "kube-elector-controller"
MWC_PATH = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
UPGRADED_TAG = "upgraded"  # a second tag of the local images, made in containerd by the upgrade test


def _local_images(tag: str = "dev") -> dict[str, Any]:
    names = images.names()
    return {f"{part}.image": {"repository": ref.rsplit(":", 1)[0], "tag": tag, "pullPolicy": "IfNotPresent"}
            for part, ref in (("webhook", names.webhook), ("elector", names.elector))}


def _helm(helm: charts.Helm, node_cluster, verb: str, values: dict[str, Any] | None = None,
          *extra: str) -> float:
    """`helm <verb> kube-elector` (install/upgrade of the chart with values, or uninstall); its seconds."""
    sets = [f"--set-json={k}={json.dumps(v)}" for k, v in (values or {}).items()]
    chart = [str(charts.CHART), *sets] if verb != "uninstall" else []
    started = time.monotonic()
    helm.run(verb, charts.RELEASE, *chart, "--namespace", charts.NAMESPACE, *extra,
             kubeconfig=node_cluster.kubeconfig)
    return time.monotonic() - started


def _pod(*, gated: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": images.names().python,
                                            "command": ["python3", "-c", "import time; time.sleep(3600)"]}]}
    if gated:
        spec["schedulingGates"] = [{"name": "kube-elector.test/never"}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p-{uuid.uuid4().hex[:10]}", "labels": {"app": "helm-test"},
                         "annotations": {"elector.dev/inject": "true"}},
            "spec": spec}


def _elector(pod: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in pod["spec"].get("initContainers", []) if c["name"] == "elector"), None)


class CreateLoop(threading.Thread):
    """Creates an opted-in, gated pod every `interval` s until stopped; keeps each reply."""

    def __init__(self, client: httpx.Client, namespace: str, *, started: float | None = None,
                 interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.client, self.namespace, self.interval = client, namespace, interval
        self.started = time.monotonic() if started is None else started
        self.injected: list[tuple[float, dict[str, Any]]] = []  # (seconds, the created pod)
        self.plain: list[float] = []
        self.failures: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            reply = self.client.post(f"/api/v1/namespaces/{self.namespace}/pods", json=_pod())
            at = time.monotonic() - self.started
            if reply.status_code != 201:
                self.failures.append(f"+{at:.2f}s {reply.status_code}: {reply.text[:300]}")
            elif _elector(reply.json()):
                self.injected.append((at, reply.json()))
            else:
                self.plain.append(at)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(30)

    @property
    def created(self) -> int:
        return len(self.injected) + len(self.plain)


class Watch(threading.Thread):
    """Records (seconds since `started`, event type, object) of one watch, until `done(events)`
    is true or `seconds` have passed (the API server ends the watch then)."""

    def __init__(self, node_cluster, path: str, params: dict[str, str], started: float,
                 done: Callable[[list[tuple[float, str, dict[str, Any]]]], bool], seconds: int = 60) -> None:
        super().__init__(daemon=True)
        self.client = node_cluster.plane.client(timeout=seconds + 10)
        listed = self.client.get(path, params=params).json()
        self.path, self.started, self.done = path, started, done
        self.params = {**params, "watch": "true", "timeoutSeconds": str(seconds),
                       "resourceVersion": listed["metadata"]["resourceVersion"]}
        self.events: list[tuple[float, str, dict[str, Any]]] = []

    def run(self) -> None:
        try:
            with self.client.stream("GET", self.path, params=self.params) as reply:
                for line in reply.iter_lines():
                    event = json.loads(line)
                    self.events.append((time.monotonic() - self.started, event["type"], event["object"]))
                    if self.done(self.events):
                        return
        finally:
            self.client.close()


@pytest.fixture(scope="module")
def admin(node_cluster) -> Iterator[httpx.Client]:
    """One cluster-admin client for the module (the pod loops share it with the tests)."""
    with node_cluster.plane.client() as client:
        yield client


@pytest.fixture(scope="module")
def release(node_cluster, helm):
    """kube-elector installed by the chart (local images) into kube-elector, created from
    manifests/namespace.yaml (Pod Security restricted); the seconds until its webhook served."""
    node_cluster.kubectl("apply", "-f", str(charts.MANIFESTS / "namespace.yaml"))
    started = time.monotonic()
    _helm(helm, node_cluster, "install", _local_images(), "--wait", "--timeout=120s")
    node_cluster.wait_webhook_serving()
    serving = time.monotonic() - started
    print(f"\nhelm install --wait: webhook Ready and injecting {serving:.1f} s after the install began")
    yield serving
    helm.run("uninstall", charts.RELEASE, "--namespace", charts.NAMESPACE, "--ignore-not-found",
             kubeconfig=node_cluster.kubeconfig, check=False)


def _ca_bundles(api: httpx.Client) -> list[str]:
    hooks = api.get(f"{MWC_PATH}/kube-elector").json()["webhooks"]
    return [hook["clientConfig"].get("caBundle", "") for hook in hooks]


def _webhook_pods(api: httpx.Client) -> list[dict[str, Any]]:
    return api.get(f"/api/v1/namespaces/{charts.NAMESPACE}/pods",
                   params={"labelSelector": f"app.kubernetes.io/name={WEBHOOK}"}).json()["items"]


def test_server_side_dry_run_of_non_default_values(node_cluster, helm):
    """Every object the chart renders with non-default values is accepted by the API server
    (cert-manager's and the Prometheus Operator's kinds through stand-in CRDs without a schema)."""
    crds = [_stand_in_crd("cert-manager.io", "Certificate"), _stand_in_crd("cert-manager.io", "Issuer"),
            _stand_in_crd("monitoring.coreos.com", "PrometheusRule")]
    node_cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": crds}))
    node_cluster.kubectl("wait", "--for=condition=Established", "crd", *(c["metadata"]["name"] for c in crds))
    namespace = "elector-dry-run"
    node_cluster.kubectl("create", "namespace", namespace)
    try:
        rendered = helm.template({
            **_local_images("1.0.0"), "webhook.replicas": 3, "webhook.failurePolicy": "Ignore",
            "webhook.timeoutSeconds": 10, "webhook.priorityClassName": "",
            "webhook.resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            "webhook.podLabels": {"team": "platform"}, "webhook.podAnnotations": {"example.com/owner": "platform"},
            "webhook.nodeSelector": {"kubernetes.io/os": "linux"},
            "webhook.tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
            "webhook.excludedNamespaces": ["kube-system", "monitoring"],
            "webhook.namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]},
            "webhook.objectSelector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["batch"]}]},
            "elector.leaseDuration": "30s", "elector.renewDeadline": "20s", "elector.retryPeriod": "4s",
            "elector.nativeSidecar": False, "elector.port": 5050, "elector.probePort": 5051,
            "elector.resources": {"requests": {"cpu": "20m", "memory": "48Mi"}, "limits": {"memory": "96Mi"}},
            "controller.replicas": 3, "controller.priorityClassName": "",
            "controller.resources": {"requests": {"cpu": "50m", "memory": "80Mi"}, "limits": {"memory": "256Mi"}},
            "controller.tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
            "certManager": {"enabled": True, "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}},
            "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
            "podDisruptionBudget": {"enabled": True, "minAvailable": "50%"},
            "commonLabels": {"cost-center": "c42"}, "commonAnnotations": {"example.com/chart": "kube-elector"},
        }, namespace=namespace)
        done = node_cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
        lines = done.stdout.splitlines()
        assert len(lines) == len(charts.documents(rendered)) and all("(server dry run)" in x for x in lines)
        kinds = {line.split("/")[0] for line in lines}
        assert {"certificate.cert-manager.io", "prometheusrule.monitoring.coreos.com",
                "mutatingwebhookconfiguration.admissionregistration.k8s.io",
                "validatingadmissionpolicy.admissionregistration.k8s.io",
                "validatingadmissionpolicybinding.admissionregistration.k8s.io"} <= kinds, done.stdout
    finally:
        node_cluster.kubectl("delete", "namespace", namespace, "--wait=false")
        node_cluster.kubectl("delete", "crd", *(c["metadata"]["name"] for c in crds), "--wait=false")


def _stand_in_crd(group: str, kind: str) -> dict[str, Any]:
    plural = kind.lower() + "s"
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                         "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}


def test_install_makes_the_webhook_ready_and_an_opted_in_pod_gets_the_elector(
        release, node_cluster, admin, app_namespace):
    for name in (WEBHOOK, CONTROLLER):
        deployment = admin.get(f"/apis/apps/v1/namespaces/{charts.NAMESPACE}/deployments/{name}").json()
        assert deployment["status"].get("readyReplicas") == 2, name
        assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert all(_ca_bundles(admin)), "the webhook patched no caBundle"

    # An opted-in pod, run on the node: injected, its elector started and leading (the controller made
    # its Lease and the Role that lets the pod's ServiceAccount use it).
    reply = admin.post(f"/api/v1/namespaces/{app_namespace}/pods", json=_pod(gated=False))
    assert reply.status_code == 201, reply.text
    pod = reply.json()
    assert _elector(pod)["image"] == images.names().elector
    node_cluster.kubectl("wait", "--for=condition=Ready", f"pod/{pod['metadata']['name']}", "-n", app_namespace,
                         "--timeout=60s", timeout=70)
    deadline = time.monotonic() + 20
    while (lease := admin.get(f"/apis/coordination.k8s.io/v1/namespaces/{app_namespace}/leases/helm-test")
           ).status_code != 200 or lease.json()["spec"].get("holderIdentity") != pod["metadata"]["name"]:
        assert time.monotonic() < deadline, f"no Lease held by the pod: {lease.text[:300]}"
        time.sleep(0.2)
    role = admin.get(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{app_namespace}/roles/"
                     "kube-elector-lease-helm-test")
    assert role.status_code == 200 and role.json()["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "update", "watch"],
         "resourceNames": ["helm-test"]}], role.text[:300]
    print(f"install: webhook serving {release:.1f} s after `helm install`; an opted-in pod ran with its elector "
          f"and took Lease {app_namespace}/helm-test")


def test_upgrade_to_a_new_image_tag_and_new_values_fails_no_pod_creation(
        release, node_cluster, admin, app_namespace, helm):
    names = images.names()
    upgraded = {ref: f"{ref.rsplit(':', 1)[0]}:{UPGRADED_TAG}" for ref in (names.webhook, names.elector)}
    for ref, new in upgraded.items():
        node_cluster.node.ctr("images", "tag", "--force", ref, new)
    ca_before = _ca_bundles(admin)
    changed = {**_local_images(UPGRADED_TAG), "elector.leaseDuration": "20s", "webhook.timeoutSeconds": 8,
               "commonLabels": {"team": "platform"}}
    loop = CreateLoop(admin, app_namespace)
    loop.start()
    try:
        time.sleep(1)
        took_image = _helm(helm, node_cluster, "upgrade", _local_images(UPGRADED_TAG), "--wait", "--timeout=120s")
        took_values = _helm(helm, node_cluster, "upgrade", changed, "--wait", "--timeout=120s")
        returned = time.monotonic() - loop.started
        # The old replicas still answer during their preStop sleep, on the API server's open
        # connections to them: the upgrade is complete once they are gone.
        old = [p["metadata"]["name"] for p in _webhook_pods(admin) if "deletionTimestamp" in p["metadata"]]
        if old:
            node_cluster.kubectl("wait", "--for=delete", *(f"pod/{n}" for n in old), "-n", charts.NAMESPACE,
                                 "--timeout=60s", timeout=70)
        settled = time.monotonic() - loop.started
        time.sleep(2)
    finally:
        loop.stop()
    after = [pod for at, pod in loop.injected if at > settled]
    last_old = max(at for at, pod in loop.injected if "--lease-duration=20s" not in _elector(pod)["args"])
    print(f"upgrade: image tag dev -> {UPGRADED_TAG} in {took_image:.1f} s, then values in {took_values:.1f} s "
          f"(helm upgrade --wait); from its return, the last pod injected by an old replica at "
          f"{last_old - returned:+.1f} s, the old replicas gone at {settled - returned:+.1f} s; "
          f"{loop.created} opted-in pods created meanwhile, {len(loop.injected)} injected, "
          f"{len(loop.failures)} failed")
    assert loop.failures == []
    assert loop.created > 100 and loop.plain == []

    # Now only the new replicas answer: new webhook image, new elector image and timings.
    assert {p["spec"]["containers"][0]["image"] for p in _webhook_pods(admin)} == {upgraded[names.webhook]}
    assert after and all(_elector(pod)["image"] == upgraded[names.elector] for pod in after)
    assert all("--lease-duration=20s" in _elector(pod)["args"] for pod in after)
    config = admin.get(f"{MWC_PATH}/kube-elector").json()
    assert {hook["timeoutSeconds"] for hook in config["webhooks"]} == {8}
    assert config["metadata"]["labels"]["team"] == "platform"
    assert _ca_bundles(admin) == ca_before, "an upgrade changed the caBundle the webhook had patched"


def test_uninstall_removes_the_webhook_configuration_before_the_webhook_pods_stop(
        release, node_cluster, admin, app_namespace, helm):
    started = time.monotonic()
    pods = {p["metadata"]["name"] for p in _webhook_pods(admin) if "deletionTimestamp" not in p["metadata"]}
    watches = [Watch(node_cluster, MWC_PATH, {"fieldSelector": "metadata.name=kube-elector"}, started,
                     done=lambda events: any(kind == "DELETED" for _, kind, _ in events)),
               Watch(node_cluster, f"/api/v1/namespaces/{charts.NAMESPACE}/pods",
                     {"labelSelector": f"app.kubernetes.io/name={WEBHOOK}"}, started,
                     done=lambda events: pods <= {o["metadata"]["name"] for _, kind, o in events if kind == "DELETED"})]
    loop = CreateLoop(admin, app_namespace, started=started)
    for thread in (*watches, loop):
        thread.start()
    try:
        time.sleep(1)
        uninstall_at = time.monotonic() - started
        took = _helm(helm, node_cluster, "uninstall")
        for watch in watches:  # until the configuration and the webhook pods are deleted
            watch.join(70)
        time.sleep(1)
    finally:
        loop.stop()

    mwc_gone = next(at for at, kind, _ in watches[0].events if kind == "DELETED")
    events = [(at, kind, o) for at, kind, o in reversed(watches[1].events) if o["metadata"]["name"] in pods]
    terminating = {o["metadata"]["name"]: at for at, _, o in events if o["metadata"].get("deletionTimestamp")}
    stopped = {o["metadata"]["name"]: at for at, kind, o in events
               if kind == "DELETED" or any("terminated" in s.get("state", {})
                                           for s in o["status"].get("containerStatuses", []))}
    print(f"uninstall (helm {took:.2f} s), from `helm uninstall`: MutatingWebhookConfiguration deleted at "
          f"+{mwc_gone - uninstall_at:.2f} s; webhook pods terminating from "
          f"+{min(terminating.values()) - uninstall_at:.2f} s, stopped at "
          + ", ".join(f"+{at - uninstall_at:.2f} s" for at in sorted(stopped.values()))
          + f"; {loop.created} opted-in pods created meanwhile: {len(loop.injected)} injected, "
          f"{len(loop.plain)} not (webhook gone), {len(loop.failures)} failed")
    assert set(stopped) == pods == set(terminating)
    # Which came first across the two watches: their objects' resourceVersions (one etcd: its revisions are
    # one order), not the moments the events reached this process, which may arrive in either order.
    mwc_revision = next(int(o["metadata"]["resourceVersion"]) for _, kind, o in watches[0].events if kind == "DELETED")
    assert mwc_revision < min(int(o["metadata"]["resourceVersion"]) for _, _, o in events
                              if o["metadata"].get("deletionTimestamp"))
    assert min(terminating.values()) < min(stopped.values())
    assert loop.failures == []
    # Opted-in pods are created again, without the sidecar: nothing is left to call.
    assert loop.plain and all(at > mwc_gone for at in loop.plain)
    reply = admin.post(f"/api/v1/namespaces/{app_namespace}/pods", json=_pod())
    assert reply.status_code == 201 and _elector(reply.json()) is None, reply.text
    assert admin.get(f"{MWC_PATH}/kube-elector").status_code == 404
