"""The process's own metrics, under the names every Prometheus client library uses, read from /proc.

process_* as prometheus_client's ProcessCollector (CPU, RSS, virtual memory, open and max file
descriptors, start time), python_* as its platform and GC collectors, plus the container's memory
limit from its cgroup (`elector_memory_limit_bytes`: v2 `memory.max`, v1 `memory.limit_in_bytes`;
absent when unlimited) so that an alert can compare RSS with it from one scrape. Off Linux the
process_* series are simply absent.
"""
from __future__ import annotations

import gc
import os
import sys
from typing import Optional

from elector.ops import metrics as metricses

__all__ = ["render", "parse_stat", "memory_limit"]

_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
_UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a page-rounded 2^63 - 1


def parse_stat(text: str) -> dict[str, int]:
    """The fields of /proc/<pid>/stat that the metrics use (the command may contain spaces and ')')."""
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime is field 14, stime 15, starttime 22, vsize 23, rss 24
    return {"utime": int(fields[11]), "stime": int(fields[12]), "starttime": int(fields[19]),
            "vsize": int(fields[20]), "rss": int(fields[21])}


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read()
    except (OSError, ValueError):
        return None


def memory_limit(paths: tuple[str, ...] = _CGROUP_LIMITS) -> Optional[int]:
    """The cgroup memory limit in bytes, or None (no cgroup file, or no limit)."""
    for path in paths:
        text = (_read(path) or "").strip()
        if text.isdigit():
            return int(text) if int(text) < _UNLIMITED else None
        if text == "max":
            return None
    return None


def _boot_time() -> Optional[float]:
    for line in (_read("/proc/stat") or "").splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return None


def _max_fds() -> Optional[int]:
    for line in (_read("/proc/self/limits") or "").splitlines():
        if line.startswith("Max open files"):
            soft = line.split()[3]
            return int(soft) if soft.isdigit() else None
    return None


def _process() -> list[str]:
    stat, boot = _read("/proc/self/stat"), _boot_time()
    if stat is None or boot is None:
        return []
    values = parse_stat(stat)
    ticks, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    rows: list[tuple[str, str, str, float]] = [
        ("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
         (values["utime"] + values["stime"]) / ticks),
        ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", values["vsize"]),
        ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", values["rss"] * page),
        ("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
         boot + values["starttime"] / ticks),
        ("process_open_fds", "gauge", "Number of open file descriptors.", len(os.listdir("/proc/self/fd"))),
    ]
    max_fds = _max_fds()
    if max_fds is not None:
        rows.append(("process_max_fds", "gauge", "Maximum number of open file descriptors.", max_fds))
    lines: list[str] = []
    for name, kind, help_text, value in rows:
        lines += metricses.family(name, kind, help_text, [({}, value)])
    return lines


def _runtime() -> list[str]:
    info = sys.version_info
    lines = metricses.family("python_info", "gauge", "Python platform information", [(
        {"implementation": {"cpython": "CPython", "pypy": "PyPy"}.get(sys.implementation.name, sys.implementation.name),
         "major": str(info.major), "minor": str(info.minor), "patchlevel": str(info.micro),
         "version": f"{info.major}.{info.minor}.{info.micro}"}, 1)])
    stats = list(enumerate(gc.get_stats()))
    for name, key, help_text in (
            ("python_gc_objects_collected_total", "collected", "Objects collected during gc"),
            ("python_gc_objects_uncollectable_total", "uncollectable", "Uncollectable objects found during GC"),
            ("python_gc_collections_total", "collections", "Number of times this generation was collected")):
        lines += metricses.family(name, "counter", help_text,
                                  [({"generation": str(gen)}, stat[key]) for gen, stat in stats])
    return lines


def render(*, limit_files: tuple[str, ...] = _CGROUP_LIMITS) -> str:
    lines = _process() + _runtime()
    limit = memory_limit(limit_files)
    if limit is not None:
        lines += metricses.family("elector_memory_limit_bytes", "gauge",
                                  "Memory limit of the container (cgroup), in bytes.", [({}, limit)])
    return "\n".join(lines) + "\n"
