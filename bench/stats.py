"""A figure over runs: median with min and max, beside a baseline measured in the same run, and the
Markdown table of them; a target is a predicate on the figure (or its ratio to the baseline). Nothing here
asserts."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence


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
