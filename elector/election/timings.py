"""The one duration grammar and the ranges of the election's timings, for the elector and the webhook.

Both read the same text (an `elector.dev/*` annotation becomes an `ELECTOR_*` env var), so both parse
it here: what the webhook admits, the elector starts with. Stdlib only (the sidecar imports it).

Grammar: Go's `time.ParseDuration` without signs: one or more <number><unit>, units ns, us, µs, ms,
s, m, h, e.g. `15s`, `1m30s`, `500ms`, `2.5s`; `0` alone. At most 32 characters; the value is finite.

Ranges (docs/elector.md has the table; RANGES is the source):
- lease-duration: 2s to 10m, whole seconds (the Lease stores `leaseDurationSeconds` as an integer);
- renew-deadline: at least 1s, and at least 1s below the lease duration (the margin that lets a
  leader that cannot renew stop before anyone may take over);
- retry-period: 100ms to 1m, and the renew deadline above 1.2 x it (client-go's jitter rule);
- release-timeout: 0 (do not wait) to 10m;
- renew-interval: 0 (derived: two fifths of the lease duration, at least the retry period) or 100ms to
  5m; either way at most the renew deadline less the room to retry a failed renewal before the claim ends:
  two retry periods, or half the renew deadline where that is less.
"""
from __future__ import annotations

import dataclasses
import math
import re

__all__ = ["RANGES", "JITTER_FACTOR", "MIN_MARGIN", "Range", "TimingError", "parse", "format", "check", "check_timings", "renew_interval"]

JITTER_FACTOR = 1.2  # client-go wait.Jitter factor: RenewDeadline must exceed 1.2 * RetryPeriod
RETRIES = 2  # retry periods left between a renewal and the end of its claim (at most half the renew deadline)
MIN_MARGIN = 1.0  # lease duration - renew deadline, in seconds: a leader's time to stop before expiry
MAX_TEXT = 32

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_HINT = "use a number with a unit, e.g. 15s, 500ms, 1m30s"


@dataclasses.dataclass(frozen=True)
class Range:
    """The allowed values of one timing, so the webhook and the elector refuse the same text."""

    low: float
    high: float
    whole_seconds: bool = False
    zero: str = ""  # what 0 means, where 0 is allowed below `low`

    def describe(self) -> str:
        text = f"from {format(self.low)} to {format(self.high)}"
        if self.zero:
            text = f"0 ({self.zero}) or {text}"
        return text + (", whole seconds" if self.whole_seconds else "")


RANGES = {
    "lease-duration": Range(2.0, 600.0, whole_seconds=True),
    "renew-deadline": Range(1.0, 599.0),
    "retry-period": Range(0.1, 60.0),
    "release-timeout": Range(1.0, 600.0, zero="off"),
    "renew-interval": Range(0.1, 300.0, zero="derived"),
}


def parse(text: str) -> float:
    """Seconds in `text`; ValueError (with the grammar in its message) if it is not a duration."""
    text = str(text).strip()
    if len(text) > MAX_TEXT:
        raise ValueError(f"{text[:MAX_TEXT]!r}... is longer than {MAX_TEXT} characters; {_HINT}")
    if text == "0":
        return 0.0
    total, pos = 0.0, 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if not match:
            raise ValueError(f"{text!r} is not a duration; {_HINT}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or not math.isfinite(total):
        raise ValueError(f"{text!r} is not a duration; {_HINT}")
    return total


def format(seconds: float) -> str:  # noqa: A001 - the module's verb: timings.format(2.0) == "2s"
    """Seconds -> a short Go-style duration ("15s", "500ms", "9m59s")."""
    if seconds and seconds < 1:
        return f"{seconds * 1000:g}ms"
    minutes, rest = divmod(seconds, 60) if seconds >= 60 else (0, seconds)
    return (f"{minutes:g}m" if minutes else "") + (f"{rest:g}s" if rest or not minutes else "")


def check(name: str, seconds: float) -> float:
    """`seconds` if it is in the range of timing `name` (a RANGES key); ValueError naming the range."""
    allowed = RANGES[name]
    if seconds == 0 and allowed.zero:
        return seconds
    if not allowed.low <= seconds <= allowed.high or (allowed.whole_seconds and seconds != int(seconds)):
        raise ValueError(f"{format(seconds)} is out of range: {allowed.describe()}")
    return seconds


def check_timings(lease_duration: float, renew_deadline: float, retry_period: float) -> None:
    """TimingError (naming the RANGES key to change) unless each is in range and the three fit together."""
    for name, value in (("lease-duration", lease_duration), ("renew-deadline", renew_deadline),
                        ("retry-period", retry_period)):
        try:
            check(name, value)
        except ValueError as exc:
            raise TimingError(name, str(exc)) from None
    if lease_duration - renew_deadline < MIN_MARGIN:
        raise TimingError("renew-deadline", f"the renew deadline ({format(renew_deadline)}) must be at least "
                                            f"{format(MIN_MARGIN)} below the lease duration ({format(lease_duration)})")
    if not renew_deadline > JITTER_FACTOR * retry_period:
        raise TimingError("retry-period", f"the renew deadline ({format(renew_deadline)}) must be greater than "
                                          f"{JITTER_FACTOR} x the retry period ({format(retry_period)})")


def renew_interval(lease_duration: float, renew_deadline: float, retry_period: float, given: float = 0.0) -> float:
    """Seconds between a leader's renewals: `given`, or two fifths of the lease (6 s at 15 s: 10 writes a
    minute, which with the followers' watches keeps an election under 12 requests a minute). Safety does
    not need more: a claim ends at the last successful renewal + renew deadline whatever the rate, and a
    failed renewal is retried every retry period for two of them (or half the renew deadline) before
    the claim ends. TimingError if `given` does not fit the other three."""
    longest = max(retry_period, renew_deadline - min(RETRIES * retry_period, renew_deadline / 2))
    if not given:
        return max(retry_period, min(lease_duration * 2 / 5, longest))
    try:
        check("renew-interval", given)
    except ValueError as exc:
        raise TimingError("renew-interval", str(exc)) from None
    if not retry_period <= given <= longest:
        raise TimingError("renew-interval", f"the renew interval ({format(given)}) must be from the retry period "
                                            f"({format(retry_period)}) to {format(longest)} (the renew deadline less "
                                            f"{RETRIES} retry periods or half of it), so that a failed renewal is "
                                            f"retried before the claim ends")
    return given


class TimingError(ValueError):
    """A timing out of its range or out of step with the others; `name` is the RANGES key to change."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(problem)
        self.name = name
