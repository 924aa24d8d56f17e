"""Who should lead next: the rollout-aware succession rules, as pure functions on Pod dicts.

A rolling update deletes old pods one by one; an ordinary release lets any follower win, often another
old pod that is deleted a moment later. These rules pick instead a Ready pod of the newest revision of
our own workload, and tell a leader of an older revision to hand over as soon as one exists (see
docs/elector.md, "Rollouts").

- Workload: the controller that keeps the pods (a Deployment through its ReplicaSets, a StatefulSet, a
  DaemonSet). Revisions are compared only within one workload; bare pods and Jobs have no revision.
- Revision: the `pod-template-hash` (ReplicaSet) or `controller-revision-hash` (StatefulSet,
  DaemonSet) label. The newest is the one born last, a revision's birth being the creation time of its
  oldest live pod: a replacement pod of an old revision (its pod crashed) does not make it new, and a
  rollback to an earlier template is new again once its old pods are gone.
- Successor order: our workload first, then its newest revision, then the lowest StatefulSet ordinal
  (updated last), then the oldest pod (a ReplicaSet scales its newest pods down first).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Collection, Iterable, Mapping, Optional

__all__ = ["Candidate", "from_pod", "newest_revision", "successor", "handover_target", "Succession"]

REVISION_LABELS = ("pod-template-hash", "controller-revision-hash")
INDEX_LABEL = "apps.kubernetes.io/pod-index"


@dataclasses.dataclass(frozen=True)
class Candidate:
    """What the succession rules need to know of one pod, so they stay pure functions on plain values."""

    name: str
    workload: str  # "Deployment/web", "StatefulSet/db", "Job/x"; "" for a bare pod
    revision: str  # "" when the workload has none
    created: str  # creationTimestamp, RFC 3339 in UTC: sorts as text
    ready: bool
    deleting: bool
    index: Optional[int] = None  # StatefulSet ordinal

    @property
    def viable(self) -> bool:
        """Worth leading or waiting for: Ready and not on its way out."""
        return self.ready and not self.deleting


def from_pod(pod: Mapping[str, Any]) -> Candidate:
    """A Deployment's pods count as one workload across its ReplicaSets; Ready means Running with condition Ready."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    status = pod.get("status") or {}
    revision = next((str(labels[key]) for key in REVISION_LABELS if labels.get(key)), "")
    kind, owner = _controller(meta)
    if kind == "ReplicaSet" and labels.get("pod-template-hash"):
        kind, owner = "Deployment", owner.removesuffix("-" + str(labels["pod-template-hash"]))
    name = str(meta.get("name", ""))
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return Candidate(
        name=name,
        workload=f"{kind}/{owner}" if kind else "",
        revision=revision if kind else "",
        created=str(meta.get("creationTimestamp", "")),
        ready=ready and status.get("phase") == "Running",
        deleting=bool(meta.get("deletionTimestamp")),
        index=_index(labels, name) if kind == "StatefulSet" else None,
    )


def newest_revision(pods: Iterable[Candidate], workload: str) -> Optional[str]:
    """The revision of `workload` born last, or None (no workload, no revisions, or a tie)."""
    births: dict[str, str] = {}
    for pod in pods:
        if pod.workload == workload and workload and pod.revision and not pod.deleting:
            births[pod.revision] = min(births.get(pod.revision, pod.created), pod.created)
    if not births:
        return None
    ordered = sorted(births.items(), key=lambda item: item[1], reverse=True)
    if len(ordered) > 1 and ordered[0][1] == ordered[1][1]:
        return None  # born in the same second: no way to tell which is newer
    return ordered[0][0]


def successor(me: str, pods: Mapping[str, Candidate], exclude: Collection[str] = ()) -> str:
    """The viable pod, other than `me` and those in `exclude`, that should lead next; "" if none is."""
    mine = pods.get(me)
    newest = newest_revision(pods.values(), mine.workload) if mine else None

    def rank(pod: Candidate) -> tuple[object, ...]:
        ours = mine is not None and bool(mine.workload) and pod.workload == mine.workload
        return (not ours, not (ours and pod.revision == newest),
                pod.index if pod.index is not None else math.inf, pod.created, pod.name)

    viable = [pod for pod in pods.values() if pod.name != me and pod.name not in exclude and pod.viable]
    return min(viable, key=rank).name if viable else ""


def handover_target(me: str, pods: Mapping[str, Candidate], exclude: Collection[str] = ()) -> str:
    """For a leader: the pod to hand over to now because it runs a newer revision of our workload; or ""."""
    mine = pods.get(me)
    if mine is None or not mine.revision:
        return ""
    newest = newest_revision(pods.values(), mine.workload)
    if newest is None or newest == mine.revision:
        return ""
    chosen = successor(me, pods, exclude)
    pod = pods.get(chosen)
    return chosen if pod is not None and pod.workload == mine.workload and pod.revision == newest else ""


class Succession:
    """The rules above over a live view of the candidates (`view()` -> None until the first list)."""

    def __init__(self, identity: str, view: Callable[[], Optional[Mapping[str, Candidate]]]) -> None:
        self.identity = identity
        self._view = view

    def successor(self, exclude: Collection[str] = ()) -> str:
        pods = self._view()
        return successor(self.identity, pods, exclude) if pods is not None else ""

    def handover_target(self, exclude: Collection[str] = ()) -> str:
        pods = self._view()
        return handover_target(self.identity, pods, exclude) if pods is not None else ""

    def leaving(self) -> bool:
        """Our own pod is being deleted: neither lead nor take over."""
        pods = self._view()
        mine = pods.get(self.identity) if pods is not None else None
        return mine is not None and mine.deleting

    def viable(self, name: str) -> bool:
        """Is a named successor still worth waiting for? Without a view, yes; gone from the view, no."""
        pods = self._view()
        if pods is None:
            return True
        return name in pods and pods[name].viable


NO_SUCCESSION = Succession("", lambda: None)


def _controller(meta: Mapping[str, Any]) -> tuple[str, str]:
    for ref in meta.get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return str(ref.get("kind", "")), str(ref.get("name", ""))
    return "", ""


def _index(labels: Mapping[str, Any], name: str) -> Optional[int]:
    text = str(labels.get(INDEX_LABEL) or name.rpartition("-")[2])
    return int(text) if text.isascii() and text.isdigit() else None
