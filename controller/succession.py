"""Who should lead next, published on the Lease for its candidates (pure, no I/O).

The electors hold no pod rights; the controller sees every candidate's pod and writes the Lease
annotations they read (elector/election/hints.py):
- `elector.dev/next-leader`: whom the holder names when it releases (SIGTERM, POST /release, unhealthy);
- `elector.dev/hand-over-to`: set while a Ready pod of a newer revision of the holder's workload exists
  (a rolling update): the holder hands over to it at once, so a rollout moves leadership exactly once.
  Not set when the holder's pod says `elector.dev/rollout-aware: "false"`.
- `elector.dev/successor` (written by a releasing holder): on a free Lease whose nominee cannot lead (gone,
  being deleted, not Ready) it is replaced by the next viable candidate, or removed, so the other followers
  do not wait a lease duration for a pod that will never take it.
The rules themselves are candidates.py's.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Collection, Iterable, Mapping, Optional

from controller import candidates
from elector.kube import leaselock
from webhook import options

__all__ = ["Hints", "hints_for", "annotation_patch", "NEXT_LEADER", "HAND_OVER_TO", "SUCCESSOR"]

# The Lease annotations the electors read and write (elector/kube/leaselock.py), and the pod's opt-out.
NEXT_LEADER = leaselock.NEXT_LEADER_ANNOTATION
HAND_OVER_TO = leaselock.HAND_OVER_TO_ANNOTATION
SUCCESSOR = leaselock.SUCCESSOR_ANNOTATION
ROLLOUT_AWARE = options.ROLLOUT_AWARE


@dataclasses.dataclass(frozen=True)
class Hints:
    """The annotations wanted on the Lease; "" removes one (see `annotation_patch`)."""

    next_leader: str = ""
    hand_over_to: str = ""
    successor: Optional[str] = None  # None: leave the release's nominee as it is


def hints_for(lease: Optional[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]],
              exclude: Collection[str] = ()) -> Hints:
    """The annotations the Lease should carry, given the election's pods; `exclude`: nominees that failed."""
    pod_list = list(pods)
    cands = {c.name: c for c in map(candidates.from_pod, pod_list)}
    spec = (lease or {}).get("spec") or {}
    notes = ((lease or {}).get("metadata") or {}).get("annotations") or {}
    holder = str(spec.get("holderIdentity") or "")
    if holder:
        if holder not in cands:
            return Hints()  # a peer we do not see (client-go, another namespace's pod): nothing to say
        nxt = candidates.successor(holder, cands, exclude)
        rollout = _rollout_aware(pod_list, holder)
        hand = candidates.handover_target(holder, cands, exclude) if rollout else ""
        return Hints(next_leader=nxt, hand_over_to=hand)
    nominee = str(notes.get(SUCCESSOR) or "")
    successor: Optional[str] = None
    if nominee and not (nominee in cands and cands[nominee].viable):
        successor = candidates.successor(nominee, cands, {*exclude, nominee})
    return Hints(successor=successor)


def _rollout_aware(pods: Iterable[Mapping[str, Any]], name: str) -> bool:
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("name") == name:
            return (meta.get("annotations") or {}).get(ROLLOUT_AWARE, "true") != "false"
    return True


def annotation_patch(lease: Mapping[str, Any], hints: Hints) -> dict[str, Optional[str]]:
    """The merge-patch of `metadata.annotations` that makes the Lease carry `hints` ({} if it does already).

    A value None removes the annotation (JSON merge patch)."""
    notes = (lease.get("metadata") or {}).get("annotations") or {}
    wanted: dict[str, Optional[str]] = {NEXT_LEADER: hints.next_leader or None,
                                        HAND_OVER_TO: hints.hand_over_to or None}
    if hints.successor is not None:
        wanted[SUCCESSOR] = hints.successor or None
    return {key: value for key, value in wanted.items() if notes.get(key) != value}
