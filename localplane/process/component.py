"""One process of the local control plane, owned by the plane that started it.

A Component keeps its argv, so `start()` after `stop()` is a restart with the
same ports and the same data directory: what the chaos tests need. Signals go
only to the pid this object started, never to a process found by name.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["Component", "ComponentError"]


class ComponentError(RuntimeError):
    """A component exited or did not become ready in time; the message ends with its log tail."""


class Component:
    """A named process with a log file and a readiness probe (a callable that returns True when ready)."""

    def __init__(self, name: str, argv: Sequence[str], *, log_path: Path, probe: Callable[[], bool]):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._probe = probe
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<Component {self.name} pid={self.pid} running={self.running}>"

    @property
    def pid(self) -> int | None:
        """The pid of the current (or last) process; None before the first start."""
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, wait: bool = True, timeout: float = 60.0) -> None:
        """Start the process (appending to its log); with wait, return once its probe passes."""
        if self.running:
            raise ComponentError(f"{self.name} is already running (pid {self.pid})")
        with self.log_path.open("ab") as log:
            log.write(f"\n=== localplane: starting {self.name} at {time.strftime('%H:%M:%S')} ===\n".encode())
            log.flush()
            # A session of its own: Ctrl-C in the terminal reaches only the plane, which then
            # stops the components in order instead of all of them dying at once.
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            self.wait_ready(timeout=timeout)

    def wait_ready(self, *, timeout: float = 60.0) -> float:
        """Poll the probe until it passes; return the seconds waited. Raises ComponentError on exit or timeout."""
        if self._process is None:
            raise ComponentError(f"{self.name} was never started")
        started = time.monotonic()
        next_note = started + 5
        while True:
            code = self._process.poll()
            if code is not None:
                raise ComponentError(
                    f"{self.name} exited with code {code} before it was ready\n{self.tail()}"
                )
            if self._probe():
                waited = time.monotonic() - started
                say(f"{self.name} ready in {waited:.1f} s (pid {self.pid})")
                return waited
            now = time.monotonic()
            if now - started > timeout:
                raise ComponentError(f"{self.name} not ready after {timeout:.0f} s\n{self.tail()}")
            if now >= next_note:
                say(f"waiting for {self.name} ({now - started:.0f} s)...")
                next_note = now + 5
            time.sleep(0.1)

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM (and SIGCONT, in case it is paused), then SIGKILL after timeout. No-op if not running."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGCONT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            say(f"{self.name} ignored SIGTERM for {timeout:.0f} s; sending SIGKILL")
            process.kill()
            process.wait()
        say(f"{self.name} stopped in {time.monotonic() - started:.1f} s")

    def kill(self) -> None:
        """SIGKILL now: a crash, no graceful shutdown (etcd's graceful stop waits ~7 s for open watches)."""
        if self.running:
            assert self._process is not None
            self._process.kill()
            self._process.wait()

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing (a hung component)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after pause()."""
        self._signal(signal.SIGCONT)

    def tail(self, lines: int = 40) -> str:
        """The last lines of the log ('' if there is no log yet)."""
        try:
            with self.log_path.open("rb") as log:
                last = collections.deque(log, maxlen=lines)
        except FileNotFoundError:
            return ""
        return b"".join(last).decode(errors="replace")

    def rss_bytes(self) -> int | None:
        """Resident memory of the running process, from /proc (None if not running)."""
        if not self.running:
            return None
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return None

    def _signal(self, signum: int) -> None:
        if not self.running:
            raise ComponentError(f"{self.name} is not running")
        assert self._process is not None
        os.kill(self._process.pid, signum)


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP end the program with SystemExit(128 + signal), SIGINT with KeyboardInterrupt
    (even if the caller ignored it, as for a `&` job), so that `with`/`finally` blocks stop what was
    started. The first one also ignores any later one: a second Ctrl-C or a supervisor's repeated
    SIGTERM must not cut the cleanup short (that left a node's containerd running once)."""

    def stop(signum: int, _frame: object) -> None:
        for other in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(other, signal.SIG_IGN)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        sys.exit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, stop)


def say(message: str) -> None:
    print(f"[localplane] {message}", file=sys.stderr, flush=True)
