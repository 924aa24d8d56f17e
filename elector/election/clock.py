"""Time, injected: the election never reads a clock or sleeps except through a `Clock`.

`now()` is monotonic seconds (CLOCK_MONOTONIC, shared by all containers of a pod);
`wall()` is only used to stamp records and responses, never to judge expiry.
"""
from __future__ import annotations

import asyncio
import datetime
import time
from typing import Awaitable, Protocol, TypeVar

__all__ = ["Clock", "MonotonicClock", "wait_until", "race_timeout"]

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""

    def wall(self) -> datetime.datetime:
        """Timezone-aware UTC wall time (for stamps only)."""

    async def sleep(self, seconds: float) -> None:
        """Sleep on this clock."""


class MonotonicClock:
    """The real clock: `time.monotonic()` and `asyncio.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.timezone.utc)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


async def wait_until(clock: Clock, event: asyncio.Event, deadline: float) -> bool:
    """Wait for `event` or until `clock.now() >= deadline`; True if the event is set."""
    if event.is_set():
        return True
    timeout = deadline - clock.now()
    if timeout <= 0:
        return False
    waiter = asyncio.ensure_future(event.wait())
    sleeper = asyncio.ensure_future(clock.sleep(timeout))
    try:
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        sleeper.cancel()
    return event.is_set()


async def race_timeout(clock: Clock, awaitable: Awaitable[T], timeout: float) -> T:
    """Await `awaitable` but raise `asyncio.TimeoutError` after `timeout` on `clock`."""
    task = asyncio.ensure_future(awaitable)
    sleeper = asyncio.ensure_future(clock.sleep(timeout))
    try:
        await asyncio.wait({task, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        raise asyncio.TimeoutError(f"no answer within {timeout:g}s")
    finally:
        sleeper.cancel()
        if not task.done():
            task.cancel()
