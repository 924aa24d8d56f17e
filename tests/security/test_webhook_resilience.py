"""Failure policy, replicas, certificate rotation and caBundle repair, on the real API server."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time

import pytest

from certs import pki, webhook_tls
from localplane.kube_elector import webhook as webhook_install
from localplane.process import tcpproxy
from localplane.process.ports import free_ports

MWC = f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{webhook_install.CONFIGURATION}"
SECRET = "/api/v1/namespaces/kube-elector/secrets/kube-elector-webhook-tls"


def pod(name, opted_in):
    meta = {"name": name, **({"annotations": {"elector.dev/inject": "true"}} if opted_in else {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [{"name": "app", "image": "a"}]}}


def create(api, namespace, body, dry_run=True):
    return api.post(f"/api/v1/namespaces/{namespace}/pods", params={"dryRun": "All"} if dry_run else {}, json=body)


def served_serial(port: int) -> int:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw) as tls:
        from cryptography import x509
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number


@pytest.fixture
def two_replicas(control_plane, tmp_path):
    """Two webhook processes behind one loopback 'Service' (a failover TCP proxy)."""
    ports = free_ports(2)
    proxy = tcpproxy.TcpProxy([("127.0.0.1", p) for p in ports]).start()
    webhook_install.apply_manifests(control_plane)
    webhook_install.point_at(control_plane, f"https://127.0.0.1:{proxy.port}")
    hooks = []
    try:
        for i, port in enumerate(ports):
            hooks.append(webhook_install.start_webhook(control_plane, tmp_path / f"replica{i}", port=port))
            hooks[-1].wait_ready()  # the second replica reuses the first one's Secret
        webhook_install.wait_called(control_plane)
        yield hooks, proxy.backends
    finally:
        for hook in hooks:
            hook.stop(drain=False)
        proxy.stop()
        with control_plane.client() as api:
            api.delete(MWC)


def take_out(proxy_backends, hook):
    """What a rolling update does: the endpoint goes first (preStop sleep), then the process stops."""
    proxy_backends.remove(("127.0.0.1", hook.port))
    hook.stop()
    time.sleep(0.5)  # the API server's idle connections to the old replica see it close


def test_failure_policy_with_replicas_down(two_replicas, api, namespace):
    (first, second), backends = two_replicas
    take_out(backends, first)
    # One replica left: nothing is refused.
    for i in range(5):
        r = create(api, namespace, pod(f"one-left-{i}", opted_in=True))
        assert r.status_code == 201, r.text
        assert r.json()["spec"]["initContainers"][0]["name"] == "elector"
    take_out(backends, second)
    # None left: pods that did not opt in never reach the webhook and are created normally...
    r = create(api, namespace, pod("plain", opted_in=False), dry_run=False)
    assert r.status_code == 201, r.text
    # ...and opted-in pods are refused (Fail), with an error that says which webhook.
    r = create(api, namespace, pod("refused", opted_in=True))
    assert r.status_code >= 400
    assert "pod.elector.dev" in r.json()["message"], r.json()["message"]


def test_serving_cert_rotation_under_load_fails_no_admission(two_replicas, api, namespace, control_plane):
    (first, second), _ = two_replicas
    failures, successes, stop = [], [0], threading.Event()

    def load():
        with control_plane.client() as client:
            i = 0
            while not stop.is_set():
                i += 1
                r = create(client, namespace, pod(f"load-{i}", opted_in=True))
                if r.status_code == 201 and r.json()["spec"].get("initContainers"):
                    successes[0] += 1
                else:
                    failures.append(r.text[:300])

    worker = threading.Thread(target=load)
    worker.start()
    try:
        time.sleep(1.0)
        before = served_serial(first.port), served_serial(second.port)
        secret = api.get(SECRET).raise_for_status().json()
        old = webhook_tls.Bundle.from_secret(secret)
        fresh = webhook_tls.issue(service="kube-elector-webhook", namespace="kube-elector", ca=old.ca,
                                  extra_ips=["127.0.0.1"])
        body = fresh.to_secret(name="kube-elector-webhook-tls", namespace="kube-elector")
        body["metadata"]["resourceVersion"] = secret["metadata"]["resourceVersion"]
        api.put(SECRET, json=body).raise_for_status()
        deadline = time.monotonic() + 30
        while (served_serial(first.port), served_serial(second.port)) == before or any(
            s in before for s in (served_serial(first.port), served_serial(second.port))):
            assert time.monotonic() < deadline, "the replicas never served the rotated certificate"
            time.sleep(0.2)
        assert served_serial(first.port) == fresh.serving.cert.serial_number
        time.sleep(1.0)
    finally:
        stop.set()
        worker.join()
    assert successes[0] > 10
    assert failures == []


def test_wrong_ca_bundle_is_repaired_by_the_webhook(two_replicas, api, namespace):
    stranger = base64.b64encode(pki.make_ca("not-ours", days=1).cert_pem).decode()
    count = len(api.get(MWC).json()["webhooks"])
    ops = [{"op": "replace", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": stranger} for i in range(count)]
    api.patch(MWC, json=ops, headers={"Content-Type": "application/json-patch+json"}).raise_for_status()
    deadline = time.monotonic() + 30
    while True:
        bundles = [base64.b64decode(h["clientConfig"]["caBundle"]).decode() for h in api.get(MWC).json()["webhooks"]]
        secret = webhook_tls.Bundle.from_secret(api.get(SECRET).json())
        if all(webhook_tls.ca_bundle_contains(b, secret.ca.cert_pem) for b in bundles):
            break
        assert time.monotonic() < deadline, "caBundle not repaired"
        time.sleep(0.2)
    deadline = time.monotonic() + 30
    while create(api, namespace, pod("after-repair", opted_in=True)).status_code != 201:
        assert time.monotonic() < deadline, "admissions did not recover after the repair"
        time.sleep(0.2)
