"""Go-style durations ("15s", "1m30s", "500ms"), as the elector's flags take them."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
JITTER_FACTOR = 1.2  # client-go: renewDeadline must exceed JitterFactor * retryPeriod


def parse(text: str) -> float:
    """Seconds in `text`; ValueError if it is not a positive Go duration."""
    text = text.strip()
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if not text or pos != len(text) or total <= 0:
        raise ValueError(f"{text!r} is not a duration: use a number with a unit, e.g. 15s, 500ms, 1m30s")
    return total


def check_timings(lease_duration: float, renew_deadline: float, retry_period: float) -> None:
    """client-go's rule: lease > renew deadline > 1.2 * retry period > 0."""
    if not lease_duration > renew_deadline:
        raise ValueError(
            f"lease duration ({lease_duration:g}s) must be greater than the renew deadline ({renew_deadline:g}s)"
        )
    if not renew_deadline > JITTER_FACTOR * retry_period:
        raise ValueError(
            f"renew deadline ({renew_deadline:g}s) must be greater than "
            f"{JITTER_FACTOR} x retry period ({retry_period:g}s)"
        )
