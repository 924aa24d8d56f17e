"""The election: client-go's acquire/renew algorithm on a `lock.Lock`, with a tighter safety bound.

Rules (see docs/elector.md):
- Expiry of someone else's Lease = when *we* saw its record change (monotonic clock) + the record's
  `leaseDurationSeconds`. Remote timestamps are never compared with our clock.
- We claim leadership only until (send time of our last successful write + renew deadline), and
  step down the moment that passes, whatever the API server does.
- Followers watch the Lease: a release (holder "") or a deletion wakes them at once; otherwise they
  sleep until the observed expiry, or poll every retry period (with jitter) while the watch is down.
  Once the observed Lease has expired without a renewal they could see, they report no leader.
- "Us" is our identity and our Pod's uid (configs.ElectionConfig.holds): a replacement pod with our
  name never takes our term for its own.
- Rollouts (handover.py, hints.py): a leader hands over, naming its successor in the release, when the
  controller's hint on the Lease names a Ready pod of a newer revision, or when asked to; a release names
  the controller's next leader; the other followers leave a named successor the Lease for a lease
  duration (from when they saw the release, seen.py); a nominee that will not lead now declines at once.
- We never stop competing: losing leadership just makes us a follower again.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from typing import Callable, Optional

from elector.election import attempt
from elector.election import clock as clocks
from elector.election import handover
from elector.election import hints
from elector.election import lock as locks
from elector.ops import logs
from elector.ops import metrics as metricses
from elector.election import record
from elector.election import seen
from elector.election import term as terms
from elector.election import config as configs
from elector.election import timings

__all__ = ["LeaderElector", "View", "Acquisition"]

logger = logging.getLogger("elector.election")


@dataclasses.dataclass(frozen=True)
class View:
    """What this candidate knows at one instant (computed live, never cached)."""

    leader: str  # "" = no known leader
    is_leader: bool
    term: Optional[int]  # spec.leaseTransitions of the current term
    fencing_token: Optional[str]  # resourceVersion of the write that began our term (leader only)
    valid_until: Optional[float]  # monotonic deadline of our claim (leader only)
    observed: bool  # the Lease has been read (or found missing) at least once

    def key(self) -> tuple[object, ...]:
        """The part whose change is an event (valid_until moves on every renewal and is not one)."""
        return (self.leader, self.is_leader, self.term, self.fencing_token)


@dataclasses.dataclass(frozen=True)
class Acquisition:
    """How a term of ours began, for the Event: `cause` is "created" (no Lease), "released" (free
    Lease; `previous` is the last holder we saw, if any) or "expired" (`previous` stopped renewing)."""

    term: int
    cause: str
    previous: str
    lease_uid: str


Listener = Callable[[View], object]


class LeaderElector:
    """Competes for the Lease behind `lock` forever (until cancelled); see the module docstring."""

    def __init__(
        self,
        config: configs.ElectionConfig,
        lock: locks.Lock,
        *,
        clock: Optional[clocks.Clock] = None,
        rng: Optional[random.Random] = None,
        metrics: Optional[metricses.Metrics] = None,
        eligible: Callable[[], bool] = lambda: True,
        grace: float = 0.0,
    ) -> None:
        """`grace`: --release-timeout; a handover the app did not ask for waits up to this for its POST /release."""
        self.config = config
        self.lock = lock
        self.clock: clocks.Clock = clock or clocks.MonotonicClock()
        self.metrics = metrics or metricses.Metrics()
        self._rng = rng or random.Random()
        self._eligible = eligible
        self._succession = hints.LeaseHints(config.identity)  # the controller's picks, from the Lease
        self._handover = handover.Handover(self._succession, grace)
        self._forbidden_logged = False
        self._listeners: list[Listener] = []
        self._acquisition_listeners: list[Callable[[Acquisition], object]] = []
        self._seen = seen.SeenLease(config)  # what we observed of the Lease, and when
        # Our own term.
        self._term = terms.Term()  # our own term: leading, claim, next write, number, fencing token
        self._not_before = 0.0  # no acquisition before this (after a voluntary release)
        self._watch_ok = False
        self._wakeup = asyncio.Event()  # followers: something in the Lease changed
        self._changed = asyncio.Event()  # anything in our state changed
        self._release_requested = asyncio.Event()
        self._leader_wake = asyncio.Event()  # the leader: a release was asked for, or the candidates changed

    # ---------------------------------------------------------------- reading the state

    def view(self) -> View:
        """Live view: `is_leader` is re-checked against the monotonic clock at every call."""
        now = self.clock.now()
        is_leader = self._term.claims(now)
        holder = self._seen.holder
        if holder == self.config.identity and not is_leader:  # (whatever the uid says: the app compares names)
            holder = ""  # never let the app read its own name unless it really leads
        if holder and not is_leader and not self._seen.valid(now):
            holder = ""  # expired without a renewal we could see (API unreachable, leader gone)
        rec = self._seen.record
        term = rec.leader_transitions if (rec is not None and holder) else None
        if is_leader:
            term = self._term.number
        return View(
            leader=self.config.identity if is_leader else holder,
            is_leader=is_leader,
            term=term,
            fencing_token=self._term.fencing_token if is_leader else None,
            valid_until=self._term.valid_until if is_leader else None,
            observed=self._seen.ever,
        )

    def add_listener(self, listener: Listener) -> None:
        """`listener(view)` is called synchronously after every change of state."""
        self._listeners.append(listener)

    def add_acquisition_listener(self, listener: Callable[[Acquisition], object]) -> None:
        """`listener(acquisition)` is called synchronously when a term of ours begins."""
        self._acquisition_listeners.append(listener)

    def holds_lease(self) -> bool:
        """True if the last record we saw names us as holder (we may have to release it)."""
        rec = self._seen.record
        return rec is not None and self.config.holds(rec)

    def healthy(self, tolerance: float) -> bool:
        """False only if we still believe we lead long after our claim expired (a wedged loop)."""
        return not (self._term.leading and self.clock.now() > self._term.valid_until + tolerance)

    # ---------------------------------------------------------------- control from outside

    def resign(self) -> None:
        """Stop claiming leadership at once, but keep the Lease renewed (until `release()`)."""
        if not self._term.resigning:
            self._term.resigning = True
            logger.info("resigning: no longer claiming leadership", extra={"fields": {"leading": self._term.leading}})
            self._notify()

    def request_release(self) -> None:
        """Ask the running loop to hand the Lease over now (app's POST /release while running)."""
        self._release_requested.set()
        self.candidates_changed()

    def candidates_changed(self) -> None:
        """The controller's hints changed: the leader may hand over, followers re-check a nominee."""
        self._leader_wake.set()
        self._wakeup.set()

    async def release(self, successor: Optional[str] = None) -> bool:
        """Release the Lease if (fresh read) we hold it: client-go's release record, naming `successor`
        (default: the best one `succession` knows, if any). Call after `run()` ends.

        Returns True if a release was written.
        """
        was_leading = self._term.leading
        self._term.resigning = True
        if self._term.leading:
            self._step_down("releasing")
        else:
            self._notify()
        try:
            obs = await clocks.race_timeout(self.clock, self.lock.get(), self.config.request_timeout)
            if not self.config.holds(obs.record):
                logger.info("not releasing: the Lease is held by someone else",
                            extra={"fields": {"holder": obs.record.holder_identity}})
                return False
            self._succession.update(obs)  # the freshest hint, should our watch lag (a release may come at once)
            if successor is None:
                successor = self._succession.successor(self._seen.passed_over(self.clock.now()))
            rec = record.released(obs.record, now=self.clock.wall(), successor=successor)
            written = await clocks.race_timeout(self.clock, self.lock.update(rec), self.config.request_timeout)
        except (locks.LockError, asyncio.TimeoutError) as exc:
            logger.warning("release failed", extra={"fields": {**logs.error_fields(exc), "was_leading": was_leading}})
            return False
        self._observe(written)
        logger.info("released the Lease", extra={"fields": {"was_leading": was_leading, "successor": successor}})
        return True

    # ---------------------------------------------------------------- the loop

    async def run(self) -> None:
        """Compete until cancelled. Never returns on loss of leadership."""
        watcher = asyncio.ensure_future(self._watch_loop())
        guard = asyncio.ensure_future(self._deadline_loop())
        try:
            while True:
                if self._term.leading:
                    await self._lead_once()
                else:
                    await self._follow_once()
        finally:
            watcher.cancel()
            guard.cancel()
            for task in (watcher, guard):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _follow_once(self) -> None:
        now = self.clock.now()
        if self._release_requested.is_set():
            self._release_requested.clear()  # nothing to hand over
        if now < self._not_before or self._term.resigning or not self._eligible() or self._succession.leaving():
            await self._decline()
            await self._sleep_follower(max(self._not_before, now + self._jittered()))
            return
        waiting = self._waiting_for_other(now) if self._watch_ok else None
        if waiting is not None:
            await self._sleep_follower(waiting)  # the watch tells us about changes
            return
        try:
            acquired = await self._try_acquire_or_renew()
        except locks.LockError as exc:
            self.metrics.acquire_errors += 1
            if isinstance(exc, locks.Forbidden) and not self._forbidden_logged:
                self._forbidden_logged = True  # once: it lasts until the controller has made the Lease and Role
                logger.warning("waiting for the kube-elector controller to create the Lease and its Role",
                               extra={"fields": logs.error_fields(exc)})
            logger.debug("acquire attempt failed", extra={"fields": logs.error_fields(exc)})
            await self._sleep_follower(self.clock.now() + self._jittered())
            return
        if acquired:
            return
        now = self.clock.now()
        waiting = self._waiting_for_other(now) if self._watch_ok else None
        await self._sleep_follower(waiting if waiting is not None else now + self._jittered())

    async def _lead_once(self) -> None:
        # Look every retry period (the app's health, a requested handover), write every renew interval.
        look = min(self._term.next_renew, self.clock.now() + self.config.retry_period)
        await clocks.wait_until(self.clock, self._leader_wake, self._handover.wake_at(look))
        self._leader_wake.clear()
        if not self._term.leading:
            return
        requested = self._release_requested.is_set()
        self._release_requested.clear()
        now = self.clock.now()
        step = self._handover.decide(now, release_requested=requested, eligible=self._eligible(),
                                     passed_over=self._seen.passed_over(now))
        if step.wait_for_app:
            logger.info("handing over once the app releases", extra={"fields": {"timeout_s": self._handover.grace}})
            self.resign()
        if step.reason:
            logger.info("handing over", extra={"fields": {"reason": step.reason, "successor": step.successor}})
            self._not_before = self.clock.now() + self.config.lease_duration
            await self.release(step.successor)
            self._term.resigning = False
            self._handover.done()
            self._notify()
            return
        if self.clock.now() < self._term.next_renew and self._still_ours():
            return  # nothing to write yet: the Lease names us and the renew interval has not passed
        try:
            renewed = await self._try_acquire_or_renew()
        except locks.LockError as exc:
            self.metrics.renew_errors += 1
            left = self._term.valid_until - self.clock.now()
            logger.warning("renew failed", extra={"fields": {**logs.error_fields(exc), "claim_left_s": round(left, 3)}})
            # retry after a retry period, or step down (the deadline loop does it) when the claim ends
            self._term.next_renew = self.clock.now() + self.config.retry_period
            return
        if not renewed and self._term.leading:
            self._step_down("the Lease was taken by someone else")

    async def _decline(self) -> None:
        """Named successor while we will not lead (sitting out after a release, unhealthy, leaving): clear the
        name at once, so that the others need not wait for us. The Lease stays free; a 409 means it moved on."""
        rec = self._seen.record
        if rec is None or rec.holder_identity or rec.successor != self.config.identity:
            return
        try:
            obs = await clocks.race_timeout(self.clock, self.lock.get(), self.config.request_timeout)
            if not obs.record.holder_identity and obs.record.successor == self.config.identity:
                unnamed = dataclasses.replace(obs.record, successor="")
                obs = await clocks.race_timeout(self.clock, self.lock.update(unnamed), self.config.request_timeout)
                logger.info("declined to succeed: not leading now", extra={"fields": {
                    "sitting_out_s": round(max(0.0, self._not_before - self.clock.now()), 3)}})
        except (locks.LockError, asyncio.TimeoutError) as exc:
            logger.debug("could not decline", extra={"fields": logs.error_fields(exc)})
            return
        self._observe(obs)

    async def _sleep_follower(self, until: float) -> None:
        """Sleep until `until` or a watch event (one that came during the last attempt counts too)."""
        await clocks.wait_until(self.clock, self._wakeup, until)
        self._wakeup.clear()

    async def _deadline_loop(self) -> None:
        """Step down exactly when the claim expires, even while a renewal hangs; as a follower, tell the
        listeners when the observed Lease expires (the view has no leader from then on)."""
        while True:
            self._changed.clear()
            if self._term.leading:
                await clocks.wait_until(self.clock, self._changed, self._term.valid_until)
                if self._term.leading and self.clock.now() >= self._term.valid_until:
                    self._step_down("renew deadline passed")
            elif self._seen.held_by_other(self.clock.now()):
                if not await clocks.wait_until(self.clock, self._changed, self._seen.expiry()):
                    logger.info("the Lease expired without a renewal seen here: no leader",
                                extra={"fields": {"holder": self._seen.holder}})
                    self._notify()
            else:
                await self._changed.wait()

    async def _watch_loop(self) -> None:
        """Follow Lease changes; fall back to polling (in `_follow_once`) while the watch is down. A watch
        the API server ends at its timeoutSeconds is opened again at once, without polling in between:
        the new watch's first event is the Lease as it is now, so nothing is missed (a follower would
        otherwise GET once or twice per re-open). One that ends sooner than a retry period counts as down."""
        while True:
            opened = self.clock.now()
            try:
                async for obs in self.lock.watch():
                    self._watch_ok = True
                    if obs is not None and self._succession.update(obs):
                        self.candidates_changed()
                    if self._term.leading:
                        self._check_while_leading(obs)
                        continue
                    self._observe(obs)
                    self._wakeup.set()  # the follower loop recomputes (no API call while held)
                if self._watch_ok and self.clock.now() - opened >= self.config.retry_period:
                    continue  # ended by the server after its timeout: the next one at once
            except locks.LockError as exc:
                logger.debug("watch failed", extra={"fields": logs.error_fields(exc)})
            self._watch_ok = False
            self._wakeup.set()
            await self.clock.sleep(self._jittered())

    def _check_while_leading(self, obs: Optional[locks.Observed]) -> None:
        """A watch event while we lead: step down at once if a newer write shows another holder or a deletion.

        Older events (our predecessor's renewals arriving late) are ignored by comparing resourceVersions
        (comparable integers since Kubernetes 1.35); when they are not comparable, the next renewal's 409
        tells us instead.
        """
        ours = self._seen.observed.resource_version if self._seen.observed else ""
        if obs is None:
            self._observe(None)
            self._step_down("the Lease was deleted")
        elif not self.config.holds(obs.record) and locks.newer(obs.resource_version, ours):
            self._observe(obs)  # first, so the app sees one change: straight to the new holder
            self._step_down(f"the Lease was written by {obs.record.holder_identity or 'a release'}")

    # ---------------------------------------------------------------- one attempt (client-go tryAcquireOrRenew)

    async def _try_acquire_or_renew(self) -> bool:
        """True if we hold the Lease after this attempt; False if someone else does; LockError on API failure."""
        if self._term.leading and self.clock.now() >= self._term.valid_until:
            self._step_down("renew deadline passed")
        outcome = await attempt.try_acquire_or_renew(
            self.lock, self.config, self.clock, self._seen, leading=self._term.leading, observe=self._observe,
            nominee_pending=self._nominee_pending, metrics=self.metrics)
        if outcome.written is not None and outcome.renewed:
            self._renewed(outcome.written, outcome.sent)
        elif outcome.written is not None:
            self._began(outcome.written, outcome.sent, cause=outcome.cause, previous=outcome.previous)
        return outcome.held

    # ---------------------------------------------------------------- state changes

    def _began(self, obs: locks.Observed, sent: float, *, cause: str, previous: str) -> None:
        self._observe(obs)
        self._term.begin(obs.record.leader_transitions, obs.resource_version, sent, self.config)
        self.metrics.acquisitions += 1
        logger.info("became leader", extra={"fields": {
            "term": self._term.number, "fencing_token": self._term.fencing_token, "cause": cause, "previous": previous}})
        self._notify()
        acquisition = Acquisition(term=self._term.number, cause=cause, previous=previous, lease_uid=obs.uid)
        for listener in list(self._acquisition_listeners):
            try:
                listener(acquisition)
            except Exception:  # a listener must not break the election
                logger.exception("acquisition listener failed")

    def _renewed(self, obs: locks.Observed, sent: float) -> None:
        self._observe(obs)
        self._term.renewed(sent, self.config)
        self._changed.set()

    def _step_down(self, reason: str) -> None:
        if self._handover.waiting:  # the term ended during a handover's grace: nothing left to hand over
            self._handover.done()
            self._term.resigning = False
        self._term.end()
        logger.info("stopped leading", extra={"fields": {"reason": reason}})
        self._notify()

    def _observe(self, obs: Optional[locks.Observed]) -> None:
        if obs is not None and self._succession.update(obs):
            self._leader_wake.set()
        change = self._seen.update(obs, self.clock.now())
        if self._term.leading and not self._still_ours():
            self._leader_wake.set()  # deleted or rewritten under us: write (or learn we lost it) now
        if obs is not None and change.record_changed:
            self.metrics.lease_transitions = obs.record.leader_transitions
        if change.holder is not None:
            previous, holder = change.holder
            if holder:
                self.metrics.leader_changes += 1
            logger.info("observed holder", extra={"fields": {
                "holder": holder, "previous": previous, "transitions": obs.record.leader_transitions if obs else 0}})
        if change.notify:
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        view = self.view()
        for listener in list(self._listeners):
            try:
                listener(view)
            except Exception:  # a listener must not break the election
                logger.exception("listener failed")

    # ---------------------------------------------------------------- helpers

    def _still_ours(self) -> bool:
        rec = self._seen.record
        return rec is not None and self.config.holds(rec)

    def _nominee_pending(self, now: float) -> bool:
        return self._seen.nominee_pending(now, self.config.lease_duration, self._succession.viable)

    def _waiting_for_other(self, now: float) -> Optional[float]:
        return self._seen.waiting_for_other(now, self.config.lease_duration, self._succession.viable)

    def _jittered(self) -> float:
        """client-go wait.Jitter: retry period plus up to 1.2 x itself."""
        return self.config.retry_period * (1 + self._rng.random() * timings.JITTER_FACTOR)

