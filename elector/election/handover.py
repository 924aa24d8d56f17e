"""When a leader hands the Lease over, and to whom: pure rules, asked once per wake of the leader loop.

Reasons, in order: the app asked (POST /release), the app is unhealthy, the controller names a Ready pod of
a newer revision of our workload on the Lease (hints.py). The last is a rollout handover the app did not ask for: with a grace
(--release-timeout) the app hears first (the leader resigns, keeps the Lease renewed) and the handover
follows its POST /release or the end of the grace, as on SIGTERM.

Our own pod being deleted is no reason: its app keeps leading until the kubelet has stopped it, and the
sidecar's release on SIGTERM (after the app, native sidecar order) names the successor. Releasing at the
deletion would start the next leader while this app may still be finishing its leader's work.
"""
from __future__ import annotations

import dataclasses
from typing import Collection, Optional

from elector.election import hints

__all__ = ["Step", "Handover", "APP_RELEASED", "UNHEALTHY", "NEWER_REVISION"]

APP_RELEASED = "app asked to release"
UNHEALTHY = "app unhealthy"
NEWER_REVISION = "a pod of a newer revision is ready"


@dataclasses.dataclass(frozen=True)
class Step:
    """What the leader does now: `reason` "" keeps leading; `wait_for_app` starts a grace (resign, keep renewing)."""

    reason: str = ""
    successor: str = ""
    wait_for_app: bool = False


class Handover:
    def __init__(self, succession: hints.LeaseHints, grace: float = 0.0) -> None:
        self.succession = succession
        self.grace = grace
        self._grace_until: Optional[float] = None  # only a newer revision starts a grace

    def wake_at(self, next_renew: float) -> float:
        """When the leader loop must look again even if nothing happens."""
        return next_renew if self._grace_until is None else min(next_renew, self._grace_until)

    def decide(self, now: float, *, release_requested: bool, eligible: bool, passed_over: Collection[str]) -> Step:
        reason, successor = self._why(release_requested=release_requested, eligible=eligible,
                                      passed_over=passed_over)
        starts = reason == NEWER_REVISION and self.grace > 0 and self._grace_until is None
        if starts:
            self._grace_until = now + self.grace
        if self._grace_until is not None and reason != APP_RELEASED:
            if now < self._grace_until:
                return Step(wait_for_app=starts)  # keep renewing while the app finishes
            reason = reason or NEWER_REVISION  # a grace that began ends in a handover
        if not reason:
            return Step()
        return Step(reason, successor or self.succession.successor(passed_over), wait_for_app=starts)

    @property
    def waiting(self) -> bool:
        """A grace is running: the leader resigned for a handover and waits for its app."""
        return self._grace_until is not None

    def done(self) -> None:
        """The Lease was handed over (or the term ended): forget any grace."""
        self._grace_until = None

    def _why(self, *, release_requested: bool, eligible: bool, passed_over: Collection[str]) -> tuple[str, str]:
        if release_requested:
            return APP_RELEASED, self.succession.successor(passed_over)
        if not eligible:
            return UNHEALTHY, self.succession.successor(passed_over)
        target = self.succession.handover_target(passed_over)
        return (NEWER_REVISION, target) if target else ("", "")
