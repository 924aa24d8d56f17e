"""A bench's command line and what it leaves: the printed table, bench/results/<name>.json with the
machine it ran on, and its progress lines."""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from bench.procs import ROOT, read_text
from bench.stats import COLUMNS, Row, table

RESULTS = Path(os.environ.get("BENCH_RESULTS") or ROOT / "bench" / "results")  # e.g. a scratch dir for a trial


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = next((line.split(":", 1)[1].strip() for line in read_text("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", read_text("/proc/meminfo")).group(1))  # type: ignore[union-attr]
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


def say(*parts: Any) -> None:
    print("[bench]", *parts, file=sys.stderr, flush=True)
