"""Generators of odd AdmissionReviews: mutations of a valid one, as a fuzzer would make them."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from localplane.kube_elector.reviews import pod

ODD_VALUES: list[Any] = [None, 0, -1, 2**63, 1.5, True, "", "x" * 5000, [], {}, [None], {"a": None}, "ünïcødé ☃", "\x00"]
ODD_KEYS = ["elector.dev/inject", "elector.dev/port", "elector.dev/election", "elector.dev/containers",
            "elector.dev/lease-duration", "elector.dev/renew-deadline", "elector.dev/retry-period",
            "elector.dev/release-timeout", "elector.dev/probe-port", "elector.dev/image",
            "elector.dev/leader-service", "elector.dev/leader-label", "elector.dev/rollout-aware",
            "a/b~c", "~1~0/", "ключ/значение", "elector.dev/~", "/", "~"]
ODD_ANNOTATION_VALUES = ["true", "false", "TRUE", "", "yes", "4040", "80", "65536", "-1", "1e3", "15s", "0s", "10s",
                         "2s", "1h", "abc", "app", "app,missing", "UPPER", "a" * 64, "ok-name", "☃"]


def valid_review(rng: random.Random) -> dict[str, Any]:
    obj = pod()
    obj["metadata"]["annotations"] = {"elector.dev/inject": rng.choice(["true", "true", "false", "maybe"])}
    for _ in range(rng.randint(0, 4)):
        obj["metadata"]["annotations"][rng.choice(ODD_KEYS)] = rng.choice(ODD_ANNOTATION_VALUES)
    if rng.random() < 0.3:
        obj["spec"]["containers"].append(
            {"name": f"c{rng.randint(0, 9)}", "image": "x", "ports": [{"containerPort": rng.choice([80, 4040, 4041, 5050])}]}
        )
    if rng.random() < 0.2:
        obj["spec"]["initContainers"] = [{"name": rng.choice(["elector", "init"]), "image": "i"}]
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": f"uid-{rng.randint(0, 10**9)}",
            "kind": {"group": "", "version": "v1", "kind": rng.choice(["Pod"] * 8 + ["ConfigMap", "Secret"])},
            "operation": rng.choice(["CREATE"] * 8 + ["UPDATE", "DELETE", "CONNECT"]),
            "namespace": rng.choice(["shop", "kube-system", "", "ns/with/slash"]),
            "dryRun": rng.choice([True, False, None, "yes"]),
            "object": obj,
        },
    }


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def mutate(review: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Replace, delete or retype one to three random nodes."""
    review = copy.deepcopy(review)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(_paths(review)[1:])
        parent = review
        for step in path[:-1]:
            parent = parent[step]
        action = rng.random()
        if action < 0.3 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
        if not isinstance(review, dict):
            break
    return review


def body(rng: random.Random) -> bytes:
    """One fuzz input: mostly structured mutations, some broken bytes."""
    review = valid_review(rng)
    roll = rng.random()
    if roll < 0.55:
        return json.dumps(mutate(review, rng)).encode()
    if roll < 0.75:
        return json.dumps(review).encode()
    raw = json.dumps(review).encode()
    if roll < 0.85:
        return raw[: rng.randint(0, len(raw))]  # truncated JSON
    if roll < 0.92:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    return json.dumps(rng.choice(ODD_VALUES)).encode()
