"""Printing the rows (pure): kubectl-like table (`-o wide` adds columns), or JSON / YAML documents."""
from __future__ import annotations

import datetime
import json
from typing import Any, Optional

from elector.election import record
from kubectl_elector import summary

__all__ = ["table", "headers", "document", "dumps", "duration"]

WARNING_MARK = "!"


def duration(seconds: Optional[float]) -> str:
    """kubectl's short durations: 45s, 3m12s, 5h3m, 2d4h; "-" for None."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 120:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs}s" if minutes < 10 and secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes}m" if hours < 8 and minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if days < 8 and hours else f"{days}d"


def _status(row: summary.Election) -> str:
    return f"{WARNING_MARK} {', '.join(row.warnings)}" if row.warnings else "OK"


def _cells(row: summary.Election, *, all_namespaces: bool, wide: bool) -> list[str]:
    cells = [row.namespace] if all_namespaces else []
    cells += [row.name, row.leader or "<none>", "-" if row.term is None else str(row.term),
              duration(row.leading_for), "?" if row.transitions is None else str(row.transitions),
              f"{row.ready}/{len(row.candidates)}"]
    if wide:
        since = row.transitions_since.strftime("%H:%M:%SZ") if row.transitions_since else "-"
        cells += [duration(row.renewed_ago), since, ",".join(c.name + ("" if c.ready else "(not ready)")
                                                              for c in row.candidates) or "<none>"]
    return cells + [_status(row)]


def headers(*, all_namespaces: bool, wide: bool) -> list[str]:
    """The table's column titles; `_cells` must give a row the same columns in the same order."""
    cells = ["NAMESPACE"] if all_namespaces else []
    cells += ["ELECTION", "LEADER", "TERM", "LEADING FOR", "TRANSITIONS", "CANDIDATES"]
    if wide:
        cells += ["RENEWED", "EVENTS SINCE", "PODS"]
    return cells + ["STATUS"]


def table(rows: list[summary.Election], *, all_namespaces: bool, wide: bool = False, header: bool = True) -> str:
    """Aligned columns like kubectl get; the widths fit the header and these rows."""
    lines = [headers(all_namespaces=all_namespaces, wide=wide)] if header else []
    lines += [_cells(row, all_namespaces=all_namespaces, wide=wide) for row in rows]
    if not lines:
        return ""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]) - 1)]
    return "\n".join("   ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "   " + line[-1]
                     for line in lines) + "\n"


def _time(moment: Optional[datetime.datetime]) -> Optional[str]:
    return record.format_micro_time(moment) if moment else None


def document(row: summary.Election) -> dict[str, Any]:
    """One election as plain data (the -o json / -o yaml item)."""
    return {
        "namespace": row.namespace,
        "election": row.name,
        "leader": row.leader or None,
        "term": row.term,
        "leadingForSeconds": None if row.leading_for is None else round(row.leading_for, 3),
        "renewedSecondsAgo": None if row.renewed_ago is None else round(row.renewed_ago, 3),
        "transitions": row.transitions,
        "transitionsSince": _time(row.transitions_since),
        "candidates": {"ready": row.ready, "total": len(row.candidates),
                       "pods": [{"name": c.name, "ready": c.ready} for c in row.candidates]},
        "warnings": list(row.warnings),
    }


def dumps(documents: Any, fmt: str) -> str:
    """`fmt` "json" (indented) or "yaml" (pyyaml, imported only here)."""
    if fmt == "json":
        return json.dumps(documents, indent=2) + "\n"
    import yaml  # noqa: PLC0415 (only -o yaml needs it)

    return str(yaml.safe_dump(documents, sort_keys=False))
