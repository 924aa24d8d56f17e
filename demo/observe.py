"""What each pod's elector and app say right now: the demo's live view and the e2e test's checks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from podrunner import PodRunner, PodView

__all__ = ["Observation", "observe", "agreed_leader", "wait_for", "describe", "app_said", "ELECTOR_PORT"]

ELECTOR_PORT = 4040  # the webhook's default (annotation elector.dev/port)
T = TypeVar("T")


@dataclass(frozen=True)
class Observation:
    pod: PodView
    status: dict[str, Any] | None  # the elector's GET / inside the pod; None when it does not answer
    app: str  # the app's last "leader"/"follower" line, without the time and hostname

    @property
    def name(self) -> str:
        return self.pod.name

    @property
    def is_leader(self) -> bool:
        return bool(self.status and self.status.get("is_leader"))

    @property
    def says_leader(self) -> str | None:
        return (self.status or {}).get("name")


def app_said(pod: PodView, container: str = "app") -> str:
    """The last line of the app's log that states its role, without time and hostname ("" if none yet)."""
    roles = [line for line in pod.log(container).splitlines() if ": leader" in line or ": follower" in line]
    return roles[-1].split(": ", 1)[1] if roles else ""


def observe(runner: PodRunner, *, app_container: str = "app", port: int = ELECTOR_PORT) -> list[Observation]:
    result = []
    for pod in runner.pods():
        status = None
        if not pod.terminating and pod.containers.get("elector") and pod.containers["elector"].state == "running":
            try:
                code, body = runner.http_get(pod, port, "/", timeout=0.5)
                status = json.loads(body) if code == 200 else None
            except (OSError, ValueError):
                status = None
        result.append(Observation(pod, status, app_said(pod, app_container)))
    return result


def agreed_leader(observations: Iterable[Observation]) -> str | None:
    """The leader's name if every live pod names it and exactly that pod says is_leader; else None."""
    live = [o for o in observations if not o.pod.terminating]
    if not live or any(o.status is None for o in live):
        return None
    names = {o.says_leader for o in live}
    leaders = [o.name for o in live if o.is_leader]
    if len(names) != 1 or len(leaders) != 1 or leaders[0] not in names:
        return None
    return leaders[0]


def wait_for(what: Callable[[], T | None], *, timeout: float, interval: float = 0.1,
             message: str = "condition", detail: Callable[[], str] | None = None) -> T:
    """Poll `what` until it returns something truthy; TimeoutError (with `detail()`) after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message}: not met within {timeout:.0f} s" + (f"\n{detail()}" if detail else ""))
        time.sleep(interval)


def describe(observations: Iterable[Observation]) -> str:
    """One line per pod: phase, containers (state, reason, restarts), what the elector and the app say."""
    lines = []
    for o in observations:
        containers = ", ".join(f"{c.name}={c.state}{'/' + c.reason if c.reason else ''}"
                               f"{' ready' if c.ready else ''}{f' restarts={c.restarts}' if c.restarts else ''}"
                               for c in o.pod.containers.values())
        lines.append(f"{o.name} {o.pod.phase}{' terminating' if o.pod.terminating else ''} [{containers}] "
                     f"elector={json.dumps(o.status)} app={o.app!r}")
    return "\n".join(lines)
