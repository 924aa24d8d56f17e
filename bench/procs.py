"""Processes a bench starts and samples: a child with its log, its RSS and CPU time from /proc, waiting
for it to serve, and TLS material for a loopback server."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")


def serving_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a serving cert for 127.0.0.1; returns (ca.crt, tls.crt, tls.key)."""
    from certs import pki

    ca = pki.make_ca("bench-ca", days=2)
    ca_path, _ = ca.write(directory, "ca")
    cert, key = pki.make_serving_cert(ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"], days=2).write(
        directory, "tls")
    return ca_path, cert, key


def wait_http(url: str, *, timeout: float = 20.0, context: Any = None, proc: Optional[subprocess.Popen] = None) -> float:
    """Poll url until it answers 200; return the seconds waited. Raises RuntimeError on timeout or exit."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as answer:  # noqa: S310 (loopback)
                if answer.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} not ready in {timeout:.0f} s")


class Proc:
    """A child process with its output in a log file; stop() ends only this pid."""

    def __init__(self, argv: Sequence[str], log_path: Path, *, env: Optional[dict[str, str]] = None) -> None:
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                          env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def rss_bytes(pid: int) -> int:
    match = re.search(r"VmRSS:\s+(\d+) kB", read_text(f"/proc/{pid}/status"))
    return int(match.group(1)) * 1024 if match else 0


def pss_bytes(pid: int) -> int:
    """Proportional set size: a page shared by n processes (a forked server's workers) counts 1/n in each,
    so a sum over processes is what they hold together, where a sum of RSS counts shared pages n times."""
    match = re.search(r"^Pss:\s+(\d+) kB", read_text(f"/proc/{pid}/smaps_rollup"), re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def cpu_seconds(pid: int) -> float:
    """CPU time of the process, all its threads (children not): nanoseconds from schedstat where the
    kernel has it, else user + system clock ticks (10 ms steps)."""
    tasks = [read_text(str(path)).split() for path in Path(f"/proc/{pid}/task").glob("*/schedstat")]
    if tasks and all(tasks):
        return sum(int(fields[0]) for fields in tasks) / 1e9
    fields = read_text(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid: int) -> list[int]:
    """The direct children of pid (a server's worker processes)."""
    return [int(child) for task in Path(f"/proc/{pid}/task").glob("*")
            for child in read_text(str(task / "children")).split()]


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of pid and all its descendants: a server with worker processes works in its children."""
    return cpu_seconds(pid) + sum(tree_cpu_seconds(child) for child in children(pid))


def read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
