"""AdmissionReview v1 on the wire: parsing, and the responses we can give.

The only place that knows the review's shape. A body we cannot read raises
`BadReview` (the route answers HTTP 400); anything readable gets an AdmissionReview back.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import jsonpatch
import orjson

API_VERSION = "admission.k8s.io/v1"
POD = {"group": "", "version": "v1", "kind": "Pod"}


class BadReview(Exception):
    """The body is not an AdmissionReview v1 we can answer; the message says what is wrong."""


@dataclass(frozen=True)
class Request:
    """The parts of an AdmissionRequest that the webhook uses."""

    uid: str
    kind: dict[str, Any]
    operation: str
    namespace: str
    dry_run: bool
    object: Any

    @property
    def is_pod_create(self) -> bool:
        return self.operation == "CREATE" and {k: self.kind.get(k) for k in POD} == POD


def parse_review(body: bytes) -> Request:
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadReview(f"body is not JSON: {exc}") from None
    if not isinstance(review, dict):
        raise BadReview("body must be a JSON object (an AdmissionReview)")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != "AdmissionReview":
        raise BadReview(f"expected apiVersion {API_VERSION} and kind AdmissionReview: set admissionReviewVersions: [v1]")
    request = review.get("request")
    if not isinstance(request, dict):
        raise BadReview("request: missing or not an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("request.uid: missing or not a string")
    kind = request.get("kind")
    if not isinstance(kind, dict):
        raise BadReview("request.kind: missing or not an object")
    operation = request.get("operation")
    if not isinstance(operation, str):
        raise BadReview("request.operation: missing or not a string")
    namespace = request.get("namespace") or ""
    if not isinstance(namespace, str):
        raise BadReview("request.namespace: not a string")
    return Request(
        uid=uid,
        kind=kind,
        operation=operation,
        namespace=namespace,
        dry_run=request.get("dryRun") is True,
        object=request.get("object"),
    )


def check_pod(pod: Any) -> str | None:
    """None if every field the core reads has the right type, else the first bad field."""
    if not isinstance(pod, dict):
        return "request.object: not an object"
    meta = pod.get("metadata", {})
    if not isinstance(meta, dict):
        return "metadata: not an object"
    for key in ("annotations", "labels"):
        value = meta.get(key) or {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            return f"metadata.{key}: not a map of strings"
    for key in ("name", "generateName"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            return f"metadata.{key}: not a string"
    owners = meta.get("ownerReferences") or []
    if not isinstance(owners, list) or not all(isinstance(o, dict) for o in owners):
        return "metadata.ownerReferences: not a list of objects"
    spec = pod.get("spec", {})
    if not isinstance(spec, dict):
        return "spec: not an object"
    if spec.get("serviceAccountName") is not None and not isinstance(spec["serviceAccountName"], str):
        return "spec.serviceAccountName: not a string"
    volumes = spec.get("volumes") or []
    if not isinstance(volumes, list) or not all(isinstance(v, dict) for v in volumes):
        return "spec.volumes: not a list of objects"
    for key in ("initContainers", "containers"):
        containers = spec.get(key) or []
        if not isinstance(containers, list):
            return f"spec.{key}: not a list"
        for i, c in enumerate(containers):
            where = f"spec.{key}[{i}]"
            if not isinstance(c, dict) or not isinstance(c.get("name"), str):
                return f"{where}: not a container with a name"
            for sub in ("env", "ports"):
                items = c.get(sub) or []
                if not isinstance(items, list) or not all(isinstance(e, dict) for e in items):
                    return f"{where}.{sub}: not a list of objects"
    return None


def allowed(request: Request, *, warnings: list[str] | None = None) -> dict[str, Any]:
    return _review(request, {"allowed": True}, warnings)


def patched(request: Request, original: dict[str, Any], mutated: dict[str, Any], *, warnings: list[str] | None = None) -> dict[str, Any]:
    """Allowed with the diff of the two pods; no patch at all when they are equal."""
    ops = jsonpatch.make_patch(original, mutated).patch
    if not ops:
        return allowed(request, warnings=warnings)
    body = {"allowed": True, "patchType": "JSONPatch", "patch": base64.b64encode(orjson.dumps(ops)).decode()}
    return _review(request, body, warnings)


def denied(request: Request, message: str, *, code: int = 403) -> dict[str, Any]:
    status = {"code": code, "message": message, "reason": "Forbidden" if code == 403 else "BadRequest"}
    return _review(request, {"allowed": False, "status": status}, None)


def _review(request: Request, response: dict[str, Any], warnings: list[str] | None) -> dict[str, Any]:
    response = {"uid": request.uid, **response}
    if warnings:
        response["warnings"] = warnings
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}
