"""`lock.Lock` over the API server: the only module that makes Lease calls.

HTTP 404 -> `LeaseNotFound`, 409 -> `LeaseConflict`, anything else that is not 2xx, and transport
failures -> `LockError`. Like client-go, `update` PUTs the object last read or written, so every
update carries the resourceVersion it saw (optimistic concurrency).

Every write carries the managed-by label (`MANAGED_BY`, how `kubectl elector` lists the Leases); the
electors write no ownerReferences (the controller owns the Lease through its Role). A watch event that
changed only the metadata of the object we last wrote (the controller's hints, the garbage collector
pruning an owner) becomes the base of our next update, so those writes cost the leader no 409.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import random
import urllib.parse
from typing import Any, AsyncIterator, Optional

from elector.kube import httpclient
from elector.election import lock as locks
from elector.election import record

__all__ = ["LeaseLock", "MANAGED_BY"]

logger = logging.getLogger("elector.leaselock")
WATCH_SECONDS = (240, 300)  # server-side watch timeout, randomised like client-go reflectors
SUCCESSOR_ANNOTATION = "elector.dev/successor"  # record.successor: written by a release, cleared by the next term
HOLDER_UID_ANNOTATION = "elector.dev/holder-uid"  # record.holder_uid: written with every holder, cleared by a release
# Written by the kube-elector controller only (lock.Hints); our writes keep whatever they find.
NEXT_LEADER_ANNOTATION = "elector.dev/next-leader"
HAND_OVER_TO_ANNOTATION = "elector.dev/hand-over-to"
MANAGED_BY = ("app.kubernetes.io/managed-by", "kube-elector")  # label on every Lease we write


class LeaseLock:
    """The election's lock on a real Lease: the one place that speaks the Lease's wire format."""

    def __init__(self, client: httpclient.Client, *, namespace: str, name: str) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self._collection = f"/apis/coordination.k8s.io/v1/namespaces/{urllib.parse.quote(namespace)}/leases"
        self._path = f"{self._collection}/{urllib.parse.quote(name)}"
        self._lease: Optional[dict[str, Any]] = None  # the base of `update`: last read or written

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
        if response.status == 403:
            raise locks.Forbidden(f"{method} lease {self.describe()}: forbidden: {_message(response)}")
        if not 200 <= response.status < 300:
            raise locks.LockError(f"{method} lease {self.describe()}: HTTP {response.status}: {_message(response)}")
        try:
            obj = response.json()
        except ValueError as exc:
            raise locks.LockError(f"{method} lease {self.describe()}: bad JSON") from exc
        if not isinstance(obj, dict):
            raise locks.LockError(f"{method} lease {self.describe()}: not an object")
        return obj

    def _keep(self, lease: dict[str, Any]) -> locks.Observed:
        self._lease = lease
        return self._observed(lease)

    async def get(self) -> locks.Observed:
        return self._keep(await self._call("GET", self._path))

    async def create(self, rec: record.LeaderElectionRecord) -> locks.Observed:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.spec_from_record(rec),
        }
        return self._keep(await self._call("POST", self._collection, _with_notes(_labelled(body), rec)))

    async def update(self, rec: record.LeaderElectionRecord) -> locks.Observed:
        if self._lease is None:
            raise locks.LockError("lease not initialized, call get or create first")
        body = _labelled(dict(self._lease, spec=record.spec_from_record(rec)))
        return self._keep(await self._call("PUT", self._path, _with_notes(body, rec)))

    def _seen(self, lease: dict[str, Any]) -> None:
        """Note a watched object: the base of `update` if only its metadata changed."""
        rv = str((lease.get("metadata") or {}).get("resourceVersion", ""))
        base = self._lease
        if (base is not None and _uid(lease) == _uid(base) and locks.newer(rv, _version(base))
                and record.canonical(lease.get("spec")) == record.canonical(base.get("spec"))):
            self._lease = lease

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
                    self._seen(obj)
                    yield self._observed(obj)
                elif kind == "DELETED":
                    yield None
                elif kind == "ERROR":
                    raise locks.LockError(f"watch lease {self.describe()}: {obj.get('message', obj)}")
        except (httpclient.TransportError, ValueError) as exc:
            raise locks.LockError(str(exc)) from exc

    def _observed(self, obj: dict[str, Any]) -> locks.Observed:
        spec = obj.get("spec") or {}
        notes = (obj.get("metadata") or {}).get("annotations") or {}
        return locks.Observed(
            record=dataclasses.replace(record.record_from_spec(spec),
                                       successor=str(notes.get(SUCCESSOR_ANNOTATION, "")),
                                       holder_uid=str(notes.get(HOLDER_UID_ANNOTATION, ""))),
            raw=record.canonical(spec),
            resource_version=_version(obj),
            uid=_uid(obj),
            hints=locks.Hints(next_leader=str(notes.get(NEXT_LEADER_ANNOTATION, "")),
                              hand_over_to=str(notes.get(HAND_OVER_TO_ANNOTATION, ""))),
        )


def _labelled(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with our managed-by label added, its other labels kept (`body` itself is not changed)."""
    meta = dict(body.get("metadata") or {})
    meta["labels"] = {**(meta.get("labels") or {}), MANAGED_BY[0]: MANAGED_BY[1]}
    return dict(body, metadata=meta)


def _with_notes(body: dict[str, Any], rec: record.LeaderElectionRecord) -> dict[str, Any]:
    """`body` with our annotations as `rec` says (the successor; the holder's uid), others kept as found."""
    meta = dict(body.get("metadata") or {})
    ours = {SUCCESSOR_ANNOTATION: rec.successor, HOLDER_UID_ANNOTATION: rec.holder_uid if rec.holder_identity else ""}
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in ours}
    notes.update({k: v for k, v in ours.items() if v})
    if notes:
        meta["annotations"] = notes
    else:
        meta.pop("annotations", None)
    return dict(body, metadata=meta)


def _version(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _uid(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid", ""))


def _message(response: httpclient.Response) -> str:
    try:
        return str(response.json().get("message", ""))[:300]
    except (ValueError, AttributeError):
        return response.body[:300].decode("utf-8", "replace")
