"""A checker on every pod: polls each pod's elector (inside the pod, as its app would) and records
every moment two pods said `is_leader: true`, how often the leader moved, and the longest gap with
no leader at all. Test and benchmark equipment: tests/node and bench/ both use it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from demo import observe

__all__ = ["LeaderChecker"]


class LeaderChecker(threading.Thread):
    """`with LeaderChecker(client, namespace, "app=leader-app"):` ... then read the results."""

    def __init__(self, client: Callable[[], httpx.Client], namespace: str, selector: str, *,
                 interval: float = 0.02, refresh: float = 0.25) -> None:
        super().__init__(daemon=True, name="leader-checker")
        self._client = client
        self.namespace, self.selector = namespace, selector
        self.interval, self.refresh = interval, refresh
        self.sweeps = 0
        self.overlaps: list[tuple[float, list[str]]] = []
        self.history: list[tuple[float, tuple[str, ...]]] = []  # (when, who said is_leader) on each change
        self.errors: list[str] = []
        self.handovers_mid_sweep = 0  # sweeps that asked the old leader before and the new one after a handover
        self._stop_event = threading.Event()

    def __enter__(self) -> LeaderChecker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)
        self.ended = time.monotonic()

    def run(self) -> None:
        pods: list[dict[str, Any]] = []
        listed = 0.0
        with self._client() as api:
            while not self._stop_event.is_set():
                now = time.monotonic()
                if now - listed >= self.refresh:
                    try:
                        # Terminating pods too: until the kubelet stops its elector, such a pod may lead.
                        pods = observe.list_pods(api, self.namespace, self.selector)
                    except httpx.HTTPError as exc:
                        self.errors.append(repr(exc))
                    listed = now
                claims = [(p, status) for p in pods if (status := observe.elector_status(p, timeout=0.2) or {}).get("is_leader")]
                saying = tuple(sorted(p["metadata"]["name"] for p, _ in claims))
                self.sweeps += 1
                if not self.history or self.history[-1][1] != saying:
                    self.history.append((time.monotonic(), saying))
                if len(saying) > 1:
                    if at_once(claims, lambda pod: observe.elector_status(pod, timeout=0.2)):
                        self.overlaps.append((time.monotonic(), list(saying)))
                    else:
                        self.handovers_mid_sweep += 1
                self._stop_event.wait(self.interval)

    # --- results

    def leaders(self) -> list[str]:
        """Each leader in turn (consecutive duplicates collapsed)."""
        order: list[str] = []
        for _, saying in self.history:
            if len(saying) == 1 and (not order or order[-1] != saying[0]):
                order.append(saying[0])
        return order

    def moves(self) -> int:
        """How many times leadership passed to another pod."""
        return max(0, len(self.leaders()) - 1)

    def longest_gap(self) -> float:
        """The longest time, after the first leader was seen, when no pod said it was the leader."""
        longest, gap_start, seen = 0.0, None, False
        for when, saying in self.history:
            if saying:
                seen = True
                if gap_start is not None:
                    longest = max(longest, when - gap_start)
                    gap_start = None
            elif seen and gap_start is None:
                gap_start = when
        if gap_start is not None:
            longest = max(longest, getattr(self, "ended", time.monotonic()) - gap_start)
        return longest

    def summary(self) -> str:
        return (f"{self.sweeps} sweeps, {len(self.overlaps)} with two leaders ({self.handovers_mid_sweep} handovers "
                f"between two answers of one sweep), {self.moves()} leader moves "
                f"({' -> '.join(self.leaders())}), longest leaderless gap {self.longest_gap():.2f} s")


def at_once(claims: list[tuple[dict[str, Any], dict[str, Any]]],
            ask: Callable[[dict[str, Any]], dict[str, Any] | None]) -> bool:
    """Whether two of `claims` (pod, its answer saying is_leader; in the order they were asked) led at the same
    time. A sweep asks one pod after another, so a handover between two answers shows the old leader and
    the new one in one sweep. Each pod but the last is asked again, after every later one said it leads:
    if it still leads in the same term, it led throughout, while a later one led too."""
    for pod, first in claims[:-1]:
        again = ask(pod) or {}
        if again.get("is_leader") and again.get("term") == first.get("term"):
            return True
    return False
