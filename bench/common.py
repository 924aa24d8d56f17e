"""What every benchmark shares: statistics, the result table and JSON, the machine's description,
free ports, TLS material, process sampling from /proc, and a local control plane.

Figures are the median of several runs with min and max, beside a baseline measured in the same
run; a target is a predicate on the figure (or on its ratio to the baseline). Nothing here asserts.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("BENCH_RESULTS") or ROOT / "bench" / "results")  # e.g. a scratch dir for a trial
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def spread(values: Iterable[Optional[float]]) -> dict[str, Any]:
    """Median, min and max over runs (runs that produced no value are counted, not used)."""
    kept = [v for v in values if v is not None and v == v]
    if not kept:
        return {"median": None, "min": None, "max": None, "runs": 0}
    return {"median": statistics.median(kept), "min": min(kept), "max": max(kept), "runs": len(kept)}


# ------------------------------------------------------------------ the table


@dataclass
class Row:
    """One figure: ours and (optionally) the baseline's, each a spread over runs."""

    figure: str
    unit: str
    value: dict[str, Any]
    baseline: Optional[dict[str, Any]] = None
    baseline_name: str = ""
    target: str = ""
    met: Optional[bool] = None  # None: no target, or no value
    note: str = ""

    @property
    def ratio(self) -> Optional[float]:
        ours, theirs = self.value.get("median"), (self.baseline or {}).get("median")
        return ours / theirs if ours is not None and theirs else None


def row(figure: str, unit: str, values: Iterable[Optional[float]], *, baseline: Iterable[Optional[float]] = (),
        baseline_name: str = "", target: str = "", check: Optional[Callable[[float, Optional[float]], bool]] = None,
        note: str = "") -> Row:
    """Build a Row; `check(median, baseline_median)` decides whether the target is met."""
    value, base = spread(values), spread(baseline)
    result = Row(figure, unit, value, base if base["runs"] else None, baseline_name, target, None, note)
    if check is not None and value["median"] is not None:
        result.met = bool(check(value["median"], base["median"]))
    return result


def _fmt(number: Optional[float]) -> str:
    if number is None:
        return "-"
    magnitude = abs(number)
    if magnitude >= 100 or number == int(number):
        return f"{number:.0f}"
    return f"{number:.2f}" if magnitude >= 1 else f"{number:.3f}"


def fmt_spread(s: Optional[dict[str, Any]]) -> str:
    if not s or s.get("median") is None:
        return "-"
    return f"{_fmt(s['median'])} [{_fmt(s['min'])}–{_fmt(s['max'])}]"


COLUMNS = ("kube-elector median [min–max]", "baseline median [min–max]")


def table(rows: Sequence[Row], columns: Sequence[str] = COLUMNS) -> str:
    """A Markdown table: figure | ours | baseline | ratio | target | met (`columns`: the headers of ours
    and of the baseline)."""
    lines = [f"| figure | unit | {columns[0]} | {columns[1]} | ratio | target | met |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        base = f"{fmt_spread(r.baseline)} ({r.baseline_name})" if r.baseline else "-"
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        met = {True: "yes", False: "**no**", None: "-"}[r.met]
        figure = f"{r.figure} ({r.note})" if r.note else r.figure
        lines.append(f"| {figure} | {r.unit} | {fmt_spread(r.value)} | {base} | {ratio} | {r.target or '-'} | {met} |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", _read("/proc/meminfo")).group(1))  # type: ignore[union-attr]
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def report(name: str, rows: Sequence[Row], *, settings: dict[str, Any], extra: Optional[dict[str, Any]] = None,
           columns: Sequence[str] = COLUMNS) -> Path:
    """Print the table and write bench/results/<name>.json (`columns`: the table's headers, see table)."""
    print(f"\n## {name}\n\n{table(rows, columns)}\n", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=ROOT)
    document = {"name": name, "machine": machine(), "commit": commit.stdout.strip(), "columns": list(columns),
                "settings": settings,
                "rows": [{**r.__dict__, "ratio": r.ratio} for r in rows], **(extra or {})}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def cli(description: str, **defaults: Any) -> argparse.Namespace:
    """--quick (a short pass), --long (the slow figures too), --runs N."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer and shorter runs")
    parser.add_argument("--long", action="store_true", help="also the slow figures (e.g. RSS after 10 min)")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (default 5, 3 with --quick)")
    for name, value in defaults.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args()
    if args.runs is None:
        args.runs = 3 if args.quick else 5
    return args


# ------------------------------------------------------------------ network, TLS


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


# ------------------------------------------------------------------ processes


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
    match = re.search(r"VmRSS:\s+(\d+) kB", _read(f"/proc/{pid}/status"))
    return int(match.group(1)) * 1024 if match else 0


def cpu_seconds(pid: int) -> float:
    """CPU time of the process, all its threads (children not): nanoseconds from schedstat where the
    kernel has it, else user + system clock ticks (10 ms steps)."""
    tasks = [_read(str(path)).split() for path in Path(f"/proc/{pid}/task").glob("*/schedstat")]
    if tasks and all(tasks):
        return sum(int(fields[0]) for fields in tasks) / 1e9
    fields = _read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


# ------------------------------------------------------------------ the local control plane


def start_plane(workdir: Path, *, apiserver_args: Sequence[str] = ()) -> Any:
    """ControlPlane.start (binaries built if missing), with extra kube-apiserver flags (e.g. an audit log)."""
    from localplane import binaries, plane as plane_

    return plane_.ControlPlane.start(workdir, bins=binaries.ensure(), apiserver_args=apiserver_args)


def make_namespace(api: Any, name: str, timeout: float = 30.0) -> str:
    """Create a namespace and wait for its default ServiceAccount (so Pods can be created)."""
    api.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    deadline = time.monotonic() + timeout
    while api.get(f"/api/v1/namespaces/{name}/serviceaccounts/default").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no default ServiceAccount in {name} after {timeout:.0f} s")
        time.sleep(0.1)
    return name


def say(*parts: Any) -> None:
    print("[bench]", *parts, file=sys.stderr, flush=True)
