import asyncio
import random
from typing import Any, AsyncIterator, Callable

import pytest

from elector.election import loop as election
from elector import settings

from tests.elector.elector_fakes import FakeClock, InMemoryLock, LeaseStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> LeaseStore:
    return LeaseStore()


@pytest.fixture
async def candidates(clock: FakeClock, store: LeaseStore) -> AsyncIterator[Callable[..., Any]]:
    """Factory: start a candidate `name` on the shared store; all are cancelled at the end."""
    tasks: list[asyncio.Task[None]] = []

    def start(name: str, *, lease: float = 15, renew: float = 10, retry: float = 2, run: bool = True,
              uid: str = "", **kw: Any):
        config = settings.ElectionConfig(name="test", namespace="default", identity=name,
                                         lease_duration=lease, renew_deadline=renew, retry_period=retry, uid=uid)
        lock = InMemoryLock(store)
        elector = election.LeaderElector(config, lock, clock=clock, rng=random.Random(hash(name)), **kw)
        if run:
            tasks.append(asyncio.ensure_future(elector.run()))
        return elector

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
