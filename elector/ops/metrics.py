"""Counters of the election and the Prometheus text exposition (no client library: a few lines).

Names: client-go's `leader_election_master_status` and `leader_election_slowpath_total`, plus
`elector_*` series for what client-go does not count. `header`/`sample`/`family` write the text
format (0.0.4) for every module that exports metrics (apimetrics.py, procmetrics.py).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Mapping

__all__ = ["Metrics", "render", "header", "sample", "family"]


@dataclasses.dataclass
class Metrics:
    slowpath: int = 0  # renewals that needed GET + PUT
    renew_errors: int = 0  # failed renew attempts while leading
    acquire_errors: int = 0  # failed API calls while following
    leader_changes: int = 0  # changes of holder this pod observed
    acquisitions: int = 0  # terms this pod started
    lease_transitions: float = math.nan  # spec.leaseTransitions last observed


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value(value: float) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def header(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def sample(name: str, labels: Mapping[str, str], value: float) -> str:
    """One sample line; the label values are escaped."""
    shown = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels.items())
    return f"{name}{{{shown}}} {_value(value)}" if shown else f"{name} {_value(value)}"


def family(name: str, kind: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]) -> list[str]:
    """A metric family whose samples all carry the family's own name (counters, gauges)."""
    return header(name, kind, help_text) + [sample(name, labels, value) for labels, value in samples]


def render(metrics: Metrics, *, name: str, is_leader: bool, has_leader: bool) -> str:
    """The text exposition format (version 0.0.4) for one election."""
    label = {"name": name}
    rows = [
        ("leader_election_master_status", "gauge",
         "Leader election status of this pod: 0 indicates backup, 1 indicates master.", int(is_leader)),
        ("leader_election_slowpath_total", "counter",
         "Total number of renewals that needed the GET + PUT slow path.", metrics.slowpath),
        ("elector_has_leader", "gauge",
         "1 if this pod currently knows a valid leader of the election.", int(has_leader)),
        ("elector_leader_changes_total", "counter",
         "Changes of the Lease holder observed by this pod.", metrics.leader_changes),
        ("elector_acquisitions_total", "counter",
         "Terms of leadership started by this pod.", metrics.acquisitions),
        ("elector_renew_errors_total", "counter",
         "Failed renewals while leading.", metrics.renew_errors),
        ("elector_acquire_errors_total", "counter",
         "Failed API calls while following.", metrics.acquire_errors),
        ("elector_lease_transitions", "gauge",
         "spec.leaseTransitions of the Lease, as last observed.", metrics.lease_transitions),
    ]
    lines: list[str] = []
    for metric, kind, help_text, value in rows:
        lines += family(metric, kind, help_text, [(label, value)])
    return "\n".join(lines) + "\n"
