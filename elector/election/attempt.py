"""One attempt at the Lease: client-go's `tryAcquireOrRenew`, as a function that says what happened.

The election applies the outcome (a renewal extends our claim, a write that began a term starts one);
this module only talks to the lock and reads what the candidate has seen (`seen.SeenLease`).
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Awaitable, Callable, Optional

from elector.election import clock as clocks
from elector.election import lock as locks
from elector.ops import logs
from elector.ops import metrics as metricses
from elector.election import record
from elector.election import seen as seens
from elector import settings

__all__ = ["Outcome", "try_acquire_or_renew"]

logger = logging.getLogger("elector.election")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """`held`: we hold the Lease after the attempt. `written`: our write, sent at `sent`; it continues our
    term (`renewed`) or begins one for `cause` ("created", "released", "handed-over", "expired")."""

    held: bool
    written: Optional[locks.Observed] = None
    sent: float = 0.0
    renewed: bool = False
    cause: str = ""
    previous: str = ""


async def try_acquire_or_renew(
    lock: locks.Lock,
    config: settings.ElectionConfig,
    clock: clocks.Clock,
    seen: seens.SeenLease,
    *,
    leading: bool,
    observe: Callable[[Optional[locks.Observed]], None],
    nominee_pending: Callable[[float], bool],
    metrics: metricses.Metrics,
) -> Outcome:
    """Raises `LockError` on API failure; a lost race (409, a valid foreign claim) is `held=False`."""

    async def call(awaitable: Awaitable[locks.Observed]) -> locks.Observed:
        try:
            return await clocks.race_timeout(clock, awaitable, config.request_timeout)
        except asyncio.TimeoutError as exc:
            raise locks.LockError(str(exc)) from exc

    # 1. Fast path: we lead and our claim holds: PUT the cached Lease with a new renewTime.
    if leading and seen.observed is not None:
        sent = clock.now()
        rec = dataclasses.replace(seen.observed.record, renew_time=clock.wall())
        try:
            return Outcome(True, await call(lock.update(rec)), sent, renewed=True)
        except locks.LockError as exc:
            logger.debug("optimistic renew failed, trying the slow path", extra={"fields": logs.error_fields(exc)})
            metrics.slowpath += 1

    # 2. Get the Lease, or create it.
    try:
        obs = await call(lock.get())
    except locks.LeaseNotFound:
        observe(None)
        if clock.now() < seen.vacated_until:
            return Outcome(False)  # deleted under a holder whose claim may still run: wait it out
        sent = clock.now()
        now_wall = clock.wall()
        rec = record.LeaderElectionRecord(holder_identity=config.identity,
                                          lease_duration_seconds=int(config.lease_duration),
                                          acquire_time=now_wall, renew_time=now_wall, leader_transitions=0,
                                          holder_uid=config.uid)
        try:
            return Outcome(True, await call(lock.create(rec)), sent, cause="created")
        except locks.LeaseConflict:
            return Outcome(False)

    # 3. Record what we saw; its change restarts the expiry countdown.
    observe(obs)
    now = clock.now()
    held = obs.record.holder_identity

    # 4. Held by someone else and not expired (by our observation), or left to a named successor: not now.
    mine = config.holds(obs.record)
    if held and not mine and seen.valid(now):
        return Outcome(False)
    if not held and nominee_pending(now):
        return Outcome(False)
    if not held and now < seen.vacated_until:
        return Outcome(False)  # recreated (by the controller) after a deletion under a claim that may still run
    if leading and not mine:
        return Outcome(False)
    if obs.record.preferred_holder and obs.record.preferred_holder != config.identity and obs.record.strategy:
        return Outcome(False)  # Coordinated Leader Election asks us to leave this Lease to another

    # 5. Build our record: keep the term if we are continuing it, else start a new one.
    now_wall = clock.wall()
    continuing = leading and mine
    rec = record.LeaderElectionRecord(
        holder_identity=config.identity,
        lease_duration_seconds=int(config.lease_duration),
        acquire_time=obs.record.acquire_time if continuing else now_wall,
        renew_time=now_wall,
        leader_transitions=obs.record.leader_transitions if continuing else obs.record.leader_transitions + 1,
        strategy=obs.record.strategy,
        preferred_holder=obs.record.preferred_holder,
        holder_uid=config.uid,
    )

    # 6. Update with the resourceVersion just read: a 409 means someone wrote first.
    previous = held or seen.last_holder  # before the write: our own write's watch event moves it
    cause = "expired" if held else ("handed-over" if obs.record.successor == config.identity else "released")
    sent = clock.now()
    try:
        written = await call(lock.update(rec))
    except locks.LeaseConflict:
        return Outcome(False)
    return Outcome(True, written, sent, renewed=continuing, cause=cause, previous=previous)
