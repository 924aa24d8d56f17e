"""What the controller has seen of each election's Lease, on its own monotonic clock (pure state).

Like an elector, the controller never compares remote timestamps with its clock: a holder's claim is
valid until (when we saw the record change) + its leaseDurationSeconds. A change of holder becomes the
leader-change Event, with its cause, and tells which released nominee failed to take the Lease.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping, Optional

from elector.election import events

__all__ = ["Seen", "Sighting", "sight"]

FAILED_NOMINEE_LEASES = 20  # as the electors: a nominee that let the Lease lie is not named for this long


@dataclasses.dataclass(frozen=True)
class Seen:
    """A Lease as last seen, timed by our monotonic clock: the holder's remote timestamps are never trusted."""

    spec: str  # canonical text of the spec
    holder: str
    duration: float
    transitions: int
    successor: str  # annotation elector.dev/successor
    seen_at: float  # monotonic: when the spec last changed
    last_holder: str  # the last non-empty holder

    def valid(self, now: float) -> bool:
        return bool(self.holder) and now < self.seen_at + self.duration

    def expiry(self) -> float:
        return self.seen_at + self.duration


@dataclasses.dataclass(frozen=True)
class Sighting:
    """What one Lease change means: the new state, and the leader-change Event to record, if any."""

    seen: Seen
    event: Optional[events.EventSpec] = None  # a new term began
    failed_nominee: str = ""  # a released Lease named this pod, and another took it


def sight(before: Optional[Seen], lease: Mapping[str, Any], now: float) -> Sighting:
    """A change of holder becomes an Event with its cause; a first sight or a renewal gives none."""
    spec = lease.get("spec") or {}
    notes = (lease.get("metadata") or {}).get("annotations") or {}
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    holder = str(spec.get("holderIdentity") or "")
    if before is not None and before.spec == text:
        return Sighting(dataclasses.replace(before, successor=str(notes.get("elector.dev/successor") or "")))
    seen = Seen(spec=text, holder=holder, duration=float(spec.get("leaseDurationSeconds") or 0),
                transitions=int(spec.get("leaseTransitions") or 0),
                successor=str(notes.get("elector.dev/successor") or ""), seen_at=now,
                last_holder=holder or (before.last_holder if before else ""))
    if before is None or not holder or holder == before.holder:
        return Sighting(seen)  # first sight (no Event for a term we did not see begin), a release, a renewal
    if not before.holder:
        nominee = before.successor
        cause = "handed-over" if nominee == holder else "released"
        failed = nominee if nominee and nominee != holder else ""
        event = events.became_leader(holder, term=seen.transitions, cause=cause, previous=before.last_holder)
        return Sighting(seen, event, failed)
    event = events.became_leader(holder, term=seen.transitions, cause="expired", previous=before.holder)
    return Sighting(seen, event)
