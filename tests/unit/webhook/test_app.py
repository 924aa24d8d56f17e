"""The HTTP layer in process (no TLS): what the API server gets back for each kind of request."""

import asyncio
import base64
import json
import socket

import jsonpatch
import pytest
from starlette.testclient import TestClient

from localplane.kube_elector.reviews import pod, review
from tests import asgi
from webhook import app, settings


@pytest.fixture
def client():
    cfg = settings.Settings(max_body_bytes=64 * 1024)
    return TestClient(app.create_app(cfg))


def post(client, body, path="/mutate"):
    return client.post(path, content=body, headers={"Content-Type": "application/json"})


def test_opted_in_pod_gets_a_patch_that_applies_to_the_original(client):
    original = pod()
    r = post(client, review(original, uid="abc-1"))
    assert r.status_code == 200
    resp = r.json()["response"]
    assert resp["uid"] == "abc-1" and resp["allowed"] is True and resp["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(original, json.loads(base64.b64decode(resp["patch"])))
    assert patched["spec"]["initContainers"][0]["name"] == "elector"


FORGED = pod(**{"metadata.namespace": "victim", "spec.serviceAccountName": "thief",
                "metadata.annotations": {"elector.dev/inject": "true", "elector.dev/leader-label": "true",
                                         "elector.dev/leader-service": "x"}})


@pytest.mark.parametrize("dry_run", [False, True])
def test_an_admission_opens_no_connection(client, monkeypatch, dry_run):
    """The webhook writes nothing: answering even a forged review (any caller can POST one) is
    pure computation. Any connection attempt, to the API server or anywhere, fails the test."""
    tried = []

    def refuse(*args, **kwargs):
        tried.append(args[1:] if args else kwargs)
        raise OSError("the webhook must not connect anywhere during an admission")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    r = post(client, review(FORGED, namespace="victim", dry_run=dry_run))
    assert r.status_code == 200 and r.json()["response"]["allowed"] and r.json()["response"]["patch"]
    assert tried == []


@pytest.mark.parametrize(
    "body",
    [
        review(pod(**{"metadata.annotations": None})),            # not opted in
        review(pod(), operation="UPDATE"),
        review(pod(), operation="DELETE"),
        review({"metadata": {"name": "cm"}}, kind="ConfigMap"),
    ],
)
def test_other_requests_are_allowed_without_a_patch(client, body):
    resp = post(client, body).json()["response"]
    assert resp == {"uid": "6f1c", "allowed": True}


def test_namespace_path_injects_pods_without_annotation(client):
    resp = post(client, review(pod(**{"metadata.annotations": None})), path="/mutate/namespace").json()["response"]
    assert resp["allowed"] and resp["patch"]


def test_invalid_annotation_is_denied_with_its_name(client):
    resp = post(client, review(pod(**{"metadata.annotations": {"elector.dev/inject": "true", "elector.dev/port": "x"}})))
    body = resp.json()["response"]
    assert body["allowed"] is False and body["status"]["code"] == 403
    assert "elector.dev/port" in body["status"]["message"] and "accepted" in body["status"]["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "JSON object"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}).encode(), "admissionReviewVersions"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(), "request"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 5}}).encode(), "request.uid"),
    ],
)
def test_unreadable_review_is_a_400_with_a_message(client, body, needle):
    r = post(client, body)
    assert r.status_code == 400 and needle in r.json()["error"]


def test_pod_with_wrong_types_is_denied_naming_the_field(client):
    bad = pod(**{"spec.containers": [{"name": "app", "env": "A=1"}]})
    body = post(client, review(bad)).json()["response"]
    assert body["allowed"] is False and body["status"]["code"] == 400
    assert "spec.containers[0].env" in body["status"]["message"]


def test_body_over_the_limit_is_refused(client):
    huge = pod(**{"metadata.annotations": {"elector.dev/inject": "true", "x": "y" * 100_000}})
    assert post(client, review(huge)).status_code == 413


def test_metrics_count_results(client):
    post(client, review(pod()))
    post(client, review(pod(**{"metadata.annotations": None})))
    text = client.get("/metrics").text
    assert 'kube_elector_admissions_total{result="injected"} 1.0' in text
    assert 'kube_elector_admissions_total{result="skipped"} 1.0' in text
    assert "kube_elector_admission_duration_seconds_bucket" in text


def test_health_and_readiness():
    cfg = settings.Settings()
    state = {"ready": False}
    c = TestClient(app.create_app(cfg, ready=lambda: state["ready"]))
    assert c.get("/healthz").status_code == 200
    assert c.get("/readyz").status_code == 503
    state["ready"] = True
    assert c.get("/readyz").status_code == 200


async def _call(application, messages, headers=()):
    """POST /mutate straight into the ASGI app with the given receive() messages; (status, JSON body)."""
    status, sent, body = await asgi.post(application, messages, headers=tuple(headers))
    assert sent[b"content-length"] == str(len(body)).encode()
    return status, json.loads(body)


def _chunks(body: bytes, size: int):
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    return [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]


async def test_a_body_in_many_chunks_is_admitted():
    status, answer = await _call(app.create_app(settings.Settings()), _chunks(review(pod(), uid="c-1"), 100))
    assert status == 200 and answer["response"]["uid"] == "c-1" and answer["response"]["patch"]


async def test_a_chunked_body_over_the_limit_is_413_without_a_declared_length():
    cfg = settings.Settings(max_body_bytes=64 * 1024)
    huge = review(pod(**{"metadata.annotations": {"elector.dev/inject": "true", "x": "y" * 100_000}}))
    status, answer = await _call(app.create_app(cfg), _chunks(huge, 16 * 1024))
    assert status == 413 and "65536 bytes" in answer["error"]


async def test_a_declared_length_over_the_limit_is_413_before_any_body_is_read():
    status, _ = await _call(app.create_app(settings.Settings(max_body_bytes=1024)), [],
                            headers=[(b"content-length", b"1025")])
    assert status == 413


async def test_a_client_gone_before_its_body_ended_is_400():
    status, answer = await _call(app.create_app(settings.Settings()), _chunks(review(pod()), 100)[:2])
    assert status == 400 and "closed the connection" in answer["error"]


async def test_a_body_slower_than_the_request_timeout_is_408():
    async def stall():
        await asyncio.sleep(5)

    cfg = settings.Settings(request_timeout_seconds=0.05)
    status, answer = await _call(app.create_app(cfg), [_chunks(review(pod()), 100)[0], stall])
    assert status == 408 and "0.05 s" in answer["error"]


def test_only_post_reaches_the_admission_routes(client):
    assert client.get("/mutate").status_code == 405
    assert client.put("/mutate/namespace", content=b"{}").status_code == 405
