"""Looking into a pod the node runs, from the host: its processes and its own localhost.

The elector serves only on the pod's loopback, so a checker that polls every pod every few
milliseconds (faster than `kubectl exec` could) opens its socket inside the pod's network
namespace. Both are found from the pod's cgroup, which the kubelet names after the pod UID
(cgroupfs driver: [<node's cgroup root>/]kubepods[/<qos>]/pod<uid>/<container id>), on any node. Read-only observation: nothing
here changes what the kubelet runs.
"""

from __future__ import annotations

import ctypes
import http.client
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["container_pids", "pod_pids", "connect", "http_request", "http_get", "http_post", "NotRunning", "ExitWatch"]

_PIDS_HIERARCHY = Path("/sys/fs/cgroup/pids")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NotRunning(OSError):
    """The pod (or container) has no process on this node right now."""


def _pod_cgroup(uid: str) -> Path | None:
    # Node 0's pods under /kubepods, another node's under its own cgroup root (localplane.node.layout).
    for base in (_PIDS_HIERARCHY / "kubepods", *_PIDS_HIERARCHY.glob("kube-elector-node-*/kubepods")):
        for candidate in (base / f"pod{uid}", base / "burstable" / f"pod{uid}", base / "besteffort" / f"pod{uid}"):
            if candidate.is_dir():
                return candidate
    return None


def _procs(directory: Path) -> list[int]:
    pids: list[int] = []
    for top, _, _ in os.walk(directory):  # not rglob: cgroups vanish while we look
        try:
            pids += [int(p) for p in (Path(top) / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            continue
    return pids


def pod_pids(pod: dict[str, Any]) -> list[int]:
    """Every process of the pod (sandbox and containers); [] if it has none on this node."""
    cgroup = _pod_cgroup(pod["metadata"]["uid"])
    return _procs(cgroup) if cgroup else []


def container_pids(pod: dict[str, Any]) -> dict[str, list[int]]:
    """The processes of each running container of the pod, by container name (init containers too)."""
    cgroup = _pod_cgroup(pod["metadata"]["uid"])
    if cgroup is None:
        return {}
    status = pod.get("status", {})
    result = {}
    for container in [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]:
        container_id = (container.get("containerID") or "").rpartition("://")[2]
        if container_id and "running" in container.get("state", {}) and (cgroup / container_id).is_dir():
            result[container["name"]] = _procs(cgroup / container_id)
    return result


def connect(pod: dict[str, Any], port: int, *, timeout: float = 1.0) -> socket.socket:
    """A TCP socket connected to localhost:port inside the pod's network namespace."""
    pids = pod_pids(pod)
    if not pids:
        raise NotRunning(f"pod {pod['metadata']['name']} has no process on this node")
    result: dict[str, Any] = {}

    def in_pod() -> None:
        # setns changes the network namespace of this thread only; a socket keeps the namespace it
        # was made in, so the caller can use it from any thread.
        try:
            fd = os.open(f"/proc/{pids[0]}/ns/net", os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            result["socket"] = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        except OSError as exc:
            result["error"] = exc

    thread = threading.Thread(target=in_pod, name="pod-netns")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["socket"]  # type: ignore[no-any-return]


def http_request(pod: dict[str, Any], port: int, method: str, path: str = "/", *,
                 timeout: float = 1.0, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """`method` http://localhost:port/path inside the pod, no body: (status, body). Raises OSError when
    nothing answers."""
    connection = http.client.HTTPConnection("localhost", port, timeout=timeout)
    connection.sock = connect(pod, port, timeout=timeout)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    except http.client.HTTPException as exc:
        raise OSError(f"{method} {path}: {exc}") from exc
    finally:
        connection.close()


def http_get(pod: dict[str, Any], port: int, path: str = "/", *, timeout: float = 1.0) -> tuple[int, bytes]:
    """GET http://localhost:port/path inside the pod: (status, body). Raises OSError when nothing answers."""
    return http_request(pod, port, "GET", path, timeout=timeout)


def http_post(pod: dict[str, Any], port: int, path: str, *, timeout: float = 1.0,
              headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """POST http://localhost:port/path inside the pod, empty body (e.g. the elector's /release, which
    needs the header `Elector-Release: true`)."""
    return http_request(pod, port, "POST", path, timeout=timeout, headers=headers)


class ExitWatch(threading.Thread):
    """Notes when each running container of one pod has no process left (polls /proc every `interval` s).

    `exited[name]` is seconds since `started`: construction time, unless the caller sets the moment it
    acted (e.g. when its DELETE returned) before the containers stop.
    """

    def __init__(self, pod: dict[str, Any], *, interval: float = 0.002, timeout: float = 60.0) -> None:
        super().__init__(daemon=True, name="exit-watch")
        self.pids = container_pids(pod)
        self.exited: dict[str, float] = {}
        self.started = time.monotonic()
        self._interval, self._timeout = interval, timeout

    def run(self) -> None:
        deadline = self.started + self._timeout
        while len(self.exited) < len(self.pids) and time.monotonic() < deadline:
            for name, pids in self.pids.items():
                if name not in self.exited and not any(os.path.exists(f"/proc/{pid}") for pid in pids):
                    self.exited[name] = time.monotonic() - self.started
            time.sleep(self._interval)
