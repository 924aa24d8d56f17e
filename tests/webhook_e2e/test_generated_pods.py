"""A few hundred generated opted-in pods through the real API server (dry run): every patch we
return applies and yields a pod the server accepts, or the pod is denied by us with a clear message."""

from __future__ import annotations

import random

from tests.security.reviews import ODD_ANNOTATION_VALUES

KEYS = ["elector.dev/port", "elector.dev/probe-port", "elector.dev/election", "elector.dev/containers",
        "elector.dev/lease-duration", "elector.dev/renew-deadline", "elector.dev/retry-period",
        "elector.dev/release-timeout", "elector.dev/image", "example.com/other"]
SAMPLES = 200


def generated_pod(rng: random.Random, i: int) -> dict:
    notes = {"elector.dev/inject": "true"}
    for _ in range(rng.randint(0, 4)):
        notes[rng.choice(KEYS)] = rng.choice(ODD_ANNOTATION_VALUES[:-1])  # annotation values must be valid UTF-8 text
    containers = []
    for n in range(rng.randint(1, 3)):
        c = {"name": rng.choice(["app", "worker", "sidecar"]) + str(n), "image": "img:1"}
        if rng.random() < 0.4:
            c["ports"] = [{"containerPort": rng.choice([80, 4040, 4041, 5050, 8080])}]
        if rng.random() < 0.5:
            c["env"] = [{"name": rng.choice(["ELECTOR_PATH", "MODE", "X"]), "value": "v"}]
        containers.append(c)
    spec = {"containers": containers}
    if rng.random() < 0.3:
        spec["initContainers"] = [{"name": "init", "image": "img:1"}]
    if rng.random() < 0.2:
        spec["automountServiceAccountToken"] = False
    labels = {"app": rng.choice(["web", "Shop_API", "x" * 63])} if rng.random() < 0.5 else {}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"gen-{i}", "annotations": notes, "labels": labels},
            "spec": spec}


def test_generated_pods_are_injected_or_denied_by_us(webhook, api, namespace):
    rng = random.Random(7)
    tally = {"injected": 0, "denied": 0}
    for i in range(SAMPLES):
        sent = generated_pod(rng, i)
        r = api.post(f"/api/v1/namespaces/{namespace}/pods", params={"dryRun": "All"}, json=sent)
        if r.status_code == 201:
            stored = r.json()
            assert stored["spec"]["initContainers"][0]["name"] == "elector", stored
            tally["injected"] += 1
        else:
            message = r.json().get("message", "")
            assert r.status_code == 403 and "kube-elector cannot inject this pod: elector.dev/" in message, (sent, r.text)
            tally["denied"] += 1
    print("generated pods:", tally)
    assert tally["injected"] > SAMPLES // 4 and tally["denied"] > 0, tally
