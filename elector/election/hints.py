"""Whom to hand over to, as the kube-elector controller published it on the Lease (pure).

The controller watches every candidate's pod (the elector holds no pod rights) and writes two Lease
annotations (lock.Hints): `elector.dev/next-leader`, the candidate a release names, and
`elector.dev/hand-over-to`, set while a Ready pod of a newer revision of the holder's workload exists
(a rolling update: hand over now, once). Without the controller both are empty and the election runs as
client-go's: a release names nobody, nobody hands over unasked. A stale hint costs at most one lease
duration of waiting for a nominee (seen.py), never a second leader: it only ever stops candidates from
writing.
"""
from __future__ import annotations

from typing import Collection

from elector.election import lock as locks

__all__ = ["LeaseHints"]


class LeaseHints:
    """The newest hints seen on the Lease, in the shape handover.Handover asks for."""

    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.hints = locks.Hints()
        self._version = ""  # resourceVersion of the Lease the hints come from

    def update(self, obs: locks.Observed) -> bool:
        """Note the hints of a Lease just seen, unless an older copy (a write's answer that arrives after
        the watch showed a newer version); True if they changed."""
        if self._version and not locks.newer(obs.resource_version, self._version):
            return False
        self._version = obs.resource_version
        changed = obs.hints != self.hints
        self.hints = obs.hints
        return changed

    def successor(self, exclude: Collection[str] = ()) -> str:
        """The candidate a release names: the controller's pick, unless it is us or failed lately."""
        name = self.hints.next_leader
        return name if name and name != self.identity and name not in exclude else ""

    def handover_target(self, exclude: Collection[str] = ()) -> str:
        """For the leader: the candidate to hand over to now, or ""."""
        name = self.hints.hand_over_to
        return name if name and name != self.identity and name not in exclude else ""

    def leaving(self) -> bool:
        """Our pod is leaving: the sidecar hears it as SIGTERM, the controller leaves us out of its picks."""
        return False

    def viable(self, name: str) -> bool:
        """Worth waiting for? The controller rewrites a release's nominee that cannot lead (gone, not Ready)."""
        return True
