"""What the app reads: numbered status events built from the election's `View` (pure, no I/O).

Every change of (leader, is_leader, term, fencing token) gets the next sequence number and goes
into a short history, so SSE subscribers receive each change once, in order, and can resume with
`Last-Event-ID`. Reads call `publish()` first, so an answer is never older than the live view.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
from typing import Any, Optional

from elector.election import clock as clocks
from elector.election import loop as election
from elector.election import record

__all__ = ["Board", "Event"]

HISTORY = 256


@dataclasses.dataclass(frozen=True)
class Event:
    id: int
    payload: dict[str, Any]


class Board:
    """Sequence-numbered status events, plus waiting for the next one."""

    def __init__(self, clock: clocks.Clock) -> None:
        self.clock = clock
        self.seq = 0
        self._key: Optional[tuple[object, ...]] = None
        self._last_update: Optional[datetime.datetime] = None
        self._history: collections.deque[Event] = collections.deque(maxlen=HISTORY)
        self._changed = asyncio.Event()

    def publish(self, view: election.View) -> bool:
        """Record `view` as an event if it differs from the last one; True if it did."""
        if not view.observed or view.key() == self._key:
            return False
        self._key = view.key()
        self.seq += 1
        self._last_update = self.clock.wall()
        self._history.append(Event(self.seq, self.payload(view)))
        self._changed.set()
        self._changed = asyncio.Event()
        return True

    def payload(self, view: election.View) -> dict[str, Any]:
        """The JSON body of `GET /` and of each SSE event (NAIS fields first; `{}`-like before any result)."""
        body: dict[str, Any] = {}
        if view.leader:
            body["name"] = view.leader
        if self._last_update is not None:
            body["last_update"] = record.format_micro_time(self._last_update)
        body["is_leader"] = view.is_leader
        body["term"] = view.term
        body["fencing_token"] = view.fencing_token
        body["valid_until"] = None
        if view.valid_until is not None:
            left = view.valid_until - self.clock.now()
            body["valid_until"] = record.format_micro_time(self.clock.wall() + datetime.timedelta(seconds=left))
        body["id"] = self.seq
        return body

    def since(self, after: int) -> list[Event]:
        """Events with id > `after` still in the history (all of them if `after` is older than it)."""
        return [event for event in self._history if event.id > after]

    async def wait(self, after: int, timeout: float) -> bool:
        """Wait until an event newer than `after` exists, at most `timeout`; True if one does."""
        deadline = self.clock.now() + timeout
        while self.seq <= after:
            if not await clocks.wait_until(self.clock, self._changed, deadline):
                return self.seq > after
        return True
