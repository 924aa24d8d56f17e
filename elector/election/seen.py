"""What one candidate has seen of the Lease, and what follows from it on its own monotonic clock.

Pure state, no I/O: the election feeds it every Lease it reads, writes or watches, and asks it whether
another holder's claim is still valid, until when to wait, and whether a named successor is still
owed the Lease. Remote timestamps are never compared with our clock: a claim's expiry is when *we* saw
the record change plus its `leaseDurationSeconds`.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Optional

from elector.election import lock as locks
from elector.election import record as records
from elector import settings

__all__ = ["SeenLease", "Change", "FAILED_NOMINEE_LEASES"]

logger = logging.getLogger("elector.election")
FAILED_NOMINEE_LEASES = 20  # a nominee that let the Lease lie is not named again for this many lease durations


@dataclasses.dataclass(frozen=True)
class Change:
    """What one sighting changed: whether listeners must hear of it, and the holder before/after if it moved."""

    notify: bool
    record_changed: bool = False
    holder: Optional[tuple[str, str]] = None  # (previous, new) when the holder changed


class SeenLease:
    def __init__(self, config: settings.ElectionConfig) -> None:
        self.config = config
        self.identity = config.identity
        self.observed: Optional[locks.Observed] = None
        self.observed_at = 0.0  # when (our clock) the record last changed
        self.ever = False  # read (or found missing) at least once
        self.last_holder = ""  # the last non-empty holder seen (who released, when the Lease is free)
        # A Lease deleted while another's claim on it was valid (by our observation) is not recreated
        # before that claim has run out: its holder may not have seen the deletion yet.
        self.vacated_until = 0.0
        self._failed_nominees: dict[str, float] = {}

    @property
    def record(self) -> Optional[records.LeaderElectionRecord]:
        return self.observed.record if self.observed else None

    @property
    def holder(self) -> str:
        return self.observed.record.holder_identity if self.observed else ""

    def update(self, obs: Optional[locks.Observed], now: float) -> Change:
        """Note a read/written/watched Lease (None: missing); `observed_at` moves only when the record changed."""
        first = not self.ever
        self.ever = True
        before = self.observed
        if obs is None:
            if before is not None and self.held_by_other(now):
                self.vacated_until = max(self.vacated_until, self.expiry())
            if before is None and not first:
                return Change(notify=False)
            self.observed, self.observed_at = None, now
            return Change(notify=True)
        if before is not None and before.raw == obs.raw and before.record.successor == obs.record.successor:
            self.observed = obs  # same record, newer metadata: keep observed_at
            return Change(notify=first)
        self.observed, self.observed_at = obs, now
        old, new = (before.record.holder_identity if before else ""), obs.record.holder_identity
        if new and new != old:
            self.last_holder = new
        return Change(notify=True, record_changed=True, holder=(old, new) if new != old else None)

    # ---------------------------------------------------------------- claims

    def valid(self, now: float) -> bool:
        """The record seen is within its lease duration since we saw it change."""
        return self.observed is not None and now < self.expiry()

    def held_by_other(self, now: float) -> bool:
        rec = self.record
        return rec is not None and bool(rec.holder_identity) and not self.config.holds(rec) and self.valid(now)

    def expiry(self) -> float:
        assert self.observed is not None
        return self.observed_at + self.observed.record.lease_duration_seconds

    # ---------------------------------------------------------------- named successors

    def nominee_pending(self, now: float, window: float, viable: Callable[[str], bool]) -> bool:
        """A free Lease names another successor, seen less than `window` ago, still `viable`.

        A nominee that let that time pass is remembered, and named by nobody here for a while (its app may
        be unhealthy while its pod is Ready): one leaderless window, not one per handover.
        """
        rec = self.record
        if rec is None or rec.holder_identity or not rec.successor or rec.successor == self.identity:
            return False
        if not viable(rec.successor):
            return False
        if now < self.observed_at + window:
            return True
        if rec.successor not in self.passed_over(now):
            logger.warning("the named successor did not take the Lease", extra={"fields": {"successor": rec.successor}})
        self._failed_nominees[rec.successor] = now + FAILED_NOMINEE_LEASES * window
        return False

    def passed_over(self, now: float) -> set[str]:
        """Nominees that failed lately: not to be named again yet."""
        return {name for name, until in self._failed_nominees.items() if now < until}

    def waiting_for_other(self, now: float, window: float, viable: Callable[[str], bool]) -> Optional[float]:
        """Until when a follower has nothing to try: another's valid claim, or a pending nominee; else None."""
        if self.held_by_other(now):
            return self.expiry()
        if self.nominee_pending(now, window, viable):
            return self.observed_at + window
        return None
