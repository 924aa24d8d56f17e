"""One row per election from a `reads.Snapshot` (pure): who leads, since when, how often it changed,
how many candidates are Ready, and what looks wrong.

Times in the Lease are the leader's wall clock, compared here with this machine's: "leading for" and
"Lease expired" are as good as the two clocks agree (a Lease lasts 15 s and is renewed every 2 s at
the defaults, so only a skew of many seconds would show a wrong warning).
"""
from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Optional

from elector.election import events as electorevents
from elector.election import record
from kubectl_elector import reads

__all__ = ["Election", "summarize", "WARNINGS"]

NO_LEADER = "no leader"
EXPIRED = "Lease expired"
LEADER_NOT_READY = "leader pod not Ready"
NO_LEASE = "candidates but no Lease"
NO_CANDIDATES = "no candidates"
WARNINGS = (NO_LEADER, EXPIRED, LEADER_NOT_READY, NO_LEASE, NO_CANDIDATES)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A pod of the election; `ready` (condition Ready) is what the CANDIDATES column counts."""

    name: str
    ready: bool


@dataclasses.dataclass(frozen=True)
class Election:
    """One row of the table: the Lease's view plus what Events and pods add; None marks what is unknown
    (no Lease, Events not readable, leader's Lease expired)."""

    namespace: str
    name: str
    leader: str  # the Lease's holder ("" = none)
    term: Optional[int]  # spec.leaseTransitions (None without a Lease)
    leading_for: Optional[float]  # seconds since acquireTime, while the leader's Lease is valid
    renewed_ago: Optional[float]  # seconds since renewTime
    transitions: Optional[int]  # leader changes recorded in Events (None: Events not readable)
    transitions_since: Optional[datetime.datetime]  # the oldest of those Events (the API server keeps them 1 h by default)
    candidates: tuple[Candidate, ...]
    warnings: tuple[str, ...]

    @property
    def ready(self) -> int:
        return sum(candidate.ready for candidate in self.candidates)

    def key(self) -> tuple[object, ...]:
        """What a --watch reprints on change (not the ever-growing durations)."""
        return (self.leader, self.term, self.transitions, self.candidates, self.warnings)


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _live(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _event_count(event: dict[str, Any]) -> int:
    series = event.get("series") or {}
    return int(series.get("count") or event.get("count") or 1)


def _event_time(event: dict[str, Any]) -> Optional[datetime.datetime]:
    return record.parse_micro_time(event.get("eventTime") or event.get("firstTimestamp"))


def _transitions(events: Optional[list[dict[str, Any]]], namespace: str, name: str
                 ) -> tuple[Optional[int], Optional[datetime.datetime]]:
    if events is None:
        return None, None
    ours = [e for e in events if e.get("reportingComponent") == electorevents.CONTROLLER
            and (e.get("involvedObject") or {}).get("namespace") == namespace
            and (e.get("involvedObject") or {}).get("name") == name]
    times = [t for t in map(_event_time, ours) if t is not None]
    return sum(map(_event_count, ours)), min(times, default=None)


def _seconds(since: Optional[datetime.datetime], now: datetime.datetime) -> Optional[float]:
    return None if since is None else max(0.0, (now - since).total_seconds())


def _one(namespace: str, name: str, lease: Optional[dict[str, Any]], pods: list[dict[str, Any]],
         events: Optional[list[dict[str, Any]]], now: datetime.datetime) -> Election:
    candidates = tuple(sorted((Candidate(p["metadata"]["name"], _ready(p)) for p in pods), key=lambda c: c.name))
    warnings: list[str] = []
    leader, term, leading_for, renewed_ago = "", None, None, None
    if lease is None:
        warnings.append(NO_LEASE)
    else:
        rec = record.record_from_spec(lease.get("spec"))
        leader, term = rec.holder_identity, rec.leader_transitions
        renewed_ago = _seconds(rec.renew_time, now)
        expired = renewed_ago is None or renewed_ago > rec.lease_duration_seconds
        if not leader:
            warnings.append(NO_LEADER)
        elif expired:
            warnings.append(EXPIRED)
        else:
            leading_for = _seconds(rec.acquire_time, now)
            if candidates and not any(c.name == leader and c.ready for c in candidates):
                warnings.append(LEADER_NOT_READY)
        if not candidates:
            warnings.append(NO_CANDIDATES)
    transitions, since = _transitions(events, namespace, name)
    return Election(namespace=namespace, name=name, leader=leader, term=term, leading_for=leading_for,
                    renewed_ago=renewed_ago, transitions=transitions, transitions_since=since,
                    candidates=candidates, warnings=tuple(warnings))


def summarize(snapshot: reads.Snapshot) -> list[Election]:
    """Every election that has a Lease or a candidate, sorted by namespace and name."""
    leases = {(lease["metadata"]["namespace"], lease["metadata"]["name"]): lease for lease in snapshot.leases}
    pods: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for pod in snapshot.pods:
        name = (pod["metadata"].get("labels") or {}).get(reads.ELECTION_LABEL, "")
        if name and _live(pod):
            pods.setdefault((pod["metadata"]["namespace"], name), []).append(pod)
    return [_one(ns, name, leases.get((ns, name)), pods.get((ns, name), []), snapshot.events, snapshot.taken)
            for ns, name in sorted(leases.keys() | pods.keys())]
