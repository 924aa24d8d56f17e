"""What each pod on the node says right now: the demo's live view and the node tests' checks.

The pod's phase and containers come from the API server (what the kubelet reported), the
elector's answer from `GET localhost:4040/` inside the pod's own network namespace, and the
app's last role line from its log, read through the API server and the kubelet (`kubectl logs`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from localplane.node import pods

__all__ = ["Container", "Observation", "observe", "agreed_leader", "wait_for", "wait_agreed_leader", "describe",
           "app_said", "list_pods", "LeaseWatch", "ELECTOR_PORT", "APP_SELECTOR"]

ELECTOR_PORT = 4040  # the webhook's default (annotation elector.dev/port)
APP_SELECTOR = "app=leader-app"  # the sample app's pods
T = TypeVar("T")


@dataclass(frozen=True)
class Container:
    name: str
    state: str  # waiting / running / terminated (or "-" before the kubelet reported it)
    ready: bool
    restarts: int
    reason: str


@dataclass(frozen=True)
class Observation:
    pod: dict[str, Any]  # as the API server has it
    status: dict[str, Any] | None  # the elector's GET / inside the pod; None when it does not answer
    app: str  # the app's last "leader"/"follower" line, without the time and hostname

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def phase(self) -> str:
        return str(self.pod.get("status", {}).get("phase", "-"))

    @property
    def terminating(self) -> bool:
        return bool(self.pod["metadata"].get("deletionTimestamp"))

    @property
    def containers(self) -> dict[str, Container]:
        """Init containers (the elector sidecar) first, then the app's, as the kubelet reports them."""
        status = self.pod.get("status", {})
        found = {}
        for c in [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]:
            state, detail = next(iter((c.get("state") or {"-": {}}).items()))
            found[c["name"]] = Container(c["name"], state, bool(c.get("ready")), int(c.get("restartCount", 0)),
                                         str(detail.get("reason", "")))
        return found

    @property
    def is_leader(self) -> bool:
        return bool(self.status and self.status.get("is_leader"))

    @property
    def says_leader(self) -> str | None:
        return (self.status or {}).get("name")


def list_pods(api: httpx.Client, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    params = {"labelSelector": selector} if selector else {}
    reply = api.get(f"/api/v1/namespaces/{namespace}/pods", params=params)
    reply.raise_for_status()
    return sorted(reply.json()["items"], key=lambda p: p["metadata"]["name"])


def elector_status(pod: dict[str, Any], port: int = ELECTOR_PORT, timeout: float = 0.5) -> dict[str, Any] | None:
    """GET / of the pod's elector, from inside the pod; None when it does not answer."""
    try:
        code, body = pods.http_get(pod, port, "/", timeout=timeout)
        return json.loads(body) if code == 200 else None
    except (OSError, ValueError):
        return None


def app_said(api: httpx.Client, pod: dict[str, Any], container: str = "app") -> str:
    """The last line of the app's log that states its role, without time and hostname ("" if none yet; a
    note if the log cannot be read: the API server reads it from the pod's kubelet, which may be cut off)."""
    try:
        reply = api.get(f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods/{pod['metadata']['name']}/log",
                        params={"container": container, "tailLines": "20"}, timeout=5)
    except httpx.HTTPError as exc:
        return f"(log not readable: {type(exc).__name__})"
    if reply.status_code != 200:
        return ""
    roles = [line for line in reply.text.splitlines() if ": leader" in line or ": follower" in line]
    return roles[-1].split(": ", 1)[1] if roles else ""


def observe(api: httpx.Client, namespace: str, *, selector: str = "", with_logs: bool = True) -> list[Observation]:
    result = []
    for pod in list_pods(api, namespace, selector):
        obs = Observation(pod, None, "")
        elector = obs.containers.get("elector")
        status = elector_status(pod) if elector and elector.state == "running" and not obs.terminating else None
        app = app_said(api, pod) if with_logs and obs.containers.get("app", Container("", "", False, 0, "")).state \
            in ("running", "terminated") else ""
        result.append(Observation(pod, status, app))
    return result


def agreed_leader(observations: Iterable[Observation]) -> str | None:
    """The leader's name if every live pod names it and exactly that pod says is_leader; else None."""
    live = [o for o in observations if not o.terminating]
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
                               for c in o.containers.values())
        lines.append(f"{o.name} {o.phase}{' terminating' if o.terminating else ''} [{containers}] "
                     f"elector={json.dumps(o.status)} app={o.app!r}")
    return "\n".join(lines)


def wait_agreed_leader(api: httpx.Client, namespace: str, *, count: int, timeout: float = 90,
                       selector: str = APP_SELECTOR) -> str:
    """Until `count` pods are Running and Ready, and all name one leader that alone says is_leader."""
    def agreed() -> str | None:
        seen = observe(api, namespace, selector=selector, with_logs=False)
        live = [o for o in seen if not o.terminating]
        ready = [o for o in live if o.phase == "Running" and all(c.ready for c in o.containers.values())]
        return agreed_leader(live) if len(live) == len(ready) == count else None

    return wait_for(agreed, timeout=timeout, interval=0.2, message=f"{count} pods with one agreed leader",
                            detail=lambda: describe(observe(api, namespace, selector=selector)))


class LeaseWatch(threading.Thread):
    """Watches one Lease and notes (monotonic time, holderIdentity) at each change, as the API server sends it."""

    def __init__(self, client: httpx.Client, namespace: str, name: str) -> None:
        super().__init__(daemon=True, name=f"lease-watch-{name}")
        self.client, self.namespace, self.name = client, namespace, name
        self.changes: list[tuple[float, str]] = []
        self.walls: list[float] = []  # time.time() of each change, for comparing with pods' own clocks
        self.ready = threading.Event()

    def run(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"
        params = {"watch": "true", "fieldSelector": f"metadata.name={self.name}", "timeoutSeconds": "600"}
        with self.client.stream("GET", path, params=params, timeout=None) as stream:
            self.ready.set()
            for line in stream.iter_lines():
                event = json.loads(line)
                holder = event["object"].get("spec", {}).get("holderIdentity") or ""
                if event["type"] == "DELETED":
                    holder = "<deleted>"
                if not self.changes or self.changes[-1][1] != holder:
                    self.changes.append((time.monotonic(), holder))
                    self.walls.append(time.time())

    def holders_after(self, wall: float) -> list[tuple[float, str]]:
        """(wall time, holder) of each change after `wall`."""
        return [(w, who) for w, (_, who) in zip(self.walls, self.changes) if w >= wall]

    def released_by(self, holder: str) -> float | None:
        """When the Lease first showed another holder (or none) after `holder`."""
        held = False
        for when, who in self.changes:
            if who == holder:
                held = True
            elif held:
                return when
        return None
