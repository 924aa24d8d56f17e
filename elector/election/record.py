"""The leader election record and its Lease `spec` form (pure; mirrors client-go's leaselock.go).

MicroTime is written with exactly six fractional digits in UTC (`2006-01-02T15:04:05.000000Z`):
the API server parses it with Go's RFC3339Micro layout and rejects shorter forms.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import re
from typing import Any, Optional

__all__ = [
    "LeaderElectionRecord",
    "format_micro_time",
    "parse_micro_time",
    "record_from_spec",
    "spec_from_record",
    "canonical",
    "released",
]

_MICRO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})$"
)


@dataclasses.dataclass(frozen=True)
class LeaderElectionRecord:
    """client-go's LeaderElectionRecord; `holder_identity` "" means released/unheld."""

    holder_identity: str = ""
    lease_duration_seconds: int = 0
    acquire_time: Optional[datetime.datetime] = None
    renew_time: Optional[datetime.datetime] = None
    leader_transitions: int = 0
    strategy: str = ""
    preferred_holder: str = ""
    # Not part of the spec (LeaseLock keeps them in Lease annotations, which client-go renewals keep):
    # the pod a releasing leader names to take over (`elector.dev/successor`), and the holder's Pod uid
    # (`elector.dev/holder-uid`), so that two live pods with one name (a force-deleted StatefulSet pod
    # and its replacement) never both believe they hold the Lease.
    successor: str = ""
    holder_uid: str = ""


def format_micro_time(moment: datetime.datetime) -> str:
    """Format as MicroTime: UTC, exactly 6 fractional digits, trailing Z."""
    if moment.tzinfo is None:
        raise ValueError("MicroTime needs a timezone-aware datetime")
    return moment.astimezone(datetime.timezone.utc).strftime(_MICRO_FORMAT)


def parse_micro_time(text: Optional[str]) -> Optional[datetime.datetime]:
    """Parse an RFC 3339 time (any number of fractional digits); None for None/"" or garbage."""
    if not text:
        return None
    match = _RFC3339.match(text)
    if not match:
        return None
    day, clock_part, fraction, zone = match.groups()
    micros = (fraction or "").ljust(6, "0")[:6]
    offset = "+00:00" if zone in ("Z", "z") else zone
    try:
        return datetime.datetime.fromisoformat(f"{day}T{clock_part}.{micros}{offset}")
    except ValueError:
        return None


def record_from_spec(spec: Optional[dict[str, Any]]) -> LeaderElectionRecord:
    """Lease spec dict -> record (client-go LeaseSpecToLeaderElectionRecord); missing fields -> zero values."""
    spec = spec or {}
    return LeaderElectionRecord(
        holder_identity=spec.get("holderIdentity") or "",
        lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=parse_micro_time(spec.get("acquireTime")),
        renew_time=parse_micro_time(spec.get("renewTime")),
        leader_transitions=int(spec.get("leaseTransitions") or 0),
        strategy=spec.get("strategy") or "",
        preferred_holder=spec.get("preferredHolder") or "",
    )


def spec_from_record(rec: LeaderElectionRecord) -> dict[str, Any]:
    """Record -> Lease spec dict (client-go LeaderElectionRecordToLeaseSpec); strategy fields only if set."""
    spec: dict[str, Any] = {
        "holderIdentity": rec.holder_identity,
        "leaseDurationSeconds": rec.lease_duration_seconds,
        "acquireTime": format_micro_time(rec.acquire_time) if rec.acquire_time else None,
        "renewTime": format_micro_time(rec.renew_time) if rec.renew_time else None,
        "leaseTransitions": rec.leader_transitions,
    }
    spec = {key: value for key, value in spec.items() if value is not None}
    if rec.strategy:
        spec["strategy"] = rec.strategy
    if rec.preferred_holder:
        spec["preferredHolder"] = rec.preferred_holder
    return spec


def canonical(spec: Optional[dict[str, Any]]) -> str:
    """A stable text of a spec, used to notice that a record changed (client-go compares raw bytes)."""
    return json.dumps(spec or {}, sort_keys=True, separators=(",", ":"))


def released(rec: LeaderElectionRecord, *, now: datetime.datetime, successor: str = "") -> LeaderElectionRecord:
    """client-go's release record: no holder, 1 s duration, times = now, transitions kept; plus the
    successor this leader names, if any."""
    return LeaderElectionRecord(
        holder_identity="",
        lease_duration_seconds=1,
        acquire_time=now,
        renew_time=now,
        leader_transitions=rec.leader_transitions,
        strategy=rec.strategy,
        successor=successor,
    )
