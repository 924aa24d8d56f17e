"""`lock.Lock` over the API server: the only module that makes Lease calls.

HTTP 404 -> `LeaseNotFound`, 409 -> `LeaseConflict`, anything else that is not 2xx, and transport
failures -> `LockError`. Like client-go, `update` PUTs the object last read or written, so every
update carries the resourceVersion it saw (optimistic concurrency).
"""
from __future__ import annotations

import json
import random
import urllib.parse
from typing import Any, AsyncIterator, Optional

from elector import httpclient
from elector import lock as locks
from elector import record

__all__ = ["LeaseLock"]

WATCH_SECONDS = (240, 300)  # server-side watch timeout, randomised like client-go reflectors


class LeaseLock:
    def __init__(self, client: httpclient.Client, *, namespace: str, name: str) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self._collection = f"/apis/coordination.k8s.io/v1/namespaces/{urllib.parse.quote(namespace)}/leases"
        self._path = f"{self._collection}/{urllib.parse.quote(name)}"
        self._lease: Optional[dict[str, Any]] = None

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"

    async def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        try:
            response = await self.client.request(method, path, json_body=body)
        except httpclient.TransportError as exc:
            raise locks.LockError(str(exc)) from exc
        if response.status == 404:
            raise locks.LeaseNotFound(f"lease {self.describe()} not found")
        if response.status == 409:
            raise locks.LeaseConflict(_message(response))
        if not 200 <= response.status < 300:
            raise locks.LockError(f"{method} lease {self.describe()}: HTTP {response.status}: {_message(response)}")
        try:
            obj = response.json()
        except ValueError as exc:
            raise locks.LockError(f"{method} lease {self.describe()}: bad JSON") from exc
        if not isinstance(obj, dict):
            raise locks.LockError(f"{method} lease {self.describe()}: not an object")
        return obj

    async def get(self) -> locks.Observed:
        self._lease = await self._call("GET", self._path)
        return _observed(self._lease)

    async def create(self, rec: record.LeaderElectionRecord) -> locks.Observed:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.spec_from_record(rec),
        }
        self._lease = await self._call("POST", self._collection, body)
        return _observed(self._lease)

    async def update(self, rec: record.LeaderElectionRecord) -> locks.Observed:
        if self._lease is None:
            raise locks.LockError("lease not initialized, call get or create first")
        body = dict(self._lease, spec=record.spec_from_record(rec))
        self._lease = await self._call("PUT", self._path, body)
        return _observed(self._lease)

    async def watch(self) -> AsyncIterator[Optional[locks.Observed]]:
        query = urllib.parse.urlencode({
            "watch": "true",
            "fieldSelector": f"metadata.name={self.name}",
            "timeoutSeconds": str(random.randint(*WATCH_SECONDS)),
        })
        try:
            async for line in self.client.stream_lines(f"{self._collection}?{query}",
                                                       idle_timeout=WATCH_SECONDS[1] + 30):
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind in ("ADDED", "MODIFIED"):
                    yield _observed(obj)
                elif kind == "DELETED":
                    yield None
                elif kind == "ERROR":
                    raise locks.LockError(f"watch lease {self.describe()}: {obj.get('message', obj)}")
        except (httpclient.TransportError, ValueError) as exc:
            raise locks.LockError(str(exc)) from exc


def _observed(obj: dict[str, Any]) -> locks.Observed:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    return locks.Observed(
        record=record.record_from_spec(spec),
        raw=record.canonical(spec),
        resource_version=str(meta.get("resourceVersion", "")),
        uid=str(meta.get("uid", "")),
    )


def _message(response: httpclient.Response) -> str:
    try:
        return str(response.json().get("message", ""))[:300]
    except (ValueError, AttributeError):
        return response.body[:300].decode("utf-8", "replace")
