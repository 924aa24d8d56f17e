"""Every event of one Lease, with its local monotonic receipt time, and what they add up to: who held
it in turn, and the intervals when nobody validly held it.

Unlike demo/observe.LeaseWatch (holder changes, one watch), this keeps every event, renewals too (for
the holder's expiry), the `elector.dev/successor` annotation a releasing leader writes, and it
re-reads and watches again when the stream ends or breaks (a restarted API server, the server's
watch timeout), so it lasts through a fault and a long benchmark.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

__all__ = ["LeaseEvent", "LeaseTimeline", "new_holders", "leaderless_gaps", "SUCCESSOR"]

SUCCESSOR = "elector.dev/successor"  # Lease annotation: the pod a releasing leader names to take over
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"


@dataclasses.dataclass(frozen=True)
class LeaseEvent:
    at: float  # time.monotonic() when it arrived
    holder: str  # "" when released (or the Lease is gone)
    successor: str  # the elector.dev/successor annotation, "" without one
    expires: float | None  # renewTime + leaseDurationSeconds on our monotonic clock; None when not held


def _event(lease: dict[str, Any] | None) -> LeaseEvent:
    now, wall = time.monotonic(), time.time()
    spec = (lease or {}).get("spec") or {}
    notes = ((lease or {}).get("metadata") or {}).get("annotations") or {}
    holder = str(spec.get("holderIdentity") or "")
    expires = None
    if holder and spec.get("renewTime"):
        renewed = datetime.datetime.fromisoformat(spec["renewTime"].replace("Z", "+00:00")).timestamp()
        expires = now + renewed + float(spec.get("leaseDurationSeconds") or 0) - wall
    return LeaseEvent(now, holder, str(notes.get(SUCCESSOR, "")), expires)


class LeaseTimeline(threading.Thread):
    """`with LeaseTimeline(cluster.plane.client, namespace, name) as timeline:` (returns once the Lease
    was read); `timeline.events` grows as events arrive. `on_event` is called in the watch thread."""

    def __init__(self, client: Callable[[], httpx.Client], namespace: str, name: str, *,
                 on_event: Callable[[LeaseEvent], None] | None = None) -> None:
        super().__init__(daemon=True, name=f"lease-timeline-{name}")
        self._client, self._on_event = client, on_event
        self.path, self.name = LEASES.format(namespace=namespace), name
        self.events: list[LeaseEvent] = []
        self.reconnects = 0
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self._api: httpx.Client | None = None

    def __enter__(self) -> LeaseTimeline:
        self.start()
        if not self.ready.wait(30):
            raise TimeoutError(f"Lease {self.path}/{self.name} could not be read")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        if self._api is not None:
            self._api.close()  # ends the blocked read of the stream
        self.join(5)

    @property
    def holder(self) -> str:
        return self.events[-1].holder if self.events else ""

    def between(self, start: float, end: float) -> list[LeaseEvent]:
        return [e for e in self.events if start <= e.at <= end]

    def run(self) -> None:
        with self._client() as api:
            self._api = api
            while not self._stopping.is_set():
                try:
                    self._read_and_watch(api)
                except (httpx.HTTPError, RuntimeError, ValueError, KeyError, OSError):
                    pass  # the API server restarting, or the client closed by stop()
                self.reconnects += 1
                self._stopping.wait(0.2)

    def _read_and_watch(self, api: httpx.Client) -> None:
        reply = api.get(f"{self.path}/{self.name}")
        if reply.status_code == 404:
            self._record(None)
            version = api.get(self.path).raise_for_status().json()["metadata"]["resourceVersion"]
        else:
            lease = reply.raise_for_status().json()
            self._record(lease)
            version = lease["metadata"]["resourceVersion"]
        self.ready.set()
        params = {"watch": "true", "fieldSelector": f"metadata.name={self.name}", "resourceVersion": version,
                  "timeoutSeconds": "240"}
        with api.stream("GET", self.path, params=params, timeout=httpx.Timeout(10, read=None)) as stream:
            for line in stream.iter_lines():
                event = json.loads(line)
                if event["type"] == "ERROR":
                    return  # e.g. 410 Gone: read again
                if event["type"] != "BOOKMARK":
                    self._record(None if event["type"] == "DELETED" else event["object"])

    def _record(self, lease: dict[str, Any] | None) -> None:
        event = _event(lease)
        self.events.append(event)
        if self._on_event is not None:
            self._on_event(event)


# ------------------------------------------------------------------ what the events add up to


def new_holders(events: Sequence[LeaseEvent], start: float, end: float) -> list[str]:
    """Each holder that took the Lease in [start, end] and was not the last holder before it: the
    leader changes. A release re-taken by the same pod name is no change (a StatefulSet pod re-made
    under its old name and taking over after an empty Lease counts as none: the Lease cannot tell)."""
    last = next((e.holder for e in reversed(events) if e.at < start and e.holder), "")
    changes = []
    for event in events:
        if start <= event.at <= end and event.holder and event.holder != last:
            changes.append(event.holder)
            last = event.holder
    return changes


def leaderless_gaps(events: Sequence[LeaseEvent], start: float, end: float) -> list[float]:
    """Each interval within [start, end] with no valid holder: from a release (or the holder's expiry,
    if that came first: a holder killed without releasing) to the next acquisition, in seconds."""
    intervals: list[tuple[float, float]] = []
    since: float | None = None  # start of the current gap
    expires: float | None = None  # of the current holder
    for event in events:
        if not event.holder:
            if since is None:
                since = min(event.at, expires) if expires is not None else event.at
            expires = None
            continue
        if since is None and expires is not None and event.at > expires:
            since = expires  # taken over after the last holder's claim ran out
        if since is not None:
            intervals.append((since, event.at))
            since = None
        expires = event.expires
    if since is None and expires is not None and expires < end:
        since = expires  # held by a pod that stopped renewing, and nobody took it yet
    if since is not None:
        intervals.append((since, end))
    return [min(b, end) - max(a, start) for a, b in intervals if min(b, end) > max(a, start)]
