"""Fakes for the elector's seams: a fake clock and an in-memory Lease (shared by several candidates)."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime
import heapq
import itertools
from typing import Any, AsyncIterator, Optional

from elector.election import lock as locks
from elector.election import record

EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


async def settle(rounds: int = 200) -> None:
    """Let every ready task run until the loop is idle (the fakes never do real I/O)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class FakeClock:
    """Time moves only through `advance()`; sleepers wake in deadline order."""

    def __init__(self, start: float = 1000.0) -> None:
        self._start = start
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> datetime.datetime:
        return EPOCH + datetime.timedelta(seconds=self._now - self._start)

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._counter), future))
        await future

    async def advance(self, seconds: float, *, every: Optional[float] = None, check: Any = None) -> None:
        """Move time forward, waking sleepers on the way; call `check()` after each step of `every`."""
        target = self._now + seconds
        await settle()
        while True:
            due = [s for s in self._sleepers if s[0] <= target and not s[2].done()]
            next_step = min((s[0] for s in due), default=target)
            if every is not None:
                next_step = min(next_step, self._now + every)
            next_step = min(max(next_step, self._now), target)
            self._now = next_step
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _, _, future = heapq.heappop(self._sleepers)
                if not future.done():
                    future.set_result(None)
            await settle()
            if check is not None:
                check()
            if self._now >= target:
                break


class LeaseStore:
    """One Lease object, as the API server would keep it (resourceVersion CAS, watch events)."""

    def __init__(self) -> None:
        self.spec: Optional[dict[str, Any]] = None
        self.rv = 100
        self.uid = "uid-1"
        self.writes: list[dict[str, Any]] = []
        self.successor = ""  # the elector.dev/successor annotation
        self.holder_uid = ""  # the elector.dev/holder-uid annotation
        self.hints = locks.Hints()  # the controller's annotations: kept by every write, as the API server does
        self.down = False
        self._watchers: list[asyncio.Queue[Any]] = []

    def observed(self) -> Optional[locks.Observed]:
        return self._snapshot()()

    def _snapshot(self) -> Any:
        """The Lease as it is now."""
        spec, rv = (dict(self.spec) if self.spec is not None else None), str(self.rv)
        successor, holder_uid, hints = self.successor, self.holder_uid, self.hints

        def seen() -> Optional[locks.Observed]:
            if spec is None:
                return None
            rec = dataclasses.replace(record.record_from_spec(spec), successor=successor, holder_uid=holder_uid)
            return locks.Observed(rec, record.canonical(spec), rv, self.uid, hints=hints)
        return seen

    def put(self, spec: Optional[dict[str, Any]], *, successor: str = "",
            holder_uid: str = "") -> None:
        """Write as another client would (or delete with None)."""
        self.rv += 1
        self.successor = successor
        self.holder_uid = holder_uid if spec and spec.get("holderIdentity") else ""
        if spec is None:
            self.hints = locks.Hints()
        self.spec = dict(spec) if spec is not None else None
        if spec is not None:
            self.writes.append(dict(spec))
        for queue in self._watchers:
            queue.put_nowait(self._snapshot())

    def annotate(self, hints: locks.Hints, *, successor: Optional[str] = None) -> None:
        """A metadata-only write, as the controller's merge patch: hints (and a released Lease's nominee)."""
        if self.spec is None:
            return
        self.rv += 1
        self.hints = hints
        if successor is not None:
            self.successor = successor
        for queue in self._watchers:
            queue.put_nowait(self._snapshot())

    def end_watches(self) -> None:
        """Every open watch ends as the API server ends one at its timeoutSeconds: the stream just stops."""
        for queue in self._watchers:
            queue.put_nowait(None.__class__)

    def set_down(self, down: bool) -> None:
        self.down = down
        if down:
            for queue in self._watchers:
                queue.put_nowait(StopAsyncIteration)

    async def watch(self) -> AsyncIterator[Optional[locks.Observed]]:
        if self.down:
            raise locks.LockError("connection refused")
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._watchers.append(queue)
        try:
            yield self.observed()
            while True:
                item = await queue.get()
                if item is StopAsyncIteration:
                    raise locks.LockError("watch closed")
                if item is None.__class__:
                    return
                yield item()
        finally:
            self._watchers.remove(queue)


class InMemoryLock:
    """A `lock.Lock` on a `LeaseStore`; `down`/`hang` break this client only."""

    def __init__(self, store: LeaseStore, name: str = "default/test") -> None:
        self.store = store
        self.name = name
        self.down = False
        self.hang = False
        self.deaf = False  # its watch delivers nothing (a watch being re-established)
        self._rv: Optional[int] = None
        self._written = ""  # the spec text of our last write
        self.gets = 0

    async def _check(self) -> None:
        if self.hang:
            await asyncio.get_running_loop().create_future()
        if self.down or self.store.down:
            raise locks.LockError("connection refused")

    async def get(self) -> locks.Observed:
        self.gets += 1
        await self._check()
        obs = self.store.observed()
        if obs is None:
            raise locks.LeaseNotFound(self.name)
        self._rv = self.store.rv
        return obs

    async def create(self, rec: record.LeaderElectionRecord) -> locks.Observed:
        await self._check()
        if self.store.spec is not None:
            raise locks.LeaseConflict("already exists")
        return self._write(rec)

    async def update(self, rec: record.LeaderElectionRecord) -> locks.Observed:
        await self._check()
        if self._rv is None:
            raise locks.LockError("update before get or create")
        if self.store.spec is None:
            raise locks.LeaseNotFound(self.name)
        if self._rv != self.store.rv:
            raise locks.LeaseConflict("the object has been modified")
        return self._write(rec)

    def _write(self, rec: record.LeaderElectionRecord) -> locks.Observed:
        self.store.put(record.spec_from_record(rec), successor=rec.successor,
                       holder_uid=rec.holder_uid)
        self._rv = self.store.rv
        self._written = record.canonical(record.spec_from_record(rec))
        obs = self.store.observed()
        assert obs is not None
        return obs

    async def watch(self) -> AsyncIterator[Optional[locks.Observed]]:
        await self._check()
        async for item in self.store.watch():
            if self.down:
                raise locks.LockError("connection refused")
            if not self.deaf:
                # As LeaseLock: a metadata-only change of what we last wrote becomes our base (no 409).
                if (item is not None and self._rv is not None and self._written == item.raw
                        and int(item.resource_version) > self._rv):
                    self._rv = int(item.resource_version)
                yield item

    def describe(self) -> str:
        return self.name
