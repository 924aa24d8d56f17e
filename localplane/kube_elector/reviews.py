"""Pod dicts and AdmissionReviews for the webhook tests (plain data, as the API server sends)."""

from __future__ import annotations

import copy
import json
from typing import Any

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "generateName": "web-5d8f7c9b4-",
        "namespace": "shop",
        "labels": {"pod-template-hash": "5d8f7c9b4"},
        "annotations": {"elector.dev/inject": "true"},
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f7c9b4", "uid": "1", "controller": True}
        ],
    },
    "spec": {
        "serviceAccountName": "web",
        "containers": [{"name": "app", "image": "app:1", "env": [{"name": "MODE", "value": "prod"}]}],
    },
}


def pod(**changes: Any) -> dict[str, Any]:
    """A copy of POD; `changes` maps dotted paths to values (None deletes)."""
    out = copy.deepcopy(POD)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return out


def review(obj: Any, *, operation: str = "CREATE", kind: str = "Pod", namespace: str = "shop", dry_run: bool = False,
           uid: str = "6f1c") -> bytes:
    return json.dumps({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": {"group": "", "version": "v1", "kind": kind}, "operation": operation,
            "namespace": namespace, "dryRun": dry_run, "object": obj,
        },
    }).encode()
