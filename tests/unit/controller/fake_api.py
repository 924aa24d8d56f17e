"""An in-memory API server for controller.reconcile: objects by path, resourceVersions, merge patches."""
from __future__ import annotations

import copy
import itertools
from typing import Any, Optional

from controller.kube import KubeError


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


class FakeApi:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self._rv = itertools.count(100)
        self._uid = itertools.count(1)

    def _stamp(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        return obj

    def call(self, method: str, url: str, body: Any = None, *, content_type: str = "application/json",
             query: Optional[dict[str, str]] = None) -> Any:
        self.calls.append((method, url))
        if method == "GET":
            if url not in self.objects:
                raise KubeError(404, f"GET {url}: not found")
            return copy.deepcopy(self.objects[url])
        if method == "POST":
            path = f"{url}/{body['metadata']['name']}"
            if path in self.objects:
                raise KubeError(409, "exists")
            obj = copy.deepcopy(body)
            obj["metadata"]["uid"] = f"uid-{next(self._uid)}"
            self.objects[path] = self._stamp(obj)
            return copy.deepcopy(obj)
        if url not in self.objects:
            raise KubeError(404, f"{method} {url}: not found")
        current = self.objects[url]
        wanted_rv = (body or {}).get("metadata", {}).get("resourceVersion") if isinstance(body, dict) else None
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise KubeError(409, "conflict")
        if method == "PUT":
            obj = copy.deepcopy(body)
            obj["metadata"]["uid"] = current["metadata"]["uid"]
        elif method == "PATCH":
            obj = _merge(current, body)
        elif method == "DELETE":
            del self.objects[url]
            return None
        else:
            raise AssertionError(method)
        self.objects[url] = self._stamp(obj)
        return copy.deepcopy(obj)

    def get(self, url: str) -> Optional[dict[str, Any]]:
        return copy.deepcopy(self.objects[url]) if url in self.objects else None

    def delete(self, url: str) -> None:
        self.calls.append(("DELETE", url))
        self.objects.pop(url, None)

    def merge_patch(self, url: str, body: dict[str, Any]) -> Any:
        return self.call("PATCH", url, body, content_type="application/merge-patch+json")

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] != "GET"]
