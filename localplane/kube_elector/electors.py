"""Elector processes started the way the injected container starts them, and a leadership checker."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

from localplane.process.ports import free_port

FAST = ["--lease-duration=3s", "--renew-deadline=2s", "--retry-period=500ms"]
LEASE, RENEW = 3.0, 2.0


def get_json(url: str, timeout: float = 1.0) -> Optional[dict[str, Any]]:
    """GET a JSON document, or None if the process does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback only)
            return json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


class Elector:
    """One `python -m elector` process with the injected args/env and a ServiceAccount kubeconfig."""

    def __init__(self, *, pod: str, namespace: str, election: str, kubeconfig: Optional[Path], log_dir: Path,
                 extra: list[str] = (), env: Optional[dict[str, str]] = None, log_name: str = "") -> None:
        self.pod = pod
        self.port, self.probe_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.args = [
            sys.executable, "-m", "elector",
            f"--election={election}", f"--election-namespace={namespace}",
            f"--http=localhost:{self.port}", f"--probe-address=0.0.0.0:{self.probe_port}",
            *FAST, *extra,
        ]
        if kubeconfig is not None:
            self.args.append(f"--kubeconfig={kubeconfig}")
        self.env = {**os.environ, "POD_NAME": pod, "POD_NAMESPACE": namespace, "POD_UID": f"uid-{pod}",
                    "ELECTOR_LOG_FORMAT": "json", **(env or {})}
        self.log_path = log_dir / f"{log_name or pod}.log"
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.started_at = 0.0

    def start(self) -> "Elector":
        self.started_at = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def status(self, timeout: float = 1.0) -> Optional[dict[str, Any]]:
        return get_json(self.url, timeout)

    def is_leader(self, timeout: float = 0.3) -> bool:
        body = self.status(timeout)
        return bool(body and body.get("is_leader"))

    def wait_ready(self, timeout: float = 10.0) -> float:
        """Seconds from start until /readyz answered 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.probe_port}/readyz", timeout=0.5) as resp:
                    if resp.status == 200:
                        return time.monotonic() - self.started_at
            except (OSError, urllib.error.URLError):
                pass
            assert self.proc is not None and self.proc.poll() is None, self.logs()
            time.sleep(0.01)
        raise AssertionError(f"{self.pod} not ready in {timeout}s:\n{self.logs()}")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(5)

    def rss_kb(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def logs(self) -> str:
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """Poll `predicate` until truthy; return its value (or None after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def leaders(electors: list[Elector]) -> list[Elector]:
    return [e for e in electors if e.proc is not None and e.proc.poll() is None and e.is_leader()]


class Checker(threading.Thread):
    """Polls every elector every 50 ms; records any sweep where two said is_leader: true."""

    def __init__(self, electors: list[Elector], interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.electors = electors
        self.interval = interval
        self.sweeps = 0
        self.overlaps: list[tuple[float, list[str]]] = []
        self.history: list[tuple[float, list[str]]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            now = time.monotonic()
            saying = [e.pod for e in list(self.electors) if e.is_leader(timeout=0.2)]
            self.sweeps += 1
            if not self.history or self.history[-1][1] != saying:
                self.history.append((now, saying))
            if len(saying) > 1:
                self.overlaps.append((now, saying))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)

    def first_leader_after(self, moment: float, *, other_than: str) -> Optional[float]:
        for when, saying in self.history:
            if when >= moment and any(pod != other_than for pod in saying):
                return when
        return None
