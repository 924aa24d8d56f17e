"""Events on the Lease, as the event recorder conventions want them (pure: bodies and decisions, no I/O).

One Event per change of leader, recorded by the new leader: reason `LeaderElection` (client-go's, so
`--field-selector reason=LeaderElection` finds client-go's and ours), type Normal, reportingController
`kube-elector`, reportingInstance the pod, regarding the Lease, note "<pod> became leader (term N): <cause>".

events.k8s.io/v1, not core v1: it is the API Kubernetes keeps for new recorders (client-go
tools/events), the API server validates the reporting fields there, and an isomorphic repeat is a
`series`. Both APIs store the same objects: `kubectl get events` and `kubectl describe lease` show them.

Like client-go's recorders: a repeat of an identical Event (same reason, action, note, type) within
`SERIES_WINDOW` is not a new object but the next count of the first one's `series`; and every write
spends a token of a per-Lease bucket (`BURST`, refilled at `REFILL_SECONDS`, client-go's spam filter),
so a flapping election cannot flood the API server: a write without a token is dropped (a series
keeps counting and its next write carries the total).
"""
from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Optional

from elector.election import record

__all__ = ["REASON", "CONTROLLER", "EventSpec", "became_leader", "Correlator", "Decision"]

REASON = "LeaderElection"
CONTROLLER = "kube-elector"
SERIES_WINDOW = 6 * 60.0  # client-go tools/events: a series ends 6 minutes after its last occurrence
BURST = 25  # client-go's spam filter: 25 events at once per object,
REFILL_SECONDS = 300.0  # then one every 5 minutes


@dataclasses.dataclass(frozen=True)
class EventSpec:
    """What happened; `key()` is what makes two Events identical (isomorphic)."""

    action: str
    note: str
    type: str = "Normal"
    reason: str = REASON

    def key(self) -> tuple[str, str, str, str]:
        return (self.type, self.reason, self.action, self.note)


def became_leader(pod: str, *, term: int, cause: str, previous: str) -> EventSpec:
    """The Event of a new term (causes as `election.Acquisition`)."""
    if cause == "created":
        action, why = "Create", "created the Lease"
    elif cause == "handed-over":
        action, why = "Acquire", f"{previous} handed the Lease over to it"
    elif cause == "released":
        action, why = "Acquire", f"{previous} released the Lease" if previous else "the Lease was free"
    elif previous == pod:
        action, why = "Acquire", "took its own Lease back (its earlier term had run out)"
    else:
        action, why = "TakeOver", f"{previous} stopped renewing: its lease expired"
    return EventSpec(action=action, note=f"{pod} became leader (term {term}): {why}")


@dataclasses.dataclass(frozen=True)
class Decision:
    """`create` a new Event (`body`), `patch` the series of `name` (`body` is the merge patch), or `drop`."""

    verb: str
    name: str = ""
    body: Optional[dict[str, Any]] = None


@dataclasses.dataclass
class _Series:
    name: str
    count: int
    last: float


class Correlator:
    """Decides, per occurrence, what to write for Events on one Lease (monotonic `now` in seconds)."""

    def __init__(self, *, namespace: str, lease: str, instance: str) -> None:
        self.namespace = namespace
        self.lease = lease
        self.instance = instance
        self._series: dict[tuple[str, str, str, str], _Series] = {}
        self._tokens = float(BURST)
        self._refilled: Optional[float] = None

    def _take_token(self, now: float) -> bool:
        if self._refilled is not None:
            self._tokens = min(float(BURST), self._tokens + (now - self._refilled) / REFILL_SECONDS)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def decide(self, spec: EventSpec, *, lease_uid: str, now: float, wall: datetime.datetime) -> Decision:
        for key in [k for k, s in self._series.items() if now - s.last > SERIES_WINDOW]:
            del self._series[key]
        series = self._series.get(spec.key())
        if series is not None:
            series.count += 1
            series.last = now
            if not self._take_token(now):
                return Decision("drop", series.name)
            patch = {"series": {"count": series.count, "lastObservedTime": record.format_micro_time(wall)}}
            return Decision("patch", series.name, patch)
        if not self._take_token(now):
            return Decision("drop")
        name = f"{self.lease}.{int(wall.timestamp() * 1e9):x}"  # client-go's <object>.<unix nanoseconds, hex>
        self._series[spec.key()] = _Series(name, 1, now)
        return Decision("create", name, self._body(spec, name=name, lease_uid=lease_uid, wall=wall))

    def forget(self, name: str) -> None:
        """The Event `name` is gone (a 404 on its patch, e.g. after the event TTL): start a new one next time."""
        self._series = {k: s for k, s in self._series.items() if s.name != name}

    def _body(self, spec: EventSpec, *, name: str, lease_uid: str, wall: datetime.datetime) -> dict[str, Any]:
        regarding = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "namespace": self.namespace,
                     "name": self.lease}
        if lease_uid:
            regarding["uid"] = lease_uid
        return {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": self.namespace},
            "eventTime": record.format_micro_time(wall),
            "reportingController": CONTROLLER,
            "reportingInstance": self.instance[:128],
            "action": spec.action,
            "reason": spec.reason,
            "type": spec.type,
            "note": spec.note[:1024],
            "regarding": regarding,
        }
