"""The storage seam: what the election needs from a Lease, as a Protocol (client-go resourcelock.Interface).

`leaselock.LeaseLock` implements it over the API server; tests use an in-memory one.
"""
from __future__ import annotations

import dataclasses
from typing import AsyncIterator, Optional, Protocol

from elector.election import record

__all__ = ["Hints", "Observed", "Lock", "LockError", "LeaseNotFound", "LeaseConflict", "Forbidden", "newer"]


@dataclasses.dataclass(frozen=True)
class Observed:
    """A Lease as read or written: its record, the raw spec text (change detection) and metadata."""

    record: record.LeaderElectionRecord
    raw: str
    resource_version: str
    uid: str = ""
    hints: "Hints" = dataclasses.field(default_factory=lambda: Hints())


@dataclasses.dataclass(frozen=True)
class Hints:
    """What the kube-elector controller published on the Lease (annotations; see controller/succession.py).

    `next_leader`: the candidate a release should name. `hand_over_to`: the holder should hand over to
    this candidate now (a Ready pod of a newer revision of its workload).
    """

    next_leader: str = ""
    hand_over_to: str = ""


class LockError(Exception):
    """The Lease could not be read or written (network, timeout, unexpected status)."""


class LeaseNotFound(LockError):
    """The Lease does not exist (HTTP 404)."""


class Forbidden(LockError):
    """HTTP 403: our account may not do this (no Role yet: the controller makes it with the Lease)."""


class LeaseConflict(LockError):
    """Someone else wrote the Lease first (HTTP 409: stale resourceVersion, or it already exists)."""


class Lock(Protocol):
    async def get(self) -> Observed:
        """Read the Lease; raises `LeaseNotFound` or `LockError`. Remembers it for `update`."""

    async def create(self, rec: record.LeaderElectionRecord) -> Observed:
        """Create the Lease; raises `LeaseConflict` if it exists."""

    async def update(self, rec: record.LeaderElectionRecord) -> Observed:
        """Replace the spec of the Lease last read or written (its resourceVersion); `LeaseConflict` on 409."""

    def watch(self) -> AsyncIterator[Optional[Observed]]:
        """Changes of the Lease as they happen: an `Observed`, or None when it was deleted. Ends on error."""

    def describe(self) -> str:
        """`namespace/name`, for logs."""


def newer(candidate: str, than: str) -> bool:
    """True if resourceVersion `candidate` is known to be newer than `than` (both integers).

    resourceVersions of one object are comparable integers since Kubernetes 1.35 (KEP-5504); anything
    else is "not known to be newer".
    """
    return (candidate.isascii() and candidate.isdigit() and than.isascii() and than.isdigit()
            and int(candidate) > int(than))
