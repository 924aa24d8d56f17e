"""AdmissionReview v1 on the wire: parsing, and the responses we can give.

The only place that knows the review's shape. A body we cannot read raises
`BadReview` (the route answers HTTP 400); anything readable gets an AdmissionReview back.
"""

from __future__ import annotations

import base64
import json
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
    """Raises BadReview (the route answers 400) with a message that says what to fix, e.g. admissionReviewVersions."""
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
    """None if every field the core reads is absent (or null) or of the right type, else the first bad field."""
    if not isinstance(pod, dict):
        return "request.object: not an object"
    meta = _field(pod, "metadata", dict)
    if meta is _WRONG:
        return "metadata: not an object"
    for key in ("annotations", "labels"):
        value = _field(meta, key, dict)
        if value is _WRONG or not all(isinstance(v, str) for v in value.values()):
            return f"metadata.{key}: not a map of strings"
    for key in ("name", "generateName"):
        if _field(meta, key, str) is _WRONG:
            return f"metadata.{key}: not a string"
    if not _list_of(meta, "ownerReferences", dict):
        return "metadata.ownerReferences: not a list of objects"
    spec = _field(pod, "spec", dict)
    if spec is _WRONG:
        return "spec: not an object"
    if _field(spec, "serviceAccountName", str) is _WRONG:
        return "spec.serviceAccountName: not a string"
    if not _list_of(spec, "volumes", dict):
        return "spec.volumes: not a list of objects"
    for key in ("initContainers", "containers"):
        if not _list_of(spec, key, dict):
            return f"spec.{key}: not a list of containers"
        for i, c in enumerate(spec.get(key) or []):
            where = f"spec.{key}[{i}]"
            if not isinstance(c.get("name"), str):
                return f"{where}.name: missing or not a string"
            for sub, key, kind in (("env", "name", str), ("ports", "containerPort", int)):
                if not _list_of(c, sub, dict):
                    return f"{where}.{sub}: not a list of objects"
                for j, item in enumerate(c.get(sub) or []):
                    if not isinstance(item.get(key), kind) or isinstance(item.get(key), bool):
                        return f"{where}.{sub}[{j}].{key}: missing or not a {kind.__name__}"
    for i, volume in enumerate(spec.get("volumes") or []):
        if not isinstance(volume.get("name"), str):
            return f"spec.volumes[{i}].name: missing or not a string"
    return None


_WRONG = object()


def _field(parent: dict[str, Any], key: str, kind: type) -> Any:
    """The value (an empty `kind` when absent or null), or _WRONG when it has another type."""
    value = parent.get(key)
    if value is None:
        return kind()
    return value if isinstance(value, kind) and not (kind is int and isinstance(value, bool)) else _WRONG


def _list_of(parent: dict[str, Any], key: str, kind: type) -> bool:
    items = _field(parent, key, list)
    return items is not _WRONG and all(isinstance(i, kind) for i in items)


def allowed(request: Request, *, warnings: list[str] | None = None) -> dict[str, Any]:
    """Admit unchanged: the answer for whatever we do not mutate (not a pod creation, not opted in, no diff)."""
    return _review(request, {"allowed": True}, warnings)


def patched(request: Request, original: dict[str, Any], mutated: dict[str, Any], *, warnings: list[str] | None = None) -> dict[str, Any]:
    """Allowed with the diff of the two pods; no patch at all when they are equal."""
    ops = diff(original, mutated)
    if not ops:
        return allowed(request, warnings=warnings)
    body = {"allowed": True, "patchType": "JSONPatch", "patch": base64.b64encode(orjson.dumps(ops)).decode()}
    return _review(request, body, warnings)


def diff(original: Any, mutated: Any, path: str = "") -> list[dict[str, Any]]:
    """RFC 6902 operations that turn `original` into `mutated`, as a diff of the two documents.

    Subtrees that `mutated` shares with `original` (the core copies on write) are skipped by
    identity; added and removed members are one op each, and so are items put in front of or
    after a shared list; other lists that grew or shrank are left to jsonpatch's list diff (as controller-runtime's PatchResponseFromRaw leaves it to its diff).
    """
    if original is mutated:
        return []
    if isinstance(original, dict) and isinstance(mutated, dict):
        removed = sorted([k for k in original if k not in mutated])
        added = sorted([k for k in mutated if k not in original])
        # Only members whose values are not the same object are visited: most of a pod is shared.
        changed = sorted([k for k, v in original.items() if mutated.get(k, v) is not v])
        ops: list[dict[str, Any]] = [{"op": "remove", "path": f"{path}/{_escape(k)}"} for k in removed]
        ops += [{"op": "add", "path": f"{path}/{_escape(k)}", "value": mutated[k]} for k in added]
        for key in changed:
            ops += diff(original[key], mutated[key], f"{path}/{_escape(key)}")
        return ops
    if isinstance(original, list) and isinstance(mutated, list):
        if len(original) == len(mutated):
            return [op for i, (a, b) in enumerate(zip(original, mutated)) for op in diff(a, b, f"{path}/{i}")]
        grown = len(mutated) - len(original)
        if grown > 0 and all(a is b for a, b in zip(original, mutated[grown:])):  # items put in front
            return [{"op": "add", "path": f"{path}/{i}", "value": mutated[i]} for i in range(grown)]
        if grown > 0 and all(a is b for a, b in zip(original, mutated)):  # items appended
            return [{"op": "add", "path": f"{path}/{i}", "value": mutated[i]} for i in range(len(original), len(mutated))]
        return _jsonpatch(original, mutated, path)
    if type(original) is type(mutated) and original == mutated:  # 1 and True are not equal in JSON
        return []
    return [{"op": "replace", "path": path, "value": mutated}]


def _jsonpatch(src: list[Any], dst: list[Any], path: str) -> list[dict[str, Any]]:
    """jsonpatch's diff of two lists, its paths moved under `path`."""
    ops = jsonpatch.JsonPatch.from_diff({"v": src}, {"v": dst}, dumps=_dumps).patch
    for op in ops:
        for field in ("path", "from"):
            if field in op:
                op[field] = path + op[field][len("/v"):]
    return ops


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # e.g. integers beyond 64 bits, which orjson refuses
        return json.dumps(value)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def denied(request: Request, message: str, *, code: int = 403) -> dict[str, Any]:
    """Refuse the pod creation, kubectl shows `message`; 400 for a pod we cannot read, 403 for a refused opt-in."""
    status = {"code": code, "message": message, "reason": "Forbidden" if code == 403 else "BadRequest"}
    return _review(request, {"allowed": False, "status": status}, None)


def _review(request: Request, response: dict[str, Any], warnings: list[str] | None) -> dict[str, Any]:
    response = {"uid": request.uid, **response}
    if warnings:
        response["warnings"] = warnings
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}
