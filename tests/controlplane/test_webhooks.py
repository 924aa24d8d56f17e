"""localplane.kube_elector.register against a tiny self-contained HTTPS webhook that annotates pods."""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from certs import pki
from localplane.kube_elector import register as webhooks

ANNOTATION = "localplane.test/mutated"


class _Annotate(http.server.BaseHTTPRequestHandler):
    """Answers every AdmissionReview with a JSON patch that adds ANNOTATION."""

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        pod = review["request"]["object"]
        patch = (
            []
            if pod["metadata"].get("annotations")
            else [{"op": "add", "path": "/metadata/annotations", "value": {}}]
        )
        patch.append(
            {"op": "add", "path": "/metadata/annotations/" + ANNOTATION.replace("/", "~1"), "value": "yes"}
        )
        response = {
            "uid": review["request"]["uid"],
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
        }
        body = json.dumps(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def webhook_server(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    """(url, CA PEM) of an HTTPS webhook on a free loopback port."""
    ca = pki.make_ca("webhook-test-ca", days=1)
    cert, key = pki.make_serving_cert(ca, dns_names=[], ip_addresses=["127.0.0.1"], days=1).write(
        tmp_path, "webhook"
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Annotate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/mutate", ca.cert_pem
    server.shutdown()
    server.server_close()


def test_registered_webhook_mutates_stored_pod(control_plane, api, namespace, webhook_server):
    url, ca_pem = webhook_server
    name = f"localplane-test-{namespace}"
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "annotate.localplane.test",
                "clientConfig": {"url": url, "caBundle": base64.b64encode(ca_pem).decode()},
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                    }
                ],
                # Only this test's namespace: nothing else in the session goes through this webhook.
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 5,
            }
        ],
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app"},
        "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
    }

    def annotated(answer: dict) -> bool:
        return answer.get("metadata", {}).get("annotations", {}).get(ANNOTATION) == "yes"

    try:
        webhooks.register_mutating_webhook(
            control_plane, config, marker_pod=pod, marker_namespace=namespace, is_called=annotated
        )
        # Registering again replaces the object; an is_called that never agrees ends in WebhookNotCalled.
        with pytest.raises(webhooks.WebhookNotCalled):
            webhooks.register_mutating_webhook(
                control_plane,
                config,
                marker_pod=pod,
                marker_namespace=namespace,
                is_called=lambda _: False,
                timeout=1,
            )
        created = api.post(f"/api/v1/namespaces/{namespace}/pods", json=pod)
        assert created.status_code == 201, created.text
        stored = api.get(f"/api/v1/namespaces/{namespace}/pods/app").json()
        assert stored["metadata"]["annotations"][ANNOTATION] == "yes"
    finally:
        api.delete(f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}")
